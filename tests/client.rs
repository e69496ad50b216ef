//! The Persona client against the in-process mock server, and against tiny axum handlers for
//! what the mock cannot do on demand (exact fault sequences, odd bodies, repeating cursors).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use serde_json::json;

use personafs_client::Error;
use personafs_client::{
    ApiKey, ClientConfig, HttpClient, ListFilters, PersonaApi, Section, files_of, list_all,
    list_stream,
};
use personafs_mock::{MockConfig, MockServer, RuntimeConfig, generate};

const KEY: &str = "persona_sandbox_TESTKEY123";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn host_port(base: &str) -> String {
    let url = url::Url::parse(base).unwrap();
    format!("{}:{}", url.host_str().unwrap(), url.port().unwrap())
}

/// A client with fast retries, no client-side rate limit, and the given extra file host.
fn fast_config(api_base: &str, key: &str, files_base: Option<&str>) -> ClientConfig {
    let mut config = ClientConfig::new(api_base, ApiKey::new(key));
    if let Some(files) = files_base {
        config.allowed_file_hosts.push(host_port(files));
    }
    config.retry_base_delay = Duration::from_millis(5);
    config.max_rate_limit_wait = Duration::from_millis(300);
    config.request_timeout = Duration::from_secs(10);
    config.budget = personafs_client::ratelimit::BudgetPolicy::unlimited();
    config.max_retries = 3;
    config
}

fn start_mock(count: usize) -> MockServer {
    let config = MockConfig {
        api_key: KEY.into(),
        ..MockConfig::default()
    };
    MockServer::start_with_dataset(config, generate::generate(count, 7)).unwrap()
}

fn mock_client(mock: &MockServer) -> HttpClient {
    HttpClient::new(fast_config(&mock.api_base(), KEY, Some(&mock.files_base()))).unwrap()
}

