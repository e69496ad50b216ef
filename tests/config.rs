//! Command line, environment and config file resolution, and the mountpoint checks.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{CommandFactory, Parser};
use personafs::cli::{self, CacheAction, Cli, Command};
use personafs::config::{
    ConfigError, DemoRequest, MountRequest, OPTION_KEYS, SECRET_KEYS, check_mountpoint,
    resolve_cache, resolve_demo, resolve_mount,
};

const KEY: &str = "persona_sandbox_0123456789abcdef";

fn parse(argv: &[&str]) -> cli::Parsed {
    let argv = ["personafs"].iter().chain(argv).copied();
    cli::try_parse_from(argv).expect("arguments parse")
}

fn mount_args(argv: &[&str]) -> MountRequest {
    let argv: Vec<&str> = ["mount"].iter().chain(argv).copied().collect();
    let parsed = parse(&argv);
    match parsed.command {
        Command::Mount(args) => args.request(parsed.options),
        other => panic!("not a mount command: {other:?}"),
    }
}

fn demo_args(argv: &[&str]) -> DemoRequest {
    let argv: Vec<&str> = ["demo"].iter().chain(argv).copied().collect();
    let parsed = parse(&argv);
    match parsed.command {
        Command::Demo(args) => args.request(parsed.options),
        other => panic!("not a demo command: {other:?}"),
    }
}

/// An environment with a home directory and the given variables.
fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let mut map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.entry("HOME".into())
        .or_insert_with(|| "/home/tester".into());
    move |name: &str| map.get(name).cloned()
}

