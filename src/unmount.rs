//! `personafs unmount`: also clears a mount whose process died ("transport endpoint is not
//! connected").

use std::path::Path;
use std::process::Command;

use nix::errno::Errno;
use nix::mount::{MntFlags, umount2};

/// Whether `path` is a personafs mount point now (per /proc/self/mountinfo). Another FUSE
/// filesystem there (sshfs, rclone) does not count.
pub fn is_fuse_mount(path: &Path) -> bool {
    crate::mountinfo::is_personafs_mount(path)
}

pub fn unmount(path: &Path) -> anyhow::Result<()> {
    if !is_fuse_mount(path) {
        anyhow::bail!("{} is not a mounted personafs filesystem", path.display());
    }
    let abs = std::path::absolute(path)?;
    let err = match umount2(&abs, MntFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(err) => err,
    };
    match err {
        Errno::EBUSY => anyhow::bail!(
            "{} is busy: a process has a file open or its working directory inside; close it and try again",
            path.display()
        ),
        Errno::EPERM => {
            // Not root: the setuid helper unmounts mounts the caller owns.
            let status = Command::new("fusermount3").arg("-u").arg(path).status();
            match status {
                Ok(s) if s.success() => Ok(()),
                Ok(_) => anyhow::bail!("fusermount3 -u {} failed", path.display()),
                Err(e) => {
                    anyhow::bail!(
                        "cannot unmount {}: {}; fusermount3: {e}",
                        path.display(),
                        err.desc()
                    )
                }
            }
        }
        _ => anyhow::bail!("cannot unmount {}: {}", path.display(), err.desc()),
    }
}
