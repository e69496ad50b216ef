//! End to end: the disk cache — bounded, persistent, verified, private, streaming, fast.

mod binary;
mod common;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use binary::Daemon;
use common::{Options, TestMount, fuse_available, generated, mock, wait_until};
use personafs_fs::cache::CacheLimits;
use personafs_mock::{MockConfig, MockServer, RuntimeConfig, generate};

/// The generated organization of these tests.
const SEED: u64 = 21;

/// A cache at `dir`, no read-ahead (these tests count downloads and entries exactly).
fn with_cache(dir: &Path, max_size: u64) -> Options {
    Options {
        cache_dir: Some(dir.to_path_buf()),
        cache_limits: CacheLimits {
            max_size,
            min_free: 0.0,
            max_age: None,
        },
        ..Options::exact()
    }
}

/// Bytes of every file below `dir` (entries, meta files, temp files).
fn bytes_on_disk(dir: &Path) -> u64 {
    let mut total = 0;
    for sub in ["data", "tmp"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            for e in rd.flatten() {
                total += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    total
}

fn data_entries(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("data"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| !e.file_name().to_string_lossy().ends_with(".meta"))
                .count()
        })
        .unwrap_or(0)
}

/// Every file of the mount with its direct bytes, in a stable order.
fn all_files(m: &TestMount) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for id in m.mock.inquiry_ids() {
        for (section, name, bytes) in m.direct_files(&id) {
            out.push((m.inquiries().join(&id).join(section).join(name), bytes));
        }
    }
    out
}

/// How long the waits for the cache may take (a hang detector).
const WAIT: Duration = Duration::from_secs(20);

