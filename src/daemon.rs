//! Running in the background: the command re-runs itself in a new session with
//! `--foreground`, and returns only when the child says the mount answers (exit 0), or with
//! the child's error (exit 1). The child reports through an inherited pipe.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};

/// Environment variable naming the pipe fd the child reports readiness on.
const READY_FD_ENV: &str = "PERSONAFS_READY_FD";

/// In the parent: start the child with `args` (the command line as the user gave it, less
/// the program name) and wait for its report.
pub fn spawn_and_wait(args: &[std::ffi::OsString]) -> anyhow::Result<()> {
    let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let write_raw = write_end.as_raw_fd();
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(args)
        .arg("--foreground")
        .env(READY_FD_ENV, write_raw.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls (setsid, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid()?;
            // Let the write end survive exec; everything else stays close-on-exec.
            // SAFETY: the descriptor is open in the child: it was inherited from the parent.
            let fd = BorrowedFd::borrow_raw(write_raw);
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    drop(write_end);
    let mut report = String::new();
    File::from(read_end).read_to_string(&mut report)?;
    if report.starts_with("ok") {
        // Under systemd (Type=notify without --foreground) the child, not this process,
        // is the service from now on.
        crate::notify::send(&format!("MAINPID={}\nREADY=1", child.id()));
        return Ok(());
    }
    let status = child.wait()?;
    let msg = report.trim();
    if msg.is_empty() {
        anyhow::bail!("the background process exited ({status}) before the mount was ready");
    }
    anyhow::bail!("{msg}")
}

/// In the child: the pipe to report on, if started by `spawn_and_wait`.
pub fn ready_pipe() -> Option<File> {
    let fd: i32 = std::env::var(READY_FD_ENV).ok()?.parse().ok()?;
    // SAFETY: the parent passed us this descriptor for exactly this purpose.
    let file = unsafe { File::from_raw_fd(fd) };
    // Keep it from leaking into other children.
    let _ = fcntl(&file, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    // SAFETY: removing our own variable before any other thread exists.
    unsafe { std::env::remove_var(READY_FD_ENV) };
    Some(file)
}

pub fn report_ready(pipe: Option<File>) {
    if let Some(mut p) = pipe {
        let _ = p.write_all(b"ok\n");
    }
}

pub fn report_error(pipe: Option<File>, err: &anyhow::Error) {
    if let Some(mut p) = pipe {
        let _ = write!(p, "{err:#}");
    }
}
