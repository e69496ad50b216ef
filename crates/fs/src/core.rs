//! `FsCore`: the façade that composes the components (metadata, downloads, read-ahead,
//! handles, open directories) into the operations of a read-only filesystem, as plain data
//! (no FUSE types). Each component owns its state; none of them knows this façade.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::answer::poll_once;
use crate::breaker::{Breaker, BreakerApi};
use crate::cache::{CacheKey, DiskCache};
use crate::changes::Change;
use crate::changes::feed::{Feed, Polled};
use crate::config::CoreConfig;
use crate::counters::Counters;
use crate::dirs::{DirSnapshot, Dirs};
use crate::downloads::Downloads;
use crate::error::{FsError, FsResult};
use crate::handles::{Handle, Handles, KeptEntry, Opened, ReadData};
use crate::kernel_cache::{KernelCache, KernelCaches};
use crate::metadata::delta::Planned;
use crate::metadata::inode::{INQUIRIES, Node};
use crate::metadata::listing::{DeltaSink, DeltaStats, Lister, Persisted};
use crate::metadata::persist::StoreWriter;
use crate::metadata::view::InquiryView;
use crate::metadata::views::Views;
use crate::metadata::{Attr, DirEntry, Entries, Kind, Metadata};
use crate::readahead::Readahead;
use personafs_client::{Event, InquiryPage, PersonaApi, Section};

/// What `statfs` reports.
#[derive(Debug, Clone, Copy)]
pub struct FsStats {
    /// The cache's size limit, in bytes.
    pub capacity: u64,
    /// Inodes the kernel may refer to now.
    pub inodes: u64,
}

/// One entry of an open directory, ready for a reply.
#[derive(Debug, Clone, Copy)]
pub struct DirSlot<'a> {
    /// The offset of the entry after this one.
    pub next: u64,
    pub attr: Attr,
    pub name: &'a str,
}

pub struct FsCore {
    rt: tokio::runtime::Handle,
    cache: Arc<DiskCache>,
    cfg: CoreConfig,
    meta: Metadata,
    downloads: Arc<Downloads>,
    readahead: Arc<Readahead>,
    handles: Handles,
    dirs: Dirs,
    /// What the core did, counted (`CoreConfig::counters`, read by the binary's status and
    /// metrics).
    pub counters: Arc<Counters>,
    breaker: Arc<Breaker>,
    /// Where the metadata store is written (in order): changes delete through it too.
    writer: Option<Arc<StoreWriter>>,
    feed: Feed,
    /// What the kernel keeps, and the way to make it let go (see `kernel_cache`).
    kernel: KernelCache,
}

impl FsCore {
    /// The core over `api` and `cache`. Background work runs on `cfg.runtime` (or, when it
    /// is `None`, the runtime this is called in).
    pub fn new(api: Arc<dyn PersonaApi>, cache: Arc<DiskCache>, cfg: CoreConfig) -> Arc<FsCore> {
        let rt = cfg
            .runtime
            .clone()
            .unwrap_or_else(tokio::runtime::Handle::current);
        let counters = cfg.counters.clone();
        // Every call to Persona goes through the breaker: offline, they fail at once and the
        // answers come from the store and the cache.
        let breaker = Arc::new(Breaker::new(
            cfg.offline_probe,
            cfg.counters.clone(),
            cfg.clock.clone(),
        ));
        let api: Arc<dyn PersonaApi> = Arc::new(BreakerApi::new(api, breaker.clone()));
        let writer = cfg
            .store
            .clone()
            .map(|store| Arc::new(StoreWriter::new(store, &rt)));
        let feed = Feed::new(api.clone(), cfg.store.clone(), format!("{:?}", cfg.filters));
        let listing = Arc::new(Lister::new(
            api.clone(),
            cfg.filters.clone(),
            cfg.metadata_ttl,
            writer.clone().map(|writer| Persisted {
                writer,
                cache: cache.clone(),
                rt: rt.clone(),
            }),
            rt.clone(),
            cfg.deltas,
            cfg.clock.clone(),
        ));
        let (tree_api, tree_rt) = (api.clone(), rt.clone());
        let views = Arc::new(Views::new(
            api.clone(),
            cache.clone(),
            rt.clone(),
            listing.clone(),
            writer.clone(),
            &cfg,
        ));
        let downloads = Arc::new(Downloads::new(
            api,
            cache.clone(),
            views.clone(),
            rt.clone(),
            counters.clone(),
        ));
        let readahead = Arc::new(Readahead::new(
            cfg.prefetch.clone(),
            cfg.metadata_ttl,
            rt.clone(),
            cache.clone(),
            listing.clone(),
            views.clone(),
            downloads.clone(),
            cfg.clock.clone(),
        ));
        let core = Arc::new(FsCore {
            rt,
            meta: Metadata::new(tree_api, listing, views, &cfg, tree_rt),
            cache,
            cfg,
            downloads,
            readahead,
            handles: Handles::new(),
            dirs: Dirs::new(),
            kernel: KernelCache::new(counters.clone()),
            counters,
            breaker,
            writer,
            feed,
        });
        // What the kernel keeps of a directory goes as soon as personafs sees it change.
        let weak = Arc::downgrade(&core);
        core.meta.on_view_change(move |id| {
            if let Some(core) = weak.upgrade() {
                core.drop_kernel_listings_of(id);
            }
        });
        core.meta.take_deltas(
            Arc::new(CoreDeltas(Arc::downgrade(&core))),
            core.cfg.shared_views.clone(),
        );
        let weak = Arc::downgrade(&core);
        core.meta.on_listed(move |listing, before| {
            if let Some(core) = weak.upgrade() {
                core.drop_kernel_listing(INQUIRIES);
                core.drop_kernel_view_listings();
                for id in listing.newly_redacted(before) {
                    core.drop_kernel_listings_of(id);
                }
            }
        });
        core
    }

