//! The metadata store wired into the core (SEMANTICS.md, "Metadata store and offline
//! reading"): a second core over the same store and cache (a remount) shows the tree without
//! retrieves; a changed `updated-at` costs exactly one retrieve; a redaction seen in the
//! listing deletes the stored view and the cached files; looking up a known id costs no list
//! call; when Persona cannot be reached the circuit breaker opens, the tree and cached files
//! are served from the store and the cache at once, an uncached file is EIO at once, and the
//! breaker recovers by itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use personafs_client::PersonaApi;
use personafs_client::testing::{Call, Fault, FaultyApi, MemoryApi};

use super::{SAMPLE_FILES, build_core, config, limits, sample_inquiry, sample_size, wait_for};
use crate::cache::{CacheKey, DiskCache};
use crate::store::MetadataStore;
use crate::{Clock, CoreConfig, FsCore, FsResult, INQUIRIES};

use super::{THREE_IDS as IDS, three_approved as api};

/// A cache directory: the disk cache and the store in it, as a mount has them, and the
/// clock of every mount over it (and of Persona): a remount sees the views as old as the
/// test advanced it.
struct Disk {
    dir: tempfile::TempDir,
    cache: Arc<DiskCache>,
    clock: Clock,
}

impl Disk {
    fn new() -> Disk {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = DiskCache::open_dir(dir.path(), limits(1 << 30)).expect("cache");
        Disk {
            dir,
            cache,
            clock: Clock::manual(),
        }
    }

    /// The store, opened anew from its file (as a remount does).
    fn store(&self) -> Arc<MetadataStore> {
        Arc::new(MetadataStore::open(self.dir.path()).expect("store"))
    }

    /// A core (a mount) over `mem` behind a fault injector, with a freshly opened store.
    fn core(&self, mem: &Arc<MemoryApi>, cfg: CoreConfig) -> Mounted {
        let store = self.store();
        mem.set_clock(self.clock.clone());
        let api = Arc::new(FaultyApi::shared(mem.clone()));
        api.set_clock(self.clock.clone());
        let cfg = CoreConfig {
            store: Some(store.clone()),
            clock: self.clock.clone(),
            ..cfg
        };
        let core = build_core(api.clone(), self.cache.clone(), cfg);
        Mounted { core, api, store }
    }

    fn key(&self, id: &str, object: &str, name: &str) -> CacheKey {
        CacheKey {
            inquiry_id: id.into(),
            object_id: object.into(),
            name: name.into(),
            size: sample_size(name),
        }
    }
}

struct Mounted {
    core: Arc<FsCore>,
    api: Arc<FaultyApi<MemoryApi>>,
    store: Arc<MetadataStore>,
}

impl Mounted {
    fn calls(&self, call: Call) -> u64 {
        self.api.calls(call)
    }

    /// Wait until the views of `ids` (with their inquiry.json) are in the store.
    async fn stored(&self, ids: &[&str]) {
        wait_for("views saved to the store", || {
            ids.iter()
                .all(|id| matches!(self.store.get_inquiry_json(id), Ok(Some(_))))
        })
        .await;
    }
}

/// `ls -lR inquiries` then `cp -r` of it: every file's path and what reading it gave.
async fn copy_all(core: &FsCore) -> BTreeMap<String, FsResult<Vec<u8>>> {
    let mut out = BTreeMap::new();
    for inq in core.readdir(INQUIRIES).await.expect("readdir inquiries") {
        let id = inq.name.to_string();
        let inq_ino = core.lookup(INQUIRIES, &id).await.expect("lookup").ino;
        for entry in core.readdir(inq_ino).await.expect("readdir inquiry") {
            let ino = core.lookup(inq_ino, &entry.name).await.expect("lookup").ino;
            if &*entry.name == "inquiry.json" {
                out.insert(format!("{id}/inquiry.json"), read(core, ino).await);
                continue;
            }
            for file in core.readdir(ino).await.expect("readdir section") {
                let attr = core.lookup(ino, &file.name).await.expect("lookup file");
                assert_eq!(attr.size, file.attr.size, "{id}/{}", file.name);
                let got = read(core, attr.ino).await;
                out.insert(format!("{id}/{}/{}", entry.name, file.name), got);
            }
        }
    }
    out
}

