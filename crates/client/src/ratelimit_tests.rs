//! The local budget: the share, its pacing, the reserve.

use super::*;

fn headers(limit: u64, remaining: u64, reset: u64) -> RateHeaders {
    RateHeaders {
        limit: Some(limit),
        remaining: Some(remaining),
        reset_secs: Some(reset),
        window_secs: None,
    }
}

/// One caller sending each request as soon as the budget lets it, from `t0`: when each went.
fn send_greedily(limiter: &RateLimiter, t0: Instant, n: usize) -> Vec<Instant> {
    let mut now = t0;
    let mut sent = Vec::new();
    while sent.len() < n {
        match limiter.book(now) {
            Booking::Go(wait) => {
                now += wait;
                sent.push(now);
            }
            Booking::Held(wait) => now += wait,
        }
    }
    sent
}

/// The most calls of `sent` within any `window`.
fn most_in_any_window(sent: &[Instant], window: Duration) -> usize {
    (0..sent.len())
        .map(|i| {
            sent[i..]
                .iter()
                .take_while(|&&t| t < sent[i] + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn the_share_follows_the_limit_the_server_reports() {
    let limiter = RateLimiter::new(BudgetPolicy::default());
    assert_eq!(
        limiter.cap(),
        (Some(150), MINUTE),
        "half of the assumed 300"
    );
    limiter.observe(headers(120, 119, 60));
    assert_eq!(limiter.cap(), (Some(60), MINUTE), "a limit other than 300");
    // A server announcing a shorter window is followed too.
    limiter.observe(RateHeaders {
        window_secs: Some(10),
        ..headers(50, 49, 10)
    });
    assert_eq!(limiter.cap(), (Some(25), Duration::from_secs(10)));
    // An absolute limit is per minute whatever the server says.
    let absolute = RateLimiter::new(BudgetPolicy::absolute(40));
    absolute.observe(headers(1000, 999, 60));
    assert_eq!(absolute.cap(), (Some(40), MINUTE));
    // A mock with its limit off reports a million: nothing to enforce.
    let unlimited = RateLimiter::new(BudgetPolicy::default());
    unlimited.observe(headers(1_000_000, 999_999, 60));
    assert_eq!(unlimited.cap().0, None);
}

#[test]
fn half_the_share_goes_at_once_and_the_rest_is_spread() {
    let limiter = RateLimiter::new(BudgetPolicy::absolute(10));
    let t0 = Instant::now();
    for _ in 0..5 {
        assert_eq!(limiter.book(t0), Booking::Go(Duration::ZERO));
    }
    // 5 left for the 60 s until the first call leaves the window: one per 10 s, the last
    // before the first leaves.
    assert_eq!(limiter.book(t0), Booking::Go(Duration::from_secs(10)));
    // 4 left for the 50 s after the one booked last: 10 s after it.
    assert_eq!(limiter.book(t0), Booking::Go(Duration::from_secs(20)));
}

#[test]
fn a_greedy_caller_never_exceeds_the_share_in_any_window_and_gets_all_of_it() {
    for (limit, window_secs) in [(300, 60), (50, 10), (7, 60)] {
        let limiter = RateLimiter::new(BudgetPolicy::default());
        limiter.observe(RateHeaders {
            window_secs: Some(window_secs),
            ..headers(limit, limit - 1, window_secs)
        });
        let (Some(cap), window) = limiter.cap() else {
            panic!("a cap")
        };
        let sent = send_greedily(&limiter, Instant::now(), cap as usize * 10);
        let most = most_in_any_window(&sent, window) as u64;
        assert!(
            most <= cap && most * 10 >= cap * 9,
            "{limit}/{window:?}: {most} of {cap}"
        );
        // Ten windows' worth in not much more than ten windows: the share is used.
        let took = sent[sent.len() - 1] - sent[0];
        assert!(
            took <= window * 10 + window / 10,
            "{limit}/{window:?}: {} calls took {took:?}",
            sent.len()
        );
        // And paced: no wait much longer than the share's average spacing.
        let longest = sent.windows(2).map(|p| p[1] - p[0]).max().unwrap();
        assert!(
            longest <= window * 2 / cap as u32,
            "{limit}/{window:?}: {longest:?}"
        );
    }
}

#[test]
fn below_the_reserve_nothing_goes_until_the_reset() {
    let limiter = RateLimiter::new(BudgetPolicy::default());
    let t0 = Instant::now();
    limiter.observe_at(t0, headers(300, 90, 30));
    assert_eq!(
        limiter.book(t0),
        Booking::Go(Duration::ZERO),
        "90 is the reserve"
    );
    limiter.observe_at(t0, headers(300, 89, 20));
    assert_eq!(limiter.book(t0), Booking::Held(Duration::from_secs(20)));
    let later = t0 + Duration::from_secs(19);
    assert_eq!(limiter.book(later), Booking::Held(Duration::from_secs(1)));
    assert_eq!(limiter.status_at(later).held_secs, 1);
    assert_eq!(limiter.status_at(later).last_remaining, Some(89));
    // The window reset: requests go again.
    let after = t0 + Duration::from_secs(20);
    assert_eq!(limiter.book(after), Booking::Go(Duration::ZERO));
    assert_eq!(limiter.status_at(after).held_secs, 0);
}

#[test]
fn the_reserve_follows_the_reported_limit_and_resets_are_bounded() {
    let limiter = RateLimiter::new(BudgetPolicy::default());
    let t0 = Instant::now();
    // 30 % of 100 is 30: 31 left is fine, 29 is not.
    limiter.observe_at(t0, headers(100, 31, 40));
    assert_eq!(limiter.book(t0), Booking::Go(Duration::ZERO));
    // A reset far beyond the window is not believed.
    limiter.observe_at(t0, headers(100, 29, 3000));
    assert_eq!(limiter.book(t0), Booking::Held(MINUTE));
}

#[test]
fn without_a_reserve_only_an_exhausted_window_stops_requests() {
    let limiter = RateLimiter::new(BudgetPolicy::unlimited());
    let t0 = Instant::now();
    limiter.observe_at(t0, headers(300, 1, 10));
    for _ in 0..1000 {
        assert_eq!(limiter.book(t0), Booking::Go(Duration::ZERO));
    }
    limiter.observe_at(t0, headers(300, 0, 10));
    assert_eq!(limiter.book(t0), Booking::Held(Duration::from_secs(10)));
}

#[test]
fn status_counts_the_calls_of_the_last_window() {
    let limiter = RateLimiter::new(BudgetPolicy::default());
    let t0 = Instant::now();
    for _ in 0..12 {
        limiter.book(t0);
    }
    let s = limiter.status_at(t0);
    assert_eq!(
        (s.share_percent, s.reserve_percent, s.cap),
        (Some(50), 30, Some(150))
    );
    assert_eq!((s.server_limit, s.window_secs), (300, 60));
    assert_eq!(s.calls_in_window, 12);
    assert_eq!(limiter.status_at(t0 + MINUTE).calls_in_window, 0);
}

// Tokio's paused time: the limiter measures with tokio's clock and sleeps on its timers, so
// the wait for the reset passes without passing.
#[tokio::test(start_paused = true)]
async fn a_request_waiting_for_its_slot_waits_for_a_reserve_reached_meanwhile() {
    let limiter = std::sync::Arc::new(RateLimiter::new(BudgetPolicy::default()));
    // 2 calls a second: the first goes at once, the second a second later.
    limiter.observe(RateHeaders {
        window_secs: Some(1),
        ..headers(4, 4, 1)
    });
    let started = Instant::now();
    limiter.acquire().await;
    let waiter = {
        let limiter = limiter.clone();
        tokio::spawn(async move {
            limiter.acquire().await;
            started.elapsed()
        })
    };
    // Meanwhile an answer says the window is exhausted: nothing goes until its reset.
    tokio::task::yield_now().await; // the waiter is waiting for its slot
    tokio::time::advance(Duration::from_millis(50)).await;
    limiter.observe(headers(4, 0, 1));
    let waited = waiter.await.unwrap();
    assert!(
        waited >= Duration::from_millis(1050),
        "the waiting request went during the hold, after {waited:?}"
    );
}

#[test]
fn the_policy_window_is_read_from_the_draft_header() {
    assert_eq!(RateHeaders::policy_window("300;w=60"), Some(60));
    assert_eq!(
        RateHeaders::policy_window("\"default\";q=50;w=10"),
        Some(10)
    );
    assert_eq!(RateHeaders::policy_window("300"), None);
    assert_eq!(RateHeaders::policy_window("300;w=0"), None);
    assert_eq!(RateHeaders::policy_window("300;w=x"), None);
}
