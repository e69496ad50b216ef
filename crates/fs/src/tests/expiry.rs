//! Signed URLs that expire. Proactive: a view older than the URL budget (lifetime minus the
//! margin) is retrieved again before a download. Reactive: a URL the files host refuses
//! triggers one re-retrieve, and the download resumes from the byte it had reached.

use std::time::Duration;

use personafs_client::testing::{Call, Fault, FetchRecord};

use super::{Env, SAMPLE_FILES, config, errno, sample_api};

const FRONT: &str = "inq_a/document/doc_1-front-photo.jpg";

fn fetches_of(env: &Env, file: &str) -> Vec<FetchRecord> {
    env.mem()
        .fetches()
        .into_iter()
        .filter(|f| f.file == file)
        .collect()
}

#[tokio::test]
async fn a_view_older_than_the_url_budget_is_retrieved_again_before_downloading() {
    let mut cfg = config();
    cfg.file_url_lifetime = Duration::from_secs(20);
    cfg.url_refresh_margin = 0.0;
    let env = Env::new(sample_api(), cfg);
    env.lookup(FRONT).await.unwrap();
    assert_eq!(env.calls(Call::Retrieve), 1);
    env.clock.advance(Duration::from_secs(30));
    let got = env.read_all(FRONT).await.unwrap();
    assert!(got == env.bytes("inq_a", "doc_1-front-photo.jpg"));
    assert_eq!(env.calls(Call::Retrieve), 2, "retrieved again first");
    assert_eq!(env.mem().refused_urls(), 0, "no stale URL was tried");
    assert_eq!(env.calls(Call::Download), 1);
}

#[tokio::test]
async fn the_margin_counts_against_the_lifetime() {
    let mut cfg = config();
    cfg.file_url_lifetime = Duration::from_secs(40);
    cfg.url_refresh_margin = 0.75; // a budget of 10 s
    let env = Env::new(sample_api(), cfg);
    env.lookup(FRONT).await.unwrap();
    env.clock.advance(Duration::from_secs(15));
    env.read_all(FRONT).await.unwrap();
    assert_eq!(env.calls(Call::Retrieve), 2);
}

#[tokio::test]
async fn fresh_urls_are_used_without_a_retrieve() {
    let env = Env::new(sample_api(), config());
    for (section, name, _) in SAMPLE_FILES {
        env.read_all(&format!("inq_a/{section}/{name}"))
            .await
            .unwrap();
    }
    assert_eq!(
        env.calls(Call::Retrieve),
        1,
        "one retrieve for the whole inquiry"
    );
    assert_eq!(env.calls(Call::Download), 4);
}

#[tokio::test]
async fn a_refused_url_triggers_one_retrieve_and_a_retry() {
    let env = Env::new(sample_api(), config()); // believes URLs live 6 h
    env.mem().set_url_lifetime(Duration::from_secs(20));
    env.names("inq_a/document").await;
    env.clock.advance(Duration::from_secs(30));
    env.mem().set_url_lifetime(Duration::from_secs(3600));
    let got = env.read_all(FRONT).await.unwrap();
    assert!(got == env.bytes("inq_a", "doc_1-front-photo.jpg"));
    assert_eq!(env.mem().refused_urls(), 1);
    assert_eq!(env.calls(Call::Retrieve), 2);
    assert_eq!(env.calls(Call::Download), 2);
}

#[tokio::test]
async fn a_url_refused_mid_body_resumes_from_the_byte_reached() {
    let env = Env::new(sample_api(), config());
    env.api.cut_downloads(1, 100_000, Fault::Expired);
    let got = env.read_all(FRONT).await.unwrap();
    assert!(got == env.bytes("inq_a", "doc_1-front-photo.jpg"));
    let starts: Vec<u64> = fetches_of(&env, "doc_1/front-photo")
        .iter()
        .map(|f| f.start)
        .collect();
    assert_eq!(starts, [0, 100_000], "resumed, not started over");
    assert_eq!(
        env.calls(Call::Retrieve),
        2,
        "one re-retrieve for the new URL"
    );
}

#[tokio::test]
async fn each_stretch_of_progress_earns_one_more_retrieve() {
    let env = Env::new(sample_api(), config());
    // Refused after 30 000 bytes, then again after 30 000 more: progress each time.
    env.api.cut_downloads(2, 30_000, Fault::Expired);
    let got = env.read_all(FRONT).await.unwrap();
    assert!(got == env.bytes("inq_a", "doc_1-front-photo.jpg"));
    let starts: Vec<u64> = fetches_of(&env, "doc_1/front-photo")
        .iter()
        .map(|f| f.start)
        .collect();
    assert_eq!(starts, [0, 30_000, 60_000]);
    assert_eq!(env.calls(Call::Retrieve), 3);
}

#[tokio::test]
async fn a_url_refused_again_without_progress_fails_with_eio() {
    let env = Env::new(sample_api(), config());
    env.api.refuse_urls(2);
    assert_eq!(errno(env.read_all(FRONT).await), libc::EIO);
    assert_eq!(env.calls(Call::Retrieve), 2, "only one re-retrieve");
    assert_eq!(env.calls(Call::Download), 2);
    assert!(
        env.read_all(FRONT).await.is_ok(),
        "a later open tries again"
    );
}

#[tokio::test]
async fn concurrent_readers_of_a_stale_inquiry_share_one_retrieve() {
    let mut cfg = config();
    // Long enough that the one retrieve's view stays fresh for every waiter.
    cfg.file_url_lifetime = Duration::from_secs(20);
    cfg.url_refresh_margin = 0.0;
    let env = Env::new(sample_api(), cfg);
    let paths: Vec<String> = SAMPLE_FILES
        .iter()
        .map(|(s, n, _)| format!("inq_a/{s}/{n}"))
        .collect();
    for p in &paths {
        env.lookup(p).await.unwrap();
    }
    env.clock.advance(Duration::from_secs(30));
    env.api.delay(Call::Retrieve, Duration::from_millis(30));
    let reads = (0..16).map(|i| env.read_all(&paths[i % 4]));
    for (i, got) in futures::future::join_all(reads)
        .await
        .into_iter()
        .enumerate()
    {
        let name = SAMPLE_FILES[i % 4].1;
        assert!(got.unwrap() == env.bytes("inq_a", name), "{name}");
    }
    assert_eq!(env.calls(Call::Retrieve), 2);
    assert_eq!(env.calls(Call::Download), 4);
}
