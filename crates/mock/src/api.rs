//! The API host: `/api/v1/...` endpoints behind Bearer auth, rate limit and injected faults.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use super::changes;
use super::data::MockInquiry;
use super::files::{count_request, serve_key};
use super::paging::{Paging, items};
use super::respond::{
    bad_request, error, injected_failure, json_response, not_found, request_id, roll,
};
use super::state::{RateDecision, State, Store, Summary, bump, client_tag, now_ms};
use super::token::TokenKind;
use super::urls::mint_urls;
use super::version::ApiVersion;

const LIST_PATH: &str = "/api/v1/inquiries";

/// Runs around every `/api/v1` request: latency, auth, rate limit, injected failures, and the
/// `RateLimit-*` / `Request-Id` headers on whatever the answer is.
pub async fn gate(AxState(state): AxState<Arc<State>>, request: Request, next: Next) -> Response {
    let runtime = state.runtime();
    if runtime.api_latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(runtime.api_latency_ms)).await;
    }
    let revoked = state.key_revoked.load(std::sync::atomic::Ordering::Relaxed);
    let authorized = !revoked
        && request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|key| constant_time_eq(key.trim().as_bytes(), state.api_key.as_bytes()));
    let window = match runtime.rate_window_ms {
        0 => super::state::MINUTE,
        ms => Duration::from_millis(ms),
    };
    let (response, rate) = if !authorized {
        bump(&state.stats.unauthorized);
        let rate = state.rate.lock().check(runtime.rate_limit, window, false);
        let body = error(
            StatusCode::UNAUTHORIZED,
            "Must be authenticated to access this endpoint",
            None,
        );
        (body, rate)
    } else {
        let rate = state.rate.lock().check(runtime.rate_limit, window, true);
        let tag = client_tag(
            request
                .headers()
                .get("x-mock-client")
                .and_then(|v| v.to_str().ok()),
        );
        state.stats.client_request(tag, !rate.allowed);
        if !rate.allowed {
            bump(&state.stats.rate_limited);
            let details = format!(
                "You have hit your rate limit of {} requests / min. Please reach out to \
                 support@withpersona.com if you need this changed.",
                rate.limit
            );
            let body = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit exceeded",
                Some(&details),
            );
            (body, rate)
        } else {
            bump(&state.stats.api_requests);
            if roll(runtime.fail_rate) {
                bump(&state.stats.injected_failures);
                (injected_failure(), rate)
            } else {
                (next.run(request).await, rate)
            }
        }
    };
    let mut response = with_api_headers(response, rate, &state.identity);
    if window != super::state::MINUTE {
        // The IETF draft's header: how a client learns a window other than Persona's minute.
        let policy = format!("{};w={}", rate.limit, window.as_secs_f64().ceil() as u64);
        if let Ok(value) = HeaderValue::from_str(&policy) {
            response.headers_mut().insert("ratelimit-policy", value);
        }
    }
    response
}

