//! The persisted metadata store: what personafs knows about each inquiry, kept across mounts
//! in `<cache_dir>/metadata.sqlite` (SQLite, WAL journal, 0600 in a 0700 directory).
//!
//! It holds the token-free view only: an inquiry's id, status, times and its files' section,
//! name, object id, role, size and mtime; the last listing (ids in order with the `updated-at`,
//! `status` and `redacted-at` it showed); and small cursors. Never a URL, a token or the key:
//! the types below have no field for one, and every text written is checked (`StoreError::
//! Secret`) so that a signed URL slipped into a name cannot reach the disk.
//!
//! Every write is one transaction: after a crash (even `kill -9`) an inquiry is either wholly
//! there as last written or as before. A file that is not a SQLite database, belongs to another
//! application, has another schema version or fails its integrity check is deleted and rebuilt
//! empty with one warning: it is a cache of what Persona says, never trusted beyond that.
//!
//! All methods block (local disk, usually well under a millisecond; a listing of a million
//! rows takes seconds): call them from `tokio::task::spawn_blocking` or another blocking
//! thread, never from an async task directly. The store is `Send + Sync`; one connection
//! behind a mutex serializes the calls.

mod codec;
mod delta;
pub(crate) use codec::{time_from_db, time_to_db};
pub use delta::ListingChange;
mod error;
mod listing;
mod schema;
mod shred;

#[cfg(test)]
mod shred_tests;
#[cfg(test)]
mod tests;

pub use error::StoreError;
pub use listing::{ListedInquiry, ListingBuild, ListingInfo};

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use parking_lot::Mutex;
use personafs_client::{RemoteFile, RetrievedInquiry, Section};
use rusqlite::{Connection, OptionalExtension, params};

use codec::{check_clean, check_clean_json, section_from_db, section_to_db};

/// The store's file name inside the cache directory.
pub const FILE_NAME: &str = "metadata.sqlite";

/// One file of an inquiry as the mount shows it, without its (secret, expiring) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub section: Section,
    /// The file's name in its section directory (unique there).
    pub name: String,
    pub object_id: String,
    pub role: String,
    /// `None` until known (the API gave none and no HEAD was made yet).
    pub size: Option<u64>,
    pub mtime: SystemTime,
}

impl StoredFile {
    /// The token-free part of a file the client found: everything but the URL.
    pub fn from_remote(file: &RemoteFile) -> StoredFile {
        StoredFile {
            section: file.section,
            name: file.name.clone(),
            object_id: file.object_id.clone(),
            role: file.role.clone(),
            size: file.size,
            mtime: file.mtime,
        }
    }
}

/// The token-free view of one inquiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInquiry {
    pub id: String,
    pub status: Option<String>,
    pub created_at: Option<SystemTime>,
    pub updated_at: Option<SystemTime>,
    pub redacted_at: Option<SystemTime>,
    /// When Persona last confirmed this view (a retrieve, or a listing row whose
    /// `updated-at` matched).
    pub checked_at: SystemTime,
    /// In the order the mount shows them. Always empty when `redacted_at` is set.
    pub files: Vec<StoredFile>,
}

impl StoredInquiry {
    /// The view of a retrieved inquiry and the files `files_of` found in it. `updated_at` is
    /// passed apart because the client's model does not carry it yet.
    pub fn from_retrieved(
        inquiry: &RetrievedInquiry,
        files: &[RemoteFile],
        updated_at: Option<SystemTime>,
        checked_at: SystemTime,
    ) -> StoredInquiry {
        StoredInquiry {
            id: inquiry.id.clone(),
            status: inquiry.status.clone(),
            created_at: inquiry.created_at.map(SystemTime::from),
            updated_at,
            redacted_at: inquiry.redacted_at.map(SystemTime::from),
            checked_at,
            files: files.iter().map(StoredFile::from_remote).collect(),
        }
    }
}

/// How much the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreCounts {
    pub inquiries: u64,
    pub files: u64,
    /// Rows of the current listing.
    pub listed: u64,
}

/// The metadata store of one cache directory. See the module documentation.
pub struct MetadataStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    rebuilt: Option<String>,
}

impl std::fmt::Debug for MetadataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl MetadataStore {
    /// Open the store in `cache_dir` (created 0700 if missing), creating it if new, rebuilding
    /// it empty (one warning) if it cannot be trusted.
    pub fn open(cache_dir: &Path) -> Result<MetadataStore, StoreError> {
        let path = cache_dir.join(FILE_NAME);
        let (conn, rebuilt) = schema::open_checked(cache_dir, &path)?;
        let store = MetadataStore {
            conn: Mutex::new(conn),
            path,
            rebuilt,
        };
        // A listing being built when the last process stopped can never be finished now.
        store.drop_unfinished_listings()?;
        Ok(store)
    }

