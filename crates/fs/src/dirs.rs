//! Listings being read. personafs answers no `opendir`: the kernel opens directories itself
//! (saving a request and its `releasedir` per directory of a walk) and `readdir` comes with
//! an offset alone. Offset 0 takes the listing as it is now; a later offset pages through
//! the one taken at 0, so a listing read in several replies is one listing.

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use crate::metadata::Entries;

/// Listings kept for paging: the directories being read at once, with room to spare.
const KEPT: usize = 256;

/// A listing taken at offset 0.
pub(crate) struct DirSnapshot {
    pub(crate) ino: u64,
    pub(crate) parent: u64,
    pub(crate) entries: Entries,
}

pub(crate) struct Dirs {
    taken: Mutex<LruCache<u64, Arc<DirSnapshot>>>,
}

impl Dirs {
    pub(crate) fn new() -> Dirs {
        Dirs {
            taken: Mutex::new(LruCache::new(NonZeroUsize::new(KEPT).expect("KEPT > 0"))),
        }
    }

    /// The listing of `snapshot.ino` from now on, for the offsets after 0.
    pub(crate) fn take(&self, snapshot: DirSnapshot) -> Arc<DirSnapshot> {
        let snapshot = Arc::new(snapshot);
        self.taken.lock().put(snapshot.ino, snapshot.clone());
        snapshot
    }

    /// The listing of `ino` taken last, if it is still kept.
    pub(crate) fn get(&self, ino: u64) -> Option<Arc<DirSnapshot>> {
        self.taken.lock().get(&ino).cloned()
    }

    /// `snapshot` was read to its end (the kernel's last request of a read finds nothing
    /// more): it goes, so a replaced listing is not held for a read that is over.
    pub(crate) fn finished(&self, snapshot: &Arc<DirSnapshot>) {
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
        self.taken.lock().len()
    }
}
