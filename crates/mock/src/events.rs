//! Events: what changed while the server ran, as Persona's Events API lists them
//! (`GET /api/v1/events`), kept within a retention bound, and delivered as signed webhooks.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, SecondsFormat, Utc};
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::ids::{IdCodec, Space};
use super::paging::{Paging, items};
use super::respond::{bad_request, not_found};
use super::state::{State, bump};

const EVENTS_PATH: &str = "/api/v1/events";

/// One event; the payload is kept as JSON text (file URLs as placeholders, minted when sent).
struct Event {
    id: String,
    name: String,
    object_id: String,
    created_at: DateTime<Utc>,
    payload: String,
}

impl Event {
    fn to_json(&self) -> Value {
        let data: Value = serde_json::from_str(&self.payload).unwrap_or(Value::Null);
        json!({
            "type": "event",
            "id": self.id,
            "attributes": {
                "name": self.name,
                "payload": { "data": data },
                "created-at": self.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            },
        })
    }
}

/// The events kept, oldest first, and where new ones go.
pub struct Events {
    codec: IdCodec,
    log: Mutex<Log>,
    /// The webhook sender's queue, when one is running.
    webhook: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Value>>>,
}

struct Log {
    events: VecDeque<Event>,
    next: u64,
    /// Events dropped by the retention bound so far.
    dropped: u64,
}

/// How many events are kept and for how long (`RuntimeConfig`).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_count: usize,
    pub max_age: Duration,
}

impl Events {
    pub fn new(seed: u64) -> Events {
        Events {
            codec: IdCodec::new(seed ^ 0xE7E7),
            log: Mutex::new(Log {
                events: VecDeque::new(),
                next: 0,
                dropped: 0,
            }),
            webhook: Mutex::new(None),
        }
    }

    pub fn set_webhook(&self, queue: Option<tokio::sync::mpsc::UnboundedSender<Value>>) {
        *self.webhook.lock() = queue;
    }

    /// Record event `name` about `object` (a JSON:API object with `id`), and queue it for the
    /// webhook.
    pub fn record(&self, name: &str, object: &Value) {
        let mut log = self.log.lock();
        let seq = log.next;
        log.next += 1;
        let event = Event {
            id: self.codec.mint("evt_", Space::Event, seq, 0),
            name: name.to_string(),
            object_id: object["id"].as_str().unwrap_or_default().to_string(),
            created_at: DateTime::from_timestamp_millis(Utc::now().timestamp_millis())
                .unwrap_or_default(),
            payload: object.to_string(),
        };
        let json = event.to_json();
        log.events.push_back(event);
        drop(log);
        if let Some(queue) = self.webhook.lock().as_ref() {
            let _ = queue.send(json);
        }
    }

    /// Drop what the retention bound no longer keeps.
    pub fn prune(&self, retention: Retention) {
        self.prune_at(Utc::now(), retention);
    }

    /// `prune` at the time `now`.
    fn prune_at(&self, now: DateTime<Utc>, retention: Retention) {
        let mut log = self.log.lock();
        let mut dropped = 0;
        while let Some(oldest) = log.events.front() {
            let too_old = (now - oldest.created_at)
                .to_std()
                .is_ok_and(|age| age > retention.max_age);
            if log.events.len() > retention.max_count || too_old {
                log.events.pop_front();
                dropped += 1;
            } else {
                break;
            }
        }
        log.dropped += dropped;
    }

    /// (events recorded, events dropped by retention), for `/_mock/stats`.
    pub fn counts(&self) -> (u64, u64) {
        let log = self.log.lock();
        (log.next, log.dropped)
    }
}

/// The events endpoint's query, checked.
struct EventQuery {
    page: Paging,
    names: Option<Vec<String>>,
    object_ids: Option<Vec<String>>,
    ids: Option<Vec<String>>,
}

