//! The ids under `inquiries/`: one listing through the list endpoint, taken again when older
//! than the metadata TTL. Each listing replaces the last, so it holds only what is listed.
//!
//! With a metadata store, each listing taken is persisted (in the background), and a mount
//! without a listing in memory answers from the stored one while it lists again; a row that
//! shows `redacted-at` deletes the inquiry's stored view and cached files at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures::TryStreamExt;
use parking_lot::Mutex;

use super::persist::StoreWriter;
use crate::breaker::unreachable;
use crate::cache::DiskCache;
use crate::error::{FsError, FsResult};
use crate::store::{ListedInquiry, MetadataStore};
use personafs_client::{InquiryPage, InquirySummary, ListFilters, PersonaApi};

pub(crate) struct Listing {
    /// Newest first, as Persona lists them (and `inquiries/` shows them).
    pub(crate) ids: Arc<Vec<Arc<str>>>,
    /// What the listing says of each inquiry, and its place in `ids`: one map, because at a
    /// million inquiries each map costs tens of MiB.
    rows: HashMap<Arc<str>, Row>,
    /// Positions in `ids`, in name order: `ls -lR` and `rsync` walk by name, `find` and
    /// `cp -r` in listing order, and read-ahead follows whichever the walk takes.
    by_name: Vec<u32>,
    /// Inquiries the listing shows redacted.
    redacted: HashSet<Arc<str>>,
    at: Instant,
    /// `Lister::generation` when this listing was started: a change applied since makes it
    /// stale whatever its age.
    generation: u64,
    /// When Persona gave this listing; `None` for one loaded from the store (it confirms
    /// nothing: it is only what the last mount saw).
    confirmed_at: Option<SystemTime>,
}

/// One inquiry of a listing.
#[derive(Debug, Clone, Copy)]
struct Row {
    created: Option<SystemTime>,
    updated: Option<SystemTime>,
    position: u32,
    /// Place in name order (`by_name`).
    rank: u32,
}

impl Listing {
    /// `created-at` of a listed inquiry.
    pub(crate) fn created(&self, id: &str) -> Option<SystemTime> {
        self.rows.get(id)?.created
    }

    /// `updated-at` of a listed inquiry.
    pub(crate) fn updated(&self, id: &str) -> Option<SystemTime> {
        self.rows.get(id)?.updated
    }

    /// Where `id` is in `ids` (read-ahead takes the ones after it).
    pub(crate) fn position(&self, id: &str) -> Option<usize> {
        Some(self.rows.get(id)?.position as usize)
    }

    /// Where `id` is in name order.
    pub(crate) fn rank(&self, id: &str) -> Option<usize> {
        Some(self.rows.get(id)?.rank as usize)
    }

    /// Up to `n` inquiries after name-order place `rank`.
    pub(crate) fn after_by_name(&self, rank: usize, n: usize) -> Vec<Arc<str>> {
        self.by_name
            .iter()
            .skip(rank + 1)
            .take(n)
            .map(|&p| self.ids[p as usize].clone())
            .collect()
    }

    /// Sort the name order once the listing is whole.
    fn rank_by_name(ids: &[Arc<str>], rows: &mut HashMap<Arc<str>, Row>) -> Vec<u32> {
        let mut by_name: Vec<u32> = (0..ids.len() as u32).collect();
        by_name.sort_unstable_by(|&a, &b| ids[a as usize].cmp(&ids[b as usize]));
        for (rank, &p) in by_name.iter().enumerate() {
            if let Some(row) = rows.get_mut(&ids[p as usize]) {
                row.rank = rank as u32;
            }
        }
        by_name
    }

    /// Add `id` at the end unless it is listed already (a later page repeating an id).
    fn push(
        ids: &mut Vec<Arc<str>>,
        rows: &mut HashMap<Arc<str>, Row>,
        id: Arc<str>,
        created: Option<SystemTime>,
        updated: Option<SystemTime>,
    ) -> bool {
        if rows.contains_key(&id) {
            return false;
        }
        let position = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        rows.insert(
            id.clone(),
            Row {
                created,
                updated,
                position,
                rank: 0,
            },
        );
        ids.push(id);
        true
    }

    /// The inquiries this listing shows redacted, if Persona gave it (not the stored one).
    pub(crate) fn confirmed_redacted(&self) -> Vec<Arc<str>> {
        match self.confirmed_at {
            Some(_) => self.redacted.iter().cloned().collect(),
            None => Vec::new(),
        }
    }
}

/// Where listings are kept across mounts, and what a redaction seen in one deletes.
pub(crate) struct Persisted {
    pub(crate) writer: Arc<StoreWriter>,
    pub(crate) cache: Arc<DiskCache>,
    pub(crate) rt: tokio::runtime::Handle,
}

