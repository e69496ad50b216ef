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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::core::{FsCore, Need};
use crate::cache::CacheKey;

/// Larger files are not read ahead: they would compete with what the user is reading.
const MAX_PREFETCH_FILE: u64 = 32 << 20;

/// How long a prefetched file counts against the budget if nobody opens it.
const UNREAD_MEMORY: Duration = Duration::from_secs(120);

/// How far and how much to read ahead.
#[derive(Debug, Clone)]
pub struct PrefetchConfig {
    pub enabled: bool,
    /// Inquiries after the current one (in listing order) to read ahead.
    pub inquiries_ahead: usize,
    /// Prefetch downloads in flight at once.
    pub max_downloads: usize,
    /// Bytes downloaded ahead that nobody has opened yet.
    pub max_unread_bytes: u64,
}

impl Default for PrefetchConfig {
    fn default() -> Self {
        PrefetchConfig {
            enabled: true,
            inquiries_ahead: 8,
            max_downloads: 8,
            max_unread_bytes: 256 << 20,
        }
    }
}

/// What the read-ahead has started, so nothing is started twice.
pub(crate) struct Prefetcher {
    downloads: Arc<Semaphore>,
    retrieves: Arc<Semaphore>,
    /// Inquiries whose files were queued, and whose metadata was asked for.
    files_queued: Mutex<HashSet<Arc<str>>>,
    metadata_queued: Mutex<HashSet<Arc<str>>>,
    /// Prefetched files not opened yet: digest → (size, when).
    unread: Mutex<HashMap<String, (u64, Instant)>>,
    unread_bytes: AtomicU64,
}

impl Prefetcher {
    pub(crate) fn new(cfg: &PrefetchConfig) -> Prefetcher {
        Prefetcher {
            downloads: Arc::new(Semaphore::new(cfg.max_downloads.max(1))),
            retrieves: Arc::new(Semaphore::new(cfg.inquiries_ahead.clamp(1, 8))),
            files_queued: Mutex::new(HashSet::new()),
            metadata_queued: Mutex::new(HashSet::new()),
            unread: Mutex::new(HashMap::new()),
            unread_bytes: AtomicU64::new(0),
        }
    }
}

impl FsCore {
    /// `id` and the inquiries after it in the listing, `ahead` of them.
    async fn window(&self, id: &Arc<str>, ahead: usize) -> Vec<Arc<str>> {
        let mut ids = vec![id.clone()];
        if let Some(listing) = self.cached_listing().await
            && let Some(pos) = listing.iter().position(|x| x == id)
        {
            ids.extend(listing.iter().skip(pos + 1).take(ahead).cloned());
        }
        ids
    }

    /// A walk entered inquiry `id`: retrieve the next ones in the background.
    pub(crate) fn prefetch_metadata_from(self: &Arc<Self>, id: &Arc<str>) {
        if !self.prefetch_cfg.enabled {
            return;
        }
        let core = self.clone();
        let id = id.clone();
        tokio::spawn(async move {
            for next in core
                .window(&id, core.prefetch_cfg.inquiries_ahead)
                .await
                .into_iter()
                .skip(1)
            {
                if !core.prefetcher.metadata_queued.lock().insert(next.clone()) {
                    continue;
                }
                let Ok(permit) = core.prefetcher.retrieves.clone().acquire_owned().await else {
                    return;
                };
                let c = core.clone();
                tokio::spawn(async move {
                    let _ = c.view(&next, Need::Metadata).await;
                    drop(permit);
                });
            }
        });
    }

    /// A file of inquiry `id` was opened: download its siblings and the next inquiries' files.
    pub(crate) fn prefetch_files_from(self: &Arc<Self>, id: &Arc<str>) {
        if !self.prefetch_cfg.enabled {
            return;
        }
        let core = self.clone();
        let id = id.clone();
        tokio::spawn(async move {
            for inquiry in core.window(&id, core.prefetch_cfg.inquiries_ahead).await {
                if !core.prefetcher.files_queued.lock().insert(inquiry.clone()) {
                    continue;
                }
                if !core.prefetch_inquiry_files(&inquiry).await {
                    // Out of budget: let a later open try again.
                    core.prefetcher.files_queued.lock().remove(&inquiry);
                    return;
                }
            }
        });
    }

    /// Queue the downloads of one inquiry's files; `false` when the budget ran out.
    async fn prefetch_inquiry_files(self: &Arc<Self>, id: &Arc<str>) -> bool {
        if !self.cache.is_loaded() {
            // Just started on a large cache: do not hold up the runtime waiting for its index.
            return false;
        }
        let Ok(view) = self.view(id, Need::Urls).await else {
            return true;
        };
        for ((section, name), info) in &view.files {
            let key = CacheKey {
                inquiry_id: id.to_string(),
                object_id: info.object_id.clone(),
                name: name.to_string(),
                size: info.size,
            };
            if info.size == 0 || self.cache.contains(&key) || self.downloading(&key) {
                continue;
            }
            if info.size > (self.cache.limits().max_size / 4).min(MAX_PREFETCH_FILE) {
                continue; // a big file is fetched when somebody asks for it
            }
            self.expire_unread();
            let budget = self.prefetch_cfg.max_unread_bytes;
            if self.prefetcher.unread_bytes.load(Ordering::Relaxed) + info.size > budget {
                return false;
            }
            let Ok(permit) = self.prefetcher.downloads.clone().acquire_owned().await else {
                return false;
            };
            let digest = key.digest();
            self.prefetcher
                .unread
                .lock()
                .insert(digest.clone(), (info.size, Instant::now()));
            self.prefetcher
                .unread_bytes
                .fetch_add(info.size, Ordering::Relaxed);
            match self.download_of(id, *section, name, key) {
                Ok(Some(dl)) => {
                    tokio::spawn(async move {
                        dl.finished().await;
                        drop(permit);
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

    fn downloading(&self, key: &CacheKey) -> bool {
        self.downloads
            .lock()
            .get(&key.digest())
            .is_some_and(|w| w.strong_count() > 0)
    }

    fn forget_unread(&self, digest: &str) {
        if let Some((size, _)) = self.prefetcher.unread.lock().remove(digest) {
            self.prefetcher
                .unread_bytes
                .fetch_sub(size, Ordering::Relaxed);
        }
    }

    /// Read-ahead nobody opened for a while was a wrong guess, not a debt: stop counting it,
    /// so one skipped directory does not stop prefetching for good.
    fn expire_unread(&self) {
        let mut unread = self.prefetcher.unread.lock();
        let before: u64 = unread.values().map(|(s, _)| s).sum();
        unread.retain(|_, (_, at)| at.elapsed() < UNREAD_MEMORY);
        let after: u64 = unread.values().map(|(s, _)| s).sum();
        self.prefetcher
            .unread_bytes
            .fetch_sub(before - after, Ordering::Relaxed);
    }

    /// A user opened this file: it no longer counts as read-ahead nobody asked for.
    pub(crate) fn unread_opened(&self, key: &CacheKey) {
        if self.prefetch_cfg.enabled {
            self.forget_unread(&key.digest());
        }
    }
}
