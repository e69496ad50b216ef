//! The store against a real SQLite file: round trips, reopen, `kill -9` of a writer,
//! untrusted files rebuilt, no secret on disk, listings.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use personafs_client::{Section, files_of, model::parse_inquiry};

use super::*;

fn at(secs: u64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

fn file(section: Section, name: &str, size: Option<u64>) -> StoredFile {
    StoredFile {
        section,
        name: name.to_string(),
        object_id: format!("doc_{name}"),
        role: "front-photo".to_string(),
        size,
        mtime: at(1_714_557_605, 123_000_000),
    }
}

fn inquiry(id: &str, files: Vec<StoredFile>) -> StoredInquiry {
    StoredInquiry {
        id: id.to_string(),
        status: Some("approved".to_string()),
        created_at: Some(at(1_714_435_200, 0)),
        // Sub-second precision survives: `updated-at` is compared for equality.
        updated_at: Some(at(1_714_557_605, 987_654_321)),
        redacted_at: None,
        checked_at: at(1_800_000_000, 5),
        files,
    }
}

#[test]
fn an_inquiry_round_trips_and_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    assert!(store.rebuilt().is_none());
    assert_eq!(store.get_inquiry("inq_1").unwrap(), None);
    let first = inquiry(
        "inq_1",
        vec![
            file(Section::Document, "doc_b-front-photo.jpg", Some(10)),
            file(Section::Document, "doc_a-front-photo.jpg", None),
            file(Section::Selfie, "self_a-center-photo.jpg", Some(7)),
        ],
    );
    store.put_inquiry(&first).unwrap();
    // Files come back in the order they were given, not sorted.
    assert_eq!(store.get_inquiry("inq_1").unwrap().as_ref(), Some(&first));
    // A replace drops the files no longer there.
    let mut second = inquiry(
        "inq_1",
        vec![file(Section::Selfie, "self_b-left-photo.jpg", Some(3))],
    );
    second.status = Some("completed".into());
    second.created_at = None;
    store.put_inquiry(&second).unwrap();
    assert_eq!(store.get_inquiry("inq_1").unwrap().as_ref(), Some(&second));
    assert_eq!(
        store.counts().unwrap(),
        StoreCounts {
            inquiries: 1,
            files: 1,
            listed: 0
        }
    );
    // A size learnt later, and a confirmation.
    assert!(
        store
            .set_file_size("inq_1", Section::Selfie, "self_b-left-photo.jpg", 99)
            .unwrap()
    );
    assert!(
        !store
            .set_file_size("inq_1", Section::Document, "self_b-left-photo.jpg", 1)
            .unwrap()
    );
    assert!(store.mark_checked("inq_1", at(1_900_000_000, 0)).unwrap());
    assert!(!store.mark_checked("inq_none", at(1, 0)).unwrap());
    let got = store.get_inquiry("inq_1").unwrap().unwrap();
    assert_eq!(got.files[0].size, Some(99));
    assert_eq!(got.checked_at, at(1_900_000_000, 0));
    // Redaction: gone with its files.
    assert!(store.delete_inquiry("inq_1").unwrap());
    assert!(!store.delete_inquiry("inq_1").unwrap());
    assert_eq!(store.get_inquiry("inq_1").unwrap(), None);
    assert_eq!(store.counts().unwrap().files, 0);
}

#[test]
fn a_redacted_inquiry_keeps_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    let mut i = inquiry("inq_r", vec![file(Section::Document, "a.jpg", Some(1))]);
    store.put_inquiry(&i).unwrap();
    i.redacted_at = Some(at(1_800_000_001, 0));
    store.put_inquiry(&i).unwrap();
    let got = store.get_inquiry("inq_r").unwrap().unwrap();
    assert_eq!(got.redacted_at, i.redacted_at);
    assert!(got.files.is_empty());
    assert_eq!(store.counts().unwrap().files, 0);
}

