//! A request budget shared by every personafs process of one organization, kept in Redis.
//!
//! Persona counts requests per organization, so several mounts (or hosts) of one organization
//! each keeping their own bucket would together go over it. Here the bucket is a GCRA in a Lua
//! script (one atomic step per request, Redis's clock for everyone): each request reserves the
//! next slot and learns how long to wait for it. When a response says fewer than 15 % of the
//! window's requests remain, the spacing goes to Redis too, so every process slows down.
//!
//! When Redis cannot be reached the budget falls back to the local bucket (said once, at warn
//! level), tries Redis again every few seconds, and says when it is back.
//!
//! What goes to Redis: the organization id given here (in the key names) and numbers. Never the
//! API key, a token or a URL.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::ratelimit::{Budget, RateLimiter, ServerBudget};
use crate::redis_link::{Outage, RedisLink, valid_key_part};
use crate::{Error, Result};

pub use crate::redis_link::{RECONNECT_AFTER, REDIS_TIMEOUT};

/// GCRA with reservation. KEYS: theoretical arrival time, server spacing, next spaced slot
/// (all in ms of Redis's clock), and the mark of an exhausted server window (its expiry is
/// the window's reset: every request waits for it). ARGV: emission interval (ms; 0 = no bucket), burst (ms).
/// Returns the wait in ms.
///
/// The server's spacing lasts until its window resets (the key's expiry). A slot that would
/// fall after the reset is not booked: the request waits for the reset, when the server's
/// budget is whole again. Booking such slots one spacing apart would keep many waiting
/// requests (four mounts' worth) asleep far into the next window, which then went unused.
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wait = 0
if interval > 0 then
  local tat = tonumber(redis.call('GET', KEYS[1])) or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  wait = math.max(0, new_tat - burst - now)
  redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1)
end
local exhausted = redis.call('PTTL', KEYS[4])
if exhausted > 0 then
  return math.ceil(math.max(wait, exhausted))
end
local spacing = tonumber(redis.call('GET', KEYS[2]))
if spacing and spacing > 0 then
  local reset = math.max(1, redis.call('PTTL', KEYS[2]))
  local slot = tonumber(redis.call('GET', KEYS[3])) or now
  if slot < now + wait then slot = now + wait end
  if slot - now >= reset then
    wait = math.max(wait, reset)
  else
    wait = slot - now
    redis.call('SET', KEYS[3], slot + spacing, 'PX', math.ceil(reset + slot + spacing - now))
  end
end
return math.ceil(wait)
";

/// The server's answer said its budget is low. KEYS: server spacing, exhausted mark.
/// ARGV: spacing (ms), the rest of the server's window (ms), requests left in it. With none
/// left, the window is marked exhausted until its reset: every request waits for it.
const SLOW_DOWN: &str = r"
local window = tonumber(ARGV[2])
redis.call('SET', KEYS[1], tonumber(ARGV[1]), 'PX', window)
if tonumber(ARGV[3]) == 0 then
  redis.call('SET', KEYS[2], 1, 'PX', window)
end
return 0
";

/// The server's answer said its budget is healthy. KEYS: server spacing, exhausted mark. ARGV: the rest of
/// the answer's window (ms). Only an answer of a later window lifts the spacing: with several
/// mounts' requests in flight, answers arrive out of order, and an older answer (more left)
/// landing after a newer one must not undo its spacing. The window's end comes with the
/// key's expiry anyway.
const LIFT: &str = r"
local left = redis.call('PTTL', KEYS[1])
if left > 0 and tonumber(ARGV[1]) <= left + 1500 then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
";

/// How long a request that waited must still wait: the server's window was found exhausted
/// meanwhile. KEYS: exhausted mark.
const STILL_EXHAUSTED: &str = r"
return math.max(0, redis.call('PTTL', KEYS[1]))
";

