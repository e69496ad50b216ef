//! Reading ahead of serial tools. `cp -r`, `rsync` or an image viewer stepping through
//! photos wait for one file at a time; the filesystem does not have to:
//! - entering an inquiry retrieves the next few inquiries of the listing in the background,
//!   so a tree walk does not pay one API round trip per directory;
//! - opening a file starts downloading the other files of its inquiry and of the next few
//!   inquiries, a few at a time.
//!
//! Bounds: at most `inquiries_ahead` retrieves ahead of the walk (each one the walk would make
//! anyway), at most `max_downloads` prefetch downloads at once, and at most `max_unread_bytes`
//! of prefetched data that nobody has opened yet. Prefetch only fills the cache: a file that
//! the cache cannot take is not prefetched. User reads never wait for a prefetch permit.
//! What was queued is remembered for the metadata TTL only: a walk after that reads ahead
//! again, and the memory holds no more than one TTL's worth of inquiries.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use personafs_client::clock::Clock;
use tokio::sync::Semaphore;

use crate::cache::{CacheKey, DiskCache};
use crate::config::PrefetchConfig;
use crate::downloads::Downloads;
use crate::metadata::listing::Lister;
use crate::metadata::view::FileInfo;
use crate::metadata::views::{Need, Views};
use personafs_client::Section;

/// Larger files are not read ahead: they would compete with what the user is reading.
const MAX_PREFETCH_FILE: u64 = 32 << 20;

/// How long a prefetched file counts against the budget if nobody opens it.
const UNREAD_MEMORY: Duration = Duration::from_secs(120);

/// When each inquiry was queued, and the same in time order (oldest first).
#[derive(Default)]
struct QueuedAt {
    by_id: HashMap<Arc<str>, Instant>,
    order: VecDeque<(Arc<str>, Instant)>,
}

/// Inquiries queued for read-ahead in the last `ttl`, forgotten after it.
pub(crate) struct Queued {
    ttl: Duration,
    at: Mutex<QueuedAt>,
    clock: Clock,
}

impl Queued {
    pub(crate) fn new(ttl: Duration, clock: Clock) -> Queued {
        Queued {
            ttl,
            at: Mutex::new(QueuedAt::default()),
            clock,
        }
    }

    /// Record `id` as queued now; `false` when it was queued within the TTL already.
    pub(crate) fn insert(&self, id: &Arc<str>) -> bool {
        let now = self.clock.now();
        let mut guard = self.at.lock();
        let QueuedAt { by_id, order } = &mut *guard;
        // Entries are recorded in time order: the expired ones are at the front.
        while let Some((old, t)) = order.front() {
            if now.duration_since(*t) < self.ttl {
                break;
            }
            if by_id.get(old) == Some(t) {
                by_id.remove(old);
            }
            order.pop_front();
        }
        if by_id.contains_key(id) {
            return false;
        }
        by_id.insert(id.clone(), now);
        order.push_back((id.clone(), now));
        true
    }

    pub(crate) fn remove(&self, id: &Arc<str>) {
        self.at.lock().by_id.remove(id);
    }

    /// Whether `id` was queued within the TTL (a read-only look: nothing is recorded).
    pub(crate) fn holds(&self, id: &Arc<str>) -> bool {
        let now = self.clock.now();
        (self.at.lock().by_id.get(id)).is_some_and(|t| now.duration_since(*t) < self.ttl)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.at.lock().by_id.len()
    }
}

pub(crate) struct Readahead {
    cfg: PrefetchConfig,
    rt: tokio::runtime::Handle,
    cache: Arc<DiskCache>,
    listing: Arc<Lister>,
    views: Arc<Views>,
    downloads: Arc<Downloads>,
    download_permits: Arc<Semaphore>,
    retrieve_permits: Arc<Semaphore>,
    /// Inquiries whose files were queued, and whose metadata was asked for.
    pub(crate) files_queued: Queued,
    pub(crate) metadata_queued: Queued,
    /// Prefetched files not opened yet: digest → (size, when).
    unread: Mutex<HashMap<String, (u64, Instant)>>,
    unread_bytes: AtomicU64,
    /// Name-order place of the last inquiry a window was taken from, and whether that
    /// window went by name (see `window`).
    last_entered: Mutex<Option<(usize, bool)>>,
    clock: Clock,
    /// Read-ahead tasks spawned and not finished (so a test can wait for them to end).
    tasks: Arc<AtomicUsize>,
}

