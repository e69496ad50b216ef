//! One owner per cache directory. A mount (or `cache prune`/`cache clear`) holds an exclusive
//! `flock` on `<cache_dir>/lock` for as long as it uses the directory; the file says who holds
//! it (pid, and the mountpoint for a mount) so that a refused second user can name the first.
//! The kernel drops the lock when its holder exits, even by `kill -9`: a stale lock file is
//! simply taken over.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The lock file's name inside the cache directory.
pub const LOCK_FILE: &str = "lock";

/// Who holds a cache directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    pub pid: u32,
    /// Set for a mount.
    pub mountpoint: Option<PathBuf>,
    /// `mount`, or the command holding it (`cache clear`, `cache prune`).
    pub what: String,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.mountpoint {
            Some(mp) => write!(
                f,
                "the personafs mount at {} (pid {})",
                mp.display(),
                self.pid
            ),
            None => write!(f, "`personafs {}` (pid {})", self.what, self.pid),
        }
    }
}

/// A cache directory held by someone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    pub dir: PathBuf,
    /// `None` when the holder has not said who it is (it is just starting, or is not ours).
    pub owner: Option<Owner>,
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cache directory {} is in use by ", self.dir.display())?;
        match &self.owner {
            Some(o) => write!(f, "{o}"),
            None => write!(f, "another personafs process"),
        }
    }
}

/// Why a cache directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("{0}")]
    Busy(Busy),
    #[error("cannot lock the cache directory: {0}")]
    Io(#[from] io::Error),
}

/// The held lock of a cache directory; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

/// How long a lock attempt retries: `holder` takes a shared lock for an instant, which must
/// not turn a mount away.
const ATTEMPTS: u32 = 10;
const PAUSE: Duration = Duration::from_millis(50);

impl CacheLock {
    /// For a mount on `mountpoint`, for its whole life.
    pub fn for_mount(dir: &Path, mountpoint: &Path) -> Result<CacheLock, LockError> {
        Self::acquire(
            dir,
            Owner {
                pid: std::process::id(),
                mountpoint: Some(mountpoint.to_path_buf()),
                what: "mount".into(),
            },
        )
    }

    /// For a command that changes the cache (`what`: e.g. `cache clear`).
    pub fn for_command(dir: &Path, what: &str) -> Result<CacheLock, LockError> {
        Self::acquire(
            dir,
            Owner {
                pid: std::process::id(),
                mountpoint: None,
                what: what.into(),
            },
        )
    }

    fn acquire(dir: &Path, owner: Owner) -> Result<CacheLock, LockError> {
        super::private_dir(dir)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join(LOCK_FILE))?;
        let mut attempt = 0;
        loop {
            match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
                Ok(()) => break,
                Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {
                    attempt += 1;
                    if attempt == ATTEMPTS {
                        return Err(LockError::Busy(Busy {
                            dir: dir.to_path_buf(),
                            owner: read_owner(&mut file),
                        }));
                    }
                    std::thread::sleep(PAUSE);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let record = serde_json::to_vec(&owner).expect("owner serializes");
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&record)?;
        Ok(CacheLock { _file: file })
    }

    /// Who holds `dir`, if anyone. Changes nothing (creates no file), for `cache stats`.
    pub fn holder(dir: &Path) -> io::Result<Option<Busy>> {
        let mut file = match File::open(dir.join(LOCK_FILE)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match flock(&file, libc::LOCK_SH | libc::LOCK_NB) {
            // Free: the shared lock goes with `file`, at once.
            Ok(()) => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(Some(Busy {
                dir: dir.to_path_buf(),
                owner: read_owner(&mut file),
            })),
            Err(e) => Err(e),
        }
    }
}

fn flock(file: &File, how: libc::c_int) -> io::Result<()> {
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), how) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The holder's record; it writes it just after locking, so give it a moment.
fn read_owner(file: &mut File) -> Option<Owner> {
    for _ in 0..ATTEMPTS {
        let mut text = String::new();
        if file.seek(SeekFrom::Start(0)).is_ok()
            && file.read_to_string(&mut text).is_ok()
            && let Ok(owner) = serde_json::from_str(&text)
        {
            return Some(owner);
        }
        std::thread::sleep(PAUSE / 5);
    }
    None
}
