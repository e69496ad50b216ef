//! `DELETE /inquiries/{id}`: the record stays, its PII and files go.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::Value;

use super::data::{FILE_URL_PLACEHOLDER, MockInquiry};
use super::state::Store;
use super::urls::walk;

/// An inquiry's top-level personal attributes: blanked on redaction (where present), and
/// left out of versions whose schema has none of them at the top level.
pub(crate) const PII: &[&str] = &[
    "name-first",
    "name-middle",
    "name-last",
    "birthdate",
    "address-street-1",
    "address-street-2",
    "address-city",
    "address-subdivision",
    "address-subdivision-abbr",
    "address-postal-code",
    "address-postal-code-abbr",
    "phone-number",
    "email-address",
    "identification-number",
    "social-security-number",
];
/// Redact inquiry `id`: `None` when there is no such inquiry, else whether this call redacted
/// it (redacting twice keeps the first `redacted-at`).
pub fn redact(store: &mut Store, id: &str) -> Option<bool> {
    let (newly, removed) = store.update(id, redact_inquiry)?;
    store.removed.extend(removed);
    Some(newly)
}

/// Blank the PII and files of `inquiry`: whether it was not redacted before, and the keys of
/// the files it held.
fn redact_inquiry(inquiry: &mut MockInquiry) -> (bool, Vec<String>) {
    let mut removed = Vec::new();
    let mut newly = false;
    if let Some(attrs) = inquiry
        .data
        .get_mut("attributes")
        .and_then(Value::as_object_mut)
    {
        if attrs.get("redacted-at").is_none_or(Value::is_null) {
            newly = true;
            // Strictly later than the last change, even one made within this millisecond.
            let previous = (attrs.get("updated-at").and_then(Value::as_str))
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc) + Duration::milliseconds(1));
            let now = previous.map_or(Utc::now(), |p| Utc::now().max(p));
            let now = Value::String(now.to_rfc3339_opts(SecondsFormat::Millis, true));
            attrs.insert("redacted-at".into(), now.clone());
            attrs.insert("updated-at".into(), now);
        }
        blank_pii(attrs);
        // As Persona's `inquiry.redacted` payload: the note goes, tags are emptied.
        if attrs.contains_key("note") {
            attrs.insert("note".into(), Value::Null);
        }
        if attrs.contains_key("tags") {
            attrs.insert("tags".into(), Value::Array(Vec::new()));
        }
    }
    for object in &mut inquiry.included {
        if let Some(attrs) = object.get_mut("attributes").and_then(Value::as_object_mut) {
            blank_pii(attrs);
            for value in attrs.values_mut() {
                let keys = placeholder_keys(value);
                if keys.is_empty() {
                    continue;
                }
                removed.extend(keys);
                // Keep the JSON type of list attributes (`files`, `photo-urls`): empty them.
                *value = if value.is_array() {
                    Value::Array(Vec::new())
                } else {
                    Value::Null
                };
            }
        }
    }
    (newly, removed)
}

fn blank_pii(attrs: &mut serde_json::Map<String, Value>) {
    for key in PII {
        if let Some(v) = attrs.get_mut(*key) {
            *v = Value::Null;
        }
    }
    if let Some(fields) = attrs.get_mut("fields").and_then(Value::as_object_mut) {
        for field in fields.values_mut() {
            if let Some(v) = field.get_mut("value") {
                *v = Value::Null;
            }
        }
    }
}

fn placeholder_keys(value: &Value) -> Vec<String> {
    let mut copy = value.clone();
    let mut keys = Vec::new();
    walk(&mut copy, &mut |s| {
        if let Some(key) = s.strip_prefix(FILE_URL_PLACEHOLDER) {
            keys.push(key.to_string());
        }
        None
    });
    keys
}
