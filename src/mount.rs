//! Putting a mount together: runtime, Persona client, cache, core, FUSE session; and
//! taking it down cleanly on a signal or an external unmount.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;

use crate::config::MountConfig;
use crate::webhook::WebhookCounts;
use personafs_client::shared_state::SharedViews;
use personafs_client::telemetry::{Snapshot, Telemetry};
use personafs_client::{ClientConfig, InquiryPage, PersonaApi};
use personafs_fs::cache::{CacheLimits, CacheLock, DiskCache};
use personafs_fs::store::MetadataStore;
use personafs_fs::{CoreConfig, Counters, FsCore, FuseOptions, PrefetchConfig};

/// The parts of `MountConfig` the core needs.
pub fn core_config(cfg: &MountConfig) -> CoreConfig {
    CoreConfig {
        filters: cfg.filters.clone(),
        metadata_ttl: cfg.metadata_ttl,
        negative_ttl: cfg.negative_ttl,
        deltas: Some(personafs_fs::DeltaConfig {
            overlap: cfg.delta_overlap,
            full_listing_every: cfg.full_listing_every,
        }),
        file_url_lifetime: cfg.file_url_lifetime,
        url_refresh_margin: cfg.url_refresh_margin,
        uid: cfg.uid,
        gid: cfg.gid,
        file_mode: cfg.file_mode,
        dir_mode: cfg.dir_mode,
        views: cfg.views,
        io_timeout: cfg.io_timeout,
        prefetch: PrefetchConfig {
            enabled: cfg.prefetch,
            // Read-ahead never takes more than a quarter of the cache.
            max_unread_bytes: PrefetchConfig::default()
                .max_unread_bytes
                .min(cfg.cache_max_size / 4),
            ..PrefetchConfig::default()
        },
        ..CoreConfig::default()
    }
}

pub fn fuse_options(cfg: &MountConfig) -> FuseOptions {
    FuseOptions {
        attr_ttl: cfg.attr_ttl,
        allow_other: cfg.allow_other,
        threads: cfg.threads,
        fs_name: "personafs".into(),
    }
}

pub fn open_cache(dir: &Path, limits: CacheLimits) -> anyhow::Result<Arc<DiskCache>> {
    DiskCache::open_dir(dir, limits)
        .with_context(|| format!("cannot use cache directory {}", dir.display()))
}

/// Take the cache directory for a mount (`Some(mountpoint)`) or a command that changes it,
/// for as long as the returned lock lives. Refused, naming the holder, while another mount or
/// command has it: two users of one directory would delete each other's files.
pub fn lock_cache(dir: &Path, mountpoint: Option<&Path>, what: &str) -> anyhow::Result<CacheLock> {
    match mountpoint {
        Some(mp) => CacheLock::for_mount(dir, mp),
        None => CacheLock::for_command(dir, what),
    }
    .map_err(|e| match mountpoint {
        Some(_) => anyhow::anyhow!("{e}: each mount needs a cache directory of its own"),
        None => anyhow::anyhow!("cannot run `{what}`: {e}; unmount it first"),
    })
}

pub fn cache_limits(cfg: &MountConfig) -> CacheLimits {
    CacheLimits {
        max_size: cfg.cache_max_size,
        min_free: cfg.cache_min_free,
        max_age: cfg.cache_max_age,
    }
}

/// Whether the cache directory has a metadata store (the mount can then start offline).
pub fn has_store(cfg: &MountConfig) -> bool {
    cfg.cache_dir.join(personafs_fs::store::FILE_NAME).is_file()
}

/// The client configuration of the startup check when the mount could start offline: one
/// retry and short timeouts, so an unreachable Persona costs seconds, not every retry's wait.
pub fn quick_check_config(cfg: &ClientConfig) -> ClientConfig {
    ClientConfig {
        max_retries: cfg.max_retries.min(1),
        connect_timeout: cfg.connect_timeout.min(Duration::from_secs(3)),
        request_timeout: cfg.request_timeout.min(Duration::from_secs(15)),
        ..startup_check_config(cfg)
    }
}

/// The longest the startup check waits on Persona, whatever `--io-timeout`: a silent API
/// makes `personafs mount` fail in well under a minute.
pub const STARTUP_CHECK_LIMIT: Duration = Duration::from_secs(30);

/// The client configuration of the startup check: its deadline at most
/// [`STARTUP_CHECK_LIMIT`].
pub fn startup_check_config(cfg: &ClientConfig) -> ClientConfig {
    ClientConfig {
        operation_timeout: cfg.operation_timeout.min(STARTUP_CHECK_LIMIT),
        ..cfg.clone()
    }
}