#[test]
fn the_cap_holds_and_least_recently_used_files_go_first() {
    if !fuse_available() {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let cap = 10 << 20;
    let m = TestMount::with(mock(20, SEED), with_cache(cache.path(), cap));
    let files = all_files(&m);
    let mut read = 0u64;
    let mut order = Vec::new();
    for (path, bytes) in &files {
        if bytes.len() as u64 > cap / 4 {
            continue;
        }
        assert!(std::fs::read(path).unwrap() == *bytes);
        // Sampled while downloads are committed: never above the cap (meta files are tiny
        // and not counted by the cap; allow them).
        let meta_allowance = 4096 * 64;
        assert!(
            bytes_on_disk(cache.path()) <= cap + meta_allowance,
            "cache over its cap"
        );
        read += bytes.len() as u64;
        order.push((path.clone(), bytes.clone()));
        if read > 30 << 20 {
            break;
        }
    }
    assert!(read > 30 << 20, "only {read} bytes of files");
    wait_until("the last commit", WAIT, || {
        bytes_on_disk(cache.path()) > 0 && data_entries(cache.path()) > 0
    });
    // The newest file is still cached: reading it again downloads nothing.
    let gets = m.stats().file_get;
    let (last, last_bytes) = order.last().unwrap();
    wait_until("the newest file to be cached", WAIT, || {
        std::fs::read(last).unwrap();
        m.stats().file_get == gets
    });
    assert!(std::fs::read(last).unwrap() == *last_bytes);
    // The oldest went first: its entry is gone, the newest one's is there.
    let (first, first_bytes) = &order[0];
    assert!(
        !is_cached(&m, cache.path(), first),
        "the oldest file is still cached"
    );
    assert!(
        is_cached(&m, cache.path(), last),
        "the newest file is not cached"
    );
    // An evicted file still reads right (downloaded again, or from the kernel's pages).
    drop_page_cache(first);
    assert!(std::fs::read(first).unwrap() == *first_bytes);
    assert!(bytes_on_disk(cache.path()) <= cap + 4096 * 64);
}

/// Whether the file at `path` (in the mount) has an entry in the cache at `dir`.
fn is_cached(m: &TestMount, dir: &Path, path: &Path) -> bool {
    let id = path
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    let inquiry = m.rt.block_on(m.api.retrieve_inquiry(id)).unwrap();
    let f = personafs_client::files_of(&inquiry)
        .into_iter()
        .find(|f| f.name == name)
        .unwrap();
    let key = personafs_fs::cache::CacheKey {
        inquiry_id: id.to_string(),
        object_id: f.object_id,
        name: f.name,
        size: std::fs::metadata(path).unwrap().len(),
    };
    dir.join("data").join(key.digest()).exists()
}

/// Ask the kernel to forget the pages of a file, so the next read goes past its page cache.
fn drop_page_cache(path: &Path) {
    let f = std::fs::File::open(path).unwrap();
    // SAFETY: plain advice on a descriptor we own.
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
}

#[test]
fn a_remount_reuses_the_cache_and_detects_tampering() {
    if !fuse_available() {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    // (path relative to the mountpoint, bytes)
    let files: Vec<(PathBuf, Vec<u8>)> = {
        let m = TestMount::with(mock(6, SEED), with_cache(cache.path(), 1 << 30));
        let files = all_files(&m);
        for (path, bytes) in &files {
            assert!(std::fs::read(path).unwrap() == *bytes);
        }
        wait_until("every file to be cached", WAIT, || {
            data_entries(cache.path()) == files.len()
        });
        let relative = files
            .into_iter()
            .map(|(p, b)| (p.strip_prefix(m.path()).unwrap().to_path_buf(), b))
            .collect();
        m.unmount();
        relative
    };
    // Alter one entry behind the cache's back, keeping its length.
    let victim = std::fs::read_dir(cache.path().join("data"))
        .unwrap()
        .flatten()
        .find(|e| !e.file_name().to_string_lossy().ends_with(".meta"))
        .unwrap()
        .path();
    let mut altered = std::fs::read(&victim).unwrap();
    altered[100] ^= 0xff;
    std::fs::write(&victim, &altered).unwrap();
    // Same data, new server, same cache: one download (the altered file), right bytes.
    let m = TestMount::with(mock(6, SEED), with_cache(cache.path(), 1 << 30));
    for (relative, bytes) in &files {
        let path = m.path().join(relative);
        assert!(
            std::fs::read(&path).unwrap() == *bytes,
            "{}",
            path.display()
        );
    }
    assert_eq!(
        m.stats().file_get,
        1,
        "only the altered entry is downloaded again"
    );
    // Private: 0700 directories, 0600 files, names that are hashes.
    use std::os::unix::fs::PermissionsExt;
    for d in [
        cache.path().to_path_buf(),
        cache.path().join("data"),
        cache.path().join("tmp"),
    ] {
        assert_eq!(
            std::fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
    for e in std::fs::read_dir(cache.path().join("data"))
        .unwrap()
        .flatten()
    {
        assert_eq!(e.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        let name = e.file_name().to_string_lossy().into_owned();
        let stem = name.trim_end_matches(".meta");
        assert!(
            stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit()),
            "{name}"
        );
    }
}

/// A mount without read-ahead over a mock whose files host sends 2 MiB/s, with one document
/// of `size` bytes: the mount, that inquiry's id and the document's path.
fn slow_large_file(size: u64, seed: u64) -> (TestMount, String, PathBuf) {
    let mut data = generate::generate(2, 4);
    let id = generate::add_large_document(&mut data, size, seed);
    let server = MockServer::start_with_dataset(MockConfig::default(), data).unwrap();
    server.set_runtime(RuntimeConfig {
        files_bandwidth: 2 << 20,
        ..server.runtime()
    });
    let m = TestMount::with(server, Options::exact());
    let dir = m.inquiries().join(&id).join("document");
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    (m, id, path)
}

#[test]
fn first_bytes_arrive_before_the_download_completes() {
    if !fuse_available() {
        return;
    }
    let size = 16 << 20;
    let (m, id, path) = slow_large_file(size, 9);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    let mut f = std::fs::File::open(&path).unwrap();
    let mut head = vec![0u8; 64 << 10];
    f.read_exact(&mut head).unwrap();
    let served = m.stats().file_bytes;
    assert!(
        served < size,
        "the first read waited for the whole file ({served} bytes)"
    );
    let mut rest = Vec::new();
    f.read_to_end(&mut rest).unwrap();
    head.extend_from_slice(&rest);
    let direct = m.direct_files(&id);
    assert!(head == direct[0].2, "streamed bytes differ");
}

/// A reader that jumps far ahead of the download (a video player seeking to the `moov` box,
/// a PDF reader going for its trailer) gets its bytes by their own ranged request.
#[test]
fn a_read_far_ahead_does_not_wait_for_the_download() {
    if !fuse_available() {
        return;
    }
    let size: u64 = 24 << 20;
    let (m, id, path) = slow_large_file(size, 8);
    let f = std::fs::File::open(&path).unwrap();
    // The download starts with the first read; the far reads follow at once.
    let mut first = [0u8; 4096];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut first, 0).unwrap();
    let asks = [(size - 300, 300usize), (size / 2 + 12_345, 70_000)];
    let mut got = Vec::new();
    for &(offset, len) in &asks {
        let mut buf = vec![0u8; len];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, offset).unwrap();
        got.push(buf);
    }
    let served = m.stats().file_bytes;
    assert!(
        served < size / 2,
        "the far reads waited for the download ({served} of {size} bytes sent)"
    );
    assert!(m.core.counters.far_reads.load(Ordering::Relaxed) >= 2);
    // Their bytes are the file's: compare with ranged requests made straight to the mock.
    let url = m.rt.block_on(m.api.retrieve_inquiry(&id)).unwrap();
    let url = personafs_client::files_of(&url)
        .into_iter()
        .find(|f| f.size == Some(size))
        .unwrap()
        .url;
    for (&(offset, len), bytes) in asks.iter().zip(&got) {
        let mut direct = Vec::new();
        m.rt.block_on(
            m.api
                .download_range(&url, offset, offset + len as u64, &mut direct),
        )
        .unwrap();
        assert!(direct == *bytes, "far read at {offset} differs");
    }
    // A read just ahead of the download waits for it instead: sequential readers never
    // cost an extra request.
    let far_before = m.core.counters.far_reads.load(Ordering::Relaxed);
    let mut near = vec![0u8; 64 << 10];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut near, 1 << 20).unwrap();
    assert_eq!(
        m.core.counters.far_reads.load(Ordering::Relaxed),
        far_before
    );
}

#[test]
fn warm_reads_use_passthrough_or_the_page_cache() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::start_exact(generated(4, 2));
    let (path, bytes) = all_files(&m).into_iter().max_by_key(|f| f.1.len()).unwrap();
    assert!(std::fs::read(&path).unwrap() == bytes);
    wait_until("the file to be cached", WAIT, || {
        data_entries(&m.cache_dir) == 1
    });
    drop_page_cache(&path);
    // The kernel refuses passthrough while an earlier handle of the inode, served by
    // personafs, is open; RELEASE arrives a little after close().
    wait_until("earlier handles released", WAIT, || {
        m.core.open_handles() == 0
    });
    let reads = m.core.counters.reads.load(Ordering::Relaxed);
    assert!(std::fs::read(&path).unwrap() == bytes);
    let passthrough = m.core.counters.passthrough_opens.load(Ordering::Relaxed);
    let reads_after = m.core.counters.reads.load(Ordering::Relaxed);
    if kernel_has_passthrough() {
        assert!(passthrough >= 1, "FUSE passthrough was not used");
        assert_eq!(reads_after, reads, "a passthrough read reached personafs");
    } else {
        eprintln!("kernel without FUSE passthrough: warm reads go through personafs");
        assert!(reads_after > reads);
    }
}

