//! Persona and its files host, in memory. Bodies are built in the JSON shape Persona returns
//! and parsed by the crate's own parser, so `files_of` maps them as in production.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{Call, CallCounts};
use crate::clock::Clock;
use crate::error::Host;
use crate::model::{parse_inquiry, parse_list_page, parse_time};
use crate::redact::redact_url;
use crate::{
    Error, Event, EventPage, EventsFrom, InquiryPage, ListFilters, PersonaApi, RemoteFile, Result,
    RetrievedInquiry, files_of,
};

/// Where the signed URLs point (never contacted).
const FILES_BASE: &str = "https://files.withpersona.com/mem";
/// Largest page the list endpoint gives.
const MAX_PAGE: usize = 100;
/// Bodies are written in chunks of this size, like a network stream.
const CHUNK: usize = 64 << 10;

/// A file of an object: a photo attribute (`front-photo`…) or an entry of `files[]`.
#[derive(Debug, Clone)]
pub struct FileSpec {
    /// The attribute (`front-photo`, `center-photo`, `video`…) or, for `files[]`, `None`.
    attr: Option<String>,
    filename: String,
    bytes: Arc<Vec<u8>>,
    /// Whether the body carries `byte-size` (else the filesystem needs a HEAD).
    size_known: bool,
}

impl FileSpec {
    /// A file object under a photo attribute, e.g. `FileSpec::photo("front-photo", "a.jpg", b)`.
    pub fn photo(attr: &str, filename: &str, bytes: impl Into<Vec<u8>>) -> FileSpec {
        FileSpec {
            attr: Some(attr.to_string()),
            filename: filename.to_string(),
            bytes: Arc::new(bytes.into()),
            size_known: true,
        }
    }

    /// An entry of `files[]` (named after its filename in the mount).
    pub fn file(filename: &str, bytes: impl Into<Vec<u8>>) -> FileSpec {
        FileSpec {
            attr: None,
            filename: filename.to_string(),
            bytes: Arc::new(bytes.into()),
            size_known: true,
        }
    }

    /// Sent with `"byte-size": null`.
    pub fn without_size(mut self) -> FileSpec {
        self.size_known = false;
        self
    }

    /// What identifies the file within its object: the attribute, else the filename.
    fn slot(&self) -> &str {
        self.attr.as_deref().unwrap_or(&self.filename)
    }
}

#[derive(Debug, Clone)]
struct ObjectSpec {
    kind: String,
    id: String,
    files: Vec<(u64, FileSpec)>,
}

/// An inquiry to add to a `MemoryApi`.
#[derive(Debug, Clone)]
pub struct InquirySpec {
    id: String,
    status: Option<String>,
    created_at: DateTime<Utc>,
    reference_id: Option<String>,
    account_id: Option<String>,
    template_id: Option<String>,
    redacted_at: Option<DateTime<Utc>>,
    objects: Vec<(String, String, Vec<FileSpec>)>,
}

impl InquirySpec {
    /// A `completed` inquiry created at 2024-05-01T00:00:00Z, without files.
    pub fn new(id: &str) -> InquirySpec {
        InquirySpec {
            id: id.to_string(),
            status: Some("completed".into()),
            created_at: parse_time("2024-05-01T00:00:00Z").expect("valid time"),
            reference_id: None,
            account_id: None,
            template_id: None,
            redacted_at: None,
            objects: Vec::new(),
        }
    }

    pub fn status(mut self, status: &str) -> InquirySpec {
        self.status = Some(status.to_string());
        self
    }

    /// `created-at`, RFC 3339. Panics on a bad time (a test bug).
    pub fn created_at(mut self, rfc3339: &str) -> InquirySpec {
        self.created_at = parse_time(rfc3339).expect("an RFC 3339 time");
        self
    }

    pub fn reference_id(mut self, r: &str) -> InquirySpec {
        self.reference_id = Some(r.to_string());
        self
    }

    pub fn account_id(mut self, a: &str) -> InquirySpec {
        self.account_id = Some(a.to_string());
        self
    }

    pub fn template_id(mut self, t: &str) -> InquirySpec {
        self.template_id = Some(t.to_string());
        self
    }

    /// A `document/government-id` object.
    pub fn document(self, object_id: &str, files: impl IntoIterator<Item = FileSpec>) -> Self {
        self.object("document/government-id", object_id, files)
    }

