//! The thin `fuser::Filesystem` adapter: every handler polls the core's future for its
//! request once and answers at once when it is ready, else hands it to the tokio runtime
//! (`answer`), so no FUSE thread waits on the network. Errors are logged here, once, with
//! the operation: ENOENT, ENOTDIR, EISDIR and EBADF at debug level (shells probe for names
//! all the time), any other errno as a warning, and each is counted by errno. `opendir` and
//! `flush` answer ENOSYS (the kernel then opens directories itself and stops sending
//! FLUSH). A read personafs serves is read (`pread`) into the reply.

use std::ffi::OsStr;
use std::future::Future;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fuser::{
    AccessFlags, BackingId, Config, Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, MountOption, OpenAccMode, OpenFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, Request,
    SessionACL,
};
use tokio::runtime::Handle as Runtime;

use crate::answer::{Answer, poll_once};
use crate::audit::{AuditSink, OpenRecord, Source};
use crate::core::{DirSlot, FsCore};
use crate::error::{FsError, FsResult};
use crate::handles::{CacheBacking, Opened};
use crate::interrupts::caller_signalled;
use crate::kernel_cache::Ttls;
use crate::metadata::{Attr, Kind};
use crate::passthrough::{Offer, Passthrough};

pub mod errno;
pub use errno::{errno_name, errno_of};

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
            threads: 2,
            fs_name: "personafs".into(),
        }
    }
}

pub struct PersonaFs {
    core: Arc<FsCore>,
    rt: Runtime,
    ttls: Ttls,
    passthrough: Arc<Passthrough<BackingId>>,
    audit: Option<Arc<dyn AuditSink>>,
}

/// Who asked for an open, for the audit log.
#[derive(Clone, Copy)]
struct Opener {
    uid: u32,
    gid: u32,
    pid: u32,
}

/// One audit record for an open of `ino` (files only; directories are not audited).
fn audit_open(
    sink: &Option<Arc<dyn AuditSink>>,
    core: &FsCore,
    who: Opener,
    ino: u64,
    outcome: Result<Source, i32>,
) {
    let Some(sink) = sink else { return };
    let file = core.describe(ino);
    if file.is_none() && outcome.is_ok() {
        return;
    }
    sink.record(OpenRecord {
        uid: who.uid,
        gid: who.gid,
        pid: who.pid,
        file,
        outcome,
    });
}

/// The errno of a failed request (`errno_of`), logged once here with the operation: a
/// missing name is routine (shells probe for files all the time), anything else is worth a
/// warning.
fn failed(core: &FsCore, op: &'static str, e: &FsError) -> Errno {
    let errno = errno_of(e);
    core.counters.error(errno_name(errno));
    match errno {
        libc::ENOENT | libc::ENOTDIR | libc::EISDIR | libc::EBADF => {
            tracing::debug!(op, errno, "{op} failed: {e}")
        }
        _ => tracing::warn!(op, errno, "{op} failed: {e}"),
    }
    Errno::from_i32(errno)
}

fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
    }
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
        kind: file_type(a.kind),
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
    /// The adapter over `core`, giving the kernel `opts.attr_ttl` (see `Ttls`).
    pub fn new(core: Arc<FsCore>, rt: Runtime, opts: &FuseOptions) -> Self {
        let passthrough: Arc<Passthrough<BackingId>> = Arc::default();
        // A backing kept for reuse goes with its cache entry.
        let (kept, counters) = (Arc::downgrade(&passthrough), core.counters.clone());
        core.on_cache_remove(move |serial| {
            if let Some(p) = kept.upgrade() {
                p.entry_removed(serial);
                counters
                    .passthrough_kept
                    .store(p.kept() as u64, Ordering::Relaxed);
            }
        });
        PersonaFs {
            ttls: Ttls::new(opts.attr_ttl, core.metadata_ttl()),
            core,
            rt,
            passthrough,
            audit: None,
        }
    }

    /// One request, the one way every request is answered: its future is polled once on
    /// this FUSE thread and answered here when ready, else finished on the runtime, so no
    /// FUSE thread waits on the network (see `answer`). `ok` sends a result; an error is
    /// logged, counted and answered here; a signal to the caller answers EINTR first
    /// (`interrupts`), and only that caller stops waiting: a download goes on.
    fn serve<T, R, F>(
        &self,
        req: &Request,
        op: &'static str,
        work: F,
        reply: R,
        ok: impl FnOnce(R, T) + Send + 'static,
    ) where
        T: Send + 'static,
        R: Fails,
        F: Future<Output = FsResult<T>> + Send + 'static,
    {
        let work = match poll_once(&self.rt, work) {
            Answer::Now(Ok(v)) => return ok(reply, v),
            Answer::Now(Err(e)) => return reply.fail(failed(&self.core, op, &e)),
            Answer::Later(work) => work,
        };
        let (core, caller) = (self.core.clone(), req.pid());
        self.rt.spawn(async move {
            tokio::select! {
                biased;
                done = work => match done {
                    Ok(v) => ok(reply, v),
                    Err(e) => reply.fail(failed(&core, op, &e)),
                },
                () = caller_signalled(caller) => {
                    core.counters.error(errno_name(libc::EINTR));
                    tracing::debug!(op, "{op} interrupted by the caller's signal");
                    reply.fail(Errno::EINTR)
                }
            }
        });
    }

    /// `readdir` and `readdirplus`: the entries from `offset`, each handed to `add` until
    /// the reply is full.
    fn list_dir<R: DirReply>(
        &self,
        req: &Request,
        ino: INodeNo,
        offset: u64,
        reply: R,
        add: impl Fn(&mut R, DirSlot<'_>) -> bool + Send + 'static,
    ) {
        let (op, plus) = (R::OP, R::PLUS);
        tracing::trace!(ino = ino.0, offset, "{op}");
        let core = self.core.clone();
        let work = async move { core.dir_listing(ino.0, offset).await };
        let core = self.core.clone();
        self.serve(req, op, work, reply, move |mut reply, listing| {
            core.hand_over(&listing, offset, plus, |e| add(&mut reply, e));
            reply.ok()
        });
    }

    /// Record every open of a file in `sink`.
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }
}

