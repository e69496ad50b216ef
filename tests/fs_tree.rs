//! End to end: the tree, names, attributes and errno of a real mount over the mock.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Options, TestMount, fuse_available, generated, mock, run, walk};
use personafs_client::files_of;
use personafs_mock::MockConfig;
use serde_json::json;

/// The generated organization of these tests.
const SEED: u64 = 7;

/// The tree the contract says the mount must show, built from what the API returns.
fn expected_tree(m: &TestMount) -> BTreeSet<PathBuf> {
    let mut want = BTreeSet::new();
    for id in m.mock.inquiry_ids() {
        let base = PathBuf::from(&id);
        for p in ["", "inquiry.json", "document", "selfie"] {
            want.insert(if p.is_empty() {
                base.clone()
            } else {
                base.join(p)
            });
        }
        let inquiry = m.rt.block_on(m.api.retrieve_inquiry(&id)).unwrap();
        if inquiry.redacted_at.is_none() {
            for f in files_of(&inquiry) {
                want.insert(base.join(f.section.dir_name()).join(&f.name));
            }
        }
    }
    want
}

#[test]
fn ls_r_shows_exactly_the_generated_tree() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::start(generated(12, SEED));
    let got: BTreeSet<PathBuf> = walk(&m.inquiries()).into_iter().collect();
    let want = expected_tree(&m);
    assert_eq!(got, want);
    assert!(
        got.iter().any(|p| p.components().count() == 3),
        "no file at all"
    );
    // `ls -R` as a user runs it agrees, and listing downloaded nothing.
    let (ok, out, err) = run("ls", &["-R", m.inquiries().to_str().unwrap()]);
    assert!(ok, "{err}");
    for p in &want {
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(out.contains(name), "ls -R lacks {name}");
    }
    assert_eq!(m.stats().file_get, 0, "listing must not download contents");
}

#[test]
fn stat_matches_the_api() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::start(generated(6, SEED));
    let mut direct_sizes = std::collections::HashMap::new();
    for id in m.mock.inquiry_ids() {
        for (_, name, bytes) in m.direct_files(&id) {
            direct_sizes.insert(name, bytes.len() as u64);
        }
    }
    let gets_before = m.stats().file_get;
    let mut checked = 0;
    for id in m.mock.inquiry_ids() {
        let inquiry = m.rt.block_on(m.api.retrieve_inquiry(&id)).unwrap();
        let dir = m.inquiries().join(&id);
        let dmeta = std::fs::metadata(&dir).unwrap();
        assert_eq!(dmeta.mode() & 0o7777, 0o555);
        assert_eq!(dmeta.nlink(), 4);
        let created: SystemTime = inquiry.created_at.unwrap().into();
        assert_eq!(dmeta.modified().unwrap(), created);
        if inquiry.redacted_at.is_some() {
            continue;
        }
        for f in files_of(&inquiry) {
            let path = dir.join(f.section.dir_name()).join(&f.name);
            let meta = std::fs::metadata(&path).unwrap();
            assert_eq!(meta.len(), direct_sizes[&f.name], "{}", f.name);
            if let Some(s) = f.size {
                assert_eq!(meta.len(), s);
            }
            assert_eq!(meta.blocks(), meta.len().div_ceil(512));
            assert_eq!(meta.mode() & 0o7777, 0o444);
            assert_eq!(meta.nlink(), 1);
            // SAFETY: a libc call that takes no pointers (or valid ones) and cannot corrupt memory.
            assert_eq!(meta.uid(), unsafe { libc::geteuid() });
            assert_eq!(meta.modified().unwrap(), f.mtime);
            assert_eq!(meta.accessed().unwrap(), f.mtime);
            assert_eq!(
                meta.ctime(),
                f.mtime.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
            );
            // Stable inode for the life of the mount.
            assert_eq!(std::fs::metadata(&path).unwrap().ino(), meta.ino());
            checked += 1;
        }
    }
    assert!(checked > 5, "too few files checked: {checked}");
    assert_eq!(
        m.stats().file_get,
        gets_before,
        "stat must not download contents"
    );
    let (ok, out, err) = run("df", &[m.path().to_str().unwrap()]);
    assert!(ok && out.contains("personafs"), "df: {out} {err}");
}

