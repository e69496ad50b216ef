//! Resolving flags, environment and config file into a `MountConfig`.
//!
//! The environment is read through a lookup closure so tests never touch the real one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{ConfigFile, check_private, io_reason, split_list};
use super::parse;
use super::{DEFAULT_API_BASE, DEFAULT_PERSONA_VERSION, MountConfig, env_var_name, flag_name};
use crate::cli::{CacheArgs, DemoArgs, MountArgs, MountOptions};
use personafs_client::{ApiKey, ListFilters};
use personafs_client::{Error, Result};

/// A lookup of environment variables (`|name| std::env::var(name).ok()` in production).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The environment variable holding the API key.
pub const API_KEY_ENV: &str = "PERSONA_API_KEY";
/// The environment variable naming the config file when `--config` is absent.
pub const CONFIG_ENV: &str = "PERSONAFS_CONFIG";

/// The real process environment, for `resolve_*` outside tests.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// What `personafs cache` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    pub cache_dir: PathBuf,
    pub cache_max_size: u64,
    pub cache_min_free: f64,
    pub cache_max_age: Option<Duration>,
}

/// Resolve `personafs mount`: flags > environment > config file > defaults. Needs an API key.
pub fn resolve_mount(args: &MountArgs, env: EnvLookup<'_>) -> Result<MountConfig> {
    let file = load_config(args.config.as_deref(), env)?;
    let sources = Sources {
        env,
        file: file.as_ref(),
    };
    let api_key = resolve_api_key(env, file.as_ref())?;
    resolve_options(&args.mountpoint, &args.options, &sources, Some(api_key))
}

/// Resolve `personafs demo`: flags > environment > defaults (no config file, no API key).
/// `api_base` is left at its default; the caller replaces it with the embedded mock's address.
/// Returns the config and the number of inquiries to generate.
pub fn resolve_demo(args: &DemoArgs, env: EnvLookup<'_>) -> Result<(MountConfig, usize)> {
    let sources = Sources { env, file: None };
    let config = resolve_options(&args.mountpoint, &args.options, &sources, None)?;
    Ok((config, args.inquiries))
}

/// Resolve `personafs cache`: the cache directory and limits.
pub fn resolve_cache(args: &CacheArgs, env: EnvLookup<'_>) -> Result<CacheConfig> {
    let file = load_config(args.config.as_deref(), env)?;
    let sources = Sources {
        env,
        file: file.as_ref(),
    };
    let options = MountOptions {
        cache_dir: args.cache_dir.clone(),
        ..MountOptions::default()
    };
    Ok(CacheConfig {
        cache_dir: resolve_cache_dir(&options, &sources)?,
        cache_max_size: sources
            .value(None, "cache_max_size", parse::parse_size)?
            .unwrap_or(DEFAULT_CACHE_MAX_SIZE),
        cache_min_free: sources
            .value(None, "cache_min_free", parse::parse_percent)?
            .unwrap_or(DEFAULT_CACHE_MIN_FREE),
        cache_max_age: sources
            .value(None, "cache_max_age", parse::parse_age_limit)?
            .and_then(|limit| limit.0),
    })
}

const DEFAULT_CACHE_MAX_SIZE: u64 = 2 << 30;
const DEFAULT_CACHE_MIN_FREE: f64 = 0.05;

fn load_config(flag: Option<&Path>, env: EnvLookup<'_>) -> Result<Option<ConfigFile>> {
    let path = flag.map(Path::to_path_buf).or_else(|| {
        env(CONFIG_ENV)
            .filter(|p| !p.trim().is_empty())
            .map(PathBuf::from)
    });
    path.map(|p| ConfigFile::load(&p)).transpose()
}

