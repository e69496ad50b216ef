//! What the running server shares between its handlers and the `MockServer` handle.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use chrono::{DateTime, Utc};

use super::data::{Dataset, MockFile, MockInquiry};
use super::events::{Events, Retention};
use super::generate::{Generated, Generator};
use super::token::Signer;
use super::{MockStats, RuntimeConfig};

/// Counters behind `GET /_mock/stats`.
#[derive(Default)]
pub struct Stats {
    pub api_requests: AtomicU64,
    pub api_list: AtomicU64,
    pub api_retrieve: AtomicU64,
    pub api_delete: AtomicU64,
    pub api_events: AtomicU64,
    pub api_search: AtomicU64,
    pub file_get: AtomicU64,
    pub file_head: AtomicU64,
    pub file_bytes: AtomicU64,
    pub file_expired: AtomicU64,
    pub file_forged: AtomicU64,
    pub rate_limited: AtomicU64,
    pub files_auth_header: AtomicU64,
    pub unauthorized: AtomicU64,
    pub injected_failures: AtomicU64,
    pub truncated: AtomicU64,
    pub resets: AtomicU64,
    pub webhooks_delivered: AtomicU64,
    pub webhooks_failed: AtomicU64,
    pub clients: Mutex<std::collections::BTreeMap<String, super::ClientCounts>>,
}

pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Tags beyond this many are counted together, so a client cannot grow the map without end.
const MAX_CLIENT_TAGS: usize = 64;

/// The tag a request is counted under: `X-Mock-Client` when it is a short word, else
/// `untagged` (or `other` when it is not one, or past [`MAX_CLIENT_TAGS`]).
pub fn client_tag(header: Option<&str>) -> String {
    match header.map(str::trim) {
        None | Some("") => "untagged".into(),
        Some(tag)
            if tag.len() <= 32
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            tag.to_string()
        }
        Some(_) => "other".into(),
    }
}

impl Stats {
    /// Count one authenticated API request of client `tag`: inside the limit or refused.
    pub fn client_request(&self, tag: String, refused: bool) {
        let mut clients = self.clients.lock();
        let tag = if clients.len() >= MAX_CLIENT_TAGS && !clients.contains_key(&tag) {
            "other".to_string()
        } else {
            tag
        };
        let counts = clients.entry(tag).or_default();
        if refused {
            counts.rate_limited += 1;
        } else {
            counts.requests += 1;
        }
    }

    pub fn snapshot(&self) -> MockStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MockStats {
            api_requests: get(&self.api_requests),
            api_list: get(&self.api_list),
            api_retrieve: get(&self.api_retrieve),
            api_delete: get(&self.api_delete),
            api_events: get(&self.api_events),
            api_search: get(&self.api_search),
            file_get: get(&self.file_get),
            file_head: get(&self.file_head),
            file_bytes: get(&self.file_bytes),
            file_expired: get(&self.file_expired),
            file_forged: get(&self.file_forged),
            rate_limited: get(&self.rate_limited),
            files_auth_header: get(&self.files_auth_header),
            unauthorized: get(&self.unauthorized),
            injected_failures: get(&self.injected_failures),
            truncated: get(&self.truncated),
            resets: get(&self.resets),
            webhooks_delivered: get(&self.webhooks_delivered),
            webhooks_failed: get(&self.webhooks_failed),
            clients: self.clients.lock().clone(),
            ..MockStats::default()
        }
    }
}

/// Generated inquiries kept built, so that a retrieve and the downloads after it build each
/// inquiry once.
const GENERATED_CACHE: usize = 512;

/// A generated inquiry as built, shared by the requests that use it.
#[derive(Clone)]
struct Built {
    inquiry: Arc<MockInquiry>,
    files: Arc<HashMap<String, MockFile>>,
}

/// One place in the newest-first order of all inquiries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// `materialized[j]`
    Materialized(usize),
    /// Generated inquiry `index`.
    Generated(u64),
}

