//! End to end: reading real bytes through a real mount over the mock.

mod common;

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Options, TestMount, fuse_available, generated, mock, run, wait_until};
use personafs_mock::RuntimeConfig;

/// The generated organization of these tests.
const SEED: u64 = 11;

/// An inquiry with at least `min` files.
fn inquiry_with_files(m: &TestMount, min: usize) -> (String, Vec<(String, String, Vec<u8>)>) {
    for id in m.mock.inquiry_ids() {
        let files = m.direct_files(&id);
        if files.len() >= min {
            return (id, files);
        }
    }
    panic!("no inquiry with {min} files");
}

#[test]
fn cp_r_is_byte_identical() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::start(generated(10, SEED));
    let (id, direct) = inquiry_with_files(&m, 4);
    let out = tempfile::tempdir().unwrap();
    let src = m.inquiries().join(&id);
    let (ok, _, err) = run(
        "cp",
        &["-r", src.to_str().unwrap(), out.path().to_str().unwrap()],
    );
    assert!(ok, "cp -r: {err}");
    for (section, name, bytes) in &direct {
        let copied = std::fs::read(out.path().join(&id).join(section).join(name)).unwrap();
        assert!(
            copied == *bytes,
            "{section}/{name} differs from the direct download"
        );
    }
    let json = std::fs::read(out.path().join(&id).join("inquiry.json")).unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&json).is_ok());
}

#[test]
fn rsync_twice_copies_nothing_the_second_time() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::start(generated(8, SEED));
    let out = tempfile::tempdir().unwrap();
    let src = format!("{}/", m.inquiries().display());
    let dst = out.path().to_str().unwrap();
    let (ok, first, err) = run("rsync", &["-a", "--stats", &src, dst]);
    assert!(ok, "rsync: {err}");
    let gets = m.stats().file_get;
    assert!(gets > 0);
    let (ok, second, err) = run("rsync", &["-a", "--stats", &src, dst]);
    assert!(ok, "rsync: {err}");
    let transferred = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("Number of regular files transferred"))
            .map(|l| l.rsplit(':').next().unwrap().trim().replace(',', ""))
            .unwrap()
    };
    assert_ne!(transferred(&first), "0");
    assert_eq!(
        transferred(&second),
        "0",
        "second rsync copied files:\n{second}"
    );
    assert_eq!(m.stats().file_get, gets, "second rsync downloaded files");
    for id in m.mock.inquiry_ids().iter().take(3) {
        for (section, name, bytes) in m.direct_files(id) {
            assert!(std::fs::read(out.path().join(id).join(section).join(&name)).unwrap() == bytes);
        }
    }
}

#[test]
fn mmap_reads_the_same_bytes_and_photos_decode() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::start(generated(6, SEED));
    let mut photos = 0;
    for id in m.mock.inquiry_ids() {
        for (section, name, bytes) in m.direct_files(&id) {
            let path = m.inquiries().join(&id).join(&section).join(&name);
            let mapped = mmap_read(&path);
            assert!(mapped == bytes, "mmap of {name} differs");
            if name.ends_with(".jpg") || name.ends_with(".jpeg") {
                let mut d = jpeg_decoder::Decoder::new(std::io::Cursor::new(&mapped));
                let pixels = d
                    .decode()
                    .unwrap_or_else(|e| panic!("{name} is not a JPEG: {e}"));
                let info = d.info().unwrap();
                assert!(info.width > 0 && info.height > 0 && !pixels.is_empty());
                photos += 1;
            }
        }
    }
    assert!(photos >= 5, "only {photos} photos decoded");
}

fn mmap_read(path: &Path) -> Vec<u8> {
    let f = std::fs::File::open(path).unwrap();
    let len = f.metadata().unwrap().len() as usize;
    if len == 0 {
        return Vec::new();
    }
    // SAFETY: a private read-only mapping of a file we keep open for its lifetime.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(p, libc::MAP_FAILED, "mmap failed");
        let out = std::slice::from_raw_parts(p as *const u8, len).to_vec();
        libc::munmap(p, len);
        out
    }
}

