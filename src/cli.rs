//! The command line (clap derive), and the one declaration of every mount option: its flag,
//! environment variable (`PERSONAFS_<NAME>`), default and help text are written here once.
//! Help, completions and the man page are generated from it; `crate::config` reads the
//! same declaration (through `OptionArgs`, never clap types) to put the config file between
//! the environment and the default. Values are checked with the parsers of
//! `crate::config::parse`, so a bad flag fails with clap's error naming it.
//! The API key is deliberately not an option: arguments show in `ps`.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use personafs_client::client::DEFAULT_PERSONA_VERSION;

use crate::config::{
    CacheRequest, DemoRequest, MountRequest, OPTION_KEYS, OptionArg, OptionArgs, parse,
};

const API: &str = "API";
const FILTERS: &str = "Listing filters";
const CACHE: &str = "Cache";
const MOUNT: &str = "Mount";
const LOGGING: &str = "Logging";
const CHANGES: &str = "Changes";

/// What `--help` says about exit codes (also in the README).
pub const EXIT_CODES: &str = "\
Exit status:
  0  success (mount and demo: the mount answers; in the foreground: unmounted cleanly)
  1  failure: configuration, mount, API, cache or unmount error (one line on stderr)
  2  invalid command line (unknown option, bad value)";

/// `personafs --version`: the version and the commit it was built from (build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("PERSONAFS_COMMIT"),
    ")"
);

/// Mount a Persona organization's identity-verification files as a read-only filesystem.
#[derive(Debug, Clone, Parser)]
#[command(name = "personafs", version = VERSION, about, propagate_version = true, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Mount an organization's files (needs PERSONA_API_KEY or api_key_file in the config).
    #[command(after_help = EXIT_CODES)]
    Mount(MountArgs),
    /// Mount generated sample data served by an embedded mock Persona (no key, no network).
    #[command(after_help = EXIT_CODES)]
    Demo(DemoArgs),
    /// Unmount a personafs mount (also clears a stale one).
    Unmount(UnmountArgs),
    /// Run the mock Persona server on its own.
    MockServer(personafs_mock::cli::MockServerArgs),
    /// Inspect or trim the on-disk file cache.
    Cache(CacheArgs),
    /// Print a shell completion script: personafs completions bash > /etc/bash_completion.d/personafs
    Completions(CompletionsArgs),
    /// Print the man page: personafs man > personafs.1
    Man,
    /// Show what running mounts are doing: API calls, downloads, cache, errors.
    Status(StatusArgs),
}

/// `personafs status [MOUNTPOINT] [--json]`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The mount to ask [default: every personafs mount of yours]
    pub mountpoint: Option<PathBuf>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// `personafs mount <MOUNTPOINT> [--config FILE] [options]`.
#[derive(Debug, Clone, Args)]
pub struct MountArgs {
    /// An empty directory to mount on.
    pub mountpoint: PathBuf,
    /// TOML config file (see mount.example.toml); must not be readable by group or others
    #[arg(long, value_name = "FILE", env = "PERSONAFS_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub options: MountOptions,
}

impl MountArgs {
    pub fn request(&self, options: OptionArgs) -> MountRequest {
        MountRequest {
            mountpoint: self.mountpoint.clone(),
            config: self.config.clone(),
            options,
        }
    }
}

/// `personafs demo <MOUNTPOINT> [--inquiries N] [options]`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// An empty directory to mount on.
    pub mountpoint: PathBuf,
    /// How many inquiries the embedded mock generates.
    #[arg(long, value_name = "N", default_value_t = 25)]
    pub inquiries: usize,
    #[command(flatten)]
    pub options: MountOptions,
}

impl DemoArgs {
    pub fn request(&self, options: OptionArgs) -> DemoRequest {
        DemoRequest {
            mountpoint: self.mountpoint.clone(),
            inquiries: self.inquiries,
            options,
        }
    }
}

/// `personafs unmount <MOUNTPOINT>`.
#[derive(Debug, Clone, Args)]
pub struct UnmountArgs {
    /// Where a personafs filesystem is mounted.
    pub mountpoint: PathBuf,
}