/// Every inquiry the server serves: the generated ones, derived from their index when asked,
/// merged by `created-at` with the materialized ones (fixtures, hand-built datasets,
/// `--large-file`, and those added while the server runs), plus what changed since start.
pub struct Store {
    generator: Generator,
    /// Newest first, each with the number of generated inquiries that come before it.
    materialized: Vec<(Arc<MockInquiry>, u64)>,
    /// Materialized inquiry id → index in `materialized`.
    by_id: HashMap<String, usize>,
    /// Generated inquiries changed since start (redacted, a document added), or replaced by a
    /// fixture with the same id.
    changed: HashMap<u64, Arc<MockInquiry>>,
    /// Included object id → id of the materialized or changed inquiry that holds it.
    objects: HashMap<String, String>,
    /// Files of materialized inquiries and of documents added at runtime.
    files: HashMap<String, MockFile>,
    /// Keys of files deleted by redaction: their tokens still verify, the bytes are gone.
    pub removed: HashSet<String>,
    cache: Mutex<lru::LruCache<u64, Built>>,
    /// Changes made so far (`POST /_mock/...`); each one's ids come from its number.
    pub changes: u64,
    /// What search sees (earlier versions of changed inquiries, for `search_lag`).
    search: crate::search::SearchIndex,
}

/// What the list filters look at.
pub struct Summary {
    pub status: String,
    pub reference_id: Option<String>,
    pub account_id: Option<String>,
    /// `inquiry-template` or legacy `template` id.
    pub template_id: Option<String>,
}

impl Summary {
    fn of(inquiry: &MockInquiry) -> Summary {
        let attr = |name: &str| inquiry.data["attributes"][name].as_str().map(String::from);
        let related = |name: &str| {
            inquiry.data["relationships"][name]["data"]["id"]
                .as_str()
                .map(String::from)
        };
        Summary {
            status: attr("status").unwrap_or_default(),
            reference_id: attr("reference-id"),
            account_id: related("account"),
            template_id: related("inquiry-template").or_else(|| related("template")),
        }
    }
}

