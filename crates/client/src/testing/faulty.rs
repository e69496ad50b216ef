//! A `PersonaApi` wrapper that injects faults: failures of the next calls of a kind, delays,
//! refused URLs, bodies cut short, rate limiting. Each fault looks like what the HTTP client
//! returns after its own retries.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::io::AsyncWrite;

use super::{Call, CallCounts};
use crate::clock::Clock;
use crate::error::Host;
use crate::{Error, InquiryPage, ListFilters, PersonaApi, Result, RetrievedInquiry};

/// An error to answer with instead of the inner API's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// An HTTP status from the host the call goes to (500, 502, 503, 404, 401…).
    Status(u16),
    /// Connection refused or reset, after the client's retries.
    Network,
    /// The files host refuses the signed URL (403), as for an expired URL.
    Expired,
}

impl Fault {
    fn error(self, call: Call) -> Error {
        let host = if call.is_files_host() {
            Host::Files
        } else {
            Host::Api
        };
        let context = format!("{call:?} (injected)");
        match self {
            Fault::Status(status) => Error::Http {
                host,
                status,
                title: None,
                details: None,
                request_id: None,
                context,
            },
            Fault::Network => Error::Network {
                context,
                message: "connection reset by peer".into(),
            },
            Fault::Expired => Error::Http {
                host: Host::Files,
                status: 403,
                title: None,
                details: Some("Request has expired".into()),
                request_id: None,
                context,
            },
        }
    }
}

#[derive(Default)]
struct Plan {
    fail: VecDeque<Fault>,
    /// (calls left, delay) for the next calls; then `delay_all`.
    delay_next: Option<(usize, Duration)>,
    delay_all: Option<Duration>,
    rate_limited_until: Option<Instant>,
}

#[derive(Default)]
struct Cut {
    /// Bodies left to cut, after how many bytes, ending with which error.
    left: usize,
    after: u64,
    fault: Option<Fault>,
}

/// An untrustworthy search answer (the inner page, altered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchGarble {
    /// The next-page cursor is the one the page was asked with (a loop), or the page's last
    /// id when it was asked without one.
    RepeatCursor,
    /// The page's inquiries in reverse order (`updated-at` going backwards).
    Backwards,
}

/// Wraps any `PersonaApi` and injects faults by call kind.
pub struct FaultyApi<A: PersonaApi + ?Sized> {
    inner: Arc<A>,
    plans: Mutex<[Plan; 7]>,
    cut: Mutex<Cut>,
    refuse_urls: Mutex<usize>,
    calls: CallCounts,
    injected: CallCounts,
    in_flight: [AtomicU64; 7],
    max_in_flight: [AtomicU64; 7],
    /// Search pages left to garble, and how.
    garble: Mutex<(usize, Option<SearchGarble>)>,
    /// What a rate limit's reset is measured with.
    clock: Mutex<Clock>,
}

impl<A: PersonaApi> FaultyApi<A> {
    pub fn new(inner: A) -> FaultyApi<A> {
        FaultyApi::shared(Arc::new(inner))
    }
}

impl<A: PersonaApi + ?Sized> FaultyApi<A> {
    /// Wrap an API that the test keeps a handle on.
    pub fn shared(inner: Arc<A>) -> FaultyApi<A> {
        FaultyApi {
            inner,
            plans: Mutex::new(Default::default()),
            cut: Mutex::new(Cut::default()),
            refuse_urls: Mutex::new(0),
            calls: CallCounts::default(),
            injected: CallCounts::default(),
            in_flight: Default::default(),
            max_in_flight: Default::default(),
            garble: Mutex::new((0, None)),
            clock: Mutex::default(),
        }
    }

    pub fn inner(&self) -> &Arc<A> {
        &self.inner
    }

    /// The next `n` calls of `call` fail with `fault` (after any delay), without reaching the
    /// inner API.
    pub fn fail_next(&self, call: Call, n: usize, fault: Fault) {
        self.plans.lock()[call as usize]
            .fail
            .extend(std::iter::repeat_n(fault, n));
    }