async fn read(core: &FsCore, ino: u64) -> FsResult<Vec<u8>> {
    let opened = core.open(ino).await?;
    let mut out = Vec::new();
    let result = loop {
        match core.read(opened.fh, out.len() as u64, 128 << 10).await {
            Ok(chunk) if chunk.is_empty() => break Ok(out),
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(e) => break Err(e),
        }
    };
    core.release(opened.fh);
    result
}

/// What a first mount leaves behind: every view stored, every file cached.
async fn first_mount(disk: &Disk, mem: &Arc<MemoryApi>) -> BTreeMap<String, Vec<u8>> {
    let first = disk.core(mem, config());
    let copied = copy_all(&first.core).await;
    assert_eq!(copied.len(), IDS.len() * (1 + SAMPLE_FILES.len()));
    first.stored(&IDS).await;
    let files = IDS.len() * SAMPLE_FILES.len();
    wait_for("every file cached", || disk.cache.stats().entries == files).await;
    copied
        .into_iter()
        .map(|(path, r)| (path.clone(), r.unwrap_or_else(|e| panic!("{path}: {e}"))))
        .collect()
}

fn ok(copied: BTreeMap<String, FsResult<Vec<u8>>>) -> BTreeMap<String, Vec<u8>> {
    copied
        .into_iter()
        .map(|(path, r)| (path.clone(), r.unwrap_or_else(|e| panic!("{path}: {e}"))))
        .collect()
}

#[tokio::test]
async fn a_second_core_over_the_same_store_and_cache_shows_the_tree_with_no_retrieve() {
    let mem = api();
    let disk = Disk::new();
    let before = first_mount(&disk, &mem).await;
    // Older than the metadata TTL: only the listing's matching `updated-at` vouches for them.
    let ttl = Duration::from_secs(60);
    disk.clock.advance(ttl);
    let second = disk.core(
        &mem,
        CoreConfig {
            metadata_ttl: ttl,
            ..config()
        },
    );
    let after = ok(copy_all(&second.core).await);
    assert_eq!(after, before, "the same tree, byte for byte");
    assert_eq!(second.calls(Call::Retrieve), 0);
    assert_eq!(second.calls(Call::Download), 0);
    assert_eq!(second.calls(Call::Head), 0);
    assert_eq!(second.calls(Call::List), 1);
}

#[tokio::test]
async fn a_changed_updated_at_costs_exactly_one_retrieve() {
    let mem = api();
    let disk = Disk::new();
    first_mount(&disk, &mem).await;
    assert!(mem.set_status("inq_b", "declined"));
    let second = disk.core(&mem, config());
    let after = ok(copy_all(&second.core).await);
    assert_eq!(second.calls(Call::Retrieve), 1, "inq_b only");
    let json = String::from_utf8(after["inq_b/inquiry.json"].clone()).unwrap();
    assert!(json.contains("\"declined\""), "the new view is shown");
    assert_eq!(
        second.calls(Call::Download),
        0,
        "its files are still cached"
    );
}

#[tokio::test]
async fn a_redaction_in_the_listing_deletes_the_stored_view_and_cached_files() {
    let mem = api();
    let disk = Disk::new();
    first_mount(&disk, &mem).await;
    let keys: Vec<_> = SAMPLE_FILES
        .iter()
        .map(|(_, name, object)| disk.key("inq_a", object, name))
        .collect();
    assert!(keys.iter().all(|k| disk.cache.contains(k)));
    assert!(mem.redact("inq_a"));
    let second = disk.core(&mem, config());
    // The listing alone shows the redaction: nothing under inq_a is even looked at.
    second.core.readdir(INQUIRIES).await.unwrap();
    wait_for("the stored view deleted", || {
        matches!(second.store.get_inquiry("inq_a"), Ok(None))
    })
    .await;
    for k in &keys {
        assert!(!disk.cache.contains(k), "{} is still cached", k.name);
    }
    assert_eq!(second.calls(Call::Retrieve), 0);
    assert!(matches!(second.store.get_inquiry("inq_b"), Ok(Some(_))));
}

