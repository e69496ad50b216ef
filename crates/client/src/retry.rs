//! How long to wait before trying again.

use std::time::Duration;

use rand::Rng;

/// Never wait longer than this between two attempts after an error.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Exponential backoff with jitter: `base · 2^attempt`, capped, then scaled by a random factor
/// in [0.5, 1.0] so that many clients that failed together do not retry together.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF);
    exp.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

/// After a 429: until `RateLimit-Reset` (seconds), capped at `cap`, plus up to 20 % jitter
/// (still within the cap); without the header, plain backoff from a one-second base.
pub fn rate_limited_wait(reset_secs: Option<u64>, attempt: u32, cap: Duration) -> Duration {
    match reset_secs {
        Some(secs) => {
            let wait = Duration::from_secs(secs).max(Duration::from_millis(100));
            wait.mul_f64(rand::thread_rng().gen_range(1.0..=1.2))
                .min(cap)
        }
        None => backoff(Duration::from_secs(1), attempt).min(cap),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let base = Duration::from_millis(100);
        for attempt in 0..6 {
            let full = base * (1 << attempt);
            for _ in 0..50 {
                let d = backoff(base, attempt);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
        assert!(backoff(base, 40) <= MAX_BACKOFF);
        assert!(backoff(base, 40) >= MAX_BACKOFF / 2);
    }

    #[test]
    fn rate_limited_wait_follows_reset_within_cap() {
        let cap = Duration::from_secs(60);
        for _ in 0..50 {
            let d = rate_limited_wait(Some(5), 0, cap);
            assert!(
                d >= Duration::from_secs(5) && d <= Duration::from_secs(6),
                "{d:?}"
            );
        }
        assert_eq!(rate_limited_wait(Some(3600), 0, cap), cap);
        assert!(rate_limited_wait(None, 0, cap) <= Duration::from_secs(1));
        assert_eq!(
            rate_limited_wait(Some(5), 0, Duration::from_millis(50)),
            Duration::from_millis(50)
        );
    }
}
