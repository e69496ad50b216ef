use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use parking_lot::Mutex;

use personafs::cli::{self, CacheAction, CacheArgs, Command, UnmountArgs};
use personafs::config::{self, MountConfig, OptionArgs};
use personafs::{daemon, fstab, logging, mount, notify, unmount};
use personafs_client::ratelimit::{Budget, RateLimiter};
use personafs_client::{ApiKey, ClientConfig, HttpClient, PersonaApi};
use personafs_mock as mock;

fn main() -> ExitCode {
    personafs::heap::limit_arenas();
    forget_empty_option_variables();
    let names = cli::subcommand_names();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let argv = match fstab::rewrite(std::env::args_os().collect(), &names) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("personafs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let parsed = match cli::try_parse_from(&argv) {
        Ok(parsed) => parsed,
        // Help and version exit 0, a bad command line 2.
        Err(e) => e.exit(),
    };
    let options = parsed.options;
    let result = match parsed.command {
        Command::Mount(args) => config::resolve_mount(&args.request(options), &config::process_env)
            .map_err(anyhow::Error::from)
            .and_then(|cfg| run_mount(cfg, None, &argv)),
        Command::Demo(args) => config::resolve_demo(&args.request(options), &config::process_env)
            .map_err(anyhow::Error::from)
            .and_then(|(cfg, n)| run_mount(cfg, Some(n), &argv)),
        Command::Unmount(args) => run_unmount(&args),
        Command::MockServer(args) => mock::cli::run(args),
        Command::Cache(args) => run_cache(&args, options),
        Command::Completions(args) => {
            cli::completions(args.shell, &mut std::io::stdout());
            Ok(())
        }
        Command::Man => cli::man_page(&mut std::io::stdout()).map_err(anyhow::Error::from),
        Command::Status(args) => personafs::status::run(args.mountpoint.as_deref(), args.json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("personafs: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// An empty `PERSONAFS_*` variable means "not set" (as in a unit file's `Environment=X=`);
/// clap would take it as an empty value.
fn forget_empty_option_variables() {
    let empty: Vec<OsString> = std::env::vars_os()
        .filter(|(name, value)| {
            name.to_string_lossy().starts_with("PERSONAFS_")
                && value.to_string_lossy().trim().is_empty()
        })
        .map(|(name, _)| name)
        .collect();
    for name in empty {
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe { std::env::remove_var(name) };
    }
}

/// `mount` and `demo`: check what can be checked, then serve (in the background unless
/// `--foreground`). `demo` carries the number of inquiries its embedded mock generates;
/// `argv` is the command line, re-run in the background.
fn run_mount(cfg: MountConfig, demo: Option<usize>, argv: &[OsString]) -> anyhow::Result<()> {
    config::check_fuse_available()?;
    config::check_mountpoint(&cfg.mountpoint)?;
    if cfg.allow_other {
        config::check_allow_other()?;
    }
    if !cfg.foreground {
        return daemon::spawn_and_wait(&argv[1..]);
    }
    let pipe = Arc::new(Mutex::new(daemon::ready_pipe()));
    let in_background = pipe.lock().is_some();
    let result = serve(cfg, demo, in_background, &pipe);
    if let Err(e) = &result {
        notify::status(&format!("failed: {e:#}"));
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
    let tele = Arc::new(personafs_client::telemetry::Telemetry::default());
    let mut client_cfg = client_config(&cfg, key, extra_hosts);
    client_cfg.telemetry = Some(tele.clone());
    let sharing = cfg.shared_state.clone().map(|url| {
        personafs::shared_state::Sharing::new(url, cfg.budget_policy(), cfg.metadata_ttl)
    });
    let budget: Arc<dyn Budget> = match &sharing {
        Some(sharing) => sharing.budget(),
        None => Arc::new(RateLimiter::new(client_cfg.budget)),
    };
    tele.set_budget(budget.clone());
    let counted = |client: &HttpClient| -> Arc<dyn PersonaApi> {
        Arc::new(personafs_client::telemetry::CountedApi::new(
            Arc::new(client.clone()),
            tele.clone(),
        ))
    };
    // With a metadata store to answer from, an unreachable Persona is not worth every retry
    // before mounting: one quick try, then the mount starts offline and goes online by itself
    // at the breaker's next probe. Without a store, the check retries as every request does.
    let client = HttpClient::with_budget(client_cfg.clone(), budget.clone())?;
    let checker = match mount::has_store(&cfg) {
        true => mount::quick_check_config(&client_cfg),
        false => mount::startup_check_config(&client_cfg),
    };
    let checker = HttpClient::with_budget(checker, budget)?;
    let api = counted(&client);
    notify::status("checking the Persona API");
    let first_page = rt.block_on(mount::check_api(counted(&checker).as_ref(), &cfg))?;
    // The organization and environment come from the check's answer.
    let shared = match sharing {
        Some(sharing) => sharing.connect(&checker, first_page.is_some())?,
        None => None,
    };
    let (api, shared_views) = match shared {
        Some(shared) => (shared.listing(api), Some(shared.views)),
        None => (api, None),
    };
    notify::status(&format!("mounting at {}", cfg.mountpoint.display()));
    let pipe = pipe.clone();
    let mountpoint = cfg.mountpoint.clone();
    mount::serve(&rt, api, tele, &cfg, first_page, shared_views, move || {
        notify::ready(&mountpoint);
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
    c.operation_timeout = cfg.io_timeout;
    c.max_response_size = cfg.max_response_size;
    c.budget = cfg.budget_policy();
    c.allowed_file_hosts.extend(extra_hosts);
    c.allowed_file_hosts.extend(cfg.file_hosts.iter().cloned());
    c
}

fn run_unmount(args: &UnmountArgs) -> anyhow::Result<()> {
    unmount::unmount(&args.mountpoint)?;
    println!("unmounted {}", args.mountpoint.display());
    Ok(())
}

fn run_cache(args: &CacheArgs, options: OptionArgs) -> anyhow::Result<()> {
    let cfg = config::resolve_cache(&args.request(options), &config::process_env)?;
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