impl EventQuery {
    fn parse(raw: Option<&str>) -> Result<EventQuery, String> {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let list = |v: &str| -> Vec<String> { items(v).collect() };
        let mut q = EventQuery {
            page: Paging::new(),
            names: None,
            object_ids: None,
            ids: None,
        };
        for (key, value) in &pairs {
            if q.page.take(key, value)? {
                continue;
            }
            match key.as_str() {
                k if k.starts_with("filter[") => match k {
                    "filter[name]" => q.names = Some(list(value)),
                    "filter[object-id]" => q.object_ids = Some(list(value)),
                    "filter[id]" => q.ids = Some(list(value)),
                    _ => return Err(format!("{k} is not a supported filter")),
                },
                _ => {}
            }
        }
        q.page.check()?;
        Ok(q)
    }

    fn matches(&self, event: &Event) -> bool {
        let has = |list: &Option<Vec<String>>, v: &str| {
            list.as_ref().is_none_or(|l| l.iter().any(|x| x == v))
        };
        has(&self.names, &event.name)
            && has(&self.object_ids, &event.object_id)
            && has(&self.ids, &event.id)
    }

    fn link(&self, page_key: &str, id: &str) -> String {
        self.page.link(EVENTS_PATH, page_key, id)
    }
}

/// `GET /api/v1/events`: newest first. A cursor that is no longer kept (or never was) is a
/// 400, which is how a client learns that it missed events.
pub async fn list(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    bump(&state.stats.api_events);
    let query = match EventQuery::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(details) => return bad_request(&details),
    };
    state.events.prune(state.retention());
    let log = state.events.log.lock();
    // Newest first: index 0 is the newest event.
    let newest_first: Vec<&Event> = log.events.iter().rev().collect();
    let cursor = |id: &Option<String>| match id {
        Some(id) => newest_first
            .iter()
            .position(|e| &e.id == id)
            .map(Some)
            .ok_or_else(|| format!("page cursor {id} is not a known event (it may have expired)")),
        None => Ok(None),
    };
    let (after, before) = match (cursor(&query.page.after), cursor(&query.page.before)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return bad_request(&e),
    };
    let matching: Vec<usize> = (0..newest_first.len())
        .filter(|&i| query.matches(newest_first[i]))
        .collect();
    let page: Vec<usize> = if let Some(pos) = after {
        matching
            .iter()
            .copied()
            .filter(|&i| i > pos)
            .take(query.page.size)
            .collect()
    } else if let Some(pos) = before {
        let newer: Vec<usize> = matching.iter().copied().filter(|&i| i < pos).collect();
        newer[newer.len().saturating_sub(query.page.size)..].to_vec()
    } else {
        matching.iter().copied().take(query.page.size).collect()
    };
    let next = match page.last() {
        Some(&p) if matching.iter().any(|&i| i > p) => {
            Value::String(query.link("page[after]", &newest_first[p].id))
        }
        _ => Value::Null,
    };
    let prev = match page.first() {
        Some(&p) if matching.iter().any(|&i| i < p) => {
            Value::String(query.link("page[before]", &newest_first[p].id))
        }
        _ => Value::Null,
    };
    let data: Vec<Value> = page.iter().map(|&i| newest_first[i].to_json()).collect();
    drop(log);
    let body = json!({ "data": data, "links": { "prev": prev, "next": next } });
    super::api::send_json(&state, &headers, body)
}

/// `GET /api/v1/events/{id}`
pub async fn retrieve(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    bump(&state.stats.api_events);
    state.events.prune(state.retention());
    let log = state.events.log.lock();
    let Some(event) = log.events.iter().find(|e| e.id == id) else {
        return not_found();
    };
    let body = json!({ "data": event.to_json() });
    drop(log);
    super::api::send_json(&state, &headers, body)
}

