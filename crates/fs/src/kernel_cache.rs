//! What the kernel keeps of the mount, and when it must let go: the subtlest correctness
//! rule of personafs (a redacted file must not stay listed or `stat`-able from the kernel's
//! caches).
//!
//! - **Directory entries.** personafs answers `opendir` with ENOSYS, so the kernel keeps
//!   what it reads of a directory until told otherwise. When every entry of a directory has
//!   been handed over, a fingerprint of them (names, inode numbers, kinds; for
//!   `inquiries/`, which listing) is recorded. When the kernel asks about the directory
//!   again (its attributes, a lookup), its copy is dropped unless the entries at hand now
//!   have the same fingerprint; entries not at hand (due a refresh) drop it too, so the
//!   next read refreshes them. A change personafs sees (a new listing, a changed view, a
//!   forgotten entry, whose number would change) drops it at once: a listing taken, or a
//!   delta that moves it, drops `inquiries/`, the views' listings and the directories of
//!   each inquiry it newly shows redacted.
//! - **`inquiry.json`'s pages** are kept across opens while its bytes have the same
//!   fingerprint (`FOPEN_KEEP_CACHE`).
//! - **Names and attributes** are given for `--attr-ttl`, or for what belongs to a final
//!   inquiry, which changes only by a redaction, for the metadata TTL ([`Ttls`]). A
//!   redaction drops the inquiry's entry in `inquiries/`, and with it everything the kernel
//!   holds under it.
//!
//! Dropping goes through [`KernelCaches`] (the FUSE session's notifier). An entry is dropped
//! on a blocking thread and never from inside a request: the kernel holds the directory
//! while personafs answers it, and waiting for the drop there deadlocks.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;

use crate::counters::Counters;
use crate::metadata::Attr;

/// The kernel's caches of names and attributes, as far as personafs can reach them.
pub trait KernelCaches: Send + Sync {
    /// Drop the kernel's entry `name` of directory `parent` and everything under it.
    /// Blocks; never call it from a FUSE request's thread.
    fn forget_entry(&self, parent: u64, name: &str);
    /// Drop the kernel's copy of directory `dir`'s entries: its next read asks personafs.
    /// Takes no lock a request holds while it waits for personafs, so any thread may call it.
    fn forget_listing(&self, dir: u64);
}

/// What the kernel was given to keep, and the way to make it let go.
pub(crate) struct KernelCache {
    /// Inode → fingerprint of what the kernel keeps of it (a directory's entries,
    /// `inquiry.json`'s bytes). Absent: nothing known.
    shown: Mutex<HashMap<u64, u64>>,
    kernel: OnceLock<Arc<dyn KernelCaches>>,
    counters: Arc<Counters>,
}

impl KernelCache {
    pub(crate) fn new(counters: Arc<Counters>) -> KernelCache {
        KernelCache {
            shown: Mutex::default(),
            kernel: OnceLock::new(),
            counters,
        }
    }

    /// Where drops go (the FUSE session's notifier), once the session exists.
    pub(crate) fn connect(&self, kernel: Arc<dyn KernelCaches>) {
        let _ = self.kernel.set(kernel);
    }

    /// Every entry of directory `ino` was handed over: the kernel keeps them.
    pub(crate) fn listed(&self, ino: u64, fingerprint: u64) {
        self.set(ino, fingerprint);
    }

    /// `inquiry.json` `ino` is opened with bytes of `fingerprint`: whether the kernel's
    /// pages of it may be kept (they hold the same bytes). They are recorded either way.
    pub(crate) fn keeps_pages(&self, ino: u64, fingerprint: u64) -> bool {
        let same = fingerprint != 0 && self.shown.lock().get(&ino) == Some(&fingerprint);
        self.set(ino, fingerprint);
        same
    }

    /// Whether the kernel holds a copy of directory `ino`'s entries.
    pub(crate) fn holds(&self, ino: u64) -> bool {
        self.shown.lock().contains_key(&ino)
    }

    /// The kernel asks about directory `ino`; `now` is the fingerprint of the entries a
    /// read would give at once (`None`: not at hand, a read would refresh them). Its copy
    /// goes unless it is the same.
    pub(crate) fn check_listing(&self, ino: u64, now: Option<u64>) {
        let held = self.shown.lock().get(&ino).copied();
        if held.is_some() && now != held {
            self.drop_listing(ino);
        }
    }

    /// Tell the kernel to drop its copy of directory `ino`'s entries, if it holds one.
    pub(crate) fn drop_listing(&self, ino: u64) {
        if self.shown.lock().remove(&ino).is_none() {
            return;
        }
        self.counters.dir_drops.fetch_add(1, Ordering::Relaxed);
        if let Some(kernel) = self.kernel.get() {
            kernel.forget_listing(ino);
        }
    }

