//! A listing whose next-page cursor comes back again (the mock's `repeat_cursor`) on a real
//! mount: `inquiries/` shows what was gathered (never EIO), the log warns once naming the
//! cursor, and a listing cut short takes nothing for gone that a whole one showed.

mod binary;
mod common;

use std::path::Path;
use std::time::Duration;

use binary::{Daemon, wait_until};
use common::{fuse_available, unlimited};
use personafs_mock::{MockConfig, MockServer, RuntimeConfig};

const LIMIT: Duration = Duration::from_secs(30);

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("ls {}: {e}", dir.display()))
        .count()
}

fn set_repeat(mock: &MockServer, repeat_cursor: bool) {
    mock.set_runtime(RuntimeConfig {
        repeat_cursor,
        ..mock.runtime()
    });
}

#[test]
fn a_repeating_cursor_shows_what_was_gathered_and_warns_once() {
    if !fuse_available() {
        return;
    }
    let mut config = unlimited(250, MockConfig::default().seed);
    config.runtime.repeat_cursor = true;
    let mock = MockServer::start(config).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mp = work.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let mp = mp.canonicalize().unwrap();
    let (cache, log) = (work.path().join("cache"), work.path().join("personafs.log"));
    let d = Daemon::mount(
        &mock,
        &mp,
        &cache,
        &[
            "--log-file",
            log.to_str().unwrap(),
            "--metadata-ttl",
            "1s",
            // The kernel asks before each read whether `inquiries/` is due a listing.
            "--attr-ttl",
            "0",
            "--prefetch=false",
            "--cache-min-free",
            "0",
        ],
    );
    let inquiries = mp.join("inquiries");
    // Pages of 100: the second page links to its own cursor again, so two pages are whole.
    assert_eq!(entries(&inquiries), 200, "what was gathered shows, not EIO");
    let cursor = mock.inquiry_id_at(99).unwrap();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let warnings = |text: &str| {
        text.lines()
            .filter(|l| l.contains("came back again") && l.contains("WARN"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let first = warnings(&log_text());
    assert_eq!(first.len(), 1, "{}", log_text());
    assert!(first[0].contains(&format!("\"{cursor}\"")), "{}", first[0]);

    // A whole listing, then one cut short again: the 50 it lacks are not taken for gone.
    set_repeat(&mock, false);
    wait_until("the whole listing", LIMIT, || entries(&inquiries) == 250);
    set_repeat(&mock, true);
    let before = mock.stats().api_list;
    wait_until("a listing cut short again", LIMIT, || {
        entries(&inquiries) == 250 && mock.stats().api_list >= before + 2
    });
    // Real time: past the daemon's 1 s metadata TTL, so the next look lists again.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        entries(&inquiries),
        250,
        "a cut listing takes nothing for gone"
    );
    // The oldest inquiry, beyond the cut, still opens.
    let oldest = inquiries.join(mock.inquiry_id_at(249).unwrap());
    assert!(oldest.join("inquiry.json").is_file());
    let text = log_text();
    assert_eq!(warnings(&text).len(), 1, "one warning per cursor: {text}");
    assert!(!text.contains(&mock.api_key()));
    d.stop();
}