#[tokio::test]
async fn a_redaction_seen_by_a_retrieve_leaves_only_an_empty_view_in_the_store() {
    let mem = api();
    let disk = Disk::new();
    first_mount(&disk, &mem).await;
    assert!(mem.redact("inq_c"));
    // Looked up directly (no listing) after the TTL: the stored view is not trusted, and the
    // retrieve sees the redaction.
    let ttl = Duration::from_secs(60);
    disk.clock.advance(ttl);
    let second = disk.core(
        &mem,
        CoreConfig {
            metadata_ttl: ttl,
            ..config()
        },
    );
    let inq = second.core.lookup(INQUIRIES, "inq_c").await.unwrap();
    let doc = second.core.lookup(inq.ino, "document").await.unwrap();
    assert!(second.core.readdir(doc.ino).await.unwrap().is_empty());
    assert_eq!(second.calls(Call::Retrieve), 1);
    let stored = second.store.get_inquiry("inq_c").unwrap().expect("stored");
    assert!(stored.redacted_at.is_some());
    assert!(
        stored.files.is_empty(),
        "no file of a redacted inquiry is kept"
    );
    for (_, name, object) in SAMPLE_FILES {
        assert!(!disk.cache.contains(&disk.key("inq_c", object, name)));
    }
    // A remount shows it empty without asking again, even offline.
    let third = disk.core(&mem, config());
    unplug(&third);
    let inq = third.core.lookup(INQUIRIES, "inq_c").await.unwrap();
    let doc = third.core.lookup(inq.ino, "document").await.unwrap();
    assert!(third.core.readdir(doc.ino).await.unwrap().is_empty());
    let json = third.core.lookup(inq.ino, "inquiry.json").await.unwrap();
    assert!(read(&third.core, json.ino).await.unwrap().len() as u64 == json.size);
    assert_eq!(third.calls(Call::Retrieve), 0);
}

#[tokio::test]
async fn lookups_of_known_ids_cost_no_list_call() {
    let mem = api();
    let disk = Disk::new();
    let before = first_mount(&disk, &mem).await;
    let second = disk.core(&mem, config());
    let front = "inq_b/document/doc_1-front-photo.jpg";
    let inq = second.core.lookup(INQUIRIES, "inq_b").await.unwrap();
    let doc = second.core.lookup(inq.ino, "document").await.unwrap();
    let file = second
        .core
        .lookup(doc.ino, "doc_1-front-photo.jpg")
        .await
        .unwrap();
    assert_eq!(read(&second.core, file.ino).await.unwrap(), before[front]);
    let json = second.core.lookup(inq.ino, "inquiry.json").await.unwrap();
    assert_eq!(
        read(&second.core, json.ino).await.unwrap(),
        before["inq_b/inquiry.json"]
    );
    assert_eq!(second.calls(Call::List), 0);
    assert_eq!(second.calls(Call::Retrieve), 0, "checked within the TTL");
    // An id the store does not know: one retrieve, still no listing.
    mem.add_inquiry(sample_inquiry("inq_new", 99));
    second.core.lookup(INQUIRIES, "inq_new").await.unwrap();
    assert_eq!(second.calls(Call::List), 0);
    assert_eq!(second.calls(Call::Retrieve), 1);
}

