//! A redaction leaves nothing behind (SECURITY.md, "Redactions"): on real mounts over the
//! mock, once the mount applies a redaction, no download of the inquiry goes on and a raw
//! byte scan of every file under the cache directory (database, WAL, shared memory, temp,
//! data, meta, lock) finds none of the person's name, ID number, street, email, file names,
//! nor a 64-byte sample of any of its files: within a second of the redaction, after a
//! `kill -9` right after it, after a remount; learned from the events feed, a listing or a
//! retrieve.

mod binary;
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use binary::{Daemon, read_tree, wait_until};
use common::{Options, TestMount, fuse_available, unlimited, wait_for};
use personafs_client::{ApiKey, ClientConfig, HttpClient, PersonaApi, files_of};
use personafs_fs::store::MetadataStore;
use personafs_mock::{MockServer, RuntimeConfig};

const LIMIT: Duration = Duration::from_secs(30);
/// The document being downloaded when the redaction comes.
const BIG: u64 = 20_000_000;
/// Files host speed while it downloads: the whole would take 20 s.
const SLOW: u64 = 1_000_000;

/// What must not remain of a person: labelled byte strings.
#[derive(Default)]
struct Secrets(Vec<(String, Vec<u8>)>);

impl Secrets {
    fn add(&mut self, label: impl Into<String>, bytes: &[u8]) {
        if !self.0.iter().any(|(_, b)| b == bytes) {
            self.0.push((label.into(), bytes.to_vec()));
        }
    }

    /// The person's name, ID number, street and email, wherever `inquiry.json` shows them.
    fn add_person(&mut self, json: &[u8]) {
        let value: serde_json::Value = serde_json::from_slice(json).unwrap();
        let mut found = Vec::new();
        personal_values(&value, &mut found);
        assert!(
            found.iter().any(|(k, _)| k == "identification-number"),
            "the inquiry has an ID number to look for"
        );
        for (key, v) in found {
            // Short values (a three-letter first name) would match random bytes.
            if v.len() >= 5 {
                self.add(key, v.as_bytes());
            }
        }
    }

    /// A 64-byte sample of `bytes` found in none of `others`.
    fn add_sample(&mut self, label: &str, bytes: &[u8], others: &[&[u8]]) {
        assert!(bytes.len() >= 64, "{label}: too short to sample");
        for k in 1..64u64 {
            let at = (bytes.len() as u64 * k / 64) as usize;
            let sample = &bytes[at.min(bytes.len() - 64)..][..64];
            let needle = [(String::new(), sample.to_vec())];
            if others.iter().all(|o| found_in(o, &needle).is_empty()) {
                self.add(format!("64 bytes of {label}"), sample);
                return;
            }
        }
        panic!("{label}: no sample found in no other file");
    }
}

const PERSONAL: &[&str] = &[
    "name-first",
    "name-last",
    "identification-number",
    "address-street-1",
    "email-address",
];

fn personal_values(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match v {
                    serde_json::Value::String(s) if PERSONAL.contains(&k.as_str()) => {
                        out.push((k.clone(), s.clone()))
                    }
                    // Persona's `fields` form: {"name-first": {"type": …, "value": …}}.
                    serde_json::Value::Object(f) if PERSONAL.contains(&k.as_str()) => {
                        if let Some(serde_json::Value::String(s)) = f.get("value") {
                            out.push((k.clone(), s.clone()));
                        }
                    }
                    _ => personal_values(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| personal_values(v, out)),
        _ => {}
    }
}

/// Labels of the needles found in `hay`. One pass with a filter on each needle's first two
/// bytes: a naive search per needle is too slow in a debug build.
fn found_in(hay: &[u8], needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut heads = vec![false; 1 << 16];
    for (_, n) in needles {
        heads[u16::from_le_bytes([n[0], n[1]]) as usize] = true;
    }
    let mut hits = Vec::new();
    for i in 0..hay.len().saturating_sub(1) {
        if !heads[u16::from_le_bytes([hay[i], hay[i + 1]]) as usize] {
            continue;
        }
        for (label, n) in needles {
            if hay[i..].starts_with(n) && !hits.contains(label) {
                hits.push(label.clone());
            }
        }
    }
    hits
}

