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
use crate::cache::Checksum;
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

    pub(crate) fn is_over(&self) -> bool {
        let p = self.progress.borrow();
        p.done || p.failed.is_some()
    }

    /// Bytes `offset..end` once the download has them, waiting at most `timeout` for them.
    pub(crate) async fn read_when_written(
        &self,
        offset: u64,
        end: u64,
        timeout: Duration,
    ) -> FsResult<Vec<u8>> {
        let mut rx = self.progress.subscribe();
        let waited = tokio::time::timeout(
            timeout,
            rx.wait_for(|p| p.written >= end || p.done || p.failed.is_some()),
        )
        .await;
        let progress = match waited {
            Ok(Ok(p)) => p.clone(),
            Ok(Err(_)) => return Err(FsError::io("the download ended without a word")),
            Err(_) => {
                return Err(FsError::io(format!(
                    "reading {}: no data for {timeout:?}",
                    self.path()
                )));
            }
        };
        if progress.written < end {
            return Err(progress
                .failed
                .unwrap_or_else(|| FsError::io(format!("{} ended short", self.path()))));
        }
        Ok(read_exact_at(&self.file, offset, (end - offset) as usize)?)
    }
}

pub(crate) fn read_exact_at(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
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
pub(crate) struct ProgressSink<'a> {
    pub(crate) dl: &'a Download,
    pub(crate) hasher: Checksum,
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
