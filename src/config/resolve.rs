//! Resolving flags, environment and config file into a `MountConfig`.
//!
//! The environment is read through a lookup closure so tests never touch the real one.
//! Each option's flag values, environment variable and default come from the command
//! line's declaration (`OptionArgs`); the config file sits between the environment and the
//! default.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{ConfigFile, check_private, io_reason, split_list};
use super::parse;
use super::{
    CacheRequest, ConfigError, DemoRequest, MountConfig, MountRequest, OptionArg, OptionArgs,
    Result, flag_name,
};
use personafs_client::{ApiKey, ListFilters};

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
pub fn resolve_mount(request: &MountRequest, env: EnvLookup<'_>) -> Result<MountConfig> {
    let file = load_config(request.config.as_deref(), env)?;
    let sources = Sources {
        args: &request.options,
        env,
        file: file.as_ref(),
    };
    let api_key = resolve_api_key(env, file.as_ref())?;
    resolve_options(&request.mountpoint, &sources, Some(api_key))
}

/// Resolve `personafs demo`: flags > environment > defaults (no config file, no API key).
/// `api_base` is left at its default; the caller replaces it with the embedded mock's address.
/// Returns the config and the number of inquiries to generate.
pub fn resolve_demo(request: &DemoRequest, env: EnvLookup<'_>) -> Result<(MountConfig, usize)> {
    let sources = Sources {
        args: &request.options,
        env,
        file: None,
    };
    let config = resolve_options(&request.mountpoint, &sources, None)?;
    Ok((config, request.inquiries))
}

/// Resolve `personafs cache`: the cache directory and limits.
pub fn resolve_cache(request: &CacheRequest, env: EnvLookup<'_>) -> Result<CacheConfig> {
    let file = load_config(request.config.as_deref(), env)?;
    let s = Sources {
        args: &request.options,
        env,
        file: file.as_ref(),
    };
    Ok(CacheConfig {
        cache_dir: resolve_cache_dir(&s)?,
        cache_max_size: s.required("cache_max_size", parse::parse_size)?,
        cache_min_free: s.required("cache_min_free", parse::parse_percent)?,
        cache_max_age: s.required("cache_max_age", parse::parse_age_limit)?.0,
    })
}

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
    s: &Sources<'_>,
    api_key: Option<ApiKey>,
) -> Result<MountConfig> {
    let filters = ListFilters {
        status: s.list("status", parse::parse_filter_value)?,
        inquiry_ids: s.list("inquiry_id", parse::parse_inquiry_id)?,
        account_id: s.value("account_id", parse::parse_filter_value)?,
        reference_id: s.value("reference_id", parse::parse_filter_value)?,
        inquiry_template_id: s.value("inquiry_template_id", parse::parse_filter_value)?,
        created_after: s.value("created_after", parse::parse_timestamp)?,
        created_before: s.value("created_before", parse::parse_timestamp)?,
    };
    check_date_range(&filters)?;

    let config = MountConfig {
        mountpoint: absolute(mountpoint)?,
        file_hosts: s.list("file_host", parse::parse_host)?,
        api_base: s.required("api_base", parse::parse_api_base)?,
        api_key,
        persona_version: s.required("persona_version", parse::parse_persona_version)?,
        file_url_lifetime: s.required("file_url_lifetime", parse::parse_duration)?,
        url_refresh_margin: s.required("url_refresh_margin", parse::parse_percent)?,
        filters,
        metadata_ttl: s.required("metadata_ttl", parse::parse_duration)?,
        attr_ttl: s.required("attr_ttl", parse::parse_duration)?,
        negative_ttl: s.required("negative_ttl", parse::parse_duration)?,
        delta_overlap: s.required("delta_overlap", parse::parse_duration)?,
        full_listing_every: s.required("full_listing_every", parse::parse_duration)?,
        cache_dir: resolve_cache_dir(s)?,
        cache_max_size: s.required("cache_max_size", parse::parse_size)?,
        cache_min_free: s.required("cache_min_free", parse::parse_percent)?,
        cache_max_age: s.required("cache_max_age", parse::parse_age_limit)?.0,
        uid: s
            .value("uid", parse::parse_id)?
            .unwrap_or_else(|| nix::unistd::getuid().as_raw()),
        gid: s
            .value("gid", parse::parse_id)?
            .unwrap_or_else(|| nix::unistd::getgid().as_raw()),
        file_mode: s.required("file_mode", parse::parse_mode)?,
        dir_mode: s.required("dir_mode", parse::parse_mode)?,
        views: s.required("views", parse::parse_views)?,
        allow_other: s.required("allow_other", parse::parse_bool)?,
        threads: s.required("threads", parse::parse_positive)?,
        log_level: s.required("log_level", parse::parse_log_level)?,
        log_file: s.path("log_file")?,
        audit_log: s.path("audit_log")?,
        metrics_listen: s.value("metrics_listen", crate::metrics::parse_listen)?,
        foreground: s.required("foreground", parse::parse_bool)?,
        api_rate_limit: s.value("api_rate_limit", parse::parse_rate)?,
        api_rate_share: s.required("api_rate_share", parse::parse_share)?,
        api_rate_reserve: s.required("api_rate_reserve", parse::parse_percent)?,
        shared_state: s.value("shared_state", crate::shared_state::parse_shared_state)?,
        request_timeout: s.required("request_timeout", parse::parse_duration)?,
        io_timeout: s.required("io_timeout", parse::parse_duration)?,
        max_response_size: s.required("max_response_size", parse::parse_size)?,
        prefetch: s.required("prefetch", parse::parse_bool)?,
        watch_events: s.value("watch_events", parse::parse_duration)?,
        webhook_listen: s.value("webhook_listen", crate::metrics::parse_listen)?,
        webhook_secret_file: s.path("webhook_secret_file")?,
    };
    if config.watch_events.is_some_and(|d| d.is_zero()) {
        return Err(ConfigError::new(format!(
            "{} must be more than 0",
            flag_name("watch_events")
        )));
    }
    if config.webhook_listen.is_some() && config.webhook_secret_file.is_none() {
        return Err(ConfigError::new(format!(
            "{} needs {}: webhooks are only accepted signed",
            flag_name("webhook_listen"),
            flag_name("webhook_secret_file")
        )));
    }
    for (key, value) in [
        ("file_url_lifetime", config.file_url_lifetime),
        ("request_timeout", config.request_timeout),
        ("io_timeout", config.io_timeout),
    ] {
        if value.is_zero() {
            return Err(ConfigError::new(format!(
                "{} must be more than 0",
                flag_name(key)
            )));
        }
    }
    // Below this even a small inquiry would not fit: every one would fail.
    if config.max_response_size < 64 * 1024 {
        return Err(ConfigError::new(format!(
            "{} must be at least 64KiB",
            flag_name("max_response_size")
        )));
    }
    Ok(config)
}

