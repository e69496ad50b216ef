//! The file: creating it, recognizing it, and rebuilding it when it cannot be trusted.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};

use super::StoreError;
use crate::cache::private_dir;

/// `PRAGMA application_id`: "PFSM" (personafs metadata). Another value means another
/// program's file.
pub(super) const APPLICATION_ID: i32 = 0x5046_534d;
/// `PRAGMA user_version`: bumped whenever the tables change; another value is rebuilt.
pub(super) const SCHEMA_VERSION: i32 = 3;

/// The tables that hold an inquiry's personal data (its `inquiry.json`, its file names):
/// rebuilt by a purge (`shred`), so created from here both times.
pub(super) const INQUIRY_TABLE: &str = "
CREATE TABLE inquiry (
    id          TEXT PRIMARY KEY,
    status      TEXT,
    created_at  INTEGER,
    updated_at  INTEGER,
    redacted_at INTEGER,
    checked_at  INTEGER NOT NULL,
    -- `inquiry.json` as the mount shows it (every access token replaced); NULL until known.
    json        BLOB
) WITHOUT ROWID;";
pub(super) const FILE_TABLE: &str = "
CREATE TABLE file (
    inquiry_id TEXT NOT NULL REFERENCES inquiry (id) ON DELETE CASCADE,
    section    TEXT NOT NULL CHECK (section IN ('document', 'selfie')),
    name       TEXT NOT NULL,
    ord        INTEGER NOT NULL,
    object_id  TEXT NOT NULL,
    role       TEXT NOT NULL,
    size       INTEGER,
    mtime      INTEGER NOT NULL,
    PRIMARY KEY (inquiry_id, section, name)
) WITHOUT ROWID;
";

const SCHEMA: &str = "
CREATE TABLE listing (
    gen         INTEGER NOT NULL,
    pos         INTEGER NOT NULL,
    id          TEXT NOT NULL,
    status      TEXT,
    updated_at  INTEGER,
    redacted_at INTEGER,
    created_at  INTEGER,
    PRIMARY KEY (gen, pos)
) WITHOUT ROWID;
CREATE INDEX listing_by_id ON listing (id);
CREATE TABLE listing_state (
    one          INTEGER PRIMARY KEY CHECK (one = 1),
    current_gen  INTEGER,
    scope        TEXT,
    taken_at     INTEGER,
    count        INTEGER NOT NULL DEFAULT 0,
    building_gen INTEGER,
    next_gen     INTEGER NOT NULL DEFAULT 1
);
INSERT INTO listing_state (one) VALUES (1);
CREATE TABLE cursor (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// Why a file found at open is not used.
enum Opened {
    Ready(Connection),
    Untrusted(String),
}

/// Open the store at `path`, rebuilding it once if it cannot be trusted. Returns the
/// connection and, if rebuilt, why.
pub(super) fn open_checked(
    dir: &Path,
    path: &Path,
) -> Result<(Connection, Option<String>), StoreError> {
    private_dir(dir)?;
    match open_once(path)? {
        Opened::Ready(conn) => Ok((conn, None)),
        Opened::Untrusted(why) => {
            tracing::warn!(
                store = %path.display(),
                "metadata store {why}: deleted and rebuilt empty"
            );
            remove_files(path)?;
            match open_once(path)? {
                Opened::Ready(conn) => Ok((conn, Some(why))),
                Opened::Untrusted(again) => Err(StoreError::Io(io::Error::other(format!(
                    "metadata store {}: a new store {again}",
                    path.display()
                )))),
            }
        }
    }
}

/// The store's file and SQLite's journal files beside it. Returns whether the store existed.
pub(super) fn remove_files(path: &Path) -> io::Result<bool> {
    let mut existed = false;
    for p in [
        path.to_path_buf(),
        suffixed(path, "-wal"),
        suffixed(path, "-shm"),
    ] {
        match fs::remove_file(&p) {
            Ok(()) => existed |= p == path,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(existed)
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Whether an error says the file is not (or no longer) a sound database.
fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

fn open_once(path: &Path) -> Result<Opened, StoreError> {
    // Created 0600 before SQLite sees it: its journal files take the same mode.
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    drop(f);
    for journal in [suffixed(path, "-wal"), suffixed(path, "-shm")] {
        if journal.exists() {
            fs::set_permissions(&journal, fs::Permissions::from_mode(0o600))?;
        }
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    match check_and_prepare(&conn) {
        Ok(None) => Ok(Opened::Ready(conn)),
        Ok(Some(why)) => Ok(Opened::Untrusted(why)),
        Err(e) if is_corruption(&e) => Ok(Opened::Untrusted(format!("is damaged ({e})"))),
        Err(e) => Err(e.into()),
    }
}

/// Recognize the file (or create the tables in an empty one) and set the connection up.
/// `Ok(Some(why))` when the file is not ours to trust.
fn check_and_prepare(conn: &Connection) -> Result<Option<String>, rusqlite::Error> {
    let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let tables: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))?;
    let fresh = app == 0 && version == 0 && tables == 0;
    if !fresh {
        if app != APPLICATION_ID {
            return Ok(Some(format!(
                "belongs to another application (application_id {app:#x})"
            )));
        }
        if version != SCHEMA_VERSION {
            return Ok(Some(format!(
                "has schema version {version}, this personafs uses {SCHEMA_VERSION}"
            )));
        }
        let check: String = conn.pragma_query_value(None, "quick_check", |r| r.get(0))?;
        if check != "ok" {
            return Ok(Some(format!("failed its integrity check ({check})")));
        }
    }
    if fresh {
        // Free pages (a replaced listing of a million rows is a hundred MiB) can be given back
        // to the filesystem, a chunk at a time (`MetadataStore::release_free_pages`). Only
        // possible on an empty file: before the WAL switch writes its first page.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    // WAL: a writer never blocks readers and a crash loses at most the transaction in
    // flight; NORMAL syncs at checkpoints, enough against a process crash (`kill -9`).
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Ok(Some(format!("cannot use a WAL journal (got {mode})")));
    }
    // Old page images (of a purge a `kill -9` interrupted before its checkpoint) leave the
    // WAL before anything else happens (`shred`).
    let _: (i64, i64, i64) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Deleted (redacted) rows are overwritten, not left readable in free pages; temporary
    // data stays in memory, never in a shared temp directory.
    conn.pragma_update(None, "secure_delete", true)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    if fresh {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(INQUIRY_TABLE)?;
        tx.execute_batch(FILE_TABLE)?;
        tx.execute_batch(SCHEMA)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
    }
    // Added after schema version 3 without changing it: older files gain them here.
    conn.execute_batch(super::delta::DELTA_TABLES)?;
    super::delta::add_key_columns(conn)?;
    Ok(None)
}
