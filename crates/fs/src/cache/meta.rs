//! The small JSON file beside each entry.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct EntryMeta {
    pub inquiry_id: String,
    pub size: u64,
    /// BLAKE3 of the data file (`Checksum`). Entries of older versions, which carried a
    /// SHA-256 under another name, fail to parse and are downloaded again.
    #[serde(rename = "blake3")]
    pub checksum: String,
    /// Seconds since the epoch.
    pub cached_at: u64,
}

impl EntryMeta {
    pub fn read(path: &Path) -> io::Result<EntryMeta> {
        let bytes = fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Written to a temp file and renamed, so a reader never sees half a meta file.
    pub fn write(&self, path: &Path, tmp_dir: &Path) -> io::Result<()> {
        let tmp = tmp_dir.join(format!("meta.{:016x}", rand::random::<u64>()));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let res = f
            .write_all(&serde_json::to_vec(self).expect("meta serializes"))
            .and_then(|_| f.sync_all())
            .and_then(|_| fs::rename(&tmp, path));
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }
}
