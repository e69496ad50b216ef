//! Attributes of inodes, as plain data (no FUSE types).

use std::sync::Arc;
use std::time::SystemTime;

use crate::config::CoreConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    /// The views' links into `inquiries/`.
    Symlink,
}

/// Attributes of one inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub kind: Kind,
    pub size: u64,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: SystemTime,
    /// Part of a final inquiry: its name and attributes change only by a redaction, which
    /// every open checks. The kernel may keep them longer (see `fuse::Ttls`).
    pub settled: bool,
}

impl Attr {
    pub(crate) fn settled_if(self, settled: bool) -> Attr {
        Attr { settled, ..self }
    }
}

#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: Arc<str>,
    pub attr: Attr,
}

/// Owner and modes every inode shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ownership {
    uid: u32,
    gid: u32,
    file_mode: u16,
    dir_mode: u16,
}

impl Ownership {
    pub(crate) fn new(cfg: &CoreConfig) -> Ownership {
        Ownership {
            uid: cfg.uid,
            gid: cfg.gid,
            file_mode: cfg.file_mode,
            dir_mode: cfg.dir_mode,
        }
    }

    pub(crate) fn dir(&self, ino: u64, subdirs: u32, mtime: SystemTime) -> Attr {
        Attr {
            ino,
            kind: Kind::Dir,
            size: 0,
            perm: self.dir_mode,
            nlink: 2 + subdirs,
            uid: self.uid,
            gid: self.gid,
            mtime,
            settled: false,
        }
    }

    /// A symbolic link whose target is `size` bytes long (`lrwxrwxrwx`, as every symlink).
    pub(crate) fn link(&self, ino: u64, size: u64, mtime: SystemTime) -> Attr {
        Attr {
            ino,
            kind: Kind::Symlink,
            size,
            perm: 0o777,
            nlink: 1,
            uid: self.uid,
            gid: self.gid,
            mtime,
            settled: false,
        }
    }

    pub(crate) fn file(&self, ino: u64, size: u64, mtime: SystemTime) -> Attr {
        Attr {
            ino,
            kind: Kind::File,
            size,
            perm: self.file_mode,
            nlink: 1,
            uid: self.uid,
            gid: self.gid,
            mtime,
            settled: false,
        }
    }
}