#[test]
fn times_before_the_epoch_and_far_ahead_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    let mut i = inquiry("inq_t", vec![]);
    i.created_at = Some(UNIX_EPOCH - Duration::new(86_400 * 365 * 30, 1));
    i.updated_at = Some(at(4_000_000_000, 999_999_999));
    store.put_inquiry(&i).unwrap();
    assert_eq!(store.get_inquiry("inq_t").unwrap(), Some(i));
}

#[test]
fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let i = inquiry("inq_k", vec![file(Section::Selfie, "s.jpg", Some(5))]);
    {
        let store = MetadataStore::open(dir.path()).unwrap();
        store.put_inquiry(&i).unwrap();
        store.set_cursor("events", "evt_123").unwrap();
        store
            .put_listing("filters:none", at(1_800_000_000, 0), listed_rows(0..250))
            .unwrap();
    }
    let store = MetadataStore::open(dir.path()).unwrap();
    assert!(store.rebuilt().is_none());
    assert_eq!(store.get_inquiry("inq_k").unwrap(), Some(i));
    assert_eq!(
        store.get_cursor("events").unwrap().as_deref(),
        Some("evt_123")
    );
    assert_eq!(store.get_cursor("other").unwrap(), None);
    let info = store.listing().unwrap().unwrap();
    assert_eq!(info.scope, "filters:none");
    assert_eq!(info.count, 250);
    assert_eq!(info.taken_at, at(1_800_000_000, 0));
    assert_eq!(
        store.listing_page(240, 100).unwrap(),
        listed_rows(240..250).collect::<Vec<_>>()
    );
}

#[test]
fn the_file_and_its_directory_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let store = MetadataStore::open(&cache).unwrap();
    store.put_inquiry(&inquiry("inq_p", vec![])).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700);
    assert_eq!(store.path(), cache.join(FILE_NAME));
    assert_eq!(mode(store.path()), 0o600);
    // SQLite's journal files, open beside a live store, take the file's mode.
    for suffix in ["-wal", "-shm"] {
        let p = cache.join(format!("{FILE_NAME}{suffix}"));
        assert!(p.exists(), "{} missing: not in WAL mode?", p.display());
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
}

fn assert_empty_and_usable(store: &MetadataStore) {
    assert_eq!(
        store.counts().unwrap(),
        StoreCounts {
            inquiries: 0,
            files: 0,
            listed: 0
        }
    );
    assert_eq!(store.listing().unwrap(), None);
    let i = inquiry("inq_new", vec![file(Section::Document, "n.jpg", None)]);
    store.put_inquiry(&i).unwrap();
    assert_eq!(store.get_inquiry("inq_new").unwrap(), Some(i));
}

#[test]
fn a_file_of_random_bytes_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let junk: Vec<u8> = (0..64 * 1024).map(|_| rand::random::<u8>()).collect();
    std::fs::write(dir.path().join(FILE_NAME), &junk).unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    let why = store.rebuilt().expect("random bytes were trusted");
    assert!(why.contains("damaged"), "{why}");
    assert_empty_and_usable(&store);
    drop(store);
    // Rebuilt once: the next open trusts it and finds what was written.
    let store = MetadataStore::open(dir.path()).unwrap();
    assert!(store.rebuilt().is_none());
    assert!(store.get_inquiry("inq_new").unwrap().is_some());
}

#[test]
fn a_store_damaged_inside_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = MetadataStore::open(dir.path()).unwrap();
        for n in 0..300 {
            let files = (0..4)
                .map(|k| file(Section::Document, &format!("f{k}.jpg"), Some(k)))
                .collect();
            store
                .put_inquiry(&inquiry(&format!("inq_{n}"), files))
                .unwrap();
        }
    }
    // The last close checkpointed the journal into the file: damage pages past the header.
    let path = dir.path().join(FILE_NAME);
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 16 * 4096, "{} bytes", bytes.len());
    for b in &mut bytes[2 * 4096..12 * 4096] {
        *b = rand::random();
    }
    std::fs::write(&path, &bytes).unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    assert!(store.rebuilt().is_some(), "a damaged store was trusted");
    assert_empty_and_usable(&store);
}

