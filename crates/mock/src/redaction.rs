//! `DELETE /inquiries/{id}`: the record stays, its PII and files go.

use chrono::{SecondsFormat, Utc};
use serde_json::Value;

use super::data::FILE_URL_PLACEHOLDER;
use super::state::Store;
use super::urls::walk;

/// Personal attributes Persona blanks on redaction (where present).
const PII: &[&str] = &[
    "name-first",
    "name-middle",
    "name-last",
    "birthdate",
    "address-street-1",
    "address-street-2",
    "address-city",
    "address-subdivision",
    "address-postal-code",
    "phone-number",
    "email-address",
    "identification-number",
    "social-security-number",
];

/// Redact inquiry `id`; false when there is no such inquiry. Redacting twice keeps the first
/// `redacted-at`.
pub fn redact(store: &mut Store, id: &str) -> bool {
    let Some(inquiry) = store.inquiry_mut(id) else {
        return false;
    };
    let mut removed = Vec::new();
    if let Some(attrs) = inquiry
        .data
        .get_mut("attributes")
        .and_then(Value::as_object_mut)
    {
        if attrs.get("redacted-at").is_none_or(Value::is_null) {
            let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
            attrs.insert("redacted-at".into(), Value::String(now));
        }
        blank_pii(attrs);
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
    store.removed.extend(removed);
    true
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
