//! The metadata store at a million listed inquiries: written and paged through in bounded
//! memory. A test binary of its own, so that its memory figures are this test's alone.
//! Prints the write time and the file size (figures, not asserted: timing belongs to the
//! benchmark script).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use personafs_fs::store::{ListedInquiry, MetadataStore};

const ROWS: u64 = 1_000_000;

fn row(n: u64) -> ListedInquiry {
    ListedInquiry {
        // Persona's ids: `inq_` and 24 more characters.
        id: format!("inq_{n:024}"),
        status: Some(["approved", "completed", "pending"][(n % 3) as usize].into()),
        created_at: Some(UNIX_EPOCH + Duration::from_secs(1_600_000_000 + n)),
        updated_at: Some(UNIX_EPOCH + Duration::new(1_700_000_000 + n, 123_000_000)),
        redacted_at: (n % 100 == 42).then(|| UNIX_EPOCH + Duration::from_secs(1_750_000_000)),
        ..Default::default()
    }
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

/// What a `Vec` of every row would take: the memory a listing held whole would need.
fn whole_listing_bytes() -> u64 {
    let one = row(ROWS - 1);
    let heap = one.id.capacity() + one.status.as_ref().map_or(0, |s| s.capacity());
    ROWS * (std::mem::size_of::<ListedInquiry>() + heap) as u64
}

#[test]
fn a_million_listed_inquiries_are_written_and_paged_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    // Ten times less than holding the listing whole, which is what bounded means here.
    let bound = whole_listing_bytes() / 10;
    let base = rss();

    let start = Instant::now();
    let written = store
        .put_listing("scale", SystemTime::now(), (0..ROWS).map(row))
        .unwrap();
    let write_time = start.elapsed();
    assert_eq!(written, ROWS);
    let after_write = rss();
    let file = dir.path().join(personafs_fs::store::FILE_NAME);
    let wal = dir
        .path()
        .join(format!("{}-wal", personafs_fs::store::FILE_NAME));
    let on_disk =
        || std::fs::metadata(&file).unwrap().len() + std::fs::metadata(&wal).map_or(0, |m| m.len());
    let size_first = on_disk();

    let start = Instant::now();
    let mut next = 0u64;
    let mut peak = after_write;
    loop {
        let page = store.listing_page(next, 1000).unwrap();
        if page.is_empty() {
            break;
        }
        for (k, r) in page.iter().enumerate() {
            assert_eq!(*r, row(next + k as u64));
        }
        next += page.len() as u64;
        if next.is_multiple_of(100_000) {
            peak = peak.max(rss());
        }
    }
    let page_time = start.elapsed();
    assert_eq!(next, ROWS);
    assert_eq!(store.listing().unwrap().unwrap().count, ROWS);
    let (pos, found) = store.listed(&row(777_777).id).unwrap().unwrap();
    assert_eq!((pos, found), (777_777, row(777_777)));

    // Replacing it deletes the old rows in chunks: the file does not double for good.
    let start = Instant::now();
    store
        .put_listing("scale", SystemTime::now(), (0..ROWS).map(row))
        .unwrap();
    let rewrite_time = start.elapsed();
    peak = peak.max(rss());
    let size_rewritten = on_disk();
    drop(store);
    let size = std::fs::metadata(&file).unwrap().len();
    // Reopening checks the whole file (`quick_check`) before trusting it.
    let start = Instant::now();
    let store = MetadataStore::open(dir.path()).unwrap();
    let reopen_time = start.elapsed();
    assert!(store.rebuilt().is_none());
    assert_eq!(store.listing().unwrap().unwrap().count, ROWS);

    eprintln!(
        "store at {ROWS} listed inquiries: write {:.2?}, page through {:.2?}, rewrite {:.2?}, \
         on disk {:.1} MiB after the first write, {:.1} MiB after the rewrite, {:.1} MiB \
         closed; reopen {:.2?}; RSS growth {:.1} MiB (bound {:.1} MiB)",
        write_time,
        page_time,
        rewrite_time,
        size_first as f64 / (1 << 20) as f64,
        size_rewritten as f64 / (1 << 20) as f64,
        size as f64 / (1 << 20) as f64,
        reopen_time,
        peak.saturating_sub(base) as f64 / (1 << 20) as f64,
        bound as f64 / (1 << 20) as f64,
    );
    // The replaced listing's pages were given back: the file did not keep both.
    assert!(
        size < size_first * 3 / 2,
        "{size} bytes after a rewrite, {size_first} after the first write"
    );
    assert!(
        peak.saturating_sub(base) < bound,
        "RSS grew by {} bytes writing and paging {ROWS} rows (bound {bound})",
        peak.saturating_sub(base)
    );
}