#[test]
fn a_foreign_database_or_another_schema_version_is_rebuilt() {
    for (app, version, expect) in [
        (0x1234_5678, 1, "another application"),
        (0, 0, "another application"),
        (schema::APPLICATION_ID, 99, "schema version 99"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE inquiry (id TEXT, secret TEXT);
                 INSERT INTO inquiry VALUES ('inq_x', 'someone else''s data');",
            )
            .unwrap();
            conn.pragma_update(None, "application_id", app).unwrap();
            conn.pragma_update(None, "user_version", version).unwrap();
        }
        let store = MetadataStore::open(dir.path()).unwrap();
        let why = store
            .rebuilt()
            .unwrap_or_else(|| panic!("{app:#x}/{version} trusted"));
        assert!(why.contains(expect), "{why}");
        assert_empty_and_usable(&store);
        drop(store);
        let raw = std::fs::read(&path).unwrap();
        assert!(
            !contains(&raw, b"someone else"),
            "the old data is still in the file"
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every byte the store has on disk: the file and its journal files.
fn raw_store_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(b) = std::fs::read(dir.join(format!("{FILE_NAME}{suffix}"))) {
            all.extend(b);
        }
    }
    all
}

#[test]
fn no_url_token_or_signature_ever_reaches_the_file() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/client/several-documents.json"
    );
    // Persona's forms of file URL (access_token query, token in the path), plus an S3
    // presigned URL of the kind a files host may redirect to.
    let body = std::fs::read_to_string(fixture).unwrap().replacen(
        "https://files.withpersona.com/image.jpeg?access_token=tok-a1b",
        "https://bucket.s3.amazonaws.com/image.jpeg?X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=0123deadbeef",
        1,
    );
    assert!(body.contains("X-Amz-Signature"), "fixture changed");
    let retrieved = parse_inquiry("test", body.as_bytes(), SystemTime::now()).unwrap();
    let files = files_of(&retrieved);
    assert!(files.len() >= 3, "{} files", files.len());
    assert!(files.iter().any(|f| f.url.contains("X-Amz-Signature")));
    let secrets: Vec<String> = files.iter().map(|f| f.url.clone()).collect();
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    let view = StoredInquiry::from_retrieved(&retrieved, &files, None, SystemTime::now());
    store.put_inquiry(&view).unwrap();
    store
        .put_listing(
            "all",
            SystemTime::now(),
            [ListedInquiry {
                id: retrieved.id.clone(),
                status: retrieved.status.clone(),
                created_at: None,
                updated_at: None,
                redacted_at: None,
                ..Default::default()
            }],
        )
        .unwrap();
    assert_eq!(store.get_inquiry(&retrieved.id).unwrap(), Some(view));
    let marks = [
        "://",
        "access_token",
        "tok-a1",
        "OLDTOKEN",
        "X-Amz",
        "AKIAEXAMPLE",
        "deadbeef",
        "withpersona.com",
    ];
    let check = |phase: &str| {
        let raw = raw_store_bytes(dir.path());
        assert!(contains(&raw, retrieved.id.as_bytes()), "{phase}: no data?");
        for m in marks {
            assert!(!contains(&raw, m.as_bytes()), "{phase}: {m:?} in the store");
        }
        for url in &secrets {
            assert!(
                !contains(&raw, url.as_bytes()),
                "{phase}: a URL in the store"
            );
        }
    };
    // While open (the WAL holds the writes) and after close (checkpointed into the file).
    check("open");
    drop(store);
    check("closed");
}

#[test]
fn a_value_that_looks_like_a_secret_is_refused_and_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    let signed = "https://f.example/a.jpg?X-Amz-Signature=feedface";
    let mut bad = file(Section::Document, "a.jpg", None);
    bad.role = signed.to_string();
    let err = store.put_inquiry(&inquiry("inq_s", vec![bad])).unwrap_err();
    assert!(matches!(err, StoreError::Secret { field: "role" }), "{err}");
    assert!(!err.to_string().contains("feedface"), "{err}");
    assert_eq!(store.get_inquiry("inq_s").unwrap(), None);
    assert!(
        store
            .set_cursor("events", "persona_production_abc")
            .is_err()
    );
    let row = ListedInquiry {
        id: "inq_a?token=x".into(),
        status: None,
        created_at: None,
        updated_at: None,
        redacted_at: None,
        ..Default::default()
    };
    assert!(store.put_listing("s", SystemTime::now(), [row]).is_err());
    drop(store);
    let raw = raw_store_bytes(dir.path());
    for m in ["feedface", "persona_production_abc", "token=x"] {
        assert!(!contains(&raw, m.as_bytes()), "{m} written");
    }
}

