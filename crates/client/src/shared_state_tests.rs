//! `RedisViews` against a real `redis-server`, started by each test on a free port.

use super::*;
use crate::testing::redis_server::{RedisServer, free_port};

fn views(url: &str, claim_ttl: Duration) -> RedisViews {
    let link = Arc::new(RedisLink::open(url).unwrap());
    RedisViews::new(link, "org_A", "env_A", Duration::from_secs(60), claim_ttl).unwrap()
}

/// How many times the waiters have looked in Redis so far (each look asks EXISTS of the
/// claim, and nothing else does).
async fn looks(url: &str) -> u64 {
    let client = redis::Client::open(url).unwrap();
    looks_on(&mut client.get_multiplexed_async_connection().await.unwrap()).await
}

async fn looks_on(c: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(c)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_exists:calls="))
        .and_then(|l| l.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// Wait until the waiters have looked `n` more times than `before` (the waiter is waiting,
/// having found the claim held `n` times), or 5 s have passed (the test's own assertion then
/// says what went wrong).
async fn looked(url: &str, before: u64, n: u64) {
    let started = Instant::now();
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    // Each look of ours is a round trip to Redis, which lets the waiter run meanwhile.
    while looks_on(&mut c).await < before + n && started.elapsed() < Duration::from_secs(5) {}
}

async fn get(url: &str, key: &str) -> Option<String> {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut c)
        .await
        .unwrap()
}

#[tokio::test]
async fn one_of_two_contenders_gets_the_claim_and_releases_only_its_own() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = views(&redis.url(), Duration::from_secs(10));
    let b = views(&redis.url(), Duration::from_secs(10));
    let (ca, cb) = tokio::join!(a.claim("inq_1"), b.claim("inq_1"));
    let (lease, other) = match (ca, cb) {
        (Claim::Mine(l), Claim::Taken) => (l, &b),
        (Claim::Taken, Claim::Mine(l)) => (l, &a),
        other => panic!("not exactly one claim: {other:?}"),
    };
    // Another inquiry is free.
    assert!(matches!(other.claim("inq_2").await, Claim::Mine(_)));
    // A release with a token that is not the holder's leaves the claim alone.
    other
        .release(Lease {
            inquiry: "inq_1".into(),
            token: "not-the-token".into(),
            ttl: Duration::from_secs(10),
        })
        .await;
    assert!(matches!(other.claim("inq_1").await, Claim::Taken));
    let key = "personafs:org_A:env_A:lock:inq_1";
    assert_eq!(
        get(&redis.url(), key).await.as_deref(),
        Some(lease.token.as_str())
    );
    // The holder's release frees it.
    a.release(lease).await;
    assert_eq!(get(&redis.url(), key).await, None);
    assert!(matches!(other.claim("inq_1").await, Claim::Mine(_)));
}

#[tokio::test]
async fn a_claim_expires_and_an_expired_claim_is_not_released_by_its_old_holder() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = views(&redis.url(), Duration::from_millis(200));
    let b = views(&redis.url(), Duration::from_millis(200));
    let Claim::Mine(old) = a.claim("inq_1").await else {
        panic!("free inquiry not claimed")
    };
    assert!(matches!(b.claim("inq_1").await, Claim::Taken));
    // Real time: Redis expires the claim by its own clock.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let Claim::Mine(new) = b.claim("inq_1").await else {
        panic!("the expired claim was not given to the next contender")
    };
    // The first holder comes back late: its release must not free the new holder's claim.
    a.release(old).await;
    assert!(matches!(a.claim("inq_1").await, Claim::Taken));
    b.release(new).await;
}

#[tokio::test]
async fn a_published_view_is_fetched_and_awaited_by_others() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Arc::new(views(&redis.url(), Duration::from_secs(5)));
    let b = Arc::new(views(&redis.url(), Duration::from_secs(5)));
    assert_eq!(b.fetch("inq_1").await, None);
    let Claim::Mine(lease) = a.claim("inq_1").await else {
        panic!("free inquiry not claimed")
    };
    // B waits while A "retrieves", and gets A's view as soon as it is published.
    let before = looks(&redis.url()).await;
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.wait_for("inq_1", None).await })
    };
    looked(&redis.url(), before, 1).await;
    a.publish("inq_1", b"{\"view\":1}").await;
    a.release(lease).await;
    assert_eq!(waiter.await.unwrap().as_deref(), Some(&b"{\"view\":1}"[..]));
    assert_eq!(
        b.fetch("inq_1").await.as_deref(),
        Some(&b"{\"view\":1}"[..])
    );
    // The view expires with the TTL it was given.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg("personafs:org_A:env_A:view:inq_1")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!((50_000..=60_000).contains(&ttl), "{ttl}");
    // A holder that gives up without a view: the waiter stops waiting at once.
    let Claim::Mine(lease) = a.claim("inq_2").await else {
        panic!("free inquiry not claimed")
    };
    let started = Instant::now();
    let before = looks(&redis.url()).await;
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.wait_for("inq_2", None).await })
    };
    looked(&redis.url(), before, 1).await;
    a.release(lease).await;
    assert_eq!(waiter.await.unwrap(), None);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Other environments and organizations see nothing of it.
    let link = Arc::new(RedisLink::open(&redis.url()).unwrap());
    let other =
        RedisViews::new(link, "org_A", "env_B", Duration::from_secs(60), CLAIM_TTL).unwrap();
    assert_eq!(other.fetch("inq_1").await, None);
}

