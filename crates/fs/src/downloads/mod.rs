//! Downloads: the registry of downloads in progress (one per file, shared by every opener),
//! each fetched with URLs refreshed before they expire and once more when the files host
//! refuses one anyway, resuming from the byte reached; then committed to the cache. Far
//! reads fetch their own blocks beside a download (far_read.rs).
//!
//! A redaction stops the inquiry's downloads before its files are deleted (the cache's purge
//! hook): each request is dropped at once, its temp file (deleted by the purge) gets no more
//! bytes, and its readers get ESTALE, as every open handle of a file that is gone.

mod download;
mod far_read;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::watch;

pub(crate) use self::download::Download;
pub(crate) use self::download::read_exact_at;
use self::download::{Progress, ProgressSink};
use self::far_read::FarBlocks;
pub(crate) use self::far_read::is_far;
use crate::cache::{CacheKey, Checksum, DiskCache, TempEntry};
use crate::counters::Counters;
use crate::error::{FsError, FsResult};
use crate::metadata::views::{Need, Views};
use personafs_client::{Error, PersonaApi, Section};

/// The files host refused a signed URL: it went bad earlier than we thought, or the file is
/// gone from the host (deleted, redacted). A fresh retrieve tells which.
fn url_refused(e: &Error) -> bool {
    e.is_url_expired() || files_host_not_found(e)
}

fn files_host_not_found(e: &Error) -> bool {
    matches!(
        e,
        Error::Http {
            host: personafs_client::error::Host::Files,
            status: 404,
            ..
        }
    )
}

pub(crate) struct Downloads {
    api: Arc<dyn PersonaApi>,
    cache: Arc<DiskCache>,
    views: Arc<Views>,
    rt: tokio::runtime::Handle,
    counters: Arc<Counters>,
    /// Downloads in progress by cache-key digest; each leaves when it ends.
    registry: Arc<Registry>,
}

type Registry = Mutex<HashMap<String, Weak<Download>>>;

/// What a reader of a download stopped by a redaction gets: ESTALE, as every open handle of
/// a file that is gone (SEMANTICS, errno); a new open finds no such file.
fn redacted(id: &str) -> FsError {
    FsError::gone(format_args!("inquiry {id} (redacted)"))
}

impl Downloads {
    pub(crate) fn new(
        api: Arc<dyn PersonaApi>,
        cache: Arc<DiskCache>,
        views: Arc<Views>,
        rt: tokio::runtime::Handle,
        counters: Arc<Counters>,
    ) -> Downloads {
        let registry: Arc<Registry> = Arc::default();
        // A redaction stops the inquiry's downloads before its files are deleted.
        let weak = Arc::downgrade(&registry);
        cache.on_purge(move |id| {
            if let Some(registry) = weak.upgrade() {
                stop_downloads_of(&registry, id);
            }
        });
        Downloads {
            api,
            cache,
            views,
            rt,
            counters,
            registry,
        }
    }

    /// Downloads registered now (fetching, or checksummed and cached after their body).
    pub(crate) fn registered(&self) -> usize {
        self.registry.lock().len()
    }

    /// Whether a download of this file is in progress.
    pub(crate) fn downloading(&self, key: &CacheKey) -> bool {
        self.registry
            .lock()
            .get(&key.digest())
            .is_some_and(|w| w.strong_count() > 0)
    }

    /// The download of a file: the one in progress, or a new one; `None` when there is none
    /// because the file is in the cache now.
    pub(crate) fn download_of(
        self: &Arc<Self>,
        id: &Arc<str>,
        section: Section,
        name: &str,
        key: CacheKey,
    ) -> FsResult<Option<Arc<Download>>> {
        let digest = key.digest();
        let existing = |registry: &HashMap<String, Weak<Download>>| {
            registry.get(&digest).and_then(|w| w.upgrade())
        };
        if let Some(dl) = existing(&self.registry.lock()) {
            return Ok(Some(dl));
        }
        // A download is committed to the cache before it is dropped: with none alive, a
        // cached entry is complete, and fetching it again would be a second download.
        if self.cache.contains(&key) {
            return Ok(None);
        }
        // Reserving room may evict files: disk work, done without holding the registry.
        let temp = self.cache.begin(&key)?;
        let mut registry = self.registry.lock();
        if let Some(dl) = existing(&registry) {
            return Ok(Some(dl)); // another opener won the race; our temp file goes away unused
        }
        let dl = Arc::new(Download {
            file: temp.file.try_clone()?,
            size: key.size,
            progress: watch::Sender::new(Progress::default()),
            id: id.clone(),
            section,
            name: Arc::from(name),
            far: FarBlocks::default(),
            stop: watch::Sender::new(false),
        });
        registry.insert(digest.clone(), Arc::downgrade(&dl));
        drop(registry);
        tracing::debug!(inquiry = %id, file = %name, size = key.size, "download started");
        self.counters.downloads.fetch_add(1, Ordering::Relaxed);
        self.counters
            .downloads_active
            .fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        let task_dl = dl.clone();
        self.rt.spawn(async move {
            this.run(temp, task_dl).await;
            this.registry.lock().remove(&digest);
        });
        Ok(Some(dl))
    }

