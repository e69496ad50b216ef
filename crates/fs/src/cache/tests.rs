use super::*;
use std::io::Write;
use std::os::unix::fs::FileExt;

fn key(i: u32, size: u64) -> CacheKey {
    CacheKey {
        inquiry_id: format!("inq_{}", i % 3),
        object_id: format!("doc_{i}"),
        name: "front-photo.jpg".into(),
        size,
    }
}

fn put(cache: &Arc<DiskCache>, k: &CacheKey, byte: u8) -> bool {
    let data = vec![byte; k.size as usize];
    let mut t = cache.begin(k).unwrap();
    t.file.write_all(&data).unwrap();
    cache.commit(t, Checksum::of(&data)).unwrap()
}

fn limits(max: u64) -> CacheLimits {
    CacheLimits {
        max_size: max,
        min_free: 0.0,
        max_age: None,
    }
}

#[test]
fn bounded_lru_evicts_least_recent_and_spares_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::open_dir(dir.path(), limits(3000)).unwrap();
    for i in 0..3 {
        assert!(put(&cache, &key(i, 1000), i as u8));
    }
    let pinned = cache.open(&key(0, 1000)).unwrap(); // touch 0: now 1 is the oldest
    assert!(put(&cache, &key(3, 1000), 3));
    assert!(!cache.contains(&key(1, 1000)));
    assert!(cache.contains(&key(0, 1000)));
    assert!(cache.stats().bytes <= 3000);
    // Everything but the pinned entry may go; a file larger than the cache is refused.
    assert!(!put(&cache, &key(9, 3001), 9));
    assert!(put(&cache, &key(4, 2000), 4));
    assert!(cache.contains(&key(0, 1000)));
    let mut b = [0u8; 10];
    pinned.file.read_at(&mut b, 0).unwrap();
    assert_eq!(b, [0u8; 10]);
}

#[test]
fn persists_across_reopen_and_detects_tampering() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cache = DiskCache::open_dir(dir.path(), limits(1 << 20)).unwrap();
        assert!(put(&cache, &key(1, 500), 7));
        assert!(put(&cache, &key(2, 500), 8));
    }
    // Alter one entry behind the cache's back, keeping its length.
    let victim = dir.path().join("data").join(key(2, 500).digest());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .unwrap()
        .write_all_at(b"X", 10)
        .unwrap();
    // A half-written download left by a crash.
    std::fs::write(dir.path().join("tmp").join("junk"), b"partial").unwrap();
    let cache = DiskCache::open_dir(dir.path(), limits(1 << 20)).unwrap();
    assert_eq!(cache.stats().entries, 2);
    assert!(cache.open(&key(1, 500)).is_some());
    assert!(
        cache.open(&key(2, 500)).is_none(),
        "tampered entry must not be served"
    );
    assert!(!victim.exists());
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}

#[test]
fn private_permissions_and_hashed_names() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("c");
    let cache = DiskCache::open_dir(&root, limits(1 << 20)).unwrap();
    assert!(put(&cache, &key(1, 100), 1));
    for d in [&root, &root.join("data"), &root.join("tmp")] {
        assert_eq!(
            std::fs::metadata(d).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
    for e in std::fs::read_dir(root.join("data")).unwrap() {
        let e = e.unwrap();
        assert_eq!(e.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        let name = e.file_name().into_string().unwrap();
        assert!(!name.contains("inq_") && !name.contains("doc_"), "{name}");
    }
}

#[test]
fn purge_inquiry_and_wrong_length_commit() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::open_dir(dir.path(), limits(1 << 20)).unwrap();
    for i in 0..6 {
        assert!(put(&cache, &key(i, 10), 1));
    }
    assert_eq!(cache.purge_inquiry("inq_0"), 2);
    assert_eq!(cache.stats().entries, 4);
    let mut t = cache.begin(&key(7, 10)).unwrap();
    t.file.write_all(b"short").unwrap();
    assert!(cache.commit(t, String::new()).is_err());
    assert!(!cache.contains(&key(7, 10)));
    assert_eq!(cache.clear(), 4);
}

#[test]
fn downloads_in_progress_count_against_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::open_dir(dir.path(), limits(1000)).unwrap();
    let first = cache.begin(&key(1, 600)).unwrap();
    assert!(first.cacheable());
    // No room beside the first: the second streams through an unnamed file.
    let second = cache.begin(&key(2, 600)).unwrap();
    assert!(!second.cacheable());
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        1
    );
    assert!(!cache.commit(second, String::new()).unwrap());
    drop(first); // abandoned: its reservation is released
    let third = cache.begin(&key(3, 900)).unwrap();
    assert!(third.cacheable());
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        1
    );
}

