//! The Debian package, as an operator installs it: `scripts/deb.sh` builds it with cargo-deb,
//! `dpkg -i` installs it, the README's fstab line mounts the mock through the installed
//! `/usr/bin/personafs` (found by mount.fuse3), a photo reads whole, `umount` unmounts, and
//! `dpkg --purge` leaves nothing of the package behind, only the user's cache.
//!
//! Needs root and cargo-deb: without them it is skipped with a message, except under
//! `CI=true`, where it fails. The mount runs in a private mount namespace (`unshare -m`).

mod binary;
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use binary::MockProcess;
use common::{fuse_available, stdout_of};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skip with `why` outside CI; fail in CI.
fn skip(why: &str) -> bool {
    assert!(!in_ci(), "the package test cannot run under CI: {why}");
    eprintln!("\n!!!!! SKIPPING the Debian package test: {why} !!!!!\n");
    false
}

fn can_run() -> bool {
    if nix::unistd::geteuid().as_raw() != 0 {
        return skip("dpkg -i needs root");
    }
    let deb = Command::new("cargo").args(["deb", "--version"]).output();
    if !deb.is_ok_and(|o| o.status.success()) {
        return skip("cargo-deb is missing (cargo install cargo-deb --locked)");
    }
    // Never replace, then purge, a personafs the machine has installed.
    let installed = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "personafs"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("installed"));
    if installed {
        return skip("a personafs package is installed on this machine already");
    }
    fuse_available()
}

