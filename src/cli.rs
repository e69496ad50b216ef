//! The command line (clap derive).
//!
//! Every mount option is an `Option` here: "not given" must stay distinguishable from a
//! default, so that `crate::config::resolve_mount` can apply the precedence
//! flags > environment (`PERSONAFS_<NAME>`) > config file > defaults. Values are parsed with
//! the parsers of `crate::config::parse`, so a bad flag fails with clap's error naming it.
//! The API key is deliberately not an option: arguments show in `ps`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::parse;

/// Mount a Persona organization's identity-verification files as a read-only filesystem.
#[derive(Debug, Clone, Parser)]
#[command(name = "personafs", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Mount an organization's files (needs PERSONA_API_KEY or api_key_file in the config).
    Mount(MountArgs),
    /// Mount generated sample data served by an embedded mock Persona (no key, no network).
    Demo(DemoArgs),
    /// Unmount a personafs mount (also clears a stale one).
    Unmount(UnmountArgs),
    /// Run the mock Persona server on its own.
    MockServer(personafs_mock::cli::MockServerArgs),
    /// Inspect or trim the on-disk file cache.
    Cache(CacheArgs),
}

/// `personafs mount <MOUNTPOINT> [--config FILE] [options]`.
#[derive(Debug, Clone, Args)]
pub struct MountArgs {
    /// An empty directory to mount on.
    pub mountpoint: PathBuf,
    /// TOML config file (see mount.example.toml); must not be readable by group or others
    /// [env: PERSONAFS_CONFIG]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub options: MountOptions,
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
    /// [env: PERSONAFS_CACHE_DIR]
    #[arg(long, value_name = "DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
    /// TOML config file to take cache settings from [env: PERSONAFS_CONFIG]
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
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

/// Options shared by `mount` and `demo`. Each also has an environment variable
/// `PERSONAFS_<NAME>` and a config key `<name>` (snake_case); the flag wins.
#[derive(Debug, Clone, Default, Args)]
pub struct MountOptions {
    /// Stay in the foreground instead of returning once the mount answers [env: PERSONAFS_FOREGROUND]
    #[arg(short = 'f', long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse::parse_bool)]
    pub foreground: Option<bool>,

    /// Persona API base URL [default: https://withpersona.com/api/v1] [env: PERSONAFS_API_BASE]
    #[arg(long, value_name = "URL", value_parser = parse::parse_api_base)]
    pub api_base: Option<String>,

    /// Persona-Version header [default: 2023-01-05] [env: PERSONAFS_PERSONA_VERSION]
    #[arg(long, value_name = "DATE", value_parser = parse::parse_persona_version)]
    pub persona_version: Option<String>,

    /// How long a signed file URL stays valid after the request that returned it
    /// [default: 6h] [env: PERSONAFS_FILE_URL_LIFETIME]
    #[arg(long, value_name = "DURATION", value_parser = parse::parse_duration)]
    pub file_url_lifetime: Option<Duration>,

    /// Re-retrieve an inquiry when this much of its URLs' lifetime is left
    /// [default: 10] [env: PERSONAFS_URL_REFRESH_MARGIN]
    #[arg(long, value_name = "PERCENT", value_parser = parse::parse_percent)]
    pub url_refresh_margin: Option<f64>,

    /// Only list inquiries with this status (repeat or comma-separate) [env: PERSONAFS_STATUS]
    #[arg(long, value_name = "STATUS", value_delimiter = ',', value_parser = parse::parse_filter_value)]
    pub status: Vec<String>,

    /// Only list inquiries of this template (itmpl_…) [env: PERSONAFS_INQUIRY_TEMPLATE_ID]
    #[arg(long, value_name = "ID", value_parser = parse::parse_filter_value)]
    pub inquiry_template_id: Option<String>,

    /// Only list inquiries with this reference id [env: PERSONAFS_REFERENCE_ID]
    #[arg(long, value_name = "ID", value_parser = parse::parse_filter_value)]
    pub reference_id: Option<String>,

    /// Only list inquiries of this account (act_…) [env: PERSONAFS_ACCOUNT_ID]
    #[arg(long, value_name = "ID", value_parser = parse::parse_filter_value)]
    pub account_id: Option<String>,

    /// Only list inquiries created at or after this ISO-8601 date or date-time
    /// [env: PERSONAFS_CREATED_AFTER]
    #[arg(long, value_name = "DATE", value_parser = parse::parse_timestamp)]
    pub created_after: Option<String>,

    /// Only list inquiries created at or before this ISO-8601 date or date-time
    /// [env: PERSONAFS_CREATED_BEFORE]
    #[arg(long, value_name = "DATE", value_parser = parse::parse_timestamp)]
    pub created_before: Option<String>,

