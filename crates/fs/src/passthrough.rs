//! Whether an open is answered with a kernel backing file (FUSE passthrough) or served by
//! personafs. The kernel keeps an inode in one io mode at a time: while any handle of an
//! inode is open through personafs ("cached" mode), a passthrough open fails, and while a
//! passthrough handle is open, every other open must be passthrough too, with the same
//! backing id. So both kinds of open are counted per inode. `B` is the kernel's backing id
//! (fuser's `BackingId`); registering one is left to the caller.
//!
//! A backing id outlives its handles: the most recently used ones are kept, each with the
//! serial of the cache entry it was made from, so opening a warm file again is answered
//! without opening the cache file or registering it with the kernel again. A kept backing
//! goes when its entry leaves the cache (`entry_removed`), so it never holds on to a
//! deleted file's disk space or serves an entry that is gone.

use std::collections::HashMap;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lru::LruCache;
use parking_lot::Mutex;

/// Backing ids kept after their last handle: a walk of this many files opens each again at
/// no cost. Each holds an open file in the kernel (well under a KiB of kernel memory).
pub const KEEP: usize = 4096;

/// What an open offers for passthrough: the verified cache entry it reads (its serial),
/// and that entry's file unless the opener knew a backing of it is kept.
pub struct Offer<'a> {
    pub serial: u64,
    pub file: Option<BorrowedFd<'a>>,
}

/// The backing of an inode with passthrough handles open.
struct Live<B> {
    id: Arc<B>,
    serial: u64,
    opens: usize,
}

struct Backings<B> {
    live: HashMap<u64, Live<B>>,
    /// Passthrough handles: fh → inode.
    live_fhs: HashMap<u64, u64>,
    /// Backing ids by inode, with their entry's serial, kept after their handles.
    kept: LruCache<u64, (Arc<B>, u64)>,
    kept_by_serial: HashMap<u64, u64>,
    /// Handles served by personafs itself: fh → inode, and open count per inode.
    cached_fhs: HashMap<u64, u64>,
    cached_opens: HashMap<u64, usize>,
}

impl<B> Backings<B> {
    fn new(keep: usize) -> Backings<B> {
        Backings {
            live: HashMap::new(),
            live_fhs: HashMap::new(),
            kept: LruCache::new(NonZeroUsize::new(keep.max(1)).expect("at least 1")),
            kept_by_serial: HashMap::new(),
            cached_fhs: HashMap::new(),
            cached_opens: HashMap::new(),
        }
    }

    fn choose(
        &mut self,
        ino: u64,
        fh: u64,
        offer: Option<Offer<'_>>,
        register: impl FnOnce(BorrowedFd<'_>) -> io::Result<B>,
    ) -> io::Result<Option<Arc<B>>> {
        if let Some(live) = self.live.get_mut(&ino) {
            live.opens += 1;
            self.live_fhs.insert(fh, ino);
            return Ok(Some(live.id.clone()));
        }
        let chosen = match offer {
            Some(offer) if !self.cached_opens.contains_key(&ino) => {
                let kept = self.kept.get(&ino).filter(|(_, s)| *s == offer.serial);
                match (kept.map(|(id, _)| id.clone()), offer.file) {
                    (Some(id), _) => Some((id, offer.serial)),
                    (None, Some(fd)) => {
                        let id = Arc::new(register(fd)?);
                        self.keep(ino, offer.serial, id.clone());
                        Some((id, offer.serial))
                    }
                    (None, None) => None,
                }
            }
            _ => None,
        };
        match chosen {
            Some((id, serial)) => {
                let live = Live {
                    id: id.clone(),
                    serial,
                    opens: 1,
                };
                self.live.insert(ino, live);
                self.live_fhs.insert(fh, ino);
                Ok(Some(id))
            }
            None => {
                self.cached_fhs.insert(fh, ino);
                *self.cached_opens.entry(ino).or_insert(0) += 1;
                Ok(None)
            }
        }
    }

    fn keep(&mut self, ino: u64, serial: u64, id: Arc<B>) {
        if let Some((_, (_, old))) = self.kept.push(ino, (id, serial)) {
            self.kept_by_serial.remove(&old);
        }
        self.kept_by_serial.insert(serial, ino);
    }

    fn keeps(&self, ino: u64, serial: u64) -> bool {
        self.live.get(&ino).is_some_and(|l| l.serial == serial)
            || self.kept.peek(&ino).is_some_and(|(_, s)| *s == serial)
    }

    /// The kept backing of entry `serial`, taken out (to be dropped by the caller).
    fn forget(&mut self, serial: u64) -> Option<Arc<B>> {
        let ino = self.kept_by_serial.remove(&serial)?;
        match self.kept.peek(&ino) {
            Some((_, s)) if *s == serial => self.kept.pop(&ino).map(|(id, _)| id),
            _ => None,
        }
    }

    fn release(&mut self, fh: u64) {
        if let Some(ino) = self.live_fhs.remove(&fh) {
            if let Some(live) = self.live.get_mut(&ino) {
                live.opens -= 1;
                if live.opens == 0 {
                    self.live.remove(&ino);
                }
            }
        } else if let Some(ino) = self.cached_fhs.remove(&fh)
            && let Some(n) = self.cached_opens.get_mut(&ino)
        {
            *n -= 1;
            if *n == 0 {
                self.cached_opens.remove(&ino);
            }
        }
    }
}

/// The passthrough decision for every open of a mount.
pub struct Passthrough<B> {
    /// Whether the kernel accepted FUSE passthrough (and it has not failed since).
    enabled: AtomicBool,
    backings: Mutex<Backings<B>>,
}

impl<B> Default for Passthrough<B> {
    fn default() -> Self {
        Passthrough::keeping(KEEP)
    }
}

impl<B> Passthrough<B> {
    /// Keeping up to `keep` backing ids after their handles.
    pub fn keeping(keep: usize) -> Self {
        Passthrough {
            enabled: AtomicBool::new(false),
            backings: Mutex::new(Backings::new(keep)),
        }
    }

    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Whether an open of `ino` reading cache entry `serial` would get a backing id without
    /// offering the entry's file.
    pub fn keeps(&self, ino: u64, serial: u64) -> bool {
        self.enabled.load(Ordering::Relaxed) && self.backings.lock().keeps(ino, serial)
    }

