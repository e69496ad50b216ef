//! "No such inquiry" answers, believed for the negative TTL without asking Persona again.
//! Bounded: beyond `capacity` ids the least recently asked go.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lru::LruCache;
use parking_lot::Mutex;
use personafs_client::clock::Clock;

pub(crate) struct NegativeCache {
    ttl: Duration,
    until: Mutex<LruCache<Arc<str>, Instant>>,
    clock: Clock,
}

impl NegativeCache {
    pub(crate) fn new(ttl: Duration, capacity: usize, clock: Clock) -> NegativeCache {
        NegativeCache {
            ttl,
            until: Mutex::new(LruCache::new(capacity_of(capacity))),
            clock,
        }
    }

    /// Whether `id` is known to be missing right now.
    pub(crate) fn is_missing(&self, id: &str) -> bool {
        let mut until = self.until.lock();
        match until.get(id) {
            Some(&t) if self.clock.now() < t => true,
            Some(_) => {
                until.pop(id);
                false
            }
            None => false,
        }
    }

    pub(crate) fn insert(&self, id: &Arc<str>) {
        self.until
            .lock()
            .put(id.clone(), self.clock.now() + self.ttl);
    }

    /// `id` may exist after all (an event said it appeared).
    pub(crate) fn remove(&self, id: &str) {
        self.until.lock().pop(id);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.until.lock().len()
    }
}

pub(crate) fn capacity_of(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n.max(1)).unwrap_or(NonZeroUsize::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_expire_and_the_cache_stays_bounded() {
        let clock = Clock::manual();
        let neg = NegativeCache::new(Duration::from_secs(10), 3, clock.clone());
        for i in 0..10 {
            neg.insert(&Arc::from(format!("inq_{i}")));
        }
        assert_eq!(neg.len(), 3);
        assert!(neg.is_missing("inq_9"));
        assert!(!neg.is_missing("inq_0"), "the oldest answers were evicted");
        clock.advance(Duration::from_secs(11));
        assert!(!neg.is_missing("inq_9"), "the answer expired");
    }
}
