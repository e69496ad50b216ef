//! The one retry policy of the client: which failures are worth another attempt, how long to
//! wait before it, and when to give up. Every request kind (API requests, `HEAD`s, downloads)
//! runs its attempts through [`Attempts`], so they all behave the same way:
//!
//! - retried: 5xx, 429, timeouts, connection errors, bodies cut short (a download resumes
//!   with `Range` from the byte it reached; that is the caller's part);
//! - 429 waits for `RateLimit-Reset` (else `Retry-After`), a 5xx for `Retry-After` when
//!   given, both up to `max_rate_limit_wait`; everything else backs off exponentially with
//!   jitter;
//! - at most `max_retries` failures in a row without progress; a download that gains bytes
//!   on every attempt may go on longer, but never past [`RetryPolicy::max_attempts`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::{Error, Result};

/// Never wait longer than this between two attempts after an error.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Exponential backoff with jitter: `base · 2^attempt`, capped, then scaled by a random factor
/// in [0.5, 1.0] so that many clients that failed together do not retry together.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF);
    exp.mul_f64(rand::rng().random_range(0.5..=1.0))
}

/// After a 429: until `RateLimit-Reset` (seconds), capped at `cap`, plus up to 20 % jitter
/// (still within the cap); without the header, plain backoff from a one-second base.
pub fn rate_limited_wait(reset_secs: Option<u64>, attempt: u32, cap: Duration) -> Duration {
    match reset_secs {
        Some(secs) => {
            let wait = Duration::from_secs(secs).max(Duration::from_millis(100));
            wait.mul_f64(rand::rng().random_range(1.0..=1.2)).min(cap)
        }
        None => backoff(Duration::from_secs(1), attempt).min(cap),
    }
}

/// Why an attempt failed, when it is worth another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transient {
    /// HTTP 429; `reset_secs` from `RateLimit-Reset`, else `Retry-After`.
    RateLimited { reset_secs: Option<u64> },
    /// HTTP 5xx; `retry_after_secs` from `Retry-After` when the server gave one.
    ServerError { retry_after_secs: Option<u64> },
    /// No response head (or no next chunk) in time.
    Timeout,
    /// Connection refused, reset, or dropped before the response was complete.
    Connection,
    /// A body that ended before the length it announced.
    ShortBody,
}

/// The transient kind of an error status, `None` when the status is final (4xx but 429).
pub fn transient_status(status: StatusCode, headers: &HeaderMap) -> Option<Transient> {
    if status == StatusCode::TOO_MANY_REQUESTS {
        let reset_secs = header_u64(headers, "RateLimit-Reset").or_else(|| retry_after(headers));
        Some(Transient::RateLimited { reset_secs })
    } else if status.is_server_error() {
        Some(Transient::ServerError {
            retry_after_secs: retry_after(headers),
        })
    } else {
        None
    }
}

/// The transient kind of a transport error, `None` for those another attempt cannot mend
/// (a refused redirect, a request that could not be built).
pub fn transient_transport(e: &reqwest::Error) -> Option<Transient> {
    if e.is_timeout() {
        Some(Transient::Timeout)
    } else if e.is_redirect() || e.is_builder() {
        None
    } else {
        Some(Transient::Connection)
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// `Retry-After` as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
fn retry_after(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get("Retry-After")?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse() {
        return Some(secs);
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - Utc::now()).num_seconds().max(0) as u64)
}

/// The client's retry settings (from `ClientConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Failures in a row without progress allowed after the first attempt.
    pub max_retries: u32,
    /// First step of the exponential backoff.
    pub base_delay: Duration,
    /// The longest wait the server's `RateLimit-Reset`/`Retry-After` can impose.
    pub max_server_wait: Duration,
}

impl RetryPolicy {
    /// All attempts of one request together, even when each one made progress: a server that
    /// trickles a few bytes before every drop still comes to an end.
    pub fn max_attempts(&self) -> u32 {
        self.max_retries
            .saturating_add(1)
            .saturating_mul(8)
            .saturating_add(24)
    }

    /// The pause before the next attempt after `failure`, `failures` (from 0) being how many
    /// failures in a row without progress came before it.
    pub fn wait(&self, failure: Transient, failures: u32, progressed: bool) -> Duration {
        match failure {
            Transient::RateLimited { reset_secs } => {
                rate_limited_wait(reset_secs, failures, self.max_server_wait)
            }
            Transient::ServerError {
                retry_after_secs: Some(secs),
            } => rate_limited_wait(Some(secs), failures, self.max_server_wait),
            // Bytes arrived: the connection works, resume at once.
            _ if progressed => Duration::ZERO,
            _ => backoff(self.base_delay, failures),
        }
    }

