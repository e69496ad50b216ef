//! `personafs --version` names the version and the commit it was built from (build.rs), and
//! a build without git says so instead of failing.

mod binary;
mod common;

use std::path::Path;
use std::process::Command;

#[allow(dead_code)]
#[path = "../build.rs"]
mod build_script;

#[test]
fn version_names_the_commit_it_was_built_from() {
    let (ok, out, err) = binary::personafs(&["--version"]);
    assert!(ok, "{err}");
    let prefix = format!("personafs {} (", env!("CARGO_PKG_VERSION"));
    let inner = out
        .trim_end()
        .strip_prefix(&prefix)
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{out:?}"));
    let root = env!("CARGO_MANIFEST_DIR");
    let in_checkout = Command::new("git")
        .args(["-C", root, "rev-parse", "HEAD"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !in_checkout {
        assert_eq!(inner, "unknown commit");
        return;
    }
    // `commit <hash>[-dirty] <date>`: the hash is a commit of this repository.
    let fields: Vec<&str> = inner.split(' ').collect();
    assert_eq!(fields.len(), 3, "{inner}");
    assert_eq!(fields[0], "commit");
    let hash = fields[1].trim_end_matches("-dirty");
    assert_eq!(hash.len(), 10, "{inner}");
    let known = Command::new("git")
        .args(["-C", root, "cat-file", "-e", &format!("{hash}^{{commit}}")])
        .status()
        .unwrap();
    assert!(known.success(), "{hash} is not a commit of {root}");
    assert_eq!(fields[2].len(), 10, "a YYYY-MM-DD date: {inner}");
    // Every subcommand says the same.
    let (ok, sub, _) = binary::personafs(&["mount", "--version"]);
    assert!(ok && sub.contains(inner), "{sub}");
}

#[test]
fn without_git_the_version_says_unknown_commit() {
    let not_a_checkout = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // No git program at all, or a source tree that is not a checkout.
    assert_eq!(
        build_script::describe(None, "/nonexistent/git", root),
        "unknown commit"
    );
    assert_eq!(
        build_script::describe(None, "git", not_a_checkout.path()),
        "unknown commit"
    );
    // A build from a tarball can name its commit.
    assert_eq!(
        build_script::describe(Some("commit abc123".into()), "/nonexistent/git", root),
        "commit abc123"
    );
    assert_eq!(
        build_script::describe(Some(" ".into()), "/nonexistent/git", root),
        "unknown commit"
    );
}
