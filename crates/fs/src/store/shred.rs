//! Leaving no byte of a forgotten (redacted) inquiry in the store's files.
//!
//! `secure_delete` zeroes a deleted row's cell and every freed page, but SQLite leaves other
//! copies behind: a cell moved by a page split stays readable in the unused middle of its
//! old page, and a deleted key of a `WITHOUT ROWID` table (a file name) stays as a divider
//! in interior pages. So the tables that hold an inquiry's personal data (`inquiry`: its
//! `inquiry.json`; `file`: its file names) are rebuilt after a delete: their rows are copied
//! to memory (`temp_store = MEMORY`), the tables dropped (every page zeroed) and created
//! again. The listing (ids, statuses, times) holds nothing personal and is not touched.
//!
//! The WAL keeps old page images as frames until a checkpoint copies the newest of each page
//! into the database and `TRUNCATE` empties the file; it runs right after the purge commits,
//! and again at every open (a purge whose checkpoint a `kill -9` cut short).

use std::time::Duration;

use rusqlite::Connection;

use super::StoreError;
use super::schema::{FILE_TABLE, INQUIRY_TABLE};

/// Copy the personal tables' rows aside, drop the tables (zeroing their pages) and create
/// them again with the same rows. Runs inside the caller's transaction.
pub(super) fn rebuild_personal_tables(tx: &Connection) -> Result<(), rusqlite::Error> {
    tx.execute_batch(&format!(
        "CREATE TEMP TABLE kept_inquiry AS SELECT * FROM main.inquiry;
         CREATE TEMP TABLE kept_file AS SELECT * FROM main.file;
         DROP TABLE main.file;
         DROP TABLE main.inquiry;
         {INQUIRY_TABLE}
         {FILE_TABLE}
         INSERT INTO main.inquiry SELECT * FROM temp.kept_inquiry;
         INSERT INTO main.file SELECT * FROM temp.kept_file;
         DROP TABLE temp.kept_file;
         DROP TABLE temp.kept_inquiry;"
    ))
}

/// Tries of a checkpoint that readers keep from finishing, and the pause between them. Each
/// try already waits up to the connection's busy timeout for the readers to go.
const TRIES: u32 = 5;
const PAUSE: Duration = Duration::from_millis(50);

/// Copy every WAL frame into the database and empty the WAL file, so no older image of a
/// page (a deleted row) is left in it. Another process reading an old snapshot (`personafs
/// cache` commands) holds it up: waited for, tried again, and an error if it never lets go.
pub(super) fn truncate_wal(conn: &Connection) -> Result<(), StoreError> {
    for attempt in 1..=TRIES {
        let (busy, frames, copied): (i64, i64, i64) =
            conn.query_row("PRAGMA main.wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        if busy == 0 {
            return Ok(());
        }
        tracing::debug!(
            attempt,
            frames,
            copied,
            "metadata store: a reader holds up the checkpoint"
        );
        std::thread::sleep(PAUSE * attempt);
    }
    Err(StoreError::Io(std::io::Error::other(
        "a reader kept the WAL from being emptied",
    )))
}
