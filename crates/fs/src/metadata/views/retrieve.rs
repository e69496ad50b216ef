//! A retrieve of one inquiry (sizes learnt by HEAD where Persona gives none), and what
//! follows it: saved token-free to the store in the background, or, for a redacted
//! inquiry, its cached files and stored rows deleted before the reply.

use std::sync::Arc;
use std::time::SystemTime;

use futures::StreamExt;

use super::Views;
use crate::metadata::listing::forget_redacted_unless_applied;
use crate::metadata::persist::StoreWriter;
use crate::metadata::shared;
use crate::metadata::view::InquiryView;
use personafs_client::files_of;

impl Views {
    /// Retrieve `id`; `why` says in the debug log what made it necessary.
    pub(super) async fn retrieve(
        &self,
        id: &str,
        previous: Option<&InquiryView>,
        why: &'static str,
    ) -> personafs_client::Result<Arc<InquiryView>> {
        let fetched_at = self.clock.now();
        tracing::debug!(inquiry = %id, why, previous = previous.is_some(), "retrieving inquiry");
        let inquiry = self.api.retrieve_inquiry(id).await?;
        let files = files_of(&inquiry);
        // Sizes: `byte-size`, else what the previous view learnt, else a HEAD (in parallel).
        let sized = futures::stream::iter(files.into_iter().map(|f| async move {
            let known = f.size.or_else(|| {
                previous
                    .and_then(|p| p.file(f.section, &f.name))
                    .filter(|old| old.object_id == f.object_id && old.role == f.role)
                    .map(|old| old.size)
            });
            let size = match known {
                Some(s) => Some(s),
                None => match self.api.file_size(&f.url).await {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::warn!(inquiry = %id, file = %f.name, status = ?e.status(),
                            "file left out for now: its size cannot be learned: {e}");
                        None
                    }
                },
            };
            (f, size)
        }))
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
        // A file without an exact size is not shown (an empty file would be copied as the
        // document); the view is then retrieved again soon to try once more.
        let complete = sized.iter().all(|(_, s)| s.is_some());
        let sized: Vec<_> = sized
            .into_iter()
            .filter_map(|(f, s)| s.map(|s| (f, s)))
            .collect();
        let mut view = InquiryView::new(&inquiry, fetched_at, sized);
        view.complete = complete;
        if self.shared.is_some() {
            view = shared::with_stripped_json(view);
        }
        let view = Arc::new(view);
        tracing::debug!(inquiry = %id, files = view.files.len(), status = ?view.status,
            redacted = view.redacted, "inquiry retrieved");
        if view.redacted {
            self.apply_redaction(&view).await;
        } else {
            self.save(&view);
        }
        Ok(view)
    }

    /// Save a retrieved view token-free, in the background (the reply never waits for it).
    pub(super) fn save(&self, view: &InquiryView) {
        let Some(writer) = &self.store else { return };
        if !view.complete {
            return; // a file is missing for now: the next retrieve saves the whole view
        }
        self.write_back(writer, view, self.clock.system());
    }

    /// Store `view`, confirmed at `checked`, in the background; a view retrieved (or shared)
    /// before a redaction purged its inquiry is never written back.
    pub(super) fn write_back(&self, writer: &StoreWriter, view: &InquiryView, checked: SystemTime) {
        let stored = view.to_stored(checked);
        let json = view.json.clone();
        let cache = self.cache.clone();
        writer.write(move |store| {
            if cache.was_purged(&stored.id) {
                return;
            }
            if let Err(e) = store.put_inquiry_with_json(&stored, &json) {
                tracing::warn!(inquiry = %stored.id, "metadata store: cannot save a view: {e}");
            }
        });
    }

    /// A redacted inquiry: its cached files and file rows go before the reply.
    pub(super) async fn apply_redaction(&self, view: &Arc<InquiryView>) {
        let cache = self.cache.clone();
        let id = view.id.to_string();
        match &self.store {
            Some(writer) => {
                // Its files and file rows go before the reply; what is left is what the
                // redacted body shows (no files), so a remount or an offline mount shows
                // the inquiry empty without asking again.
                let empty = view.to_stored(self.clock.system());
                let json = view.json.clone();
                writer
                    .write_and_wait(move |store| {
                        forget_redacted_unless_applied(store, &cache, &id);
                        if let Err(e) = store.put_inquiry_with_json(&empty, &json) {
                            tracing::warn!(inquiry = %id, "metadata store: cannot save a redacted view: {e}");
                        }
                    })
                    .await;
            }
            None => {
                let purged = self
                    .rt
                    .spawn_blocking(move || cache.purge_inquiry(&id))
                    .await
                    .unwrap_or(0);
                if purged > 0 {
                    tracing::info!(inquiry = %view.id, purged, "inquiry is redacted; its cached files were deleted");
                }
            }
        }
    }
}
