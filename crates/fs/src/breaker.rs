//! The circuit breaker: after a few consecutive failures to reach Persona's API (connection
//! refused or reset, timeouts, 5xx — each after the client's own retries) the mount stops asking and
//! answers from the store and the cache at once; after a while one request probes again, and
//! the first answer from Persona closes the breaker. Each transition is logged once.
//!
//! [`BreakerApi`] wraps the client: API calls go through the breaker and move it; the files
//! host is not tried while it is open (no probe is spent on it), and its failures never move
//! it (they are the reads' own: EIO after the I/O timeout). Opens after [`OPEN_AFTER`] (3)
//! failures in a row; one probe goes every `CoreConfig::offline_probe` (15 s by default).

use std::sync::Arc;
use std::time::{Duration, Instant};

use personafs_client::clock::Clock;

use async_trait::async_trait;
use parking_lot::Mutex;
use personafs_client::{
    Error, EventPage, EventsFrom, InquiryPage, ListFilters, PersonaApi, Result, RetrievedInquiry,
};

use crate::counters::Counters;

/// Consecutive failures to reach Persona that open the breaker.
pub(crate) const OPEN_AFTER: u32 = 3;

/// Whether an error says Persona could not be reached (rather than that it answered "no").
pub(crate) fn unreachable(e: &Error) -> bool {
    match e {
        Error::Network { .. } => true,
        e => e.status().is_some_and(|s| s >= 500),
    }
}

#[derive(Default)]
struct State {
    failures: u32,
    /// Open: calls fail at once until this instant, when one probe goes through.
    open_until: Option<Instant>,
}

pub(crate) struct Breaker {
    state: Mutex<State>,
    probe_after: Duration,
    counters: Arc<Counters>,
    clock: Clock,
}

impl Breaker {
    pub(crate) fn new(probe_after: Duration, counters: Arc<Counters>, clock: Clock) -> Breaker {
        Breaker {
            state: Mutex::default(),
            probe_after,
            counters,
            clock,
        }
    }

    /// Whether the breaker is open (Persona counted unreachable).
    pub(crate) fn is_open(&self) -> bool {
        self.state.lock().open_until.is_some()
    }

    /// May a call go to Persona now? When open, only one probe per `probe_after`.
    fn admit(&self) -> bool {
        let mut st = self.state.lock();
        match st.open_until {
            None => true,
            Some(until) if self.clock.now() >= until => {
                // This call is the probe; the others keep failing at once meanwhile.
                st.open_until = Some(self.clock.now() + self.probe_after);
                true
            }
            Some(_) => false,
        }
    }

    /// Persona was found unreachable elsewhere (the mount's start): open now, probe later.
    pub(crate) fn open_now(&self) {
        let mut st = self.state.lock();
        if st.open_until.is_none() {
            st.failures = OPEN_AFTER;
            st.open_until = Some(self.clock.now() + self.probe_after);
            tracing::warn!(probe_every = ?self.probe_after,
                "Persona cannot be reached; offline mode: answering from the metadata store and the cache");
            self.counters.set_offline(true);
        }
    }

    fn record<T>(&self, result: &Result<T>) {
        let reached = match result {
            Ok(_) => true,
            Err(e) => !unreachable(e),
        };
        let mut st = self.state.lock();
        if reached {
            st.failures = 0;
            if st.open_until.take().is_some() {
                tracing::info!("Persona is reachable again; leaving offline mode");
                self.counters.set_offline(false);
            }
            return;
        }
        st.failures = st.failures.saturating_add(1);
        if st.open_until.is_none() && st.failures >= OPEN_AFTER {
            st.open_until = Some(self.clock.now() + self.probe_after);
            tracing::warn!(
                failures = st.failures,
                probe_every = ?self.probe_after,
                "Persona cannot be reached; offline mode: answering from the metadata store and the cache"
            );
            self.counters.set_offline(true);
        }
    }

    fn refused(context: &str) -> Error {
        Error::Network {
            context: context.to_string(),
            message: "Persona is unreachable (offline mode; probing again later)".into(),
        }
    }
}

/// A `PersonaApi` behind the breaker.
pub(crate) struct BreakerApi {
    inner: Arc<dyn PersonaApi>,
    breaker: Arc<Breaker>,
}

impl BreakerApi {
    pub(crate) fn new(inner: Arc<dyn PersonaApi>, breaker: Arc<Breaker>) -> BreakerApi {
        BreakerApi { inner, breaker }
    }

    async fn call<T>(&self, what: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        if !self.breaker.admit() {
            return Err(Breaker::refused(what));
        }
        crate::answer::off_the_fuse_thread().await;
        let result = fut.await;
        self.breaker.record(&result);
        result
    }

    /// The files host is not tried while the breaker is open (no probe is spent on it).
    async fn files_host(&self, what: &str) -> Result<()> {
        if self.breaker.is_open() {
            return Err(Breaker::refused(what));
        }
        crate::answer::off_the_fuse_thread().await;
        Ok(())
    }
}

#[async_trait]
impl PersonaApi for BreakerApi {
    async fn list_page(
        &self,
        filters: &ListFilters,
        after: Option<&str>,
        page_size: u32,
    ) -> Result<InquiryPage> {
        self.call(
            "listing inquiries",
            self.inner.list_page(filters, after, page_size),
        )
        .await
    }

    async fn retrieve_inquiry(&self, id: &str) -> Result<RetrievedInquiry> {
        self.call("retrieving an inquiry", self.inner.retrieve_inquiry(id))
            .await
    }

    async fn list_events(
        &self,
        names: &[String],
        from: &EventsFrom,
        page_size: u32,
    ) -> Result<EventPage> {
        self.call(
            "listing events",
            self.inner.list_events(names, from, page_size),
        )
        .await
    }

    async fn search_updated_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        after: Option<&str>,
        page_size: u32,
    ) -> Result<InquiryPage> {
        self.call(
            "searching inquiries",
            self.inner.search_updated_since(since, after, page_size),
        )
        .await
    }

    // The files host does not move the breaker (its failures are the reads' own: EIO after
    // `io_timeout`), but while the breaker is open Persona counts as unreachable as a whole:
    // a URL still valid in memory is not tried either, and an uncached file fails at once.
    async fn file_size(&self, url: &str) -> Result<u64> {
        self.files_host("asking a file's size").await?;
        self.inner.file_size(url).await
    }

    async fn download(
        &self,
        url: &str,
        offset: u64,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<u64> {
        self.files_host("downloading a file").await?;
        self.inner.download(url, offset, out).await
    }

    async fn download_range(
        &self,
        url: &str,
        start: u64,
        end: u64,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<u64> {
        self.files_host("downloading part of a file").await?;
        self.inner.download_range(url, start, end, out).await
    }
}
