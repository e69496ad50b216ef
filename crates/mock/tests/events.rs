//! The mock's Events API and signed webhook delivery, over real HTTP, with a receiver of our own
//! that verifies `Persona-Signature` as a client must.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use personafs_mock::{MockConfig, MockServer, RuntimeConfig};
use serde_json::{Value, json};
use sha2::Sha256;

/// What the receiver got: (signature header, body).
type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

/// A webhook receiver on loopback; answers `status` to every POST.
async fn receiver(status: StatusCode) -> (String, Received) {
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                move |State(got): State<Received>, headers: HeaderMap, body: Bytes| async move {
                    let signature = headers
                        .get("persona-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    got.lock().push((signature, body));
                    status
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// Whether `header` carries, for `secret`, a valid signature of `body` made within 5 minutes:
/// `t=<unix>,v1=<hex HMAC-SHA256("<t>.<body>")>`, pairs separated by spaces.
fn signed_with(header: &str, secret: &str, body: &[u8]) -> bool {
    header.split(' ').any(|pair| {
        let mut t = None;
        let mut v1 = Vec::new();
        for part in pair.split(',') {
            match part.split_once('=') {
                Some(("t", value)) => t = value.parse::<i64>().ok(),
                Some(("v1", value)) => v1.push(value.to_string()),
                _ => {}
            }
        }
        let Some(t) = t else { return false };
        let now = chrono::Utc::now().timestamp();
        if (now - t).abs() > 300 {
            return false;
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        let expect = hex::encode(mac.finalize().into_bytes());
        v1.contains(&expect)
    })
}

struct Api {
    server: MockServer,
    client: reqwest::Client,
}

impl Api {
    fn origin(&self) -> String {
        self.server
            .api_base()
            .trim_end_matches("/api/v1")
            .to_string()
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.server.api_base()))
            .bearer_auth(self.server.api_key())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        (status, body)
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.origin()))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}");
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }
}

