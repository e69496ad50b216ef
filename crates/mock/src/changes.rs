//! Changes made while the server runs: a new inquiry, a document added to one, a redaction.
//! Reached by `POST /_mock/...` (no key, no rate limit), by `DELETE /inquiries/{id}` and by
//! [`crate::MockServer`]; each change is also an event (`events.rs`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::generate::STATUSES;
use super::redaction;
use super::respond::{bad_request, error, json_response, not_found};
use super::state::State;

/// Why a change was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    NotFound,
    Redacted,
}

fn stamp(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Redact inquiry `id`: its redacted `data`, or `None` when there is no such inquiry.
pub fn redact(state: &State, id: &str) -> Option<Value> {
    let mut store = state.store.write();
    let newly = redaction::redact(&mut store, id)?;
    let data = store.inquiry(id)?.data.clone();
    if newly {
        state.events.record("inquiry.redacted", &data);
    }
    Some(data)
}

/// Add an inquiry newer than every other, with `status`; with files, it holds a driver licence
/// and a selfie. Returns its `data`.
pub fn add_inquiry(state: &State, status: &'static str, with_files: bool) -> Value {
    let mut store = state.store.write();
    let n = store.changes;
    store.changes += 1;
    let now = Utc::now();
    let newest = (!store.is_empty()).then(|| store.created_at(0));
    // Whole milliseconds, as Persona's timestamps; after the newest so it lists first.
    let created_at = newest
        .map_or(now, |t| now.max(t + Duration::seconds(1)))
        .with_nanosecond_ms();
    let mut generated = store.generator().added(n, status, with_files, created_at);
    happened_at(&mut generated.inquiry.data["attributes"], created_at);
    let data = generated.inquiry.data.clone();
    store.insert(generated.inquiry, generated.files);
    drop(store);
    state.events.record("inquiry.created", &data);
    let follow_up = match status {
        "completed" => vec!["inquiry.completed"],
        "approved" => vec!["inquiry.completed", "inquiry.approved"],
        "declined" => vec!["inquiry.completed", "inquiry.declined"],
        "failed" => vec!["inquiry.failed"],
        "expired" => vec!["inquiry.expired"],
        "needs_review" => vec!["inquiry.completed", "inquiry.marked-for-review"],
        _ => vec![],
    };
    for name in follow_up {
        state.events.record(name, &data);
    }
    data
}

/// Every step of a new inquiry's story (its `*-at` timestamps but `expires-at`) happened at
/// `t`, its creation: the generator's story would put them at its fixed epoch or ahead of the
/// clock, and an `updated-at` before `created-at` or in the future misleads a change query.
fn happened_at(attributes: &mut Value, t: DateTime<Utc>) {
    let Some(attributes) = attributes.as_object_mut() else {
        return;
    };
    for (name, value) in attributes.iter_mut() {
        if name.ends_with("-at") && name != "expires-at" && !value.is_null() {
            *value = stamp(t);
        }
    }
}

/// Add a processed generic document holding one file of `size` bytes to inquiry `id`; its
/// `updated-at` moves to now. Returns the document object.
pub fn add_document(state: &State, id: &str, filename: &str, size: u64) -> Result<Value, Refused> {
    let mut store = state.store.write();
    let inquiry = store.inquiry(id).ok_or(Refused::NotFound)?;
    if !inquiry.data["attributes"]["redacted-at"].is_null() {
        return Err(Refused::Redacted);
    }
    let n = store.changes;
    store.changes += 1;
    let previous = inquiry.data["attributes"]["updated-at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    // Strictly later than before, even for an inquiry whose story ran ahead of the clock.
    let now = previous
        .map_or(Utc::now(), |p| {
            Utc::now().max(p + Duration::milliseconds(1))
        })
        .with_nanosecond_ms();
    let (object, files) = store.generator().added_document(n, id, filename, size, now);
    let reference = json!({"type": object["type"], "id": object["id"]});
    store.add_files(files);
    store
        .update(id, |inquiry| {
            inquiry.included.push(object.clone());
            let relationships = &mut inquiry.data["relationships"];
            match relationships["documents"]["data"].as_array_mut() {
                Some(list) => list.push(reference),
                None => relationships["documents"] = json!({ "data": [reference] }),
            }
            inquiry.data["attributes"]["updated-at"] = stamp(now);
        })
        .ok_or(Refused::NotFound)?;
    drop(store);
    state.events.record("document.created", &object);
    state.events.record("document.processed", &object);
    Ok(object)
}

/// Truncate to whole milliseconds.
trait WholeMillis {
    fn with_nanosecond_ms(self) -> Self;
}

impl WholeMillis for DateTime<Utc> {
    fn with_nanosecond_ms(self) -> Self {
        DateTime::from_timestamp_millis(self.timestamp_millis()).unwrap_or(self)
    }
}

/// The fields of a JSON object body (an empty body is an empty object), or what is wrong.
fn body_object(body: &Bytes) -> Result<serde_json::Map<String, Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("expected a JSON object".into()),
        Err(e) => Err(format!("body is not JSON: {e}")),
    }
}

