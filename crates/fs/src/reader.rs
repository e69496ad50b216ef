//! Open files: served from the disk cache, or from a download in progress that all openers
//! of the same file share. Reads return as soon as their bytes have arrived.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::AsyncWrite;
use tokio::sync::watch;

use super::core::{FsCore, Need};
use super::far_read::{FarBlocks, is_far};
use super::inode::Node;
use crate::cache::{CacheKey, CachedFile, Checksum, TempEntry};
use personafs_client::Section;
use personafs_client::{Error, Result};

/// How a download stands; readers wait on changes of it.
#[derive(Debug, Clone, Default)]
struct Progress {
    written: u64,
    done: bool,
    /// errno and message of a failed download.
    failed: Option<(i32, Arc<str>)>,
}

/// One download of one file, shared by every opener until it is done.
pub struct Download {
    file: File,
    pub(crate) size: u64,
    progress: watch::Sender<Progress>,
    /// Which file this is, for the ranged requests of far reads.
    pub(crate) id: Arc<str>,
    pub(crate) section: Section,
    pub(crate) name: Arc<str>,
    pub(crate) far: FarBlocks,
}

impl Download {
    /// Wait until the download has finished, one way or the other.
    pub(crate) async fn finished(&self) {
        let mut rx = self.progress.subscribe();
        let _ = rx.wait_for(|p| p.done || p.failed.is_some()).await;
    }

    /// Bytes written so far, from the start.
    pub(crate) fn written(&self) -> u64 {
        self.progress.borrow().written
    }

    /// `<inquiry>/<section>/<name>`, for messages.
    pub(crate) fn path(&self) -> String {
        format!("{}/{}/{}", self.id, self.section.dir_name(), self.name)
    }

    fn is_over(&self) -> bool {
        let p = self.progress.borrow();
        p.done || p.failed.is_some()
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        read_exact_at(&self.file, offset, len)
    }
}

/// What an open file handle reads from.
pub enum Handle {
    Bytes(Arc<Vec<u8>>),
    Cached(CachedFile),
    Streaming(Arc<Download>),
}

/// Result of `open`: the handle and whether the kernel may keep its page cache.
pub struct Opened {
    pub fh: u64,
    /// The bytes behind this inode never change, so pages cached before stay valid.
    pub keep_cache: bool,
    /// The complete cache file, when there is one: the kernel can read it directly
    /// (FUSE passthrough) without asking us for each block.
    pub backing: Option<File>,
}