#[test]
fn a_warm_file_opened_again_reuses_its_kept_backing_until_its_entry_leaves_the_cache() {
    if !fuse_available() {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let cap = 10 << 20;
    let m = TestMount::with(mock(20, SEED), with_cache(cache.path(), cap));
    let files: Vec<_> = all_files(&m)
        .into_iter()
        .filter(|(_, b)| !b.is_empty() && (b.len() as u64) < cap / 4)
        .collect();
    let (path, bytes) = files[0].clone();
    let counter = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let t = &m.core.counters;
    let released = || wait_until("handles released", WAIT, || m.core.open_handles() == 0);

    // Cold, then the first warm open registers the cache file with the kernel.
    assert!(std::fs::read(&path).unwrap() == bytes);
    wait_until("the file to be cached", WAIT, || {
        is_cached(&m, cache.path(), &path)
    });
    released();
    assert!(std::fs::read(&path).unwrap() == bytes);
    released();
    if !kernel_has_passthrough() {
        eprintln!("kernel without FUSE passthrough: nothing to keep");
        assert_eq!(counter(&t.passthrough_kept_opens), 0);
        return;
    }
    assert!(counter(&t.passthrough_kept) >= 1, "no backing kept");
    // Opened again: answered by the kept backing, and no read reaches personafs.
    let (kept_opens, reads) = (counter(&t.passthrough_kept_opens), counter(&t.reads));
    for _ in 0..3 {
        assert!(std::fs::read(&path).unwrap() == bytes);
    }
    released();
    assert_eq!(counter(&t.passthrough_kept_opens), kept_opens + 3);
    assert_eq!(counter(&t.reads), reads, "a read reached personafs");

    // Other files push it out of the cache: its kept backing goes with it.
    for (other, other_bytes) in &files[1..] {
        if !is_cached(&m, cache.path(), &path) {
            break;
        }
        assert!(std::fs::read(other).unwrap() == *other_bytes);
    }
    wait_until("the file to leave the cache", WAIT, || {
        !is_cached(&m, cache.path(), &path)
    });
    released();
    // The other files were read once, cold (no backing): none is kept now.
    assert_eq!(
        counter(&t.passthrough_kept),
        0,
        "a backing outlived its entry"
    );
    // Read again: downloaded and cached anew, then kept anew; the bytes never change.
    let kept_opens = counter(&t.passthrough_kept_opens);
    drop_page_cache(&path);
    assert!(std::fs::read(&path).unwrap() == bytes);
    assert_eq!(
        counter(&t.passthrough_kept_opens),
        kept_opens,
        "served by a stale backing"
    );
    wait_until("the file to be cached again", WAIT, || {
        is_cached(&m, cache.path(), &path)
    });
    released();
    for _ in 0..2 {
        assert!(std::fs::read(&path).unwrap() == bytes);
        released();
    }
    assert_eq!(counter(&t.passthrough_kept_opens), kept_opens + 1);
}

/// FUSE passthrough arrived in Linux 6.9.
fn kernel_has_passthrough() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 9)
}

