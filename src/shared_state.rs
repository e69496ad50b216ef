//! `--shared-state redis://HOST:PORT/DB`: the mounts of one Persona environment share their
//! request budget and their inquiry views in Redis (docs/SCALE.md).
//!
//! The environment is named by Persona itself: the `Persona-Organization-Id` and
//! `Persona-Environment-Id` headers of the mount's first answer (the key check). Until then the
//! mount uses its own budget. A server that does not send them makes the mount refuse
//! `--shared-state` with one clear error: keys must never be derived from the API key, and
//! sharing under a guessed name could mix two organizations.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use personafs_client::ratelimit::{Budget, BudgetPolicy, RateLimiter};
use personafs_client::redact::redact_url;
use personafs_client::redis_link::RedisLink;
use personafs_client::shared_budget::{SharedBudget, SwitchBudget};
use personafs_client::shared_listing::{PAGE_KEEP, SharedListing};
use personafs_client::shared_state::{CLAIM_TTL, RedisViews, SharedViews};
use personafs_client::{HttpClient, PersonaApi};

/// The Redis URL of `--shared-state`. It may carry a password: Debug shows it redacted, and
/// no error ever repeats it.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedStateUrl(String);

impl std::fmt::Debug for SharedStateUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedStateUrl({})", redact_url(&self.0))
    }
}

impl SharedStateUrl {
    /// For the Redis client only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Parse `--shared-state`. The error never contains the text given (it may hold a password).
pub fn parse_shared_state(text: &str) -> Result<SharedStateUrl, String> {
    let text = text.trim();
    let url = url::Url::parse(text)
        .map_err(|_| "not a URL: expected redis://[:PASSWORD@]HOST:PORT/DB".to_string())?;
    match url.scheme() {
        "redis" => {}
        "rediss" => {
            return Err(
                "rediss:// (Redis over TLS) is not supported by this build: use \
                        redis:// on a trusted network or through a TLS tunnel"
                    .into(),
            );
        }
        _ => return Err("expected a redis://[:PASSWORD@]HOST:PORT/DB URL".into()),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the Redis URL has no host".into());
    }
    let db = url.path().trim_start_matches('/');
    if !db.is_empty() && db.parse::<u32>().is_err() {
        return Err("the Redis database (the URL's path) must be a number".into());
    }
    RedisLink::open(text).map_err(|e| e.to_string())?;
    Ok(SharedStateUrl(text.to_string()))
}

/// How long Redis keeps a published view, at least.
pub const SHARED_VIEW_KEEP: Duration = Duration::from_secs(15 * 60);

/// A mount's plan to share, from before its first request until the key check answered.
pub struct Sharing {
    url: SharedStateUrl,
    budget: Arc<SwitchBudget>,
    policy: BudgetPolicy,
    view_ttl: Duration,
}

impl Sharing {
    /// The budget the client starts with (its own bucket, switched to the shared one by
    /// [`Sharing::connect`]).
    pub fn new(url: SharedStateUrl, policy: BudgetPolicy, metadata_ttl: Duration) -> Sharing {
        let local: Arc<dyn Budget> = Arc::new(RateLimiter::new(policy));
        Sharing {
            url,
            budget: Arc::new(SwitchBudget::new(local)),
            policy,
            // A bit longer than the TTL: a mount decides freshness by the view's own age.
            // A final inquiry's view is good for as long as a mount would keep it in memory
            // (each mount still refuses a non-final one older than its TTL): mounts that drift
            // apart on a long walk must not retrieve it again once Redis has let it go.
            view_ttl: (metadata_ttl + Duration::from_secs(5)).max(SHARED_VIEW_KEEP),
        }
    }

    pub fn budget(&self) -> Arc<dyn Budget> {
        self.budget.clone()
    }

