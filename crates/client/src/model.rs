//! Parsing Persona's JSON:API bodies into the shared types, tolerant of everything the spec
//! lets vary (unknown types, statuses and fields, empty relationships, missing sizes) and
//! strict about what makes a body unusable (not JSON, no `data`, wrong types), which becomes
//! `Error::InvalidResponse` — never a panic.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{InquiryPage, InquirySummary, RetrievedInquiry};
use crate::{Error, Result};

/// One object of `included[]`. Every type is kept, known or not; typed accessors read the
/// attributes personafs uses. Debug output redacts the URLs inside the attributes.
#[derive(Clone, PartialEq)]
pub struct IncludedObject {
    /// The JSON:API `type`, e.g. `document/government-id`, `verification/selfie`.
    pub kind: String,
    pub id: String,
    /// `attributes` as received (`null` when absent).
    pub attributes: Value,
}

impl std::fmt::Debug for IncludedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncludedObject")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("attributes", &crate::redact::redact_json(&self.attributes))
            .finish()
    }
}

/// The broad family of an included object, from the prefix of its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectFamily {
    Document,
    Selfie,
    Verification,
    Other,
}

impl IncludedObject {
    pub fn family(&self) -> ObjectFamily {
        match self.kind.split_once('/').map(|(prefix, _)| prefix) {
            Some("document") => ObjectFamily::Document,
            Some("selfie") => ObjectFamily::Selfie,
            Some("verification") => ObjectFamily::Verification,
            _ => ObjectFamily::Other,
        }
    }

    /// An attribute, `None` when absent or `null`.
    pub fn attr(&self, name: &str) -> Option<&Value> {
        self.attributes.get(name).filter(|v| !v.is_null())
    }

    pub fn attr_str(&self, name: &str) -> Option<&str> {
        self.attr(name).and_then(Value::as_str)
    }

    /// A timestamp attribute; unparseable values count as absent.
    pub fn attr_time(&self, name: &str) -> Option<DateTime<Utc>> {
        self.attr_str(name).and_then(parse_time)
    }

    pub fn status(&self) -> Option<&str> {
        self.attr_str("status")
    }

    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.attr_time("created-at")
    }

    pub fn processed_at(&self) -> Option<DateTime<Utc>> {
        self.attr_time("processed-at")
    }
}

/// A `{type, id}` reference from a relationship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    pub kind: String,
    pub id: String,
}

/// The references of a relationship object. `{"data": null}`, `{"data": {}}`, `{"data": []}`,
/// a missing `data` and entries without `type`/`id` all mean "nothing".
pub fn relationship_refs(relationship: &Value) -> Vec<ResourceRef> {
    let one = |v: &Value| -> Option<ResourceRef> {
        Some(ResourceRef {
            kind: v.get("type")?.as_str()?.to_string(),
            id: v.get("id")?.as_str()?.to_string(),
        })
    };
    match relationship.get("data") {
        Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(v @ Value::Object(_)) => one(v).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// RFC 3339 (what Persona sends), e.g. `2023-12-20T00:47:09.000Z`.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn invalid(context: &str, message: impl Into<String>) -> Error {
    Error::InvalidResponse {
        context: context.to_string(),
        message: message.into(),
    }
}

/// The body as JSON, or a clear error that says what came instead (never the body itself:
/// it might contain a token).
pub fn parse_json_body(context: &str, body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|e| {
        let start = String::from_utf8_lossy(&body[..body.len().min(64)]).to_ascii_lowercase();
        let start = start.trim_start();
        if start.starts_with("<!doctype") || start.starts_with("<html") || start.starts_with('<') {
            invalid(context, "expected JSON, got an HTML page")
        } else if body.is_empty() {
            invalid(context, "expected JSON, got an empty body")
        } else {
            invalid(context, format!("malformed JSON ({e})"))
        }
    })
}

/// Attributes of a resource: absent or `null` → empty object; anything else but an object → error.
fn attributes_of<'a>(context: &str, resource: &'a Value) -> Result<Option<&'a Map<String, Value>>> {
    match resource.get("attributes") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(invalid(context, "`attributes` is not an object")),
    }
}

fn required_str<'a>(context: &str, v: &'a Value, field: &str, what: &str) -> Result<&'a str> {
    match v.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(invalid(context, format!("{what} has an empty `{field}`"))),
        Some(_) => Err(invalid(
            context,
            format!("{what} `{field}` is not a string"),
        )),
        None => Err(invalid(context, format!("{what} has no `{field}`"))),
    }
}

