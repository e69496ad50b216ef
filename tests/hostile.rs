//! Hostile input from the API, through a real mount: file names built to escape or break the
//! tree, URLs to foreign hosts and redirects to them, sizes that lie, bodies that are not
//! what they claim, huge arrays and a listing that never ends. Each gets a clear error
//! (EIO, EACCES) or a safe result, never a panic, a path outside its directory, a request to
//! a foreign host or a hang. Then the parser and the naming are fuzzed with proptest.

mod binary;
mod common;
mod hostile_server;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as AxPath, RawQuery};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use binary::bounded;
use common::{TestMount, fuse_available};
use personafs_client::{ApiKey, ClientConfig, HttpClient, PersonaApi, files_of};
use personafs_fs::cache::{CacheLimits, DiskCache};
use personafs_fs::mount::{Mount, Parts};
use personafs_fs::{CoreConfig, FuseOptions};
use personafs_mock::MockConfig;
use serde_json::{Value, json};

const HANG: Duration = Duration::from_secs(180);

/// A name the kernel, `ls` and `rsync` can all take, that stays inside its directory.
fn assert_valid_name(name: &std::ffi::OsStr, context: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let b = name.as_bytes();
    assert!(
        !b.is_empty() && b.len() <= 255 && !b.contains(&b'/') && !b.contains(&0),
        "bad name {name:?} in {}",
        context.display()
    );
    assert!(b != b"." && b != b"..", "{name:?} in {}", context.display());
    assert!(
        std::str::from_utf8(b).is_ok_and(|s| !s.chars().any(char::is_control)),
        "control character in {name:?}"
    );
}