pub(crate) struct Lister {
    api: Arc<dyn PersonaApi>,
    filters: ListFilters,
    ttl: Duration,
    persisted: Option<Persisted>,
    /// Held while listing, so concurrent callers share one listing.
    refresh: Arc<tokio::sync::Mutex<()>>,
    /// The last listing attempt failed: stale listings are served while listing again.
    last_failed: AtomicBool,
    current: Mutex<Option<Arc<Listing>>>,
    /// A first listing page fetched before mounting (the key check), used once if fresh.
    seed: Mutex<Option<(InquiryPage, Instant)>>,
    /// Bumped by each change from the events feed or a webhook (`expire`).
    generation: AtomicU64,
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
    pub(crate) fn new(
        api: Arc<dyn PersonaApi>,
        filters: ListFilters,
        ttl: Duration,
        persisted: Option<Persisted>,
    ) -> Lister {
        Lister {
            api,
            filters,
            ttl,
            persisted,
            refresh: Arc::default(),
            last_failed: AtomicBool::new(false),
            current: Mutex::new(None),
            seed: Mutex::new(None),
            generation: AtomicU64::new(0),
        }
    }

    /// A change was applied: the listing in memory is stale from now on, whatever its age
    /// (the next readdir lists again).
    pub(crate) fn expire(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.seed.lock().take();
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
        let generation = self.generation.load(Ordering::SeqCst);
        self.current()
            .filter(|l| l.at.elapsed() < self.ttl && l.generation == generation)
    }

    /// Whether the last listing Persona gave shows `id` redacted: a view in memory that is
    /// not is out of date, whatever its age.
    pub(crate) fn shows_redacted(&self, id: &str) -> bool {
        self.current.lock().as_ref().is_some_and(|l| {
            l.confirmed_at.is_some() && !l.redacted.is_empty() && l.redacted.contains(id)
        })
    }

    /// `updated-at` of `id` in a listing Persona gave within the TTL, and when it gave it:
    /// what a stored view must match to be shown without a retrieve.
    pub(crate) fn confirmed_updated(&self, id: &str) -> Option<(SystemTime, SystemTime)> {
        let l = self.fresh_now()?;
        Some((l.updated(id)?, l.confirmed_at?))
    }

    /// Wait for a listing under way, if any (for what it will confirm); never starts one.
    pub(crate) async fn settled(&self) {
        if self.refresh.try_lock().is_err() {
            let _ = self.refresh.lock().await;
        }
    }

    /// A fresh listing, taken again when stale; the last one when listing fails. Without a
    /// listing in memory, the stored one answers at once while a new one is taken.
    pub(crate) async fn get(self: &Arc<Self>) -> FsResult<Arc<Listing>> {
        if let Some(l) = self.fresh_now() {
            return Ok(l);
        }
        if self.current().is_none()
            && let Some(stored) = self.load_stored().await
        {
            let mut current = self.current.lock();
            if current.is_none() {
                *current = Some(stored.clone());
                drop(current);
                self.refresh_in_background();
                return Ok(stored);
            }
        }
        if let Some(current) = self.current() {
            // Only what the last mount saw, or Persona failed the last time: answer with it at
            // once and list again in the background.
            if current.confirmed_at.is_none() || self.last_failed.load(Ordering::Relaxed) {
                self.refresh_in_background();
                return Ok(current);
            }
            // Being listed again by somebody else: do not wait for it.
            if self.refresh.try_lock().is_err() {
                return Ok(current);
            }
        }
        self.refresh().await
    }

    fn refresh_in_background(self: &Arc<Self>) {
        // Locked before this returns: whoever waits for what it confirms sees it.
        if let Ok(refreshing) = self.refresh.clone().try_lock_owned() {
            let me = self.clone();
            tokio::spawn(async move {
                let _ = me.refresh_locked().await;
                drop(refreshing);
            });
        }
    }

    pub(crate) async fn refresh(&self) -> FsResult<Arc<Listing>> {
        let _refreshing = self.refresh.lock().await;
        self.refresh_locked().await
    }

    /// `refresh` with its lock held.
    async fn refresh_locked(&self) -> FsResult<Arc<Listing>> {
        if let Some(l) = self.fresh_now() {
            return Ok(l);
        }
        match self.list_all().await {
            Ok((l, rows)) => {
                self.last_failed.store(false, Ordering::Relaxed);
                let l = Arc::new(l);
                *self.current.lock() = Some(l.clone());
                self.persist(rows);
                Ok(l)
            }
            Err(e) => {
                self.last_failed.store(true, Ordering::Relaxed);
                let offline = unreachable(&e);
                let e = FsError::from(e);
                let last = self.current();
                // Logged here only when the last listing hides the failure from the caller;
                // offline, the breaker has said so once.
                if last.is_some() {
                    if offline {
                        tracing::debug!("Persona unreachable; serving the last listing: {e}");
                    } else {
                        tracing::warn!(
                            errno = e.errno(),
                            "listing inquiries failed; serving the last listing: {e}"
                        );
                    }
                }
                last.ok_or(e)
            }
        }
    }

    /// What a listing covers: another mount's filters make another listing.
    fn scope(&self) -> String {
        format!("{:?}", self.filters)
    }