#[test]
fn every_change_is_erofs() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::start(generated(3, SEED));
    let id = &m.mock.inquiry_ids()[0];
    let dir = m.inquiries().join(id);
    let json = dir.join("inquiry.json");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let attempts: Vec<(&str, Vec<String>)> = vec![
        ("touch", vec![s(&json)]),
        ("touch", vec![s(&dir.join("new-file"))]),
        ("rm", vec!["-f".into(), s(&json)]),
        ("mkdir", vec![s(&dir.join("d"))]),
        ("rmdir", vec![s(&dir.join("document"))]),
        ("mv", vec![s(&json), s(&dir.join("x.json"))]),
        ("chmod", vec!["600".into(), s(&json)]),
        ("ln", vec!["-s".into(), "x".into(), s(&dir.join("link"))]),
        ("ln", vec![s(&json), s(&dir.join("hard"))]),
    ];
    for (cmd, args) in attempts {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, err) = run(cmd, &args);
        assert!(!ok, "{cmd} {args:?} succeeded");
        assert!(err.contains("Read-only file system"), "{cmd}: {err}");
    }
    let w = std::fs::OpenOptions::new()
        .write(true)
        .open(&json)
        .unwrap_err();
    assert_eq!(w.raw_os_error(), Some(libc::EROFS));
    let c = std::fs::File::create(dir.join("created")).unwrap_err();
    assert_eq!(c.raw_os_error(), Some(libc::EROFS));
    // Extended attributes and a truncate by path: no write reaches personafs either.
    let path = std::ffi::CString::new(s(&json)).unwrap();
    let name = c"user.personafs";
    let errno =
        |rc: libc::c_int| (rc == -1).then(|| std::io::Error::last_os_error().raw_os_error());
    // SAFETY: plain syscalls on NUL-terminated strings and a buffer that outlive them.
    unsafe {
        let set = libc::setxattr(path.as_ptr(), name.as_ptr(), b"x".as_ptr().cast(), 1, 0);
        assert_eq!(errno(set), Some(Some(libc::EROFS)), "setxattr");
        let removed = libc::removexattr(path.as_ptr(), name.as_ptr());
        assert_eq!(errno(removed), Some(Some(libc::EROFS)), "removexattr");
        let truncated = libc::truncate(path.as_ptr(), 0);
        assert_eq!(errno(truncated), Some(Some(libc::EROFS)), "truncate");
    }
}