#[tokio::test]
async fn a_remount_answers_ls_from_the_stored_listing_while_it_lists_again() {
    let mem = api();
    let disk = Disk::new();
    first_mount(&disk, &mem).await;
    wait_for("the listing saved", || {
        second_listing_count(&disk) == Some(IDS.len() as u64)
    })
    .await;
    // Listing by TTL, as when Persona refuses search: with deltas, a readdir waits for one
    // (`deltas.rs`).
    let second = disk.core(
        &mem,
        CoreConfig {
            deltas: None,
            ..config()
        },
    );
    second.api.delay(Call::List, Duration::from_secs(5));
    let entries = second.core.readdir(INQUIRIES).await.unwrap();
    let mut names: Vec<_> = entries.iter().map(|e| e.name.to_string()).collect();
    names.sort();
    assert_eq!(names, IDS, "the stored listing, at once");
    // With the times Persona listed: each inquiry directory's is its created-at.
    for e in &entries {
        let created = PersonaApi::retrieve_inquiry(mem.as_ref(), &e.name)
            .await
            .unwrap()
            .created_at;
        assert_eq!(
            Some(e.attr.mtime),
            created.map(SystemTime::from),
            "{}",
            e.name
        );
    }
    wait_for("one listing under way", || {
        second.api.in_flight(Call::List) == 1
    })
    .await;
}

fn second_listing_count(disk: &Disk) -> Option<u64> {
    disk.store().listing().ok().flatten().map(|l| l.count)
}

/// Persona unreachable for every call (connection refused after the client's retries).
fn unplug(m: &Mounted) {
    for call in Call::ALL {
        m.api.fail_next(call, 1000, Fault::Network);
    }
}

#[tokio::test]
async fn offline_the_breaker_opens_answers_from_the_store_at_once_and_recovers() {
    let mem = api();
    let disk = Disk::new();
    let before = first_mount(&disk, &mem).await;
    let ttl = Duration::from_secs(60);
    let probe = Duration::from_secs(120); // longer than the TTL, as a mount has it
    let cfg = CoreConfig {
        metadata_ttl: ttl,
        offline_probe: probe,
        ..config()
    };
    let telemetry = cfg.counters.clone();
    disk.clock.advance(ttl); // stored views are too old to trust while online
    let second = disk.core(&mem, cfg);
    unplug(&second);
    let after = ok(copy_all(&second.core).await);
    assert_eq!(
        after, before,
        "the tree as last seen, cached files byte-identical"
    );
    assert!(second.core.is_offline());
    assert!(telemetry.is_offline());
    // Open: nothing reaches Persona any more, however much is read.
    let reached = Call::ALL.map(|c| second.calls(c));
    let again = ok(copy_all(&second.core).await);
    assert_eq!(again, before);
    assert_eq!(Call::ALL.map(|c| second.calls(c)), reached);
    let reached: u64 = reached.iter().sum();
    assert!(
        reached <= crate::breaker::OPEN_AFTER as u64 + 1,
        "{reached} calls reached Persona"
    );
    // Persona is back: a probe after `probe` closes the breaker by itself.
    second.api.clear();
    disk.clock.advance(probe);
    copy_all(&second.core).await;
    assert!(!second.core.is_offline());
    assert!(!telemetry.is_offline());
    assert!(second.calls(Call::Retrieve) > 0 || second.calls(Call::List) > 0);
}

