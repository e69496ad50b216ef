//! Reading files: the bytes, one shared download per file, cache hits that cost no request,
//! bodies cut short, files the cache cannot take, a cache that outlives its core.

use std::time::Duration;

use personafs_client::testing::{Call, Fault, FileSpec, InquirySpec, MemoryApi};

use super::{
    Env, SAMPLE_FILES, build_core, bytes, config, downloads_started, errno, limits, sample_api,
    wait_for,
};
use crate::cache::{CacheKey, DiskCache};

/// Read `path` (`<inquiry>/<section>/<name>`, a file of object `object`) whole, check its
/// bytes, and wait until its cache entry is committed: the bytes, and the entry's key.
async fn read_until_cached(env: &Env, path: &str, object: &str) -> (Vec<u8>, CacheKey) {
    let (id, name) = (
        path.split('/').next().unwrap(),
        path.rsplit('/').next().unwrap(),
    );
    let expected = env.bytes(id, name);
    assert!(env.read_all(path).await.unwrap() == expected);
    let key = env.key(id, object, name, expected.len() as u64);
    wait_for("the entry is committed", || env.cache.contains(&key)).await;
    (expected, key)
}

#[tokio::test]
async fn every_file_reads_back_its_exact_bytes() {
    let env = Env::new(sample_api(), config());
    for id in ["inq_a", "inq_c"] {
        for (section, name, _) in SAMPLE_FILES {
            let got = env
                .read_all(&format!("{id}/{section}/{name}"))
                .await
                .unwrap();
            assert!(got == env.bytes(id, name), "{id}/{section}/{name} differs");
        }
    }
    assert_eq!(env.calls(Call::Download), 8, "one download per file");
    assert_eq!(downloads_started(&env.core), 8);
}

#[tokio::test]
async fn reads_at_any_offset_return_those_bytes() {
    let env = Env::new(sample_api(), config());
    let expected = env.bytes("inq_a", "doc_1-front-photo.jpg");
    let ino = env.ino("inq_a/document/doc_1-front-photo.jpg").await;
    let opened = env.core.open(ino).await.unwrap();
    for (offset, size) in [
        (149_990, 4096),
        (70_001, 333),
        (0, 1),
        (1, 65_536),
        (150_000, 10),
    ] {
        let got = env.core.read(opened.fh, offset, size).await.unwrap();
        let end = (offset as usize + size as usize).min(expected.len());
        let want = &expected[(offset as usize).min(end)..end];
        assert!(got == want, "read of {size} at {offset}");
    }
    assert!(
        env.core
            .read(opened.fh, 1 << 30, 10)
            .await
            .unwrap()
            .is_empty()
    );
    env.core.release(opened.fh);
}

#[tokio::test]
async fn concurrent_openers_share_one_download() {
    let env = Env::new(sample_api(), config());
    env.api.delay(Call::Download, Duration::from_millis(50));
    let path = "inq_b/document/doc_1-back-photo.jpg";
    let reads = futures::future::join_all((0..8).map(|_| env.read_all(path))).await;
    let expected = env.bytes("inq_b", "doc_1-back-photo.jpg");
    for got in reads {
        assert!(got.unwrap() == expected);
    }
    assert_eq!(env.calls(Call::Download), 1);
    assert_eq!(downloads_started(&env.core), 1);
}

#[tokio::test]
async fn a_cached_file_costs_no_request() {
    let env = Env::new(sample_api(), config());
    let path = "inq_a/selfie/self_1-center-photo.jpg";
    let ino = env.ino(path).await;
    assert!(
        env.core
            .at_once(env.core.open_with(ino, |_| false))
            .is_none(),
        "nothing cached yet"
    );
    let (expected, _) = read_until_cached(&env, path, "self_1").await;
    let before = env.total_calls();
    for _ in 0..3 {
        assert!(env.read_all(path).await.unwrap() == expected);
    }
    let warm = env
        .core
        .at_once(env.core.open_with(ino, |_| false))
        .expect("a warm open at once")
        .unwrap();
    assert!(env.read_fh(warm.fh).await.unwrap() == expected);
    env.core.release(warm.fh);
    assert_eq!(env.total_calls(), before, "cache hits asked nothing");
    assert_eq!(downloads_started(&env.core), 1);
}