/// A holder still at work (its retrieve waiting for the request budget) renews its claim:
/// it does not expire under it, so no other mount retrieves the same inquiry meanwhile, and
/// a waiter keeps waiting for the view. A stale holder cannot renew another's claim.
#[tokio::test]
async fn a_renewed_claim_outlives_its_lifetime_and_the_waiter_gets_the_view() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Arc::new(views(&redis.url(), Duration::from_millis(600)));
    let b = Arc::new(views(&redis.url(), Duration::from_millis(600)));
    let Claim::Mine(lease) = a.claim("inq_1").await else {
        panic!("free inquiry not claimed")
    };
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.wait_for("inq_1", None).await })
    };
    // Three lifetimes of work, renewed as the holder does.
    for _ in 0..9 {
        // Real time: the claim's lifetime runs in Redis, which only a renewal extends.
        tokio::time::sleep(lease.renew_every()).await;
        assert!(
            a.renew(&lease).await,
            "the holder could not renew its claim"
        );
        assert!(matches!(b.claim("inq_1").await, Claim::Taken));
    }
    assert!(!waiter.is_finished(), "the waiter gave up on a live claim");
    a.publish("inq_1", b"{\"view\":1}").await;
    a.release(lease).await;
    assert_eq!(waiter.await.unwrap().as_deref(), Some(&b"{\"view\":1}"[..]));
    // A lease that is not the holder's renews nothing.
    let Claim::Mine(held) = b.claim("inq_2").await else {
        panic!("free inquiry not claimed")
    };
    let stranger = Lease {
        inquiry: "inq_2".into(),
        token: "not-the-token".into(),
        ttl: Duration::from_millis(600),
    };
    assert!(!a.renew(&stranger).await);
    b.release(held).await;
    assert!(!a.renew(&stranger).await, "a released claim was renewed");
}

/// A waiter that already had a view (too old to use) waits for the holder's new one, not
/// for the old one still in Redis.
#[tokio::test]
async fn a_waiter_waits_for_a_view_newer_than_the_one_it_had() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Arc::new(views(&redis.url(), Duration::from_secs(5)));
    let b = Arc::new(views(&redis.url(), Duration::from_secs(5)));
    a.publish("inq_1", b"old").await;
    let Claim::Mine(lease) = a.claim("inq_1").await else {
        panic!("free inquiry not claimed")
    };
    let seen = b.fetch("inq_1").await.unwrap();
    let before = looks(&redis.url()).await;
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.wait_for("inq_1", Some(&seen)).await })
    };
    // Looked twice: the old view was there the first time, and it kept waiting.
    looked(&redis.url(), before, 2).await;
    assert!(!waiter.is_finished(), "the waiter took the old view");
    a.publish("inq_1", b"new").await;
    a.release(lease).await;
    assert_eq!(waiter.await.unwrap().as_deref(), Some(&b"new"[..]));
    // Released with only the old view there: the waiter stops at once, with nothing.
    let Claim::Mine(lease) = a.claim("inq_1").await else {
        panic!("free inquiry not claimed")
    };
    let before = looks(&redis.url()).await;
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.wait_for("inq_1", Some(b"new")).await })
    };
    looked(&redis.url(), before, 1).await;
    a.release(lease).await;
    assert_eq!(waiter.await.unwrap(), None);
}

#[tokio::test]
async fn unreachable_redis_shares_nothing_at_once_and_recovers() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/");
    let mut link = RedisLink::open(&url).unwrap();
    link.reconnect_after = Duration::from_millis(200);
    let clock = crate::clock::Clock::manual();
    link.clock = clock.clone();
    let views = RedisViews::new(
        Arc::new(link),
        "org_A",
        "env_A",
        Duration::from_secs(60),
        Duration::from_secs(10),
    )
    .unwrap();
    let started = Instant::now();
    for _ in 0..20 {
        assert!(matches!(views.claim("inq_1").await, Claim::Unavailable));
        assert_eq!(views.fetch("inq_1").await, None);
        assert_eq!(views.wait_for("inq_1", None).await, None);
        views.publish("inq_1", b"x").await;
    }
    assert!(!views.is_shared());
    assert!(
        started.elapsed() < crate::redis_link::REDIS_TIMEOUT * 4,
        "every step waited for a dead Redis: {:?}",
        started.elapsed()
    );
    let Some(_redis) = RedisServer::start_on(port) else {
        return;
    };
    clock.advance(Duration::from_millis(250));
    assert!(matches!(views.claim("inq_1").await, Claim::Mine(_)));
    assert!(
        views.is_shared(),
        "Redis is back but the views did not use it"
    );
}

#[test]
fn bad_ids_and_urls_are_refused_without_showing_a_password() {
    let link = || Arc::new(RedisLink::open("redis://127.0.0.1:1/").unwrap());
    for (org, env) in [("", "env_1"), ("org_1", "env:x"), ("org 1", "env_1")] {
        let err = RedisViews::new(link(), org, env, Duration::from_secs(1), CLAIM_TTL).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{org} {env}: {err:?}");
    }
    for url in ["http://not-redis/", "rediss://:hunter2@127.0.0.1:6380/0"] {
        let err = RedisLink::open(url).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
    let ok = RedisLink::open("redis://:hunter2@127.0.0.1:1/").unwrap();
    assert!(!format!("{ok:?}").contains("hunter2"));
}

#[tokio::test]
async fn ids_unfit_for_a_key_are_never_shared() {
    let views = views("redis://127.0.0.1:1/", CLAIM_TTL);
    assert!(matches!(views.claim("inq 1:*").await, Claim::Unavailable));
    assert_eq!(views.fetch("../x").await, None);
}