async fn download_all(
    client: &HttpClient,
    url: &str,
    offset: u64,
) -> personafs_client::Result<Vec<u8>> {
    let mut out = Vec::new();
    let n = client.download(url, offset, &mut out).await?;
    assert_eq!(n as usize, out.len());
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Against the mock server.

#[test]
fn pagination_over_three_pages_in_mock_order() {
    let mock = start_mock(25);
    let client = mock_client(&mock);
    let ids: Vec<String> = runtime().block_on(async {
        use futures::TryStreamExt;
        let filters = ListFilters::default();
        list_stream(&client, &filters, 10)
            .map_ok(|s| s.id)
            .try_collect()
            .await
            .unwrap()
    });
    assert_eq!(ids, mock.inquiry_ids());
    assert_eq!(ids.len(), 25);
    assert_eq!(mock.stats().api_list, 3, "pages of 10, 10 and 5");
}

#[test]
fn filters_select_on_the_server() {
    let mock = start_mock(30);
    let client = mock_client(&mock);
    let rt = runtime();
    let all = rt
        .block_on(list_all(&client, &ListFilters::default()))
        .unwrap();
    assert_eq!(all.len(), 30);
    let status = all[0].status.clone().expect("status");
    let expected: Vec<&str> = all
        .iter()
        .filter(|s| s.status.as_deref() == Some(&status))
        .map(|s| s.id.as_str())
        .collect();
    let filters = ListFilters {
        status: vec![status.clone()],
        ..Default::default()
    };
    let selected = rt.block_on(list_all(&client, &filters)).unwrap();
    let got: Vec<&str> = selected.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(got, expected);
    assert!(got.len() < 30);

    let wanted = vec![all[3].id.clone(), all[17].id.clone()];
    let filters = ListFilters {
        inquiry_ids: wanted.clone(),
        ..Default::default()
    };
    let selected = rt.block_on(list_all(&client, &filters)).unwrap();
    let mut got: Vec<String> = selected.into_iter().map(|s| s.id).collect();
    got.sort();
    let mut wanted = wanted;
    wanted.sort();
    assert_eq!(got, wanted);
}

/// Retrieve inquiries until `want` files were downloaded; checks sizes against `byte-size`
/// and HEAD. Returns how many files were fetched.
async fn download_some(client: &HttpClient, ids: &[String], want: usize) -> usize {
    let mut fetched = 0;
    for id in ids {
        let inquiry = client.retrieve_inquiry(id).await.unwrap();
        assert_eq!(&inquiry.id, id);
        for file in files_of(&inquiry) {
            let bytes = download_all(client, &file.url, 0).await.unwrap();
            let head = client.file_size(&file.url).await.unwrap();
            assert_eq!(bytes.len() as u64, head, "{}", file.name);
            if let Some(size) = file.size {
                assert_eq!(size, head, "{}", file.name);
            }
            // A resumed read gives the same tail.
            let mid = head / 3;
            let tail = download_all(client, &file.url, mid).await.unwrap();
            assert_eq!(tail, bytes[mid as usize..], "{}", file.name);
            fetched += 1;
            if fetched >= want {
                return fetched;
            }
        }
    }
    fetched
}

#[test]
fn new_form_urls_are_fetched_without_the_key() {
    let mock = start_mock(12);
    let client = mock_client(&mock);
    let fetched = runtime().block_on(download_some(&client, &mock.inquiry_ids(), 6));
    assert_eq!(fetched, 6);
    let stats = mock.stats();
    assert!(stats.file_get >= 12 && stats.file_head >= 6, "{stats:?}");
    assert_eq!(
        stats.files_auth_header, 0,
        "the API key went to the files host"
    );
}

#[test]
fn old_form_urls_are_fetched_with_the_key_from_the_api_host() {
    let mock = start_mock(12);
    let mut config = fast_config(&mock.api_base(), KEY, None);
    config.persona_version = "2022-09-01".into();
    let client = HttpClient::new(config).unwrap();
    let rt = runtime();
    let inquiry = rt
        .block_on(async {
            for id in mock.inquiry_ids() {
                let inq = client.retrieve_inquiry(&id).await.unwrap();
                if !files_of(&inq).is_empty() {
                    return Some(inq);
                }
            }
            None
        })
        .expect("an inquiry with files");
    let file = &files_of(&inquiry)[0];
    assert!(
        file.url.starts_with(&format!("{}/files/", mock.api_base())),
        "old-form URL expected, got {}",
        personafs_client::redact::redact_url(&file.url)
    );
    let bytes = rt.block_on(download_all(&client, &file.url, 0)).unwrap();
    assert!(!bytes.is_empty());
    assert_eq!(mock.stats().files_auth_header, 0);

    // The same old-form URL without the key is refused by the API host: the key matters.
    let keyless =
        HttpClient::new(fast_config(&mock.api_base(), "persona_sandbox_wrong", None)).unwrap();
    let err = rt
        .block_on(download_all(&keyless, &file.url, 0))
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert_eq!(errno(err), libc::EACCES);
}

#[test]
fn a_foreign_host_is_refused_before_any_request() {
    let mock = start_mock(3);
    // No files host configured: the mock's files host is foreign to this client.
    let client = HttpClient::new(fast_config(&mock.api_base(), KEY, None)).unwrap();
    let rt = runtime();
    let inquiry = rt
        .block_on(async {
            for id in mock.inquiry_ids() {
                let inq = client.retrieve_inquiry(&id).await.unwrap();
                if !files_of(&inq).is_empty() {
                    return Some(inq);
                }
            }
            None
        })
        .expect("an inquiry with files");
    let url = files_of(&inquiry)[0].url.clone();
    let err = rt.block_on(download_all(&client, &url, 0)).unwrap_err();
    assert!(matches!(err, Error::ForeignHost { .. }), "{err:?}");
    let err = rt.block_on(client.file_size(&url)).unwrap_err();
    assert!(matches!(err, Error::ForeignHost { .. }), "{err:?}");
    let err = rt
        .block_on(download_all(
            &client,
            "https://evil.example/x.jpg?access_token=t",
            0,
        ))
        .unwrap_err();
    assert!(matches!(err, Error::ForeignHost { ref host } if host == "evil.example"));
    let stats = mock.stats();
    assert_eq!(stats.file_get + stats.file_head, 0, "{stats:?}");
}

#[test]
fn truncated_and_reset_bodies_are_resumed() {
    let mock = start_mock(8);
    let client = mock_client(&mock);
    let rt = runtime();
    // Reference bytes with a healthy server.
    let mut files = Vec::new();
    rt.block_on(async {
        for id in mock.inquiry_ids() {
            let inq = client.retrieve_inquiry(&id).await.unwrap();
            for f in files_of(&inq).into_iter().take(2) {
                let bytes = download_all(&client, &f.url, 0).await.unwrap();
                files.push((f.url, bytes));
            }
            if files.len() >= 4 {
                break;
            }
        }
    });
    assert!(files.len() >= 4);
    let before = mock.stats();
    let mut faulty = mock.runtime();
    faulty.truncate_rate = 0.3;
    faulty.reset_rate = 0.2;
    mock.set_runtime(faulty);
    let mut config = fast_config(&mock.api_base(), KEY, Some(&mock.files_base()));
    config.max_retries = 30;
    config.request_timeout = Duration::from_secs(3);
    let patient = HttpClient::new(config).unwrap();
    // Faults are random: go round again (a few times at most) until some were injected.
    let mut downloads = 0u64;
    for _ in 0..10 {
        rt.block_on(async {
            for (url, expected) in &files {
                let got = download_all(&patient, url, 0).await.unwrap();
                assert!(got == *expected, "resumed download differs");
                downloads += 1;
            }
        });
        let now = mock.stats();
        if now.truncated + now.resets > before.truncated + before.resets {
            break;
        }
    }
    let after = mock.stats();
    assert!(
        after.truncated + after.resets > before.truncated + before.resets,
        "no fault was injected: {after:?}"
    );
    assert!(
        after.file_get - before.file_get > downloads,
        "a fault did not lead to a resumed request: {after:?}"
    );

    // With no retries allowed, a short body is an error, never a success.
    let mut strict_config = fast_config(&mock.api_base(), KEY, Some(&mock.files_base()));
    strict_config.max_retries = 0;
    let strict = HttpClient::new(strict_config).unwrap();
    let mut always = mock.runtime();
    always.truncate_rate = 1.0;
    always.reset_rate = 0.0;
    mock.set_runtime(always);
    let err = rt
        .block_on(download_all(&strict, &files[0].0, 0))
        .unwrap_err();
    assert!(
        matches!(err, Error::Truncated { .. } | Error::Network { .. }),
        "{err:?}"
    );
    mock.set_runtime(RuntimeConfig {
        truncate_rate: 0.0,
        ..mock.runtime()
    });
}

async fn download_range(
    client: &HttpClient,
    url: &str,
    start: u64,
    end: u64,
) -> personafs_client::Result<Vec<u8>> {
    let mut out = Vec::new();
    let n = client.download_range(url, start, end, &mut out).await?;
    assert_eq!(n as usize, out.len());
    Ok(out)
}

#[test]
fn bounded_ranges_give_exactly_their_bytes_and_no_more() {
    let mock = start_mock(4);
    let client = mock_client(&mock);
    let rt = runtime();
    let (url, whole) = rt.block_on(async {
        let inq = client
            .retrieve_inquiry(&mock.inquiry_ids()[0])
            .await
            .unwrap();
        let f = files_of(&inq).into_iter().max_by_key(|f| f.size).unwrap();
        let whole = download_all(&client, &f.url, 0).await.unwrap();
        (f.url, whole)
    });
    let len = whole.len() as u64;
    assert!(len > 20_000, "{len}");
    let asks = [
        (0, 1),
        (100, 5_000),
        (len - 10, len),
        (len - 10, len + 100), // past the end: clipped to the file
        (len / 2, len / 2 + 1),
    ];
    for &(start, end) in &asks {
        let before = mock.stats();
        let got = rt
            .block_on(download_range(&client, &url, start, end))
            .unwrap();
        let want = &whole[start as usize..end.min(len) as usize];
        assert!(got == want, "bytes {start}..{end} differ");
        let sent = mock.stats().file_bytes - before.file_bytes;
        assert_eq!(sent, want.len() as u64, "the server sent more than asked");
    }
    assert!(
        rt.block_on(download_range(&client, &url, len, len + 5))
            .unwrap()
            .is_empty()
    );

    // Cut and reset bodies: each range is resumed and still exact.
    let mut faulty = mock.runtime();
    faulty.truncate_rate = 0.4;
    faulty.reset_rate = 0.2;
    mock.set_runtime(faulty);
    let mut config = fast_config(&mock.api_base(), KEY, Some(&mock.files_base()));
    config.max_retries = 30;
    let patient = HttpClient::new(config).unwrap();
    for &(start, end) in &asks {
        let got = rt
            .block_on(download_range(&patient, &url, start, end))
            .unwrap();
        assert!(
            got == whole[start as usize..end.min(len) as usize],
            "resumed {start}..{end}"
        );
    }
}

#[tokio::test]
async fn a_bounded_range_from_a_server_that_ignores_ranges_is_cut() {
    let (files, script) = files_server(0, false).await;
    let client = files_client("http://127.0.0.1:9/api/v1", &files, 3);
    let url = format!("{files}/f.bin?access_token=tok");
    let got = download_range(&client, &url, 2_000, 2_500).await.unwrap();
    assert!(got == file_bytes()[2_000..2_500]);
    assert_eq!(script.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn unknown_inquiry_is_not_found() {
    let mock = start_mock(2);
    let client = mock_client(&mock);
    let err = runtime()
        .block_on(client.retrieve_inquiry("inq_doesnotexist"))
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(errno(err), libc::ENOENT);
    let err = runtime()
        .block_on(client.retrieve_inquiry("../documents"))
        .unwrap_err();
    assert_eq!(errno(err), libc::ENOENT);
}

// ---------------------------------------------------------------------------------------
// Against tiny handlers with exact behaviour.

#[derive(Default)]
struct Script {
    calls: AtomicUsize,
    auth_on_files: AtomicUsize,
}

/// Serve `app` on a loopback port; the base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn persona_error(status: StatusCode, title: &str, details: &str) -> Response {
    (
        status,
        [
            ("Request-Id", "req_TEST42"),
            ("RateLimit-Limit", "300"),
            ("RateLimit-Remaining", "299"),
            ("RateLimit-Reset", "0"),
        ],
        axum::Json(json!({"errors": [{"title": title, "details": details}]})),
    )
        .into_response()
}

fn inquiry_body() -> serde_json::Value {
    json!({
        "data": {"type": "inquiry", "id": "inq_T1",
                 "attributes": {"status": "some_future_status", "created-at": "2024-01-01T00:00:00.000Z"},
                 "relationships": {"documents": {"data": null}, "selfies": {"data": {}},
                                   "verifications": {"data": []}, "account": {"data": null}}},
        "included": [
            {"type": "document/generic", "id": "doc_T1",
             "attributes": {"files": [{"filename": "a.pdf", "url": "https://files.withpersona.com/a.pdf?access_token=tk", "byte-size": null}]},
             "relationships": {"inquiry": {"data": {}}}},
            {"type": "quantum/entanglement", "id": "qe_1", "attributes": {"spin": [0.5, -0.5]}},
            {"type": "document/mdoc", "id": "doc_M1"}
        ]
    })
}

fn test_client(base: &str, max_retries: u32) -> HttpClient {
    let mut config = fast_config(&format!("{base}/api/v1"), KEY, None);
    config.max_retries = max_retries;
    HttpClient::new(config).unwrap()
}

#[tokio::test]
async fn rate_limited_then_success() {
    let script = Arc::new(Script::default());
    let app = Router::new()
        .route(
            "/api/v1/inquiries/{id}",
            get(
                |State(s): State<Arc<Script>>, headers: HeaderMap| async move {
                    assert_eq!(headers["authorization"], format!("Bearer {KEY}"));
                    assert_eq!(headers["persona-version"], "2023-01-05");
                    assert_eq!(headers["key-inflection"], "kebab");
                    if s.calls.fetch_add(1, Ordering::SeqCst) < 2 {
                        persona_error(
                            StatusCode::TOO_MANY_REQUESTS,
                            "Rate limit exceeded",
                            "You have hit your rate limit of 300 requests / min.",
                        )
                    } else {
                        axum::Json(inquiry_body()).into_response()
                    }
                },
            ),
        )
        .with_state(script.clone());
    let base = serve(app).await;
    let inquiry = test_client(&base, 3)
        .retrieve_inquiry("inq_T1")
        .await
        .unwrap();
    assert_eq!(script.calls.load(Ordering::SeqCst), 3);
    // Unknown types, an unknown status and empty relationships are all fine.
    assert_eq!(inquiry.status.as_deref(), Some("some_future_status"));
    assert_eq!(inquiry.included.len(), 3);
    assert_eq!(inquiry.included[1].kind, "quantum/entanglement");
    let files = files_of(&inquiry);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].name, "doc_T1-a.pdf");
    assert_eq!(files[0].section, Section::Document);
}

