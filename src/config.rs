//! Configuration: resolving the command line, environment and TOML config file into one
//! plain `MountConfig`, and the checks a mount needs before it starts.
//!
//! Every option is declared once, in `crate::cli` (its flag, environment variable, default
//! and help); this module never sees clap: it gets what the command line gave as text in an
//! `OptionArgs`. Precedence, per option: flag > environment variable > config key `<name>` >
//! the declared default. The API key comes from `PERSONA_API_KEY`, else `api_key_file` or
//! `api_key` in the config; never from a flag. Config and key files must be private
//! (mode & 0o077 == 0), as ssh demands of its keys.
//!
//! Every error is a `ConfigError` with a one-line message meant to be printed as
//! `personafs: {error}`; no message ever contains the API key.

mod error;
mod file;
mod mountpoint;
pub mod parse;
mod resolve;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use personafs_client::{ApiKey, ListFilters};

pub use error::{ConfigError, Result};
pub use file::{ConfigFile, check_private, closest_key};
pub use mountpoint::{check_allow_other, check_fuse_available, check_mountpoint};
pub use resolve::{
    API_KEY_ENV, CONFIG_ENV, CacheConfig, EnvLookup, process_env, resolve_cache, resolve_demo,
    resolve_mount,
};

/// Every mount option's name: its config key, and (kebab-cased) its flag. The command line
/// declares each of them (a test holds the two lists equal).
pub const OPTION_KEYS: &[&str] = &[
    "foreground",
    "api_base",
    "persona_version",
    "file_url_lifetime",
    "url_refresh_margin",
    "status",
    "inquiry_template_id",
    "reference_id",
    "account_id",
    "created_after",
    "created_before",
    "inquiry_id",
    "file_host",
    "metadata_ttl",
    "attr_ttl",
    "negative_ttl",
    "delta_overlap",
    "full_listing_every",
    "cache_dir",
    "cache_max_size",
    "cache_min_free",
    "cache_max_age",
    "uid",
    "gid",
    "file_mode",
    "dir_mode",
    "views",
    "allow_other",
    "threads",
    "log_level",
    "log_file",
    "audit_log",
    "metrics_listen",
    "api_rate_limit",
    "api_rate_share",
    "api_rate_reserve",
    "shared_state",
    "request_timeout",
    "io_timeout",
    "max_response_size",
    "prefetch",
    "watch_events",
    "webhook_listen",
    "webhook_secret_file",
];

/// Config keys that are not options (no flag, no `PERSONAFS_` variable).
pub const SECRET_KEYS: &[&str] = &["api_key", "api_key_file"];

/// The flag of an option: `cache_dir` → `--cache-dir`.
pub fn flag_name(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// One option as the command line declares it and received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptionArg {
    /// The values given on the command line (empty: not given there).
    pub flag: Vec<OsString>,
    /// The environment variable it is declared with.
    pub env: Option<String>,
    /// The declared default, as text (empty: no fixed default).
    pub default: Vec<String>,
}

/// What the command line gave for every option, by config key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptionArgs(pub BTreeMap<String, OptionArg>);

impl OptionArgs {
    pub fn get(&self, key: &str) -> Option<&OptionArg> {
        self.0.get(key)
    }
}

/// `personafs mount`: where, which config file (if named by `--config`), and the options.
#[derive(Debug, Clone)]
pub struct MountRequest {
    pub mountpoint: PathBuf,
    pub config: Option<PathBuf>,
    pub options: OptionArgs,
}

/// `personafs demo`: where, how many generated inquiries, and the options.
#[derive(Debug, Clone)]
pub struct DemoRequest {
    pub mountpoint: PathBuf,
    pub inquiries: usize,
    pub options: OptionArgs,
}

/// `personafs cache`: the config file (if named by `--config`) and the options (of which
/// only `cache_dir` can be a flag there).
#[derive(Debug, Clone)]
pub struct CacheRequest {
    pub config: Option<PathBuf>,
    pub options: OptionArgs,
}