/// Every file under `dir` and the secrets found in it: `path: label`.
fn scan(dir: &Path, secrets: &Secrets) -> Vec<String> {
    let mut out = Vec::new();
    for rel in common::walk(dir) {
        let p = dir.join(&rel);
        if !p.is_file() {
            continue;
        }
        let Ok(bytes) = std::fs::read(&p) else {
            continue; // deleted meanwhile
        };
        for label in found_in(&bytes, &secrets.0) {
            out.push(format!("{}: {label}", rel.display()));
        }
    }
    out
}

/// The secrets of inquiry `id` read through `mount/inquiries/id`: its person, every file
/// name, a sample of every file (not found in `others`). Returns its files' paths too.
fn secrets_of(inquiry_dir: &Path, others: &[&[u8]]) -> (Secrets, Vec<PathBuf>) {
    let mut s = Secrets::default();
    let tree = read_tree(inquiry_dir);
    let mut paths = Vec::new();
    for (rel, bytes) in &tree {
        if rel.ends_with("inquiry.json") {
            s.add_person(bytes);
            continue;
        }
        let name = rel.file_name().unwrap().to_str().unwrap();
        s.add(format!("file name {name}"), name.as_bytes());
        s.add_sample(name, bytes, others);
        paths.push(inquiry_dir.join(rel));
    }
    assert!(paths.len() >= 3, "{}: files to read", inquiry_dir.display());
    (s, paths)
}

fn client(mock: &MockServer) -> HttpClient {
    let mut c = ClientConfig::new(mock.api_base().as_str(), ApiKey::new(mock.api_key()));
    c.allowed_file_hosts
        .push(common::host_port(&mock.files_base()));
    HttpClient::new(c).unwrap()
}

/// Bytes `start..start + len` of the file `name` of inquiry `id`, straight from the mock.
fn direct_range(mock: &MockServer, id: &str, name: &str, start: u64, len: u64) -> Vec<u8> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = client(mock);
        let inquiry = client.retrieve_inquiry(id).await.unwrap();
        let f = files_of(&inquiry)
            .into_iter()
            .find(|f| f.name == name)
            .unwrap();
        let mut out = Vec::new();
        client
            .download_range(&f.url, start, start + len, &mut out)
            .await
            .unwrap();
        out
    })
}

fn log_text(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Bytes the process has written by any means so far (`wchar` of `/proc/<pid>/io`).
fn written_by(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .unwrap()
        .parse()
        .unwrap()
}

/// Files under `dir` the process holds open (deleted ones included).
fn open_under(pid: u32, dir: &Path) -> Vec<String> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter(|target| target.starts_with(dir))
        .map(|t| t.display().to_string())
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
            "--metadata-ttl",
            "1h",
            "--watch-events",
            "1s",
            "--cache-min-free",
            "0",
        ],
    )
}

