//! The ids under `inquiries/`: one listing through the list endpoint, taken again when older
//! than the metadata TTL. Each listing replaces the last, so it holds only what is listed.
//!
//! With a metadata store, each listing taken is persisted (in the background), and a mount
//! without a listing in memory answers from the stored one while it lists again; a row that
//! shows `redacted-at` deletes the inquiry's stored view and cached files at once.
//!
//! - A listing's age counts from when Persona finished giving it: 1,000 pages take minutes at
//!   300 requests a minute, and a listing dated from its start would be stale on arrival
//!   (confirming no stored view, and listed again at once).
//! - One listing is taken at a time (the `refresh` lock): a caller that finds one under way
//!   answers with the previous listing rather than wait, and one whose last listing failed,
//!   or that has only the stored listing, answers with it and lists again in the background.
//! - A listing cut short (its next-page cursor came back) shows what it gathered followed by
//!   what the last listing had beyond it, and is never stored: the stored listing stays the
//!   last whole one (its redactions still act). The warning is given once per cursor.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures::TryStreamExt;
use parking_lot::Mutex;
use personafs_client::clock::Clock;

use super::delta::DeltaConfig;
#[path = "listing_deltas.rs"]
mod deltas;
use super::listing_rows::{JoinedRow, ListingRows, RowKeys};
use super::persist::StoreWriter;
use super::progress::Progress;
use crate::breaker::unreachable;
use crate::cache::DiskCache;
use crate::error::{FsError, FsResult};
use crate::store::{ListedInquiry, ListingBuild, ListingChange, MetadataStore};
pub use deltas::DeltaStats;
pub(crate) use deltas::{DeltaSink, Vouch};
use personafs_client::{InquiryPage, InquirySummary, ListFilters, Listed, PersonaApi};

pub(crate) struct Listing {
    /// Newest first, as Persona lists them (and `inquiries/` shows them), with what the
    /// listing says of each and its place in name order: `ls -lR` and `rsync` walk by name,
    /// `find` and `cp -r` in listing order, and read-ahead follows whichever the walk takes.
    pub(crate) rows: ListingRows,
    /// Inquiries the listing shows redacted.
    redacted: HashSet<Arc<str>>,
    at: Instant,
    /// `Lister::generation` when this listing was started: a change applied since makes it
    /// stale whatever its age.
    generation: u64,
    /// When Persona gave this listing (or a delta vouched for it since); `None` for one
    /// loaded from the store and not vouched for (it confirms nothing: it is only what the
    /// last mount saw).
    confirmed_at: Mutex<Option<SystemTime>>,
    /// `updated-at` that deltas reported since, over the rows'.
    reported: Mutex<HashMap<Arc<str>, SystemTime>>,
}

impl Listing {
    /// Which listing this is, for telling one from the next (when it was taken, and what).
    pub(crate) fn identity(&self) -> (Instant, u64, usize) {
        (self.at, self.generation, self.rows.len())
    }

    fn new(
        mut rows: ListingRows,
        redacted: HashSet<Arc<str>>,
        at: Instant,
        generation: u64,
        confirmed_at: Option<SystemTime>,
    ) -> Listing {
        rows.finish();
        Listing {
            rows,
            redacted,
            at,
            generation,
            confirmed_at: Mutex::new(confirmed_at),
            reported: Mutex::default(),
        }
    }

    fn confirmed_at(&self) -> Option<SystemTime> {
        *self.confirmed_at.lock()
    }

    /// A delta vouched for this listing at `at`.
    pub(crate) fn confirm(&self, at: SystemTime) {
        *self.confirmed_at.lock() = Some(at);
    }

    /// A delta reported `id` updated at `updated`.
    pub(crate) fn report(&self, id: &Arc<str>, updated: SystemTime) {
        if self.rows.position(id).is_some() {
            self.reported.lock().insert(id.clone(), updated);
        }
    }

    /// `updated-at` of `id`: the latest a delta reported, else the row's. `None` when not
    /// listed; `Some(None)` when listed without one.
    pub(crate) fn updated(&self, id: &str) -> Option<Option<SystemTime>> {
        self.rows.position(id)?;
        Some(
            self.reported
                .lock()
                .get(id)
                .copied()
                .or_else(|| self.rows.updated(id)),
        )
    }