fn read_exact_at(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = file.read_at(&mut buf[done..], offset + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

/// Writes a download into its temp file, hashing it and telling readers how far it got.
/// Plain positional writes: they go to the page cache and are short, so doing them on the
/// async thread costs less than handing each chunk to a blocking pool.
struct ProgressSink<'a> {
    dl: &'a Download,
    hasher: Checksum,
}

impl AsyncWrite for ProgressSink<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let at = self.dl.written();
        if at + buf.len() as u64 > self.dl.size {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the body is longer than the file's size",
            )));
        }
        self.dl.file.write_all_at(buf, at)?;
        // Readers first: they copy these bytes out while this thread checksums them.
        self.dl
            .progress
            .send_modify(|p| p.written += buf.len() as u64);
        self.hasher.update(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The files host refused a signed URL: it went bad earlier than we thought, or the file is
/// gone from the host (deleted, redacted). A fresh retrieve tells which.
pub(crate) fn url_refused(e: &Error) -> bool {
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

impl FsCore {
    pub async fn open(self: &Arc<Self>, ino: u64) -> Result<Opened> {
        let handle = match self.node(ino)? {
            Node::InquiryJson(id) => {
                Handle::Bytes(self.view(&id, Need::Metadata).await?.json.clone())
            }
            Node::File(id, section, name) => self.open_file(&id, section, &name).await?,
            _ => return Err(Error::Io(io::Error::from_raw_os_error(libc::EISDIR))),
        };
        Ok(self.register(handle))
    }

    /// Open a file without waiting on anything: only when its inquiry's view is at hand and
    /// fresh and its cache entry complete and verified. Saves warm opens (`cp`, `rsync`, an
    /// image viewer) the trip through the async runtime.
    pub fn try_open_cached(&self, ino: u64) -> Option<Opened> {
        let Ok(Node::File(id, section, name)) = self.node(ino) else {
            return None;
        };
        let view = self.fresh_view_now(&id)?;
        let info = view.file(section, &name)?;
        let key = CacheKey {
            inquiry_id: id.to_string(),
            object_id: info.object_id.clone(),
            name: name.to_string(),
            size: info.size,
        };
        if info.size == 0 || !self.cache.is_verified(&key) {
            return None;
        }
        let cached = self.cache.open(&key)?;
        self.unread_opened(&key);
        Some(self.register(Handle::Cached(cached)))
    }

    fn register(&self, handle: Handle) -> Opened {
        let keep_cache = !matches!(handle, Handle::Bytes(_));
        let backing = match &handle {
            Handle::Cached(c) => c.file.try_clone().ok(),
            _ => None,
        };
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.lock().insert(fh, Arc::new(handle));
        Opened {
            fh,
            keep_cache,
            backing,
        }
    }

    async fn open_file(
        self: &Arc<Self>,
        id: &Arc<str>,
        section: Section,
        name: &str,
    ) -> Result<Handle> {
        let view = self.view(id, Need::Metadata).await?;
        let info = view
            .file(section, name)
            .ok_or_else(|| Error::NotFound(format!("{id}/{}/{name}", section.dir_name())))?;
        let key = CacheKey {
            inquiry_id: id.to_string(),
            object_id: info.object_id.clone(),
            name: name.to_string(),
            size: info.size,
        };
        if info.size == 0 {
            return Ok(Handle::Bytes(Arc::new(Vec::new())));
        }
        self.unread_opened(&key);
        loop {
            let cache = self.cache.clone();
            let k = key.clone();
            if let Some(cached) = tokio::task::spawn_blocking(move || cache.open(&k))
                .await
                .map_err(|e| Error::Io(io::Error::other(e)))?
            {
                tracing::trace!(inquiry = %id, file = %name, "served from the cache");
                self.prefetch_files_from(id);
                return Ok(Handle::Cached(cached));
            }
            // The reader's own download first, then the read-ahead around it.
            if let Some(dl) = self.download_of(id, section, name, key.clone())? {
                self.prefetch_files_from(id);
                return Ok(Handle::Streaming(dl));
            }
            // Cached in the meantime (a download finished since we looked): open that.
        }
    }

    /// The download of a file: the one in progress, or a new one; `None` when there is none
    /// because the file is in the cache now.
    pub(crate) fn download_of(
        self: &Arc<Self>,
        id: &Arc<str>,
        section: Section,
        name: &str,
        key: CacheKey,
    ) -> Result<Option<Arc<Download>>> {
        let digest = key.digest();
        let existing = |downloads: &HashMap<String, std::sync::Weak<Download>>| {
            downloads.get(&digest).and_then(|w| w.upgrade())
        };
        if let Some(dl) = existing(&self.downloads.lock()) {
            return Ok(Some(dl));
        }
        // A download is committed to the cache before it is dropped: with none alive, a
        // cached entry is complete, and fetching it again would be a second download.
        if self.cache.contains(&key) {
            return Ok(None);
        }
        // Reserving room may evict files: disk work, done without holding the registry.
        let temp = self.cache.begin(&key)?;
        let mut downloads = self.downloads.lock();
        if let Some(dl) = existing(&downloads) {
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
        });
        downloads.insert(digest.clone(), Arc::downgrade(&dl));
        drop(downloads);
        tracing::debug!(inquiry = %id, file = %name, size = key.size, "download started");
        self.counters.downloads.fetch_add(1, Ordering::Relaxed);
        let core = self.clone();
        let task_dl = dl.clone();
        tokio::spawn(async move {
            core.run_download(temp, task_dl).await;
            core.downloads.lock().remove(&digest);
        });
        Ok(Some(dl))
    }

    /// Fetch a file into its download, refreshing URLs before they expire and once more when
    /// the files host refuses one anyway, resuming from the byte reached; then cache it.
    async fn run_download(&self, temp: TempEntry, dl: Arc<Download>) {
        let (id, name) = (&dl.id, &dl.name);
        let mut sink = ProgressSink {
            dl: &dl,
            hasher: Checksum::new(),
        };
        let result = self.fetch(&mut sink).await;
        match result {
            Ok(()) => {
                let checksum = sink.hasher.finish();
                let cache = self.cache.clone();
                let committed =
                    tokio::task::spawn_blocking(move || cache.commit(temp, checksum)).await;
                match committed {
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) => tracing::info!(inquiry = %id, file = %name,
                        "file not cached (larger than the cache or the disk is short of space)"),
                    Ok(Err(e)) => {
                        tracing::warn!(inquiry = %id, file = %name, "caching failed: {e}")
                    }
                    Err(e) => tracing::warn!(inquiry = %id, file = %name, "caching failed: {e}"),
                }
                tracing::debug!(inquiry = %id, file = %name, bytes = dl.size, "download complete");
                dl.progress.send_modify(|p| p.done = true);
            }
            Err(e) => {
                tracing::warn!(inquiry = %id, file = %name, status = ?e.status(), "download failed: {e}");
                let failed = (e.errno(), Arc::from(e.to_string()));
                dl.progress.send_modify(|p| p.failed = Some(failed));
            }
        }
    }

    async fn fetch(&self, sink: &mut ProgressSink<'_>) -> Result<()> {
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
                        });
                    }
                    return Ok(());
                }
                // One fresh retrieve for each stretch of progress: it either gives a new URL
                // to retry with or shows the file gone.
                Err(e) if url_refused(&e) && refused_at != Some(dl.written()) => {
                    tracing::debug!(inquiry = %dl.id, status = ?e.status(), "file URL refused; retrieving the inquiry again");
                    refused_at = Some(dl.written());
                    need = Need::NewerThan(fetched_at);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The file's signed URL from a view fresh enough for `need`, and when that view was
    /// fetched. `Gone` (ESTALE) when the file has left the inquiry or changed size.
    pub(crate) async fn url_for(&self, dl: &Download, need: Need) -> Result<(String, Instant)> {
        let view = self.view(&dl.id, need).await?;
        let info = view
            .file(dl.section, &dl.name)
            .ok_or_else(|| Error::Gone(format!("{} is no longer in the inquiry", dl.path())))?;
        if info.size != dl.size {
            return Err(Error::Gone(format!(
                "{} changed size on the server",
                dl.path()
            )));
        }
        Ok((info.url.clone(), view.fetched_at))
    }

    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        let handle = self
            .handles
            .lock()
            .get(&fh)
            .cloned()
            .ok_or(Error::BadHandle)?;
        match &*handle {
            Handle::Bytes(b) => {
                let start = (offset as usize).min(b.len());
                let end = (start + size as usize).min(b.len());
                Ok(b[start..end].to_vec())
            }
            Handle::Cached(c) => {
                let len = (size as u64).min(c.size.saturating_sub(offset)) as usize;
                Ok(read_exact_at(&c.file, offset, len)?)
            }
            Handle::Streaming(dl) => {
                let end = (offset + size as u64).min(dl.size);
                if offset >= end {
                    return Ok(Vec::new());
                }
                if is_far(dl, offset) && !dl.is_over() {
                    match self.read_far(dl, offset, end).await {
                        Ok(bytes) => return Ok(bytes),
                        // The download itself decides: wait for it.
                        Err(e) => tracing::debug!("far read failed, waiting for the download: {e}"),
                    }
                }
                let mut rx = dl.progress.subscribe();
                let waited = tokio::time::timeout(
                    self.cfg.io_timeout,
                    rx.wait_for(|p| p.written >= end || p.done || p.failed.is_some()),
                )
                .await;
                let progress = match waited {
                    Ok(Ok(p)) => p.clone(),
                    Ok(Err(_)) => return Err(Error::Io(io::Error::from_raw_os_error(libc::EIO))),
                    Err(_) => {
                        return Err(Error::Network {
                            context: "reading a file".into(),
                            message: format!("no data for {:?}", self.cfg.io_timeout),
                        });
                    }
                };
                if progress.written < end {
                    let (errno, _) = progress.failed.unwrap_or((libc::EIO, Arc::from("")));
                    return Err(Error::Io(io::Error::from_raw_os_error(errno)));
                }
                Ok(dl.read_at(offset, (end - offset) as usize)?)
            }
        }
    }

    pub fn release(&self, fh: u64) {
        self.handles.lock().remove(&fh);
    }

    /// Files open through this core now (for diagnostics and tests).
    pub fn open_handles(&self) -> usize {
        self.handles.lock().len()
    }
}
