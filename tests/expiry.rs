//! End to end: signed URLs that expire, and a filesystem that never shows it.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{Options, TestMount, fuse_available, generated};
use personafs_mock::{MockServer, RuntimeConfig};

fn mock_with_lifetime(n: usize, lifetime_ms: u64) -> MockServer {
    let mut cfg = generated(n, 3);
    cfg.runtime.file_url_lifetime_ms = lifetime_ms;
    MockServer::start(cfg).unwrap()
}

/// A file's path in the mount and its bytes from a direct download.
type FileBytes = (std::path::PathBuf, Vec<u8>);

/// Paths of the files of inquiries that have at least one, grouped by inquiry.
fn files_by_inquiry(m: &TestMount) -> Vec<(String, Vec<FileBytes>)> {
    m.mock
        .inquiry_ids()
        .into_iter()
        .filter_map(|id| {
            let files: Vec<_> = m
                .direct_files(&id)
                .into_iter()
                .map(|(s, n, b)| (m.inquiries().join(&id).join(s).join(n), b))
                .collect();
            (!files.is_empty()).then_some((id, files))
        })
        .collect()
}

#[test]
fn proactive_refresh_keeps_reads_working_at_one_retrieve_per_lifetime() {
    if !fuse_available() {
        return;
    }
    let mock = mock_with_lifetime(12, 2000);
    let mut opts = Options::exact();
    opts.core.file_url_lifetime = Duration::from_secs(2);
    let m = TestMount::with(mock, opts);
    let groups = files_by_inquiry(&m);
    let all: Vec<_> = groups
        .iter()
        .flat_map(|(_, f)| f.clone())
        .take(30)
        .collect();
    assert!(all.len() >= 20, "only {} files", all.len());
    let inquiries = groups.len() as u64;
    let before = m.stats();
    let start = Instant::now();
    for (i, (path, bytes)) in all.iter().enumerate() {
        // Spread the reads over ~10 s: several lifetimes pass.
        let due = Duration::from_millis(10_000 * i as u64 / all.len() as u64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            // Real time: the reads are spread over the lifetimes of real signed URLs.
            std::thread::sleep(wait);
        }
        let got = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(got == *bytes, "{} differs", path.display());
    }
    let after = m.stats();
    let retrieves = after.api_retrieve - before.api_retrieve;
    let lifetimes = start.elapsed().as_secs_f64() / 2.0;
    // About one per inquiry per lifetime, never one per file.
    assert!(
        (retrieves as f64) <= inquiries as f64 * (lifetimes + 2.0),
        "{retrieves} retrieves for {inquiries} inquiries over {lifetimes:.1} lifetimes"
    );
    assert!(retrieves < all.len() as u64 * 2);
    assert_eq!(
        after.file_expired, before.file_expired,
        "no expired URL was used"
    );
}

#[test]
fn reactive_refresh_when_the_lifetime_is_shorter_than_configured() {
    if !fuse_available() {
        return;
    }
    let mock = mock_with_lifetime(6, 1000);
    let m = TestMount::with(mock, Options::exact()); // mount believes 6 h
    let groups = files_by_inquiry(&m);
    // Learn every URL now, let them all expire, then read.
    for (id, _) in &groups {
        std::fs::read_dir(m.inquiries().join(id).join("document"))
            .unwrap()
            .count();
    }
    m.mock.advance_url_clock(Duration::from_millis(1500));
    for (_, files) in &groups {
        for (path, bytes) in files {
            assert!(std::fs::read(path).unwrap() == *bytes, "{}", path.display());
        }
    }
    assert!(
        m.stats().file_expired > 0,
        "the reactive path was not exercised"
    );
}