#[tokio::test]
async fn an_open_that_trusts_a_kept_backing_still_reads_if_a_read_comes() {
    let env = Env::new(sample_api(), config());
    let path = "inq_a/selfie/self_1-center-photo.jpg";
    let ino = env.ino(path).await;
    let (expected, key) = read_until_cached(&env, path, "self_1").await;
    let serial = env.cache.pin_verified(&key).unwrap().serial;

    // The caller keeps a backing of this entry: no file is opened, the entry's serial is
    // handed back for the kernel's backing to be chosen by.
    let mut asked = None;
    let opened = env
        .core
        .at_once(env.core.open_with(ino, |s| {
            asked = Some(s);
            true
        }))
        .expect("a warm open at once")
        .unwrap();
    assert_eq!(asked, Some(serial));
    let backing = opened.backing.as_ref().expect("a cache entry behind it");
    assert!(backing.serial == serial && backing.file.is_none());
    // Should the kernel still send a read (the kept backing went meanwhile), it is served.
    assert!(env.read_fh(opened.fh).await.unwrap() == expected);
    env.core.release(opened.fh);

    // An open trusting a kept backing of an entry that has gone since reads ESTALE, never
    // other bytes.
    let opened = env
        .core
        .at_once(env.core.open_with(ino, |_| true))
        .unwrap()
        .unwrap();
    assert_eq!(env.cache.purge_inquiry("inq_a"), 1);
    let err = env.read_fh(opened.fh).await.unwrap_err();
    assert_eq!(crate::errno_of(&err), libc::ESTALE);
    env.core.release(opened.fh);
}

#[tokio::test]
async fn the_cache_outlives_its_core() {
    let env = Env::new(sample_api(), config());
    for (section, name, _) in SAMPLE_FILES {
        env.read_all(&format!("inq_a/{section}/{name}"))
            .await
            .unwrap();
    }
    wait_for("4 entries", || env.cache.stats().entries == 4).await;
    // A second mount over the same cache directory: nothing to download.
    let dir = env._dir.path().join("cache");
    let cache = DiskCache::open_dir(&dir, limits(1 << 30)).unwrap();
    let core = build_core(env.api.clone(), cache, config());
    let downloads = env.calls(Call::Download);
    let again = Env {
        core,
        api: env.api.clone(),
        cache: env.cache.clone(),
        clock: env.clock.clone(),
        _dir: tempfile::tempdir().unwrap(),
    };
    for (section, name, _) in SAMPLE_FILES {
        let got = again
            .read_all(&format!("inq_a/{section}/{name}"))
            .await
            .unwrap();
        assert!(got == env.bytes("inq_a", name), "{name}");
    }
    assert_eq!(env.calls(Call::Download), downloads);
    assert_eq!(downloads_started(&again.core), 0);
}

