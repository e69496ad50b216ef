//! Secrets and access, with the real binary: the API key and every access token stay out of
//! logs (at trace level), errors, `inquiry.json`, the cache's names and the process's
//! argument list; open config and key files are refused; the mount is private unless
//! `--allow-other`.

mod binary;
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use binary::{BIN, Daemon, bounded};
use common::{fuse_available, host_port};
use personafs_mock::{MockConfig, MockServer, RuntimeConfig};

const KEY: &str = "persona_sandbox_Z9sEcReTkEy4uXw7";

fn write_mode(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every file below `dir`, names and contents, as text (lossy), for a leak search.
fn everything_below(dir: &Path) -> String {
    let mut out = String::new();
    for rel in common::walk(dir) {
        out.push_str(&rel.to_string_lossy());
        out.push('\n');
        let p = dir.join(&rel);
        if p.is_file() {
            out.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
            out.push('\n');
        }
    }
    out
}

#[test]
fn key_and_tokens_appear_nowhere_even_at_trace_level() {
    if !fuse_available() {
        return;
    }
    let mut cfg = MockConfig {
        api_key: KEY.into(),
        generate: 20,
        seed: 31,
        ..Default::default()
    };
    // URLs that expire during the run, and failures: the error paths log too.
    cfg.runtime.file_url_lifetime_ms = 1500;
    let mock = MockServer::start(cfg).unwrap();
    let mp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (log, cache) = (work.path().join("trace.log"), work.path().join("cache"));
    let key_file = work.path().join("key");
    write_mode(&key_file, &format!("{KEY}\n"), 0o600);
    let config = work.path().join("personafs.toml");
    write_mode(
        &config,
        &format!("api_key_file = \"{}\"\n", key_file.display()),
        0o600,
    );
    let d = Daemon::spawn(
        mp.path(),
        &[
            "mount",
            mp.path().to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--api-base",
            &mock.api_base(),
            "--file-host",
            &host_port(&mock.files_base()),
            "--cache-dir",
            cache.to_str().unwrap(),
            "--log-level",
            "trace",
            "--log-file",
            log.to_str().unwrap(),
        ],
        &[],
    );
    let pid = d.pid();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();

    let ids = mock.inquiry_ids();
    let inquiries = mp.path().join("inquiries");
    // Half the inquiries, a wait past the URL lifetime, faults, then the rest: every
    // refresh, retry and resume path runs.
    let mut seen = String::new();
    let mut read_all = |id: &str| {
        for rel in common::walk(&inquiries.join(id)) {
            let p = inquiries.join(id).join(&rel);
            if p.is_file()
                && let Ok(b) = std::fs::read(&p)
                && rel.ends_with("inquiry.json")
            {
                seen.push_str(&String::from_utf8_lossy(&b));
            }
        }
    };
    for id in &ids[..4] {
        read_all(id);
    }
    mock.advance_url_clock(Duration::from_millis(1600));
    mock.set_runtime(RuntimeConfig {
        fail_rate: 0.1,
        reset_rate: 0.2,
        truncate_rate: 0.2,
        ..mock.runtime()
    });
    for id in &ids[4..7] {
        read_all(id);
    }
    let _ = std::fs::metadata(inquiries.join("inq_DoesNotExist000000"));
    mock.set_key_revoked(true);
    // The last inquiry: beyond the read-ahead window of the ones read, so never retrieved.
    let e = common::list(&inquiries.join(ids.last().unwrap()).join("document")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
    let stderr = d.stop();

    let tokens = mock.issued_tokens();
    assert!(tokens.len() > 20, "only {} tokens issued", tokens.len());
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.lines().count() > 50, "trace log nearly empty");
    assert!(
        log_text.contains("401"),
        "the refused key was not logged:\n{log_text}"
    );
    let cache_text = everything_below(&cache);
    let places: [(&str, &[u8]); 6] = [
        ("the trace log", log_text.as_bytes()),
        ("stderr", stderr.as_bytes()),
        ("inquiry.json", seen.as_bytes()),
        ("the cache (names and contents)", cache_text.as_bytes()),
        ("the argument list", &cmdline),
        ("the environment", &environ),
    ];
    assert!(!seen.is_empty());
    for (place, text) in places {
        let text = String::from_utf8_lossy(text);
        assert!(!text.contains(KEY), "the API key is in {place}");
        assert!(!text.contains("panicked"), "a panic in {place}");
        for t in &tokens {
            assert!(!text.contains(t.as_str()), "an access token is in {place}");
        }
    }
    // No file name in the cache says whose it is.
    for id in &ids {
        assert!(
            !common::walk(&cache)
                .iter()
                .any(|p| p.to_string_lossy().contains(id.as_str())),
            "{id} names a cache file"
        );
    }
    assert_eq!(
        mock.stats().files_auth_header,
        0,
        "the key went to the files host"
    );
}

#[test]
fn open_config_or_key_file_is_refused_before_mounting() {
    // The parsing side is covered in tests/config.rs (open_key_file_is_refused_like_ssh,
    // open_config_file_is_refused); here, the binary as a user runs it.
    let work = tempfile::tempdir().unwrap();
    let mp = work.path().join("mp");
    std::fs::create_dir(&mp).unwrap();
    let inline = work.path().join("inline.toml");
    write_mode(&inline, &format!("api_key = \"{KEY}\"\n"), 0o644);
    let key_file = work.path().join("key");
    write_mode(&key_file, KEY, 0o640);
    let by_file = work.path().join("by_file.toml");
    write_mode(
        &by_file,
        &format!("api_key_file = \"{}\"\n", key_file.display()),
        0o600,
    );
    for config in [&inline, &by_file] {
        let out = Command::new(BIN)
            .args(["mount", mp.to_str().unwrap(), "--config"])
            .arg(config)
            .env_remove("PERSONA_API_KEY")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} was accepted", config.display());
        assert!(err.contains("chmod 600"), "not a clear refusal: {err}");
        assert!(!err.contains(KEY), "the key is in the error: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!binary::is_mounted(&mp));
    }
}

/// `ls` of `dir` as user nobody: (success, stderr).
fn ls_as_nobody(dir: &Path) -> (bool, String) {
    let dir = dir.to_path_buf();
    bounded("ls as nobody", Duration::from_secs(60), move || {
        let out = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "ls",
                "-R",
            ])
            .arg(&dir)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
}

#[test]
fn the_mount_is_private_unless_allow_other() {
    if !fuse_available() {
        return;
    }
    // SAFETY: a libc call that takes no pointers (or valid ones) and cannot corrupt memory.
    if unsafe { libc::geteuid() } != 0 || Command::new("setpriv").arg("-V").output().is_err() {
        eprintln!("!!!!! SKIPPING: needs root and setpriv to act as another user !!!!!");
        return;
    }
    let mp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let mps = mp.path().to_str().unwrap();
    let base = ["demo", mps, "--inquiries", "3", "--cache-dir"];

    let d = Daemon::spawn(
        mp.path(),
        &[&base[..], &[cache.to_str().unwrap()]].concat(),
        &[],
    );
    let (ok, err) = ls_as_nobody(&mp.path().join("inquiries"));
    assert!(!ok, "another user could list a private mount");
    assert!(err.contains("Permission denied"), "{err}");
    d.stop();

    let d = Daemon::spawn(
        mp.path(),
        &[&base[..], &[cache.to_str().unwrap(), "--allow-other"]].concat(),
        &[],
    );
    let (ok, err) = ls_as_nobody(&mp.path().join("inquiries"));
    assert!(ok, "--allow-other, yet another user cannot list: {err}");
    d.stop();
}

#[test]
fn allow_other_without_fuse_conf_is_refused_for_a_user() {
    if !fuse_available() {
        return;
    }
    let conf = std::fs::read_to_string("/etc/fuse.conf").unwrap_or_default();
    if conf.lines().any(|l| l.trim() == "user_allow_other")
        // SAFETY: a libc call that takes no pointers (or valid ones) and cannot corrupt memory.
        || unsafe { libc::geteuid() } != 0
        || Command::new("setpriv").arg("-V").output().is_err()
    {
        eprintln!("!!!!! SKIPPING: needs root, setpriv, and no user_allow_other !!!!!");
        return;
    }
    let dev_mode = std::fs::metadata("/dev/fuse").unwrap().permissions().mode();
    if dev_mode & 0o006 != 0o006 {
        // Then a user fails earlier, on /dev/fuse; the message itself is unit-tested in
        // src/config/mountpoint.rs (allow_other_needs_fuse_conf_for_users).
        eprintln!("!!!!! SKIPPING: /dev/fuse is not open to other users here !!!!!");
        return;
    }
    let mp = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(mp.path(), Some(65534), Some(65534)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(["demo", mp.path().to_str().unwrap(), "--allow-other"])
        .args(["--cache-dir", "/nonexistent-personafs-cache"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a user mounted with --allow-other");
    assert!(
        err.contains("user_allow_other") && err.contains("/etc/fuse.conf"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!binary::is_mounted(mp.path()));
}