#[tokio::test]
async fn offline_an_uncached_file_is_eio_at_once() {
    let mem = api();
    let disk = Disk::new();
    first_mount(&disk, &mem).await;
    assert_eq!(disk.cache.purge_inquiry("inq_b"), SAMPLE_FILES.len());
    let ttl = Duration::from_secs(60);
    disk.clock.advance(ttl);
    let second = disk.core(
        &mem,
        CoreConfig {
            metadata_ttl: ttl,
            ..config()
        },
    );
    unplug(&second);
    // The first failures (each after the client's own retries) open the breaker.
    let copied = copy_all(&second.core).await;
    assert!(second.core.is_offline());
    for (p, r) in &copied {
        match r {
            Err(e) => assert!(
                p.starts_with("inq_b/") && crate::errno_of(e) == libc::EIO,
                "{p}: {e}"
            ),
            Ok(_) => assert!(
                !p.starts_with("inq_b/") || p.ends_with("inquiry.json"),
                "{p}"
            ),
        }
    }
    // Open: the uncached file fails without a request.
    let reached = Call::ALL.map(|c| second.calls(c));
    let inq = second.core.lookup(INQUIRIES, "inq_b").await.unwrap();
    let doc = second.core.lookup(inq.ino, "document").await.unwrap();
    let file = second
        .core
        .lookup(doc.ino, "doc_2-statement.pdf")
        .await
        .unwrap();
    assert_eq!(file.size, 40_000, "its size is known from the store");
    let e = read(&second.core, file.ino).await.unwrap_err();
    assert_eq!(crate::errno_of(&e), libc::EIO);
    assert_eq!(
        Call::ALL.map(|c| second.calls(c)),
        reached,
        "not even tried"
    );
    assert_eq!(second.calls(Call::Download), 0);
}

#[tokio::test]
async fn a_listing_slower_than_the_ttl_still_confirms_the_stored_views() {
    let mem = api();
    let disk = Disk::new();
    let before = first_mount(&disk, &mem).await;
    // Short: the listing below really takes longer than it (a delay of the fake Persona).
    let ttl = Duration::from_millis(150);
    disk.clock.advance(ttl); // stored views are too old to trust on their own
    let second = disk.core(
        &mem,
        CoreConfig {
            metadata_ttl: ttl,
            ..config()
        },
    );
    // The listing takes longer than the TTL (a large organization at 300 requests a minute).
    second.api.delay(Call::List, 2 * ttl);
    let after = ok(copy_all(&second.core).await);
    assert_eq!(after, before);
    assert_eq!(
        second.calls(Call::Retrieve),
        0,
        "the listing confirmed every stored view"
    );
}

#[tokio::test]
async fn a_walk_longer_than_the_ttl_does_not_retrieve_final_inquiries_again() {
    let disk = Disk::new();
    let ttl = Duration::from_secs(60);
    let m = disk.core(
        &api(),
        CoreConfig {
            metadata_ttl: ttl,
            max_views: 1,
            ..config()
        },
    );
    let walk = |core: Arc<FsCore>| async move {
        for id in IDS {
            let inq = core.lookup(INQUIRIES, id).await.unwrap();
            let doc = core.lookup(inq.ino, "document").await.unwrap();
            assert!(!core.readdir(doc.ino).await.unwrap().is_empty());
        }
    };
    walk(m.core.clone()).await;
    assert_eq!(m.calls(Call::Retrieve), IDS.len() as u64);
    m.stored(&IDS).await;
    // Later than the TTL, no fresh listing: the approved inquiries that left memory come
    // back from the store, as they would have stayed in memory without the bound.
    disk.clock.advance(2 * ttl);
    walk(m.core.clone()).await;
    assert_eq!(m.calls(Call::Retrieve), IDS.len() as u64, "retrieved again");
}

