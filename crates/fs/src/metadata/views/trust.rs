//! When a view is good enough to answer without asking Persona: in memory by its age or a
//! delta's vouch, and from the store when Persona confirmed it (a delta, a fresh listing's
//! `updated-at`, a check within the TTL) or cannot be reached. A final inquiry's stored
//! view is confirmed by a listing of any age (unless a change came since, which makes the
//! listing stale): in memory it would never be checked again either.

use std::sync::Arc;
use std::time::SystemTime;

use super::{Need, Views};
use crate::metadata::listing::Vouch;
use crate::metadata::view::InquiryView;

/// How much a stored view must have been confirmed by Persona to be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trust {
    /// Vouched for by a delta, or confirmed within the metadata TTL (Persona is reachable:
    /// otherwise retrieve), for this need.
    Confirmed(Need),
    /// Any age (Persona cannot be reached: the last view seen is the best answer).
    Offline,
}

impl Views {
    /// Whether a delta is due before `view` can be vouched for.
    pub(super) fn vouch_due(&self, view: &InquiryView) -> bool {
        self.listing
            .vouch_state(self.listed_updated(view).is_some())
            == Vouch::Due
    }

    /// `updated-at` the listing holds for `view`'s inquiry (`None`: not listed).
    pub(super) fn listed_updated(&self, view: &InquiryView) -> Option<Option<SystemTime>> {
        self.listing.current().and_then(|l| l.updated(&view.id))
    }

    /// `is_fresh`, taking a delta first when one is due: the vouch a request asked for can
    /// run out before it looks at its view (a TTL of a second or two, a busy walk).
    pub(super) async fn fresh_vouching(&self, view: &InquiryView, need: Need) -> bool {
        for _ in 0..2 {
            if self.is_fresh(view, need) {
                return true;
            }
            if !matches!(need, Need::Metadata | Need::Open) || !self.vouch_due(view) {
                return false;
            }
            self.listing.vouch().await;
        }
        self.is_fresh(view, need)
    }

    /// What deltas say of `view`: `Some(true)` when one within the TTL vouches for it (and
    /// the listing, if it holds the inquiry, reports nothing newer), `Some(false)` when one
    /// is due, `None` when deltas cannot say (the view's age then decides).
    pub(super) fn vouched(&self, view: &InquiryView) -> Option<bool> {
        let listed = self.listed_updated(view);
        match self.listing.vouch_state(listed.is_some()) {
            Vouch::Fresh => Some(match listed {
                Some(Some(u)) => view.updated.is_some_and(|v| v >= u),
                _ => true,
            }),
            Vouch::Due => Some(false),
            Vouch::Unknown => None,
        }
    }

    /// Whether `view` is good enough for `need`, without asking Persona again.
    pub(super) fn is_fresh(&self, view: &InquiryView, need: Need) -> bool {
        if !view.redacted && self.listing.shows_redacted(&view.id) {
            return false; // redacted since: retrieved again, which applies the redaction
        }
        let age = self.clock.since(view.fetched_at);
        match need {
            Need::Metadata | Need::Open if !view.complete => age < self.negative_ttl,
            Need::Metadata | Need::Open if let Some(vouched) = self.vouched(view) => vouched,
            Need::Metadata => view.is_final() || age < self.metadata_ttl,
            Need::Open => age < self.metadata_ttl,
            // A stored view has no URLs: anything that needs one retrieves.
            Need::Urls => view.has_urls && age < self.url_budget,
            Need::NewerThan(t) => view.has_urls && view.fetched_at > t,
        }
    }

    /// The stored view of `id` if `trust` allows showing it, loaded off the async threads.
    pub(super) async fn stored(&self, id: &Arc<str>, trust: Trust) -> Option<Arc<InquiryView>> {
        let store = self.store.as_ref()?.store().clone();
        let key = id.to_string();
        let found = self
            .rt
            .spawn_blocking(move || -> Result<_, crate::store::StoreError> {
                let Some(stored) = store.get_inquiry(&key)? else {
                    return Ok(None);
                };
                let stale = store.stale_since(&key)?;
                Ok(store
                    .get_inquiry_json(&key)?
                    .map(|json| (stored, json, stale)))
            })
            .await
            .ok()?
            .inspect_err(
                |e| tracing::warn!(inquiry = %id, "metadata store: cannot read a view: {e}"),
            )
            .ok()??;
        let (stored, json, stale) = found;
        let checked_at = stored.checked_at;
        let view = InquiryView::from_stored(stored, json, self.clock.now());
        let stale = stale.is_some_and(|at| view.updated.is_none_or(|u| u < at));
        if matches!(trust, Trust::Confirmed(_)) && !stale && self.vouch_due(&view) {
            // The vouch this request asked for ran out meanwhile (a short TTL): a delta, not
            // a retrieve.
            self.listing.vouch().await;
        }
        let trusted = match trust {
            Trust::Offline => true,
            // A delta vouches for it unless one reported it changed since it was stored.
            Trust::Confirmed(_) if stale => false,
            Trust::Confirmed(_) if let Some(vouched) = self.vouched(&view) => vouched,
            // A fresh listing decides: the same `updated-at` confirms the view, another one
            // means it changed. Without one, a view checked within the TTL is still good.
            Trust::Confirmed(need) => match self.confirmation(id, view.is_final()).await {
                Some((listed, at)) if Some(listed) == view.updated => {
                    self.mark_checked(id, at);
                    true
                }
                Some(_) => false,
                // A final inquiry this mount retrieved or confirmed is trusted as it would be
                // in memory (it only left memory for the bound): a long walk does not retrieve
                // again what it saw minutes ago.
                None => {
                    (self.clock.system().duration_since(checked_at))
                        .is_ok_and(|age| age < self.metadata_ttl)
                        || (view.is_final()
                            && checked_at >= self.started
                            && !matches!(need, Need::Open))
                }
            },
        };
        if !trusted {
            return None;
        }
        tracing::trace!(inquiry = %id, ?trust, "view loaded from the metadata store");
        Some(Arc::new(view))
    }

    /// `updated-at` of `id` in a fresh listing, waiting for one under way (a remount lists
    /// again while it answers from the stored listing): a page of the listing is far cheaper
    /// than retrieving every inquiry again.
    /// A final inquiry's view is confirmed by any listing Persona gave this mount: after a
    /// remount, a walk longer than the TTL would otherwise retrieve every final inquiry it
    /// reaches once the listing has aged.
    pub(super) async fn confirmation(
        &self,
        id: &str,
        is_final: bool,
    ) -> Option<(SystemTime, SystemTime)> {
        if let Some(c) = self.listing.confirmed_updated(id) {
            return Some(c);
        }
        self.listing.settled().await;
        self.listing.confirmed_updated(id).or_else(|| {
            is_final
                .then(|| self.listing.confirmed_updated_any_age(id))
                .flatten()
        })
    }

    /// A listing confirmed the stored view: note when, in the background.
    pub(super) fn mark_checked(&self, id: &Arc<str>, at: SystemTime) {
        let Some(writer) = &self.store else { return };
        let id = id.to_string();
        writer.write(move |store| {
            if let Err(e) = store.mark_checked(&id, at) {
                tracing::warn!(inquiry = %id, "metadata store: cannot mark a view checked: {e}");
            }
        });
    }
}
