//! Names the commit the binary is built from, for `personafs --version`: from git when the
//! source is a checkout, else from `PERSONAFS_COMMIT` (a build from a tarball), else
//! "unknown commit". `-dirty` says tracked files differed from that commit when this last
//! ran (cargo runs it again when HEAD moves, not on every edit).
//! (tests/version.rs includes this file to test the fallbacks.)

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PERSONAFS_COMMIT");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let commit = describe(
        std::env::var("PERSONAFS_COMMIT").ok(),
        "git",
        Path::new(&dir),
    );
    println!("cargo:rustc-env=PERSONAFS_COMMIT={commit}");
}

/// `given` if set; else `commit <hash>[-dirty] <date>` from `git` in `dir`; else "unknown
/// commit". Asks cargo to build again when HEAD moves.
pub(crate) fn describe(given: Option<String>, git: &str, dir: &Path) -> String {
    if let Some(given) = given.filter(|c| !c.trim().is_empty()) {
        return given.trim().to_string();
    }
    let run = |args: &[&str]| -> Option<String> {
        let out = Command::new(git)
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (out.status.success() && !text.is_empty()).then_some(text)
    };
    let Some(hash) = run(&["rev-parse", "--short=10", "HEAD"]) else {
        return "unknown commit".to_string();
    };
    // Built again when HEAD moves: another branch checked out, or a commit on this one.
    // A worktree keeps its HEAD in its own git dir and the refs in the common one, and a
    // ref may be packed: a path that does not exist would have cargo run this (and build
    // the crate again) on every build, so only paths that exist are watched.
    let git_path = |name: &str| run(&["rev-parse", "--path-format=absolute", "--git-path", name]);
    if let Some(head) = git_path("HEAD") {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(head_ref) = run(&["symbolic-ref", "-q", "HEAD"]) {
        match git_path(&head_ref).map(std::path::PathBuf::from) {
            Some(loose) if loose.exists() => {
                println!("cargo:rerun-if-changed={}", loose.display());
            }
            // Packed: a commit writes the ref loose, into its directory when that exists.
            loose => {
                let dir = loose
                    .as_deref()
                    .and_then(Path::parent)
                    .map(Path::to_path_buf);
                let packed = git_path("packed-refs").map(std::path::PathBuf::from);
                for path in [packed, dir].into_iter().flatten().filter(|p| p.exists()) {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
        }
    }
    let dirty = run(&["status", "--porcelain", "--untracked-files=no"]).is_some();
    let date = run(&["show", "-s", "--format=%cs", "HEAD"]).unwrap_or_default();
    let dirty = if dirty { "-dirty" } else { "" };
    format!("commit {hash}{dirty} {date}")
        .trim_end()
        .to_string()
}
