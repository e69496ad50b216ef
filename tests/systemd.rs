//! systemd's notify protocol, driven through a socket of the test's own: `READY=1` only
//! once the mount answers, `STATUS=` lines, `STOPPING=1` when it goes down.

mod binary;
mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use binary::{BIN, Daemon, is_mounted};
use common::fuse_available;

/// The next datagram, or `None` after `limit` (a hang detector, not a timing).
fn next_message(socket: &UnixDatagram, limit: Duration) -> Option<String> {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn notify_ready_after_the_mount_answers_and_stopping_on_unmount() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let mp = work.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let sock_path = work.path().join("notify.sock");
    let socket = UnixDatagram::bind(&sock_path).unwrap();
    let cache = work.path().join("cache");
    let daemon = Daemon::start(
        &mp,
        &[
            "demo",
            mp.to_str().unwrap(),
            "--inquiries",
            "2",
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())],
    );

    let start = Instant::now();
    let mut before_ready = Vec::new();
    let ready = loop {
        assert!(start.elapsed() < Duration::from_secs(60), "no READY=1");
        let Some(message) = next_message(&socket, Duration::from_secs(60)) else {
            panic!("no READY=1; got {before_ready:?}");
        };
        if message.lines().any(|l| l == "READY=1") {
            // At the moment of READY=1 the mount already answers.
            assert!(is_mounted(&mp), "READY=1 before the mount exists");
            assert!(mp.join("inquiries").is_dir(), "READY=1 before it answers");
            break message;
        }
        assert!(
            !message.contains("STOPPING=1"),
            "stopping before ready: {message}"
        );
        before_ready.push(message);
    };
    assert!(ready.contains("STATUS=serving"), "{ready}");
    assert!(
        before_ready.iter().any(|m| m.starts_with("STATUS=")),
        "no STATUS= line before READY=1: {before_ready:?}"
    );

    // SIGTERM, a clean exit, no mount left; the message it sent on the way stays queued.
    daemon.stop();
    let stopping = next_message(&socket, Duration::from_secs(60)).expect("no STOPPING=1");
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping}");
    assert!(stopping.contains("STATUS=SIGTERM"), "{stopping}");
}

#[test]
fn notify_stopping_on_an_external_unmount() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let mp = work.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let sock_path = work.path().join("notify.sock");
    let socket = UnixDatagram::bind(&sock_path).unwrap();
    let cache = work.path().join("cache");
    let mut daemon = Daemon::start(
        &mp,
        &[
            "demo",
            mp.to_str().unwrap(),
            "--inquiries",
            "1",
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())],
    );
    loop {
        let message = next_message(&socket, Duration::from_secs(60)).expect("no READY=1");
        if message.contains("READY=1") {
            break;
        }
    }
    let out = Command::new("umount").arg(&mp).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stopping = next_message(&socket, Duration::from_secs(60)).expect("no STOPPING=1");
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping}");
    assert!(daemon.child.wait().unwrap().success());
}

#[test]
fn background_mount_hands_the_service_over_to_its_child() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let mp = work.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let sock_path = work.path().join("notify.sock");
    let socket = UnixDatagram::bind(&sock_path).unwrap();
    // Without --foreground: the command returns once the mount answers.
    let out = Command::new(BIN)
        .args(["demo", mp.to_str().unwrap(), "--inquiries", "1"])
        .arg("--cache-dir")
        .arg(work.path().join("cache"))
        .env("NOTIFY_SOCKET", &sock_path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut main_pid = None;
    while let Some(message) = next_message(&socket, Duration::from_secs(5)) {
        if let Some(pid) = message.lines().find_map(|l| l.strip_prefix("MAINPID=")) {
            assert!(message.lines().any(|l| l == "READY=1"), "{message}");
            main_pid = Some(pid.parse::<i32>().unwrap());
            break;
        }
    }
    let pid = main_pid.expect("no MAINPID= from the returning parent");
    // That process serves the mount: unmounting ends it.
    assert!(is_mounted(&mp));
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let umount = Command::new("umount").arg(&mp).output().unwrap();
    assert!(umount.status.success(), "{umount:?}");
    binary::wait_until(
        "the background process exits",
        Duration::from_secs(30),
        || {
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z "))
        },
    );
}

/// Started by systemd (JOURNAL_STREAM names its stderr), personafs logs to the journal's
/// socket. A private mount namespace puts the test's own datagram socket at
/// /run/systemd/journal/socket; stderr then stays silent.
#[test]
fn logs_go_to_the_journal_when_journal_stream_names_stderr() {
    use std::os::unix::fs::MetadataExt;
    if !fuse_available() || !std::path::Path::new("/usr/bin/unshare").exists() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path().canonicalize().unwrap();
    let mp = w.join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let journal_path = w.join("journal.sock");
    let journal = UnixDatagram::bind(&journal_path).unwrap();
    let notify_path = w.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let log = w.join("stderr.log");
    let stderr = std::fs::File::create(&log).unwrap();
    let meta = stderr.metadata().unwrap();
    let journal_stream = format!("{}:{}", meta.dev(), meta.ino());
    let script = r#"
set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/journal
touch /run/systemd/journal/socket
mount --bind "$JOURNAL" /run/systemd/journal/socket
exec "$BIN" demo "$MP" --foreground --inquiries 1 --cache-dir "$CACHE"
"#;
    let mut child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("JOURNAL", &journal_path)
        .env("BIN", BIN)
        .env("MP", &mp)
        .env("CACHE", w.join("cache"))
        .env("NOTIFY_SOCKET", &notify_path)
        .env("JOURNAL_STREAM", &journal_stream)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    loop {
        let message = next_message(&notify, Duration::from_secs(60)).expect("no READY=1");
        if message.contains("READY=1") {
            break;
        }
    }
    let mut entries = Vec::new();
    journal
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = vec![0u8; 64 << 10];
    while let Ok(n) = journal.recv(&mut buf) {
        let entry = journal_fields(&buf[..n]);
        let done = entry.get("MESSAGE").is_some_and(|m| m == "mounted");
        entries.push(entry);
        if done {
            break;
        }
    }
    // SAFETY: signalling our own child (sh exec'd personafs, so this is personafs).
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "personafs ended {status:?} after SIGTERM; stderr: {:?}; journal: {entries:?}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let mounted = entries
        .iter()
        .find(|e| e.get("MESSAGE").is_some_and(|m| m == "mounted"))
        .unwrap_or_else(|| panic!("no 'mounted' entry in the journal: {entries:?}"));
    assert_eq!(mounted["SYSLOG_IDENTIFIER"], "personafs", "{mounted:?}");
    assert_eq!(mounted["PRIORITY"], "5", "info is notice: {mounted:?}");
    assert_eq!(
        mounted["F_MOUNTPOINT"],
        mp.display().to_string(),
        "{mounted:?}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("mounted"), "logged to stderr too: {text}");
}

/// The fields of one entry in journald's native protocol: `KEY=VALUE\n`, or
/// `KEY\n<length, 8 bytes little-endian><value>\n` for values that may hold newlines.
fn journal_fields(mut data: &[u8]) -> std::collections::HashMap<String, String> {
    let mut fields = std::collections::HashMap::new();
    while !data.is_empty() {
        let line_end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
        let line = &data[..line_end];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            fields.insert(
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            );
            data = &data[(line_end + 1).min(data.len())..];
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let rest = &data[line_end + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            let value = &rest[8..8 + len];
            fields.insert(key, String::from_utf8_lossy(value).into_owned());
            data = &rest[(8 + len + 1).min(rest.len())..];
        }
    }
    fields
}
