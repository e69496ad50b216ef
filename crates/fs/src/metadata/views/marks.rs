//! What events said of inquiries, beyond what the views in memory show. A changed inquiry
//! is retrieved again on next use, never taken from the store, until a retrieve started
//! after the change; a redacted one is served only by a view showing the redaction.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

type ChangeHook = Box<dyn Fn(&Arc<str>) + Send + Sync>;

#[derive(Default)]
pub(super) struct Marks {
    /// Inquiries an event said changed, with the number of that change.
    changed: Mutex<HashMap<Arc<str>, u64>>,
    changes: AtomicU64,
    /// Inquiries an event said were redacted.
    redacted: Mutex<HashSet<Arc<str>>>,
    /// Told of each inquiry whose view was retrieved again or dropped by a change.
    on_change: OnceLock<ChangeHook>,
}

impl Marks {
    pub(super) fn on_change(&self, hook: impl Fn(&Arc<str>) + Send + Sync + 'static) {
        let _ = self.on_change.set(Box::new(hook));
    }

    /// Tell the hook that `id`'s view may have changed.
    pub(super) fn tell(&self, id: &Arc<str>) {
        if let Some(hook) = self.on_change.get() {
            hook(id);
        }
    }

    /// An event said `id` changed.
    pub(super) fn note_change(&self, id: &Arc<str>) {
        let n = self.changes.fetch_add(1, Ordering::SeqCst) + 1;
        self.changed.lock().insert(id.clone(), n);
    }

    /// The number of the last change announced for `id` not yet seen by a retrieve.
    pub(super) fn change_of(&self, id: &Arc<str>) -> Option<u64> {
        self.changed.lock().get(id).copied()
    }

    /// A retrieve that started after change `n` of `id` ended: that change is seen. One
    /// announced during the retrieve stays to be seen.
    pub(super) fn seen(&self, id: &Arc<str>, n: u64) {
        let mut changed = self.changed.lock();
        if changed.get(id) == Some(&n) {
            changed.remove(id);
        }
    }

    /// An event said `id` was redacted (a change too).
    pub(super) fn mark_redacted(&self, id: &Arc<str>) {
        self.redacted.lock().insert(id.clone());
        self.note_change(id);
    }

    pub(super) fn is_redacted(&self, id: &str) -> bool {
        self.redacted.lock().contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_announced_during_a_retrieve_stays_to_be_seen() {
        let m = Marks::default();
        let id: Arc<str> = Arc::from("inq_1");
        m.note_change(&id);
        let first = m.change_of(&id).unwrap();
        m.note_change(&id); // announced while the retrieve that saw `first` ran
        m.seen(&id, first);
        assert!(m.change_of(&id).is_some());
        let second = m.change_of(&id).unwrap();
        m.seen(&id, second);
        assert_eq!(m.change_of(&id), None);
        assert!(!m.is_redacted("inq_1"));
        m.mark_redacted(&id);
        assert!(m.is_redacted("inq_1") && m.change_of(&id).is_some());
    }
}
