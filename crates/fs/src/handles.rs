//! Open file handles: what each one reads from, and reads that return as soon as their
//! bytes are there (from memory, the cache file, or a download in progress).

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;

use crate::cache::{CachedFile, PinnedEntry};
use crate::downloads::{Download, Downloads, is_far, read_exact_at};
use crate::error::{FsError, FsResult};

/// What an open file handle reads from.
pub(crate) enum Handle {
    Bytes(Arc<Vec<u8>>),
    Cached(Arc<CachedFile>),
    /// A verified cache entry whose file the opener did not open: the FUSE layer keeps a
    /// kernel backing of it from an earlier open, so the kernel reads it directly. Opened
    /// at the first read that does reach personafs.
    Entry(KeptEntry),
    Streaming(Arc<Download>),
}

pub(crate) struct KeptEntry {
    /// Pinned, as an open cache file is: not evicted while this handle is open.
    entry: PinnedEntry,
    file: OnceLock<Arc<CachedFile>>,
}

impl KeptEntry {
    pub(crate) fn new(entry: PinnedEntry) -> KeptEntry {
        KeptEntry {
            entry,
            file: OnceLock::new(),
        }
    }

    /// The entry's file, opened once; ESTALE when the entry has left the cache since.
    async fn file(&self) -> FsResult<Arc<CachedFile>> {
        if let Some(f) = self.file.get() {
            return Ok(f.clone());
        }
        let entry = self.entry.clone();
        let opened = tokio::task::spawn_blocking(move || entry.open())
            .await
            .map_err(FsError::task("opening a cached file"))?
            .ok_or_else(|| FsError::gone("the cached file left the cache"))?;
        Ok(self.file.get_or_init(|| Arc::new(opened)).clone())
    }
}

/// What a read answers: bytes in memory, or a range of a file (the cache file, or a
/// download's temp file once it holds the range), which the FUSE layer reads into the
/// reply (`into_bytes`).
pub enum ReadData {
    Bytes(Vec<u8>),
    File(FileRange),
}

/// `len` bytes at `offset` of a file kept open by `file` (fewer where it ends).
pub struct FileRange {
    file: Arc<dyn AsFd + Send + Sync>,
    pub offset: u64,
    pub len: usize,
}

impl FileRange {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl ReadData {
    /// The bytes themselves (a file range is read).
    pub fn into_bytes(self) -> FsResult<Vec<u8>> {
        match self {
            ReadData::Bytes(b) => Ok(b),
            ReadData::File(r) => Ok(read_exact_at(r.fd(), r.offset, r.len)?),
        }
    }
}

/// Result of `open`: the handle and whether the kernel may keep its page cache.
pub struct Opened {
    pub fh: u64,
    /// The bytes behind this inode never change, so pages cached before stay valid.
    pub keep_cache: bool,
    /// The complete cache entry, when there is one: the kernel can read it directly (FUSE
    /// passthrough) without asking us for each block.
    pub backing: Option<CacheBacking>,
    /// Where its bytes come from (for the audit log).
    pub source: crate::audit::Source,
}

/// The cache entry behind an open, for FUSE passthrough.
pub struct CacheBacking {
    /// Which entry (`PinnedEntry::serial`): a kernel backing kept from an earlier
    /// open serves this one too when it is of the same entry.
    pub serial: u64,
    /// Its open file; `None` when the opener said it keeps a backing of this entry.
    pub file: Option<Arc<CachedFile>>,
}

pub(crate) struct Handles {
    open: Mutex<HashMap<u64, Arc<Handle>>>,
    next_fh: AtomicU64,
}

impl Handles {
    pub(crate) fn new() -> Handles {
        Handles {
            open: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
        }
    }

