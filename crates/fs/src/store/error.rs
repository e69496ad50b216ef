//! What can go wrong with the store.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("metadata store: {0}")]
    Io(#[from] std::io::Error),
    /// A value to be written looks like a URL, a signature or a key: refused, never stored.
    /// (The value itself is a secret: never in the message.)
    #[error("metadata store: refused to store a {field} that looks like a URL or a secret")]
    Secret { field: &'static str },
    /// A newer listing was begun: this one can no longer be appended to or finished.
    #[error("metadata store: this listing was replaced by a newer one")]
    ListingAbandoned,
}
