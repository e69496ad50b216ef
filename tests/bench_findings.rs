//! Bugs the benchmark (scripts/bench.sh, docs/BENCHMARKS.md) brought to light, as tests of
//! the real binary against the mock. No timings are asserted.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{fuse_available, host_port};
use personafs::mock::{MockConfig, MockServer, RuntimeConfig};

const BIN: &str = env!("CARGO_BIN_EXE_personafs");

fn unmount(mp: &Path) {
    if personafs::unmount::is_fuse_mount(mp) {
        let _ = Command::new(BIN).arg("unmount").arg(mp).output();
    }
}

/// `personafs mount` stats `inquiries/` to know the mount answers (src/mount.rs,
/// `wait_until_answers`, 60 s), and that stat lists every inquiry (the link count of
/// `inquiries/` counts them, src/fs/core.rs `getattr`). An organisation whose listing takes
/// more than 60 s (about 35,000 inquiries under the client's 300/min limiter, or a slow API)
/// cannot be mounted at all. Here: 5 pages at 13 s each.
#[test]
#[ignore = "bug: mount fails when listing all inquiries takes > 60 s (src/mount.rs wait_until_answers stats inquiries/, whose getattr lists everything); takes ~75 s"]
fn a_listing_slower_than_a_minute_does_not_stop_the_mount() {
    if !fuse_available() {
        return;
    }
    let mock = MockServer::start(MockConfig {
        generate: 500,
        runtime: RuntimeConfig {
            api_latency_ms: 13_000,
            ..MockConfig::default().runtime
        },
        ..Default::default()
    })
    .unwrap();
    let mp = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("mount")
        .arg(mp.path())
        .args(["--api-base", &mock.api_base()])
        .args(["--file-host", &host_port(&mock.files_base())])
        .arg("--cache-dir")
        .arg(cache.path())
        .env("PERSONA_API_KEY", mock.api_key())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let mounted = personafs::unmount::is_fuse_mount(mp.path());
    unmount(mp.path());
    assert!(
        out.status.success() && mounted,
        "mount failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
