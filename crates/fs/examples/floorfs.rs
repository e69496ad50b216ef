//! The benchmark's FUSE floor: a read-only mirror of a local directory that answers every
//! request from memory and every open by passthrough, with a backing file kept per inode,
//! and no `opendir` (the kernel opens directories itself, as personafs lets it).
//! It does the least work any FUSE filesystem can do for a walk, on the same fuser, kernel
//! settings, mount options and threads as personafs (its own functions and
//! defaults), so a walk through it costs only FUSE's own round trips. `scripts/bench.sh`
//! measures it beside personafs: the gap between the floor and local disk is what no FUSE
//! filesystem can close on that machine.
//!
//! Usage: floorfs SOURCE MOUNTPOINT [THREADS] (personafs's default when left out); unmounts
//! on SIGTERM/SIGINT.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    BackingId, Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo,
    KernelConfig, OpenFlags, ReplyAttr, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry,
    ReplyOpen, Request,
};
use parking_lot::Mutex;
use personafs_fs::fuse::{FuseOptions, kernel_settings, session_config};

const TTL: Duration = Duration::from_secs(3600);

struct Node {
    path: PathBuf,
    attr: FileAttr,
    /// Directories: (name, inode) of each entry, in listing order.
    children: Vec<(OsString, u64)>,
}

struct Floor {
    nodes: Vec<Node>, // inode n is nodes[n - 1]
    /// Each regular file's backing id, registered at its first open and kept.
    backings: Mutex<HashMap<u64, Arc<BackingId>>>,
}

fn attr_of(ino: u64, meta: &std::fs::Metadata) -> FileAttr {
    let t = meta.modified().unwrap_or(UNIX_EPOCH);
    FileAttr {
        ino: INodeNo(ino),
        size: meta.len(),
        blocks: meta.blocks(),
        atime: t,
        mtime: t,
        ctime: t,
        crtime: t,
        kind: if meta.is_dir() {
            FileType::Directory
        } else {
            FileType::RegularFile
        },
        perm: if meta.is_dir() { 0o555 } else { 0o444 },
        nlink: if meta.is_dir() { 2 } else { 1 },
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: 0,
        blksize: 128 * 1024,
        flags: 0,
    }
}

impl Floor {
    /// Every directory and regular file under `root`, read once.
    fn load(root: &Path) -> std::io::Result<Floor> {
        let mut nodes = vec![Node {
            path: root.to_path_buf(),
            attr: attr_of(1, &std::fs::metadata(root)?),
            children: Vec::new(),
        }];
        let mut i = 0;
        while i < nodes.len() {
            if nodes[i].attr.kind == FileType::Directory {
                let mut entries: Vec<_> =
                    std::fs::read_dir(&nodes[i].path)?.collect::<Result<_, _>>()?;
                entries.sort_by_key(|e| e.file_name());
                for e in entries {
                    let meta = e.metadata()?;
                    if !(meta.is_dir() || meta.is_file()) {
                        continue;
                    }
                    let ino = nodes.len() as u64 + 1;
                    nodes[i].children.push((e.file_name(), ino));
                    nodes.push(Node {
                        path: e.path(),
                        attr: attr_of(ino, &meta),
                        children: Vec::new(),
                    });
                }
            }
            i += 1;
        }
        Ok(Floor {
            nodes,
            backings: Mutex::new(HashMap::new()),
        })
    }

    fn node(&self, ino: INodeNo) -> Option<&Node> {
        self.nodes.get((ino.0 as usize).checked_sub(1)?)
    }

    /// The entries of `dir` from `offset`, `.` and `..` first, until `add` says it is full.
    fn list(&self, dir: &Node, offset: u64, mut add: impl FnMut(u64, u64, &OsStr) -> bool) {
        let dots = [(dir.attr.ino.0, "."), (dir.attr.ino.0, "..")];
        let total = dots.len() + dir.children.len();
        for i in offset as usize..total {
            let (ino, name) = match i.checked_sub(dots.len()) {
                None => (dots[i].0, OsStr::new(dots[i].1)),
                Some(j) => (dir.children[j].1, dir.children[j].0.as_os_str()),
            };
            if add(ino, i as u64 + 1, name) {
                return;
            }
        }
    }
}

impl fuser::Filesystem for Floor {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        if !kernel_settings(config) {
            return Err(std::io::Error::other(
                "the kernel offers no FUSE passthrough",
            ));
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = self.node(parent).and_then(|d| {
            let (_, ino) = d.children.iter().find(|(n, _)| n == name)?;
            self.node(INodeNo(*ino))
        });
        match found {
            Some(n) => reply.entry(&TTL, &n.attr, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.node(ino) {
            Some(n) => reply.attr(&TTL, &n.attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let Some(node) = self.node(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let mut backings = self.backings.lock();
        let id = match backings.get(&ino.0) {
            Some(id) => id.clone(),
            None => match File::open(&node.path).and_then(|f| reply.open_backing(&f)) {
                Ok(id) => backings.entry(ino.0).or_insert(Arc::new(id)).clone(),
                Err(e) => {
                    eprintln!("floorfs: open {}: {e}", node.path.display());
                    return reply.error(Errno::EIO);
                }
            },
        };
        drop(backings);
        reply.opened_passthrough(FileHandle(0), FopenFlags::empty(), &id);
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // As personafs: the kernel opens directories itself and caches their listings.
        reply.error(Errno::ENOSYS);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(dir) = self.node(ino) else {
            return reply.error(Errno::ENOENT);
        };
        self.list(dir, offset, |ino, next, name| {
            let kind = self
                .node(INodeNo(ino))
                .map_or(FileType::Directory, |n| n.attr.kind);
            reply.add(INodeNo(ino), next, kind, name)
        });
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let Some(dir) = self.node(ino) else {
            return reply.error(Errno::ENOENT);
        };
        self.list(dir, offset, |ino, next, name| {
            match self.node(INodeNo(ino)) {
                Some(n) => reply.add(INodeNo(ino), next, name, &TTL, &n.attr, Generation(0)),
                None => false,
            }
        });
        reply.ok();
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: floorfs SOURCE MOUNTPOINT [THREADS]");
        std::process::exit(2);
    }
    let defaults = FuseOptions::default();
    let opts = FuseOptions {
        threads: args
            .get(3)
            .map_or(defaults.threads, |s| s.parse().expect("THREADS")),
        fs_name: "floorfs".into(),
        ..defaults
    };
    let floor = Floor::load(Path::new(&args[1]))?;
    let config = session_config(&opts);
    // SIGTERM and SIGINT are blocked before the session's threads start (they inherit the
    // mask), then awaited here to unmount.
    // SAFETY: plain libc calls on a signal set this function owns.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let session = fuser::spawn_mount(floor, &args[2], &config)?;
    let mut sig = 0;
    // SAFETY: `set` is the initialised signal set above.
    unsafe { libc::sigwait(&set, &mut sig) };
    session.umount_and_join()
}