fn resolve_cache_dir(s: &Sources<'_>) -> Result<PathBuf> {
    if let Some(dir) = s.path("cache_dir")? {
        return Ok(dir);
    }
    // XDG: a relative XDG_CACHE_HOME is invalid and must be ignored.
    let xdg = (s.env)("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    if let Some(xdg) = xdg {
        return Ok(xdg.join("personafs"));
    }
    match home_dir(s.env) {
        Some(home) => Ok(home.join(".cache/personafs")),
        None => Err(ConfigError::new(
            "cannot choose a cache directory: HOME is not set; use --cache-dir",
        )),
    }
}

fn check_date_range(filters: &ListFilters) -> Result<()> {
    if let (Some(after), Some(before)) = (&filters.created_after, &filters.created_before)
        && let (Some(a), Some(b)) = (parse::timestamp_utc(after), parse::timestamp_utc(before))
        && a > b
    {
        return Err(ConfigError::new(format!(
            "--created-after {after} is later than --created-before {before}"
        )));
    }
    Ok(())
}

/// `HOME`, else the user's home directory from the password database: mount(8) clears
/// HOME before running `mount.fuse3`, so an fstab mount has none.
fn home_dir(env: EnvLookup<'_>) -> Option<PathBuf> {
    if let Some(home) = env("HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(home));
    }
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|user| user.dir)
        .filter(|dir| dir.is_absolute())
}

/// The API key: `PERSONA_API_KEY`, else the config's `api_key_file`, else its `api_key`.
fn resolve_api_key(env: EnvLookup<'_>, file: Option<&ConfigFile>) -> Result<ApiKey> {
    if let Some(key) = env(API_KEY_ENV).filter(|k| !k.trim().is_empty()) {
        return checked_key(&key, &format!("environment variable {API_KEY_ENV}"));
    }
    let missing =
        || ConfigError::new("no API key: set PERSONA_API_KEY or api_key_file in the config");
    let Some(file) = file else {
        return Err(missing());
    };
    if file.has("api_key_file") && file.has("api_key") {
        return Err(ConfigError::new(format!(
            "config file {} sets both api_key and api_key_file; keep one",
            file.path().display()
        )));
    }
    if let Some(text) = file.scalar("api_key_file")? {
        let path = expand_path(&text, Some(file.path()), env)
            .ok_or_else(|| ConfigError::new("api_key_file is empty"))?;
        check_private(&path)?;
        let key = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::new(format!(
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
        return Err(ConfigError::new(format!("the {source} is empty")));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(format!(
            "the API key from {source} contains spaces or non-printable characters"
        )));
    }
    Ok(ApiKey::new(key))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(ConfigError::new("the mountpoint is empty"));
    }
    std::path::absolute(path).map_err(|e| {
        ConfigError::new(format!(
            "cannot use mountpoint {}: {}",
            path.display(),
            io_reason(&e)
        ))
    })
}