/// Walk `root`: every name valid and unique in its directory, every path inside `root`.
fn walk_checked(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut seen = HashSet::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            assert_valid_name(&e.file_name(), &dir);
            assert!(seen.insert(e.file_name()), "{:?} twice", e.file_name());
            let p = e.path();
            let canonical = std::fs::canonicalize(&p).unwrap();
            assert!(canonical.starts_with(root), "{} escapes", p.display());
            if e.file_type().unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// A server anywhere the mount must never send a request to; counts what it gets.
fn foreign_server(rt: &tokio::runtime::Runtime) -> (SocketAddr, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let app = Router::new().fallback(move || {
        h.fetch_add(1, Ordering::SeqCst);
        async { (StatusCode::OK, vec![b'F'; 1000]) }
    });
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

// ---------------------------------------------------------------------------------------
// Fixtures served by the mock: names, foreign URLs, lying sizes.

const HOSTILE_NAMES: &[&str] = &[
    "../../../etc/passwd",
    "a/b/../c.jpg",
    "/absolute.jpg",
    "nul\u{0}name.png",
    "new\nline.jpg",
    "tab\tand\rcr.jpg",
    "\u{7f}del.jpg",
    ".",
    "..",
    "...",
    "-rf",
    "\u{202e}gpj.exe",
    "\u{1F642}\u{2028}e\u{301}.png",
    "\u{feff}bom.jpg",
    "same.jpg",
    "same.jpg",
    "same.jpg",
    "same.JPG",
];

fn long_names() -> Vec<String> {
    vec![
        format!("{}.jpg", "x".repeat(1000)),
        format!("{}.png", "é".repeat(600)),
        "\u{1F642}".repeat(300),
    ]
}

fn write_hostile_fixtures(dir: &Path, foreign: SocketAddr) {
    let url = |name: &str| format!("https://files.withpersona.com/{name}?access_token=x");
    let names: Vec<String> = HOSTILE_NAMES
        .iter()
        .map(|s| s.to_string())
        .chain(long_names())
        .collect();
    let files: Vec<Value> = names
        .iter()
        .enumerate()
        .map(
            |(i, n)| json!({"filename": n, "url": url(&format!("f{i}.bin")), "byte-size": 100 + i}),
        )
        .collect();
    let doc =
        |id: &str, attrs: Value| json!({"type": "document/generic", "id": id, "attributes": attrs});
    let included = vec![
        doc("doc_Names", json!({"status": "processed", "files": files})),
        // An object id built to climb out of the directory.
        doc(
            "../../doc_Evil",
            json!({"front-photo": {"filename": "../x.jpg", "url": url("evil.jpg"), "byte-size": 50}}),
        ),
        doc(
            "..",
            json!({"back-photo": {"filename": "/", "url": url("dots.jpg"), "byte-size": 51}}),
        ),
        // URLs to hosts the mount must not contact.
        doc(
            "doc_Foreign",
            json!({"files": [
                {"filename": "foreign.jpg", "url": format!("http://{foreign}/a.jpg"), "byte-size": 10},
                {"filename": "userinfo.jpg", "url": format!("http://files.withpersona.com@{foreign}/b.jpg"), "byte-size": 10},
                {"filename": "localhost.jpg", "url": format!("http://localhost:{}/c.jpg", foreign.port()), "byte-size": 10},
                {"filename": "nosize.jpg", "url": format!("http://{foreign}/d.jpg")},
                {"filename": "file.jpg", "url": "file:///etc/passwd", "byte-size": 10},
                {"filename": "relative.jpg", "url": "/etc/passwd", "byte-size": 10},
                {"filename": "lookalike.jpg", "url": "https://files.withpersona.com.evil.example/e.jpg", "byte-size": 10}
            ]}),
        ),
        // `byte-size` larger, then smaller, than the body.
        doc(
            "doc_Sizes",
            json!({"files": [
                {"filename": "short.bin", "url": url("short.bin"), "byte-size": 5000},
                {"filename": "long.bin", "url": url("long.bin"), "byte-size": 10}
            ]}),
        ),
    ];
    let refs: Vec<Value> = included
        .iter()
        .map(|o| json!({"type": o["type"], "id": o["id"]}))
        .collect();
    let body = json!({
        "data": {"type": "inquiry", "id": "inq_Hostile00000001", "attributes": {
            "status": "completed", "created-at": "2026-01-02T00:00:00.000Z"},
            "relationships": {"documents": {"data": refs}}},
        "included": included
    });
    std::fs::create_dir_all(dir.join("inquiries")).unwrap();
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::write(dir.join("inquiries/hostile.json"), body.to_string()).unwrap();
    std::fs::write(dir.join("files/short.bin"), vec![b'S'; 1000]).unwrap();
    std::fs::write(dir.join("files/long.bin"), vec![b'L'; 1000]).unwrap();
}

const NO_SIZE: &str = "doc_Foreign-nosize.jpg";

#[test]
fn hostile_names_foreign_urls_and_lying_sizes_are_safe_through_the_mount() {
    if !fuse_available() {
        return;
    }
    let side = tokio::runtime::Runtime::new().unwrap();
    let (foreign, foreign_hits) = foreign_server(&side);
    let fixtures = tempfile::tempdir().unwrap();
    write_hostile_fixtures(fixtures.path(), foreign);
    let m = TestMount::start(MockConfig {
        fixtures: Some(fixtures.path().to_path_buf()),
        ..Default::default()
    });
    let root = m.inquiries().join("inq_Hostile00000001");
    let paths = bounded("walking the hostile inquiry", HANG, {
        let root = root.clone();
        move || walk_checked(&root)
    });
    let doc = root.join("document");
    let shown: Vec<String> = std::fs::read_dir(&doc)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    // Every hostile name became a file, the three `same.jpg` three distinct names.
    let names_files = shown.iter().filter(|n| n.starts_with("doc_Names-")).count();
    assert_eq!(
        names_files,
        HOSTILE_NAMES.len() + long_names().len(),
        "{shown:?}"
    );
    for want in [
        "doc_Names-same.jpg",
        "doc_Names-same-2.jpg",
        "doc_Names-same-3.jpg",
    ] {
        assert!(shown.iter().any(|n| n == want), "{want} missing: {shown:?}");
    }
    assert!(paths.len() > names_files);

    // The bytes behind each safe name are those of a direct download; foreign files and
    // lying sizes fail cleanly (or, for sizes, give exactly the body).
    let inquiry =
        m.rt.block_on(m.api.retrieve_inquiry("inq_Hostile00000001"))
            .unwrap();
    for f in files_of(&inquiry) {
        let path = doc.join(&f.name);
        let read = bounded("reading a hostile file", HANG, {
            let path = path.clone();
            move || std::fs::read(&path)
        });
        if f.name == NO_SIZE {
            continue; // see a_file_whose_size_cannot_be_learned_is_never_an_empty_success
        }
        if f.object_id == "doc_Foreign" {
            let e = match read {
                Ok(b) => panic!("{} read {} bytes from a foreign host", f.name, b.len()),
                Err(e) => e,
            };
            assert!(
                [libc::EIO, libc::EACCES, libc::ENOENT].contains(&e.raw_os_error().unwrap_or(0)),
                "{}: {e}",
                f.name
            );
            continue;
        }
        let mut direct = Vec::new();
        let fetched = m.rt.block_on(m.api.download(&f.url, 0, &mut direct));
        if f.object_id == "doc_Sizes" {
            eprintln!("{}: mount {:?}", f.name, read.as_ref().map(Vec::len));
        }
        match (&read, f.object_id.as_str()) {
            (Ok(bytes), _) if fetched.is_ok() => {
                assert!(*bytes == direct, "{} differs from the body", f.name)
            }
            (Err(e), "doc_Sizes") => {
                assert_eq!(e.raw_os_error(), Some(libc::EIO), "{}: {e}", f.name)
            }
            _ => panic!("{}: mount {read:?}, direct {fetched:?}", f.name),
        }
    }
    assert_eq!(
        foreign_hits.load(Ordering::SeqCst),
        0,
        "a request reached a foreign host"
    );
    assert_eq!(
        m.stats().files_auth_header,
        0,
        "the key went to the files host"
    );
}

// ---------------------------------------------------------------------------------------
// A hostile API host (the mock cannot produce these bodies).

/// A mount of personafs on an arbitrary API base, with the given core settings.
struct ApiMount {
    _rt: tokio::runtime::Runtime,
    session: Option<Mount>,
    mountpoint: tempfile::TempDir,
    _cache: tempfile::TempDir,
}

impl ApiMount {
    fn inquiries(&self) -> PathBuf {
        self.mountpoint.path().join("inquiries")
    }
}

impl Drop for ApiMount {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = s.unmount_and_join();
        }
    }
}

fn inquiry_resource(id: &str) -> Value {
    json!({"type": "inquiry", "id": id, "attributes": {"status": "completed",
        "created-at": "2026-01-01T00:00:00.000Z"}})
}

