//! Listings being read. personafs answers no `opendir` (ENOSYS once, and the kernel opens
//! every directory itself from then on, keeping what it reads in its directory cache: a walk
//! saves an `opendir` and a `releasedir` per directory), so `readdir` comes with an offset
//! alone. Offset 0 takes the listing as it is now (the core refreshes a stale one first); a
//! later offset pages through the one taken at 0, so a listing read in several replies is
//! one listing. It goes when the read reaches its end (the kernel's last request finds
//! nothing more), and at most `KEPT` are kept; that of `inquiries/` is kept apart, as a
//! walk reads thousands of directories while reading it.

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use crate::metadata::Entries;
use crate::metadata::inode::INQUIRIES;

/// Listings kept for paging: the directories being read at once, with room to spare.
const KEPT: usize = 256;

/// A listing taken at offset 0.
pub(crate) struct DirSnapshot {
    pub(crate) ino: u64,
    pub(crate) parent: u64,
    pub(crate) entries: Entries,
}

pub(crate) struct Dirs {
    /// `inquiries/`'s apart: it is the one read over many requests, and a walk (`find`
    /// reads it 100,000 entries at a time) reads thousands of directories in between.
    inquiries: Mutex<Option<Arc<DirSnapshot>>>,
    taken: Mutex<LruCache<u64, Arc<DirSnapshot>>>,
}

impl Dirs {
    pub(crate) fn new() -> Dirs {
        Dirs {
            inquiries: Mutex::new(None),
            taken: Mutex::new(LruCache::new(NonZeroUsize::new(KEPT).expect("KEPT > 0"))),
        }
    }

    /// The listing of `snapshot.ino` from now on, for the offsets after 0.
    pub(crate) fn take(&self, snapshot: DirSnapshot) -> Arc<DirSnapshot> {
        let snapshot = Arc::new(snapshot);
        if snapshot.ino == INQUIRIES {
            *self.inquiries.lock() = Some(snapshot.clone());
        } else {
            self.taken.lock().put(snapshot.ino, snapshot.clone());
        }
        snapshot
    }

    /// The listing of `ino` taken last, if it is still kept.
    pub(crate) fn get(&self, ino: u64) -> Option<Arc<DirSnapshot>> {
        if ino == INQUIRIES {
            return self.inquiries.lock().clone();
        }
        self.taken.lock().get(&ino).cloned()
    }

    /// `snapshot` was read to its end (the kernel's last request of a read finds nothing
    /// more): it goes, so a replaced listing is not held for a read that is over.
    pub(crate) fn finished(&self, snapshot: &Arc<DirSnapshot>) {
        if snapshot.ino == INQUIRIES {
            let mut kept = self.inquiries.lock();
            if kept.as_ref().is_some_and(|s| Arc::ptr_eq(s, snapshot)) {
                *kept = None;
            }
            return;
        }
        let mut taken = self.taken.lock();
        if taken
            .peek(&snapshot.ino)
            .is_some_and(|s| Arc::ptr_eq(s, snapshot))
        {
            taken.pop(&snapshot.ino);
        }
    }

    /// Listings kept now.
    pub(crate) fn len(&self) -> usize {
        self.taken.lock().len() + usize::from(self.inquiries.lock().is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(ino: u64) -> DirSnapshot {
        DirSnapshot {
            ino,
            parent: INQUIRIES,
            entries: Entries::Listed(Vec::new()),
        }
    }

    #[test]
    fn the_listing_of_inquiries_outlasts_any_number_of_directories_read_meanwhile() {
        let dirs = Dirs::new();
        let listing = dirs.take(snapshot(INQUIRIES));
        let first = dirs.take(snapshot(100));
        for ino in 101..101 + 2 * KEPT as u64 {
            dirs.take(snapshot(ino));
        }
        assert!(Arc::ptr_eq(&dirs.get(INQUIRIES).unwrap(), &listing));
        assert!(dirs.get(100).is_none(), "the least recent small one went");
        assert_eq!(dirs.len(), KEPT + 1, "bounded");
        drop(first);

        // A read that ends lets its listing go, not a newer one taken meanwhile.
        let newer = dirs.take(snapshot(INQUIRIES));
        dirs.finished(&listing);
        assert!(Arc::ptr_eq(&dirs.get(INQUIRIES).unwrap(), &newer));
        dirs.finished(&newer);
        assert!(dirs.get(INQUIRIES).is_none());
    }
}
