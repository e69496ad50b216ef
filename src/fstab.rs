//! fstab mounts: `mount -t fuse.personafs` goes through the system's `mount.fuse3`, which
//! runs `personafs SOURCE MOUNTPOINT -o OPTIONS` (as it runs sshfs). That form is rewritten
//! here into the ordinary command line before parsing: SOURCE `personafs` is
//! `personafs mount`, SOURCE `demo` is `personafs demo`; each `-o` option becomes the flag of
//! the config key of the same name, and the standard mount options are accepted.
//!
//! The API key never comes this way: a key in the options is refused (name `api_key_file`
//! in the config file given by `config=FILE`).
//!
//! `rw` is accepted with one warning: mount(8) adds it to every fstab line that names
//! neither `ro` nor `rw`, and a read-only filesystem mounts read-only and says so (as mount
//! does for write-protected media).

use std::ffi::{OsStr, OsString};

use crate::config::{ConfigError, OPTION_KEYS, flag_name};

/// Options of mount(8), systemd and FUSE that need nothing from us: they are handled
/// before we run (`noauto`, `_netdev`, `nofail`, `user`, `x-systemd.*`...), or personafs
/// always does what they ask or better (it always mounts read-only, nodev, nosuid, noexec).
const STANDARD: &[&str] = &[
    "ro",
    "defaults",
    "auto",
    "noauto",
    "_netdev",
    "nofail",
    "user",
    "users",
    "nouser",
    "owner",
    "group",
    "dev",
    "nodev",
    "suid",
    "nosuid",
    "exec",
    "noexec",
    "atime",
    "noatime",
    "relatime",
    "norelatime",
    "strictatime",
    "nodiratime",
    "async",
    "default_permissions",
];

/// Option keys (before `=`) that are accepted and ignored whatever their value.
const STANDARD_PREFIXES: &[&str] = &["x-", "comment=", "subtype=", "fsname="];

/// Switches: an option given without a value means `true`.
const SWITCHES: &[&str] = &["allow_other", "foreground", "prefetch"];

/// The one line said when `rw` is asked for (explicitly, or by mount(8) implicitly).
pub const RW_WARNING: &str =
    "personafs: warning: personafs is read-only; mounting read-only (rw ignored)";

/// If `argv` (program name first) has the form `SOURCE MOUNTPOINT [-o OPTIONS]...`, the
/// equivalent ordinary command line; otherwise `argv` unchanged. Warnings go to stderr.
pub fn rewrite(argv: Vec<OsString>, subcommands: &[&str]) -> Result<Vec<OsString>, ConfigError> {
    let (argv, warnings) = rewrite_with_warnings(argv, subcommands)?;
    for w in warnings {
        eprintln!("{w}");
    }
    Ok(argv)
}

/// `rewrite`, with the warnings returned rather than printed.
fn rewrite_with_warnings(
    argv: Vec<OsString>,
    subcommands: &[&str],
) -> Result<(Vec<OsString>, Vec<&'static str>), ConfigError> {
    let Some((source, mountpoint, options)) = fstab_form(&argv, subcommands) else {
        return Ok((argv, Vec::new()));
    };
    let demo = match source.as_str() {
        "personafs" => false,
        "demo" => true,
        other => {
            return Err(ConfigError::new(format!(
                "unknown mount source `{other}`: use `personafs` (or `demo` for sample data)"
            )));
        }
    };
    let mut out = vec![
        argv[0].clone(),
        OsString::from(if demo { "demo" } else { "mount" }),
        mountpoint,
    ];
    let mut warnings = Vec::new();
    for option in options.iter().flat_map(|o| o.split(',')) {
        let option = option.trim();
        if option == "rw" {
            // Once, however often it is given.
            if warnings.is_empty() {
                warnings.push(RW_WARNING);
            }
            continue;
        }
        out.extend(translate(option, demo)?);
    }
    Ok((out, warnings))
}

/// SOURCE, MOUNTPOINT and the `-o` option strings, when `argv` has the fstab form. A first
/// word other than `personafs` counts as a SOURCE only when `-o` follows (so that a
/// mistyped subcommand stays clap's error) and never when it is a subcommand without `-o`.
fn fstab_form(argv: &[OsString], subcommands: &[&str]) -> Option<(String, OsString, Vec<String>)> {
    let [_, source, mountpoint, rest @ ..] = argv else {
        return None;
    };
    let source = source.to_str()?;
    let word = |s: &OsStr| !s.is_empty() && !s.to_string_lossy().starts_with('-');
    if !word(source.as_ref()) || !word(mountpoint) {
        return None;
    }
    let mut options = Vec::new();
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        let arg = arg.to_str()?;
        match arg.strip_prefix("-o") {
            Some("") => options.push(rest.next()?.to_str()?.to_string()),
            Some(inline) => options.push(inline.to_string()),
            None => return None,
        }
    }
    if options.is_empty() && (source != "personafs" || subcommands.contains(&source)) {
        return None;
    }
    Some((source.to_string(), mountpoint.clone(), options))
}

