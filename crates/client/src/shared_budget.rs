//! A request budget shared by every personafs process of one environment, kept in Redis.
//!
//! Persona counts requests per environment, so mounts (or hosts) each keeping their own books
//! would together go over the share. Here the books are a sorted set of the calls of the last
//! window, booked by a Lua script (one atomic step per request, Redis's clock for everyone)
//! with the rule of [`crate::ratelimit::next_slot`]: the share is for all mounts together.
//! When an answer says the reserve is reached, a hold key with the window's reset as its
//! expiry stops every mount until then.
//!
//! When Redis cannot be reached the budget falls back to the local one (said once, at warn
//! level), tries Redis again every few seconds, and says when it is back.
//!
//! What goes to Redis: the organization and environment ids given here (in the key names)
//! and numbers. Never the API key, a token or a URL.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use async_trait::async_trait;

use crate::ratelimit::{Budget, BudgetPolicy, BudgetStatus, MAX_TRACKED, RateHeaders, RateLimiter};
use crate::redis_link::{Outage, RedisLink, valid_key_part};
use crate::{Error, Result};

pub use crate::redis_link::{RECONNECT_AFTER, REDIS_TIMEOUT};

/// Book one call. KEYS: the calls (a sorted set: id → booked time in ms of Redis's clock),
/// the id counter, the hold. ARGV: calls allowed per window (0 = no cap: only counted, up to
/// ARGV[3]), the window (ms), the most calls counted. Returns {held, wait ms, calls in the
/// window}: held = 1 means nothing was booked, ask again after the wait.
const BOOK: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local held = redis.call('PTTL', KEYS[3])
if held > 0 then
  return {1, held, 0}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
local slot = now
if cap > 0 and n > 0 then
  local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
  local last = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
  slot = math.max(now, last)
  if n >= cap then
    local base = tonumber(redis.call('ZRANGE', KEYS[1], n - cap, n - cap, 'WITHSCORES')[2])
    slot = math.max(slot, base + window)
  elseif n * 2 >= cap then
    slot = slot + math.max(0, oldest + window - slot) / (cap - n + 1)
  end
elseif cap == 0 and n >= tonumber(ARGV[3]) then
  return {0, 0, n}
end
local id = redis.call('INCR', KEYS[2])
local keep = math.ceil(slot - now + window)
redis.call('PEXPIRE', KEYS[2], keep)
redis.call('ZADD', KEYS[1], slot, id)
redis.call('PEXPIRE', KEYS[1], keep)
return {0, math.ceil(slot - now), n + 1}
";

/// An answer said the reserve is reached. KEYS: the hold. ARGV: until the reset (ms). A
/// longer hold already set stays.
const HOLD: &str = r"
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], 1, 'PX', tonumber(ARGV[1]))
end
return 0
";

/// The shared budget of one environment. Cheap to share behind an `Arc`.
pub struct SharedBudget {
    link: Arc<RedisLink>,
    book: redis::Script,
    hold: redis::Script,
    /// The calls, the id counter, the hold.
    keys: [String; 3],
    /// Used while Redis is unreachable; it also hears every answer, and says what the
    /// limit and window are.
    local: RateLimiter,
    /// The calls of every mount in the last window, as the last booking saw them.
    shared_calls: AtomicU64,
    outage: Outage,
}

impl std::fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBudget")
            .field("key", &self.keys[0])
            .field("degraded", &self.outage.is_degraded())
            .finish_non_exhaustive()
    }
}

/// What a booking in Redis said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Booked {
    Go(Duration),
    Held(Duration),
}

