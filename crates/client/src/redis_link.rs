//! One connection to Redis for everything a process shares there (the request budget, the
//! inquiry views): connected lazily, given up for a few seconds after a failure so no request
//! waits for a dead Redis each time, and every step bounded by a short timeout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;

use crate::clock::Clock;
use crate::redact::redact_text;
use crate::{Error, Result};

/// The longest a step waits for Redis before the caller falls back to working alone.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
/// How long after a failure before Redis is tried again.
pub const RECONNECT_AFTER: Duration = Duration::from_secs(3);

pub struct RedisLink {
    client: redis::Client,
    conn: Mutex<Connection>,
    pub(crate) reconnect_after: Duration,
    /// When Redis may be tried again is measured with it.
    pub(crate) clock: Clock,
}

enum Connection {
    Up(MultiplexedConnection),
    Down { retry_at: Instant },
}

impl std::fmt::Debug for RedisLink {
    /// Never the URL: it may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink").finish_non_exhaustive()
    }
}

impl RedisLink {
    /// A link to `url` (`redis://[:password@]host:port/db`); nothing is sent until first use.
    /// `rediss://` (TLS) is refused: this build has no TLS for Redis.
    pub fn open(url: &str) -> Result<RedisLink> {
        if url.starts_with("rediss://") {
            return Err(Error::Config(
                "rediss:// (Redis over TLS) is not supported by this build: use redis:// on a \
                 trusted network or a TLS tunnel"
                    .into(),
            ));
        }
        let client = redis::Client::open(url).map_err(|e| {
            Error::Config(format!(
                "invalid Redis URL (redis://[:password@]host:port/db): {}",
                redact_text(&e.to_string())
            ))
        })?;
        Ok(RedisLink {
            client,
            conn: Mutex::new(Connection::Down {
                retry_at: Instant::now(),
            }),
            reconnect_after: RECONNECT_AFTER,
            clock: Clock::host(),
        })
    }

    /// The live connection, connecting when the last failure is old enough.
    async fn connection(&self) -> std::result::Result<MultiplexedConnection, String> {
        {
            let conn = self.conn.lock();
            match &*conn {
                Connection::Up(c) => return Ok(c.clone()),
                Connection::Down { retry_at } if self.clock.now() < *retry_at => {
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
            retry_at: self.clock.now() + self.reconnect_after,
        };
    }

    /// Run `f` on Redis within the timeout; a failure marks the connection down. The error
    /// is a redacted message (never the URL's password).
    pub async fn run<T, F, Fut>(&self, f: F) -> std::result::Result<T, String>
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
}

/// Whether a user of Redis is working alone for now: the first failure and the recovery are
/// each said once, at warn level.
#[derive(Debug)]
pub(crate) struct Outage {
    degraded: AtomicBool,
    /// What is shared, e.g. "the shared request budget".
    what: &'static str,
    /// What happens meanwhile.
    meanwhile: &'static str,
}

impl Outage {
    pub(crate) fn new(what: &'static str, meanwhile: &'static str) -> Outage {
        Outage {
            degraded: AtomicBool::new(false),
            what,
            meanwhile,
        }
    }

    pub(crate) fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    pub(crate) fn note<T>(&self, outcome: &std::result::Result<T, String>) {
        match outcome {
            Ok(_) => {
                if self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::warn!("{} in Redis is reachable again", self.what);
                }
            }
            Err(why) => {
                if !self.degraded.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "{} in Redis is unreachable ({why}): {} until Redis is back",
                        self.what,
                        self.meanwhile
                    );
                }
            }
        }
    }
}

/// An id fit for a key name: Persona's `org_…`, `env_…`, `inq_…`, or any short plain name.
pub(crate) fn valid_key_part(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}
