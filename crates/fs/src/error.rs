//! The filesystem's error: what went wrong, with its source when another layer's error caused
//! it. Which errno the kernel is answered with is the FUSE adapter's to say, in one place
//! (`fuse::errno::errno_of`, the contract's errno table); code here decides on variants.

use std::io;
use std::sync::Arc;
use std::time::Duration;

/// A failed filesystem operation. Its text never holds an API key, an access token or a
/// signed URL (client messages are redacted where they are made). `Clone`: one failed
/// download answers every reader waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FsError {
    /// No such inode, name or inquiry here.
    #[error("not found: {0}")]
    NotFound(String),
    /// The file existed when it was opened but is gone now (removed, inquiry redacted, size
    /// changed on the server, left the cache).
    #[error("file is gone: {0}")]
    Gone(String),
    /// A directory operation on a file.
    #[error("not a directory")]
    NotDir,
    /// A file operation (open) on a directory.
    #[error("is a directory")]
    IsDir,
    /// `readlink` of an inode that is not a view link.
    #[error("inode {0} is not a link")]
    NotLink(u64),
    /// A file handle the kernel never got, or one already released.
    #[error("bad file handle")]
    BadHandle,
    /// Persona (or the client on the way to it) failed, after any retries.
    #[error("{0}")]
    Persona(#[source] Arc<personafs_client::Error>),
    /// A local file operation failed (the cache's files, a download's temp file).
    #[error("{0}")]
    Io(#[source] Arc<io::Error>),
    /// A read waited longer than the I/O timeout for bytes from the network.
    #[error("reading {what}: no data for {after:?}")]
    TimedOut { what: String, after: Duration },
    /// A download ended, without an error of its own, before the bytes a read needs.
    #[error("{0} ended short")]
    EndedShort(String),
    /// Work handed to another task ended without an answer (it panicked or was cancelled).
    #[error("{doing}: {source}")]
    Task {
        doing: String,
        #[source]
        source: Arc<tokio::task::JoinError>,
    },
    /// Something that always answers went quiet: a request allowed to wait came back
    /// without an answer, a download's progress ended without a word.
    #[error("{0}")]
    NoAnswer(&'static str),
}

pub type FsResult<T> = Result<T, FsError>;

impl FsError {
    pub(crate) fn not_found(what: impl std::fmt::Display) -> FsError {
        FsError::NotFound(what.to_string())
    }

    /// The file existed when it was opened but is gone now (removed, inquiry redacted).
    pub(crate) fn gone(what: impl std::fmt::Display) -> FsError {
        FsError::Gone(what.to_string())
    }

    /// For `map_err` on a task's `JoinError`: what the task was doing.
    pub(crate) fn task(doing: impl Into<String>) -> impl FnOnce(tokio::task::JoinError) -> FsError {
        let doing = doing.into();
        move |e| FsError::Task {
            doing,
            source: Arc::new(e),
        }
    }
}

impl From<io::Error> for FsError {
    fn from(e: io::Error) -> FsError {
        FsError::Io(Arc::new(e))
    }
}

impl From<personafs_client::Error> for FsError {
    fn from(e: personafs_client::Error) -> FsError {
        FsError::Persona(Arc::new(e))
    }
}
