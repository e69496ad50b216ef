//! End to end: `--shared-state` — real mounts (separate processes, separate cache dirs) of the
//! mock share one Redis: a walk by both retrieves each inquiry about once, the bytes are the
//! mock's, and a walk goes on when Redis dies.

mod binary;
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{client_for, fuse_available, generated};
use personafs_client::testing::redis_server::RedisServer;
use personafs_client::{PersonaApi, files_of};
use personafs_mock::{MockConfig, MockServer};

fn mock(n: usize, latency_ms: u64) -> MockServer {
    let mut config = generated(n, 33);
    config.runtime.api_latency_ms = latency_ms;
    MockServer::start(config).unwrap()
}

/// A mount of `mock` in a process of its own, with its own cache dir under `work`.
fn spawn(mock: &MockServer, work: &Path, name: &str, shared: Option<&str>) -> binary::Daemon {
    let mp = work.join(format!("{name}-mnt"));
    let cache = work.join(format!("{name}-cache"));
    std::fs::create_dir_all(&mp).unwrap();
    let mut extra = vec!["--prefetch", "false"];
    if let Some(url) = shared {
        extra.extend(["--shared-state", url]);
    }
    binary::Daemon::mount(mock, &mp, &cache, &extra)
}

/// `ls -lR` of a mount's inquiries: every directory listed and every entry stat'ed.
fn ls_lr(mp: &Path) -> String {
    common::stdout_of(Command::new("ls").arg("-lR").arg(mp.join("inquiries")))
}

/// Entries of an `ls -lR` of the mount at `mp` without the mountpoint and the times (the
/// same tree seen at two moments, through two mounts), and with `inquiry.json` or without
/// (it shows URLs as `REDACTED` on a mount with shared state, so its size differs).
fn names_and_sizes(listing: &str, mp: &Path, with_json: bool) -> Vec<String> {
    let prefix = mp.to_str().unwrap();
    listing
        .lines()
        .filter(|l| with_json || !l.ends_with(" inquiry.json"))
        .filter(|l| with_json || !l.starts_with("total "))
        .map(|l| l.replace(prefix, ""))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 9 {
                format!("{} {}", f[4], f[8..].join(" "))
            } else {
                l.to_string()
            }
        })
        .collect()
}

#[test]
fn the_mock_names_its_organization_and_the_client_learns_it() {
    let mock = mock(1, 0);
    let client = client_for(&mock);
    assert_eq!(client.identity(), None, "before any answer");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(client.list_page(&Default::default(), None, 10))
        .unwrap();
    let id = client.identity().expect("the ids of the answer");
    let (org, env) = MockConfig {
        seed: 33,
        ..MockConfig::default()
    }
    .identity();
    assert_eq!((id.organization, id.environment), (org, env));
}

#[test]
fn two_mounts_walking_at_once_retrieve_about_as_much_as_one() {
    if !fuse_available() {
        return;
    }
    let Some(redis) = RedisServer::start() else {
        return;
    };
    const N: usize = 30;
    let work = tempfile::tempdir().unwrap();
    // One mount alone, without shared state: the figure to compare with.
    let alone = mock(N, 0);
    let solo = spawn(&alone, work.path(), "solo", None);
    let solo_tree = ls_lr(&solo.mountpoint);
    let solo_mp = solo.mountpoint.clone();
    let one = alone.stats().api_retrieve;
    solo.stop();
    assert!(one >= N as u64, "{one}");

    let shared = mock(N, 0);
    let url = redis.url();
    let a = spawn(&shared, work.path(), "a", Some(&url));
    let b = spawn(&shared, work.path(), "b", Some(&url));
    let (mp_a, mp_b) = (a.mountpoint.clone(), b.mountpoint.clone());
    let walk_a = std::thread::spawn(move || ls_lr(&mp_a));
    let tree_b = ls_lr(&mp_b);
    let tree_a = walk_a.join().unwrap();
    let stats = shared.stats();
    eprintln!(
        "retrieves: one mount alone {one}, two shared mounts together {}",
        stats.api_retrieve
    );
    let same = |x: Vec<String>, y: Vec<String>, what: &str| {
        let differ: Vec<_> = x.iter().zip(&y).filter(|(a, b)| a != b).take(3).collect();
        assert!(
            x.len() == y.len() && differ.is_empty(),
            "{what}: {differ:?}"
        );
    };
    same(
        names_and_sizes(&tree_a, &a.mountpoint, true),
        names_and_sizes(&tree_b, &b.mountpoint, true),
        "the two shared mounts",
    );
    same(
        names_and_sizes(&tree_a, &a.mountpoint, false),
        names_and_sizes(&solo_tree, &solo_mp, false),
        "a shared mount and one alone",
    );
    assert!(
        stats.api_retrieve * 10 <= one * 11,
        "two mounts retrieved {} times, one alone {one}",
        stats.api_retrieve
    );
    assert_eq!(stats.rate_limited, 0);

    // Files read on both mounts are the mock's bytes (each mount downloads with its own URLs).
    let client = client_for(&shared);
    let rt = tokio::runtime::Runtime::new().unwrap();
    for id in shared.inquiry_ids().iter().take(3) {
        let inquiry = rt.block_on(client.retrieve_inquiry(id)).unwrap();
        for f in files_of(&inquiry) {
            let mut expected = Vec::new();
            rt.block_on(client.download(&f.url, 0, &mut expected))
                .unwrap();
            for mp in [&a.mountpoint, &b.mountpoint] {
                let path = mp
                    .join("inquiries")
                    .join(id)
                    .join(f.section.dir_name())
                    .join(&f.name);
                assert!(
                    std::fs::read(&path).unwrap() == expected,
                    "{}",
                    path.display()
                );
            }
        }
    }
    // Nothing in Redis holds a URL or a token.
    for (key, value) in rt.block_on(redis.contents()) {
        let text = String::from_utf8_lossy(&value).to_ascii_lowercase();
        assert!(
            !text.contains("token") && !text.contains("http") && !text.contains(&shared.api_key()),
            "{key}: {text}"
        );
    }
    a.stop();
    b.stop();
}

