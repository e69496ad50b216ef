//! `PersonaApi::search_updated_since` and `changes_since` through the real HTTP client against
//! the mock over loopback: the changed inquiries, oldest change first, over cursor pages; the
//! mock's index lag; a refusal (404) told apart; the body cap of every API answer.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::unlimited;
use personafs_client::{
    ApiKey, ClientConfig, Error, HttpClient, PersonaApi, SearchError, changes_since,
};
use personafs_mock::{MockConfig, MockServer};

fn mock(generate: usize) -> MockServer {
    MockServer::start(unlimited(generate, MockConfig::default().seed)).unwrap()
}

fn client(api_base: &str, key: &str) -> HttpClient {
    let mut config = ClientConfig::new(api_base, ApiKey::new(key));
    config.retry_base_delay = Duration::from_millis(5);
    config.budget = personafs_client::ratelimit::BudgetPolicy::unlimited();
    config.max_retries = 2;
    HttpClient::new(config).unwrap()
}

#[tokio::test]
async fn changes_since_walks_the_mocks_search_pages() {
    let server = mock(400);
    let api = client(&server.api_base(), &server.api_key());
    let since = Utc::now();
    // 130 changes of three kinds, a few milliseconds apart in batches.
    let mut changed = Vec::new();
    for k in 0..130u64 {
        let id = server.inquiry_id_at(k * 3).unwrap();
        let done = match k % 3 {
            0 => server.set_status(&id, "approved"),
            1 => server.add_document(&id, "late.pdf", 100).is_some(),
            _ => server.redact(&id),
        };
        if done {
            changed.push(id);
        }
        if k % 10 == 0 {
            common::next_millisecond();
        }
    }
    let changes = changes_since(&api, since, 10).await.unwrap();
    assert_eq!(changes.pages, 2);
    assert_eq!(server.stats().api_search, 2);
    let mut got: Vec<String> = changes.inquiries.iter().map(|i| i.id.clone()).collect();
    let times: Vec<_> = changes
        .inquiries
        .iter()
        .map(|i| i.updated_at.unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "oldest change first"
    );
    got.sort();
    changed.sort();
    assert_eq!(got, changed);
    // A summary has what the sparse fieldset asked for.
    let first = &changes.inquiries[0];
    assert!(first.status.is_some() && first.created_at.is_some());
    // One page by hand: the cursor of the first page leads to the second.
    let page = api.search_updated_since(since, None, 100).await.unwrap();
    assert_eq!(page.inquiries.len(), 100);
    let after = page.next_after.unwrap();
    assert_eq!(after, page.inquiries[99].id);
    let rest = api
        .search_updated_since(since, Some(&after), 100)
        .await
        .unwrap();
    assert_eq!(rest.inquiries.len(), changed.len() - 100);
    assert!(rest.next_after.is_none());
}

#[tokio::test]
async fn the_mocks_lag_hides_recent_changes() {
    let server = mock(50);
    server.set_runtime(personafs_mock::RuntimeConfig {
        search_lag_ms: 60_000,
        ..server.runtime()
    });
    let api = client(&server.api_base(), &server.api_key());
    let since = Utc::now() - chrono::Duration::seconds(1);
    let id = server.inquiry_id_at(3).unwrap();
    assert!(server.set_status(&id, "declined"));
    assert!(
        changes_since(&api, since, 3)
            .await
            .unwrap()
            .inquiries
            .is_empty()
    );
    server.set_runtime(personafs_mock::RuntimeConfig {
        search_lag_ms: 0,
        ..server.runtime()
    });
    let changes = changes_since(&api, since, 3).await.unwrap();
    assert_eq!(changes.inquiries.len(), 1);
    assert_eq!(changes.inquiries[0].status.as_deref(), Some("declined"));
}

#[tokio::test]
async fn a_refusal_and_an_oversized_answer_are_told_apart() {
    let server = mock(120);
    // A host without the search endpoint answers 404: search refused, fall back.
    let base = server.api_base().replace("/api/v1", "/api/v0");
    let api = client(&base, &server.api_key());
    match changes_since(&api, Utc::now(), 3).await {
        Err(SearchError::Refused(e)) => assert_eq!(e.status(), Some(404)),
        other => panic!("{other:?}"),
    }
    // A wrong key is a failure, not a refusal.
    let api = client(&server.api_base(), "persona_sandbox_wrong");
    match changes_since(&api, Utc::now(), 3).await {
        Err(SearchError::Failed(e)) => assert_eq!(e.status(), Some(401)),
        other => panic!("{other:?}"),
    }
    // Search answers are read under the same cap as every API answer.
    let mut config = ClientConfig::new(server.api_base(), ApiKey::new(server.api_key()));
    config.budget = personafs_client::ratelimit::BudgetPolicy::unlimited();
    config.max_response_size = 2_000;
    let api = HttpClient::new(config).unwrap();
    let since = Utc::now();
    for k in 0..60 {
        server.set_status(&server.inquiry_id_at(k).unwrap(), "approved");
    }
    match changes_since(&api, since, 3).await {
        Err(SearchError::Failed(Error::TooLarge { limit: 2_000, .. })) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_search_is_retried_as_a_list_page_is() {
    let server = mock(30);
    server.set_runtime(personafs_mock::RuntimeConfig {
        fail_rate: 0.3,
        ..server.runtime()
    });
    let mut config = ClientConfig::new(server.api_base(), ApiKey::new(server.api_key()));
    config.retry_base_delay = Duration::from_millis(1);
    config.budget = personafs_client::ratelimit::BudgetPolicy::unlimited();
    config.max_retries = 8;
    let api = HttpClient::new(config).unwrap();
    let since = Utc::now();
    assert!(server.set_status(&server.inquiry_id_at(1).unwrap(), "failed"));
    for _ in 0..12 {
        let changes = changes_since(&api, since, 3).await.unwrap();
        assert_eq!(changes.inquiries.len(), 1);
    }
    let stats = server.stats();
    assert!(stats.injected_failures > 0, "{stats:?}");
    // Each failure was answered before the endpoint, and asked again.
    assert_eq!(stats.api_search, 12);
    assert_eq!(stats.api_requests, 12 + stats.injected_failures);
}