    /// A `selfie/profile-and-center` object.
    pub fn selfie(self, object_id: &str, files: impl IntoIterator<Item = FileSpec>) -> Self {
        self.object("selfie/profile-and-center", object_id, files)
    }

    /// An included object of any type (`verification/government-id`, `document/generic`…).
    pub fn object(
        mut self,
        kind: &str,
        object_id: &str,
        files: impl IntoIterator<Item = FileSpec>,
    ) -> InquirySpec {
        self.objects.push((
            kind.to_string(),
            object_id.to_string(),
            files.into_iter().collect(),
        ));
        self
    }
}

#[derive(Debug)]
struct InquiryRec {
    id: String,
    status: Option<String>,
    created_at: DateTime<Utc>,
    reference_id: Option<String>,
    account_id: Option<String>,
    template_id: Option<String>,
    redacted_at: Option<DateTime<Utc>>,
    /// `updated-at`: the creation time, moved on by every change made through the API.
    updated_at: DateTime<Utc>,
    objects: Vec<ObjectSpec>,
}

impl InquiryRec {
    /// Something changed: a later `updated-at`, distinct at millisecond precision.
    fn touch(&mut self, now: DateTime<Utc>) {
        let next = self.updated_at + chrono::Duration::milliseconds(1);
        self.updated_at = now.max(next);
    }
}

/// One files-host request that got bytes (or tried to), for assertions on offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRecord {
    pub call: Call,
    /// `<object-id>/<slot>`, the slot being the photo attribute or the `files[]` filename.
    pub file: String,
    pub start: u64,
    /// Exclusive end of a ranged request.
    pub end: Option<u64>,
}

/// A signed URL as issued: what it points to, when, for how long.
struct Issued {
    file_key: u64,
    at: Instant,
    lifetime: Duration,
}

struct State {
    inquiries: BTreeMap<String, InquiryRec>,
    /// Entries the list endpoint shows without a retrievable inquiry behind them.
    listing_only: Vec<(String, DateTime<Utc>)>,
    tokens: HashMap<String, Issued>,
    next_key: u64,
    next_token: u64,
    url_lifetime: Duration,
    fetches: Vec<FetchRecord>,
    refused: u64,
    /// The events kept, oldest first (`drop_events` forgets them, as retention does).
    events: Vec<Event>,
    next_event: u64,
    /// Search answers this status (400/403/404: search refused), when set.
    search_refused: Option<u16>,
    /// Search leaves out inquiries changed within this long.
    search_lag: Duration,
    /// Persona's clock: `updated-at`, events, URL lifetimes.
    clock: Clock,
}

/// Persona in memory: inquiries, their files, signed URLs with a lifetime, call counters.
pub struct MemoryApi {
    state: Mutex<State>,
    calls: CallCounts,
}

