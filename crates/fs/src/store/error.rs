//! What can go wrong with the store.

use std::fmt;

#[derive(Debug)]
pub enum StoreError {
    Sqlite(rusqlite::Error),
    Io(std::io::Error),
    /// A value to be written looks like a URL, a signature or a key: refused, never stored.
    Secret {
        field: &'static str,
    },
    /// A newer listing was begun: this one can no longer be appended to or finished.
    ListingAbandoned,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Sqlite(e) => write!(f, "metadata store: {e}"),
            StoreError::Io(e) => write!(f, "metadata store: {e}"),
            // The value itself is a secret: never in the message.
            StoreError::Secret { field } => write!(
                f,
                "metadata store: refused to store a {field} that looks like a URL or a secret"
            ),
            StoreError::ListingAbandoned => {
                write!(
                    f,
                    "metadata store: this listing was replaced by a newer one"
                )
            }
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Sqlite(e) => Some(e),
            StoreError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}