    /// A fresh count of attempts for one request.
    pub fn start(&self) -> Attempts {
        Attempts {
            policy: *self,
            failures: 0,
            attempts: 0,
            telemetry: None,
        }
    }
}

/// The attempts of one request so far.
#[derive(Debug)]
pub struct Attempts {
    policy: RetryPolicy,
    /// Failures in a row without progress.
    failures: u32,
    /// Failed attempts in all.
    attempts: u32,
    /// Where retries and 429s are counted, if anywhere.
    telemetry: Option<std::sync::Arc<crate::telemetry::Telemetry>>,
}

impl Attempts {
    /// After a failed attempt: how long to wait before the next one, or the error to return
    /// when the policy gives up. `progressed` says the attempt gained something (bytes of a
    /// download), which resets the count of failures in a row.
    pub fn next_wait(
        &mut self,
        error: Error,
        failure: Transient,
        progressed: bool,
    ) -> Result<Duration> {
        self.next_wait_until(error, failure, progressed, None)
    }

    /// `next_wait`, giving up too when the next attempt would start at or after `until`:
    /// waiting out a `RateLimit-Reset` that ends past the operation's deadline only delays
    /// the same error.
    pub fn next_wait_until(
        &mut self,
        error: Error,
        failure: Transient,
        progressed: bool,
        until: Option<tokio::time::Instant>,
    ) -> Result<Duration> {
        if let Some(t) = &self.telemetry
            && matches!(failure, Transient::RateLimited { .. })
        {
            t.rate_limited
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        // Failures in a row before this one: the step of the backoff.
        let before = if progressed { 0 } else { self.failures };
        self.failures = if progressed { 0 } else { self.failures + 1 };
        self.attempts += 1;
        if self.failures > self.policy.max_retries || self.attempts >= self.policy.max_attempts() {
            return Err(error);
        }
        let wait = self.policy.wait(failure, before, progressed);
        if until.is_some_and(|until| tokio::time::Instant::now() + wait >= until) {
            tracing::debug!(
                attempt = self.attempts,
                ?failure,
                wait_ms = wait.as_millis() as u64,
                "{error}; not retrying: the next attempt would start past the deadline"
            );
            return Err(error);
        }
        if let Some(t) = &self.telemetry {
            t.retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        tracing::debug!(
            attempt = self.attempts,
            ?failure,
            wait_ms = wait.as_millis() as u64,
            "{error}; retrying"
        );
        Ok(wait)
    }

    /// `next_wait`, then the wait itself.
    pub async fn pause(
        &mut self,
        error: Error,
        failure: Transient,
        progressed: bool,
    ) -> Result<()> {
        self.pause_until(error, failure, progressed, None).await
    }

    /// `next_wait_until`, then the wait itself.
    pub async fn pause_until(
        &mut self,
        error: Error,
        failure: Transient,
        progressed: bool,
        until: Option<tokio::time::Instant>,
    ) -> Result<()> {
        let wait = self.next_wait_until(error, failure, progressed, until)?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// Count retries and 429s in `telemetry`.
    pub fn counted(
        mut self,
        telemetry: Option<std::sync::Arc<crate::telemetry::Telemetry>>,
    ) -> Attempts {
        self.telemetry = telemetry;
        self
    }

    /// Failed attempts so far.
    pub fn failed(&self) -> u32 {
        self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn policy(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            base_delay: Duration::from_millis(100),
            max_server_wait: Duration::from_secs(60),
        }
    }

    fn err() -> Error {
        Error::Network {
            context: "t".into(),
            message: "reset".into(),
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let base = Duration::from_millis(100);
        for attempt in 0..6 {
            let full = base * (1 << attempt);
            for _ in 0..50 {
                let d = backoff(base, attempt);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
        assert!(backoff(base, 40) <= MAX_BACKOFF);
        assert!(backoff(base, 40) >= MAX_BACKOFF / 2);
    }

    #[test]
    fn rate_limited_wait_follows_reset_within_cap() {
        let cap = Duration::from_secs(60);
        for _ in 0..50 {
            let d = rate_limited_wait(Some(5), 0, cap);
            assert!(
                d >= Duration::from_secs(5) && d <= Duration::from_secs(6),
                "{d:?}"
            );
        }
        assert_eq!(rate_limited_wait(Some(3600), 0, cap), cap);
        assert!(rate_limited_wait(None, 0, cap) <= Duration::from_secs(1));
        assert_eq!(
            rate_limited_wait(Some(5), 0, Duration::from_millis(50)),
            Duration::from_millis(50)
        );
    }

    #[test]
    fn statuses_are_classified() {
        let none = HeaderMap::new();
        assert_eq!(
            transient_status(StatusCode::BAD_GATEWAY, &none),
            Some(Transient::ServerError {
                retry_after_secs: None
            })
        );
        for status in [400, 401, 403, 404, 410, 416, 422] {
            let s = StatusCode::from_u16(status).unwrap();
            assert_eq!(transient_status(s, &none), None, "{status}");
        }
        let mut h = HeaderMap::new();
        h.insert("Retry-After", HeaderValue::from_static("7"));
        assert_eq!(
            transient_status(StatusCode::TOO_MANY_REQUESTS, &h),
            Some(Transient::RateLimited {
                reset_secs: Some(7)
            }),
            "Retry-After when there is no RateLimit-Reset"
        );
        h.insert("RateLimit-Reset", HeaderValue::from_static("3"));
        assert_eq!(
            transient_status(StatusCode::TOO_MANY_REQUESTS, &h),
            Some(Transient::RateLimited {
                reset_secs: Some(3)
            }),
            "RateLimit-Reset first"
        );
        assert_eq!(
            transient_status(StatusCode::SERVICE_UNAVAILABLE, &h),
            Some(Transient::ServerError {
                retry_after_secs: Some(7)
            })
        );
    }

    #[test]
    fn retry_after_as_an_http_date() {
        let mut h = HeaderMap::new();
        let at = Utc::now() + chrono::Duration::seconds(120);
        let text = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        h.insert("Retry-After", HeaderValue::from_str(&text).unwrap());
        let secs = retry_after(&h).unwrap();
        assert!((118..=120).contains(&secs), "{secs}");
        h.insert(
            "Retry-After",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&h), Some(0), "a date in the past: no wait");
        h.insert("Retry-After", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn server_waits_are_obeyed_up_to_the_cap() {
        let p = RetryPolicy {
            max_server_wait: Duration::from_secs(10),
            ..policy(3)
        };
        let limited = Transient::RateLimited {
            reset_secs: Some(4),
        };
        let w = p.wait(limited, 0, false);
        assert!(
            w >= Duration::from_secs(4) && w <= Duration::from_millis(4800),
            "{w:?}"
        );
        let long = Transient::ServerError {
            retry_after_secs: Some(3600),
        };
        assert_eq!(p.wait(long, 0, false), Duration::from_secs(10));
        // A 429 waits even when the attempt made progress.
        assert!(p.wait(limited, 0, true) >= Duration::from_secs(4));
        assert_eq!(p.wait(Transient::ShortBody, 5, true), Duration::ZERO);
        let w = p.wait(Transient::Timeout, 2, false);
        assert!(
            w >= Duration::from_millis(200) && w <= Duration::from_millis(400),
            "{w:?}"
        );
    }

    #[test]
    fn gives_up_after_max_retries_failures_in_a_row() {
        let mut a = policy(2).start();
        assert!(a.next_wait(err(), Transient::Connection, false).is_ok());
        assert!(a.next_wait(err(), Transient::Connection, false).is_ok());
        let e = a
            .next_wait(err(), Transient::Connection, false)
            .unwrap_err();
        assert!(matches!(e, Error::Network { .. }));
        assert_eq!(a.failed(), 3);

        let mut none = policy(0).start();
        assert!(none.next_wait(err(), Transient::Timeout, false).is_err());
    }

    #[tokio::test]
    async fn a_wait_past_the_deadline_gives_up_at_once() {
        let mut a = policy(6).start();
        let limited = Transient::RateLimited {
            reset_secs: Some(3600),
        };
        let soon = tokio::time::Instant::now() + Duration::from_secs(5);
        let e = a
            .next_wait_until(err(), limited, false, Some(soon))
            .unwrap_err();
        assert!(matches!(e, Error::Network { .. }));
        let later = tokio::time::Instant::now() + Duration::from_secs(600);
        let w = a.next_wait_until(err(), limited, false, Some(later));
        assert_eq!(
            w.unwrap(),
            Duration::from_secs(60),
            "capped, within the deadline"
        );
    }

    #[test]
    fn progress_resets_the_count_but_not_the_overall_cap() {
        let p = policy(1);
        let mut a = p.start();
        for _ in 0..p.max_attempts() - 1 {
            assert!(a.next_wait(err(), Transient::ShortBody, true).is_ok());
        }
        assert!(a.next_wait(err(), Transient::ShortBody, true).is_err());
        assert_eq!(a.failed(), p.max_attempts());

        let mut b = p.start();
        assert!(b.next_wait(err(), Transient::ShortBody, false).is_ok());
        assert!(b.next_wait(err(), Transient::ShortBody, true).is_ok());
        assert!(b.next_wait(err(), Transient::ShortBody, false).is_ok());
        assert!(b.next_wait(err(), Transient::ShortBody, false).is_err());
    }
}
