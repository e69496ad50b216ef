//! Persona-shaped responses: JSON bodies, error bodies, request ids, injected failures.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// `{"errors":[{"title":…,"details":…}]}`; `details` left out when `None` (the spec's 401
/// body allows only `title`).
pub fn error(status: StatusCode, title: &str, details: Option<&str>) -> Response {
    let mut item = json!({ "title": title });
    if let Some(details) = details {
        item["details"] = Value::from(details);
    }
    json_response(status, &json!({ "errors": [item] }))
}

pub fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Record not found", None)
}

pub fn bad_request(details: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "Bad Request", Some(details))
}

/// `req_` and 24 random alphanumerics, as Persona's `Request-Id`.
pub fn request_id() -> String {
    let suffix: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("req_{suffix}")
}

/// True with probability `rate` (0 or less never, 1 or more always).
pub fn roll(rate: f64) -> bool {
    rate > 0.0 && rand::rng().random_bool(rate.min(1.0))
}

/// An injected server failure: 500, 502 or 503 with a Persona-ish body.
pub fn injected_failure() -> Response {
    let (status, title) = match rand::rng().random_range(0..3) {
        0 => (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        1 => (StatusCode::BAD_GATEWAY, "Bad Gateway"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "Service unavailable"),
    };
    error(
        status,
        title,
        Some("Injected by the mock server (fail_rate)"),
    )
}