#[tokio::test]
async fn an_empty_file_needs_no_download() {
    let mem = MemoryApi::new();
    mem.add_inquiry(
        InquirySpec::new("inq_e").document("doc_1", [FileSpec::file("empty.txt", Vec::new())]),
    );
    let env = Env::new(mem, config());
    let attr = env.lookup("inq_e/document/doc_1-empty.txt").await.unwrap();
    assert_eq!(attr.size, 0);
    assert!(
        env.read_all("inq_e/document/doc_1-empty.txt")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(env.calls(Call::Download), 0);
}

#[tokio::test]
async fn a_cut_body_serves_the_bytes_before_the_cut_and_eio_after() {
    let env = Env::new(sample_api(), config());
    let expected = env.bytes("inq_a", "doc_1-front-photo.jpg");
    env.api.cut_downloads(1, 100_000, Fault::Network);
    let ino = env.ino("inq_a/document/doc_1-front-photo.jpg").await;
    let opened = env.core.open(ino).await.unwrap();
    let head = env.core.read(opened.fh, 0, 65_536).await.unwrap();
    assert!(head[..] == expected[..65_536]);
    let tail = env.core.read(opened.fh, 100_000, 4096).await;
    assert_eq!(errno(tail), libc::EIO);
    env.core.release(opened.fh);
    let key = env.key(
        "inq_a",
        "doc_1",
        "doc_1-front-photo.jpg",
        expected.len() as u64,
    );
    assert!(!env.cache.contains(&key), "never a partial entry");
}

#[tokio::test]
async fn after_a_cut_body_the_next_open_downloads_again_and_caches_the_right_bytes() {
    let env = Env::new(sample_api(), config());
    let path = "inq_a/document/doc_1-front-photo.jpg";
    env.api.cut_downloads(1, 100_000, Fault::Network);
    assert_eq!(errno(env.read_all(path).await), libc::EIO);
    let (expected, key) = read_until_cached(&env, path, "doc_1").await;
    let cached = env.cache.open(&key).unwrap();
    let mut on_disk = vec![0u8; expected.len()];
    std::os::unix::fs::FileExt::read_exact_at(&cached.file, &mut on_disk, 0).unwrap();
    assert!(on_disk == expected);
    assert_eq!(env.calls(Call::Download), 2);
}

#[tokio::test]
async fn a_file_larger_than_the_cache_is_served_but_not_kept() {
    let mem = MemoryApi::new();
    mem.add_inquiry(
        InquirySpec::new("inq_l").document("doc_1", [FileSpec::file("big.bin", bytes(9, 300_000))]),
    );
    let env = Env::with_limits(mem, config(), limits(200_000));
    let path = "inq_l/document/doc_1-big.bin";
    assert!(env.read_all(path).await.unwrap() == bytes(9, 300_000));
    // Once the first download has ended (a reader may still share it just before), the
    // next open must download again: nothing was kept.
    wait_for("the first download ended", || {
        env.core.downloads_registered() == 0
    })
    .await;
    assert!(env.read_all(path).await.unwrap() == bytes(9, 300_000));
    assert_eq!(env.calls(Call::Download), 2, "streamed again, never cached");
    assert_eq!(env.cache.stats().entries, 0);
}

#[tokio::test]
async fn inquiry_json_and_cached_opens_are_counted_as_handles() {
    let env = Env::new(sample_api(), config());
    let json = env.ino("inq_a/inquiry.json").await;
    let file = env.ino("inq_a/document/doc_2-statement.pdf").await;
    let a = env.core.open(json).await.unwrap();
    let b = env.core.open(file).await.unwrap();
    let c = env.core.open(file).await.unwrap();
    assert_eq!(env.core.open_handles(), 3);
    assert!(env.read_fh(c.fh).await.unwrap() == env.bytes("inq_a", "doc_2-statement.pdf"));
    for fh in [a.fh, b.fh, c.fh] {
        env.core.release(fh);
    }
    assert_eq!(env.core.open_handles(), 0);
    assert_eq!(env.calls(Call::Download), 1);
}

#[tokio::test]
async fn a_read_whose_bytes_are_there_is_answered_at_once_and_one_ahead_of_them_waits() {
    let env = Env::new(sample_api(), config());
    env.api.delay(Call::Download, Duration::from_millis(300));
    let expected = env.bytes("inq_a", "doc_1-front-photo.jpg");
    let ino = env.ino("inq_a/document/doc_1-front-photo.jpg").await;
    let opened = env.core.open(ino).await.unwrap();
    let now = |offset, size| {
        env.core
            .at_once(env.core.read_data(opened.fh, offset, size))
    };
    assert!(
        now(0, 4096).is_none(),
        "nothing downloaded yet: the read waits"
    );
    let head = env.core.read(opened.fh, 0, 65_536).await.unwrap();
    assert!(head[..] == expected[..65_536]);
    for (offset, size) in [(0, 65_536), (1000, 4096)] {
        let got = now(offset, size).expect("written: at once").unwrap();
        let want = &expected[offset as usize..(offset + size as u64) as usize];
        assert!(got.into_bytes().unwrap() == want, "{size} at {offset}");
    }
    let past_end = now(1 << 30, 10).expect("past the end: at once").unwrap();
    assert!(past_end.into_bytes().unwrap().is_empty());
    env.core.release(opened.fh);

    let json_ino = env.ino("inq_a/inquiry.json").await;
    let json = env.core.open(json_ino).await.unwrap();
    let body = env.core.read(json.fh, 0, 1 << 20).await.unwrap();
    let at_once = env
        .core
        .at_once(env.core.read_data(json.fh, 0, 1 << 20))
        .expect("in memory");
    assert!(at_once.unwrap().into_bytes().unwrap() == body);
    env.core.release(json.fh);
    assert_eq!(
        errno(
            env.core
                .at_once(env.core.read_data(json.fh, 0, 1))
                .expect("no waiting")
        ),
        libc::EBADF,
        "a released handle"
    );
}
