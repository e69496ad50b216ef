//! fstab: `mount -T <fstab file> <mountpoint>` runs the system's mount.fuse3, which runs
//! `personafs SOURCE MOUNTPOINT -o OPTIONS`; `umount` takes it down.
//!
//! mount(8) clears PATH before running its helpers, so the shell in mount.fuse3 looks for
//! `personafs` in the default path only. The test runs in a private mount namespace
//! (`unshare -m`) where a directory holding a `personafs` symlink to the built binary is
//! bound over /usr/local/sbin: nothing outside the test sees it.
//!
//! The first test mounts with the README's own fstab line, read from README.md (only the
//! paths substituted), so the documented line cannot stop working unnoticed.

mod binary;
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use binary::BIN;
use common::{fuse_available, host_port};

fn have(program: &str) -> bool {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .any(|d| Path::new(d).join(program).exists())
}

fn private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The fstab line of README.md's "/etc/fstab" block, as written there.
fn readme_fstab_line() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut lines = readme.lines().skip_while(|l| *l != "# /etc/fstab");
    assert!(
        lines.next().is_some(),
        "README.md has no `# /etc/fstab` block"
    );
    let line = lines.next().unwrap().to_string();
    assert!(line.contains(" fuse.personafs "), "{line}");
    line
}

/// A mock of 3 inquiries, a private key file and a private config file naming it (with the
/// mock's addresses and a cache directory under `w`).
fn mock_and_config(w: &Path) -> (personafs_mock::MockServer, std::path::PathBuf) {
    let mock = personafs_mock::MockServer::start(personafs_mock::MockConfig {
        generate: 3,
        ..Default::default()
    })
    .unwrap();
    let key = w.join("api-key");
    private(&key, &mock.api_key());
    let config = w.join("personafs.toml");
    private(
        &config,
        &format!(
            "api_key_file = \"{}\"\napi_base = \"{}\"\nfile_host = [\"{}\"]\ncache_dir = \"{}\"\n",
            key.display(),
            mock.api_base(),
            host_port(&mock.files_base()),
            w.join("cache").display(),
        ),
    );
    (mock, config)
}

/// A directory holding a `personafs` symlink to the built binary.
fn bin_dir(w: &Path) -> std::path::PathBuf {
    let bin = w.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(BIN, bin.join("personafs")).unwrap();
    bin
}

fn can_run() -> bool {
    if !fuse_available() || !have("unshare") || !have("mount.fuse3") {
        eprintln!("skipped: needs FUSE, unshare and mount.fuse3");
        return false;
    }
    true
}