impl SharedBudget {
    /// The budget of organization `org` (its `org_…` id, as Persona's
    /// `Persona-Organization-Id` header gives it: never the API key), kept at `redis_url`
    /// (`redis://host:port/db`). Nothing is sent until the first request.
    pub fn new(redis_url: &str, org: &str, policy: BudgetPolicy) -> Result<SharedBudget> {
        let link = RedisLink::open(redis_url).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("the shared budget: {m}")),
            e => e,
        })?;
        Self::with_link(Arc::new(link), &[org], policy)
    }

    /// The budget of one environment of an organization (Persona counts requests per
    /// environment), over a link shared with other users of Redis. `scope` are the ids that
    /// name it, e.g. `[org_…, env_…]`.
    pub fn with_link(
        link: Arc<RedisLink>,
        scope: &[&str],
        policy: BudgetPolicy,
    ) -> Result<SharedBudget> {
        if let Some(bad) = scope.iter().find(|id| !valid_key_part(id)) {
            return Err(Error::Config(format!(
                "invalid organization id {:?} for the shared budget (letters, digits, _ - .)",
                bad.chars().take(64).collect::<String>()
            )));
        }
        let prefix = format!("personafs:budget:{}", scope.join(":"));
        Ok(SharedBudget {
            link,
            book: redis::Script::new(BOOK),
            hold: redis::Script::new(HOLD),
            keys: [
                format!("{prefix}:calls"),
                format!("{prefix}:seq"),
                format!("{prefix}:hold"),
            ],
            local: RateLimiter::new(policy),
            shared_calls: AtomicU64::new(0),
            outage: Outage::new(
                "the shared request budget",
                "this process keeps its own budget",
            ),
        })
    }

    /// Whether the last request could use Redis.
    pub fn is_shared(&self) -> bool {
        !self.outage.is_degraded()
    }

    /// Book a call in Redis.
    async fn book_shared(&self) -> std::result::Result<Booked, String> {
        let (cap, window) = self.local.cap();
        let (held, wait_ms, calls): (u64, u64, u64) = self
            .link
            .run(|mut c| async move {
                self.book
                    .key(&self.keys[0])
                    .key(&self.keys[1])
                    .key(&self.keys[2])
                    .arg(cap.unwrap_or(0))
                    .arg(window.as_millis() as u64)
                    .arg(MAX_TRACKED)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        let wait = Duration::from_millis(wait_ms);
        if held == 1 {
            return Ok(Booked::Held(wait));
        }
        self.shared_calls.store(calls, Relaxed);
        Ok(Booked::Go(wait))
    }

    /// How long the hold still lasts (zero when there is none).
    async fn held_for(&self) -> std::result::Result<Duration, String> {
        let key = &self.keys[2];
        let ms: i64 = self
            .link
            .run(|mut c| async move { redis::cmd("PTTL").arg(key).query_async(&mut c).await })
            .await?;
        Ok(Duration::from_millis(ms.max(0) as u64))
    }
}

#[async_trait]
impl Budget for SharedBudget {
    async fn acquire(&self) {
        loop {
            match self.book_shared().await {
                Ok(Booked::Held(wait)) => {
                    self.outage.note(&Ok(()));
                    tokio::time::sleep(wait).await;
                }
                Ok(Booked::Go(wait)) => {
                    self.outage.note(&Ok(()));
                    // Counted here too, for this mount's own figures.
                    self.local.record(tokio::time::Instant::now() + wait);
                    if wait.is_zero() {
                        return;
                    }
                    tokio::time::sleep(wait).await;
                    // An answer meanwhile may have reached the reserve: then book again.
                    if self.held_for().await.unwrap_or_default().is_zero() {
                        return;
                    }
                }
                Err(why) => {
                    self.outage.note::<()>(&Err(why));
                    self.local.acquire().await;
                    return;
                }
            }
        }
    }

    async fn observe(&self, headers: RateHeaders) {
        self.local.observe(headers);
        let (_, window) = self.local.cap();
        let Some(hold) = self.local.policy().hold(&headers, window) else {
            return;
        };
        let key = self.keys[2].clone();
        let outcome = self
            .link
            .run(|mut c| async move {
                self.hold
                    .key(&key)
                    .arg(hold.as_millis() as u64)
                    .invoke_async::<()>(&mut c)
                    .await
            })
            .await;
        self.outage.note(&outcome);
    }

    fn status(&self) -> BudgetStatus {
        let mut status = self.local.status();
        if self.is_shared() {
            status.shared_calls_in_window = Some(self.shared_calls.load(Relaxed));
        }
        status
    }
}

/// A budget that starts as one thing (the local bucket) and is switched once the shared one
/// can be built (after the first answer names the organization and environment).
pub struct SwitchBudget {
    current: parking_lot::RwLock<Arc<dyn Budget>>,
}

impl SwitchBudget {
    pub fn new(first: Arc<dyn Budget>) -> SwitchBudget {
        SwitchBudget {
            current: parking_lot::RwLock::new(first),
        }
    }

    /// From now on, requests draw from `budget`.
    pub fn switch_to(&self, budget: Arc<dyn Budget>) {
        *self.current.write() = budget;
    }

    fn current(&self) -> Arc<dyn Budget> {
        self.current.read().clone()
    }
}

#[async_trait]
impl Budget for SwitchBudget {
    async fn acquire(&self) {
        self.current().acquire().await;
    }

    async fn observe(&self, headers: RateHeaders) {
        self.current().observe(headers).await;
    }

    fn status(&self) -> BudgetStatus {
        self.current().status()
    }
}

#[cfg(test)]
#[path = "shared_budget_tests.rs"]
mod tests;
