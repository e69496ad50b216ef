//! How far the listing under way has come, for `personafs status` and the log: the first
//! listing of a large organization takes minutes (1,000 pages at 300 requests a minute).
//! It measures with the host's clock, not the core's (`CoreConfig::clock`): it decides
//! nothing, it reports how long a listing really took.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use personafs_client::telemetry::ListingProgress;

/// Between two log lines about a listing under way.
const LOG_EVERY: Duration = Duration::from_secs(60);

struct Under {
    pages: u64,
    inquiries: u64,
    started: Instant,
    logged: Instant,
    expected: Option<u64>,
}

#[derive(Default)]
pub(crate) struct Progress {
    under: Mutex<Option<Under>>,
    cut_at: Mutex<Option<String>>,
}

impl Progress {
    /// A listing starts; `expected` is how many the last one held, if known.
    pub(crate) fn start(&self, expected: Option<usize>) {
        let now = Instant::now();
        *self.under.lock() = Some(Under {
            pages: 0,
            inquiries: 0,
            started: now,
            logged: now,
            expected: expected.map(|n| n as u64),
        });
    }

    /// A page arrived; says so in the log once a minute (returns whether it did).
    pub(crate) fn page(&self, listed_so_far: usize) -> bool {
        let mut under = self.under.lock();
        let Some(u) = under.as_mut() else {
            return false;
        };
        u.pages += 1;
        u.inquiries = listed_so_far as u64;
        let due = u.logged.elapsed() >= LOG_EVERY;
        if due {
            u.logged = Instant::now();
            tracing::info!(
                pages = u.pages,
                inquiries = u.inquiries,
                expected = u.expected,
                "listing inquiries: {} pages, {} inquiries so far, for {} s",
                u.pages,
                u.inquiries,
                u.started.elapsed().as_secs()
            );
        }
        due
    }

    /// The listing ended: whole (`cut_at` none), or cut short at a repeating cursor.
    pub(crate) fn finish(&self, cut_at: Option<String>) {
        self.under.lock().take();
        *self.cut_at.lock() = cut_at;
    }

    /// The listing under way, if one is.
    pub(crate) fn now(&self) -> Option<ListingProgress> {
        self.under.lock().as_ref().map(|u| ListingProgress {
            pages: u.pages,
            inquiries: u.inquiries,
            elapsed_secs: u.started.elapsed().as_secs(),
            expected_inquiries: u.expected,
        })
    }

    /// The cursor that cut the last listing short, if it was.
    pub(crate) fn cut_at(&self) -> Option<String> {
        self.cut_at.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_pages_while_listing_and_nothing_after() {
        let p = Progress::default();
        assert!(p.now().is_none());
        p.start(Some(250));
        assert!(!p.page(100), "not logged within the first minute");
        assert!(!p.page(200));
        let now = p.now().unwrap();
        assert_eq!((now.pages, now.inquiries), (2, 200));
        assert_eq!(now.expected_inquiries, Some(250));
        // A minute on, the next page is logged; the one after it is not.
        if let Some(u) = p.under.lock().as_mut() {
            u.logged -= LOG_EVERY;
        }
        assert!(p.page(300));
        assert!(!p.page(400));
        p.finish(Some("\"c1\"".into()));
        assert!(p.now().is_none());
        assert_eq!(p.cut_at().as_deref(), Some("\"c1\""));
        p.start(None);
        p.finish(None);
        assert_eq!(p.cut_at(), None);
    }
}