    /// Where redactions reach the kernel's caches (the FUSE session's notifier).
    pub fn set_kernel_caches(&self, kernel: Arc<dyn KernelCaches>) {
        self.kernel.connect(kernel);
    }

    /// Apply a change Persona announced (an event from the feed or a webhook): see
    /// [`Change`]. A redaction's stored view and cached files are gone when this returns.
    pub async fn apply_change(&self, change: Change) {
        let id: Arc<str> = Arc::from(change.inquiry_id());
        self.meta.announced();
        self.drop_kernel_listing(INQUIRIES);
        self.drop_kernel_view_listings();
        match change {
            Change::Appeared(_) | Change::Changed(_) => self.meta.expire_view(&id),
            Change::Redacted(_) => {
                for id in self.redact(&[id]).await {
                    self.forget_in_kernel(&id).await;
                }
            }
        }
        self.counters.events_applied.fetch_add(1, Ordering::Relaxed);
    }

    /// Redactions Persona announced or a delta reported: the views, stored views and cached
    /// files of those not applied yet go before this returns, with one purge of the store
    /// for all. Returns those it applied; their names in the kernel are the caller's to drop.
    async fn redact(&self, ids: &[Arc<str>]) -> Vec<Arc<str>> {
        let redacted: Vec<Arc<str>> = (self.newly_redacted(ids).await)
            .into_iter()
            .filter(|id| !self.meta.is_marked_redacted(id))
            .collect();
        for id in &redacted {
            self.meta.mark_redacted(id);
        }
        self.forget_all_redacted(&redacted).await;
        redacted
    }

    /// What a delta reported, applied to the views: those older than reported leave memory
    /// and their stored views are trusted no more; redactions are applied.
    async fn apply_delta(self: &Arc<Self>, planned: &Planned) {
        for (id, updated) in &planned.reported {
            self.meta.reported(id, *updated);
        }
        if let Some(writer) = &self.writer
            && !planned.reported.is_empty()
        {
            let reported: Vec<(String, std::time::SystemTime)> = (planned.reported.iter())
                .map(|(id, at)| (id.to_string(), *at))
                .collect();
            writer
                .write_and_wait(move |store| {
                    if let Err(e) = store.mark_stale(&reported) {
                        tracing::warn!("metadata store: cannot mark changed views: {e}");
                    }
                })
                .await;
        }
        for id in self.redact(&planned.redacted).await {
            // In the background: a delta runs inside a request, and the kernel drops an
            // entry only once the requests holding its directory are answered.
            let core = self.clone();
            self.rt
                .spawn(async move { core.forget_in_kernel(&id).await });
        }
    }

    /// Apply an event if it changes what the mount shows; whether it did.
    pub async fn apply_event(&self, event: &Event) -> bool {
        match crate::changes::change_of(event) {
            Some(change) => {
                tracing::debug!(event = %event.id, name = %event.name, "applying event");
                self.apply_change(change).await;
                true
            }
            None => false,
        }
    }

    /// Events were missed: list again (the listing acts on the redactions it shows, and a
    /// stored view whose `updated-at` the listing contradicts is retrieved again), forget
    /// the views in memory, and apply each redaction the listing shows.
    pub(crate) async fn full_check(&self) -> FsResult<()> {
        let listing = self.meta.list_again().await?;
        for id in listing.confirmed_redacted() {
            if !self.meta.is_marked_redacted(&id) {
                self.apply_change(Change::Redacted(id.to_string())).await;
            }
        }
        Ok(())
    }