    /// The redacted set without `left`.
    fn redacted_without(&self, left: &HashSet<Arc<str>>) -> HashSet<Arc<str>> {
        self.redacted.difference(left).cloned().collect()
    }

    /// The ids, newest first.
    pub(crate) fn ids(&self) -> &[Arc<str>] {
        self.rows.ids()
    }

    /// `updated-at` of `id` and when Persona gave this listing (`None` for a stored one).
    fn updated_as_confirmed(&self, id: &str) -> Option<(SystemTime, SystemTime)> {
        Some((self.updated(id)??, self.confirmed_at()?))
    }

    /// The inquiries this listing shows redacted and `before` did not, if Persona gave it.
    pub(crate) fn newly_redacted<'a>(
        &'a self,
        before: Option<&'a Listing>,
    ) -> impl Iterator<Item = &'a Arc<str>> + 'a {
        let given = self.confirmed_at().is_some();
        self.redacted
            .iter()
            .filter(move |id| given && before.is_none_or(|b| !b.redacted.contains(*id)))
    }

    /// The inquiries this listing shows redacted, if Persona gave it (not the stored one).
    pub(crate) fn confirmed_redacted(&self) -> Vec<Arc<str>> {
        match self.confirmed_at() {
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
    /// Where background listings run, as every task of the filesystem.
    rt: tokio::runtime::Handle,
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
    /// Told of each listing Persona gave, with the one it replaced.
    on_listed: std::sync::OnceLock<ListedHook>,
    /// The listing under way (for `personafs status` and the log).
    pub(crate) progress: Progress,
    /// Repeating cursors warned about: a listing cut at the same place every minute says so
    /// once.
    warned_cursors: Mutex<HashSet<String>>,
    /// Freshness by deltas (`None`: listing by TTL only).
    deltas: Option<deltas::DeltaState>,
    /// Where deltas are shared with the other mounts of the environment, if anywhere.
    shared: std::sync::OnceLock<Arc<dyn personafs_client::shared_state::SharedViews>>,
    /// What ages are measured with (the listing's, the seed's, a delta's vouch).
    clock: Clock,
}

type ListedHook = Box<dyn Fn(&Listing, Option<&Listing>) + Send + Sync>;

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
        rt: tokio::runtime::Handle,
        deltas: Option<DeltaConfig>,
        clock: Clock,
    ) -> Lister {
        Lister {
            api,
            rt,
            filters,
            ttl,
            persisted,
            refresh: Arc::default(),
            last_failed: AtomicBool::new(false),
            current: Mutex::new(None),
            seed: Mutex::new(None),
            generation: AtomicU64::new(0),
            on_listed: std::sync::OnceLock::new(),
            progress: Progress::default(),
            warned_cursors: Mutex::default(),
            deltas: deltas.map(deltas::DeltaState::new),
            shared: std::sync::OnceLock::new(),
            clock,
        }
    }

    /// Call `hook` with each listing Persona gives from now on, and the one it replaced.
    pub(crate) fn on_listed(
        &self,
        hook: impl Fn(&Listing, Option<&Listing>) + Send + Sync + 'static,
    ) {
        let _ = self.on_listed.set(Box::new(hook));
    }

    /// A change was applied: the listing in memory is stale from now on, whatever its age
    /// (the next readdir lists again).
    pub(crate) fn expire(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.seed.lock().take();
        self.void_vouch();
    }

    pub(crate) fn seed(&self, page: InquiryPage) {
        *self.seed.lock() = Some((page, self.clock.now()));
    }

    /// The last listing, of any age (never asks the API).
    pub(crate) fn current(&self) -> Option<Arc<Listing>> {
        self.current.lock().clone()
    }

    /// The listing if it is fresh (taken or vouched for by a delta within the TTL); never
    /// waits.
    pub(crate) fn fresh_now(&self) -> Option<Arc<Listing>> {
        let generation = self.generation.load(Ordering::SeqCst);
        self.current().filter(|l| {
            l.generation == generation
                && (self.clock.since(l.at) < self.ttl || self.listing_vouched())
        })
    }

    /// Whether the last listing Persona gave shows `id` redacted: a view in memory that is
    /// not is out of date, whatever its age.
    pub(crate) fn shows_redacted(&self, id: &str) -> bool {
        self.current.lock().as_ref().is_some_and(|l| {
            !l.redacted.is_empty() && l.redacted.contains(id) && l.confirmed_at().is_some()
        })
    }

    /// `updated-at` of `id` in a listing Persona gave within the TTL, and when it gave it:
    /// what a stored view must match to be shown without a retrieve.
    pub(crate) fn confirmed_updated(&self, id: &str) -> Option<(SystemTime, SystemTime)> {
        self.fresh_now()?.updated_as_confirmed(id)
    }

    /// As `confirmed_updated`, from the last listing Persona gave this mount whatever its age
    /// (but not one a change has made stale since): enough for a final inquiry, which is
    /// never checked again once seen, as it would not be in memory.
    pub(crate) fn confirmed_updated_any_age(&self, id: &str) -> Option<(SystemTime, SystemTime)> {
        let generation = self.generation.load(Ordering::SeqCst);
        self.current()
            .filter(|l| l.generation == generation)?
            .updated_as_confirmed(id)
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
            let took = {
                let mut current = self.current.lock();
                current.is_none() && current.replace(stored.clone()).is_none()
            };
            if took && self.next_refresh().await.is_none() {
                self.refresh_in_background();
                return Ok(stored);
            }
        }
        if self.current().is_some()
            && !self.last_failed.load(Ordering::Relaxed)
            && self.next_refresh().await.is_some()
        {
            // A delta is a call or two: worth waiting for, whatever the listing's size.
            return self.refresh().await;
        }
        if let Some(current) = self.current() {
            // Only what the last mount saw, Persona failed the last time, or a whole listing
            // is due while deltas keep the mount fresh (daily, or a delta was not trusted):
            // answer with it at once and list again in the background.
            if current.confirmed_at().is_none()
                || self.last_failed.load(Ordering::Relaxed)
                || self.deltas_kept()
            {
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
            self.rt.spawn(async move {
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
        if let Some(answer) = self.take_delta(true).await {
            return answer;
        }
        match self.list_all().await {
            Ok(l) => {
                self.last_failed.store(false, Ordering::Relaxed);
                let l = Arc::new(l);
                let previous = self.current.lock().replace(l.clone());
                if let Some(hook) = self.on_listed.get() {
                    hook(&l, previous.as_deref());
                }
                Ok(l)
            }
            Err(e) => {
                self.last_failed.store(true, Ordering::Relaxed);
                let (offline, status) = (unreachable(&e), e.status());
                let e = FsError::from(e);
                let last = self.current();
                // Logged here only when the last listing hides the failure from the caller;
                // offline, the breaker has said so once.
                if last.is_some() {
                    if offline {
                        tracing::debug!("Persona unreachable; serving the last listing: {e}");
                    } else {
                        tracing::warn!(
                            status,
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
                    Some(info) if info.scope == scope => Ok(Some((
                        store.listing_page(0, info.count as usize)?,
                        store.listing_changes()?,
                    ))),
                    _ => Ok(None),
                }
            })
            .await
            .ok()?
            .inspect_err(|e| tracing::warn!("metadata store: cannot read the listing: {e}"))
            .ok()??;
        let (rows, changes) = rows;
        tracing::debug!(
            count = rows.len(),
            changes = changes.len(),
            "listing loaded from the metadata store"
        );
        let mut listed = ListingRows::default();
        for r in rows {
            if plausible_inquiry_id(&r.id) {
                let keys = RowKeys {
                    reference: r.reference_id.as_deref().map(Arc::from),
                    account: r.account_id.as_deref().map(Arc::from),
                };
                listed.push_with_keys(Arc::from(r.id), r.created_at, r.updated_at, keys);
            }
        }
        if !changes.is_empty() {
            // What deltas added and took away since it was stored.
            let (mut joined, mut left) = (Vec::new(), HashSet::new());
            for c in changes {
                match c {
                    ListingChange::Joined(r) if plausible_inquiry_id(&r.id) => {
                        joined.push(JoinedRow {
                            id: Arc::from(r.id),
                            created: r.created_at,
                            updated: r.updated_at,
                            keys: RowKeys {
                                reference: r.reference_id.as_deref().map(Arc::from),
                                account: r.account_id.as_deref().map(Arc::from),
                            },
                        })
                    }
                    ListingChange::Joined(_) => {}
                    ListingChange::Left(id) => {
                        left.insert(Arc::from(id));
                    }
                }
            }
            listed = listed.changed(joined, &left);
        }
        let now = self.clock.now();
        let at = now.checked_sub(self.ttl).unwrap_or(now);
        let generation = self.generation.load(Ordering::SeqCst);
        Some(Arc::new(Listing::new(
            listed,
            HashSet::new(),
            at,
            generation,
            None,
        )))
    }

    async fn list_all(&self) -> personafs_client::Result<Listing> {
        let before = self.current();
        let (started, began) = (self.clock.system(), self.clock.now());
        self.progress.start(before.as_ref().map(|l| l.rows.len()));
        let result = self.take_listing(before.as_deref()).await;
        let cut_at = result.as_ref().ok().and_then(|(_, cut)| cut.clone());
        if result.is_ok() && cut_at.is_none() {
            self.whole_listing_taken(started, began).await;
        }
        self.progress.finish(cut_at);
        result.map(|(listing, _)| listing)
    }

    /// A listing from Persona, and the cursor that cut it short if one came back again.
    async fn take_listing(
        &self,
        before: Option<&Listing>,
    ) -> personafs_client::Result<(Listing, Option<String>)> {
        let seed = self
            .seed
            .lock()
            .take()
            .filter(|(_, at)| self.clock.since(*at) < self.ttl);
        let generation = self.generation.load(Ordering::SeqCst);
        tracing::debug!(filters = ?self.filters, "listing inquiries");
        // Taken page by page: a million summaries are never all in memory at once.
        let mut stream = std::pin::pin!(personafs_client::list_pages_from(
            self.api.as_ref(),
            &self.filters,
            100,
            seed.map(|(page, _)| page),
        ));
        let mut listed = ListingRows::default();
        let mut redacted = HashSet::new();
        let mut saving = self
            .persisted
            .as_ref()
            .map(|p| ListingSave::begin(p, self.scope(), self.clock.clone()));
        let (mut fetched, mut cut_at) = (0, None);
        while let Some(item) = stream.try_next().await? {
            let s = match item {
                Listed::Page { inquiries } => {
                    fetched += inquiries;
                    self.progress.page(fetched);
                    continue;
                }
                Listed::CutShort { cursor } => {
                    cut_at = Some(cursor);
                    break;
                }
                Listed::Inquiry(s) => s,
            };
            if !plausible_inquiry_id(&s.id) {
                continue;
            }
            let id: Arc<str> = Arc::from(s.id.as_str());
            let (created, updated) = (s.created_at.map(Into::into), s.updated_at.map(Into::into));
            let (reference, account) = (s.reference_id.as_deref(), s.account_id.as_deref());
            if !listed.push_keyed(id.clone(), created, updated, reference, account) {
                continue;
            }
            if s.redacted_at.is_some() {
                redacted.insert(id);
            }
            if let Some(saving) = &mut saving {
                saving.push(row_of(&s));
            }
        }
        tracing::debug!(count = listed.len(), "inquiries listed");
        match &cut_at {
            Some(cursor) => {
                self.warn_cut(cursor, listed.len());
                // Cut short, it proves nothing gone: what the last listing had beyond it stays
                // (older, so after it), its `updated-at` unconfirmed. The stored listing
                // stays the last whole one.
                if let Some(before) = before {
                    for (p, id) in before.ids().iter().enumerate() {
                        let [reference, account] = before.rows.keys_of(p);
                        let created = before.rows.created(id);
                        if listed.push_keyed(id.clone(), created, None, reference, account)
                            && before.redacted.contains(id)
                        {
                            redacted.insert(id.clone());
                        }
                    }
                }
                if let Some(saving) = saving {
                    saving.abandon();
                }
            }
            None => {
                if let Some(saving) = saving {
                    saving.finish();
                }
            }
        }
        // Its age counts from when Persona finished giving it: 1,000 pages take over three
        // minutes at 300 a minute, and a listing dated from its start would be stale
        // (confirming no stored view, and listed again at once) before it was complete.
        let listing = Listing::new(
            listed,
            redacted,
            self.clock.now(),
            generation,
            Some(self.clock.system()),
        );
        Ok((listing, cut_at))
    }

    /// One warning per repeating cursor (a listing taken again every minute would repeat it).
    fn warn_cut(&self, cursor: &str, gathered: usize) {
        let first = {
            let mut warned = self.warned_cursors.lock();
            warned.len() < 1_000 && warned.insert(cursor.to_string())
        };
        if first {
            tracing::warn!(
                "listing inquiries: the next-page cursor {cursor} came back again; showing the \
                 {gathered} inquiries listed before it (the listing is incomplete: none it lacks \
                 is taken for gone)"
            );
        } else {
            tracing::debug!("listing inquiries: cut short again at cursor {cursor}");
        }
    }
}

/// A listing being saved to the store while it is taken, a chunk at a time (a million rows
/// are never all in memory), acting on the redactions each chunk shows. It becomes the
/// stored listing only when finished: one cut short is abandoned by the next.
struct ListingSave {
    writer: Arc<StoreWriter>,
    cache: Arc<DiskCache>,
    build: Arc<Mutex<Option<ListingBuild>>>,
    chunk: Vec<ListedInquiry>,
    clock: Clock,
}

/// Rows handed to the store writer at a time.
const SAVE_CHUNK: usize = 1_000;

impl ListingSave {
    fn begin(p: &Persisted, scope: String, clock: Clock) -> ListingSave {
        let build = Arc::new(Mutex::new(None));
        let b = build.clone();
        p.writer
            .write(move |store| match store.begin_listing(&scope) {
                Ok(started) => *b.lock() = Some(started),
                Err(e) => tracing::warn!("metadata store: cannot save the listing: {e}"),
            });
        ListingSave {
            writer: p.writer.clone(),
            cache: p.cache.clone(),
            build,
            chunk: Vec::with_capacity(SAVE_CHUNK),
            clock,
        }
    }

    fn push(&mut self, row: ListedInquiry) {
        self.chunk.push(row);
        if self.chunk.len() >= SAVE_CHUNK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let rows = std::mem::replace(&mut self.chunk, Vec::with_capacity(SAVE_CHUNK));
        let (build, cache) = (self.build.clone(), self.cache.clone());
        self.writer.write(move |store| {
            for r in rows.iter().filter(|r| r.redacted_at.is_some()) {
                forget_redacted_unless_applied(store, &cache, &r.id);
            }
            let mut build = build.lock();
            if let Some(b) = build.as_mut()
                && let Err(e) = store.append_listing(b, &rows)
            {
                tracing::warn!("metadata store: cannot save the listing: {e}");
                *build = None;
            }
        });
    }

    /// A listing cut short: its redactions act, but it never becomes the stored listing.
    fn abandon(mut self) {
        self.flush();
    }

    fn finish(mut self) {
        self.flush();
        let (build, taken) = (self.build.clone(), self.clock.system());
        self.writer.write(move |store| {
            if let Some(b) = build.lock().take()
                && let Err(e) = store.finish_listing(b, taken)
            {
                tracing::warn!("metadata store: cannot save the listing: {e}");
            }
        });
    }
}

fn row_of(s: &InquirySummary) -> ListedInquiry {
    ListedInquiry {
        id: s.id.clone(),
        status: s.status.clone(),
        created_at: s.created_at.map(SystemTime::from),
        updated_at: s.updated_at.map(SystemTime::from),
        redacted_at: s.redacted_at.map(SystemTime::from),
        reference_id: s.reference_id.clone(),
        account_id: s.account_id.clone(),
    }
}

/// `forget_redacted`, unless the stored view already shows the redaction (it was applied:
/// it has no files, and its cached files went then). Blocks.
pub(crate) fn forget_redacted_unless_applied(store: &MetadataStore, cache: &DiskCache, id: &str) {
    let known = store.get_inquiry(id).ok().flatten();
    if known.is_none_or(|v| v.redacted_at.is_none()) {
        forget_redacted(store, cache, id);
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
