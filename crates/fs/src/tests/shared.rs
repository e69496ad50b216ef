//! Shared state (`--shared-state`): two mounts (two cores, each with its own cache) of one
//! Persona share their inquiry views in a real `redis-server`, so a walk by both retrieves
//! each inquiry about once in total, while downloads still retrieve their own URLs.

use std::sync::Arc;
use std::time::Duration;

use personafs_client::PersonaApi;
use personafs_client::redis_link::RedisLink;
use personafs_client::shared_state::{CLAIM_TTL, RedisViews, SharedViews};
use personafs_client::testing::redis_server::RedisServer;
use personafs_client::testing::{Call, FaultyApi, MemoryApi};

use super::{build_core, bytes, config, limits, sample_inquiry, wait_for};
use crate::cache::DiskCache;
use crate::{FsCore, INQUIRIES, Kind};

/// A mount: a core over the shared API, its own cache dir, the shared views.
struct Mount {
    core: Arc<FsCore>,
    cache: Arc<DiskCache>,
    _dir: tempfile::TempDir,
}

fn views(redis: &RedisServer) -> Arc<dyn SharedViews> {
    views_claimed_for(redis, CLAIM_TTL)
}

/// Views whose claims last `claim_ttl` unless renewed.
fn views_claimed_for(redis: &RedisServer, claim_ttl: Duration) -> Arc<dyn SharedViews> {
    let link = Arc::new(RedisLink::open(&redis.url()).unwrap());
    Arc::new(
        RedisViews::new(
            link,
            "org_TEST",
            "env_TEST",
            Duration::from_secs(65),
            claim_ttl,
        )
        .unwrap(),
    )
}

fn mount(api: &Arc<FaultyApi<MemoryApi>>, shared: Arc<dyn SharedViews>) -> Mount {
    mount_with(api, shared, config())
}

fn mount_with(
    api: &Arc<FaultyApi<MemoryApi>>,
    shared: Arc<dyn SharedViews>,
    mut cfg: crate::CoreConfig,
) -> Mount {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::open_dir(&dir.path().join("cache"), limits(1 << 30)).unwrap();
    cfg.shared_views = Some(shared);
    // Persona runs on the mount's clock (mounts given one config share one clock).
    api.set_clock(cfg.clock.clone());
    api.inner().set_clock(cfg.clock.clone());
    let api: Arc<dyn PersonaApi> = api.clone();
    Mount {
        core: build_core(api, cache.clone(), cfg),
        cache,
        _dir: dir,
    }
}

/// `n` inquiries of the usual sample.
fn api_of(n: usize) -> Arc<FaultyApi<MemoryApi>> {
    let mem = MemoryApi::new();
    for i in 0..n {
        mem.add_inquiry(sample_inquiry(&format!("inq_{i:03}"), i as u64 * 7));
    }
    Arc::new(FaultyApi::new(mem))
}

/// `ls -lR`: every directory listed, every entry's attributes.
async fn walk(core: &FsCore) -> usize {
    let mut seen = 0;
    let mut dirs = vec![INQUIRIES];
    while let Some(dir) = dirs.pop() {
        for entry in core.readdir(dir).await.unwrap() {
            if entry.name.as_ref() == "." || entry.name.as_ref() == ".." {
                continue;
            }
            let attr = core.lookup(dir, &entry.name).await.unwrap();
            seen += 1;
            if attr.kind == Kind::Dir {
                dirs.push(attr.ino);
            }
        }
    }
    seen
}

