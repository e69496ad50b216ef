//! Inquiry views shared by every mount of one Persona environment, kept in Redis, so that
//! several mounts walking the same inquiries retrieve each one once between them.
//!
//! Before retrieving an inquiry for its names and sizes, a mount claims it (`SET lock NX PX`
//! with a random token); the holder retrieves, publishes the token-free view with an expiry,
//! and releases the claim with a compare-and-delete script (never another's claim). While
//! its retrieve lasts (it may wait long for the shared request budget) the holder renews the
//! claim, so the claim expires only when its holder is gone. Another mount wanting the same
//! inquiry meanwhile waits for a view newer than the one it had, as long as the claim stands
//! and at most [`MAX_WAIT`] (5 minutes; past it, it retrieves itself). A mount that needs
//! signed URLs always retrieves itself: URLs never leave the host.
//!
//! The last delta a mount took (the changes search reported) is published here too, kept as
//! long as a view, so the mounts sharing the state take one delta per metadata TTL between
//! them.
//!
//! What goes to Redis: the organization, environment and inquiry ids (in key names), random
//! claim tokens, and views as the caller encodes them, which must be token-free (the fs crate
//! sends names, object ids, roles, sizes, times and the redacted `inquiry.json`). Never the
//! API key, an access token or a URL.
//!
//! When Redis cannot be reached every step answers "nothing shared" at once (said once, at
//! warn level) and the mount retrieves for itself; Redis is tried again every few seconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::redis_link::{Outage, RedisLink, valid_key_part};
use crate::{Error, Result};

/// A claim on retrieving one inquiry, to be given back with [`SharedViews::release`].
#[derive(Debug)]
pub struct Lease {
    inquiry: String,
    token: String,
    ttl: Duration,
}

impl Lease {
    /// How often the holder renews the claim while it works: well within its lifetime.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }
}

/// The answer to [`SharedViews::claim`].
#[derive(Debug)]
pub enum Claim {
    /// This mount retrieves; it publishes the view, then releases.
    Mine(Lease),
    /// Another mount is retrieving it now: wait for its view.
    Taken,
    /// Nothing can be shared now (Redis unreachable, or an id unfit for a key): retrieve.
    Unavailable,
}

/// Views shared between mounts. The fs crate sees only this trait (no Redis types); with no
/// shared state there is no trait object and nothing changes.
#[async_trait]
pub trait SharedViews: Send + Sync + std::fmt::Debug {
    /// The view another mount published for `inquiry`, if any.
    async fn fetch(&self, inquiry: &str) -> Option<Vec<u8>>;
    /// Try to become the one mount retrieving `inquiry`.
    async fn claim(&self, inquiry: &str) -> Claim;
    /// Publish the token-free `view` of `inquiry` for the others, with an expiry.
    async fn publish(&self, inquiry: &str, view: &[u8]);
    /// Give the claim back (only if it is still ours).
    async fn release(&self, lease: Lease);
    /// Extend the claim for another lifetime (only if it is still ours): the holder is
    /// still working on it. `false` when it is no longer ours.
    async fn renew(&self, lease: &Lease) -> bool;
    /// Wait for the view of an inquiry another mount claimed: a view other than `seen` (the
    /// one the caller already had and could not use), or `None` once the claim is gone (or
    /// expired) without one.
    async fn wait_for(&self, inquiry: &str, seen: Option<&[u8]>) -> Option<Vec<u8>>;
    /// The last delta (changes search reported) another mount published, if one is still
    /// kept: mounts sharing the state take one delta per metadata TTL between them.
    async fn fetch_delta(&self) -> Option<Vec<u8>> {
        None
    }
    /// Publish a delta for the others, kept as long as a view.
    async fn publish_delta(&self, _delta: &[u8]) {}
}

/// Deletes the claim only if it still holds our token (it may have expired and been taken).
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Extends the claim only if it still holds our token.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// How often a waiting mount looks for the view.
const POLL: Duration = Duration::from_millis(20);

/// The longest a mount waits for another's claimed retrieve, however long the claim is
/// renewed: past it, it retrieves itself.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// [`SharedViews`] in Redis, for one environment of one organization.
pub struct RedisViews {
    link: Arc<RedisLink>,
    prefix: String,
    view_ttl: Duration,
    claim_ttl: Duration,
    release: redis::Script,
    renew: redis::Script,
    outage: Outage,
}

impl std::fmt::Debug for RedisViews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisViews")
            .field("prefix", &self.prefix)
            .field("degraded", &self.outage.is_degraded())
            .finish_non_exhaustive()
    }
}

impl RedisViews {
    /// Views of organization `org`, environment `env` (ids from Persona's
    /// `Persona-Organization-Id` / `Persona-Environment-Id` headers: never the API key),
    /// kept `view_ttl`; a claim lasts `claim_ttl` unless released.
    pub fn new(
        link: Arc<RedisLink>,
        org: &str,
        env: &str,
        view_ttl: Duration,
        claim_ttl: Duration,
    ) -> Result<RedisViews> {
        for id in [org, env] {
            if !valid_key_part(id) {
                return Err(Error::Config(format!(
                    "invalid organization or environment id {:?} for the shared state \
                     (letters, digits, _ - .)",
                    id.chars().take(64).collect::<String>()
                )));
            }
        }
        Ok(RedisViews {
            link,
            prefix: format!("personafs:{org}:{env}"),
            view_ttl: view_ttl.max(Duration::from_millis(1)),
            claim_ttl: claim_ttl.max(Duration::from_millis(1)),
            release: redis::Script::new(RELEASE),
            renew: redis::Script::new(RENEW),
            outage: Outage::new(
                "the shared inquiry views",
                "this mount retrieves every inquiry itself",
            ),
        })
    }

