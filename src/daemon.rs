//! Running in the background: the command re-runs itself in a new session with
//! `--foreground`, and returns only when the child says the mount answers (exit 0), or with
//! the child's error (exit 1). The child reports through an inherited pipe.
//!
//! Until it reports ready the child lives only as long as its launcher (it gets SIGTERM when
//! the launcher dies), and a child that does not report within [`READY_LIMIT`] is stopped:
//! a failed or abandoned `personafs mount` leaves no daemon behind.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};

/// Environment variable naming the pipe fd the child reports readiness on.
const READY_FD_ENV: &str = "PERSONAFS_READY_FD";

/// The longest the launcher waits for the mount: the startup check's own limit
/// (`mount::STARTUP_CHECK_LIMIT`) and the mount itself, with room to spare.
pub const READY_LIMIT: Duration = Duration::from_secs(50);
/// After SIGTERM, how long a child that is not ready gets to unmount before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// In the parent: start the child with `args` (the command line as the user gave it, less
/// the program name) and wait for its report.
pub fn spawn_and_wait(args: &[std::ffi::OsString]) -> anyhow::Result<()> {
    let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let write_raw = write_end.as_raw_fd();
    let launcher = std::process::id() as libc::pid_t;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(args)
        .arg("--foreground")
        .env(READY_FD_ENV, write_raw.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls (setsid, prctl, getppid, fcntl) between fork and
    // exec.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid()?;
            // Until ready, the child goes with its launcher (cleared in `report_ready`).
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != launcher {
                return Err(std::io::Error::other("the launcher is gone"));
            }
            // Let the write end survive exec; everything else stays close-on-exec.
            // SAFETY: the descriptor is open in the child: it was inherited from the parent.
            let fd = BorrowedFd::borrow_raw(write_raw);
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    drop(write_end);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut report = String::new();
        let read = File::from(read_end).read_to_string(&mut report);
        let _ = tx.send(read.map(|_| report));
    });
    let report = match rx.recv_timeout(READY_LIMIT) {
        Ok(report) => report?,
        Err(_) => {
            stop(&mut child);
            anyhow::bail!(
                "the mount was not ready within {} s (is the Persona API answering?); stopped it",
                READY_LIMIT.as_secs()
            );
        }
    };
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

/// SIGTERM to a child that is not ready (it unmounts if it got that far), SIGKILL after
/// [`STOP_GRACE`]; reaped either way.
fn stop(child: &mut std::process::Child) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: signalling our own child, not reaped yet.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let until = Instant::now() + STOP_GRACE;
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
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
        // Ready: from now on the mount outlives the command that started it.
        // SAFETY: prctl with PR_SET_PDEATHSIG touches no memory.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0) };
        let _ = p.write_all(b"ok\n");
    }
}

pub fn report_error(pipe: Option<File>, err: &anyhow::Error) {
    if let Some(mut p) = pipe {
        let _ = write!(p, "{err:#}");
    }
}