fn with_api_headers(
    mut response: Response,
    rate: RateDecision,
    (organization, environment): &(String, String),
) -> Response {
    let headers = response.headers_mut();
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    put("ratelimit-limit", rate.limit.to_string());
    put("ratelimit-remaining", rate.remaining.to_string());
    put("ratelimit-reset", rate.reset_secs.to_string());
    put("request-id", request_id());
    // As Persona does on every answer (spec `components/headers`).
    put("persona-organization-id", organization.clone());
    put("persona-environment-id", environment.clone());
    response
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn version(headers: &HeaderMap) -> ApiVersion {
    ApiVersion::from_header(headers.get("persona-version").and_then(|v| v.to_str().ok()))
}

/// Mint URLs into `body` for the request's version and send it.
fn send(state: &State, store: &Store, headers: &HeaderMap, mut body: Value) -> Response {
    mint_urls(state, store, &mut body, version(headers).legacy_file_urls());
    json_response(StatusCode::OK, &body)
}

/// Send `body` with URLs minted for the request's version (for handlers that hold no store).
pub fn send_json(state: &State, headers: &HeaderMap, body: Value) -> Response {
    let store = state.store.read();
    send(state, &store, headers, body)
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// `GET /api/v1/inquiries`
pub async fn list(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    bump(&state.stats.api_list);
    let pairs = query_pairs(raw.as_deref());
    let query = match ListQuery::parse(&pairs) {
        Ok(q) => q,
        Err(details) => return bad_request(&details),
    };
    let store = state.store.read();
    let cursor = |id: &Option<String>| match id {
        Some(id) => store
            .position(id)
            .map(Some)
            .ok_or_else(|| format!("page cursor {id} is not a known inquiry")),
        None => Ok(None),
    };
    let (after, before) = match (cursor(&query.page.after), cursor(&query.page.before)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return bad_request(&e),
    };
    let scan = Scan::new(&store, &query);
    let page: Vec<u64> = if let Some(pos) = after {
        scan.forward(pos + 1, query.page.size)
    } else if let Some(pos) = before {
        let mut newer = scan.backward(pos, query.page.size);
        newer.reverse();
        newer
    } else {
        scan.forward(0, query.page.size)
    };
    let next = match page.last() {
        Some(&p) if !scan.forward(p + 1, 1).is_empty() => {
            let cursor = match &query.page.after {
                // The cursor this page was asked with, again: a loop (`repeat_cursor`).
                Some(after) if state.runtime().repeat_cursor => after.clone(),
                _ => store.id_at(p),
            };
            Value::String(query.link("page[after]", &cursor))
        }
        _ => Value::Null,
    };
    let prev = match page.first() {
        Some(&p) if !scan.backward(p, 1).is_empty() => {
            Value::String(query.link("page[before]", &store.id_at(p)))
        }
        _ => Value::Null,
    };
    let data: Vec<Value> = page.iter().map(|&p| store.at(p).data.clone()).collect();
    let body = json!({ "data": data, "links": { "prev": prev, "next": next } });
    send(&state, &store, &headers, body)
}

/// Walks the positions that a list query selects, without building inquiries that the
/// cheap checks (ids, created-at range) already exclude.
struct Scan<'a> {
    store: &'a Store,
    query: &'a ListQuery,
    /// Positions `lo..hi` are inside the created-at bounds (the order is newest first).
    lo: u64,
    hi: u64,
    /// With `filter[inquiry-id]`: the positions of those ids, ascending.
    ids: Option<Vec<u64>>,
}

impl<'a> Scan<'a> {
    fn new(store: &'a Store, query: &'a ListQuery) -> Scan<'a> {
        // First position for which `older(created_at)` holds (it holds for a suffix).
        let first = |older: &dyn Fn(DateTime<Utc>) -> bool| {
            let (mut lo, mut hi) = (0, store.len());
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if older(store.created_at(mid)) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            lo
        };
        let lo = query.created_end.map_or(0, |e| first(&|t| t <= e));
        let hi = query
            .created_start
            .map_or(store.len(), |s| first(&|t| t < s));
        let ids = query.ids.as_ref().map(|ids| {
            let mut positions: Vec<u64> = ids.iter().filter_map(|id| store.position(id)).collect();
            positions.sort_unstable();
            positions
        });
        Scan {
            store,
            query,
            lo,
            hi,
            ids,
        }
    }

    fn matches(&self, position: u64) -> bool {
        !self.query.needs_summary() || self.query.matches(&self.store.summary(position))
    }

    /// Up to `limit` matching positions from `start` on, ascending.
    fn forward(&self, start: u64, limit: usize) -> Vec<u64> {
        let start = start.max(self.lo);
        match &self.ids {
            Some(ids) => (ids.iter().copied())
                .filter(|&p| p >= start && p < self.hi && self.matches(p))
                .take(limit)
                .collect(),
            None => (start..self.hi)
                .filter(|&p| self.matches(p))
                .take(limit)
                .collect(),
        }
    }

    /// Up to `limit` matching positions before `end`, nearest first (descending).
    fn backward(&self, end: u64, limit: usize) -> Vec<u64> {
        let end = end.min(self.hi);
        match &self.ids {
            Some(ids) => (ids.iter().rev().copied())
                .filter(|&p| p < end && p >= self.lo && self.matches(p))
                .take(limit)
                .collect(),
            None => (self.lo..end)
                .rev()
                .filter(|&p| self.matches(p))
                .take(limit)
                .collect(),
        }
    }
}

/// The list endpoint's query, checked.
struct ListQuery {
    page: Paging,
    status: Option<HashSet<String>>,
    ids: Option<HashSet<String>>,
    reference_id: Option<String>,
    account_id: Option<String>,
    template_id: Option<String>,
    created_start: Option<DateTime<Utc>>,
    created_end: Option<DateTime<Utc>>,
}

impl ListQuery {
    fn parse(pairs: &[(String, String)]) -> Result<ListQuery, String> {
        let mut q = ListQuery {
            page: Paging::new(),
            status: None,
            ids: None,
            reference_id: None,
            account_id: None,
            template_id: None,
            created_start: None,
            created_end: None,
        };
        let set = |v: &str| -> HashSet<String> { items(v).collect() };
        for (key, value) in pairs {
            if q.page.take(key, value)? {
                continue;
            }
            match key.as_str() {
                "include" => return Err("include is not supported on list endpoints".into()),
                k if k.starts_with("filter[") => match k {
                    "filter[status]" => q.status = Some(set(value)),
                    "filter[inquiry-id]" => {
                        let ids = set(value);
                        if ids.len() > 100 {
                            return Err("filter[inquiry-id] accepts at most 100 ids".into());
                        }
                        q.ids = Some(ids);
                    }
                    "filter[reference-id]" => q.reference_id = Some(value.clone()),
                    "filter[account-id]" => q.account_id = Some(value.clone()),
                    "filter[inquiry-template-id]" => q.template_id = Some(value.clone()),
                    "filter[created-at-start]" => {
                        q.created_start = Some(parse_time(k, value, false)?)
                    }
                    "filter[created-at-end]" => q.created_end = Some(parse_time(k, value, true)?),
                    _ => return Err(format!("{k} is not a supported filter")),
                },
                // Sparse fieldsets and anything else are accepted and ignored.
                _ => {}
            }
        }
        q.page.check()?;
        Ok(q)
    }

