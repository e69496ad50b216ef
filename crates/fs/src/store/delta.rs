//! What deltas (search on `updated-at`) leave in the store, so a remount goes on from them:
//! the watermark, the inquiries that joined or left the stored listing since it was taken,
//! and the stored views a change made stale.
//!
//! - `stale`: an inquiry whose stored view is older than the `updated-at` a delta reported.
//!   Such a view is never shown again without a retrieve; storing a view at least that new
//!   clears the row. A view stored late by a retrieve that began before the change stays
//!   stale: the comparison is on `updated-at`, not on the order of writes.
//! - `listing_delta`: rows that joined (`listed = 1`) or left (`listed = 0`) the stored
//!   listing; applied over it when it is loaded, emptied when a whole listing is stored.
//! - the watermark, in the cursor table under `delta <scope>`.

use std::time::SystemTime;

use rusqlite::{OptionalExtension, params};

use super::codec::{check_clean, time_from_db, time_to_db};
use super::{ListedInquiry, MetadataStore, StoreError};

/// Columns added after schema version 3 (the views' keys), to older files too.
pub(super) fn add_key_columns(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    for table in ["listing", "listing_delta"] {
        for column in ["reference_id", "account_id"] {
            let has = conn
                .prepare(&format!(
                    "SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"
                ))?
                .exists([column])?;
            if !has {
                conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} TEXT"))?;
            }
        }
    }
    Ok(())
}

pub(super) const DELTA_TABLES: &str = "
CREATE TABLE IF NOT EXISTS stale (
    id         TEXT PRIMARY KEY,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS listing_delta (
    id         TEXT PRIMARY KEY,
    listed     INTEGER NOT NULL CHECK (listed IN (0, 1)),
    status     TEXT,
    created_at INTEGER,
    updated_at INTEGER
) WITHOUT ROWID;
";

/// A change to the stored listing a delta made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListingChange {
    Joined(ListedInquiry),
    Left(String),
}