fn opt_time(attrs: Option<&Map<String, Value>>, name: &str) -> Option<DateTime<Utc>> {
    attrs?.get(name)?.as_str().and_then(parse_time)
}

fn opt_string(attrs: Option<&Map<String, Value>>, name: &str) -> Option<String> {
    attrs?.get(name)?.as_str().map(str::to_string)
}

/// One inquiry resource (a list item or the `data` of a retrieve).
fn summary_of(context: &str, resource: &Value) -> Result<InquirySummary> {
    if !resource.is_object() {
        return Err(invalid(context, "an inquiry is not a JSON object"));
    }
    let id = required_str(context, resource, "id", "an inquiry")?;
    if let Some(kind) = resource.get("type")
        && kind.as_str() != Some("inquiry")
    {
        return Err(invalid(
            context,
            "a `data` resource is not of type `inquiry`",
        ));
    }
    let attrs = attributes_of(context, resource)?;
    Ok(InquirySummary {
        id: id.to_string(),
        status: opt_string(attrs, "status"),
        created_at: opt_time(attrs, "created-at"),
        updated_at: opt_time(attrs, "updated-at"),
        redacted_at: opt_time(attrs, "redacted-at"),
        reference_id: opt_string(attrs, "reference-id"),
        account_id: related_id(resource, &["account"]),
        template_id: related_id(resource, &["inquiry-template", "template"]),
    })
}

/// The id a to-one relationship points to: the first of `names` that has one.
fn related_id(resource: &Value, names: &[&str]) -> Option<String> {
    let relationships = resource.get("relationships")?;
    names.iter().find_map(|name| {
        relationships
            .get(*name)?
            .get("data")?
            .get("id")?
            .as_str()
            .filter(|id| !id.is_empty())
            .map(str::to_string)
    })
}

/// A Retrieve-an-Inquiry body.
pub fn parse_inquiry(
    context: &str,
    body: &[u8],
    fetched_at: SystemTime,
) -> Result<RetrievedInquiry> {
    let mut raw = parse_json_body(context, body)?;
    let cut = crate::body::cut_long_strings(&mut raw, crate::body::MAX_STRING_BYTES);
    if cut > 0 {
        tracing::warn!(
            "{context}: {cut} strings longer than {} were cut",
            crate::body::human_bytes(crate::body::MAX_STRING_BYTES as u64)
        );
    }
    let data = match raw.get("data") {
        Some(d @ Value::Object(_)) => d,
        Some(Value::Null) | None => return Err(invalid(context, "the body has no `data`")),
        Some(_) => return Err(invalid(context, "`data` is not an object")),
    };
    let summary = summary_of(context, data)?;
    let included = match raw.get("included") {
        None | Some(Value::Null) => Vec::new(),
        // One odd entry costs that entry, not the inquiry.
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| {
                included_of(item)
                    .inspect_err(|why| {
                        tracing::warn!("{context}: skipping `included` entry #{index}: {why}");
                    })
                    .ok()
            })
            .collect(),
        Some(_) => return Err(invalid(context, "`included` is not an array")),
    };
    Ok(RetrievedInquiry {
        id: summary.id,
        status: summary.status,
        created_at: summary.created_at,
        updated_at: summary.updated_at,
        redacted_at: summary.redacted_at,
        included,
        raw,
        fetched_at,
    })
}

/// One `included` entry, or what is wrong with it (safe to log: no values, only shapes).
fn included_of(item: &Value) -> std::result::Result<IncludedObject, String> {
    if !item.is_object() {
        return Err("it is not an object".into());
    }
    let field = |name: &str| match item.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(format!("its `{name}` is empty")),
        Some(_) => Err(format!("its `{name}` is not a string")),
        None => Err(format!("it has no `{name}`")),
    };
    let kind = field("type")?;
    let id = field("id")?;
    let attributes = match item.get("attributes") {
        None | Some(Value::Null) => Value::Null,
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(format!("the `attributes` of {id:?} are not an object")),
    };
    Ok(IncludedObject {
        kind,
        id,
        attributes,
    })
}

