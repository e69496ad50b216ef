//! The files host (`GET`/`HEAD /<filename>?access_token=…`) and the byte serving it shares
//! with the legacy keyed endpoint: ranges, bandwidth cap, truncated and reset bodies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use rand::Rng;

use super::data::{Content, MockFile};
use super::respond::{error, injected_failure, not_found, roll};
use super::state::{State, bump};
use super::token::{TokenError, TokenKind};

// The largest chunk handed to hyper at once is the memo's, so that each is one kept chunk.
use super::memo::CHUNK;

#[derive(serde::Deserialize)]
pub struct TokenQuery {
    access_token: Option<String>,
}

/// `GET`/`HEAD /<filename>?access_token=<token>` on the files host.
pub async fn signed_file(
    AxState(state): AxState<Arc<State>>,
    method: Method,
    headers: HeaderMap,
    Path(filename): Path<String>,
    Query(query): Query<TokenQuery>,
) -> Response {
    if headers.contains_key(header::AUTHORIZATION) {
        bump(&state.stats.files_auth_header);
    }
    let runtime = state.runtime();
    if runtime.files_latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(runtime.files_latency_ms)).await;
    }
    count_request(&state, &method);
    // "Unreachable": no answer at all until the host is back (as packets dropped on the
    // way); the request is then served normally, like a late answer.
    while state.files_down.load(std::sync::atomic::Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if roll(runtime.fail_rate) {
        bump(&state.stats.injected_failures);
        return injected_failure();
    }
    let token = query.access_token.unwrap_or_default();
    let key = match state
        .signer
        .verify(TokenKind::Signed, &token, state.url_now_ms())
    {
        Ok(key) => key,
        Err(TokenError::Expired) => {
            bump(&state.stats.file_expired);
            return error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                Some("The access token has expired; retrieve the object again for a new URL"),
            );
        }
        Err(TokenError::Forged) => {
            bump(&state.stats.file_forged);
            return error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                Some("The access token is invalid"),
            );
        }
    };
    serve_key(&state, &key, &filename, &method, &headers)
}

/// Counts a download request (files host or legacy endpoint).
pub fn count_request(state: &State, method: &Method) {
    if method == Method::HEAD {
        bump(&state.stats.file_head);
    } else {
        bump(&state.stats.file_get);
    }
}

/// Serve the file behind a verified token, if it still exists under that name.
pub fn serve_key(
    state: &Arc<State>,
    key: &str,
    filename: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let file = state.store.read().file(key);
    match file {
        Some(file) if file.filename == filename => serve(state, &file, method, headers),
        _ => not_found(),
    }
}

/// What a `Range` header asks for, against a file of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeAsk {
    Whole,
    /// Inclusive start, exclusive end.
    Part(u64, u64),
    Unsatisfiable,
}

/// `bytes=a-b`, `bytes=a-` and `bytes=-n`; anything else (several ranges, other units,
/// garbage) is ignored and the whole file is served, as RFC 9110 allows.
pub fn parse_range(value: Option<&str>, len: u64) -> RangeAsk {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        (true, false) => match parse(last) {
            Some(0) => RangeAsk::Unsatisfiable,
            Some(n) if len > 0 => RangeAsk::Part(len.saturating_sub(n), len),
            Some(_) => RangeAsk::Unsatisfiable,
            None => RangeAsk::Whole,
        },
        (false, _) => {
            let Some(start) = parse(first) else {
                return RangeAsk::Whole;
            };
            let end = if last.is_empty() {
                len
            } else {
                match parse(last) {
                    Some(l) if l >= start => l.saturating_add(1).min(len),
                    _ => return RangeAsk::Whole,
                }
            };
            if start >= len {
                RangeAsk::Unsatisfiable
            } else {
                RangeAsk::Part(start, end)
            }
        }
        (true, true) => RangeAsk::Whole,
    }
}

