//! The last listing: ids in Persona's order with what each row showed, paged from disk so a
//! million ids never sit in memory at once.
//!
//! A listing is built in a generation of its own, page by page in short transactions (a
//! listing of 100,000 ids takes minutes at Persona's rate limit; other writes go on in
//! between), and becomes current in one step when finished. Rows of older or unfinished
//! generations are deleted in chunks, after the switch or at the next open.
//!
//! Each row keeps the inquiry's reference id and account, so the views group a stored
//! listing (a remount, offline) as they grouped it when taken; a delta's joined rows keep
//! theirs too (`listing_delta`). Both can name the person: a row that shows `redacted-at` is
//! stored without them, and a redaction clears them from its rows (`delete_inquiries`).

use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, params};

use super::codec::{check_clean, time_from_db, time_to_db};
use super::{MetadataStore, StoreError};

/// Rows written or deleted per transaction: short enough not to hold other calls up.
const CHUNK: usize = 10_000;

/// One row of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListedInquiry {
    pub id: String,
    pub status: Option<String>,
    /// Shown as the inquiry directory's times, also when the listing comes from the store.
    pub created_at: Option<SystemTime>,
    pub updated_at: Option<SystemTime>,
    pub redacted_at: Option<SystemTime>,
    /// What the views group by (`by-reference-id/`, `accounts/`); never kept for a redacted
    /// inquiry (a reference id can be a person's email or number).
    pub reference_id: Option<String>,
    pub account_id: Option<String>,
}

/// `text` if it may be written (no secret mark in it), else nothing: a key that cannot be
/// stored only leaves the inquiry out of its view after a remount.
pub(super) fn storable(text: &Option<String>) -> Option<&str> {
    text.as_deref()
        .filter(|t| check_clean("view key", t).is_ok())
}

/// The current listing as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingInfo {
    /// What the listing covers, as its writer described it (e.g. the mount's filters): a
    /// listing taken with other filters is not this mount's.
    pub scope: String,
    pub taken_at: SystemTime,
    pub count: u64,
}

/// A listing being written. Only the newest one begun can be finished.
#[derive(Debug)]
pub struct ListingBuild {
    generation: i64,
    next: u64,
    scope: String,
}

impl ListingBuild {
    /// Rows appended so far.
    pub fn len(&self) -> u64 {
        self.next
    }

    pub fn is_empty(&self) -> bool {
        self.next == 0
    }
}

fn row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<ListedInquiry> {
    Ok(ListedInquiry {
        id: r.get(first)?,
        status: r.get(first + 1)?,
        updated_at: r.get::<_, Option<i64>>(first + 2)?.map(time_from_db),
        redacted_at: r.get::<_, Option<i64>>(first + 3)?.map(time_from_db),
        created_at: r.get::<_, Option<i64>>(first + 4)?.map(time_from_db),
        reference_id: r.get(first + 5)?,
        account_id: r.get(first + 6)?,
    })
}

fn current_gen(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT current_gen FROM listing_state")?
        .query_row([], |r| r.get(0))
}