    /// Whether the last step could use Redis.
    pub fn is_shared(&self) -> bool {
        !self.outage.is_degraded()
    }

    fn view_key(&self, inquiry: &str) -> Option<String> {
        valid_key_part(inquiry).then(|| format!("{}:view:{inquiry}", self.prefix))
    }

    fn delta_key(&self) -> String {
        format!("{}:delta", self.prefix)
    }

    fn lock_key(&self, inquiry: &str) -> Option<String> {
        valid_key_part(inquiry).then(|| format!("{}:lock:{inquiry}", self.prefix))
    }

    /// A step on Redis, its failure noted (once) and turned into `None`.
    async fn step<T, F, Fut>(&self, f: F) -> Option<T>
    where
        F: FnOnce(redis::aio::MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let outcome = self.link.run(f).await;
        self.outage.note(&outcome);
        outcome.ok()
    }

    /// The view if published, and whether the claim on it still stands.
    async fn look(&self, inquiry: &str) -> Option<(Option<Vec<u8>>, bool)> {
        let (view, lock) = (self.view_key(inquiry)?, self.lock_key(inquiry)?);
        self.step(|mut c| async move {
            redis::pipe()
                .cmd("GET")
                .arg(&view)
                .cmd("EXISTS")
                .arg(&lock)
                .query_async::<(Option<Vec<u8>>, bool)>(&mut c)
                .await
        })
        .await
    }
}

fn random_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[async_trait]
impl SharedViews for RedisViews {
    async fn fetch(&self, inquiry: &str) -> Option<Vec<u8>> {
        let key = self.view_key(inquiry)?;
        self.step(|mut c| async move {
            redis::cmd("GET")
                .arg(&key)
                .query_async::<Option<Vec<u8>>>(&mut c)
                .await
        })
        .await
        .flatten()
    }

    async fn claim(&self, inquiry: &str) -> Claim {
        let Some(key) = self.lock_key(inquiry) else {
            return Claim::Unavailable;
        };
        let token = random_token();
        let ttl = self.claim_ttl.as_millis() as u64;
        let set = self
            .step(|mut c| {
                let (key, token) = (key.clone(), token.clone());
                async move {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(&token)
                        .arg("NX")
                        .arg("PX")
                        .arg(ttl)
                        .query_async::<Option<String>>(&mut c)
                        .await
                }
            })
            .await;
        match set {
            Some(Some(_)) => Claim::Mine(Lease {
                inquiry: inquiry.to_string(),
                token,
                ttl: self.claim_ttl,
            }),
            Some(None) => Claim::Taken,
            None => Claim::Unavailable,
        }
    }

    async fn publish(&self, inquiry: &str, view: &[u8]) {
        let Some(key) = self.view_key(inquiry) else {
            return;
        };
        let ttl = self.view_ttl.as_millis() as u64;
        self.step(|mut c| async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(view)
                .arg("PX")
                .arg(ttl)
                .query_async::<()>(&mut c)
                .await
        })
        .await;
    }

    async fn fetch_delta(&self) -> Option<Vec<u8>> {
        let key = self.delta_key();
        self.step(|mut c| async move {
            redis::cmd("GET")
                .arg(&key)
                .query_async::<Option<Vec<u8>>>(&mut c)
                .await
        })
        .await
        .flatten()
    }

    async fn publish_delta(&self, delta: &[u8]) {
        let (key, ttl) = (self.delta_key(), self.view_ttl.as_millis() as u64);
        self.step(|mut c| async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(delta)
                .arg("PX")
                .arg(ttl)
                .query_async::<()>(&mut c)
                .await
        })
        .await;
    }

    async fn release(&self, lease: Lease) {
        let Some(key) = self.lock_key(&lease.inquiry) else {
            return;
        };
        self.step(|mut c| async move {
            self.release
                .key(&key)
                .arg(&lease.token)
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await;
    }

    async fn renew(&self, lease: &Lease) -> bool {
        let Some(key) = self.lock_key(&lease.inquiry) else {
            return false;
        };
        let ttl = self.claim_ttl.as_millis() as u64;
        self.step(|mut c| async move {
            self.renew
                .key(&key)
                .arg(&lease.token)
                .arg(ttl)
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await
            == Some(1)
    }

    async fn wait_for(&self, inquiry: &str, seen: Option<&[u8]>) -> Option<Vec<u8>> {
        // The holder renews its claim while it works (it may wait long for the request
        // budget): wait as long as the claim stands, within a bound.
        let deadline = Instant::now() + MAX_WAIT;
        while Instant::now() < deadline {
            match self.look(inquiry).await? {
                // The view the caller had is not the one the holder is making.
                (Some(view), _) if seen != Some(view.as_slice()) => return Some(view),
                // Released (or expired) without a new view: the holder failed.
                (_, false) => return None,
                (_, true) => tokio::time::sleep(POLL).await,
            }
        }
        None
    }
}

/// Run `work` under `lease`, renewing the claim while it lasts: the work may wait long for
/// the shared request budget, and an expired claim would send the waiting mounts to do the
/// same work.
pub async fn holding<F: std::future::Future>(
    views: &dyn SharedViews,
    lease: &Lease,
    work: F,
) -> F::Output {
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done,
            () = tokio::time::sleep(lease.renew_every()) => {
                views.renew(lease).await;
            }
        }
    }
}

/// The default lifetime of a claim: longer than a retrieve normally takes (a waiting mount
/// waits at most this long before retrieving itself).
pub const CLAIM_TTL: Duration = Duration::from_secs(20);

#[cfg(test)]
#[path = "shared_state_tests.rs"]
mod tests;
