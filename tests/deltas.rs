//! Freshness by deltas on real mounts over the mock (SEMANTICS.md, "Freshness: deltas"):
//! changes made at the mock reach the mount through search on `updated-at` and the list's
//! first page, without a whole listing and without retrieving what did not change; the
//! search index's lag is covered; filters hold; a redaction stops new opens with nobody
//! listing, with search and without it; a remount walks the tree without a retrieve.

mod binary;
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use binary::wait_until;
use common::{Options, TestMount, fuse_available};
use personafs_fs::store::MetadataStore;
use personafs_mock::{MockConfig, MockServer, MockStats, RuntimeConfig};

/// More than one list page: an old inquiry's change is not on the first page, so only
/// search can report it.
const INQUIRIES: usize = 150;
const LIMIT: Duration = Duration::from_secs(20);

fn mock(runtime: impl FnOnce(&mut RuntimeConfig)) -> MockServer {
    let mut r = RuntimeConfig {
        rate_limit: 0,
        ..MockConfig::default().runtime
    };
    runtime(&mut r);
    MockServer::start(MockConfig {
        generate: INQUIRIES,
        seed: 25,
        runtime: r,
        ..Default::default()
    })
    .unwrap()
}

/// An in-process mount with a metadata store in `cache`, read-ahead off.
fn mount(mock: MockServer, cache: &Path, ttl: Duration, status: &[&str]) -> TestMount {
    let mut opts = Options::exact();
    opts.cache_dir = Some(cache.to_path_buf());
    opts.core.metadata_ttl = ttl;
    opts.core.filters.status = status.iter().map(|s| s.to_string()).collect();
    opts.core.store = Some(Arc::new(MetadataStore::open(cache).unwrap()));
    TestMount::with(mock, opts)
}

