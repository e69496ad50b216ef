//! Reads far ahead of a download in progress. A download streams from the start, so a reader
//! that jumps ahead (a video player looking for the `moov` box at the end, a PDF reader going
//! for the trailer, `tail -c`) would wait for everything before its bytes. Instead, such a
//! read fetches its own block with one bounded `Range` request, served from memory and kept
//! for the neighbouring reads. The download goes on and is what gets cached.

use std::collections::VecDeque;
use std::sync::Arc;

use super::{Download, Downloads, url_refused};
use crate::error::FsResult;
use crate::metadata::views::Need;
use personafs_client::Error;

/// A read starting this far past the download's front fetches its own bytes. Larger than the
/// kernel's read-ahead window (1 MiB, up to twice that asynchronously), so a sequential
/// reader never does.
pub(crate) const FAR_AHEAD: u64 = 8 << 20;
/// Far reads fetch aligned blocks of this size: the kernel's read-ahead around a far read then
/// finds its bytes already here.
const BLOCK: u64 = 1 << 20;
/// Blocks kept per download.
const KEPT_BLOCKS: usize = 4;

/// Far blocks of one download, most recent last.
#[derive(Default)]
pub(crate) struct FarBlocks(parking_lot::Mutex<VecDeque<(u64, Arc<Vec<u8>>)>>);

impl FarBlocks {
    fn get(&self, start: u64) -> Option<Arc<Vec<u8>>> {
        let blocks = self.0.lock();
        blocks
            .iter()
            .find(|(s, _)| *s == start)
            .map(|(_, b)| b.clone())
    }

    fn put(&self, start: u64, block: Arc<Vec<u8>>) {
        let mut blocks = self.0.lock();
        if blocks.iter().any(|(s, _)| *s == start) {
            return;
        }
        if blocks.len() == KEPT_BLOCKS {
            blocks.pop_front();
        }
        blocks.push_back((start, block));
    }
}

/// Whether a read of `offset..` should not wait for the download front.
pub(crate) fn is_far(dl: &Download, offset: u64) -> bool {
    let front = dl.written();
    offset > front.saturating_add(FAR_AHEAD)
}

impl Downloads {
    /// Bytes `offset..end` (within one block or across two) fetched apart from the download.
    pub(crate) async fn read_far(&self, dl: &Download, offset: u64, end: u64) -> FsResult<Vec<u8>> {
        let mut out = Vec::with_capacity((end - offset) as usize);
        let mut at = offset;
        while at < end {
            let start = at - at % BLOCK;
            let block = match dl.far.get(start) {
                Some(b) => b,
                None => {
                    let fetched = tokio::select! {
                        b = self.fetch_block(dl, start, (start + BLOCK).min(dl.size)) => b?,
                        () = dl.stopped() => return Err(super::redacted(&dl.id)),
                    };
                    let b = Arc::new(fetched);
                    dl.far.put(start, b.clone());
                    b
                }
            };
            let from = (at - start) as usize;
            let to = ((end - start) as usize).min(block.len());
            out.extend_from_slice(&block[from..to]);
            at = start + to as u64;
        }
        self.counters
            .far_reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(out)
    }

    /// One block with a fresh URL; once more with a newer one when the files host refuses it.
    async fn fetch_block(&self, dl: &Download, start: u64, end: u64) -> FsResult<Vec<u8>> {
        let mut need = Need::Urls;
        loop {
            let (url, fetched_at) = self.url_for(dl, need).await?;
            let mut block = Vec::with_capacity((end - start) as usize);
            match self.api.download_range(&url, start, end, &mut block).await {
                Ok(_) if block.len() as u64 == end - start => return Ok(block),
                Ok(_) => {
                    return Err(Error::Truncated {
                        context: format!("reading ahead in {}", dl.path()),
                        expected: end - start,
                        received: block.len() as u64,
                    }
                    .into());
                }
                Err(e) if url_refused(&e) && matches!(need, Need::Urls) => {
                    self.counters
                        .url_refreshes
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    need = Need::NewerThan(fetched_at);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