fn ids(inquiries: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(inquiries)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

/// Every file of every inquiry but `id`, read through the mount (so they are cached too).
fn others_bytes(inquiries: &Path, id: &str) -> Vec<Vec<u8>> {
    ids(inquiries)
        .iter()
        .filter(|o| *o != id)
        .flat_map(|o| read_tree(&inquiries.join(o)))
        .map(|(_, b)| b)
        .collect()
}

#[test]
fn a_redaction_from_the_feed_stops_the_download_and_leaves_no_byte_even_after_kill_9() {
    if !fuse_available() {
        return;
    }
    let mock = MockServer::start(unlimited(3, 30)).unwrap();
    let mp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let log = work.path().join("personafs.log");
    let args = mount_args(mp.path(), &cache, &log, &mock);
    let mut daemon = Daemon::spawn_for(&mock, mp.path(), &args);
    wait_until("the feed started", LIMIT, || {
        log_text(&log).contains("events feed started")
    });
    let inquiries = mp.path().join("inquiries");
    let id = ids(&inquiries).remove(0);
    let others = others_bytes(&inquiries, &id);
    let others: Vec<&[u8]> = others.iter().map(Vec::as_slice).collect();
    let (mut secrets, _) = secrets_of(&inquiries.join(&id), &others);

    // A 20 MB document arrives, and is read over a slow link.
    let filename = "bank_statement_of_the_person.pdf";
    mock.add_document(&id, filename, BIG).unwrap();
    let document = inquiries.join(&id).join("document");
    let mut big = None;
    wait_until("the new document listed", LIMIT, || {
        big = std::fs::read_dir(&document)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.ends_with(filename));
        big.is_some()
    });
    let big = big.unwrap();
    secrets.add(format!("file name {big}"), big.as_bytes());
    let head = direct_range(&mock, &id, &big, 0, 1 << 20);
    secrets.add_sample(&big, &head[..600_000], &others);
    mock.set_runtime(RuntimeConfig {
        files_bandwidth: SLOW,
        ..mock.runtime()
    });
    let path = document.join(&big);
    let reader = std::thread::spawn(move || std::fs::read(path));
    // The scan sees the person while the mount holds it: the store's inquiry.json and file
    // names, the cached files, the download's first bytes.
    wait_all_found(&cache, &secrets);

    let pid = daemon.pid();
    let redacted_at = Instant::now();
    assert!(mock.redact(&id));
    wait_until("the redaction applied", LIMIT, || {
        log_text(&log)
            .lines()
            .any(|l| l.contains("redaction applied") && l.contains(&id))
    });
    let applied = Instant::now();
    eprintln!("applied {:?} after the redaction", applied - redacted_at);
    // Within a second: nothing written for it any more, nothing of it on disk.
    let before = written_by(pid);
    // Real time: the bytes written over 300 ms are what is measured.
    std::thread::sleep(Duration::from_millis(300));
    let during = written_by(pid) - before;
    let held = open_under(pid, &cache.join("tmp"));
    let left = scan(&cache, &secrets);
    let took = applied.elapsed();
    assert!(took < Duration::from_secs(1), "the checks took {took:?}");
    assert!(
        during < 64 << 10,
        "{during} bytes written in the 300 ms after the redaction"
    );
    assert_eq!(held, Vec::<String>::new(), "temp files still open");
    assert_eq!(left, Vec::<String>::new(), "left under the cache directory");
    let read = reader.join().unwrap();
    assert_eq!(
        read.map(|b| b.len()).map_err(|e| e.raw_os_error()),
        Err(Some(libc::ESTALE)),
        "the reader of the stopped download gets ESTALE, as every open handle of a file gone"
    );
    let logged = found_in(log_text(&log).as_bytes(), &secrets.0);
    assert_eq!(logged, Vec::<String>::new(), "in the log");

    // kill -9 right after: nothing either; then a remount over the same cache.
    daemon.kill9();
    assert_eq!(
        scan(&cache, &secrets),
        Vec::<String>::new(),
        "after kill -9"
    );
    drop(daemon); // unmounts the dead mount
    mock.set_runtime(RuntimeConfig {
        files_bandwidth: 0,
        ..mock.runtime()
    });
    let daemon = Daemon::spawn_for(&mock, mp.path(), &args);
    assert_eq!(
        scan(&cache, &secrets),
        Vec::<String>::new(),
        "after a remount"
    );
    let dir = inquiries.join(&id);
    assert!(
        common::list(&dir.join("document"))
            .unwrap_or_default()
            .is_empty()
    );
    assert_eq!(
        scan(&cache, &secrets),
        Vec::<String>::new(),
        "after a listing"
    );
    daemon.stop();
    assert_eq!(
        scan(&cache, &secrets),
        Vec::<String>::new(),
        "after unmount"
    );
}

/// An in-process mount with a metadata store and the given TTL and filters, no feed.
fn store_mount(
    mock: MockServer,
    ttl: Duration,
    only: Vec<String>,
) -> (TestMount, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    let cache_dir = work.path().join("cache");
    let mut opts = Options::exact();
    opts.cache_dir = Some(cache_dir.clone());
    opts.core.metadata_ttl = ttl;
    opts.core.filters.inquiry_ids = only;
    opts.core.store = Some(Arc::new(MetadataStore::open(&cache_dir).unwrap()));
    (TestMount::with(mock, opts), work)
}

