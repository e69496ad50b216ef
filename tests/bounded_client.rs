//! The client against a hostile server (tests/hostile_server): every body is read up to the
//! cap, every operation ends by its deadline whatever the server does, and no header carries
//! a signed URL on.

mod hostile_server;

use std::time::{Duration, Instant};

use hostile_server::*;
use personafs_client::{ApiKey, ClientConfig, Error, HttpClient, ListFilters, PersonaApi};

const DEADLINE: Duration = Duration::from_secs(2);
/// Slack over the deadline for a liveness bound (a loaded 2-core machine).
const SLACK: Duration = Duration::from_secs(3);

fn client(server: &HostileServer) -> HttpClient {
    let mut c = ClientConfig::new(server.api_base(), ApiKey::new("persona_sandbox_KEY"));
    c.operation_timeout = DEADLINE;
    c.retry_base_delay = Duration::from_millis(50);
    c.max_response_size = 8 << 20;
    HttpClient::new(c).unwrap()
}

fn setup() -> (tokio::runtime::Runtime, HostileServer) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = HostileServer::start(&rt);
    (rt, server)
}

#[test]
fn a_huge_body_fails_at_the_cap_naming_it() {
    let (rt, server) = setup();
    let c = client(&server);
    for id in [HUGE_BODY, HUGE_LENGTH] {
        let start = Instant::now();
        let err = rt.block_on(c.retrieve_inquiry(id)).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{id}: {err:?}");
        let text = err.to_string();
        assert!(
            text.contains("8 MiB") && text.contains("--max-response-size"),
            "{text}"
        );
        assert!(
            start.elapsed() < DEADLINE + SLACK,
            "{id}: {:?}",
            start.elapsed()
        );
    }
    // The announced 2 GB was refused before reading: far less than it was sent.
    assert!(
        server
            .huge_bytes_sent
            .load(std::sync::atomic::Ordering::Relaxed)
            < 1 << 30
    );
    server.set_list_mode(ListMode::Huge);
    let err = rt
        .block_on(c.list_page(&ListFilters::default(), None, 100))
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    // Good inquiries still answer from the same client.
    rt.block_on(c.retrieve_inquiry(GOOD[0])).unwrap();
}

#[test]
fn every_wait_ends_by_the_operation_deadline() {
    let (rt, server) = setup();
    let c = client(&server);
    for id in [NO_HEADERS, TRICKLE, RATE_LIMITED] {
        let start = Instant::now();
        let err = rt.block_on(c.retrieve_inquiry(id)).unwrap_err();
        let took = start.elapsed();
        assert!(took < DEADLINE + SLACK, "{id}: {took:?} ({err})");
        match id {
            RATE_LIMITED => assert_eq!(err.status(), Some(429), "{err}"),
            _ => assert!(err.to_string().contains("2 s deadline"), "{id}: {err}"),
        }
    }
    for mode in [ListMode::Silent, ListMode::Trickle, ListMode::Limited] {
        server.set_list_mode(mode);
        let start = Instant::now();
        let err = rt
            .block_on(c.list_page(&ListFilters::default(), None, 100))
            .unwrap_err();
        assert!(start.elapsed() < DEADLINE + SLACK, "{mode:?}: {err}");
    }
}

#[test]
fn a_trickling_file_fails_at_the_minimum_rate() {
    let (rt, server) = setup();
    let c = client(&server);
    let url = format!("{}/files/trickle.jpg?access_token=t", server.base());
    let start = Instant::now();
    let mut out = Vec::new();
    let err = rt.block_on(c.download(&url, 0, &mut out)).unwrap_err();
    let took = start.elapsed();
    assert!(
        took >= DEADLINE && took < DEADLINE + SLACK,
        "{took:?}: {err}"
    );
    assert!(err.to_string().contains("under the minimum"), "{err}");
    // A good file is not held to more than it can give.
    let url = format!("{}/files/good.jpg?access_token=t", server.base());
    let mut out = Vec::new();
    assert_eq!(rt.block_on(c.download(&url, 0, &mut out)).unwrap(), 100_000);
}

#[test]
fn a_body_shorter_than_its_length_fails_by_the_deadline() {
    let (rt, server) = setup();
    let c = client(&server);
    let url = format!("{}/files/short.jpg?access_token=t", server.base());
    let start = Instant::now();
    let mut out = Vec::new();
    let err = rt.block_on(c.download(&url, 0, &mut out)).unwrap_err();
    assert!(
        start.elapsed() < DEADLINE + SLACK,
        "{:?}: {err}",
        start.elapsed()
    );
}

#[test]
fn a_redirect_carries_no_referer_and_no_token() {
    let (rt, server) = setup();
    let c = client(&server);
    let url = format!(
        "{}/files/redirect.jpg?access_token={SECRET_TOKEN}",
        server.base()
    );
    let mut out = Vec::new();
    assert_eq!(rt.block_on(c.download(&url, 0, &mut out)).unwrap(), 100_000);
    let heads = server.heads.lock().clone();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(heads[1].starts_with("GET /files/good.jpg"), "{}", heads[1]);
    assert!(
        !heads[1].contains(SECRET_TOKEN) && !heads[1].to_ascii_lowercase().contains("referer"),
        "the second request repeats the signed URL: {}",
        heads[1]
    );
}
