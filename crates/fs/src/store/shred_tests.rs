//! A purged inquiry leaves no byte in the store's files (database, WAL, shared memory):
//! after the purge returns, after a `kill -9` right after it, after the next open, and when
//! another process holds a read snapshot while it runs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use personafs_client::Section;

use super::*;

/// Personal bytes of inquiry `n`, each findable on its own in raw bytes.
fn markers(n: u64) -> Vec<String> {
    vec![
        format!("Given{n:05} Family{n:05}"),
        format!("IDN-{n:05}-77"),
        format!("{n:05} Secret Street"),
        format!("person{n:05}@example.test"),
        format!("doc_{n:05}-passport-of-family{n:05}.pdf"),
    ]
}

fn json_of(n: u64, round: u64) -> Vec<u8> {
    let m = markers(n);
    format!(
        r#"{{"data":{{"id":"inq_{n:05}","attributes":{{"status":"round-{round}","name":"{}","identification-number":"{}","address-street-1":"{}","email-address":"{}","padding":"{}"}}}}}}"#,
        m[0],
        m[1],
        m[2],
        m[3],
        "x".repeat(200 + (n * 37 % 900) as usize)
    )
    .into_bytes()
}

fn view_of(n: u64, round: u64) -> StoredInquiry {
    let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + round);
    let files = (0..4)
        .map(|k| StoredFile {
            section: if k == 0 {
                Section::Document
            } else {
                Section::Selfie
            },
            name: if k == 0 {
                markers(n)[4].clone()
            } else {
                format!("ver_{n:05}-photo-{k}-family{n:05}.jpg")
            },
            object_id: format!("doc_{n:05}"),
            role: "front-photo".into(),
            size: Some(1000 + k),
            mtime: at,
        })
        .collect();
    StoredInquiry {
        id: format!("inq_{n:05}"),
        status: Some(format!("round-{round}")),
        created_at: Some(at),
        updated_at: Some(at),
        redacted_at: None,
        checked_at: at,
        files,
    }
}

/// Many inquiries written, rewritten and listed: rows move between pages (splits leave old
/// copies behind) and the WAL holds several images of each page.
fn filled_store(dir: &Path, inquiries: u64) -> MetadataStore {
    let store = MetadataStore::open(dir).unwrap();
    for round in 0..3 {
        for n in 0..inquiries {
            store
                .put_inquiry_with_json(&view_of(n, round), &json_of(n, round))
                .unwrap();
        }
    }
    let rows = (0..inquiries).map(|n| ListedInquiry {
        id: format!("inq_{n:05}"),
        status: Some("approved".into()),
        created_at: None,
        updated_at: None,
        redacted_at: None,
        ..Default::default()
    });
    store.put_listing("scope", SystemTime::now(), rows).unwrap();
    store
}

fn raw_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        if let Ok(b) = std::fs::read(dir.join(format!("{FILE_NAME}{suffix}"))) {
            all.extend(b);
        }
    }
    all
}

/// The markers of `n` found in the store's raw bytes.
fn found(dir: &Path, n: u64) -> Vec<String> {
    let raw = raw_bytes(dir);
    let mut hits: Vec<String> = markers(n)
        .into_iter()
        .filter(|m| raw.windows(m.len()).any(|w| w == m.as_bytes()))
        .collect();
    // A file name shortened to its distinctive part still counts.
    let family = format!("family{n:05}");
    if raw.windows(family.len()).any(|w| w == family.as_bytes()) {
        hits.push(family);
    }
    hits
}

const PURGED: u64 = 137;

#[test]
fn a_purge_leaves_no_byte_of_the_inquiry_in_any_file_of_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path(), 400);
    assert_eq!(
        found(dir.path(), PURGED).len(),
        6,
        "the scan sees a stored inquiry"
    );
    let started = Instant::now();
    assert!(store.delete_inquiry(&format!("inq_{PURGED:05}")).unwrap());
    eprintln!(
        "purge of one of 400 inquiries (1,600 files): {:?}",
        started.elapsed()
    );
    assert_eq!(found(dir.path(), PURGED), Vec::<String>::new());
    // Everything else is as it was, and the scan still finds the others.
    assert_eq!(found(dir.path(), PURGED + 1).len(), 6);
    for n in [0, PURGED - 1, PURGED + 1, 399] {
        let id = format!("inq_{n:05}");
        assert_eq!(store.get_inquiry(&id).unwrap(), Some(view_of(n, 2)));
        assert_eq!(store.get_inquiry_json(&id).unwrap(), Some(json_of(n, 2)));
    }
    assert_eq!(
        store.get_inquiry(&format!("inq_{PURGED:05}")).unwrap(),
        None
    );
    assert_eq!(store.counts().unwrap().files, 399 * 4);
    // Writes go on; a purge of what is not stored changes nothing.
    store.put_inquiry(&view_of(PURGED + 1, 3)).unwrap();
    assert!(!store.delete_inquiry("inq_none").unwrap());
    drop(store);
    let store = MetadataStore::open(dir.path()).unwrap();
    assert!(store.rebuilt().is_none());
    assert_eq!(store.counts().unwrap().inquiries, 399);
    assert_eq!(found(dir.path(), PURGED), Vec::<String>::new());
}

