//! Inquiry views: the last retrieve of each inquiry, refreshed when a caller needs fresher
//! data. One retrieve per inquiry at a time; different inquiries refresh in parallel.
//! Bounded: beyond `max_views` the least recently used views leave memory and are simply
//! retrieved again when needed.
//!
//! With a metadata store, every retrieve is saved token-free (in the background), and a view
//! not in memory is loaded from the store without a retrieve when Persona confirmed it within
//! the metadata TTL (its `updated-at` in a fresh listing matches, or it was checked that
//! recently). When Persona cannot be reached, the stored view answers whatever its age.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use lru::LruCache;
use parking_lot::Mutex;

use super::listing::{Lister, Vouch, forget_redacted_unless_applied};
use super::negative::{NegativeCache, capacity_of};
use super::persist::StoreWriter;
use super::shared;
use super::view::InquiryView;
use crate::breaker::unreachable;
use crate::cache::DiskCache;
use crate::config::CoreConfig;
use crate::error::{FsError, FsResult};
use personafs_client::shared_state::{Claim, SharedViews, holding};
use personafs_client::{PersonaApi, files_of};

/// How many times a mount tries to claim an inquiry another mount held and let go without a
/// view it can use, before it retrieves regardless.
const CLAIM_ROUNDS: usize = 3;

/// What a caller needs of an inquiry's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Names, sizes, times: vouched for by a delta within the metadata TTL; without one,
    /// fresh within the TTL, forever for a final inquiry.
    Metadata,
    /// What an open needs: as `Metadata`, but without a delta a final inquiry is checked
    /// again too once its view is older than the TTL (a redaction's bound).
    Open,
    /// URLs that are still good for a while.
    Urls,
    /// A view retrieved after this instant (the URLs of an older one were refused).
    NewerThan(Instant),
}

#[derive(Default)]
struct Cell {
    /// The last view; the lock makes concurrent refreshes of one inquiry a single retrieve.
    view: tokio::sync::Mutex<Option<Arc<InquiryView>>>,
    /// `created-at` of the last view, readable while a refresh holds the lock.
    created: Mutex<Option<SystemTime>>,
    /// `updated-at` of the last view, likewise (what a delta's report is compared with).
    updated: Mutex<Option<SystemTime>>,
}

impl Cell {
    /// `view` is the cell's view from now on.
    fn shown(&self, view: &InquiryView) {
        *self.created.lock() = Some(view.created);
        *self.updated.lock() = view.updated;
    }
}

/// How much a stored view must have been confirmed by Persona to be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// Vouched for by a delta, or confirmed within the metadata TTL (Persona is reachable:
    /// otherwise retrieve), for this need.
    Confirmed(Need),
    /// Any age (Persona cannot be reached: the last view seen is the best answer).
    Offline,
}

type ChangeHook = Box<dyn Fn(&Arc<str>) + Send + Sync>;

pub(crate) struct Views {
    api: Arc<dyn PersonaApi>,
    cache: Arc<DiskCache>,
    rt: tokio::runtime::Handle,
    store: Option<Arc<StoreWriter>>,
    listing: Arc<Lister>,
    metadata_ttl: Duration,
    negative_ttl: Duration,
    url_budget: Duration,
    cells: Mutex<LruCache<Arc<str>, Arc<Cell>>>,
    negative: NegativeCache,
    /// Inquiries an event said changed, with the number of that change: retrieved again on
    /// next use (no stored view). Only a retrieve started after the change clears it.
    changed: Mutex<HashMap<Arc<str>, u64>>,
    changes: AtomicU64,
    /// Inquiries an event said were redacted: only a view that shows the redaction is served
    /// for them from now on (anything else is ENOENT).
    redacted: Mutex<HashSet<Arc<str>>>,
    /// Views shared with the other mounts of the environment, if any.
    shared: Option<Arc<dyn SharedViews>>,
    /// When this mount started: what it retrieved since is as good as what it holds in memory.
    started: SystemTime,
    /// Told of each inquiry whose view was retrieved again or dropped by a change.
    on_change: std::sync::OnceLock<ChangeHook>,
}

