//! Changes on real mounts over the mock (SEMANTICS.md, "Changes: the events feed and
//! webhooks"): with `--watch-events`, a redaction made at the mock deletes the inquiry's
//! cached files and empties its directories, and a new inquiry shows in `inquiries/` long
//! before the metadata TTL; a remount resumes from the stored cursor. With `--webhook-listen`,
//! the mock's signed webhook applies a redaction; a webhook with a wrong signature is refused
//! with 401 and changes nothing. Waits here are hang detectors; the latencies are measured
//! by `scripts/bench.sh` (`wl_changes`).

mod binary;
mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use binary::{Daemon, read_tree, wait_until};
use common::{free_port, fuse_available, unlimited};
use personafs_mock::{MockConfig, MockServer};

const LIMIT: Duration = Duration::from_secs(30);
const SECRET: &str = "whsec_test_0123456789";

fn mock() -> MockServer {
    MockServer::start(MockConfig {
        webhook_secrets: vec![SECRET.to_string()],
        ..unlimited(8, 15)
    })
    .unwrap()
}

/// Arguments of a mount whose metadata TTL is an hour: what changes sooner, a change did.
fn mount_args(
    mp: &Path,
    cache: &Path,
    log: &Path,
    mock: &MockServer,
    extra: &[&str],
) -> Vec<String> {
    let log = log.to_str().unwrap();
    let mut args = binary::mock_mount_args(
        mock,
        mp,
        cache,
        &[
            "--log-file",
            log,
            "--metadata-ttl",
            "1h",
            "--prefetch=false",
            "--cache-min-free",
            "0",
        ],
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn log_text(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Cache entries (`data/*.meta`) that belong to inquiry `id`.
fn cached_files(cache: &Path, id: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(cache.join("data")) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "meta"))
        .filter(|e| {
            std::fs::read_to_string(e.path()).is_ok_and(|text| text.contains(&format!("\"{id}\"")))
        })
        .count()
}

/// Inquiries of the mount that show files and are not redacted, in listing order.
fn with_files(inquiries: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(inquiries)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|id| {
            std::fs::read_dir(inquiries.join(id).join("document"))
                .is_ok_and(|mut d| d.next().is_some())
        })
        .collect();
    ids.sort();
    ids
}

