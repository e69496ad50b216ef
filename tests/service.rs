//! Running as a service: `personafs status` against a live mount, a scrape of `/metrics`
//! during a copy, and the access audit log after reads by two different programs (and its
//! reopening on SIGHUP).

mod binary;
mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use binary::{BIN, Daemon, wait_until};
use common::{free_port, fuse_available, walk};

fn scrape(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(
        out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"),
        "{out}"
    );
    out
}

/// The value of one sample line, e.g. `personafs_opens_total`.
fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
}

fn status_json(mp: &Path) -> serde_json::Value {
    let out = common::stdout_of(Command::new(BIN).args(["status", mp.to_str().unwrap(), "--json"]));
    serde_json::from_str(&out).unwrap()
}

fn files(mp: &Path) -> Vec<PathBuf> {
    let root = mp.join("inquiries");
    let mut files: Vec<PathBuf> = walk(&root)
        .into_iter()
        .map(|rel| root.join(rel))
        .filter(|p| p.is_file() && p.file_name().unwrap() != "inquiry.json")
        .collect();
    files.sort();
    files
}

fn audit_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn status_metrics_and_audit_of_a_live_mount() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let mp = work.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let mp = std::fs::canonicalize(&mp).unwrap();
    let audit = work.path().join("audit.log");
    let port = free_port();
    let cache = work.path().join("cache");
    let d = Daemon::spawn(
        &mp,
        &[
            "demo",
            mp.to_str().unwrap(),
            "--inquiries",
            "4",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--audit-log",
            audit.to_str().unwrap(),
            "--metrics-listen",
            &port.to_string(),
            "--prefetch",
            "false",
        ],
        &[],
    );

    // Two programs read two files.
    let files = files(&mp);
    assert!(files.len() >= 3, "{files:?}");
    let cat = Command::new("cat").arg(&files[0]).output().unwrap();
    assert!(cat.status.success());
    assert_eq!(cat.stdout, std::fs::read(&files[0]).unwrap());
    let head = Command::new("head")
        .args(["-c", "100"])
        .arg(&files[1])
        .output()
        .unwrap();
    assert!(head.status.success());
    assert_eq!(head.stdout.len(), 100);

    // A scrape while a copy runs, and one after it.
    let dest = work.path().join("copy");
    let mut cp = Command::new("cp")
        .arg("-r")
        .arg(mp.join("inquiries"))
        .arg(&dest)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let during = scrape(port);
    assert!(
        sample(&during, "personafs_api_calls_total{kind=\"list\"}") >= 1,
        "{during}"
    );
    assert!(cp.wait().unwrap().success());
    let after = scrape(port);
    assert!(sample(&after, "personafs_api_calls_total{kind=\"retrieve\"}") >= 4);
    assert!(sample(&after, "personafs_downloads_done_total") >= files.len() as u64);
    assert!(sample(&after, "personafs_downloaded_bytes_total") > 0);
    assert!(sample(&after, "personafs_opens_total") >= files.len() as u64 + 2);
    assert!(sample(&after, "personafs_cache_hits_total") >= 1);
    assert_eq!(sample(&after, "personafs_online"), 1);
    // The budget: half of the 300 the mock reports, 30 % kept in reserve.
    assert_eq!(sample(&after, "personafs_budget_share_percent"), 50);
    assert_eq!(sample(&after, "personafs_budget_reserve_percent"), 30);
    assert_eq!(sample(&after, "personafs_budget_calls_allowed"), 150);
    assert!(sample(&after, "personafs_budget_calls_in_window") >= 4);
    assert!(after.contains("# EOF"));
    // No inquiry id, file name, URL or token in any label or value.
    for secret in ["inq_", "doc_", "ver_", "http://", "access_token", ".jpg"] {
        assert!(!after.contains(secret), "{secret} in /metrics:\n{after}");
    }

    // `personafs status` of this mount, and the list of every mount of ours. Downloads are
    // committed to the cache just after their last byte reaches the reader.
    wait_until("every file cached", Duration::from_secs(30), || {
        status_json(&mp)["cache_files"].as_u64().unwrap() >= files.len() as u64
    });
    let s = status_json(&mp);
    assert_eq!(s["mountpoint"], mp.to_str().unwrap());
    assert_eq!(s["pid"], d.pid());
    assert_eq!(s["online"], true);
    assert!(s["api_calls"]["retrieve"].as_u64().unwrap() >= 4, "{s}");
    assert!(s["downloads_done"].as_u64().unwrap() >= files.len() as u64);
    assert!(s["bytes_downloaded"].as_u64().unwrap() > 0);
    assert!(
        s["cache_files"].as_u64().unwrap() >= files.len() as u64,
        "{s} {}",
        files.len()
    );
    assert!(s["cache_max_bytes"].as_u64().unwrap() > 0);
    // Half of the mock's 300 a minute, the default share.
    assert_eq!(s["rate_limit_per_minute"], 150);
    assert_eq!(s["budget"]["share_percent"], 50);
    // The server's own count of requests left (the mock answers RateLimit-* headers).
    let left = s["rate_budget_left"].as_u64().unwrap();
    assert!(left > 0 && left < 300, "rate_budget_left {left}");
    assert!(s["metadata_entries"].as_u64().unwrap() >= 4);
    let all = Command::new(BIN).arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&all.stdout);
    assert!(all.status.success());
    assert!(text.contains(mp.to_str().unwrap()), "{text}");
    assert!(text.contains("online"), "{text}");
    let socket = personafs::status::socket_path(&mp);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "status socket mode {mode:o}");

    // The audit log: private, one line per open, with the program that opened.
    let mode = std::fs::metadata(&audit).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let lines = audit_lines(&audit);
    let rel = |p: &Path| p.strip_prefix(&mp).unwrap().to_str().unwrap().to_string();
    let by = |process: &str, file: &Path| {
        lines
            .iter()
            .find(|l| l["process"] == process && l["path"] == rel(file).as_str())
            .unwrap_or_else(|| panic!("no audit line for {process} {file:?}: {lines:#?}"))
            .clone()
    };
    let c = by("cat", &files[0]);
    assert_eq!(c["result"], "ok");
    assert_eq!(c["source"], "network");
    assert_eq!(c["uid"], nix_uid());
    assert!(c["pid"].as_u64().unwrap() > 0);
    let inquiry = rel(&files[0]).split('/').nth(1).unwrap().to_string();
    assert_eq!(c["inquiry_id"], inquiry.as_str());
    let object = files[0].file_name().unwrap().to_str().unwrap();
    assert!(object.starts_with(c["object_id"].as_str().unwrap()));
    assert_eq!(c["size"], std::fs::metadata(&files[0]).unwrap().len());
    let h = by("head", &files[1]);
    assert_eq!(h["result"], "ok");
    // cp read every file; the first one it opened was cached by cat already.
    let cp_first = by("cp", &files[0]);
    assert_eq!(cp_first["source"], "cache");
    let raw = std::fs::read_to_string(&audit).unwrap();
    for secret in ["http://", "access_token", "REDACTED"] {
        assert!(!raw.contains(secret), "{secret} in the audit log");
    }

    // Rotation: move the log away, SIGHUP, and the next open goes to a new file; the mount
    // stays (SIGHUP reopens the log rather than unmounting).
    let rotated = work.path().join("audit.log.1");
    std::fs::rename(&audit, &rotated).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(d.pid() as i32, libc::SIGHUP) };
    wait_until("a reopened audit log", Duration::from_secs(30), || {
        let _ = Command::new("cat").arg(&files[2]).output();
        audit.exists()
    });
    assert!(binary::is_mounted(&mp), "SIGHUP unmounted the mount");
    let new = audit_lines(&audit);
    assert!(new.iter().any(|l| l["path"] == rel(&files[2]).as_str()));
    d.stop();
    // The status socket goes with the mount.
    assert!(!socket.exists());
}

fn nix_uid() -> u32 {
    // SAFETY: getuid cannot fail and touches no memory.
    unsafe { libc::getuid() }
}