    /// The next `n` calls of `call` wait `delay` before going on.
    pub fn delay_next(&self, call: Call, n: usize, delay: Duration) {
        self.plans.lock()[call as usize].delay_next = Some((n, delay));
    }

    /// Every call of `call` waits `delay` (`Duration::ZERO` ends it).
    pub fn delay(&self, call: Call, delay: Duration) {
        self.plans.lock()[call as usize].delay_all = (!delay.is_zero()).then_some(delay);
    }

    /// The next `n` files-host calls (HEAD, download, ranged download) are refused as
    /// expired (403), whatever the URL.
    pub fn refuse_urls(&self, n: usize) {
        *self.refuse_urls.lock() = n;
    }

    /// The next `n` downloads write at most `after` bytes, then fail with `fault` (a dropped
    /// connection after the client's retries: `Fault::Network`; a resume refused because the
    /// URL expired meanwhile: `Fault::Expired`).
    pub fn cut_downloads(&self, n: usize, after: u64, fault: Fault) {
        *self.cut.lock() = Cut {
            left: n,
            after,
            fault: Some(fault),
        };
    }

    /// Calls of `call` answer 429 (with the time to the reset in the details) until `reset`
    /// has passed; after that they go through.
    pub fn rate_limit(&self, call: Call, reset: Duration) {
        let until = self.clock.lock().now() + reset;
        self.plans.lock()[call as usize].rate_limited_until = Some(until);
    }

    /// The clock rate limits are measured with from now on (a test's).
    pub fn set_clock(&self, clock: Clock) {
        *self.clock.lock() = clock;
    }

    /// The next `n` search pages that succeed are altered by `garble`.
    pub fn garble_search(&self, n: usize, garble: SearchGarble) {
        *self.garble.lock() = (n, Some(garble));
    }

    /// Drop every planned fault and delay.
    pub fn clear(&self) {
        *self.garble.lock() = (0, None);
        *self.plans.lock() = Default::default();
        *self.cut.lock() = Cut::default();
        *self.refuse_urls.lock() = 0;
    }

    /// Calls of a kind that reached this wrapper.
    pub fn calls(&self, call: Call) -> u64 {
        self.calls.get(call)
    }

    /// Faults injected into calls of a kind (cut bodies included).
    pub fn injected(&self, call: Call) -> u64 {
        self.injected.get(call)
    }

    /// Calls of a kind in progress now.
    pub fn in_flight(&self, call: Call) -> u64 {
        self.in_flight[call as usize].load(Ordering::SeqCst)
    }

    /// The most calls of a kind that were in progress at once.
    pub fn max_in_flight(&self, call: Call) -> u64 {
        self.max_in_flight[call as usize].load(Ordering::SeqCst)
    }

    /// Run the plan of one call: count it, wait, and say which fault (if any) answers it.
    async fn before(&self, call: Call) -> Result<()> {
        self.calls.bump(call);
        let now = self.clock.lock().now();
        let (delay, fault) = {
            let mut plans = self.plans.lock();
            let plan = &mut plans[call as usize];
            let delay = match &mut plan.delay_next {
                Some((n, d)) if *n > 0 => {
                    *n -= 1;
                    Some(*d)
                }
                _ => plan.delay_all,
            };
            let rate_limit = plan
                .rate_limited_until
                .and_then(|until| until.checked_duration_since(now))
                .map(|left| Error::Http {
                    host: if call.is_files_host() {
                        Host::Files
                    } else {
                        Host::Api
                    },
                    status: 429,
                    title: Some("Too Many Requests".into()),
                    details: Some(format!(
                        "rate limit resets in {} s",
                        left.as_secs_f64().ceil()
                    )),
                    request_id: None,
                    context: format!("{call:?} (injected)"),
                });
            let fault = rate_limit.or_else(|| plan.fail.pop_front().map(|f| f.error(call)));
            let fault = fault.or_else(|| {
                let mut refuse = self.refuse_urls.lock();
                (call.is_files_host() && *refuse > 0).then(|| {
                    *refuse -= 1;
                    Fault::Expired.error(call)
                })
            });
            (delay, fault)
        };
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        match fault {
            Some(e) => {
                self.injected.bump(call);
                Err(e)
            }
            None => Ok(()),
        }
    }