#[test]
fn a_purge_of_many_at_once_leaves_no_byte_of_any_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path(), 400);
    let purged = [3, 137, 250, 399];
    let ids: Vec<String> = purged.iter().map(|n| format!("inq_{n:05}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let started = Instant::now();
    assert_eq!(store.delete_inquiries(&refs).unwrap(), 4);
    eprintln!(
        "purge of 4 of 400 inquiries at once: {:?}",
        started.elapsed()
    );
    for n in purged {
        assert_eq!(found(dir.path(), n), Vec::<String>::new(), "inq_{n:05}");
    }
    assert_eq!(found(dir.path(), 138).len(), 6, "the others stay");
    assert_eq!(store.counts().unwrap().inquiries, 396);
}

#[test]
fn a_reader_holding_an_old_snapshot_delays_the_purge_but_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path(), 100);
    // Another process (`personafs cache stats`, a curious sqlite3) reading meanwhile.
    let reader = rusqlite::Connection::open(dir.path().join(FILE_NAME)).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT COUNT(*) FROM inquiry", [], |r| r.get(0))
        .unwrap();
    let release = std::thread::spawn(move || {
        // Real time: SQLite's own busy wait is what is measured (the purge waits this long).
        std::thread::sleep(Duration::from_millis(300));
        reader.execute_batch("COMMIT").unwrap();
        drop(reader);
    });
    let started = Instant::now();
    assert!(store.delete_inquiry("inq_00042").unwrap());
    let took = started.elapsed();
    release.join().unwrap();
    assert!(
        took >= Duration::from_millis(250),
        "waited for the reader: {took:?}"
    );
    assert_eq!(found(dir.path(), 42), Vec::<String>::new());
    assert_eq!(found(dir.path(), 43).len(), 6);
}

const CHILD_DIR_ENV: &str = "PERSONAFS_STORE_PURGE_CHILD_DIR";

/// The child of `kill_9_right_after_a_purge_leaves_nothing_then_or_after_the_next_open`:
/// fills a store, purges one inquiry, says so, and keeps writing others until killed.
#[test]
#[ignore = "run only as the child process of the kill -9 purge test"]
fn purge_child() {
    let dir = std::env::var(CHILD_DIR_ENV).expect("run by the kill -9 purge test");
    let store = filled_store(Path::new(&dir), 200);
    assert!(store.delete_inquiry(&format!("inq_{PURGED:05}")).unwrap());
    println!("purged");
    for round in 10.. {
        for n in (0..200).filter(|n| *n != PURGED) {
            store
                .put_inquiry_with_json(&view_of(n, round), &json_of(n, round))
                .unwrap();
        }
    }
}

#[test]
fn kill_9_right_after_a_purge_leaves_nothing_then_or_after_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "store::shred_tests::purge_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The harness prints the test's name before its output, on the same line.
    while !lines
        .next()
        .expect("the child stopped early")
        .unwrap()
        .ends_with("purged")
    {}
    // Real time: the kill lands at a random moment of the child's writing, by design.
    std::thread::sleep(Duration::from_millis(rand::random::<u64>() % 30));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    assert_eq!(
        found(dir.path(), PURGED),
        Vec::<String>::new(),
        "after kill -9"
    );
    assert_eq!(found(dir.path(), PURGED + 1).len(), 6);
    let store = MetadataStore::open(dir.path()).unwrap();
    assert!(store.rebuilt().is_none());
    assert_eq!(
        store.get_inquiry(&format!("inq_{PURGED:05}")).unwrap(),
        None
    );
    assert_eq!(
        found(dir.path(), PURGED),
        Vec::<String>::new(),
        "after the next open"
    );
}
