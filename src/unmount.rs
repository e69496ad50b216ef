//! `personafs unmount`: also clears a mount whose process died ("transport endpoint is not
//! connected").

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

/// Whether `path` is a FUSE mount point now (per /proc/self/mountinfo).
pub fn is_fuse_mount(path: &Path) -> bool {
    let Ok(abs) = std::path::absolute(path) else {
        return false;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let target = abs.to_string_lossy().into_owned();
    info.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let fstype = line.split(" - ").nth(1).and_then(|r| r.split(' ').next());
        fields.get(4).map(|m| unescape(m)) == Some(target.clone())
            && fstype.is_some_and(|t| t.starts_with("fuse"))
    })
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

pub fn unmount(path: &Path) -> anyhow::Result<()> {
    if !is_fuse_mount(path) {
        anyhow::bail!("{} is not a mounted personafs filesystem", path.display());
    }
    let c = CString::new(std::path::absolute(path)?.as_os_str().as_bytes())?;
    // SAFETY: `c` is a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EBUSY) => anyhow::bail!(
            "{} is busy: a process has a file open or its working directory inside; close it and try again",
            path.display()
        ),
        Some(libc::EPERM) => {
            // Not root: the setuid helper unmounts mounts the caller owns.
            let status = Command::new("fusermount3").arg("-u").arg(path).status();
            match status {
                Ok(s) if s.success() => Ok(()),
                Ok(_) => anyhow::bail!("fusermount3 -u {} failed", path.display()),
                Err(e) => {
                    anyhow::bail!("cannot unmount {}: {err}; fusermount3: {e}", path.display())
                }
            }
        }
        _ => anyhow::bail!("cannot unmount {}: {err}", path.display()),
    }
}