/// Counts one read-ahead task while it lives.
struct Task(Arc<AtomicUsize>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Readahead {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        cfg: PrefetchConfig,
        metadata_ttl: Duration,
        rt: tokio::runtime::Handle,
        cache: Arc<DiskCache>,
        listing: Arc<Lister>,
        views: Arc<Views>,
        downloads: Arc<Downloads>,
        clock: Clock,
    ) -> Readahead {
        Readahead {
            download_permits: Arc::new(Semaphore::new(cfg.max_downloads.max(1))),
            retrieve_permits: Arc::new(Semaphore::new(cfg.inquiries_ahead.clamp(1, 8))),
            files_queued: Queued::new(metadata_ttl, clock.clone()),
            metadata_queued: Queued::new(metadata_ttl, clock.clone()),
            unread: Mutex::new(HashMap::new()),
            unread_bytes: AtomicU64::new(0),
            last_entered: Mutex::new(None),
            cfg,
            rt,
            cache,
            listing,
            views,
            downloads,
            clock,
            tasks: Arc::default(),
        }
    }

    /// Counted before it is spawned, so no task is ever running uncounted.
    fn task(&self) -> Task {
        self.tasks.fetch_add(1, Ordering::SeqCst);
        Task(self.tasks.clone())
    }

    /// No read-ahead task is running or waiting for a permit.
    #[cfg(test)]
    pub(crate) fn is_idle(&self) -> bool {
        self.tasks.load(Ordering::SeqCst) == 0
    }

    /// `id` and the `ahead` inquiries after it, in the order the walk is going: by name
    /// when the last inquiry entered before `id` was its predecessor by name (`ls -lR`,
    /// `rsync`), else in listing order (`find`, `cp -r`, and a walk's first step).
    fn window(&self, id: &Arc<str>, ahead: usize) -> Vec<Arc<str>> {
        let mut ids = vec![id.clone()];
        let Some(listing) = self.listing.current() else {
            return ids;
        };
        let (Some(pos), Some(rank)) = (listing.rows.position(id), listing.rows.rank(id)) else {
            return ids;
        };
        let by_name = {
            let mut last = self.last_entered.lock();
            let by_name = match *last {
                Some((r, mode)) if r == rank => mode, // the same inquiry again (its files)
                Some((r, _)) => r + 1 == rank,
                None => false,
            };
            *last = Some((rank, by_name));
            by_name
        };
        if by_name {
            ids.extend(listing.rows.after_by_name(rank, ahead));
        } else {
            ids.extend(listing.ids().iter().skip(pos + 1).take(ahead).cloned());
        }
        ids
    }

    /// A walk entered inquiry `id`: retrieve the next ones in the background.
    ///
    /// The window is taken here, in the order the walk enters inquiries, not in the task:
    /// tasks may run in another order (a runtime runs the last one spawned first), and a
    /// step seen out of order takes the window in listing order, reading ahead inquiries the
    /// walk reaches only minutes later (retrieved again then if not final).
    pub(crate) fn metadata_from(self: &Arc<Self>, id: &Arc<str>) {
        if !self.cfg.enabled {
            return;
        }
        tracing::trace!(inquiry = %id, "a walk entered the inquiry");
        let next: Vec<Arc<str>> = self
            .window(id, self.cfg.inquiries_ahead)
            .into_iter()
            .skip(1)
            .filter(|next| self.metadata_queued.insert(next))
            .collect();
        if next.is_empty() {
            return;
        }
        let (this, task) = (self.clone(), self.task());
        self.rt.spawn(async move {
            for next in next {
                let Ok(permit) = this.retrieve_permits.clone().acquire_owned().await else {
                    return;
                };
                let (views, task) = (this.views.clone(), this.task());
                this.rt.spawn(async move {
                    tracing::trace!(inquiry = %next, "reading ahead");
                    let _ = views.view(&next, Need::Metadata).await;
                    drop(permit);
                    drop(task);
                });
            }
            drop(task);
        });
    }

    /// A file of inquiry `id` was opened: download its siblings and the next inquiries' files.
    pub(crate) fn files_from(self: &Arc<Self>, id: &Arc<str>) {
        if !self.cfg.enabled {
            return;
        }
        // Taken now, in the order files are opened (see `metadata_from`).
        let mut window = self.window(id, self.cfg.inquiries_ahead);
        // A warm walk opens file after file of inquiries queued already: no task for them
        // (a warm open answers on the FUSE thread, and a spawn there wakes a runtime thread).
        window.retain(|inquiry| !self.files_queued.holds(inquiry));
        if window.is_empty() {
            return;
        }
        let (this, task) = (self.clone(), self.task());
        self.rt.spawn(async move {
            let _task = task;
            for inquiry in window {
                if !this.files_queued.insert(&inquiry) {
                    continue;
                }
                if !this.inquiry_files(&inquiry).await {
                    // Out of budget: let a later open try again.
                    this.files_queued.remove(&inquiry);
                    return;
                }
            }
        });
    }

    fn key_of(&self, id: &Arc<str>, name: &str, info: &FileInfo) -> CacheKey {
        CacheKey {
            inquiry_id: id.to_string(),
            object_id: info.object_id.clone(),
            name: name.to_string(),
            size: info.size,
        }
    }

    /// Whether read-ahead should fetch this file: not empty, not cached or under way, small.
    fn wanted(&self, id: &Arc<str>, (_, name): &(Section, Arc<str>), info: &FileInfo) -> bool {
        let key = self.key_of(id, name, info);
        info.size > 0
            && !self.cache.contains(&key)
            && !self.downloads.downloading(&key)
            // a big file is fetched when somebody asks for it
            && info.size <= (self.cache.limits().max_size / 4).min(MAX_PREFETCH_FILE)
    }

    /// Queue the downloads of one inquiry's files; `false` when the budget ran out.
    async fn inquiry_files(&self, id: &Arc<str>) -> bool {
        if !self.cache.is_loaded() {
            // Just started on a large cache: do not hold up the runtime waiting for its index.
            return false;
        }
        // URLs only when something is left to fetch: a view from the metadata store has none,
        // and an inquiry whose files are all cached must not cost a retrieve.
        let Ok(known) = self.views.view(id, Need::Metadata).await else {
            return true;
        };
        if !known.files.iter().any(|(k, info)| self.wanted(id, k, info)) {
            return true;
        }
        let Ok(view) = self.views.view(id, Need::Urls).await else {
            return true;
        };
        for (file, info) in &view.files {
            if !self.wanted(id, file, info) {
                continue;
            }
            // Redacted since the view was taken: nothing of it is fetched again.
            if self.cache.was_purged(id) {
                return true;
            }
            let (section, name) = file;
            let key = self.key_of(id, name, info);
            self.expire_unread();
            let budget = self.cfg.max_unread_bytes;
            if self.unread_bytes.load(Ordering::Relaxed) + info.size > budget {
                return false;
            }
            let Ok(permit) = self.download_permits.clone().acquire_owned().await else {
                return false;
            };
            let digest = key.digest();
            self.unread
                .lock()
                .insert(digest.clone(), (info.size, self.clock.now()));
            self.unread_bytes.fetch_add(info.size, Ordering::Relaxed);
            match self.downloads.download_of(id, *section, name, key) {
                Ok(Some(dl)) => {
                    let task = self.task();
                    self.rt.spawn(async move {
                        dl.finished().await;
                        drop(permit);
                        drop(task);
                    });
                }
                // Read (and cached) while we waited for a permit.
                Ok(None) => self.forget_unread(&digest),
                Err(e) => {
                    tracing::debug!(inquiry = %id, file = %name, "prefetch not started: {e}");
                    self.forget_unread(&digest);
                }
            }
        }
        true
    }

    fn forget_unread(&self, digest: &str) {
        if let Some((size, _)) = self.unread.lock().remove(digest) {
            self.unread_bytes.fetch_sub(size, Ordering::Relaxed);
        }
    }

    /// Read-ahead nobody opened for a while was a wrong guess, not a debt: stop counting it,
    /// so one skipped directory does not stop prefetching for good.
    fn expire_unread(&self) {
        let mut unread = self.unread.lock();
        let before: u64 = unread.values().map(|(s, _)| s).sum();
        unread.retain(|_, (_, at)| self.clock.since(*at) < UNREAD_MEMORY);
        let after: u64 = unread.values().map(|(s, _)| s).sum();
        self.unread_bytes
            .fetch_sub(before - after, Ordering::Relaxed);
    }

    /// A user opened this file: it no longer counts as read-ahead nobody asked for.
    pub(crate) fn opened(&self, digest: &str) {
        if self.cfg.enabled {
            self.forget_unread(digest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_inquiries_are_forgotten_after_the_ttl() {
        let clock = Clock::manual();
        let q = Queued::new(Duration::from_secs(60), clock.clone());
        let a: Arc<str> = Arc::from("inq_a");
        assert!(q.insert(&a));
        assert!(!q.insert(&a), "queued once within the TTL");
        clock.advance(Duration::from_secs(61));
        assert!(q.insert(&Arc::from("inq_b")));
        assert_eq!(q.len(), 1, "the expired entry left memory");
        assert!(q.insert(&a), "queued again after the TTL");
    }

    #[test]
    fn a_removed_entry_can_be_queued_again_at_once() {
        let q = Queued::new(Duration::from_secs(60), Clock::host());
        let a: Arc<str> = Arc::from("inq_a");
        assert!(q.insert(&a));
        q.remove(&a);
        assert!(q.insert(&a));
        assert_eq!(q.len(), 1);
    }
}
