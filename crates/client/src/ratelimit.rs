//! The client's own brake on API requests. A [`Budget`] is what every API request draws from
//! before it goes out: the local one ([`RateLimiter`]) is a token bucket at `api_rate_limit`
//! requests per minute, shared by every clone of a client, that also spaces requests out when
//! Persona says fewer than 15 % of the window's requests remain (PERSONA_API.md, "Errors and
//! limits"). `shared_budget::SharedBudget` does the same for every process of an organization
//! at once, through Redis.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

/// Below this share of `RateLimit-Limit` left, requests are spread over the rest of the window.
pub const SLOW_DOWN_BELOW: f64 = 0.15;
/// The longest pause the server's headers can impose between two requests.
pub const MAX_SPACING: Duration = Duration::from_secs(10);

/// The request budget API requests draw from.
#[async_trait]
pub trait Budget: Send + Sync + 'static {
    /// Wait until one more API request may go out.
    async fn acquire(&self);
    /// Learn from a response's `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`.
    async fn observe(&self, limit: Option<u64>, remaining: Option<u64>, reset_secs: Option<u64>);
}

/// What a response's `RateLimit-*` headers say about the organization's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerBudget {
    /// No (usable) headers: nothing changes.
    Unknown,
    /// At least [`SLOW_DOWN_BELOW`] of the limit left: no spacing.
    Healthy,
    /// Little left: one request per `spacing` for the rest of the `window`.
    Low { spacing: Duration, window: Duration },
}

impl ServerBudget {
    pub fn from_headers(
        limit: Option<u64>,
        remaining: Option<u64>,
        reset_secs: Option<u64>,
    ) -> ServerBudget {
        let (Some(limit), Some(remaining)) = (limit, remaining) else {
            return ServerBudget::Unknown;
        };
        if limit == 0 || (remaining as f64) >= SLOW_DOWN_BELOW * limit as f64 {
            return ServerBudget::Healthy;
        }
        // Persona's window is a minute: a reset further away is not believed, or one answer
        // could slow every request for as long as it liked.
        let window = Duration::from_secs(reset_secs.unwrap_or(60).clamp(1, 60));
        let spacing = window / u32::try_from(remaining.max(1)).unwrap_or(u32::MAX);
        ServerBudget::Low {
            spacing: spacing.min(MAX_SPACING),
            window,
        }
    }
}

#[derive(Debug)]
pub struct RateLimiter {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Requests per second; 0 = no client-side limit.
    rate: f64,
    capacity: f64,
    /// May go negative: each waiting caller has reserved its token.
    tokens: f64,
    refilled: Instant,
    /// Minimum gap between requests while the server reports a low budget, and until when.
    spacing: Duration,
    spacing_until: Instant,
    next_slot: Instant,
}

impl RateLimiter {
    /// `per_minute` = 0 turns the bucket off (the server's headers are still obeyed).
    pub fn new(per_minute: u32) -> Self {
        let now = Instant::now();
        let rate = f64::from(per_minute) / 60.0;
        // Bursts of up to a minute's budget, as Persona counts it (requests per minute): a
        // tree walk need not crawl, and the bucket still keeps every minute under the limit.
        let capacity = (rate * 60.0).max(1.0);
        RateLimiter {
            state: Mutex::new(State {
                rate,
                capacity,
                tokens: capacity,
                refilled: now,
                spacing: Duration::ZERO,
                spacing_until: now,
                next_slot: now,
            }),
        }
    }

