//! End to end: the views beside `inquiries/` on a real mount over the mock — links that
//! `ls -L`, `find -L` and `rsync -aL` follow, names safe whatever the reference id, no API
//! call of their own once `inquiries/` is listed, one call per unknown key, read-only.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{Options, TestMount, fuse_available, run};
use personafs_client::{InquirySummary, ListFilters};
use personafs_fs::ViewSet;
use personafs_mock::{MockConfig, MockServer};
use serde_json::{Value, json};

fn generated(n: usize) -> MockConfig {
    MockConfig {
        generate: n,
        seed: 7,
        ..Default::default()
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    out.sort();
    out
}

fn errno(r: std::io::Result<impl Sized>) -> i32 {
    r.err().and_then(|e| e.raw_os_error()).unwrap_or(0)
}

/// `inquiry.json` of an inquiry, read through `path` (a link or its target).
fn json_at(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path.join("inquiry.json")).unwrap()).unwrap()
}

/// Whether `name` may be a directory entry at all.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && !name.contains('/')
        && !name.chars().any(char::is_control)
}

#[test]
fn views_link_into_inquiries_with_safe_names_and_no_call_of_their_own() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::start_exact(generated(160));
    let root = m.path();
    // What Persona says of each inquiry, asked directly (not through the mount).
    let persona: BTreeMap<String, InquirySummary> = m.rt.block_on(async {
        let mut all = BTreeMap::new();
        let mut after = None;
        loop {
            let page = m
                .api
                .list_page(&ListFilters::default(), after.as_deref(), 100)
                .await
                .unwrap();
            all.extend(page.inquiries.into_iter().map(|s| (s.id.clone(), s)));
            match page.next_after {
                Some(next) => after = Some(next),
                None => return all,
            }
        }
    });
    assert_eq!(
        names(root),
        ["accounts", "by-day", "by-reference-id", "inquiries"]
    );
    let ids: BTreeSet<String> = names(&m.inquiries()).into_iter().collect();
    assert_eq!(ids.len(), 160);
    let listed = m.stats().api_list;

    // Every reference id shown once, under one safe name, and two ids never on one name.
    let mut by_name: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for name in names(&root.join("by-reference-id")) {
        assert!(valid_name(&name), "{name:?}");
        let dir = root.join("by-reference-id").join(&name);
        for id in names(&dir) {
            let link = dir.join(&id);
            let target = std::fs::read_link(&link).unwrap();
            assert_eq!(target, PathBuf::from(format!("../../inquiries/{id}")));
            assert!(ids.contains(&id));
            assert!(seen.insert(id.clone()), "{id} under two reference ids");
            let raw = persona[&id].reference_id.clone().expect("a reference id");
            by_name.entry(name.clone()).or_default().insert(raw);
        }
    }
    let mut raws = BTreeSet::new();
    let mut hostile = 0;
    for (name, raw) in &by_name {
        assert_eq!(raw.len(), 1, "{name:?} holds {raw:?}");
        let raw = raw.iter().next().unwrap();
        assert!(raws.insert(raw.clone()), "{raw:?} under two names");
        if name != raw {
            hostile += 1;
            assert!(name.contains('~'), "a changed name shows it: {name:?}");
        }
    }
    assert!(
        hostile >= 3,
        "the mock's hostile ids are there: {by_name:?}"
    );
    assert!(
        by_name.values().map(BTreeSet::len).sum::<usize>() < seen.len(),
        "several inquiries per reference id"
    );

    // Accounts: each link's inquiry is that account's.
    let accounts = names(&root.join("accounts"));
    assert!(!accounts.is_empty() && accounts.iter().all(|a| a.starts_with("act_")));
    let mut in_accounts = 0;
    for a in &accounts {
        for id in names(&root.join("accounts").join(a)) {
            let link = root.join("accounts").join(a).join(&id);
            assert!(std::fs::read_link(&link).is_ok());
            assert_eq!(persona[&id].account_id.as_deref(), Some(a.as_str()));
            in_accounts += 1;
        }
    }
    assert!(
        in_accounts > accounts.len(),
        "several inquiries per account"
    );

    // Days: every inquiry once, on its created-at day (UTC), newest first.
    let mut on_days = 0;
    for y in names(&root.join("by-day")) {
        for mo in names(&root.join("by-day").join(&y)) {
            for d in names(&root.join("by-day").join(&y).join(&mo)) {
                let day = root.join("by-day").join(&y).join(&mo).join(&d);
                let order: Vec<String> = std::fs::read_dir(&day)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect();
                let mut created = Vec::new();
                for id in &order {
                    let link = day.join(id);
                    assert_eq!(
                        std::fs::read_link(&link).unwrap(),
                        PathBuf::from(format!("../../../../inquiries/{id}"))
                    );
                    let at = persona[id]
                        .created_at
                        .expect("created-at")
                        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                        .to_string();
                    assert!(
                        at.starts_with(&format!("{y}-{mo}-{d}T")),
                        "{at} in {y}/{mo}/{d}"
                    );
                    created.push(at);
                    on_days += 1;
                }
                let mut newest_first = created.clone();
                newest_first.sort_by(|a, b| b.cmp(a));
                assert_eq!(created, newest_first, "{y}/{mo}/{d}");
            }
        }
    }
    assert_eq!(on_days, 160);
    assert_eq!(
        m.stats().api_list,
        listed,
        "the views cost no list call once inquiries/ is listed"
    );

    assert_eq!(
        seen.len(),
        persona
            .values()
            .filter(|s| s.reference_id.is_some())
            .count(),
        "every inquiry with a reference id, and no other"
    );

    // Followed, a link is its inquiry: `find -L`, `stat -L`, reading through it.
    let one = root
        .join("by-reference-id")
        .join(by_name.keys().next().unwrap());
    let first = names(&one).into_iter().next().unwrap();
    assert_eq!(json_at(&one.join(&first))["data"]["id"], json!(first));
    let (ok, out, err) = run(
        "find",
        &["-L", one.to_str().unwrap(), "-name", "inquiry.json"],
    );
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), names(&one).len(), "{out}");
    let through = std::fs::metadata(one.join(&first)).unwrap();
    let direct = std::fs::metadata(m.inquiries().join(&first)).unwrap();
    assert_eq!(through.ino(), direct.ino(), "one inode, one meaning");
    let link = std::fs::symlink_metadata(one.join(&first)).unwrap();
    assert!(link.file_type().is_symlink());
    assert_eq!(link.len(), format!("../../inquiries/{first}").len() as u64);
    m.unmount();
}