fn listed_rows(range: std::ops::Range<u64>) -> impl Iterator<Item = ListedInquiry> {
    range.map(|n| ListedInquiry {
        id: format!("inq_{n:08}"),
        status: Some(
            if n.is_multiple_of(3) {
                "approved"
            } else {
                "pending"
            }
            .into(),
        ),
        created_at: Some(at(1_600_000_000 + n, 0)),
        updated_at: Some(at(1_700_000_000 + n, (n % 1000) as u32 * 1_000_000)),
        redacted_at: (n % 10 == 7).then(|| at(1_750_000_000, 0)),
        ..Default::default()
    })
}

#[test]
fn a_listing_is_paged_found_by_id_and_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    assert_eq!(store.listing().unwrap(), None);
    assert!(store.listing_page(0, 10).unwrap().is_empty());
    let mut build = store.begin_listing("scope-a").unwrap();
    for page in 0..5u64 {
        let rows: Vec<_> = listed_rows(page * 100..page * 100 + 100).collect();
        store.append_listing(&mut build, &rows).unwrap();
    }
    assert_eq!(build.len(), 500);
    // Not current until finished.
    assert_eq!(store.listing().unwrap(), None);
    store.finish_listing(build, at(1_800_000_000, 0)).unwrap();
    assert_eq!(store.listing().unwrap().unwrap().count, 500);
    let mut all = Vec::new();
    let mut start = 0;
    loop {
        let page = store.listing_page(start, 64).unwrap();
        if page.is_empty() {
            break;
        }
        start += page.len() as u64;
        all.extend(page);
    }
    assert_eq!(all, listed_rows(0..500).collect::<Vec<_>>());
    let (pos, row) = store.listed("inq_00000417").unwrap().unwrap();
    assert_eq!(pos, 417);
    assert_eq!(row, listed_rows(417..418).next().unwrap());
    assert_eq!(store.listed("inq_99999999").unwrap(), None);
    // A new listing replaces the old one whole: no row of the old one is left.
    store
        .put_listing("scope-b", at(1_800_000_100, 0), listed_rows(1000..1010))
        .unwrap();
    let info = store.listing().unwrap().unwrap();
    assert_eq!((info.scope.as_str(), info.count), ("scope-b", 10));
    assert_eq!(store.listed("inq_00000417").unwrap(), None);
    assert_eq!(store.listing_page(0, 1000).unwrap().len(), 10);
    let rows: i64 = store
        .conn
        .lock()
        .query_row("SELECT COUNT(*) FROM listing", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 10);
    // Their pages were given back, not kept as free space in the file.
    let conn = store.conn.lock();
    let pragma = |name: &str| -> i64 { conn.pragma_query_value(None, name, |r| r.get(0)).unwrap() };
    assert_eq!(pragma("auto_vacuum"), 2, "not incremental");
    assert_eq!(pragma("freelist_count"), 0);
}

#[test]
fn an_abandoned_or_unfinished_listing_never_becomes_current() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = MetadataStore::open(dir.path()).unwrap();
        store
            .put_listing("s", at(1_800_000_000, 0), listed_rows(0..30))
            .unwrap();
        let mut old = store.begin_listing("s").unwrap();
        store
            .append_listing(&mut old, &listed_rows(100..110).collect::<Vec<_>>())
            .unwrap();
        // A newer listing begun: the older build can neither grow nor finish.
        let mut newer = store.begin_listing("s").unwrap();
        assert!(matches!(
            store.append_listing(&mut old, &listed_rows(110..111).collect::<Vec<_>>()),
            Err(StoreError::ListingAbandoned)
        ));
        assert!(matches!(
            store.finish_listing(old, at(1, 0)),
            Err(StoreError::ListingAbandoned)
        ));
        store
            .append_listing(&mut newer, &listed_rows(200..220).collect::<Vec<_>>())
            .unwrap();
        // The process stops here, `newer` unfinished.
    }
    let store = MetadataStore::open(dir.path()).unwrap();
    assert_eq!(store.listing().unwrap().unwrap().count, 30);
    assert_eq!(
        store.listing_page(0, 100).unwrap(),
        listed_rows(0..30).collect::<Vec<_>>()
    );
    let rows: i64 = store
        .conn
        .lock()
        .query_row("SELECT COUNT(*) FROM listing", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 30, "rows of unfinished listings left behind");
}

