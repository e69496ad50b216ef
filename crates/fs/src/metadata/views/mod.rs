//! Inquiry views: the last retrieve of each inquiry, refreshed when a caller needs fresher
//! data. One retrieve per inquiry at a time; different inquiries refresh in parallel.
//! Bounded: beyond `max_views` the least recently used views leave memory and are simply
//! retrieved again when needed.
//!
//! With a metadata store, every retrieve is saved token-free (in the background), and a view
//! not in memory is loaded from the store without a retrieve when Persona confirmed it within
//! the metadata TTL (its `updated-at` in a fresh listing matches, or it was checked that
//! recently). When Persona cannot be reached, the stored view answers whatever its age.
//!
//! One file per job: this one holds the views in memory (a bounded LRU of cells, one
//! retrieve per inquiry at a time) and the way a view is obtained; `marks` what events said
//! (changed, redacted); `trust` when a view in memory or in the store is good enough;
//! `claims` the views shared with other mounts through Redis; `retrieve` a retrieve and
//! what it writes back; `failure` what a failed retrieve answers (a missing inquiry
//! remembered, the last view, the stored view offline).

mod claims;
mod failure;
mod marks;
mod retrieve;
mod trust;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lru::LruCache;
use parking_lot::Mutex;
use personafs_client::clock::Clock;

use self::marks::Marks;
use self::trust::Trust;
use super::listing::Lister;
use super::negative::{NegativeCache, capacity_of};
use super::persist::StoreWriter;
use super::view::InquiryView;
use crate::cache::DiskCache;
use crate::config::CoreConfig;
use crate::error::{FsError, FsResult};
use personafs_client::PersonaApi;
use personafs_client::shared_state::SharedViews;

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
    /// What events said of inquiries (changed, redacted).
    marks: Marks,
    /// Views shared with the other mounts of the environment, if any.
    shared: Option<Arc<dyn SharedViews>>,
    /// When this mount started: what it retrieved since is as good as what it holds in memory.
    started: SystemTime,
    /// What a view's age and a negative answer's are measured with.
    clock: Clock,
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
            negative: NegativeCache::new(cfg.negative_ttl, cfg.max_views, cfg.clock.clone()),
            marks: Marks::default(),
            shared: cfg.shared_views.clone(),
            started: cfg.clock.system(),
            clock: cfg.clock.clone(),
        }
    }

    /// Call `hook` with each inquiry whose view may have changed: retrieved again, or
    /// expired or redacted by an event.
    pub(crate) fn on_change(&self, hook: impl Fn(&Arc<str>) + Send + Sync + 'static) {
        self.marks.on_change(hook);
    }

    fn changed(&self, id: &Arc<str>) {
        self.marks.tell(id);
    }

    /// An event said `id` appeared or changed: its view in memory (and a "no such inquiry"
    /// answer) go, and the next use retrieves it rather than trusting the stored view.
    pub(crate) fn expire(&self, id: &Arc<str>) {
        self.marks.note_change(id);
        self.negative.remove(id);
        self.cells.lock().pop(id);
        self.changed(id);
    }

    /// An event said `id` was redacted: its view leaves memory, and from now on only a view
    /// showing the redaction (no files) is served for it.
    pub(crate) fn mark_redacted(&self, id: &Arc<str>) {
        self.marks.mark_redacted(id);
        self.cells.lock().pop(id);
        self.changed(id);
    }

    /// Whether an event said `id` was redacted.
    pub(crate) fn is_marked_redacted(&self, id: &str) -> bool {
        self.marks.is_redacted(id)
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

    /// `created-at` of the inquiry from its last view, of any age; never waits.
    /// Does not count as a use of the view (listings read it for every inquiry).
    pub(crate) fn created_now(&self, id: &Arc<str>) -> Option<SystemTime> {
        let cell = self.cells.lock().peek(id)?.clone();
        *cell.created.lock()
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
        let changed = self.marks.change_of(id);
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
                    self.marks.seen(id, n);
                }
                cell.shown(&view);
                *slot = Some(view.clone());
                drop(slot);
                self.changed(id);
                Ok(view)
            }
            Err(e) => self.failed(id, need, e, &cell, slot).await,
        }
    }

    /// A missing inquiry keeps no cell (the negative cache remembers it).
    fn forget_cell(&self, id: &Arc<str>, cell: &Arc<Cell>) {
        let mut cells = self.cells.lock();
        if cells.peek(id).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            cells.pop(id);
        }
    }
}
