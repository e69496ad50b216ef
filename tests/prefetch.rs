//! End to end: read-ahead for serial tools, within its budget.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Options, TestMount, fuse_available, mock, run, wait_until};

/// The generated organization of these tests.
const SEED: u64 = 13;

/// Wait until the mount has started no download for a while.
fn settle(m: &TestMount) {
    let mut last = (u64::MAX, Instant::now());
    wait_until("downloads settling", Duration::from_secs(60), || {
        let now = m.stats().file_get;
        if now != last.0 {
            last = (now, Instant::now());
        }
        last.1.elapsed() > Duration::from_millis(700)
    });
}

#[test]
fn opening_a_file_reads_ahead_and_nothing_is_downloaded_twice() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::with(mock(12, SEED), Options::default());
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
    let m = TestMount::with(mock(12, SEED), opts);
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
    let m = TestMount::with(mock(20, SEED), Options::default());
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

/// Read-ahead that waits for a download slot while the user reads the same file must not
/// fetch it again once it is in the cache.
#[test]
fn read_ahead_skips_files_read_while_it_waited() {
    use personafs_fs::{CoreConfig, PrefetchConfig};
    use personafs_mock::RuntimeConfig;
    if !fuse_available() {
        return;
    }
    let server = mock(6, SEED);
    let opts = Options {
        core: CoreConfig {
            prefetch: PrefetchConfig {
                inquiries_ahead: 0,
                max_downloads: 1,
                ..PrefetchConfig::default()
            },
            ..CoreConfig::default()
        },
        ..Options::default()
    };
    let m = TestMount::with(server, opts);
    let ids: Vec<String> = m.mock.inquiry_ids();
    let (id, direct) = ids
        .iter()
        .map(|id| (id.clone(), m.direct_files(id)))
        .find(|(_, files)| files.len() >= 4)
        .expect("an inquiry with 4 files");
    let gets_direct = m.stats().file_get;
    // Read-ahead goes in name order, one download at a time.
    let mut direct = direct;
    direct.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let path = |i: usize| {
        m.inquiries()
            .join(&id)
            .join(&direct[i].0)
            .join(&direct[i].1)
    };
    // Slow downloads: opening file 0 starts its own download and read-ahead's of file 1,
    // which holds the one slot for a while, and file 2 waits for that slot.
    m.mock.set_runtime(RuntimeConfig {
        files_bandwidth: 256 << 10,
        ..m.mock.runtime()
    });
    let f0 = std::fs::File::open(path(0)).unwrap();
    let mut byte = [0u8; 1];
    std::os::unix::fs::FileExt::read_exact_at(&f0, &mut byte, 0).unwrap();
    // Fast again: the user reads file 2 whole, before read-ahead gets to it.
    m.mock.set_runtime(RuntimeConfig {
        files_bandwidth: 0,
        ..m.mock.runtime()
    });
    assert!(std::fs::read(path(2)).unwrap() == direct[2].2);
    // The slow ones end; then every file, checked.
    for (i, (_, _, bytes)) in direct.iter().enumerate() {
        assert!(std::fs::read(path(i)).unwrap() == *bytes, "file {i}");
    }
    drop(f0);
    settle(&m);
    assert_eq!(
        m.stats().file_get - gets_direct,
        direct.len() as u64,
        "a file was downloaded twice"
    );
}