/// What the crash writer stores for inquiry `n` in round `round`: a status naming the round
/// and `1 + (n + round) % 7` files, so a torn write shows as a mismatch.
fn crash_inquiry(n: u64, round: u64) -> StoredInquiry {
    let count = 1 + (n + round) % 7;
    let files = (0..count)
        .map(|k| StoredFile {
            section: if k.is_multiple_of(2) {
                Section::Document
            } else {
                Section::Selfie
            },
            name: format!("r{round}-f{k}.jpg"),
            object_id: format!("doc_{n}_{k}"),
            role: "front-photo".into(),
            size: Some(round * 1000 + k),
            mtime: at(1_700_000_000 + round, 0),
        })
        .collect();
    StoredInquiry {
        id: format!("inq_{n:05}"),
        status: Some(format!("round-{round}")),
        created_at: Some(at(1_600_000_000 + n, 0)),
        updated_at: Some(at(1_700_000_000 + round, 0)),
        redacted_at: None,
        checked_at: at(1_700_000_000 + round, 0),
        files,
    }
}

const CRASH_DIR_ENV: &str = "PERSONAFS_STORE_CRASH_WRITER_DIR";
const CRASH_ROUND_ENV: &str = "PERSONAFS_STORE_CRASH_WRITER_ROUND";
const CRASH_INQUIRIES: u64 = 200;
const CRASH_LISTED: u64 = 5_000;

/// The child of `kill_9_mid_write_leaves_every_inquiry_whole`: writes from its first round on
/// until killed, telling its parent on stdout after each committed round.
#[test]
#[ignore = "run only as the child process of the kill -9 test"]
fn crash_writer_child() {
    let dir = std::env::var(CRASH_DIR_ENV).expect("run by the kill -9 test");
    let first: u64 = std::env::var(CRASH_ROUND_ENV).unwrap().parse().unwrap();
    let store = MetadataStore::open(Path::new(&dir)).unwrap();
    for round in first.. {
        for n in 0..CRASH_INQUIRIES {
            store.put_inquiry(&crash_inquiry(n, round)).unwrap();
        }
        let start = round * 1000;
        store
            .put_listing(
                &format!("round-{round}"),
                at(round, 0),
                listed_rows(start..start + CRASH_LISTED),
            )
            .unwrap();
        println!("committed round {round}");
    }
}

/// Run a writer from round `first`, kill it with SIGKILL a random moment after its round
/// `first + 2` is committed; returns the last round it said was committed.
fn write_then_kill_9(dir: &Path, first: u64) -> u64 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "store::tests::crash_writer_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, dir)
        .env(CRASH_ROUND_ENV, first.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut committed = None;
    while committed.is_none_or(|r| r < first + 2) {
        let line = lines.next().expect("the writer stopped early").unwrap();
        if let Some(r) = line.strip_prefix("committed round ") {
            committed = Some(r.parse::<u64>().unwrap());
        }
    }
    // Real time: the kill lands at a random moment of the child's writing, by design.
    std::thread::sleep(Duration::from_millis(rand::random::<u64>() % 60));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    committed.unwrap()
}

