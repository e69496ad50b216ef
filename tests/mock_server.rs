//! The mock Persona server over real HTTP.

mod mock_support;

use std::time::{Duration, Instant};

use mock_support::{FRONT_LEN, PDF_LEN, dataset, file_bytes, find_str};
use personafs_mock::{MockConfig, MockServer, MockStats};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

/// reqwest is built without its `json` feature: parse bodies here.
trait JsonBody {
    async fn json_body(self) -> Value;
}

impl JsonBody for Response {
    async fn json_body(self) -> Value {
        let bytes = self.bytes().await.unwrap();
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
    }
}

struct Harness {
    server: MockServer,
    client: Client,
}

impl Harness {
    fn new() -> Harness {
        Self::with(MockConfig::default())
    }

    fn with(config: MockConfig) -> Harness {
        Harness {
            server: MockServer::start_with_dataset(config, dataset()).expect("mock starts"),
            client: Client::new(),
        }
    }

    /// The API host's origin, for the relative links the list endpoint gives.
    fn origin(&self) -> String {
        self.server
            .api_base()
            .trim_end_matches("/api/v1")
            .to_string()
    }

    async fn get_versioned(&self, path_and_query: &str, version: &str) -> Response {
        self.client
            .get(format!("{}{path_and_query}", self.server.api_base()))
            .bearer_auth(self.server.api_key())
            .header("Persona-Version", version)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path_and_query: &str) -> Response {
        self.get_versioned(path_and_query, "2023-01-05").await
    }

    async fn json(&self, path_and_query: &str) -> Value {
        let response = self.get(path_and_query).await;
        assert_eq!(response.status(), StatusCode::OK, "{path_and_query}");
        response.json_body().await
    }

    async fn list_ids(&self, query: &str) -> Vec<String> {
        let body = self.json(&format!("/inquiries?{query}")).await;
        ids(&body)
    }

    async fn front_url(&self) -> String {
        let body = self.json("/inquiries/inq_6?include=documents").await;
        find_url(&body, "front-photo")
    }

    async fn stats(&self) -> MockStats {
        let url = format!("{}/_mock/stats", self.origin());
        serde_json::from_value(self.client.get(url).send().await.unwrap().json_body().await)
            .unwrap()
    }

    async fn configure(&self, patch: Value) -> Response {
        let url = format!("{}/_mock/config", self.origin());
        self.client
            .post(url)
            .header("Content-Type", "application/json")
            .body(patch.to_string())
            .send()
            .await
            .unwrap()
    }
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

fn find_url(body: &Value, attribute: &str) -> String {
    let object = body["included"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| !o["attributes"][attribute].is_null())
        .unwrap_or_else(|| panic!("no {attribute} in {body}"));
    object["attributes"][attribute]["url"]
        .as_str()
        .unwrap()
        .to_string()
}

fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn requests_without_the_key_get_401_with_persona_error_body() {
    let h = Harness::new();
    let url = format!("{}/inquiries", h.server.api_base());
    for request in [
        h.client.get(&url),
        h.client.get(&url).bearer_auth("persona_sandbox_wrong"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(header(&response, "request-id").starts_with("req_"));
        header(&response, "ratelimit-limit");
        let body: Value = response.json_body().await;
        assert_eq!(
            body["errors"][0]["title"],
            "Must be authenticated to access this endpoint"
        );
    }
    let stats = h.server.stats();
    assert_eq!((stats.unauthorized, stats.api_list), (2, 0));
}

#[tokio::test]
async fn list_pages_over_three_pages_by_next_links_and_back_by_prev() {
    let h = Harness::new();
    let mut url = format!("{}/inquiries?page%5Bsize%5D=2", h.server.api_base());
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    loop {
        let response = h
            .client
            .get(&url)
            .bearer_auth(h.server.api_key())
            .send()
            .await
            .unwrap();
        let body: Value = response.json_body().await;
        seen.extend(ids(&body));
        pages.push(body.clone());
        match body["links"]["next"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with("/api/v1/inquiries?page%5Bafter%5D="),
                    "{next}"
                );
                url = format!("{}{next}", h.origin());
            }
            None => break,
        }
    }
    assert_eq!(pages.len(), 3);
    assert_eq!(seen, h.server.inquiry_ids());
    assert_eq!(seen[0], "inq_6", "newest first");
    assert!(pages[0]["links"]["prev"].is_null());
    let prev = pages[2]["links"]["prev"].as_str().unwrap();
    let back: Value = h
        .client
        .get(format!("{}{prev}", h.origin()))
        .bearer_auth(h.server.api_key())
        .send()
        .await
        .unwrap()
        .json_body()
        .await;
    assert_eq!(ids(&back), ids(&pages[1]));
    assert_eq!(h.list_ids("").await.len(), 6, "default page size 10");
}

