//! The client's own brake on API requests. Persona's limit (300 a minute by default) belongs to
//! the whole environment: the customer's own systems draw on it too. So a [`Budget`], which
//! every API request draws from before it goes out, keeps personafs to a share of the limit
//! that Persona's `RateLimit-Limit` header reports ([`BudgetPolicy::share`], half by default),
//! or to an absolute number a minute, and keeps a reserve: once `RateLimit-Remaining` falls
//! below [`BudgetPolicy::reserve`] of the limit, nothing more goes out until the window
//! resets. The headers are the truth: a limit other than 300, or a window other than a minute
//! (`RateLimit-Policy: <limit>;w=<seconds>`, when a server sends it), is followed.
//!
//! The local budget is [`RateLimiter`]; `shared_budget::SharedBudget` keeps the same books
//! for every mount of an environment at once, in Redis.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Persona's limit, assumed until an answer says otherwise.
pub const ASSUMED_LIMIT: u64 = 300;
/// Persona's window.
pub const MINUTE: Duration = Duration::from_secs(60);
/// The most calls a budget keeps books of. A share above it is not enforced: no Persona
/// environment allows that many (a mock with its limit off reports 1,000,000).
pub const MAX_TRACKED: u64 = 20_000;
/// The longest window a `RateLimit-Policy` header is believed for.
const MAX_WINDOW: Duration = Duration::from_secs(3600);

/// How much of Persona's budget a mount may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetPolicy {
    /// The share of `RateLimit-Limit` used per window (0 < share ≤ 1), unless `per_minute`.
    pub share: f64,
    /// Below this share of the limit left (`RateLimit-Remaining`), nothing is sent until the
    /// window resets. With 0, only an exhausted window (0 left) stops requests.
    pub reserve: f64,
    /// An absolute number of requests a minute instead of the share (0 = no client cap).
    pub per_minute: Option<u32>,
}

impl Default for BudgetPolicy {
    /// Half of the limit, a reserve of 30 %.
    fn default() -> Self {
        BudgetPolicy {
            share: 0.5,
            reserve: 0.3,
            per_minute: None,
        }
    }
}

impl BudgetPolicy {
    /// At most `n` requests a minute (0 = no cap), with the default reserve.
    pub fn absolute(n: u32) -> BudgetPolicy {
        BudgetPolicy {
            per_minute: Some(n),
            ..BudgetPolicy::default()
        }
    }

    /// No client-side cap and no reserve: only an exhausted window stops requests.
    pub fn unlimited() -> BudgetPolicy {
        BudgetPolicy {
            share: 1.0,
            reserve: 0.0,
            per_minute: Some(0),
        }
    }

    /// The calls allowed per window, and the window, for a server limit and window.
    /// `None`: no cap (none asked, or more than [`MAX_TRACKED`]).
    pub fn cap(&self, limit: u64, window: Duration) -> (Option<u64>, Duration) {
        let (cap, window) = match self.per_minute {
            Some(0) => (None, MINUTE),
            Some(n) => (Some(u64::from(n)), MINUTE),
            None => (
                Some(((self.share * limit as f64).floor() as u64).max(1)),
                window,
            ),
        };
        (cap.filter(|&c| c <= MAX_TRACKED), window)
    }

    /// How long nothing may be sent after an answer with these headers (`None`: no hold).
    pub fn hold(&self, h: &RateHeaders, window: Duration) -> Option<Duration> {
        let (Some(limit), Some(remaining)) = (h.limit, h.remaining) else {
            return None;
        };
        let low = remaining == 0 || (remaining as f64) < self.reserve * limit as f64;
        if !low || limit == 0 {
            return None;
        }
        // A reset further away than the window is not believed, or one answer could stop
        // every request for as long as it liked.
        let reset = h.reset_secs.map_or(window, Duration::from_secs);
        Some(reset.clamp(Duration::from_secs(1), window.max(Duration::from_secs(1))))
    }
}

/// What a response's `RateLimit-*` headers say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHeaders {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub reset_secs: Option<u64>,
    /// The window of `RateLimit-Policy: <limit>;w=<seconds>`, when sent.
    pub window_secs: Option<u64>,
}

