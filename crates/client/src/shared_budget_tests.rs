//! `SharedBudget` against a real `redis-server`, started by each test on a free port.

use tokio::time::Instant;

use super::*;
use crate::redis_link::RedisLink;
use crate::testing::redis_server::{RedisServer, free_port};

fn ms(wait: Duration) -> u64 {
    wait.as_millis() as u64
}

fn headers(limit: u64, remaining: u64, reset: u64) -> RateHeaders {
    RateHeaders {
        limit: Some(limit),
        remaining: Some(remaining),
        reset_secs: Some(reset),
        window_secs: None,
    }
}

async fn go(budget: &SharedBudget) -> u64 {
    match budget.book_shared().await.unwrap() {
        Booked::Go(wait) => ms(wait),
        held => panic!("{held:?}"),
    }
}

#[tokio::test]
async fn mounts_of_one_environment_share_one_share() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // Two mounts, each told the limit is 40: a share of 20 a minute for both together.
    let a = SharedBudget::new(&redis.url(), "org_SHARED", BudgetPolicy::default()).unwrap();
    let b = SharedBudget::new(&redis.url(), "org_SHARED", BudgetPolicy::default()).unwrap();
    for budget in [&a, &b] {
        budget.observe(headers(40, 39, 60)).await;
    }
    let mut waits = Vec::new();
    for i in 0..21 {
        let budget = if i % 2 == 0 { &a } else { &b };
        waits.push(go(budget).await);
    }
    // Half at once, the other half spread over the minute, then the first must leave it.
    assert!(waits[..10].iter().all(|&w| w == 0), "{waits:?}");
    // One per 60/11 s, the last before the first call leaves the window.
    assert!(waits[10..20].windows(2).all(|p| p[0] < p[1]), "{waits:?}");
    assert!((5_000..=5_500).contains(&waits[10]), "{waits:?}");
    assert!(waits[19] < 59_000, "{waits:?}");
    assert!((59_000..=60_000).contains(&waits[20]), "{waits:?}");
    assert_eq!(a.status().shared_calls_in_window, Some(21));
    // Another organization has its own books.
    let other = SharedBudget::new(&redis.url(), "org_OTHER", BudgetPolicy::default()).unwrap();
    assert_eq!(go(&other).await, 0);
    assert!(a.is_shared() && b.is_shared());
}

#[tokio::test]
async fn a_reserve_reached_by_one_mount_holds_every_mount_until_the_reset() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = SharedBudget::new(&redis.url(), "org_HOLD", BudgetPolicy::default()).unwrap();
    let b = SharedBudget::new(&redis.url(), "org_HOLD", BudgetPolicy::default()).unwrap();
    a.observe(headers(300, 90, 30)).await;
    assert_eq!(go(&b).await, 0, "90 left is the reserve, not below it");
    // 89 left: below 30 % of 300, 2 s to the reset.
    a.observe(headers(300, 89, 2)).await;
    match b.book_shared().await.unwrap() {
        Booked::Held(wait) => assert!((1_800..=2_000).contains(&ms(wait)), "{wait:?}"),
        go => panic!("{go:?}"),
    }
    // A shorter hold from a later answer does not cut it short.
    b.observe(headers(300, 80, 1)).await;
    assert!(b.held_for().await.unwrap() > Duration::from_millis(1_500));
    let started = Instant::now();
    b.acquire().await;
    assert!(started.elapsed() >= Duration::from_millis(1_700));
    assert_eq!(go(&a).await, 0, "the window reset: requests go again");
}

/// A request already waiting for its slot when an answer reaches the reserve waits for the
/// reset instead of going into the window.
#[tokio::test]
async fn a_waiting_request_waits_for_a_hold_set_meanwhile() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Arc::new(SharedBudget::new(&redis.url(), "org_LATE", BudgetPolicy::default()).unwrap());
    let b = SharedBudget::new(&redis.url(), "org_LATE", BudgetPolicy::default()).unwrap();
    // A limit of 4 a second, a share of 2: one now, the next a second later.
    a.observe(RateHeaders {
        window_secs: Some(1),
        ..headers(4, 4, 1)
    })
    .await;
    let started = Instant::now();
    a.acquire().await;
    let waiter = {
        let a = a.clone();
        tokio::spawn(async move {
            a.acquire().await;
            started.elapsed()
        })
    };
    // Real time: the budget's time is Redis's and the host's, and the hold asserted below
    // runs from this answer, 100 ms after the waiter booked its slot.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Another mount's answer: nothing left, 1 s to the reset.
    b.observe(headers(4, 0, 1)).await;
    let waited = waiter.await.unwrap();
    assert!(
        waited >= Duration::from_millis(1_050),
        "the waiting request went during the hold after {waited:?}"
    );
}

#[tokio::test]
async fn unreachable_redis_falls_back_to_the_local_budget_and_recovers() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/");
    let mut link = RedisLink::open(&url).unwrap();
    link.reconnect_after = Duration::from_millis(200);
    let clock = crate::clock::Clock::manual();
    link.clock = clock.clone();
    let budget = SharedBudget::with_link(
        Arc::new(link),
        &["org_FALLBACK"],
        BudgetPolicy::absolute(20),
    )
    .unwrap();
    // Nothing listens: requests still go out, paced by the local budget (10 at once).
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
    assert!(budget.book_shared().await.is_err());
    // The local budget gave those 10: the next is spread, 10 left over the minute.
    match budget.local.book(Instant::now()) {
        crate::ratelimit::Booking::Go(w) => assert!((5_300..=5_500).contains(&ms(w)), "{w:?}"),
        held => panic!("{held:?}"),
    }

    let Some(_redis) = RedisServer::start_on(port) else {
        return;
    };
    clock.advance(Duration::from_millis(250));
    budget.acquire().await;
    assert!(
        budget.is_shared(),
        "Redis is back but the budget did not use it"
    );
    assert_eq!(go(&budget).await, 0);
}

#[tokio::test]
async fn only_the_organization_and_numbers_reach_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let budget = SharedBudget::new(&redis.url(), "org_KEYS", BudgetPolicy::default()).unwrap();
    for _ in 0..5 {
        budget.acquire().await;
    }
    budget.observe(headers(100, 2, 30)).await;
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
            "personafs:budget:org_KEYS:calls",
            "personafs:budget:org_KEYS:hold",
            "personafs:budget:org_KEYS:seq"
        ]
    );
    let calls: Vec<String> = redis::cmd("ZRANGE")
        .arg(&keys[0])
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(calls.len(), 10, "{calls:?}");
    for key in &keys[1..] {
        let value: String = redis::cmd("GET")
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(value.parse::<f64>().is_ok(), "{key} = {value:?}");
    }
    for value in calls {
        assert!(value.parse::<f64>().is_ok(), "{value:?}");
    }
}

#[test]
fn bad_organization_ids_and_urls_are_refused() {
    let policy = BudgetPolicy::default();
    for org in ["", "org:x", "org x", "org/../x", &"o".repeat(200)] {
        let err = SharedBudget::new("redis://127.0.0.1/", org, policy).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{org}: {err:?}");
    }
    let err = SharedBudget::new("http://not-redis/", "org_1", policy).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    let budget = SharedBudget::new("redis://:hunter2@127.0.0.1:1/", "org_1", policy).unwrap();
    assert!(!format!("{budget:?}").contains("hunter2"));
}