#[tokio::test]
async fn list_filters_select_inquiries() {
    let h = Harness::new();
    assert_eq!(
        h.list_ids("filter[status]=approved,declined").await,
        ["inq_5", "inq_2", "inq_1"]
    );
    assert_eq!(h.list_ids("filter[reference-id]=ref-3").await, ["inq_3"]);
    assert_eq!(
        h.list_ids("filter[inquiry-id]=inq_2,inq_4").await,
        ["inq_4", "inq_2"]
    );
    assert_eq!(
        h.list_ids("filter[account-id]=act_A").await,
        ["inq_5", "inq_3", "inq_1"]
    );
    assert_eq!(
        h.list_ids("filter[inquiry-template-id]=itmpl_Y").await,
        ["inq_6", "inq_5", "inq_4"]
    );
    assert_eq!(
        h.list_ids(
            "filter[created-at-start]=2024-01-03T00:00:00Z&filter[created-at-end]=2024-01-04"
        )
        .await,
        ["inq_4", "inq_3"]
    );
    // Filters are kept in the next link.
    let body = h
        .json("/inquiries?filter[account-id]=act_B&page[size]=1")
        .await;
    let next = body["links"]["next"].as_str().unwrap();
    assert!(next.contains("filter%5Baccount-id%5D=act_B"), "{next}");
    for bad in [
        "page[size]=0",
        "page[size]=101",
        "filter[created-at-start]=soon",
        "include=documents",
    ] {
        let response = h.get(&format!("/inquiries?{bad}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn include_follows_the_persona_version() {
    let h = Harness::new();
    let types = |body: Value| -> Vec<String> {
        body["included"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["type"].as_str().unwrap().to_string())
            .collect()
    };
    let old: Value = h.get("/inquiries/inq_6").await.json_body().await;
    assert_eq!(types(old), ["document/government-id", "document/generic"]);
    let new = h.get_versioned("/inquiries/inq_6", "2025-12-08").await;
    assert!(types(new.json_body().await).is_empty());
    let explicit = h
        .get_versioned(
            "/inquiries/inq_6?include=selfies,verifications",
            "2025-12-08",
        )
        .await;
    assert_eq!(
        types(explicit.json_body().await),
        ["selfie/profile-and-center", "verification/selfie"]
    );
    let unknown = h.get_versioned("/inquiries/inq_6", "2099-01-01").await;
    assert_eq!(
        types(unknown.json_body().await).len(),
        2,
        "unknown = 2023-01-05"
    );
    assert_eq!(
        h.get("/inquiries/inq_nope").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn signed_urls_download_with_ranges_and_head() {
    downloads_with_ranges_and_head(&Harness::new()).await;
}

#[tokio::test]
async fn a_files_host_keeping_served_chunks_sends_the_same_bytes_and_none_of_a_redacted_file() {
    let h = Harness::with(MockConfig {
        files_memo: 1 << 20,
        ..MockConfig::default()
    });
    // Twice: the second time every chunk is one kept from the first.
    downloads_with_ranges_and_head(&h).await;
    let url = h.front_url().await;
    let again = h.client.get(&url).send().await.unwrap();
    assert_eq!(again.bytes().await.unwrap(), file_bytes(FRONT_LEN, 1));
    assert!(h.server.redact("inq_6"));
    assert_eq!(
        h.client.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

/// GET whole and by ranges, HEAD, and a request carrying `Authorization`, on a fresh harness.
async fn downloads_with_ranges_and_head(h: &Harness) {
    let url = h.front_url().await;
    assert!(url.starts_with(&format!(
        "{}/front%20photo.jpg?access_token=",
        h.server.files_base()
    )));
    let response = h.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "image/jpeg");
    assert_eq!(header(&response, "content-length"), FRONT_LEN.to_string());
    assert_eq!(response.bytes().await.unwrap(), file_bytes(FRONT_LEN, 1));

    let part = h
        .client
        .get(&url)
        .header("Range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&part, "content-range"),
        format!("bytes 1000-1999/{FRONT_LEN}")
    );
    assert_eq!(
        part.bytes().await.unwrap(),
        file_bytes(FRONT_LEN, 1)[1000..2000]
    );
    let tail = h
        .client
        .get(&url)
        .header("Range", "bytes=199990-")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.bytes().await.unwrap().len(), 10);
    let past = h
        .client
        .get(&url)
        .header("Range", "bytes=999999-")
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        header(&past, "content-range"),
        format!("bytes */{FRONT_LEN}")
    );

    let head = h.client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-length"), FRONT_LEN.to_string());

    let leaked = h.client.get(&url).bearer_auth("oops").send().await.unwrap();
    assert_eq!(leaked.status(), StatusCode::OK);
    let stats = h.stats().await;
    assert_eq!(stats.file_get, 5);
    assert_eq!(stats.file_head, 1);
    assert_eq!(stats.files_auth_header, 1);
    assert_eq!(stats.file_bytes, (2 * FRONT_LEN + 1000 + 10) as u64);
}

/// `url` is refused as the files host refuses an expired URL (403 with an error body,
/// counted once), and a new retrieve gives another URL.
async fn expired_then_fresh(h: &Harness, url: &str) -> String {
    let expired = h.client.get(url).send().await.unwrap();
    assert_eq!(expired.status(), StatusCode::FORBIDDEN);
    let body: Value = expired.json_body().await;
    assert!(body["errors"][0]["title"].is_string());
    assert_eq!(h.server.stats().file_expired, 1);
    h.front_url().await
}

#[tokio::test]
async fn expired_url_gets_403_and_a_new_retrieve_gives_a_working_one() {
    let h = Harness::new();
    let changed = h.configure(json!({"file_url_lifetime": "1s"})).await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(h.server.runtime().file_url_lifetime_ms, 1000);
    let url = h.front_url().await;
    assert_eq!(
        h.client.head(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    // Real time: the URL's 1 s lifetime by the mock's clock is what is tested.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = expired_then_fresh(&h, &url).await;
    assert_ne!(fresh, url);
    assert_eq!(
        h.client.get(&fresh).send().await.unwrap().status(),
        StatusCode::OK
    );
}

/// What tests use instead of waiting out a lifetime: the URLs' clock moved ahead expires
/// the URLs issued before, exactly as time passing does, and not those issued after.
#[tokio::test]
async fn a_url_clock_moved_ahead_expires_the_urls_issued_before() {
    let h = Harness::new();
    let changed = h.configure(json!({"file_url_lifetime": "60s"})).await;
    assert_eq!(changed.status(), StatusCode::OK);
    let url = h.front_url().await;
    h.server.advance_url_clock(Duration::from_secs(59));
    assert_eq!(
        h.client.head(&url).send().await.unwrap().status(),
        StatusCode::OK,
        "within its lifetime"
    );
    h.server.advance_url_clock(Duration::from_secs(1));
    let fresh = expired_then_fresh(&h, &url).await;
    assert_eq!(
        h.client.get(&fresh).send().await.unwrap().status(),
        StatusCode::OK,
        "a URL issued after lives its whole lifetime"
    );
}

#[tokio::test]
async fn forged_or_missing_tokens_get_403() {
    let h = Harness::new();
    let url = h.front_url().await;
    let (base, token) = url.split_once("access_token=").unwrap();
    let mut forged = token.to_string();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [
        format!("{base}access_token={forged}"),
        base.trim_end_matches('?').to_string(),
    ] {
        let response = h.client.get(&bad).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{bad}");
    }
    // A genuine token for one file does not open another file name.
    let other = url.replace("front%20photo.jpg", "selfie_photo.jpg");
    assert_eq!(
        h.client.get(&other).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(h.server.stats().file_forged, 2);
}

#[tokio::test]
async fn old_form_urls_need_the_api_key() {
    let h = Harness::new();
    let body: Value = h
        .get_versioned("/inquiries/inq_6?include=documents", "2022-09-01")
        .await
        .json_body()
        .await;
    let url = find_url(&body, "front-photo");
    assert!(
        url.starts_with(&format!("{}/files/", h.server.api_base())),
        "{url}"
    );
    assert!(url.ends_with("/front%20photo.jpg"));
    let without = h.client.get(&url).send().await.unwrap();
    assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
    let with = h
        .client
        .get(&url)
        .bearer_auth(h.server.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), StatusCode::OK);
    assert!(header(&with, "request-id").starts_with("req_"));
    assert_eq!(with.bytes().await.unwrap(), file_bytes(FRONT_LEN, 1));
    assert_eq!(h.server.stats().files_auth_header, 0);
}

#[tokio::test]
async fn rate_limit_answers_429_past_the_budget() {
    let h = Harness::new();
    let mut runtime = h.server.runtime();
    runtime.rate_limit = 3;
    h.server.set_runtime(runtime);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let response = h.get("/inquiries").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "ratelimit-limit"), "3");
        remaining.push(header(&response, "ratelimit-remaining"));
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let limited = h.get("/inquiries").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&limited, "ratelimit-remaining"), "0");
    let reset: u64 = header(&limited, "ratelimit-reset").parse().unwrap();
    assert!((1..=60).contains(&reset));
    let body: Value = limited.json_body().await;
    assert_eq!(body["errors"][0]["title"], "Rate limit exceeded");
    assert!(
        body["errors"][0]["details"]
            .as_str()
            .unwrap()
            .contains("3 requests / min")
    );
    let stats = h.stats().await;
    assert_eq!((stats.rate_limited, stats.api_list), (1, 3));
}

/// A window shorter than a minute (set at runtime) is announced by `RateLimit-Policy`, and
/// the stats say whose requests were refused: the `X-Mock-Client` tag, else `untagged`.
#[tokio::test]
async fn a_short_window_is_announced_and_429s_are_counted_per_client() {
    let h = Harness::new();
    let no_policy = h.get("/inquiries").await;
    assert!(no_policy.headers().get("ratelimit-policy").is_none());
    let set = h
        .configure(json!({"rate_limit": 2, "rate_window": "2s"}))
        .await;
    assert_eq!(set.status(), StatusCode::OK);
    let tagged = |tag: &'static str| {
        h.client
            .get(format!("{}/inquiries", h.server.api_base()))
            .bearer_auth(h.server.api_key())
            .header("X-Mock-Client", tag)
            .send()
    };
    let mut statuses = Vec::new();
    for tag in ["backend", "backend", "backend"] {
        statuses.push(tagged(tag).await.unwrap().status());
    }
    let untagged = h.get("/inquiries").await;
    assert_eq!(untagged.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&untagged, "ratelimit-policy"), "2;w=2");
    let stats = h.stats().await;
    let backend = &stats.clients["backend"];
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count() as u64;
    assert_eq!(backend.rate_limited, refused);
    assert_eq!(backend.requests + backend.rate_limited, 3);
    assert!(stats.clients["untagged"].rate_limited >= 1);
    // After the short window, requests go through again.
    // Real time: the 2 s window by the mock's clock is what is tested.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(tagged("backend").await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn runtime_config_injects_failures_latency_bandwidth_and_cut_bodies() {
    let h = Harness::new();
    let url = h.front_url().await;

    h.configure(json!({"fail_rate": 1.0})).await;
    let failed = h.get("/inquiries").await;
    assert!(failed.status().is_server_error());
    assert!(
        h.client
            .get(&url)
            .send()
            .await
            .unwrap()
            .status()
            .is_server_error()
    );
    assert_eq!(h.server.stats().injected_failures, 2);

    let bad = h.configure(json!({"fail_rate": 0.0, "latency": 3})).await;
    assert_eq!(
        bad.status(),
        StatusCode::BAD_REQUEST,
        "unknown keys refused, nothing applied"
    );
    h.configure(json!({"fail_rate": 0.0, "api_latency_ms": 300}))
        .await;
    let started = Instant::now();
    assert_eq!(h.get("/inquiries").await.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));

    h.configure(json!({"api_latency_ms": 0, "files_bandwidth": 100_000}))
        .await;
    let started = Instant::now();
    let slow = h
        .client
        .get(&url)
        .header("Range", "bytes=0-59999")
        .send()
        .await
        .unwrap();
    assert_eq!(slow.bytes().await.unwrap().len(), 60_000);
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );

    h.configure(json!({"files_bandwidth": 0, "truncate_rate": 1.0}))
        .await;
    let cut = h.client.get(&url).send().await.unwrap();
    assert_eq!(header(&cut, "content-length"), FRONT_LEN.to_string());
    assert!(
        cut.bytes().await.is_err(),
        "a short body is an error for the client"
    );

    h.configure(json!({"truncate_rate": 0.0, "reset_rate": 1.0}))
        .await;
    let reset = h.client.get(&url).send().await.unwrap();
    assert!(reset.bytes().await.is_err());
    let stats = h.server.stats();
    assert_eq!((stats.truncated, stats.resets), (1, 1));
}

