//! What the filesystem did, counted as it happens: opens, reads, cache hits, downloads, the
//! listings the kernel read or was told to drop, errors answered by errno, whether Persona is
//! reachable. One `Counters` per mount (`CoreConfig::counters`); `personafs status` and
//! `/metrics` read it through [`Counters::fill`], beside what the client counts (API calls,
//! retries, the request budget: `personafs_client::telemetry`).
//!
//! Nothing here ever holds an inquiry id, a file name, a URL or a token: only counts by kind.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;
use personafs_client::telemetry::Snapshot;

/// Counters of one mount's filesystem. Cheap to update from any thread.
#[derive(Debug, Default)]
pub struct Counters {
    /// Signed URLs found refused by the files host and fetched again.
    pub url_refreshes: AtomicU64,
    pub downloads_active: AtomicU64,
    pub downloads_done: AtomicU64,
    pub downloads_failed: AtomicU64,
    pub bytes_downloaded: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub opens: AtomicU64,
    /// `read` requests that reached personafs (passthrough reads do not).
    pub reads: AtomicU64,
    /// Opens answered with a kernel backing file (FUSE passthrough).
    pub passthrough_opens: AtomicU64,
    /// Of those, the ones answered by a backing kept from an earlier open (no cache file
    /// opened, nothing registered with the kernel).
    pub passthrough_kept_opens: AtomicU64,
    /// Kernel backing ids kept for reuse now (each holds its cache file open).
    pub passthrough_kept: AtomicU64,
    /// Downloads started (each shared by all openers of its file).
    pub downloads: AtomicU64,
    /// Reads far ahead of a download, served by their own ranged requests.
    pub far_reads: AtomicU64,
    /// Changes applied from the events feed or webhooks (`FsCore::apply_change`).
    pub events_applied: AtomicU64,
    /// Directory listings the kernel read from personafs (each from its first entry): a
    /// walk of directories whose listings the kernel keeps reads none.
    pub dir_reads: AtomicU64,
    /// Listings the kernel kept that it was told to drop (changed, or due a refresh).
    pub dir_drops: AtomicU64,
    /// Persona counted unreachable (the circuit breaker is open).
    offline: AtomicBool,
    /// Requests answered to the kernel with an error, by errno name (`ENOENT`, `EIO`, ...).
    errors: Mutex<BTreeMap<&'static str, u64>>,
}

impl Counters {
    /// A request answered to the kernel with the errno of this name (the adapter's
    /// `errno_name`).
    pub fn error(&self, errno_name: &'static str) {
        *self.errors.lock().entry(errno_name).or_insert(0) += 1;
    }

    pub fn set_offline(&self, offline: bool) {
        self.offline.store(offline, Relaxed);
    }

    pub fn is_offline(&self) -> bool {
        self.offline.load(Relaxed)
    }

    /// Put these counters into a snapshot of the mount's state.
    pub fn fill(&self, s: &mut Snapshot) {
        s.online = !self.is_offline();
        s.url_refreshes = self.url_refreshes.load(Relaxed);
        s.downloads_active = self.downloads_active.load(Relaxed);
        s.downloads_done = self.downloads_done.load(Relaxed);
        s.downloads_failed = self.downloads_failed.load(Relaxed);
        s.bytes_downloaded = self.bytes_downloaded.load(Relaxed);
        s.cache_hits = self.cache_hits.load(Relaxed);
        s.cache_misses = self.cache_misses.load(Relaxed);
        s.opens = self.opens.load(Relaxed);
        s.events_applied = self.events_applied.load(Relaxed);
        s.dir_reads = self.dir_reads.load(Relaxed);
        s.dir_drops = self.dir_drops.load(Relaxed);
        s.errors = self
            .errors
            .lock()
            .iter()
            .map(|(e, n)| (e.to_string(), *n))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_counts_errors_by_errno_name_and_says_offline() {
        let c = Counters::default();
        c.error("ENOENT");
        c.error("EIO");
        c.error("ENOENT");
        c.set_offline(true);
        c.opens.fetch_add(3, Relaxed);
        let mut s = Snapshot::default();
        c.fill(&mut s);
        assert_eq!(s.errors["ENOENT"], 2);
        assert_eq!(s.errors["EIO"], 1);
        assert!(!s.online);
        assert_eq!(s.opens, 3);
        let json = serde_json::to_string(&s).unwrap();
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
