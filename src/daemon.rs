//! Running in the background: the command re-runs itself in a new session with
//! `--foreground`, and returns only when the child says the mount answers (exit 0), or with
//! the child's error (exit 1). The child reports through an inherited pipe.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Environment variable naming the pipe fd the child reports readiness on.
const READY_FD_ENV: &str = "PERSONAFS_READY_FD";

/// In the parent: start the child and wait for its report.
pub fn spawn_and_wait() -> anyhow::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid out-array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: pipe2 just returned these two fresh descriptors; we own them.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let write_raw = write_end.as_raw_fd();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    args.push("--foreground".into());
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(&args)
        .env(READY_FD_ENV, write_raw.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            // Let the write end survive exec; everything else stays close-on-exec.
            let flags = libc::fcntl(write_raw, libc::F_GETFD);
            libc::fcntl(write_raw, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    drop(write_end);
    let mut report = String::new();
    File::from(read_end).read_to_string(&mut report)?;
    if report.starts_with("ok") {
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
    // SAFETY: plain fcntl on a descriptor we own; keeps it from leaking into other children.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
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
