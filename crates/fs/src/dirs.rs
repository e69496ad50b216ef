//! Open directories: the entries taken at `opendir`, so paging through them with `readdir`
//! is consistent and costs nothing; `.` and `..` come first.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::metadata::Entries;

/// A listing taken at `opendir`.
pub(crate) struct DirSnapshot {
    pub(crate) ino: u64,
    pub(crate) parent: u64,
    pub(crate) entries: Entries,
}

pub(crate) struct Dirs {
    open: Mutex<HashMap<u64, Arc<DirSnapshot>>>,
    next_fh: AtomicU64,
}

impl Dirs {
    pub(crate) fn new() -> Dirs {
        Dirs {
            open: Mutex::new(HashMap::new()),
            // Directory handles live apart from file handles; the high bit keeps them apart.
            next_fh: AtomicU64::new(1 << 63),
        }
    }

    pub(crate) fn open(&self, snapshot: DirSnapshot) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.open.lock().insert(fh, Arc::new(snapshot));
        fh
    }

    pub(crate) fn get(&self, fh: u64) -> Option<Arc<DirSnapshot>> {
        self.open.lock().get(&fh).cloned()
    }

    pub(crate) fn release(&self, fh: u64) {
        self.open.lock().remove(&fh);
    }

    pub(crate) fn len(&self) -> usize {
        self.open.lock().len()
    }
}