fn names(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["attributes"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn event_ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

async fn wait_for(received: &Received, count: usize) {
    wait_until(
        Duration::from_secs(20),
        || received.lock().len() >= count,
        || format!("only {} of {count} webhooks arrived", received.lock().len()),
    )
    .await;
}

/// Poll `ready` until it holds; panic with `what()` after `limit` (a hang detector).
async fn wait_until(limit: Duration, ready: impl Fn() -> bool, what: impl Fn() -> String) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "{}", what());
        // The poll interval: a delivery has no signal to wait on.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn changes_become_events_listed_newest_first_and_signed_webhooks() {
    let (url, received) = receiver(StatusCode::OK).await;
    let server = MockServer::start(MockConfig {
        generate: 20,
        runtime: RuntimeConfig {
            webhook_url: Some(url),
            ..MockConfig::default().runtime
        },
        // A rotation: both secrets sign every delivery.
        webhook_secrets: vec!["wbhsec_old".into(), "wbhsec_new".into()],
        ..MockConfig::default()
    })
    .unwrap();
    let api = Api {
        server,
        client: reqwest::Client::new(),
    };
    let (status, empty) = api.get("/events").await;
    assert_eq!(status, StatusCode::OK);
    assert!(empty["data"].as_array().unwrap().is_empty());

    let added = api
        .post("/_mock/inquiries", json!({"status": "approved"}))
        .await;
    let new_id = added["data"]["id"].as_str().unwrap().to_string();
    let doc = api
        .post(
            &format!("/_mock/inquiries/{new_id}/documents"),
            json!({"filename": "lease.pdf", "size": 30_000}),
        )
        .await;
    let doc_id = doc["data"]["id"].as_str().unwrap().to_string();
    let redacted = api.server.inquiry_id_at(5).unwrap();
    let deleted = api
        .client
        .delete(format!("{}/inquiries/{redacted}", api.server.api_base()))
        .bearer_auth(api.server.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);

    let expected = [
        "inquiry.redacted",
        "document.processed",
        "document.created",
        "inquiry.approved",
        "inquiry.completed",
        "inquiry.created",
    ];
    let (_, all) = api.get("/events?page[size]=100").await;
    assert_eq!(names(&all), expected, "newest first");
    for event in all["data"].as_array().unwrap() {
        assert_eq!(event["type"], "event");
        assert!(event["id"].as_str().unwrap().starts_with("evt_"));
        assert!(event["attributes"]["created-at"].is_string());
    }
    let payload = |i: usize| all["data"][i]["attributes"]["payload"]["data"].clone();
    assert_eq!(payload(0)["id"], redacted.as_str());
    assert!(payload(0)["attributes"]["redacted-at"].is_string());
    assert_eq!(payload(1)["id"], doc_id.as_str());
    let file_url = payload(1)["attributes"]["files"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(file_url.contains("access_token="), "minted: {file_url}");
    assert_eq!(payload(5)["id"], new_id.as_str());

    // Filters and one event by id.
    let (_, only) = api
        .get("/events?filter[name]=inquiry.redacted,inquiry.created")
        .await;
    assert_eq!(names(&only), ["inquiry.redacted", "inquiry.created"]);
    let (_, by_object) = api
        .get(&format!("/events?filter[object-id]={new_id}"))
        .await;
    assert_eq!(names(&by_object).len(), 3, "created, completed, approved");
    let first_id = event_ids(&all)[0].clone();
    let (status, one) = api.get(&format!("/events/{first_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["data"]["id"], first_id.as_str());

    // Paging by `next` links gives the same events; `page[before]` gives the newer ones.
    let mut link = "/events?page[size]=4".to_string();
    let mut paged = Vec::new();
    loop {
        let (_, body) = api.get(&link).await;
        paged.extend(event_ids(&body));
        match body["links"]["next"].as_str() {
            Some(next) => link = next.trim_start_matches("/api/v1").to_string(),
            None => break,
        }
    }
    assert_eq!(paged, event_ids(&all));
    let oldest = event_ids(&all)[5].clone();
    let (_, newer) = api
        .get(&format!("/events?page[before]={oldest}&page[size]=2"))
        .await;
    assert_eq!(event_ids(&newer), event_ids(&all)[3..5]);

    // Every event was delivered, in order, signed with both secrets.
    wait_for(&received, expected.len()).await;
    let deliveries = received.lock().clone();
    let mut delivered = Vec::new();
    for (signature, body) in &deliveries {
        assert!(signed_with(signature, "wbhsec_old", body), "{signature}");
        assert!(signed_with(signature, "wbhsec_new", body), "{signature}");
        assert!(!signed_with(signature, "wbhsec_other", body));
        let mut tampered = body.to_vec();
        tampered[10] ^= 1;
        assert!(!signed_with(signature, "wbhsec_new", &tampered));
        let json: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(json["data"]["type"], "event");
        delivered.push(json["data"]["id"].as_str().unwrap().to_string());
    }
    let mut oldest_first = event_ids(&all);
    oldest_first.reverse();
    assert_eq!(delivered, oldest_first);

    // Retention: past the bound, old events are gone and their cursors are refused, which is
    // how a client learns it missed some.
    let config = api
        .post("/_mock/config", json!({"events_max_count": 2}))
        .await;
    assert_eq!(config["events_max_count"], 2);
    let (_, kept) = api.get("/events").await;
    assert_eq!(event_ids(&kept), event_ids(&all)[..2]);
    let (status, _) = api.get(&format!("/events?page[before]={oldest}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(api.server.stats().events_dropped, 4);
    assert!(api.server.stats().api_events >= 10);
    assert_eq!(
        api.server.stats().api_list,
        0,
        "events are not inquiry lists"
    );
    let (status, _) = api.get("/events?page[size]=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_failing_receiver_is_retried_and_a_rotation_changes_the_signatures() {
    let (url, received) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    let server = MockServer::start(MockConfig {
        generate: 3,
        runtime: RuntimeConfig {
            webhook_url: Some(url),
            ..MockConfig::default().runtime
        },
        webhook_secrets: vec!["wbhsec_one".into()],
        ..MockConfig::default()
    })
    .unwrap();
    let id = server.inquiry_id_at(0).unwrap();
    assert!(server.redact(&id));
    wait_for(&received, 3).await;
    {
        let deliveries = received.lock();
        assert_eq!(deliveries.len(), 3, "three attempts, then it gives up");
        for (signature, body) in deliveries.iter() {
            assert_eq!(signature.split(' ').count(), 1);
            assert!(signed_with(signature, "wbhsec_one", body));
        }
    }
    wait_until(
        Duration::from_secs(5),
        || server.stats().webhooks_failed >= 3,
        || format!("{} webhooks failed", server.stats().webhooks_failed),
    )
    .await;
    server.set_webhook_secrets(vec!["wbhsec_two".into()]);
    assert!(server.add_inquiry("created", false).is_some());
    wait_for(&received, 4).await;
    let (signature, body) = received.lock()[3].clone();
    assert!(signed_with(&signature, "wbhsec_two", &body));
    assert!(!signed_with(&signature, "wbhsec_one", &body));
}
