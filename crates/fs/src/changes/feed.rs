//! The events feed (`--watch-events`): every interval, the events since the cursor, oldest
//! first, each applied as a change; the cursor then moves on and is kept in the metadata
//! store, so a remount catches up from where the last mount stopped.
//!
//! Paging: `page[before]=<cursor>` gives the events right after the cursor (newest first);
//! the newest of that page is the next cursor. A cursor Persona no longer keeps (the gap is
//! older than the events it retains: a 400 to a request with a cursor, which the client
//! gives as `Error::CursorGone`) falls back to a full listing check. Without a cursor
//! (first start) the newest event becomes the cursor: there is nothing to replay.
//!
//! The cursor is kept under `events <scope>` (the mount's filter scope), so mounts with
//! other filters never share one. While the circuit breaker is open nothing is asked; a
//! failed poll warns once until polling works again and is tried from the same cursor.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use personafs_client::{Error, EventsFrom, PersonaApi};

use super::ChangeTarget;
use crate::store::MetadataStore;

/// A cursor meaning "before the first event": there were none when the feed started.
const START: &str = "start";
/// Pages of events taken in one poll at most (the rest waits for the next one).
const MAX_PAGES: usize = 50;
const PAGE_SIZE: u32 = 100;

/// What one poll did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// Persona cannot be reached (the circuit breaker is open): nothing asked.
    Offline,
    /// The first poll: the newest event is the cursor, nothing replayed.
    Started,
    /// Events applied (how many were read).
    Applied(usize),
    /// The cursor was gone: a full listing check was made instead.
    FullCheck,
    /// Asking Persona failed (logged).
    Failed,
}

pub(crate) struct Feed {
    api: Arc<dyn PersonaApi>,
    store: Option<Arc<MetadataStore>>,
    /// The store's key for the cursor of this mount's scope.
    key: String,
    names: Vec<String>,
    /// The cursor as last read or written.
    cursor: Mutex<Option<String>>,
    /// Only one poll at a time (the loop and a test's call).
    polling: tokio::sync::Mutex<()>,
    gone_logged: AtomicBool,
    /// The last poll failed: the next failures are logged at debug only (a key without
    /// access to events would otherwise warn every interval).
    failing: AtomicBool,
}

impl Feed {
    pub(crate) fn new(
        api: Arc<dyn PersonaApi>,
        store: Option<Arc<MetadataStore>>,
        scope: String,
    ) -> Feed {
        Feed {
            api,
            store,
            key: format!("events {scope}"),
            names: super::watched_names(),
            cursor: Mutex::new(None),
            polling: tokio::sync::Mutex::new(()),
            gone_logged: AtomicBool::new(false),
            failing: AtomicBool::new(false),
        }
    }

    async fn load_cursor(&self) -> Option<String> {
        if let Some(c) = self.cursor.lock().clone() {
            return Some(c);
        }
        let store = self.store.clone()?;
        let key = self.key.clone();
        let found = tokio::task::spawn_blocking(move || store.get_cursor(&key))
            .await
            .ok()?
            .inspect_err(|e| tracing::warn!("metadata store: cannot read the events cursor: {e}"))
            .ok()??;
        *self.cursor.lock() = Some(found.clone());
        Some(found)
    }

    async fn save_cursor(&self, cursor: &str) {
        *self.cursor.lock() = Some(cursor.to_string());
        let Some(store) = self.store.clone() else {
            return;
        };
        let key = self.key.clone();
        let value = cursor.to_string();
        let saved = tokio::task::spawn_blocking(move || store.set_cursor(&key, &value)).await;
        if let Ok(Err(e)) = saved {
            tracing::warn!("metadata store: cannot save the events cursor: {e}");
        }
    }

    /// The newest event's id, or [`START`] when there is none.
    async fn newest(&self) -> personafs_client::Result<String> {
        let page = self
            .api
            .list_events(&self.names, &EventsFrom::Newest, 1)
            .await?;
        Ok(page
            .events
            .first()
            .map(|e| e.id.clone())
            .unwrap_or_else(|| START.to_string()))
    }

    /// One poll: apply what happened since the cursor.
    pub(crate) async fn poll(&self, core: &impl ChangeTarget) -> Polled {
        let _one = self.polling.lock().await;
        if core.is_offline() {
            return Polled::Offline;
        }
        match self.poll_locked(core).await {
            Ok(polled) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("events feed: polling works again");
                }
                polled
            }
            Err(e) => {
                if core.is_offline() || self.failing.swap(true, Ordering::Relaxed) {
                    tracing::debug!("events feed: {e}");
                } else {
                    tracing::warn!(
                        "events feed: {e} (tried again every interval; further failures at debug level until it works)"
                    );
                }
                Polled::Failed
            }
        }
    }

    async fn poll_locked(&self, core: &impl ChangeTarget) -> personafs_client::Result<Polled> {
        let Some(cursor) = self.load_cursor().await else {
            let newest = self.newest().await?;
            self.save_cursor(&newest).await;
            tracing::info!("events feed started; changes from now on are applied");
            return Ok(Polled::Started);
        };
        let result = if cursor == START {
            self.replay_all(core).await
        } else {
            self.since(core, cursor).await
        };
        match result {
            Err(Error::CursorGone { .. }) => {
                if !self.gone_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "events feed: events were missed (the cursor is older than the events Persona keeps); checking the whole listing instead"
                    );
                }
                let newest = self.newest().await?;
                if let Err(e) = core.full_check().await {
                    // The cursor stays: the next poll tries again.
                    tracing::warn!("events feed: the full listing check failed: {e}");
                    return Ok(Polled::Failed);
                }
                self.save_cursor(&newest).await;
                Ok(Polled::FullCheck)
            }
            other => other,
        }
    }

    /// Pages after `cursor`, oldest first, the cursor saved after each.
    async fn since(
        &self,
        core: &impl ChangeTarget,
        mut cursor: String,
    ) -> personafs_client::Result<Polled> {
        let mut read = 0;
        for _ in 0..MAX_PAGES {
            let page = self
                .api
                .list_events(&self.names, &EventsFrom::Before(cursor.clone()), PAGE_SIZE)
                .await?;
            let Some(newest) = page.events.first() else {
                break;
            };
            let newest = newest.id.clone();
            for event in page.events.iter().rev() {
                core.apply_event(event).await;
            }
            read += page.events.len();
            cursor = newest;
            self.save_cursor(&cursor).await;
            if !page.has_newer {
                break;
            }
        }
        Ok(Polled::Applied(read))
    }

    /// No event existed when the feed started: every event kept, oldest first.
    async fn replay_all(&self, core: &impl ChangeTarget) -> personafs_client::Result<Polled> {
        let mut events = Vec::new();
        let mut from = EventsFrom::Newest;
        for _ in 0..MAX_PAGES {
            let page = self.api.list_events(&self.names, &from, PAGE_SIZE).await?;
            let Some(oldest) = page.events.last() else {
                break;
            };
            from = EventsFrom::After(oldest.id.clone());
            let more = page.has_older;
            events.extend(page.events);
            if !more {
                break;
            }
        }
        let Some(newest) = events.first().map(|e| e.id.clone()) else {
            return Ok(Polled::Applied(0));
        };
        for event in events.iter().rev() {
            core.apply_event(event).await;
        }
        self.save_cursor(&newest).await;
        Ok(Polled::Applied(events.len()))
    }
}
