//! Changes Persona announces (the events feed, `feed.rs`, and the binary's webhook receiver):
//! which event names change what a mount shows, and applying one. Both sources go through
//! `FsCore::apply_event` → `FsCore::apply_change`, so they have the same effect.

pub(crate) mod feed;

use std::future::Future;

use personafs_client::Event;

use crate::error::FsResult;
use crate::metadata::listing::plausible_inquiry_id;

/// Where the feed's changes go (the core). The feed sees the filesystem through this alone,
/// so it does not depend on the core that owns it.
pub(crate) trait ChangeTarget: Sync {
    /// Persona cannot be reached (the circuit breaker is open): nothing is asked.
    fn is_offline(&self) -> bool;
    /// Apply `event` if it changes what the mount shows; whether it did.
    fn apply_event(&self, event: &Event) -> impl Future<Output = bool> + Send;
    /// Events were missed: check the whole listing instead.
    fn full_check(&self) -> impl Future<Output = FsResult<()>> + Send;
}

/// What an event means for a mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new inquiry: the listing is stale (it shows up in `inquiries/` at the next readdir).
    Appeared(String),
    /// Something about the inquiry changed (status, a document, a verification): the listing
    /// and its view are stale.
    Changed(String),
    /// The inquiry was redacted: its view, stored view and cached files go at once, and its
    /// files are ENOENT from then on.
    Redacted(String),
}

impl Change {
    pub fn inquiry_id(&self) -> &str {
        match self {
            Change::Appeared(id) | Change::Changed(id) | Change::Redacted(id) => id,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Appeared,
    Changed,
    Redacted,
}

/// The events that change what a mount shows, by name (Persona's OpenAPI spec, webhook
/// events). Any other name is ignored.
const EVENTS: &[(&str, Effect)] = &[
    ("inquiry.created", Effect::Appeared),
    ("inquiry.started", Effect::Changed),
    ("inquiry.completed", Effect::Changed),
    ("inquiry.approved", Effect::Changed),
    ("inquiry.declined", Effect::Changed),
    ("inquiry.failed", Effect::Changed),
    ("inquiry.expired", Effect::Changed),
    ("inquiry.marked-for-review", Effect::Changed),
    ("inquiry.transitioned", Effect::Changed),
    ("inquiry.redacted", Effect::Redacted),
    ("document.created", Effect::Changed),
    ("document.submitted", Effect::Changed),
    ("document.processed", Effect::Changed),
    ("document.errored", Effect::Changed),
    ("document.extracted", Effect::Changed),
    ("selfie.created", Effect::Changed),
    ("selfie.submitted", Effect::Changed),
    ("selfie.processed", Effect::Changed),
    ("selfie.errored", Effect::Changed),
    ("verification.created", Effect::Changed),
    ("verification.submitted", Effect::Changed),
    ("verification.passed", Effect::Changed),
    ("verification.failed", Effect::Changed),
    ("verification.requires-retry", Effect::Changed),
    ("verification.canceled", Effect::Changed),
    ("verification.skipped", Effect::Changed),
];

/// The event names the feed asks for (`filter[name]`).
pub(crate) fn watched_names() -> Vec<String> {
    EVENTS.iter().map(|(n, _)| n.to_string()).collect()
}

/// What `event` changes, if anything a mount shows.
pub fn change_of(event: &Event) -> Option<Change> {
    let Some((_, effect)) = EVENTS.iter().find(|(n, _)| *n == event.name) else {
        tracing::debug!(event = %event.id, name = %event.name, "event ignored: not one that changes the mount");
        return None;
    };
    let Some(id) = event
        .inquiry_id
        .as_deref()
        .filter(|id| plausible_inquiry_id(id))
    else {
        tracing::debug!(event = %event.id, name = %event.name, "event ignored: no inquiry id");
        return None;
    };
    let id = id.to_string();
    Some(match effect {
        Effect::Appeared => Change::Appeared(id),
        Effect::Changed => Change::Changed(id),
        Effect::Redacted => Change::Redacted(id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, inquiry: Option<&str>) -> Event {
        Event {
            id: "evt_1".into(),
            name: name.into(),
            created_at: None,
            object_type: Some("inquiry".into()),
            object_id: inquiry.map(str::to_string),
            inquiry_id: inquiry.map(str::to_string),
        }
    }

    #[test]
    fn event_names_map_to_changes() {
        let id = Some("inq_1");
        assert_eq!(
            change_of(&event("inquiry.created", id)),
            Some(Change::Appeared("inq_1".into()))
        );
        assert_eq!(
            change_of(&event("inquiry.redacted", id)),
            Some(Change::Redacted("inq_1".into()))
        );
        for name in [
            "inquiry.approved",
            "document.processed",
            "verification.passed",
        ] {
            assert_eq!(
                change_of(&event(name, id)),
                Some(Change::Changed("inq_1".into())),
                "{name}"
            );
        }
        assert_eq!(change_of(&event("account.created", id)), None);
        assert_eq!(change_of(&event("inquiry.redacted", None)), None);
        assert_eq!(change_of(&event("inquiry.redacted", Some("../x"))), None);
        assert_eq!(watched_names().len(), EVENTS.len());
    }
}
