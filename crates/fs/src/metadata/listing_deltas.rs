//! The listing kept fresh by deltas (the rules are in `delta.rs`): what the lister knows of
//! the watermark, taking one delta and applying it to the listing, the store and (through
//! the [`DeltaSink`]) the views.
//!
//! - One delta at a time (the listing's `refresh` lock): concurrent needs share it. A
//!   readdir's delta also takes the list's first page (the key check's, while fresh); a
//!   lookup's or open's does not, and never waits for a whole listing (one due is taken in
//!   the background; with nothing listed yet, none is started).
//! - A delta is dated from when it is applied (one of 10,000 changes takes seconds), a
//!   shared one from when it was taken. It vouches for every inquiry (`Vouch`); the views
//!   it reports changed leave memory and are marked stale in the store (the sink), before
//!   the listing's joined and left rows and the watermark are written, in one write.
//! - A failed delta serves what the mount knows; it is tried again in the background at
//!   most every `RETRY` (5 s) while the views go by their own age. Search refused is kept
//!   for good (one warning), and the listing goes by TTL.
//! - With `--shared-state` each delta taken is published (`SharedChanges`: its `since`,
//!   when it was taken and what search reported); a mount whose own `since` it covers,
//!   while it is younger than the TTL, applies it without asking Persona.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use personafs_client::search::changes_since;
use personafs_client::telemetry::DeltaSnapshot;

use super::super::listing_rows::{JoinedRow, RowKeys};
use super::{Lister, Listing};
use crate::error::FsResult;
use crate::metadata::delta::{
    self, DeltaConfig, FullReason, MAX_PAGES, Next, Planned, Unusable, Watermark,
};
use crate::store::{ListedInquiry, ListingChange};

/// How often a failing delta is tried again for the views.
const RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// Where a delta's effects on views go (the core: views, stored views, the kernel).
pub(crate) trait DeltaSink: Send + Sync {
    /// Views older than what was reported leave memory and the store trusts them no more;
    /// redactions are applied. Done when this returns.
    fn apply<'a>(&'a self, planned: &'a Planned) -> BoxFuture<'a, ()>;
}

/// What deltas say of a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Vouch {
    /// A delta (or whole listing) within the TTL vouches for it.
    Fresh,
    /// Deltas keep this mount fresh and one is due: only it may vouch.
    Due,
    /// Deltas cannot say (off, refused, failing, not yet taken): the view's age decides.
    Unknown,
}

/// What deltas have done, for `personafs status` and `/metrics`.
#[derive(Default)]
pub struct DeltaStats {
    pub deltas: AtomicU64,
    pub search_pages: AtomicU64,
    pub changes_applied: AtomicU64,
    pub full_listings: [AtomicU64; FullReason::ALL.len()],
    last: Mutex<Option<SystemTime>>,
    last_full: Mutex<Option<(SystemTime, FullReason)>>,
    watermark: Mutex<Option<DateTime<Utc>>>,
    /// Search was refused once: listing by TTL from then on.
    refused: AtomicBool,
}