async fn read_all(core: &FsCore, ino: u64) -> Vec<u8> {
    let opened = core.open(ino).await.unwrap();
    let mut got = Vec::new();
    loop {
        let chunk = core
            .read(opened.fh, got.len() as u64, 128 << 10)
            .await
            .unwrap();
        if chunk.is_empty() {
            break;
        }
        got.extend_from_slice(&chunk);
    }
    core.release(opened.fh);
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_mounts_walking_together_retrieve_each_inquiry_about_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    const N: usize = 40;
    let api = api_of(N);
    api.delay(Call::Retrieve, Duration::from_millis(20));
    let a = mount(&api, views(&redis));
    let b = mount(&api, views(&redis));
    let (seen_a, seen_b) = tokio::join!(walk(&a.core), walk(&b.core));
    assert_eq!(seen_a, seen_b, "both mounts show the same tree");
    assert!(seen_a > N * 4, "{seen_a}");
    let retrieves = api.calls(Call::Retrieve);
    assert!(
        (N as u64..=N as u64 + 4).contains(&retrieves),
        "{retrieves} retrieves for {N} inquiries walked by two mounts"
    );
    // A third mount coming later takes every view from Redis.
    let c = mount(&api, views(&redis));
    assert_eq!(walk(&c.core).await, seen_a);
    assert_eq!(api.calls(Call::Retrieve), retrieves);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_on_the_second_mount_retrieves_its_own_urls() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let api = api_of(2);
    let a = mount(&api, views(&redis));
    let b = mount(&api, views(&redis));
    walk(&a.core).await;
    walk(&b.core).await;
    assert_eq!(api.calls(Call::Retrieve), 2, "B took both views from A");
    let id = "inq_001";
    let dir = b.core.lookup(INQUIRIES, id).await.unwrap().ino;
    let doc = b.core.lookup(dir, "document").await.unwrap().ino;
    let file = b.core.lookup(doc, "doc_1-front-photo.jpg").await.unwrap();
    let got = read_all(&b.core, file.ino).await;
    assert_eq!(got, bytes(7, 150_000), "the bytes of {id}'s front photo");
    assert_eq!(
        api.calls(Call::Retrieve),
        3,
        "the download retrieved the inquiry for URLs of its own"
    );
    assert!(api.calls(Call::Download) + api.calls(Call::DownloadRange) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_written_to_redis_holds_a_url_or_a_token() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let api = api_of(3);
    let a = mount(&api, views(&redis));
    walk(&a.core).await;
    // B takes A's views, so a download on B retrieves for URLs: that view is shared too.
    let b = mount(&api, views(&redis));
    let dir = b.core.lookup(INQUIRIES, "inq_000").await.unwrap().ino;
    let json = b.core.lookup(dir, "inquiry.json").await.unwrap();
    assert!(json.size > 0);
    let doc = b.core.lookup(dir, "document").await.unwrap().ino;
    let file = b.core.lookup(doc, "doc_1-front-photo.jpg").await.unwrap();
    assert_eq!(read_all(&b.core, file.ino).await, bytes(0, 150_000));
    assert_eq!(api.calls(Call::Retrieve), 4);
    let contents = redis.contents().await;
    let keys: Vec<&String> = contents.iter().map(|(k, _)| k).collect();
    let views = keys.iter().filter(|k| k.contains(":view:")).count();
    assert_eq!(views, 3, "{keys:?}");
    for (key, value) in &contents {
        assert!(key.starts_with("personafs:org_TEST:env_TEST:"), "{key}");
        let text = String::from_utf8_lossy(value).to_ascii_lowercase();
        for secret in ["token", "http", "files.withpersona.com", "://"] {
            assert!(!text.contains(secret), "{key} holds {secret:?}: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redaction_seen_by_one_mount_deletes_the_others_cached_files_too() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let api = api_of(2);
    let mut cfg = config();
    cfg.metadata_ttl = Duration::from_secs(60);
    let clock = cfg.clock.clone();
    let a = mount_with(&api, views(&redis), cfg.clone());
    let b = mount_with(&api, views(&redis), cfg);
    walk(&a.core).await;
    // B caches a file of inq_000 (its own retrieve, for URLs).
    let dir = b.core.lookup(INQUIRIES, "inq_000").await.unwrap().ino;
    let doc = b.core.lookup(dir, "document").await.unwrap().ino;
    let file = b.core.lookup(doc, "doc_1-front-photo.jpg").await.unwrap();
    assert_eq!(read_all(&b.core, file.ino).await, bytes(0, 150_000));
    wait_for("B's file cached", || b.cache.stats().entries >= 1).await;
    assert!(api.inner().redact("inq_000"));
    clock.advance(Duration::from_secs(61));
    // A sees the redaction first (its retrieve is shared), then B takes A's redacted view.
    let before = api.calls(Call::Retrieve);
    // `ls inquiries/` on each: the listing (taken again after the TTL) shows the redaction.
    a.core.readdir(INQUIRIES).await.unwrap();
    b.core.readdir(INQUIRIES).await.unwrap();
    let dir_a = a.core.lookup(INQUIRIES, "inq_000").await.unwrap().ino;
    let doc_a = a.core.lookup(dir_a, "document").await.unwrap().ino;
    assert!(
        a.core
            .readdir(doc_a)
            .await
            .unwrap()
            .iter()
            .all(|e| e.name.starts_with('.'))
    );
    assert_eq!(api.calls(Call::Retrieve), before + 1);
    let dir = b.core.lookup(INQUIRIES, "inq_000").await.unwrap().ino;
    let doc = b.core.lookup(dir, "document").await.unwrap().ino;
    let left: Vec<_> = b
        .core
        .readdir(doc)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| !e.name.starts_with('.'))
        .collect();
    assert!(
        left.is_empty(),
        "B still shows files of the redacted inquiry"
    );
    assert_eq!(
        api.calls(Call::Retrieve),
        before + 1,
        "B retrieved it again"
    );
    assert_eq!(
        b.cache.stats().entries,
        0,
        "B's cached file of the redacted inquiry is left"
    );
}

/// A retrieve that lasts longer than a claim's lifetime (waiting for the shared request
/// budget, say) keeps its claim: the other mount waits for the view instead of retrieving
/// the same inquiry when the claim would have expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_is_kept_while_its_retrieve_lasts_longer_than_the_claim() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    const N: usize = 3;
    let api = api_of(N);
    api.delay(Call::Retrieve, Duration::from_millis(1000));
    let claim_ttl = Duration::from_millis(300);
    let a = mount(&api, views_claimed_for(&redis, claim_ttl));
    let b = mount(&api, views_claimed_for(&redis, claim_ttl));
    let (seen_a, seen_b) = tokio::join!(walk(&a.core), walk(&b.core));
    assert_eq!(seen_a, seen_b, "both mounts show the same tree");
    assert_eq!(
        api.calls(Call::Retrieve),
        N as u64,
        "an inquiry was retrieved by both mounts"
    );
}

/// When every mount's view of a changing inquiry is older than the metadata TTL, one mount
/// retrieves it again and the others wait for that view: the old view still in Redis is not
/// the one they wait for.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_view_gone_stale_everywhere_is_retrieved_again_by_one_mount() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mem = MemoryApi::new();
    mem.add_inquiry(sample_inquiry("inq_000", 0).status("pending"));
    let api = Arc::new(FaultyApi::new(mem));
    api.delay(Call::Retrieve, Duration::from_millis(300));
    let mut cfg = config();
    cfg.metadata_ttl = Duration::from_secs(60);
    // By the TTL's rule (search refused): a delta would vouch for the unchanged view.
    cfg.deltas = None;
    let clock = cfg.clock.clone();
    let a = mount_with(&api, views(&redis), cfg.clone());
    let b = mount_with(&api, views(&redis), cfg);
    let (seen_a, seen_b) = tokio::join!(walk(&a.core), walk(&b.core));
    assert_eq!(seen_a, seen_b);
    assert_eq!(api.calls(Call::Retrieve), 1);
    clock.advance(Duration::from_secs(61));
    let (again_a, again_b) = tokio::join!(walk(&a.core), walk(&b.core));
    assert_eq!((again_a, again_b), (seen_a, seen_b));
    assert_eq!(
        api.calls(Call::Retrieve),
        2,
        "the stale inquiry was retrieved again by both mounts"
    );
}

/// Mounts sharing the state take one delta per metadata TTL between them: the second takes
/// the first's changes from Redis, and both show a change made meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mounts_sharing_the_state_take_one_delta_between_them() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mem = MemoryApi::new();
    for i in 0..4 {
        mem.add_inquiry(sample_inquiry(&format!("inq_{i:03}"), i * 7).status("pending"));
    }
    let api = Arc::new(FaultyApi::new(mem));
    let mut cfg = config();
    cfg.metadata_ttl = Duration::from_secs(60);
    let clock = cfg.clock.clone();
    let a = mount_with(&api, views(&redis), cfg.clone());
    let b = mount_with(&api, views(&redis), cfg);
    walk(&a.core).await;
    walk(&b.core).await;
    clock.advance(Duration::from_secs(61));
    assert!(api.inner().set_status("inq_002", "completed"));
    let searches = api.calls(Call::Search);
    let retrieves = api.calls(Call::Retrieve);
    walk(&a.core).await;
    walk(&b.core).await;
    assert_eq!(
        api.calls(Call::Search) - searches,
        1,
        "one search between the two mounts"
    );
    for m in [&a, &b] {
        let inq = m.core.lookup(INQUIRIES, "inq_002").await.unwrap();
        let json = m.core.lookup(inq.ino, "inquiry.json").await.unwrap();
        let opened = m.core.open(json.ino).await.unwrap();
        let text = String::from_utf8(m.core.read(opened.fh, 0, 1 << 20).await.unwrap()).unwrap();
        m.core.release(opened.fh);
        assert!(text.contains("\"completed\""), "the change shows on both");
    }
    assert!(
        api.calls(Call::Retrieve) - retrieves <= 2,
        "only the changed inquiry is retrieved again (once per mount at most)"
    );
    let shared = a.core.delta_stats().unwrap().status().deltas
        + b.core.delta_stats().unwrap().status().deltas;
    assert!(shared >= 2, "both mounts applied a delta");
}