fn status_of(m: &TestMount, id: &str) -> Option<String> {
    let json = std::fs::read(m.inquiries().join(id).join("inquiry.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&json).ok()?;
    v["data"]["attributes"]["status"].as_str().map(String::from)
}

fn listed(m: &TestMount) -> Vec<String> {
    common::list(&m.inquiries())
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// `ls -lR inquiries/` and `stat` of every path: what a remount walk does.
fn walk(m: &TestMount) -> Vec<(PathBuf, u64)> {
    let root = m.inquiries();
    common::walk(&root)
        .into_iter()
        .map(|rel| {
            let len = std::fs::metadata(root.join(&rel)).unwrap().len();
            (rel, len)
        })
        .collect()
}

/// Mock counters since `before`: (list pages, searches, retrieves).
fn calls_since(m: &TestMount, before: &MockStats) -> (u64, u64, u64) {
    let now = m.stats();
    (
        now.api_list - before.api_list,
        now.api_search - before.api_search,
        now.api_retrieve - before.api_retrieve,
    )
}

/// Ids at the mock with `status`, oldest first (past the list's first page).
fn ids_with_status(m: &TestMount, status: &str) -> Vec<String> {
    let ids = m.mock.inquiry_ids();
    ids.into_iter()
        .rev()
        .filter(|id| status_of(m, id).as_deref() == Some(status))
        .collect()
}

fn files_of(m: &TestMount, id: &str) -> Vec<PathBuf> {
    let dir = m.inquiries().join(id).join("document");
    common::list(&dir).unwrap_or_default()
}

#[test]
fn changes_reach_the_mount_by_delta_without_a_whole_listing() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let m = mount(
        mock(|_| {}),
        &work.path().join("cache"),
        Duration::from_secs(1),
        &[],
    );
    let tree = walk(&m);
    assert!(tree.len() > INQUIRIES, "the tree is walked");
    let pending = ids_with_status(&m, "pending");
    assert!(
        pending.len() >= 3,
        "pending inquiries to change: {pending:?}"
    );
    let (moved, grew, gone) = (&pending[0], &pending[1], &pending[2]);
    let before = m.stats();
    let new = m.mock.add_inquiry("pending", true).unwrap();
    assert!(m.mock.set_status(moved, "completed"));
    assert!(
        m.mock
            .add_document(grew, "late-upload.jpg", 1_000)
            .is_some()
    );
    assert!(m.mock.redact(gone));

    wait_until("the new inquiry listed", LIMIT, || {
        listed(&m).contains(&new)
    });
    wait_until("the status change shown", LIMIT, || {
        status_of(&m, moved).as_deref() == Some("completed")
    });
    wait_until("the new document listed", LIMIT, || {
        files_of(&m, grew)
            .iter()
            .any(|p| p.to_string_lossy().contains("late-upload"))
    });
    let upload = files_of(&m, grew)
        .into_iter()
        .find(|p| p.to_string_lossy().contains("late-upload"))
        .unwrap();
    assert_eq!(std::fs::read(&upload).unwrap().len(), 1_000, "and readable");
    wait_until("the redacted inquiry empty", LIMIT, || {
        files_of(&m, gone).is_empty()
    });

    let (lists, searches, retrieves) = calls_since(&m, &before);
    let deltas = m.core.delta_stats().unwrap().status();
    assert!(searches >= 1, "search was asked");
    assert!(
        lists <= deltas.deltas,
        "{lists} list pages for {} deltas: one page each, no whole listing",
        deltas.deltas
    );
    assert_eq!(
        deltas.full_listings.values().sum::<u64>(),
        1,
        "only the first mount's listing: {:?}",
        deltas.full_listings
    );
    assert!(
        retrieves <= 4,
        "{retrieves} retrieves: only the four changed inquiries are retrieved again"
    );
    m.unmount();
}

#[test]
fn search_lag_is_covered_and_nothing_unchanged_is_retrieved() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let m = mount(
        mock(|r| r.search_lag_ms = 3_000),
        &work.path().join("cache"),
        Duration::from_secs(1),
        &[],
    );
    walk(&m);
    let pending = ids_with_status(&m, "pending");
    let moved = &pending[0];
    let before = m.stats();
    let changed_at = Instant::now();
    assert!(m.mock.set_status(moved, "completed"));
    wait_until("the status change shown", LIMIT, || {
        status_of(&m, moved).as_deref() == Some("completed")
    });
    let took = changed_at.elapsed();
    // Not on the list's first page, and search hides it for 3 s: only a delta that reaches
    // back past the lag can have shown it.
    assert!(
        took >= Duration::from_millis(2_500),
        "shown after {took:?}, before search could show it"
    );
    walk(&m);
    let (_, _, retrieves) = calls_since(&m, &before);
    assert_eq!(retrieves, 1, "only the changed inquiry is retrieved again");
    m.unmount();
}

#[test]
fn an_inquiry_changing_into_the_filters_appears_and_one_changing_out_leaves() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    // What the filter keeps is known only from the mock: find one of each, then mount.
    let probe = mount(
        mock(|_| {}),
        &work.path().join("probe"),
        Duration::from_secs(60),
        &[],
    );
    let (pending, completed) = (
        ids_with_status(&probe, "pending")[0].clone(),
        ids_with_status(&probe, "completed")[0].clone(),
    );
    let mock = probe.into_mock();
    let m = mount(
        mock,
        &work.path().join("cache"),
        Duration::from_secs(1),
        &["completed"],
    );
    let first = listed(&m);
    assert!(first.contains(&completed) && !first.contains(&pending));
    assert!(m.mock.set_status(&pending, "completed"));
    assert!(m.mock.set_status(&completed, "approved"));
    wait_until("the one changed in appears", LIMIT, || {
        listed(&m).contains(&pending)
    });
    wait_until("the one changed out leaves", LIMIT, || {
        !listed(&m).contains(&completed)
    });
    let deltas = m.core.delta_stats().unwrap().status();
    assert_eq!(
        deltas.full_listings.values().sum::<u64>(),
        1,
        "by deltas, not by listing again"
    );
    m.unmount();
}