impl MetadataStore {
    /// Start writing a new listing covering `scope`. An unfinished earlier one is abandoned.
    pub fn begin_listing(&self, scope: &str) -> Result<ListingBuild, StoreError> {
        check_clean("listing scope", scope)?;
        let (generation, abandoned) = {
            let mut conn = self.conn.lock();
            let tx = conn.transaction()?;
            let (generation, abandoned): (i64, Option<i64>) = tx.query_row(
                "SELECT next_gen, building_gen FROM listing_state",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            tx.execute(
                "UPDATE listing_state SET building_gen = ?1, next_gen = ?1 + 1",
                [generation],
            )?;
            tx.commit()?;
            (generation, abandoned)
        };
        if let Some(old) = abandoned {
            self.purge_gen(old)?;
        }
        Ok(ListingBuild {
            generation,
            next: 0,
            scope: scope.to_string(),
        })
    }

    /// Append rows (one page, or any number) to a listing being written, in one transaction.
    pub fn append_listing(
        &self,
        build: &mut ListingBuild,
        rows: &[ListedInquiry],
    ) -> Result<(), StoreError> {
        for r in rows {
            check_clean("inquiry id", &r.id)?;
            if let Some(s) = &r.status {
                check_clean("status", s)?;
            }
        }
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        Self::check_building(&tx, build)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO listing (gen, pos, id, status, updated_at, redacted_at, created_at,
                     reference_id, account_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for (k, r) in rows.iter().enumerate() {
                insert.execute(params![
                    build.generation,
                    (build.next + k as u64) as i64,
                    r.id,
                    r.status,
                    r.updated_at.map(time_to_db),
                    r.redacted_at.map(time_to_db),
                    r.created_at.map(time_to_db),
                    storable(&r.reference_id).filter(|_| r.redacted_at.is_none()),
                    storable(&r.account_id).filter(|_| r.redacted_at.is_none()),
                ])?;
            }
        }
        tx.commit()?;
        build.next += rows.len() as u64;
        Ok(())
    }

    /// Make a listing the current one, taken at `taken_at`; the previous one's rows go.
    pub fn finish_listing(
        &self,
        build: ListingBuild,
        taken_at: SystemTime,
    ) -> Result<(), StoreError> {
        let old = {
            let mut conn = self.conn.lock();
            let tx = conn.transaction()?;
            Self::check_building(&tx, &build)?;
            let old = current_gen(&tx)?;
            tx.execute(
                "UPDATE listing_state SET current_gen = ?1, scope = ?2, taken_at = ?3,
                     count = ?4, building_gen = NULL",
                params![
                    build.generation,
                    build.scope,
                    time_to_db(taken_at),
                    build.next as i64
                ],
            )?;
            // A whole listing holds what deltas had added or taken away before it.
            tx.execute("DELETE FROM listing_delta", [])?;
            tx.commit()?;
            old
        };
        if let Some(old) = old {
            self.purge_gen(old)?;
        }
        Ok(())
    }

    /// Write a whole listing from an iterator, in chunks: memory stays bounded however many
    /// rows it yields. Returns how many rows were written.
    pub fn put_listing(
        &self,
        scope: &str,
        taken_at: SystemTime,
        rows: impl IntoIterator<Item = ListedInquiry>,
    ) -> Result<u64, StoreError> {
        let mut build = self.begin_listing(scope)?;
        let mut chunk = Vec::with_capacity(CHUNK);
        for r in rows {
            chunk.push(r);
            if chunk.len() == CHUNK {
                self.append_listing(&mut build, &chunk)?;
                chunk.clear();
            }
        }
        self.append_listing(&mut build, &chunk)?;
        let n = build.len();
        self.finish_listing(build, taken_at)?;
        Ok(n)
    }

    /// The current listing, if one was ever finished.
    pub fn listing(&self) -> Result<Option<ListingInfo>, StoreError> {
        let conn = self.conn.lock();
        let info = conn
            .prepare_cached(
                "SELECT scope, taken_at, count FROM listing_state WHERE current_gen IS NOT NULL",
            )?
            .query_row([], |r| {
                Ok(ListingInfo {
                    scope: r.get(0)?,
                    taken_at: time_from_db(r.get(1)?),
                    count: r.get::<_, i64>(2)? as u64,
                })
            })
            .optional()?;
        Ok(info)
    }

    /// Up to `limit` rows of the current listing from position `start` (0-based): row `k` of
    /// the result is at position `start + k`. Empty past the end or without a listing.
    pub fn listing_page(&self, start: u64, limit: usize) -> Result<Vec<ListedInquiry>, StoreError> {
        let conn = self.conn.lock();
        let Some(generation) = current_gen(&conn)? else {
            return Ok(Vec::new());
        };
        let mut stmt = conn.prepare_cached(
            "SELECT id, status, updated_at, redacted_at, created_at, reference_id, account_id
             FROM listing WHERE gen = ?1 AND pos >= ?2 ORDER BY pos LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![generation, start as i64, limit as i64], |r| {
                row(r, 0)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Where `id` is in the current listing and what its row showed (its first row, should
    /// Persona have listed it twice).
    pub fn listed(&self, id: &str) -> Result<Option<(u64, ListedInquiry)>, StoreError> {
        let conn = self.conn.lock();
        let Some(generation) = current_gen(&conn)? else {
            return Ok(None);
        };
        let found = conn
            .prepare_cached(
                "SELECT pos, id, status, updated_at, redacted_at, created_at, reference_id,
                     account_id FROM listing WHERE id = ?1 AND gen = ?2 ORDER BY pos LIMIT 1",
            )?
            .query_row(params![id, generation], |r| {
                Ok((r.get::<_, i64>(0)? as u64, row(r, 1)?))
            })
            .optional()?;
        Ok(found)
    }

    fn check_building(conn: &Connection, build: &ListingBuild) -> Result<(), StoreError> {
        let building: Option<i64> = conn
            .prepare_cached("SELECT building_gen FROM listing_state")?
            .query_row([], |r| r.get(0))?;
        if building != Some(build.generation) {
            return Err(StoreError::ListingAbandoned);
        }
        Ok(())
    }

    /// Delete a generation's rows, a chunk per transaction, letting other calls in between.
    fn purge_gen(&self, generation: i64) -> Result<(), StoreError> {
        loop {
            let conn = self.conn.lock();
            let n = conn
                .prepare_cached(
                    "DELETE FROM listing WHERE gen = ?1 AND pos IN
                         (SELECT pos FROM listing WHERE gen = ?1 ORDER BY pos LIMIT ?2)",
                )?
                .execute(params![generation, CHUNK as i64])?;
            if n == 0 {
                break;
            }
        }
        self.release_free_pages()
    }

    /// Give the pages freed by deletes back to the filesystem, a chunk per call.
    fn release_free_pages(&self) -> Result<(), StoreError> {
        let mut before = i64::MAX;
        loop {
            let conn = self.conn.lock();
            let free: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
            // Stops too should a file somehow lack incremental vacuum (nothing then moves).
            if free == 0 || free >= before {
                return Ok(());
            }
            before = free;
            // `incremental_vacuum` returns no rows; stepping it through does the work.
            let mut stmt = conn.prepare_cached("PRAGMA incremental_vacuum(2000)")?;
            let mut rows = stmt.query([])?;
            while rows.next()?.is_some() {}
        }
    }

    /// At open: rows of any generation but the current one are left-overs of a listing being
    /// built or of a purge cut short by a crash.
    pub(super) fn drop_unfinished_listings(&self) -> Result<(), StoreError> {
        {
            let conn = self.conn.lock();
            conn.execute("UPDATE listing_state SET building_gen = NULL", [])?;
        }
        loop {
            let stray: Option<i64> = {
                let conn = self.conn.lock();
                let current = current_gen(&conn)?.unwrap_or(0);
                conn.query_row(
                    "SELECT gen FROM listing WHERE gen < ?1
                     UNION ALL SELECT * FROM (SELECT gen FROM listing WHERE gen > ?1 LIMIT 1)
                     LIMIT 1",
                    [current],
                    |r| r.get(0),
                )
                .optional()?
            };
            match stray {
                Some(generation) => self.purge_gen(generation)?,
                None => return Ok(()),
            }
        }
    }
}