    /// Delete the store of `cache_dir` (its file and journal files), e.g. for `cache clear`.
    /// Only when no mount uses the directory. Returns whether there was one.
    pub fn remove(cache_dir: &Path) -> std::io::Result<bool> {
        schema::remove_files(&cache_dir.join(FILE_NAME))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why the store found at open was rebuilt empty, if it was.
    pub fn rebuilt(&self) -> Option<&str> {
        self.rebuilt.as_deref()
    }

    /// Replace an inquiry's view and its files, in one transaction. A redacted inquiry keeps
    /// no files (only what Persona's redacted body shows: id, status, times, `inquiry.json`). Its stored `inquiry.json` is forgotten (it belongs to an older view).
    pub fn put_inquiry(&self, inquiry: &StoredInquiry) -> Result<(), StoreError> {
        self.put(inquiry, None)
    }

    /// `put_inquiry` with the view's `inquiry.json` (the token-free bytes the mount shows),
    /// so it can be served without a retrieve.
    pub fn put_inquiry_with_json(
        &self,
        inquiry: &StoredInquiry,
        json: &[u8],
    ) -> Result<(), StoreError> {
        check_clean_json(json)?;
        self.put(inquiry, Some(json))
    }

    /// The stored `inquiry.json` of an inquiry, if one was stored with its current view.
    pub fn get_inquiry_json(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .lock()
            .prepare_cached("SELECT json FROM inquiry WHERE id = ?1")?
            .query_row([id], |r| r.get::<_, Option<Vec<u8>>>(0))
            .optional()?
            .flatten())
    }

