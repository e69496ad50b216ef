//! How every request is answered without a FUSE thread ever waiting on the network.
//!
//! Each operation has one implementation: an async fn of the core. The FUSE thread polls
//! its future once. When memory (or the cache on local disk) has the answer, that poll
//! returns it and the request is answered right there: a trip through the runtime costs
//! more than the answer. When the future is pending, the same future, with whatever it has
//! started, goes to the runtime and finishes there.
//!
//! The rule that makes this safe: an operation does nothing on its way to its first
//! `.await` that may block for long (a network call, a big listing grouped); such work is
//! behind an `.await` (a request, `spawn_blocking`), so the first poll returns pending
//! instead of blocking the thread. Futures polled here run inside the runtime's context
//! (they may spawn), with a waker that does nothing: a pending future is polled again by
//! the runtime, which registers its own waker then.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

thread_local! {
    /// Whether this thread is inside `poll_once`'s poll.
    static POLLING_ONCE: Cell<bool> = const { Cell::new(false) };
}

/// Clears `POLLING_ONCE` when the poll ends, even by a panic.
struct Polling;

impl Drop for Polling {
    fn drop(&mut self) {
        POLLING_ONCE.set(false);
    }
}

/// What one poll of a request gave.
pub enum Answer<F: Future> {
    /// The answer, given without waiting.
    Now(F::Output),
    /// The request must wait: the future, to be finished on the runtime.
    Later(Pin<Box<F>>),
}

impl<F: Future> Answer<F> {
    /// The answer if it was there at once (a pending request is dropped, which cancels it).
    pub fn now(self) -> Option<F::Output> {
        match self {
            Answer::Now(v) => Some(v),
            Answer::Later(_) => None,
        }
    }
}

/// Poll `fut` once on this thread, inside `rt`'s context.
pub fn poll_once<F: Future>(rt: &tokio::runtime::Handle, fut: F) -> Answer<F> {
    let _context = rt.enter();
    let mut fut = Box::pin(fut);
    POLLING_ONCE.set(true);
    let _polling = Polling;
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Answer::Now(v),
        Poll::Pending => Answer::Later(fut),
    }
}

/// Where a request to Persona starts: never within `poll_once`'s poll, which may run on a
/// FUSE thread. That thread then never touches a socket, and a request answered from memory
/// or dropped there has cost Persona nothing. Polled there, this is pending once, so the
/// request starts at the next poll, on the runtime; anywhere else it is ready at once.
pub(crate) async fn off_the_fuse_thread() {
    if POLLING_ONCE.get() {
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_ready_request_is_answered_on_the_calling_thread() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let caller = std::thread::current().id();
        let answered_on = poll_once(rt.handle(), async { std::thread::current().id() });
        assert!(matches!(answered_on, Answer::Now(t) if t == caller));
    }

    #[test]
    fn a_pending_request_finishes_on_the_runtime_without_starting_again() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let s = started.clone();
        let answer = poll_once(rt.handle(), async move {
            s.fetch_add(1, Ordering::SeqCst); // the work before its first wait
            // Runtime context is there on the first poll: spawning works.
            let spawned = tokio::spawn(async { 2 });
            rx.await.unwrap() + spawned.await.unwrap()
        });
        let Answer::Later(fut) = answer else {
            panic!("answered without its message")
        };
        assert_eq!(started.load(Ordering::SeqCst), 1);
        let done = rt.spawn(fut);
        tx.send(40).unwrap();
        assert_eq!(rt.block_on(done).unwrap(), 42);
        assert_eq!(started.load(Ordering::SeqCst), 1, "started once");
    }

    #[test]
    fn a_request_waits_to_leave_the_first_poll_and_only_there() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let request = async {
            off_the_fuse_thread().await;
            1
        };
        assert!(matches!(poll_once(rt.handle(), request), Answer::Later(_)));
        // Elsewhere (the runtime, a background task) it goes on at once.
        let request = async {
            off_the_fuse_thread().await;
            1
        };
        assert_eq!(futures::FutureExt::now_or_never(request), Some(1));
    }
}