/// Everything a mount needs, fully resolved: plain data, no further lookups.
#[derive(Debug, Clone)]
pub struct MountConfig {
    /// Where to mount (absolute; not yet checked, see `check_mountpoint`).
    pub mountpoint: PathBuf,
    /// Persona API base URL, without a trailing slash.
    pub api_base: String,
    /// The API key; `None` for `demo`, which talks to its embedded mock.
    pub api_key: Option<ApiKey>,
    /// The `Persona-Version` header (a date).
    pub persona_version: String,
    /// How long a signed file URL is valid after the request that returned it.
    pub file_url_lifetime: Duration,
    /// Fraction (0..1) of `file_url_lifetime` kept as a safety margin: an inquiry is
    /// retrieved again once its URLs are older than `lifetime * (1 - margin)`.
    pub url_refresh_margin: f64,
    /// Which inquiries `inquiries/` lists.
    pub filters: ListFilters,
    /// Hosts besides the API host and Persona's files host that file URLs may point to.
    pub file_hosts: Vec<String>,
    /// How long listings and retrieved inquiries are reused.
    pub metadata_ttl: Duration,
    /// Kernel entry and attribute TTL.
    pub attr_ttl: Duration,
    /// How long an unknown inquiry id stays ENOENT without asking again.
    pub negative_ttl: Duration,
    /// How far before the watermark a delta asks from.
    pub delta_overlap: Duration,
    /// A whole listing at least this often.
    pub full_listing_every: Duration,
    /// Directory of the on-disk file cache (absolute).
    pub cache_dir: PathBuf,
    /// Upper bound of the file cache, in bytes.
    pub cache_max_size: u64,
    /// Fraction (0..1) of the cache's file system to keep free by evicting.
    pub cache_min_free: f64,
    /// Delete cached files downloaded longer ago than this; `None` = no age limit.
    pub cache_max_age: Option<Duration>,
    /// Owner of every file and directory.
    pub uid: u32,
    /// Group of every file and directory.
    pub gid: u32,
    /// Permission bits of files (e.g. 0o444).
    pub file_mode: u16,
    /// Permission bits of directories (e.g. 0o555).
    pub dir_mode: u16,
    /// The views beside `inquiries/` (`--views`).
    pub views: personafs_fs::ViewSet,
    /// Mount with `allow_other`.
    pub allow_other: bool,
    /// FUSE worker threads (at least 1).
    pub threads: usize,
    /// `error`, `warn`, `info`, `debug` or `trace` (lowercase).
    pub log_level: String,
    /// Log file (absolute); `None` = the default destination.
    pub log_file: Option<PathBuf>,
    /// One JSON line per open of a file (`--audit-log`).
    pub audit_log: Option<PathBuf>,
    /// Where `/metrics` is served (`--metrics-listen`).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Stay attached to the terminal instead of daemonizing.
    pub foreground: bool,
    /// Most API requests per minute (at least 1), instead of the share.
    pub api_rate_limit: Option<u32>,
    /// The share of Persona's limit used (0 < share ≤ 1).
    pub api_rate_share: f64,
    /// Below this share of Persona's limit left, nothing is sent until the window resets.
    pub api_rate_reserve: f64,
    /// Redis shared by the mounts of one environment (`--shared-state`).
    pub shared_state: Option<crate::shared_state::SharedStateUrl>,
    /// Timeout of one HTTP request (more than zero).
    pub request_timeout: Duration,
    /// The deadline of a read, lookup or listing page, before EIO (more than zero).
    pub io_timeout: Duration,
    /// The largest API answer read (`--max-response-size`, more than zero).
    pub max_response_size: u64,
    /// Download files ahead of reads.
    pub prefetch: bool,
    /// Poll the events feed this often (`--watch-events`); `None`: off.
    pub watch_events: Option<Duration>,
    /// Where the webhook receiver listens (`--webhook-listen`).
    pub webhook_listen: Option<std::net::SocketAddr>,
    /// The webhook secrets file (absolute; `--webhook-secret-file`).
    pub webhook_secret_file: Option<PathBuf>,
}

impl MountConfig {
    /// How much of Persona's request budget the mount may use.
    pub fn budget_policy(&self) -> personafs_client::ratelimit::BudgetPolicy {
        personafs_client::ratelimit::BudgetPolicy {
            share: self.api_rate_share,
            reserve: self.api_rate_reserve,
            per_minute: self.api_rate_limit,
        }
    }
}
