//! The modules of `crates/fs/src` import each other without a circle, so each can be read,
//! tested and changed knowing only what it uses. A module's files count as one (`metadata/`
//! is `metadata`); test-only modules (`testing`, `tests`) and comments are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const TEST_ONLY: &[&str] = &["testing", "tests"];

/// The top-level module a source file belongs to (`metadata/views.rs` → `metadata`).
fn module_of(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Source lines that are code: comments dropped, and everything from a `#[cfg(test)]` on
/// (this crate keeps its test modules at the end of a file).
fn code_of(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        code.push_str(line.split("//").next().unwrap_or(""));
        code.push('\n');
    }
    code
}

/// Which modules each module names as `crate::<module>`.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(f.strip_prefix(src).unwrap()))
        .filter(|m| m != "lib" && !TEST_ONLY.contains(&m.as_str()))
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = module_of(file.strip_prefix(src).unwrap());
        if !modules.contains(&from) {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name != from && modules.contains(&name) {
                edges.entry(from.clone()).or_default().insert(name);
            }
        }
    }
    edges
}

/// A circle through `start`, if there is one (depth-first).
fn circle_from(
    edges: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    let here = path.last().unwrap().clone();
    for next in edges.get(&here).into_iter().flatten() {
        if next == start {
            let mut found = path.clone();
            found.push(next.clone());
            return Some(found);
        }
        if !path.contains(next) {
            path.push(next.clone());
            if let Some(found) = circle_from(edges, start, path) {
                return Some(found);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn the_modules_of_the_filesystem_crate_import_each_other_without_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = graph(&src);
    assert!(
        edges.get("fuse").is_some_and(|e| e.contains("core")),
        "the scan found no import at all: {edges:?}"
    );
    let circles: Vec<String> = edges
        .keys()
        .filter_map(|m| circle_from(&edges, m, &mut vec![m.clone()]))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

#[test]
fn a_circle_is_found_when_there_is_one() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into());
    edges.entry("b".into()).or_default().insert("c".into());
    assert_eq!(circle_from(&edges, "a", &mut vec!["a".into()]), None);
    edges.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        circle_from(&edges, "a", &mut vec!["a".into()]),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
