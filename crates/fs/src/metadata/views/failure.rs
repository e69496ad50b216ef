//! What a failed retrieve answers. A missing inquiry is remembered for the negative TTL
//! (no request for it meanwhile) and leaves no cell. Names and sizes do not go bad, so for
//! metadata and opens the last view answers rather than an error; with Persona unreachable
//! and nothing in memory, the stored view answers whatever its age.

use std::sync::Arc;

use super::trust::Trust;
use super::{Cell, Need, Views};
use crate::breaker::unreachable;
use crate::error::{FsError, FsResult};
use crate::metadata::view::InquiryView;

impl Views {
    /// The answer to a view of `id` whose retrieve failed with `e`; `slot` is the cell's
    /// view, locked.
    pub(super) async fn failed(
        &self,
        id: &Arc<str>,
        need: Need,
        e: personafs_client::Error,
        cell: &Arc<Cell>,
        mut slot: tokio::sync::MutexGuard<'_, Option<Arc<InquiryView>>>,
    ) -> FsResult<Arc<InquiryView>> {
        let (offline, missing, status) = (unreachable(&e), e.is_not_found(), e.status());
        let e = FsError::from(e);
        if missing {
            self.negative.insert(id);
            *slot = None;
            *cell.created.lock() = None;
            *cell.updated.lock() = None;
            drop(slot);
            self.forget_cell(id, cell);
            return Err(e);
        }
        // Names and sizes do not go bad: serve the last view rather than an error.
        // Only then is the failure logged here; otherwise the caller's answer says it.
        // Offline, the breaker has said so once: no line per request.
        match (need, slot.as_ref()) {
            (Need::Metadata | Need::Open, Some(old)) => {
                if offline {
                    tracing::debug!(inquiry = %id, "Persona unreachable; serving the last view: {e}");
                } else {
                    tracing::warn!(inquiry = %id, status,
                        "retrieve failed; serving the last view: {e}");
                }
                Ok(old.clone())
            }
            (Need::Metadata | Need::Open, None) if offline => {
                let view = self.stored(id, Trust::Offline).await.ok_or(e)?;
                tracing::debug!(inquiry = %id, "Persona unreachable; serving the stored view");
                cell.shown(&view);
                *slot = Some(view.clone());
                Ok(view)
            }
            _ => Err(e),
        }
    }
}