#[test]
fn max_age_prunes_old_entries() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cache = DiskCache::open_dir(dir.path(), limits(1 << 20)).unwrap();
        assert!(put(&cache, &key(1, 10), 1));
        // Cached two seconds ago (its time is in whole seconds), rather than waiting for it.
        let digest = key(1, 10).digest();
        let mut meta = EntryMeta::read(&cache.meta_path(&digest)).unwrap();
        meta.cached_at -= 2;
        meta.write(&cache.meta_path(&digest), &cache.tmp_dir)
            .unwrap();
    }
    let aged = CacheLimits {
        max_age: Some(std::time::Duration::ZERO),
        ..limits(1 << 20)
    };
    let cache = DiskCache::open_dir(dir.path(), aged).unwrap();
    assert_eq!(
        cache.stats().entries,
        0,
        "an entry older than max_age survived the start"
    );
}

#[test]
fn a_second_owner_is_refused_with_the_first_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let mount = CacheLock::for_mount(&root, Path::new("/mnt/first")).unwrap();
    for second in [
        CacheLock::for_mount(&root, Path::new("/mnt/second")),
        CacheLock::for_command(&root, "cache clear"),
    ] {
        let LockError::Busy(busy) = second.unwrap_err() else {
            panic!("not refused as busy");
        };
        let owner = busy.owner.clone().expect("the holder is named");
        assert_eq!(owner.pid, std::process::id());
        assert_eq!(owner.mountpoint.as_deref(), Some(Path::new("/mnt/first")));
        let line = busy.to_string();
        assert_eq!(
            line,
            format!(
                "cache directory {} is in use by the personafs mount at /mnt/first (pid {})",
                root.display(),
                std::process::id()
            )
        );
    }
    // `holder` sees it without taking it away or creating anything.
    assert_eq!(
        CacheLock::holder(&root)
            .unwrap()
            .unwrap()
            .owner
            .unwrap()
            .what,
        "mount"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(root.join(LOCK_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(mount);
    // Released: free for the next one, whose record replaces the stale one.
    assert!(CacheLock::holder(&root).unwrap().is_none());
    let clear = CacheLock::for_command(&root, "cache clear").unwrap();
    let busy = CacheLock::holder(&root).unwrap().unwrap();
    assert_eq!(busy.owner.as_ref().unwrap().mountpoint, None);
    assert!(busy.to_string().ends_with(&format!(
        "in use by `personafs cache clear` (pid {})",
        std::process::id()
    )));
    drop(clear);
}

#[test]
fn holder_of_a_directory_never_locked_is_none_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("absent");
    assert!(CacheLock::holder(&root).unwrap().is_none());
    assert!(!root.exists());
    assert_eq!(scan(&root).unwrap(), ScanStats::default());
    assert!(!root.exists());
}

#[test]
fn scan_counts_without_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::open_dir(dir.path(), limits(1 << 20)).unwrap();
    for i in 0..3 {
        assert!(put(&cache, &key(i, 1000 + i as u64), 1));
    }
    // A download in progress, and an entry whose data file lost bytes.
    let mut partial = cache.begin(&key(10, 5000)).unwrap();
    partial.file.write_all(&[7u8; 1234]).unwrap();
    let damaged = dir.path().join("data").join(key(2, 1002).digest());
    fs::File::options()
        .write(true)
        .open(&damaged)
        .unwrap()
        .set_len(10)
        .unwrap();
    let listing = |sub: &str| {
        let mut names: Vec<_> = fs::read_dir(dir.path().join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = (listing("data"), listing("tmp"));
    let s = scan(dir.path()).unwrap();
    assert_eq!(
        s,
        ScanStats {
            entries: 2,
            bytes: 2001,
            temp_files: 1,
            temp_bytes: 1234,
        }
    );
    assert_eq!((listing("data"), listing("tmp")), before);
    assert_eq!(fs::metadata(&damaged).unwrap().len(), 10);
    drop(partial);
}

#[test]
fn each_entry_has_its_own_serial_and_its_removal_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::open_dir(dir.path(), limits(2000)).unwrap();
    let removed = Arc::new(Mutex::new(Vec::new()));
    let told = removed.clone();
    cache.on_remove(move |serial| told.lock().push(serial));

    assert!(put(&cache, &key(0, 1000), 0));
    assert!(put(&cache, &key(1, 1000), 1));
    let s0 = cache.pin_verified(&key(0, 1000)).unwrap().serial; // 0 is now the most recent
    let s1 = cache.pin_verified(&key(1, 1000)).unwrap().serial;
    assert_ne!(s0, s1);
    assert_eq!(cache.open(&key(0, 1000)).unwrap().entry.serial, s0);
    assert!(cache.pin_verified(&key(7, 1000)).is_none());

    // Evicted to make room: told, after its file is gone.
    assert!(put(&cache, &key(2, 1000), 2));
    assert_eq!(*removed.lock(), vec![s1]);
    assert!(!dir.path().join("data").join(key(1, 1000).digest()).exists());

    // Cached again: a new serial for the same digest.
    assert!(put(&cache, &key(1, 1000), 1));
    let again = cache.pin_verified(&key(1, 1000)).unwrap().serial;
    assert!(again != s1 && again != s0);

    // Purged (a redaction) and cleared: told too.
    removed.lock().clear();
    let purged = cache.purge_inquiry(&key(1, 1000).inquiry_id);
    assert_eq!(purged, 1);
    assert_eq!(*removed.lock(), vec![again]);
    cache.clear();
    assert_eq!(removed.lock().len(), 2, "{:?}", removed.lock());
}

#[test]
fn an_entry_not_yet_verified_has_no_serial_to_trust() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cache = DiskCache::open_dir(dir.path(), limits(1 << 20)).unwrap();
        assert!(put(&cache, &key(1, 500), 7));
    }
    // After a restart the entry is checked at its first open, not before.
    let cache = DiskCache::open_dir(dir.path(), limits(1 << 20)).unwrap();
    assert!(cache.pin_verified(&key(1, 500)).is_none());
    let opened = cache.open(&key(1, 500)).unwrap();
    assert_eq!(
        cache.pin_verified(&key(1, 500)).map(|p| p.serial),
        Some(opened.entry.serial)
    );
}