    /// One poll of the events feed (what `watch_events` does every interval).
    pub async fn poll_events(&self) -> Polled {
        self.feed.poll(self).await
    }

    /// Poll the events feed every `interval` on the core's runtime, until the core is
    /// dropped or the task aborted.
    pub fn watch_events(
        self: &Arc<Self>,
        interval: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let core = Arc::downgrade(self);
        self.rt.spawn(async move {
            loop {
                let Some(c) = core.upgrade() else { return };
                c.poll_events().await;
                drop(c);
                tokio::time::sleep(interval).await;
            }
        })
    }

    /// Persona could not be reached before mounting: start offline (the circuit breaker
    /// open), probing again after `CoreConfig::offline_probe`.
    pub fn start_offline(&self) {
        self.breaker.open_now();
    }

    /// Whether Persona is counted unreachable now (the circuit breaker is open): answers
    /// come from the metadata store and the cache.
    pub fn is_offline(&self) -> bool {
        self.breaker.is_open()
    }

    /// The kernel keeps a final inquiry's names for the metadata TTL: after a redaction, its
    /// files' paths must not answer `stat` from there either. Dropping the inquiry's entry
    /// in `inquiries/` drops everything the kernel holds under it.
    /// Its end is the end of the redaction's work: logged then, not before.
    async fn forget_in_kernel(&self, id: &Arc<str>) {
        if self.meta.peek_ino(&Node::Inquiry(id.clone())).is_some() {
            self.kernel
                .drop_entry(&self.rt, INQUIRIES, id.to_string())
                .await;
        }
        tracing::info!(inquiry = %id, "redaction applied");
    }

    /// Redacted inquiries' cached files and stored views go (through the store's writer, so a
    /// save queued before cannot bring a view back), with one purge of the store for all of them.
    async fn forget_all_redacted(&self, ids: &[Arc<str>]) {
        if ids.is_empty() {
            return;
        }
        let (cache, keys) = (self.cache.clone(), ids.to_vec());
        let purge = move |store: Option<&crate::store::MetadataStore>| {
            // Files first: once the views are gone from the store, nothing is left.
            for id in &keys {
                cache.purge_inquiry(id);
            }
            if let Some(store) = store {
                let ids: Vec<&str> = keys.iter().map(|k| &**k).collect();
                if let Err(e) = store.delete_inquiries(&ids) {
                    tracing::warn!("metadata store: cannot delete redacted inquiries: {e}");
                }
            }
        };
        match &self.writer {
            Some(writer) => writer.write_and_wait(move |store| purge(Some(store))).await,
            None => {
                let _ = self.rt.spawn_blocking(move || purge(None)).await;
            }
        }
    }

    /// Of `ids` reported redacted, those whose stored view does not show it yet (a delta's
    /// overlap and a remount report a redaction again: its stored view already answers).
    async fn newly_redacted(&self, ids: &[Arc<str>]) -> Vec<Arc<str>> {
        let Some(writer) = &self.writer else {
            return ids.to_vec();
        };
        if ids.is_empty() {
            return Vec::new();
        }
        let found = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (out, ids) = (found.clone(), ids.to_vec());
        writer
            .write_and_wait(move |store| {
                let applied = |id: &str| {
                    store
                        .get_inquiry(id)
                        .ok()
                        .flatten()
                        .is_some_and(|v| v.redacted_at.is_some())
                };
                out.lock().extend(ids.into_iter().filter(|id| !applied(id)));
            })
            .await;
        std::mem::take(&mut *found.lock())
    }

    /// What deltas have done (`None`: deltas are off).
    pub fn delta_stats(&self) -> Option<Arc<DeltaStats>> {
        self.meta.delta_stats()
    }

    /// Hand over the first listing page (fetched with page size 100 before mounting), so the
    /// first listing does not ask for it again.
    pub fn seed_listing(&self, page: InquiryPage) {
        self.meta.seed_listing(page);
    }

    /// Inodes in the table now (forgotten ones have left it).
    pub fn inode_count(&self) -> usize {
        self.meta.inode_count()
    }

    /// The listing of `inquiries/` under way, if one is.
    pub fn listing_progress(&self) -> Option<personafs_client::telemetry::ListingProgress> {
        self.meta.listing_progress()
    }

    /// The cursor that cut the last listing short (it came back again), if one did.
    pub fn listing_cut_at(&self) -> Option<String> {
        self.meta.listing_cut_at()
    }

    /// Inquiry views in memory now (at most `CoreConfig::max_views`).
    pub fn view_count(&self) -> usize {
        self.meta.view_count()
    }

    /// Downloads under way, or finishing (checksum, cache), now (for diagnostics and tests).
    pub fn downloads_registered(&self) -> usize {
        self.downloads.registered()
    }

