//! `POST /api/v1/inquiries/search` over real HTTP: every operator and attribute and the
//! boolean clauses against a brute-force evaluation of the listed inquiries, the nesting and
//! clause limits, sort both ways, cursor pages both ways, `fields`, the 400s, the index lag
//! (`search_lag`), and the status-change endpoint.

use std::time::{Duration, Instant};

use chrono::DateTime;
use personafs_mock::{MockConfig, MockServer};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

fn server(generate: usize) -> MockServer {
    let mut config = MockConfig {
        generate,
        seed: 7,
        ..MockConfig::default()
    };
    config.runtime.rate_limit = 0;
    MockServer::start(config).unwrap()
}

/// POST `body` to the search path with `query` (a query string, maybe empty, or a link).
async fn search(
    client: &Client,
    server: &MockServer,
    path: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let origin = server.api_base().trim_end_matches("/api/v1").to_string();
    let url = if path.starts_with('/') {
        format!("{origin}{path}")
    } else {
        format!("{}/inquiries/search{path}", server.api_base())
    };
    let response = client
        .post(url)
        .bearer_auth(server.api_key())
        .header("Persona-Version", "2023-01-05")
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (
        status,
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap(),
    )
}

/// Every inquiry, newest first, from the list endpoint.
async fn listed(client: &Client, server: &MockServer) -> Vec<Value> {
    let mut all = Vec::new();
    let mut url = format!("{}/inquiries?page[size]=100", server.api_base());
    loop {
        let body = get_json(client, server, &url).await;
        all.extend(body["data"].as_array().unwrap().iter().cloned());
        match body["links"]["next"].as_str() {
            Some(next) => {
                url = format!("{}{}", server.api_base().trim_end_matches("/api/v1"), next)
            }
            None => return all,
        }
    }
}

/// Ids of every result, following `next` links (re-POSTing the original body).
async fn walk(client: &Client, server: &MockServer, body: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    let (status, mut page) = search(client, server, "", body).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page["links"]["prev"].is_null());
    loop {
        ids.extend(ids_of(&page));
        let Some(next) = page["links"]["next"].as_str().map(String::from) else {
            return ids;
        };
        let (status, again) = search(client, server, &next, body).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        page = again;
        assert!(page["links"]["prev"].is_string(), "a later page links back");
    }
}