#[test]
fn parallel_readers_share_one_download() {
    if !fuse_available() {
        return;
    }
    let mock = mock(4, SEED);
    // Slow the files host so the 20 readers surely overlap.
    mock.set_runtime(RuntimeConfig {
        files_bandwidth: 2 << 20,
        ..mock.runtime()
    });
    let m = TestMount::with(mock, Options::exact());
    let (id, direct) = inquiry_with_files(&m, 1);
    let (section, name, bytes) = direct.iter().max_by_key(|f| f.2.len()).unwrap().clone();
    let path = Arc::new(m.inquiries().join(&id).join(&section).join(&name));
    let before = m.stats().file_get;
    let readers: Vec<_> = (0..20)
        .map(|_| {
            let p = path.clone();
            std::thread::spawn(move || std::fs::read(&*p).unwrap())
        })
        .collect();
    for r in readers {
        assert!(r.join().unwrap() == bytes);
    }
    assert_eq!(
        m.stats().file_get - before,
        1,
        "20 readers must share one download"
    );
}

#[test]
fn redaction_purges_the_cache() {
    if !fuse_available() {
        return;
    }
    let mock = mock(20, SEED);
    let mut opts = Options::exact();
    opts.core.metadata_ttl = Duration::from_millis(300);
    let m = TestMount::with(mock, opts);
    // An unfinished inquiry is retrieved again after the metadata TTL, which shows the
    // redaction (a final one only when its URLs are next needed).
    let unfinished = ["created", "pending", "needs_review"];
    let (id, direct) = m
        .mock
        .inquiry_ids()
        .into_iter()
        .find_map(|id| {
            let inquiry = m.rt.block_on(m.api.retrieve_inquiry(&id)).unwrap();
            let open = unfinished.contains(&inquiry.status.as_deref().unwrap_or(""));
            let files = m.direct_files(&id);
            (open && !files.is_empty()).then_some((id, files))
        })
        .expect("an unfinished inquiry with files");
    let dir = m.inquiries().join(&id);
    for (section, name, _) in &direct {
        std::fs::read(dir.join(section).join(name)).unwrap();
    }
    let entries = || {
        std::fs::read_dir(m.cache_dir.join("data"))
            .unwrap()
            .filter(|e| {
                !e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".meta")
            })
            .count()
    };
    // Entries are committed just after their last byte is served.
    wait_until("every file cached", Duration::from_secs(10), || {
        entries() >= direct.len()
    });
    assert_eq!(entries(), direct.len());
    assert!(m.mock.redact(&id));
    // Listed again until the TTL is over and the retrieve that shows the redaction is made.
    let shown = || -> usize {
        ["document", "selfie"]
            .iter()
            .map(|s| std::fs::read_dir(dir.join(s)).unwrap().count())
            .sum()
    };
    wait_until(
        "a redacted inquiry shows no files",
        Duration::from_secs(10),
        || shown() == 0,
    );
    assert_eq!(entries(), 0, "nothing of a redacted inquiry stays cached");
}

#[test]
fn cold_reads_are_served_from_the_download_and_byte_identical() {
    if !fuse_available() {
        return;
    }
    use std::sync::atomic::Ordering;
    let m = TestMount::start_exact(generated(6, SEED));
    let (id, direct) = inquiry_with_files(&m, 3);
    for (section, name, bytes) in &direct {
        let path = m.inquiries().join(&id).join(section).join(name);
        let got = std::fs::read(&path).unwrap();
        assert!(
            got == *bytes,
            "{section}/{name} differs from the direct download"
        );
    }
    // Cold, each file was read through personafs from its download (no passthrough yet).
    let reads = m.core.counters.reads.load(Ordering::Relaxed);
    assert!(
        reads >= direct.len() as u64,
        "{reads} reads for {} files",
        direct.len()
    );
}
