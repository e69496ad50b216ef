//! The checksum each cache entry carries, checked on its first use after a start: it catches
//! files torn by a crash or damaged on disk. BLAKE3 rather than SHA-256: every byte downloaded
//! is hashed on the download's path, and BLAKE3 costs a fraction of SHA-256 per byte while
//! staying a cryptographic hash.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Hashes a file's bytes as they stream in.
#[derive(Default)]
pub struct Checksum(blake3::Hasher);

impl Checksum {
    pub fn new() -> Checksum {
        Checksum::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The hex digest stored in the entry's meta file.
    pub fn finish(&self) -> String {
        self.0.finalize().to_hex().to_string()
    }

    /// The checksum of `bytes` in one go.
    pub fn of(bytes: &[u8]) -> String {
        let mut c = Checksum::new();
        c.update(bytes);
        c.finish()
    }

    /// The checksum of a whole file, read in large blocks.
    pub fn of_file(file: &File) -> io::Result<String> {
        let mut c = Checksum::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut off = 0u64;
        loop {
            let n = file.read_at(&mut buf, off)?;
            if n == 0 {
                break;
            }
            c.update(&buf[..n]);
            off += n as u64;
        }
        Ok(c.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn streamed_whole_and_file_checksums_agree() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut streamed = Checksum::new();
        for part in data.chunks(70_001) {
            streamed.update(part);
        }
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&data).unwrap();
        assert_eq!(streamed.finish(), Checksum::of(&data));
        assert_eq!(Checksum::of_file(&f).unwrap(), Checksum::of(&data));
        assert_ne!(Checksum::of(&data[1..]), Checksum::of(&data));
        assert_eq!(Checksum::of(b"").len(), 64);
    }
}