/// Purges the package however the test ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", "personafs"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn the_package_installs_mounts_from_fstab_and_purges_cleanly() {
    if !can_run() {
        return;
    }
    // Built as from a shell: without what cargo test sets for the test itself (the package's
    // CARGO_MANIFEST_DIR, CARGO_PKG_*, OUT_DIR, build.rs's PERSONAFS_COMMIT). Build scripts
    // watch some of these (ring: CARGO_MANIFEST_DIR), so passed on they made this release
    // build differ from the next plain one (the README's demo.sh), which built it all again.
    let mut deb_sh = Command::new(Path::new(ROOT).join("scripts/deb.sh"));
    deb_sh.current_dir(ROOT);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_for_the_test = ["CARGO_PKG_", "CARGO_BIN_EXE_"]
            .iter()
            .any(|p| name.starts_with(p))
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "OUT_DIR",
                "LD_LIBRARY_PATH",
                "PERSONAFS_COMMIT",
            ]
            .contains(&name.as_ref());
        if set_for_the_test {
            deb_sh.env_remove(name.as_ref());
        }
    }
    stdout_of(&mut deb_sh);
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{ROOT}/target"));
    let deb: PathBuf = std::fs::read_dir(Path::new(&target).join("debian"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .expect("scripts/deb.sh made a .deb");

    // What the package holds, before installing it.
    let info = stdout_of(Command::new("dpkg-deb").arg("--info").arg(&deb));
    assert!(info.contains("Package: personafs"), "{info}");
    let depends = info
        .lines()
        .find(|l| l.trim_start().starts_with("Depends:"))
        .unwrap_or_else(|| panic!("no Depends: {info}"));
    assert!(depends.contains("fuse3"), "{depends}");

    let _installed = Installed;
    stdout_of(Command::new("dpkg").arg("-i").arg(&deb));
    let files: Vec<PathBuf> = stdout_of(Command::new("dpkg").args(["-L", "personafs"]))
        .lines()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect();
    for expected in [
        "/usr/bin/personafs",
        "/usr/share/man/man1/personafs.1.gz",
        "/usr/share/bash-completion/completions/personafs",
        "/usr/share/zsh/vendor-completions/_personafs",
        "/usr/share/fish/vendor_completions.d/personafs.fish",
        "/usr/lib/systemd/system/personafs.service",
        "/usr/lib/systemd/user/personafs.service",
        "/usr/share/doc/personafs/mount.example.toml",
    ] {
        assert!(
            files.iter().any(|f| f == Path::new(expected)),
            "{expected} not in the package: {files:?}"
        );
    }
    let unit = std::fs::read_to_string("/usr/lib/systemd/system/personafs.service").unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/personafs "), "{unit}");
    assert!(
        unit.contains("# Enable: systemctl enable --now personafs"),
        "{unit}"
    );
    let user_unit = std::fs::read_to_string("/usr/lib/systemd/user/personafs.service").unwrap();
    assert!(
        user_unit.contains("ExecStart=/usr/bin/personafs "),
        "{user_unit}"
    );
    assert!(!user_unit.contains("cp personafs"), "{user_unit}");
    let version = stdout_of(Command::new("/usr/bin/personafs").arg("--version"));
    assert!(version.starts_with("personafs "), "{version}");
    let man = std::fs::read("/usr/share/man/man1/personafs.1.gz").unwrap();
    assert_eq!(&man[..2], b"\x1f\x8b", "the man page is gzipped");

    // The README's fstab line over the installed binary's mock.
    // `personafs mock-server` of the installed package.
    let mock = MockProcess::spawn("/usr/bin/personafs", &["--generate", "3"]);
    let (api, files_base) = (&mock.api, &mock.files);
    let work = tempfile::tempdir().unwrap();
    let w = work.path().canonicalize().unwrap();
    let mp = w.join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let cache = w.join("cache");
    let key = w.join("api-key");
    private(&key, "persona_sandbox_demo");
    let config = w.join("mount.toml");
    private(
        &config,
        &format!(
            "api_key_file = \"{}\"\napi_base = \"{api}\"\nfile_host = [\"{}\"]\ncache_dir = \"{}\"\n",
            key.display(),
            common::host_port(files_base),
            cache.display(),
        ),
    );
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let line = readme
        .lines()
        .skip_while(|l| *l != "# /etc/fstab")
        .nth(1)
        .expect("README.md has an /etc/fstab block")
        .replace(" /srv/persona ", &format!(" {} ", mp.display()))
        .replace("/etc/personafs/mount.toml", config.to_str().unwrap());
    let fstab = w.join("fstab");
    std::fs::write(&fstab, format!("{line}\n")).unwrap();
    let script = r#"
set -e
trap 'umount "$MP" 2>/dev/null || true' EXIT
mount -T "$FSTAB" "$MP"
f=$(ls -d "$MP"/inquiries/*/document/*.jpg | head -1)
echo "PHOTO $(stat -c %s "$f") $(cat "$f" | wc -c) $(head -c 2 "$f" | od -An -tx1 | tr -d ' ')"
umount "$MP"
grep -q " $MP " /proc/self/mountinfo && echo STILL_MOUNTED || echo UNMOUNTED
"#;
    // A PATH without the build tree: mount(8) finds the installed /usr/bin/personafs.
    let out = stdout_of(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", script])
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("FSTAB", &fstab)
            .env("MP", &mp),
    );
    let photo: Vec<&str> = out
        .lines()
        .find_map(|l| l.strip_prefix("PHOTO "))
        .unwrap_or_else(|| panic!("{out}"))
        .split(' ')
        .collect();
    assert!(photo[0].parse::<u64>().unwrap() > 1000, "{out}");
    assert_eq!(photo[0], photo[1], "the photo reads whole: {out}");
    assert_eq!(photo[2], "ffd8", "a JPEG: {out}");
    assert!(out.ends_with("UNMOUNTED\n"), "{out}");
    drop(mock);

    // Purged: every file of the package is gone; the user's cache stays.
    stdout_of(Command::new("dpkg").args(["--purge", "personafs"]));
    let left: Vec<&PathBuf> = files.iter().filter(|f| f.exists()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let status = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "personafs"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&status.stdout).contains("installed"),
        "still installed"
    );
    assert!(
        std::fs::read_dir(cache.join("data")).is_ok_and(|d| d.count() > 0),
        "the user's cache stays"
    );
}