impl Store {
    pub fn new(generator: Generator, dataset: Dataset) -> Store {
        let mut store = Store {
            generator,
            materialized: Vec::new(),
            by_id: HashMap::new(),
            changed: HashMap::new(),
            objects: HashMap::new(),
            files: dataset.files,
            removed: HashSet::new(),
            cache: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(GENERATED_CACHE).expect("non-zero"),
            )),
            changes: 0,
            search: Default::default(),
        };
        let mut inquiries = dataset.inquiries;
        inquiries.sort_by_key(|i| std::cmp::Reverse(i.created_at));
        for inquiry in inquiries {
            store.register_objects(&inquiry);
            match store.generator.index_of(&inquiry.id) {
                // A fixture with a generated inquiry's id takes its place.
                Some(index) => {
                    store.changed.insert(index, Arc::new(inquiry));
                }
                None => {
                    let before = store.generator.newer_than(inquiry.created_at);
                    store.materialized.push((Arc::new(inquiry), before));
                }
            }
        }
        store.reindex();
        store
    }

    pub fn generator(&self) -> &Generator {
        &self.generator
    }

    fn reindex(&mut self) {
        self.by_id = (self.materialized.iter().enumerate())
            .map(|(j, (inquiry, _))| (inquiry.id.clone(), j))
            .collect();
    }

    fn register_objects(&mut self, inquiry: &MockInquiry) {
        for object in &inquiry.included {
            if let Some(id) = object.get("id").and_then(|v| v.as_str()) {
                self.objects
                    .entry(id.to_string())
                    .or_insert_with(|| inquiry.id.clone());
            }
        }
    }

    /// Number of inquiries.
    pub fn len(&self) -> u64 {
        self.generator.count() + self.materialized.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Place of `materialized[j]` in the whole order.
    fn materialized_position(&self, j: usize) -> u64 {
        j as u64 + self.materialized[j].1
    }

    fn slot(&self, position: u64) -> Slot {
        // Materialized entries strictly before `position`.
        let (mut lo, mut hi) = (0, self.materialized.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.materialized_position(mid) < position {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo < self.materialized.len() && self.materialized_position(lo) == position {
            Slot::Materialized(lo)
        } else {
            Slot::Generated(position - lo as u64)
        }
    }

    /// Place of an inquiry in the newest-first order.
    pub fn position(&self, id: &str) -> Option<u64> {
        if let Some(&j) = self.by_id.get(id) {
            return Some(self.materialized_position(j));
        }
        let index = self.generator.index_of(id)?;
        if self.generator.inquiry_id(index) != id {
            return None; // an object id, not an inquiry id
        }
        let before = self.materialized.partition_point(|(_, b)| *b <= index);
        Some(index + before as u64)
    }

    fn generated(&self, index: u64) -> Built {
        if let Some(hit) = self.cache.lock().get(&index) {
            return hit.clone();
        }
        // Built outside the lock: requests for other inquiries need not wait.
        let Generated { inquiry, files } = self.generator.inquiry(index);
        let built = Built {
            inquiry: Arc::new(inquiry),
            files: Arc::new(files),
        };
        self.cache.lock().put(index, built.clone());
        built
    }

    /// The inquiry at `position` (`< len()`).
    pub fn at(&self, position: u64) -> Arc<MockInquiry> {
        match self.slot(position) {
            Slot::Materialized(j) => self.materialized[j].0.clone(),
            Slot::Generated(index) => match self.changed.get(&index) {
                Some(changed) => changed.clone(),
                None => self.generated(index).inquiry,
            },
        }
    }

    pub fn id_at(&self, position: u64) -> String {
        match self.slot(position) {
            Slot::Materialized(j) => self.materialized[j].0.id.clone(),
            Slot::Generated(index) => match self.changed.get(&index) {
                Some(changed) => changed.id.clone(),
                None => self.generator.inquiry_id(index),
            },
        }
    }

    pub fn created_at(&self, position: u64) -> DateTime<Utc> {
        match self.slot(position) {
            Slot::Materialized(j) => self.materialized[j].0.created_at,
            Slot::Generated(index) => self.generator.created_at(index),
        }
    }

    /// What the list filters need, without building a generated inquiry.
    pub fn summary(&self, position: u64) -> Summary {
        match self.slot(position) {
            Slot::Materialized(j) => Summary::of(&self.materialized[j].0),
            Slot::Generated(index) => match self.changed.get(&index) {
                Some(changed) => Summary::of(changed),
                None => {
                    let s = self.generator.summary(index);
                    Summary {
                        status: s.status.to_string(),
                        reference_id: s.reference_id,
                        account_id: s.account.map(|a| self.generator.account_id(a)),
                        template_id: Some(s.template_id),
                    }
                }
            },
        }
    }

    pub fn inquiry(&self, id: &str) -> Option<Arc<MockInquiry>> {
        self.position(id).map(|p| self.at(p))
    }

    /// Change inquiry `id` with `change`; `None` when there is no such inquiry.
    pub fn update<R>(&mut self, id: &str, change: impl FnOnce(&mut MockInquiry) -> R) -> Option<R> {
        let position = self.position(id)?;
        let previous = self.at(position);
        let result = match self.slot(position) {
            Slot::Materialized(j) => change(Arc::make_mut(&mut self.materialized[j].0)),
            Slot::Generated(index) => {
                let mut inquiry = match self.changed.get(&index) {
                    Some(changed) => (**changed).clone(),
                    None => (*self.generated(index).inquiry).clone(),
                };
                let result = change(&mut inquiry);
                self.changed.insert(index, Arc::new(inquiry));
                result
            }
        };
        let inquiry = self.at(position);
        self.register_objects(&inquiry);
        self.search
            .record(Some(&previous), &inquiry, now_ms() as i64);
        Some(result)
    }

    /// Add an inquiry newer than every other, with its files.
    pub fn insert(&mut self, inquiry: MockInquiry, files: HashMap<String, MockFile>) {
        self.files.extend(files);
        self.register_objects(&inquiry);
        let before = self.generator.newer_than(inquiry.created_at);
        let j = self
            .materialized
            .partition_point(|(m, _)| m.created_at > inquiry.created_at);
        let inquiry = Arc::new(inquiry);
        self.search.record(None, &inquiry, now_ms() as i64);
        self.materialized.insert(j, (inquiry, before));
        self.reindex();
    }

    /// Add files (of a document added at runtime).
    pub fn add_files(&mut self, files: HashMap<String, MockFile>) {
        self.files.extend(files);
    }

    /// An included object by id, with the inquiry that holds it.
    pub fn object(&self, id: &str) -> Option<(Arc<MockInquiry>, serde_json::Value)> {
        let inquiry = match self.objects.get(id) {
            Some(owner) => self.inquiry(owner)?,
            None => {
                let index = self.generator.index_of(id)?;
                match self.changed.get(&index) {
                    Some(changed) => changed.clone(),
                    None => self.generated(index).inquiry,
                }
            }
        };
        let object = inquiry
            .included
            .iter()
            .find(|o| o.get("id").and_then(|v| v.as_str()) == Some(id))?
            .clone();
        Some((inquiry, object))
    }

    pub(crate) fn search_index(&self) -> &crate::search::SearchIndex {
        &self.search
    }

    /// Place of generated inquiry `index` in the whole order.
    pub(crate) fn generated_position(&self, index: u64) -> u64 {
        index + self.materialized.partition_point(|(_, b)| *b <= index) as u64
    }

    /// Whether generated inquiry `index` was changed (or replaced by a fixture).
    pub(crate) fn generated_changed(&self, index: u64) -> bool {
        self.changed.contains_key(&index)
    }

    /// Every inquiry that is held rather than computed (materialized, changed), with its place.
    pub(crate) fn held_inquiries(&self) -> Vec<(u64, Arc<MockInquiry>)> {
        let materialized = (0..self.materialized.len()).map(|j| {
            (
                self.materialized_position(j),
                self.materialized[j].0.clone(),
            )
        });
        let changed = (self.changed.iter())
            .map(|(&i, inquiry)| (self.generated_position(i), inquiry.clone()));
        materialized.chain(changed).collect()
    }

    /// A file that can still be served.
    pub fn file(&self, key: &str) -> Option<MockFile> {
        if self.removed.contains(key) {
            return None;
        }
        if let Some(file) = self.files.get(key) {
            return Some(file.clone());
        }
        // A generated file's key starts with the id of the object that holds it.
        let owner = key.split('-').next()?;
        let index = self.generator.index_of(owner)?;
        self.generated(index).files.get(key).cloned()
    }
}

/// A fixed 60-second window shared by all API requests (as Persona's per-environment budget).
pub struct RateWindow {
    started: Instant,
    used: u32,
}

/// What the rate limiter said about one request, and what the `RateLimit-*` headers show.
#[derive(Debug, Clone, Copy)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
}

/// Persona's window: a minute.
pub const MINUTE: Duration = Duration::from_secs(60);
/// What the headers report while the limit is off (0): a budget no test will reach.
pub const UNLIMITED_REPORTED: u32 = 1_000_000;

impl RateWindow {
    pub fn new() -> RateWindow {
        RateWindow {
            started: Instant::now(),
            used: 0,
        }
    }

    /// Count one request (when `take`) against `limit` per `window` and report the budget.
    pub fn check(&mut self, limit: u32, window: Duration, take: bool) -> RateDecision {
        self.check_at(Instant::now(), limit, window, take)
    }

    /// `check` at the time `now`.
    fn check_at(&mut self, now: Instant, limit: u32, window: Duration, take: bool) -> RateDecision {
        if now.duration_since(self.started) >= window {
            self.started = now;
            self.used = 0;
        }
        let reset_secs = (window.saturating_sub(now.duration_since(self.started)))
            .as_secs_f64()
            .ceil() as u64;
        let effective = if limit == 0 {
            UNLIMITED_REPORTED
        } else {
            limit
        };
        let allowed = limit == 0 || self.used < limit;
        if take && allowed {
            self.used = self.used.saturating_add(1);
        }
        RateDecision {
            allowed,
            limit: effective,
            remaining: effective.saturating_sub(self.used),
            reset_secs,
        }
    }
}

/// Everything the handlers share.
pub struct State {
    pub api_key: String,
    /// `http://127.0.0.1:PORT/api/v1`
    pub api_base: String,
    /// `http://127.0.0.1:PORT`
    pub files_base: String,
    pub signer: Signer,
    pub stats: Stats,
    pub runtime: RwLock<RuntimeConfig>,
    pub store: RwLock<Store>,
    pub rate: Mutex<RateWindow>,
    /// Test switches (in-process only): see `MockServer::set_files_down` and `set_key_revoked`.
    pub files_down: AtomicBool,
    pub key_revoked: AtomicBool,
    /// How far the signed URLs' clock is ahead of real time (`MockServer::advance_url_clock`).
    pub url_clock_ahead_ms: AtomicU64,
    /// Every access token minted, so tests can prove none leaks (capped, oldest kept).
    pub issued_tokens: Mutex<Vec<String>>,
    pub events: Events,
    /// Webhook signing secrets (two during a rotation); never shown by `/_mock/config`.
    pub webhook_secrets: RwLock<Vec<String>>,
    /// Organization and environment ids sent on every API answer.
    pub identity: (String, String),
    /// Served files' bytes kept in memory.
    pub(crate) memo: super::memo::ChunkMemo,
}

/// Enough for any test run; past it, tokens are no longer recorded.
pub const MAX_RECORDED_TOKENS: usize = 200_000;

impl State {
    pub fn runtime(&self) -> RuntimeConfig {
        self.runtime.read().clone()
    }

    /// The time signed URLs are minted and checked at: real time, plus what a test moved
    /// their clock ahead.
    pub fn url_now_ms(&self) -> u64 {
        now_ms().saturating_add(self.url_clock_ahead_ms.load(Ordering::Relaxed))
    }

    /// The events retention bound now (0 turns a bound off).
    pub fn retention(&self) -> Retention {
        let runtime = self.runtime.read();
        Retention {
            max_count: if runtime.events_max_count == 0 {
                usize::MAX
            } else {
                runtime.events_max_count
            },
            max_age: if runtime.events_max_age_ms == 0 {
                Duration::MAX
            } else {
                Duration::from_millis(runtime.events_max_age_ms)
            },
        }
    }

    pub fn stats(&self) -> MockStats {
        let (events, events_dropped) = self.events.counts();
        MockStats {
            events,
            events_dropped,
            ..self.stats.snapshot()
        }
    }

    pub fn record_token(&self, token: &str) {
        let mut tokens = self.issued_tokens.lock();
        if tokens.len() < MAX_RECORDED_TOKENS {
            tokens.push(token.to_string());
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_window_refuses_past_the_budget() {
        let mut w = RateWindow::new();
        assert!(w.check(2, MINUTE, true).allowed);
        let second = w.check(2, MINUTE, true);
        assert!(second.allowed);
        assert_eq!(second.remaining, 0);
        let third = w.check(2, MINUTE, true);
        assert!(!third.allowed);
        assert!(third.reset_secs <= 60 && third.reset_secs >= 1);
        assert!(w.check(0, MINUTE, true).allowed, "0 turns the limit off");
    }

    #[test]
    fn a_short_window_resets_sooner() {
        let mut w = RateWindow::new();
        let window = Duration::from_millis(300);
        assert!(w.check(1, window, true).allowed);
        let refused = w.check(1, window, true);
        assert!(!refused.allowed);
        assert_eq!(refused.reset_secs, 1, "rounded up to a whole second");
        let later = Instant::now() + window;
        assert!(w.check_at(later, 1, window, true).allowed, "a new window");
    }

    #[test]
    fn clients_are_counted_by_tag_and_bounded() {
        assert_eq!(client_tag(None), "untagged");
        assert_eq!(client_tag(Some(" backend ")), "backend");
        assert_eq!(client_tag(Some("no spaces please")), "other");
        let stats = Stats::default();
        stats.client_request("backend".into(), false);
        stats.client_request("backend".into(), true);
        for i in 0..100 {
            stats.client_request(format!("t{i}"), false);
        }
        let clients = stats.snapshot().clients;
        assert_eq!(clients["backend"].requests, 1);
        assert_eq!(clients["backend"].rate_limited, 1);
        assert_eq!(
            clients.len(),
            MAX_CLIENT_TAGS + 1,
            "the rest counted as other"
        );
        assert!(clients["other"].requests > 0);
    }
}