/// Every inquiry whole (one round's view, at least the last committed one), the listing one
/// whole round's, no stray rows. Returns the newest round found.
fn check_after_crash(store: &MetadataStore, committed: u64) -> u64 {
    let mut rounds = Vec::new();
    for n in 0..CRASH_INQUIRIES {
        let got = store
            .get_inquiry(&format!("inq_{n:05}"))
            .unwrap()
            .expect("an inquiry written in a committed round is missing");
        let round: u64 = got.status.as_deref().unwrap()["round-".len()..]
            .parse()
            .unwrap();
        assert!(round >= committed, "inq {n} lost round {committed}");
        // Exactly one round's view: never a mix of two, never part of the files.
        assert_eq!(got, crash_inquiry(n, round), "inq {n} torn");
        rounds.push(round);
    }
    eprintln!(
        "killed after round {committed}; rounds found: {} to {}",
        rounds.iter().min().unwrap(),
        rounds.iter().max().unwrap()
    );
    // Written in order: later inquiries are never ahead of earlier ones.
    assert!(rounds.windows(2).all(|w| w[0] >= w[1]), "{rounds:?}");
    let info = store.listing().unwrap().unwrap();
    let round: u64 = info.scope["round-".len()..].parse().unwrap();
    assert!(round >= committed);
    assert_eq!(info.count, CRASH_LISTED);
    let start = round * 1000;
    assert_eq!(
        store.listing_page(CRASH_LISTED - 10, 100).unwrap(),
        listed_rows(start + CRASH_LISTED - 10..start + CRASH_LISTED).collect::<Vec<_>>()
    );
    let rows: i64 = store
        .conn
        .lock()
        .query_row("SELECT COUNT(*) FROM listing", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        rows as u64, CRASH_LISTED,
        "rows of an unfinished listing left"
    );
    let files: u64 = (0..CRASH_INQUIRIES)
        .map(|n| crash_inquiry(n, rounds[n as usize]).files.len() as u64)
        .sum();
    assert_eq!(store.counts().unwrap().files, files);
    rounds[0].max(round)
}

#[test]
fn kill_9_mid_write_leaves_every_inquiry_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = 0;
    // Killed three times at random moments, each time reopened by the next writer.
    for _ in 0..3 {
        let committed = write_then_kill_9(dir.path(), first);
        let store = MetadataStore::open(dir.path()).unwrap();
        assert!(store.rebuilt().is_none(), "{:?}", store.rebuilt());
        first = check_after_crash(&store, committed) + 1;
    }
}

#[test]
fn the_store_is_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<MetadataStore>();
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(MetadataStore::open(dir.path()).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for n in 0..50 {
                    let id = format!("inq_{t}_{n}");
                    let i = inquiry(&id, vec![file(Section::Document, "x.jpg", Some(n))]);
                    store.put_inquiry(&i).unwrap();
                    assert_eq!(store.get_inquiry(&id).unwrap(), Some(i));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.counts().unwrap().inquiries, 200);
}

#[test]
fn inquiry_json_is_stored_with_its_view_and_forgotten_with_an_older_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    let inq = inquiry(
        "inq_j",
        vec![file(Section::Document, "doc_1-front.jpg", Some(3))],
    );
    let json = br#"{"url": "https://files.example/x.jpg?access_token=REDACTED"}"#;
    store.put_inquiry_with_json(&inq, json).unwrap();
    assert_eq!(
        store.get_inquiry_json("inq_j").unwrap().as_deref(),
        Some(&json[..])
    );
    // A view put without its body does not keep the older body.
    store.put_inquiry(&inq).unwrap();
    assert_eq!(store.get_inquiry_json("inq_j").unwrap(), None);
    assert_eq!(store.get_inquiry_json("inq_missing").unwrap(), None);
}

#[test]
fn an_inquiry_json_with_a_token_or_a_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    let inq = inquiry("inq_s", Vec::new());
    for bad in [
        &br#"{"url": "https://files.example/x.jpg?access_token=eyJhbGciOi"}"#[..],
        br#"{"url": "https://s3.example/x?X-Amz-Signature=abc123"}"#,
        br#"{"note": "persona_production_abcdef"}"#,
    ] {
        assert!(matches!(
            store.put_inquiry_with_json(&inq, bad),
            Err(StoreError::Secret { .. })
        ));
    }
    assert_eq!(store.get_inquiry("inq_s").unwrap(), None, "nothing written");
}