    /// The backing id to answer open `fh` of `ino` with, or `None` to serve it ourselves.
    /// `offer` is the complete cache entry, when there is one; `register` makes its file a
    /// backing id. A refused registration turns passthrough off for the rest of the mount.
    pub fn choose(
        &self,
        ino: u64,
        fh: u64,
        offer: Option<Offer<'_>>,
        register: impl FnOnce(BorrowedFd<'_>) -> io::Result<B>,
    ) -> Option<Arc<B>> {
        let offer = offer.filter(|_| self.enabled.load(Ordering::Relaxed));
        let mut backings = self.backings.lock();
        match backings.choose(ino, fh, offer, register) {
            Ok(id) => id,
            Err(e) => {
                self.enabled.store(false, Ordering::Relaxed);
                tracing::warn!(
                    "FUSE passthrough refused ({e}); serving cached files through personafs from now on"
                );
                backings.kept.clear();
                backings.kept_by_serial.clear();
                backings
                    .choose(ino, fh, None, |_| Err(io::Error::other("off")))
                    .ok()
                    .flatten()
            }
        }
    }

    /// Handle `fh` was closed.
    pub fn release(&self, fh: u64) {
        self.backings.lock().release(fh);
    }

    /// Cache entry `serial` was deleted: its kept backing goes (open handles keep theirs).
    pub fn entry_removed(&self, serial: u64) {
        let dropped = self.backings.lock().forget(serial);
        drop(dropped); // closes the backing id, outside the lock
    }

    /// How many backing ids are kept.
    pub fn kept(&self) -> usize {
        self.backings.lock().kept.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::os::fd::AsFd;

    fn file() -> File {
        tempfile::tempfile().unwrap()
    }

    /// Entry `serial`, with its file.
    fn with_file(f: &File, serial: u64) -> Option<Offer<'_>> {
        Some(Offer {
            serial,
            file: Some(f.as_fd()),
        })
    }

    /// Entry `serial`, its file not opened (the opener trusted `keeps`).
    fn without_file(serial: u64) -> Option<Offer<'static>> {
        Some(Offer { serial, file: None })
    }

    #[test]
    fn an_inode_stays_in_one_io_mode_while_open() {
        let p: Passthrough<u32> = Passthrough::default();
        p.set_enabled(true);
        let f = file();
        // Served by personafs first: a later complete file of the same inode is too.
        assert!(p.choose(7, 1, None, |_| Ok(1)).is_none());
        assert!(p.choose(7, 2, with_file(&f, 1), |_| Ok(1)).is_none());
        p.release(1);
        p.release(2);
        // Now passthrough; a second open shares the backing id even without a file.
        let id = p.choose(7, 3, with_file(&f, 1), |_| Ok(42)).unwrap();
        assert_eq!(*id, 42);
        let again = p.choose(7, 4, None, |_| Ok(0)).unwrap();
        assert!(Arc::ptr_eq(&id, &again));
    }