/// `Persona-Signature` for `body` sent at unix time `t`: `t=<t>,v1=<hex HMAC-SHA256 of
/// "<t>.<body>">`, one such pair per secret, separated by a space (two during a rotation).
/// The same function the receiver's tests sign with: one definition of the format.
pub fn signature(secrets: &[String], t: i64, body: &[u8]) -> String {
    personafs_client::webhook::sign(secrets, t, body)
}

/// Deliveries tried per event (Persona retries too).
const ATTEMPTS: u32 = 3;

/// POST each queued event to the webhook URL in order, signed, with up to [`ATTEMPTS`] tries.
pub async fn deliver(state: Arc<State>, mut queue: tokio::sync::mpsc::UnboundedReceiver<Value>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("mock webhook sender: {e}");
            return;
        }
    };
    while let Some(mut event) = queue.recv().await {
        let Some(url) = state.runtime().webhook_url.filter(|u| !u.is_empty()) else {
            continue;
        };
        {
            let store = state.store.read();
            super::urls::mint_urls(&state, &store, &mut event, false);
        }
        let attributes = &mut event["attributes"];
        attributes["payload"]["included"] = json!([]);
        let body = json!({ "data": event }).to_string();
        let first = Utc::now().timestamp();
        for attempt in 1..=ATTEMPTS {
            let t = Utc::now().timestamp();
            let secrets = state.webhook_secrets.read().clone();
            let mut request = client
                .post(&url)
                .header("Content-Type", "application/json")
                .header("Persona-Webhook-Attempts-Made", attempt.to_string())
                .header(
                    "Persona-Webhook-Attempts-Left",
                    (ATTEMPTS - attempt).to_string(),
                )
                .header("Persona-Webhook-First-Attempted-At", first.to_string())
                .body(body.clone());
            if !secrets.is_empty() {
                request =
                    request.header("Persona-Signature", signature(&secrets, t, body.as_bytes()));
            }
            let delivered = match request.send().await {
                Ok(response) => response.status().is_success(),
                Err(_) => false,
            };
            bump(if delivered {
                &state.stats.webhooks_delivered
            } else {
                &state.stats.webhooks_failed
            });
            if delivered || attempt == ATTEMPTS {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    type HmacSha256 = Hmac<Sha256>;

    #[test]
    fn signature_is_hmac_of_time_dot_body_once_per_secret() {
        let one = signature(&["whsec_a".to_string()], 1_700_000_000, b"{}");
        let mut mac = HmacSha256::new_from_slice(b"whsec_a").unwrap();
        mac.update(b"1700000000.{}");
        let expect = hex::encode(mac.finalize().into_bytes());
        assert_eq!(one, format!("t=1700000000,v1={expect}"));
        let two = signature(&["whsec_a".into(), "whsec_b".into()], 1_700_000_000, b"{}");
        let pairs: Vec<&str> = two.split(' ').collect();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0], one);
        assert_ne!(pairs[1], one);
        assert!(pairs[1].starts_with("t=1700000000,v1="));
    }

    #[test]
    fn retention_drops_the_oldest_past_the_count() {
        let events = Events::new(1);
        for n in 0..5 {
            events.record(
                "inquiry.created",
                &json!({"type": "inquiry", "id": format!("inq_{n}")}),
            );
        }
        events.prune(Retention {
            max_count: 3,
            max_age: Duration::from_secs(3600),
        });
        assert_eq!(events.counts(), (5, 2));
        let log = events.log.lock();
        let kept: Vec<&str> = log.events.iter().map(|e| e.object_id.as_str()).collect();
        assert_eq!(kept, ["inq_2", "inq_3", "inq_4"]);
        drop(log);
        events.prune(Retention {
            max_count: 100,
            max_age: Duration::ZERO,
        });
        let later = Utc::now() + chrono::Duration::milliseconds(5);
        events.prune_at(
            later,
            Retention {
                max_count: 100,
                max_age: Duration::ZERO,
            },
        );
        assert_eq!(events.counts(), (5, 5), "all older than zero seconds");
    }
}
