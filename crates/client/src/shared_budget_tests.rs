//! `SharedBudget` against a real `redis-server`, started by each test on a free port.

use std::time::Instant;

use super::*;
use crate::redis_link::RedisLink;
use crate::testing::redis_server::{RedisServer, free_port};

fn ms(wait: Duration) -> u64 {
    wait.as_millis() as u64
}

#[tokio::test]
async fn processes_of_one_organization_share_one_budget() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // Two processes of one organization, 60 requests/min each as configured.
    let a = SharedBudget::new(&redis.url(), "org_SHARED", 60).unwrap();
    let b = SharedBudget::new(&redis.url(), "org_SHARED", 60).unwrap();
    for i in 0..60 {
        let budget = if i % 2 == 0 { &a } else { &b };
        assert_eq!(
            budget.reserve_shared().await.unwrap(),
            Duration::ZERO,
            "#{i}"
        );
    }
    // The minute's burst is spent by both together: the next waits a second, then two.
    let w = ms(a.reserve_shared().await.unwrap());
    assert!((700..=1000).contains(&w), "{w}");
    let w = ms(b.reserve_shared().await.unwrap());
    assert!((1700..=2000).contains(&w), "{w}");
    // Another organization has its own budget.
    let other = SharedBudget::new(&redis.url(), "org_OTHER", 60).unwrap();
    assert_eq!(other.reserve_shared().await.unwrap(), Duration::ZERO);
    assert!(a.is_shared() && b.is_shared());
}

#[tokio::test]
async fn a_low_server_budget_slows_every_process() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // No client-side bucket: only the server's headers pace the requests.
    let a = SharedBudget::new(&redis.url(), "org_SLOW", 0).unwrap();
    let b = SharedBudget::new(&redis.url(), "org_SLOW", 0).unwrap();
    a.observe(Some(300), Some(100), Some(30)).await;
    assert_eq!(
        b.reserve_shared().await.unwrap(),
        Duration::ZERO,
        "above 15 %"
    );
    // 3 % left: 20 s over 10 requests, for everyone.
    a.observe(Some(300), Some(10), Some(20)).await;
    assert_eq!(a.reserve_shared().await.unwrap(), Duration::ZERO);
    let w = ms(b.reserve_shared().await.unwrap());
    assert!((1900..=2000).contains(&w), "{w}");
    let w = ms(a.reserve_shared().await.unwrap());
    assert!((3900..=4000).contains(&w), "{w}");
    // A healthy budget seen by either lifts it for both.
    b.observe(Some(300), Some(299), Some(60)).await;
    assert_eq!(a.reserve_shared().await.unwrap(), Duration::ZERO);
    assert_eq!(b.reserve_shared().await.unwrap(), Duration::ZERO);
}

/// Slots are booked one spacing apart only within the server's window: past its reset the
/// server's budget is whole again, so a request waits for the reset and no longer. (Booked
/// slots far into the next window kept four mounts' waiting requests asleep through it.)
#[tokio::test]
async fn spaced_slots_end_at_the_server_window_reset() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = SharedBudget::new(&redis.url(), "org_WINDOW", 0).unwrap();
    let b = SharedBudget::new(&redis.url(), "org_WINDOW", 0).unwrap();
    // 10 requests left over the 2 s left in the window: one per 200 ms.
    a.observe(Some(300), Some(10), Some(2)).await;
    let mut waits = Vec::new();
    for i in 0..24 {
        let budget = if i % 2 == 0 { &a } else { &b };
        waits.push(ms(budget.reserve_shared().await.unwrap()));
    }
    assert_eq!(waits[0], 0);
    let w = waits[1];
    assert!((150..=200).contains(&w), "{waits:?}");
    // The first 10 within the window, one spacing apart; the rest at the reset, not after.
    assert!(waits[..10].windows(2).all(|p| p[0] < p[1]), "{waits:?}");
    assert!(
        waits[10..].iter().all(|&w| (1800..=2000).contains(&w)),
        "{waits:?}"
    );
}

/// With nothing left in the server's window every process waits for its reset: not a
/// capped spacing that would send requests into the same window and draw 429s.
#[tokio::test]
async fn an_exhausted_server_window_makes_everyone_wait_for_its_reset() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = SharedBudget::new(&redis.url(), "org_EMPTY", 0).unwrap();
    let b = SharedBudget::new(&redis.url(), "org_EMPTY", 0).unwrap();
    a.observe(Some(300), Some(0), Some(25)).await;
    for budget in [&a, &b, &a] {
        let w = ms(budget.reserve_shared().await.unwrap());
        assert!((24_800..=25_000).contains(&w), "{w}");
    }
    // The next window's first answer lifts it for everyone.
    b.observe(Some(300), Some(299), Some(60)).await;
    assert_eq!(a.reserve_shared().await.unwrap(), Duration::ZERO);
}