impl Default for MemoryApi {
    fn default() -> Self {
        MemoryApi::new()
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn http(host: Host, status: u16, context: String) -> Error {
    Error::Http {
        host,
        status,
        title: None,
        details: None,
        request_id: None,
        context,
    }
}

impl MemoryApi {
    /// An empty organization whose signed URLs live 6 hours.
    pub fn new() -> MemoryApi {
        MemoryApi {
            state: Mutex::new(State {
                inquiries: BTreeMap::new(),
                listing_only: Vec::new(),
                tokens: HashMap::new(),
                next_key: 1,
                next_token: 1,
                url_lifetime: Duration::from_secs(6 * 3600),
                fetches: Vec::new(),
                refused: 0,
                events: Vec::new(),
                next_event: 1,
                search_refused: None,
                search_lag: Duration::ZERO,
                clock: Clock::host(),
            }),
            calls: CallCounts::default(),
        }
    }

    /// Persona's clock from now on (a test's, to move with the filesystem's).
    pub fn set_clock(&self, clock: Clock) {
        self.state.lock().clock = clock;
    }

    /// How long the signed URLs issued from now on are good; older ones are refused with a
    /// 403, like the files host refuses an expired URL.
    pub fn set_url_lifetime(&self, lifetime: Duration) {
        self.state.lock().url_lifetime = lifetime;
    }

    /// Add (or replace) an inquiry.
    pub fn add_inquiry(&self, spec: InquirySpec) {
        let mut st = self.state.lock();
        let mut objects = Vec::new();
        for (kind, id, files) in spec.objects {
            let files = files
                .into_iter()
                .map(|f| {
                    let key = st.next_key;
                    st.next_key += 1;
                    (key, f)
                })
                .collect();
            objects.push(ObjectSpec { kind, id, files });
        }
        st.record("inquiry.created", &spec.id, "inquiry", &spec.id);
        st.inquiries.insert(
            spec.id.clone(),
            InquiryRec {
                id: spec.id,
                status: spec.status,
                created_at: spec.created_at,
                reference_id: spec.reference_id,
                account_id: spec.account_id,
                template_id: spec.template_id,
                redacted_at: spec.redacted_at,
                updated_at: spec.created_at,
                objects,
            },
        );
    }

    /// An entry only the list endpoint shows (a foreign id, a duplicate of a real one…),
    /// in unfiltered listings; retrieving it answers 404 unless an inquiry has that id.
    pub fn add_listing_only(&self, id: &str, created_at: &str) {
        let t = parse_time(created_at).expect("an RFC 3339 time");
        self.state.lock().listing_only.push((id.to_string(), t));
    }

    /// Remove an inquiry altogether (retrieves answer 404, its URLs 404).
    pub fn remove_inquiry(&self, id: &str) -> bool {
        self.state.lock().inquiries.remove(id).is_some()
    }

    pub fn set_status(&self, id: &str, status: &str) -> bool {
        let mut st = self.state.lock();
        let now = st.clock.utc();
        let Some(inq) = st.inquiries.get_mut(id) else {
            return false;
        };
        inq.status = Some(status.to_string());
        inq.touch(now);
        let name = match status {
            "completed" | "approved" | "declined" | "failed" | "expired" | "marked-for-review" => {
                format!("inquiry.{status}")
            }
            _ => "inquiry.transitioned".to_string(),
        };
        st.record(&name, id, "inquiry", id);
        true
    }

    /// Add a file to an object of an inquiry (the object is created, as a document, if new).
    pub fn add_file(&self, id: &str, object_id: &str, file: FileSpec) -> bool {
        let mut st = self.state.lock();
        let now = st.clock.utc();
        let key = st.next_key;
        st.next_key += 1;
        let Some(inq) = st.inquiries.get_mut(id) else {
            return false;
        };
        inq.touch(now);
        st.record(
            "document.processed",
            id,
            "document/government-id",
            object_id,
        );
        let Some(inq) = st.inquiries.get_mut(id) else {
            return false;
        };
        match inq.objects.iter_mut().find(|o| o.id == object_id) {
            Some(o) => o.files.push((key, file)),
            None => inq.objects.push(ObjectSpec {
                kind: "document/government-id".into(),
                id: object_id.to_string(),
                files: vec![(key, file)],
            }),
        }
        true
    }

    /// Remove a file (its URLs answer 404 from now on).
    pub fn remove_file(&self, id: &str, object_id: &str, slot: &str) -> bool {
        let mut st = self.state.lock();
        let now = st.clock.utc();
        let Some(o) = st.object_mut(id, object_id) else {
            return false;
        };
        let before = o.files.len();
        o.files.retain(|(_, f)| f.slot() != slot);
        let removed = o.files.len() != before;
        if removed && let Some(inq) = st.inquiries.get_mut(id) {
            inq.touch(now);
            st.record(
                "document.processed",
                id,
                "document/government-id",
                object_id,
            );
        }
        removed
    }

    /// New bytes for a file: a new blob, so URLs issued before answer 404.
    pub fn change_file(
        &self,
        id: &str,
        object_id: &str,
        slot: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> bool {
        let bytes = Arc::new(bytes.into());
        let mut st = self.state.lock();
        let now = st.clock.utc();
        let key = st.next_key;
        st.next_key += 1;
        let Some(o) = st.object_mut(id, object_id) else {
            return false;
        };
        match o.files.iter_mut().find(|(_, f)| f.slot() == slot) {
            Some(entry) => {
                entry.0 = key;
                entry.1.bytes = bytes;
                if let Some(inq) = st.inquiries.get_mut(id) {
                    inq.touch(now);
                }
                st.record(
                    "document.processed",
                    id,
                    "document/government-id",
                    object_id,
                );
                true
            }
            None => false,
        }
    }

    /// Redact an inquiry: `redacted-at` is set, its objects lose their files, its URLs 404.
    pub fn redact(&self, id: &str) -> bool {
        let mut st = self.state.lock();
        let now = st.clock.utc();
        let Some(inq) = st.inquiries.get_mut(id) else {
            return false;
        };
        inq.redacted_at = Some(now);
        inq.touch(now);
        for o in &mut inq.objects {
            o.files.clear();
        }
        st.record("inquiry.redacted", id, "inquiry", id);
        true
    }

    /// Search answers `status` from now on (`Some(404)`: this key may not search), or
    /// searches again (`None`).
    pub fn refuse_search(&self, status: Option<u16>) {
        self.state.lock().search_refused = status;
    }

    /// Search leaves out the inquiries whose `updated-at` is younger than `lag`, as Persona's
    /// index lags writes (their earlier state is not kept here: they are simply not found).
    pub fn set_search_lag(&self, lag: Duration) {
        self.state.lock().search_lag = lag;
    }

    /// Forget every event kept so far, as Persona's retention does: a cursor naming one is
    /// refused from now on.
    pub fn drop_events(&self) {
        self.state.lock().events.clear();
    }

    /// The events kept, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.state.lock().events.clone()
    }

    /// Calls of a kind so far.
    pub fn calls(&self, call: Call) -> u64 {
        self.calls.get(call)
    }

    /// Every call counter.
    pub fn counts(&self) -> &CallCounts {
        &self.calls
    }

    /// Files-host requests refused because their URL had expired (or was never issued).
    pub fn refused_urls(&self) -> u64 {
        self.state.lock().refused
    }

    /// Every download and ranged download, in order.
    pub fn fetches(&self) -> Vec<FetchRecord> {
        self.state.lock().fetches.clone()
    }

    /// The files the mount shows for an inquiry now, through the production mapping
    /// (`files_of`); issues URLs but counts no call.
    pub fn files_of(&self, id: &str) -> Vec<RemoteFile> {
        self.build_inquiry(id)
            .map(|i| files_of(&i))
            .unwrap_or_default()
    }

    /// The bytes of a file by its name in the mount (`<object-id>-<role>.<ext>`).
    pub fn bytes_of(&self, id: &str, name: &str) -> Option<Arc<Vec<u8>>> {
        let file = self.files_of(id).into_iter().find(|f| f.name == name)?;
        let st = self.state.lock();
        let key = st.tokens.get(&token_of(&file.url)?)?.file_key;
        st.find(key).map(|(_, f)| f.bytes.clone())
    }

    fn build_inquiry(&self, id: &str) -> Result<RetrievedInquiry> {
        let context = format!("retrieve inquiry {id}");
        let mut st = self.state.lock();
        let fetched_at = st.clock.system();
        let body = st
            .retrieve_body(id)
            .ok_or_else(|| http(Host::Api, 404, context.clone()))?;
        drop(st);
        parse_inquiry(&context, body.to_string().as_bytes(), fetched_at)
    }

    /// The file behind a URL, or the files host's refusal.
    fn resolve(&self, call: Call, url: &str) -> Result<(String, Arc<Vec<u8>>)> {
        let context = format!("{call:?} {}", redact_url(url));
        let mut st = self.state.lock();
        let issued = token_of(url).and_then(|t| st.tokens.get(&t));
        let Some(issued) = issued else {
            st.refused += 1;
            return Err(http(Host::Files, 403, context));
        };
        if st.clock.since(issued.at) >= issued.lifetime {
            st.refused += 1;
            return Err(http(Host::Files, 403, context));
        }
        let key = issued.file_key;
        match st.find(key) {
            Some((object_id, f)) => Ok((format!("{object_id}/{}", f.slot()), f.bytes.clone())),
            None => Err(http(Host::Files, 404, context)),
        }
    }

    async fn write_range(
        &self,
        call: Call,
        url: &str,
        start: u64,
        end: Option<u64>,
        out: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64> {
        self.calls.bump(call);
        let (file, bytes) = self.resolve(call, url)?;
        self.state.lock().fetches.push(FetchRecord {
            call,
            file,
            start,
            end,
        });
        let len = bytes.len() as u64;
        if start > len || (start == len && len > 0 && end.is_some()) {
            return Err(http(
                Host::Files,
                416,
                format!("{call:?} {}", redact_url(url)),
            ));
        }
        let stop = end.unwrap_or(len).min(len);
        let mut at = start;
        while at < stop {
            let to = (at + CHUNK as u64).min(stop);
            out.write_all(&bytes[at as usize..to as usize]).await?;
            at = to;
        }
        out.flush().await?;
        Ok(stop.saturating_sub(start))
    }
}

impl State {
    fn record(&mut self, name: &str, inquiry_id: &str, object_type: &str, object_id: &str) {
        let n = self.next_event;
        self.next_event += 1;
        self.events.push(Event {
            id: format!("evt_{n:08}"),
            name: name.to_string(),
            created_at: Some(self.clock.utc()),
            object_type: Some(object_type.to_string()),
            object_id: Some(object_id.to_string()),
            inquiry_id: Some(inquiry_id.to_string()),
        });
    }

    fn object_mut(&mut self, id: &str, object_id: &str) -> Option<&mut ObjectSpec> {
        self.inquiries
            .get_mut(id)?
            .objects
            .iter_mut()
            .find(|o| o.id == object_id)
    }

    fn find(&self, key: u64) -> Option<(&str, &FileSpec)> {
        self.inquiries
            .values()
            .flat_map(|i| &i.objects)
            .find_map(|o| {
                o.files
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, f)| (o.id.as_str(), f))
            })
    }

    fn issue(&mut self, file_key: u64, filename: &str) -> String {
        let token = format!("tok{}", self.next_token);
        self.next_token += 1;
        self.tokens.insert(
            token.clone(),
            Issued {
                file_key,
                at: self.clock.now(),
                lifetime: self.url_lifetime,
            },
        );
        let name = url::form_urlencoded::byte_serialize(filename.as_bytes()).collect::<String>();
        format!("{FILES_BASE}/{file_key}/{name}?access_token={token}")
    }

    /// The Retrieve-an-Inquiry body, with freshly issued URLs.
    fn retrieve_body(&mut self, id: &str) -> Option<Value> {
        let inq = self.inquiries.get(id)?;
        let objects = inq.objects.clone();
        let data = inquiry_resource(inq, &objects);
        let created = rfc3339(inq.created_at);
        let included: Vec<Value> = objects
            .into_iter()
            .map(
                |ObjectSpec {
                     kind,
                     id: oid,
                     files,
                 }| {
                    let mut attrs = serde_json::Map::new();
                    attrs.insert("status".into(), json!("processed"));
                    attrs.insert("created-at".into(), json!(created));
                    let mut listed = Vec::new();
                    for (key, f) in files {
                        let url = self.issue(key, &f.filename);
                        let size = f.size_known.then_some(f.bytes.len());
                        let entry = json!({"filename": f.filename, "url": url, "byte-size": size});
                        match &f.attr {
                            Some(attr) => {
                                attrs.insert(attr.clone(), entry);
                            }
                            None => listed.push(entry),
                        }
                    }
                    if !listed.is_empty() {
                        attrs.insert("files".into(), Value::Array(listed));
                    }
                    json!({"type": kind, "id": oid, "attributes": attrs})
                },
            )
            .collect();
        Some(json!({"data": data, "included": included}))
    }
}

/// An inquiry resource as `data` of a retrieve (with relationships) or of a list item.
fn inquiry_resource(inq: &InquiryRec, objects: &[ObjectSpec]) -> Value {
    let refs = |family: &str| -> Value {
        objects
            .iter()
            .filter(|o| o.kind.starts_with(family))
            .map(|o| json!({"type": o.kind, "id": o.id}))
            .collect()
    };
    let one = |kind: &str, id: &Option<String>| match id {
        Some(id) => json!({"data": {"type": kind, "id": id}}),
        None => json!({"data": null}),
    };
    json!({
        "type": "inquiry",
        "id": inq.id,
        "attributes": {
            "status": inq.status,
            "reference-id": inq.reference_id,
            "created-at": rfc3339(inq.created_at),
            "updated-at": rfc3339(inq.updated_at),
            "redacted-at": inq.redacted_at.map(rfc3339),
        },
        "relationships": {
            "documents": {"data": refs("document/")},
            "selfies": {"data": refs("selfie/")},
            "verifications": {"data": refs("verification/")},
            "account": one("account", &inq.account_id),
            "inquiry-template": one("inquiry-template", &inq.template_id),
        }
    })
}

fn token_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned())
}