/// Why `id` is not a Persona inquiry id (`inq_` then at most 60 more of `[A-Za-z0-9_-]`),
/// `None` when it is one. Such an id is never used in a path, a name or a request.
pub fn inquiry_id_problem(id: &str) -> Option<&'static str> {
    if !id.starts_with("inq_") {
        Some("it does not start with inq_")
    } else if id.len() > MAX_INQUIRY_ID_LEN {
        Some("it is longer than 64 characters")
    } else if id.len() == 4 {
        Some("nothing follows inq_")
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Some("it has characters other than letters, digits, _ and -")
    } else {
        None
    }
}

/// The longest inquiry id accepted.
pub const MAX_INQUIRY_ID_LEN: usize = 64;

/// A List-all-Inquiries body. The next cursor comes from `links.next` (its `page[after]`),
/// else, when `links.next` is set but carries no cursor, from the last id of the page.
pub fn parse_list_page(context: &str, body: &[u8]) -> Result<InquiryPage> {
    let raw = parse_json_body(context, body)?;
    let items = match raw.get("data") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => return Err(invalid(context, "the body has no `data`")),
        Some(_) => return Err(invalid(context, "`data` is not an array")),
    };
    let inquiries = items
        .iter()
        .map(|item| summary_of(context, item))
        .collect::<Result<Vec<_>>>()?;
    let next = match raw.get("links").and_then(|l| l.get("next")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(invalid(context, "`links.next` is not a string")),
    };
    let next_after = match next {
        None => None,
        Some(_) if inquiries.is_empty() => None,
        Some(link) => Some(
            cursor_from_link(link).unwrap_or_else(|| inquiries[inquiries.len() - 1].id.clone()),
        ),
    };
    Ok(InquiryPage {
        inquiries,
        next_after,
    })
}

/// `page[after]` from a next link, which may be relative (`/api/v1/inquiries?page%5Bafter%5D=…`).
pub fn cursor_from_link(link: &str) -> Option<String> {
    let query = link.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "page[after]")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// Persona's error body: `{"errors": [{"title": "…", "details": "…"}]}` → first title, details.
pub fn error_title_details(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    let first = v.get("errors").and_then(|e| e.get(0));
    let field = |name: &str| {
        first
            .and_then(|e| e.get(name))
            .and_then(Value::as_str)
            .map(|s| crate::redact::redact_text(&truncate_chars(s, 300)))
    };
    (field("title"), field("details").or_else(|| field("detail")))
}

fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn retrieve(v: Value) -> Result<RetrievedInquiry> {
        parse_inquiry("test", v.to_string().as_bytes(), SystemTime::UNIX_EPOCH)
    }

    #[test]
    fn unknown_types_statuses_and_fields_are_kept() {
        let inq = retrieve(json!({
            "data": {"type": "inquiry", "id": "inq_1",
                     "attributes": {"status": "brand_new_status", "created-at": "2024-01-02T03:04:05.000Z",
                                    "surprise": {"x": 1}},
                     "relationships": {"documents": {"data": null}, "selfies": {"data": {}}}},
            "included": [
                {"type": "document/government-id", "id": "doc_1", "attributes": {"status": "processed"}},
                {"type": "hologram/unknown", "id": "holo_1", "attributes": {"shape": [1, 2]}},
                {"type": "verification/selfie", "id": "ver_1"}
            ]
        }))
        .unwrap();
        assert_eq!(inq.id, "inq_1");
        assert_eq!(inq.status.as_deref(), Some("brand_new_status"));
        assert_eq!(inq.created_at, parse_time("2024-01-02T03:04:05Z"));
        assert_eq!(inq.included.len(), 3);
        assert_eq!(inq.included[1].kind, "hologram/unknown");
        assert_eq!(inq.included[1].attributes, json!({"shape": [1, 2]}));
        assert_eq!(inq.included[1].family(), ObjectFamily::Other);
        assert_eq!(inq.included[2].attributes, Value::Null);
        assert_eq!(inq.included[0].family(), ObjectFamily::Document);
    }

    #[test]
    fn list_items_carry_reference_account_and_template() {
        let body = json!({"data": [
            {"type": "inquiry", "id": "inq_1",
             "attributes": {"reference-id": "user/7", "updated-at": "2024-05-01T00:00:00.000Z"},
             "relationships": {"account": {"data": {"type": "account", "id": "act_1"}},
                               "inquiry-template": {"data": {"type": "inquiry-template", "id": "itmpl_1"}}}},
            {"type": "inquiry", "id": "inq_2",
             "relationships": {"account": {"data": null}, "template": {"data": {"id": "tmpl_9"}}}},
            {"type": "inquiry", "id": "inq_3", "relationships": {"account": {"data": {"id": ""}}}}
        ], "links": {"next": null}});
        let page = parse_list_page("t", body.to_string().as_bytes()).unwrap();
        let [a, b, c] = &page.inquiries[..] else {
            panic!("three items")
        };
        assert_eq!(a.reference_id.as_deref(), Some("user/7"));
        assert_eq!(a.account_id.as_deref(), Some("act_1"));
        assert_eq!(a.template_id.as_deref(), Some("itmpl_1"));
        assert_eq!(
            (b.reference_id.as_deref(), b.account_id.as_deref()),
            (None, None)
        );
        assert_eq!(
            b.template_id.as_deref(),
            Some("tmpl_9"),
            "the legacy relationship"
        );
        assert_eq!(c.account_id, None, "an empty id is no account");
    }

    #[test]
    fn empty_relationships_mean_nothing() {
        assert!(relationship_refs(&json!({"data": null})).is_empty());
        assert!(relationship_refs(&json!({"data": {}})).is_empty());
        assert!(relationship_refs(&json!({})).is_empty());
        let refs =
            relationship_refs(&json!({"data": [{"type": "document/generic", "id": "doc_9"}, {}]}));
        assert_eq!(
            refs,
            vec![ResourceRef {
                kind: "document/generic".into(),
                id: "doc_9".into()
            }]
        );
    }

    #[test]
    fn missing_included_is_empty_and_bad_times_are_none() {
        let inq =
            retrieve(json!({"data": {"id": "inq_2", "attributes": {"created-at": "yesterday"}}}))
                .unwrap();
        assert!(inq.included.is_empty());
        assert_eq!(inq.created_at, None);
    }

    #[test]
    fn unusable_bodies_are_invalid_responses() {
        let bad: Vec<&[u8]> = vec![
            b"<!DOCTYPE html><html><body>Login</body></html>",
            b"",
            b"{\"data\": ",
            b"{\"data\": null}",
            b"{\"nodata\": 1}",
            b"{\"data\": [1]}",
            b"{\"data\": {\"id\": 5}}",
            b"{\"data\": {\"id\": \"inq_1\", \"attributes\": 3}}",
            b"{\"data\": {\"id\": \"inq_1\"}, \"included\": {}}",
            b"{\"data\": {\"id\": \"inq_1\", \"type\": \"document/generic\"}}",
            b"[1,2,3]",
        ];
        for body in bad {
            let err = parse_inquiry("ctx", body, SystemTime::UNIX_EPOCH).unwrap_err();
            assert!(
                matches!(err, Error::InvalidResponse { .. }),
                "{err:?} for {body:?}"
            );
        }
        let html =
            parse_inquiry("ctx", b"<html>secret</html>", SystemTime::UNIX_EPOCH).unwrap_err();
        assert!(html.to_string().contains("HTML") && !html.to_string().contains("secret"));
    }

    #[test]
    fn odd_included_entries_are_skipped_not_fatal() {
        let inq = retrieve(json!({
            "data": {"type": "inquiry", "id": "inq_1"},
            "included": [
                {"type": "x"},
                {"id": "doc_notype", "attributes": {}},
                {"type": 7, "id": "doc_numtype"},
                {"type": "", "id": "doc_emptytype"},
                "a string",
                [1, 2],
                null,
                {"type": "document/generic", "id": "doc_badattrs", "attributes": [1]},
                {"type": "document/generic", "id": 9},
                {"type": "document/generic", "id": "doc_ok", "attributes": {"status": "processed"}},
                {"type": "selfie/profile-and-center", "id": "self_ok"}
            ]
        }))
        .unwrap();
        let ids: Vec<_> = inq.included.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["doc_ok", "self_ok"]);
        assert_eq!(inq.included[0].status(), Some("processed"));
    }

    #[test]
    fn why_an_id_is_not_an_inquiry_id() {
        assert_eq!(inquiry_id_problem("inq_2T4sQabc"), None);
        assert_eq!(inquiry_id_problem("inq_a-b_C9"), None);
        let longest = format!("inq_{}", "a".repeat(60));
        assert_eq!(inquiry_id_problem(&longest), None);
        let cases = [
            ("doc_1", "inq_"),
            ("", "inq_"),
            ("INQ_1", "inq_"),
            ("inq_", "nothing"),
            (&*format!("{longest}b"), "64"),
            ("inq_../x", "characters"),
            ("inq_1 2", "characters"),
            ("inq_é", "characters"),
            ("inq_1\n", "characters"),
        ];
        for (id, why) in cases {
            let problem = inquiry_id_problem(id).unwrap_or_else(|| panic!("{id:?} accepted"));
            assert!(problem.contains(why), "{id:?}: {problem}");
        }
    }

    #[test]
    fn updated_at_is_read_from_lists_and_retrieves() {
        let inq = retrieve(
            json!({"data": {"type": "inquiry", "id": "inq_u", "attributes": {
            "created-at": "2023-03-28T18:34:32.000Z", "updated-at": "2023-03-29T01:02:03.456Z",
            "redacted-at": null}}}),
        )
        .unwrap();
        assert_eq!(inq.updated_at, parse_time("2023-03-29T01:02:03.456Z"));
        assert_eq!(inq.redacted_at, None);
        let body = json!({"data": [
            {"type": "inquiry", "id": "inq_b", "attributes": {"updated-at": "2024-05-06T07:08:09.000Z"}},
            {"type": "inquiry", "id": "inq_a", "attributes": {"updated-at": "not a time"}},
            {"type": "inquiry", "id": "inq_0"}
        ]});
        let page = parse_list_page("t", body.to_string().as_bytes()).unwrap();
        let updated: Vec<_> = page.inquiries.iter().map(|s| s.updated_at).collect();
        assert_eq!(updated, [parse_time("2024-05-06T07:08:09Z"), None, None]);
    }

    #[test]
    fn list_page_cursor_comes_from_next_link() {
        let body = json!({
            "data": [{"type": "inquiry", "id": "inq_b", "attributes": {"status": "approved"}},
                     {"type": "inquiry", "id": "inq_a", "attributes": {}}],
            "links": {"prev": null, "next": "/api/v1/inquiries?page%5Bafter%5D=inq_a&page%5Bsize%5D=2"}
        });
        let page = parse_list_page("t", body.to_string().as_bytes()).unwrap();
        assert_eq!(page.inquiries.len(), 2);
        assert_eq!(page.inquiries[0].status.as_deref(), Some("approved"));
        assert_eq!(page.next_after.as_deref(), Some("inq_a"));

        let last = json!({"data": [{"id": "inq_z"}], "links": {"next": null}});
        let page = parse_list_page("t", last.to_string().as_bytes()).unwrap();
        assert_eq!(page.next_after, None);

        let no_cursor = json!({"data": [{"id": "inq_z"}], "links": {"next": "/inquiries?x=1"}});
        let page = parse_list_page("t", no_cursor.to_string().as_bytes()).unwrap();
        assert_eq!(page.next_after.as_deref(), Some("inq_z"));

        assert!(parse_list_page("t", b"{\"data\": {}}").is_err());
        assert!(parse_list_page("t", b"{\"data\": [], \"links\": {\"next\": 4}}").is_err());
    }

    #[test]
    fn debug_output_shows_no_token() {
        let inq = retrieve(json!({
            "data": {"id": "inq_d"},
            "included": [{"type": "document/generic", "id": "doc_1", "attributes": {
                "files": [{"filename": "a.pdf", "url": "https://files.withpersona.com/a.pdf?access_token=SEKRIT"}]}}]
        }))
        .unwrap();
        let files = crate::files_of(&inq);
        assert_eq!(files.len(), 1);
        for text in [
            format!("{inq:?}"),
            format!("{:?}", inq.included),
            format!("{files:?}"),
        ] {
            assert!(!text.contains("SEKRIT"), "{text}");
        }
        assert!(format!("{files:?}").contains("a.pdf?access_token=REDACTED"));
    }

    #[test]
    fn error_body_gives_first_title_and_details() {
        let body = br#"{"errors": [{"title": "Rate limit exceeded", "details": "You have hit your rate limit"}, {"title": "x"}]}"#;
        let (t, d) = error_title_details(body);
        assert_eq!(t.as_deref(), Some("Rate limit exceeded"));
        assert_eq!(d.as_deref(), Some("You have hit your rate limit"));
        assert_eq!(error_title_details(b"<html>"), (None, None));
    }
}
