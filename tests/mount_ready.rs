//! `personafs mount` as a large organization meets it: ready at once, listing reused.

mod binary;
mod common;

use std::process::{Command, Stdio};

use binary::{BIN, unmount_if_mounted};
use common::{fuse_available, host_port};
use personafs_mock::{MockConfig, MockServer, RuntimeConfig};

/// `personafs mount` returns once the mount answers, which must not wait for a listing of
/// every inquiry (minutes for a large organization under Persona's rate limit). And the key
/// check's page is the listing's first page: the first `ls` does not fetch it again.
#[test]
fn the_mount_is_ready_before_the_listing_and_reuses_the_first_page() {
    if !fuse_available() {
        return;
    }
    let mock = MockServer::start(MockConfig {
        generate: 500,
        runtime: RuntimeConfig {
            api_latency_ms: 300,
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
    let lists_at_ready = mock.stats().api_list;
    let listed = std::fs::read_dir(mp.path().join("inquiries")).map(|d| d.count());
    let lists_after = mock.stats().api_list;
    unmount_if_mounted(mp.path());
    assert!(
        out.status.success() && mounted,
        "mount failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lists_at_ready, 1, "readiness waited for the listing");
    assert_eq!(listed.unwrap(), 500);
    assert_eq!(
        lists_after, 5,
        "500 inquiries are 5 pages of 100, the first one reused"
    );
}