fn serve(state: &Arc<State>, file: &MockFile, method: &Method, headers: &HeaderMap) -> Response {
    let len = file.content.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, start, end) = match parse_range(range.as_deref(), len) {
        RangeAsk::Whole => (StatusCode::OK, 0, len),
        RangeAsk::Part(start, end) => (StatusCode::PARTIAL_CONTENT, start, end),
        RangeAsk::Unsatisfiable => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            insert(
                &mut response,
                header::CONTENT_RANGE,
                format!("bytes */{len}"),
            );
            return response;
        }
    };
    let body = if method == Method::HEAD || start == end {
        Body::empty()
    } else {
        Body::from_stream(download(state.clone(), file.content.clone(), start, end))
    };
    let mut response = (status, body).into_response();
    insert(
        &mut response,
        header::CONTENT_TYPE,
        file.content_type.clone(),
    );
    insert(
        &mut response,
        header::CONTENT_LENGTH,
        (end - start).to_string(),
    );
    insert(&mut response, header::ACCEPT_RANGES, "bytes".into());
    if status == StatusCode::PARTIAL_CONTENT {
        let range = format!("bytes {start}-{}/{len}", end - 1);
        insert(&mut response, header::CONTENT_RANGE, range);
    }
    response
}

fn insert(response: &mut Response, name: header::HeaderName, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(name, value);
    }
}

/// How an injected fault ends a body early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// End the body cleanly before `Content-Length` is reached; hyper then closes.
    Truncate,
    /// Fail the body stream, which makes hyper abort the connection.
    Reset,
}

struct Download {
    state: Arc<State>,
    content: Arc<dyn Content>,
    pos: u64,
    end: u64,
    cut: Option<(u64, Cut)>,
    bandwidth: u64,
    started: Instant,
    sent: u64,
}

/// The body of `start..end`, read chunk by chunk (never the whole file at once).
fn download(
    state: Arc<State>,
    content: Arc<dyn Content>,
    start: u64,
    end: u64,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send {
    let runtime = state.runtime();
    let cut = if roll(runtime.reset_rate) {
        Some(Cut::Reset)
    } else if roll(runtime.truncate_rate) {
        Some(Cut::Truncate)
    } else {
        None
    }
    // Cut after at least one byte when there are two or more, so a client sees a started body.
    .map(|cut| (rand::rng().random_range((start + 1).min(end - 1)..end), cut));
    let download = Download {
        state,
        content,
        pos: start,
        end,
        cut,
        bandwidth: runtime.files_bandwidth,
        started: Instant::now(),
        sent: 0,
    };
    futures::stream::unfold(download, next_chunk)
}

async fn next_chunk(mut d: Download) -> Option<(std::io::Result<Bytes>, Download)> {
    let stop = d.cut.map_or(d.end, |(at, _)| at);
    if d.pos >= stop {
        if d.cut.is_some() {
            // Let hyper flush the headers and bytes so far: the client must see a body that
            // started and then stopped, not a connection that never answered.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        return match d.cut.take() {
            Some((_, Cut::Reset)) => {
                bump(&d.state.stats.resets);
                let err = std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection reset injected by the mock server (reset_rate)",
                );
                Some((Err(err), d))
            }
            Some((_, Cut::Truncate)) => {
                bump(&d.state.stats.truncated);
                None
            }
            None => None,
        };
    }
    // Up to the next chunk boundary, so the bytes are one slice of a kept chunk.
    let mut size = (CHUNK - d.pos % CHUNK).min(stop - d.pos);
    if d.bandwidth > 0 {
        // About 20 chunks a second, so the cap is smooth even for small files.
        size = size.min((d.bandwidth / 20).max(1024));
        let due = Duration::from_secs_f64(d.sent as f64 / d.bandwidth as f64);
        let elapsed = d.started.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
    let buf = d.state.memo.read(&d.content, d.pos, size);
    d.pos += size;
    d.sent += size;
    d.state
        .stats
        .file_bytes
        .fetch_add(size, std::sync::atomic::Ordering::Relaxed);
    Some((Ok(buf), d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=2-4"), 10), RangeAsk::Part(2, 5));
        assert_eq!(parse_range(Some("bytes=2-"), 10), RangeAsk::Part(2, 10));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), RangeAsk::Part(5, 10));
        assert_eq!(parse_range(Some("bytes=-3"), 10), RangeAsk::Part(7, 10));
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=4-2"), 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeAsk::Whole);
    }
}
