//! `personafs status` on a live mount shows a listing of `inquiries/` under way: pages and
//! inquiries so far, and the time left (an earlier listing says how many are coming; the
//! first listing's "time left unknown" is src/status.rs's unit test).
//! The mock answers each API request after 400 ms, so a listing of 6 pages lasts seconds.

mod binary;
mod common;

use std::time::Duration;

use binary::{Daemon, personafs, wait_until};
use common::fuse_available;
use personafs_client::telemetry::{ListingProgress, Snapshot};
use personafs_mock::{MockConfig, MockServer, RuntimeConfig};

const LIMIT: Duration = Duration::from_secs(60);

fn status(mp: &str) -> Snapshot {
    let (ok, out, err) = personafs(&["status", mp, "--json"]);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The listing under way, once at least two pages of it are in.
fn listing_under_way(mp: &str) -> ListingProgress {
    let mut seen = None;
    wait_until("a listing under way in status", LIMIT, || {
        seen = status(mp).listing.filter(|l| l.pages >= 2);
        seen.is_some()
    });
    seen.unwrap()
}

#[test]
fn status_shows_a_listing_in_progress() {
    if !fuse_available() {
        return;
    }
    let mock = MockServer::start(MockConfig {
        generate: 550,
        runtime: RuntimeConfig {
            rate_limit: 0,
            api_latency_ms: 400,
            // Listing by TTL, as for a key that may not search: with deltas, the second
            // listing would be a delta (SEMANTICS.md, "Freshness: deltas").
            refuse_search: true,
            ..MockConfig::default().runtime
        },
        ..Default::default()
    })
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let mp = work.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let mp = mp.canonicalize().unwrap();
    let mps = mp.to_str().unwrap().to_string();
    let cache = work.path().join("cache");
    let files = common::host_port(&mock.files_base());
    let api = mock.api_base();
    let d = Daemon::spawn(
        &mp,
        &[
            "mount",
            &mps,
            "--api-base",
            &api,
            "--file-host",
            &files,
            "--cache-dir",
            cache.to_str().unwrap(),
            "--metadata-ttl",
            "1s",
            "--attr-ttl",
            "0",
            "--prefetch=false",
            "--cache-min-free",
            "0",
        ],
        &[("PERSONA_API_KEY", &mock.api_key())],
    );
    let inquiries = mp.join("inquiries");
    let ls = move || std::fs::read_dir(&inquiries).unwrap().count();

    // The mount lists once as it starts; the next listing knows how many that one held.
    wait_until("the first listing done", LIMIT, || {
        let s = status(&mps);
        s.listing.is_none() && s.api_calls.get("list").is_some_and(|n| *n >= 6)
    });
    // Real time: past the daemon's 1 s metadata TTL, so the next look lists again.
    std::thread::sleep(Duration::from_millis(1100));
    let walk = std::thread::spawn(ls);
    let second = listing_under_way(&mps);
    assert!(
        second.inquiries >= 200 && second.inquiries < 550,
        "{second:?}"
    );
    assert_eq!(second.expected_inquiries, Some(550), "{second:?}");
    let (ok, text, err) = personafs(&["status", &mps]);
    assert!(ok, "{err}");
    assert!(
        text.contains("  listing:     in progress for ") && text.contains(" left for ~550 ("),
        "{text}"
    );
    assert_eq!(walk.join().unwrap(), 550);
    d.stop();
}
