//! Requests the kernel may interrupt. A process waiting in a read (or a lookup, an open...)
//! that gets a signal makes the kernel send `FUSE_INTERRUPT` naming the request; the adapter
//! then answers that request with `EINTR` at once, so Ctrl-C works even while a download is
//! waiting on the network. The work itself is only abandoned by that caller: a download in
//! progress goes on for the others and for the cache.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Interrupts that came before their request was registered (a FUSE thread may dispatch the
/// interrupt before another one has registered the request); a few are enough.
const EARLY_KEPT: usize = 64;

#[derive(Default)]
pub(crate) struct Interrupts {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    waiting: HashMap<u64, Arc<Notify>>,
    early: VecDeque<u64>,
}

/// A registered request; it leaves the registry when dropped.
pub(crate) struct Pending {
    unique: u64,
    notify: Arc<Notify>,
    owner: Arc<Interrupts>,
}

impl Interrupts {
    /// Register request `unique` (the kernel's id) before waiting on its answer.
    pub(crate) fn register(self: &Arc<Self>, unique: u64) -> Pending {
        let notify = Arc::new(Notify::new());
        let mut inner = self.inner.lock();
        if let Some(i) = inner.early.iter().position(|&u| u == unique) {
            inner.early.remove(i);
            // Kept as a permit: `interrupted()` completes at once.
            notify.notify_one();
        }
        inner.waiting.insert(unique, notify.clone());
        Pending {
            unique,
            notify,
            owner: self.clone(),
        }
    }

    /// The kernel interrupts request `unique`.
    pub(crate) fn interrupt(&self, unique: u64) {
        let mut inner = self.inner.lock();
        match inner.waiting.get(&unique) {
            Some(notify) => notify.notify_one(),
            None => {
                // Either answered already (then this is forgotten soon) or not yet registered.
                if inner.early.len() == EARLY_KEPT {
                    inner.early.pop_front();
                }
                inner.early.push_back(unique);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().waiting.len()
    }
}

impl Pending {
    /// Completes when the kernel interrupts this request.
    pub(crate) async fn interrupted(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.owner.inner.lock().waiting.remove(&self.unique);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn fires(p: &Pending) -> bool {
        tokio::time::timeout(Duration::from_millis(50), p.interrupted())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn an_interrupt_reaches_its_request_only() {
        let reg = Arc::new(Interrupts::default());
        let (a, b) = (reg.register(7), reg.register(8));
        reg.interrupt(7);
        assert!(fires(&a).await);
        assert!(!fires(&b).await);
    }

    #[tokio::test]
    async fn an_interrupt_before_registration_is_kept() {
        let reg = Arc::new(Interrupts::default());
        reg.interrupt(9);
        let p = reg.register(9);
        assert!(fires(&p).await);
        // Used up: a later request with another id is not interrupted by it.
        assert!(!fires(&reg.register(10)).await);
    }

    #[tokio::test]
    async fn answered_requests_leave_and_early_ones_are_bounded() {
        let reg = Arc::new(Interrupts::default());
        drop(reg.register(1));
        assert_eq!(reg.len(), 0);
        for u in 100..100 + 2 * EARLY_KEPT as u64 {
            reg.interrupt(u);
        }
        assert_eq!(reg.inner.lock().early.len(), EARLY_KEPT);
        // The oldest were let go, the newest kept.
        assert!(!fires(&reg.register(100)).await);
        assert!(fires(&reg.register(100 + 2 * EARLY_KEPT as u64 - 1)).await);
    }
}
