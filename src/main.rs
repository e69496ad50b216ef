use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use parking_lot::Mutex;

use personafs::cli::{CacheAction, CacheArgs, Cli, Command, UnmountArgs};
use personafs::config::{self, MountConfig};
use personafs::{daemon, logging, mount, unmount};
use personafs_client::{ApiKey, ClientConfig, HttpClient, PersonaApi};
use personafs_mock as mock;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Mount(args) => config::resolve_mount(&args, &config::process_env)
            .map_err(anyhow::Error::from)
            .and_then(|cfg| run_mount(cfg, None)),
        Command::Demo(args) => config::resolve_demo(&args, &config::process_env)
            .map_err(anyhow::Error::from)
            .and_then(|(cfg, n)| run_mount(cfg, Some(n))),
        Command::Unmount(args) => run_unmount(&args),
        Command::MockServer(args) => mock::cli::run(args),
        Command::Cache(args) => run_cache(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("personafs: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `mount` and `demo`: check what can be checked, then serve (in the background unless
/// `--foreground`). `demo` carries the number of inquiries its embedded mock generates.
fn run_mount(cfg: MountConfig, demo: Option<usize>) -> anyhow::Result<()> {
    config::check_fuse_available()?;
    config::check_mountpoint(&cfg.mountpoint)?;
    if cfg.allow_other {
        config::check_allow_other()?;
    }
    if !cfg.foreground {
        return daemon::spawn_and_wait();
    }
    let pipe = Arc::new(Mutex::new(daemon::ready_pipe()));
    let in_background = pipe.lock().is_some();
    let result = serve(cfg, demo, in_background, &pipe);
    if let Err(e) = &result {
        daemon::report_error(pipe.lock().take(), e);
    }
    result
}

fn serve(
    mut cfg: MountConfig,
    demo: Option<usize>,
    in_background: bool,
    pipe: &Arc<Mutex<Option<std::fs::File>>>,
) -> anyhow::Result<()> {
    logging::init(&cfg, in_background)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.threads.max(2))
        .thread_name("personafs-core")
        // Blocking work is local disk only (cache opens, commits); a few threads suffice,
        // and each idle one would keep its own malloc arena.
        .max_blocking_threads(32)
        .enable_all()
        .build()?;
    // The demo's mock lives as long as the mount, in this process.
    let _mock;
    let mut extra_hosts = Vec::new();
    let key = match demo {
        Some(n) => {
            let server = mock::MockServer::start(mock::MockConfig {
                generate: n,
                ..Default::default()
            })?;
            cfg.api_base = server.api_base();
            let key = ApiKey::new(server.api_key());
            let files_host = url::Url::parse(&server.files_base())?;
            let api_host = url::Url::parse(&server.api_base())?;
            extra_hosts = vec![host_port(&files_host), host_port(&api_host)];
            _mock = Some(server);
            key
        }
        None => {
            _mock = None;
            cfg.api_key.clone().ok_or_else(|| {
                anyhow::anyhow!("no API key: set PERSONA_API_KEY or api_key_file in the config")
            })?
        }
    };
    let api: Arc<dyn PersonaApi> =
        Arc::new(HttpClient::new(client_config(&cfg, key, extra_hosts))?);
    let first_page = rt.block_on(mount::check_api(api.as_ref(), &cfg))?;
    let pipe = pipe.clone();
    mount::serve(&rt, api, &cfg, Some(first_page), move || {
        daemon::report_ready(pipe.lock().take())
    })
}

fn host_port(u: &url::Url) -> String {
    match u.port() {
        Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
        None => u.host_str().unwrap_or_default().to_string(),
    }
}

fn client_config(cfg: &MountConfig, key: ApiKey, extra_hosts: Vec<String>) -> ClientConfig {
    let mut c = ClientConfig::new(&cfg.api_base, key);
    c.persona_version = cfg.persona_version.clone();
    c.request_timeout = cfg.request_timeout;
    c.api_rate_limit = cfg.api_rate_limit;
    c.allowed_file_hosts.extend(extra_hosts);
    c.allowed_file_hosts.extend(cfg.file_hosts.iter().cloned());
    c
}

fn run_unmount(args: &UnmountArgs) -> anyhow::Result<()> {
    unmount::unmount(&args.mountpoint)?;
    println!("unmounted {}", args.mountpoint.display());
    Ok(())
}

fn run_cache(args: &CacheArgs) -> anyhow::Result<()> {
    let cfg = config::resolve_cache(args, &config::process_env)?;
    let dir = &cfg.cache_dir;
    let what = match args.action {
        // Read only: changes nothing, so it is safe beside a live mount.
        CacheAction::Stats => return print_cache_stats(dir, cfg.cache_max_size),
        CacheAction::Clear => "cache clear",
        CacheAction::Prune => "cache prune",
    };
    let _owner = mount::lock_cache(dir, None, what)?;
    // Opening applies the limits already: count from before it.
    let before = personafs_fs::cache::scan(dir)?.entries;
    let cache = mount::open_cache(
        dir,
        personafs_fs::cache::CacheLimits {
            max_size: cfg.cache_max_size,
            min_free: cfg.cache_min_free,
            max_age: cfg.cache_max_age,
        },
    )?;
    let also = match args.action {
        CacheAction::Clear => {
            cache.clear();
            // The metadata store names inquiries and files: it goes with them.
            let store = personafs_fs::store::MetadataStore::remove(dir)?;
            if store { " and the metadata store" } else { "" }
        }
        _ => {
            cache.prune();
            ""
        }
    };
    let deleted = before.saturating_sub(cache.stats().entries);
    println!("deleted {deleted} files{also}");
    Ok(())
}

fn print_cache_stats(dir: &std::path::Path, max_size: u64) -> anyhow::Result<()> {
    use personafs_fs::cache::{CacheLock, scan};
    let s = scan(dir).with_context(|| format!("cannot read cache directory {}", dir.display()))?;
    let mut line = format!(
        "{}: {} files, {} bytes of {max_size} allowed",
        dir.display(),
        s.entries,
        s.bytes
    );
    if s.temp_files > 0 {
        let plural = if s.temp_files == 1 { "" } else { "s" };
        line += &format!(
            "; {} temporary file{plural} of downloads in progress ({} bytes)",
            s.temp_files, s.temp_bytes
        );
    }
    if let Some(busy) = CacheLock::holder(dir)? {
        match busy.owner {
            Some(owner) => line += &format!("; in use by {owner}"),
            None => line += "; in use by another personafs process",
        }
    }
    println!("{line}");
    Ok(())
}