/// Reply to an open: through a kernel backing file (passthrough) when the passthrough
/// decision gives one, else served by personafs.
fn answer_open(
    core: &FsCore,
    passthrough: &Passthrough<BackingId>,
    reply: ReplyOpen,
    ino: u64,
    o: Opened,
) {
    let offer = o.backing.as_ref().map(|b| Offer {
        serial: b.serial,
        file: b.file.as_ref().map(|f| f.file.as_fd()),
    });
    let chosen = passthrough.choose(ino, o.fh, offer, |fd| reply.open_backing(fd));
    if let Some(id) = chosen {
        let t = &core.counters;
        t.passthrough_opens.fetch_add(1, Ordering::Relaxed);
        match o.backing {
            Some(CacheBacking { file: None, .. }) => {
                t.passthrough_kept_opens.fetch_add(1, Ordering::Relaxed);
            }
            _ => t
                .passthrough_kept
                .store(passthrough.kept() as u64, Ordering::Relaxed),
        }
        // The kernel refuses any other open flag with passthrough.
        return reply.opened_passthrough(FileHandle(o.fh), FopenFlags::empty(), &id);
    }
    let flags = if o.keep_cache {
        FopenFlags::FOPEN_KEEP_CACHE
    } else {
        FopenFlags::empty()
    };
    reply.opened(FileHandle(o.fh), flags)
}

/// A reply that can carry an error: every reply `serve` sends.
trait Fails: Send + 'static {
    fn fail(self, e: Errno);
}

macro_rules! fails {
    ($($reply:ty),*) => {
        $(impl Fails for $reply {
            fn fail(self, e: Errno) {
                self.error(e)
            }
        })*
    };
}
fails!(
    ReplyEntry,
    ReplyAttr,
    ReplyData,
    ReplyDirectory,
    ReplyDirectoryPlus
);

/// An open's reply: each outcome, error or not, is also an audit record.
struct OpenReply {
    reply: ReplyOpen,
    core: Arc<FsCore>,
    audit: Option<Arc<dyn AuditSink>>,
    who: Opener,
    ino: u64,
}

impl OpenReply {
    fn opened(self, passthrough: &Passthrough<BackingId>, o: Opened) {
        audit_open(&self.audit, &self.core, self.who, self.ino, Ok(o.source));
        answer_open(&self.core, passthrough, self.reply, self.ino, o)
    }
}

impl Fails for OpenReply {
    fn fail(self, e: Errno) {
        audit_open(&self.audit, &self.core, self.who, self.ino, Err(e.code()));
        self.reply.error(e)
    }
}

/// The two directory replies, for `list_dir`.
trait DirReply: Fails {
    const OP: &'static str;
    /// Whether entries count as lookups (readdirplus).
    const PLUS: bool;
    fn ok(self);
}

macro_rules! dir_reply {
    ($reply:ty, $op:literal, $plus:literal) => {
        impl DirReply for $reply {
            const OP: &'static str = $op;
            const PLUS: bool = $plus;
            fn ok(self) {
                <$reply>::ok(self)
            }
        }
    };
}
dir_reply!(ReplyDirectory, "readdir", false);
dir_reply!(ReplyDirectoryPlus, "readdirplus", true);

/// Redactions and changed listings reach the kernel through the session's notifier.
pub struct KernelNotifier(fuser::Notifier);

impl KernelNotifier {
    pub fn new(notifier: fuser::Notifier) -> KernelNotifier {
        KernelNotifier(notifier)
    }
}

impl crate::KernelCaches for KernelNotifier {
    fn forget_entry(&self, parent: u64, name: &str) {
        // ENOENT: the kernel had already let it go.
        if let Err(e) = self.0.inval_entry(INodeNo(parent), OsStr::new(name))
            && e.raw_os_error() != Some(libc::ENOENT)
        {
            tracing::debug!("could not drop the kernel's entry of {name}: {e}");
        }
    }