/// `/api/v1/inquiries/{id}`: what each id answers.
fn hostile_retrieve(id: &str, base: &str) -> Response {
    let json_ok = |v: Value| (StatusCode::OK, axum::Json(v)).into_response();
    match id {
        "inq_Malformed0001" => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"data": {"type": "inquiry", "id": "inq_Malformed0001", "attributes": {"#,
        )
            .into_response(),
        "inq_Html000000001" => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<!DOCTYPE html><html><body>Sign in</body></html>",
        )
            .into_response(),
        "inq_NoData0000001" => json_ok(json!({"included": []})),
        "inq_NullData00001" => json_ok(json!({"data": null})),
        "inq_WrongId000001" => json_ok(json!({"data": {"type": "inquiry", "id": 12}})),
        "inq_WrongType0001" => json_ok(json!({"data": [inquiry_resource(id)]})),
        "inq_WrongIncl0001" => json_ok(json!({"data": inquiry_resource(id), "included": {"a": 1}})),
        "inq_Empty00000001" => (StatusCode::OK, "").into_response(),
        "inq_AttrsArray001" => json_ok(json!({"data": inquiry_resource(id), "included": [
            {"type": "document/generic", "id": "doc_2", "attributes": [1, 2]}]})),
        // Attributes of the wrong types where files are expected: tolerated, no file shown.
        "inq_OddAttrs00001" => json_ok(json!({"data": inquiry_resource(id), "included": [
            {"type": "document/generic", "id": "doc_1", "attributes": {
                "files": "not an array", "front-photo": 5, "back-photo": {"url": 7},
                "photo-urls": [1, null, {"url": null}], "created-at": 3}},
            {"type": "verification/government-id", "id": "ver_1", "attributes": null}
        ]})),
        // A huge `included`: 200 000 objects, 3 000 of them documents with a file.
        "inq_Huge000000001" => {
            let mut included = Vec::with_capacity(200_000);
            for i in 0..200_000 {
                included.push(if i % 66 == 0 {
                    json!({"type": "document/generic", "id": format!("doc_{i:06}"), "attributes": {
                        "front-photo": {"filename": "p.jpg", "byte-size": 1000,
                            "url": format!("{base}/dl/ok.jpg?access_token={i}")}}})
                } else {
                    json!({"type": "verification/database", "id": format!("ver_{i:06}")})
                });
            }
            json_ok(json!({"data": inquiry_resource(id), "included": included}))
        }
        // A file whose host redirects to a foreign one.
        "inq_Redirect00001" => json_ok(json!({"data": inquiry_resource(id), "included": [
            {"type": "document/generic", "id": "doc_R", "attributes": {
                "front-photo": {"filename": "r.jpg", "byte-size": 1000,
                    "url": format!("{base}/dl/redirect.jpg?access_token=t")}}}]})),
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"errors": [{"title": "Record not found"}]})),
        )
            .into_response(),
    }
}

/// `/api/v1/inquiries`: a listing whose cursors cycle B → C → B forever.
fn looping_list(query: Option<String>) -> Response {
    let after = query
        .as_deref()
        .and_then(|q| personafs_client::model::cursor_from_link(&format!("?{q}")))
        .unwrap_or_default();
    let next = if after == "inq_CursorB000001" {
        "inq_CursorC000001"
    } else {
        "inq_CursorB000001"
    };
    axum::Json(json!({
        "data": [inquiry_resource(next)],
        "links": {"next": format!("/api/v1/inquiries?page%5Bafter%5D={next}")}
    }))
    .into_response()
}

fn hostile_api(foreign: SocketAddr) -> (ApiMount, Arc<AtomicU64>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let lists = Arc::new(AtomicU64::new(0));
    let app = {
        let (base, lists) = (base.clone(), lists.clone());
        Router::new()
            .route(
                "/api/v1/inquiries",
                get(move |RawQuery(q): RawQuery| {
                    lists.fetch_add(1, Ordering::SeqCst);
                    async move { looping_list(q) }
                }),
            )
            .route(
                "/api/v1/inquiries/{id}",
                get(move |AxPath(id): AxPath<String>| {
                    let base = base.clone();
                    async move { hostile_retrieve(&id, &base) }
                }),
            )
            .route(
                "/dl/{name}",
                get(move |AxPath(name): AxPath<String>| async move {
                    if name == "redirect.jpg" {
                        (
                            StatusCode::FOUND,
                            [(header::LOCATION, format!("http://{foreign}/stolen.jpg"))],
                        )
                            .into_response()
                    } else {
                        (StatusCode::OK, vec![b'K'; 1000]).into_response()
                    }
                }),
            )
    };
    rt.spawn(async move { axum::serve(listener, app).await });
    let mut c = ClientConfig::new(format!("{base}/api/v1"), ApiKey::new("persona_sandbox_k"));
    c.retry_base_delay = Duration::from_millis(10);
    c.max_retries = 2;
    c.request_timeout = Duration::from_secs(20);
    let api: Arc<dyn PersonaApi> = Arc::new(HttpClient::new(c).unwrap());
    let cache_tmp = tempfile::tempdir().unwrap();
    let cache = DiskCache::open_dir(
        &cache_tmp.path().join("cache"),
        CacheLimits {
            max_size: 1 << 30,
            min_free: 0.0,
            max_age: None,
        },
    )
    .unwrap();
    let parts = Parts {
        api,
        cache,
        core: CoreConfig {
            io_timeout: Duration::from_secs(20),
            ..Default::default()
        },
        fuse: FuseOptions::default(),
        audit: None,
    };
    let mountpoint = tempfile::tempdir().unwrap();
    let session = personafs_fs::mount::wire(parts, rt.handle().clone())
        .mount(mountpoint.path(), || {})
        .unwrap();
    (
        ApiMount {
            _rt: rt,
            session: Some(session),
            mountpoint,
            _cache: cache_tmp,
        },
        lists,
    )
}

fn errno_of<T: std::fmt::Debug>(r: std::io::Result<T>, what: &str) -> i32 {
    match r {
        Ok(v) => panic!("{what}: succeeded with {v:?}"),
        Err(e) => e.raw_os_error().unwrap_or(0),
    }
}

