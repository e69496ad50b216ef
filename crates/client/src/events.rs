//! Persona's Events API (`GET /events`, newest first) and the event a webhook carries, typed.
//! An event keeps only what says *what* changed: its id, name, time and the object's type and
//! id (and, for a document, selfie or verification, its inquiry). Never the payload itself,
//! whose file URLs are secrets.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::parse_time;
use crate::{Error, Result};

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `evt_…`
    pub id: String,
    /// `inquiry.redacted`, `document.processed`…
    pub name: String,
    pub created_at: Option<DateTime<Utc>>,
    /// The payload object's `type` (`inquiry`, `document/government-id`…).
    pub object_type: Option<String>,
    /// The payload object's `id`.
    pub object_id: Option<String>,
    /// The inquiry the event is about: the object itself when it is one, else its
    /// `relationships.inquiry`.
    pub inquiry_id: Option<String>,
}

/// Where a page of events starts (the spec's `page[after]` / `page[before]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsFrom {
    /// The newest events.
    Newest,
    /// Events older than this one.
    After(String),
    /// Events newer than this one: the ones right after it, newest first.
    Before(String),
}

/// One page of events, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Whether newer events exist beyond this page (`links.prev`).
    pub has_newer: bool,
    /// Whether older events exist beyond this page (`links.next`).
    pub has_older: bool,
}

fn invalid(context: &str, message: &str) -> Error {
    Error::InvalidResponse {
        context: context.to_string(),
        message: message.to_string(),
    }
}

/// An event object (`{"type": "event", "id", "attributes": {"name", "payload": {"data"}}}`).
pub fn event_of(context: &str, item: &Value) -> Result<Event> {
    let id = item
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .ok_or_else(|| invalid(context, "an event has no id"))?;
    let attributes = item.get("attributes").unwrap_or(&Value::Null);
    let name = attributes
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| s.len() <= 128)
        .ok_or_else(|| invalid(context, "an event has no name"))?;
    let created_at = attributes
        .get("created-at")
        .and_then(Value::as_str)
        .and_then(parse_time);
    let data = attributes
        .get("payload")
        .and_then(|p| p.get("data"))
        .unwrap_or(&Value::Null);
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 128)
            .map(str::to_string)
    };
    let object_type = text(data.get("type"));
    let object_id = text(data.get("id"));
    let inquiry_id = if object_type.as_deref() == Some("inquiry") {
        object_id.clone()
    } else {
        text(data.pointer("/relationships/inquiry/data/id"))
    };
    Ok(Event {
        id: id.to_string(),
        name: name.to_string(),
        created_at,
        object_type,
        object_id,
        inquiry_id,
    })
}

/// A page of `GET /events`.
pub fn parse_event_page(context: &str, body: &[u8]) -> Result<EventPage> {
    let raw: Value = serde_json::from_slice(body).map_err(|_| invalid(context, "not JSON"))?;
    let items = raw
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(context, "`data` is not an array"))?;
    let events = items
        .iter()
        .map(|item| event_of(context, item))
        .collect::<Result<Vec<_>>>()?;
    let link = |name: &str| {
        raw.pointer(&format!("/links/{name}"))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    Ok(EventPage {
        has_newer: link("prev") && !events.is_empty(),
        has_older: link("next") && !events.is_empty(),
        events,
    })
}

/// The event a webhook delivers (`{"data": <event>}`).
pub fn parse_webhook_event(body: &[u8]) -> Result<Event> {
    let context = "webhook";
    let raw: Value = serde_json::from_slice(body).map_err(|_| invalid(context, "not JSON"))?;
    let data = raw
        .get("data")
        .ok_or_else(|| invalid(context, "the body has no `data`"))?;
    event_of(context, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_keep_ids_and_names_never_the_payload() {
        let body = json!({
            "data": [
                {"type": "event", "id": "evt_2", "attributes": {
                    "name": "document.processed",
                    "created-at": "2024-01-01T00:00:01.000Z",
                    "payload": {"data": {"type": "document/government-id", "id": "doc_1",
                        "attributes": {"front-photo": {"url": "https://files/x?access_token=T"}},
                        "relationships": {"inquiry": {"data": {"type": "inquiry", "id": "inq_1"}}}}}}},
                {"type": "event", "id": "evt_1", "attributes": {
                    "name": "inquiry.created",
                    "payload": {"data": {"type": "inquiry", "id": "inq_1"}}}}
            ],
            "links": {"prev": null, "next": "/api/v1/events?page%5Bafter%5D=evt_1"}
        });
        let page = parse_event_page("t", body.to_string().as_bytes()).unwrap();
        assert_eq!(page.events.len(), 2);
        assert!(page.has_older && !page.has_newer);
        let doc = &page.events[0];
        assert_eq!(doc.inquiry_id.as_deref(), Some("inq_1"));
        assert_eq!(doc.object_id.as_deref(), Some("doc_1"));
        assert!(doc.created_at.is_some());
        assert!(!format!("{doc:?}").contains("access_token"));
        assert_eq!(page.events[1].inquiry_id.as_deref(), Some("inq_1"));
        assert!(parse_event_page("t", b"{\"data\": {}}").is_err());
        assert!(parse_event_page("t", b"<html>").is_err());
        let one = json!({"data": body["data"][1]}).to_string();
        assert_eq!(parse_webhook_event(one.as_bytes()).unwrap().id, "evt_1");
        assert!(parse_webhook_event(b"{}").is_err());
    }
}
