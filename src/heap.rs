//! The process heap at scale. glibc's malloc gives each thread that allocates its own arena
//! (up to eight per core) and keeps freed memory: after a walk of 20,000 inquiries a mount held
//! about 370 MiB, of which a third was free memory spread over arenas (measured with
//! `MALLOC_ARENA_MAX=2`: 264 MiB). personafs allocates little per request on its data path
//! (downloads reuse their buffers), so the binary limits glibc to two arenas (they cost
//! nothing measurable), and a trim every [`TRIM_EVERY`] (20 s) gives back what a large
//! listing or a walk freed.

use std::time::Duration;

/// How often freed memory is given back to the system.
pub const TRIM_EVERY: Duration = Duration::from_secs(20);

/// Two arenas for the whole process. Call first thing in `main`, before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc tunable; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Give freed heap memory back to the system (cheap: a few ms on a large heap).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Trim every [`TRIM_EVERY`] on `rt`, for as long as the runtime runs.
pub fn trim_periodically(rt: &tokio::runtime::Handle) {
    rt.spawn(async {
        let mut every = tokio::time::interval(TRIM_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn trimming_after_a_large_free_gives_memory_back() {
        // Many small blocks (below the mmap threshold) then freed: the heap keeps them until
        // trimmed. Checked through the process's resident size.
        fn rss_kib() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        }
        let blocks: Vec<Vec<u8>> = (0..200_000).map(|i| vec![i as u8; 512]).collect();
        let full = rss_kib();
        drop(blocks);
        super::trim();
        let after = rss_kib();
        assert!(
            after + 50_000 < full,
            "trim gave back too little: {full} KiB before, {after} KiB after"
        );
    }
}
