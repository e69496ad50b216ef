//! The thin `fuser::Filesystem` adapter: every handler hands its request and reply to the
//! async core on the tokio runtime and returns, so no FUSE thread waits on the network.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::Weak;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, BackgroundSession, BackingId, Config, Errno, FileAttr, FileHandle, FileType,
    FopenFlags, Generation, INodeNo, InitFlags, KernelConfig, MountOption, OpenAccMode, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, SessionACL, TimeOrNow, WriteFlags,
};
use parking_lot::Mutex;
use tokio::runtime::Handle as Runtime;

use super::core::{Attr, DirEntry, FsCore, Kind};
use super::reader::Opened;
use personafs_client::Error;

/// How the kernel side of the mount is set up.
#[derive(Debug, Clone)]
pub struct FuseOptions {
    /// Entry and attribute TTL given to the kernel.
    pub attr_ttl: Duration,
    pub allow_other: bool,
    pub threads: usize,
    /// Shown as the mount's source in /proc/mounts.
    pub fs_name: String,
}

impl Default for FuseOptions {
    fn default() -> Self {
        FuseOptions {
            attr_ttl: Duration::from_secs(5),
            allow_other: false,
            threads: 4,
            fs_name: "personafs".into(),
        }
    }
}

/// A listing taken at `opendir`, so paging through it is consistent and costs nothing.
struct DirSnapshot {
    ino: u64,
    parent: u64,
    entries: Vec<DirEntry>,
}

/// Kernel backing files for passthrough reads. The kernel keeps an inode in one io mode at a
/// time: while any handle of an inode is open through personafs ("cached" mode), a
/// passthrough open fails, and while a passthrough handle is open, every other open must be
/// passthrough too, with the same backing id. So both kinds of open are counted per inode.
#[derive(Default)]
struct Backings {
    by_ino: HashMap<u64, Weak<BackingId>>,
    by_fh: HashMap<u64, Arc<BackingId>>,
    /// Handles served by personafs itself: fh → inode, and open count per inode.
    cached_fhs: HashMap<u64, u64>,
    cached_opens: HashMap<u64, usize>,
}

impl Backings {
    /// The backing id to answer this open with, or `None` to serve it ourselves.
    fn choose(
        &mut self,
        reply: &ReplyOpen,
        ino: u64,
        fh: u64,
        file: Option<&std::fs::File>,
    ) -> io::Result<Option<Arc<BackingId>>> {
        let id = match self.by_ino.get(&ino).and_then(Weak::upgrade) {
            Some(id) => Some(id),
            None => match file {
                Some(file) if !self.cached_opens.contains_key(&ino) => {
                    let id = Arc::new(reply.open_backing(file)?);
                    self.by_ino.insert(ino, Arc::downgrade(&id));
                    Some(id)
                }
                _ => None,
            },
        };
        match &id {
            Some(id) => {
                self.by_fh.insert(fh, id.clone());
            }
            None => {
                self.cached_fhs.insert(fh, ino);
                *self.cached_opens.entry(ino).or_insert(0) += 1;
            }
        }
        Ok(id)
    }

    fn release(&mut self, fh: u64) {
        if self.by_fh.remove(&fh).is_some() {
            self.by_ino.retain(|_, w| w.strong_count() > 0);
        } else if let Some(ino) = self.cached_fhs.remove(&fh)
            && let Some(n) = self.cached_opens.get_mut(&ino)
        {
            *n -= 1;
            if *n == 0 {
                self.cached_opens.remove(&ino);
            }
        }
    }
}

pub struct PersonaFs {
    core: Arc<FsCore>,
    rt: Runtime,
    ttl: Duration,
    dirs: Arc<Mutex<HashMap<u64, Arc<DirSnapshot>>>>,
    next_dir_fh: AtomicU64,
    /// Whether the kernel accepted FUSE passthrough (and it has not failed since).
    passthrough: Arc<AtomicBool>,
    backings: Arc<Mutex<Backings>>,
}

fn errno(e: &Error) -> Errno {
    Errno::from_i32(e.errno())
}

fn fuse_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.mtime,
        crtime: a.mtime,
        kind: match a.kind {
            Kind::Dir => FileType::Directory,
            Kind::File => FileType::RegularFile,
        },
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: 128 * 1024,
        flags: 0,
    }
}

