//! The async core: inodes, listings and attributes, as plain data (no FUSE types).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use parking_lot::Mutex;

use super::inode::{INQUIRIES, InodeTable, Node, ROOT};
use super::prefetch::{PrefetchConfig, Prefetcher};
use super::reader::{Download, Handle};
use super::view::InquiryView;
use crate::cache::DiskCache;
use personafs_client::{Error, Result};
use personafs_client::{InquiryPage, ListFilters, PersonaApi, Section, files_of};

/// How the core behaves; see `MountConfig` for what each means to a user.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub filters: ListFilters,
    pub metadata_ttl: Duration,
    pub negative_ttl: Duration,
    pub file_url_lifetime: Duration,
    /// Fraction of the lifetime kept as a safety margin before a URL counts as stale.
    pub url_refresh_margin: f64,
    pub uid: u32,
    pub gid: u32,
    pub file_mode: u16,
    pub dir_mode: u16,
    /// How long a read may wait for bytes from the network before it fails with EIO.
    pub io_timeout: Duration,
    pub prefetch: PrefetchConfig,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            filters: ListFilters::default(),
            metadata_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(10),
            file_url_lifetime: Duration::from_secs(6 * 3600),
            url_refresh_margin: 0.10,
            // SAFETY: geteuid and getegid cannot fail and touch no memory.
            uid: unsafe { libc::geteuid() },
            // SAFETY: as above.
            gid: unsafe { libc::getegid() },
            file_mode: 0o444,
            dir_mode: 0o555,
            io_timeout: Duration::from_secs(60),
            prefetch: PrefetchConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// Attributes of one inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub kind: Kind,
    pub size: u64,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: SystemTime,
}

#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: Arc<str>,
    pub attr: Attr,
}

/// What a caller needs of an inquiry's view.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Need {
    /// Names, sizes, times: fresh within the metadata TTL (forever for a final inquiry).
    Metadata,
    /// URLs that are still good for a while.
    Urls,
    /// A view retrieved after this instant (the URLs of an older one were refused).
    NewerThan(Instant),
}

struct Listing {
    ids: Arc<Vec<Arc<str>>>,
    at: Instant,
}

#[derive(Default)]
struct Cell {
    /// The last view; the lock makes concurrent refreshes of one inquiry a single retrieve.
    view: tokio::sync::Mutex<Option<Arc<InquiryView>>>,
    /// Until when "no such inquiry" is believed without asking again.
    missing_until: Mutex<Option<Instant>>,
}

/// Whether a metadata request may wait for Persona (the async core) or must be answered from
/// memory at once (the FUSE thread's fast path, which gets `Error::WouldBlock` otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Yes,
    No,
}

/// Run a `Wait::No` request to its end on this thread: it never waits, so one poll does.
fn at_once<T>(fut: impl std::future::Future<Output = Result<T>>) -> Option<Result<T>> {
    match futures::FutureExt::now_or_never(fut) {
        Some(Err(Error::WouldBlock)) | None => None,
        other => other,
    }
}

/// Counters of what the core did, for tests and diagnostics.
#[derive(Debug, Default)]
pub struct CoreCounters {
    /// `read` requests that reached personafs (passthrough reads do not).
    pub reads: AtomicU64,
    /// Opens answered with a kernel backing file (FUSE passthrough).
    pub passthrough_opens: AtomicU64,
    /// Downloads started (each shared by all openers of its file).
    pub downloads: AtomicU64,
    /// Reads far ahead of a download, served by their own ranged requests.
    pub far_reads: AtomicU64,
}

pub struct FsCore {
    pub(crate) api: Arc<dyn PersonaApi>,
    pub(crate) cache: Arc<DiskCache>,
    pub(crate) cfg: CoreConfig,
    inodes: Mutex<InodeTable>,
    listing: tokio::sync::Mutex<Option<Arc<Listing>>>,
    /// A first listing page fetched before mounting (the key check), used once if fresh.
    seed_page: Mutex<Option<(InquiryPage, Instant)>>,
    /// `created-at` of every inquiry seen in a listing or a retrieve.
    created: Mutex<HashMap<Arc<str>, SystemTime>>,
    cells: Mutex<HashMap<Arc<str>, Arc<Cell>>>,
    pub(crate) downloads: Mutex<HashMap<String, std::sync::Weak<Download>>>,
    pub(crate) handles: Mutex<HashMap<u64, Arc<Handle>>>,
    pub(crate) next_fh: AtomicU64,
    mounted_at: SystemTime,
    pub counters: CoreCounters,
    pub(crate) prefetch_cfg: PrefetchConfig,
    pub(crate) prefetcher: Prefetcher,
}