#[tokio::test]
async fn after_a_remount_a_listing_older_than_the_ttl_still_vouches_for_final_inquiries() {
    let mem = api();
    assert!(mem.set_status("inq_c", "pending"));
    let disk = Disk::new();
    let before = first_mount(&disk, &mem).await;
    let ttl = Duration::from_secs(60);
    // The TTL's rules, as when Persona refuses search (deltas: `deltas.rs`).
    let second = disk.core(
        &mem,
        CoreConfig {
            metadata_ttl: ttl,
            deltas: None,
            ..config()
        },
    );
    // The listing is taken (as `find` reads inquiries/ once), then ages past the TTL before
    // the walk reaches the inquiries.
    second.core.readdir(INQUIRIES).await.unwrap();
    // The stored listing answered; the new one is taken in the background.
    wait_for("the listing taken", || {
        second.calls(Call::List) == 1 && second.core.listing_progress().is_none()
    })
    .await;
    disk.clock.advance(2 * ttl);
    for id in IDS {
        let inq = second.core.lookup(INQUIRIES, id).await.unwrap();
        let doc = second.core.lookup(inq.ino, "document").await.unwrap();
        let names: Vec<String> = second
            .core
            .readdir(doc.ino)
            .await
            .unwrap()
            .iter()
            .map(|e| format!("{id}/document/{}", e.name))
            .collect();
        assert!(!names.is_empty());
        assert!(names.iter().all(|n| before.contains_key(n)), "{names:?}");
    }
    // inq_a and inq_b (approved) come from the store; inq_c (pending) is checked again, by
    // the TTL's rule.
    assert_eq!(second.calls(Call::Retrieve), 1, "only the pending inquiry");
    assert_eq!(second.calls(Call::List), 1);
    assert_eq!(second.calls(Call::Download), 0);
}

#[tokio::test]
async fn offline_a_view_with_valid_urls_does_not_try_the_files_host() {
    let disk = Disk::new();
    let m = disk.core(&api(), config());
    // Online: the view is retrieved, with URLs good for hours; nothing is downloaded yet.
    let inq = m.core.lookup(INQUIRIES, "inq_b").await.unwrap();
    let doc = m.core.lookup(inq.ino, "document").await.unwrap();
    let file = m.core.lookup(doc.ino, "doc_2-statement.pdf").await.unwrap();
    assert_eq!(m.calls(Call::Retrieve), 1);
    // Persona goes away (its files host with it): the breaker opens.
    unplug(&m);
    m.core.start_offline();
    let e = read(&m.core, file.ino).await.unwrap_err();
    assert_eq!(crate::errno_of(&e), libc::EIO);
    assert_eq!(m.calls(Call::Download), 0, "the files host was tried");
    assert_eq!(m.calls(Call::Head), 0);
}

#[tokio::test]
async fn a_redaction_in_the_listing_hides_the_files_of_a_view_in_memory() {
    let mem = api();
    let disk = Disk::new();
    let ttl = Duration::from_secs(60);
    let m = disk.core(
        &mem,
        CoreConfig {
            metadata_ttl: ttl,
            ..config()
        },
    );
    // Approved (final): its view in memory is never retrieved again just because it aged.
    copy_all(&m.core).await;
    let retrieves = m.calls(Call::Retrieve);
    assert!(mem.redact("inq_a"));
    disk.clock.advance(ttl);
    m.core.readdir(INQUIRIES).await.unwrap();
    let inq = m.core.lookup(INQUIRIES, "inq_a").await.unwrap();
    for section in ["document", "selfie"] {
        let dir = m.core.lookup(inq.ino, section).await.unwrap();
        assert!(
            m.core.readdir(dir.ino).await.unwrap().is_empty(),
            "{section}"
        );
    }
    assert_eq!(m.calls(Call::Retrieve), retrieves + 1, "inq_a only");
}

#[tokio::test]
async fn stat_of_inquiries_never_lists_again() {
    let mem = api();
    let disk = Disk::new();
    let ttl = Duration::from_secs(60);
    let m = disk.core(
        &mem,
        CoreConfig {
            metadata_ttl: ttl,
            ..config()
        },
    );
    m.core.readdir(INQUIRIES).await.unwrap();
    assert_eq!(m.calls(Call::List), 1);
    disk.clock.advance(ttl * 2);
    let attr = m.core.getattr(INQUIRIES).await.unwrap();
    assert_eq!(attr.nlink, 2 + IDS.len() as u32, "from the listing at hand");
    assert_eq!(
        m.calls(Call::List),
        1,
        "a stale listing is good enough for a stat"
    );
    m.core.readdir(INQUIRIES).await.unwrap();
    assert_eq!(m.calls(Call::List), 2, "readdir lists again after the TTL");
}