fn resolve_options(
    mountpoint: &Path,
    o: &MountOptions,
    s: &Sources<'_>,
    api_key: Option<ApiKey>,
) -> Result<MountConfig> {
    let secs = Duration::from_secs;
    let filters = ListFilters {
        status: s.list(&o.status, "status", parse::parse_filter_value)?,
        inquiry_ids: s.list(&o.inquiry_id, "inquiry_id", parse::parse_inquiry_id)?,
        account_id: s.value(
            o.account_id.clone(),
            "account_id",
            parse::parse_filter_value,
        )?,
        reference_id: s.value(
            o.reference_id.clone(),
            "reference_id",
            parse::parse_filter_value,
        )?,
        inquiry_template_id: s.value(
            o.inquiry_template_id.clone(),
            "inquiry_template_id",
            parse::parse_filter_value,
        )?,
        created_after: s.value(
            o.created_after.clone(),
            "created_after",
            parse::parse_timestamp,
        )?,
        created_before: s.value(
            o.created_before.clone(),
            "created_before",
            parse::parse_timestamp,
        )?,
    };
    check_date_range(&filters)?;

    let config = MountConfig {
        mountpoint: absolute(mountpoint)?,
        file_hosts: s.list(&o.file_host, "file_host", parse::parse_host)?,
        api_base: s
            .value(o.api_base.clone(), "api_base", parse::parse_api_base)?
            .unwrap_or_else(|| DEFAULT_API_BASE.to_string()),
        api_key,
        persona_version: s
            .value(
                o.persona_version.clone(),
                "persona_version",
                parse::parse_persona_version,
            )?
            .unwrap_or_else(|| DEFAULT_PERSONA_VERSION.to_string()),
        file_url_lifetime: s
            .value(
                o.file_url_lifetime,
                "file_url_lifetime",
                parse::parse_duration,
            )?
            .unwrap_or(secs(6 * 3600)),
        url_refresh_margin: s
            .value(
                o.url_refresh_margin,
                "url_refresh_margin",
                parse::parse_percent,
            )?
            .unwrap_or(0.10),
        filters,
        metadata_ttl: s
            .value(o.metadata_ttl, "metadata_ttl", parse::parse_duration)?
            .unwrap_or(secs(60)),
        attr_ttl: s
            .value(o.attr_ttl, "attr_ttl", parse::parse_duration)?
            .unwrap_or(secs(5)),
        negative_ttl: s
            .value(o.negative_ttl, "negative_ttl", parse::parse_duration)?
            .unwrap_or(secs(10)),
        cache_dir: resolve_cache_dir(o, s)?,
        cache_max_size: s
            .value(o.cache_max_size, "cache_max_size", parse::parse_size)?
            .unwrap_or(DEFAULT_CACHE_MAX_SIZE),
        cache_min_free: s
            .value(o.cache_min_free, "cache_min_free", parse::parse_percent)?
            .unwrap_or(DEFAULT_CACHE_MIN_FREE),
        cache_max_age: s
            .value(o.cache_max_age, "cache_max_age", parse::parse_age_limit)?
            .and_then(|limit| limit.0),
        // SAFETY: getuid/getgid cannot fail and touch no memory.
        uid: s
            .value(o.uid, "uid", parse::parse_id)?
            .unwrap_or_else(|| unsafe { libc::getuid() }),
        gid: s
            .value(o.gid, "gid", parse::parse_id)?
            // SAFETY: as above.
            .unwrap_or_else(|| unsafe { libc::getgid() }),
        file_mode: s
            .value(o.file_mode, "file_mode", parse::parse_mode)?
            .unwrap_or(0o444),
        dir_mode: s
            .value(o.dir_mode, "dir_mode", parse::parse_mode)?
            .unwrap_or(0o555),
        allow_other: s
            .value(o.allow_other, "allow_other", parse::parse_bool)?
            .unwrap_or(false),
        threads: s
            .value(o.threads, "threads", parse::parse_positive)?
            .unwrap_or(4),
        log_level: s
            .value(o.log_level.clone(), "log_level", parse::parse_log_level)?
            .unwrap_or_else(|| "info".to_string()),
        log_file: s.path(o.log_file.as_deref(), "log_file")?,
        foreground: s
            .value(o.foreground, "foreground", parse::parse_bool)?
            .unwrap_or(false),
        api_rate_limit: s
            .value(o.api_rate_limit, "api_rate_limit", parse::parse_rate)?
            .unwrap_or(300),
        request_timeout: s
            .value(o.request_timeout, "request_timeout", parse::parse_duration)?
            .unwrap_or(secs(30)),
        io_timeout: s
            .value(o.io_timeout, "io_timeout", parse::parse_duration)?
            .unwrap_or(secs(60)),
        prefetch: s
            .value(o.prefetch, "prefetch", parse::parse_bool)?
            .unwrap_or(true),
    };
    for (key, value) in [
        ("file_url_lifetime", config.file_url_lifetime),
        ("request_timeout", config.request_timeout),
        ("io_timeout", config.io_timeout),
    ] {
        if value.is_zero() {
            return Err(Error::Config(format!(
                "{} must be more than 0",
                flag_name(key)
            )));
        }
    }
    Ok(config)
}