impl PersonaFs {
    pub fn new(core: Arc<FsCore>, rt: Runtime, ttl: Duration) -> Self {
        PersonaFs {
            core,
            rt,
            ttl,
            dirs: Arc::new(Mutex::new(HashMap::new())),
            // Directory handles live apart from file handles; the high bit keeps them apart.
            next_dir_fh: AtomicU64::new(1 << 63),
            passthrough: Arc::new(AtomicBool::new(false)),
            backings: Arc::new(Mutex::new(Backings::default())),
        }
    }

    fn snapshot_entries<'a>(
        snap: &'a DirSnapshot,
        core: &FsCore,
        offset: u64,
    ) -> impl Iterator<Item = (u64, Attr, &'a str)> + 'a {
        let dot = core.dir_attr_of(snap.ino);
        let dotdot = core.dir_attr_of(snap.parent);
        [(dot, "."), (dotdot, "..")]
            .into_iter()
            .chain(snap.entries.iter().map(|e| (e.attr, &*e.name)))
            .enumerate()
            .skip(offset as usize)
            .map(|(i, (attr, name))| (i as u64 + 1, attr, name))
    }
}

/// Reply to an open: through a kernel backing file (passthrough) when the file is complete
/// in the cache and the kernel allows it for this inode now, else served by personafs.
fn answer_open(
    core: &FsCore,
    passthrough: &AtomicBool,
    backings: &Mutex<Backings>,
    reply: ReplyOpen,
    ino: u64,
    o: Opened,
) {
    let flags = if o.keep_cache {
        FopenFlags::FOPEN_KEEP_CACHE
    } else {
        FopenFlags::empty()
    };
    let file = o.backing.filter(|_| passthrough.load(Ordering::Relaxed));
    let chosen = backings.lock().choose(&reply, ino, o.fh, file.as_ref());
    match chosen {
        Ok(Some(id)) => {
            core.counters
                .passthrough_opens
                .fetch_add(1, Ordering::Relaxed);
            // The kernel refuses any other open flag with passthrough.
            return reply.opened_passthrough(FileHandle(o.fh), FopenFlags::empty(), &id);
        }
        Ok(None) => {}
        Err(e) => {
            passthrough.store(false, Ordering::Relaxed);
            tracing::warn!(
                "FUSE passthrough refused ({e}); serving cached files through personafs from now on"
            );
            backings.lock().choose(&reply, ino, o.fh, None).ok();
        }
    }
    reply.opened(FileHandle(o.fh), flags)
}

/// The fuser session configuration: read-only, private unless `allow_other`.
pub fn session_config(opts: &FuseOptions) -> Config {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoExec,
        MountOption::NoAtime,
        MountOption::FSName(opts.fs_name.clone()),
        MountOption::Subtype("personafs".into()),
        MountOption::DefaultPermissions,
    ];
    config.acl = if opts.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(opts.threads.max(1));
    config
}

/// Mount `fs` at `mountpoint`; the session runs on its own threads until
/// `umount_and_join()`.
pub fn mount(
    fs: PersonaFs,
    mountpoint: &Path,
    opts: &FuseOptions,
) -> io::Result<BackgroundSession> {
    fuser::spawn_mount(fs, mountpoint, &session_config(opts))
}