impl MetadataStore {
    /// Mark stale every stored view older than the `updated-at` a delta reported for its
    /// inquiry; inquiries without a stored view leave nothing. Returns how many were marked.
    pub fn mark_stale(&self, reported: &[(String, SystemTime)]) -> Result<usize, StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let mut marked = 0;
        {
            let mut mark = tx.prepare_cached(
                "INSERT INTO stale (id, updated_at)
                 SELECT id, ?2 FROM inquiry
                 WHERE id = ?1 AND (updated_at IS NULL OR updated_at < ?2)
                 ON CONFLICT (id) DO UPDATE SET updated_at = max(updated_at, excluded.updated_at)",
            )?;
            for (id, at) in reported {
                marked += mark.execute(params![id, time_to_db(*at)])?;
            }
        }
        tx.commit()?;
        Ok(marked)
    }

    /// The `updated-at` a delta reported for an inquiry whose stored view is older, if any.
    pub fn stale_since(&self, id: &str) -> Result<Option<SystemTime>, StoreError> {
        Ok(self
            .conn
            .lock()
            .prepare_cached("SELECT updated_at FROM stale WHERE id = ?1")?
            .query_row([id], |r| r.get::<_, i64>(0))
            .optional()?
            .map(time_from_db))
    }

    /// Record rows that joined or left the stored listing (the last word on an id wins).
    pub fn record_listing_changes(&self, changes: &[ListingChange]) -> Result<(), StoreError> {
        for c in changes {
            let id = match c {
                ListingChange::Joined(r) => &r.id,
                ListingChange::Left(id) => id,
            };
            check_clean("inquiry id", id)?;
        }
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT INTO listing_delta (id, listed, status, created_at, updated_at,
                     reference_id, account_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET listed = ?2, status = ?3, created_at = ?4,
                     updated_at = ?5, reference_id = ?6, account_id = ?7",
            )?;
            for c in changes {
                match c {
                    ListingChange::Joined(r) => put.execute(params![
                        r.id,
                        1,
                        r.status,
                        r.created_at.map(time_to_db),
                        r.updated_at.map(time_to_db),
                        super::listing::storable(&r.reference_id)
                            .filter(|_| r.redacted_at.is_none()),
                        super::listing::storable(&r.account_id).filter(|_| r.redacted_at.is_none()),
                    ])?,
                    ListingChange::Left(id) => put.execute(params![
                        id,
                        0,
                        None::<String>,
                        None::<i64>,
                        None::<i64>,
                        None::<String>,
                        None::<String>
                    ])?,
                };
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every change recorded since the stored listing was taken.
    pub fn listing_changes(&self) -> Result<Vec<ListingChange>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, listed, status, created_at, updated_at, reference_id, account_id
             FROM listing_delta",
        )?;
        let rows = stmt.query_map([], |r| {
            let id: String = r.get(0)?;
            Ok(match r.get::<_, i64>(1)? {
                0 => ListingChange::Left(id),
                _ => ListingChange::Joined(ListedInquiry {
                    id,
                    status: r.get(2)?,
                    created_at: r.get::<_, Option<i64>>(3)?.map(time_from_db),
                    updated_at: r.get::<_, Option<i64>>(4)?.map(time_from_db),
                    redacted_at: None,
                    reference_id: r.get(5)?,
                    account_id: r.get(6)?,
                }),
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::store::StoredInquiry;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn view(id: &str, updated: u64) -> StoredInquiry {
        StoredInquiry {
            id: id.to_string(),
            status: Some("approved".into()),
            created_at: Some(at(1)),
            updated_at: Some(at(updated)),
            redacted_at: None,
            checked_at: at(updated),
            files: Vec::new(),
        }
    }

    #[test]
    fn a_reported_change_makes_an_older_stored_view_stale_until_a_newer_one_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(dir.path()).unwrap();
        store.put_inquiry(&view("inq_a", 100)).unwrap();
        store.put_inquiry(&view("inq_b", 100)).unwrap();
        let reported = [
            ("inq_a".to_string(), at(200)),
            ("inq_b".to_string(), at(100)), // the overlap repeating what is stored
            ("inq_never_seen".to_string(), at(300)),
        ];
        assert_eq!(store.mark_stale(&reported).unwrap(), 1);
        assert_eq!(store.stale_since("inq_a").unwrap(), Some(at(200)));
        assert_eq!(store.stale_since("inq_b").unwrap(), None);
        assert_eq!(store.stale_since("inq_never_seen").unwrap(), None);
        // A retrieve that began before the change stores an old view late: still stale.
        store.put_inquiry(&view("inq_a", 150)).unwrap();
        assert_eq!(store.stale_since("inq_a").unwrap(), Some(at(200)));
        // An older report never lowers the mark.
        store.mark_stale(&[("inq_a".to_string(), at(180))]).unwrap();
        assert_eq!(store.stale_since("inq_a").unwrap(), Some(at(200)));
        store.put_inquiry(&view("inq_a", 200)).unwrap();
        assert_eq!(store.stale_since("inq_a").unwrap(), None);
        // A purge leaves no row behind.
        store.mark_stale(&[("inq_b".to_string(), at(500))]).unwrap();
        assert!(store.delete_inquiry("inq_b").unwrap());
        assert_eq!(store.stale_since("inq_b").unwrap(), None);
    }

    #[test]
    fn listing_changes_survive_a_reopen_and_go_with_the_next_whole_listing() {
        let dir = tempfile::tempdir().unwrap();
        let row = |id: &str| ListedInquiry {
            id: id.into(),
            status: Some("pending".into()),
            created_at: Some(at(5)),
            updated_at: Some(at(6)),
            redacted_at: None,
            ..Default::default()
        };
        {
            let store = MetadataStore::open(dir.path()).unwrap();
            store.put_listing("all", at(1), [row("inq_1")]).unwrap();
            store
                .record_listing_changes(&[
                    ListingChange::Joined(row("inq_new")),
                    ListingChange::Left("inq_1".into()),
                    ListingChange::Joined(row("inq_gone_again")),
                ])
                .unwrap();
            store
                .record_listing_changes(&[ListingChange::Left("inq_gone_again".into())])
                .unwrap();
        }
        let store = MetadataStore::open(dir.path()).unwrap();
        let mut changes = store.listing_changes().unwrap();
        changes.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(
            changes,
            vec![
                ListingChange::Joined(row("inq_new")),
                ListingChange::Left("inq_1".into()),
                ListingChange::Left("inq_gone_again".into()),
            ]
        );
        assert!(
            store
                .record_listing_changes(&[ListingChange::Left(
                    "https://x/?access_token=secret".into()
                )])
                .is_err(),
            "a token-like id never reaches the disk"
        );
        store.put_listing("all", at(2), [row("inq_1")]).unwrap();
        assert_eq!(store.listing_changes().unwrap(), Vec::new());
    }

    #[test]
    fn view_keys_are_kept_for_a_remount_and_never_for_a_redacted_inquiry() {
        let dir = tempfile::tempdir().unwrap();
        let keyed = |id: &str, redacted: bool| ListedInquiry {
            id: id.into(),
            redacted_at: redacted.then(|| at(9)),
            reference_id: Some(format!("user-{id}")),
            account_id: Some("act_1".into()),
            ..Default::default()
        };
        {
            let store = MetadataStore::open(dir.path()).unwrap();
            let rows = [keyed("inq_1", false), keyed("inq_2", true)];
            store.put_listing("all", at(1), rows).unwrap();
            store
                .record_listing_changes(&[ListingChange::Joined(keyed("inq_3", false))])
                .unwrap();
        }
        let store = MetadataStore::open(dir.path()).unwrap();
        let page = store.listing_page(0, 10).unwrap();
        assert_eq!(page[0].reference_id.as_deref(), Some("user-inq_1"));
        assert_eq!(page[0].account_id.as_deref(), Some("act_1"));
        assert_eq!(
            (
                page[1].reference_id.as_deref(),
                page[1].account_id.as_deref()
            ),
            (None, None),
            "a redacted inquiry's row keeps no key"
        );
        assert_eq!(
            store.listing_changes().unwrap(),
            vec![ListingChange::Joined(keyed("inq_3", false))]
        );
        // A purge takes the keys from the listing's rows, stored view or not.
        store.put_inquiry(&view("inq_1", 5)).unwrap();
        assert!(store.delete_inquiry("inq_1").unwrap());
        assert!(!store.delete_inquiry("inq_3").unwrap());
        assert_eq!(store.listing_page(0, 1).unwrap()[0].reference_id, None);
        let ListingChange::Joined(joined) = &store.listing_changes().unwrap()[0] else {
            panic!("a joined row");
        };
        assert_eq!((&joined.reference_id, &joined.account_id), (&None, &None));
    }
}