/// `POST /_mock/inquiries` `{"status": "completed", "files": true}` (both optional).
pub async fn post_inquiry(AxState(state): AxState<Arc<State>>, body: Bytes) -> Response {
    let fields = match body_object(&body) {
        Ok(f) => f,
        Err(details) => return bad_request(&details),
    };
    let status = match fields.get("status") {
        None => "completed",
        Some(Value::String(s)) => match STATUSES.iter().find(|k| **k == s) {
            Some(known) => known,
            None => return bad_request(&format!("status must be one of {STATUSES:?}")),
        },
        Some(_) => return bad_request("status must be a string"),
    };
    let with_files = match fields.get("files") {
        None => status != "created",
        Some(Value::Bool(b)) => *b,
        Some(_) => return bad_request("files must be true or false"),
    };
    let data = add_inquiry(&state, status, with_files);
    json_response(StatusCode::CREATED, &json!({ "data": data }))
}

/// `POST /_mock/inquiries/{id}/documents` `{"filename": "statement.pdf", "size": 40000}`
/// (both optional).
pub async fn post_document(
    AxState(state): AxState<Arc<State>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let fields = match body_object(&body) {
        Ok(f) => f,
        Err(details) => return bad_request(&details),
    };
    let filename = match fields.get("filename") {
        None => "added_document.pdf",
        Some(Value::String(s))
            if !s.is_empty() && !s.contains('/') && s.len() <= 200 && s != "." && s != ".." =>
        {
            s.as_str()
        }
        Some(_) => return bad_request("filename must be a plain file name"),
    };
    let size = match fields.get("size") {
        None => 40_000,
        Some(v) => match v.as_u64() {
            Some(n) if n <= 1 << 40 => n,
            _ => return bad_request("size must be a number of bytes up to 1 TiB"),
        },
    };
    match add_document(&state, &id, filename, size) {
        Ok(object) => {
            let mut body = json!({ "data": object });
            super::urls::mint_urls(&state, &state.store.read(), &mut body, false);
            json_response(StatusCode::CREATED, &body)
        }
        Err(Refused::NotFound) => not_found(),
        Err(Refused::Redacted) => error(
            StatusCode::CONFLICT,
            "Conflict",
            Some("the inquiry is redacted"),
        ),
    }
}

/// `POST /_mock/inquiries/{id}/redact`: as `DELETE /api/v1/inquiries/{id}`, without the key.
pub async fn post_redact(AxState(state): AxState<Arc<State>>, Path(id): Path<String>) -> Response {
    match redact(&state, &id) {
        Some(data) => json_response(StatusCode::OK, &json!({ "data": data })),
        None => not_found(),
    }
}
