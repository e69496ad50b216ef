//! What the client has done, counted as it happens: API calls by kind, 429s, retries, the
//! request budget. One `Telemetry` per mount; `personafs status` and `/metrics` read a
//! [`Snapshot`] of it, which the filesystem's own counters (opens, reads, cache hits,
//! downloads, errors by errno: `personafs_fs::Counters`) fill in further.
//!
//! Nothing here ever holds an inquiry id, a file name, a URL or a token: only counts by kind.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

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

/// The client's counters of one mount. Cheap to update from any thread.
#[derive(Debug)]
pub struct Telemetry {
    started: Instant,
    started_unix: u64,
    api_calls: [AtomicU64; 7],
    pub rate_limited: AtomicU64,
    pub retries: AtomicU64,
    /// Requests per minute still allowed by the client's budget (updated as it is drawn).
    pub rate_budget_left: AtomicU64,
    /// Milliseconds API requests spent waiting for the request budget, all together.
    pub budget_waited_ms: AtomicU64,
    /// The budget requests draw from, asked for its figures at each snapshot.
    budget: BudgetSource,
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
            rate_budget_left: AtomicU64::new(0),
            budget_waited_ms: AtomicU64::new(0),
            budget: BudgetSource::default(),
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

    /// Where API requests take their budget from: its figures are in every snapshot.
    pub fn set_budget(&self, budget: std::sync::Arc<dyn crate::ratelimit::Budget>) {
        *self.budget.0.write() = Some(budget);
    }

    /// An API request waited this long for the budget.
    pub fn budget_waited(&self, waited: std::time::Duration) {
        self.budget_waited_ms
            .fetch_add(waited.as_millis() as u64, Relaxed);
    }

    /// The counters as they stand; the caller fills in what only it knows (the filesystem's
    /// counters, cache, metadata).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            uptime_secs: self.started.elapsed().as_secs(),
            started_unix: self.started_unix,
            api_calls: ApiCall::ALL
                .iter()
                .map(|k| (k.name().to_string(), self.api_calls(*k)))
                .collect(),
            rate_limited: self.rate_limited.load(Relaxed),
            rate_budget_left: self.rate_budget_left.load(Relaxed),
            retries: self.retries.load(Relaxed),
            budget: self.budget.0.read().as_ref().map(|b| b.status()),
            budget_waited_ms: self.budget_waited_ms.load(Relaxed),
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

/// A `PersonaApi` that counts every call by kind. (Whether Persona answers at all is the
/// filesystem's circuit breaker's to say, in its own counters.)
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
    fn snapshot_counts_api_calls_by_kind() {
        let t = Telemetry::default();
        t.api_call(ApiCall::Retrieve);
        t.api_call(ApiCall::Retrieve);
        t.api_call(ApiCall::List);
        let s = t.snapshot();
        assert_eq!(s.api_calls["retrieve"], 2);
        assert_eq!(s.api_calls["list"], 1);
        assert_eq!(s.api_calls["head"], 0);
        let json = serde_json::to_string(&s).unwrap();
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