fn matches(filters: &ListFilters, inq: &InquiryRec) -> bool {
    let time = |s: &Option<String>| s.as_deref().and_then(parse_time);
    (filters.status.is_empty()
        || inq
            .status
            .as_ref()
            .is_some_and(|s| filters.status.contains(s)))
        && (filters.inquiry_ids.is_empty() || filters.inquiry_ids.contains(&inq.id))
        && filters
            .account_id
            .as_ref()
            .is_none_or(|a| inq.account_id.as_ref() == Some(a))
        && filters
            .reference_id
            .as_ref()
            .is_none_or(|r| inq.reference_id.as_ref() == Some(r))
        && filters
            .inquiry_template_id
            .as_ref()
            .is_none_or(|t| inq.template_id.as_ref() == Some(t))
        && time(&filters.created_after).is_none_or(|t| inq.created_at >= t)
        && time(&filters.created_before).is_none_or(|t| inq.created_at <= t)
}

#[async_trait]
impl PersonaApi for MemoryApi {
    async fn list_page(
        &self,
        filters: &ListFilters,
        after: Option<&str>,
        page_size: u32,
    ) -> Result<InquiryPage> {
        self.calls.bump(Call::List);
        let context = "list inquiries";
        let body = {
            let st = self.state.lock();
            // Newest first; ties by id, descending, so the order is total.
            let mut items: Vec<(DateTime<Utc>, String, Value)> = st
                .inquiries
                .values()
                .filter(|i| matches(filters, i))
                .map(|i| (i.created_at, i.id.clone(), inquiry_resource(i, &[])))
                .collect();
            let no_filter = filters == &ListFilters::default();
            for (id, at) in st.listing_only.iter().filter(|_| no_filter) {
                let item = json!({"type": "inquiry", "id": id,
                    "attributes": {"status": "completed", "created-at": rfc3339(*at)}});
                items.push((*at, id.clone(), item));
            }
            items.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
            let start = match after {
                Some(cursor) => match items.iter().position(|(_, id, _)| id == cursor) {
                    Some(pos) => pos + 1,
                    None => {
                        return Err(http(Host::Api, 400, format!("{context}: bad cursor")));
                    }
                },
                None => 0,
            };
            let size = (page_size as usize).clamp(1, MAX_PAGE);
            let page: Vec<Value> = items
                .iter()
                .skip(start)
                .take(size)
                .map(|(_, _, v)| v.clone())
                .collect();
            let next = (start + page.len() < items.len()).then(|| {
                let last = &items[start + page.len() - 1].1;
                let cursor: String =
                    url::form_urlencoded::byte_serialize(last.as_bytes()).collect();
                format!("/api/v1/inquiries?page%5Bafter%5D={cursor}&page%5Bsize%5D={size}")
            });
            json!({"data": page, "links": {"prev": null, "next": next}})
        };
        parse_list_page(context, body.to_string().as_bytes())
    }