/// One call before mounting, so a refused key or an unreachable API is a clear error now
/// rather than an EIO later. It is the listing's first page, which the mount then reuses.
/// The first listing page, proving the key works. `None` when Persona cannot be reached but
/// the cache directory has a metadata store: the mount then starts offline, answering from
/// the store and the cache, and goes online by itself once Persona answers.
pub async fn check_api(
    api: &dyn PersonaApi,
    cfg: &MountConfig,
) -> anyhow::Result<Option<InquiryPage>> {
    match api.list_page(&cfg.filters, None, 100).await {
        Ok(page) => Ok(Some(page)),
        Err(e)
            if (matches!(e, personafs_client::Error::Network { .. })
                || e.status().is_some_and(|s| s >= 500))
                && has_store(cfg) =>
        {
            tracing::warn!(
                "cannot reach the Persona API at {} ({e}); mounting offline from the metadata store and the cache",
                cfg.api_base
            );
            Ok(None)
        }
        Err(e @ personafs_client::Error::Http { status: 401, .. }) => {
            anyhow::bail!(
                "the API key was refused (HTTP 401): check PERSONA_API_KEY or api_key_file ({e})"
            )
        }
        Err(e @ personafs_client::Error::Network { .. }) => {
            anyhow::bail!("cannot reach the Persona API at {}: {e}", cfg.api_base)
        }
        Err(e) => anyhow::bail!("the Persona API answered an error: {e}"),
    }
}

/// Why a foreground mount ended.
enum Event {
    Signal(&'static str),
    /// The session ended: [`personafs_fs::mount::Mount::join`] says how.
    SessionEnded,
}

/// Mount and serve until SIGINT/SIGTERM or an external unmount. `ready` is called once the
/// mount answers (used to release a waiting parent process).
pub fn serve(
    rt: &tokio::runtime::Runtime,
    api: Arc<dyn PersonaApi>,
    tele: Arc<Telemetry>,
    cfg: &MountConfig,
    first_page: Option<InquiryPage>,
    shared_views: Option<Arc<dyn SharedViews>>,
    ready: impl FnOnce(),
) -> anyhow::Result<()> {
    let _owner = lock_cache(&cfg.cache_dir, Some(&cfg.mountpoint), "mount")?;
    // The index of a large cache is read in the background: it must not delay the mount.
    let cache = DiskCache::open_dir_in_background(&cfg.cache_dir, cache_limits(cfg))
        .with_context(|| format!("cannot use cache directory {}", cfg.cache_dir.display()))?;
    if let Some(max_age) = cfg.cache_max_age {
        // Old files go while the mount runs too, not only at start.
        let cache = cache.clone();
        let every = (max_age / 4).clamp(Duration::from_secs(1), Duration::from_secs(600));
        rt.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let c = cache.clone();
                if let Ok(n) = tokio::task::spawn_blocking(move || c.prune()).await
                    && n > 0
                {
                    tracing::info!(
                        deleted = n,
                        "cache: deleted files older than the maximum age"
                    );
                }
            }
        });
    }
    // Only this process owns the cache directory (the lock above), so only it opens the store.
    // An untrusted store is rebuilt empty inside `open`; one that cannot be opened at all
    // leaves the mount working from memory, with a warning.
    let store = match MetadataStore::open(&cfg.cache_dir) {
        Ok(store) => Some(Arc::new(store)),
        Err(e) => {
            tracing::warn!(
                "metadata store cannot be used ({e}); views and the listing will not survive a remount, and the mount cannot answer offline"
            );
            None
        }
    };
    let (counters, webhooks) = (Arc::new(Counters::default()), Arc::default());
    // With an audit log, every open of a file is recorded; SIGHUP reopens it (rotation).
    let audit = match &cfg.audit_log {
        Some(path) => {
            let log = crate::audit::AuditLog::open(path)?;
            log.reopen_on_sighup(rt.handle())?;
            Some(log as Arc<dyn personafs_fs::audit::AuditSink>)
        }
        None => None,
    };
    let wired = personafs_fs::mount::wire(
        personafs_fs::mount::Parts {
            api,
            cache: cache.clone(),
            core: CoreConfig {
                counters: counters.clone(),
                store,
                shared_views,
                ..core_config(cfg)
            },
            fuse: fuse_options(cfg),
            audit,
        },
        rt.handle().clone(),
    );
    let core = wired.core().clone();
    crate::heap::trim_periodically(rt.handle());
    match first_page {
        Some(page) => core.seed_listing(page),
        None => core.start_offline(),
    }
    let snapshot = snapshot_fn(&core, &cache, &tele, &counters, &webhooks, cfg);
    let _status =
        crate::status::StatusServer::start(rt.handle(), &cfg.mountpoint, snapshot.clone())
            .map_err(|e| tracing::warn!("personafs status will not reach this mount: {e:#}"))
            .ok();
    if let Some(addr) = cfg.metrics_listen {
        crate::metrics::serve(rt.handle(), addr, snapshot)?;
    }
    start_changes(rt, &core, &webhooks, cfg)?;
    let (tx, rx) = mpsc::channel();
    let session_tx = tx.clone();
    let mut mount = wired
        .mount(&cfg.mountpoint, move || {
            let _ = session_tx.send(Event::SessionEnded);
        })
        .map_err(|e| mount_error(e, &cfg.mountpoint))?;
    // With an audit log, SIGHUP means "reopen it" (log rotation), not "unmount".
    let hup_unmounts = cfg.audit_log.is_none();
    // The handlers are in place before "mounted" and READY=1: a SIGTERM right after them
    // unmounts instead of killing the process with its mount left behind.
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        let _in_runtime = rt.enter();
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        )
    };
    rt.spawn(async move {
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = signals else {
            return;
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = hup.recv(), if hup_unmounts => "SIGHUP",
        };
        let _ = tx.send(Event::Signal(name));
    });
    wait_until_answers(&cfg.mountpoint)?;
    tracing::info!(mountpoint = %cfg.mountpoint.display(), "mounted");
    ready();
    match rx.recv() {
        Ok(Event::Signal(name)) => {
            tracing::info!("{name}: unmounting");
            crate::notify::stopping(&format!("{name}: unmounting"));
            mount
                .unmount()
                .context("unmounting failed; run `personafs unmount` on the mountpoint")?;
            mount.join()?;
        }
        Ok(Event::SessionEnded) => {
            tracing::info!("unmounted");
            crate::notify::stopping("unmounted");
            mount.join()?;
        }
        Err(_) => {}
    }
    Ok(())
}

