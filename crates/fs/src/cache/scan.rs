//! A read-only look at a cache directory, for `personafs cache stats`: safe beside a live
//! mount because it deletes, prunes and creates nothing.

use std::fs;
use std::io;
use std::path::Path;

use super::meta::EntryMeta;

/// What a cache directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanStats {
    /// Complete entries (a data file with a meta file of the same length).
    pub entries: usize,
    pub bytes: u64,
    /// Files in `tmp/`: downloads in progress (or left by a crash, for the next mount to
    /// clean up).
    pub temp_files: usize,
    pub temp_bytes: u64,
}

/// Count what `root` holds. A missing directory holds nothing.
pub fn scan(root: &Path) -> io::Result<ScanStats> {
    let mut stats = ScanStats::default();
    let data = root.join("data");
    match fs::read_dir(&data) {
        Ok(dir) => {
            for entry in dir.flatten() {
                let name = entry.file_name();
                let Some(digest) = name.to_str().and_then(|n| n.strip_suffix(".meta")) else {
                    continue;
                };
                let Ok(meta) = EntryMeta::read(&entry.path()) else {
                    continue;
                };
                if fs::metadata(data.join(digest)).is_ok_and(|m| m.len() == meta.size) {
                    stats.entries += 1;
                    stats.bytes += meta.size;
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    match fs::read_dir(root.join("tmp")) {
        Ok(dir) => {
            for entry in dir.flatten() {
                if let Ok(m) = entry.metadata()
                    && m.is_file()
                {
                    stats.temp_files += 1;
                    stats.temp_bytes += m.len();
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(stats)
}