    /// Whether read-ahead has nothing running or waiting (for tests).
    #[cfg(test)]
    pub(crate) fn readahead_idle(&self) -> bool {
        self.readahead.is_idle()
    }

    /// Files open through this core now (for diagnostics and tests).
    pub fn open_handles(&self) -> usize {
        self.handles.len()
    }

    /// Listings kept for paging now (see `dirs`).
    pub fn dir_listings(&self) -> usize {
        self.dirs.len()
    }

    /// How long a view is trusted without asking Persona again.
    pub(crate) fn metadata_ttl(&self) -> std::time::Duration {
        self.cfg.metadata_ttl
    }

    pub fn stats(&self) -> FsStats {
        FsStats {
            capacity: self.cache.limits().max_size,
            inodes: self.inode_count() as u64,
        }
    }

    /// The kernel dropped `nlookup` references to `ino` (FUSE `forget`). When that was the
    /// last, the kernel's copy of the directory listing it also goes: it holds the entry's
    /// number, and the entry gets a new one if it comes back.
    pub fn forget(&self, ino: u64, nlookup: u64) {
        if let Some(node) = self.meta.forget(ino, nlookup) {
            self.kernel.forgotten(ino);
            if let Some(parent) = self.meta.parent_ino(&node) {
                self.kernel.drop_listing(parent);
            }
        }
    }

    pub async fn getattr(&self, ino: u64) -> FsResult<Attr> {
        self.checked_dir(self.meta.getattr(ino).await)
    }

    /// A directory's attributes are asked before the kernel reads its entries again (at
    /// least once per attribute TTL): the moment to check the copy of them it keeps.
    fn checked_dir(&self, attr: FsResult<Attr>) -> FsResult<Attr> {
        if let Ok(a) = &attr
            && a.kind == Kind::Dir
        {
            self.check_kernel_listing(a.ino);
        }
        attr
    }

    /// The entry `name` of directory `parent`; each success counts one kernel reference to
    /// the entry's inode, given back by `forget`.
    pub async fn lookup(&self, parent: u64, name: &str) -> FsResult<Attr> {
        let attr = self.meta.lookup(parent, name).await;
        if attr.is_ok() && parent == INQUIRIES {
            // A walk entered an inquiry: the next ones are retrieved in the background.
            self.readahead.metadata_from(&Arc::from(name));
        }
        self.checked_dir(attr)
    }

    /// Every entry of a directory, with attributes (for readdirplus), without `.`/`..`.
    pub async fn readdir(&self, ino: u64) -> FsResult<Vec<DirEntry>> {
        self.listed(ino).await.map(|l| self.numbered(l))
    }

    async fn listed(&self, ino: u64) -> FsResult<Entries> {
        if let Ok(Node::Inquiry(id)) = self.meta.node(ino) {
            // Read-ahead first, so the neighbours' retrieves overlap this one (it queues
            // each inquiry once).
            self.readahead.metadata_from(&id);
        }
        self.meta.readdir(ino).await
    }

    /// Entries with their inode numbers (no kernel reference counted).
    fn numbered(&self, entries: Entries) -> Vec<DirEntry> {
        (0..entries.len())
            .filter_map(|j| self.meta.entry(&entries, j))
            .map(|l| {
                let mut e = l.entry;
                e.attr.ino = self.meta.ino_of(l.node);
                e
            })
            .collect()
    }

