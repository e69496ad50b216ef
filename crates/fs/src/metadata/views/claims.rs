//! Views shared with the other mounts of an environment (`--shared-state`): one mount
//! retrieves an inquiry while the others wait for its view (a claim in Redis), and a
//! fresh shared view answers without a retrieve. URLs never leave a host. A mount that
//! finds the claim taken waits (at most 5 minutes, `MAX_WAIT` in the client) for a view
//! other than the one it could not use, and claims again when the claim goes without one,
//! at most `CLAIM_ROUNDS` times, then retrieves regardless. A shared view showing a
//! redaction deletes this mount's cached files of it, as a retrieve would.

use std::sync::Arc;

use super::{Need, Views};
use crate::metadata::shared;
use crate::metadata::view::InquiryView;
use personafs_client::shared_state::{Claim, SharedViews, holding};

/// How many times a mount tries to claim an inquiry another mount held and let go without a
/// view it can use, before it retrieves regardless.
const CLAIM_ROUNDS: usize = 3;

impl Views {
    /// A view for `need`: retrieved, or, for names and sizes with shared state, another
    /// mount's (or retrieved by this one alone among the mounts, then shared).
    pub(super) async fn obtain(
        &self,
        id: &Arc<str>,
        need: Need,
        previous: Option<&InquiryView>,
    ) -> personafs_client::Result<Arc<InquiryView>> {
        let Some(views) = &self.shared else {
            return self.retrieve(id, previous, "not shared").await;
        };
        if !matches!(need, Need::Metadata | Need::Open) {
            // URLs never leave a host: retrieve, and share the token-free rest.
            let view = self.retrieve(id, previous, "urls").await?;
            self.publish(views.as_ref(), &view).await;
            return Ok(view);
        }
        // The view in Redis, if any, that cannot answer here (too old): a claim's holder is
        // making a newer one, which is what a waiter waits for.
        let mut seen = views.fetch(id).await;
        if let Some(view) = self.adopt(id, seen.as_deref()).await {
            return Ok(view);
        }
        for _ in 0..CLAIM_ROUNDS {
            match views.claim(id).await {
                Claim::Mine(lease) => {
                    // Another mount may have published and released between our look and
                    // our claim: look once more before spending a retrieve.
                    if let Some(view) = self.adopt(id, views.fetch(id).await.as_deref()).await {
                        views.release(lease).await;
                        return Ok(view);
                    }
                    // Renewed while the retrieve waits for the request budget.
                    let why = if seen.is_some() {
                        "claimed; the shared view is too old"
                    } else {
                        "claimed; nothing shared"
                    };
                    let retrieved =
                        holding(views.as_ref(), &lease, self.retrieve(id, previous, why)).await;
                    if let Ok(view) = &retrieved {
                        self.publish(views.as_ref(), view).await;
                    }
                    views.release(lease).await;
                    return retrieved;
                }
                Claim::Taken => {
                    if let Some(bytes) = views.wait_for(id, seen.as_deref()).await {
                        if let Some(view) = self.adopt(id, Some(&bytes)).await {
                            return Ok(view);
                        }
                        seen = Some(bytes);
                    }
                    // The holder gave up without a view this mount can use: claim again
                    // rather than every waiter retrieving at once.
                }
                Claim::Unavailable => break,
            }
        }
        self.retrieve(id, previous, "no claim").await
    }

    pub(super) async fn publish(&self, views: &dyn SharedViews, view: &InquiryView) {
        // When it was retrieved, not now: its age goes with it.
        let checked = self.clock.system() - self.clock.since(view.fetched_at);
        if let Some(bytes) = shared::encode(view, checked) {
            views.publish(&view.id, &bytes).await;
        }
    }

    /// Another mount's view of `id`, if it may answer for names and sizes here: fresh within
    /// the metadata TTL and not older than this mount's listing says the inquiry is. A
    /// redacted one is applied here as a retrieve's would be (cached files deleted).
    pub(super) async fn adopt(
        &self,
        id: &Arc<str>,
        bytes: Option<&[u8]>,
    ) -> Option<Arc<InquiryView>> {
        let (view, checked) = shared::decode(id, bytes?, &self.clock)?;
        if !self.is_fresh(&view, Need::Metadata) {
            tracing::debug!(inquiry = %id, age = ?self.clock.since(view.fetched_at), status = ?view.status,
                "the shared view is too old here");
            return None;
        }
        if let Some((listed, _)) = self.listing.confirmed_updated(id)
            && view.updated.is_none_or(|seen| seen < listed)
        {
            tracing::debug!(inquiry = %id, "the shared view is older than the listing");
            return None;
        }
        tracing::trace!(inquiry = %id, "view taken from the shared state");
        let view = Arc::new(view);
        if view.redacted {
            self.apply_redaction(&view).await;
        } else if let Some(writer) = &self.store {
            self.write_back(writer, &view, checked);
        }
        Some(view)
    }
}