#[test]
fn unknown_keys_cost_one_call_and_impossible_ones_none() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::with(MockServer::start(generated(40)).unwrap(), Options::exact());
    let root = m.path();
    let before = m.stats().api_list;
    // Nothing listed yet: the key is asked for alone, not the whole listing.
    let some_ref = "user-000001";
    let r = std::fs::metadata(root.join("by-reference-id").join("no-such-person"));
    assert_eq!(errno(r), libc::ENOENT);
    assert_eq!(m.stats().api_list, before + 1, "exactly one call");
    let r = std::fs::metadata(root.join("by-reference-id").join("no-such-person"));
    assert_eq!(errno(r), libc::ENOENT);
    assert_eq!(
        m.stats().api_list,
        before + 1,
        "within the negative TTL: none"
    );
    let found = std::fs::metadata(root.join("by-reference-id").join(some_ref));
    let after_found = m.stats().api_list;
    assert!(after_found <= before + 2);
    if found.is_ok() {
        assert!(!names(&root.join("by-reference-id").join(some_ref)).is_empty());
        assert_eq!(m.stats().api_list, after_found, "its entries come with it");
    }
    // A real year (asked once if need be), so only the impossible month is counted below.
    assert!(std::fs::metadata(root.join("by-day/2026")).is_ok());
    let calls = m.stats().api_list;
    for path in [
        "accounts/not-an-account",
        "accounts/act_",
        "by-day/26",
        "by-day/9999",
        "by-day/2026/13",
        "by-reference-id/a_b~0123456789ab",
        "by-reference-id/line\nbreak",
        "by-week",
    ] {
        assert_eq!(
            errno(std::fs::metadata(root.join(path))),
            libc::ENOENT,
            "{path:?}"
        );
    }
    assert_eq!(m.stats().api_list, calls, "impossible keys ask nothing");
    m.unmount();
}

