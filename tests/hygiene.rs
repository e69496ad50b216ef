//! Cargo hygiene: the stated `rust-version` is true of every dependency, the lock builds one
//! copy of rand, lru and toml, and the licence file matches `Cargo.toml`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cargo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn host_triple() -> String {
    // The rustc beside the cargo that builds these tests.
    let rustc = Path::new(env!("CARGO")).with_file_name("rustc");
    let rustc = if rustc.exists() {
        rustc
    } else {
        "rustc".into()
    };
    let out = Command::new(rustc).arg("-vV").output().expect("rustc runs");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host")
}

fn version_tuple(v: &str) -> (u64, u64) {
    let mut parts = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[test]
fn no_dependency_needs_a_newer_rust_than_the_workspace_states() {
    // This machine's packages only: a fresh machine has fetched no others (e.g. the wasm
    // parts of SQLite's crate), and they never build here.
    let meta: serde_json::Value = serde_json::from_str(&cargo(&[
        "metadata",
        "--format-version",
        "1",
        "--offline",
        "--filter-platform",
        &host_triple(),
    ]))
    .unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let ours = packages
        .iter()
        .find(|p| p["name"] == "personafs")
        .and_then(|p| p["rust_version"].as_str())
        .expect("the workspace states a rust-version");
    let msrv = version_tuple(ours);
    let too_new: Vec<String> = packages
        .iter()
        .filter_map(|p| {
            let rv = p["rust_version"].as_str()?;
            (version_tuple(rv) > msrv).then(|| format!("{} {} needs {rv}", p["name"], p["version"]))
        })
        .collect();
    assert!(
        too_new.is_empty(),
        "rust-version {ours} is not true: {too_new:?}"
    );
}

#[test]
fn one_copy_of_rand_lru_and_toml_is_built() {
    let tree = cargo(&[
        "tree",
        "--workspace",
        "--offline",
        "-e",
        "normal,dev,build",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]);
    let mut versions: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for line in tree.lines() {
        let mut words = line.split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else {
            continue;
        };
        if ["rand", "lru", "toml"].contains(&name) {
            versions
                .entry(name)
                .or_default()
                .insert(version.to_string());
        }
    }
    for name in ["rand", "lru", "toml"] {
        let v = versions.get(name).cloned().unwrap_or_default();
        assert_eq!(v.len(), 1, "{name}: {v:?}");
    }
}

#[test]
fn the_licence_file_matches_cargo_toml() {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(manifest.contains("license = \"MIT\""));
    let licence = std::fs::read_to_string(root().join("LICENSE")).unwrap();
    assert!(licence.starts_with("MIT License"));
    assert!(licence.contains("Permission is hereby granted, free of charge"));
}