fn write_private(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A temp dir holding `config.toml` with the given text and mode.
fn config_dir(text: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    write_private(&path, text, mode);
    (dir, path)
}

fn err_text<T: std::fmt::Debug>(result: Result<T, ConfigError>) -> String {
    result.expect_err("expected an error").to_string()
}

#[test]
fn defaults_without_flags_env_or_config() {
    let args = mount_args(&["/mnt/p"]);
    let config = resolve_mount(&args, &env(&[("PERSONA_API_KEY", KEY)])).unwrap();
    assert_eq!(config.mountpoint, PathBuf::from("/mnt/p"));
    assert_eq!(config.api_base, "https://withpersona.com/api/v1");
    assert_eq!(config.persona_version, "2023-01-05");
    assert_eq!(config.file_url_lifetime, Duration::from_secs(6 * 3600));
    assert_eq!(config.url_refresh_margin, 0.10);
    assert_eq!(config.filters, Default::default());
    assert_eq!(config.metadata_ttl, Duration::from_secs(60));
    assert_eq!(config.attr_ttl, Duration::from_secs(5));
    assert_eq!(config.negative_ttl, Duration::from_secs(10));
    assert_eq!(
        config.cache_dir,
        PathBuf::from("/home/tester/.cache/personafs")
    );
    assert_eq!(config.cache_max_size, 2 << 30);
    assert_eq!(config.cache_min_free, 0.05);
    assert_eq!(config.cache_max_age, None);
    // SAFETY: plain libc getters.
    assert_eq!(config.uid, unsafe { libc::getuid() });
    // SAFETY: a libc call that takes no pointers (or valid ones) and cannot corrupt memory.
    assert_eq!(config.gid, unsafe { libc::getgid() });
    assert_eq!((config.file_mode, config.dir_mode), (0o444, 0o555));
    assert!(!config.allow_other);
    assert_eq!(config.threads, 2);
    assert_eq!(config.log_level, "info");
    assert_eq!(config.log_file, None);
    assert!(!config.foreground);
    assert_eq!(config.api_rate_limit, None);
    assert_eq!((config.api_rate_share, config.api_rate_reserve), (0.5, 0.3));
    assert_eq!(config.request_timeout, Duration::from_secs(30));
    assert_eq!(config.io_timeout, Duration::from_secs(60));
    assert!(config.prefetch);
    assert_eq!(config.api_key.unwrap().expose(), KEY);
}

#[test]
fn flags_beat_environment_beat_config_beat_defaults() {
    let (_dir, config_path) = config_dir(
        "metadata_ttl = \"3m\"\nthreads = 7\ncache_max_size = \"1G\"\n\
         status = [\"approved\"]\nlog_level = \"warn\"\nattr_ttl = 9\n",
        0o600,
    );
    let config_flag = config_path.to_str().unwrap();
    let environment = env(&[
        ("PERSONA_API_KEY", KEY),
        ("PERSONAFS_METADATA_TTL", "2m"),
        ("PERSONAFS_THREADS", "6"),
        ("PERSONAFS_STATUS", "completed,failed"),
    ]);
    let args = mount_args(&[
        "/mnt/p",
        "--config",
        config_flag,
        "--metadata-ttl",
        "1m",
        "--status",
        "needs_review",
    ]);
    let c = resolve_mount(&args, &environment).unwrap();
    assert_eq!(c.metadata_ttl, Duration::from_secs(60), "flag wins");
    assert_eq!(c.filters.status, ["needs_review"], "flag wins");
    assert_eq!(c.threads, 6, "environment beats config");
    assert_eq!(c.cache_max_size, 1 << 30, "config beats default");
    assert_eq!(c.log_level, "warn", "config beats default");
    assert_eq!(
        c.attr_ttl,
        Duration::from_secs(9),
        "plain seconds in config"
    );
    assert_eq!(c.negative_ttl, Duration::from_secs(10), "default");

    let args = mount_args(&["/mnt/p", "--config", config_flag]);
    let c = resolve_mount(&args, &environment).unwrap();
    assert_eq!(
        c.metadata_ttl,
        Duration::from_secs(120),
        "environment beats config"
    );
    assert_eq!(c.filters.status, ["completed", "failed"]);

    let c = resolve_mount(&args, &env(&[("PERSONA_API_KEY", KEY)])).unwrap();
    assert_eq!(
        c.metadata_ttl,
        Duration::from_secs(180),
        "config beats default"
    );
    assert_eq!(c.threads, 7);
    assert_eq!(c.filters.status, ["approved"]);
}

#[test]
fn config_path_may_come_from_the_environment() {
    let (_dir, path) = config_dir("threads = 9\n", 0o600);
    let environment = env(&[
        ("PERSONA_API_KEY", KEY),
        ("PERSONAFS_CONFIG", path.to_str().unwrap()),
    ]);
    let c = resolve_mount(&mount_args(&["/mnt/p"]), &environment).unwrap();
    assert_eq!(c.threads, 9);
}

#[test]
fn switches_and_lists_on_the_command_line() {
    let args = mount_args(&[
        "-f",
        "--allow-other",
        "/mnt/p",
        "--status",
        "completed,approved",
        "--status",
        "failed",
        "--inquiry-id",
        "inq_A1",
        "--inquiry-id",
        "inq_B2",
        "--prefetch",
        "false",
        "--file-mode",
        "0440",
        "--cache-max-age",
        "7d",
    ]);
    assert_eq!(
        args.mountpoint,
        PathBuf::from("/mnt/p"),
        "switches take no value"
    );
    let c = resolve_mount(&args, &env(&[("PERSONA_API_KEY", KEY)])).unwrap();
    assert!(c.foreground && c.allow_other && !c.prefetch);
    assert_eq!(c.filters.status, ["completed", "approved", "failed"]);
    assert_eq!(c.filters.inquiry_ids, ["inq_A1", "inq_B2"]);
    assert_eq!(c.file_mode, 0o440);
    assert_eq!(c.cache_max_age, Some(Duration::from_secs(7 * 86_400)));

    // A switch can also turn off what the config or environment turned on.
    let args = mount_args(&["/mnt/p", "--allow-other=false", "--foreground=no"]);
    let environment = env(&[
        ("PERSONA_API_KEY", KEY),
        ("PERSONAFS_ALLOW_OTHER", "true"),
        ("PERSONAFS_FOREGROUND", "yes"),
    ]);
    let c = resolve_mount(&args, &environment).unwrap();
    assert!(!c.allow_other && !c.foreground);
}

#[test]
fn a_flag_given_twice_takes_the_last_value() {
    let args = mount_args(&[
        "/mnt/p",
        "--threads",
        "2",
        "--threads",
        "3",
        "-f",
        "--foreground=no",
    ]);
    let c = resolve_mount(&args, &env(&[("PERSONA_API_KEY", KEY)])).unwrap();
    assert_eq!(c.threads, 3);
    assert!(!c.foreground);
}

#[test]
fn bad_flags_are_refused_by_clap_naming_the_flag() {
    for (flag, value) in [
        ("--metadata-ttl", "soon"),
        ("--cache-max-size", "lots"),
        ("--file-mode", "0999"),
        ("--created-after", "2024-02-30"),
        ("--inquiry-id", "doc_123"),
        ("--log-level", "loud"),
        ("--threads", "0"),
    ] {
        let err = Cli::try_parse_from(["personafs", "mount", "/mnt/p", flag, value])
            .expect_err("bad value accepted")
            .to_string();
        assert!(err.contains(flag), "{flag}: {err}");
    }
    // The key is never a flag.
    assert!(Cli::try_parse_from(["personafs", "mount", "/mnt/p", "--api-key", KEY]).is_err());
}

#[test]
fn bad_values_name_their_option_and_source() {
    let args = mount_args(&["/mnt/p"]);
    let environment = env(&[
        ("PERSONA_API_KEY", KEY),
        ("PERSONAFS_ATTR_TTL", "5 parsecs"),
    ]);
    let err = err_text(resolve_mount(&args, &environment));
    assert!(err.contains("--attr-ttl"), "{err}");
    assert!(
        err.contains("environment variable PERSONAFS_ATTR_TTL"),
        "{err}"
    );

    let (_dir, path) = config_dir("cache_min_free = 150\n", 0o600);
    let args = mount_args(&["/mnt/p", "--config", path.to_str().unwrap()]);
    let err = err_text(resolve_mount(&args, &env(&[("PERSONA_API_KEY", KEY)])));
    assert!(err.contains("cache_min_free"), "{err}");
    assert!(
        err.contains(&format!("config file {}", path.display())),
        "{err}"
    );

    let args = mount_args(&[
        "/mnt/p",
        "--created-after",
        "2024-06-01",
        "--created-before",
        "2024-01-01",
    ]);
    let err = err_text(resolve_mount(&args, &env(&[("PERSONA_API_KEY", KEY)])));
    assert!(err.contains("later than"), "{err}");

    let args = mount_args(&["/mnt/p", "--io-timeout", "0"]);
    let err = err_text(resolve_mount(&args, &env(&[("PERSONA_API_KEY", KEY)])));
    assert!(err.contains("--io-timeout must be more than 0"), "{err}");
}

#[test]
fn unknown_config_key_is_an_error_naming_it() {
    let (_dir, path) = config_dir("metadata_ttl = \"1m\"\ncache_max_sise = \"1G\"\n", 0o600);
    let args = mount_args(&["/mnt/p", "--config", path.to_str().unwrap()]);
    let err = err_text(resolve_mount(&args, &env(&[("PERSONA_API_KEY", KEY)])));
    assert!(err.contains("unknown key `cache_max_sise`"), "{err}");
    assert!(
        err.contains("did you mean `cache_max_size`"),
        "suggests the right key: {err}"
    );
}

#[test]
fn api_key_from_environment_key_file_or_inline() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("api-key");
    write_private(&key_path, &format!("  {KEY}\n"), 0o600);
    let config = dir.path().join("with-file.toml");
    // A relative key file is found next to the config file.
    write_private(&config, "api_key_file = \"api-key\"\n", 0o600);
    let args = mount_args(&["/mnt/p", "--config", config.to_str().unwrap()]);
    let c = resolve_mount(&args, &env(&[])).unwrap();
    assert_eq!(c.api_key.unwrap().expose(), KEY, "key file, trimmed");

    let c = resolve_mount(&args, &env(&[("PERSONA_API_KEY", "persona_sandbox_env")])).unwrap();
    assert_eq!(
        c.api_key.unwrap().expose(),
        "persona_sandbox_env",
        "env wins"
    );

    let inline = dir.path().join("inline.toml");
    write_private(&inline, &format!("api_key = \"{KEY}\"\n"), 0o600);
    let args = mount_args(&["/mnt/p", "--config", inline.to_str().unwrap()]);
    let c = resolve_mount(&args, &env(&[])).unwrap();
    assert!(!format!("{c:?}").contains(KEY), "Debug hides the key");
    assert_eq!(c.api_key.unwrap().expose(), KEY, "inline key");

    // `~/` in api_key_file is the home directory.
    let tilde = dir.path().join("tilde.toml");
    write_private(&tilde, "api_key_file = \"~/api-key\"\n", 0o600);
    let args = mount_args(&["/mnt/p", "--config", tilde.to_str().unwrap()]);
    let home = dir.path().to_str().unwrap();
    let c = resolve_mount(&args, &env(&[("HOME", home)])).unwrap();
    assert_eq!(c.api_key.unwrap().expose(), KEY, "key file under ~/");

    let both = dir.path().join("both.toml");
    write_private(
        &both,
        &format!("api_key = \"{KEY}\"\napi_key_file = \"api-key\"\n"),
        0o600,
    );
    let args = mount_args(&["/mnt/p", "--config", both.to_str().unwrap()]);
    let err = err_text(resolve_mount(&args, &env(&[])));
    assert!(err.contains("both api_key and api_key_file"), "{err}");
    assert!(!err.contains(KEY));
}

