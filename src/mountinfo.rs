//! The one reader of `/proc/self/mountinfo`: which personafs mounts exist and where.
//!
//! Only personafs mounts count: another FUSE filesystem (sshfs, rclone) at a path is never
//! taken for one of ours. A personafs mount shows as type `fuse.personafs` when mounted
//! through fusermount3, and as type `fuse` with source `personafs` when fuser calls mount(2)
//! itself (as root), since fuser then always passes the bare type `fuse`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// The file system type the kernel shows for a personafs mount (`fuse.` + our subtype).
pub const FSTYPE: &str = "fuse.personafs";
/// The mount source (FUSE fsname) every personafs mount carries.
pub const SOURCE: &str = "personafs";

/// One line of mountinfo, the fields we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted (unescaped).
    pub mount_point: PathBuf,
    /// The file system type, e.g. `fuse.personafs`.
    pub fstype: String,
    /// The mount source, e.g. `personafs` (unescaped).
    pub source: String,
}

/// Every mount in a mountinfo text; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

/// `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`
fn parse_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let mount_point = left.split(' ').nth(4)?;
    let mut right = right.split(' ');
    let fstype = right.next()?;
    let source = right.next().unwrap_or_default();
    Some(MountEntry {
        mount_point: PathBuf::from(OsString::from_vec(unescape(mount_point))),
        fstype: String::from_utf8_lossy(&unescape(fstype)).into_owned(),
        source: String::from_utf8_lossy(&unescape(source)).into_owned(),
    })
}

/// The kernel writes space, tab, newline and backslash (and any byte it chooses) as a
/// backslash and three octal digits; every such `\NNN` is decoded.
pub fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|d| {
                u32::from(d[0] - b'0') * 64 + u32::from(d[1] - b'0') * 8 + u32::from(d[2] - b'0')
            })
            .and_then(|v| u8::try_from(v).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

impl MountEntry {
    /// Whether this is a personafs mount (see the module's note on the two forms).
    pub fn is_personafs(&self) -> bool {
        self.fstype == FSTYPE || (self.fstype == "fuse" && self.source == SOURCE)
    }
}

/// The personafs mounts in a mountinfo text.
pub fn personafs_mounts(text: &str) -> impl Iterator<Item = MountEntry> {
    parse(text).into_iter().filter(MountEntry::is_personafs)
}

/// The personafs mount at `path` in a mountinfo text, if any. `path` must be absolute and
/// resolved as the kernel shows it.
pub fn personafs_mount_at(text: &str, path: &Path) -> Option<MountEntry> {
    personafs_mounts(text).find(|m| m.mount_point == path)
}

/// This process's mountinfo; empty without /proc.
pub fn read() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()
}

/// Whether a personafs filesystem is mounted at `path` now. The path is made absolute
/// without following it (a stale mount cannot be followed), then, if that works, resolved.
pub fn is_personafs_mount(path: &Path) -> bool {
    let Ok(abs) = std::path::absolute(path) else {
        return false;
    };
    let info = read();
    let real = abs.canonicalize().unwrap_or_else(|_| abs.clone());
    personafs_mount_at(&info, &abs).is_some() || personafs_mount_at(&info, &real).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
98 22 0:52 / /mnt/my\\040files rw,nosuid,nodev,relatime shared:50 - fuse.personafs personafs ro,user_id=0
99 22 0:53 / /srv/data rw,relatime shared:51 - tmpfs tmpfs rw
100 22 0:54 / /mnt/remote rw,nosuid,nodev - fuse.sshfs me@host:/ rw,user_id=0
101 22 0:55 / /mnt/caf\\303\\251\\011x\\134y - fuse.personafs demo ro
102 22 0:56 / /mnt/as\\040root ro,nosuid - fuse personafs ro,user_id=0
103 22 0:57 / /mnt/other ro,nosuid - fuse other ro,user_id=0
bad line
";

    #[test]
    fn only_personafs_mounts_match() {
        let m = personafs_mount_at(MOUNTINFO, Path::new("/mnt/my files")).unwrap();
        assert_eq!(
            (m.fstype.as_str(), m.source.as_str()),
            (FSTYPE, "personafs")
        );
        assert_eq!(personafs_mount_at(MOUNTINFO, Path::new("/mnt/my")), None);
        assert_eq!(personafs_mount_at(MOUNTINFO, Path::new("/srv/data")), None);
        // An sshfs mount is FUSE too, but not ours.
        assert_eq!(
            personafs_mount_at(MOUNTINFO, Path::new("/mnt/remote")),
            None
        );
        // fuser mounting as root: type `fuse`, source `personafs`.
        let m = personafs_mount_at(MOUNTINFO, Path::new("/mnt/as root")).unwrap();
        assert_eq!(m.fstype, "fuse");
        assert_eq!(personafs_mount_at(MOUNTINFO, Path::new("/mnt/other")), None);
        assert_eq!(parse(MOUNTINFO).len(), 7, "the malformed line is skipped");
        assert_eq!(personafs_mounts(MOUNTINFO).count(), 3);
    }

    #[test]
    fn every_octal_escape_is_decoded() {
        assert_eq!(unescape(r"a\011b\134c\0"), b"a\tb\\c\\0");
        assert_eq!(unescape(r"\303\251\012\040"), "é\n ".as_bytes());
        assert_eq!(unescape(r"\999\"), br"\999\", "not octal: kept");
        assert_eq!(unescape(r"\777"), br"\777", "beyond a byte: kept");
        let m = personafs_mount_at(MOUNTINFO, Path::new("/mnt/café\tx\\y")).unwrap();
        assert_eq!(m.source, "demo");
    }
}