impl Views {
    pub(crate) fn new(
        api: Arc<dyn PersonaApi>,
        cache: Arc<DiskCache>,
        rt: tokio::runtime::Handle,
        listing: Arc<Lister>,
        store: Option<Arc<StoreWriter>>,
        cfg: &CoreConfig,
    ) -> Views {
        Views {
            api,
            cache,
            rt,
            store,
            listing,
            metadata_ttl: cfg.metadata_ttl,
            negative_ttl: cfg.negative_ttl,
            url_budget: cfg.url_budget(),
            cells: Mutex::new(LruCache::new(capacity_of(cfg.max_views))),
            negative: NegativeCache::new(cfg.negative_ttl, cfg.max_views),
            changed: Mutex::default(),
            changes: AtomicU64::new(0),
            redacted: Mutex::default(),
            shared: cfg.shared_views.clone(),
            started: SystemTime::now(),
            on_change: std::sync::OnceLock::new(),
        }
    }

    /// Call `hook` with each inquiry whose view may have changed: retrieved again, or
    /// expired or redacted by an event.
    pub(crate) fn on_change(&self, hook: impl Fn(&Arc<str>) + Send + Sync + 'static) {
        let _ = self.on_change.set(Box::new(hook));
    }

    fn changed(&self, id: &Arc<str>) {
        if let Some(hook) = self.on_change.get() {
            hook(id);
        }
    }

    /// An event said `id` appeared or changed: its view in memory (and a "no such inquiry"
    /// answer) go, and the next use retrieves it rather than trusting the stored view.
    pub(crate) fn expire(&self, id: &Arc<str>) {
        self.note_change(id);
        self.negative.remove(id);
        self.cells.lock().pop(id);
        self.changed(id);
    }

    /// An event said `id` was redacted: its view leaves memory, and from now on only a view
    /// showing the redaction (no files) is served for it.
    pub(crate) fn mark_redacted(&self, id: &Arc<str>) {
        self.redacted.lock().insert(id.clone());
        self.note_change(id);
        self.cells.lock().pop(id);
        self.changed(id);
    }

    fn note_change(&self, id: &Arc<str>) {
        let n = self.changes.fetch_add(1, Ordering::SeqCst) + 1;
        self.changed.lock().insert(id.clone(), n);
    }

    /// Whether an event said `id` was redacted.
    pub(crate) fn is_marked_redacted(&self, id: &str) -> bool {
        self.redacted.lock().contains(id)
    }

    /// Every view leaves memory (the events were missed: nothing in memory is known good).
    pub(crate) fn expire_all(&self) {
        self.cells.lock().clear();
    }

    /// A view is served for `id` only if it agrees with a redaction an event announced.
    fn checked(&self, id: &Arc<str>, view: Arc<InquiryView>) -> FsResult<Arc<InquiryView>> {
        if !view.redacted && self.is_marked_redacted(id) {
            return Err(FsError::not_found(format_args!("inquiry {id} (redacted)")));
        }
        Ok(view)
    }

    fn cell(&self, id: &Arc<str>) -> Arc<Cell> {
        let mut cells = self.cells.lock();
        if let Some(c) = cells.get(id) {
            return c.clone();
        }
        let c = Arc::new(Cell::default());
        cells.put(id.clone(), c.clone());
        c
    }

    /// Views in memory now.
    pub(crate) fn len(&self) -> usize {
        self.cells.lock().len()
    }

    /// The inquiry's view if it is fresh for metadata and nobody is refreshing it right now;
    /// never waits.
    pub(crate) fn fresh_now(&self, id: &Arc<str>) -> Option<Arc<InquiryView>> {
        let cell = self.cells.lock().get(id)?.clone();
        let slot = cell.view.try_lock().ok()?;
        let view = slot.as_ref()?;
        ((view.redacted || !self.is_marked_redacted(id)) && self.is_fresh(view, Need::Metadata))
            .then(|| view.clone())
    }

    /// A delta reported `id` updated at `updated`: a view in memory older than that leaves
    /// (the next use retrieves it, or takes a stored view as new). Whether one left.
    pub(crate) fn reported(&self, id: &Arc<str>, updated: SystemTime) -> bool {
        let older = {
            let mut cells = self.cells.lock();
            // A cell without a view yet is being retrieved: that retrieve may predate the
            // change.
            let older =
                (cells.peek(id)).is_some_and(|c| c.updated.lock().is_none_or(|u| u < updated));
            if older {
                cells.pop(id);
            }
            older
        };
        if older {
            self.changed(id);
        }
        older
    }

    /// Whether a delta is due before `view` can be vouched for.
    fn vouch_due(&self, view: &InquiryView) -> bool {
        self.listing
            .vouch_state(self.listed_updated(view).is_some())
            == Vouch::Due
    }