#[test]
fn missing_or_malformed_api_key() {
    let err = err_text(resolve_mount(&mount_args(&["/mnt/p"]), &env(&[])));
    assert_eq!(
        err,
        "no API key: set PERSONA_API_KEY or api_key_file in the config"
    );

    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("api-key");
    write_private(&key_path, "persona_sandbox secret\n", 0o600);
    let config = dir.path().join("c.toml");
    write_private(
        &config,
        &format!("api_key_file = \"{}\"\n", key_path.display()),
        0o600,
    );
    let args = mount_args(&["/mnt/p", "--config", config.to_str().unwrap()]);
    let err = err_text(resolve_mount(&args, &env(&[])));
    assert!(err.contains("spaces or non-printable"), "{err}");
    assert!(!err.contains("secret"), "never echoes the key: {err}");

    write_private(&key_path, "\n", 0o600);
    let err = err_text(resolve_mount(&args, &env(&[])));
    assert!(err.contains("is empty"), "{err}");

    std::fs::remove_file(&key_path).unwrap();
    let err = err_text(resolve_mount(&args, &env(&[])));
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn open_key_file_is_refused_like_ssh() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("api-key");
    write_private(&key_path, KEY, 0o644);
    let config = dir.path().join("c.toml");
    write_private(
        &config,
        &format!("api_key_file = \"{}\"\n", key_path.display()),
        0o600,
    );
    let args = mount_args(&["/mnt/p", "--config", config.to_str().unwrap()]);
    let err = err_text(resolve_mount(&args, &env(&[])));
    let k = key_path.display();
    assert_eq!(
        err,
        format!("permissions 0644 for '{k}' are too open; run: chmod 600 {k}")
    );
}