#[test]
fn hostile_api_bodies_give_clear_errors_and_the_mount_survives() {
    if !fuse_available() {
        return;
    }
    let side = tokio::runtime::Runtime::new().unwrap();
    let (foreign, foreign_hits) = foreign_server(&side);
    let (m, lists) = hostile_api(foreign);
    let inquiries = m.inquiries();

    // A listing whose cursor comes back is cut short there, after a handful of pages, not
    // an endless loop: what its pages held is shown (tests/cursor_loop.rs has the rest).
    let dir = inquiries.clone();
    let r = bounded("listing with a cycling cursor", HANG, move || {
        std::fs::read_dir(&dir).and_then(|d| d.collect::<std::io::Result<Vec<_>>>())
    });
    let mut shown: Vec<String> = r
        .expect("a cut listing is shown")
        .iter()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    shown.sort();
    assert_eq!(shown, ["inq_CursorB000001", "inq_CursorC000001"]);
    let pages = lists.load(Ordering::SeqCst);
    assert!(pages <= 10, "{pages} list requests for a 2-page cycle");

    // Bodies that cannot be an inquiry: EIO on the inquiry, whatever is asked of it.
    for id in [
        "inq_Malformed0001",
        "inq_Html000000001",
        "inq_NoData0000001",
        "inq_NullData00001",
        "inq_WrongId000001",
        "inq_WrongType0001",
        "inq_WrongIncl0001",
        "inq_Empty00000001",
    ] {
        let p = inquiries.join(id).join("inquiry.json");
        let r = bounded(id, HANG, move || std::fs::read(&p));
        assert_eq!(errno_of(r, id), libc::EIO, "{id}");
    }

    // Odd attribute types: a safe, empty result.
    let odd = inquiries.join("inq_OddAttrs00001");
    bounded("odd attributes", HANG, {
        let odd = odd.clone();
        move || walk_checked(&odd)
    });
    assert_eq!(std::fs::read_dir(odd.join("document")).unwrap().count(), 0);
    std::fs::read(odd.join("inquiry.json")).unwrap();

    // An `included` entry of the wrong shape costs only that entry, not the inquiry.
    let arrays = inquiries.join("inq_AttrsArray001");
    bounded("an included entry with array attributes", HANG, {
        let arrays = arrays.clone();
        move || walk_checked(&arrays)
    });
    assert_eq!(
        std::fs::read_dir(arrays.join("document")).unwrap().count(),
        0
    );
    std::fs::read(arrays.join("inquiry.json")).unwrap();

    // A huge `included`: every document shows, promptly, with valid names.
    let huge = inquiries.join("inq_Huge000000001").join("document");
    let names = bounded("a huge included array", HANG, move || {
        let names: Vec<_> = std::fs::read_dir(&huge)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        for n in &names {
            assert_valid_name(n, &huge);
        }
        (
            names.len(),
            std::fs::read(huge.join("doc_000000-front-photo.jpg")),
        )
    });
    assert_eq!(names.0, 3031);
    assert_eq!(names.1.unwrap(), vec![b'K'; 1000]);

    // A redirect to a foreign host is not followed.
    let p = inquiries.join("inq_Redirect00001/document/doc_R-front-photo.jpg");
    let r = bounded("a redirected download", HANG, move || std::fs::read(&p));
    assert_eq!(errno_of(r, "a redirect"), libc::EIO);
    assert_eq!(
        foreign_hits.load(Ordering::SeqCst),
        0,
        "a redirect was followed"
    );

    // Still alive and answering after all of it.
    assert!(std::fs::metadata(m.mountpoint.path()).unwrap().is_dir());
}

