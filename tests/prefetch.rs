//! End to end: read-ahead for serial tools, within its budget.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Options, TestMount, fuse_available, run};
use personafs::mock::{MockConfig, MockServer};

fn mock(n: usize) -> MockServer {
    MockServer::start(MockConfig {
        generate: n,
        seed: 13,
        ..Default::default()
    })
    .unwrap()
}

/// Wait until the mount has started no download for a while.
fn settle(m: &TestMount) {
    let mut last = (u64::MAX, Instant::now());
    let start = Instant::now();
    loop {
        let now = m.stats().file_get;
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(700) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "downloads never settled"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn opening_a_file_reads_ahead_and_nothing_is_downloaded_twice() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::with(mock(12), Options::default());
    let ids: Vec<String> = std::fs::read_dir(m.inquiries())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut direct = BTreeMap::new();
    for id in &ids {
        direct.insert(id.clone(), m.direct_files(id));
    }
    let gets_direct = m.stats().file_get;
    let first = ids.iter().find(|id| !direct[*id].is_empty()).unwrap();
    let (section, name, bytes) = &direct[first][0];
    let dir = m.inquiries().join(first);
    assert!(std::fs::read(dir.join(section).join(name)).unwrap() == *bytes);
    settle(&m);
    let ahead = m.stats().file_get - gets_direct;
    let first_pos = ids.iter().position(|i| i == first).unwrap();
    let window: usize = ids[first_pos..]
        .iter()
        .take(9)
        .map(|i| direct[i].len())
        .sum();
    assert!(ahead > 1, "nothing was read ahead");
    assert!(
        ahead as usize <= window,
        "read ahead beyond its window: {ahead} > {window}"
    );
    // A full copy now: right bytes, and no file downloaded twice.
    let out = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(
        "cp",
        &[
            "-r",
            m.inquiries().to_str().unwrap(),
            out.path().to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let total: usize = direct.values().map(Vec::len).sum();
    for (id, files) in &direct {
        for (section, name, bytes) in files {
            let copied = std::fs::read(
                out.path()
                    .join("inquiries")
                    .join(id)
                    .join(section)
                    .join(name),
            )
            .unwrap();
            assert!(copied == *bytes, "{id}/{section}/{name}");
        }
    }
    assert_eq!(
        m.stats().file_get - gets_direct,
        total as u64,
        "a file was downloaded twice"
    );
    assert_eq!(
        m.core.counters.downloads.load(Ordering::Relaxed),
        total as u64
    );
}

#[test]
fn read_ahead_stays_within_its_byte_budget() {
    if !fuse_available() {
        return;
    }
    let budget = 1 << 20;
    let mut opts = Options::default();
    opts.core.prefetch.max_unread_bytes = budget;
    let m = TestMount::with(mock(12), opts);
    let ids: Vec<String> = std::fs::read_dir(m.inquiries())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let (id, files) = ids
        .iter()
        .find_map(|id| {
            let f = m.direct_files(id);
            (!f.is_empty()).then(|| (id.clone(), f))
        })
        .unwrap();
    let before = m.stats().file_bytes;
    let (section, name, bytes) = &files[0];
    assert!(std::fs::read(m.inquiries().join(&id).join(section).join(name)).unwrap() == *bytes);
    settle(&m);
    let fetched = m.stats().file_bytes - before;
    assert!(
        fetched <= bytes.len() as u64 + budget,
        "read ahead {} bytes beyond a budget of {budget}",
        fetched - bytes.len() as u64
    );
}

#[test]
fn listing_a_tree_retrieves_ahead_but_downloads_nothing() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::with(mock(20), Options::default());
    let (ok, out, err) = run("ls", &["-lR", m.inquiries().to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(out.matches("inquiry.json").count(), 20);
    let s = m.stats();
    assert_eq!(s.file_get, 0, "listing downloaded file contents");
    assert!(
        s.api_retrieve <= 20,
        "{} retrieves for 20 inquiries",
        s.api_retrieve
    );
}