impl RateHeaders {
    /// The `w=` of a `RateLimit-Policy` value (`300;w=60`, or `"default";q=300;w=60`).
    pub fn policy_window(value: &str) -> Option<u64> {
        value
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("w="))
            .find_map(|w| w.trim().parse().ok())
            .filter(|&w| w > 0)
    }

    fn window(&self) -> Option<Duration> {
        self.window_secs
            .map(|w| Duration::from_secs(w).min(MAX_WINDOW))
    }
}

/// What a budget can say about itself, for `personafs status` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BudgetStatus {
    /// The share of the server's limit in percent; `None` with an absolute limit.
    pub share_percent: Option<u32>,
    /// The reserve in percent of the server's limit.
    pub reserve_percent: u32,
    /// The limit the last answer reported (or the one assumed before any answer).
    pub server_limit: u64,
    /// The server's window in seconds.
    pub window_secs: u64,
    /// Calls allowed per window (`None`: no client-side cap).
    pub cap: Option<u64>,
    /// Calls this mount made in the last window.
    pub calls_in_window: u64,
    /// With shared state: the calls of every mount together in the last window.
    pub shared_calls_in_window: Option<u64>,
    /// Seconds left of a stop for the reserve (0: not stopped).
    pub held_secs: u64,
    /// The last `RateLimit-Remaining` seen.
    pub last_remaining: Option<u64>,
}

impl BudgetStatus {
    /// The calls allowed a minute (0: no client-side cap).
    pub fn per_minute(&self) -> u32 {
        let per_minute = self.cap.unwrap_or(0) * 60 / self.window_secs.max(1);
        u32::try_from(per_minute).unwrap_or(u32::MAX)
    }
}

/// The request budget API requests draw from.
#[async_trait]
pub trait Budget: Send + Sync + 'static {
    /// Wait until one more API request may go out.
    async fn acquire(&self);
    /// Learn from a response's `RateLimit-*` headers.
    async fn observe(&self, headers: RateHeaders);
    /// Where the budget stands.
    fn status(&self) -> BudgetStatus;
}

/// The next time a call may go, given the calls booked in the last `window` (oldest first,
/// future ones included). Up to half of `cap` go at once; beyond that what is left is
/// spread over the time until the oldest booked call leaves the window, so a long walk is
/// paced rather than stopped for most of a window. `SharedBudget`'s script is the same rule.
/// (`slot` starts at the last booked call: calls queued for later are spread after it.)
pub fn next_slot(booked: &VecDeque<Instant>, now: Instant, cap: u64, window: Duration) -> Instant {
    let n = booked.len() as u64;
    let (Some(&oldest), Some(&last)) = (booked.front(), booked.back()) else {
        return now;
    };
    let mut slot = now.max(last);
    if n >= cap {
        // Never more than `cap` within any `window`.
        slot = slot.max(booked[(n - cap) as usize] + window);
    } else if n * 2 >= cap {
        let until_oldest_leaves = (oldest + window).saturating_duration_since(slot);
        // One part more than calls left: the last lands before the oldest leaves.
        slot += until_oldest_leaves / u32::try_from(cap - n + 1).unwrap_or(u32::MAX);
    }
    slot
}

/// A mount's own budget. Shared by every clone of a client.
#[derive(Debug)]
pub struct RateLimiter {
    policy: BudgetPolicy,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    limit: u64,
    window: Duration,
    /// Calls of the last window, and those booked to go later (oldest first).
    booked: VecDeque<Instant>,
    hold_until: Option<Instant>,
    last_remaining: Option<u64>,
}

/// What a request is told by the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Booking {
    /// A slot is booked: go after this wait.
    Go(Duration),
    /// The reserve is reached: ask again after this wait.
    Held(Duration),
}

impl RateLimiter {
    pub fn new(policy: BudgetPolicy) -> Self {
        RateLimiter {
            policy,
            state: Mutex::new(State {
                limit: ASSUMED_LIMIT,
                window: MINUTE,
                booked: VecDeque::new(),
                hold_until: None,
                last_remaining: None,
            }),
        }
    }

    pub fn policy(&self) -> BudgetPolicy {
        self.policy
    }

    /// The calls allowed per window and the window, as the last answers tell them.
    pub fn cap(&self) -> (Option<u64>, Duration) {
        let s = self.state.lock();
        self.policy.cap(s.limit, s.window)
    }