/// Answers arrive out of order when several mounts have requests in flight: an older answer
/// of the same window (more left) must not lift the spacing a newer one set. An answer of a
/// later window does.
#[tokio::test]
async fn a_late_answer_of_the_same_window_does_not_lift_the_spacing() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = SharedBudget::new(&redis.url(), "org_ORDER", 0).unwrap();
    let b = SharedBudget::new(&redis.url(), "org_ORDER", 0).unwrap();
    a.observe(Some(300), Some(10), Some(20)).await;
    // B's answer, sent earlier in the same window, lands now.
    b.observe(Some(300), Some(50), Some(21)).await;
    assert_eq!(a.reserve_shared().await.unwrap(), Duration::ZERO);
    let w = ms(b.reserve_shared().await.unwrap());
    assert!((1900..=2000).contains(&w), "the spacing was lifted: {w}");
    // The next window's answer lifts it.
    b.observe(Some(300), Some(299), Some(60)).await;
    assert_eq!(a.reserve_shared().await.unwrap(), Duration::ZERO);
    assert_eq!(b.reserve_shared().await.unwrap(), Duration::ZERO);
}

/// A request already waiting for its slot when an answer says the window is exhausted waits
/// for the reset instead of going into the exhausted window.
#[tokio::test]
async fn a_waiting_request_waits_for_the_reset_of_a_window_exhausted_meanwhile() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Arc::new(SharedBudget::new(&redis.url(), "org_LATE", 0).unwrap());
    let b = SharedBudget::new(&redis.url(), "org_LATE", 0).unwrap();
    // 2 left over 1 s: one slot now, the next 500 ms later.
    a.observe(Some(300), Some(2), Some(1)).await;
    assert_eq!(a.reserve_shared().await.unwrap(), Duration::ZERO);
    let started = Instant::now();
    let waiter = {
        let a = a.clone();
        tokio::spawn(async move { a.acquire().await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Another mount's answer: nothing left, 2 s to the reset.
    b.observe(Some(300), Some(0), Some(2)).await;
    waiter.await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1900),
        "the waiting request went into the exhausted window after {waited:?}"
    );
}

#[tokio::test]
async fn unreachable_redis_falls_back_to_the_local_bucket_and_recovers() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/");
    let mut link = RedisLink::open(&url).unwrap();
    link.reconnect_after = Duration::from_millis(200);
    let budget = SharedBudget::with_link(Arc::new(link), &["org_FALLBACK"], 10).unwrap();
    // Nothing listens: requests still go out, paced by the local bucket (a burst of 10).
    let started = Instant::now();
    for _ in 0..10 {
        budget.acquire().await;
    }
    assert!(!budget.is_shared());
    assert!(
        started.elapsed() < REDIS_TIMEOUT * 10,
        "requests waited for a dead Redis each time: {:?}",
        started.elapsed()
    );
    assert!(budget.reserve_shared().await.is_err());
    // The local bucket gave those 10: the next one waits for a token (6 s at 10/min).
    let w = ms(budget.local.reserve(Instant::now()));
    assert!((5_900..=6_000).contains(&w), "{w}");

    let Some(_redis) = RedisServer::start_on(port) else {
        return;
    };
    tokio::time::sleep(Duration::from_millis(250)).await;
    budget.acquire().await;
    assert!(
        budget.is_shared(),
        "Redis is back but the budget did not use it"
    );
    assert_eq!(budget.reserve_shared().await.unwrap(), Duration::ZERO);
}

#[tokio::test]
async fn only_the_organization_and_numbers_reach_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let budget = SharedBudget::new(&redis.url(), "org_KEYS", 120).unwrap();
    for _ in 0..5 {
        budget.acquire().await;
    }
    budget.observe(Some(100), Some(2), Some(30)).await;
    budget.acquire().await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [
            "personafs:budget:org_KEYS:slot",
            "personafs:budget:org_KEYS:spacing",
            "personafs:budget:org_KEYS:tat"
        ]
    );
    for key in keys {
        let value: String = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(value.parse::<f64>().is_ok(), "{key} = {value:?}");
    }
}

#[test]
fn bad_organization_ids_and_urls_are_refused() {
    for org in ["", "org:x", "org x", "org/../x", &"o".repeat(200)] {
        let err = SharedBudget::new("redis://127.0.0.1/", org, 60).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{org}: {err:?}");
    }
    let err = SharedBudget::new("http://not-redis/", "org_1", 60).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    let budget = SharedBudget::new("redis://:hunter2@127.0.0.1:1/", "org_1", 60).unwrap();
    assert!(!format!("{budget:?}").contains("hunter2"));
}
