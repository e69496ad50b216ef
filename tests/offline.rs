//! Offline reading with the real binary (SEMANTICS.md, "Metadata store and offline reading"):
//! mount over a mock, copy everything, unmount; remount on the same cache directory and walk
//! it again (counting what reaches the mock); unmount, stop the mock, remount: `ls -lR` and a
//! byte comparison of every file succeed with nobody to ask.

mod binary;
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use binary::{Daemon, bounded, read_tree};
use common::{fuse_available, unlimited};
use personafs_mock::MockServer;

/// Inquiries in the mock; `PERSONAFS_OFFLINE_INQUIRIES` sets another number (to measure).
fn inquiries_count() -> usize {
    std::env::var("PERSONAFS_OFFLINE_INQUIRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

/// `ls -lR`: every path below `root` with its kind and size.
fn ls_lr(root: &Path) -> Vec<(PathBuf, bool, u64)> {
    common::walk(root)
        .into_iter()
        .map(|rel| {
            let m = std::fs::metadata(root.join(&rel)).unwrap();
            (rel, m.is_dir(), if m.is_dir() { 0 } else { m.len() })
        })
        .collect()
}

fn mount_args(mp: &Path, cache: &Path, log: &Path, mock: &MockServer) -> Vec<String> {
    binary::mock_mount_args(
        mock,
        mp,
        cache,
        &[
            "--log-file",
            log.to_str().unwrap(),
            // Read-ahead off: every download here is one this test asked for.
            "--prefetch=false",
            // Whatever the machine's disk holds: this test is not about a full disk.
            "--cache-min-free",
            "0",
        ],
    )
}

#[test]
fn a_remount_with_persona_unreachable_shows_the_tree_and_the_cached_bytes() {
    if !fuse_available() {
        return;
    }
    let n = inquiries_count();
    let mock = MockServer::start(unlimited(n, 31)).unwrap();
    let key = mock.api_key();
    let mp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let log = work.path().join("personafs.log");
    let args = mount_args(mp.path(), &cache, &log, &mock);
    let env = [("PERSONA_API_KEY", key.as_str())];
    let inquiries = mp.path().join("inquiries");

    // 1. Online: `ls -lR` and `cp -r` of everything.
    let d = Daemon::spawn(mp.path(), &args, &env);
    let tree = ls_lr(&inquiries);
    let files = read_tree(&inquiries);
    assert_eq!(
        std::fs::read_dir(&inquiries).unwrap().count(),
        n,
        "every inquiry listed"
    );
    assert!(files.len() > n, "inquiry.json and files copied");
    // A redacted inquiry keeps no file, only its (empty) view.
    let redacted = files
        .iter()
        .filter(|(p, bytes)| {
            p.ends_with("inquiry.json")
                && serde_json::from_slice::<serde_json::Value>(bytes).unwrap()["data"]["attributes"]
                    ["redacted-at"]
                    .is_string()
        })
        .count() as u64;
    d.stop();

    // 2. A remount while Persona answers: the store and the cache answer, a listing confirms.
    let before = mock.stats();
    let d = Daemon::spawn(mp.path(), &args, &env);
    assert_eq!(ls_lr(&inquiries), tree);
    assert!(read_tree(&inquiries) == files, "the same bytes");
    d.stop();
    let after = mock.stats();
    let lists = after.api_list - before.api_list;
    let retrieves = after.api_retrieve - before.api_retrieve;
    let max_lists = 2 * n.div_ceil(100) as u64;
    eprintln!(
        "remount + ls -lR + cp -r of {n} inquiries ({redacted} redacted): {lists} list, {retrieves} retrieve, {} GET, {} HEAD",
        after.file_get - before.file_get,
        after.file_head - before.file_head
    );
    assert!(lists <= max_lists, "{lists} list calls");
    assert!(
        retrieves == 0,
        "{retrieves} retrieves: every view should come from the store; the log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(
        after.file_get, before.file_get,
        "every file came from the cache"
    );

    // 3. Persona gone: the mount starts anyway and shows the tree as last seen.
    drop(mock);
    let started = std::time::Instant::now();
    let d = Daemon::spawn(mp.path(), &args, &env);
    eprintln!("offline mount answered after {:?}", started.elapsed());
    let root = inquiries.clone();
    let (offline_tree, offline_files) =
        bounded("an offline walk", Duration::from_secs(240), move || {
            (ls_lr(&root), read_tree(&root))
        });
    eprintln!("offline ls -lR + cp -r done after {:?}", started.elapsed());
    assert_eq!(offline_tree, tree, "ls -lR as last seen");
    assert!(offline_files == files, "every cached file byte-identical");
    let stderr = d.stop();
    let logged = std::fs::read_to_string(&log).unwrap_or_default() + &stderr;
    if std::env::var_os("PERSONAFS_TEST_SHOW_LOG").is_some() {
        eprintln!("{logged}");
    }
    assert!(
        logged.contains("offline"),
        "the offline mode is logged: {logged}"
    );
    assert!(!logged.contains(&key), "the API key never reaches the log");
}
