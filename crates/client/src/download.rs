//! Streaming a file URL into a writer, resuming with `Range` after a dropped connection or a
//! short body, and the `HEAD` that gives a file's size.

use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, HeaderMap, RANGE};
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::client::{ERROR_BODY_WAIT, FileTarget, HttpClient, http_error, network_error};
use super::retry::{Transient, transient_status, transient_transport};
use crate::body::{Deadline, read_error_body};
use crate::redact::redact_url;
use crate::{Error, Result};

/// `Content-Range: bytes <start>-<end>/<total>` (total may be `*`), or `bytes */<total>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    pub range: Option<(u64, u64)>,
    pub total: Option<u64>,
}

pub fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let range = match range.trim() {
        "*" => None,
        r => {
            let (a, b) = r.split_once('-')?;
            let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            if b < a {
                return None;
            }
            Some((a, b))
        }
    };
    Some(ContentRange { range, total })
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What one attempt ended with.
enum Attempt {
    /// Everything up to the end of the file (or of the range) is written.
    Done,
    /// Worth another attempt from the current position.
    Retry { error: Error, failure: Transient },
}

fn retry(error: Error, failure: Transient) -> Attempt {
    Attempt::Retry { error, failure }
}

impl HttpClient {
    /// The size of the file behind `url`, from a `HEAD`'s `Content-Length`.
    pub(super) async fn head_size(&self, url: &str) -> Result<u64> {
        let target = self.file_target(url)?;
        let context = format!("size of {}", redact_url(url));
        let config = self.config();
        let deadline = Deadline::after(config.operation_timeout);
        let mut attempts = config.attempts();
        loop {
            let until = deadline.at.min(Instant::now() + config.request_timeout);
            let sent =
                tokio::time::timeout_at(until, self.file_request(Method::HEAD, &target).send())
                    .await;
            let (err, failure) = match sent {
                Err(_) if deadline.remaining().is_zero() => {
                    return Err(deadline.passed(&context, "waiting for an answer"));
                }
                Err(_) => (timeout_error(&context), Some(Transient::Timeout)),
                Ok(Err(e)) => {
                    let failure = transient_transport(&e);
                    (network_error(&context, e), failure)
                }
                Ok(Ok(resp)) if resp.status().is_success() => {
                    return content_length(resp.headers()).ok_or_else(|| Error::InvalidResponse {
                        context: context.clone(),
                        message: "no Content-Length".into(),
                    });
                }
                Ok(Ok(resp)) => {
                    let status = resp.status();
                    let err = http_error(target.host, status, resp.headers(), &[], &context);
                    (err, transient_status(status, resp.headers()))
                }
            };
            match failure {
                Some(failure) => {
                    attempts
                        .pause_until(err, failure, false, Some(deadline.at))
                        .await?
                }
                None => return Err(err),
            }
        }
    }