#[test]
fn cache_commands_report_prune_and_clear() {
    if !fuse_available() {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    {
        let m = TestMount::with(mock(3, SEED), with_cache(cache.path(), 1 << 30));
        let files = all_files(&m);
        for (path, _) in &files {
            std::fs::read(path).unwrap();
        }
        wait_until("every file to be cached", WAIT, || {
            data_entries(cache.path()) == files.len()
        });
        m.unmount();
    }
    let n = data_entries(cache.path());
    let bin = env!("CARGO_BIN_EXE_personafs");
    let dir = cache.path().to_str().unwrap();
    let run = |action: &str, extra: &[&str]| {
        common::stdout_of(
            std::process::Command::new(bin)
                .args(["cache", action, "--cache-dir", dir])
                .args(extra),
        )
    };
    assert!(run("stats", &[]).contains(&format!("{n} files")));
    assert!(run("prune", &[]).contains("deleted 0 files"));
    assert_eq!(data_entries(cache.path()), n);
    assert!(run("clear", &[]).contains(&format!("deleted {n} files")));
    assert_eq!(data_entries(cache.path()), 0);
}

#[test]
fn opens_during_and_after_a_download_mix_safely() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::start_exact(generated(4, 8));
    let (path, bytes) = all_files(&m).into_iter().max_by_key(|f| f.1.len()).unwrap();
    // Streaming handle kept open while the download completes and is cached.
    let mut streaming = std::fs::File::open(&path).unwrap();
    let mut first = Vec::new();
    streaming.read_to_end(&mut first).unwrap();
    assert!(first == bytes);
    wait_until("the file to be cached", WAIT, || {
        data_entries(&m.cache_dir) == 1
    });
    // A new open while the streaming handle is open must not break either of them.
    let mut second = Vec::new();
    std::fs::File::open(&path)
        .unwrap()
        .read_to_end(&mut second)
        .unwrap();
    assert!(second == bytes);
    drop(streaming);
    // Passthrough handles, many at once, then a mix again.
    let handles: Vec<_> = (0..4)
        .map(|_| std::fs::File::open(&path).unwrap())
        .collect();
    for mut h in handles {
        let mut b = Vec::new();
        h.read_to_end(&mut b).unwrap();
        assert!(b == bytes);
    }
    assert!(std::fs::read(&path).unwrap() == bytes);
}

