//! The real `personafs` binary as a child process, for tests that need a process of its own
//! (kill -9, its argv, its log file). Killed and unmounted on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_personafs");

/// Poll `ready` every 50 ms; panic with `what` after `limit` (a hang detector, not a timing).
pub fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

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
}

impl Daemon {
    /// Spawn `personafs <args> -f` and wait until `<mountpoint>/inquiries` answers.
    pub fn spawn(mountpoint: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("-f")
            .env_remove("PERSONA_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let mut d = Daemon {
            child,
            mountpoint: mountpoint.to_path_buf(),
        };
        let inquiries = mountpoint.join("inquiries");
        let start = Instant::now();
        while !(is_mounted(mountpoint) && inquiries.is_dir()) {
            if let Ok(Some(status)) = d.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = d.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("personafs {args:?} exited with {status}: {err}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "personafs {args:?} did not mount"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
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
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
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
        if is_mounted(&self.mountpoint) {
            let _ = personafs(&["unmount", self.mountpoint.to_str().unwrap()]);
        }
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
