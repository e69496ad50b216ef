//! Checks before mounting, each failing with one line that says what to do.

use std::fs::Metadata;
use std::path::{Path, PathBuf};

use super::file::{io_reason, shell_quote};
use super::{ConfigError, Result};

/// The mountpoint must exist, be a directory, be empty, and not already carry a personafs
/// mount.
/// A stale FUSE mount (its daemon gone: "transport endpoint is not connected") is reported
/// with the command that clears it.
pub fn check_mountpoint(path: &Path) -> Result<()> {
    // Without /proc the mount check is skipped; the mount itself will then report.
    check_mountpoint_in(path, &crate::mountinfo::read())
}

/// `check_mountpoint` against a given `/proc/self/mountinfo` text.
pub(crate) fn check_mountpoint_in(path: &Path, mountinfo: &str) -> Result<()> {
    let shown = path.display();
    let meta: Metadata = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            return Err(ConfigError::new(format!(
                "{shown} is a stale mount (transport endpoint is not connected); run: personafs unmount {}",
                shell_quote(path)
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConfigError::new(format!(
                "mountpoint {shown} does not exist; create it with: mkdir -p {}",
                shell_quote(path)
            )));
        }
        Err(e) => {
            return Err(ConfigError::new(format!(
                "cannot use mountpoint {shown}: {}",
                io_reason(&e)
            )));
        }
    };
    if !meta.is_dir() {
        return Err(ConfigError::new(format!(
            "mountpoint {shown} is not a directory"
        )));
    }
    let real = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if crate::mountinfo::personafs_mount_at(mountinfo, &real).is_some() {
        return Err(ConfigError::new(format!(
            "{shown} is already mounted (personafs); run: personafs unmount {}",
            shell_quote(path)
        )));
    }
    let mut entries = std::fs::read_dir(path).map_err(|e| {
        ConfigError::new(format!("cannot read mountpoint {shown}: {}", io_reason(&e)))
    })?;
    if entries.next().is_some() {
        return Err(ConfigError::new(format!(
            "mountpoint {shown} is not empty; use an empty directory"
        )));
    }
    Ok(())
}

/// FUSE must be usable: `/dev/fuse` present and openable, and for a non-root user the
/// setuid helper `fusermount3` (or `fusermount`) installed.
pub fn check_fuse_available() -> Result<()> {
    let is_root = nix::unistd::geteuid().is_root();
    check_fuse_with(Path::new("/dev/fuse"), is_root, fusermount_installed())
}

pub(crate) fn check_fuse_with(device: &Path, is_root: bool, has_fusermount: bool) -> Result<()> {
    let shown = device.display();
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
    {
        return Err(ConfigError::new(match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => format!(
                "{shown} is missing: install fuse3 (apt-get install fuse3) and load the fuse module (modprobe fuse); in a container, add --device /dev/fuse --cap-add SYS_ADMIN"
            ),
            Some(libc::EACCES) | Some(libc::EPERM) => format!(
                "no permission to open {shown}: it must be readable and writable by you (usually mode 0666); in a container, add --device /dev/fuse --cap-add SYS_ADMIN"
            ),
            _ => format!("cannot open {shown}: {}", io_reason(&e)),
        }));
    }
    if !is_root && !has_fusermount {
        return Err(ConfigError::new(
            "fusermount3 not found: mounting as a non-root user needs it; install fuse3 (apt-get install fuse3)",
        ));
    }
    Ok(())
}

/// Mounting with `allow_other` as a non-root user needs `user_allow_other` in
/// /etc/fuse.conf; without it the mount itself fails with a less helpful message.
pub fn check_allow_other() -> Result<()> {
    let is_root = nix::unistd::geteuid().is_root();
    let conf = std::fs::read_to_string("/etc/fuse.conf").unwrap_or_default();
    check_allow_other_with(is_root, &conf)
}

pub(crate) fn check_allow_other_with(is_root: bool, fuse_conf: &str) -> Result<()> {
    if is_root || fuse_conf.lines().any(|l| l.trim() == "user_allow_other") {
        return Ok(());
    }
    Err(ConfigError::new(
        "--allow-other needs the line user_allow_other in /etc/fuse.conf (as root: echo user_allow_other >> /etc/fuse.conf)",
    ))
}

/// Where fuser looks for the mount helper: `$FUSERMOUNT_PATH`, then `PATH`, /sbin and /bin.
fn fusermount_installed() -> bool {
    if std::env::var_os("FUSERMOUNT_PATH").is_some() {
        return true;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/sbin"), PathBuf::from("/bin")])
        .any(|dir| {
            ["fusermount3", "fusermount"]
                .iter()
                .any(|n| dir.join(n).is_file())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
98 22 0:52 / /mnt/my\\040files rw,nosuid,nodev,relatime shared:50 - fuse.personafs personafs ro,user_id=0
99 22 0:53 / /srv/data rw,relatime shared:51 - tmpfs tmpfs rw
";

    #[test]
    fn already_mounted_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        let info = format!(
            "98 22 0:52 / {} ro - fuse.personafs personafs ro\n",
            real.display()
        );
        let err = check_mountpoint_in(dir.path(), &info)
            .unwrap_err()
            .to_string();
        assert!(err.contains("already mounted"), "{err}");
        assert!(err.contains("personafs unmount"), "{err}");
        assert!(check_mountpoint_in(dir.path(), MOUNTINFO).is_ok());
        // Another FUSE filesystem there is not ours: the emptiness check decides.
        let sshfs = format!(
            "99 22 0:52 / {} rw - fuse.sshfs me@host:/ rw\n",
            real.display()
        );
        assert!(check_mountpoint_in(dir.path(), &sshfs).is_ok());
    }

    #[test]
    fn fuse_device_checks() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("fuse");
        let err = check_fuse_with(&missing, true, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("apt-get install fuse3"), "{err}");

        let device = dir.path().join("dev-fuse");
        std::fs::write(&device, b"").unwrap();
        assert!(check_fuse_with(&device, true, false).is_ok());
        assert!(check_fuse_with(&device, false, true).is_ok());
        let err = check_fuse_with(&device, false, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("fusermount3 not found"), "{err}");
    }

    #[test]
    fn allow_other_needs_fuse_conf_for_users() {
        assert!(check_allow_other_with(true, "").is_ok());
        assert!(check_allow_other_with(false, "# comment\nuser_allow_other\n").is_ok());
        let err = check_allow_other_with(false, "#user_allow_other\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/etc/fuse.conf"), "{err}");
    }

    #[test]
    fn unopenable_fuse_device_names_permissions() {
        use std::os::unix::fs::PermissionsExt;
        if nix::unistd::geteuid().is_root() {
            eprintln!("skipped: root opens any file regardless of its mode");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let device = dir.path().join("dev-fuse");
        std::fs::write(&device, b"").unwrap();
        std::fs::set_permissions(&device, std::fs::Permissions::from_mode(0o000)).unwrap();
        let err = check_fuse_with(&device, false, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no permission to open"), "{err}");
    }
}
