//! What a mount has done, counted as it happens: API calls, retries, downloads, cache hits,
//! errors. One `Telemetry` per mount, shared by the client and the filesystem; `personafs
//! status` and `/metrics` read a [`Snapshot`] of it.
//!
//! Nothing here ever holds an inquiry id, a file name, a URL or a token: only counts by kind.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// The kinds of request personafs makes to Persona.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiCall {
    List,
    Retrieve,
    Head,
    Download,
    Range,
    Events,
    Search,
}

impl ApiCall {
    pub const ALL: [ApiCall; 7] = [
        ApiCall::List,
        ApiCall::Retrieve,
        ApiCall::Head,
        ApiCall::Download,
        ApiCall::Range,
        ApiCall::Events,
        ApiCall::Search,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ApiCall::List => "list",
            ApiCall::Retrieve => "retrieve",
            ApiCall::Head => "head",
            ApiCall::Download => "download",
            ApiCall::Range => "range",
            ApiCall::Events => "events",
            ApiCall::Search => "search",
        }
    }
}

/// Counters of one mount. Cheap to update from any thread.
#[derive(Debug)]
pub struct Telemetry {
    started: Instant,
    started_unix: u64,
    api_calls: [AtomicU64; 7],
    pub rate_limited: AtomicU64,
    pub retries: AtomicU64,
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
    /// Requests per minute still allowed by the client's budget (updated as it is drawn).
    pub rate_budget_left: AtomicU64,
    /// Changes applied from the events feed or webhooks (`FsCore::apply_change`).
    pub events_applied: AtomicU64,
    /// Directory listings the kernel read from personafs (each from its first entry): a
    /// walk of directories whose listings the kernel keeps reads none.
    pub dir_reads: AtomicU64,
    /// Listings the kernel kept that it was told to drop (changed, or due a refresh).
    pub dir_drops: AtomicU64,
    /// Webhooks verified and accepted by the receiver.
    pub webhooks_accepted: AtomicU64,
    /// Webhooks refused (bad or missing signature, stale time, bad request).
    pub webhooks_refused: AtomicU64,
    /// Milliseconds API requests spent waiting for the request budget, all together.
    pub budget_waited_ms: AtomicU64,
    /// The budget requests draw from, asked for its figures at each snapshot.
    budget: BudgetSource,
    offline: AtomicBool,
    errors: Mutex<BTreeMap<i32, u64>>,
}

/// The budget a snapshot asks (set once the client is built).
#[derive(Default)]
struct BudgetSource(parking_lot::RwLock<Option<std::sync::Arc<dyn crate::ratelimit::Budget>>>);