    /// The stored listing of this scope, as an unconfirmed (stale) listing.
    async fn load_stored(&self) -> Option<Arc<Listing>> {
        let p = self.persisted.as_ref()?;
        let store = p.writer.store().clone();
        let scope = self.scope();
        let rows =
            p.rt.spawn_blocking(move || -> Result<_, crate::store::StoreError> {
                match store.listing()? {
                    Some(info) if info.scope == scope => {
                        Ok(Some(store.listing_page(0, info.count as usize)?))
                    }
                    _ => Ok(None),
                }
            })
            .await
            .ok()?
            .inspect_err(|e| tracing::warn!("metadata store: cannot read the listing: {e}"))
            .ok()??;
        tracing::debug!(count = rows.len(), "listing loaded from the metadata store");
        let mut ids = Vec::with_capacity(rows.len());
        let mut listed = HashMap::with_capacity(rows.len());
        for r in rows {
            if plausible_inquiry_id(&r.id) {
                Listing::push(
                    &mut ids,
                    &mut listed,
                    Arc::from(r.id),
                    r.created_at,
                    r.updated_at,
                );
            }
        }
        let at = Instant::now()
            .checked_sub(self.ttl)
            .unwrap_or_else(Instant::now);
        let by_name = Listing::rank_by_name(&ids, &mut listed);
        Some(Arc::new(Listing {
            ids: Arc::new(ids),
            rows: listed,
            by_name,
            redacted: HashSet::new(),
            at,
            generation: self.generation.load(Ordering::SeqCst),
            confirmed_at: None,
        }))
    }

    /// Persist a listing Persona gave, and act on the redactions it shows; in the background.
    fn persist(&self, rows: Vec<ListedInquiry>) {
        let Some(p) = &self.persisted else { return };
        let cache = p.cache.clone();
        let scope = self.scope();
        p.writer.write(move |store| {
            for r in rows.iter().filter(|r| r.redacted_at.is_some()) {
                // A view stored since the redaction has no files: nothing to delete.
                let known = store.get_inquiry(&r.id).ok().flatten();
                if known.is_none_or(|v| v.redacted_at.is_none()) {
                    forget_redacted(store, &cache, &r.id);
                }
            }
            if let Err(e) = store.put_listing(&scope, SystemTime::now(), rows) {
                tracing::warn!("metadata store: cannot save the listing: {e}");
            }
        });
    }

    async fn list_all(&self) -> personafs_client::Result<(Listing, Vec<ListedInquiry>)> {
        let seed = self
            .seed
            .lock()
            .take()
            .filter(|(_, at)| at.elapsed() < self.ttl);
        let generation = self.generation.load(Ordering::SeqCst);
        tracing::debug!(filters = ?self.filters, "listing inquiries");
        // Taken page by page: a million summaries are never all in memory at once.
        let mut stream = std::pin::pin!(personafs_client::list_stream_from(
            self.api.as_ref(),
            &self.filters,
            100,
            seed.map(|(page, _)| page),
        ));
        let mut ids = Vec::new();
        let mut listed = HashMap::new();
        let mut redacted = HashSet::new();
        let mut rows = Vec::new();
        while let Some(s) = stream.try_next().await? {
            if !plausible_inquiry_id(&s.id) {
                continue;
            }
            let id: Arc<str> = Arc::from(s.id.as_str());
            let (created, updated) = (s.created_at.map(Into::into), s.updated_at.map(Into::into));
            if !Listing::push(&mut ids, &mut listed, id.clone(), created, updated) {
                continue;
            }
            if s.redacted_at.is_some() {
                redacted.insert(id);
            }
            if self.persisted.is_some() {
                rows.push(row_of(&s));
            }
        }
        tracing::debug!(count = ids.len(), "inquiries listed");
        ids.shrink_to_fit();
        listed.shrink_to_fit();
        let by_name = Listing::rank_by_name(&ids, &mut listed);
        let listing = Listing {
            ids: Arc::new(ids),
            rows: listed,
            by_name,
            redacted,
            // Its age counts from when Persona finished giving it: 1,000 pages take over
            // three minutes at 300 a minute, and a listing dated from its start would be stale
            // (confirming no stored view, and listed again at once) before it was complete.
            at: Instant::now(),
            generation,
            confirmed_at: Some(SystemTime::now()),
        };
        Ok((listing, rows))
    }
}

fn row_of(s: &InquirySummary) -> ListedInquiry {
    ListedInquiry {
        id: s.id.clone(),
        status: s.status.clone(),
        created_at: s.created_at.map(SystemTime::from),
        updated_at: s.updated_at.map(SystemTime::from),
        redacted_at: s.redacted_at.map(SystemTime::from),
    }
}

/// A redacted inquiry leaves no trace here: its stored view and its cached files go. Blocks.
pub(crate) fn forget_redacted(store: &MetadataStore, cache: &DiskCache, id: &str) {
    // Files first: once the view is gone from the store, nothing of the inquiry is left.
    let purged = cache.purge_inquiry(id);
    let deleted = store.delete_inquiry(id).unwrap_or_else(|e| {
        tracing::warn!(inquiry = %id, "metadata store: cannot delete a redacted inquiry: {e}");
        false
    });
    if deleted || purged > 0 {
        tracing::info!(inquiry = %id, purged, "inquiry is redacted; its stored view and cached files were deleted");
    }
}