    /// Fetch a file into its download, then cache it.
    async fn run(&self, temp: TempEntry, dl: Arc<Download>) {
        let (id, name) = (&dl.id, &dl.name);
        let mut sink = ProgressSink { dl: &dl };
        // Stopped by a redaction: the request is dropped at once, and the temp file, deleted
        // by the purge, gets no more bytes.
        let result = tokio::select! {
            // The fetch's own answer first: a re-retrieve that found the redaction says why
            // (the file is gone) better than the stop it caused.
            biased;
            r = self.fetch(&mut sink) => r,
            () = dl.stopped() => Err(redacted(id)),
        };
        let t = &self.counters;
        t.downloads_active.fetch_sub(1, Ordering::Relaxed);
        t.bytes_downloaded
            .fetch_add(dl.written(), Ordering::Relaxed);
        match &result {
            Ok(()) => t.downloads_done.fetch_add(1, Ordering::Relaxed),
            Err(_) => t.downloads_failed.fetch_add(1, Ordering::Relaxed),
        };
        match result {
            Ok(()) => {
                // Checksummed after the body, off the readers' path: while the body streams
                // in, the two cores go to the download and to the reader (a checksum on the
                // way cost a sixth of the daemon's CPU on a cold read), and the file read
                // back in 1 MiB blocks hashes several times faster than the socket's chunks.
                let cache = self.cache.clone();
                let file = dl.clone();
                let committed = self
                    .rt
                    .spawn_blocking(move || {
                        let checksum = Checksum::of_file(&file.file)?;
                        cache.commit(temp, checksum)
                    })
                    .await;
                match committed {
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) => tracing::info!(inquiry = %id, file = %name,
                        "file not cached (larger than the cache or the disk is short of space)"),
                    Ok(Err(e)) => {
                        tracing::warn!(inquiry = %id, file = %name, "caching failed: {e}")
                    }
                    Err(e) => tracing::warn!(inquiry = %id, file = %name, "caching failed: {e}"),
                }
                // Redacted while downloading (an event): what was just cached goes too. (A
                // purge during the download left nothing to commit: `DiskCache::commit`.)
                if self.views.is_marked_redacted(id) {
                    let cache = self.cache.clone();
                    let key = id.to_string();
                    let _ = self
                        .rt
                        .spawn_blocking(move || cache.purge_inquiry(&key))
                        .await;
                }
                tracing::debug!(inquiry = %id, file = %name, bytes = dl.size, "download complete");
                dl.progress.send_modify(|p| p.done = true);
            }
            Err(e) if dl.is_stopped() => {
                tracing::info!(inquiry = %id, "download stopped: the inquiry is redacted");
                dl.progress.send_modify(|p| p.failed = Some(e));
            }
            Err(e) => {
                tracing::warn!(inquiry = %id, file = %name, "download failed: {e}");
                dl.progress.send_modify(|p| p.failed = Some(e));
            }
        }
    }

    /// Download with fresh URLs, resuming from the byte reached after a refused one.
    async fn fetch(&self, sink: &mut ProgressSink<'_>) -> FsResult<()> {
        let dl = sink.dl;
        let mut need = Need::Urls;
        let mut refused_at: Option<u64> = None;
        loop {
            let (url, fetched_at) = self.url_for(dl, need).await?;
            let offset = dl.written();
            match self.api.download(&url, offset, sink).await {
                Ok(_) => {
                    let written = dl.written();
                    if written != dl.size {
                        return Err(Error::Truncated {
                            context: format!("downloading {}", dl.path()),
                            expected: dl.size,
                            received: written,
                        }
                        .into());
                    }
                    return Ok(());
                }
                // One fresh retrieve for each stretch of progress: it either gives a new URL
                // to retry with or shows the file gone.
                Err(e) if url_refused(&e) && refused_at != Some(dl.written()) => {
                    tracing::debug!(inquiry = %dl.id, status = ?e.status(), "file URL refused; retrieving the inquiry again");
                    refused_at = Some(dl.written());
                    self.counters.url_refreshes.fetch_add(1, Ordering::Relaxed);
                    need = Need::NewerThan(fetched_at);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The file's signed URL from a view fresh enough for `need`, and when that view was
    /// fetched. ESTALE when the file has left the inquiry or changed size.
    async fn url_for(&self, dl: &Download, need: Need) -> FsResult<(String, Instant)> {
        // A task of its own: a redaction this retrieve finds stops this very download (which
        // drops this future), and the retrieve must still publish the redacted view that
        // other callers wait for.
        let (views, id) = (self.views.clone(), dl.id.clone());
        let view = self
            .rt
            .spawn(async move { views.view(&id, need).await })
            .await
            .map_err(FsError::task(format!("retrieving {}", dl.id)))??;
        let info = view.file(dl.section, &dl.name).ok_or_else(|| {
            FsError::gone(format_args!("{} is no longer in the inquiry", dl.path()))
        })?;
        if info.size != dl.size {
            return Err(FsError::gone(format_args!(
                "{} changed size on the server",
                dl.path()
            )));
        }
        Ok((info.url.clone(), view.fetched_at))
    }
}

/// Stop every download of inquiry `id` (it was redacted): their requests end and their
/// readers get ESTALE (`redacted`).
fn stop_downloads_of(registry: &Registry, id: &str) {
    let doomed: Vec<Arc<Download>> = registry
        .lock()
        .values()
        .filter_map(Weak::upgrade)
        .filter(|dl| &*dl.id == id)
        .collect();
    for dl in doomed {
        dl.stop.send_replace(true);
    }
}