    /// Whether a filter needs more than the id and created-at of an inquiry.
    fn needs_summary(&self) -> bool {
        self.status.is_some()
            || self.reference_id.is_some()
            || self.account_id.is_some()
            || self.template_id.is_some()
    }

    fn matches(&self, inquiry: &Summary) -> bool {
        self.status
            .as_ref()
            .is_none_or(|s| s.contains(&inquiry.status))
            && self
                .reference_id
                .as_deref()
                .is_none_or(|r| inquiry.reference_id.as_deref() == Some(r))
            && self
                .account_id
                .as_deref()
                .is_none_or(|a| inquiry.account_id.as_deref() == Some(a))
            && self
                .template_id
                .as_deref()
                .is_none_or(|t| inquiry.template_id.as_deref() == Some(t))
    }

    /// A relative, percent-encoded link to the page next to cursor `id`.
    fn link(&self, page_key: &str, id: &str) -> String {
        self.page.link(LIST_PATH, page_key, id)
    }
}

/// ISO-8601 date-time, or a bare date (start of day; end of day for an end bound).
fn parse_time(key: &str, value: &str, end: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| format!("{key} must be an ISO-8601 date or date-time"))?;
    let time = if end {
        date.and_hms_milli_opt(23, 59, 59, 999)
    } else {
        date.and_hms_opt(0, 0, 0)
    };
    Ok(time.expect("valid time of day").and_utc())
}

/// `GET /api/v1/inquiries/{id}`
pub async fn retrieve(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    bump(&state.stats.api_retrieve);
    let store = state.store.read();
    let Some(inquiry) = store.inquiry(&id) else {
        return not_found();
    };
    let inquiry = &*inquiry;
    let asked: Option<Vec<String>> = query_pairs(raw.as_deref())
        .into_iter()
        .find(|(k, _)| k == "include")
        .map(|(_, v)| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        });
    let names: Vec<String> = asked.unwrap_or_else(|| {
        version(&headers)
            .default_includes()
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let body = json!({ "data": inquiry.data, "included": included(inquiry, &names) });
    send(&state, &store, &headers, body)
}

/// The objects of `inquiry.included` that the relationships `names` point to, in their
/// stored order. Names the inquiry has no relationship for include nothing.
fn included(inquiry: &MockInquiry, names: &[String]) -> Vec<Value> {
    let mut wanted = HashSet::new();
    for name in names {
        match &inquiry.data["relationships"][name.as_str()]["data"] {
            Value::Array(refs) => wanted.extend(refs.iter().filter_map(ref_key)),
            one @ Value::Object(_) => wanted.extend(ref_key(one)),
            _ => {}
        }
    }
    inquiry
        .included
        .iter()
        .filter(|o| ref_key(o).is_some_and(|k| wanted.contains(&k)))
        .cloned()
        .collect()
}

fn ref_key(object: &Value) -> Option<(String, String)> {
    Some((
        object.get("type")?.as_str()?.to_string(),
        object.get("id")?.as_str()?.to_string(),
    ))
}

/// `DELETE /api/v1/inquiries/{id}`: redact, answer with the redacted inquiry.
pub async fn delete(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    bump(&state.stats.api_delete);
    let Some(data) = changes::redact(&state, &id) else {
        return not_found();
    };
    let store = state.store.read();
    send(&state, &store, &headers, json!({ "data": data }))
}

/// `GET /api/v1/documents/{id}`
pub async fn document(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    object_of_type(&state, &headers, &id, |t| t.starts_with("document/"))
}

/// `GET /api/v1/verification/selfies/{id}`
pub async fn selfie_verification(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    object_of_type(&state, &headers, &id, |t| t == "verification/selfie")
}

/// `GET /api/v1/verifications/{id}`
pub async fn verification(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    object_of_type(&state, &headers, &id, |t| t.starts_with("verification/"))
}

fn object_of_type(
    state: &State,
    headers: &HeaderMap,
    id: &str,
    type_ok: impl Fn(&str) -> bool,
) -> Response {
    bump(&state.stats.api_retrieve);
    let store = state.store.read();
    match store.object(id) {
        Some((_, object)) if object["type"].as_str().is_some_and(&type_ok) => {
            let body = json!({ "data": object });
            send(state, &store, headers, body)
        }
        _ => not_found(),
    }
}

/// `GET /api/v1/files/{token}/{filename}`: the pre-2023-01-05 keyed download (the gate has
/// already checked the API key). These tokens do not expire.
pub async fn legacy_file(
    AxState(state): AxState<Arc<State>>,
    method: Method,
    headers: HeaderMap,
    Path((token, filename)): Path<(String, String)>,
) -> Response {
    count_request(&state, &method);
    match state.signer.verify(TokenKind::Legacy, &token, now_ms()) {
        Ok(key) => serve_key(&state, &key, &filename, &method, &headers),
        Err(_) => {
            bump(&state.stats.file_forged);
            not_found()
        }
    }
}

/// Anything else under the API host.
pub async fn fallback() -> Response {
    not_found()
}