/// Read every file of an inquiry (so the cache holds them), wait until they are cached.
fn copy_inquiry(inquiries: &Path, cache: &Path, id: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let files = read_tree(&inquiries.join(id));
    let n = files
        .iter()
        .filter(|(p, _)| !p.ends_with("inquiry.json"))
        .count();
    assert!(n > 0, "{id} has files");
    wait_until("the files cached", LIMIT, || cached_files(cache, id) == n);
    files
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The redacted inquiry: no cached file, empty directories (or gone), no file readable.
fn shows_redacted(inquiries: &Path, cache: &Path, id: &str, files: &[(PathBuf, Vec<u8>)]) -> bool {
    let dir = inquiries.join(id);
    cached_files(cache, id) == 0
        && names(&dir.join("document")).is_empty()
        && names(&dir.join("selfie")).is_empty()
        && files
            .iter()
            .filter(|(p, _)| !p.ends_with("inquiry.json"))
            .all(|(p, _)| std::fs::read(dir.join(p)).is_err())
}

/// A mount with `--watch-events 1s` (and a metadata TTL of an hour) over `mock`, once its
/// feed has started; its log goes to `work/<log_name>`.
struct FeedMount {
    mp: tempfile::TempDir,
    work: tempfile::TempDir,
    cache: PathBuf,
    log: PathBuf,
    inquiries: PathBuf,
    daemon: Daemon,
}

fn feed_mount(mock: &MockServer, log_name: &str) -> FeedMount {
    let mp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let log = work.path().join(log_name);
    let args = mount_args(mp.path(), &cache, &log, mock, &["--watch-events", "1s"]);
    let daemon = Daemon::spawn_for(mock, mp.path(), &args);
    wait_until("the feed started", LIMIT, || {
        log_text(&log).contains("events feed started")
    });
    FeedMount {
        inquiries: mp.path().join("inquiries"),
        mp,
        work,
        cache,
        log,
        daemon,
    }
}

#[test]
fn the_feed_applies_a_redaction_and_a_new_inquiry_and_a_remount_resumes() {
    if !fuse_available() {
        return;
    }
    let mock = mock();
    let FeedMount {
        mp,
        work,
        cache,
        log,
        inquiries,
        daemon: d,
    } = feed_mount(&mock, "one.log");
    let ids = with_files(&inquiries);
    assert!(ids.len() >= 3, "{ids:?}");
    let (a, b) = (&ids[0], &ids[1]);
    let files_a = copy_inquiry(&inquiries, &cache, a);
    let files_b = copy_inquiry(&inquiries, &cache, b);

    // A redaction at Persona: gone from the cache and the tree, long before the TTL.
    assert!(mock.redact(a));
    wait_until("the redaction applied", LIMIT, || {
        shows_redacted(&inquiries, &cache, a, &files_a)
    });
    assert_eq!(
        read_tree(&inquiries.join(b)),
        files_b,
        "the other inquiry is untouched"
    );

    // A new inquiry shows in inquiries/ without waiting for the hour (the listing is taken
    // again first, so only the feed can make it stale).
    let listed = names(&inquiries);
    assert!(listed.contains(a) && listed.contains(b));
    let new = mock.add_inquiry("completed", true).unwrap();
    wait_until("the new inquiry listed", LIMIT, || {
        names(&inquiries).contains(&new)
    });
    let stderr = d.stop();
    let one = log_text(&log) + &stderr;
    assert!(one.contains("redaction applied"), "{one}");
    assert!(!one.contains(&mock.api_key()), "no key in the log");

    // Unmounted: another redaction. The remount resumes from the stored cursor: the feed
    // applies it (not only the listing), and does not start over.
    assert!(mock.redact(b));
    let log2 = work.path().join("two.log");
    let args = mount_args(mp.path(), &cache, &log2, &mock, &["--watch-events", "1s"]);
    let d = Daemon::spawn_for(&mock, mp.path(), &args);
    wait_until("the missed redaction applied", LIMIT, || {
        log_text(&log2)
            .lines()
            .any(|l| l.contains("redaction applied") && l.contains(b.as_str()))
    });
    wait_until("the missed redaction shows", LIMIT, || {
        shows_redacted(&inquiries, &cache, b, &files_b)
    });
    let two = log_text(&log2) + &d.stop();
    assert!(
        !two.contains("events feed started"),
        "the remount resumed from the stored cursor: {two}"
    );
    assert!(!two.contains("events were missed"), "{two}");
}

#[test]
fn a_new_document_shows_in_a_directory_the_kernel_has_cached() {
    if !fuse_available() {
        return;
    }
    let mock = mock();
    let m = feed_mount(&mock, "personafs.log");
    let id = with_files(&m.inquiries).remove(0);
    let document = m.inquiries.join(&id).join("document");
    // Read twice: the second listing comes from the kernel's directory cache.
    let before = names(&document);
    assert_eq!(names(&document), before);
    let added = mock.add_document(&id, "late_addendum.pdf", 4321).unwrap();
    wait_until("the new document listed", LIMIT, || {
        names(&document).len() == before.len() + 1
    });
    let now = names(&document);
    let new: Vec<&String> = now.iter().filter(|n| !before.contains(n)).collect();
    assert_eq!(new.len(), 1, "{before:?} → {now:?} (added {added})");
    assert_eq!(std::fs::read(document.join(new[0])).unwrap().len(), 4321);
    m.daemon.stop();
}

#[test]
fn after_a_redaction_the_kernel_no_longer_shows_the_files_paths() {
    if !fuse_available() {
        return;
    }
    let mock = mock();
    let m = feed_mount(&mock, "personafs.log");
    let id = with_files(&m.inquiries).remove(0);
    let files = copy_inquiry(&m.inquiries, &m.cache, &id);
    let paths: Vec<PathBuf> = files
        .iter()
        .filter(|(p, _)| !p.ends_with("inquiry.json"))
        .map(|(p, _)| m.inquiries.join(&id).join(p))
        .collect();
    // The kernel holds their names and attributes now (a final inquiry's for a minute).
    for p in &paths {
        assert!(std::fs::metadata(p).is_ok(), "{}", p.display());
    }
    assert!(mock.redact(&id));
    wait_until("the redaction applied", LIMIT, || {
        log_text(&m.log).contains("redaction applied")
    });
    for p in &paths {
        let e = std::fs::metadata(p).expect_err("a redacted file's path still answers stat");
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{}", p.display());
    }
    m.daemon.stop();
}

/// POST `body` to `/` of `port` with these headers; the HTTP status.
fn post(port: u16, headers: &[(&str, &str)], body: &[u8]) -> u16 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn signed_webhooks_apply_a_redaction_and_a_wrong_signature_changes_nothing() {
    if !fuse_available() {
        return;
    }
    let mock = mock();
    let mp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let log = work.path().join("personafs.log");
    let secrets = work.path().join("webhook-secrets");
    std::fs::write(&secrets, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = mount_args(
        mp.path(),
        &cache,
        &log,
        &mock,
        &[
            "--webhook-listen",
            &listen,
            "--webhook-secret-file",
            secrets.to_str().unwrap(),
        ],
    );
    let inquiries = mp.path().join("inquiries");
    let d = Daemon::spawn_for(&mock, mp.path(), &args);
    let ids = with_files(&inquiries);
    let (a, b) = (&ids[0], &ids[1]);
    let files_a = copy_inquiry(&inquiries, &cache, a);
    let files_b = copy_inquiry(&inquiries, &cache, b);

    // A forged redaction of b: well-formed, signed with another secret, or not at all.
    let body = serde_json::json!({"data": {"type": "event", "id": "evt_forged", "attributes": {
        "name": "inquiry.redacted",
        "payload": {"data": {"type": "inquiry", "id": b}}}}})
    .to_string();
    let wrong =
        personafs_client::webhook::sign(&["whsec_wrong".to_string()], now(), body.as_bytes());
    let json = ("Content-Type", "application/json");
    assert_eq!(
        post(
            port,
            &[json, ("Persona-Signature", &wrong)],
            body.as_bytes()
        ),
        401
    );
    assert_eq!(post(port, &[json], body.as_bytes()), 401);
    let stale =
        personafs_client::webhook::sign(&[SECRET.to_string()], now() - 600, body.as_bytes());
    assert_eq!(
        post(
            port,
            &[json, ("Persona-Signature", &stale)],
            body.as_bytes()
        ),
        401
    );
    let good = personafs_client::webhook::sign(&[SECRET.to_string()], now(), body.as_bytes());
    assert_eq!(
        post(
            port,
            &[("Content-Type", "text/plain"), ("Persona-Signature", &good)],
            body.as_bytes()
        ),
        415
    );
    // Real time: that the refused deliveries change nothing has no event to wait for.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        read_tree(&inquiries.join(b)),
        files_b,
        "nothing changed: files readable, byte-identical"
    );
    assert_eq!(cached_files(&cache, b), files_b.len() - 1, "still cached");

    // The mock's own signed delivery of a real redaction.
    let mut runtime = mock.runtime();
    runtime.webhook_url = Some(format!("http://{listen}/"));
    mock.set_runtime(runtime);
    assert!(mock.redact(a));
    wait_until("the webhook's redaction applied", LIMIT, || {
        shows_redacted(&inquiries, &cache, a, &files_a)
    });
    assert!(mock.stats().webhooks_delivered >= 1);
    let text = log_text(&log) + &d.stop();
    assert!(text.contains("webhook refused"), "{text}");
    assert!(
        !text.contains("evt_forged"),
        "bodies are never logged: {text}"
    );
    assert!(!text.contains(SECRET), "secrets are never logged");
}

#[test]
fn a_webhook_listener_needs_a_private_secret_file() {
    if !fuse_available() {
        return;
    }
    let mock = mock();
    let work = tempfile::tempdir().unwrap();
    let mp = work.path().join("mp");
    std::fs::create_dir(&mp).unwrap();
    let secrets = work.path().join("secrets");
    std::fs::write(&secrets, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let run = |extra: &[&str]| {
        let args = mount_args(
            &mp,
            &work.path().join("cache"),
            &work.path().join("log"),
            &mock,
            extra,
        );
        let out = std::process::Command::new(binary::BIN)
            .args(&args)
            .arg("-f")
            .env("PERSONA_API_KEY", mock.api_key())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(&["--webhook-listen", &listen]);
    assert!(!ok && err.contains("--webhook-secret-file"), "{err}");
    let (ok, err) = run(&[
        "--webhook-listen",
        &listen,
        "--webhook-secret-file",
        secrets.to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("too open") && err.contains("chmod 600"),
        "{err}"
    );
    assert!(!err.contains(SECRET), "{err}");
    assert!(!binary::is_mounted(&mp), "nothing mounted");
}

/// The HTTP client's `list_events` over the mock: newest first, `page[before]` gives the
/// events right after a cursor, `page[after]` the older ones, `filter[name]` selects, a cursor
/// the mock no longer keeps is `Error::CursorGone`, and every call is counted as an events
/// call.
#[test]
fn the_client_pages_events_and_names_a_gone_cursor() {
    use personafs_client::telemetry::{ApiCall, CountedApi, Telemetry};
    use personafs_client::{Error, EventsFrom, PersonaApi};
    use std::sync::Arc;

    let mock = mock();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tele = Arc::new(Telemetry::default());
    let api = CountedApi::new(Arc::new(common::client_for(&mock)), tele.clone());
    let ids: Vec<String> = mock.inquiry_ids().into_iter().take(3).collect();
    for id in &ids {
        assert!(mock.redact(id));
    }
    let fresh = mock.add_inquiry("completed", true).unwrap();
    rt.block_on(async {
        let all = api
            .list_events(&[], &EventsFrom::Newest, 100)
            .await
            .unwrap();
        let names: Vec<&str> = all.events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names.first(),
            Some(&"inquiry.completed"),
            "newest first: {names:?}"
        );
        assert_eq!(
            names.iter().filter(|n| **n == "inquiry.redacted").count(),
            3
        );
        assert_eq!(all.events[0].inquiry_id.as_deref(), Some(fresh.as_str()));
        let oldest = all.events.last().unwrap();
        assert_eq!(oldest.inquiry_id.as_deref(), Some(ids[0].as_str()));

        // Right after the oldest: the next two, newest first, and more remain newer.
        let after_oldest = api
            .list_events(&[], &EventsFrom::Before(oldest.id.clone()), 2)
            .await
            .unwrap();
        let got: Vec<_> = after_oldest.events.iter().map(|e| e.id.clone()).collect();
        let n = all.events.len();
        let want: Vec<_> = all.events[n - 3..n - 1]
            .iter()
            .map(|e| e.id.clone())
            .collect();
        assert_eq!(got, want);
        assert!(after_oldest.has_newer);
        let older = api
            .list_events(&[], &EventsFrom::After(all.events[0].id.clone()), 100)
            .await
            .unwrap();
        assert_eq!(older.events.len(), n - 1);

        let redacted = api
            .list_events(&["inquiry.redacted".to_string()], &EventsFrom::Newest, 100)
            .await
            .unwrap();
        assert_eq!(redacted.events.len(), 3);

        let gone = api
            .list_events(&[], &EventsFrom::Before("evt_unknown".into()), 10)
            .await
            .unwrap_err();
        assert!(matches!(gone, Error::CursorGone { .. }), "{gone:?}");
    });
    assert_eq!(tele.api_calls(ApiCall::Events), 5);
    assert_eq!(mock.stats().api_events, 5);
}