/// Expand `~/` with HOME, and make a relative path absolute: against the config file's
/// directory for config values, against the working directory otherwise (the daemon will
/// change directory, so relative paths must not survive).
fn expand_path(text: &str, config: Option<&Path>, env: EnvLookup<'_>) -> Option<PathBuf> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let home = home_dir(env);
    let path = match (text.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        (None, Some(home)) if text == "~" => home,
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

/// Where option values come from: the command line's flags and declarations, the
/// environment, the config file.
struct Sources<'a> {
    args: &'a OptionArgs,
    env: EnvLookup<'a>,
    file: Option<&'a ConfigFile>,
}

/// Where an option's text came from, for error messages.
enum Origin<'a> {
    Flag,
    Env(&'a str),
    File(&'a ConfigFile),
    Default,
}

impl Sources<'_> {
    fn arg(&self, key: &str) -> Result<&OptionArg> {
        self.args
            .get(key)
            .ok_or_else(|| ConfigError::new(format!("{} is not an option here", flag_name(key))))
    }

    /// The texts of `key`, from the first source that has any: flags, environment, config
    /// file, declared default. `as_list` reads the config value as a list.
    fn texts(&self, key: &str, as_list: bool) -> Result<Option<(Vec<String>, Origin<'_>)>> {
        let arg = self.arg(key)?;
        if !arg.flag.is_empty() {
            let texts = arg
                .flag
                .iter()
                .map(|v| utf8(key, v))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Some((texts, Origin::Flag)));
        }
        if let Some(var) = &arg.env
            && let Some(text) = (self.env)(var).filter(|t| !t.trim().is_empty())
        {
            let texts = if as_list {
                split_list(&text)
            } else {
                vec![text]
            };
            return Ok(Some((texts, Origin::Env(var))));
        }
        if let Some(file) = self.file {
            let texts = if as_list {
                file.list(key)?
            } else {
                file.scalar(key)?.map(|t| vec![t])
            };
            if let Some(texts) = texts {
                return Ok(Some((texts, Origin::File(file))));
            }
        }
        if !arg.default.is_empty() {
            return Ok(Some((arg.default.clone(), Origin::Default)));
        }
        Ok(None)
    }

    /// A single value, or `None` when no source has one.
    fn value<T>(&self, key: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>> {
        let Some((texts, origin)) = self.texts(key, false)? else {
            return Ok(None);
        };
        // A flag given twice: the last one counts, as usual on command lines.
        let text = texts.last().map(String::as_str).unwrap_or_default();
        parse(text).map(Some).map_err(|e| invalid(key, &origin, &e))
    }

    /// A single value that has a declared default.
    fn required<T>(&self, key: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<T> {
        self.value(key, parse)?
            .ok_or_else(|| ConfigError::new(format!("{} has no value", flag_name(key))))
    }

    /// A list: the flags if any, else the comma-separated environment variable, else the
    /// config's array (or comma-separated string), else the default (empty).
    fn list<T>(&self, key: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>> {
        let Some((texts, origin)) = self.texts(key, true)? else {
            return Ok(Vec::new());
        };
        texts
            .iter()
            .map(|item| parse(item).map_err(|e| invalid(key, &origin, &e)))
            .collect()
    }

    /// A path option, absolute and with `~` expanded (relative to the config file's
    /// directory when it comes from the config file).
    fn path(&self, key: &str) -> Result<Option<PathBuf>> {
        let Some((texts, origin)) = self.texts(key, false)? else {
            return Ok(None);
        };
        let text = texts.last().map(String::as_str).unwrap_or_default();
        let base = match &origin {
            Origin::File(file) => Some(file.path()),
            _ => None,
        };
        match expand_path(text, base, self.env) {
            Some(path) => Ok(Some(path)),
            None if matches!(origin, Origin::Env(_)) => Ok(None),
            None => Err(invalid(key, &origin, "empty path")),
        }
    }
}

fn utf8(key: &str, value: &OsString) -> Result<String> {
    value
        .to_str()
        .map(str::to_string)
        .ok_or_else(|| ConfigError::new(format!("{} is not valid UTF-8", flag_name(key))))
}

fn invalid(key: &str, origin: &Origin<'_>, reason: &str) -> ConfigError {
    match origin {
        Origin::Flag => from_flag(key, reason),
        Origin::Env(var) => from_env(key, var, reason),
        Origin::File(file) => from_file(key, file, reason),
        Origin::Default => ConfigError::new(format!(
            "the default of {} is invalid: {reason}",
            flag_name(key)
        )),
    }
}

fn from_flag(key: &str, reason: &str) -> ConfigError {
    ConfigError::new(format!("invalid value for {}: {reason}", flag_name(key)))
}

fn from_env(key: &str, var: &str, reason: &str) -> ConfigError {
    ConfigError::new(format!(
        "invalid value for {} in environment variable {var}: {reason}",
        flag_name(key)
    ))
}

fn from_file(key: &str, file: &ConfigFile, reason: &str) -> ConfigError {
    ConfigError::new(format!(
        "invalid value for {key} in config file {}: {reason}",
        file.path().display()
    ))
}
