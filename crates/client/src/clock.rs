//! The time components decide by: how old a view or a listing is, when an answer expires,
//! when the breaker probes again. In a mount it is the host's clock; a test gives the
//! components a clock it moves forward itself (`advance`), so a TTL passes without waiting
//! for it.
//!
//! A test clock runs with the host's clock plus what the test advanced it by, rather than
//! standing still: the filesystem orders its instants (a view retrieved after a URL was
//! refused, one listing after the next), and a stopped clock would make two moments of a
//! test the same instant, which never happens in a mount. Tests give their TTLs far more
//! than a test's own run time, so only `advance` ever makes something expire.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};

#[derive(Clone, Default)]
pub struct Clock {
    /// `None`: the host's clock. `Some`: the host's clock plus these nanoseconds.
    advanced: Option<Arc<AtomicU64>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.advanced {
            None => f.write_str("Clock(host)"),
            Some(_) => write!(f, "Clock(host + {:?})", self.offset()),
        }
    }
}

impl Clock {
    /// The host's clock.
    pub fn host() -> Clock {
        Clock::default()
    }

    /// A clock a test moves with `advance` (it starts at the host's time). Clones share it.
    #[cfg(any(test, feature = "testing"))]
    pub fn manual() -> Clock {
        Clock {
            advanced: Some(Arc::default()),
        }
    }

    /// Move a test's clock forward by `by`: whatever it was given to decide by sees that
    /// much more time passed. Panics on the host's clock.
    #[cfg(any(test, feature = "testing"))]
    pub fn advance(&self, by: Duration) {
        let advanced = self
            .advanced
            .as_ref()
            .expect("only a manual clock is advanced");
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        advanced.fetch_add(nanos, Ordering::SeqCst);
    }

    fn offset(&self) -> Duration {
        self.advanced.as_ref().map_or(Duration::ZERO, |a| {
            Duration::from_nanos(a.load(Ordering::SeqCst))
        })
    }

    /// Now, for ages and deadlines.
    pub fn now(&self) -> Instant {
        Instant::now() + self.offset()
    }

    /// How long since `earlier` (an instant of this clock); zero if it is in the future.
    pub fn since(&self, earlier: Instant) -> Duration {
        self.now().saturating_duration_since(earlier)
    }

    /// Now, as a date (what is stored, and compared with Persona's times).
    pub fn system(&self) -> SystemTime {
        SystemTime::now() + self.offset()
    }

    /// `system` in UTC.
    pub fn utc(&self) -> DateTime<Utc> {
        self.system().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_by_what_it_is_advanced_and_clones_share_it() {
        let clock = Clock::manual();
        let other = clock.clone();
        let (at, on) = (clock.now(), clock.system());
        other.advance(Duration::from_secs(3600));
        assert!(clock.since(at) >= Duration::from_secs(3600));
        assert!(clock.system().duration_since(on).unwrap() >= Duration::from_secs(3600));
        // The host's clock is not moved: an instant of the test's is in its future.
        assert_eq!(Clock::host().since(clock.now()), Duration::ZERO);
    }
}