/// One `-o` option as flags.
fn translate(option: &str, demo: bool) -> Result<Vec<OsString>, ConfigError> {
    if option.is_empty()
        || STANDARD.contains(&option)
        || STANDARD_PREFIXES.iter().any(|p| option.starts_with(p))
    {
        return Ok(Vec::new());
    }
    let (key, value) = match option.split_once('=') {
        Some((k, v)) => (k.replace('-', "_"), Some(v)),
        None => (option.replace('-', "_"), None),
    };
    let flag = |name: &str, value: &str| vec![OsString::from(format!("{name}={value}"))];
    match (key.as_str(), value) {
        ("rw", Some(_)) => Err(ConfigError::new("mount option rw takes no value")),
        ("api_key" | "api_key_file", _) => Err(ConfigError::new(
            "the API key never goes in fstab or on a command line: set api_key_file in the config file and name it with config=FILE",
        )),
        ("config", Some(file)) => Ok(flag("--config", file)),
        ("inquiries", Some(n)) if demo => Ok(flag("--inquiries", n)),
        (key, None) if SWITCHES.contains(&key) => Ok(flag(&flag_name(key), "true")),
        (key, Some(value)) if OPTION_KEYS.contains(&key) => Ok(flag(&flag_name(key), value)),
        (key, None) if OPTION_KEYS.contains(&key) || key == "config" => Err(ConfigError::new(
            format!("mount option {key} needs a value: {key}=…"),
        )),
        (key, _) => {
            let hint = crate::config::closest_key(key)
                .filter(|k| OPTION_KEYS.contains(k))
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            Err(ConfigError::new(format!(
                "unknown mount option `{key}`{hint}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBCOMMANDS: &[&str] = &["mount", "demo", "unmount", "cache"];

    fn run(args: &[&str]) -> Result<Vec<String>, ConfigError> {
        run_warned(args).map(|(argv, _)| argv)
    }

    fn run_warned(args: &[&str]) -> Result<(Vec<String>, Vec<&'static str>), ConfigError> {
        let argv = std::iter::once("personafs")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        rewrite_with_warnings(argv, SUBCOMMANDS).map(|(v, warnings)| {
            let argv = v
                .into_iter()
                .skip(1)
                .map(|s| s.into_string().unwrap())
                .collect();
            (argv, warnings)
        })
    }

    #[test]
    fn mount_fuse3_form_becomes_flags() {
        let out = run(&[
            "personafs",
            "/mnt/p",
            "-o",
            "ro,noexec,nosuid,nodev,config=/etc/personafs.toml,allow_other,uid=5,cache_dir=/var/cache/p",
            "-o",
            "_netdev,nofail,user,users,noauto,x-systemd.automount,defaults,dev,suid,metadata-ttl=2m",
        ])
        .unwrap();
        assert_eq!(
            out,
            [
                "mount",
                "/mnt/p",
                "--config=/etc/personafs.toml",
                "--allow-other=true",
                "--uid=5",
                "--cache-dir=/var/cache/p",
                "--metadata-ttl=2m",
            ]
        );
        let out = run(&["demo", "/mnt/d", "-oinquiries=4,gid=7"]).unwrap();
        assert_eq!(out, ["demo", "/mnt/d", "--inquiries=4", "--gid=7"]);
    }

    #[test]
    fn ordinary_command_lines_are_left_alone() {
        for args in [
            &["demo", "/mnt/d"][..],
            &["mount", "/mnt/p", "--threads", "2"],
            &["unmount", "/mnt/p"],
            &["--help"],
            &["cache", "stats"],
        ] {
            assert_eq!(run(args).unwrap(), args, "{args:?}");
        }
    }

    #[test]
    fn rw_mounts_read_only_with_one_warning() {
        // mount(8) puts rw first when the fstab line names neither ro nor rw.
        let (argv, warnings) = run_warned(&[
            "personafs",
            "/m",
            "-o",
            "rw,config=/c.toml,allow_other",
            "-o",
            "rw",
        ])
        .unwrap();
        assert_eq!(
            argv,
            ["mount", "/m", "--config=/c.toml", "--allow-other=true"]
        );
        assert_eq!(warnings, [RW_WARNING]);
        assert!(RW_WARNING.contains("read-only"));
        let (_, warnings) = run_warned(&["personafs", "/m", "-o", "ro,nodev"]).unwrap();
        assert!(warnings.is_empty());
        let err = run(&["personafs", "/m", "-o", "rw=1"]).unwrap_err().0;
        assert!(err.contains("rw takes no value"), "{err}");
    }

    #[test]
    fn refused_options_say_why() {
        let err = run(&["personafs", "/m", "-o", "api_key=persona_sandbox_x"])
            .unwrap_err()
            .0;
        assert!(err.contains("api_key_file"), "{err}");
        assert!(!err.contains("persona_sandbox_x"), "{err}");
        let err = run(&["personafs", "/m", "-o", "metdata_ttl=1m"])
            .unwrap_err()
            .0;
        assert!(err.contains("did you mean `metadata_ttl`"), "{err}");
        let err = run(&["personafs", "/m", "-o", "uid"]).unwrap_err().0;
        assert!(err.contains("needs a value"), "{err}");
        let err = run(&["sshfs", "/m", "-o", "ro"]).unwrap_err().0;
        assert!(err.contains("unknown mount source `sshfs`"), "{err}");
        // A mistyped subcommand without -o is left for clap to name.
        assert_eq!(run(&["moutn", "/m"]).unwrap(), ["moutn", "/m"]);
        assert_eq!(run(&["personafs", "/m"]).unwrap(), ["mount", "/m"]);
    }
}
