//! The real `personafs` binary as a child process, for tests that need a process of its own
//! (kill -9, its argv, its log file): `Daemon` (a foreground mount, killed and unmounted on
//! drop), the arguments of a mount of a mock (`mount_args`), `personafs mock-server` in a
//! process of its own (`MockProcess`), and clean-ups (`UnmountGuard`). In-process mounts and
//! the mock, waits and commands are in `common`.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fmt::Debug;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use personafs_mock::MockServer;

pub const BIN: &str = env!("CARGO_BIN_EXE_personafs");

#[allow(unused_imports)] // not every test binary waits
pub use crate::common::wait_until;

/// Run `f` on a thread; panic if it has not returned within `limit` (a hang).
pub fn bounded<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not return within {limit:?}: a hang"))
}

pub fn personafs(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("PERSONA_API_KEY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn is_mounted(p: &Path) -> bool {
    personafs::unmount::is_fuse_mount(p)
}

/// A foreground `personafs` serving a mount.
pub struct Daemon {
    pub child: Child,
    pub mountpoint: PathBuf,
    /// Reads the daemon's stderr as it comes: a pipe nobody drains fills at 64 KiB, and the
    /// daemon's next log line would then block it (a hang, not a failure).
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Daemon {
    /// `personafs mount` of `mock` at `mountpoint` with its cache at `cache`, then `extra`
    /// (`mount_args`), its key in the environment; waits until the mount answers.
    pub fn mount(mock: &MockServer, mountpoint: &Path, cache: &Path, extra: &[&str]) -> Daemon {
        let args = mock_mount_args(mock, mountpoint, cache, extra);
        Daemon::spawn_for(mock, mountpoint, &args)
    }

    /// `spawn` with `mock`'s key in the environment.
    pub fn spawn_for<S: AsRef<OsStr> + Debug>(
        mock: &MockServer,
        mountpoint: &Path,
        args: &[S],
    ) -> Daemon {
        Daemon::spawn(mountpoint, args, &[("PERSONA_API_KEY", &mock.api_key())])
    }

    /// Spawn `personafs <args> -f` and wait until `<mountpoint>/inquiries` answers.
    pub fn spawn<S: AsRef<OsStr> + Debug>(
        mountpoint: &Path,
        args: &[S],
        env: &[(&str, &str)],
    ) -> Daemon {
        let mut d = Daemon::start(mountpoint, args, env);
        let inquiries = mountpoint.join("inquiries");
        wait_until(
            &format!("personafs {args:?} mounting"),
            Duration::from_secs(60),
            || {
                if let Ok(Some(status)) = d.child.try_wait() {
                    panic!("personafs {args:?} exited with {status}: {}", d.stderr());
                }
                is_mounted(mountpoint) && inquiries.is_dir()
            },
        );
        d
    }

    /// Spawn `personafs <args> -f` without waiting for the mount (for a test that watches it
    /// come up). Its stdout goes nowhere, its stderr to `stderr()`; the environment's
    /// `PERSONA_API_KEY` and `JOURNAL_STREAM` (a test run under systemd) are not passed on.
    pub fn start<S: AsRef<OsStr>>(mountpoint: &Path, args: &[S], env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("-f")
            .env_remove("PERSONA_API_KEY")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let stderr = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = std::io::Read::read_to_end(&mut pipe, &mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        });
        Daemon {
            child,
            mountpoint: mountpoint.to_path_buf(),
            stderr: Some(stderr),
        }
    }

    /// What the daemon wrote to stderr, to its end (once it has exited).
    pub fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill9(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit; returns its stderr.
    pub fn stop(mut self) -> String {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        let err = self.stderr();
        assert!(status.success(), "personafs exited with {status}: {err}");
        assert!(!is_mounted(&self.mountpoint), "mount left after SIGTERM");
        err
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
            let _ = self.child.wait();
        }
        unmount_if_mounted(&self.mountpoint);
    }
}

/// `personafs unmount <mp>` if something is mounted there: a clean-up, its outcome unchecked.
pub fn unmount_if_mounted(mp: &Path) {
    if is_mounted(mp) {
        let _ = personafs(&["unmount", mp.to_str().unwrap()]);
    }
}

/// Unmounts its path on drop, so a failing test leaves no mount behind.
pub struct UnmountGuard(pub PathBuf);

impl Drop for UnmountGuard {
    fn drop(&mut self) {
        unmount_if_mounted(&self.0);
    }
}

/// `mount <mp> --api-base <api> --file-host <files' host> --cache-dir <cache>`, then `extra`:
/// the arguments of a mount of a mock whose API is at `api` and files at `files` (URLs).
pub fn mount_args(mp: &Path, cache: &Path, api: &str, files: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "mount",
        mp.to_str().unwrap(),
        "--api-base",
        api,
        "--file-host",
        &crate::common::host_port(files),
        "--cache-dir",
        cache.to_str().unwrap(),
    ]
    .into_iter()
    .map(String::from)
    .collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// `mount_args` of a mount of `mock`.
pub fn mock_mount_args(mock: &MockServer, mp: &Path, cache: &Path, extra: &[&str]) -> Vec<String> {
    mount_args(mp, cache, &mock.api_base(), &mock.files_base(), extra)
}

/// `<bin> mock-server <args>` in a process of its own, with the `api=` and `files=` addresses
/// it prints; killed on drop.
pub struct MockProcess {
    child: Child,
    pub api: String,
    pub files: String,
}

impl MockProcess {
    /// `bin` is the personafs to run (`BIN`, or an installed one); `args` follow `mock-server`.
    pub fn spawn(bin: &str, args: &[&str]) -> MockProcess {
        let mut child = Command::new(bin)
            .arg("mock-server")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut mock = MockProcess {
            child,
            api: String::new(),
            files: String::new(),
        };
        let mut lines = BufReader::new(stdout).lines();
        while mock.api.is_empty() || mock.files.is_empty() {
            let line = lines
                .next()
                .expect("the mock prints its addresses")
                .unwrap();
            if let Some(a) = line.strip_prefix("api=") {
                mock.api = a.to_string();
            } else if let Some(f) = line.strip_prefix("files=") {
                mock.files = f.to_string();
            }
        }
        mock
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every file under `root` with its bytes (directories walked, `inquiry.json` included).
pub fn read_tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for rel in crate::common::walk(root) {
        let p = root.join(&rel);
        if p.is_file() {
            out.push((rel, std::fs::read(&p).unwrap()));
        }
    }
    out
}
