//! A mount with a single FUSE thread (`--threads 1`) serves every request (nothing waits on
//! the network on a FUSE thread, so one is enough to stay correct), and sleeps once idle.
//! Its own test binary: the idle check reads the CPU time of this process's `fuser-0`
//! thread, which no other mount may share.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{Options, TestMount, fuse_available, mock, wait_until, walk};
use personafs_fs::FuseOptions;

fn mount() -> TestMount {
    let mock = mock(6, 11);
    let opts = Options {
        fuse: FuseOptions {
            threads: 1,
            ..FuseOptions::default()
        },
        ..Options::default()
    };
    TestMount::with(mock, opts)
}

/// Every document and selfie file under the mount and its bytes, read twice (the second
/// time from the cache); `inquiry.json` is read too, but left out.
fn read_all(m: &TestMount) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for _ in 0..2 {
        for p in walk(&m.inquiries()) {
            let full = m.inquiries().join(&p);
            if full.is_file() {
                let bytes = std::fs::read(&full).unwrap_or_else(|e| panic!("{p:?}: {e}"));
                if !p.ends_with("inquiry.json") {
                    out.insert(p.display().to_string(), bytes);
                }
            }
        }
    }
    out
}

/// The same files with the same bytes (names of those that differ on failure).
fn assert_same(got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>, what: &str) {
    let differ: Vec<_> = want
        .keys()
        .chain(got.keys())
        .filter(|k| got.get(*k) != want.get(*k))
        .collect();
    assert!(differ.is_empty(), "{what}: these files differ: {differ:?}");
}

/// Whether this process's thread `name` is blocked reading the next request from
/// `/dev/fuse` (where an idle FUSE thread waits).
fn thread_waits_in_fuse_read(name: &str) -> bool {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .any(|task| {
            let dir = task.path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            let wchan = std::fs::read_to_string(dir.join("wchan")).unwrap_or_default();
            comm.trim() == name && wchan.trim() == "fuse_dev_do_read"
        })
}

/// CPU time (user + system, in clock ticks) of this process's threads named `name`.
fn thread_ticks(name: &str) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let dir = task.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        // Fields after the command's closing parenthesis: utime and stime are 12th and 13th.
        let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        total += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    total
}

fn expected(m: &TestMount) -> BTreeMap<String, Vec<u8>> {
    let mut want = BTreeMap::new();
    for id in m.mock.inquiry_ids() {
        for (dir, name, bytes) in m.direct_files(&id) {
            want.insert(
                Path::new(&id).join(dir).join(name).display().to_string(),
                bytes,
            );
        }
    }
    want
}

#[test]
fn a_single_fuse_thread_serves_every_request_and_sleeps_when_idle() {
    if !fuse_available() {
        return;
    }
    let m = mount();
    let got = read_all(&m);
    let want = expected(&m);
    assert!(!want.is_empty(), "the mock generated no file");
    assert_same(&got, &want, "through the one FUSE thread");

    // Idle: the thread blocks in read(2) instead of spinning. Over 2 s a spinning thread
    // would use ~200 ticks; allow a few for the scheduler's accounting.
    // SAFETY: sysconf only reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    // Once the thread waits for the next request, 2 s of its idle CPU time is measured (in
    // real time: that is what is measured).
    wait_until(
        "the FUSE thread waits for a request",
        Duration::from_secs(10),
        || thread_waits_in_fuse_read("fuser-0"),
    );
    let before = thread_ticks("fuser-0");
    std::thread::sleep(Duration::from_secs(2));
    let idle = thread_ticks("fuser-0") - before;
    assert!(
        idle * 1000 / hz < 100,
        "the FUSE thread used {} ms of CPU in 2 s idle",
        idle * 1000 / hz
    );
    // And it still answers after sleeping.
    assert_same(&read_all(&m), &want, "after an idle while");
    m.unmount();

    // A fresh mount on the same mock seed reads the same files again.
    let m = mount();
    assert_same(&read_all(&m), &want, "on a second mount");
    m.unmount();
}