#[tokio::test]
async fn redaction_removes_files_and_sets_redacted_at() {
    let h = Harness::new();
    let url = h.front_url().await;
    let deleted = h
        .client
        .delete(format!("{}/inquiries/inq_6", h.server.api_base()))
        .bearer_auth(h.server.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let body: Value = deleted.json_body().await;
    assert!(body["data"]["attributes"]["redacted-at"].is_string());
    assert!(body["data"]["attributes"]["name-first"].is_null());
    assert_eq!(
        h.client.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let after = h
        .json("/inquiries/inq_6?include=documents,verifications")
        .await;
    let gov = &after["included"][0]["attributes"];
    assert!(gov["front-photo"].is_null() && gov["selfie-photo"].is_null());
    assert_eq!(after["included"][1]["attributes"]["files"], json!([]));
    assert!(find_str(&after, "url").is_none(), "no URL left: {after}");
    assert!(!h.server.redact("inq_missing"));
    assert!(h.server.redact("inq_5"));
    let listed = h.json("/inquiries?filter[inquiry-id]=inq_5").await;
    assert!(listed["data"][0]["attributes"]["redacted-at"].is_string());
}

#[tokio::test]
async fn object_endpoints_serve_documents_and_verifications() {
    let h = Harness::new();
    let doc = h.json("/documents/doc_gen").await;
    assert_eq!(doc["data"]["type"], "document/generic");
    let files = doc["data"]["attributes"]["files"].as_array().unwrap();
    let urls: Vec<&str> = files.iter().map(|f| f["url"].as_str().unwrap()).collect();
    assert_ne!(urls[0], urls[1], "repeated filenames are still two files");
    let second = h
        .client
        .get(urls[1])
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(second, file_bytes(PDF_LEN, 4));
    let selfie = h.json("/verification/selfies/ver_selfie").await;
    assert!(
        selfie["data"]["attributes"]["center-photo-url"]
            .as_str()
            .unwrap()
            .contains("access_token=")
    );
    assert_eq!(
        h.json("/verifications/ver_selfie").await["data"]["id"],
        "ver_selfie"
    );
    for wrong in [
        "/verification/selfies/doc_gov",
        "/documents/ver_selfie",
        "/selfies/self_1",
    ] {
        assert_eq!(
            h.get(wrong).await.status(),
            StatusCode::NOT_FOUND,
            "{wrong}"
        );
    }
    assert_eq!(h.server.stats().api_retrieve, 3 + 2);
}

#[tokio::test]
async fn fixtures_in_both_url_forms_are_served() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("inquiries")).unwrap();
    std::fs::create_dir_all(dir.path().join("files")).unwrap();
    std::fs::write(dir.path().join("files/front.jpg"), b"real front bytes").unwrap();
    let fixture = json!({
        "data": {"type": "inquiry", "id": "inq_fx", "attributes": {"status": "approved", "created-at": "2030-01-01T00:00:00.000Z"},
                 "relationships": {"documents": {"data": [{"type": "document/government-id", "id": "doc_fx"}]},
                                   "verifications": {"data": [{"type": "verification/government-id", "id": "ver_fx"}]}}},
        "included": [
            {"type": "document/government-id", "id": "doc_fx", "attributes": {
                "front-photo": {"filename": "front.jpg", "url": "https://files.withpersona.com/front.jpg?access_token=REAL", "byte-size": 16},
                "back-photo": {"filename": "back.jpg", "url": "https://withpersona.com/api/v1/files/TOKEN/back.jpg", "byte-size": 1234},
            }},
            {"type": "verification/government-id", "id": "ver_fx", "attributes": {
                "front-photo-url": "https://files.withpersona.com/front.jpg?access_token=REAL",
                "video-url": "https://withpersona.com/api/v1/files/TOKEN2/clip.mp4",
                "country-code": "US",
            }},
        ],
    });
    std::fs::write(
        dir.path().join("inquiries/inq_fx.json"),
        fixture.to_string(),
    )
    .unwrap();
    let config = MockConfig {
        fixtures: Some(dir.path().to_path_buf()),
        ..MockConfig::default()
    };
    let h = Harness::with(config);
    assert_eq!(
        h.server.inquiry_ids()[0],
        "inq_fx",
        "fixtures join the generated data"
    );
    assert_eq!(h.server.inquiry_ids().len(), 7);
    let body = h
        .json("/inquiries/inq_fx?include=documents,verifications")
        .await;
    assert!(!body.to_string().contains("withpersona.com"), "{body}");
    let front = find_url(&body, "front-photo");
    let got = h
        .client
        .get(&front)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&got[..], b"real front bytes");
    let back = h
        .client
        .get(find_url(&body, "back-photo"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&back, "content-length"), "1234");
    assert_eq!(header(&back, "content-type"), "image/jpeg");
    let video = body["included"][1]["attributes"]["video-url"]
        .as_str()
        .unwrap();
    let video = h.client.get(video).send().await.unwrap();
    assert_eq!(header(&video, "content-type"), "video/mp4");
    assert_eq!(video.bytes().await.unwrap().len(), 64 * 1024);
}

