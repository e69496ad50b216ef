//! Downloads in progress, by inquiry: a purge (a redaction) deletes their temp files at once,
//! and a commit that comes after it keeps nothing.

use std::collections::HashMap;
use std::path::PathBuf;

struct Temp {
    inquiry_id: String,
    /// The named temp file while a purge may delete it; `None` once a commit took it over
    /// (or for an unnamed one).
    path: Option<PathBuf>,
    purged: bool,
}

/// Temp files of downloads in progress, kept under the cache's state lock, so a purge and a
/// commit of the same download are ordered.
#[derive(Default)]
pub(super) struct Temps {
    next: u64,
    by_serial: HashMap<u64, Temp>,
}

impl Temps {
    pub(super) fn add(&mut self, inquiry_id: &str, path: Option<PathBuf>) -> u64 {
        self.next += 1;
        self.by_serial.insert(
            self.next,
            Temp {
                inquiry_id: inquiry_id.to_string(),
                path,
                purged: false,
            },
        );
        self.next
    }

    pub(super) fn remove(&mut self, serial: u64) {
        self.by_serial.remove(&serial);
    }

    /// Mark the inquiry's downloads purged; returns the temp files to delete now.
    pub(super) fn purge(&mut self, inquiry_id: &str) -> Vec<PathBuf> {
        self.by_serial
            .values_mut()
            .filter(|t| t.inquiry_id == inquiry_id)
            .filter_map(|t| {
                t.purged = true;
                t.path.take()
            })
            .collect()
    }

    /// A commit takes the temp file over (a purge no longer deletes it: the commit does);
    /// `false` when it was purged.
    pub(super) fn claim(&mut self, serial: u64) -> bool {
        match self.by_serial.get_mut(&serial) {
            Some(t) if !t.purged => {
                t.path = None;
                true
            }
            _ => false,
        }
    }

    pub(super) fn purged(&self, serial: u64) -> bool {
        self.by_serial.get(&serial).is_none_or(|t| t.purged)
    }
}