    /// After the key check: share the budget, the views and the list pages of the
    /// environment its answer named. `online` is false when the mount starts offline (no
    /// answer yet): it then keeps its own budget and retrieves alone, said once.
    pub fn connect(self, client: &HttpClient, online: bool) -> anyhow::Result<Option<Shared>> {
        if !online {
            tracing::warn!(
                "--shared-state: Persona has not answered yet, so its organization is unknown; \
                 this mount keeps its own budget and retrieves alone"
            );
            return Ok(None);
        }
        let Some(identity) = client.identity() else {
            anyhow::bail!(
                "--shared-state needs the Persona-Organization-Id and Persona-Environment-Id \
                 headers, and the API at {} did not send them: mount without --shared-state",
                client.config().api_base
            );
        };
        let link = Arc::new(
            RedisLink::open(self.url.expose()).context("--shared-state: cannot use Redis")?,
        );
        let budget = SharedBudget::with_link(
            link.clone(),
            &[&identity.organization, &identity.environment],
            self.policy,
        )
        .context("--shared-state")?;
        let views = RedisViews::new(
            link.clone(),
            &identity.organization,
            &identity.environment,
            self.view_ttl,
            CLAIM_TTL,
        )
        .context("--shared-state")?;
        // List pages: the same claims, kept briefly (`page-<digest>` keys never clash with
        // inquiry ids).
        let pages = RedisViews::new(
            link,
            &identity.organization,
            &identity.environment,
            PAGE_KEEP,
            CLAIM_TTL,
        )
        .context("--shared-state")?;
        self.budget.switch_to(Arc::new(budget));
        tracing::info!(
            organization = %identity.organization,
            environment = %identity.environment,
            "sharing the request budget, inquiry views and list pages in Redis"
        );
        Ok(Some(Shared {
            views: Arc::new(views),
            pages: Arc::new(pages),
        }))
    }
}

/// What a mount shares once connected.
#[derive(Debug)]
pub struct Shared {
    /// Inquiry views, for the core.
    pub views: Arc<dyn SharedViews>,
    /// List pages.
    pages: Arc<dyn SharedViews>,
}

impl Shared {
    /// `api` with its list pages shared with the other mounts.
    pub fn listing(&self, api: Arc<dyn PersonaApi>) -> Arc<dyn PersonaApi> {
        Arc::new(SharedListing::new(api, self.pages.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_checked_and_its_password_never_shown() {
        let url = parse_shared_state("redis://:hunter2@10.0.0.5:6379/2").unwrap();
        assert!(!format!("{url:?}").contains("hunter2"), "{url:?}");
        assert!(parse_shared_state("redis://127.0.0.1:6379").is_ok());
        for bad in [
            "rediss://:hunter2@host:6380/0",
            "http://:hunter2@host/",
            "redis://:hunter2@host:6379/notadb",
            "hunter2",
        ] {
            let err = parse_shared_state(bad).unwrap_err();
            assert!(!err.contains("hunter2"), "{bad}: {err}");
        }
        assert!(
            parse_shared_state("rediss://h:1/0")
                .unwrap_err()
                .contains("not supported")
        );
    }

    #[test]
    fn a_server_without_the_identity_headers_is_refused_and_offline_works_alone() {
        let url = parse_shared_state("redis://127.0.0.1:1/0").unwrap();
        let client = HttpClient::new(personafs_client::ClientConfig::new(
            "http://127.0.0.1:1/api/v1",
            personafs_client::ApiKey::new("persona_sandbox_x"),
        ))
        .unwrap();
        // No answer named the organization (an old server): one clear error.
        let sharing = Sharing::new(
            url.clone(),
            BudgetPolicy::default(),
            Duration::from_secs(60),
        );
        let err = format!("{:#}", sharing.connect(&client, true).unwrap_err());
        assert!(err.contains("Persona-Organization-Id"), "{err}");
        assert!(err.contains("without --shared-state"), "{err}");
        // Started offline: no error, nothing shared.
        let sharing = Sharing::new(url, BudgetPolicy::default(), Duration::from_secs(60));
        assert!(sharing.connect(&client, false).unwrap().is_none());
    }
}
