//! Helpers of the core's unit tests: an organization of fileless inquiries in `MemoryApi`,
//! a core over it, and a poll. No HTTP, no FUSE.

use std::sync::Arc;

use crate::cache::{CacheLimits, DiskCache};
use crate::config::CoreConfig;
use crate::core::FsCore;
use personafs_client::PersonaApi;
use personafs_client::testing::{InquirySpec, MemoryApi};

/// `n` inquiries `inq_0000`… of `status`, without files, listed in id order (`inq_0000` the
/// newest). Search is refused, as Persona refuses a key that may not search: freshness
/// then comes from listing again.
pub(crate) fn fileless(n: usize, status: &str) -> Arc<MemoryApi> {
    let api = MemoryApi::new();
    for i in 0..n {
        // Newest first: one second older per inquiry.
        let created = chrono::DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z").unwrap()
            - chrono::Duration::seconds(i as i64);
        api.add_inquiry(
            InquirySpec::new(&format!("inq_{i:04}"))
                .status(status)
                .created_at(&created.to_rfc3339()),
        );
    }
    api.refuse_search(Some(404));
    Arc::new(api)
}

/// A core over `api` with its cache in `dir`, read-ahead off (so counts are exact).
pub(crate) fn core_with(
    api: Arc<dyn PersonaApi>,
    dir: &std::path::Path,
    cfg: CoreConfig,
) -> Arc<FsCore> {
    let mut cfg = cfg;
    cfg.prefetch.enabled = false;
    core_prefetching(api, dir, cfg)
}

/// A core over `api` with its cache in `dir`, read-ahead as `cfg` says.
pub(crate) fn core_prefetching(
    api: Arc<dyn PersonaApi>,
    dir: &std::path::Path,
    cfg: CoreConfig,
) -> Arc<FsCore> {
    let cache = DiskCache::open_dir(dir, CacheLimits::default()).unwrap();
    FsCore::new(api, cache, cfg)
}

/// Wait (a few seconds at most) until `done` holds.
pub(crate) async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        poll_step().await;
    }
    panic!("never happened: {what}");
}

/// Between two looks of a poll (`eventually`, the component tests' `wait_for`): a poll waits
/// for its condition, never for an amount of time.
pub(crate) async fn poll_step() {
    // The polling interval, the one real wait the polls share: short, so a poll ends soon
    // after its condition holds, and long enough to leave the runtime to the work awaited.
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
}

/// A kernel that records the directories it was told to drop its copy of.
#[derive(Default)]
pub(crate) struct Told(pub(crate) parking_lot::Mutex<Vec<u64>>);

impl crate::KernelCaches for Told {
    fn forget_entry(&self, _parent: u64, _name: &str) {}
    fn forget_listing(&self, dir: u64) {
        self.0.lock().push(dir);
    }
}
