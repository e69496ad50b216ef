//! Changes from the events feed (SEMANTICS.md, "Changes: the events feed and webhooks"): a
//! new inquiry shows in `inquiries/` without waiting for the metadata TTL, a changed one is
//! retrieved again, a redaction deletes the view, the stored view and the cached files at
//! once; the cursor is kept in the metadata store and a remount resumes from it; a cursor
//! Persona no longer keeps falls back to a full listing check; offline, nothing is asked.

use std::sync::Arc;
use std::time::Duration;

use personafs_client::testing::{Call, Fault, FaultyApi, MemoryApi};

use super::{SAMPLE_FILES, build_core, config, errno, limits, sample_inquiry, sample_size};
use crate::cache::{CacheKey, DiskCache};
use crate::store::MetadataStore;
use crate::{Change, CoreConfig, FsCore, INQUIRIES, Polled};

use super::three_approved as api;

/// A long metadata TTL: whatever the tests see change, the feed changed.
fn long_ttl() -> CoreConfig {
    CoreConfig {
        metadata_ttl: Duration::from_secs(3600),
        ..config()
    }
}

/// A cache directory with its store, and mounts over it.
struct Disk {
    dir: tempfile::TempDir,
    cache: Arc<DiskCache>,
}

struct Mounted {
    core: Arc<FsCore>,
    api: Arc<FaultyApi<MemoryApi>>,
    store: Arc<MetadataStore>,
}

impl Disk {
    fn new() -> Disk {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = DiskCache::open_dir(dir.path(), limits(1 << 30)).expect("cache");
        Disk { dir, cache }
    }

    fn mount(&self, mem: &Arc<MemoryApi>) -> Mounted {
        let store = Arc::new(MetadataStore::open(self.dir.path()).expect("store"));
        let api = Arc::new(FaultyApi::shared(mem.clone()));
        let cfg = CoreConfig {
            store: Some(store.clone()),
            ..long_ttl()
        };
        let core = build_core(api.clone(), self.cache.clone(), cfg);
        Mounted { core, api, store }
    }

    fn cached(&self, id: &str) -> usize {
        SAMPLE_FILES
            .iter()
            .filter(|(_, name, object)| {
                self.cache.contains(&CacheKey {
                    inquiry_id: id.into(),
                    object_id: object.to_string(),
                    name: name.to_string(),
                    size: sample_size(name),
                })
            })
            .count()
    }
}

impl Disk {
    /// Wait until the sample's four files of `id` are in the cache (a download is committed
    /// just after its last byte is served).
    async fn all_cached(&self, id: &str) {
        super::wait_for("four cached files", || self.cached(id) == 4).await;
    }
}

impl Mounted {
    async fn lookup(&self, path: &str) -> crate::FsResult<u64> {
        let mut ino = INQUIRIES;
        for name in path.split('/') {
            ino = self.core.lookup(ino, name).await?.ino;
        }
        Ok(ino)
    }

    async fn names(&self, path: &str) -> Vec<String> {
        let ino = if path.is_empty() {
            INQUIRIES
        } else {
            self.lookup(path).await.expect(path)
        };
        self.core
            .readdir(ino)
            .await
            .expect("readdir")
            .into_iter()
            .map(|e| e.name.to_string())
            .collect()
    }

    async fn read(&self, path: &str) -> crate::FsResult<Vec<u8>> {
        let ino = self.lookup(path).await?;
        let opened = self.core.open(ino).await?;
        let mut out = Vec::new();
        loop {
            let chunk = self.core.read(opened.fh, out.len() as u64, 1 << 17).await?;
            if chunk.is_empty() {
                break;
            }
            out.extend_from_slice(&chunk);
        }
        self.core.release(opened.fh);
        Ok(out)
    }

    async fn read_inquiry(&self, id: &str) {
        for (section, name, _) in SAMPLE_FILES {
            self.read(&format!("{id}/{section}/{name}")).await.unwrap();
        }
    }
}