    pub(crate) fn register(&self, handle: Handle) -> Opened {
        let keep_cache = !matches!(handle, Handle::Bytes(_));
        let backing = match &handle {
            Handle::Cached(c) => Some(CacheBacking {
                serial: c.entry.serial,
                file: Some(c.clone()),
            }),
            Handle::Entry(e) => Some(CacheBacking {
                serial: e.entry.serial,
                file: None,
            }),
            _ => None,
        };
        let source = match &handle {
            Handle::Bytes(_) => crate::audit::Source::Memory,
            Handle::Cached(_) | Handle::Entry(_) => crate::audit::Source::Cache,
            Handle::Streaming(_) => crate::audit::Source::Network,
        };
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.open.lock().insert(fh, Arc::new(handle));
        Opened {
            fh,
            keep_cache,
            backing,
            source,
        }
    }

    pub(crate) fn release(&self, fh: u64) {
        self.open.lock().remove(&fh);
    }

    pub(crate) fn len(&self) -> usize {
        self.open.lock().len()
    }

    /// Up to `size` bytes at `offset`; a download's bytes are waited for at most `timeout`.
    pub(crate) async fn read(
        &self,
        downloads: &Downloads,
        fh: u64,
        offset: u64,
        size: u32,
        timeout: Duration,
    ) -> FsResult<ReadData> {
        let handle = self.handle(fh)?;
        match ready(&handle, offset, size) {
            Ok(data) => Ok(data),
            Err(Pending::Open(e)) => Ok(cached_range(e.file().await?, offset, size)),
            Err(Pending::Download(dl, end)) => {
                if is_far(dl, offset) && !dl.is_over() {
                    match downloads.read_far(dl, offset, end).await {
                        Ok(bytes) => return Ok(ReadData::Bytes(bytes)),
                        // The download itself decides: wait for it.
                        Err(e) => tracing::debug!("far read failed, waiting for the download: {e}"),
                    }
                }
                dl.wait_written(end, timeout).await?;
                Ok(download_range(dl, offset, end))
            }
        }
    }

    fn handle(&self, fh: u64) -> FsResult<Arc<Handle>> {
        self.open.lock().get(&fh).cloned().ok_or(FsError::BadHandle)
    }
}

/// What a read whose bytes are not there yet waits for.
enum Pending<'a> {
    /// A kept entry's file, not opened yet.
    Open(&'a KeptEntry),
    /// The download, to reach `end`.
    Download(&'a Arc<Download>, u64),
}

/// The bytes of a read when they are there, else what it waits for.
fn ready(handle: &Handle, offset: u64, size: u32) -> Result<ReadData, Pending<'_>> {
    match handle {
        Handle::Bytes(b) => Ok(bytes_range(b, offset, size)),
        Handle::Cached(c) => Ok(cached_range(c.clone(), offset, size)),
        Handle::Entry(e) => match e.file.get() {
            Some(f) => Ok(cached_range(f.clone(), offset, size)),
            None => Err(Pending::Open(e)),
        },
        Handle::Streaming(dl) => {
            let end = (offset + size as u64).min(dl.size);
            if offset >= end || dl.written() >= end {
                Ok(download_range(dl, offset, end))
            } else {
                Err(Pending::Download(dl, end))
            }
        }
    }
}

fn bytes_range(b: &[u8], offset: u64, size: u32) -> ReadData {
    let start = (offset as usize).min(b.len());
    let end = (start + size as usize).min(b.len());
    ReadData::Bytes(b[start..end].to_vec())
}

/// Bytes `offset..end` of a download's file, written already (none when `offset >= end`).
fn download_range(dl: &Arc<Download>, offset: u64, end: u64) -> ReadData {
    if offset >= end {
        return ReadData::Bytes(Vec::new());
    }
    ReadData::File(FileRange {
        file: dl.clone(),
        offset,
        len: (end - offset) as usize,
    })
}

fn cached_range(file: Arc<CachedFile>, offset: u64, size: u32) -> ReadData {
    ReadData::File(FileRange {
        len: (size as u64).min(file.entry.size.saturating_sub(offset)) as usize,
        file,
        offset,
    })
}