    /// Stream the file from `offset` (up to `end`, exclusive, or to its end) into `out`; the
    /// number of bytes written. Each retry resumes with `Range` from the byte reached.
    pub(super) async fn download_to(
        &self,
        url: &str,
        offset: u64,
        end: Option<u64>,
        out: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64> {
        let target = self.file_target(url)?;
        let context = format!("download {}", redact_url(url));
        let mut attempts = self.config().attempts();
        let mut pos = offset;
        let mut total: Option<u64> = None;
        let mut pace = Pace::new(self.config(), pos);
        loop {
            let before = pos;
            let at = Progress {
                pos: &mut pos,
                total: &mut total,
                pace: &mut pace,
            };
            let result = self
                .download_attempt(&target, &context, (offset, end), at, out)
                .await?;
            match result {
                Attempt::Done => {
                    out.flush().await?;
                    return Ok(pos - offset);
                }
                Attempt::Retry { error, failure } => {
                    let until = pace.latest_next_attempt(pos);
                    let paused = attempts
                        .pause_until(error, failure, pos > before, Some(until))
                        .await;
                    if let Err(error) = paused {
                        out.flush().await?;
                        return Err(error);
                    }
                }
            }
        }
    }

    /// One request from `*pos`. Fatal errors come back as `Err`; those worth another
    /// attempt as `Attempt::Retry`.
    async fn download_attempt(
        &self,
        target: &FileTarget,
        context: &str,
        (offset, end): (u64, Option<u64>),
        Progress { pos, total, pace }: Progress<'_>,
        out: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<Attempt> {
        let config = self.config();
        if total.is_some_and(|t| *pos >= t) || end.is_some_and(|e| *pos >= e) {
            return Ok(Attempt::Done);
        }
        let mut req = self.file_request(Method::GET, target);
        if let Some(end) = end {
            req = req.header(RANGE, format!("bytes={}-{}", *pos, end - 1));
        } else if *pos > 0 {
            req = req.header(RANGE, format!("bytes={}-", *pos));
        }
        let until = pace.until().min(Instant::now() + config.request_timeout);
        let resp = match tokio::time::timeout_at(until, req.send()).await {
            Err(_) => {
                pace.check(*pos, context)?;
                return Ok(retry(timeout_error(context), Transient::Timeout));
            }
            Ok(Err(e)) => return transport_attempt(context, e),
            Ok(Ok(resp)) => resp,
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let range = headers
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_content_range);
        // How many leading bytes of this body we already have.
        let mut skip = 0u64;
        match status {
            StatusCode::PARTIAL_CONTENT => {
                let Some(ContentRange {
                    range: Some((start, end)),
                    total: range_total,
                }) = range
                else {
                    return Err(invalid(context, "206 without a valid Content-Range"));
                };
                if start != *pos {
                    return Err(invalid(context, "206 for a range we did not ask for"));
                }
                *total = range_total.or(Some(end + 1));
            }
            StatusCode::OK => {
                // The range was ignored (or none was sent): the body starts at byte 0.
                skip = *pos;
                *total = content_length(&headers);
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let size = range.and_then(|r| r.total);
                return match size {
                    // Reading at or past the end: nothing (more) to write.
                    Some(size) if *pos >= size => Ok(Attempt::Done),
                    _ => Err(http_error(target.host, status, &headers, &[], context)),
                };
            }
            s if s.is_success() => {
                return Err(invalid(
                    context,
                    &format!("unexpected status {}", s.as_u16()),
                ));
            }
            s => {
                let wait = pace.remaining().min(ERROR_BODY_WAIT);
                let body = read_error_body(resp, wait).await;
                let err = http_error(target.host, s, &headers, &body, context);
                // An expired signed URL (files-host 401/403/410) is final here: the caller
                // re-retrieves the inquiry for a fresh one.
                return match transient_status(s, &headers) {
                    Some(failure) => Ok(retry(err, failure)),
                    None => Err(err),
                };
            }
        }
        if total.is_some_and(|t| *pos > t) {
            return Err(invalid(context, "offset beyond the end of the file"));
        }
        // A bounded request ends at `end` (or at the end of a shorter file); a server that
        // ignored the range and sends more is cut there.
        let stop = match (end, *total) {
            (Some(e), Some(t)) => Some(e.min(t)),
            (e, t) => e.or(t),
        };

        let mut body = resp.bytes_stream();
        let mut idle_until = Instant::now() + config.request_timeout;
        loop {
            let chunk =
                match tokio::time::timeout_at(pace.until().min(idle_until), body.next()).await {
                    // The end of a pace period: on to the next one when this one had enough.
                    Err(_) if Instant::now() >= pace.until() => {
                        pace.check(*pos, context)?;
                        continue;
                    }
                    Err(_) => return Ok(retry(timeout_error(context), Transient::Timeout)),
                    Ok(None) => break,
                    Ok(Some(Err(e))) => return transport_attempt(context, e),
                    Ok(Some(Ok(chunk))) => chunk,
                };
            idle_until = Instant::now() + config.request_timeout;
            let mut chunk = &chunk[..];
            if skip > 0 {
                let n = skip.min(chunk.len() as u64);
                skip -= n;
                chunk = &chunk[n as usize..];
            }
            if let Some(stop) = stop.filter(|_| end.is_some())
                && *pos + chunk.len() as u64 >= stop
            {
                let keep = (stop - *pos) as usize;
                out.write_all(&chunk[..keep]).await?;
                *pos += keep as u64;
                return Ok(Attempt::Done);
            }
            if let Some(t) = *total
                && *pos + chunk.len() as u64 > t
            {
                return Err(Error::Truncated {
                    context: context.to_string(),
                    expected: t - offset,
                    received: *pos + chunk.len() as u64 - offset,
                });
            }
            out.write_all(chunk).await?;
            *pos += chunk.len() as u64;
            pace.check(*pos, context)?;
        }
        match stop {
            Some(t) if *pos < t => Ok(retry(
                Error::Truncated {
                    context: context.to_string(),
                    expected: t - offset,
                    received: *pos - offset,
                },
                Transient::ShortBody,
            )),
            _ if skip > 0 => Ok(retry(
                invalid(context, "the body ended before the requested offset"),
                Transient::ShortBody,
            )),
            _ => Ok(Attempt::Done),
        }
    }
}

/// A transport error during a download: retried unless another attempt cannot mend it.
fn transport_attempt(context: &str, e: reqwest::Error) -> Result<Attempt> {
    let failure = transient_transport(&e);
    let err = network_error(context, e);
    match failure {
        Some(failure) => Ok(retry(err, failure)),
        None => Err(err),
    }
}

fn invalid(context: &str, message: &str) -> Error {
    Error::InvalidResponse {
        context: context.to_string(),
        message: message.to_string(),
    }
}

fn timeout_error(context: &str) -> Error {
    Error::Network {
        context: context.to_string(),
        message: "timed out".into(),
    }
}

/// Where a download stands, carried from one attempt to the next.
struct Progress<'a> {
    /// The next byte to write.
    pos: &'a mut u64,
    /// The file's size, once a response said it.
    total: &'a mut Option<u64>,
    pace: &'a mut Pace,
}

/// The least a download must do: `min_bytes` in every `period`, whatever its attempts,
/// pauses and rate-limit waits. A body that trickles fails at the end of the first period
/// that falls short, together with the read waiting for it (`--io-timeout`).
#[derive(Debug)]
struct Pace {
    period: Duration,
    min_bytes: u64,
    rate: u64,
    start: Instant,
    /// The position at `start`.
    base: u64,
}

impl Pace {
    fn new(config: &crate::ClientConfig, pos: u64) -> Pace {
        let period = config.operation_timeout;
        Pace {
            period,
            min_bytes: (config.min_transfer_rate as f64 * period.as_secs_f64()) as u64,
            rate: config.min_transfer_rate,
            start: Instant::now(),
            base: pos,
        }
    }

