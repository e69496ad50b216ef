//! What a search page costs on a generated organization of 100,000 inquiries (run it built
//! with optimizations: `cargo test --release -p personafs-mock --test search_cost -- --ignored
//! --nocapture`). Prints the time of each kind of page; asserts only what the results are.

use std::time::{Duration, Instant};

use personafs_mock::{MockConfig, MockServer};
use reqwest::Client;
use serde_json::{Value, json};

async fn timed(
    client: &Client,
    server: &MockServer,
    what: &str,
    path: &str,
    body: &Value,
) -> Value {
    let started = Instant::now();
    let response = client
        .post(format!("{}/inquiries/search{path}", server.api_base()))
        .bearer_auth(server.api_key())
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let page: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    println!(
        "{what}: {:?} ({} results)",
        started.elapsed(),
        page["data"].as_array().unwrap().len()
    );
    page
}

#[tokio::test]
#[ignore = "a measurement; run in release"]
async fn search_page_cost_at_100_000() {
    let mut config = MockConfig {
        generate: 100_000,
        ..MockConfig::default()
    };
    config.runtime.rate_limit = 0;
    let server = MockServer::start(config).unwrap();
    let client = Client::new();
    let since = chrono::Utc::now() - chrono::Duration::minutes(2);
    let changes = Instant::now();
    for k in 0..500u64 {
        let id = server.inquiry_id_at(k * 199 % 100_000).unwrap();
        match k % 3 {
            0 => server.set_status(&id, "approved"),
            1 => server.add_document(&id, "late.pdf", 1000).is_some(),
            _ => k % 50 != 2 || server.redact(&id),
        };
    }
    println!("500 changes: {:?}", changes.elapsed());
    let delta = |t: String| {
        json!({"query": {"attribute": "updated_at", "operator": "gte", "value": t},
               "sort": {"attribute": "updated_at", "direction": "asc"}, "page": {"size": 100}})
    };
    let page = timed(
        &client,
        &server,
        "delta (changed since 2 min), page 1",
        "",
        &delta(since.to_rfc3339()),
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 100);
    let next = page["links"]["next"].as_str().unwrap().to_string();
    let origin = server.api_base().trim_end_matches("/api/v1").to_string();
    let started = Instant::now();
    let response = client
        .post(format!("{origin}{next}"))
        .bearer_auth(server.api_key())
        .body(delta(since.to_rfc3339()).to_string())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    println!("delta page 2: {:?}", started.elapsed());
    let epoch = "2026-05-31T23:58:00Z".to_string();
    timed(
        &client,
        &server,
        "updated since the generator's epoch - 2 min (first)",
        "",
        &delta(epoch.clone()),
    )
    .await;
    timed(
        &client,
        &server,
        "the same again (exact updated-at remembered)",
        "",
        &delta(epoch),
    )
    .await;
    let all_created = json!({"page": {"size": 100}});
    timed(
        &client,
        &server,
        "everything, created_at desc, page 1",
        "",
        &all_created,
    )
    .await;
    let deep = server.inquiry_id_at(90_000).unwrap();
    timed(
        &client,
        &server,
        "everything, created_at desc, after position 90,000",
        &format!("?page[after]={deep}"),
        &all_created,
    )
    .await;
    let all_updated =
        json!({"sort": {"attribute": "updated_at", "direction": "asc"}, "page": {"size": 100}});
    timed(
        &client,
        &server,
        "everything, updated_at asc, page 1",
        "",
        &all_updated,
    )
    .await;
    let all_updated_desc =
        json!({"sort": {"attribute": "updated_at", "direction": "desc"}, "page": {"size": 100}});
    timed(
        &client,
        &server,
        "everything, updated_at desc, page 1",
        "",
        &all_updated_desc,
    )
    .await;
    let pending = json!({"query": {"attribute": "status", "operator": "eq", "value": "pending"}, "page": {"size": 100}});
    timed(&client, &server, "status eq pending, page 1", "", &pending).await;
    let by_status =
        json!({"sort": {"attribute": "status", "direction": "asc"}, "page": {"size": 100}});
    timed(
        &client,
        &server,
        "everything, status asc, page 1",
        "",
        &by_status,
    )
    .await;
    let none = json!({"query": {"attribute": "reference_id", "operator": "eq", "value": "nobody"}});
    timed(&client, &server, "a query matching nothing", "", &none).await;
    assert!(changes.elapsed() < Duration::from_secs(600));
}