/// The shared budget of one organization. Cheap to share behind an `Arc`.
pub struct SharedBudget {
    link: Arc<RedisLink>,
    script: redis::Script,
    slow_down: redis::Script,
    lift: redis::Script,
    still_exhausted: redis::Script,
    keys: [String; 4],
    /// Milliseconds between two requests at the steady rate (0 = no bucket).
    interval_ms: f64,
    /// A minute's budget of requests at once, as the local bucket allows.
    burst_ms: f64,
    /// Used while Redis is unreachable; it also hears every response, to be current.
    local: RateLimiter,
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

impl SharedBudget {
    /// A budget of `per_minute` requests (0 = only the server's spacing) for organization
    /// `org` (its `org_…` id, as Persona's `Persona-Organization-Id` header gives it: never the
    /// API key), kept at `redis_url` (`redis://host:port/db`). Nothing is sent until the
    /// first request.
    pub fn new(redis_url: &str, org: &str, per_minute: u32) -> Result<SharedBudget> {
        let link = RedisLink::open(redis_url).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("the shared budget: {m}")),
            e => e,
        })?;
        Self::with_link(Arc::new(link), &[org], per_minute)
    }

    /// The budget of one environment of an organization (Persona counts requests per
    /// environment), over a link shared with other users of Redis. `scope` are the ids that
    /// name it, e.g. `[org_…, env_…]`.
    pub fn with_link(
        link: Arc<RedisLink>,
        scope: &[&str],
        per_minute: u32,
    ) -> Result<SharedBudget> {
        if let Some(bad) = scope.iter().find(|id| !valid_key_part(id)) {
            return Err(Error::Config(format!(
                "invalid organization id {:?} for the shared budget (letters, digits, _ - .)",
                bad.chars().take(64).collect::<String>()
            )));
        }
        let interval_ms = if per_minute == 0 {
            0.0
        } else {
            60_000.0 / f64::from(per_minute)
        };
        let prefix = format!("personafs:budget:{}", scope.join(":"));
        Ok(SharedBudget {
            link,
            script: redis::Script::new(RESERVE),
            slow_down: redis::Script::new(SLOW_DOWN),
            lift: redis::Script::new(LIFT),
            still_exhausted: redis::Script::new(STILL_EXHAUSTED),
            keys: [
                format!("{prefix}:tat"),
                format!("{prefix}:spacing"),
                format!("{prefix}:slot"),
                format!("{prefix}:exhausted"),
            ],
            interval_ms,
            burst_ms: interval_ms * f64::from(per_minute.max(1)),
            local: RateLimiter::new(per_minute),
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

    /// How long the server's window is still exhausted (zero when it is not).
    async fn still_exhausted(&self) -> std::result::Result<Duration, String> {
        let wait_ms: u64 = self
            .link
            .run(|mut c| async move {
                self.still_exhausted
                    .key(&self.keys[3])
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(Duration::from_millis(wait_ms))
    }

    /// Reserve a slot in Redis: how long to wait for it.
    async fn reserve_shared(&self) -> std::result::Result<Duration, String> {
        let wait_ms: u64 = self
            .link
            .run(|mut c| async move {
                self.script
                    .key(&self.keys[0])
                    .key(&self.keys[1])
                    .key(&self.keys[2])
                    .key(&self.keys[3])
                    .arg(self.interval_ms)
                    .arg(self.burst_ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(Duration::from_millis(wait_ms))
    }
}

#[async_trait]
impl Budget for SharedBudget {
    async fn acquire(&self) {
        match self.reserve_shared().await {
            Ok(mut wait) => {
                self.outage.note(&Ok(()));
                // A request that waited looks once more before it goes: an answer meanwhile
                // may have said the server's window is exhausted (a 429 would follow).
                for _ in 0..3 {
                    if wait.is_zero() {
                        break;
                    }
                    tokio::time::sleep(wait).await;
                    wait = self.still_exhausted().await.unwrap_or_default();
                }
            }
            Err(why) => {
                self.outage.note::<()>(&Err(why));
                self.local.acquire().await;
            }
        }
    }

    async fn observe(&self, limit: Option<u64>, remaining: Option<u64>, reset_secs: Option<u64>) {
        self.local.observe(limit, remaining, reset_secs);
        let slow = ServerBudget::from_headers(limit, remaining, reset_secs);
        if slow == ServerBudget::Unknown {
            return;
        }
        let (spacing_key, exhausted_key) = (self.keys[1].clone(), self.keys[3].clone());
        let left = remaining.unwrap_or(0);
        let reset_ms = reset_secs.map_or(0, |s| s.saturating_mul(1000));
        let outcome = self
            .link
            .run(|mut c| async move {
                match slow {
                    // Everyone slows down for the rest of the server's window.
                    ServerBudget::Low { spacing, window } => {
                        self.slow_down
                            .key(&spacing_key)
                            .key(&exhausted_key)
                            .arg(spacing.as_millis() as u64)
                            .arg(window.as_millis() as u64)
                            .arg(left)
                            .invoke_async::<()>(&mut c)
                            .await
                    }
                    _ => {
                        self.lift
                            .key(&spacing_key)
                            .key(&exhausted_key)
                            .arg(reset_ms)
                            .invoke_async::<()>(&mut c)
                            .await
                    }
                }
            })
            .await;
        self.outage.note(&outcome);
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

    async fn observe(&self, limit: Option<u64>, remaining: Option<u64>, reset_secs: Option<u64>) {
        self.current().observe(limit, remaining, reset_secs).await;
    }
}

#[cfg(test)]
#[path = "shared_budget_tests.rs"]
mod tests;