#[tokio::test]
async fn generated_files_have_their_declared_size_and_type() {
    let config = MockConfig {
        generate: 12,
        seed: 7,
        ..MockConfig::default()
    };
    let server = MockServer::start(config).unwrap();
    assert_eq!(server.inquiry_ids().len(), 12);
    let client = Client::new();
    let mut checked = 0;
    for id in server.inquiry_ids() {
        let body = api_json(
            &client,
            &server,
            &format!("/inquiries/{id}?include=documents"),
        )
        .await;
        let mut files = Vec::new();
        collect_file_objects(&body["included"], &mut files);
        for (url, size) in files {
            let head = client.head(&url).send().await.unwrap();
            assert_eq!(head.status(), StatusCode::OK, "{url}");
            assert_eq!(header(&head, "content-length"), size.to_string(), "{url}");
            checked += 1;
        }
    }
    assert!(checked > 0, "the generated data has files");
    assert_eq!(server.stats().file_head, checked);
}

/// `(url, byte-size)` of every file object with both.
fn collect_file_objects(value: &Value, out: &mut Vec<(String, u64)>) {
    match value {
        Value::Object(map) => {
            if let (Some(url), Some(size)) = (
                map.get("url").and_then(Value::as_str),
                map.get("byte-size").and_then(Value::as_u64),
            ) {
                out.push((url.to_string(), size));
            }
            map.values().for_each(|v| collect_file_objects(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_file_objects(v, out)),
        _ => {}
    }
}

/// `ffprobe`'s duration of the file (seconds), and `ffmpeg`'s decode errors (empty when none).
fn probe_and_decode(path: &std::path::Path) -> (f64, String) {
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=codec_name",
        ])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&probe.stdout).to_string();
    assert!(
        probe.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&probe.stderr)
    );
    assert!(out.contains("codec_name=mjpeg"), "{out}");
    let duration: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("duration="))
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {out}"));
    let decode = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        decode.status.success(),
        "ffmpeg failed on {}",
        path.display()
    );
    (
        duration,
        String::from_utf8_lossy(&decode.stderr).to_string(),
    )
}