    async fn search_updated_since(
        &self,
        since: DateTime<Utc>,
        after: Option<&str>,
        page_size: u32,
    ) -> Result<InquiryPage> {
        self.calls.bump(Call::Search);
        let context = "search inquiries";
        let body = {
            let st = self.state.lock();
            if let Some(status) = st.search_refused {
                return Err(http(Host::Api, status, context.into()));
            }
            let visible_until = st.clock.utc() - st.search_lag;
            let since = crate::search::whole_millis(since);
            // Oldest change first; ties by id, so the order is total.
            let mut items: Vec<&InquiryRec> = (st.inquiries.values())
                .filter(|i| i.updated_at >= since && i.updated_at <= visible_until)
                .collect();
            items.sort_by(|a, b| (a.updated_at, &a.id).cmp(&(b.updated_at, &b.id)));
            let start = match after {
                Some(cursor) => match items.iter().position(|i| i.id == cursor) {
                    Some(pos) => pos + 1,
                    None => return Err(http(Host::Api, 400, format!("{context}: bad cursor"))),
                },
                None => 0,
            };
            let size = (page_size as usize).clamp(1, MAX_PAGE);
            let page: Vec<Value> = (items.iter().skip(start).take(size))
                .map(|i| inquiry_resource(i, &[]))
                .collect();
            let next = (start + page.len() < items.len()).then(|| {
                let last = &items[start + page.len() - 1].id;
                let cursor: String =
                    url::form_urlencoded::byte_serialize(last.as_bytes()).collect();
                format!("/api/v1/inquiries/search?page%5Bafter%5D={cursor}&page%5Bsize%5D={size}")
            });
            json!({"data": page, "links": {"prev": null, "next": next}})
        };
        parse_list_page(context, body.to_string().as_bytes())
    }

