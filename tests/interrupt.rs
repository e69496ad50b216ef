//! Ctrl-C and `kill -9` while waiting on the network (SEMANTICS.md, "Behaviour"): a process
//! waiting in the mount on a retrieve or a download that is not coming can still be stopped
//! by a signal, and the mount goes on serving afterwards. fuser answers `FUSE_INTERRUPT` with
//! ENOSYS, so the kernel waits for the answer to an open, lookup or readdir uninterruptibly:
//! personafs sees the caller's pending signal itself (`interrupts.rs`) and answers EINTR.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Options, TestMount, fuse_available, mock, walk};
use personafs_mock::RuntimeConfig;

/// Far longer than the test waits for the signal to work: only an interrupt ends the wait.
const IO_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a signalled process may take to go (a liveness bound, not a speed target).
const EXIT_WITHIN: Duration = Duration::from_secs(20);

fn mount() -> TestMount {
    let mock = mock(3, 23);
    let mut opts = Options::exact();
    opts.core.io_timeout = IO_TIMEOUT;
    TestMount::with(mock, opts)
}

/// A document or selfie file (finding it downloads nothing), and its inquiry.
fn a_file(m: &TestMount) -> (String, PathBuf) {
    let mut ids: Vec<String> = std::fs::read_dir(m.inquiries())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    ids.sort();
    for id in ids {
        let dir = m.inquiries().join(&id);
        let file = walk(&dir)
            .into_iter()
            .find(|p| p.components().count() == 2 && dir.join(p).is_file());
        if let Some(file) = file {
            return (id, dir.join(file));
        }
    }
    panic!("no inquiry with a file");
}

/// What the mock serves for `path`, a file of inquiry `id`.
fn served(m: &TestMount, id: &str, path: &Path) -> Vec<u8> {
    let name = path.file_name().unwrap().to_str().unwrap();
    m.direct_files(id)
        .into_iter()
        .find(|(section, n, _)| path.parent().unwrap().ends_with(section) && n == name)
        .expect("the mock serves the file")
        .2
}

/// `ls` of an inquiry whose retrieve Persona never answers, ended by `sig`; once Persona
/// answers again, the inquiry lists.
fn ls_on_a_stalled_retrieve_ends_by(sig: i32) {
    let m = mount();
    let mut ids: Vec<String> = std::fs::read_dir(m.inquiries())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    ids.sort();
    let dir = m.inquiries().join(&ids[0]);
    // Persona answers nothing for ten minutes: listing the inquiry waits on its retrieve,
    // in a request the kernel only lets go when the filesystem answers.
    let normal = m.mock.runtime();
    m.mock.set_runtime(RuntimeConfig {
        api_latency_ms: 600_000,
        ..normal.clone()
    });
    let mut ls = blocked("ls", &dir);
    signal(&ls, sig);
    exits_by(&mut ls, sig);

    m.mock.set_runtime(normal);
    let sections: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(sections.iter().any(|n| n == "inquiry.json"), "{sections:?}");
    m.unmount();
}

/// Start `cmd` on `path` and wait until it is blocked in a syscall on the mount.
fn blocked(cmd: &str, path: &Path) -> Child {
    #[allow(clippy::zombie_processes)] // waited for by `exits_by`, or killed there
    let mut child = Command::new(cmd)
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The same syscall seen twice in a row (`/proc/PID/syscall` starts with its number).
    let syscall = format!("/proc/{}/syscall", child.id());
    let deadline = Instant::now() + EXIT_WITHIN;
    let mut seen = String::new();
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            panic!("{cmd} ended ({status:?}: {err}) instead of waiting on the mount");
        }
        let now = std::fs::read_to_string(&syscall).unwrap_or_default();
        let in_syscall = now
            .split(' ')
            .next()
            .is_some_and(|nr| nr.parse::<u32>().is_ok());
        if in_syscall && now == seen {
            return child;
        }
        seen = now;
        // Real time: a syscall the same 200 ms apart is one blocked in; nothing signals it.
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{cmd} never blocked in the mount (syscall {seen:?})");
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

/// Wait for `child` to end (its pidfd wakes the wait), at most `EXIT_WITHIN`, and check that
/// `signal` ended it.
fn exits_by(child: &mut Child, signal: i32) {
    let start = Instant::now();
    // SAFETY: pidfd_open(2) on our own child, not yet waited for: the pid is still its own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    assert!(fd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
    // SAFETY: the descriptor pidfd_open just returned, owned here alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let deadline = start + EXIT_WITHIN;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) on one pollfd of ours; readable once the process has ended.
        let ready = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) };
        if ready > 0 {
            let status = child.wait().unwrap();
            assert_eq!(status.signal(), Some(signal), "ended by {status:?}");
            eprintln!("signal {signal}: gone after {:?}", start.elapsed());
            return;
        }
        let interrupted =
            ready < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted;
        if !interrupted || left.is_zero() {
            break;
        }
    }
    let _ = child.kill();
    panic!("still waiting {EXIT_WITHIN:?} after the signal: the interrupt was not honoured");
}

/// The read waits for a download the files host never sends; after the signal the same file
/// still downloads, whole and exact, for the next reader.
#[test]
fn ctrl_c_stops_a_read_waiting_on_the_network_and_the_file_still_reads() {
    if !fuse_available() {
        return;
    }
    let m = mount();
    let (id, path) = a_file(&m);
    m.mock.set_files_down(true);

    let mut cat = blocked("cat", &path);
    signal(&cat, libc::SIGINT);
    exits_by(&mut cat, libc::SIGINT);

    // A second reader is interrupted the same way (the kernel keeps sending interrupts).
    let mut again = blocked("cat", &path);
    signal(&again, libc::SIGTERM);
    exits_by(&mut again, libc::SIGTERM);

    // The files host is back: the same file reads whole and exact.
    m.mock.set_files_down(false);
    let got = std::fs::read(&path).unwrap();
    let want = served(&m, &id, &path);
    assert_eq!(got.len(), want.len());
    assert!(got == want, "bytes differ after the interrupted reads");
    m.unmount();
}

#[test]
fn ctrl_c_stops_ls_waiting_on_a_retrieve() {
    if !fuse_available() {
        return;
    }
    ls_on_a_stalled_retrieve_ends_by(libc::SIGINT);
}

/// `kill -9` of a reader waiting on a stalled files host and of `ls` waiting on a stalled
/// retrieve: both go, and what they waited for still arrives for the next reader.
#[test]
fn kill_9_ends_a_read_and_an_ls_waiting_on_the_network() {
    if !fuse_available() {
        return;
    }
    let m = mount();
    let (id, path) = a_file(&m);
    m.mock.set_files_down(true);
    let mut cat = blocked("cat", &path);
    signal(&cat, libc::SIGKILL);
    exits_by(&mut cat, libc::SIGKILL);
    m.mock.set_files_down(false);
    assert!(
        std::fs::read(&path).unwrap() == served(&m, &id, &path),
        "bytes differ after kill -9"
    );
    m.unmount();

    ls_on_a_stalled_retrieve_ends_by(libc::SIGKILL);
}