    fn forget_listing(&self, dir: u64) {
        // Offset 0, length 0: every page, which for a directory is its cached entries.
        if let Err(e) = self.0.inval_inode(INodeNo(dir), 0, 0)
            && e.raw_os_error() != Some(libc::ENOENT)
        {
            tracing::debug!("could not drop the kernel's entries of directory {dir}: {e}");
        }
    }
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

/// What a mount asks of the kernel at `init`; whether FUSE passthrough was granted.
pub fn kernel_settings(config: &mut KernelConfig) -> bool {
    // Always readdirplus: one listing answers `ls -l` with no further lookups.
    let _ = config.add_capabilities(InitFlags::FUSE_DO_READDIRPLUS);
    let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
    let _ = config.set_max_readahead(1 << 20);
    let _ = config.set_max_background(64);
    // Warm reads straight from the cache files. The cache sits on an ordinary filesystem,
    // so a stacking depth of 1 is enough.
    config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
        && config.set_max_stack_depth(1).is_ok()
}

impl fuser::Filesystem for PersonaFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        let passthrough = kernel_settings(config);
        self.passthrough.set_enabled(passthrough);
        if passthrough {
            tracing::info!("FUSE passthrough on: cached files are read by the kernel directly");
        } else {
            tracing::info!(
                "FUSE passthrough not offered by the kernel: cached files are served by personafs, with the page cache kept across opens"
            );
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(name) = name.to_str().map(str::to_owned) else {
            return reply.error(Errno::ENOENT);
        };
        tracing::trace!(parent = parent.0, name = %name, "lookup");
        let core = self.core.clone();
        let work = async move { core.lookup(parent.0, &name).await };
        let ttls = self.ttls;
        self.serve(req, "lookup", work, reply, move |reply, a| {
            reply.entry(&ttls.of(&a), &fuse_attr(&a), Generation(0))
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        // fuser's default `batch_forget` comes here once per inode.
        self.core.forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        tracing::trace!(ino = ino.0, "getattr");
        let core = self.core.clone();
        let work = async move { core.getattr(ino.0).await };
        let ttls = self.ttls;
        self.serve(req, "getattr", work, reply, move |reply, a| {
            reply.attr(&ttls.of(&a), &fuse_attr(&a))
        });
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        // Computed from the inode alone: never waits.
        match self.core.readlink(ino.0) {
            Ok(target) => reply.data(target.as_bytes()),
            Err(e) => reply.error(failed(&self.core, "readlink", &e)),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let who = Opener {
            uid: req.uid(),
            gid: req.gid(),
            pid: req.pid(),
        };
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            self.core.counters.error(errno_name(libc::EROFS));
            audit_open(&self.audit, &self.core, who, ino.0, Err(libc::EROFS));
            return reply.error(Errno::EROFS);
        }
        tracing::trace!(ino = ino.0, "open");
        let (core, passthrough) = (self.core.clone(), self.passthrough.clone());
        let work = async move {
            let kept = |serial| passthrough.keeps(ino.0, serial);
            core.open_with(ino.0, kept).await
        };
        let reply = OpenReply {
            reply,
            core: self.core.clone(),
            audit: self.audit.clone(),
            who,
            ino: ino.0,
        };
        let passthrough = self.passthrough.clone();
        self.serve(req, "open", work, reply, move |reply, o| {
            reply.opened(&passthrough, o)
        });
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        tracing::trace!(fh = fh.0, offset, size, "read");
        // Bytes already there (memory, an open cache file, what a download has written) are
        // answered on this thread: a hop to the runtime's threads costs a wake-up per read,
        // and on a cold read those threads are busy downloading. A file range is read into
        // the reply.
        let core = self.core.clone();
        let work = async move { core.read_data(fh.0, offset, size).await?.into_bytes() };
        self.serve(req, "read", work, reply, |reply, data| reply.data(&data));
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
        // The backing is kept (or let go) before the handle goes: whoever sees no open
        // handle sees the kept backing too.
        self.passthrough.release(fh.0);
        self.core.release(fh.0);
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

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // ENOSYS once, and the kernel opens every directory itself from then on, keeping
        // what it reads in its directory cache: a walk saves an `opendir` and a `releasedir`
        // per directory. What it keeps is checked when it asks for the directory again, and
        // dropped on a change (`FsCore::dir_entries`).
        reply.error(Errno::ENOSYS);
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        self.list_dir(req, ino, offset, reply, |reply, e| {
            reply.add(INodeNo(e.attr.ino), e.next, file_type(e.attr.kind), e.name)
        });
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        let ttls = self.ttls;
        self.list_dir(req, ino, offset, reply, move |reply, e| {
            reply.add(
                INodeNo(e.attr.ino),
                e.next,
                e.name,
                &ttls.of(&e.attr),
                &fuse_attr(&e.attr),
                Generation(0),
            )
        });
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let stats = self.core.stats();
        let bsize = 4096u64;
        reply.statfs(
            stats.capacity.div_ceil(bsize),
            0,
            0,
            stats.inodes,
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

    // No write operation is implemented: the mount is read-only (`MountOption::RO`), so the
    // kernel answers EROFS to every change before asking personafs (`fs_tree.rs::every_change_is_erofs`).
}