    async fn retrieve_inquiry(&self, id: &str) -> Result<RetrievedInquiry> {
        self.calls.bump(Call::Retrieve);
        self.build_inquiry(id)
    }

    async fn list_events(
        &self,
        names: &[String],
        from: &EventsFrom,
        page_size: u32,
    ) -> Result<EventPage> {
        self.calls.bump(Call::Events);
        let st = self.state.lock();
        // Newest first, as the endpoint answers; positions are in this order.
        let newest_first: Vec<&Event> = st.events.iter().rev().collect();
        let position = |id: &str| {
            newest_first
                .iter()
                .position(|e| e.id == id)
                .ok_or_else(|| Error::CursorGone {
                    context: "list events".into(),
                })
        };
        let matching: Vec<usize> = (0..newest_first.len())
            .filter(|&i| names.is_empty() || names.contains(&newest_first[i].name))
            .collect();
        let size = (page_size as usize).clamp(1, MAX_PAGE);
        let page: Vec<usize> = match from {
            EventsFrom::Newest => matching.iter().copied().take(size).collect(),
            EventsFrom::After(id) => {
                let pos = position(id)?;
                matching
                    .iter()
                    .copied()
                    .filter(|&i| i > pos)
                    .take(size)
                    .collect()
            }
            EventsFrom::Before(id) => {
                let pos = position(id)?;
                let newer: Vec<usize> = matching.iter().copied().filter(|&i| i < pos).collect();
                newer[newer.len().saturating_sub(size)..].to_vec()
            }
        };
        let has_older = page
            .last()
            .is_some_and(|&p| matching.iter().any(|&i| i > p));
        let has_newer = page
            .first()
            .is_some_and(|&p| matching.iter().any(|&i| i < p));
        Ok(EventPage {
            events: page.iter().map(|&i| newest_first[i].clone()).collect(),
            has_newer,
            has_older,
        })
    }