#[test]
fn open_config_file_is_refused() {
    let (_dir, path) = config_dir(&format!("api_key = \"{KEY}\"\n"), 0o640);
    let args = mount_args(&["/mnt/p", "--config", path.to_str().unwrap()]);
    let err = err_text(resolve_mount(&args, &env(&[])));
    assert!(err.contains("permissions 0640"), "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains(KEY));

    // Any group or other bit counts, even with the key in the environment.
    let (_dir, path) = config_dir("threads = 2\n", 0o604);
    let args = mount_args(&["/mnt/p", "--config", path.to_str().unwrap()]);
    let err = err_text(resolve_mount(&args, &env(&[("PERSONA_API_KEY", KEY)])));
    assert!(err.contains("permissions 0604"), "{err}");
}

#[test]
fn config_paths_are_absolute_and_expanded() {
    let (dir, path) = config_dir(
        "cache_dir = \"cache\"\nlog_file = \"~/personafs.log\"\n",
        0o600,
    );
    let args = mount_args(&["/mnt/p", "--config", path.to_str().unwrap()]);
    let c = resolve_mount(&args, &env(&[("PERSONA_API_KEY", KEY)])).unwrap();
    assert_eq!(c.cache_dir, dir.path().join("cache"));
    assert_eq!(
        c.log_file,
        Some(PathBuf::from("/home/tester/personafs.log"))
    );

    let args = mount_args(&["relative/mnt", "--cache-dir", "rel-cache"]);
    let c = resolve_mount(&args, &env(&[("PERSONA_API_KEY", KEY)])).unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(c.mountpoint, cwd.join("relative/mnt"));
    assert_eq!(c.cache_dir, cwd.join("rel-cache"));
}

#[test]
fn cache_dir_follows_xdg() {
    let args = mount_args(&["/mnt/p"]);
    let with_xdg = env(&[
        ("PERSONA_API_KEY", KEY),
        ("XDG_CACHE_HOME", "/var/cache/me"),
    ]);
    let c = resolve_mount(&args, &with_xdg).unwrap();
    assert_eq!(c.cache_dir, PathBuf::from("/var/cache/me/personafs"));
    // A relative XDG_CACHE_HOME is invalid by the XDG spec and ignored.
    let relative = env(&[("PERSONA_API_KEY", KEY), ("XDG_CACHE_HOME", "cache")]);
    let c = resolve_mount(&args, &relative).unwrap();
    assert_eq!(c.cache_dir, PathBuf::from("/home/tester/.cache/personafs"));
    let env_dir = env(&[("PERSONA_API_KEY", KEY), ("PERSONAFS_CACHE_DIR", "/srv/c")]);
    assert_eq!(
        resolve_mount(&args, &env_dir).unwrap().cache_dir,
        PathBuf::from("/srv/c")
    );
}

#[test]
fn demo_needs_no_key() {
    let (c, inquiries) = resolve_demo(&demo_args(&["/mnt/d"]), &env(&[])).unwrap();
    assert_eq!(inquiries, 25);
    assert!(c.api_key.is_none());
    assert_eq!(c.mountpoint, PathBuf::from("/mnt/d"));

    let args = demo_args(&["/mnt/d", "--inquiries", "3", "--threads", "2", "-f"]);
    let environment = env(&[("PERSONA_API_KEY", KEY), ("PERSONAFS_LOG_LEVEL", "debug")]);
    let (c, inquiries) = resolve_demo(&args, &environment).unwrap();
    assert_eq!((inquiries, c.threads, c.foreground), (3, 2, true));
    assert_eq!(c.log_level, "debug");
    assert!(c.api_key.is_none(), "demo never takes the real key");
}

#[test]
fn cache_and_unmount_commands() {
    let (_dir, path) = config_dir(
        "cache_max_size = \"100MB\"\ncache_max_age = \"2d\"\n",
        0o600,
    );
    let argv = ["cache", "prune", "--config", path.to_str().unwrap()];
    let parsed = parse(&argv);
    let Command::Cache(args) = parsed.command else {
        panic!("not a cache command");
    };
    assert_eq!(args.action, CacheAction::Prune);
    let c = resolve_cache(&args.request(parsed.options), &env(&[])).unwrap();
    assert_eq!(c.cache_dir, PathBuf::from("/home/tester/.cache/personafs"));
    assert_eq!(c.cache_max_size, 100_000_000);
    assert_eq!(c.cache_max_age, Some(Duration::from_secs(2 * 86_400)));
    assert_eq!(c.cache_min_free, 0.05);

    let parsed = parse(&["cache", "--cache-dir", "/tmp/c", "stats"]);
    let Command::Cache(args) = parsed.command else {
        panic!("not a cache command");
    };
    assert_eq!(args.action, CacheAction::Stats);
    let c = resolve_cache(&args.request(parsed.options), &env(&[])).unwrap();
    assert_eq!(c.cache_dir, PathBuf::from("/tmp/c"));

    let Command::Unmount(args) = parse(&["unmount", "/mnt/p"]).command else {
        panic!("not an unmount command");
    };
    assert_eq!(args.mountpoint, PathBuf::from("/mnt/p"));
}

#[test]
fn clap_definition_matches_the_option_table() {
    Cli::command().debug_assert();
    let mount = Cli::command()
        .find_subcommand("mount")
        .expect("mount subcommand")
        .clone();
    let mut ids: Vec<String> = mount
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .filter(|id| !["mountpoint", "config", "help", "version"].contains(&id.as_str()))
        .collect();
    ids.sort();
    let mut keys: Vec<String> = OPTION_KEYS.iter().map(|k| k.to_string()).collect();
    keys.sort();
    assert_eq!(ids, keys, "every option has a flag and a config key");
}

/// The shipped example: every key it mentions (set or commented out) is known, every option
/// is documented, and the values it sets are the defaults.
#[test]
fn example_config_documents_every_option_with_its_default() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("mount.example.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    let mentioned: Vec<&str> = text
        .lines()
        .map(|l| l.trim_start_matches('#').trim())
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim()))
        .filter(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    for key in &mentioned {
        assert!(
            OPTION_KEYS.contains(key) || SECRET_KEYS.contains(key),
            "example mentions unknown key {key}"
        );
    }
    for key in OPTION_KEYS.iter().chain(SECRET_KEYS) {
        assert!(mentioned.contains(key), "example does not document {key}");
    }

    let (_dir, copy) = config_dir(&text, 0o600);
    let environment = env(&[("PERSONA_API_KEY", KEY)]);
    let with_example = mount_args(&["/mnt/p", "--config", copy.to_str().unwrap()]);
    let from_example = resolve_mount(&with_example, &environment).unwrap();
    let defaults = resolve_mount(&mount_args(&["/mnt/p"]), &environment).unwrap();
    assert_eq!(format!("{from_example:?}"), format!("{defaults:?}"));
}