async fn get_json(client: &Client, server: &MockServer, url: &str) -> Value {
    let response = client
        .get(url)
        .bearer_auth(server.api_key())
        .send()
        .await
        .unwrap();
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

async fn post_json(client: &Client, url: String, body: Value) -> reqwest::Response {
    client
        .post(url)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// Returns once the wall clock is in a later millisecond than when called: a change made
/// after it is stamped later than one made before (the mock stamps in whole milliseconds).
fn next_millisecond() {
    let now = chrono::Utc::now().timestamp_millis();
    while chrono::Utc::now().timestamp_millis() <= now {
        std::hint::spin_loop();
    }
}

fn ids_of(page: &Value) -> Vec<String> {
    (page["data"].as_array().unwrap().iter())
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

fn millis(text: &str) -> i64 {
    match DateTime::parse_from_rfc3339(text) {
        Ok(t) => t.timestamp_millis(),
        Err(_) => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis(),
    }
}

/// What search compares for `attribute` of one listed inquiry.
fn attribute(inquiry: &Value, attribute: &str) -> Option<String> {
    let a = &inquiry["attributes"];
    let value = match attribute {
        "status" => &a["status"],
        "created_at" => &a["created-at"],
        "updated_at" => &a["updated-at"],
        "reference_id" => &a["reference-id"],
        // A legacy template counts, as for the list filter.
        "inquiry_template_id" => {
            let related = |name: &str| inquiry["relationships"][name]["data"]["id"].as_str();
            let id = related("inquiry-template").or_else(|| related("template"));
            return id.map(String::from);
        }
        other => panic!("{other}"),
    };
    value.as_str().map(String::from)
}

/// The brute-force truth of a query on one inquiry.
fn holds(query: &Value, inquiry: &Value) -> bool {
    if let Some(all) = query.get("and") {
        return all.as_array().unwrap().iter().all(|q| holds(q, inquiry));
    }
    if let Some(any) = query.get("or") {
        return any.as_array().unwrap().iter().any(|q| holds(q, inquiry));
    }
    if let Some(inner) = query.get("not") {
        return !holds(inner, inquiry);
    }
    let name = query["attribute"].as_str().unwrap();
    let want = query["value"].as_str().unwrap();
    let Some(have) = attribute(inquiry, name) else {
        return false;
    };
    let ordering = if name.ends_with("_at") {
        millis(&have).cmp(&millis(want))
    } else {
        have.as_str().cmp(want)
    };
    use std::cmp::Ordering::*;
    match query["operator"].as_str().unwrap() {
        "eq" => ordering == Equal,
        "gt" => ordering == Greater,
        "gte" => ordering != Less,
        "lt" => ordering == Less,
        "lte" => ordering != Greater,
        other => panic!("{other}"),
    }
}

fn expected(all: &[Value], query: &Value) -> Vec<String> {
    (all.iter())
        .filter(|i| holds(query, i))
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_operator_and_attribute_matches_brute_force() {
    let server = server(80);
    let client = Client::new();
    let all = listed(&client, &server).await;
    assert_eq!(all.len(), 80);
    // Some inquiries changed, so held ones are searched beside generated ones.
    let ids: Vec<String> = all
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert!(server.set_status(&ids[5], "approved"));
    assert!(server.add_document(&ids[9], "late.pdf", 1000).is_some());
    server.add_inquiry("pending", false).unwrap();
    let all = listed(&client, &server).await;
    let middle = &all[all.len() / 2];
    let mut nonempty = 0;
    for name in [
        "status",
        "created_at",
        "updated_at",
        "reference_id",
        "inquiry_template_id",
    ] {
        let value = attribute(middle, name).unwrap();
        for op in ["eq", "gt", "gte", "lt", "lte"] {
            let query = json!({"attribute": name, "operator": op, "value": value});
            let want = expected(&all, &query);
            nonempty += usize::from(!want.is_empty());
            let (status, page) = search(
                &client,
                &server,
                "",
                &json!({"query": query, "page": {"size": 100}}),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            // Default order: created_at descending, as the list.
            assert_eq!(ids_of(&page), want, "{name} {op} {value}");
        }
    }
    assert!(nonempty >= 20, "the values chosen select something");
    // A bare date compares as its midnight (UTC).
    let query = json!({"attribute": "created_at", "operator": "gte", "value": "2026-03-01"});
    let (_, page) = search(
        &client,
        &server,
        "",
        &json!({"query": query, "page": {"size": 100}}),
    )
    .await;
    let want = expected(&all, &query);
    assert!(!want.is_empty() && want.len() < all.len());
    assert_eq!(ids_of(&page), want);
}

#[tokio::test]
async fn boolean_clauses_to_the_spec_limits() {
    let server = server(60);
    let client = Client::new();
    let all = listed(&client, &server).await;
    let created = attribute(&all[30], "created_at").unwrap();
    let updated = attribute(&all[20], "updated_at").unwrap();
    let status = |s: &str| json!({"attribute": "status", "operator": "eq", "value": s});
    let queries = [
        json!({"or": [status("approved"), status("declined"), status("pending")]}),
        json!({"and": [
            {"or": [status("approved"), status("completed")]},
            {"attribute": "created_at", "operator": "lt", "value": created},
        ]}),
        json!({"not": status("approved")}),
        json!({"and": [
            {"not": {"attribute": "updated_at", "operator": "gte", "value": updated}},
            {"attribute": "created_at", "operator": "lte", "value": created},
        ]}),
        json!({"or": [
            {"and": [status("expired"), {"attribute": "updated_at", "operator": "gt", "value": updated}]},
            {"not": status("created")},
        ]}),
    ];
    for query in queries {
        let (code, page) = search(
            &client,
            &server,
            "",
            &json!({"query": query, "page": {"size": 100}}),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{page}");
        assert_eq!(ids_of(&page), expected(&all, &query), "{query}");
    }
    // 20 clauses are accepted, 21 refused; 2 levels accepted, 3 refused.
    let twenty: Vec<Value> = (0..20).map(|_| status("approved")).collect();
    let (code, _) = search(&client, &server, "", &json!({"query": {"or": twenty}})).await;
    assert_eq!(code, StatusCode::OK);
    let twenty_one: Vec<Value> = (0..21).map(|_| status("approved")).collect();
    let (code, body) = search(&client, &server, "", &json!({"query": {"and": twenty_one}})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"][0]["details"]
            .as_str()
            .unwrap()
            .contains("20")
    );
    let deep = json!({"and": [{"or": [{"not": status("approved")}]}]});
    let (code, body) = search(&client, &server, "", &json!({"query": deep})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"][0]["details"]
            .as_str()
            .unwrap()
            .contains("deeper")
    );
    let two = json!({"and": [{"not": status("approved")}]});
    let (code, _) = search(&client, &server, "", &json!({"query": two})).await;
    assert_eq!(code, StatusCode::OK);
}

#[tokio::test]
async fn malformed_requests_are_400_with_a_json_api_error() {
    let server = server(5);
    let client = Client::new();
    let leaf =
        |a: &str, o: &str, v: Value| json!({"query": {"attribute": a, "operator": o, "value": v}});
    let cases = [
        ("", leaf("email", "eq", json!("x"))),
        ("", leaf("status", "ne", json!("approved"))),
        ("", leaf("status", "eq", json!(5))),
        ("", leaf("status", "eq", json!(true))),
        ("", leaf("created_at", "gte", json!("yesterday"))),
        ("", leaf("updated_at", "gte", json!(1_700_000_000))),
        (
            "",
            json!({"query": {"attribute": "status", "operator": "eq"}}),
        ),
        (
            "",
            json!({"query": {"attribute": "status", "operator": "eq", "value": "x", "extra": 1}}),
        ),
        ("", json!({"query": {"and": [], }})),
        ("", json!({"query": {"and": {"attribute": "status"}}})),
        ("", json!({"query": {"not": []}})),
        ("", json!({"query": {"and": [], "or": []}})),
        ("", json!({"query": "status = approved"})),
        (
            "",
            json!({"sort": {"attribute": "reference_id", "direction": "asc"}}),
        ),
        (
            "",
            json!({"sort": {"attribute": "updated_at", "direction": "up"}}),
        ),
        ("", json!({"sort": {"attribute": "updated_at"}})),
        ("", json!({"page": {"size": 0}})),
        ("", json!({"page": {"size": 101}})),
        ("", json!({"page": {"after": 3}})),
        ("", json!({"filter": {}})),
        ("?page[size]=500", json!({})),
        ("?page[after]=inq_nope", json!({})),
        ("?page[bogus]=1", json!({})),
    ];
    for (query, body) in &cases {
        let (code, answer) = search(&client, &server, query, body).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{query} {body} → {answer}");
        let error = &answer["errors"][0];
        assert_eq!(error["title"], "Bad Request", "{answer}");
        assert!(error["details"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let ids = server.inquiry_ids();
    let both = format!("?page[after]={}&page[before]={}", ids[0], ids[1]);
    let (code, _) = search(&client, &server, &both, &json!({})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    // Not JSON at all.
    let response = client
        .post(format!("{}/inquiries/search", server.api_base()))
        .bearer_auth(server.api_key())
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(server.stats().api_search, cases.len() as u64 + 2);
}

/// The key a sort orders by, for checking.
fn key(inquiry: &Value, attribute_name: &str) -> String {
    let value = attribute(inquiry, attribute_name).unwrap();
    if attribute_name.ends_with("_at") {
        format!("{:020}", millis(&value))
    } else {
        value
    }
}

#[tokio::test]
async fn sorts_both_ways_and_pages_both_ways() {
    let server = server(45);
    let client = Client::new();
    let unredacted = (listed(&client, &server).await.into_iter())
        .rev()
        .find(|i| i["attributes"]["redacted-at"].is_null())
        .unwrap();
    assert!(server.set_status(unredacted["id"].as_str().unwrap(), "declined"));
    let all = listed(&client, &server).await;
    let by_id = |id: &String| all.iter().find(|i| i["id"] == id.as_str()).unwrap().clone();
    for attribute_name in ["created_at", "updated_at", "status"] {
        for direction in ["asc", "desc"] {
            let body = json!({"sort": {"attribute": attribute_name, "direction": direction},
                              "page": {"size": 7}});
            let forward = walk(&client, &server, &body).await;
            assert_eq!(forward.len(), 45, "{attribute_name} {direction}");
            let mut unique = forward.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), 45, "no inquiry twice");
            let keys: Vec<String> = forward
                .iter()
                .map(|id| key(&by_id(id), attribute_name))
                .collect();
            let mut sorted = keys.clone();
            sorted.sort();
            if direction == "desc" {
                sorted.reverse();
            }
            assert_eq!(keys, sorted, "{attribute_name} {direction}");
            // Backward from the last page by prev links gives the same order.
            let (_, mut page) = search(
                &client,
                &server,
                &format!("?page[before]={}", ids_after(&forward)),
                &body,
            )
            .await;
            let mut backward: Vec<String> = Vec::new();
            loop {
                let mut these = ids_of(&page);
                these.extend(backward);
                backward = these;
                let Some(prev) = page["links"]["prev"].as_str().map(String::from) else {
                    break;
                };
                assert!(
                    prev.starts_with("/api/v1/inquiries/search?page%5Bbefore%5D="),
                    "{prev}"
                );
                assert!(prev.contains("page%5Bsize%5D=7"), "{prev}");
                page = search(&client, &server, &prev, &body).await.1;
            }
            assert_eq!(
                &backward[..],
                &forward[..44],
                "{attribute_name} {direction}"
            );
        }
    }
}

/// The last id: paging before it yields all the others.
fn ids_after(forward: &[String]) -> &str {
    forward.last().unwrap()
}

#[tokio::test]
async fn page_size_cursors_links_and_fields() {
    let server = server(25);
    let client = Client::new();
    let ids = server.inquiry_ids();
    // page[size] in the query string wins over the body's.
    let (_, page) = search(
        &client,
        &server,
        "?page[size]=3",
        &json!({"page": {"size": 5}}),
    )
    .await;
    assert_eq!(ids_of(&page), ids[..3].to_vec());
    let next = page["links"]["next"].as_str().unwrap();
    assert_eq!(
        next,
        format!(
            "/api/v1/inquiries/search?page%5Bafter%5D={}&page%5Bsize%5D=3",
            ids[2]
        )
    );
    assert!(page["links"]["prev"].is_null());
    // The body's page works alone; a body cursor too.
    let (_, page) = search(
        &client,
        &server,
        "",
        &json!({"page": {"size": 4, "after": ids[1]}}),
    )
    .await;
    assert_eq!(ids_of(&page), ids[2..6].to_vec());
    assert!(
        page["links"]["prev"]
            .as_str()
            .unwrap()
            .contains(&format!("page%5Bbefore%5D={}", ids[2]))
    );
    let (_, page) = search(
        &client,
        &server,
        "",
        &json!({"page": {"before": ids[6], "size": 2}}),
    )
    .await;
    assert_eq!(ids_of(&page), ids[4..6].to_vec());
    // The last page has no next; a page past the end is empty with both links null.
    let (_, page) = search(
        &client,
        &server,
        &format!("?page[after]={}", ids[20]),
        &json!({}),
    )
    .await;
    assert_eq!(ids_of(&page), ids[21..].to_vec());
    assert!(page["links"]["next"].is_null());
    let (_, page) = search(
        &client,
        &server,
        &format!("?page[after]={}", ids[24]),
        &json!({}),
    )
    .await;
    assert!(ids_of(&page).is_empty());
    assert!(page["links"]["next"].is_null() && page["links"]["prev"].is_null());
    // Default page size is 10.
    let (_, page) = search(&client, &server, "", &json!({})).await;
    assert_eq!(ids_of(&page).len(), 10);
    // Sparse fieldsets: only the named attributes, and links keep them.
    let (_, page) = search(
        &client,
        &server,
        "?fields[inquiry]=status,updated-at&page[size]=2",
        &json!({}),
    )
    .await;
    for item in page["data"].as_array().unwrap() {
        let mut names: Vec<&String> = item["attributes"].as_object().unwrap().keys().collect();
        names.sort();
        assert_eq!(names, ["status", "updated-at"]);
        assert!(item["relationships"].is_object());
    }
    assert!(
        page["links"]["next"]
            .as_str()
            .unwrap()
            .contains("fields%5Binquiry%5D=status%2Cupdated-at")
    );
}

async fn set_config(client: &Client, server: &MockServer, patch: Value) -> StatusCode {
    let origin = server.api_base().trim_end_matches("/api/v1").to_string();
    post_json(client, format!("{origin}/_mock/config"), patch)
        .await
        .status()
}

#[tokio::test]
async fn search_shows_the_organization_as_it_was_search_lag_ago() {
    let server = server(30);
    let client = Client::new();
    assert_eq!(
        set_config(&client, &server, json!({"search_lag": "1500ms"})).await,
        StatusCode::OK
    );
    assert_eq!(server.runtime().search_lag_ms, 1500);
    assert_eq!(
        set_config(&client, &server, json!({"search_lag": true})).await,
        StatusCode::BAD_REQUEST
    );
    let all = listed(&client, &server).await;
    let unredacted: Vec<&Value> = (all.iter())
        .filter(|i| {
            i["attributes"]["redacted-at"].is_null() && i["attributes"]["status"] != "approved"
        })
        .collect();
    let (changed, redacted) = (
        unredacted[0]["id"].as_str().unwrap().to_string(),
        unredacted[1]["id"].as_str().unwrap().to_string(),
    );
    let before = chrono::Utc::now().to_rfc3339();
    let changes_at = Instant::now();
    assert!(server.set_status(&changed, "approved"));
    next_millisecond();
    assert!(server.redact(&redacted));
    next_millisecond();
    let added = server.add_inquiry("completed", false).unwrap();
    let recent = json!({
        "query": {"attribute": "updated_at", "operator": "gte", "value": before},
        "sort": {"attribute": "updated_at", "direction": "asc"},
        "page": {"size": 100},
    });
    let everything = json!({"page": {"size": 100}});
    let (_, page) = search(&client, &server, "", &recent).await;
    assert!(
        changes_at.elapsed() < Duration::from_millis(1500),
        "the machine was too slow to test the lag"
    );
    assert!(
        ids_of(&page).is_empty(),
        "changes younger than the lag are not visible: {page}"
    );
    let (_, page) = search(&client, &server, "", &everything).await;
    let found = ids_of(&page);
    assert!(
        !found.contains(&added),
        "an inquiry added within the lag is not visible"
    );
    let old = |id: &str| {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap()
            .clone()
    };
    assert_ne!(old(&changed)["attributes"]["status"], "approved");
    assert!(
        old(&redacted)["attributes"]["redacted-at"].is_null(),
        "the redaction is not visible yet"
    );
    assert!(old(&redacted)["attributes"]["name-first"].is_string());
    // Once the lag has passed, all three are there, in updated_at order. (The lag is the
    // mock's real time: it is what is tested.)
    tokio::time::sleep(Duration::from_millis(1600).saturating_sub(changes_at.elapsed())).await;
    let (_, page) = search(&client, &server, "", &recent).await;
    assert_eq!(
        ids_of(&page),
        [changed.clone(), redacted.clone(), added.clone()]
    );
    assert_eq!(page["data"][0]["attributes"]["status"], "approved");
    assert!(page["data"][1]["attributes"]["redacted-at"].is_string());
    // With the lag at 0 again, a change is visible at once.
    assert_eq!(
        set_config(&client, &server, json!({"search_lag": 0})).await,
        StatusCode::OK
    );
    assert!(server.set_status(&changed, "declined"));
    let (_, page) = search(&client, &server, "", &recent).await;
    assert_eq!(ids_of(&page).last(), Some(&changed));
}

#[tokio::test]
async fn status_change_endpoint_moves_status_timestamps_and_updated_at() {
    let server = server(20);
    let client = Client::new();
    let origin = server.api_base().trim_end_matches("/api/v1").to_string();
    let id = server.add_inquiry("pending", false).unwrap();
    let post = |path: String, body: Value| post_json(&client, path, body);
    let mut last = String::new();
    for status in ["completed", "approved"] {
        let response = post(
            format!("{origin}/_mock/inquiries/{id}/status"),
            json!({"status": status}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        let attributes = &body["data"]["attributes"];
        assert_eq!(attributes["status"], status);
        let updated = attributes["updated-at"].as_str().unwrap().to_string();
        assert!(millis(&updated) > millis(&last.clone().max("1970-01-01T00:00:00Z".into())));
        assert!(millis(&updated) >= millis(attributes["created-at"].as_str().unwrap()));
        last = updated;
    }
    let retrieved = get_json(
        &client,
        &server,
        &format!("{}/inquiries/{id}", server.api_base()),
    )
    .await;
    let attributes = &retrieved["data"]["attributes"];
    assert_eq!(attributes["status"], "approved");
    assert_eq!(attributes["decisioned-at"], last.as_str());
    assert!(attributes["completed-at"].is_string());
    // Events for each status reached.
    let url = format!("{}/events?filter[object-id]={id}", server.api_base());
    let events = get_json(&client, &server, &url).await;
    let names: Vec<&str> = (events["data"].as_array().unwrap().iter())
        .map(|e| e["attributes"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"inquiry.completed") && names.contains(&"inquiry.approved"),
        "{names:?}"
    );
    // A generated inquiry too; refusals.
    let generated = server.inquiry_ids()[10].clone();
    assert!(server.set_status(&generated, "needs_review"));
    let response = post(
        format!("{origin}/_mock/inquiries/{generated}/status"),
        json!({"status": "shipped"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = post(
        format!("{origin}/_mock/inquiries/inq_nope/status"),
        json!({"status": "approved"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(server.redact(&generated));
    let response = post(
        format!("{origin}/_mock/inquiries/{generated}/status"),
        json!({"status": "approved"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(server.stats().api_search, 0);
}

#[tokio::test]
async fn a_delta_search_over_100_000_inquiries_builds_only_what_changed() {
    let server = server(100_000);
    let client = Client::new();
    let since = chrono::Utc::now().to_rfc3339();
    let ids: Vec<String> = [5u64, 50_000, 99_999]
        .iter()
        .map(|&p| server.inquiry_id_at(p).unwrap())
        .collect();
    // In different milliseconds, so their updated-at order is theirs.
    assert!(server.set_status(&ids[0], "approved"));
    next_millisecond();
    assert!(server.add_document(&ids[1], "a.pdf", 100).is_some());
    next_millisecond();
    assert!(server.redact(&ids[2]));
    let body = json!({
        "query": {"attribute": "updated_at", "operator": "gte", "value": since},
        "sort": {"attribute": "updated_at", "direction": "asc"},
        "page": {"size": 100},
    });
    let started = Instant::now();
    let (status, page) = search(&client, &server, "", &body).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids_of(&page), ids);
    assert!(page["links"]["next"].is_null());
    // Even unoptimized, nothing close to building 100,000 inquiries.
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test]
async fn every_change_moves_updated_at_even_within_one_millisecond() {
    let server = server(3);
    let client = Client::new();
    let updated = |server: &MockServer, id: &str| {
        let client = client.clone();
        let url = format!("{}/inquiries/{id}", server.api_base());
        let key = server.api_key();
        async move {
            let response = client.get(url).bearer_auth(key).send().await.unwrap();
            let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            millis(body["data"]["attributes"]["updated-at"].as_str().unwrap())
        }
    };
    let id = server.add_inquiry("pending", false).unwrap();
    let created = updated(&server, &id).await;
    // Back to back, so several land in the same millisecond.
    assert!(server.set_status(&id, "completed"));
    assert!(server.add_document(&id, "a.pdf", 10).is_some());
    assert!(server.set_status(&id, "approved"));
    assert!(server.redact(&id));
    let after = updated(&server, &id).await;
    assert!(
        after >= created + 4,
        "four changes, four later milliseconds: {created} → {after}"
    );
}