    async fn tracked<T>(&self, call: Call, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let i = call as usize;
        let now = self.in_flight[i].fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight[i].fetch_max(now, Ordering::SeqCst);
        let _guard = InFlight(&self.in_flight[i]);
        self.before(call).await?;
        fut.await
    }

    fn take_cut(&self) -> Option<(u64, Fault)> {
        let mut cut = self.cut.lock();
        if cut.left == 0 {
            return None;
        }
        cut.left -= 1;
        cut.fault.map(|f| (cut.after, f))
    }
}

struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Passes `limit` bytes on, then fails like a dropped connection.
struct CutWriter<'a> {
    out: &'a mut (dyn AsyncWrite + Unpin + Send),
    left: u64,
}

impl AsyncWrite for CutWriter<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.left == 0 {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        let n = (buf.len() as u64).min(self.left) as usize;
        let this = &mut *self;
        match Pin::new(&mut *this.out).poll_write(cx, &buf[..n]) {
            Poll::Ready(Ok(written)) => {
                this.left -= written as u64;
                Poll::Ready(Ok(written))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.out).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.out).poll_shutdown(cx)
    }
}

#[async_trait]
impl<A: PersonaApi + ?Sized> PersonaApi for FaultyApi<A> {
    async fn list_page(
        &self,
        filters: &ListFilters,
        after: Option<&str>,
        page_size: u32,
    ) -> Result<InquiryPage> {
        self.tracked(Call::List, self.inner.list_page(filters, after, page_size))
            .await
    }

    async fn retrieve_inquiry(&self, id: &str) -> Result<RetrievedInquiry> {
        self.tracked(Call::Retrieve, self.inner.retrieve_inquiry(id))
            .await
    }

    async fn list_events(
        &self,
        names: &[String],
        from: &crate::EventsFrom,
        page_size: u32,
    ) -> Result<crate::EventPage> {
        self.tracked(Call::Events, self.inner.list_events(names, from, page_size))
            .await
    }