fn unix(t: SystemTime) -> Option<u64> {
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

impl DeltaStats {
    /// What `personafs status` and `/metrics` show of it.
    pub fn status(&self) -> DeltaSnapshot {
        let last_full = *self.last_full.lock();
        DeltaSnapshot {
            deltas: self.deltas.load(Ordering::Relaxed),
            search_pages: self.search_pages.load(Ordering::Relaxed),
            changes_applied: self.changes_applied.load(Ordering::Relaxed),
            full_listings: FullReason::ALL
                .iter()
                .zip(&self.full_listings)
                .map(|(r, n)| (r.name().to_string(), n.load(Ordering::Relaxed)))
                .collect(),
            last_delta_unix: self.last.lock().and_then(unix),
            last_full_unix: last_full.and_then(|(t, _)| unix(t)),
            last_full_reason: last_full.map(|(_, r)| r.name().to_string()),
            watermark_unix: self.watermark.lock().and_then(|w| unix(w.into())),
            search_refused: self.refused.load(Ordering::Relaxed),
        }
    }

    fn full(&self, reason: FullReason, at: SystemTime) {
        let i = FullReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.full_listings[i].fetch_add(1, Ordering::Relaxed);
        *self.last_full.lock() = Some((at, reason));
    }
}

/// What the lister knows for deltas.
pub(crate) struct DeltaState {
    cfg: DeltaConfig,
    /// Loaded from the store once; `None` inside until known.
    known: tokio::sync::Mutex<Option<Known>>,
    /// When everything was last vouched for, and whether for every inquiry of the
    /// organization (a delta) or only the listed ones (a whole listing).
    vouched: Mutex<Option<(Instant, bool)>>,
    /// When a delta with the list's first page (or a whole listing) last vouched for the
    /// listing itself.
    listing_vouched: Mutex<Option<Instant>>,
    /// A delta or whole listing has vouched, and deltas keep the mount fresh since.
    live: AtomicBool,
    /// When a delta was last tried on behalf of the views.
    last_try: Mutex<Option<Instant>>,
    /// Why the next whole listing is taken (set when a delta gave way to it).
    why_full: Mutex<Option<FullReason>>,
    sink: std::sync::OnceLock<Arc<dyn DeltaSink>>,
    pub(crate) stats: Arc<DeltaStats>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Known {
    watermark: Option<Watermark>,
    last_full: Option<SystemTime>,
}

impl DeltaState {
    fn refused(&self) -> bool {
        self.stats.refused.load(Ordering::Relaxed)
    }

    /// A whole listing is due for `reason` (`replace`: over one noted before). Until it is
    /// taken no delta is tried, and the views go by their own age.
    fn whole_listing_due(&self, reason: FullReason, replace: bool) {
        let mut why = self.why_full.lock();
        if replace || why.is_none() {
            *why = Some(reason);
        }
        self.live.store(false, Ordering::Relaxed);
    }

    pub(crate) fn new(cfg: DeltaConfig) -> DeltaState {
        DeltaState {
            cfg,
            known: tokio::sync::Mutex::new(None),
            vouched: Mutex::new(None),
            why_full: Mutex::new(None),
            last_try: Mutex::new(None),
            live: AtomicBool::new(false),
            listing_vouched: Mutex::new(None),
            sink: std::sync::OnceLock::new(),
            stats: Arc::default(),
        }
    }
}

/// A delta as mounts sharing the state hand it on: the changes since `since_ms`, as search
/// gave them at `taken_ms` (Unix milliseconds).
#[derive(serde::Serialize, serde::Deserialize)]
struct SharedChanges {
    since_ms: i64,
    taken_ms: i64,
    inquiries: Vec<personafs_client::InquirySummary>,
}

impl Lister {
    /// Share deltas with the other mounts of the environment: one search per TTL for all.
    pub(crate) fn share_deltas(&self, views: Arc<dyn personafs_client::shared_state::SharedViews>) {
        let _ = self.shared.set(views);
    }

    /// Another mount's delta, if it covers everything since `since` and is younger than the
    /// TTL: its changes and its age.
    async fn shared_changes(
        &self,
        since: DateTime<Utc>,
    ) -> Option<(personafs_client::search::Changes, std::time::Duration)> {
        let bytes = self.shared.get()?.fetch_delta().await?;
        let shared: SharedChanges = serde_json::from_slice(&bytes).ok()?;
        let taken = DateTime::from_timestamp_millis(shared.taken_ms)?;
        let age = (self.clock.utc() - taken).to_std().ok()?;
        if shared.since_ms > since.timestamp_millis() || age >= self.ttl {
            return None;
        }
        tracing::debug!(
            changes = shared.inquiries.len(),
            ?age,
            "delta taken from the shared state"
        );
        Some((
            personafs_client::search::Changes {
                inquiries: shared.inquiries,
                pages: 0,
            },
            age,
        ))
    }

    async fn share_changes(
        &self,
        since: DateTime<Utc>,
        changes: &personafs_client::search::Changes,
    ) {
        let Some(views) = self.shared.get() else {
            return;
        };
        let shared = SharedChanges {
            since_ms: since.timestamp_millis(),
            taken_ms: self.clock.utc().timestamp_millis(),
            inquiries: changes.inquiries.clone(),
        };
        if let Ok(bytes) = serde_json::to_vec(&shared) {
            views.publish_delta(&bytes).await;
        }
    }

    fn watermark_key(&self) -> String {
        format!("delta {}", self.scope())
    }

    /// Where a delta's effects on views go.
    pub(crate) fn set_delta_sink(&self, sink: Arc<dyn DeltaSink>) {
        if let Some(d) = &self.deltas {
            let _ = d.sink.set(sink);
        }
    }

    pub(crate) fn delta_stats(&self) -> Option<Arc<DeltaStats>> {
        self.deltas.as_ref().map(|d| d.stats.clone())
    }

    /// Whether a delta or whole listing within the TTL vouches for `id` (`listed`: the
    /// listing holds it): its view needs nothing more to be shown.
    pub(crate) fn vouches(&self, listed: bool) -> bool {
        self.vouch_state(listed) == Vouch::Fresh
    }

    /// What deltas say of an inquiry's views (`listed`: the listing holds it).
    pub(crate) fn vouch_state(&self, listed: bool) -> Vouch {
        let Some(d) = &self.deltas else {
            return Vouch::Unknown;
        };
        if d.refused() || self.failing() {
            return Vouch::Unknown;
        }
        match *d.vouched.lock() {
            Some((_, all)) if !(all || listed) => Vouch::Unknown,
            Some((at, _)) if self.clock.since(at) < self.ttl => Vouch::Fresh,
            Some(_) => Vouch::Due,
            None if d.live.load(Ordering::Relaxed) => Vouch::Due,
            None => Vouch::Unknown,
        }
    }

    fn vouched_now(&self, d: &DeltaState, at: Instant, all: bool) {
        *d.vouched.lock() = Some((at, all));
        d.live.store(true, Ordering::Relaxed);
    }

    /// Whether deltas keep this mount fresh (on, and search not refused).
    pub(super) fn deltas_kept(&self) -> bool {
        self.deltas.as_ref().is_some_and(|d| !d.refused())
    }

    /// The last listing or delta failed (the mount serves what it knows meanwhile).
    pub(crate) fn failing(&self) -> bool {
        self.last_failed.load(Ordering::Relaxed)
    }

    /// Make sure a delta vouches for the views if one can: taken now (a call or two) when due;
    /// never waits for a whole listing. After a failure, tried again in the background, at
    /// most every few seconds, while the views fall back to their own age.
    pub(crate) async fn vouch(self: &Arc<Self>) {
        let Some(d) = &self.deltas else { return };
        if d.refused() || self.vouches(true) {
            return;
        }
        if self.failing() {
            let due = {
                let mut last = d.last_try.lock();
                let due = last.is_none_or(|t| self.clock.since(t) >= RETRY.min(self.ttl));
                if due {
                    *last = Some(self.clock.now());
                }
                due
            };
            if due {
                self.refresh_in_background();
            }
            return;
        }
        if self.current().is_none()
            && let Some(stored) = self.load_stored().await
        {
            let mut current = self.current.lock();
            if current.is_none() {
                *current = Some(stored);
            }
        }
        if self.current().is_none() {
            return; // nothing listed yet: a lookup alone never starts a whole listing
        }
        if self.next_refresh().await.is_none() {
            self.refresh_in_background(); // a whole listing is due
        } else {
            *d.last_try.lock() = Some(self.clock.now());
            let took = {
                let _refreshing = self.refresh.lock().await;
                self.vouches(true) || self.take_delta(false).await.is_some()
            };
            if !took && !d.refused() {
                // Search gave way to a whole listing: not worth a view's wait.
                self.refresh_in_background();
            }
        }
    }

    /// Nothing vouched from now on (a change was announced): the next need asks again.
    pub(super) fn void_vouch(&self) {
        if let Some(d) = &self.deltas {
            d.vouched.lock().take();
            d.listing_vouched.lock().take();
        }
    }

    /// Whether a delta with the list's first page vouched for the listing within the TTL.
    pub(super) fn listing_vouched(&self) -> bool {
        self.deltas.as_ref().is_some_and(|d| {
            !self.failing()
                && d.listing_vouched
                    .lock()
                    .is_some_and(|at| self.clock.since(at) < self.ttl)
        })
    }

    /// The watermark and the last whole listing, loaded from the store the first time.
    async fn known(&self, d: &DeltaState) -> Known {
        let mut known = d.known.lock().await;
        if let Some(k) = *known {
            return k;
        }
        let mut k = Known::default();
        if let Some(p) = &self.persisted {
            let store = p.writer.store().clone();
            let (key, scope) = (self.watermark_key(), self.scope());
            let loaded =
                p.rt.spawn_blocking(move || -> Result<_, crate::store::StoreError> {
                    let listing = store.listing()?.filter(|l| l.scope == scope);
                    Ok((store.get_cursor(&key)?, listing.map(|l| l.taken_at)))
                })
                .await;
            match loaded {
                Ok(Ok((cursor, taken))) if taken.is_some() => {
                    k.watermark = cursor.as_deref().and_then(Watermark::decode);
                    k.last_full = taken;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!("metadata store: cannot read the watermark: {e}"),
                Err(e) => tracing::warn!("metadata store: cannot read the watermark: {e}"),
            }
        }
        if let Some(w) = k.watermark {
            *d.stats.watermark.lock() = Some(w.updated);
        }
        *known = Some(k);
        k
    }

    /// What the next refresh is: a delta (`Some(since)`) or a whole listing (`None`).
    pub(super) async fn next_refresh(&self) -> Option<DateTime<Utc>> {
        let d = self.deltas.as_ref()?;
        if d.refused() || self.current().is_none() {
            return None;
        }
        if d.why_full.lock().is_some() {
            // A whole listing is due (a delta was not trusted, or too many changed): no
            // delta until it is taken, or every request would ask search again.
            return None;
        }
        let k = self.known(d).await;
        match delta::next(
            &d.cfg,
            k.watermark.as_ref(),
            k.last_full,
            self.clock.system(),
        ) {
            Next::Delta { since } => Some(since),
            Next::Full(reason) => {
                d.whole_listing_due(reason, false);
                None
            }
        }
    }

    /// Take one delta and apply it. `None`: a whole listing is needed instead (or deltas are
    /// off); `Some(Err)` only when there is no listing to serve.
    ///
    /// `for_listing`: the listing itself is wanted, so the list endpoint's first page is
    /// asked too (inquiries too new for search). The views need search alone.
    pub(super) async fn take_delta(&self, for_listing: bool) -> Option<FsResult<Arc<Listing>>> {
        let since = self.next_refresh().await?;
        let d = self.deltas.as_ref()?;
        let current = self.current()?;
        let generation = self.generation.load(Ordering::SeqCst);
        // A shared delta is as old as when it was taken; an own one counts from when it is
        // applied (a delta of 10,000 changes takes seconds: dated from its start, it would
        // be stale on arrival with a short TTL, and every request would take another).
        let mut age = std::time::Duration::ZERO;
        let shared = self.shared_changes(since).await;
        let from_shared = shared.is_some();
        let answers = async {
            let searched = match shared {
                Some((changes, shared_age)) => {
                    age = shared_age;
                    changes
                }
                None => changes_since(self.api.as_ref(), since, MAX_PAGES)
                    .await
                    .map_err(delta::unusable)?,
            };
            // The key check's first page, if it is still fresh, is that page.
            let seeded = match for_listing {
                true => self
                    .seed
                    .lock()
                    .take()
                    .filter(|(_, at)| self.clock.since(*at) < self.ttl),
                false => None,
            };
            let newest = match (for_listing, seeded) {
                (true, Some((page, _))) => page.inquiries,
                (true, None) => {
                    self.api
                        .list_page(&self.filters, None, 100)
                        .await
                        .map_err(Unusable::Failed)?
                        .inquiries
                }
                (false, _) => Vec::new(),
            };
            Ok::<_, Unusable>((searched, newest))
        };
        let (searched, newest) = match answers.await {
            Ok(a) => a,
            Err(Unusable::Full(reason)) => {
                if reason == FullReason::SearchRefused {
                    d.stats.refused.store(true, Ordering::Relaxed);
                    tracing::warn!(
                        "search is refused for this key or API version: the listing is taken \
                         again every --metadata-ttl instead of deltas"
                    );
                } else {
                    tracing::warn!(
                        why = reason.name(),
                        "search's answer cannot be used for a delta; taking a whole listing"
                    );
                }
                d.whole_listing_due(reason, true);
                return None;
            }
            Err(Unusable::Failed(e)) => {
                let offline = crate::breaker::unreachable(&e);
                self.last_failed.store(true, Ordering::Relaxed);
                if offline {
                    tracing::debug!("Persona unreachable; no delta: {e}");
                } else {
                    tracing::warn!("delta failed; serving what the mount knows: {e}");
                }
                return Some(Ok(current));
            }
        };
        self.last_failed.store(false, Ordering::Relaxed);
        if !from_shared {
            self.share_changes(since, &searched).await;
        }
        let pages = searched.pages;
        let latest = searched.latest();
        let planned = delta::plan(
            &self.filters,
            |id| current.rows.position(id).is_some(),
            searched.inquiries,
            newest,
        );
        if let Some(sink) = d.sink.get() {
            sink.apply(&planned).await;
        }
        let now = self.clock.system();
        let listing = match planned.moves_listing() {
            true => {
                let left: HashSet<Arc<str>> = planned.left.iter().cloned().collect();
                let joined = planned.joined.iter().map(joined_row).collect();
                let rows = current.rows.changed(joined, &left);
                Arc::new(Listing::new(
                    rows,
                    current.redacted_without(&left),
                    self.clock.now(),
                    generation,
                    Some(now),
                ))
            }
            false => current.clone(),
        };
        listing.confirm(now);
        for (id, updated) in &planned.reported {
            listing.report(id, *updated);
        }
        let watermark = {
            let mut known = d.known.lock().await;
            let k = known.get_or_insert_with(Known::default);
            let w = Watermark {
                updated: latest.max(k.watermark.map(|w| w.updated)).unwrap_or(
                    since + chrono::Duration::from_std(d.cfg.overlap).unwrap_or_default(),
                ),
                taken: now,
            };
            k.watermark = Some(w);
            w
        };
        self.persist_delta(&planned, &watermark).await;
        let started = self.clock.now();
        let started = started.checked_sub(age).unwrap_or(started);
        self.vouched_now(d, started, true);
        if for_listing {
            *d.listing_vouched.lock() = Some(started);
        }
        let stats = &d.stats;
        stats.deltas.fetch_add(1, Ordering::Relaxed);
        stats
            .search_pages
            .fetch_add(pages as u64, Ordering::Relaxed);
        stats
            .changes_applied
            .fetch_add(planned.reported.len() as u64, Ordering::Relaxed);
        *stats.last.lock() = Some(now);
        *stats.watermark.lock() = Some(watermark.updated);
        tracing::debug!(
            changes = planned.reported.len(),
            joined = planned.joined.len(),
            left = planned.left.len(),
            redacted = planned.redacted.len(),
            pages,
            "delta applied"
        );
        if !Arc::ptr_eq(&listing, &current) {
            let previous = self.current.lock().replace(listing.clone());
            if let Some(hook) = self.on_listed.get() {
                hook(&listing, previous.as_deref());
            }
        }
        Some(Ok(listing))
    }

    /// The listing's joined and left rows and the watermark, in one write after the views'
    /// stale marks: a remount goes on from here.
    async fn persist_delta(&self, planned: &Planned, watermark: &Watermark) {
        let Some(p) = &self.persisted else { return };
        let mut changes: Vec<ListingChange> = planned
            .joined
            .iter()
            .map(|s| {
                ListingChange::Joined(ListedInquiry {
                    id: s.id.clone(),
                    status: s.status.clone(),
                    created_at: s.created_at.map(Into::into),
                    updated_at: s.updated_at.map(Into::into),
                    redacted_at: s.redacted_at.map(Into::into),
                    reference_id: s.reference_id.clone(),
                    account_id: s.account_id.clone(),
                })
            })
            .collect();
        changes.extend(
            planned
                .left
                .iter()
                .map(|id| ListingChange::Left(id.to_string())),
        );
        let (key, value) = (self.watermark_key(), watermark.encode());
        p.writer
            .write_and_wait(move |store| {
                let saved = store
                    .record_listing_changes(&changes)
                    .and_then(|()| store.set_cursor(&key, &value));
                if let Err(e) = saved {
                    tracing::warn!("metadata store: cannot save a delta: {e}");
                }
            })
            .await;
    }

    /// A whole listing begun at `started` was taken: it vouches for what it lists, and the
    /// next delta goes on from when it began.
    pub(super) async fn whole_listing_taken(&self, started: SystemTime, at: Instant) {
        let Some(d) = &self.deltas else { return };
        let reason = d.why_full.lock().take().unwrap_or(FullReason::First);
        d.stats.full(reason, started);
        let w = Watermark {
            updated: started.into(),
            taken: self.clock.system(),
        };
        *d.known.lock().await = Some(Known {
            watermark: Some(w),
            last_full: Some(started),
        });
        *d.stats.watermark.lock() = Some(w.updated);
        self.vouched_now(d, at, false);
        *d.listing_vouched.lock() = Some(at);
        if let Some(p) = &self.persisted {
            // After the listing's own writes (the writer keeps their order).
            let (key, value) = (self.watermark_key(), w.encode());
            p.writer.write(move |store| {
                if let Err(e) = store.set_cursor(&key, &value) {
                    tracing::warn!("metadata store: cannot save the watermark: {e}");
                }
            });
        }
    }
}

fn joined_row(s: &personafs_client::InquirySummary) -> JoinedRow {
    JoinedRow {
        id: Arc::from(s.id.as_str()),
        created: s.created_at.map(Into::into),
        updated: s.updated_at.map(Into::into),
        keys: RowKeys {
            reference: s.reference_id.as_deref().map(Arc::from),
            account: s.account_id.as_deref().map(Arc::from),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_says_the_last_whole_listing_and_why() {
        let stats = DeltaStats::default();
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000);
        stats.full(FullReason::Untrusted, at);
        let status = stats.status();
        assert_eq!(status.last_full_unix, Some(1_000));
        assert_eq!(status.last_full_reason.as_deref(), Some("untrusted"));
        assert_eq!(status.full_listings.get("untrusted"), Some(&1));
        assert_eq!(status.full_listings.values().sum::<u64>(), 1);
    }
}