/// A name that could be an inquiry id; anything else is ENOENT without asking Persona.
fn plausible_inquiry_id(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with("inq_")
        && name[4..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl FsCore {
    pub fn new(api: Arc<dyn PersonaApi>, cache: Arc<DiskCache>, cfg: CoreConfig) -> Arc<FsCore> {
        Arc::new(FsCore {
            prefetch_cfg: cfg.prefetch.clone(),
            prefetcher: Prefetcher::new(&cfg.prefetch),
            api,
            cache,
            cfg,
            inodes: Mutex::new(InodeTable::default()),
            listing: tokio::sync::Mutex::new(None),
            seed_page: Mutex::new(None),
            created: Mutex::new(HashMap::new()),
            cells: Mutex::new(HashMap::new()),
            downloads: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            mounted_at: SystemTime::now(),
            counters: CoreCounters::default(),
        })
    }

    pub(crate) fn node(&self, ino: u64) -> Result<Node> {
        self.inodes
            .lock()
            .get(ino)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("inode {ino}")))
    }

    fn ino(&self, node: Node) -> u64 {
        self.inodes.lock().ino_of(node)
    }

    pub fn inode_count(&self) -> usize {
        self.inodes.lock().len()
    }

    fn dir_attr(&self, ino: u64, subdirs: u32, mtime: SystemTime) -> Attr {
        Attr {
            ino,
            kind: Kind::Dir,
            size: 0,
            perm: self.cfg.dir_mode,
            nlink: 2 + subdirs,
            uid: self.cfg.uid,
            gid: self.cfg.gid,
            mtime,
        }
    }

    fn file_attr(&self, ino: u64, size: u64, mtime: SystemTime) -> Attr {
        Attr {
            ino,
            kind: Kind::File,
            size,
            perm: self.cfg.file_mode,
            nlink: 1,
            uid: self.cfg.uid,
            gid: self.cfg.gid,
            mtime,
        }
    }

    fn cell(&self, id: &Arc<str>) -> Arc<Cell> {
        self.cells.lock().entry(id.clone()).or_default().clone()
    }

    fn url_budget(&self) -> Duration {
        self.cfg
            .file_url_lifetime
            .mul_f64((1.0 - self.cfg.url_refresh_margin).clamp(0.0, 1.0))
    }

    /// The inquiry's view if it is fresh for metadata and nobody is refreshing it right now;
    /// never waits.
    pub(crate) fn fresh_view_now(&self, id: &Arc<str>) -> Option<Arc<InquiryView>> {
        let cell = self.cells.lock().get(id)?.clone();
        let slot = cell.view.try_lock().ok()?;
        let view = slot.as_ref()?;
        self.is_fresh(view, Need::Metadata).then(|| view.clone())
    }

    /// Whether `view` is good enough for `need`, without asking Persona again.
    fn is_fresh(&self, view: &InquiryView, need: Need) -> bool {
        let age = view.fetched_at.elapsed();
        match need {
            Need::Metadata if !view.complete => age < self.cfg.negative_ttl,
            Need::Metadata => view.is_final() || age < self.cfg.metadata_ttl,
            Need::Urls => age < self.url_budget(),
            Need::NewerThan(t) => view.fetched_at > t,
        }
    }

    /// The inquiry's view, retrieving it again when `need` asks for fresher data. Readers
    /// of one inquiry share one retrieve; different inquiries refresh in parallel.
    pub(crate) async fn view(&self, id: &Arc<str>, need: Need) -> Result<Arc<InquiryView>> {
        let cell = self.cell(id);
        if let Some(until) = *cell.missing_until.lock()
            && Instant::now() < until
        {
            return Err(Error::NotFound(format!("inquiry {id}")));
        }
        let mut slot = cell.view.lock().await;
        if let Some(view) = slot.as_ref()
            && self.is_fresh(view, need)
        {
            return Ok(view.clone());
        }
        match self.retrieve(id, slot.as_deref()).await {
            Ok(view) => {
                self.created.lock().insert(id.clone(), view.created);
                *slot = Some(view.clone());
                Ok(view)
            }
            Err(e) => {
                if matches!(e.errno(), libc::ENOENT) {
                    *cell.missing_until.lock() = Some(Instant::now() + self.cfg.negative_ttl);
                    *slot = None;
                    return Err(e);
                }
                tracing::warn!(inquiry = %id, status = ?e.status(), "retrieve failed: {e}");
                // Names and sizes do not go bad: serve the last view rather than an error.
                match (need, slot.as_ref()) {
                    (Need::Metadata, Some(old)) => Ok(old.clone()),
                    _ => Err(e),
                }
            }
        }
    }

    async fn retrieve(&self, id: &str, previous: Option<&InquiryView>) -> Result<Arc<InquiryView>> {
        let fetched_at = Instant::now();
        tracing::debug!(inquiry = %id, "retrieving inquiry");
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
        let view = Arc::new(view);
        tracing::debug!(inquiry = %id, files = view.files.len(), status = ?view.status,
            redacted = view.redacted, "inquiry retrieved");
        if view.redacted {
            let cache = self.cache.clone();
            let id = id.to_string();
            let purged = tokio::task::spawn_blocking(move || cache.purge_inquiry(&id))
                .await
                .unwrap_or(0);
            if purged > 0 {
                tracing::info!(inquiry = %view.id, purged, "inquiry is redacted; its cached files were deleted");
            }
        }
        Ok(view)
    }

    /// The view for metadata: waiting for Persona if need be, or only one at hand.
    async fn meta_view(&self, id: &Arc<str>, wait: Wait) -> Result<Arc<InquiryView>> {
        match wait {
            Wait::Yes => self.view(id, Need::Metadata).await,
            Wait::No => self.fresh_view_now(id).ok_or(Error::WouldBlock),
        }
    }

    /// The listing: taken again when stale, or only a fresh one at hand.
    async fn listing_with(&self, wait: Wait) -> Result<Arc<Listing>> {
        match wait {
            Wait::Yes => self.listing().await,
            Wait::No => {
                let slot = self.listing.try_lock().map_err(|_| Error::WouldBlock)?;
                slot.as_ref()
                    .filter(|l| l.at.elapsed() < self.cfg.metadata_ttl)
                    .cloned()
                    .ok_or(Error::WouldBlock)
            }
        }
    }

    /// The ids under `inquiries/`, through the list endpoint, cached for the metadata TTL.
    async fn listing(&self) -> Result<Arc<Listing>> {
        let mut slot = self.listing.lock().await;
        if let Some(l) = slot.as_ref()
            && l.at.elapsed() < self.cfg.metadata_ttl
        {
            return Ok(l.clone());
        }
        match self.list_all().await {
            Ok(l) => {
                let l = Arc::new(l);
                *slot = Some(l.clone());
                Ok(l)
            }
            Err(e) => {
                tracing::warn!(status = ?e.status(), "listing inquiries failed: {e}");
                slot.clone().ok_or(e)
            }
        }
    }

    /// The listing's ids if one was taken already (never asks the API).
    pub(crate) async fn cached_listing(&self) -> Option<Arc<Vec<Arc<str>>>> {
        self.listing.lock().await.as_ref().map(|l| l.ids.clone())
    }

    /// Hand over the first listing page (fetched with page size 100 before mounting), so the
    /// first listing does not ask for it again.
    pub fn seed_listing(&self, page: InquiryPage) {
        *self.seed_page.lock() = Some((page, Instant::now()));
    }

    async fn list_all(&self) -> Result<Listing> {
        use futures::TryStreamExt;
        let seed = self
            .seed_page
            .lock()
            .take()
            .filter(|(_, at)| at.elapsed() < self.cfg.metadata_ttl);
        let at = seed
            .as_ref()
            .map(|(_, at)| *at)
            .unwrap_or_else(Instant::now);
        tracing::debug!(filters = ?self.cfg.filters, "listing inquiries");
        let summaries: Vec<_> = personafs_client::list_stream_from(
            self.api.as_ref(),
            &self.cfg.filters,
            100,
            seed.map(|(page, _)| page),
        )
        .try_collect()
        .await?;
        tracing::debug!(count = summaries.len(), "inquiries listed");
        let mut ids = Vec::with_capacity(summaries.len());
        let mut seen = HashSet::new();
        let mut created = self.created.lock();
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
            at,
        })
    }

    fn created_of(&self, id: &Arc<str>) -> Option<SystemTime> {
        self.created.lock().get(id).copied()
    }

    async fn inquiry_dir_attr(&self, id: &Arc<str>, wait: Wait) -> Result<Attr> {
        let created = match self.created_of(id) {
            Some(c) => c,
            None => self.meta_view(id, wait).await?.created,
        };
        Ok(self.dir_attr(self.ino(Node::Inquiry(id.clone())), 2, created))
    }

    pub async fn getattr(&self, ino: u64) -> Result<Attr> {
        self.getattr_with(ino, Wait::Yes).await
    }

    /// `getattr` from memory, or `None` when it needs to wait.
    pub fn getattr_now(&self, ino: u64) -> Option<Result<Attr>> {
        at_once(self.getattr_with(ino, Wait::No))
    }

    async fn getattr_with(&self, ino: u64, wait: Wait) -> Result<Attr> {
        match self.node(ino)? {
            Node::Root => Ok(self.dir_attr(ROOT, 1, self.mounted_at)),
            Node::Inquiries => {
                let n = match self.listing_with(wait).await {
                    Err(Error::WouldBlock) => return Err(Error::WouldBlock),
                    l => l.map(|l| l.ids.len()).unwrap_or(0),
                };
                Ok(self.dir_attr(INQUIRIES, n as u32, self.mounted_at))
            }
            Node::Inquiry(id) => self.inquiry_dir_attr(&id, wait).await,
            Node::InquiryJson(id) => {
                let view = self.meta_view(&id, wait).await?;
                Ok(self.file_attr(ino, view.json.len() as u64, view.created))
            }
            Node::Section(id, _) => {
                let created = match self.created_of(&id) {
                    Some(c) => c,
                    None => self.meta_view(&id, wait).await?.created,
                };
                Ok(self.dir_attr(ino, 0, created))
            }
            Node::File(id, section, name) => {
                let view = self.meta_view(&id, wait).await?;
                let f = view.file(section, &name).ok_or_else(|| {
                    Error::NotFound(format!("{id}/{}/{name}", section.dir_name()))
                })?;
                Ok(self.file_attr(ino, f.size, f.mtime))
            }
        }
    }

    pub async fn lookup(self: &Arc<Self>, parent: u64, name: &str) -> Result<Attr> {
        self.lookup_with(parent, name, Wait::Yes).await
    }

    /// `lookup` from memory, or `None` when it needs to wait.
    pub fn lookup_now(self: &Arc<Self>, parent: u64, name: &str) -> Option<Result<Attr>> {
        at_once(self.lookup_with(parent, name, Wait::No))
    }

    async fn lookup_with(self: &Arc<Self>, parent: u64, name: &str, wait: Wait) -> Result<Attr> {
        let missing = || Error::NotFound(name.to_string());
        match self.node(parent)? {
            Node::Root if name == "inquiries" => self.getattr_with(INQUIRIES, wait).await,
            Node::Inquiries if plausible_inquiry_id(name) => {
                let id: Arc<str> = Arc::from(name);
                if self.created_of(&id).is_none() {
                    // Not listed (yet): any id can be looked up directly, one retrieve.
                    self.meta_view(&id, wait).await?;
                }
                self.prefetch_metadata_from(&id);
                self.inquiry_dir_attr(&id, wait).await
            }
            Node::Inquiry(id) => {
                let node = match name {
                    "inquiry.json" => Node::InquiryJson(id),
                    "document" => Node::Section(id, Section::Document),
                    "selfie" => Node::Section(id, Section::Selfie),
                    _ => return Err(missing()),
                };
                let ino = self.ino(node);
                self.getattr_with(ino, wait).await
            }
            Node::Section(id, section) => {
                let view = self.meta_view(&id, wait).await?;
                let (name, f) = view
                    .section(section)
                    .find(|(n, _)| &***n == name)
                    .ok_or_else(missing)?;
                let ino = self.ino(Node::File(id.clone(), section, name.clone()));
                Ok(self.file_attr(ino, f.size, f.mtime))
            }
            Node::File(..) | Node::InquiryJson(_) => {
                Err(Error::Io(std::io::Error::from_raw_os_error(libc::ENOTDIR)))
            }
            _ => Err(missing()),
        }
    }

    /// Every entry of a directory, with attributes (for readdirplus), without `.`/`..`.
    pub async fn readdir(self: &Arc<Self>, ino: u64) -> Result<Vec<DirEntry>> {
        self.readdir_with(ino, Wait::Yes).await
    }

    /// `readdir` from memory, or `None` when it needs to wait.
    pub fn readdir_now(self: &Arc<Self>, ino: u64) -> Option<Result<Vec<DirEntry>>> {
        at_once(self.readdir_with(ino, Wait::No))
    }

    async fn readdir_with(self: &Arc<Self>, ino: u64, wait: Wait) -> Result<Vec<DirEntry>> {
        let entry = |name: &str, attr| DirEntry {
            name: Arc::from(name),
            attr,
        };
        match self.node(ino)? {
            Node::Root => Ok(vec![entry(
                "inquiries",
                self.getattr_with(INQUIRIES, wait).await?,
            )]),
            Node::Inquiries => {
                let listing = self.listing_with(wait).await?;
                let created = self.created.lock().clone();
                let mut inodes = self.inodes.lock();
                Ok(listing
                    .ids
                    .iter()
                    .map(|id| DirEntry {
                        name: id.clone(),
                        attr: self.dir_attr(
                            inodes.ino_of(Node::Inquiry(id.clone())),
                            2,
                            created.get(id).copied().unwrap_or(UNIX_EPOCH),
                        ),
                    })
                    .collect())
            }
            Node::Inquiry(id) => {
                // Read-ahead first, so the neighbours' retrieves overlap this one (it queues
                // each inquiry once, so a fast path that falls back costs nothing twice).
                self.prefetch_metadata_from(&id);
                let view = self.meta_view(&id, wait).await?;
                let mut inodes = self.inodes.lock();
                let json = inodes.ino_of(Node::InquiryJson(id.clone()));
                let doc = inodes.ino_of(Node::Section(id.clone(), Section::Document));
                let selfie = inodes.ino_of(Node::Section(id.clone(), Section::Selfie));
                Ok(vec![
                    entry(
                        "inquiry.json",
                        self.file_attr(json, view.json.len() as u64, view.created),
                    ),
                    entry("document", self.dir_attr(doc, 0, view.created)),
                    entry("selfie", self.dir_attr(selfie, 0, view.created)),
                ])
            }
            Node::Section(id, section) => {
                let view = self.meta_view(&id, wait).await?;
                let mut inodes = self.inodes.lock();
                Ok(view
                    .section(section)
                    .map(|(name, f)| DirEntry {
                        name: name.clone(),
                        attr: self.file_attr(
                            inodes.ino_of(Node::File(id.clone(), section, name.clone())),
                            f.size,
                            f.mtime,
                        ),
                    })
                    .collect())
            }
            Node::File(..) | Node::InquiryJson(_) => {
                Err(Error::Io(std::io::Error::from_raw_os_error(libc::ENOTDIR)))
            }
        }
    }

    /// Attributes good enough for `.` and `..` entries (the kernel does not keep them).
    pub fn dir_attr_of(&self, ino: u64) -> Attr {
        self.dir_attr(ino, 0, self.mounted_at)
    }

    /// The parent of a directory, for `..`.
    pub fn parent_of(&self, ino: u64) -> u64 {
        match self.node(ino) {
            Ok(Node::Inquiry(_)) => INQUIRIES,
            Ok(Node::Section(id, _)) => self.ino(Node::Inquiry(id)),
            _ => ROOT,
        }
    }
}
