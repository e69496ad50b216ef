//! Ctrl-C and `kill` while a request waits on the network. fuser answers the kernel's
//! `FUSE_INTERRUPT` with `ENOSYS`, after which the kernel stops sending it and the caller of a
//! waiting request sleeps until the filesystem answers (a fatal signal only moves it from
//! killable to uninterruptible sleep). So personafs watches the caller itself: while a request
//! waits, its caller's pending signals are read from `/proc/<pid>/status` every
//! [`POLL_EVERY`] (100 ms), and the request is answered `EINTR` once one is pending and not
//! blocked (`SigPnd`, the thread's own, or `ShdPnd`, the process's, less `SigBlk`; a fatal
//! signal shows there as SIGKILL), or once the caller is gone. Only that caller stops
//! waiting: a download in progress goes on for the others and for the cache.

use std::time::Duration;

/// How often a waiting request looks at its caller: Ctrl-C is answered within this.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(100);

/// Completes once `pid` (the calling thread, as the kernel gives it) has a signal that would
/// have interrupted its wait, or has exited. Never completes for pid 0 (the kernel's own
/// requests have no caller to signal).
pub(crate) async fn caller_signalled(pid: u32) {
    if pid == 0 {
        return std::future::pending().await;
    }
    let path = format!("/proc/{pid}/status");
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is at once: skip it, most requests are answered well within one period.
    tick.tick().await;
    loop {
        tick.tick().await;
        match std::fs::read_to_string(&path) {
            Ok(status) if !interrupting(&status) => {}
            // Pending, or gone (nobody is waiting for the answer any more).
            _ => return,
        }
    }
}

/// Whether a `/proc/<pid>/status` text shows a pending signal its thread does not block.
fn interrupting(status: &str) -> bool {
    let mask = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    // SigPnd: this thread's own; ShdPnd: the process's, delivered to any thread.
    let pending = mask("SigPnd:") | mask("ShdPnd:");
    pending & !mask("SigBlk:") != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(pnd: &str, shd: &str, blk: &str) -> String {
        format!(
            "Name:\tcat\nState:\tD (disk sleep)\nSigQ:\t1/94775\nSigPnd:\t{pnd}\nShdPnd:\t{shd}\nSigBlk:\t{blk}\nSigIgn:\t0000000000000000\n"
        )
    }

    #[test]
    fn a_pending_unblocked_signal_interrupts_and_a_blocked_one_does_not() {
        let none = "0000000000000000";
        assert!(!interrupting(&status(none, none, none)));
        // SIGINT (2) sent to the process.
        assert!(interrupting(&status(none, "0000000000000002", none)));
        // SIGKILL (9) set on the thread by a fatal signal.
        assert!(interrupting(&status("0000000000000100", none, none)));
        // SIGINT pending but blocked: the kernel would not have interrupted either.
        assert!(!interrupting(&status(
            none,
            "0000000000000002",
            "0000000000000002"
        )));
        assert!(!interrupting("garbage"));
    }

    #[tokio::test]
    async fn a_caller_that_is_gone_ends_the_wait_and_pid_0_never_does() {
        // The largest pid Linux hands out is 4194304: this one cannot exist.
        tokio::time::timeout(Duration::from_secs(1), caller_signalled(u32::MAX - 1))
            .await
            .expect("a missing process ends the wait");
        assert!(
            tokio::time::timeout(3 * POLL_EVERY, caller_signalled(0))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_quiet_caller_keeps_waiting() {
        // This test's own process has no pending signal.
        let me = std::process::id();
        assert!(
            tokio::time::timeout(3 * POLL_EVERY, caller_signalled(me))
                .await
                .is_err()
        );
    }
}