    /// Wait until one more API request may go out.
    pub async fn acquire(&self) {
        loop {
            match self.book(Instant::now()) {
                Booking::Held(wait) => tokio::time::sleep(wait).await,
                Booking::Go(wait) => {
                    if wait.is_zero() {
                        return;
                    }
                    tokio::time::sleep(wait).await;
                    // An answer meanwhile may have reached the reserve: then book again (the
                    // slot not used still counts, which only errs on the safe side).
                    if self.held_for(Instant::now()).is_none() {
                        return;
                    }
                }
            }
        }
    }

    fn held_for(&self, now: Instant) -> Option<Duration> {
        let s = self.state.lock();
        s.hold_until
            .filter(|&until| until > now)
            .map(|until| until - now)
    }

    /// Book a call at `now`: when it may go.
    pub fn book(&self, now: Instant) -> Booking {
        let mut s = self.state.lock();
        if let Some(until) = s.hold_until {
            if until > now {
                return Booking::Held(until - now);
            }
            s.hold_until = None;
        }
        let (cap, window) = self.policy.cap(s.limit, s.window);
        while s.booked.front().is_some_and(|&t| t + window <= now) {
            s.booked.pop_front();
        }
        let slot = match cap {
            Some(cap) => next_slot(&s.booked, now, cap, window),
            // No cap: the books are only for `status`.
            None if s.booked.len() as u64 >= MAX_TRACKED => return Booking::Go(Duration::ZERO),
            None => now,
        };
        s.booked.push_back(slot);
        Booking::Go(slot - now)
    }

    /// Count a call booked elsewhere (in Redis) for `at`, in time order with the others.
    pub fn record(&self, at: Instant) {
        let mut s = self.state.lock();
        let (_, window) = self.policy.cap(s.limit, s.window);
        while s
            .booked
            .front()
            .is_some_and(|&t| t + window <= at.min(Instant::now()))
        {
            s.booked.pop_front();
        }
        if (s.booked.len() as u64) < MAX_TRACKED {
            let at_place = s.booked.partition_point(|&t| t <= at);
            s.booked.insert(at_place, at);
        }
    }

    /// Learn from a response's headers.
    pub fn observe(&self, headers: RateHeaders) {
        self.observe_at(Instant::now(), headers)
    }

    pub fn observe_at(&self, now: Instant, h: RateHeaders) {
        let mut s = self.state.lock();
        if let Some(limit) = h.limit.filter(|&l| l > 0) {
            s.limit = limit;
        }
        if let Some(window) = h.window() {
            s.window = window;
        }
        if h.remaining.is_some() {
            s.last_remaining = h.remaining;
        }
        if let Some(hold) = self.policy.hold(&h, s.window) {
            let until = now + hold;
            s.hold_until = Some(s.hold_until.map_or(until, |u| u.max(until)));
        }
    }

    pub fn status_at(&self, now: Instant) -> BudgetStatus {
        let s = self.state.lock();
        let (cap, window) = self.policy.cap(s.limit, s.window);
        BudgetStatus {
            share_percent: match self.policy.per_minute {
                None => Some((self.policy.share * 100.0).round() as u32),
                Some(_) => None,
            },
            reserve_percent: (self.policy.reserve * 100.0).round() as u32,
            server_limit: s.limit,
            window_secs: s.window.as_secs(),
            cap,
            calls_in_window: s
                .booked
                .iter()
                .filter(|&&t| t <= now && t + window > now)
                .count() as u64,
            shared_calls_in_window: None,
            held_secs: s.hold_until.map_or(0, |u| {
                u.saturating_duration_since(now).as_secs_f64().ceil() as u64
            }),
            last_remaining: s.last_remaining,
        }
    }
}

#[async_trait]
impl Budget for RateLimiter {
    async fn acquire(&self) {
        RateLimiter::acquire(self).await
    }
    async fn observe(&self, headers: RateHeaders) {
        RateLimiter::observe(self, headers)
    }
    fn status(&self) -> BudgetStatus {
        self.status_at(Instant::now())
    }
}

#[cfg(test)]
#[path = "ratelimit_tests.rs"]
mod tests;
