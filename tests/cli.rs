//! The command line as a user runs it: `personafs demo`, `personafs unmount`, signals, and
//! the errors a newcomer meets.

mod binary;
mod common;

use std::process::{Command, Stdio};

use binary::{BIN, Daemon, UnmountGuard, is_mounted, personafs};
use common::fuse_available;

const DEMO_KEY: &str = "persona_sandbox_demo";

#[test]
fn demo_then_unmount_with_no_secret_in_trace_logs() {
    if !fuse_available() {
        return;
    }
    let mp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("trace.log");
    let cache = work.path().join("cache");
    let mps = mp.path().to_str().unwrap();
    let _guard = UnmountGuard(mp.path().to_path_buf());
    let (ok, out, err) = personafs(&[
        "demo",
        mps,
        "--inquiries",
        "6",
        "--log-level",
        "trace",
        "--log-file",
        log.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    assert!(ok, "demo failed: {out} {err}");
    // It returned only once the mount answers.
    assert!(is_mounted(mp.path()));
    let ids: Vec<_> = std::fs::read_dir(mp.path().join("inquiries"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(ids.len(), 6);
    let mut read = 0;
    for dir in &ids {
        for section in ["document", "selfie"] {
            for f in std::fs::read_dir(dir.join(section)).unwrap() {
                let f = f.unwrap().path();
                let bytes = std::fs::read(&f).unwrap();
                assert_eq!(bytes.len() as u64, std::fs::metadata(&f).unwrap().len());
                read += 1;
            }
        }
        std::fs::read(dir.join("inquiry.json")).unwrap();
    }
    assert!(read > 3);
    let (ok, out, err) = personafs(&["unmount", mps]);
    assert!(ok, "unmount failed: {out} {err}");
    assert!(!is_mounted(mp.path()));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().count() > 5,
        "trace log is nearly empty:\n{text}"
    );
    assert!(!text.contains(DEMO_KEY), "the API key is in the log");
    assert!(
        !text.contains("access_token"),
        "an access token is in the log"
    );
    assert!(!text.contains("/files/"), "a signed URL path is in the log");
    // The cache is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn foreground_demo_unmounts_cleanly_on_sigterm() {
    if !fuse_available() {
        return;
    }
    let mp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mp = mp.path();
    // `Daemon::stop` sends SIGTERM and checks a clean exit that leaves no mount behind.
    let daemon = Daemon::spawn(
        mp,
        &[
            "demo",
            mp.to_str().unwrap(),
            "--inquiries",
            "3",
            "--cache-dir",
            work.path().to_str().unwrap(),
        ],
        &[],
    );
    daemon.stop();
}

#[test]
fn newcomer_errors_are_one_clear_line() {
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("missing");
    let file = work.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let full = work.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("x"), b"x").unwrap();
    let empty = work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["mount", empty.to_str().unwrap()], "API key"),
        (vec!["demo", missing.to_str().unwrap()], "does not exist"),
        (vec!["demo", file.to_str().unwrap()], "not a directory"),
        (vec!["demo", full.to_str().unwrap()], "not empty"),
        (vec!["unmount", empty.to_str().unwrap()], "not a mounted"),
    ];
    for (args, needle) in cases {
        let (ok, _, err) = personafs(&args);
        assert!(!ok, "{args:?} succeeded");
        let err = err.trim();
        assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
        assert!(err.starts_with("personafs: "), "{args:?}: {err}");
        assert!(
            err.to_lowercase().contains(&needle.to_lowercase()),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn refused_key_and_unreachable_api_fail_before_mounting() {
    if !fuse_available() {
        return;
    }
    let mock = personafs_mock::MockServer::start(Default::default()).unwrap();
    let mp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let _guard = UnmountGuard(mp.path().to_path_buf());
    let run = |api: &str, key: &str| {
        Command::new(BIN)
            .args(["mount", mp.path().to_str().unwrap(), "--api-base", api])
            .arg("--cache-dir")
            .arg(work.path())
            .env("PERSONA_API_KEY", key)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&mock.api_base(), "persona_sandbox_wrong");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("401") && err.contains("refused"), "{err}");
    assert!(
        !err.contains("persona_sandbox_wrong"),
        "the key is in the error: {err}"
    );
    let out = run("http://127.0.0.1:9/api/v1", "persona_sandbox_x");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cannot reach"), "{err}");
    assert!(!is_mounted(mp.path()));
}

#[test]
fn completions_are_valid_shell_scripts() {
    for shell in ["bash", "zsh", "fish"] {
        let (ok, out, err) = personafs(&["completions", shell]);
        assert!(ok, "{shell}: {err}");
        // fish names long options without their dashes.
        assert!(out.contains("cache-max-age"), "{shell}: no options");
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("personafs.bash");
    std::fs::write(&script, personafs(&["completions", "bash"]).1).unwrap();
    let out = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, _, err) = personafs(&["completions", "tcsh"]);
    assert!(!ok && err.contains("tcsh"), "{err}");
}

#[test]
fn man_page_documents_every_option() {
    let (ok, man, err) = personafs(&["man"]);
    assert!(ok, "{err}");
    assert!(
        man.starts_with(".ie") || man.contains(".TH personafs"),
        "not roff"
    );
    for key in personafs::config::OPTION_KEYS {
        // roff escapes the dashes of a flag: \-\-cache\-dir.
        let flag = format!("--{}", key.replace('_', "-")).replace('-', "\\-");
        assert!(man.contains(&flag), "the man page lacks {flag}");
    }
    for heading in ["API", "LISTING FILTERS", "CACHE", "MOUNT", "LOGGING"] {
        assert!(
            man.contains(&format!(".SH {heading}\n"))
                || man.contains(&format!(".SH \"{heading}\"\n")),
            "no {heading} section"
        );
    }
    assert!(man.contains("Exit status"), "no exit codes");
}

#[test]
fn help_is_grouped_and_names_exit_codes() {
    let (ok, help, _) = personafs(&["mount", "--help"]);
    assert!(ok);
    let mut last = 0;
    for heading in ["API:", "Listing filters:", "Cache:", "Mount:", "Logging:"] {
        let at = help
            .find(&format!("\n{heading}\n"))
            .unwrap_or_else(|| panic!("no heading {heading}:\n{help}"));
        assert!(at > last, "{heading} out of order");
        last = at;
    }
    assert!(help.contains("[env: PERSONAFS_METADATA_TTL]"), "{help}");
    assert!(help.contains("[default: 30s]"), "{help}");
    let (_, top, _) = personafs(&["--help"]);
    for needle in [
        "Exit status:",
        "0  success",
        "1  failure",
        "2  invalid command line",
    ] {
        assert!(top.contains(needle), "{needle} missing:\n{top}");
    }
    // A bad command line is exit status 2.
    let out = Command::new(BIN)
        .args(["mount", "/mnt/x", "--threads", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
