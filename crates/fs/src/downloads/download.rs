//! One download of one file, shared by every opener until it is done, and the sink that
//! writes it into its cache temp file.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;
use tokio::sync::watch;

use super::far_read::FarBlocks;
use crate::error::{FsError, FsResult};
use personafs_client::Section;

/// How a download stands; readers wait on changes of it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    pub(crate) written: u64,
    pub(crate) done: bool,
    /// Why a download failed.
    pub(crate) failed: Option<FsError>,
}

pub struct Download {
    pub(crate) file: File,
    pub(crate) size: u64,
    pub(crate) progress: watch::Sender<Progress>,
    /// Which file this is, for URLs and the ranged requests of far reads.
    pub(crate) id: Arc<str>,
    pub(crate) section: Section,
    pub(crate) name: Arc<str>,
    pub(crate) far: FarBlocks,
    /// Set when the inquiry is redacted: the download and its far reads stop.
    pub(crate) stop: watch::Sender<bool>,
}

impl Download {
    /// Wait until the download has finished, one way or the other.
    pub(crate) async fn finished(&self) {
        let mut rx = self.progress.subscribe();
        let _ = rx.wait_for(|p| p.done || p.failed.is_some()).await;
    }

    /// Resolves when the download is stopped (its inquiry redacted).
    pub(crate) async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    pub(crate) fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Bytes written so far, from the start.
    pub(crate) fn written(&self) -> u64 {
        self.progress.borrow().written
    }

    /// `<inquiry>/<section>/<name>`, for messages.
    pub(crate) fn path(&self) -> String {
        format!("{}/{}/{}", self.id, self.section.dir_name(), self.name)
    }

    pub(crate) fn is_over(&self) -> bool {
        let p = self.progress.borrow();
        p.done || p.failed.is_some()
    }

    /// Wait until the download has bytes `..end`, at most `timeout`.
    pub(crate) async fn wait_written(&self, end: u64, timeout: Duration) -> FsResult<()> {
        let mut rx = self.progress.subscribe();
        let waited = tokio::time::timeout(
            timeout,
            rx.wait_for(|p| p.written >= end || p.done || p.failed.is_some()),
        )
        .await;
        let progress = match waited {
            Ok(Ok(p)) => p.clone(),
            Ok(Err(_)) => return Err(FsError::NoAnswer("the download ended without a word")),
            Err(_) => {
                return Err(FsError::TimedOut {
                    what: self.path(),
                    after: timeout,
                });
            }
        };
        if progress.written < end {
            return Err(progress
                .failed
                .unwrap_or_else(|| FsError::EndedShort(self.path())));
        }
        Ok(())
    }
}

impl std::os::fd::AsFd for Download {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Up to `len` bytes at `offset` (fewer at the end of the file). Read straight into the
/// vector's spare capacity: zeroing each 1 MiB buffer first cost ~4 % of a cold read's CPU.
pub(crate) fn read_exact_at(
    file: std::os::fd::BorrowedFd<'_>,
    offset: u64,
    len: usize,
) -> io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    while buf.len() < len {
        let done = buf.len();
        let spare = buf.spare_capacity_mut();
        // SAFETY: pread writes at most `spare.len()` bytes into `spare`, memory this vector
        // owns; only the `n` bytes it reports written are then counted as initialised.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                spare.as_mut_ptr().cast(),
                spare.len(),
                (offset + done as u64) as libc::off_t,
            )
        };
        match n {
            0 => break,
            n if n > 0 => {
                // SAFETY: the first `n` bytes of the spare capacity were written just now.
                unsafe { buf.set_len(done + n as usize) };
            }
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(buf)
}

/// Writes a download into its temp file and tells readers how far it got.
/// Plain positional writes: they go to the page cache and are short, so doing them on the
/// async thread costs less than handing each chunk to a blocking pool.
pub(crate) struct ProgressSink<'a> {
    pub(crate) dl: &'a Download,
}

impl AsyncWrite for ProgressSink<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
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
        self.dl
            .progress
            .send_modify(|p| p.written += buf.len() as u64);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