#[test]
fn an_entry_pinned_without_its_file_is_spared_like_an_open_one() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::open_dir(dir.path(), limits(2000)).unwrap();
    assert!(put(&cache, &key(0, 1000), 0));
    assert!(put(&cache, &key(1, 1000), 1));
    let pinned = cache.pin_verified(&key(0, 1000)).unwrap();
    assert_eq!(
        Some(pinned.serial),
        cache.pin_verified(&key(0, 1000)).map(|p| p.serial)
    );
    assert!(cache.pin_verified(&key(5, 1000)).is_none());
    // Pinning counted as a use: 1 is the least recently used and goes.
    assert!(put(&cache, &key(2, 1000), 2));
    assert!(cache.contains(&key(0, 1000)) && !cache.contains(&key(1, 1000)));
    // Now 0 is the least recently used, but pinned: the newer 2 goes instead.
    assert!(put(&cache, &key(3, 1000), 3));
    assert!(cache.contains(&key(0, 1000)) && !cache.contains(&key(2, 1000)));
    // Unpinned, it goes first again.
    drop(pinned);
    assert!(put(&cache, &key(4, 1000), 4));
    assert!(!cache.contains(&key(0, 1000)) && cache.contains(&key(3, 1000)));
}

fn tmp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("tmp")).unwrap().count()
}

#[test]
fn a_purge_deletes_the_temp_files_of_downloads_in_progress_and_their_commit_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::open_dir(dir.path(), limits(1 << 20)).unwrap();
    let told = Arc::new(Mutex::new(Vec::new()));
    let t = told.clone();
    cache.on_purge(move |id| t.lock().push(id.to_string()));
    // Two downloads of inq_1 under way (one before its bytes, one finished and about to be
    // committed), one of inq_2.
    let (a, b, other) = (key(1, 100), key(4, 100), key(2, 100));
    let mut ta = cache.begin(&a).unwrap();
    let mut tb = cache.begin(&b).unwrap();
    let mut to = cache.begin(&other).unwrap();
    for t in [&mut ta, &mut tb, &mut to] {
        t.file.write_all(&[5; 100]).unwrap();
    }
    assert_eq!(tmp_files(dir.path()), 3);
    assert!(!cache.was_purged("inq_1"));

    assert_eq!(cache.purge_inquiry("inq_1"), 0);
    assert_eq!(
        *told.lock(),
        vec!["inq_1".to_string()],
        "the downloads were told first"
    );
    assert!(cache.was_purged("inq_1"));
    assert_eq!(tmp_files(dir.path()), 1, "its temp files went at once");
    // A commit after the purge caches nothing; the other inquiry's is cached.
    assert!(!cache.commit(ta, Checksum::of(&[5; 100])).unwrap());
    drop(tb);
    assert!(cache.commit(to, Checksum::of(&[5; 100])).unwrap());
    assert!(!cache.contains(&a) && cache.contains(&other));
    assert_eq!(tmp_files(dir.path()), 0);
    let data = std::fs::read_dir(dir.path().join("data")).unwrap().count();
    assert_eq!(data, 2, "one entry: its data and meta files");
    // Nothing was reserved for good: the whole cache is still there to use.
    assert!(put(&cache, &key(8, (1 << 20) - 100), 1));
}
