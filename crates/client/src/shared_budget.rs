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

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;

use crate::ratelimit::{Budget, RateLimiter, ServerBudget};
use crate::redact::redact_text;
use crate::{Error, Result};

/// The longest a request waits for Redis before using the local bucket instead.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
/// How long after a failure before Redis is tried again.
pub const RECONNECT_AFTER: Duration = Duration::from_secs(3);

/// GCRA with reservation. KEYS: theoretical arrival time, server spacing, next spaced slot
/// (all in ms of Redis's clock). ARGV: emission interval (ms; 0 = no bucket), burst (ms).
/// Returns the wait in ms.
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
local spacing = tonumber(redis.call('GET', KEYS[2]))
if spacing and spacing > 0 then
  local slot = tonumber(redis.call('GET', KEYS[3])) or now
  if slot < now + wait then slot = now + wait end
  wait = slot - now
  local ttl = math.max(1, redis.call('PTTL', KEYS[2]))
  redis.call('SET', KEYS[3], slot + spacing, 'PX', math.ceil(ttl + slot + spacing - now))
end
return math.ceil(wait)
";

/// The shared budget of one organization. Cheap to share behind an `Arc`.
pub struct SharedBudget {
    client: redis::Client,
    conn: Mutex<Connection>,
    script: redis::Script,
    keys: [String; 3],
    /// Milliseconds between two requests at the steady rate (0 = no bucket).
    interval_ms: f64,
    /// A minute's budget of requests at once, as the local bucket allows.
    burst_ms: f64,
    /// Used while Redis is unreachable; it also hears every response, to be current.
    local: RateLimiter,
    degraded: AtomicBool,
    reconnect_after: Duration,
}

enum Connection {
    Up(MultiplexedConnection),
    Down { retry_at: Instant },
}

impl std::fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBudget")
            .field("key", &self.keys[0])
            .field("degraded", &self.degraded.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// An organization id fit for a key name: Persona's `org_…`, or any short plain name.
fn valid_org(org: &str) -> bool {
    !org.is_empty()
        && org.len() <= 128
        && org
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl SharedBudget {
    /// A budget of `per_minute` requests (0 = only the server's spacing) for organization
    /// `org` (its `org_…` id, as Persona's `Persona-Organization-Id` header gives it: never the
    /// API key), kept at `redis_url` (`redis://host:port/db`). Nothing is sent until the
    /// first request.
    pub fn new(redis_url: &str, org: &str, per_minute: u32) -> Result<SharedBudget> {
        if !valid_org(org) {
            return Err(Error::Config(format!(
                "invalid organization id {:?} for the shared budget (letters, digits, _ - .)",
                org.chars().take(64).collect::<String>()
            )));
        }
        let client = redis::Client::open(redis_url).map_err(|e| {
            Error::Config(format!(
                "invalid Redis URL for the shared budget: {}",
                redact_text(&e.to_string())
            ))
        })?;
        let interval_ms = if per_minute == 0 {
            0.0
        } else {
            60_000.0 / f64::from(per_minute)
        };
        let prefix = format!("personafs:budget:{org}");
        Ok(SharedBudget {
            client,
            conn: Mutex::new(Connection::Down {
                retry_at: Instant::now(),
            }),
            script: redis::Script::new(RESERVE),
            keys: [
                format!("{prefix}:tat"),
                format!("{prefix}:spacing"),
                format!("{prefix}:slot"),
            ],
            interval_ms,
            burst_ms: interval_ms * f64::from(per_minute.max(1)),
            local: RateLimiter::new(per_minute),
            degraded: AtomicBool::new(false),
            reconnect_after: RECONNECT_AFTER,
        })
    }

    /// Whether the last request could use Redis.
    pub fn is_shared(&self) -> bool {
        !self.degraded.load(Ordering::Relaxed)
    }

    /// The live connection, connecting when the last failure is old enough.
    async fn connection(&self) -> std::result::Result<MultiplexedConnection, String> {
        {
            let conn = self.conn.lock();
            match &*conn {
                Connection::Up(c) => return Ok(c.clone()),
                Connection::Down { retry_at } if Instant::now() < *retry_at => {
                    return Err("not reachable".into());
                }
                Connection::Down { .. } => {}
            }
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        match self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(c) => {
                *self.conn.lock() = Connection::Up(c.clone());
                Ok(c)
            }
            Err(e) => {
                self.down();
                Err(redact_text(&e.to_string()))
            }
        }
    }

    fn down(&self) {
        *self.conn.lock() = Connection::Down {
            retry_at: Instant::now() + self.reconnect_after,
        };
    }

    /// Run `f` on Redis within the timeout; a failure marks the connection down.
    async fn with_redis<T, F, Fut>(&self, f: F) -> std::result::Result<T, String>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.connection().await?;
        match tokio::time::timeout(REDIS_TIMEOUT, f(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.down();
                Err(redact_text(&e.to_string()))
            }
            Err(_) => {
                self.down();
                Err("timed out".into())
            }
        }
    }

    /// Note the outcome of a Redis step: the first failure and the recovery are said once.
    fn note(&self, outcome: &std::result::Result<(), String>) {
        match outcome {
            Ok(()) => {
                if self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::warn!("the shared request budget in Redis is reachable again");
                }
            }
            Err(why) => {
                if !self.degraded.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "the shared request budget in Redis is unreachable ({why}): this process \
                         keeps its own budget until Redis is back"
                    );
                }
            }
        }
    }

    /// Reserve a slot in Redis: how long to wait for it.
    async fn reserve_shared(&self) -> std::result::Result<Duration, String> {
        let wait_ms: u64 = self
            .with_redis(|mut c| async move {
                self.script
                    .key(&self.keys[0])
                    .key(&self.keys[1])
                    .key(&self.keys[2])
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
            Ok(wait) => {
                self.note(&Ok(()));
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
            Err(why) => {
                self.note(&Err(why));
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
        let key = self.keys[1].clone();
        let outcome = self
            .with_redis(|mut c| async move {
                match slow {
                    // Everyone slows down for the rest of the server's window.
                    ServerBudget::Low { spacing, window } => {
                        redis::cmd("SET")
                            .arg(&key)
                            .arg(spacing.as_millis() as u64)
                            .arg("PX")
                            .arg(window.as_millis() as u64)
                            .query_async::<()>(&mut c)
                            .await
                    }
                    _ => redis::cmd("DEL").arg(&key).query_async::<()>(&mut c).await,
                }
            })
            .await;
        self.note(&outcome);
    }
}

#[cfg(test)]
#[path = "shared_budget_tests.rs"]
mod tests;