    /// The entries of directory `ino` from `offset` (`.` and `..` first), handed to `add`
    /// until it returns `true` (the reply is full). Offset 0 takes the listing as it is now
    /// (a stale one is refreshed first); a later offset pages through the one taken at 0.
    /// With `plus`, each entry handed over (but `.` and `..`) counts one kernel reference to
    /// its inode, as a lookup does.
    pub async fn dir_entries(
        &self,
        ino: u64,
        offset: u64,
        plus: bool,
        add: impl FnMut(DirSlot<'_>) -> bool,
    ) -> FsResult<()> {
        let snap = self.dir_listing(ino, offset).await?;
        self.hand_over(&snap, offset, plus, add);
        Ok(())
    }

    /// The listing `dir_entries` reads at `offset`: the one taken at offset 0 for a later
    /// offset, else the directory's entries now.
    pub(crate) async fn dir_listing(&self, ino: u64, offset: u64) -> FsResult<Arc<DirSnapshot>> {
        if offset > 0
            && let Some(snap) = self.dirs.get(ino)
        {
            return Ok(snap);
        }
        let entries = self.listed(ino).await?;
        if offset == 0 {
            self.counters.dir_reads.fetch_add(1, Ordering::Relaxed);
        }
        Ok(self.dirs.take(DirSnapshot {
            ino,
            parent: self.meta.parent_of(ino),
            entries,
        }))
    }

    /// Hand the entries of `snap` from `offset` to `add` (see `dir_entries`).
    pub(crate) fn hand_over(
        &self,
        snap: &Arc<DirSnapshot>,
        offset: u64,
        plus: bool,
        mut add: impl FnMut(DirSlot<'_>) -> bool,
    ) {
        let end = 2 + snap.entries.len();
        if offset as usize >= end {
            self.dirs.finished(snap);
            return;
        }
        let dots = [
            (self.meta.dir_attr_of(snap.ino), "."),
            (self.meta.dir_attr_of(snap.parent), ".."),
        ];
        for i in offset as usize..end {
            let next = i as u64 + 1;
            let listed;
            let (slot, referenced) = match i.checked_sub(dots.len()) {
                None => {
                    let (attr, name) = dots[i];
                    (DirSlot { next, attr, name }, false)
                }
                Some(j) => {
                    listed = match self.meta.entry(&snap.entries, j) {
                        Some(l) => l,
                        None => break,
                    };
                    let node = listed.node.clone();
                    let ino = if plus {
                        self.meta.reference(node)
                    } else {
                        self.meta.ino_of(node)
                    };
                    let attr = Attr {
                        ino,
                        ..listed.entry.attr
                    };
                    let name = &*listed.entry.name;
                    (DirSlot { next, attr, name }, plus)
                }
            };
            if add(slot) {
                if referenced {
                    self.meta.forget(slot.attr.ino, 1); // not answered after all
                }
                return;
            }
        }
        // Every entry was handed over: the kernel keeps them in its directory cache.
        self.kernel
            .listed(snap.ino, self.meta.entries_fingerprint(&snap.entries));
    }

    /// The kernel asks about directory `ino` (a lookup, attributes): its copy of the
    /// entries goes unless they are what a read would give now, from memory (see
    /// `kernel_cache`). Entries whose sources are not at hand are never computed here: that
    /// could start a retrieve nobody asked for.
    fn check_kernel_listing(&self, ino: u64) {
        if !self.kernel.holds(ino) {
            return;
        }
        let now = match self.meta.entries_at_hand(ino) {
            true => poll_once(&self.rt, self.meta.readdir(ino)).now(),
            false => None,
        };
        let fingerprint = match now {
            Some(Ok(entries)) => Some(self.meta.entries_fingerprint(&entries)),
            _ => None,
        };
        self.kernel.check_listing(ino, fingerprint);
    }

    /// Tell the kernel to drop its copy of directory `ino`'s entries, if it holds one.
    fn drop_kernel_listing(&self, ino: u64) {
        self.kernel.drop_listing(ino);
    }

    /// A new listing, or a change: the kernel drops its copy of the views' top directories
    /// (the others are checked when it asks about them, as an inquiry's are).
    fn drop_kernel_view_listings(&self) {
        for ino in self.meta.view_top_inos() {
            self.drop_kernel_listing(ino);
        }
    }

    /// Where the view link `ino` points (relative, into `inquiries/`).
    pub fn readlink(&self, ino: u64) -> FsResult<String> {
        self.meta.link_target(ino)
    }

    /// An inquiry changed (or may have): the kernel drops what it holds of its directories.
    fn drop_kernel_listings_of(&self, id: &Arc<str>) {
        for node in [
            Node::Inquiry(id.clone()),
            Node::Section(id.clone(), Section::Document),
            Node::Section(id.clone(), Section::Selfie),
        ] {
            if let Some(ino) = self.meta.peek_ino(&node) {
                self.drop_kernel_listing(ino);
            }
        }
    }

    /// Open file `ino`. A warm file (its view fresh, its cache entry complete and verified)
    /// opens without waiting on anything: `cp`, `rsync` and image viewers then never go
    /// through the runtime. `kept(serial)` says whether the caller keeps a kernel backing of
    /// that cache entry from an earlier open: the entry's file is then not opened at all
    /// (see `CacheBacking`).
    pub async fn open_with(&self, ino: u64, kept: impl FnOnce(u64) -> bool) -> FsResult<Opened> {
        let handle = match self.meta.node(ino)? {
            Node::InquiryJson(id) => {
                let view = self.meta.view_for_open(&id).await?;
                return Ok(self.open_json(ino, &view));
            }
            Node::File(id, section, name) => self.open_file(&id, section, &name, kept).await?,
            _ => return Err(FsError::IsDir),
        };
        let opened = self.handles.register(handle);
        self.count_open(&opened);
        Ok(opened)
    }

    /// `open_with`, keeping no backing.
    pub async fn open(&self, ino: u64) -> FsResult<Opened> {
        self.open_with(ino, |_| false).await
    }

    /// The answer of `request` (one of this core's operations) if it is there at once, as
    /// the FUSE adapter gets it (see `answer`); `None`, dropping the request, if it must wait.
    pub fn at_once<F: std::future::Future>(&self, request: F) -> Option<F::Output> {
        poll_once(&self.rt, request).now()
    }

    /// Call `hook` with the serial of each cache entry deleted from now on (see
    /// `DiskCache::on_remove`).
    pub fn on_cache_remove(&self, hook: impl Fn(u64) + Send + Sync + 'static) {
        self.cache.on_remove(hook);
    }

    /// `inquiry.json`, served from memory. The kernel keeps its pages across opens while its
    /// bytes stay the same (a walk then reads none of them through personafs again).
    fn open_json(&self, ino: u64, view: &InquiryView) -> Opened {
        let keep_cache = self.kernel.keeps_pages(ino, view.json_fingerprint());
        let mut opened = self.handles.register(Handle::Bytes(view.json.clone()));
        opened.keep_cache = keep_cache;
        self.count_open(&opened);
        opened
    }

    fn count_open(&self, opened: &Opened) {
        use crate::audit::Source;
        let t = &self.counters;
        t.opens.fetch_add(1, Ordering::Relaxed);
        match opened.source {
            Source::Cache => t.cache_hits.fetch_add(1, Ordering::Relaxed),
            Source::Network => t.cache_misses.fetch_add(1, Ordering::Relaxed),
            Source::Memory => 0,
        };
    }

    /// What an inode is, for the audit log: its path in the mount, inquiry, object and size
    /// as last seen; `None` for directories and unknown inodes.
    pub fn describe(&self, ino: u64) -> Option<crate::audit::OpenedFile> {
        let (id, section, name) = match self.meta.node(ino).ok()? {
            Node::InquiryJson(id) => (id, None, None),
            Node::File(id, section, name) => (id, Some(section), Some(name)),
            _ => return None,
        };
        let view = self.meta.fresh_view(&id);
        let (path, object_id, size) = match (section, &name) {
            (Some(section), Some(name)) => {
                let info = view.as_ref().and_then(|v| v.file(section, name).cloned());
                (
                    format!("inquiries/{id}/{}/{name}", section.dir_name()),
                    info.as_ref().map(|i| i.object_id.clone()),
                    info.map(|i| i.size).unwrap_or(0),
                )
            }
            _ => (
                format!("inquiries/{id}/inquiry.json"),
                None,
                view.map(|v| v.json.len() as u64).unwrap_or(0),
            ),
        };
        Some(crate::audit::OpenedFile {
            path,
            inquiry_id: id.to_string(),
            object_id,
            size,
        })
    }

    async fn open_file(
        &self,
        id: &Arc<str>,
        section: Section,
        name: &str,
        kept: impl FnOnce(u64) -> bool,
    ) -> FsResult<Handle> {
        let view = self.meta.view_for_open(id).await?;
        let info = view.file(section, name).ok_or_else(|| {
            FsError::not_found(format_args!("{id}/{}/{name}", section.dir_name()))
        })?;
        let key = CacheKey {
            inquiry_id: id.to_string(),
            object_id: info.object_id.clone(),
            name: name.to_string(),
            size: info.size,
        };
        if info.size == 0 {
            return Ok(Handle::Bytes(Arc::new(Vec::new())));
        }
        self.readahead.opened(&key.digest());
        // A complete, verified entry opens on this thread: a local open, no waiting.
        if let Some(entry) = self.cache.pin_verified(&key) {
            let handle = match kept(entry.serial) {
                true => Some(Handle::Entry(KeptEntry::new(entry))),
                false => entry.open().map(|file| Handle::Cached(Arc::new(file))),
            };
            if let Some(handle) = handle {
                self.readahead.files_from(id);
                return Ok(handle);
            }
        }
        loop {
            let cache = self.cache.clone();
            let k = key.clone();
            if let Some(cached) = self
                .rt
                .spawn_blocking(move || cache.open(&k))
                .await
                .map_err(FsError::task("opening a cached file"))?
            {
                tracing::trace!(inquiry = %id, file = %name, "served from the cache");
                self.readahead.files_from(id);
                return Ok(Handle::Cached(Arc::new(cached)));
            }
            // The reader's own download first, then the read-ahead around it.
            if let Some(dl) = self.downloads.download_of(id, section, name, key.clone())? {
                self.readahead.files_from(id);
                return Ok(Handle::Streaming(dl));
            }
            // Cached in the meantime (a download finished since we looked): open that.
        }
    }

    /// Up to `size` bytes at `offset` of open file `fh`, as the FUSE layer answers them
    /// (a file range, or bytes).
    pub async fn read_data(&self, fh: u64, offset: u64, size: u32) -> FsResult<ReadData> {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        self.handles
            .read(&self.downloads, fh, offset, size, self.cfg.io_timeout)
            .await
    }

    /// The same bytes, in memory.
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        self.read_data(fh, offset, size).await?.into_bytes()
    }

    pub fn release(&self, fh: u64) {
        self.handles.release(fh);
    }
}

impl crate::changes::ChangeTarget for FsCore {
    fn is_offline(&self) -> bool {
        FsCore::is_offline(self)
    }