impl std::fmt::Debug for BudgetSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BudgetSource")
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            started: Instant::now(),
            started_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            api_calls: Default::default(),
            rate_limited: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            url_refreshes: AtomicU64::new(0),
            downloads_active: AtomicU64::new(0),
            downloads_done: AtomicU64::new(0),
            downloads_failed: AtomicU64::new(0),
            bytes_downloaded: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            opens: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            passthrough_opens: AtomicU64::new(0),
            passthrough_kept_opens: AtomicU64::new(0),
            passthrough_kept: AtomicU64::new(0),
            downloads: AtomicU64::new(0),
            far_reads: AtomicU64::new(0),
            rate_budget_left: AtomicU64::new(0),
            events_applied: AtomicU64::new(0),
            dir_reads: AtomicU64::new(0),
            dir_drops: AtomicU64::new(0),
            webhooks_accepted: AtomicU64::new(0),
            webhooks_refused: AtomicU64::new(0),
            budget_waited_ms: AtomicU64::new(0),
            budget: BudgetSource::default(),
            offline: AtomicBool::new(false),
            errors: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Telemetry {
    pub fn api_call(&self, kind: ApiCall) {
        self.api_calls[kind as usize].fetch_add(1, Relaxed);
    }

    pub fn api_calls(&self, kind: ApiCall) -> u64 {
        self.api_calls[kind as usize].load(Relaxed)
    }

    /// A request answered to the kernel with this errno.
    pub fn error(&self, errno: i32) {
        *self.errors.lock().entry(errno).or_insert(0) += 1;
    }

    /// Where API requests take their budget from: its figures are in every snapshot.
    pub fn set_budget(&self, budget: std::sync::Arc<dyn crate::ratelimit::Budget>) {
        *self.budget.0.write() = Some(budget);
    }

    /// An API request waited this long for the budget.
    pub fn budget_waited(&self, waited: std::time::Duration) {
        self.budget_waited_ms
            .fetch_add(waited.as_millis() as u64, Relaxed);
    }

    pub fn set_offline(&self, offline: bool) {
        self.offline.store(offline, Relaxed);
    }

    pub fn is_offline(&self) -> bool {
        self.offline.load(Relaxed)
    }

    /// The counters as they stand; the caller fills in what only it knows (cache, metadata).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            uptime_secs: self.started.elapsed().as_secs(),
            started_unix: self.started_unix,
            online: !self.is_offline(),
            api_calls: ApiCall::ALL
                .iter()
                .map(|k| (k.name().to_string(), self.api_calls(*k)))
                .collect(),
            rate_limited: self.rate_limited.load(Relaxed),
            rate_budget_left: self.rate_budget_left.load(Relaxed),
            retries: self.retries.load(Relaxed),
            url_refreshes: self.url_refreshes.load(Relaxed),
            downloads_active: self.downloads_active.load(Relaxed),
            downloads_done: self.downloads_done.load(Relaxed),
            downloads_failed: self.downloads_failed.load(Relaxed),
            bytes_downloaded: self.bytes_downloaded.load(Relaxed),
            cache_hits: self.cache_hits.load(Relaxed),
            cache_misses: self.cache_misses.load(Relaxed),
            opens: self.opens.load(Relaxed),
            events_applied: self.events_applied.load(Relaxed),
            dir_reads: self.dir_reads.load(Relaxed),
            dir_drops: self.dir_drops.load(Relaxed),
            webhooks_accepted: self.webhooks_accepted.load(Relaxed),
            webhooks_refused: self.webhooks_refused.load(Relaxed),
            budget: self.budget.0.read().as_ref().map(|b| b.status()),
            budget_waited_ms: self.budget_waited_ms.load(Relaxed),
            errors: self
                .errors
                .lock()
                .iter()
                .map(|(e, n)| (errno_name(*e).to_string(), *n))
                .collect(),
            ..Snapshot::default()
        }
    }
}

/// One reading of a mount's state, as `personafs status --json` prints it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    pub mountpoint: String,
    pub pid: u32,
    pub uptime_secs: u64,
    pub started_unix: u64,
    pub online: bool,
    pub api_calls: BTreeMap<String, u64>,
    pub rate_limit_per_minute: u32,
    pub rate_budget_left: u64,
    pub rate_limited: u64,
    pub retries: u64,
    pub url_refreshes: u64,
    pub downloads_active: u64,
    pub downloads_done: u64,
    pub downloads_failed: u64,
    pub bytes_downloaded: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub opens: u64,
    /// Changes applied from the events feed or webhooks.
    pub events_applied: u64,
    /// Directory listings the kernel read from personafs.
    pub dir_reads: u64,
    /// Listings the kernel kept that it was told to drop.
    pub dir_drops: u64,
    pub webhooks_accepted: u64,
    pub webhooks_refused: u64,
    pub cache_bytes: u64,
    pub cache_max_bytes: u64,
    pub cache_files: u64,
    /// Errors answered to the kernel, by errno name (`ENOENT`, `EIO`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Inquiries whose metadata the mount holds (memory and store).
    pub metadata_entries: u64,
    pub inodes: u64,
    pub open_handles: u64,
    /// The listing of `inquiries/` under way, if one is.
    pub listing: Option<ListingProgress>,
    /// The cursor that cut the last listing short (it came back again), if it was cut.
    pub listing_cut_at: Option<String>,
    /// The request budget: share, reserve, calls in this window (`None` before it is set).
    pub budget: Option<crate::ratelimit::BudgetStatus>,
    /// Milliseconds API requests spent waiting for the budget, all together.
    pub budget_waited_ms: u64,
    /// Freshness by deltas (`None`: off).
    pub deltas: Option<DeltaSnapshot>,
}