fn resolve_cache_dir(o: &MountOptions, s: &Sources<'_>) -> Result<PathBuf> {
    if let Some(dir) = s.path(o.cache_dir.as_deref(), "cache_dir")? {
        return Ok(dir);
    }
    // XDG: a relative XDG_CACHE_HOME is invalid and must be ignored.
    let xdg = (s.env)("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    if let Some(xdg) = xdg {
        return Ok(xdg.join("personafs"));
    }
    match (s.env)("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cache/personafs")),
        None => Err(Error::Config(
            "cannot choose a cache directory: HOME is not set; use --cache-dir".into(),
        )),
    }
}

fn check_date_range(filters: &ListFilters) -> Result<()> {
    if let (Some(after), Some(before)) = (&filters.created_after, &filters.created_before)
        && let (Some(a), Some(b)) = (parse::timestamp_utc(after), parse::timestamp_utc(before))
        && a > b
    {
        return Err(Error::Config(format!(
            "--created-after {after} is later than --created-before {before}"
        )));
    }
    Ok(())
}

/// The API key: `PERSONA_API_KEY`, else the config's `api_key_file`, else its `api_key`.
fn resolve_api_key(env: EnvLookup<'_>, file: Option<&ConfigFile>) -> Result<ApiKey> {
    if let Some(key) = env(API_KEY_ENV).filter(|k| !k.trim().is_empty()) {
        return checked_key(&key, &format!("environment variable {API_KEY_ENV}"));
    }
    let missing =
        || Error::Config("no API key: set PERSONA_API_KEY or api_key_file in the config".into());
    let Some(file) = file else {
        return Err(missing());
    };
    if file.has("api_key_file") && file.has("api_key") {
        return Err(Error::Config(format!(
            "config file {} sets both api_key and api_key_file; keep one",
            file.path().display()
        )));
    }
    if let Some(text) = file.scalar("api_key_file")? {
        let path = expand_path(&text, Some(file.path()), env)
            .ok_or_else(|| Error::Config("api_key_file is empty".into()))?;
        check_private(&path)?;
        let key = std::fs::read_to_string(&path).map_err(|e| {
            Error::Config(format!(
                "cannot read API key file {}: {}",
                path.display(),
                io_reason(&e)
            ))
        })?;
        return checked_key(&key, &format!("API key file {}", path.display()));
    }
    if let Some(key) = file.secret("api_key")? {
        return checked_key(
            &key,
            &format!("api_key in config file {}", file.path().display()),
        );
    }
    Err(missing())
}

/// Trim the key and refuse one that would break an HTTP header. Never echoes the key.
fn checked_key(raw: &str, source: &str) -> Result<ApiKey> {
    let key = raw.trim();
    if key.is_empty() {
        return Err(Error::Config(format!("the {source} is empty")));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Config(format!(
            "the API key from {source} contains spaces or non-printable characters"
        )));
    }
    Ok(ApiKey::new(key))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(Error::Config("the mountpoint is empty".into()));
    }
    Ok(std::path::absolute(path)?)
}

