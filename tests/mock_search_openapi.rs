//! The mock's `POST /inquiries/search` against Persona's official OpenAPI spec, both versions
//! (2023-01-05 and 2025-12-08): the spec's own request examples are accepted, and the answers
//! (pages, 400, 401) validate against the documented response schemas.
//!
//! The spec is read from `../shared/persona-openapi/` beside the crate (or the folder named by
//! `PERSONAFS_OPENAPI_DIR`). Absent, the test is skipped with a message — unless `CI` is set,
//! where it fails.

use std::path::PathBuf;

use personafs_mock::{MockConfig, MockServer};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const SEARCH: &str = "/paths/~1inquiries~1search/post";

fn load_spec(version: &str) -> Option<Value> {
    let dir = std::env::var_os("PERSONAFS_OPENAPI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/persona-openapi")
        });
    let path = dir.join(format!("{version}.yaml"));
    if !path.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but the OpenAPI spec is missing at {}",
            path.display()
        );
        eprintln!(
            "SKIPPED: Persona's OpenAPI spec not found at {}",
            path.display()
        );
        return None;
    }
    let text = std::fs::read_to_string(&path).expect("read the spec");
    Some(serde_yaml::from_str(&text).expect("the spec parses as YAML"))
}

/// A validator for the schema at `pointer` inside the whole spec (so `$ref`s resolve).
fn validator(spec: &Value, pointer: &str) -> jsonschema::Validator {
    let mut pointer = pointer.to_string();
    if let Some(target) = spec
        .pointer(&pointer)
        .and_then(|r| r.get("$ref"))
        .and_then(Value::as_str)
    {
        pointer = target.trim_start_matches('#').to_string();
    }
    let schema = format!("{pointer}/content/application~1json/schema");
    assert!(spec.pointer(&schema).is_some(), "no schema at {schema}");
    let mut root = spec.clone();
    root["$ref"] = Value::String(format!("#{schema}"));
    jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("{schema}: {e}"))
}

fn check(validator: &jsonschema::Validator, what: &str, instance: &Value) {
    let errors: Vec<String> = (validator.iter_errors(instance))
        .take(10)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}:\n{}\n\n{instance:#}",
        errors.join("\n")
    );
}

async fn post(
    client: &Client,
    server: &MockServer,
    version: &str,
    path: &str,
    body: &Value,
    key: bool,
) -> (StatusCode, Value) {
    let origin = server.api_base().trim_end_matches("/api/v1").to_string();
    let mut request = client
        .post(format!("{origin}{path}"))
        .header("Persona-Version", version)
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if key {
        request = request.bearer_auth(server.api_key());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let bytes = response.bytes().await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn search_answers_match_both_spec_versions() {
    for version in ["2023-01-05", "2025-12-08"] {
        let Some(spec) = load_spec(version) else {
            return;
        };
        let server = MockServer::start(MockConfig {
            generate: 40,
            ..MockConfig::default()
        })
        .unwrap();
        let ids = server.inquiry_ids();
        assert!(server.set_status(&ids[2], "completed"));
        assert!(server.add_document(&ids[3], "late.pdf", 500).is_some());
        assert!(server.redact(&ids[4]));
        server.add_inquiry("pending", true).unwrap();
        let client = Client::new();
        let ok = validator(&spec, &format!("{SEARCH}/responses/200"));
        let request = {
            let mut root = spec.clone();
            root["$ref"] = json!(format!(
                "#{SEARCH}/requestBody/content/application~1json/schema"
            ));
            jsonschema::draft202012::new(&root).unwrap()
        };
        // Every request example of the spec is accepted and answered per the schema.
        let examples = spec
            .pointer(&format!(
                "{SEARCH}/requestBody/content/application~1json/examples"
            ))
            .and_then(Value::as_object)
            .expect("the spec has request examples");
        assert!(examples.len() >= 4);
        for (name, example) in examples {
            let body = &example["value"];
            check(&request, &format!("{version} request {name}"), body);
            let (status, page) = post(
                &client,
                &server,
                version,
                "/api/v1/inquiries/search",
                body,
                true,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{version} {name}: {page}");
            check(&ok, &format!("{version} {name}"), &page);
        }
        // A delta query, and its next page through the link, POSTed with the same body.
        let delta = json!({
            "query": {"or": [
                {"attribute": "updated_at", "operator": "gte", "value": "2026-01-01T00:00:00Z"},
                {"not": {"attribute": "status", "operator": "eq", "value": "approved"}},
            ]},
            "sort": {"attribute": "updated_at", "direction": "asc"},
            "page": {"size": 5},
        });
        check(&request, "delta request", &delta);
        let (status, page) = post(
            &client,
            &server,
            version,
            "/api/v1/inquiries/search",
            &delta,
            true,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        check(&ok, "delta page", &page);
        let next = page["links"]["next"]
            .as_str()
            .expect("more than one page")
            .to_string();
        let (status, page) = post(&client, &server, version, &next, &delta, true).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["data"].as_array().unwrap().len(), 5);
        check(&ok, "second page", &page);
        assert!(page["links"]["prev"].is_string());
        // The check can fail: a wrong shape is refused.
        assert!(!ok.is_valid(&json!({"data": [{"type": "inquiry", "id": 5}], "links": {}})));
        // Errors.
        let bad = json!({"query": {"attribute": "email", "operator": "eq", "value": "x"}});
        let (status, body) = post(
            &client,
            &server,
            version,
            "/api/v1/inquiries/search",
            &bad,
            true,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        check(
            &validator(&spec, &format!("{SEARCH}/responses/400")),
            "400",
            &body,
        );
        let (status, body) = post(
            &client,
            &server,
            version,
            "/api/v1/inquiries/search",
            &json!({}),
            false,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        check(
            &validator(&spec, &format!("{SEARCH}/responses/401")),
            "401",
            &body,
        );
        assert_eq!(server.stats().api_search, examples.len() as u64 + 3);
    }
}
