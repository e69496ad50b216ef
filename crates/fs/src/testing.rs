//! A tiny in-memory `PersonaApi` for the unit tests: inquiries without files, counting the
//! retrieves it answers. No HTTP, no FUSE.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::cache::{CacheLimits, DiskCache};
use crate::config::CoreConfig;
use crate::core::FsCore;
use personafs_client::error::Host;
use personafs_client::{
    Error, InquiryPage, InquirySummary, ListFilters, PersonaApi, Result, RetrievedInquiry,
};

const CREATED_AT: &str = "2026-01-01T10:00:00.000Z";

#[derive(Default)]
pub(crate) struct FakeApi {
    pub(crate) ids: Mutex<BTreeSet<String>>,
    pub(crate) retrieves: AtomicUsize,
    /// Inquiries still in progress are retrieved again after the metadata TTL; final ones
    /// (the default) are not.
    pub(crate) pending: bool,
}

impl FakeApi {
    pub(crate) fn with(n: usize) -> Arc<FakeApi> {
        Arc::new(FakeApi::new(n))
    }

    pub(crate) fn new(n: usize) -> FakeApi {
        let api = FakeApi::default();
        api.ids.lock().extend((0..n).map(|i| format!("inq_{i:04}")));
        api
    }

    fn status(&self) -> &'static str {
        if self.pending { "pending" } else { "completed" }
    }

    pub(crate) fn retrieves(&self) -> usize {
        self.retrieves.load(Ordering::SeqCst)
    }
}

fn not_found() -> Error {
    Error::Http {
        host: Host::Api,
        status: 404,
        title: Some("Not Found".into()),
        details: None,
        request_id: None,
        context: "retrieve inquiry".into(),
    }
}

#[async_trait]
impl PersonaApi for FakeApi {
    async fn list_page(&self, _: &ListFilters, _: Option<&str>, _: u32) -> Result<InquiryPage> {
        Ok(InquiryPage {
            inquiries: self
                .ids
                .lock()
                .iter()
                .map(|id| InquirySummary {
                    id: id.clone(),
                    status: Some(self.status().into()),
                    created_at: personafs_client::model::parse_time(CREATED_AT),
                    redacted_at: None,
                    updated_at: None,
                    ..Default::default()
                })
                .collect(),
            next_after: None,
        })
    }

    async fn retrieve_inquiry(&self, id: &str) -> Result<RetrievedInquiry> {
        self.retrieves.fetch_add(1, Ordering::SeqCst);
        if !self.ids.lock().contains(id) {
            return Err(not_found());
        }
        let body = serde_json::json!({
            "data": {
                "type": "inquiry",
                "id": id,
                "attributes": {"status": self.status(), "created-at": CREATED_AT},
            },
            "included": [],
        });
        personafs_client::model::parse_inquiry(
            "retrieve inquiry",
            body.to_string().as_bytes(),
            SystemTime::now(),
        )
    }

    async fn list_events(
        &self,
        _: &[String],
        _: &personafs_client::EventsFrom,
        _: u32,
    ) -> Result<personafs_client::EventPage> {
        Ok(personafs_client::EventPage::default())
    }

    /// This fake does not search: refused, as Persona refuses a key that may not.
    async fn search_updated_since(
        &self,
        _: chrono::DateTime<chrono::Utc>,
        _: Option<&str>,
        _: u32,
    ) -> Result<InquiryPage> {
        Err(personafs_client::Error::Http {
            host: personafs_client::error::Host::Api,
            status: 404,
            title: Some("Not Found".into()),
            details: None,
            request_id: None,
            context: "search inquiries".into(),
        })
    }

    async fn file_size(&self, _: &str) -> Result<u64> {
        Err(not_found())
    }

    async fn download(
        &self,
        _: &str,
        _: u64,
        _: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<u64> {
        Err(not_found())
    }

    async fn download_range(
        &self,
        _: &str,
        _: u64,
        _: u64,
        _: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<u64> {
        Err(not_found())
    }
}

/// A core over `api` with its cache in `dir`, read-ahead off (so counts are exact).
pub(crate) fn core_with(api: Arc<FakeApi>, dir: &std::path::Path, cfg: CoreConfig) -> Arc<FsCore> {
    let mut cfg = cfg;
    cfg.prefetch.enabled = false;
    core_prefetching(api, dir, cfg)
}

/// A core over `api` with its cache in `dir`, read-ahead as `cfg` says.
pub(crate) fn core_prefetching(
    api: Arc<FakeApi>,
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