/// What deltas (search on `updated-at`) have done for a mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeltaSnapshot {
    pub deltas: u64,
    pub search_pages: u64,
    /// Inquiries reported changed and applied.
    pub changes_applied: u64,
    /// Whole listings taken, by why (`first`, `scheduled`, `gap`, `untrusted`, ...).
    pub full_listings: BTreeMap<String, u64>,
    pub last_delta_unix: Option<u64>,
    pub last_full_unix: Option<u64>,
    pub last_full_reason: Option<String>,
    /// The latest `updated-at` search reported, as Unix seconds.
    pub watermark_unix: Option<u64>,
    /// Search is refused for this key: the listing is taken again by TTL.
    pub search_refused: bool,
}

/// How far a listing of `inquiries/` has come (1,000 pages for 100,000 inquiries take
/// minutes at 300 requests a minute).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListingProgress {
    pub pages: u64,
    pub inquiries: u64,
    pub elapsed_secs: u64,
    /// How many the last complete listing held: the estimate of how many are coming.
    pub expected_inquiries: Option<u64>,
}

/// The symbolic name of the errnos a mount answers with.
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EACCES => "EACCES",
        libc::EROFS => "EROFS",
        libc::ESTALE => "ESTALE",
        libc::EBADF => "EBADF",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::ENOSPC => "ENOSPC",
        libc::EINTR => "EINTR",
        libc::EAGAIN => "EAGAIN",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EPERM => "EPERM",
        libc::ENOSYS => "ENOSYS",
        libc::EINVAL => "EINVAL",
        _ => "other",
    }
}

/// A `PersonaApi` that counts every call by kind. (Whether Persona answers at all is the
/// filesystem's circuit breaker's to say: it sets [`Telemetry::set_offline`].)
pub struct CountedApi {
    inner: std::sync::Arc<dyn crate::PersonaApi>,
    tele: std::sync::Arc<Telemetry>,
}

impl CountedApi {
    pub fn new(
        inner: std::sync::Arc<dyn crate::PersonaApi>,
        tele: std::sync::Arc<Telemetry>,
    ) -> CountedApi {
        CountedApi { inner, tele }
    }
}

#[async_trait::async_trait]
impl crate::PersonaApi for CountedApi {
    async fn list_page(
        &self,
        filters: &crate::ListFilters,
        after: Option<&str>,
        page_size: u32,
    ) -> crate::Result<crate::InquiryPage> {
        self.tele.api_call(ApiCall::List);
        self.inner.list_page(filters, after, page_size).await
    }

    async fn retrieve_inquiry(&self, id: &str) -> crate::Result<crate::RetrievedInquiry> {
        self.tele.api_call(ApiCall::Retrieve);
        self.inner.retrieve_inquiry(id).await
    }

    async fn list_events(
        &self,
        names: &[String],
        from: &crate::EventsFrom,
        page_size: u32,
    ) -> crate::Result<crate::EventPage> {
        self.tele.api_call(ApiCall::Events);
        self.inner.list_events(names, from, page_size).await
    }

    async fn search_updated_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        after: Option<&str>,
        page_size: u32,
    ) -> crate::Result<crate::InquiryPage> {
        self.tele.api_call(ApiCall::Search);
        self.inner
            .search_updated_since(since, after, page_size)
            .await
    }

    async fn file_size(&self, url: &str) -> crate::Result<u64> {
        self.tele.api_call(ApiCall::Head);
        self.inner.file_size(url).await
    }

    async fn download(
        &self,
        url: &str,
        offset: u64,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> crate::Result<u64> {
        self.tele.api_call(ApiCall::Download);
        self.inner.download(url, offset, out).await
    }

    async fn download_range(
        &self,
        url: &str,
        start: u64,
        end: u64,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> crate::Result<u64> {
        self.tele.api_call(ApiCall::Range);
        self.inner.download_range(url, start, end, out).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_counts_by_kind_and_errno_name() {
        let t = Telemetry::default();
        t.api_call(ApiCall::Retrieve);
        t.api_call(ApiCall::Retrieve);
        t.api_call(ApiCall::List);
        t.error(libc::ENOENT);
        t.error(libc::EIO);
        t.error(libc::ENOENT);
        t.set_offline(true);
        let s = t.snapshot();
        assert_eq!(s.api_calls["retrieve"], 2);
        assert_eq!(s.api_calls["list"], 1);
        assert_eq!(s.api_calls["head"], 0);
        assert_eq!(s.errors["ENOENT"], 2);
        assert_eq!(s.errors["EIO"], 1);
        assert!(!s.online);
        let json = serde_json::to_string(&s).unwrap();
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