    /// Only list these inquiries (repeat or comma-separate) [env: PERSONAFS_INQUIRY_ID]
    #[arg(long, value_name = "ID", value_delimiter = ',', value_parser = parse::parse_inquiry_id)]
    pub inquiry_id: Vec<String>,

    /// Another host (HOST or HOST:PORT) file URLs may point to, besides the API host and
    /// Persona's files host; any other host is refused [env: PERSONAFS_FILE_HOST]
    #[arg(long, value_name = "HOST", value_delimiter = ',', value_parser = parse::parse_host)]
    pub file_host: Vec<String>,

    /// How long listings and retrieved inquiries are reused [default: 60s] [env: PERSONAFS_METADATA_TTL]
    #[arg(long, value_name = "DURATION", value_parser = parse::parse_duration)]
    pub metadata_ttl: Option<Duration>,

    /// Kernel entry and attribute cache time [default: 5s] [env: PERSONAFS_ATTR_TTL]
    #[arg(long, value_name = "DURATION", value_parser = parse::parse_duration)]
    pub attr_ttl: Option<Duration>,

    /// How long "no such inquiry" is remembered [default: 10s] [env: PERSONAFS_NEGATIVE_TTL]
    #[arg(long, value_name = "DURATION", value_parser = parse::parse_duration)]
    pub negative_ttl: Option<Duration>,

    /// Where file contents are cached [default: $XDG_CACHE_HOME/personafs or
    /// ~/.cache/personafs] [env: PERSONAFS_CACHE_DIR]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Largest size of the file cache, e.g. 500MB, 2GiB, 1G, 1048576
    /// [default: 2GiB] [env: PERSONAFS_CACHE_MAX_SIZE]
    #[arg(long, value_name = "SIZE", value_parser = parse::parse_size)]
    pub cache_max_size: Option<u64>,

    /// Evict cached files to keep this much of the cache's disk free
    /// [default: 5] [env: PERSONAFS_CACHE_MIN_FREE]
    #[arg(long, value_name = "PERCENT", value_parser = parse::parse_percent)]
    pub cache_min_free: Option<f64>,

    /// Evict cached files unused for this long, or `off` [default: off] [env: PERSONAFS_CACHE_MAX_AGE]
    #[arg(long, value_name = "DURATION", value_parser = parse::parse_age_limit)]
    pub cache_max_age: Option<parse::AgeLimit>,

    /// Owner of every file [default: the mounting user] [env: PERSONAFS_UID]
    #[arg(long, value_name = "UID", value_parser = parse::parse_id)]
    pub uid: Option<u32>,

    /// Group of every file [default: the mounting user's group] [env: PERSONAFS_GID]
    #[arg(long, value_name = "GID", value_parser = parse::parse_id)]
    pub gid: Option<u32>,

    /// Permissions of files, octal [default: 0444] [env: PERSONAFS_FILE_MODE]
    #[arg(long, value_name = "MODE", value_parser = parse::parse_mode)]
    pub file_mode: Option<u16>,

    /// Permissions of directories, octal [default: 0555] [env: PERSONAFS_DIR_MODE]
    #[arg(long, value_name = "MODE", value_parser = parse::parse_mode)]
    pub dir_mode: Option<u16>,

    /// Let other users see the mount (needs user_allow_other in /etc/fuse.conf)
    /// [env: PERSONAFS_ALLOW_OTHER]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse::parse_bool)]
    pub allow_other: Option<bool>,

    /// FUSE worker threads [default: 4] [env: PERSONAFS_THREADS]
    #[arg(long, value_name = "N", value_parser = parse::parse_positive)]
    pub threads: Option<usize>,

    /// error, warn, info, debug or trace [default: info] [env: PERSONAFS_LOG_LEVEL]
    #[arg(long, value_name = "LEVEL", value_parser = parse::parse_log_level)]
    pub log_level: Option<String>,

    /// Append the log to this file [env: PERSONAFS_LOG_FILE]
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,

    /// Most API requests per minute [default: 300] [env: PERSONAFS_API_RATE_LIMIT]
    #[arg(long, value_name = "N", value_parser = parse::parse_rate)]
    pub api_rate_limit: Option<u32>,

    /// Give up on one HTTP request after this long [default: 30s] [env: PERSONAFS_REQUEST_TIMEOUT]
    #[arg(long, value_name = "DURATION", value_parser = parse::parse_duration)]
    pub request_timeout: Option<Duration>,

    /// How long a read may wait on the network before failing with EIO
    /// [default: 60s] [env: PERSONAFS_IO_TIMEOUT]
    #[arg(long, value_name = "DURATION", value_parser = parse::parse_duration)]
    pub io_timeout: Option<Duration>,

    /// Download files ahead of reads, true or false [default: true] [env: PERSONAFS_PREFETCH]
    #[arg(long, value_name = "BOOL", value_parser = parse::parse_bool)]
    pub prefetch: Option<bool>,
}