impl fuser::Filesystem for PersonaFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // Always readdirplus: one listing answers `ls -l` with no further lookups.
        let _ = config.add_capabilities(InitFlags::FUSE_DO_READDIRPLUS);
        let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
        let _ = config.set_max_readahead(1 << 20);
        let _ = config.set_max_background(64);
        // Warm reads straight from the cache files. The cache sits on an ordinary
        // filesystem, so a stacking depth of 1 is enough.
        let passthrough = config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(1).is_ok();
        self.passthrough.store(passthrough, Ordering::Relaxed);
        if passthrough {
            tracing::info!("FUSE passthrough on: cached files are read by the kernel directly");
        } else {
            tracing::info!(
                "FUSE passthrough not offered by the kernel: cached files are served by personafs, with the page cache kept across opens"
            );
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(name) = name.to_str().map(str::to_owned) else {
            return reply.error(Errno::ENOENT);
        };
        tracing::trace!(parent = parent.0, name = %name, "lookup");
        // Answered right here when memory has the answer: a trip through the async runtime
        // costs more than the answer itself.
        let _rt = self.rt.enter(); // read-ahead may spawn
        match self.core.lookup_now(parent.0, &name) {
            Some(Ok(a)) => return reply.entry(&self.ttl, &fuse_attr(&a), Generation(0)),
            Some(Err(e)) => return reply.error(errno(&e)),
            None => {}
        }
        let (core, ttl) = (self.core.clone(), self.ttl);
        self.rt.spawn(async move {
            match core.lookup(parent.0, &name).await {
                Ok(a) => reply.entry(&ttl, &fuse_attr(&a), Generation(0)),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        tracing::trace!(ino = ino.0, "getattr");
        match self.core.getattr_now(ino.0) {
            Some(Ok(a)) => return reply.attr(&self.ttl, &fuse_attr(&a)),
            Some(Err(e)) => return reply.error(errno(&e)),
            None => {}
        }
        let (core, ttl) = (self.core.clone(), self.ttl);
        self.rt.spawn(async move {
            match core.getattr(ino.0).await {
                Ok(a) => reply.attr(&ttl, &fuse_attr(&a)),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        tracing::trace!(ino = ino.0, "open");
        // Warm files open right here: a local open, no network, no waiting.
        if let Some(o) = self.core.try_open_cached(ino.0) {
            return answer_open(
                &self.core,
                &self.passthrough,
                &self.backings,
                reply,
                ino.0,
                o,
            );
        }
        let core = self.core.clone();
        let passthrough = self.passthrough.clone();
        let backings = self.backings.clone();
        self.rt.spawn(async move {
            match core.open(ino.0).await {
                Ok(o) => answer_open(&core, &passthrough, &backings, reply, ino.0, o),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        tracing::trace!(fh = fh.0, offset, size, "read");
        let core = self.core.clone();
        self.rt.spawn(async move {
            match core.read(fh.0, offset, size).await {
                Ok(data) => reply.data(&data),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.core.release(fh.0);
        self.backings.lock().release(fh.0);
        reply.ok();
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        // Nothing is ever written, so nothing to flush: ENOSYS tells the kernel to stop
        // sending FLUSH at every close, saving a round trip per file.
        reply.error(Errno::ENOSYS);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        tracing::trace!(ino = ino.0, "opendir");
        let fh = self.next_dir_fh.fetch_add(1, Ordering::Relaxed);
        let ino = ino.0;
        let answer = move |core: &FsCore,
                           dirs: &Mutex<HashMap<u64, Arc<DirSnapshot>>>,
                           entries: Vec<DirEntry>,
                           reply: ReplyOpen| {
            let snapshot = DirSnapshot {
                ino,
                parent: core.parent_of(ino),
                entries,
            };
            dirs.lock().insert(fh, Arc::new(snapshot));
            reply.opened(FileHandle(fh), FopenFlags::empty())
        };
        let _rt = self.rt.enter(); // read-ahead may spawn
        match self.core.readdir_now(ino) {
            Some(Ok(entries)) => return answer(&self.core, &self.dirs, entries, reply),
            Some(Err(e)) => return reply.error(errno(&e)),
            None => {}
        }
        let core = self.core.clone();
        let dirs = self.dirs.clone();
        self.rt.spawn(async move {
            match core.readdir(ino).await {
                Ok(entries) => answer(&core, &dirs, entries, reply),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(snap) = self.dirs.lock().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        for (next, attr, name) in Self::snapshot_entries(&snap, &self.core, offset) {
            let kind = match attr.kind {
                Kind::Dir => FileType::Directory,
                Kind::File => FileType::RegularFile,
            };
            if reply.add(INodeNo(attr.ino), next, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let Some(snap) = self.dirs.lock().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        for (next, attr, name) in Self::snapshot_entries(&snap, &self.core, offset) {
            if reply.add(
                INodeNo(attr.ino),
                next,
                name,
                &self.ttl,
                &fuse_attr(&attr),
                Generation(0),
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.dirs.lock().remove(&fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let stats = self.core.cache.stats();
        let bsize = 4096u64;
        let files = self.core.inode_count() as u64;
        reply.statfs(
            stats.max_size.div_ceil(bsize),
            0,
            0,
            files,
            0,
            bsize as u32,
            255,
            bsize as u32,
        );
    }

    fn access(&self, _req: &Request, _ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        if mask.contains(AccessFlags::W_OK) {
            reply.error(Errno::EROFS)
        } else {
            reply.ok()
        }
    }

    // Read-only: every change is EROFS.

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        reply.error(Errno::EROFS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }
}