#[tokio::test]
async fn generated_videos_play_in_ffmpeg_with_their_exact_size() {
    if !mock_support::require_tool("ffprobe", "ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Sizes around the layout's edges: no `free` box, a remainder inside `mdat`, a `free` box.
    for size in [3_000u64, 20_001, 1_000_000, 4_999_999] {
        let file = personafs_mock::content::sized_file("selfie_video.mp4", size, size);
        let mut bytes = vec![0u8; size as usize];
        file.content.read_at(0, &mut bytes);
        let path = dir.path().join(format!("{size}.mp4"));
        std::fs::write(&path, &bytes).unwrap();
        let (duration, errors) = probe_and_decode(&path);
        assert!(duration > 0.0, "{size}: duration {duration}");
        assert_eq!(errors, "", "{size}: ffmpeg reported errors");
    }

    // And one served by the mock, downloaded as a client would, at the size the HEAD says.
    let server = MockServer::start(MockConfig {
        generate: 14,
        seed: 3,
        ..MockConfig::default()
    })
    .unwrap();
    let client = Client::new();
    let mut videos = 0;
    for id in server.inquiry_ids() {
        let body = api_json(
            &client,
            &server,
            &format!("/inquiries/{id}?include=verifications"),
        )
        .await;
        let Some(url) = find_str(&body, "video-url") else {
            continue;
        };
        let head = client.head(url).send().await.unwrap();
        let declared: usize = header(&head, "content-length").parse().unwrap();
        let bytes = client.get(url).send().await.unwrap().bytes().await.unwrap();
        assert_eq!(bytes.len(), declared);
        let path = dir.path().join(format!("{id}.mp4"));
        std::fs::write(&path, &bytes).unwrap();
        let (duration, errors) = probe_and_decode(&path);
        assert!(
            duration > 0.0 && errors.is_empty(),
            "{id}: {duration} {errors}"
        );
        videos += 1;
    }
    assert!(videos > 0, "the generated data has a selfie video");
}

/// POST a JSON body to a `/_mock/...` control endpoint.
async fn control(client: &Client, server: &MockServer, path: &str, body: Value) -> Response {
    let origin = server.api_base().trim_end_matches("/api/v1").to_string();
    client
        .post(format!("{origin}{path}"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn api_json(client: &Client, server: &MockServer, path: &str) -> Value {
    let response = client
        .get(format!("{}{path}", server.api_base()))
        .bearer_auth(server.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json_body().await
}

#[tokio::test]
async fn a_million_inquiries_are_served_from_their_index_with_consistent_pages() {
    const N: u64 = 1_000_000;
    let server = MockServer::start(MockConfig {
        generate: N as usize,
        seed: 5,
        runtime: personafs_mock::RuntimeConfig {
            rate_limit: 0,
            ..MockConfig::default().runtime
        },
        ..MockConfig::default()
    })
    .unwrap();
    let client = Client::new();
    assert_eq!(server.inquiry_count(), N);
    let at = |p: u64| server.inquiry_id_at(p).unwrap();

    // The first page, a page deep inside by `page[after]`, the last page, and `page[before]`.
    let first = api_json(&client, &server, "/inquiries?page[size]=100").await;
    assert_eq!(ids(&first), (0..100).map(at).collect::<Vec<_>>());
    assert!(first["links"]["prev"].is_null());
    for item in first["data"].as_array().unwrap() {
        let attrs = &item["attributes"];
        for key in ["status", "updated-at", "redacted-at", "created-at"] {
            assert!(attrs.get(key).is_some(), "list items carry {key}");
        }
        assert!(attrs["updated-at"].as_str().unwrap() >= attrs["created-at"].as_str().unwrap());
    }
    let mid = at(499_999);
    let page = api_json(
        &client,
        &server,
        &format!("/inquiries?page[after]={mid}&page[size]=100"),
    )
    .await;
    assert_eq!(ids(&page), (500_000..500_100).map(at).collect::<Vec<_>>());
    let before = api_json(
        &client,
        &server,
        &format!("/inquiries?page[before]={mid}&page[size]=100"),
    )
    .await;
    assert_eq!(ids(&before), (499_899..499_999).map(at).collect::<Vec<_>>());
    // Following `next` links from near the end reaches the last inquiry exactly once.
    let mut link = format!("/inquiries?page[after]={}&page[size]=100", at(N - 251));
    let mut walked = Vec::new();
    loop {
        let body = api_json(&client, &server, &link).await;
        walked.extend(ids(&body));
        match body["links"]["next"].as_str() {
            Some(next) => link = next.trim_start_matches("/api/v1").to_string(),
            None => break,
        }
    }
    assert_eq!(walked, (N - 250..N).map(at).collect::<Vec<_>>());
    // Created-at bounds select by position, newest first.
    let created = |body: &Value| {
        body["data"][0]["attributes"]["created-at"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let deep = api_json(
        &client,
        &server,
        &format!("/inquiries?filter[inquiry-id]={}", at(900_000)),
    )
    .await;
    let end = created(&deep);
    let bounded = api_json(
        &client,
        &server,
        &format!("/inquiries?filter[created-at-end]={end}&page[size]=5"),
    )
    .await;
    assert!(ids(&bounded).contains(&at(900_000)), "{end}");
    for item in bounded["data"].as_array().unwrap() {
        assert!(item["attributes"]["created-at"].as_str().unwrap() <= end.as_str());
    }

    // The 999,999th inquiry: retrieved by id, its files downloaded at their declared sizes.
    // (Take the nearest older one with files when it has none.)
    let mut downloaded = 0;
    for position in N - 2..N {
        let id = at(position);
        let body = api_json(
            &client,
            &server,
            &format!("/inquiries/{id}?include=documents,selfies,verifications"),
        )
        .await;
        assert_eq!(body["data"]["id"], id.as_str());
        let mut files = Vec::new();
        collect_file_objects(&body["included"], &mut files);
        for (url, size) in files {
            let bytes = client
                .get(&url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(bytes.len() as u64, size, "{url}");
            downloaded += 1;
        }
        for object in body["included"].as_array().unwrap() {
            let oid = object["id"].as_str().unwrap();
            let path = if object["type"].as_str().unwrap().starts_with("document/") {
                format!("/documents/{oid}")
            } else if object["type"]
                .as_str()
                .unwrap()
                .starts_with("verification/")
            {
                format!("/verifications/{oid}")
            } else {
                continue;
            };
            assert_eq!(api_json(&client, &server, &path).await["data"]["id"], oid);
        }
        if downloaded > 0 {
            break;
        }
    }
    let mut position = N - 3;
    while downloaded == 0 {
        let id = at(position);
        let body = api_json(
            &client,
            &server,
            &format!("/inquiries/{id}?include=documents"),
        )
        .await;
        let mut files = Vec::new();
        collect_file_objects(&body["included"], &mut files);
        for (url, size) in files {
            let bytes = client
                .get(&url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(bytes.len() as u64, size);
            downloaded += 1;
        }
        position -= 1;
    }
}

#[tokio::test]
async fn mock_changes_add_inquiries_and_documents_and_redact() {
    let server = MockServer::start(MockConfig {
        generate: 2_000,
        seed: 9,
        ..MockConfig::default()
    })
    .unwrap();
    let client = Client::new();

    // A new inquiry lists first.
    let added = control(
        &client,
        &server,
        "/_mock/inquiries",
        json!({"status": "approved"}),
    )
    .await;
    assert_eq!(added.status(), StatusCode::CREATED);
    let added = added.json_body().await;
    let new_id = added["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(added["data"]["attributes"]["status"], "approved");
    let first = api_json(&client, &server, "/inquiries?page[size]=1").await;
    assert_eq!(ids(&first), std::slice::from_ref(&new_id));
    assert_eq!(server.inquiry_count(), 2_001);
    let body = api_json(
        &client,
        &server,
        &format!("/inquiries/{new_id}?include=documents"),
    )
    .await;
    let mut files = Vec::new();
    collect_file_objects(&body["included"], &mut files);
    assert!(!files.is_empty(), "the added inquiry has files");
    let bad = control(
        &client,
        &server,
        "/_mock/inquiries",
        json!({"status": "nope"}),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // A document added to a generated inquiry: it shows, `updated-at` moves, its file serves.
    let id = server.inquiry_id_at(1_000).unwrap();
    let before = api_json(&client, &server, &format!("/inquiries/{id}")).await;
    let updated_before = before["data"]["attributes"]["updated-at"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = control(
        &client,
        &server,
        &format!("/_mock/inquiries/{id}/documents"),
        json!({"filename": "new statement.pdf", "size": 123_456}),
    )
    .await;
    assert_eq!(doc.status(), StatusCode::CREATED);
    let doc = doc.json_body().await;
    let doc_id = doc["data"]["id"].as_str().unwrap().to_string();
    let after = api_json(
        &client,
        &server,
        &format!("/inquiries/{id}?include=documents"),
    )
    .await;
    let updated_after = after["data"]["attributes"]["updated-at"].as_str().unwrap();
    assert!(
        updated_after > updated_before.as_str(),
        "{updated_after} > {updated_before}"
    );
    let refs: Vec<&str> = after["data"]["relationships"]["documents"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(refs.contains(&doc_id.as_str()));
    // The listing shows the same `updated-at` as the retrieve.
    let listed = api_json(
        &client,
        &server,
        &format!("/inquiries?filter[inquiry-id]={id}"),
    )
    .await;
    assert_eq!(listed["data"][0]["attributes"]["updated-at"], updated_after);
    let document = api_json(&client, &server, &format!("/documents/{doc_id}")).await;
    let url = document["data"]["attributes"]["files"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(url.contains("access_token="), "{url}");
    let bytes = client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len(), 123_456);
    assert!(bytes.starts_with(b"%PDF-"));
    let missing = control(
        &client,
        &server,
        "/_mock/inquiries/inq_nope/documents",
        json!({}),
    )
    .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // Redaction: `redacted-at` set (in the listing too), files gone from the files host.
    let redacted = control(
        &client,
        &server,
        &format!("/_mock/inquiries/{id}/redact"),
        json!({}),
    )
    .await;
    assert_eq!(redacted.status(), StatusCode::OK);
    let listed = api_json(
        &client,
        &server,
        &format!("/inquiries?filter[inquiry-id]={id}"),
    )
    .await;
    assert!(listed["data"][0]["attributes"]["redacted-at"].is_string());
    let gone = client.get(&url).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let after = api_json(
        &client,
        &server,
        &format!("/inquiries/{id}?include=documents"),
    )
    .await;
    let mut files = Vec::new();
    collect_file_objects(&after["included"], &mut files);
    assert!(files.is_empty(), "no file left: {files:?}");
    let refused = control(
        &client,
        &server,
        &format!("/_mock/inquiries/{id}/documents"),
        json!({}),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
}