    /// The end of the current period.
    fn until(&self) -> Instant {
        self.start + self.period
    }

    fn remaining(&self) -> Duration {
        self.until().saturating_duration_since(Instant::now())
    }

    /// At or past the end of the period: a new one when this one gained enough, else the
    /// error that ends the download.
    fn check(&mut self, pos: u64, context: &str) -> Result<()> {
        let now = Instant::now();
        if now < self.until() {
            return Ok(());
        }
        let gained = pos.saturating_sub(self.base);
        if gained < self.min_bytes {
            return Err(Error::Network {
                context: context.to_string(),
                message: format!(
                    "timed out: {gained} bytes in {} s, under the minimum of {} per second \
                     (--io-timeout)",
                    self.period.as_secs(),
                    crate::body::human_bytes(self.rate)
                ),
            });
        }
        self.start = now;
        self.base = pos;
        Ok(())
    }

    /// The latest a next attempt may start: the period's end, or one period from now when
    /// this one has gained enough already.
    fn latest_next_attempt(&self, pos: u64) -> Instant {
        if pos.saturating_sub(self.base) >= self.min_bytes {
            Instant::now() + self.period
        } else {
            self.until()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some(ContentRange {
                range: Some((100, 199)),
                total: Some(1000)
            })
        );
        assert_eq!(
            parse_content_range("bytes 0-9/*"),
            Some(ContentRange {
                range: Some((0, 9)),
                total: None
            })
        );
        assert_eq!(
            parse_content_range("bytes */1000"),
            Some(ContentRange {
                range: None,
                total: Some(1000)
            })
        );
        for bad in [
            "",
            "bytes",
            "bytes 5-1/10",
            "items 0-1/2",
            "bytes a-b/c",
            "bytes 0-1",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }
}