    /// `updated-at` the listing holds for `view`'s inquiry (`None`: not listed).
    fn listed_updated(&self, view: &InquiryView) -> Option<Option<SystemTime>> {
        self.listing.current().and_then(|l| l.updated(&view.id))
    }

    /// `is_fresh`, taking a delta first when one is due: the vouch a request asked for can
    /// run out before it looks at its view (a TTL of a second or two, a busy walk).
    async fn fresh_vouching(&self, view: &InquiryView, need: Need) -> bool {
        for _ in 0..2 {
            if self.is_fresh(view, need) {
                return true;
            }
            if !matches!(need, Need::Metadata | Need::Open) || !self.vouch_due(view) {
                return false;
            }
            self.listing.vouch().await;
        }
        self.is_fresh(view, need)
    }

    /// What deltas say of `view`: `Some(true)` when one within the TTL vouches for it (and
    /// the listing, if it holds the inquiry, reports nothing newer), `Some(false)` when one
    /// is due, `None` when deltas cannot say (the view's age then decides).
    fn vouched(&self, view: &InquiryView) -> Option<bool> {
        let listed = self.listed_updated(view);
        match self.listing.vouch_state(listed.is_some()) {
            Vouch::Fresh => Some(match listed {
                Some(Some(u)) => view.updated.is_some_and(|v| v >= u),
                _ => true,
            }),
            Vouch::Due => Some(false),
            Vouch::Unknown => None,
        }
    }

    /// `created-at` of the inquiry from its last view, of any age; never waits.
    /// Does not count as a use of the view (listings read it for every inquiry).
    pub(crate) fn created_now(&self, id: &Arc<str>) -> Option<SystemTime> {
        let cell = self.cells.lock().peek(id)?.clone();
        *cell.created.lock()
    }

    /// Whether `view` is good enough for `need`, without asking Persona again.
    fn is_fresh(&self, view: &InquiryView, need: Need) -> bool {
        if !view.redacted && self.listing.shows_redacted(&view.id) {
            return false; // redacted since: retrieved again, which applies the redaction
        }
        let age = view.fetched_at.elapsed();
        match need {
            Need::Metadata | Need::Open if !view.complete => age < self.negative_ttl,
            Need::Metadata | Need::Open if let Some(vouched) = self.vouched(view) => vouched,
            Need::Metadata => view.is_final() || age < self.metadata_ttl,
            Need::Open => age < self.metadata_ttl,
            // A stored view has no URLs: anything that needs one retrieves.
            Need::Urls => view.has_urls && age < self.url_budget,
            Need::NewerThan(t) => view.has_urls && view.fetched_at > t,
        }
    }

    /// The inquiry's view, retrieving it again when `need` asks for fresher data.
    pub(crate) async fn view(&self, id: &Arc<str>, need: Need) -> FsResult<Arc<InquiryView>> {
        let view = self.view_unchecked(id, need).await?;
        self.checked(id, view)
    }

    async fn view_unchecked(&self, id: &Arc<str>, need: Need) -> FsResult<Arc<InquiryView>> {
        if self.negative.is_missing(id) {
            return Err(FsError::not_found(format_args!("inquiry {id}")));
        }
        if matches!(need, Need::Metadata | Need::Open) {
            // A delta vouches for this view and every other at once: cheaper than a retrieve.
            self.listing.vouch().await;
        }
        let cell = self.cell(id);
        let mut slot = cell.view.lock().await;
        if let Some(view) = slot.as_ref()
            && self.fresh_vouching(view, need).await
        {
            return Ok(view.clone());
        }
        let changed = self.changed.lock().get(id).copied();
        if slot.is_none()
            && changed.is_none()
            && matches!(need, Need::Metadata | Need::Open)
            && let Some(view) = self.stored(id, Trust::Confirmed(need)).await
        {
            cell.shown(&view);
            *slot = Some(view.clone());
            return Ok(view);
        }
        match self.obtain(id, need, slot.as_deref()).await {
            Ok(view) => {
                if let Some(n) = changed {
                    let mut changed = self.changed.lock();
                    // A change announced during this retrieve stays to be seen.
                    if changed.get(id) == Some(&n) {
                        changed.remove(id);
                    }
                }
                cell.shown(&view);
                *slot = Some(view.clone());
                drop(slot);
                self.changed(id);
                Ok(view)
            }
            Err(e) => {
                let offline = unreachable(&e);
                let e = FsError::from(e);
                if e.errno() == libc::ENOENT {
                    self.negative.insert(id);
                    *slot = None;
                    *cell.created.lock() = None;
                    *cell.updated.lock() = None;
                    drop(slot);
                    self.forget_cell(id, &cell);
                    return Err(e);
                }
                // Names and sizes do not go bad: serve the last view rather than an error.
                // Only then is the failure logged here; otherwise the caller's answer says it.
                // Offline, the breaker has said so once: no line per request.
                match (need, slot.as_ref()) {
                    (Need::Metadata | Need::Open, Some(old)) => {
                        if offline {
                            tracing::debug!(inquiry = %id, "Persona unreachable; serving the last view: {e}");
                        } else {
                            tracing::warn!(inquiry = %id, errno = e.errno(),
                                "retrieve failed; serving the last view: {e}");
                        }
                        Ok(old.clone())
                    }
                    (Need::Metadata | Need::Open, None) if offline => {
                        let view = self.stored(id, Trust::Offline).await.ok_or(e)?;
                        tracing::debug!(inquiry = %id, "Persona unreachable; serving the stored view");
                        cell.shown(&view);
                        *slot = Some(view.clone());
                        Ok(view)
                    }
                    _ => Err(e),
                }
            }
        }
    }