/// `personafs cache {stats,clear,prune} [--cache-dir DIR] [--config FILE]`.
#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub action: CacheAction,
    /// Cache directory [default: $XDG_CACHE_HOME/personafs or ~/.cache/personafs]
    #[arg(long, value_name = "DIR", global = true, env = "PERSONAFS_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// TOML config file to take cache settings from
    #[arg(long, value_name = "FILE", global = true, env = "PERSONAFS_CONFIG")]
    pub config: Option<PathBuf>,
}

impl CacheArgs {
    pub fn request(&self, options: OptionArgs) -> CacheRequest {
        CacheRequest {
            config: self.config.clone(),
            options,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum CacheAction {
    /// Show the cache's size and number of files.
    Stats,
    /// Remove every cached file.
    Clear,
    /// Evict files until the cache fits its size, free-space and age limits.
    Prune,
}

/// `personafs completions <SHELL>`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Options shared by `mount` and `demo`. Each also has an environment variable
/// `PERSONAFS_<NAME>` and a config key `<name>` (snake_case); the flag wins.
#[derive(Debug, Clone, Args)]
pub struct MountOptions {
    /// Persona API base URL
    #[arg(long, value_name = "URL", default_value = "https://withpersona.com/api/v1",
          env = "PERSONAFS_API_BASE", value_parser = parse::parse_api_base, help_heading = API)]
    pub api_base: String,

    /// Persona-Version header
    #[arg(long, value_name = "DATE", default_value = DEFAULT_PERSONA_VERSION,
          env = "PERSONAFS_PERSONA_VERSION", value_parser = parse::parse_persona_version,
          help_heading = API)]
    pub persona_version: String,

    /// How long a signed file URL stays valid after the request that returned it
    #[arg(long, value_name = "DURATION", default_value = "6h", env = "PERSONAFS_FILE_URL_LIFETIME",
          value_parser = parse::parse_duration, help_heading = API)]
    pub file_url_lifetime: Duration,

    /// Re-retrieve an inquiry when this much of its URLs' lifetime is left
    #[arg(long, value_name = "PERCENT", default_value = "10", env = "PERSONAFS_URL_REFRESH_MARGIN",
          value_parser = parse::parse_percent, help_heading = API)]
    pub url_refresh_margin: f64,

    /// Only list inquiries with this status (repeat or comma-separate)
    #[arg(long, value_name = "STATUS", value_delimiter = ',', env = "PERSONAFS_STATUS",
          value_parser = parse::parse_filter_value, help_heading = FILTERS)]
    pub status: Vec<String>,

    /// Only list inquiries of this template (itmpl_…)
    #[arg(long, value_name = "ID", env = "PERSONAFS_INQUIRY_TEMPLATE_ID",
          value_parser = parse::parse_filter_value, help_heading = FILTERS)]
    pub inquiry_template_id: Option<String>,

    /// Only list inquiries with this reference id
    #[arg(long, value_name = "ID", env = "PERSONAFS_REFERENCE_ID",
          value_parser = parse::parse_filter_value, help_heading = FILTERS)]
    pub reference_id: Option<String>,

    /// Only list inquiries of this account (act_…)
    #[arg(long, value_name = "ID", env = "PERSONAFS_ACCOUNT_ID",
          value_parser = parse::parse_filter_value, help_heading = FILTERS)]
    pub account_id: Option<String>,

    /// Only list inquiries created at or after this ISO-8601 date or date-time
    #[arg(long, value_name = "DATE", env = "PERSONAFS_CREATED_AFTER",
          value_parser = parse::parse_timestamp, help_heading = FILTERS)]
    pub created_after: Option<String>,

    /// Only list inquiries created at or before this ISO-8601 date or date-time
    #[arg(long, value_name = "DATE", env = "PERSONAFS_CREATED_BEFORE",
          value_parser = parse::parse_timestamp, help_heading = FILTERS)]
    pub created_before: Option<String>,

    /// Only list these inquiries (repeat or comma-separate)
    #[arg(long, value_name = "ID", value_delimiter = ',', env = "PERSONAFS_INQUIRY_ID",
          value_parser = parse::parse_inquiry_id, help_heading = FILTERS)]
    pub inquiry_id: Vec<String>,

    /// Another host (HOST or HOST:PORT) file URLs may point to, besides the API host and
    /// Persona's files host; any other host is refused
    #[arg(long, value_name = "HOST", value_delimiter = ',', env = "PERSONAFS_FILE_HOST",
          value_parser = parse::parse_host, help_heading = API)]
    pub file_host: Vec<String>,

    /// How long listings and retrieved inquiries are reused
    #[arg(long, value_name = "DURATION", default_value = "60s", env = "PERSONAFS_METADATA_TTL",
          value_parser = parse::parse_duration, help_heading = CACHE)]
    pub metadata_ttl: Duration,

    /// Kernel entry and attribute cache time
    #[arg(long, value_name = "DURATION", default_value = "5s", env = "PERSONAFS_ATTR_TTL",
          value_parser = parse::parse_duration, help_heading = CACHE)]
    pub attr_ttl: Duration,

    /// How long "no such inquiry" is remembered
    #[arg(long, value_name = "DURATION", default_value = "10s", env = "PERSONAFS_NEGATIVE_TTL",
          value_parser = parse::parse_duration, help_heading = CACHE)]
    pub negative_ttl: Duration,

    /// How far before the last change seen each delta asks from (covers search's lag)
    #[arg(long, value_name = "DURATION", default_value = "2m", env = "PERSONAFS_DELTA_OVERLAP",
          value_parser = parse::parse_duration, help_heading = CACHE)]
    pub delta_overlap: Duration,

    /// A whole listing at least this often (deltas keep the mount fresh in between)
    #[arg(long, value_name = "DURATION", default_value = "24h",
          env = "PERSONAFS_FULL_LISTING_EVERY", value_parser = parse::parse_duration,
          help_heading = CACHE)]
    pub full_listing_every: Duration,

    /// Where file contents are cached [default: $XDG_CACHE_HOME/personafs or
    /// ~/.cache/personafs]
    #[arg(long, value_name = "DIR", env = "PERSONAFS_CACHE_DIR", help_heading = CACHE)]
    pub cache_dir: Option<PathBuf>,

    /// Largest size of the file cache, e.g. 500MB, 2GiB, 1G, 1048576
    #[arg(long, value_name = "SIZE", default_value = "2GiB", env = "PERSONAFS_CACHE_MAX_SIZE",
          value_parser = parse::parse_size, help_heading = CACHE)]
    pub cache_max_size: u64,

    /// Evict cached files to keep this much (percent) of the cache's disk free
    #[arg(long, value_name = "PERCENT", default_value = "5", env = "PERSONAFS_CACHE_MIN_FREE",
          value_parser = parse::parse_percent, help_heading = CACHE)]
    pub cache_min_free: f64,

    /// Delete cached files downloaded longer ago than this, or `off`
    #[arg(long, value_name = "DURATION", default_value = "off", env = "PERSONAFS_CACHE_MAX_AGE",
          value_parser = parse::parse_age_limit, help_heading = CACHE)]
    pub cache_max_age: parse::AgeLimit,

    /// Stay in the foreground instead of returning once the mount answers
    #[arg(short = 'f', long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false", env = "PERSONAFS_FOREGROUND",
          action = ArgAction::Set, value_parser = parse::parse_bool, help_heading = MOUNT)]
    pub foreground: bool,

    /// Owner of every file [default: the mounting user]
    #[arg(long, value_name = "UID", env = "PERSONAFS_UID", value_parser = parse::parse_id,
          help_heading = MOUNT)]
    pub uid: Option<u32>,

    /// Group of every file [default: the mounting user's group]
    #[arg(long, value_name = "GID", env = "PERSONAFS_GID", value_parser = parse::parse_id,
          help_heading = MOUNT)]
    pub gid: Option<u32>,

    /// Permissions of files, octal
    #[arg(long, value_name = "MODE", default_value = "0444", env = "PERSONAFS_FILE_MODE",
          value_parser = parse::parse_mode, help_heading = MOUNT)]
    pub file_mode: u16,

    /// Permissions of directories, octal
    #[arg(long, value_name = "MODE", default_value = "0555", env = "PERSONAFS_DIR_MODE",
          value_parser = parse::parse_mode, help_heading = MOUNT)]
    pub dir_mode: u16,

    /// Views beside inquiries/: by-reference-id, accounts, by-day (comma-separated), all or
    /// none
    #[arg(long, value_name = "VIEWS", default_value = "all", env = "PERSONAFS_VIEWS",
          value_parser = parse::parse_views, help_heading = MOUNT)]
    pub views: personafs_fs::ViewSet,

    /// Let other users see the mount (needs user_allow_other in /etc/fuse.conf)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false", env = "PERSONAFS_ALLOW_OTHER",
          action = ArgAction::Set, value_parser = parse::parse_bool, help_heading = MOUNT)]
    pub allow_other: bool,

    /// FUSE worker threads: they only hand requests on; more would mostly be woken for
    /// nothing
    #[arg(long, value_name = "N", default_value = "2", env = "PERSONAFS_THREADS",
          value_parser = parse::parse_positive, help_heading = MOUNT)]
    pub threads: usize,

    /// error, warn, info, debug or trace
    #[arg(long, value_name = "LEVEL", default_value = "info", env = "PERSONAFS_LOG_LEVEL",
          value_parser = parse::parse_log_level, help_heading = LOGGING)]
    pub log_level: String,

    /// Append the log to this file [default: stderr in the foreground, else
    /// <cache dir>/personafs.log; the journal under systemd]
    #[arg(long, value_name = "FILE", env = "PERSONAFS_LOG_FILE", help_heading = LOGGING)]
    pub log_file: Option<PathBuf>,

    /// Append one JSON line per open of a file (who, when, which program, which file) to
    /// this file, created 0600; reopened on SIGHUP [default: none]
    #[arg(long, value_name = "FILE", env = "PERSONAFS_AUDIT_LOG", help_heading = LOGGING)]
    pub audit_log: Option<PathBuf>,

    /// Serve Prometheus metrics on /metrics at this address (a bare port means
    /// 127.0.0.1:PORT) [default: none]
    #[arg(long, value_name = "ADDR", env = "PERSONAFS_METRICS_LISTEN",
          value_parser = crate::metrics::parse_listen, help_heading = LOGGING)]
    pub metrics_listen: Option<std::net::SocketAddr>,

    /// Most API requests per minute, instead of a share of Persona's limit [default: none:
    /// --api-rate-share of the limit Persona reports]
    #[arg(long, value_name = "N", env = "PERSONAFS_API_RATE_LIMIT",
          value_parser = parse::parse_rate, help_heading = API)]
    pub api_rate_limit: Option<u32>,

    /// The share of Persona's request limit (its RateLimit-Limit header) this mount uses, or
    /// with --shared-state all mounts together; the rest is left to your other systems
    #[arg(long, value_name = "PERCENT", default_value = "50", env = "PERSONAFS_API_RATE_SHARE",
          value_parser = parse::parse_share, help_heading = API)]
    pub api_rate_share: f64,

    /// Send nothing more until the window resets once fewer than this share of Persona's
    /// limit remain (its RateLimit-Remaining header), leaving them to your other systems
    #[arg(long, value_name = "PERCENT", default_value = "30", env = "PERSONAFS_API_RATE_RESERVE",
          value_parser = parse::parse_percent, help_heading = API)]
    pub api_rate_reserve: f64,

    /// Share the request budget and inquiry views with the other mounts of the same Persona
    /// environment in this Redis: redis://[:PASSWORD@]HOST:PORT/DB (give a password through
    /// the environment or the config file, not the command line) [default: none]
    #[arg(long, value_name = "URL", env = "PERSONAFS_SHARED_STATE",
          help_heading = API)]
    pub shared_state: Option<String>,

    /// Give up on one HTTP request after this long
    #[arg(long, value_name = "DURATION", default_value = "30s", env = "PERSONAFS_REQUEST_TIMEOUT",
          value_parser = parse::parse_duration, help_heading = API)]
    pub request_timeout: Duration,

    /// The longest a read, lookup or listing page waits on Persona before failing with EIO,
    /// whatever the retries and rate-limit waits inside it
    #[arg(long, value_name = "DURATION", default_value = "60s", env = "PERSONAFS_IO_TIMEOUT",
          value_parser = parse::parse_duration, help_heading = API)]
    pub io_timeout: Duration,

    /// The largest answer read from the API (an inquiry, a list or events page); a larger
    /// one fails with EIO, never read whole
    #[arg(long, value_name = "SIZE", default_value = "16MiB", env = "PERSONAFS_MAX_RESPONSE_SIZE",
          value_parser = parse::parse_size, help_heading = API)]
    pub max_response_size: u64,

    /// Poll Persona's events every DURATION and apply them at once (new inquiries, changes,
    /// redactions), instead of waiting for the metadata TTL [default: off]
    #[arg(long, value_name = "DURATION", env = "PERSONAFS_WATCH_EVENTS",
          value_parser = parse::parse_duration, help_heading = CHANGES)]
    pub watch_events: Option<Duration>,

    /// Receive Persona's signed webhooks on this address (POST /; a bare port means
    /// 127.0.0.1:PORT) and apply them at once; needs --webhook-secret-file [default: none]
    #[arg(long, value_name = "ADDR", env = "PERSONAFS_WEBHOOK_LISTEN",
          value_parser = crate::metrics::parse_listen, help_heading = CHANGES)]
    pub webhook_listen: Option<std::net::SocketAddr>,

    /// The webhook secrets, one per line (two during a rotation); must not be readable by
    /// group or others
    #[arg(long, value_name = "FILE", env = "PERSONAFS_WEBHOOK_SECRET_FILE", help_heading = CHANGES)]
    pub webhook_secret_file: Option<PathBuf>,

    /// Download files ahead of reads, true or false
    #[arg(long, value_name = "BOOL", default_value = "true", env = "PERSONAFS_PREFETCH",
          action = ArgAction::Set, value_parser = parse::parse_bool, help_heading = CACHE)]
    pub prefetch: bool,
}