async fn flaky_server(failures: usize, status: StatusCode) -> (String, Arc<Script>) {
    let script = Arc::new(Script::default());
    let app = Router::new()
        .route(
            "/api/v1/inquiries/{id}",
            get(move |State(s): State<Arc<Script>>| async move {
                if s.calls.fetch_add(1, Ordering::SeqCst) < failures {
                    persona_error(status, "Internal Server Error", "Something went wrong")
                } else {
                    axum::Json(inquiry_body()).into_response()
                }
            }),
        )
        .with_state(script.clone());
    (serve(app).await, script)
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let (base, script) = flaky_server(2, StatusCode::BAD_GATEWAY).await;
    let inquiry = test_client(&base, 3)
        .retrieve_inquiry("inq_T1")
        .await
        .unwrap();
    assert_eq!(inquiry.id, "inq_T1");
    assert_eq!(script.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn server_errors_exhausted_carry_status_and_request_id() {
    let (base, script) = flaky_server(100, StatusCode::SERVICE_UNAVAILABLE).await;
    let err = test_client(&base, 2)
        .retrieve_inquiry("inq_T1")
        .await
        .unwrap_err();
    assert_eq!(
        script.calls.load(Ordering::SeqCst),
        3,
        "1 attempt + 2 retries"
    );
    match &err {
        Error::Http {
            status,
            request_id,
            title,
            details,
            ..
        } => {
            assert_eq!(*status, 503);
            assert_eq!(request_id.as_deref(), Some("req_TEST42"));
            assert_eq!(title.as_deref(), Some("Internal Server Error"));
            assert_eq!(details.as_deref(), Some("Something went wrong"));
        }
        other => panic!("expected Http, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("503") && text.contains("req_TEST42"),
        "{text}"
    );
    assert!(!text.contains("TESTKEY"), "{text}");
    assert_eq!(errno(err), libc::EIO);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (base, script) = flaky_server(100, StatusCode::FORBIDDEN).await;
    let err = test_client(&base, 3)
        .retrieve_inquiry("inq_T1")
        .await
        .unwrap_err();
    assert_eq!(script.calls.load(Ordering::SeqCst), 1);
    assert_eq!(errno(err), libc::EACCES);
}

#[tokio::test]
async fn html_with_200_is_an_invalid_response() {
    let app = Router::new().route(
        "/api/v1/inquiries/{id}",
        get(|| async {
            (
                [(header::CONTENT_TYPE, "text/html")],
                "<!DOCTYPE html><html><body>Please log in</body></html>",
            )
        }),
    );
    let base = serve(app).await;
    let err = test_client(&base, 0)
        .retrieve_inquiry("inq_T1")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
    assert!(err.to_string().contains("HTML"), "{err}");
}

#[tokio::test]
async fn a_repeating_cursor_stops_the_listing_with_an_error() {
    let script = Arc::new(Script::default());
    let app = Router::new()
        .route(
            "/api/v1/inquiries",
            get(|State(s): State<Arc<Script>>, Query(q): Query<Vec<(String, String)>>| async move {
                s.calls.fetch_add(1, Ordering::SeqCst);
                assert!(q.contains(&("page[size]".into(), "100".into())), "{q:?}");
                let after = q.iter().find(|(k, _)| k == "page[after]").map(|(_, v)| v.clone());
                let id = if after.is_none() { "inq_B" } else { "inq_A" };
                // Always the same next link: a server bug that would page forever.
                axum::Json(json!({
                    "data": [{"type": "inquiry", "id": id, "attributes": {"status": "approved"}}],
                    "links": {"prev": null, "next": "/api/v1/inquiries?page%5Bafter%5D=inq_B"}
                }))
            }),
        )
        .with_state(script.clone());
    let base = serve(app).await;
    let err = list_all(&test_client(&base, 0), &ListFilters::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
    assert_eq!(script.calls.load(Ordering::SeqCst), 2);
}

const FILE_LEN: usize = 10_000;

fn file_bytes() -> Vec<u8> {
    (0..FILE_LEN).map(|i| (i * 7 % 251) as u8).collect()
}

/// A files host that cuts the first `cut_first` bodies in half (the connection dies), honours
/// `Range` only when `ranges` is set, and counts Authorization headers.
async fn files_server(cut_first: usize, ranges: bool) -> (String, Arc<Script>) {
    let script = Arc::new(Script::default());
    let app = Router::new()
        .route(
            "/{name}",
            get(
                move |State(s): State<Arc<Script>>, headers: HeaderMap| async move {
                    if headers.contains_key(header::AUTHORIZATION) {
                        s.auth_on_files.fetch_add(1, Ordering::SeqCst);
                    }
                    let call = s.calls.fetch_add(1, Ordering::SeqCst);
                    let data = file_bytes();
                    let start = headers
                        .get(header::RANGE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("bytes="))
                        .and_then(|v| v.strip_suffix('-'))
                        .and_then(|v| v.parse::<usize>().ok())
                        .filter(|_| ranges);
                    let (status, body, range) = match start {
                        Some(start) => (
                            StatusCode::PARTIAL_CONTENT,
                            data[start..].to_vec(),
                            Some(format!("bytes {start}-{}/{FILE_LEN}", FILE_LEN - 1)),
                        ),
                        None => (StatusCode::OK, data, None),
                    };
                    let len = body.len();
                    let stream_body = if call < cut_first {
                        let half = body[..len / 2].to_vec();
                        // Send the first half, give it time to leave, then drop the connection.
                        Body::from_stream(futures::stream::iter([Some(half), None]).then(
                            |part| async move {
                                match part {
                                    Some(half) => Ok(bytes::Bytes::from(half)),
                                    None => {
                                        // Real time: the half leaves before the cut.
                                        tokio::time::sleep(Duration::from_millis(30)).await;
                                        Err(std::io::Error::other("connection dropped"))
                                    }
                                }
                            },
                        ))
                    } else {
                        Body::from(body)
                    };
                    let mut resp = Response::builder()
                        .status(status)
                        .header(header::CONTENT_LENGTH, len.to_string());
                    if let Some(range) = range {
                        resp = resp.header(header::CONTENT_RANGE, range);
                    }
                    resp.body(stream_body).unwrap()
                },
            ),
        )
        .with_state(script.clone());
    (serve(app).await, script)
}

fn files_client(api_base: &str, files_base: &str, max_retries: u32) -> HttpClient {
    let mut config = fast_config(api_base, KEY, Some(files_base));
    config.max_retries = max_retries;
    HttpClient::new(config).unwrap()
}

#[tokio::test]
async fn a_dropped_body_is_resumed_with_range() {
    let (files, script) = files_server(2, true).await;
    let client = files_client("http://127.0.0.1:9/api/v1", &files, 3);
    let url = format!("{files}/f.bin?access_token=tok");
    let got = download_all(&client, &url, 0).await.unwrap();
    assert!(got == file_bytes(), "resumed bytes differ");
    assert_eq!(script.calls.load(Ordering::SeqCst), 3);
    assert_eq!(script.auth_on_files.load(Ordering::SeqCst), 0);
    // From an offset.
    let got = download_all(&client, &url, 1234).await.unwrap();
    assert!(got == file_bytes()[1234..]);
}

#[tokio::test]
async fn a_200_to_a_ranged_request_skips_the_prefix() {
    let (files, script) = files_server(1, false).await;
    let client = files_client("http://127.0.0.1:9/api/v1", &files, 3);
    let url = format!("{files}/f.bin?access_token=tok");
    let got = download_all(&client, &url, 0).await.unwrap();
    assert!(got == file_bytes(), "bytes differ after a full restart");
    assert_eq!(script.calls.load(Ordering::SeqCst), 2);
    let got = download_all(&client, &url, 9000).await.unwrap();
    assert!(got == file_bytes()[9000..]);
}

#[tokio::test]
async fn a_short_body_is_never_a_success() {
    let (files, script) = files_server(usize::MAX, true).await;
    let client = files_client("http://127.0.0.1:9/api/v1", &files, 2);
    let url = format!("{files}/f.bin?access_token=SECRETTOKEN");
    let mut out = Vec::new();
    let err = client.download(&url, 0, &mut out).await.unwrap_err();
    assert!(
        matches!(err, Error::Truncated { .. } | Error::Network { .. }),
        "{err:?}"
    );
    assert!(out.len() < FILE_LEN);
    assert!(!err.to_string().contains("SECRETTOKEN"), "{err}");
    // Each attempt made progress (half of what was left), so it went on past max_retries,
    // but not forever.
    let calls = script.calls.load(Ordering::SeqCst);
    assert!(calls > 3 && calls < 100, "{calls}");
}

#[tokio::test]
async fn expired_file_urls_come_back_at_once() {
    let script = Arc::new(Script::default());
    let app = Router::new()
        .route(
            "/{name}",
            get(|State(s): State<Arc<Script>>| async move {
                s.calls.fetch_add(1, Ordering::SeqCst);
                persona_error(StatusCode::FORBIDDEN, "Forbidden", "expired token")
            }),
        )
        .with_state(script.clone());
    let files = serve(app).await;
    let client = files_client("http://127.0.0.1:9/api/v1", &files, 3);
    let url = format!("{files}/f.bin?access_token=tok");
    let err = download_all(&client, &url, 0).await.unwrap_err();
    assert!(err.is_url_expired(), "{err:?}");
    assert_eq!(script.calls.load(Ordering::SeqCst), 1, "not retried");
}

// ---------------------------------------------------------------------------------------
// One retry policy for every request kind.

/// A files host that answers the scripted statuses first (429 with `RateLimit-Reset: 0`,
/// others plain), then the file.
async fn failing_files_server(statuses: Vec<StatusCode>) -> (String, Arc<Script>) {
    let script = Arc::new(Script::default());
    let app = Router::new()
        .route(
            "/{name}",
            get(move |State(s): State<Arc<Script>>| {
                let statuses = statuses.clone();
                async move {
                    let call = s.calls.fetch_add(1, Ordering::SeqCst);
                    match statuses.get(call) {
                        Some(&status) if status == StatusCode::TOO_MANY_REQUESTS => (
                            status,
                            [("RateLimit-Reset", "0"), ("RateLimit-Remaining", "0")],
                            "slow down",
                        )
                            .into_response(),
                        Some(&status) => (status, "try later").into_response(),
                        None => file_bytes().into_response(),
                    }
                }
            }),
        )
        .with_state(script.clone());
    (serve(app).await, script)
}

#[tokio::test]
async fn downloads_follow_the_same_policy_as_api_requests() {
    let statuses = vec![StatusCode::TOO_MANY_REQUESTS, StatusCode::BAD_GATEWAY];
    let (files, script) = failing_files_server(statuses.clone()).await;
    let client = files_client("http://127.0.0.1:9/api/v1", &files, 3);
    let url = format!("{files}/f.bin?access_token=tok");
    let got = download_all(&client, &url, 0).await.unwrap();
    assert!(got == file_bytes());
    assert_eq!(
        script.calls.load(Ordering::SeqCst),
        3,
        "429, 502, then the file"
    );

    // One retry only: the 502 after the 429 is the answer.
    let (files, script) = failing_files_server(statuses).await;
    let client = files_client("http://127.0.0.1:9/api/v1", &files, 1);
    let url = format!("{files}/f.bin?access_token=tok");
    let err = download_all(&client, &url, 0).await.unwrap_err();
    assert_eq!(err.status(), Some(502), "{err:?}");
    assert_eq!(script.calls.load(Ordering::SeqCst), 2);
    // A final status (404) is not retried.
    let (files, script) = failing_files_server(vec![StatusCode::NOT_FOUND]).await;
    let client = files_client("http://127.0.0.1:9/api/v1", &files, 3);
    let url = format!("{files}/f.bin?access_token=tok");
    let err = download_all(&client, &url, 0).await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err:?}");
    assert_eq!(script.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_head_follows_the_same_policy() {
    let script = Arc::new(Script::default());
    let app = Router::new()
        .route(
            "/{name}",
            get(|State(s): State<Arc<Script>>| async move {
                if s.calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response()
                } else {
                    file_bytes().into_response()
                }
            }),
        )
        .with_state(script.clone());
    let files = serve(app).await;
    let url = format!("{files}/f.bin?access_token=tok");
    let size = files_client("http://127.0.0.1:9/api/v1", &files, 2)
        .file_size(&url)
        .await
        .unwrap();
    assert_eq!(size, FILE_LEN as u64);
    assert_eq!(script.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retry_after_on_a_503_is_obeyed_up_to_the_cap() {
    let script = Arc::new(Script::default());
    let app = Router::new()
        .route(
            "/api/v1/inquiries/{id}",
            get(|State(s): State<Arc<Script>>| async move {
                if s.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [("Retry-After", "3600")],
                        "maintenance",
                    )
                        .into_response()
                } else {
                    axum::Json(inquiry_body()).into_response()
                }
            }),
        )
        .with_state(script.clone());
    let base = serve(app).await;
    // fast_config: 5 ms backoff steps, but the server's wait is obeyed up to 300 ms.
    let started = std::time::Instant::now();
    let inquiry = test_client(&base, 3)
        .retrieve_inquiry("inq_T1")
        .await
        .unwrap();
    assert_eq!(inquiry.id, "inq_T1");
    assert_eq!(script.calls.load(Ordering::SeqCst), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "Retry-After was not obeyed: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_api_body_cut_short_is_requested_again() {
    let script = Arc::new(Script::default());
    let app = Router::new()
        .route(
            "/api/v1/inquiries/{id}",
            get(|State(s): State<Arc<Script>>| async move {
                let body = inquiry_body().to_string();
                if s.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    let half = body[..body.len() / 2].to_string();
                    let stream = futures::stream::iter([Some(half), None]).then(|p| async move {
                        match p {
                            Some(half) => Ok(bytes::Bytes::from(half)),
                            None => {
                                // Real time: the half leaves before the cut.
                                tokio::time::sleep(Duration::from_millis(30)).await;
                                Err(std::io::Error::other("connection dropped"))
                            }
                        }
                    });
                    Response::builder()
                        .header(header::CONTENT_LENGTH, body.len().to_string())
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from_stream(stream))
                        .unwrap()
                } else {
                    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
                }
            }),
        )
        .with_state(script.clone());
    let base = serve(app).await;
    let inquiry = test_client(&base, 2)
        .retrieve_inquiry("inq_T1")
        .await
        .unwrap();
    assert_eq!(inquiry.included.len(), 3);
    assert_eq!(script.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connection_errors_are_retried_then_reported() {
    // A port nothing listens on: every attempt is refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let started = std::time::Instant::now();
    let err = test_client(&base, 2)
        .retrieve_inquiry("inq_T1")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Network { .. }), "{err:?}");
    assert!(err.to_string().contains("connection failed"), "{err}");
    // Two backoff pauses of at least half a 5 ms, 10 ms step.
    assert!(started.elapsed() >= Duration::from_micros(7_500));
}

// ---------------------------------------------------------------------------------------
// Fidelity to the spec (issue 12).

/// The query pairs a tiny server saw.
type SeenQuery = Arc<parking_lot::Mutex<Vec<(String, String)>>>;

#[tokio::test]
async fn created_at_filters_are_sent_as_utc_date_times() {
    let seen = SeenQuery::default();
    let app = Router::new()
        .route(
            "/api/v1/inquiries",
            get(
                |State(seen): State<SeenQuery>, Query(q): Query<Vec<(String, String)>>| async move {
                    seen.lock().extend(q);
                    axum::Json(json!({"data": [], "links": {"next": null}}))
                },
            ),
        )
        .with_state(seen.clone());
    let base = serve(app).await;
    let client = test_client(&base, 0);
    let filters = ListFilters {
        created_after: Some("2023-01-01".into()),
        created_before: Some("2023-01-31T20:00:00-05:00".into()),
        ..Default::default()
    };
    client.list_page(&filters, None, 10).await.unwrap();
    let seen = seen.lock().clone();
    let value = |k: &str| {
        seen.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        value("filter[created-at-start]"),
        Some("2023-01-01T00:00:00.000Z")
    );
    assert_eq!(
        value("filter[created-at-end]"),
        Some("2023-02-01T01:00:00.000Z")
    );

    let bad = ListFilters {
        created_after: Some("last tuesday".into()),
        ..Default::default()
    };
    let err = client.list_page(&bad, None, 10).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[test]
fn a_plain_date_selects_that_whole_utc_day_on_the_mock() {
    let mock = start_mock(40);
    let client = mock_client(&mock);
    let rt = runtime();
    let all = rt
        .block_on(list_all(&client, &ListFilters::default()))
        .unwrap();
    let day = all[all.len() / 2]
        .created_at
        .expect("created-at")
        .date_naive();
    let expected: Vec<&str> = all
        .iter()
        .filter(|s| s.created_at.map(|t| t.date_naive()) == Some(day))
        .map(|s| s.id.as_str())
        .collect();
    let filters = ListFilters {
        created_after: Some(day.to_string()),
        created_before: Some(day.to_string()),
        ..Default::default()
    };
    let selected = rt.block_on(list_all(&client, &filters)).unwrap();
    let got: Vec<&str> = selected.iter().map(|s| s.id.as_str()).collect();
    assert!(!got.is_empty());
    assert_eq!(got, expected);
}

#[test]
fn updated_at_comes_with_listings_and_retrieves() {
    let mock = start_mock(5);
    let client = mock_client(&mock);
    let rt = runtime();
    let all = rt
        .block_on(list_all(&client, &ListFilters::default()))
        .unwrap();
    for summary in &all {
        let updated = summary.updated_at.expect("the mock sends updated-at");
        assert!(
            summary.created_at.is_some_and(|c| c <= updated),
            "{summary:?}"
        );
        let inquiry = rt.block_on(client.retrieve_inquiry(&summary.id)).unwrap();
        assert_eq!(inquiry.updated_at, Some(updated));
    }
}

#[tokio::test]
async fn a_retrieve_answered_for_another_inquiry_is_refused() {
    let app = Router::new().route(
        "/api/v1/inquiries/{id}",
        // Always inq_T1, whatever was asked for.
        get(|| async { axum::Json(inquiry_body()) }),
    );
    let base = serve(app).await;
    let client = test_client(&base, 0);
    assert_eq!(
        client.retrieve_inquiry("inq_T1").await.unwrap().id,
        "inq_T1"
    );
    let err = client.retrieve_inquiry("inq_OTHER").await.unwrap_err();
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("inq_OTHER") && text.contains("inq_T1"),
        "{text}"
    );
}

#[tokio::test]
async fn odd_ids_and_included_entries_cost_only_themselves() {
    let app = Router::new()
        .route(
            "/api/v1/inquiries",
            get(|| async {
                axum::Json(json!({
                    "data": [
                        {"type": "inquiry", "id": "inq_GOOD2"},
                        {"type": "inquiry", "id": "../../etc/passwd"},
                        {"type": "inquiry", "id": format!("inq_{}", "z".repeat(70))},
                        {"type": "inquiry", "id": "acc_notaninquiry"},
                        {"type": "inquiry", "id": "inq_GOOD1"}
                    ],
                    "links": {"next": null}
                }))
            }),
        )
        .route(
            "/api/v1/inquiries/{id}",
            get(|| async {
                let mut body = inquiry_body();
                let included = body["included"].as_array_mut().unwrap();
                included.push(json!({"id": "doc_NOTYPE", "attributes": {}}));
                included.push(json!("not an object"));
                included.push(json!({"type": "document/generic", "id": "doc_X", "attributes": 5}));
                axum::Json(body)
            }),
        );
    let base = serve(app).await;
    let client = test_client(&base, 0);
    let all = list_all(&client, &ListFilters::default()).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["inq_GOOD2", "inq_GOOD1"]);
    let inquiry = client.retrieve_inquiry("inq_T1").await.unwrap();
    let kept: Vec<&str> = inquiry.included.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(kept, ["doc_T1", "qe_1", "doc_M1"]);
    assert_eq!(files_of(&inquiry).len(), 1);
}

// ---------------------------------------------------------------------------------------
// The request budget.

/// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` as a budget hears them.
type RateLimitHeaders = (Option<u64>, Option<u64>, Option<u64>);

/// A budget that counts what the client asks of it.
#[derive(Default)]
struct CountingBudget {
    acquired: AtomicUsize,
    observed: parking_lot::Mutex<Vec<RateLimitHeaders>>,
}

/// The trait is `#[async_trait]`; written out by hand here, as the macro would.
impl personafs_client::ratelimit::Budget for CountingBudget {
    fn acquire<'s, 'f>(&'s self) -> futures::future::BoxFuture<'f, ()>
    where
        's: 'f,
        Self: 'f,
    {
        self.acquired.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {})
    }
    fn observe<'s, 'f>(
        &'s self,
        h: personafs_client::ratelimit::RateHeaders,
    ) -> futures::future::BoxFuture<'f, ()>
    where
        's: 'f,
        Self: 'f,
    {
        self.observed
            .lock()
            .push((h.limit, h.remaining, h.reset_secs));
        Box::pin(async {})
    }
    fn status(&self) -> personafs_client::ratelimit::BudgetStatus {
        Default::default()
    }
}

#[tokio::test]
async fn every_api_attempt_draws_from_the_budget_and_reports_the_headers() {
    let (base, script) = flaky_server(2, StatusCode::BAD_GATEWAY).await;
    let budget = Arc::new(CountingBudget::default());
    let mut config = fast_config(&format!("{base}/api/v1"), KEY, None);
    config.max_retries = 3;
    let client = HttpClient::with_budget(config, budget.clone()).unwrap();
    client.retrieve_inquiry("inq_T1").await.unwrap();
    assert_eq!(script.calls.load(Ordering::SeqCst), 3);
    assert_eq!(budget.acquired.load(Ordering::SeqCst), 3, "one per attempt");
    let observed = budget.observed.lock().clone();
    assert_eq!(observed.len(), 3);
    // The two errors carried RateLimit-* headers; the success had none.
    assert_eq!(observed[0], (Some(300), Some(299), Some(0)));
    assert_eq!(observed[2], (None, None, None));
}

/// The errno the filesystem answers for a client error (its one errno table).
fn errno(e: personafs_client::Error) -> i32 {
    personafs_fs::errno_of(&personafs_fs::FsError::from(e))
}