    fn put(&self, inquiry: &StoredInquiry, json: Option<&[u8]>) -> Result<(), StoreError> {
        check_clean("inquiry id", &inquiry.id)?;
        if let Some(s) = &inquiry.status {
            check_clean("status", s)?;
        }
        let files: &[StoredFile] = if inquiry.redacted_at.is_some() {
            &[]
        } else {
            &inquiry.files
        };
        for f in files {
            check_clean("file name", &f.name)?;
            check_clean("object id", &f.object_id)?;
            check_clean("role", &f.role)?;
        }
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        tx.prepare_cached(
            "INSERT INTO inquiry (id, status, created_at, updated_at, redacted_at, checked_at, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO UPDATE SET status = ?2, created_at = ?3, updated_at = ?4,
                 redacted_at = ?5, checked_at = ?6, json = ?7",
        )?
        .execute(params![
            inquiry.id,
            inquiry.status,
            inquiry.created_at.map(time_to_db),
            inquiry.updated_at.map(time_to_db),
            inquiry.redacted_at.map(time_to_db),
            time_to_db(inquiry.checked_at),
            json,
        ])?;
        tx.prepare_cached("DELETE FROM file WHERE inquiry_id = ?1")?
            .execute([&inquiry.id])?;
        if let Some(updated) = inquiry.updated_at {
            // As new as what a delta reported: no longer stale.
            tx.prepare_cached("DELETE FROM stale WHERE id = ?1 AND updated_at <= ?2")?
                .execute(params![inquiry.id, time_to_db(updated)])?;
        }
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO file (inquiry_id, section, name, ord, object_id, role, size, mtime)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for (ord, f) in files.iter().enumerate() {
                insert.execute(params![
                    inquiry.id,
                    section_to_db(f.section),
                    f.name,
                    ord as i64,
                    f.object_id,
                    f.role,
                    f.size.map(|s| s as i64),
                    time_to_db(f.mtime),
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// An inquiry's view as last stored.
    pub fn get_inquiry(&self, id: &str) -> Result<Option<StoredInquiry>, StoreError> {
        let conn = self.conn.lock();
        let head = conn
            .prepare_cached(
                "SELECT status, created_at, updated_at, redacted_at, checked_at
                 FROM inquiry WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .optional()?;
        let Some((status, created_at, updated_at, redacted_at, checked_at)) = head else {
            return Ok(None);
        };
        let mut stmt = conn.prepare_cached(
            "SELECT section, name, object_id, role, size, mtime
             FROM file WHERE inquiry_id = ?1 ORDER BY ord",
        )?;
        let files = stmt
            .query_map([id], |r| {
                Ok(StoredFile {
                    section: section_from_db(r.get_ref(0)?.as_str()?)
                        .ok_or_else(|| codec::bad_value(0, "section"))?,
                    name: r.get(1)?,
                    object_id: r.get(2)?,
                    role: r.get(3)?,
                    size: r.get::<_, Option<i64>>(4)?.map(|s| s as u64),
                    mtime: time_from_db(r.get(5)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(StoredInquiry {
            id: id.to_string(),
            status,
            created_at: created_at.map(time_from_db),
            updated_at: updated_at.map(time_from_db),
            redacted_at: redacted_at.map(time_from_db),
            checked_at: time_from_db(checked_at),
            files,
        }))
    }

    /// Forget an inquiry and its files (it was redacted, or is gone), leaving no byte of them
    /// in the store's files (`shred`): when this returns, the database and its WAL hold
    /// nothing of the inquiry but the listing's row (id, status, times). Returns whether it
    /// was stored.
    pub fn delete_inquiry(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.delete_inquiries(&[id])? > 0)
    }

    /// `delete_inquiry` for many at once, with one rebuild of the tables (a rebuild costs
    /// about as much as the store is large: a delta's ten redactions pay it once). Returns
    /// how many were stored.
    pub fn delete_inquiries(&self, ids: &[&str]) -> Result<usize, StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let mut deleted = 0;
        for id in ids {
            // A reference id or account can name the person: the listing's row keeps neither.
            for sql in [
                "UPDATE listing SET reference_id = NULL, account_id = NULL WHERE id = ?1",
                "UPDATE listing_delta SET reference_id = NULL, account_id = NULL WHERE id = ?1",
                "DELETE FROM file WHERE inquiry_id = ?1",
                "DELETE FROM stale WHERE id = ?1",
            ] {
                tx.prepare_cached(sql)?.execute([id])?;
            }
            deleted += tx
                .prepare_cached("DELETE FROM inquiry WHERE id = ?1")?
                .execute([id])?;
        }
        if deleted == 0 {
            tx.commit()?;
            return Ok(0); // no view stored: nothing more to overwrite
        }
        shred::rebuild_personal_tables(&tx)?;
        tx.commit()?;
        // The rebuild changed the tables' pages: cached statements must prepare anew.
        conn.flush_prepared_statement_cache();
        shred::truncate_wal(&conn)?;
        Ok(deleted)
    }

    /// Persona confirmed the stored view at `at` (a listing row with the same `updated-at`).
    /// Returns whether the inquiry is stored.
    pub fn mark_checked(&self, id: &str, at: SystemTime) -> Result<bool, StoreError> {
        let n = self
            .conn
            .lock()
            .prepare_cached("UPDATE inquiry SET checked_at = ?2 WHERE id = ?1")?
            .execute(params![id, time_to_db(at)])?;
        Ok(n > 0)
    }

    /// Record a file's size learnt later (by a HEAD). Returns whether the file is stored.
    pub fn set_file_size(
        &self,
        inquiry_id: &str,
        section: Section,
        name: &str,
        size: u64,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn
            .lock()
            .prepare_cached(
                "UPDATE file SET size = ?4 WHERE inquiry_id = ?1 AND section = ?2 AND name = ?3",
            )?
            .execute(params![
                inquiry_id,
                section_to_db(section),
                name,
                size as i64
            ])?;
        Ok(n > 0)
    }

    /// A cursor saved by `set_cursor` (e.g. the events cursor).
    pub fn get_cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .lock()
            .prepare_cached("SELECT value FROM cursor WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?)
    }

    pub fn set_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        check_clean("cursor name", name)?;
        check_clean("cursor", value)?;
        self.conn
            .lock()
            .prepare_cached(
                "INSERT INTO cursor (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = ?2",
            )?
            .execute([name, value])?;
        Ok(())
    }

    pub fn counts(&self) -> Result<StoreCounts, StoreError> {
        let conn = self.conn.lock();
        let count = |sql: &str| -> Result<u64, rusqlite::Error> {
            conn.prepare_cached(sql)?
                .query_row([], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
        };
        Ok(StoreCounts {
            inquiries: count("SELECT COUNT(*) FROM inquiry")?,
            files: count("SELECT COUNT(*) FROM file")?,
            listed: count(
                "SELECT COALESCE((SELECT count FROM listing_state WHERE current_gen IS NOT NULL), 0)",
            )?,
        })
    }
}