    async fn apply_event(&self, event: &Event) -> bool {
        FsCore::apply_event(self, event).await
    }

    async fn full_check(&self) -> FsResult<()> {
        FsCore::full_check(self).await
    }
}

/// Deltas reach the views through the core, which does not own the lister that takes them.
struct CoreDeltas(std::sync::Weak<FsCore>);

impl DeltaSink for CoreDeltas {
    fn apply<'a>(&'a self, planned: &'a Planned) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(core) = self.0.upgrade() {
                core.apply_delta(planned).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::inode::ROOT;
    use crate::testing::{core_prefetching, core_with, eventually, fileless};
    use personafs_client::testing::Call;
    use std::time::Duration;

    #[tokio::test]
    async fn forget_shrinks_the_inode_table_and_numbers_are_not_reused() {
        let api = fileless(3, "completed");
        let dir = tempfile::tempdir().unwrap();
        let core = core_with(api.clone(), dir.path(), CoreConfig::default());
        assert_eq!(core.inode_count(), 2);
        let inq = core.lookup(INQUIRIES, "inq_0001").await.unwrap();
        let json = core.lookup(inq.ino, "inquiry.json").await.unwrap();
        let doc = core.lookup(inq.ino, "document").await.unwrap();
        // Looked up twice: two references.
        assert_eq!(core.lookup(inq.ino, "document").await.unwrap().ino, doc.ino);
        assert_eq!(core.inode_count(), 5);

        core.forget(json.ino, 1);
        assert_eq!(core.inode_count(), 4);
        assert_eq!(
            crate::errno_of(&core.getattr(json.ino).await.unwrap_err()),
            libc::ENOENT
        );
        core.forget(doc.ino, 1);
        assert_eq!(core.inode_count(), 4, "one reference to document/ is left");
        core.forget(doc.ino, 1);
        assert_eq!(core.inode_count(), 3);

        // The path comes back with a new number; the old one stays unknown.
        let json2 = core.lookup(inq.ino, "inquiry.json").await.unwrap();
        assert!(json2.ino > doc.ino.max(json.ino));
        assert!(core.getattr(json2.ino).await.is_ok());
        // The root and inquiries/ are never forgotten.
        core.forget(ROOT, 10);
        core.forget(INQUIRIES, 10);
        assert!(core.getattr(ROOT).await.is_ok());
        assert!(core.getattr(INQUIRIES).await.is_ok());
    }