#[test]
fn a_file_larger_than_the_cache_streams_without_being_cached() {
    if !fuse_available() {
        return;
    }
    let mut data = generate::generate(1, 4);
    let id = generate::add_large_document(&mut data, 3 << 20, 5);
    let server = MockServer::start_with_dataset(MockConfig::default(), data).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let m = TestMount::with(server, with_cache(cache.path(), 1 << 20));
    let direct = m.direct_files(&id);
    let path = m
        .inquiries()
        .join(&id)
        .join(&direct[0].0)
        .join(&direct[0].1);
    assert!(std::fs::read(&path).unwrap() == direct[0].2);
    assert_eq!(
        data_entries(cache.path()),
        0,
        "a file larger than the cache was cached"
    );
    assert_eq!(
        bytes_on_disk(cache.path()),
        0,
        "left-overs in the cache directory"
    );
    // Read again once the first download is over (until its checksum and the cache's refusal
    // are done, a new open still shares it): downloaded again (not cached), same bytes.
    wait_until("the download never ended", Duration::from_secs(10), || {
        m.core.downloads_registered() == 0
    });
    let gets = m.stats().file_get;
    drop_page_cache(&path);
    assert!(std::fs::read(&path).unwrap() == direct[0].2);
    assert_eq!(m.stats().file_get, gets + 1);
}

#[test]
fn a_full_disk_means_no_caching_and_never_a_corrupt_entry() {
    if !fuse_available() {
        return;
    }
    // The cache on a 3 MiB tmpfs: a 4 MiB file cannot be written anywhere under it.
    let cache = tempfile::tempdir().unwrap();
    let c = std::ffi::CString::new(cache.path().to_str().unwrap()).unwrap();
    let (fstype, opts) = (c"tmpfs", c"size=3m,mode=0700");
    // SAFETY: valid NUL-terminated strings; we unmount below.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            c.as_ptr(),
            fstype.as_ptr(),
            0,
            opts.as_ptr().cast(),
        )
    };
    if rc != 0 {
        eprintln!(
            "skipping: cannot mount a tmpfs here ({})",
            std::io::Error::last_os_error()
        );
        return;
    }
    struct Unmount(std::ffi::CString);
    impl Drop for Unmount {
        fn drop(&mut self) {
            // SAFETY: unmounting the tmpfs this test mounted.
            unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
        }
    }
    let _tmpfs = Unmount(c.clone());
    let mut data = generate::generate(2, 6);
    let big = generate::add_large_document(&mut data, 4 << 20, 3);
    let server = MockServer::start_with_dataset(MockConfig::default(), data).unwrap();
    let m = TestMount::with(server, with_cache(&cache.path().join("c"), 1 << 30));
    let direct = m.direct_files(&big);
    let path = m
        .inquiries()
        .join(&big)
        .join(&direct[0].0)
        .join(&direct[0].1);
    match std::fs::read(&path) {
        Ok(bytes) => assert!(bytes == direct[0].2, "wrong bytes served on a full disk"),
        // The reader is told why: "No space left on device".
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}"),
    }
    assert_eq!(
        data_entries(&m.cache_dir),
        0,
        "an entry was made on a full disk"
    );
    assert_eq!(
        std::fs::read_dir(m.cache_dir.join("tmp")).unwrap().count(),
        0
    );
    // Small files still work, and are cached.
    let other = m
        .mock
        .inquiry_ids()
        .into_iter()
        .find(|id| *id != big)
        .unwrap();
    for (section, name, bytes) in m.direct_files(&other).into_iter().take(1) {
        let p = m.inquiries().join(&other).join(section).join(name);
        assert!(std::fs::read(&p).unwrap() == bytes);
    }
}