#[tokio::test]
async fn the_feed_shows_a_new_inquiry_before_the_metadata_ttl() {
    let mem = api();
    let disk = Disk::new();
    let m = disk.mount(&mem);
    assert_eq!(m.core.poll_events().await, Polled::Started);
    assert_eq!(m.names("").await, ["inq_c", "inq_b", "inq_a"]);
    mem.add_inquiry(sample_inquiry("inq_d", 40).status("approved"));
    assert_eq!(
        m.names("").await.len(),
        3,
        "within the TTL: the old listing"
    );
    assert_eq!(m.core.poll_events().await, Polled::Applied(1));
    let names = m.names("").await;
    assert!(names.contains(&"inq_d".to_string()), "{names:?}");
    assert_eq!(
        m.core
            .counters
            .events_applied
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[tokio::test]
async fn the_feed_retrieves_an_inquiry_whose_document_changed() {
    let mem = api();
    let disk = Disk::new();
    let m = disk.mount(&mem);
    m.core.poll_events().await;
    let path = "inq_b/document/doc_2-statement.pdf";
    assert_eq!(m.read(path).await.unwrap().len(), 40_000);
    let retrieves = m.api.calls(Call::Retrieve);
    let new = vec![7u8; 12_345];
    assert!(mem.change_file("inq_b", "doc_2", "statement.pdf", new.clone()));
    // Approved (final) and within the TTL: without the feed, never retrieved again.
    assert_eq!(m.read(path).await.unwrap().len(), 40_000);
    assert_eq!(m.core.poll_events().await, Polled::Applied(1));
    assert_eq!(m.read(path).await.unwrap(), new);
    assert_eq!(m.api.calls(Call::Retrieve), retrieves + 1);
}

#[tokio::test]
async fn the_feed_applies_a_redaction_to_memory_the_store_and_the_cache() {
    let mem = api();
    let disk = Disk::new();
    let m = disk.mount(&mem);
    m.core.poll_events().await;
    m.read_inquiry("inq_a").await;
    disk.all_cached("inq_a").await;
    m.read_inquiry("inq_b").await;
    disk.all_cached("inq_b").await;
    super::wait_for("stored views", || {
        m.store.get_inquiry("inq_a").ok().flatten().is_some()
    })
    .await;
    let front = m
        .lookup("inq_a/document/doc_1-front-photo.jpg")
        .await
        .unwrap();
    assert!(mem.redact("inq_a"));
    assert_eq!(m.core.poll_events().await, Polled::Applied(1));
    // At once, when the poll returns: files, stored view.
    assert_eq!(disk.cached("inq_a"), 0, "cached files deleted");
    assert_eq!(disk.cached("inq_b"), 4, "the other inquiry's files stay");
    assert!(
        m.store.get_inquiry("inq_a").unwrap().is_none(),
        "stored view deleted"
    );
    assert_eq!(errno(m.core.open(front).await), libc::ENOENT);
    assert!(m.names("inq_a/document").await.is_empty());
    assert!(m.names("inq_a/selfie").await.is_empty());
}

#[tokio::test]
async fn a_redaction_announced_before_persona_shows_it_hides_the_files() {
    let mem = api();
    let disk = Disk::new();
    let m = disk.mount(&mem);
    m.read_inquiry("inq_c").await;
    disk.all_cached("inq_c").await;
    let front = m
        .lookup("inq_c/document/doc_1-front-photo.jpg")
        .await
        .unwrap();
    // A webhook can arrive before a retrieve shows the redaction: the files go anyway.
    m.core.apply_change(Change::Redacted("inq_c".into())).await;
    assert_eq!(disk.cached("inq_c"), 0);
    assert_eq!(errno(m.core.open(front).await), libc::ENOENT);
    assert_eq!(
        errno(m.lookup("inq_c/document/doc_1-front-photo.jpg").await),
        libc::ENOENT
    );
}

#[tokio::test]
async fn the_cursor_is_stored_and_a_remount_resumes_from_it() {
    let mem = api();
    let disk = Disk::new();
    {
        let m = disk.mount(&mem);
        assert_eq!(m.core.poll_events().await, Polled::Started);
        m.read_inquiry("inq_b").await;
        disk.all_cached("inq_b").await;
        mem.add_inquiry(sample_inquiry("inq_d", 40).status("approved"));
        assert_eq!(m.core.poll_events().await, Polled::Applied(1));
        let newest = mem.events().last().unwrap().id.clone();
        let stored = m.store.get_cursor(&format!(
            "events {:?}",
            personafs_client::ListFilters::default()
        ));
        assert_eq!(stored.unwrap(), Some(newest));
    }
    // While unmounted: a new inquiry and a redaction.
    mem.add_inquiry(sample_inquiry("inq_e", 50).status("approved"));
    assert!(mem.redact("inq_b"));
    let m = disk.mount(&mem);
    assert_eq!(
        m.core.poll_events().await,
        Polled::Applied(2),
        "only what was missed"
    );
    assert_eq!(disk.cached("inq_b"), 0);
    assert!(m.store.get_inquiry("inq_b").unwrap().is_none());
    assert!(m.names("").await.contains(&"inq_e".to_string()));
    assert_eq!(m.core.poll_events().await, Polled::Applied(0));
}

#[tokio::test]
async fn a_gone_cursor_falls_back_to_a_full_listing_check() {
    let mem = api();
    let disk = Disk::new();
    let m = disk.mount(&mem);
    m.core.poll_events().await;
    m.read_inquiry("inq_a").await;
    disk.all_cached("inq_a").await;
    let lists = m.api.calls(Call::List);
    assert!(mem.redact("inq_a"));
    mem.add_inquiry(sample_inquiry("inq_d", 40).status("approved"));
    mem.drop_events(); // older than what Persona keeps
    assert_eq!(m.core.poll_events().await, Polled::FullCheck);
    assert!(m.api.calls(Call::List) > lists, "listed again");
    assert_eq!(disk.cached("inq_a"), 0);
    assert!(m.store.get_inquiry("inq_a").unwrap().is_none());
    assert!(m.names("").await.contains(&"inq_d".to_string()));
    // The feed goes on from the newest event.
    mem.add_inquiry(sample_inquiry("inq_e", 50).status("approved"));
    assert_eq!(m.core.poll_events().await, Polled::Applied(1));
}

#[tokio::test]
async fn an_open_breaker_skips_the_poll() {
    let mem = api();
    let disk = Disk::new();
    let m = disk.mount(&mem);
    m.core.start_offline();
    assert_eq!(m.core.poll_events().await, Polled::Offline);
    assert_eq!(m.api.calls(Call::Events), 0, "nothing asked");
}

#[tokio::test]
async fn the_first_poll_without_any_event_replays_from_the_start_later() {
    let mem = Arc::new(MemoryApi::new());
    let disk = Disk::new();
    let m = disk.mount(&mem);
    assert_eq!(m.core.poll_events().await, Polled::Started);
    assert!(m.names("").await.is_empty());
    mem.add_inquiry(sample_inquiry("inq_a", 1).status("approved"));
    mem.add_inquiry(sample_inquiry("inq_b", 2).status("approved"));
    assert_eq!(m.core.poll_events().await, Polled::Applied(2));
    assert_eq!(m.names("").await.len(), 2);
}

#[tokio::test]
async fn a_file_open_before_a_redaction_keeps_reading_what_it_opened() {
    let mem = api();
    let disk = Disk::new();
    let m = disk.mount(&mem);
    m.read_inquiry("inq_a").await;
    disk.all_cached("inq_a").await;
    let path = "inq_a/document/doc_2-statement.pdf";
    let expected = m.read(path).await.unwrap();
    let ino = m.lookup(path).await.unwrap();
    let opened = m.core.open(ino).await.unwrap();
    m.core.apply_change(Change::Redacted("inq_a".into())).await;
    assert_eq!(disk.cached("inq_a"), 0);
    // The handle reads the file it opened; a new open is ENOENT.
    let bytes = m.core.read(opened.fh, 0, 1 << 20).await.unwrap();
    assert_eq!(bytes, expected);
    m.core.release(opened.fh);
    assert_eq!(errno(m.core.open(ino).await), libc::ENOENT);
}

#[tokio::test]
async fn a_failed_poll_is_tried_again_at_the_next_interval() {
    let mem = api();
    let disk = Disk::new();
    let m = disk.mount(&mem);
    assert_eq!(m.core.poll_events().await, Polled::Started);
    mem.add_inquiry(sample_inquiry("inq_d", 40).status("approved"));
    m.api.fail_next(Call::Events, 1, Fault::Status(403));
    assert_eq!(m.core.poll_events().await, Polled::Failed);
    assert!(!m.core.is_offline(), "an answer, not an outage");
    assert_eq!(
        m.core.poll_events().await,
        Polled::Applied(1),
        "nothing lost"
    );
    assert!(m.names("").await.contains(&"inq_d".to_string()));
}
