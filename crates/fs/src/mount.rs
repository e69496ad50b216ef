//! Putting a mount together: the core over its API, cache and store, the FUSE adapter, the
//! session and the kernel's notifier. The binary and every in-process test mount start their
//! mounts here, so they all run the same wiring; what only the binary does (the cache lock,
//! signals, readiness, metrics, webhooks) stays in the binary.
//!
//! Two steps, because some work must be done on the core before the kernel can ask anything
//! (seeding the listing with the startup check's page, the status and metrics servers):
//! [`wire`] builds the core and the adapter, [`Wired::mount`] mounts them.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use personafs_client::PersonaApi;
use tokio::runtime::Handle as Runtime;

use crate::audit::AuditSink;
use crate::cache::DiskCache;
use crate::config::CoreConfig;
use crate::core::FsCore;
use crate::fuse::{FuseOptions, KernelNotifier, PersonaFs, session_config};

/// What a mount is made of.
pub struct Parts {
    pub api: Arc<dyn PersonaApi>,
    /// The disk cache, opened (the binary opens it with its index read in the background).
    pub cache: Arc<DiskCache>,
    /// The core's settings, with its store, counters and shared views; its `runtime` is the
    /// one [`wire`] is given.
    pub core: CoreConfig,
    pub fuse: FuseOptions,
    /// Where every open of a file is recorded (`--audit-log`).
    pub audit: Option<Arc<dyn AuditSink>>,
}

/// Wire `parts` together: the core, running its background work on `rt`, and the FUSE adapter
/// over it, answering on `rt` too. Nothing is mounted yet.
pub fn wire(parts: Parts, rt: Runtime) -> Wired {
    let core_cfg = CoreConfig {
        runtime: Some(rt.clone()),
        ..parts.core
    };
    let core = FsCore::new(parts.api, parts.cache, core_cfg);
    let mut fs = PersonaFs::new(core.clone(), rt, &parts.fuse);
    if let Some(sink) = parts.audit {
        fs = fs.with_audit(sink);
    }
    Wired {
        core,
        fs,
        fuse: parts.fuse,
    }
}

/// A core and its adapter, not mounted yet.
pub struct Wired {
    core: Arc<FsCore>,
    fs: PersonaFs,
    fuse: FuseOptions,
}

impl Wired {
    /// The core: what must be done before the kernel can ask is done with it.
    pub fn core(&self) -> &Arc<FsCore> {
        &self.core
    }

    /// Mount at `mountpoint` (the kernel's `init` is answered before this returns) and serve
    /// on a thread of the session's own. `ended` is called on that thread when the session
    /// ends, by [`Mount::unmount`] or an unmount from outside.
    pub fn mount(
        self,
        mountpoint: &Path,
        ended: impl FnOnce() + Send + 'static,
    ) -> io::Result<Mount> {
        let mut session = fuser::Session::new(self.fs, mountpoint, &session_config(&self.fuse))?;
        // Changed listings and redactions must reach the kernel's caches.
        self.core
            .set_kernel_caches(Arc::new(KernelNotifier::new(session.notifier())));
        let unmounter = session.unmount_callable();
        let thread = std::thread::Builder::new()
            .name("fuse-session".into())
            .spawn(move || {
                let ended_with = session.run();
                ended();
                ended_with
            })?;
        Ok(Mount {
            core: self.core,
            unmounter,
            thread: Some(thread),
            refused: false,
        })
    }
}

/// A running mount. Dropped, it is unmounted.
pub struct Mount {
    core: Arc<FsCore>,
    unmounter: fuser::SessionUnmounter,
    thread: Option<JoinHandle<io::Result<()>>>,
    /// An unmount was refused (busy): the session may still run, and is not waited for.
    refused: bool,
}

impl Mount {
    pub fn core(&self) -> &Arc<FsCore> {
        &self.core
    }

    /// Unmount: the session then ends (see [`Mount::join`]). Nothing to do when it was
    /// unmounted already. Tried once: refused, the mount is left to `personafs unmount`.
    pub fn unmount(&mut self) -> io::Result<()> {
        let tried = self.unmounter.unmount();
        self.refused |= tried.is_err();
        tried
    }

    /// Wait until the session ends; how it ended.
    pub fn join(mut self) -> io::Result<()> {
        self.wait()
    }

    /// Unmount and wait until the session ends.
    pub fn unmount_and_join(mut self) -> io::Result<()> {
        self.unmount()?;
        self.wait()
    }

    fn wait(&mut self) -> io::Result<()> {
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| io::Error::other("the FUSE session's thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // Waiting for a session that was not unmounted would wait forever.
        if !self.refused && self.unmount().is_ok() {
            let _ = self.wait();
        }
    }
}