    /// The kernel forgot inode `ino` for good: nothing of it is kept.
    pub(crate) fn forgotten(&self, ino: u64) {
        self.shown.lock().remove(&ino);
    }

    /// Drop the kernel's entry `name` of directory `parent` (and all under it), on a
    /// blocking thread of `rt`.
    pub(crate) async fn drop_entry(&self, rt: &tokio::runtime::Handle, parent: u64, name: String) {
        let Some(kernel) = self.kernel.get().cloned() else {
            return;
        };
        let _ = rt
            .spawn_blocking(move || kernel.forget_entry(parent, &name))
            .await;
    }

    fn set(&self, ino: u64, fingerprint: u64) {
        let mut shown = self.shown.lock();
        if fingerprint == 0 {
            shown.remove(&ino);
        } else {
            shown.insert(ino, fingerprint);
        }
    }
}

/// How long the kernel may keep names and attributes: `--attr-ttl`, or for what belongs to a
/// final inquiry (which changes only by a redaction, checked at every open) as long as
/// personafs itself trusts a view, the metadata TTL. A warm walk then asks personafs no
/// lookup. An `--attr-ttl` of 0 (no kernel caching) holds for everything.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ttls {
    attr: Duration,
    settled: Duration,
}

impl Ttls {
    pub(crate) fn new(attr: Duration, metadata: Duration) -> Ttls {
        let settled = if attr.is_zero() {
            attr
        } else {
            attr.max(metadata)
        };
        Ttls { attr, settled }
    }

    pub(crate) fn of(&self, a: &Attr) -> Duration {
        if a.settled { self.settled } else { self.attr }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Kind;

    use crate::testing::Told;

    fn cache() -> (KernelCache, Arc<Told>) {
        let k = KernelCache::new(Arc::default());
        let told = Arc::new(Told::default());
        k.connect(told.clone());
        (k, told)
    }

    #[test]
    fn a_listing_is_kept_while_the_entries_at_hand_are_the_same() {
        let (k, told) = cache();
        k.check_listing(5, None);
        assert!(told.0.lock().is_empty(), "nothing held, nothing to drop");
        k.listed(5, 77);
        k.check_listing(5, Some(77));
        assert!(told.0.lock().is_empty(), "same entries: kept");
        k.check_listing(5, Some(78));
        assert_eq!(*told.0.lock(), [5], "changed entries: dropped");
        k.check_listing(5, Some(78));
        assert_eq!(*told.0.lock(), [5], "dropped once");
        k.listed(5, 78);
        k.check_listing(5, None);
        assert_eq!(*told.0.lock(), [5, 5], "due a refresh: dropped");
        assert_eq!(k.counters.dir_drops.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_forgotten_or_unnumbered_listing_is_not_held() {
        let (k, told) = cache();
        k.listed(5, 0); // an entry had no number: nothing the kernel keeps can be checked
        assert!(!k.holds(5));
        k.listed(6, 9);
        k.forgotten(6);
        k.drop_listing(6);
        assert!(told.0.lock().is_empty());
    }

    #[test]
    fn json_pages_are_kept_only_for_the_same_bytes() {
        let (k, _) = cache();
        assert!(!k.keeps_pages(9, 1), "first open: the kernel reads it");
        assert!(k.keeps_pages(9, 1), "same bytes: kept");
        assert!(!k.keeps_pages(9, 2), "new bytes: dropped");
        assert!(!k.keeps_pages(9, 0), "no fingerprint: never kept");
        assert!(!k.keeps_pages(9, 0));
    }

    #[test]
    fn settled_nodes_are_kept_as_long_as_views_are_trusted_unless_kernel_caching_is_off() {
        let (attr, metadata) = (Duration::from_secs(5), Duration::from_secs(60));
        let a = |settled| Attr {
            ino: 9,
            kind: Kind::File,
            size: 1,
            perm: 0o444,
            nlink: 1,
            uid: 0,
            gid: 0,
            mtime: std::time::UNIX_EPOCH,
            settled,
        };
        let t = Ttls::new(attr, metadata);
        assert_eq!(t.of(&a(true)), metadata);
        assert_eq!(t.of(&a(false)), attr);
        let longer = Ttls::new(Duration::from_secs(600), metadata);
        assert_eq!(
            longer.of(&a(true)),
            Duration::from_secs(600),
            "never shorter than --attr-ttl"
        );
        let off = Ttls::new(Duration::ZERO, metadata);
        assert_eq!(off.of(&a(true)), Duration::ZERO);
    }
}