#[test]
fn a_file_whose_size_cannot_be_learned_is_never_an_empty_success() {
    if !fuse_available() {
        return;
    }
    let side = tokio::runtime::Runtime::new().unwrap();
    let (foreign, foreign_hits) = foreign_server(&side);
    let fixtures = tempfile::tempdir().unwrap();
    write_hostile_fixtures(fixtures.path(), foreign);
    let m = TestMount::start(MockConfig {
        fixtures: Some(fixtures.path().to_path_buf()),
        ..Default::default()
    });
    let path = m
        .inquiries()
        .join("inq_Hostile00000001/document")
        .join(NO_SIZE);
    // Either the file is not shown, or reading it fails: never an empty file that `cp`
    // and `rsync` take for the document.
    if let Ok(md) = std::fs::metadata(&path) {
        let read = bounded("reading a file of unknown size", HANG, move || {
            std::fs::read(&path)
        });
        assert!(
            read.is_err(),
            "a {}-byte file read as {:?} bytes",
            md.len(),
            read.map(|b| b.len())
        );
    }
    assert_eq!(foreign_hits.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------------------
// A broken or hostile server against the real daemon (a process of its own, its RSS read
// from /proc): bounded bodies, bounded waits, and the rest of the mount answering meanwhile.

mod attacks {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use super::binary::{self, BIN, Daemon, bounded};
    use super::common::fuse_available;
    use super::hostile_server::*;

    const IO_TIMEOUT: Duration = Duration::from_secs(3);
    /// What the issue allows past `--io-timeout` for an operation to fail.
    const SLACK: Duration = Duration::from_secs(5);
    const RSS_LIMIT: u64 = 256 << 20;
    const KEY: &str = "persona_sandbox_hostileKEY";

    /// The resident set of a process, from /proc/<pid>/status.
    fn rss(pid: u32) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// The largest RSS of `pid` seen, sampled every 20 ms until dropped.
    struct RssWatch {
        peak: Arc<AtomicU64>,
        stop: Arc<AtomicBool>,
    }

    impl RssWatch {
        fn start(pid: u32) -> RssWatch {
            let (peak, stop) = (
                Arc::new(AtomicU64::new(0)),
                Arc::new(AtomicBool::new(false)),
            );
            let (p, s) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    match rss(pid) {
                        Some(r) => p.fetch_max(r, Ordering::Relaxed),
                        None => break,
                    };
                    // The sampling interval of the peak.
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
            RssWatch { peak, stop }
        }

        fn peak(&self) -> u64 {
            self.peak.load(Ordering::Relaxed)
        }
    }

    impl Drop for RssWatch {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    fn mount_args(mp: &Path, cache: &Path, server: &HostileServer) -> Vec<String> {
        [
            "mount",
            mp.to_str().unwrap(),
            "--api-base",
            &server.api_base(),
            "--cache-dir",
            cache.to_str().unwrap(),
            "--prefetch",
            "false",
            "--io-timeout",
            &format!("{}s", IO_TIMEOUT.as_secs()),
            "--request-timeout",
            "30s",
        ]
        .map(String::from)
        .to_vec()
    }

    fn errno_after(
        what: &str,
        f: impl FnOnce() -> std::io::Result<Vec<u8>> + Send + 'static,
    ) -> (i32, Duration) {
        let start = Instant::now();
        let r = bounded(what, Duration::from_secs(120), f);
        let took = start.elapsed();
        match r {
            Ok(b) => panic!("{what}: read {} bytes", b.len()),
            Err(e) => (e.raw_os_error().unwrap_or(0), took),
        }
    }

    /// Everything else a user could ask of the mount, answered while an attack runs.
    fn others_answer(inquiries: &Path) {
        for id in GOOD {
            let dir = inquiries.join(id);
            let json = std::fs::read(dir.join("inquiry.json")).unwrap();
            assert!(!json.is_empty());
            let file = std::fs::read(dir.join("document").join(GOOD_FILE)).unwrap();
            assert_eq!(file.len(), GOOD_FILE_SIZE, "{id}");
        }
        assert!(std::fs::metadata(inquiries).unwrap().is_dir());
    }

    /// Run `attack` on a thread; meanwhile the good inquiries must keep answering, each
    /// round in well under the attack's time.
    fn under_attack<T: std::fmt::Debug + Send + 'static>(
        what: &str,
        inquiries: &Path,
        attack: impl FnOnce() -> (T, Duration) + Send + 'static,
    ) -> (T, Duration) {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(attack());
        });
        let mut rounds = 0;
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(result) => {
                    eprintln!(
                        "{what}: {:?} after {:?}; {rounds} rounds of other reads meanwhile",
                        result.0, result.1
                    );
                    return result;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let start = Instant::now();
                    let dir = inquiries.to_path_buf();
                    bounded(
                        "the good inquiries during an attack",
                        Duration::from_secs(10),
                        move || others_answer(&dir),
                    );
                    assert!(
                        start.elapsed() < Duration::from_secs(5),
                        "{what}: others slowed to {:?}",
                        start.elapsed()
                    );
                    rounds += 1;
                }
                Err(e) => panic!("{what}: {e}"),
            }
        }
    }

    /// A daemon mounted over a fresh hostile server, its RSS watched, the good inquiries
    /// answering; `extra` mount arguments after the usual ones.
    struct Attacked {
        _rt: tokio::runtime::Runtime,
        server: HostileServer,
        _mp: tempfile::TempDir,
        _cache: tempfile::TempDir,
        daemon: Daemon,
        watch: RssWatch,
        inquiries: PathBuf,
    }

    fn attacked(extra: &[&str]) -> Attacked {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = HostileServer::start(&rt);
        let (mp, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut args = mount_args(mp.path(), cache.path(), &server);
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let daemon = Daemon::spawn(mp.path(), &args, &[("PERSONA_API_KEY", KEY)]);
        let watch = RssWatch::start(daemon.pid());
        let inquiries = mp.path().join("inquiries");
        others_answer(&inquiries);
        Attacked {
            _rt: rt,
            server,
            _mp: mp,
            _cache: cache,
            daemon,
            watch,
            inquiries,
        }
    }

    #[test]
    fn each_attack_fails_its_own_path_in_time_and_the_rest_keeps_answering() {
        if !fuse_available() {
            return;
        }
        let Attacked {
            _rt,
            server,
            _mp,
            _cache,
            daemon,
            watch,
            inquiries,
        } = attacked(&[]);
        let before = rss(daemon.pid()).unwrap();

        // A same-host redirect: followed, with no Referer and no token of the first URL.
        let p = inquiries
            .join(REDIRECT)
            .join("document")
            .join(REDIRECT_FILE);
        assert_eq!(std::fs::read(p).unwrap().len(), GOOD_FILE_SIZE);
        let heads = server.heads.lock().clone();
        let at = heads
            .iter()
            .position(|h| h.starts_with("GET /files/redirect.jpg"));
        let after: Vec<String> = heads[at.expect("the redirect was asked for") + 1..]
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        assert!(
            after.iter().any(|h| h.starts_with("get /files/good.jpg")),
            "{after:?}"
        );
        for h in &after {
            assert!(!h.contains("referer"), "a Referer after the redirect: {h}");
            assert!(
                !h.contains(&SECRET_TOKEN.to_ascii_lowercase()),
                "the signed URL went on in a header: {h}"
            );
        }

        // 2 GB bodies, chunked or announced: EIO within 10 s, the RSS bounded.
        for id in [HUGE_BODY, HUGE_LENGTH] {
            let p = inquiries.join(id).join("inquiry.json");
            let (errno, took) = under_attack(id, &inquiries, move || {
                errno_after(id, move || std::fs::read(p))
            });
            assert_eq!(errno, libc::EIO, "{id}");
            assert!(took < Duration::from_secs(10), "{id}: EIO after {took:?}");
        }
        // Waits: no headers, a trickle.
        for id in [NO_HEADERS, TRICKLE] {
            let p = inquiries.join(id).join("inquiry.json");
            let (errno, took) = under_attack(id, &inquiries, move || {
                errno_after(id, move || std::fs::read(p))
            });
            assert_eq!(errno, libc::EIO, "{id}");
            assert!(took < IO_TIMEOUT + SLACK, "{id}: EIO after {took:?}");
        }
        // A trickling file: EIO within the timeout, like `md5sum` would see it.
        let p = inquiries
            .join(TRICKLE_FILE)
            .join("document")
            .join(TRICKLE_FILE_NAME);
        let (errno, took) = under_attack("a trickling file", &inquiries, move || {
            errno_after("a trickling file", move || std::fs::read(p))
        });
        assert_eq!(errno, libc::EIO);
        assert!(
            took < IO_TIMEOUT + SLACK,
            "a trickling file: EIO after {took:?}"
        );

        // An 8 MiB string attribute: cut, the inquiry and its file served.
        let dir = inquiries.join(LONG_STRING);
        let json = std::fs::read(dir.join("inquiry.json")).unwrap();
        assert!(
            json.len() < 64 * 1024,
            "inquiry.json of {} bytes",
            json.len()
        );
        let text = String::from_utf8(json).unwrap();
        assert!(text.contains("cut by personafs"), "{text}");
        let file = std::fs::read(dir.join("document").join("doc_Long-front-photo.jpg")).unwrap();
        assert_eq!(file.len(), GOOD_FILE_SIZE);

        // Last, as it also says no request is left this minute: a 429 with a huge reset.
        let p = inquiries.join(RATE_LIMITED).join("inquiry.json");
        let (errno, took) = under_attack(RATE_LIMITED, &inquiries, move || {
            errno_after(RATE_LIMITED, move || std::fs::read(p))
        });
        assert_eq!(errno, libc::EIO);
        assert!(took < IO_TIMEOUT + SLACK, "a 429: EIO after {took:?}");

        let peak = watch.peak();
        eprintln!(
            "daemon RSS: {} MiB before the attacks, peak {} MiB",
            before >> 20,
            peak >> 20
        );
        assert!(peak < RSS_LIMIT, "daemon RSS reached {} MiB", peak >> 20);
        others_answer(&inquiries);
        drop(watch);
        eprintln!("{}", daemon.stop());
    }

    /// Known gap: a body under the cap made of tiny objects costs ~40 times its size once
    /// parsed. The cap bounds it; this measures it and guards against it growing.
    #[test]
    fn the_most_objects_a_body_under_the_cap_holds_are_served_in_bounded_memory() {
        if !fuse_available() {
            return;
        }
        let Attacked {
            _rt,
            server: _server,
            _mp,
            _cache,
            daemon,
            watch,
            inquiries,
        } = attacked(&[]);
        let p = inquiries.join(MANY_OBJECTS).join("inquiry.json");
        let (json, took) = under_attack(MANY_OBJECTS, &inquiries, move || {
            let start = Instant::now();
            (std::fs::metadata(p).map(|m| m.len()), start.elapsed())
        });
        let peak = watch.peak();
        eprintln!(
            "{MANY_OBJECTS} ({} MiB): inquiry.json {json:?} after {took:?}, RSS peak {} MiB",
            MANY_BYTES >> 20,
            peak >> 20
        );
        assert!(json.is_ok(), "{json:?}");
        assert!(peak < 1 << 30, "daemon RSS reached {} MiB", peak >> 20);
        others_answer(&inquiries);
        drop(watch);
        daemon.stop();
    }

    #[test]
    fn a_huge_list_page_fails_its_refresh_not_the_mount() {
        if !fuse_available() {
            return;
        }
        let Attacked {
            _rt,
            server,
            _mp,
            _cache,
            daemon,
            watch,
            inquiries,
        } = attacked(&["--metadata-ttl", "1s"]);
        // The listing is taken again once its TTL is over: now from a 2 GB page. The mount
        // answers in time — with the listing it has, or EIO — and the refresh fails at the cap.
        server.set_list_mode(ListMode::Huge);
        // Real time: past the daemon's 1 s metadata TTL, so the next look lists again.
        std::thread::sleep(Duration::from_millis(1500));
        for round in 0..3 {
            let dir = inquiries.clone();
            let (result, took) = under_attack("a 2 GB list page", &inquiries, move || {
                let start = Instant::now();
                let r = bounded("listing", Duration::from_secs(120), move || {
                    std::fs::read_dir(&dir)
                        .and_then(|d| d.collect::<std::io::Result<Vec<_>>>())
                        .map(|entries| entries.len())
                });
                (r.map_err(|e| e.raw_os_error()), start.elapsed())
            });
            eprintln!("round {round}: {result:?} after {took:?}");
            assert!(
                took < Duration::from_secs(10),
                "the listing answered after {took:?}"
            );
            if let Err(errno) = result {
                assert_eq!(errno, Some(libc::EIO));
            }
            // Real time: the TTL again, for the next round's listing.
            std::thread::sleep(Duration::from_millis(1500));
        }
        server.set_list_mode(ListMode::Normal);
        others_answer(&inquiries);
        let peak = watch.peak();
        eprintln!("daemon RSS peak {} MiB", peak >> 20);
        assert!(peak < RSS_LIMIT, "daemon RSS reached {} MiB", peak >> 20);
        drop(watch);
        let log = daemon.stop();
        assert!(
            log.contains("list inquiries: the answer is larger than the 16 MiB limit"),
            "{log}"
        );
    }

    #[test]
    fn a_silent_api_fails_the_mount_within_a_minute_whatever_the_io_timeout() {
        use personafs_client::{ApiKey, ClientConfig};
        let mut c = ClientConfig::new("http://127.0.0.1:9/api/v1", ApiKey::new("k"));
        c.operation_timeout = Duration::from_secs(3600);
        let check = personafs::mount::startup_check_config(&c).operation_timeout;
        assert_eq!(check, personafs::mount::STARTUP_CHECK_LIMIT);
        // The launcher waits a little longer than the check, and stops its child in time.
        let ready = personafs::daemon::READY_LIMIT;
        assert!(check < ready && ready + Duration::from_secs(5) < Duration::from_secs(60));
    }

    /// Processes whose command line names `needle` (a test's own mountpoint).
    fn processes_naming(needle: &str) -> Vec<u32> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                if cmd.contains(needle) && cmd.contains("mount") {
                    out.push(pid);
                }
            }
        }
        out
    }

    #[test]
    fn mount_against_a_hostile_api_fails_in_time_leaving_nothing_running() {
        if !fuse_available() {
            return;
        }
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = HostileServer::start(&rt);
        for (mode, limit, says) in [
            (ListMode::Silent, IO_TIMEOUT + SLACK, "deadline"),
            (ListMode::Trickle, IO_TIMEOUT + SLACK, "deadline"),
            (ListMode::Limited, IO_TIMEOUT + SLACK, "429"),
            (
                ListMode::Huge,
                Duration::from_secs(10),
                "--max-response-size",
            ),
        ] {
            server.set_list_mode(mode);
            let (mp, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let mp_path = mp.path().to_str().unwrap().to_string();
            let start = Instant::now();
            // In the background (the default): the launcher waits for its child.
            let child = Command::new(BIN)
                .args(mount_args(mp.path(), cache.path(), &server))
                .env("PERSONA_API_KEY", KEY)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let watch = RssWatch::start(child.id());
            let out = bounded("personafs mount", Duration::from_secs(120), move || {
                child.wait_with_output().unwrap()
            });
            let took = start.elapsed();
            let stderr = String::from_utf8_lossy(&out.stderr);
            eprintln!(
                "{mode:?}: exit {:?} after {took:?}: {}",
                out.status.code(),
                stderr.trim()
            );
            assert!(!out.status.success(), "{mode:?}: mounted");
            assert!(took < limit, "{mode:?}: {took:?}");
            assert_eq!(
                stderr.trim().lines().count(),
                1,
                "{mode:?}: one clear line: {stderr}"
            );
            assert!(stderr.contains(says), "{mode:?}: {stderr}");
            assert!(!stderr.contains(KEY));
            assert!(
                watch.peak() < RSS_LIMIT,
                "{mode:?}: {} MiB",
                watch.peak() >> 20
            );
            binary::wait_until("no personafs process left", Duration::from_secs(10), || {
                processes_naming(&mp_path).is_empty()
            });
            assert!(!binary::is_mounted(mp.path()));
        }
    }

    #[test]
    fn a_mount_whose_launcher_dies_leaves_no_daemon() {
        if !fuse_available() {
            return;
        }
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = HostileServer::start(&rt);
        server.set_list_mode(ListMode::Silent);
        let (mp, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mp_path: PathBuf = mp.path().to_path_buf();
        let needle = mp_path.to_str().unwrap().to_string();
        let mut args = mount_args(mp.path(), cache.path(), &server);
        // The check would wait long: the launcher is killed before it ends.
        let at = args.iter().position(|a| a == "--io-timeout").unwrap();
        args[at + 1] = "60s".into();
        let mut launcher = Command::new(BIN)
            .args(&args)
            .env("PERSONA_API_KEY", KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        binary::wait_until("the background child", Duration::from_secs(20), || {
            processes_naming(&needle).len() >= 2
        });
        launcher.kill().unwrap();
        launcher.wait().unwrap();
        binary::wait_until(
            "the child to go with its launcher",
            Duration::from_secs(10),
            || processes_naming(&needle).is_empty(),
        );
        assert!(!binary::is_mounted(&mp_path));
    }
}

// ---------------------------------------------------------------------------------------
// Fuzzing the response parser, the naming and the redaction (proptest).

mod fuzz {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};
    use std::collections::HashSet;
    use std::time::SystemTime;

    use personafs_client::files::sanitize;
    use personafs_client::model::{parse_inquiry, parse_list_page};
    use personafs_client::{RetrievedInquiry, Section, files_of, inquiry_json};

    /// Strings made to hurt: path tricks, control characters, long runs, odd unicode.
    fn nasty() -> impl Strategy<Value = String> {
        prop_oneof![
            ".*",
            "[./\\x00\\n\\r\\t\\\\-]{0,12}",
            "[a-z.]{0,4}(\\.\\./){0,4}[a-z]{0,4}",
            "[\u{202e}\u{2028}\u{feff}\u{301}é🙂x]{0,40}",
            "x{200,600}",
            Just(String::new()),
            Just(".".to_string()),
            Just("..".to_string()),
        ]
    }

    /// A token, marked so a leak is easy to find.
    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_-]{6,24}".prop_map(|t| format!("TOKx{t}"))
    }

    fn url() -> impl Strategy<Value = String> {
        (nasty(), token(), 0..5u8).prop_map(|(name, tok, form)| {
            let seg =
                percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC);
            match form {
                0 => format!("https://files.withpersona.com/{seg}?access_token={tok}"),
                1 => format!("https://withpersona.com/api/v1/files/{tok}/{seg}"),
                2 => format!("http://127.0.0.1:9/{seg}?access_token={tok}&x=1"),
                3 => format!("https://files.withpersona.com/{seg}?access_token={tok}#frag"),
                _ => name,
            }
        })
    }

    fn size() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[0-9 a-z-]{0,8}".prop_map(Value::from),
            Just(Value::Null),
        ]
    }

    fn file_object() -> impl Strategy<Value = Value> {
        (nasty(), url(), size())
            .prop_map(|(f, u, s)| json!({"filename": f, "url": u, "byte-size": s}))
    }

    fn object() -> impl Strategy<Value = Value> {
        let kinds = prop::sample::select(vec![
            "document/generic",
            "document/government-id",
            "selfie/profile-and-center",
            "verification/government-id",
            "verification/selfie",
            "verification/document",
            "report/watchlist",
        ]);
        let attrs = (
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "front-photo",
                        "back-photo",
                        "selfie-photo",
                        "center-photo",
                        "video",
                    ]),
                    file_object(),
                ),
                0..4,
            ),
            prop::collection::vec(url(), 0..3),
            prop::collection::vec(file_object(), 0..6),
            prop::collection::vec((nasty(), url(), url()), 0..3),
        );
        ("[a-z_./]{1,10}|.{1,300}", kinds, attrs).prop_map(
            |(id, kind, (photos, bare, files, pages))| {
                let mut a = Map::new();
                for (k, v) in photos {
                    a.insert(k.to_string(), v);
                }
                for (i, u) in bare.into_iter().enumerate() {
                    let key = ["front-photo-url", "selfie-photo-url", "video-url"][i % 3];
                    a.insert(key.to_string(), Value::from(u));
                }
                a.insert("files".into(), Value::from(files.clone()));
                a.insert("files-normalized".into(), Value::from(files));
                let pages: Vec<Value> = pages
                    .into_iter()
                    .map(|(p, u, n)| json!({"page": p, "url": u, "normalized-url": n}))
                    .collect();
                a.insert("photo-urls".into(), Value::from(pages));
                json!({"type": kind, "id": id, "attributes": a})
            },
        )
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            nasty().prop_map(Value::from),
        ];
        let key = prop_oneof![
            prop::sample::select(vec![
                "data",
                "included",
                "attributes",
                "id",
                "type",
                "links",
                "next",
                "files",
                "url",
                "filename",
                "byte-size",
                "redacted-at",
                "created-at",
            ])
            .prop_map(str::to_string),
            ".{0,6}",
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn check_names(inquiry: &RetrievedInquiry) {
        let files = files_of(inquiry);
        for section in [Section::Document, Section::Selfie] {
            let mut seen = HashSet::new();
            for f in files.iter().filter(|f| f.section == section) {
                let n = &f.name;
                assert!(!n.is_empty() && n.len() <= 255, "length {}: {n:?}", n.len());
                assert!(!n.contains('/') && !n.contains('\0'), "{n:?}");
                assert!(!n.chars().any(char::is_control), "{n:?}");
                assert!(n != "." && n != "..");
                assert!(seen.insert(n.clone()), "{n:?} twice in {section:?}");
            }
        }
    }

    proptest! {
        // 256 cases each by default; PROPTEST_CASES raises it (scripts/soak.sh).
        #[test]
        fn parsers_never_panic_on_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_inquiry("fuzz", &body, SystemTime::UNIX_EPOCH);
            let _ = parse_list_page("fuzz", &body);
        }

        #[test]
        fn parsers_never_panic_on_any_json(v in any_json()) {
            let body = v.to_string();
            if let Ok(inquiry) = parse_inquiry("fuzz", body.as_bytes(), SystemTime::UNIX_EPOCH) {
                check_names(&inquiry);
                inquiry_json(&inquiry);
            }
            let _ = parse_list_page("fuzz", body.as_bytes());
        }

        #[test]
        fn names_are_valid_and_unique_and_no_token_reaches_inquiry_json(
            objects in prop::collection::vec(object(), 0..8),
            redacted in any::<bool>(),
        ) {
            let mut data = json!({"type": "inquiry", "id": "inq_fuzz", "attributes": {
                "status": "completed", "created-at": "2026-01-01T00:00:00.000Z"}});
            if redacted {
                data["attributes"]["redacted-at"] = json!("2026-01-02T00:00:00.000Z");
            }
            let body = json!({"data": data, "included": objects}).to_string();
            let inquiry = parse_inquiry("fuzz", body.as_bytes(), SystemTime::UNIX_EPOCH).unwrap();
            check_names(&inquiry);
            let shown = String::from_utf8(inquiry_json(&inquiry)).unwrap();
            prop_assert!(!shown.contains("TOKx"), "a token reached inquiry.json");
            if redacted {
                prop_assert!(files_of(&inquiry).is_empty());
            }
        }

        #[test]
        fn list_pages_with_any_links_never_panic(
            ids in prop::collection::vec("inq_[a-z0-9]{1,8}|.{1,20}", 0..5),
            next in prop_oneof![Just(Value::Null), nasty().prop_map(Value::from),
                "/api/v1/inquiries\\?page%5Bafter%5D=.{0,10}".prop_map(Value::from),
                any::<i64>().prop_map(Value::from)],
        ) {
            let data: Vec<Value> = ids.iter().map(|i| json!({"type": "inquiry", "id": i})).collect();
            let body = json!({"data": data, "links": {"next": next}}).to_string();
            if let Ok(page) = parse_list_page("fuzz", body.as_bytes()) {
                prop_assert_eq!(page.inquiries.len(), ids.len());
                if ids.is_empty() {
                    prop_assert!(page.next_after.is_none(), "an empty page must end the listing");
                }
            }
        }

        #[test]
        fn sanitize_leaves_no_separator_or_control(s in ".*|[/\\x00-\\x1f\\x7f]{0,20}") {
            let out = sanitize(&s);
            prop_assert!(!out.contains('/') && !out.chars().any(char::is_control));
            prop_assert_eq!(out.chars().count(), s.chars().count());
        }
    }
}
