//! What a cached file is: its identity, never its (ever-changing) signed URL.

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub inquiry_id: String,
    pub object_id: String,
    /// The file's name in its directory: its role, made unique within the object.
    pub name: String,
    pub size: u64,
}

impl CacheKey {
    /// The entry's file name: a hash, so no id or filename shows in the cache directory.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for part in [&self.inquiry_id, &self.object_id, &self.name] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.update(self.size.to_le_bytes());
        hex::encode(h.finalize())
    }
}