#[test]
fn a_walk_completes_when_redis_dies_midway_and_says_so_once() {
    if !fuse_available() {
        return;
    }
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    const N: usize = 30;
    let work = tempfile::tempdir().unwrap();
    // Each API answer takes 30 ms: the walk lasts long enough to lose Redis in the middle.
    let mock = mock(N, 30);
    let url = redis.url();
    let a = spawn(&mock, work.path(), "a", Some(&url));
    let mp = a.mountpoint.clone();
    let walk = std::thread::spawn(move || ls_lr(&mp));
    binary::wait_until("a third of the walk", Duration::from_secs(60), || {
        mock.stats().api_retrieve >= (N / 3) as u64
    });
    redis.kill();
    let tree = walk.join().unwrap();
    for id in mock.inquiry_ids() {
        assert!(
            tree.contains(&format!("{id}:")),
            "{id} missing from the walk"
        );
    }
    let log = a.stop();
    for what in ["the shared inquiry views", "the shared request budget"] {
        let said = log
            .lines()
            .filter(|l| l.contains(&format!("{what} in Redis is unreachable")))
            .count();
        assert_eq!(said, 1, "{what}: {log}");
    }
}

/// With `--shared-state`, two mounts take one delta between them: the second takes the
/// first's changes from Redis (no search of its own), and both show the change.
#[test]
fn two_mounts_take_one_delta_between_them() {
    if !fuse_available() {
        return;
    }
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let shared = mock(20, 0);
    let url = redis.url();
    let spawn_fast = |name: &str| {
        let mp = work.path().join(format!("{name}-mnt"));
        let cache = work.path().join(format!("{name}-cache"));
        std::fs::create_dir_all(&mp).unwrap();
        let extra = [
            "--prefetch",
            "false",
            "--shared-state",
            url.as_str(),
            "--metadata-ttl",
            "2s",
        ];
        binary::Daemon::mount(&shared, &mp, &cache, &extra)
    };
    let (a, b) = (spawn_fast("a"), spawn_fast("b"));
    ls_lr(&a.mountpoint);
    ls_lr(&b.mountpoint);
    let id = shared.inquiry_ids()[5].clone();
    let status = |mp: &Path| -> String {
        let json = std::fs::read(mp.join("inquiries").join(&id).join("inquiry.json")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        v["data"]["attributes"]["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let new = if status(&a.mountpoint) == "declined" {
        "approved"
    } else {
        "declined"
    };
    // Real time: past both daemons' 2 s metadata TTL, so both mounts' deltas are due.
    std::thread::sleep(Duration::from_millis(2_200));
    assert!(shared.set_status(&id, new));
    let before = shared.stats().api_search;
    assert_eq!(status(&a.mountpoint), new, "mount a, by its delta");
    assert_eq!(status(&b.mountpoint), new, "mount b, by a's delta");
    assert_eq!(
        shared.stats().api_search - before,
        1,
        "one search between the two mounts"
    );
    a.stop();
    b.stop();
}