    #[tokio::test]
    async fn readdirplus_entries_count_as_references() {
        let api = fileless(4, "completed");
        let dir = tempfile::tempdir().unwrap();
        let core = core_with(api.clone(), dir.path(), CoreConfig::default());
        assert_eq!(
            core.inode_count(),
            2,
            "entries not answered yet take no inode"
        );
        let mut seen = Vec::new();
        core.dir_entries(INQUIRIES, 0, true, |e| {
            seen.push((e.name.to_string(), e.attr.ino));
            false
        })
        .await
        .unwrap();
        assert_eq!(seen.len(), 2 + 4);
        assert_eq!(&seen[0].0, ".");
        assert_eq!(&seen[1].0, "..");
        assert_eq!(core.inode_count(), 2 + 4);
        for (_, ino) in &seen[2..] {
            core.forget(*ino, 1);
        }
        assert_eq!(core.inode_count(), 2, "every answered entry was given back");
        // A full reply does not count the entry it could not take.
        let mut taken = 0;
        core.dir_entries(INQUIRIES, 2, true, |_| {
            taken += 1;
            taken > 1
        })
        .await
        .unwrap();
        assert_eq!(
            core.inode_count(),
            3,
            "only the one answered entry is referenced"
        );
        // A later offset pages through the listing taken at offset 0, kept for it alone
        // until the read past its end that closes every read.
        assert_eq!(core.dir_listings(), 1);
        let mut past_end = 0;
        core.dir_entries(INQUIRIES, 2 + 4, true, |_| {
            past_end += 1;
            false
        })
        .await
        .unwrap();
        assert_eq!(past_end, 0);
        assert_eq!(core.dir_listings(), 0);
    }