/// `personafs mount <mp> --cache-dir <cache>` over `mock`, without read-ahead (these tests
/// count cache entries exactly).
fn mount_args(mp: &Path, cache: &Path, mock: &MockServer) -> Vec<String> {
    binary::mock_mount_args(mock, mp, cache, &["--prefetch", "false"])
}

/// `personafs cache <action> --cache-dir <dir>` with extra environment: (success, stdout,
/// stderr).
fn cache_command(action: &str, dir: &Path, env: &[(&str, &str)]) -> (bool, String, String) {
    let out = std::process::Command::new(binary::BIN)
        .args(["cache", action, "--cache-dir"])
        .arg(dir)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The files of an inquiry, through the mount at `mp`.
fn files_under(mp: &Path, id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for section in ["document", "selfie"] {
        let dir = mp.join("inquiries").join(id).join(section);
        for f in std::fs::read_dir(dir).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_second_mount_on_a_cache_directory_is_refused_naming_the_first() {
    if !fuse_available() {
        return;
    }
    let mock = mock(3, SEED);
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let (mp1, mp2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let key = mock.api_key();
    let env = [("PERSONA_API_KEY", key.as_str())];
    let (p1, c) = (mp1.path().to_str().unwrap(), cache.to_str().unwrap());
    let mut first = Daemon::spawn_for(&mock, mp1.path(), &mount_args(mp1.path(), &cache, &mock));
    let expected = format!(
        "cache directory {c} is in use by the personafs mount at {p1} (pid {})",
        first.pid()
    );
    // In the foreground and as a daemon (the error then comes back through its parent).
    for foreground in [true, false] {
        let out = std::process::Command::new(binary::BIN)
            .args(mount_args(mp2.path(), &cache, &mock))
            .args(foreground.then_some("--foreground"))
            .envs(env)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "a second mount on {c} was allowed");
        assert!(err.contains(&expected), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!binary::is_mounted(mp2.path()));
    }
    // The first mount goes on untouched.
    let id = &mock.inquiry_ids()[0];
    assert!(std::fs::read_dir(mp1.path().join("inquiries").join(id)).is_ok());
    // Its lock dies with it, even by kill -9: the directory is then free.
    first.kill9();
    let _ = binary::personafs(&["unmount", p1]);
    let second = Daemon::spawn_for(&mock, mp2.path(), &mount_args(mp2.path(), &cache, &mock));
    assert!(std::fs::read_dir(mp2.path().join("inquiries")).is_ok());
    second.stop();
}

#[test]
fn stats_beside_a_live_mount_during_a_download_changes_nothing() {
    if !fuse_available() {
        return;
    }
    let mut data = generate::generate(4, 4);
    let big = generate::add_large_document(&mut data, 12 << 20, 17);
    let server = MockServer::start_with_dataset(MockConfig::default(), data).unwrap();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let mp = tempfile::tempdir().unwrap();
    let p = mp.path().to_str().unwrap();
    let d = Daemon::spawn_for(&server, mp.path(), &mount_args(mp.path(), &cache, &server));
    // Some files cached first: every file of the small inquiries.
    let inquiries = mp.path().join("inquiries");
    let mut small = 0;
    for id in server.inquiry_ids().iter().filter(|id| **id != big) {
        for f in files_under(mp.path(), id) {
            std::fs::read(f).unwrap();
            small += 1;
        }
    }
    assert!(small > 0, "no small files");
    wait_until("the small files to be cached", WAIT, || {
        data_entries(&cache) == small
    });
    // A commit writes its entry's metadata through a temp file of its own, a moment after the
    // data: let the last one finish, so that the only temp file below is the slow download's.
    wait_until("the last commit to finish", WAIT, || {
        names_in(&cache.join("tmp")).is_empty()
    });
    // Then a slow download, caught in the middle.
    server.set_runtime(RuntimeConfig {
        files_bandwidth: 2 << 20,
        ..server.runtime()
    });
    let doc = std::fs::read_dir(inquiries.join(&big).join("document"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let reader = std::thread::spawn(move || std::fs::read(doc).unwrap());
    wait_until("the download's temp file", WAIT, || {
        !names_in(&cache.join("tmp")).is_empty()
    });
    let (data_before, tmp_before) = (names_in(&cache.join("data")), names_in(&cache.join("tmp")));
    // A size cap of one byte from the environment: it used to prune the live cache to zero.
    let (ok, out, err) = cache_command("stats", &cache, &[("PERSONAFS_CACHE_MAX_SIZE", "1")]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("{small} files")), "{out}");
    assert!(
        out.contains("1 temporary file of downloads in progress"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "in use by the personafs mount at {p} (pid {})",
            d.pid()
        )),
        "{out}"
    );
    assert_eq!(out.trim().lines().count(), 1, "{out}");
    assert_eq!(
        names_in(&cache.join("data")),
        data_before,
        "stats changed the cache"
    );
    assert!(
        tmp_before
            .iter()
            .all(|t| cache.join("tmp").join(t).exists()),
        "stats deleted the temp file of a download in progress"
    );
    // The download finishes and enters the cache, beside every earlier entry.
    let bytes = reader.join().unwrap();
    assert_eq!(bytes.len(), 12 << 20);
    wait_until("the download to be cached", WAIT, || {
        data_entries(&cache) == small + 1
    });
    let data_after = names_in(&cache.join("data"));
    assert!(data_before.iter().all(|n| data_after.contains(n)));
    d.stop();
}

#[test]
fn prune_and_clear_are_refused_beside_a_live_mount_and_work_after_it() {
    if !fuse_available() {
        return;
    }
    let mock = mock(3, SEED);
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let mp = tempfile::tempdir().unwrap();
    let (p, c) = (mp.path().to_str().unwrap(), cache.to_str().unwrap());
    let d = Daemon::spawn_for(&mock, mp.path(), &mount_args(mp.path(), &cache, &mock));
    let all: Vec<PathBuf> = mock
        .inquiry_ids()
        .iter()
        .flat_map(|id| files_under(mp.path(), id))
        .collect();
    let n = all.len();
    assert!(n > 0, "no files");
    for f in &all {
        std::fs::read(f).unwrap();
    }
    // Each entry's meta file is written just after its data file: wait for both.
    wait_until("every file to be cached", WAIT, || {
        data_entries(&cache) == n && names_in(&cache.join("data")).len() == 2 * n
    });
    let entries = names_in(&cache.join("data"));
    for action in ["prune", "clear"] {
        // A tiny cap: a prune that went ahead would delete everything.
        let (ok, out, err) = cache_command(action, &cache, &[("PERSONAFS_CACHE_MAX_SIZE", "1")]);
        assert!(!ok, "`cache {action}` ran beside a live mount: {out}");
        let expected = format!(
            "cannot run `cache {action}`: cache directory {c} is in use by the personafs mount \
             at {p} (pid {}); unmount it first",
            d.pid()
        );
        assert_eq!(err.trim(), format!("personafs: {expected}"));
        assert_eq!(
            names_in(&cache.join("data")),
            entries,
            "{action} deleted files"
        );
    }
    // The mount still serves from its cache: no download for a file read again.
    let gets = mock.stats().file_get;
    drop_page_cache(&all[0]);
    std::fs::read(&all[0]).unwrap();
    assert_eq!(mock.stats().file_get, gets);
    d.stop();
    // Unmounted: both work.
    let (ok, out, err) = cache_command("prune", &cache, &[("PERSONAFS_CACHE_MAX_SIZE", "1")]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("deleted {n} files")), "{out}");
    assert_eq!(data_entries(&cache), 0);
    let (ok, out, err) = cache_command("clear", &cache, &[]);
    assert!(ok, "{err}");
    assert!(out.contains("deleted 0 files"), "{out}");
}
