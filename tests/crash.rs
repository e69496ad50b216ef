//! `kill -9` of the daemon during a download: no stale mount after `personafs unmount`, no
//! left-over or corrupt cache data, and a remount serves the right bytes.

mod binary;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use binary::{BIN, Daemon, MockProcess, mount_args};
use common::{fuse_available, wait_until};

const KEY: &str = "persona_sandbox_demo";

fn start_mock() -> MockProcess {
    MockProcess::spawn(
        BIN,
        &[
            "--generate",
            "3",
            "--seed",
            "4",
            "--files-bandwidth",
            "400000",
        ],
    )
}

fn mount(mp: &Path, cache: &Path, mock: &MockProcess) -> Daemon {
    let args = mount_args(mp, cache, &mock.api, &mock.files, &[]);
    Daemon::spawn(mp, &args, &[("PERSONA_API_KEY", KEY)])
}

fn largest_file(mp: &Path) -> PathBuf {
    let mut best = (0, PathBuf::new());
    for inq in std::fs::read_dir(mp.join("inquiries")).unwrap() {
        for section in ["document", "selfie"] {
            for f in std::fs::read_dir(inq.as_ref().unwrap().path().join(section)).unwrap() {
                let p = f.unwrap().path();
                let len = std::fs::metadata(&p).unwrap().len();
                if len > best.0 {
                    best = (len, p);
                }
            }
        }
    }
    best.1
}

fn tmp_bytes(cache: &Path) -> u64 {
    std::fs::read_dir(cache.join("tmp"))
        .map(|rd| rd.flatten().map(|e| e.metadata().unwrap().len()).sum())
        .unwrap_or(0)
}

#[test]
fn kill_9_mid_download_then_unmount_and_remount() {
    if !fuse_available() {
        return;
    }
    let mock = start_mock();
    let mp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let mut daemon = mount(mp.path(), &cache, &mock);
    let file = largest_file(mp.path());
    let relative = file.strip_prefix(mp.path()).unwrap().to_path_buf();
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(
        size > 400_000,
        "file too small to catch mid-download: {size}"
    );
    let reader = std::thread::spawn(move || std::fs::read(&file).map(|b| b.len()));
    wait_until("download never started", Duration::from_secs(20), || {
        tmp_bytes(&cache) > 0
    });
    daemon.kill9();
    assert!(
        reader.join().unwrap().is_err(),
        "a read through a killed daemon succeeded"
    );
    // Attributes and the listings the kernel keeps may still answer from its caches; a
    // listing it does not keep (the root's, never read) must ask the daemon.
    let e = common::list(mp.path()).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN), "{e}");
    common::stdout_of(Command::new(BIN).args(["unmount", mp.path().to_str().unwrap()]));
    assert!(!personafs::unmount::is_fuse_mount(mp.path()));
    // The half download is still there, and must never be served.
    assert!(tmp_bytes(&cache) > 0);
    let daemon = mount(mp.path(), &cache, &mock);
    assert_eq!(tmp_bytes(&cache), 0, "left-overs survived the restart");
    let bytes = std::fs::read(mp.path().join(&relative)).unwrap();
    assert_eq!(bytes.len() as u64, size);
    // Compare with a direct download through the API.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let direct = rt.block_on(async {
        use personafs_client::{ApiKey, ClientConfig, HttpClient, PersonaApi, files_of};
        let mut c = ClientConfig::new(mock.api.as_str(), ApiKey::new(KEY));
        c.allowed_file_hosts.push(common::host_port(&mock.files));
        let client = HttpClient::new(c).unwrap();
        let id = relative.iter().nth(1).unwrap().to_str().unwrap();
        let name = relative.file_name().unwrap().to_str().unwrap();
        let inquiry = client.retrieve_inquiry(id).await.unwrap();
        let f = files_of(&inquiry)
            .into_iter()
            .find(|f| f.name == name)
            .unwrap();
        let mut out = Vec::new();
        client.download(&f.url, 0, &mut out).await.unwrap();
        out
    });
    assert!(
        bytes == direct,
        "bytes after the crash differ from a direct download"
    );
    common::stdout_of(Command::new(BIN).args(["unmount", mp.path().to_str().unwrap()]));
    drop(daemon);
}