    #[test]
    fn a_refused_backing_turns_passthrough_off() {
        let p: Passthrough<u32> = Passthrough::default();
        p.set_enabled(true);
        let f = file();
        assert!(
            p.choose(1, 1, with_file(&f, 1), |_| Err(io::Error::other("no")))
                .is_none()
        );
        assert!(p.choose(2, 2, with_file(&f, 2), |_| Ok(5)).is_none());
        assert_eq!(p.kept(), 0);
    }

    #[test]
    fn a_backing_is_kept_after_its_handles_and_reused_for_the_same_entry() {
        let p: Passthrough<u32> = Passthrough::default();
        p.set_enabled(true);
        let f = file();
        assert!(!p.keeps(7, 1));
        let id = p.choose(7, 1, with_file(&f, 1), |_| Ok(42)).unwrap();
        p.release(1);
        assert!(p.keeps(7, 1), "kept after the last handle");
        assert!(!p.keeps(7, 2), "not for another entry of the same name");
        assert!(!p.keeps(8, 1), "nor for another inode");
        // Opened again without the file: the kept id answers, nothing is registered.
        let again = p
            .choose(7, 2, without_file(1), |_| panic!("registered again"))
            .unwrap();
        assert!(Arc::ptr_eq(&id, &again));
        drop(again);
        p.release(2);
        // The entry was cached again (a new serial): a new backing id, the old one dropped.
        let new = p.choose(7, 3, with_file(&f, 2), |_| Ok(43)).unwrap();
        assert_eq!(*new, 43);
        p.release(3);
        assert!(p.keeps(7, 2) && !p.keeps(7, 1));
        assert_eq!(Arc::strong_count(&id), 1, "only the test holds the old id");
        assert_eq!(p.kept(), 1);
    }

    #[test]
    fn a_removed_entry_takes_its_kept_backing_with_it() {
        let p: Passthrough<u32> = Passthrough::default();
        p.set_enabled(true);
        let f = file();
        let id = p.choose(7, 1, with_file(&f, 5), |_| Ok(42)).unwrap();
        // Removed while open: the open handle keeps it, nothing is kept after.
        p.entry_removed(5);
        assert_eq!(p.kept(), 0);
        assert!(p.keeps(7, 5), "still live for the open handle");
        p.release(1);
        assert!(!p.keeps(7, 5));
        assert_eq!(Arc::strong_count(&id), 1, "closed once the test drops it");
        // Without a kept backing and without the file, the open is served by personafs.
        assert!(p.choose(7, 2, without_file(5), |_| Ok(1)).is_none());
        p.release(2);
        // Removing an entry that was never kept, or twice, changes nothing.
        let _id = p.choose(9, 3, with_file(&f, 6), |_| Ok(44)).unwrap();
        p.release(3);
        p.entry_removed(5);
        p.entry_removed(77);
        assert!(p.keeps(9, 6));
    }

    #[test]
    fn kept_backings_are_bounded_least_recently_used_first() {
        let p: Passthrough<u32> = Passthrough::keeping(2);
        p.set_enabled(true);
        let f = file();
        for ino in 1..=3u64 {
            p.choose(ino, ino, with_file(&f, ino * 10), |_| Ok(ino as u32))
                .unwrap();
            p.release(ino);
            if ino == 2 {
                // Inode 1 used again: inode 2 is now the least recently used.
                p.choose(1, 100, without_file(10), |_| panic!("registered again"))
                    .unwrap();
                p.release(100);
            }
        }
        assert_eq!(p.kept(), 2);
        assert!(p.keeps(1, 10) && p.keeps(3, 30) && !p.keeps(2, 20));
        // The evicted one's serial no longer maps to anything.
        p.entry_removed(20);
        assert_eq!(p.kept(), 2);
    }

    #[test]
    fn nothing_is_kept_or_reused_when_passthrough_is_off() {
        let p: Passthrough<u32> = Passthrough::default();
        let f = file();
        assert!(p.choose(7, 1, with_file(&f, 1), |_| Ok(1)).is_none());
        p.release(1);
        assert!(!p.keeps(7, 1));
        assert_eq!(p.kept(), 0);
    }
}