/// The command line's definition, as help, completions and the man page show it.
pub fn command() -> clap::Command {
    // Help shows which variable sets an option, never its current value. An option given
    // twice takes the last value, as on most command lines (and the background re-run
    // appends --foreground to whatever the user gave).
    Cli::command().mut_subcommands(|sub| {
        sub.args_override_self(true)
            .mut_args(|arg| arg.hide_env_values(true))
    })
}

/// The subcommands' names (`help` included).
pub fn subcommand_names() -> Vec<String> {
    let mut names: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    names.push("help".into());
    names
}

/// A parsed command line: the command, and what the command line gave for each mount
/// option (for `mount`, `demo` and `cache`).
#[derive(Debug, Clone)]
pub struct Parsed {
    pub command: Command,
    pub options: OptionArgs,
}

/// Parse a command line (the first item is the program name).
pub fn try_parse_from<I, T>(argv: I) -> Result<Parsed, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = command().try_get_matches_from(argv)?;
    let cli = Cli::from_arg_matches(&matches)?;
    let options = match matches.subcommand() {
        Some(("mount" | "demo" | "cache", sub)) => option_args(sub),
        _ => OptionArgs::default(),
    };
    Ok(Parsed {
        command: cli.command,
        options,
    })
}

/// Every mount option as declared (environment variable, default) and as given on this
/// command line (only values typed as flags: the environment and defaults are layered by
/// `crate::config`, with the config file between them).
pub fn option_args(matches: &ArgMatches) -> OptionArgs {
    let cli = Cli::command();
    let mount = cli
        .find_subcommand("mount")
        .expect("the mount subcommand is declared");
    let mut out = BTreeMap::new();
    for arg in mount.get_arguments() {
        let id = arg.get_id().as_str();
        if !OPTION_KEYS.contains(&id) {
            continue;
        }
        let given = matches!(matches.try_contains_id(id), Ok(true))
            && matches.value_source(id) == Some(ValueSource::CommandLine);
        let flag = if given {
            matches
                .get_raw(id)
                .map(|values| values.map(OsStr::to_os_string).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let option = OptionArg {
            flag,
            env: arg.get_env().map(|e| e.to_string_lossy().into_owned()),
            default: arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect(),
        };
        out.insert(id.to_string(), option);
    }
    OptionArgs(out)
}

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    clap_complete::generate(shell, &mut command(), "personafs", out);
}

/// The man page: the command and its subcommands, then every mount option by heading.
pub fn man_page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let cli = command();
    clap_mangen::Man::new(cli.clone()).render(out)?;
    let mount = cli
        .find_subcommand("mount")
        .expect("the mount subcommand is declared")
        .clone()
        .name("personafs-mount");
    writeln!(out, ".SH \"MOUNT AND DEMO\"")?;
    writeln!(
        out,
        "personafs mount MOUNTPOINT [--config FILE] [OPTIONS] and personafs demo MOUNTPOINT \
         [--inquiries N] [OPTIONS] take the options below. Each is also an environment \
         variable and a config file key; precedence: flag, environment, config file, default."
    )?;
    clap_mangen::Man::new(mount).render_options_section(out)
}