/// Expand `~/` with HOME, and make a relative path absolute: against the config file's
/// directory for config values, against the working directory otherwise (the daemon will
/// change directory, so relative paths must not survive).
fn expand_path(text: &str, config: Option<&Path>, env: EnvLookup<'_>) -> Option<PathBuf> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let home = env("HOME").filter(|h| !h.is_empty());
    let path = match (text.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ if text == "~" => PathBuf::from(env("HOME").unwrap_or_else(|| "~".into())),
        _ => PathBuf::from(text),
    };
    if path.is_absolute() {
        return Some(path);
    }
    match config.and_then(Path::parent) {
        Some(dir) => Some(dir.join(path)),
        None => std::path::absolute(&path).ok(),
    }
}

/// Where option values come from, below the flags.
struct Sources<'a> {
    env: EnvLookup<'a>,
    file: Option<&'a ConfigFile>,
}

impl Sources<'_> {
    /// The flag if given, else the environment variable, else the config key, else `None`.
    fn value<T>(
        &self,
        flag: Option<T>,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>> {
        if flag.is_some() {
            return Ok(flag);
        }
        let var = env_var_name(key);
        if let Some(text) = (self.env)(&var).filter(|t| !t.trim().is_empty()) {
            return parse(&text).map(Some).map_err(|e| from_env(key, &var, &e));
        }
        if let Some(file) = self.file
            && let Some(text) = file.scalar(key)?
        {
            return parse(&text).map(Some).map_err(|e| from_file(key, file, &e));
        }
        Ok(None)
    }

    /// A list option: the flags if any, else the comma-separated environment variable, else
    /// the config's array (or comma-separated string), else empty.
    fn list<T: Clone>(
        &self,
        flag: &[T],
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Vec<T>> {
        if !flag.is_empty() {
            return Ok(flag.to_vec());
        }
        let var = env_var_name(key);
        if let Some(text) = (self.env)(&var).filter(|t| !t.trim().is_empty()) {
            return split_list(&text)
                .iter()
                .map(|item| parse(item).map_err(|e| from_env(key, &var, &e)))
                .collect();
        }
        if let Some(file) = self.file
            && let Some(items) = file.list(key)?
        {
            return items
                .iter()
                .map(|item| parse(item).map_err(|e| from_file(key, file, &e)))
                .collect();
        }
        Ok(Vec::new())
    }

    /// A path option, absolute and with `~` expanded.
    fn path(&self, flag: Option<&Path>, key: &str) -> Result<Option<PathBuf>> {
        let expand = |text: &str, config: Option<&Path>| expand_path(text, config, self.env);
        if let Some(flag) = flag {
            let text = flag
                .to_str()
                .ok_or_else(|| Error::Config(format!("{} is not valid UTF-8", flag_name(key))))?;
            return expand(text, None)
                .map(Some)
                .ok_or_else(|| from_flag(key, "empty path"));
        }
        let var = env_var_name(key);
        if let Some(text) = (self.env)(&var).filter(|t| !t.trim().is_empty()) {
            return Ok(expand(&text, None));
        }
        if let Some(file) = self.file
            && let Some(text) = file.scalar(key)?
        {
            return expand(&text, Some(file.path()))
                .map(Some)
                .ok_or_else(|| from_file(key, file, "empty path"));
        }
        Ok(None)
    }
}

fn from_flag(key: &str, reason: &str) -> Error {
    Error::Config(format!("invalid value for {}: {reason}", flag_name(key)))
}

fn from_env(key: &str, var: &str, reason: &str) -> Error {
    Error::Config(format!(
        "invalid value for {} in environment variable {var}: {reason}",
        flag_name(key)
    ))
}

fn from_file(key: &str, file: &ConfigFile, reason: &str) -> Error {
    Error::Config(format!(
        "invalid value for {key} in config file {}: {reason}",
        file.path().display()
    ))
}
