//! A status change while the server runs (`POST /_mock/inquiries/{id}/status`): the inquiry
//! moves to the new status, the timestamp that status implies is set, and `updated-at` moves
//! to now (always later than before). Each change is also an event.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::changes::Refused;
use super::generate::STATUSES;
use super::respond::{bad_request, error, json_response, not_found};
use super::state::State;

/// The timestamp attribute a status sets, and the event Persona sends for it.
fn implies(status: &str) -> (Option<&'static str>, Option<&'static str>) {
    match status {
        "pending" => (Some("started-at"), None),
        "completed" => (Some("completed-at"), Some("inquiry.completed")),
        "approved" => (Some("decisioned-at"), Some("inquiry.approved")),
        "declined" => (Some("decisioned-at"), Some("inquiry.declined")),
        "failed" => (Some("failed-at"), Some("inquiry.failed")),
        "expired" => (Some("expired-at"), Some("inquiry.expired")),
        "needs_review" => (
            Some("marked-for-review-at"),
            Some("inquiry.marked-for-review"),
        ),
        _ => (None, None),
    }
}

fn parse(value: &Value) -> Option<DateTime<Utc>> {
    Some(
        DateTime::parse_from_rfc3339(value.as_str()?)
            .ok()?
            .with_timezone(&Utc),
    )
}

/// Move inquiry `id` to `status`; returns its new `data`.
pub fn set_status(state: &State, id: &str, status: &'static str) -> Result<Value, Refused> {
    let mut store = state.store.write();
    let inquiry = store.inquiry(id).ok_or(Refused::NotFound)?;
    if !inquiry.data["attributes"]["redacted-at"].is_null() {
        return Err(Refused::Redacted);
    }
    let previous = parse(&inquiry.data["attributes"]["updated-at"]);
    // Whole milliseconds, strictly later than before (a generated story may end ahead).
    let now = previous.map_or(Utc::now(), |p| {
        Utc::now().max(p + Duration::milliseconds(1))
    });
    let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
    let stamp = Value::String(now.to_rfc3339_opts(SecondsFormat::Millis, true));
    let (timestamp, event) = implies(status);
    let data = store
        .update(id, |inquiry| {
            let attributes = &mut inquiry.data["attributes"];
            attributes["status"] = Value::from(status);
            if let Some(name) = timestamp {
                attributes[name] = stamp.clone();
            }
            // A decision or a review comes after completion.
            let finished = matches!(status, "approved" | "declined" | "needs_review");
            if finished && attributes["completed-at"].is_null() {
                attributes["completed-at"] = stamp.clone();
            }
            attributes["updated-at"] = stamp.clone();
            inquiry.data.clone()
        })
        .ok_or(Refused::NotFound)?;
    drop(store);
    if let Some(name) = event {
        state.events.record(name, &data);
    }
    Ok(data)
}

/// `POST /_mock/inquiries/{id}/status` `{"status": "approved"}`.
pub async fn post_status(
    AxState(state): AxState<Arc<State>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let fields: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(&format!("body is not JSON: {e}")),
    };
    let status = match &fields["status"] {
        Value::String(s) => match STATUSES.iter().find(|k| **k == s) {
            Some(known) => known,
            None => return bad_request(&format!("status must be one of {STATUSES:?}")),
        },
        _ => return bad_request("the body must be {\"status\": \"<status>\"}"),
    };
    match set_status(&state, &id, status) {
        Ok(data) => json_response(StatusCode::OK, &json!({ "data": data })),
        Err(Refused::NotFound) => not_found(),
        Err(Refused::Redacted) => error(
            StatusCode::CONFLICT,
            "Conflict",
            Some("the inquiry is redacted"),
        ),
    }
}
