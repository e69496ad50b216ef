//! End to end: the kernel opens directories itself and keeps what it read of them; personafs
//! tells it to drop a listing that changed or is due a refresh (SEMANTICS.md).

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Options, TestMount, fuse_available, generated, list, mock, wait_for, walk};

/// The generated organization of these tests.
const SEED: u64 = 11;

#[test]
fn a_warm_walk_reads_no_listing_through_personafs() {
    if !fuse_available() {
        return;
    }
    let m = TestMount::start_exact(generated(6, SEED));
    let reads = || m.core.counters.dir_reads.load(Ordering::Relaxed);
    let first = walk(&m.inquiries());
    let after_first = reads();
    // inquiries/, then each inquiry's directory, document/ and selfie/.
    assert_eq!(after_first, 1 + 6 * 3, "each listing read once");
    let again = walk(&m.inquiries());
    assert_eq!(again, first);
    assert_eq!(reads(), after_first, "the kernel kept every listing");
}

#[test]
fn a_listing_due_a_refresh_is_read_again_once_the_kernel_asks_for_it() {
    if !fuse_available() {
        return;
    }
    let mut opts = Options::exact();
    opts.core.metadata_ttl = Duration::from_millis(300);
    let m = TestMount::with(mock(20, SEED), opts);
    let unfinished = ["created", "pending", "needs_review"];
    let id = m
        .mock
        .inquiry_ids()
        .into_iter()
        .find(|id| {
            let inquiry = m.rt.block_on(m.api.retrieve_inquiry(id)).unwrap();
            unfinished.contains(&inquiry.status.as_deref().unwrap_or(""))
        })
        .expect("an unfinished inquiry");
    let document = m.inquiries().join(&id).join("document");
    let before = list(&document).unwrap();
    let (reads, drops) = (
        m.core.counters.dir_reads.load(Ordering::Relaxed),
        m.core.counters.dir_drops.load(Ordering::Relaxed),
    );
    assert_eq!(list(&document).unwrap(), before);
    assert_eq!(
        m.core.counters.dir_reads.load(Ordering::Relaxed),
        reads,
        "read again from the kernel's copy"
    );

    // Persona gains a document; no event says so. Once the view is older than the metadata
    // TTL, the kernel's next question about the directory (within the attribute TTL, 5 s)
    // drops its copy, and the read after it shows the new document.
    let added = m.mock.add_document(&id, "late_addendum.pdf", 2345).unwrap();
    let now = wait_for(
        &format!("the new document {added} showing"),
        Duration::from_secs(20),
        || {
            let now = list(&document).unwrap();
            if now.len() > before.len() {
                Ok(now)
            } else {
                Err(now)
            }
        },
    );
    assert_eq!(now.len(), before.len() + 1, "{before:?} → {now:?}");
    assert!(m.core.counters.dir_drops.load(Ordering::Relaxed) > drops);
    let new = now.iter().find(|p| !before.contains(p)).unwrap();
    assert_eq!(std::fs::read(new).unwrap().len(), 2345);
}