    /// A missing inquiry keeps no cell (the negative cache remembers it).
    fn forget_cell(&self, id: &Arc<str>, cell: &Arc<Cell>) {
        let mut cells = self.cells.lock();
        if cells.peek(id).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            cells.pop(id);
        }
    }

    /// The stored view of `id` if `trust` allows showing it, loaded off the async threads.
    async fn stored(&self, id: &Arc<str>, trust: Trust) -> Option<Arc<InquiryView>> {
        let store = self.store.as_ref()?.store().clone();
        let key = id.to_string();
        let found = self
            .rt
            .spawn_blocking(move || -> Result<_, crate::store::StoreError> {
                let Some(stored) = store.get_inquiry(&key)? else {
                    return Ok(None);
                };
                let stale = store.stale_since(&key)?;
                Ok(store
                    .get_inquiry_json(&key)?
                    .map(|json| (stored, json, stale)))
            })
            .await
            .ok()?
            .inspect_err(
                |e| tracing::warn!(inquiry = %id, "metadata store: cannot read a view: {e}"),
            )
            .ok()??;
        let (stored, json, stale) = found;
        let checked_at = stored.checked_at;
        let view = InquiryView::from_stored(stored, json, Instant::now());
        let stale = stale.is_some_and(|at| view.updated.is_none_or(|u| u < at));
        if matches!(trust, Trust::Confirmed(_)) && !stale && self.vouch_due(&view) {
            // The vouch this request asked for ran out meanwhile (a short TTL): a delta, not
            // a retrieve.
            self.listing.vouch().await;
        }
        let trusted = match trust {
            Trust::Offline => true,
            // A delta vouches for it unless one reported it changed since it was stored.
            Trust::Confirmed(_) if stale => false,
            Trust::Confirmed(_) if let Some(vouched) = self.vouched(&view) => vouched,
            // A fresh listing decides: the same `updated-at` confirms the view, another one
            // means it changed. Without one, a view checked within the TTL is still good.
            Trust::Confirmed(need) => match self.confirmation(id, view.is_final()).await {
                Some((listed, at)) if Some(listed) == view.updated => {
                    self.mark_checked(id, at);
                    true
                }
                Some(_) => false,
                // A final inquiry this mount retrieved or confirmed is trusted as it would be
                // in memory (it only left memory for the bound): a long walk does not retrieve
                // again what it saw minutes ago.
                None => {
                    checked_at
                        .elapsed()
                        .is_ok_and(|age| age < self.metadata_ttl)
                        || (view.is_final()
                            && checked_at >= self.started
                            && !matches!(need, Need::Open))
                }
            },
        };
        if !trusted {
            return None;
        }
        tracing::trace!(inquiry = %id, ?trust, "view loaded from the metadata store");
        Some(Arc::new(view))
    }

    /// `updated-at` of `id` in a fresh listing, waiting for one under way (a remount lists
    /// again while it answers from the stored listing): a page of the listing is far cheaper
    /// than retrieving every inquiry again.
    /// A final inquiry's view is confirmed by any listing Persona gave this mount: after a
    /// remount, a walk longer than the TTL would otherwise retrieve every final inquiry it
    /// reaches once the listing has aged.
    async fn confirmation(&self, id: &str, is_final: bool) -> Option<(SystemTime, SystemTime)> {
        if let Some(c) = self.listing.confirmed_updated(id) {
            return Some(c);
        }
        self.listing.settled().await;
        self.listing.confirmed_updated(id).or_else(|| {
            is_final
                .then(|| self.listing.confirmed_updated_any_age(id))
                .flatten()
        })
    }

    /// A listing confirmed the stored view: note when, in the background.
    fn mark_checked(&self, id: &Arc<str>, at: SystemTime) {
        let Some(writer) = &self.store else { return };
        let id = id.to_string();
        writer.write(move |store| {
            if let Err(e) = store.mark_checked(&id, at) {
                tracing::warn!(inquiry = %id, "metadata store: cannot mark a view checked: {e}");
            }
        });
    }

    /// Save a retrieved view token-free, in the background (the reply never waits for it).
    fn save(&self, view: &InquiryView) {
        let Some(writer) = &self.store else { return };
        if !view.complete {
            return; // a file is missing for now: the next retrieve saves the whole view
        }
        self.write_back(writer, view, SystemTime::now());
    }

    /// Store `view`, confirmed at `checked`, in the background; a view retrieved (or shared)
    /// before a redaction purged its inquiry is never written back.
    fn write_back(&self, writer: &StoreWriter, view: &InquiryView, checked: SystemTime) {
        let stored = view.to_stored(checked);
        let json = view.json.clone();
        let cache = self.cache.clone();
        writer.write(move |store| {
            if cache.was_purged(&stored.id) {
                return;
            }
            if let Err(e) = store.put_inquiry_with_json(&stored, &json) {
                tracing::warn!(inquiry = %stored.id, "metadata store: cannot save a view: {e}");
            }
        });
    }

    /// A view for `need`: retrieved, or, for names and sizes with shared state, another
    /// mount's (or retrieved by this one alone among the mounts, then shared).
    async fn obtain(
        &self,
        id: &Arc<str>,
        need: Need,
        previous: Option<&InquiryView>,
    ) -> personafs_client::Result<Arc<InquiryView>> {
        let Some(views) = &self.shared else {
            return self.retrieve(id, previous, "not shared").await;
        };
        if !matches!(need, Need::Metadata | Need::Open) {
            // URLs never leave a host: retrieve, and share the token-free rest.
            let view = self.retrieve(id, previous, "urls").await?;
            self.publish(views.as_ref(), &view).await;
            return Ok(view);
        }
        // The view in Redis, if any, that cannot answer here (too old): a claim's holder is
        // making a newer one, which is what a waiter waits for.
        let mut seen = views.fetch(id).await;
        if let Some(view) = self.adopt(id, seen.as_deref()).await {
            return Ok(view);
        }
        for _ in 0..CLAIM_ROUNDS {
            match views.claim(id).await {
                Claim::Mine(lease) => {
                    // Another mount may have published and released between our look and
                    // our claim: look once more before spending a retrieve.
                    if let Some(view) = self.adopt(id, views.fetch(id).await.as_deref()).await {
                        views.release(lease).await;
                        return Ok(view);
                    }
                    // Renewed while the retrieve waits for the request budget.
                    let why = if seen.is_some() {
                        "claimed; the shared view is too old"
                    } else {
                        "claimed; nothing shared"
                    };
                    let retrieved =
                        holding(views.as_ref(), &lease, self.retrieve(id, previous, why)).await;
                    if let Ok(view) = &retrieved {
                        self.publish(views.as_ref(), view).await;
                    }
                    views.release(lease).await;
                    return retrieved;
                }
                Claim::Taken => {
                    if let Some(bytes) = views.wait_for(id, seen.as_deref()).await {
                        if let Some(view) = self.adopt(id, Some(&bytes)).await {
                            return Ok(view);
                        }
                        seen = Some(bytes);
                    }
                    // The holder gave up without a view this mount can use: claim again
                    // rather than every waiter retrieving at once.
                }
                Claim::Unavailable => break,
            }
        }
        self.retrieve(id, previous, "no claim").await
    }

    async fn publish(&self, views: &dyn SharedViews, view: &InquiryView) {
        // When it was retrieved, not now: its age goes with it.
        let checked = SystemTime::now() - view.fetched_at.elapsed();
        if let Some(bytes) = shared::encode(view, checked) {
            views.publish(&view.id, &bytes).await;
        }
    }

    /// Another mount's view of `id`, if it may answer for names and sizes here: fresh within
    /// the metadata TTL and not older than this mount's listing says the inquiry is. A
    /// redacted one is applied here as a retrieve's would be (cached files deleted).
    async fn adopt(&self, id: &Arc<str>, bytes: Option<&[u8]>) -> Option<Arc<InquiryView>> {
        let (view, checked) = shared::decode(id, bytes?)?;
        if !self.is_fresh(&view, Need::Metadata) {
            tracing::debug!(inquiry = %id, age = ?view.fetched_at.elapsed(), status = ?view.status,
                "the shared view is too old here");
            return None;
        }
        if let Some((listed, _)) = self.listing.confirmed_updated(id)
            && view.updated.is_none_or(|seen| seen < listed)
        {
            tracing::debug!(inquiry = %id, "the shared view is older than the listing");
            return None;
        }
        tracing::trace!(inquiry = %id, "view taken from the shared state");
        let view = Arc::new(view);
        if view.redacted {
            self.apply_redaction(&view).await;
        } else if let Some(writer) = &self.store {
            self.write_back(writer, &view, checked);
        }
        Some(view)
    }

    /// A redacted inquiry: its cached files and file rows go before the reply.
    async fn apply_redaction(&self, view: &Arc<InquiryView>) {
        let cache = self.cache.clone();
        let id = view.id.to_string();
        match &self.store {
            Some(writer) => {
                // Its files and file rows go before the reply; what is left is what the
                // redacted body shows (no files), so a remount or an offline mount shows
                // the inquiry empty without asking again.
                let empty = view.to_stored(SystemTime::now());
                let json = view.json.clone();
                writer
                    .write_and_wait(move |store| {
                        forget_redacted_unless_applied(store, &cache, &id);
                        if let Err(e) = store.put_inquiry_with_json(&empty, &json) {
                            tracing::warn!(inquiry = %id, "metadata store: cannot save a redacted view: {e}");
                        }
                    })
                    .await;
            }
            None => {
                let purged = self
                    .rt
                    .spawn_blocking(move || cache.purge_inquiry(&id))
                    .await
                    .unwrap_or(0);
                if purged > 0 {
                    tracing::info!(inquiry = %view.id, purged, "inquiry is redacted; its cached files were deleted");
                }
            }
        }
    }

    /// Retrieve `id`; `why` says in the debug log what made it necessary.
    async fn retrieve(
        &self,
        id: &str,
        previous: Option<&InquiryView>,
        why: &'static str,
    ) -> personafs_client::Result<Arc<InquiryView>> {
        let fetched_at = Instant::now();
        tracing::debug!(inquiry = %id, why, previous = previous.is_some(), "retrieving inquiry");
        let inquiry = self.api.retrieve_inquiry(id).await?;
        let files = files_of(&inquiry);
        // Sizes: `byte-size`, else what the previous view learnt, else a HEAD (in parallel).
        let sized = futures::stream::iter(files.into_iter().map(|f| async move {
            let known = f.size.or_else(|| {
                previous
                    .and_then(|p| p.file(f.section, &f.name))
                    .filter(|old| old.object_id == f.object_id && old.role == f.role)
                    .map(|old| old.size)
            });
            let size = match known {
                Some(s) => Some(s),
                None => match self.api.file_size(&f.url).await {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::warn!(inquiry = %id, file = %f.name, status = ?e.status(),
                            "file left out for now: its size cannot be learned: {e}");
                        None
                    }
                },
            };
            (f, size)
        }))
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
        // A file without an exact size is not shown (an empty file would be copied as the
        // document); the view is then retrieved again soon to try once more.
        let complete = sized.iter().all(|(_, s)| s.is_some());
        let sized: Vec<_> = sized
            .into_iter()
            .filter_map(|(f, s)| s.map(|s| (f, s)))
            .collect();
        let mut view = InquiryView::new(&inquiry, fetched_at, sized);
        view.complete = complete;
        if self.shared.is_some() {
            view = shared::with_stripped_json(view);
        }
        let view = Arc::new(view);
        tracing::debug!(inquiry = %id, files = view.files.len(), status = ?view.status,
            redacted = view.redacted, "inquiry retrieved");
        if view.redacted {
            self.apply_redaction(&view).await;
        } else {
            self.save(&view);
        }
        Ok(view)
    }
}