/// Wait until the scan finds every secret under `cache` (the scan sees what is there).
fn wait_all_found(cache: &Path, secrets: &Secrets) {
    wait_for("every secret found", LIMIT, || {
        let hits = scan(cache, secrets);
        let missing: Vec<&String> = secrets
            .0
            .iter()
            .map(|(l, _)| l)
            .filter(|l| !hits.iter().any(|h| h.ends_with(&format!(": {l}"))))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("never found: {missing:?}; found: {hits:?}"))
        }
    });
}

/// Wait until the scan of `cache` is clean; how long that took.
fn clean_within(cache: &Path, secrets: &Secrets, limit: Duration) -> Duration {
    let start = Instant::now();
    wait_for("a clean cache directory", limit, || {
        let left = scan(cache, secrets);
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("left under the cache directory: {left:?}"))
        }
    });
    start.elapsed()
}

#[test]
fn a_redaction_learned_from_a_listing_leaves_no_byte() {
    if !fuse_available() {
        return;
    }
    let ttl = Duration::from_millis(800);
    let (m, _work) = store_mount(
        MockServer::start(unlimited(3, 31)).unwrap(),
        ttl,
        Vec::new(),
    );
    let inquiries = m.inquiries();
    let id = ids(&inquiries).remove(0);
    let others = others_bytes(&inquiries, &id);
    let others: Vec<&[u8]> = others.iter().map(Vec::as_slice).collect();
    let (secrets, _) = secrets_of(&inquiries.join(&id), &others);
    wait_all_found(&m.cache_dir, &secrets);
    assert!(m.mock.redact(&id));
    // Real time: past the TTL without a look at the inquiry, so the listing (not a retrieve)
    // is what learns of the redaction.
    std::thread::sleep(ttl + Duration::from_millis(100));
    // The listing taken again shows the redaction.
    let started = Instant::now();
    wait_until("the listing taken again", LIMIT, || {
        let _ = ids(&inquiries);
        common::list(&inquiries.join(&id).join("document")).is_ok_and(|d| d.is_empty())
    });
    let took = clean_within(&m.cache_dir, &secrets, Duration::from_secs(5));
    eprintln!("clean {:?} after the listing", started.elapsed().max(took));
    m.unmount();
}

#[test]
fn a_redaction_learned_from_a_retrieve_leaves_no_byte() {
    if !fuse_available() {
        return;
    }
    let mock = MockServer::start(unlimited(3, 32)).unwrap();
    // A non-final inquiry, looked up by id and never listed (the filter names another).
    let id = mock.add_inquiry("pending", true).unwrap();
    let other = mock.inquiry_id_at(1).unwrap();
    let ttl = Duration::from_millis(500);
    let (m, _work) = store_mount(mock, ttl, vec![other.clone()]);
    let inquiries = m.inquiries();
    assert_eq!(ids(&inquiries), vec![other.clone()]);
    let others: Vec<Vec<u8>> = read_tree(&inquiries.join(&other))
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let others: Vec<&[u8]> = others.iter().map(Vec::as_slice).collect();
    let (secrets, _) = secrets_of(&inquiries.join(&id), &others);
    wait_all_found(&m.cache_dir, &secrets);
    assert!(m.mock.redact(&id));
    // Real time: past the TTL without a look at the inquiry, so the next use retrieves it.
    std::thread::sleep(ttl + Duration::from_millis(100));
    // The next use retrieves it; the redaction is applied before the reply.
    let document = inquiries.join(&id).join("document");
    wait_until("the retrieve shows it redacted", LIMIT, || {
        common::list(&document).is_ok_and(|d| d.is_empty())
    });
    let left = scan(&m.cache_dir, &secrets);
    assert_eq!(
        left,
        Vec::<String>::new(),
        "left once the retrieve answered"
    );
    m.unmount();
}