#[test]
fn the_readme_fstab_line_mounts_read_only_with_one_warning() {
    if !can_run() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path().canonicalize().unwrap();
    let mp = w.join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let (mock, config) = mock_and_config(&w);
    let line = readme_fstab_line();
    // Only the paths change: the mountpoint and the config file.
    assert!(line.contains(" /srv/persona ") && line.contains("config=/etc/personafs/mount.toml,"));
    assert!(
        !line.contains("ro,") && !line.contains(",ro"),
        "the line names no ro: {line}"
    );
    let line = line
        .replace(" /srv/persona ", &format!(" {} ", mp.display()))
        .replace("/etc/personafs/mount.toml", config.to_str().unwrap());
    let fstab = w.join("fstab");
    std::fs::write(&fstab, format!("# /etc/fstab\n{line}\n")).unwrap();

    let script = r#"
set -e
trap 'umount "$MP" 2>/dev/null || true' EXIT
mount --bind "$BIN_DIR" /usr/local/sbin
mount -T "$FSTAB" "$MP"
grep " $MP " /proc/self/mountinfo | awk '{print "OPTIONS " $6}'
f=$(ls -d "$MP"/inquiries/*/document/*.jpg | head -1)
echo "PHOTO $(stat -c %s "$f") $(cat "$f" | wc -c) $(stat -c %u:%g "$f")"
touch "$MP/x" 2>/dev/null && echo WRITABLE || echo NOT_WRITABLE
umount "$MP"
grep -q " $MP " /proc/self/mountinfo && echo STILL_MOUNTED || echo UNMOUNTED
"#;
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("BIN_DIR", bin_dir(&w))
        .env("FSTAB", &fstab)
        .env("MP", &mp)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let options = stdout
        .lines()
        .find_map(|l| l.strip_prefix("OPTIONS "))
        .unwrap_or_else(|| panic!("not mounted: {stdout}\n{stderr}"));
    assert!(options.split(',').any(|o| o == "ro"), "mounted {options}");
    let photo: Vec<&str> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PHOTO "))
        .unwrap()
        .split(' ')
        .collect();
    assert!(photo[0].parse::<u64>().unwrap() > 1000, "{stdout}");
    assert_eq!(photo[0], photo[1], "the photo reads whole");
    assert_eq!(
        photo[2], "1000:1000",
        "uid=1000,gid=1000 of the README line apply"
    );
    assert!(stdout.contains("NOT_WRITABLE\n"), "{stdout}");
    assert!(stdout.ends_with("UNMOUNTED\n"), "{stdout}");
    // mount(8) passed rw (the line names neither): one warning line, no error.
    assert_eq!(
        stderr.matches(personafs::fstab::RW_WARNING).count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains(&mock.api_key()), "{stderr}");
}

#[test]
fn fstab_line_mounts_through_mount_fuse3_and_umount_unmounts() {
    if !fuse_available() || !have("unshare") || !have("mount.fuse3") {
        eprintln!("skipped: needs FUSE, unshare and mount.fuse3");
        return;
    }
    let mock = personafs_mock::MockServer::start(personafs_mock::MockConfig {
        generate: 3,
        ..Default::default()
    })
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = work.path().canonicalize().unwrap();
    let mp = w.join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let bin = w.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(BIN, bin.join("personafs")).unwrap();

    // The key lives in a private file named by a private config file: never in fstab.
    let key = w.join("api-key");
    private(&key, &mock.api_key());
    let config = w.join("personafs.toml");
    private(
        &config,
        &format!(
            "api_key_file = \"{}\"\napi_base = \"{}\"\nfile_host = [\"{}\"]\n",
            key.display(),
            mock.api_base(),
            host_port(&mock.files_base()),
        ),
    );
    let fstab = w.join("fstab");
    std::fs::write(
        &fstab,
        format!(
            "# personafs\npersonafs {} fuse.personafs \
             noauto,_netdev,nofail,x-systemd.automount,rw,nodev,nosuid,config={},cache_dir={},metadata_ttl=30s,uid=4242,gid=4343,file_mode=0440 0 0\n",
            mp.display(),
            config.display(),
            w.join("cache").display(),
        ),
    )
    .unwrap();
    let fstab_text = std::fs::read_to_string(&fstab).unwrap();
    assert!(!fstab_text.contains(&mock.api_key()));

    // Inside the namespace: mount, report what the mount shows, unmount, report again.
    let script = r#"
set -e
# Whatever fails below, leave no mount (and so no daemon) behind.
trap 'umount "$MP" 2>/dev/null || true' EXIT
mount --bind "$BIN_DIR" /usr/local/sbin
mount -T "$FSTAB" "$MP"
grep -q " $MP " /proc/self/mountinfo && echo MOUNTED
for d in "$MP"/inquiries/*; do
  echo "INQUIRY $(basename "$d") $(wc -c < "$d/inquiry.json")"
  for f in "$d"/document/* "$d"/selfie/*; do
    [ -f "$f" ] || continue
    echo "FILE $(stat -c %s "$f") $(cat "$f" | wc -c) $(stat -c %u:%g:%a "$f")"
  done
done
umount "$MP"
grep -q " $MP " /proc/self/mountinfo && echo STILL_MOUNTED || echo UNMOUNTED
"#;
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("BIN_DIR", &bin)
        .env("FSTAB", &fstab)
        .env("MP", &mp)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("MOUNTED\n"), "{stdout}");
    let inquiries: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("INQUIRY "))
        .collect();
    assert_eq!(inquiries.len(), 3, "{stdout}");
    for line in &inquiries {
        let fields: Vec<&str> = line.split(' ').collect();
        assert!(fields[1].starts_with("inq_"), "{line}");
        assert!(fields[2].parse::<u64>().unwrap() > 10, "{line}");
    }
    let files: Vec<(u64, u64)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("FILE "))
        .map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            assert_eq!(fields[2], "4242:4343:440", "-o uid=,gid=,file_mode= apply");
            (fields[0].parse().unwrap(), fields[1].parse().unwrap())
        })
        .collect();
    assert!(files.len() >= 3, "{stdout}");
    for (size, read) in files {
        assert!(size > 0);
        assert_eq!(size, read, "a file read through the fstab mount is whole");
    }
    assert!(stdout.ends_with("UNMOUNTED\n"), "{stdout}");
    assert!(!stderr.contains(&mock.api_key()), "{stderr}");
    // An explicit rw mounts read-only too, with one warning.
    assert_eq!(
        stderr.matches(personafs::fstab::RW_WARNING).count(),
        1,
        "{stderr}"
    );
}