#[test]
fn concurrent_readers_of_stale_inquiries_share_one_retrieve_each() {
    if !fuse_available() {
        return;
    }
    let mock = mock_with_lifetime(16, 60_000);
    let mut opts = Options::exact();
    opts.core.file_url_lifetime = Duration::from_secs(1);
    opts.core.url_refresh_margin = 0.0;
    let m = TestMount::with(mock, opts);
    let groups: Vec<_> = files_by_inquiry(&m).into_iter().take(4).collect();
    assert_eq!(groups.len(), 4);
    for (id, _) in &groups {
        std::fs::read_dir(m.inquiries().join(id).join("document"))
            .unwrap()
            .count();
        std::fs::read_dir(m.inquiries().join(id).join("selfie"))
            .unwrap()
            .count();
    }
    // Real time: the mount's URLs live 1 s by its clock; every one is stale after this.
    std::thread::sleep(Duration::from_millis(1200));
    let before = m.stats().api_retrieve;
    let barrier = Arc::new(Barrier::new(32));
    let readers: Vec<_> = (0..32)
        .map(|i| {
            let (_, files) = &groups[i % 4];
            let (path, bytes) = files[(i / 4) % files.len()].clone();
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                assert!(std::fs::read(&path).unwrap() == bytes);
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(m.stats().api_retrieve - before, 4);
}

#[test]
fn dropped_connections_resume_with_range() {
    if !fuse_available() {
        return;
    }
    let mock = mock_with_lifetime(6, 6 * 3600 * 1000);
    let m = TestMount::with(mock, Options::exact());
    let groups = files_by_inquiry(&m);
    m.mock.set_runtime(RuntimeConfig {
        reset_rate: 0.5,
        truncate_rate: 0.2,
        ..m.mock.runtime()
    });
    let mut n = 0;
    for (_, files) in &groups {
        for (path, bytes) in files {
            assert!(std::fs::read(path).unwrap() == *bytes, "{}", path.display());
            n += 1;
        }
    }
    assert!(n >= 6);
    let s = m.stats();
    assert!(s.resets + s.truncated > 0, "no body was cut: {s:?}");
}

#[test]
fn old_form_urls_use_the_key_and_new_form_never_do() {
    if !fuse_available() {
        return;
    }
    for version in ["2022-09-01", "2023-01-05"] {
        let mock = mock_with_lifetime(4, 6 * 3600 * 1000);
        let v = version.to_string();
        let opts = Options {
            client: Box::new(move |c| c.persona_version = v),
            ..Default::default()
        };
        let m = TestMount::with(mock, opts);
        let groups = files_by_inquiry(&m);
        for (_, files) in &groups {
            for (path, bytes) in files {
                assert!(
                    std::fs::read(path).unwrap() == *bytes,
                    "{version}: {}",
                    path.display()
                );
            }
        }
        assert_eq!(
            m.stats().files_auth_header,
            0,
            "{version}: key sent to the files host"
        );
    }
}

/// The mock's rate window, scaled from Persona's minute so the walk waits out several windows
/// in seconds; the client learns it from `RateLimit-Policy` and keeps to it as to a minute.
const RATE_WINDOW: Duration = Duration::from_secs(5);

#[test]
fn rate_limited_tree_walk_completes() {
    if !fuse_available() {
        return;
    }
    // 30 requests a window at the mock, and the client allowed all 30 of them (with the
    // default reserve): the walk waits for the window to reset, again and again.
    let mut cfg = generated(60, 5);
    cfg.runtime.rate_limit = 30;
    cfg.runtime.rate_window_ms = RATE_WINDOW.as_millis() as u64;
    let mock = MockServer::start(cfg).unwrap();
    // Every request is bounded by --io-timeout, rate-limit waits included (SEMANTICS): a
    // walk that may wait out a whole rate window at any step is given more than one window.
    let timeout = RATE_WINDOW * 5 / 2;
    let mut opts = Options {
        client: Box::new(move |c| {
            c.budget = personafs_client::ratelimit::BudgetPolicy {
                share: 1.0,
                ..Default::default()
            };
            c.operation_timeout = timeout;
        }),
        ..Default::default()
    };
    opts.core.io_timeout = timeout;
    let m = TestMount::with(mock, opts);
    let started = Instant::now();
    let (ok, out, err) = common::run("ls", &["-lR", m.inquiries().to_str().unwrap()]);
    assert!(ok, "ls -lR failed: {err}");
    assert_eq!(out.matches("inquiry.json").count(), 60);
    let s = m.stats();
    eprintln!(
        "walk took {:?}: {} API requests, {} refused with 429",
        started.elapsed(),
        s.api_requests,
        s.rate_limited
    );
}

#[test]
fn a_file_gone_mid_download_gives_estale_and_the_listing_updates() {
    if !fuse_available() {
        return;
    }
    let mock = mock_with_lifetime(8, 1000);
    let m = TestMount::with(mock, Options::exact());
    let groups = files_by_inquiry(&m);
    let (id, (path, bytes)) = groups
        .iter()
        .flat_map(|(id, files)| files.iter().map(move |f| (id.clone(), f.clone())))
        .max_by_key(|(_, (_, b))| b.len())
        .unwrap();
    assert!(
        bytes.len() > 500_000,
        "largest file is only {} bytes",
        bytes.len()
    );
    // Slow, and every body cut short: the download resumes request after request.
    m.mock.set_runtime(RuntimeConfig {
        files_bandwidth: 200_000,
        reset_rate: 1.0,
        ..m.mock.runtime()
    });
    let mut f = std::fs::File::open(&path).unwrap();
    let mut head = vec![0u8; 16 << 10];
    std::io::Read::read_exact(&mut f, &mut head).unwrap();
    assert!(head[..] == bytes[..head.len()]);
    assert!(m.mock.redact(&id));
    let mut rest = Vec::new();
    let e = std::io::Read::read_to_end(&mut f, &mut rest).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ESTALE), "{e}");
    let dir = m.inquiries().join(&id);
    let shown: usize = ["document", "selfie"]
        .iter()
        .map(|s| std::fs::read_dir(dir.join(s)).unwrap().count())
        .sum();
    assert_eq!(shown, 0, "the redacted inquiry still lists files");
}