/// The events feed (`--watch-events`) and the webhook receiver (`--webhook-listen`), when
/// asked for. Both run on the runtime until the process ends.
fn start_changes(
    rt: &tokio::runtime::Runtime,
    core: &Arc<FsCore>,
    webhooks: &Arc<WebhookCounts>,
    cfg: &MountConfig,
) -> anyhow::Result<()> {
    if let Some(addr) = cfg.webhook_listen {
        let path = cfg
            .webhook_secret_file
            .as_deref()
            .context("--webhook-listen needs --webhook-secret-file")?;
        let secrets = crate::webhook::Secrets::load(path)?;
        crate::webhook::serve(rt.handle(), addr, secrets, core.clone(), webhooks.clone())?;
    }
    if let Some(every) = cfg.watch_events {
        tracing::info!(every = ?every, "watching Persona's events");
        let _feed = core.watch_events(every);
    }
    Ok(())
}

/// What `personafs status` and `/metrics` read: the counters (the client's, the
/// filesystem's, the webhook receiver's), plus what the core and the cache hold now.
fn snapshot_fn(
    core: &Arc<FsCore>,
    cache: &Arc<DiskCache>,
    tele: &Arc<Telemetry>,
    counters: &Arc<Counters>,
    webhooks: &Arc<WebhookCounts>,
    cfg: &MountConfig,
) -> crate::status::SnapshotFn {
    let (core, cache, tele) = (Arc::downgrade(core), cache.clone(), tele.clone());
    let (counters, webhooks) = (counters.clone(), webhooks.clone());
    let mountpoint = cfg.mountpoint.display().to_string();
    Arc::new(move || {
        let mut s: Snapshot = tele.snapshot();
        counters.fill(&mut s);
        webhooks.fill(&mut s);
        s.mountpoint = mountpoint.clone();
        s.pid = std::process::id();
        s.rate_limit_per_minute = s.budget.as_ref().map_or(0, |b| b.per_minute());
        let c = cache.stats();
        s.cache_bytes = c.bytes;
        s.cache_max_bytes = c.max_size;
        s.cache_files = c.entries as u64;
        if let Some(core) = core.upgrade() {
            s.metadata_entries = core.view_count() as u64;
            s.inodes = core.inode_count() as u64;
            s.open_handles = core.open_handles() as u64;
            s.listing = core.listing_progress();
            s.listing_cut_at = core.listing_cut_at();
            s.deltas = core.delta_stats().map(|d| d.status());
        }
        s
    })
}

/// A `stat` of the mount's root goes through our own session: it proves the mount answers,
/// without waiting for a listing of every inquiry (minutes for a large organization).
fn wait_until_answers(mountpoint: &Path) -> anyhow::Result<()> {
    let root = mountpoint.to_path_buf();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let answered = std::fs::metadata(&root).map(|m| {
            use std::os::unix::fs::MetadataExt;
            // The root of our own mount, not the directory underneath it.
            m.is_dir() && m.ino() == personafs_fs::ROOT
        });
        let _ = tx.send(answered);
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => anyhow::bail!("the mountpoint does not show the mount"),
        Ok(Err(e)) => anyhow::bail!("the mount does not answer: {e}"),
        Err(_) => anyhow::bail!("the mount did not answer within 60 s"),
    }
}

fn mount_error(e: std::io::Error, mountpoint: &Path) -> anyhow::Error {
    let hint = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            ": permission denied (mount as root, or install fuse3 so fusermount3 can mount for you)"
        }
        Some(libc::ENOENT) => ": /dev/fuse or fusermount3 is missing (apt-get install fuse3)",
        _ => "",
    };
    anyhow::anyhow!("cannot mount {}: {e}{hint}", mountpoint.display())
}