/// Redact a listed inquiry and one looked up by id outside the filters, nobody listing:
/// new opens of their files fail within the TTL and a delta (or, search refused, within the
/// TTL by the open's own check).
fn redaction_stops_new_opens(refuse_search: bool) {
    let work = tempfile::tempdir().unwrap();
    let probe = mount(
        mock(|_| {}),
        &work.path().join("probe"),
        Duration::from_secs(60),
        &[],
    );
    let with_files = |status: &str| -> String {
        ids_with_status(&probe, status)
            .into_iter()
            .find(|id| !files_of(&probe, id).is_empty())
            .unwrap()
    };
    let (listed_id, outside_id) = (with_files("approved"), with_files("completed"));
    let mock = probe.into_mock();
    mock.set_runtime(RuntimeConfig {
        refuse_search,
        ..mock.runtime()
    });
    let m = mount(
        mock,
        &work.path().join("cache"),
        Duration::from_secs(2),
        &["approved"],
    );
    assert!(listed(&m).contains(&listed_id));
    assert!(!listed(&m).contains(&outside_id), "outside the filters");
    let file_a = files_of(&m, &listed_id).remove(0);
    let file_b = files_of(&m, &outside_id).remove(0);
    assert!(!std::fs::read(&file_a).unwrap().is_empty());
    assert!(!std::fs::read(&file_b).unwrap().is_empty());
    let (before, deltas_before) = (m.stats(), m.core.delta_stats().unwrap().status().deltas);
    assert!(m.mock.redact(&listed_id) && m.mock.redact(&outside_id));
    let redacted_at = Instant::now();
    // When each file stopped opening.
    let (mut a, mut b) = (None, None);
    let (a, b) = common::wait_for("both redacted files refused", LIMIT, || {
        for (file, done) in [(&file_a, &mut a), (&file_b, &mut b)] {
            if done.is_none() && std::fs::read(file).is_err() {
                *done = Some(redacted_at.elapsed());
            }
        }
        match (a, b) {
            (Some(a), Some(b)) => Ok((a, b)),
            refused => Err(refused),
        }
    });
    // Nobody listed: the listing was never taken again.
    let (lists, _, _) = calls_since(&m, &before);
    let deltas = m.core.delta_stats().unwrap().status().deltas - deltas_before;
    assert!(
        lists <= deltas,
        "{lists} list pages for {deltas} deltas: no whole listing"
    );
    m.unmount();
    // The bound is the TTL (2 s) and the search lag (0 here); checked with room to spare.
    assert!(
        a < Duration::from_secs(10) && b < Duration::from_secs(10),
        "{a:?} {b:?}"
    );
}

#[test]
fn a_redaction_stops_new_opens_with_nobody_listing() {
    if fuse_available() {
        redaction_stops_new_opens(false);
    }
}

#[test]
fn without_search_an_open_checks_a_view_older_than_the_ttl() {
    if fuse_available() {
        redaction_stops_new_opens(true);
    }
}

#[test]
fn a_remount_walk_costs_no_retrieve_and_no_whole_listing() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let first = mount(mock(|_| {}), &cache, Duration::from_secs(60), &[]);
    let tree = walk(&first);
    // The store writes in the background: let it finish before the unmount. (Real time: the
    // core has no way to wait for the store's pending writes.)
    std::thread::sleep(Duration::from_millis(500));
    let mock = first.into_mock();
    let before = mock.stats();
    let again = mount(mock, &cache, Duration::from_secs(60), &[]);
    assert_eq!(walk(&again), tree, "the same tree");
    let (lists, searches, retrieves) = calls_since(&again, &before);
    assert_eq!(retrieves, 0, "nothing changed: nothing retrieved");
    assert!(searches >= 1, "a delta vouched for the stored views");
    assert!(
        lists <= 2,
        "{lists} list pages: the key check and one per delta"
    );
    again.unmount();
}