#[test]
fn unlisted_id_is_found_and_unknown_id_is_enoent() {
    if !fuse_available() {
        return;
    }
    let mock = mock(5, SEED);
    let ids = mock.inquiry_ids();
    let mut opts = Options::default();
    opts.core.filters.inquiry_ids = vec![ids[0].clone()];
    let m = TestMount::with(mock, opts);
    let listed: Vec<String> = std::fs::read_dir(m.inquiries())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(listed, vec![ids[0].clone()]);
    // Not listed, still reachable by id.
    assert!(m.inquiries().join(&ids[3]).join("inquiry.json").is_file());
    let before = m.stats().api_retrieve;
    for _ in 0..3 {
        let e = std::fs::metadata(m.inquiries().join("inq_doesNotExist123")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }
    assert!(
        m.stats().api_retrieve <= before + 1,
        "unknown id answer must be cached"
    );
    let e = std::fs::metadata(m.inquiries().join("not-an-id")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    let e = std::fs::metadata(m.path().join("nothing-here")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
}

#[test]
fn filters_select_the_listing() {
    if !fuse_available() {
        return;
    }
    let mock = mock(30, SEED);
    let api = common::client_for(&mock);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let all = rt
        .block_on(personafs_client::list_all(&api, &Default::default()))
        .unwrap();
    let status = all[0].status.clone().unwrap();
    let want: Vec<String> = all
        .iter()
        .filter(|s| s.status.as_deref() == Some(&status))
        .map(|s| s.id.clone())
        .collect();
    let mut opts = Options::default();
    opts.core.filters.status = vec![status.clone()];
    let m = TestMount::with(mock, opts);
    let mut listed: Vec<String> = std::fs::read_dir(m.inquiries())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    listed.sort();
    let mut want = want;
    want.sort();
    assert_eq!(listed, want, "status filter {status}");
}

#[test]
fn inquiry_json_has_no_tokens() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::start(generated(8, SEED));
    for id in m.mock.inquiry_ids() {
        let text = std::fs::read_to_string(m.inquiries().join(&id).join("inquiry.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).expect("inquiry.json is JSON");
        assert_eq!(v["data"]["id"], json!(id));
        assert!(!text.contains(&m.mock.api_key()));
        for (i, _) in text.match_indices("access_token=") {
            let rest = &text[i + "access_token=".len()..];
            assert!(
                rest.starts_with("REDACTED"),
                "token left in inquiry.json of {id}"
            );
        }
    }
}

/// A fixture set written the way Persona sends inquiries, with names the contract fixes.
fn write_fixtures(dir: &Path) {
    let f = |name: &str, size: Option<u64>| {
        let mut o = json!({"filename": name, "url": format!("https://files.withpersona.com/{name}?access_token=tok{}{name}", size.unwrap_or(0))});
        if let Some(s) = size {
            o["byte-size"] = json!(s);
        }
        o
    };
    let inquiry = |id: &str, redacted: Option<&str>, rels: serde_json::Value| {
        json!({
            "type": "inquiry", "id": id,
            "attributes": {"status": "approved", "reference-id": "ref-1", "created-at": "2026-01-01T10:00:00.000Z",
                "redacted-at": redacted, "fields": {"name-first": {"type": "string", "value": "Jane"}}},
            "relationships": rels
        })
    };
    let docs = json!([
        {"type": "document/government-id", "id": "doc_G1", "attributes": {"status": "processed",
            "created-at": "2026-01-01T10:01:00.000Z", "processed-at": "2026-01-01T10:02:00.000Z",
            "front-photo": f("image.jpg", Some(1000)), "back-photo": f("image.jpg", Some(1200)), "selfie-photo": null}},
        {"type": "document/government-id", "id": "doc_G2", "attributes": {"status": "submitted",
            "created-at": "2026-01-01T10:03:00.000Z", "processed-at": null,
            "front-photo": f("passport.png", Some(1500)), "back-photo": null, "selfie-photo": null}},
        {"type": "document/generic", "id": "doc_P1", "attributes": {"status": "processed",
            "created-at": "2026-01-01T10:04:00.000Z", "processed-at": "2026-01-01T10:05:00.000Z",
            "files": [f("bank_statement.pdf", Some(3000)), f("bank_statement.pdf", Some(3100)), f("lease.pdf", Some(700))],
            "files-normalized": [f("scan.pdf", Some(2000))]}},
        {"type": "verification/government-id", "id": "ver_V1", "attributes": {"status": "passed",
            "created-at": "2026-01-01T10:06:00.000Z", "front-photo-url": "https://files.withpersona.com/image.jpg?access_token=x"}},
        {"type": "verification/selfie", "id": "ver_S1", "attributes": {"status": "passed",
            "created-at": "2026-01-01T10:07:00.000Z", "processed-at": "2026-01-01T10:08:00.000Z",
            "center-photo-url": "https://files.withpersona.com/center.jpg?access_token=c",
            "left-photo-url": "https://files.withpersona.com/left.jpg?access_token=l",
            "right-photo-url": "https://files.withpersona.com/right.jpg?access_token=r",
            "video-url": "https://files.withpersona.com/selfie_video.mp4?access_token=v"}},
        {"type": "selfie/profile-and-center", "id": "self_1", "attributes": {"status": "processed",
            "created-at": "2026-01-01T10:07:00.000Z", "processed-at": null}}
    ]);
    let rel = |ids: &[(&str, &str)]| json!({"data": ids.iter().map(|(t, i)| json!({"type": t, "id": i})).collect::<Vec<_>>()});
    let full = json!({
        "data": inquiry("inq_FixtureFull0001", None, json!({
            "documents": rel(&[("document/government-id", "doc_G1"), ("document/government-id", "doc_G2"), ("document/generic", "doc_P1")]),
            "selfies": rel(&[("selfie/profile-and-center", "self_1")]),
            "verifications": rel(&[("verification/government-id", "ver_V1"), ("verification/selfie", "ver_S1")]),
            "account": {"data": null}, "template": {"data": {}}
        })),
        "included": docs
    });
    let redacted = json!({
        "data": inquiry("inq_FixtureRedacted1", Some("2026-02-01T00:00:00.000Z"), json!({
            "documents": rel(&[("document/government-id", "doc_R1")]), "selfies": {"data": []}, "verifications": {"data": []}
        })),
        "included": [{"type": "document/government-id", "id": "doc_R1", "attributes": {"status": "processed",
            "created-at": "2026-01-01T10:01:00.000Z", "front-photo": null, "back-photo": null, "selfie-photo": null}}]
    });
    let empty = json!({"data": inquiry("inq_FixtureEmpty0001", None, json!({})), "included": []});
    std::fs::create_dir_all(dir.join("inquiries")).unwrap();
    std::fs::create_dir_all(dir.join("files")).unwrap();
    for (id, body) in [
        ("inq_FixtureFull0001", full),
        ("inq_FixtureRedacted1", redacted),
        ("inq_FixtureEmpty0001", empty),
    ] {
        std::fs::write(
            dir.join("inquiries").join(format!("{id}.json")),
            body.to_string(),
        )
        .unwrap();
    }
    std::fs::write(dir.join("files").join("lease.pdf"), vec![b'L'; 700]).unwrap();
}

#[test]
fn fixture_tree_matches_the_contract() {
    if !fuse_available() {
        return;
    }
    let fixtures = tempfile::tempdir().unwrap();
    write_fixtures(fixtures.path());
    let m = TestMount::start(MockConfig {
        fixtures: Some(fixtures.path().to_path_buf()),
        ..Default::default()
    });
    let got: BTreeSet<String> = walk(&m.inquiries())
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let full = "inq_FixtureFull0001";
    let mut want: BTreeSet<String> = BTreeSet::new();
    for id in [full, "inq_FixtureRedacted1", "inq_FixtureEmpty0001"] {
        for p in ["", "/inquiry.json", "/document", "/selfie"] {
            want.insert(format!("{id}{p}"));
        }
    }
    for name in [
        "document/doc_G1-front-photo.jpg",
        "document/doc_G1-back-photo.jpg",
        "document/doc_G2-front-photo.png",
        "document/doc_P1-bank_statement.pdf",
        "document/doc_P1-bank_statement-2.pdf",
        "document/doc_P1-lease.pdf",
        "document/doc_P1-normalized-scan.pdf",
        "selfie/ver_S1-center-photo.jpg",
        "selfie/ver_S1-left-photo.jpg",
        "selfie/ver_S1-right-photo.jpg",
        "selfie/ver_S1-video.mp4",
    ] {
        want.insert(format!("{full}/{name}"));
    }
    assert_eq!(got, want);
    let doc = m.inquiries().join(full).join("document");
    assert_eq!(
        std::fs::metadata(doc.join("doc_P1-bank_statement-2.pdf"))
            .unwrap()
            .len(),
        3100
    );
    assert_eq!(
        std::fs::read(doc.join("doc_P1-lease.pdf")).unwrap(),
        vec![b'L'; 700]
    );
    // A bare selfie URL has no byte-size: the size comes from a HEAD, exact before any read.
    let video = m.inquiries().join(full).join("selfie/ver_S1-video.mp4");
    let size = std::fs::metadata(&video).unwrap().len();
    assert_eq!(size, 64 * 1024);
    assert_eq!(std::fs::read(&video).unwrap().len() as u64, size);
    // The mtime of an unprocessed document is its created-at.
    let g2 = std::fs::metadata(doc.join("doc_G2-front-photo.png")).unwrap();
    assert_eq!(
        g2.modified().unwrap(),
        UNIX_EPOCH + Duration::from_secs(1767261780)
    );
}

/// The FUSE thread answers lookups, attributes and listings from memory when it can; those
/// answers must equal the async core's and never cost a request.
#[test]
fn answers_from_memory_match_the_core_and_cost_no_request() {
    use personafs_fs::cache::{CacheLimits, DiskCache};
    use personafs_fs::{CoreConfig, FsCore, INQUIRIES};
    use std::sync::Arc;

    let mock = mock(3, SEED);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _in_rt = rt.enter();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::open_dir(cache_dir.path(), CacheLimits::default()).unwrap();
    let core = FsCore::new(
        Arc::new(common::client_for(&mock)),
        cache,
        CoreConfig::default(),
    );
    let id = mock.inquiry_ids()[0].clone();
    let requests = || mock.stats().api_requests + mock.stats().file_get;

    // Nothing known yet: no answer from memory, and no request made for it.
    let before = requests();
    assert!(core.at_once(core.readdir(INQUIRIES)).is_none());
    assert!(core.at_once(core.lookup(INQUIRIES, &id)).is_none());
    assert_eq!(requests(), before);

    // Once the core has listed and retrieved, memory answers as the core does.
    let listing = rt.block_on(core.readdir(INQUIRIES)).unwrap();
    let (id, inq, doc, files) = mock
        .inquiry_ids()
        .into_iter()
        .find_map(|id| {
            let inq = rt.block_on(core.lookup(INQUIRIES, &id)).unwrap();
            let doc = rt.block_on(core.lookup(inq.ino, "document")).unwrap();
            let files = rt.block_on(core.readdir(doc.ino)).unwrap();
            (!files.is_empty()).then_some((id, inq, doc, files))
        })
        .expect("an inquiry with documents");
    let before = requests();
    let names = |v: &[personafs_fs::DirEntry]| {
        v.iter()
            .map(|e| (e.name.to_string(), e.attr.ino, e.attr.size))
            .collect::<Vec<_>>()
    };
    let now = core.at_once(core.readdir(INQUIRIES)).unwrap().unwrap();
    assert_eq!(names(&now), names(&listing));
    assert_eq!(
        core.at_once(core.lookup(INQUIRIES, &id))
            .unwrap()
            .unwrap()
            .ino,
        inq.ino
    );
    assert_eq!(
        names(&core.at_once(core.readdir(doc.ino)).unwrap().unwrap()),
        names(&files)
    );
    for f in &files {
        let a = core
            .at_once(core.lookup(doc.ino, &f.name))
            .unwrap()
            .unwrap();
        assert_eq!((a.ino, a.size), (f.attr.ino, f.attr.size));
        let a = core.at_once(core.getattr(f.attr.ino)).unwrap().unwrap();
        assert_eq!(
            (a.ino, a.size, a.mtime),
            (f.attr.ino, f.attr.size, f.attr.mtime)
        );
    }
    // A name that is not there is known not to be there.
    let missing = core
        .at_once(core.lookup(doc.ino, "no-such-file.jpg"))
        .unwrap();
    assert_eq!(personafs_fs::errno_of(&missing.unwrap_err()), libc::ENOENT);
    assert_eq!(requests(), before, "answers from memory made requests");
}