    #[tokio::test]
    async fn views_beyond_the_bound_leave_memory_and_are_retrieved_again() {
        let api = fileless(5, "completed");
        let dir = tempfile::tempdir().unwrap();
        let cfg = CoreConfig {
            max_views: 2,
            ..CoreConfig::default()
        };
        let core = core_with(api.clone(), dir.path(), cfg);
        // Looked up directly (no listing): each lookup is one retrieve.
        for i in 0..5 {
            core.lookup(INQUIRIES, &format!("inq_{i:04}"))
                .await
                .unwrap();
        }
        assert_eq!(api.calls(Call::Retrieve), 5);
        assert_eq!(core.view_count(), 2, "at most max_views views in memory");
        // A recent view is still at hand...
        let recent = core.lookup(INQUIRIES, "inq_0004").await.unwrap();
        assert_eq!(api.calls(Call::Retrieve), 5);
        // ...an evicted one is simply retrieved again, with the same inode.
        let first = core.lookup(INQUIRIES, "inq_0000").await.unwrap();
        assert_eq!(api.calls(Call::Retrieve), 6);
        assert_eq!(core.view_count(), 2);
        let json = core.lookup(first.ino, "inquiry.json").await.unwrap();
        assert!(json.size > 0);
        assert_ne!(first.ino, recent.ino);
    }

    #[tokio::test]
    async fn missing_inquiries_are_remembered_without_keeping_views() {
        let api = fileless(1, "completed");
        let dir = tempfile::tempdir().unwrap();
        let core = core_with(api.clone(), dir.path(), CoreConfig::default());
        for _ in 0..3 {
            let e = core.lookup(INQUIRIES, "inq_missing").await.unwrap_err();
            assert_eq!(crate::errno_of(&e), libc::ENOENT);
        }
        assert_eq!(
            api.calls(Call::Retrieve),
            1,
            "the negative cache answered the repeats"
        );
        assert_eq!(core.view_count(), 0);
        assert_eq!(core.inode_count(), 2);
    }

    #[tokio::test]
    async fn the_fast_path_answers_from_memory_or_not_at_all() {
        let api = fileless(2, "completed");
        let dir = tempfile::tempdir().unwrap();
        let core = core_with(api.clone(), dir.path(), CoreConfig::default());
        assert!(core.at_once(core.lookup(INQUIRIES, "inq_0000")).is_none());
        assert!(core.at_once(core.readdir(INQUIRIES)).is_none());
        assert_eq!(api.calls(Call::Retrieve), 0);
        let inq = core.lookup(INQUIRIES, "inq_0000").await.unwrap();
        let now = core
            .at_once(core.lookup(INQUIRIES, "inq_0000"))
            .unwrap()
            .unwrap();
        assert_eq!(now.ino, inq.ino);
        let e = core
            .at_once(core.lookup(inq.ino, "nothing"))
            .unwrap()
            .unwrap_err();
        assert_eq!(crate::errno_of(&e), libc::ENOENT);
        let json = core
            .at_once(core.lookup(inq.ino, "inquiry.json"))
            .unwrap()
            .unwrap();
        let e = core
            .at_once(core.lookup(json.ino, "x"))
            .unwrap()
            .unwrap_err();
        assert_eq!(crate::errno_of(&e), libc::ENOTDIR);
        assert_eq!(api.calls(Call::Retrieve), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_walk_after_the_metadata_ttl_reads_ahead_again() {
        let api = fileless(4, "pending");
        let retrieves = || api.calls(Call::Retrieve);
        let dir = tempfile::tempdir().unwrap();
        let ttl = Duration::from_secs(60);
        let mut cfg = CoreConfig {
            metadata_ttl: ttl,
            clock: crate::Clock::manual(),
            ..CoreConfig::default()
        };
        let clock = cfg.clock.clone();
        cfg.prefetch.inquiries_ahead = 2;
        let core = core_prefetching(api.clone(), dir.path(), cfg);
        core.readdir(INQUIRIES).await.unwrap();
        // Listed with their created-at: entering one asks nothing; its next two are read ahead.
        core.lookup(INQUIRIES, "inq_0000").await.unwrap();
        eventually("two inquiries read ahead", || retrieves() == 2).await;
        core.lookup(INQUIRIES, "inq_0000").await.unwrap();
        // A read-ahead started by this lookup is counted at once: its retrieves show once it ends.
        eventually("read-ahead idle", || core.readahead_idle()).await;
        assert_eq!(retrieves(), 2, "read ahead once within the TTL");
        // A second walk after the TTL: the neighbours' views are stale and are read ahead again.
        clock.advance(ttl);
        core.readdir(INQUIRIES).await.unwrap();
        core.lookup(INQUIRIES, "inq_0000").await.unwrap();
        eventually("the same two read ahead again", || retrieves() == 4).await;
    }
}
