//! Whether an open is answered with a kernel backing file (FUSE passthrough) or served by
//! personafs. The kernel keeps an inode in one io mode at a time: while any handle of an
//! inode is open through personafs ("cached" mode), a passthrough open fails, and while a
//! passthrough handle is open, every other open must be passthrough too, with the same
//! backing id. So both kinds of open are counted per inode. `B` is the kernel's backing id
//! (fuser's `BackingId`); registering one is left to the caller.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

struct Backings<B> {
    by_ino: HashMap<u64, Weak<B>>,
    by_fh: HashMap<u64, Arc<B>>,
    /// Handles served by personafs itself: fh → inode, and open count per inode.
    cached_fhs: HashMap<u64, u64>,
    cached_opens: HashMap<u64, usize>,
}

impl<B> Default for Backings<B> {
    fn default() -> Self {
        Backings {
            by_ino: HashMap::new(),
            by_fh: HashMap::new(),
            cached_fhs: HashMap::new(),
            cached_opens: HashMap::new(),
        }
    }
}

impl<B> Backings<B> {
    fn choose(
        &mut self,
        ino: u64,
        fh: u64,
        file: Option<&File>,
        register: impl FnOnce(&File) -> io::Result<B>,
    ) -> io::Result<Option<Arc<B>>> {
        let id = match self.by_ino.get(&ino).and_then(Weak::upgrade) {
            Some(id) => Some(id),
            None => match file {
                Some(file) if !self.cached_opens.contains_key(&ino) => {
                    let id = Arc::new(register(file)?);
                    self.by_ino.insert(ino, Arc::downgrade(&id));
                    Some(id)
                }
                _ => None,
            },
        };
        match &id {
            Some(id) => {
                self.by_fh.insert(fh, id.clone());
            }
            None => {
                self.cached_fhs.insert(fh, ino);
                *self.cached_opens.entry(ino).or_insert(0) += 1;
            }
        }
        Ok(id)
    }

    fn release(&mut self, fh: u64) {
        if self.by_fh.remove(&fh).is_some() {
            self.by_ino.retain(|_, w| w.strong_count() > 0);
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
        Passthrough {
            enabled: AtomicBool::new(false),
            backings: Mutex::new(Backings::default()),
        }
    }
}

impl<B> Passthrough<B> {
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// The backing id to answer open `fh` of `ino` with, or `None` to serve it ourselves.
    /// `file` is the complete cache file, when there is one; `register` makes it a backing
    /// id. A refused registration turns passthrough off for the rest of the mount.
    pub fn choose(
        &self,
        ino: u64,
        fh: u64,
        file: Option<File>,
        register: impl FnOnce(&File) -> io::Result<B>,
    ) -> Option<Arc<B>> {
        let file = file.filter(|_| self.enabled.load(Ordering::Relaxed));
        let mut backings = self.backings.lock();
        match backings.choose(ino, fh, file.as_ref(), register) {
            Ok(id) => id,
            Err(e) => {
                self.enabled.store(false, Ordering::Relaxed);
                tracing::warn!(
                    "FUSE passthrough refused ({e}); serving cached files through personafs from now on"
                );
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> File {
        tempfile::tempfile().unwrap()
    }

    #[test]
    fn an_inode_stays_in_one_io_mode_while_open() {
        let p: Passthrough<u32> = Passthrough::default();
        p.set_enabled(true);
        // Served by personafs first: a later complete file of the same inode is too.
        assert!(p.choose(7, 1, None, |_| Ok(1)).is_none());
        assert!(p.choose(7, 2, Some(file()), |_| Ok(1)).is_none());
        p.release(1);
        p.release(2);
        // Now passthrough; a second open shares the backing id even without a file.
        let id = p.choose(7, 3, Some(file()), |_| Ok(42)).unwrap();
        assert_eq!(*id, 42);
        let again = p.choose(7, 4, None, |_| Ok(0)).unwrap();
        assert!(Arc::ptr_eq(&id, &again));
    }

    #[test]
    fn a_refused_backing_turns_passthrough_off() {
        let p: Passthrough<u32> = Passthrough::default();
        p.set_enabled(true);
        assert!(
            p.choose(1, 1, Some(file()), |_| Err(io::Error::other("no")))
                .is_none()
        );
        assert!(p.choose(2, 2, Some(file()), |_| Ok(5)).is_none());
    }
}