    /// Wait until one more API request may go out.
    pub async fn acquire(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Take a token (and a slot, when spacing) at `now`; how long the caller must wait.
    pub fn reserve(&self, now: Instant) -> Duration {
        let mut s = self.state.lock();
        let mut wait = Duration::ZERO;
        if s.rate > 0.0 {
            let elapsed = now.saturating_duration_since(s.refilled).as_secs_f64();
            s.tokens = (s.tokens + elapsed * s.rate).min(s.capacity);
            s.refilled = now;
            s.tokens -= 1.0;
            if s.tokens < 0.0 {
                wait = Duration::from_secs_f64(-s.tokens / s.rate);
            }
        }
        if now < s.spacing_until && !s.spacing.is_zero() {
            let slot = s.next_slot.max(now + wait);
            wait = slot - now;
            s.next_slot = slot + s.spacing;
        }
        wait
    }

    /// Learn from a response's `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`.
    pub fn observe(&self, limit: Option<u64>, remaining: Option<u64>, reset_secs: Option<u64>) {
        self.observe_at(Instant::now(), limit, remaining, reset_secs)
    }

    pub fn observe_at(
        &self,
        now: Instant,
        limit: Option<u64>,
        remaining: Option<u64>,
        reset_secs: Option<u64>,
    ) {
        let mut s = self.state.lock();
        match ServerBudget::from_headers(limit, remaining, reset_secs) {
            ServerBudget::Unknown => {}
            ServerBudget::Healthy => s.spacing = Duration::ZERO,
            ServerBudget::Low { spacing, window } => {
                s.spacing = spacing;
                s.spacing_until = now + window;
                s.next_slot = s.next_slot.max(now);
            }
        }
    }
}

#[async_trait]
impl Budget for RateLimiter {
    async fn acquire(&self) {
        RateLimiter::acquire(self).await
    }
    async fn observe(&self, limit: Option<u64>, remaining: Option<u64>, reset_secs: Option<u64>) {
        RateLimiter::observe(self, limit, remaining, reset_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_paces() {
        let limiter = RateLimiter::new(60); // 1/s, burst 60
        let t0 = Instant::now();
        for _ in 0..60 {
            assert_eq!(limiter.reserve(t0), Duration::ZERO);
        }
        let w = limiter.reserve(t0);
        assert!((w.as_secs_f64() - 1.0).abs() < 0.01, "{w:?}");
        let w = limiter.reserve(t0);
        assert!((w.as_secs_f64() - 2.0).abs() < 0.01, "{w:?}");
        // After enough time the bucket refills.
        assert_eq!(
            limiter.reserve(t0 + Duration::from_secs(90)),
            Duration::ZERO
        );
    }

    #[test]
    fn zero_rate_means_no_client_limit() {
        let limiter = RateLimiter::new(0);
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert_eq!(limiter.reserve(t0), Duration::ZERO);
        }
    }

    #[test]
    fn low_remaining_budget_spaces_requests() {
        let limiter = RateLimiter::new(0);
        let t0 = Instant::now();
        limiter.observe_at(t0, Some(300), Some(100), Some(30));
        assert_eq!(
            limiter.reserve(t0),
            Duration::ZERO,
            "above 15 %: no spacing"
        );
        limiter.observe_at(t0, Some(300), Some(10), Some(20)); // 3 %: 20 s over 10 requests
        assert_eq!(limiter.reserve(t0), Duration::ZERO);
        assert_eq!(limiter.reserve(t0), Duration::from_secs(2));
        assert_eq!(limiter.reserve(t0), Duration::from_secs(4));
        // The window is over: no more spacing.
        assert_eq!(
            limiter.reserve(t0 + Duration::from_secs(21)),
            Duration::ZERO
        );
        // A healthy budget again lifts it at once.
        limiter.observe_at(t0, Some(300), Some(1), Some(600));
        limiter.observe_at(t0, Some(300), Some(299), Some(60));
        assert_eq!(limiter.reserve(t0), Duration::ZERO);
        assert_eq!(limiter.reserve(t0), Duration::ZERO);
    }

    #[test]
    fn spacing_is_capped() {
        let limiter = RateLimiter::new(0);
        let t0 = Instant::now();
        limiter.observe_at(t0, Some(300), Some(0), Some(3000));
        limiter.reserve(t0);
        assert_eq!(limiter.reserve(t0), MAX_SPACING);
    }
}