    async fn search_updated_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        after: Option<&str>,
        page_size: u32,
    ) -> Result<InquiryPage> {
        let inner = self.inner.search_updated_since(since, after, page_size);
        let mut page = self.tracked(Call::Search, inner).await?;
        let garble = {
            let mut g = self.garble.lock();
            (g.0 > 0).then(|| {
                g.0 -= 1;
                g.1
            })
        };
        match garble.flatten() {
            Some(SearchGarble::RepeatCursor) => {
                self.injected.bump(Call::Search);
                let last = page.inquiries.last().map(|i| i.id.clone());
                page.next_after = after.map(String::from).or(last).or(page.next_after);
            }
            Some(SearchGarble::Backwards) => {
                self.injected.bump(Call::Search);
                page.inquiries.reverse();
            }
            None => {}
        }
        Ok(page)
    }

    async fn file_size(&self, url: &str) -> Result<u64> {
        self.tracked(Call::Head, self.inner.file_size(url)).await
    }

    async fn download(
        &self,
        url: &str,
        offset: u64,
        out: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64> {
        self.tracked(Call::Download, async {
            let Some((after, fault)) = self.take_cut() else {
                return self.inner.download(url, offset, out).await;
            };
            let mut cut = CutWriter { out, left: after };
            match self.inner.download(url, offset, &mut cut).await {
                // The body ended within the allowance: nothing to cut.
                Ok(n) => Ok(n),
                Err(Error::Io(_)) => {
                    self.injected.bump(Call::Download);
                    Err(fault.error(Call::Download))
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn download_range(
        &self,
        url: &str,
        start: u64,
        end: u64,
        out: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64> {
        self.tracked(
            Call::DownloadRange,
            self.inner.download_range(url, start, end, out),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FileSpec, InquirySpec, MemoryApi};

    fn api() -> FaultyApi<MemoryApi> {
        let mem = MemoryApi::new();
        mem.add_inquiry(InquirySpec::new("inq_f").document(
            "doc_1",
            [FileSpec::photo(
                "front-photo",
                "f.jpg",
                (0..=255u8).cycle().take(300_000).collect::<Vec<_>>(),
            )],
        ));
        FaultyApi::new(mem)
    }

    #[tokio::test]
    async fn next_calls_fail_with_the_chosen_error_then_pass() {
        let api = api();
        api.fail_next(Call::Retrieve, 2, Fault::Status(503));
        api.fail_next(Call::Retrieve, 1, Fault::Network);
        api.fail_next(Call::Head, 1, Fault::Status(404));
        let e = api.retrieve_inquiry("inq_f").await.unwrap_err();
        assert!(matches!(
            e,
            Error::Http {
                host: Host::Api,
                status: 503,
                ..
            }
        ));
        assert_eq!(e.status(), Some(503));
        api.retrieve_inquiry("inq_f").await.unwrap_err();
        let e = api.retrieve_inquiry("inq_f").await.unwrap_err();
        assert!(matches!(e, Error::Network { .. }));
        assert!(api.retrieve_inquiry("inq_f").await.is_ok());
        assert_eq!(api.calls(Call::Retrieve), 4);
        assert_eq!(api.injected(Call::Retrieve), 3);
        assert_eq!(api.inner().calls(Call::Retrieve), 1);
        let url = api.inner().files_of("inq_f")[0].url.clone();
        let e = api.file_size(&url).await.unwrap_err();
        assert!(matches!(
            e,
            Error::Http {
                host: Host::Files,
                status: 404,
                ..
            }
        ));
        assert_eq!(api.file_size(&url).await.unwrap(), 300_000);
    }

    #[tokio::test]
    async fn cut_bodies_end_in_an_error_after_partial_output() {
        let api = api();
        let url = api.inner().files_of("inq_f")[0].url.clone();
        let full = api
            .inner()
            .bytes_of("inq_f", "doc_1-front-photo.jpg")
            .unwrap();
        api.cut_downloads(1, 100_000, Fault::Network);
        let mut out = Vec::new();
        let e = api.download(&url, 0, &mut out).await.unwrap_err();
        assert!(matches!(e, Error::Network { .. }), "{e:?}");
        assert_eq!(out.len(), 100_000);
        assert_eq!(out[..], full[..100_000]);
        let n = api.download(&url, 100_000, &mut out).await.unwrap();
        assert_eq!(n, 200_000);
        assert_eq!(out[..], full[..]);
        assert_eq!(api.injected(Call::Download), 1);

        api.cut_downloads(1, 10, Fault::Expired);
        let e = api.download(&url, 0, &mut Vec::new()).await.unwrap_err();
        assert!(e.is_url_expired());
    }

    #[tokio::test]
    async fn refused_urls_rate_limits_and_delays() {
        let api = api();
        let url = api.inner().files_of("inq_f")[0].url.clone();
        api.refuse_urls(1);
        assert!(
            api.download_range(&url, 0, 10, &mut Vec::new())
                .await
                .unwrap_err()
                .is_url_expired()
        );
        let mut part = Vec::new();
        api.download_range(&url, 0, 10, &mut part).await.unwrap();
        assert_eq!(part, (0..10u8).collect::<Vec<_>>());

        let clock = Clock::manual();
        api.set_clock(clock.clone());
        api.rate_limit(Call::List, Duration::from_secs(60));
        let e = api
            .list_page(&ListFilters::default(), None, 10)
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(429));
        assert!(e.to_string().contains("resets in"), "{e}");
        clock.advance(Duration::from_secs(61));
        assert_eq!(
            api.list_page(&ListFilters::default(), None, 10)
                .await
                .unwrap()
                .inquiries
                .len(),
            1
        );

        api.delay(Call::Retrieve, Duration::from_millis(60));
        let (a, b) = tokio::join!(api.retrieve_inquiry("inq_f"), api.retrieve_inquiry("inq_f"));
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(api.max_in_flight(Call::Retrieve), 2);
        api.clear();
        assert_eq!(api.max_in_flight(Call::Download), 0);
    }
}