    async fn file_size(&self, url: &str) -> Result<u64> {
        self.calls.bump(Call::Head);
        let (_, bytes) = self.resolve(Call::Head, url)?;
        Ok(bytes.len() as u64)
    }

    async fn download(
        &self,
        url: &str,
        offset: u64,
        out: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64> {
        self.write_range(Call::Download, url, offset, None, out)
            .await
    }

    async fn download_range(
        &self,
        url: &str,
        start: u64,
        end: u64,
        out: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64> {
        self.write_range(Call::DownloadRange, url, start, Some(end), out)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Section;

    fn api() -> MemoryApi {
        let api = MemoryApi::new();
        api.add_inquiry(
            InquirySpec::new("inq_a")
                .document(
                    "doc_1",
                    [
                        FileSpec::photo("front-photo", "front.jpg", b"FRONT".to_vec()),
                        FileSpec::photo("back-photo", "back.png", b"BACK".to_vec()).without_size(),
                    ],
                )
                .selfie(
                    "self_1",
                    [FileSpec::photo("center-photo", "c.jpg", vec![7u8; 200_000])],
                ),
        );
        api
    }

    #[tokio::test]
    async fn retrieve_maps_files_like_production() {
        let api = api();
        let inq = api.retrieve_inquiry("inq_a").await.unwrap();
        let files = files_of(&inq);
        let names: Vec<_> = files.iter().map(|f| (f.section, f.name.as_str())).collect();
        assert_eq!(
            names,
            vec![
                (Section::Document, "doc_1-front-photo.jpg"),
                (Section::Document, "doc_1-back-photo.png"),
                (Section::Selfie, "self_1-center-photo.jpg"),
            ]
        );
        assert_eq!(files[0].size, Some(5));
        assert_eq!(files[1].size, None);
        assert_eq!(api.calls(Call::Retrieve), 1);
        assert_eq!(api.file_size(&files[1].url).await.unwrap(), 4);
        assert_eq!(api.calls(Call::Head), 1);
        let e = api.retrieve_inquiry("inq_nope").await.unwrap_err();
        assert_eq!(e.status(), Some(404), "{e}");
    }

    #[tokio::test]
    async fn downloads_are_ranged_and_recorded() {
        let api = api();
        let files = api.files_of("inq_a");
        let mut out = Vec::new();
        let n = api.download(&files[2].url, 1000, &mut out).await.unwrap();
        assert_eq!(n, 199_000);
        assert_eq!(out, vec![7u8; 199_000]);
        let mut part = Vec::new();
        api.download_range(&files[0].url, 1, 3, &mut part)
            .await
            .unwrap();
        assert_eq!(part, b"RO");
        let log = api.fetches();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].file, "self_1/center-photo");
        assert_eq!((log[0].start, log[0].end), (1000, None));
        assert_eq!(
            (log[1].call, log[1].start, log[1].end),
            (Call::DownloadRange, 1, Some(3))
        );
        assert_eq!(api.calls(Call::Retrieve), 0, "files_of counts no call");
    }

    #[tokio::test]
    async fn expired_and_unknown_urls_are_refused_like_the_files_host() {
        let api = api();
        let clock = Clock::manual();
        api.set_clock(clock.clone());
        api.set_url_lifetime(Duration::from_millis(30));
        let url = api.files_of("inq_a")[0].url.clone();
        clock.advance(Duration::from_millis(50));
        let e = api.download(&url, 0, &mut Vec::new()).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Http {
                    host: Host::Files,
                    status: 403,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.is_url_expired());
        let token = token_of(&url).unwrap();
        assert!(!e.to_string().contains(&token), "token in {e}");
        let forged = url.replace("access_token=tok", "access_token=forged");
        assert!(api.file_size(&forged).await.unwrap_err().is_url_expired());
        assert_eq!(api.refused_urls(), 2);
    }

    #[tokio::test]
    async fn changes_at_runtime_show_and_old_urls_go_404() {
        let api = api();
        let old = api.files_of("inq_a");
        assert!(api.change_file("inq_a", "doc_1", "front-photo", b"NEW FRONT".to_vec()));
        let e = api
            .download(&old[0].url, 0, &mut Vec::new())
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(404));
        assert_eq!(api.files_of("inq_a")[0].size, Some(9));
        assert_eq!(
            api.bytes_of("inq_a", "doc_1-front-photo.jpg")
                .unwrap()
                .as_slice(),
            b"NEW FRONT"
        );
        assert!(api.remove_file("inq_a", "doc_1", "back-photo"));
        assert!(api.add_file(
            "inq_a",
            "doc_2",
            FileSpec::file("scan.pdf", b"%PDF".to_vec())
        ));
        let names: Vec<_> = api.files_of("inq_a").into_iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "doc_1-front-photo.jpg",
                "doc_2-scan.pdf",
                "self_1-center-photo.jpg"
            ]
        );
        assert!(api.redact("inq_a"));
        let inq = api.retrieve_inquiry("inq_a").await.unwrap();
        assert!(inq.redacted_at.is_some());
        assert!(files_of(&inq).is_empty());
        let e = api
            .download(&old[2].url, 0, &mut Vec::new())
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(404));
    }

    #[tokio::test]
    async fn listing_pages_filters_and_cursors() {
        let api = MemoryApi::new();
        for i in 0..230 {
            let status = if i % 2 == 0 { "approved" } else { "declined" };
            api.add_inquiry(
                InquirySpec::new(&format!("inq_{i:04}"))
                    .status(status)
                    .created_at(&format!("2024-01-01T00:{:02}:{:02}Z", i / 60, i % 60)),
            );
        }
        let all = crate::list_all(&api, &ListFilters::default())
            .await
            .unwrap();
        assert_eq!(all.len(), 230);
        assert_eq!(all[0].id, "inq_0229", "newest first");
        assert_eq!(all[229].id, "inq_0000");
        assert_eq!(api.calls(Call::List), 3);
        let approved = ListFilters {
            status: vec!["approved".into()],
            created_after: Some("2024-01-01T00:01:00Z".into()),
            ..Default::default()
        };
        let got = crate::list_all(&api, &approved).await.unwrap();
        assert_eq!(got.len(), 85); // even i in 60..230
        assert!(got.iter().all(|s| s.status.as_deref() == Some("approved")));
        let page = api
            .list_page(&ListFilters::default(), None, 500)
            .await
            .unwrap();
        assert_eq!(page.inquiries.len(), 100, "pages hold at most 100");
        assert_eq!(page.next_after.as_deref(), Some("inq_0130"));
    }
}