#[test]
fn rsync_al_of_a_day_is_the_inquiries_byte_for_byte_and_a_second_run_copies_nothing() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::with(
        MockServer::start(generated(60)).unwrap(),
        Options::default(),
    );
    let root = m.path();
    names(&m.inquiries());
    // The day with the most inquiries.
    let mut best: Option<(usize, PathBuf)> = None;
    for y in names(&root.join("by-day")) {
        for mo in names(&root.join("by-day").join(&y)) {
            for d in names(&root.join("by-day").join(&y).join(&mo)) {
                let day = root.join("by-day").join(&y).join(&mo).join(&d);
                let n = names(&day).len();
                if best.as_ref().is_none_or(|(b, _)| n > *b) {
                    best = Some((n, day));
                }
            }
        }
    }
    let (_, day) = best.expect("a day");
    let ids = names(&day);
    let out = tempfile::tempdir().unwrap();
    let (via_day, direct) = (out.path().join("day"), out.path().join("direct"));
    std::fs::create_dir_all(&direct).unwrap();
    let src = format!("{}/", day.display());
    let (ok, _, err) = run("rsync", &["-aL", &src, via_day.to_str().unwrap()]);
    assert!(ok, "{err}");
    for id in &ids {
        let (ok, _, err) = run(
            "rsync",
            &[
                "-a",
                m.inquiries().join(id).to_str().unwrap(),
                direct.to_str().unwrap(),
            ],
        );
        assert!(ok, "{err}");
    }
    let (same, diff, _) = run(
        "diff",
        &["-r", via_day.to_str().unwrap(), direct.to_str().unwrap()],
    );
    assert!(same, "{diff}");
    assert_eq!(names(&via_day), ids);
    let (ok, stats, err) = run(
        "rsync",
        &["-aL", "--stats", &src, via_day.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    assert!(
        stats.contains("Number of regular files transferred: 0"),
        "{stats}"
    );
    m.unmount();
}

#[test]
fn views_are_read_only() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::start_exact(generated(10));
    let root = m.path();
    names(&m.inquiries());
    let r = root.join("by-reference-id");
    let key = names(&r).into_iter().next().expect("a reference id");
    let id = names(&r.join(&key)).into_iter().next().unwrap();
    let erofs = |res: std::io::Result<()>| errno(res) == libc::EROFS;
    assert!(erofs(std::fs::create_dir(r.join("new"))));
    assert!(erofs(std::fs::remove_file(r.join(&key).join(&id))));
    assert!(erofs(std::os::unix::fs::symlink(
        "../../inquiries/x",
        r.join(&key).join("inq_x")
    )));
    assert!(erofs(std::fs::rename(r.join(&key), r.join("renamed"))));
    assert!(erofs(std::fs::write(r.join(&key).join("f"), b"x")));
    assert!(erofs(std::fs::remove_dir(root.join("by-day"))));
    m.unmount();
}

