//! systemd's notify protocol, driven through a socket of the test's own: `READY=1` only
//! once the mount answers, `STATUS=` lines, `STOPPING=1` when it goes down.

mod binary;
mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use binary::{BIN, is_mounted};
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
    let mut child = Command::new(BIN)
        .args([
            "demo",
            mp.to_str().unwrap(),
            "--foreground",
            "--inquiries",
            "2",
        ])
        .arg("--cache-dir")
        .arg(work.path().join("cache"))
        .env("NOTIFY_SOCKET", &sock_path)
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

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

    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stopping = next_message(&socket, Duration::from_secs(60)).expect("no STOPPING=1");
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping}");
    assert!(stopping.contains("STATUS=SIGTERM"), "{stopping}");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!is_mounted(&mp));
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
    let mut child = Command::new(BIN)
        .args(["demo", mp.to_str().unwrap(), "-f", "--inquiries", "1"])
        .arg("--cache-dir")
        .arg(work.path().join("cache"))
        .env("NOTIFY_SOCKET", &sock_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
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
    assert!(child.wait().unwrap().success());
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
