//! The ids under `inquiries/`: one listing through the list endpoint, taken again when older
//! than the metadata TTL. Each listing replaces the last, so it holds only what is listed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::TryStreamExt;
use parking_lot::Mutex;

use crate::error::{FsError, FsResult};
use personafs_client::{InquiryPage, ListFilters, PersonaApi};

pub(crate) struct Listing {
    pub(crate) ids: Arc<Vec<Arc<str>>>,
    /// `created-at` of the listed inquiries.
    pub(crate) created: HashMap<Arc<str>, SystemTime>,
    at: Instant,
}

pub(crate) struct Lister {
    api: Arc<dyn PersonaApi>,
    filters: ListFilters,
    ttl: Duration,
    /// Held while listing, so concurrent callers share one listing.
    refresh: tokio::sync::Mutex<()>,
    current: Mutex<Option<Arc<Listing>>>,
    /// A first listing page fetched before mounting (the key check), used once if fresh.
    seed: Mutex<Option<(InquiryPage, Instant)>>,
}

/// A name that could be an inquiry id; anything else is ENOENT without asking Persona.
pub(crate) fn plausible_inquiry_id(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with("inq_")
        && name[4..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Lister {
    pub(crate) fn new(api: Arc<dyn PersonaApi>, filters: ListFilters, ttl: Duration) -> Lister {
        Lister {
            api,
            filters,
            ttl,
            refresh: tokio::sync::Mutex::new(()),
            current: Mutex::new(None),
            seed: Mutex::new(None),
        }
    }

    pub(crate) fn seed(&self, page: InquiryPage) {
        *self.seed.lock() = Some((page, Instant::now()));
    }

    /// The last listing, of any age (never asks the API).
    pub(crate) fn current(&self) -> Option<Arc<Listing>> {
        self.current.lock().clone()
    }

    /// The listing if it is fresh; never waits.
    pub(crate) fn fresh_now(&self) -> Option<Arc<Listing>> {
        self.current().filter(|l| l.at.elapsed() < self.ttl)
    }

    /// A fresh listing, taken again when stale; the last one when listing fails.
    pub(crate) async fn get(&self) -> FsResult<Arc<Listing>> {
        if let Some(l) = self.fresh_now() {
            return Ok(l);
        }
        let _refreshing = self.refresh.lock().await;
        if let Some(l) = self.fresh_now() {
            return Ok(l);
        }
        match self.list_all().await {
            Ok(l) => {
                let l = Arc::new(l);
                *self.current.lock() = Some(l.clone());
                Ok(l)
            }
            Err(e) => {
                let e = FsError::from(e);
                let last = self.current();
                // Logged here only when the last listing hides the failure from the caller.
                if last.is_some() {
                    tracing::warn!(
                        errno = e.errno(),
                        "listing inquiries failed; serving the last listing: {e}"
                    );
                }
                last.ok_or(e)
            }
        }
    }

    async fn list_all(&self) -> personafs_client::Result<Listing> {
        let seed = self
            .seed
            .lock()
            .take()
            .filter(|(_, at)| at.elapsed() < self.ttl);
        let at = seed
            .as_ref()
            .map(|(_, at)| *at)
            .unwrap_or_else(Instant::now);
        tracing::debug!(filters = ?self.filters, "listing inquiries");
        let summaries: Vec<_> = personafs_client::list_stream_from(
            self.api.as_ref(),
            &self.filters,
            100,
            seed.map(|(page, _)| page),
        )
        .try_collect()
        .await?;
        tracing::debug!(count = summaries.len(), "inquiries listed");
        let mut ids = Vec::with_capacity(summaries.len());
        let mut seen = HashSet::new();
        let mut created = HashMap::new();
        for s in summaries {
            let id: Arc<str> = Arc::from(s.id.as_str());
            if !plausible_inquiry_id(&id) || !seen.insert(id.clone()) {
                continue;
            }
            if let Some(c) = s.created_at {
                created.insert(id.clone(), c.into());
            }
            ids.push(id);
        }
        Ok(Listing {
            ids: Arc::new(ids),
            created,
            at,
        })
    }
}