#[test]
fn views_can_be_hidden_and_fixtures_keep_their_reference_ids() {
    if !fuse_available() {
        return;
    }
    let mut opts = Options::exact();
    opts.core.views = ViewSet::NONE;
    let m = TestMount::with(MockServer::start(generated(5)).unwrap(), opts);
    assert_eq!(names(m.path()), ["inquiries"]);
    assert_eq!(
        errno(std::fs::metadata(m.path().join("by-day"))),
        libc::ENOENT
    );
    m.unmount();

    let dir = tempfile::tempdir().unwrap();
    write_fixtures(dir.path());
    let mock = MockServer::start(MockConfig {
        fixtures: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    let mut opts = Options::exact();
    opts.core.views = ViewSet {
        by_reference_id: true,
        accounts: true,
        ..ViewSet::NONE
    };
    let m = TestMount::with(mock, opts);
    assert_eq!(
        names(m.path()),
        ["accounts", "by-reference-id", "inquiries"]
    );
    names(&m.inquiries());
    let refs = names(&m.path().join("by-reference-id"));
    assert_eq!(refs.len(), 2, "{refs:?}");
    assert!(
        refs.iter().any(|r| r.starts_with("case 7 _ 50%~")),
        "made safe as file names are, with a hash: {refs:?}"
    );
    assert!(refs.contains(&"ref-plain".to_string()));
    assert_eq!(
        names(&m.path().join("by-reference-id/ref-plain")),
        ["inq_FixtureViewA001", "inq_FixtureViewB001"]
    );
    assert_eq!(names(&m.path().join("accounts")), ["act_FixtureAcct01"]);
    assert_eq!(
        names(&m.path().join("accounts/act_FixtureAcct01")),
        ["inq_FixtureViewA001", "inq_FixtureViewC001"]
    );
    m.unmount();
}

#[test]
fn a_redaction_reaches_every_view_with_inquiries() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::start_exact(generated(20));
    let root = m.path();
    names(&m.inquiries());
    let refs = root.join("by-reference-id");
    let (key, id) = names(&refs)
        .into_iter()
        .find_map(|k| names(&refs.join(&k)).into_iter().next().map(|id| (k, id)))
        .expect("an inquiry with a reference id");
    let day_of = |id: &str| -> Option<PathBuf> {
        for y in names(&root.join("by-day")) {
            for mo in names(&root.join("by-day").join(&y)) {
                for d in names(&root.join("by-day").join(&y).join(&mo)) {
                    let day = root.join("by-day").join(&y).join(&mo).join(&d);
                    if names(&day).iter().any(|i| i == id) {
                        return Some(day);
                    }
                }
            }
        }
        None
    };
    assert!(day_of(&id).is_some());
    assert!(m.mock.redact(&id));
    m.rt.block_on(
        m.core
            .apply_change(personafs_fs::Change::Redacted(id.clone())),
    );
    let in_refs =
        std::fs::read_dir(refs.join(&key)).is_ok() && names(&refs.join(&key)).contains(&id);
    let on_a_day = day_of(&id).is_some();
    let in_inquiries = names(&m.inquiries()).contains(&id);
    assert_eq!(
        in_refs, in_inquiries,
        "by-reference-id agrees with inquiries/"
    );
    assert_eq!(on_a_day, in_inquiries, "by-day agrees with inquiries/");
    if in_inquiries {
        // Still listed (redacted): through the link, its files are gone as they are there.
        let link = refs.join(&key).join(&id);
        assert!(names(&link.join("document")).is_empty());
        assert!(names(&link.join("selfie")).is_empty());
    }
    m.unmount();
}

/// Three fixture inquiries: two share a plain reference id, one has a hostile one; two
/// share an account.
fn write_fixtures(dir: &Path) {
    let inquiry = |id: &str, reference: &str, account: Option<&str>, created: &str| {
        let account = match account {
            Some(a) => json!({"data": {"type": "account", "id": a}}),
            None => json!({"data": null}),
        };
        json!({
            "data": {
                "type": "inquiry", "id": id,
                "attributes": {"status": "approved", "reference-id": reference,
                    "created-at": created, "redacted-at": null},
                "relationships": {"documents": {"data": []}, "selfies": {"data": []},
                    "verifications": {"data": []}, "account": account}
            },
            "included": []
        })
    };
    std::fs::create_dir_all(dir.join("inquiries")).unwrap();
    std::fs::create_dir_all(dir.join("files")).unwrap();
    for (id, body) in [
        (
            "inq_FixtureViewA001",
            inquiry(
                "inq_FixtureViewA001",
                "ref-plain",
                Some("act_FixtureAcct01"),
                "2026-01-01T10:00:00.000Z",
            ),
        ),
        (
            "inq_FixtureViewB001",
            inquiry(
                "inq_FixtureViewB001",
                "ref-plain",
                None,
                "2026-01-02T10:00:00.000Z",
            ),
        ),
        (
            "inq_FixtureViewC001",
            inquiry(
                "inq_FixtureViewC001",
                "case 7 / 50%",
                Some("act_FixtureAcct01"),
                "2026-01-03T10:00:00.000Z",
            ),
        ),
    ] {
        std::fs::write(
            dir.join("inquiries").join(format!("{id}.json")),
            body.to_string(),
        )
        .unwrap();
    }
}