#[test]
fn mountpoint_checks() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let err = err_text(check_mountpoint(&missing));
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains("mkdir -p"), "{err}");

    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let err = err_text(check_mountpoint(&file));
    assert!(err.contains("is not a directory"), "{err}");

    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join(".hidden"), b"x").unwrap();
    let err = err_text(check_mountpoint(&full));
    assert!(err.contains("is not empty"), "{err}");
    assert!(!err.contains('\n'), "one line: {err}");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    check_mountpoint(&empty).unwrap();
}

/// One declaration: every option's environment variable is `PERSONAFS_<KEY>`, every option
/// sits under a help heading, and the example config sets every option that has a declared
/// default to exactly that default's text.
#[test]
fn example_config_sets_every_declared_default() {
    let cli = Cli::command();
    let mount = cli.find_subcommand("mount").unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("mount.example.toml");
    let table: toml::Table = std::fs::read_to_string(&example).unwrap().parse().unwrap();
    let mut with_default = 0;
    for arg in mount.get_arguments() {
        let key = arg.get_id().as_str();
        if !OPTION_KEYS.contains(&key) {
            continue;
        }
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        assert_eq!(
            env,
            Some(format!("PERSONAFS_{}", key.to_ascii_uppercase())),
            "{key}"
        );
        assert!(arg.get_help_heading().is_some(), "{key} has no heading");
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let Some(default) = defaults.first() else {
            // No fixed default (lists, filters, paths, ids): commented out or empty.
            if let Some(value) = table.get(key) {
                assert_eq!(value, &toml::Value::Array(vec![]), "{key}");
            }
            continue;
        };
        with_default += 1;
        let value = table
            .get(key)
            .unwrap_or_else(|| panic!("the example does not set {key} (default {default})"));
        let text = match value {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(&text, default, "{key}: example and declaration differ");
    }
    assert!(with_default >= 20, "only {with_default} defaults declared");
}

/// `request_timeout` has one default, the declared one, and it is what a mount uses.
#[test]
fn request_timeout_default_is_the_declared_one() {
    let cli = Cli::command();
    let arg = cli
        .find_subcommand("mount")
        .unwrap()
        .get_arguments()
        .find(|a| a.get_id() == "request_timeout")
        .unwrap()
        .clone();
    assert_eq!(arg.get_default_values(), ["30s"]);
    let c = resolve_mount(&mount_args(&["/mnt/p"]), &env(&[("PERSONA_API_KEY", KEY)])).unwrap();
    assert_eq!(c.request_timeout, Duration::from_secs(30));
    assert_eq!(
        c.persona_version,
        personafs_client::client::DEFAULT_PERSONA_VERSION
    );
}

/// mount(8) clears HOME before running mount.fuse3: the cache then goes under the user's
/// home directory from the password database.
#[test]
fn without_home_the_cache_dir_comes_from_the_password_database() {
    let no_home = |name: &str| (name == "PERSONA_API_KEY").then(|| KEY.to_string());
    let c = resolve_mount(&mount_args(&["/mnt/p"]), &no_home).unwrap();
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .expect("the test user has a passwd entry");
    assert_eq!(c.cache_dir, user.dir.join(".cache/personafs"));
}

#[test]
fn views_are_all_three_unless_told_otherwise() {
    let environment = env(&[("PERSONA_API_KEY", KEY)]);
    let all = resolve_mount(&mount_args(&["/mnt/p"]), &environment).unwrap();
    assert_eq!(all.views, personafs_fs::ViewSet::default());
    let none = resolve_mount(&mount_args(&["/mnt/p", "--views", "none"]), &environment).unwrap();
    assert_eq!(none.views, personafs_fs::ViewSet::NONE);
    let two = resolve_mount(
        &mount_args(&["/mnt/p", "--views", "by-reference-id,by-day"]),
        &environment,
    )
    .unwrap();
    assert!(two.views.by_reference_id && two.views.by_day && !two.views.accounts);

    let (_dir, path) = config_dir("views = \"accounts\"\n", 0o600);
    let args = mount_args(&["/mnt/p", "--config", path.to_str().unwrap()]);
    let from_file = resolve_mount(&args, &environment).unwrap();
    assert_eq!(from_file.views.names(), "accounts");

    let (_dir, path) = config_dir("views = \"by-week\"\n", 0o600);
    let args = mount_args(&["/mnt/p", "--config", path.to_str().unwrap()]);
    let err = err_text(resolve_mount(&args, &environment));
    assert!(err.contains("views") && err.contains("by-week"), "{err}");
}
