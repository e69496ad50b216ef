//! Synthetic file bodies for the mock, computed on demand.
//!
//! Every body is a short list of pieces: small fixed byte strings (a JPEG's headers and scan,
//! a PDF's objects and xref) around a large region of deterministic filler. The filler is a
//! counter-based hash of (key, word index), so `read_at` of any range costs only the length
//! of that range and no file is ever held whole in memory — a 200 MB body costs 64 bytes.
//!
//! - JPEG: a small baseline image (different per seed) padded to the exact size with COM
//!   segments inserted before the scan; decoders skip them. EOI stays last.
//! - PDF: one page with a line of text, an unreferenced stream object of filler, xref, trailer.
//! - MP4: Motion-JPEG frames of a seeded photo in a real MP4 container (`mp4.rs`), padded
//!   to the exact size with a `free` box.
//! - Anything else: filler bytes.

use std::num::NonZeroUsize;
use std::sync::{Arc, LazyLock, Mutex};

use crate::data::{Content, MockFile};

/// SplitMix64's output function: a fast, well-mixed 64-bit hash.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a string, so that keys derived from names do not depend on `std`'s random hasher.
pub(crate) fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

/// A small deterministic PRNG (SplitMix64). Ours rather than `rand`'s so that a seed gives the
/// same dataset whatever `rand` version is linked.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(mix64(seed ^ 0x5EED_5EED_5EED_5EED))
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }
    /// Uniform in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// An independent stream, so that adding draws to one part of the generator does not shift
    /// every later part.
    pub(crate) fn fork(&mut self) -> Rng {
        Rng(mix64(self.next_u64()))
    }
}

/// Fill `buf` with the filler bytes at `pos..` of the stream named `key`.
fn fill_noise(key: u64, pos: u64, buf: &mut [u8]) {
    let word_bytes =
        |word: u64| mix64(key ^ word.wrapping_mul(0xD6E8_FEB8_6659_FD93)).to_le_bytes();
    let mut done = 0;
    // Unaligned head.
    let within = (pos % 8) as usize;
    if within != 0 {
        let bytes = word_bytes(pos / 8);
        let n = (8 - within).min(buf.len());
        buf[..n].copy_from_slice(&bytes[within..within + n]);
        done = n;
    }
    let mut word = (pos + done as u64) / 8;
    let mut chunks = buf[done..].chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&word_bytes(word));
        word += 1;
    }
    let tail = chunks.into_remainder();
    let n = tail.len();
    tail.copy_from_slice(&word_bytes(word)[..n]);
}

/// One part of a body.
enum Piece<'a> {
    Bytes(&'a [u8]),
    /// `bytes` `count` times over.
    Repeat {
        bytes: &'a [u8],
        count: u64,
    },
    Noise {
        len: u64,
        key: u64,
    },
    /// JPEG COM segments (or 1–3 fill bytes 0xFF when too short for a segment).
    ComPadding {
        len: u64,
        key: u64,
    },
}

impl Piece<'_> {
    fn len(&self) -> u64 {
        match self {
            Piece::Bytes(b) => b.len() as u64,
            Piece::Repeat { bytes, count } => bytes.len() as u64 * count,
            Piece::Noise { len, .. } | Piece::ComPadding { len, .. } => *len,
        }
    }
    fn read(&self, offset: u64, buf: &mut [u8]) {
        match self {
            Piece::Bytes(b) => {
                let start = offset as usize;
                buf.copy_from_slice(&b[start..start + buf.len()]);
            }
            Piece::Repeat { bytes, .. } => {
                let n = bytes.len() as u64;
                let mut done = 0;
                while done < buf.len() {
                    let at = ((offset + done as u64) % n) as usize;
                    let take = (bytes.len() - at).min(buf.len() - done);
                    buf[done..done + take].copy_from_slice(&bytes[at..at + take]);
                    done += take;
                }
            }
            Piece::Noise { key, .. } => fill_noise(*key, offset, buf),
            Piece::ComPadding { len, key } => read_com_padding(*len, *key, offset, buf),
        }
    }
}

/// Copy the bytes at `offset..offset + buf.len()` of the concatenation of `pieces`; bytes past
/// the end (never expected) are zero rather than a panic.
fn read_pieces(pieces: &[Piece], offset: u64, buf: &mut [u8]) {
    let end = offset + buf.len() as u64;
    let mut start = 0u64;
    for piece in pieces {
        let piece_end = start + piece.len();
        let lo = offset.max(start);
        let hi = end.min(piece_end);
        if lo < hi {
            let dst = &mut buf[(lo - offset) as usize..(hi - offset) as usize];
            piece.read(lo - start, dst);
        }
        start = piece_end;
        if start >= end {
            return;
        }
    }
    let covered = start.saturating_sub(offset).min(buf.len() as u64) as usize;
    buf[covered..].fill(0);
}

/// Largest COM segment: marker (2) + length field (2) + 65533 bytes of payload.
const MAX_COM_SEGMENT: u64 = 65537;

/// `len` bytes of COM segments, split as evenly as possible so that any offset maps to its
/// segment by arithmetic alone.
fn read_com_padding(len: u64, key: u64, offset: u64, buf: &mut [u8]) {
    if len < 4 {
        // Too short for a segment: fill bytes, which the spec allows before any marker.
        buf.fill(0xFF);
        return;
    }
    let count = len.div_ceil(MAX_COM_SEGMENT);
    let base = len / count;
    let long = len % count; // the first `long` segments are one byte longer
    let mut pos = offset;
    let mut i = 0;
    while i < buf.len() {
        let (seg_start, seg_len) = if pos < long * (base + 1) {
            let idx = pos / (base + 1);
            (idx * (base + 1), base + 1)
        } else {
            let idx = (pos - long * (base + 1)) / base;
            (long * (base + 1) + idx * base, base)
        };
        let within = pos - seg_start;
        let n = ((seg_len - within) as usize).min(buf.len() - i);
        let field = (seg_len - 2) as u16;
        let header = [0xFF, 0xFE, (field >> 8) as u8, field as u8];
        // Only a segment's first 4 bytes are its header; the rest is noise.
        for w in within..4.min(within + n as u64) {
            buf[i + (w - within) as usize] = header[w as usize];
        }
        if within + (n as u64) > 4 {
            let skip = 4u64.saturating_sub(within) as usize;
            fill_noise(key, pos + skip as u64, &mut buf[i + skip..i + n]);
        }
        i += n;
        pos += n as u64;
    }
}

/// Deterministic filler bytes of any size.
pub struct NoiseContent {
    len: u64,
    key: u64,
}

impl NoiseContent {
    pub fn new(len: u64, seed: u64) -> NoiseContent {
        NoiseContent {
            len,
            key: mix64(seed),
        }
    }
}

impl Content for NoiseContent {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) {
        fill_noise(self.key, offset, buf);
    }
}

/// An encoded small image, split just before its SOS marker (where the padding goes).
struct JpegCore {
    bytes: Vec<u8>,
    split: usize,
}

/// Recently used cores, so that reading a photo in chunks encodes it once, in bounded memory.
type CoreCache = lru::LruCache<(u64, u16, u16), Arc<JpegCore>>;

static JPEG_CORES: LazyLock<Mutex<CoreCache>> =
    LazyLock::new(|| Mutex::new(lru::LruCache::new(NonZeroUsize::new(64).expect("non-zero"))));

/// Image sizes tried from largest to smallest, with the body size each needs at least (a
/// generous bound on the encoded size, checked by a test).
const JPEG_DIMENSIONS: [(u16, u16, u64); 3] =
    [(320, 240, 64 * 1024), (64, 48, 8 * 1024), (8, 8, 1024)];

/// A valid baseline JPEG of an exact size: a seeded image padded with COM segments.
pub struct JpegContent {
    len: u64,
    key: u64,
    width: u16,
    height: u16,
}

impl JpegContent {
    /// `None` when `len` is too small for even the smallest image.
    pub fn new(len: u64, seed: u64) -> Option<JpegContent> {
        let &(width, height, _) = JPEG_DIMENSIONS.iter().find(|(_, _, min)| len >= *min)?;
        Some(JpegContent {
            len,
            key: mix64(seed ^ 0x4A50_4547),
            width,
            height,
        })
    }

    fn core(&self) -> Option<Arc<JpegCore>> {
        let id = (self.key, self.width, self.height);
        if let Some(core) = JPEG_CORES.lock().ok()?.get(&id) {
            return Some(core.clone());
        }
        // Encode outside the lock: readers of other photos need not wait.
        let core = Arc::new(encode_core(self.key, self.width, self.height)?);
        JPEG_CORES.lock().ok()?.put(id, core.clone());
        Some(core)
    }
}

impl Content for JpegContent {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) {
        match self.core() {
            Some(core) if core.bytes.len() as u64 <= self.len => {
                let pad = self.len - core.bytes.len() as u64;
                let pieces = [
                    Piece::Bytes(&core.bytes[..core.split]),
                    Piece::ComPadding {
                        len: pad,
                        key: self.key,
                    },
                    Piece::Bytes(&core.bytes[core.split..]),
                ];
                read_pieces(&pieces, offset, buf);
            }
            // Not expected (sizes are checked by tests); still exact-length bytes, no panic.
            _ => fill_noise(self.key, offset, buf),
        }
    }
}

/// Draw a seeded "photo of a card": background gradient, a card with a portrait ellipse and
/// lines of text-like blocks, and encode it.
fn encode_core(key: u64, width: u16, height: u16) -> Option<JpegCore> {
    let mut rng = Rng::new(key);
    let (w, h) = (usize::from(width), usize::from(height));
    let colour = |rng: &mut Rng| -> [u8; 3] {
        [
            rng.range(40, 230) as u8,
            rng.range(40, 230) as u8,
            rng.range(40, 230) as u8,
        ]
    };
    let (bg_top, bg_bottom, card, face, ink) = (
        colour(&mut rng),
        colour(&mut rng),
        colour(&mut rng),
        colour(&mut rng),
        [
            rng.range(0, 60) as u8,
            rng.range(0, 60) as u8,
            rng.range(0, 80) as u8,
        ],
    );
    let card_x0 = w * rng.range(4, 12) as usize / 100;
    let card_y0 = h * rng.range(6, 16) as usize / 100;
    let card_x1 = w - w * rng.range(4, 12) as usize / 100;
    let card_y1 = h - h * rng.range(6, 16) as usize / 100;
    let face_cx = card_x0 + (card_x1 - card_x0) * rng.range(18, 30) as usize / 100;
    let face_cy = (card_y0 + card_y1) / 2;
    let face_rx = ((card_x1 - card_x0) / 8).max(1);
    let face_ry = ((card_y1 - card_y0) / 3).max(1);
    let text_x0 = card_x0 + (card_x1 - card_x0) * 45 / 100;
    let line_h = ((card_y1 - card_y0) / 9).max(2);
    // Word pattern per line: bits decide which 8-pixel cells hold ink.
    let words: Vec<u64> = (0..9).map(|_| rng.next_u64()).collect();

    let mut pixels = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let mut px = [0u8; 3];
            for c in 0..3 {
                let (a, b) = (u32::from(bg_top[c]), u32::from(bg_bottom[c]));
                px[c] = ((a * (h - y) as u32 + b * y as u32) / h as u32) as u8;
            }
            if (card_x0..card_x1).contains(&x) && (card_y0..card_y1).contains(&y) {
                px = card;
                let (dx, dy) = (x as i64 - face_cx as i64, y as i64 - face_cy as i64);
                let (rx, ry) = (face_rx as i64, face_ry as i64);
                if dx * dx * ry * ry + dy * dy * rx * rx <= rx * rx * ry * ry {
                    px = face;
                } else if x >= text_x0 {
                    let line = (y - card_y0) / line_h;
                    let in_line = (y - card_y0) % line_h < line_h * 2 / 3;
                    let cell = ((x - text_x0) / 8) % 64;
                    if (1..8).contains(&line) && in_line && (words[line] >> cell) & 1 == 1 {
                        px = ink;
                    }
                }
            }
            pixels.extend_from_slice(&px);
        }
    }
    let mut bytes = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut bytes, 80);
    encoder
        .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
        .ok()?;
    let split = find_sos(&bytes)?;
    Some(JpegCore { bytes, split })
}

/// Offset of the SOS marker, walking the marker segments after SOI.
fn find_sos(jpeg: &[u8]) -> Option<usize> {
    let mut pos = 2;
    while pos + 4 <= jpeg.len() {
        if jpeg[pos] != 0xFF {
            return None;
        }
        if jpeg[pos + 1] == 0xDA {
            return Some(pos);
        }
        let seg_len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        pos += 2 + seg_len;
    }
    None
}

/// A one-page PDF whose size is made exact by an unreferenced stream of filler.
pub struct PdfContent {
    len: u64,
    key: u64,
    head: Vec<u8>,
    pad: u64,
    tail: Vec<u8>,
}

impl PdfContent {
    /// `None` when `len` is too small for the fixed structure (about 1 KB).
    pub fn new(len: u64, seed: u64, title: &str) -> Option<PdfContent> {
        let title: String = title
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || " _.-".contains(*c))
            .take(80)
            .collect();
        let text = format!("BT /F1 18 Tf 72 720 Td ({title}) Tj ET\n");
        let mut objects = String::from("%PDF-1.4\n%\u{e2}\u{e3}\u{cf}\u{d3}\n");
        // Byte offsets (the binary comment line is 4 two-byte UTF-8 chars; count bytes).
        let mut offsets = Vec::new();
        let bodies = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
             /Resources << /Font << /F1 5 0 R >> >> >>"
                .to_string(),
            format!("<< /Length {} >>\nstream\n{text}endstream", text.len()),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
        ];
        for (i, body) in bodies.iter().enumerate() {
            offsets.push(objects.len());
            objects.push_str(&format!("{} 0 obj\n{body}\nendobj\n", i + 1));
        }
        let filler_offset = objects.len();
        offsets.push(filler_offset);
        let filler_end = "\nendstream\nendobj\n";
        let mut xref = format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1);
        for off in &offsets {
            xref.push_str(&format!("{off:010} 00000 n \n"));
        }
        let trailer_end = " >>\nstartxref\n";
        xref.push_str(&format!(
            "trailer\n<< /Size {} /Root 1 0 R",
            offsets.len() + 1
        ));
        let eof = "\n%%EOF\n";
        // Solve for the filler length: the total also holds the digits of that length and of
        // the xref offset; `slack` spaces in the trailer (after the xref, so they do not move
        // it) absorb the cases where digit counts jump.
        let after_xref = (xref.len() + trailer_end.len() + eof.len()) as u64;
        let fixed = (filler_offset + "6 0 obj\n<< /Length ".len() + " >>\nstream\n".len()) as u64
            + filler_end.len() as u64
            + after_xref;
        for slack in 0..3u64 {
            for len_digits in 1..=20u64 {
                for xref_digits in 1..=20u64 {
                    let Some(pad) = len.checked_sub(fixed + slack + len_digits + xref_digits)
                    else {
                        continue;
                    };
                    let xref_offset = fixed - after_xref + len_digits + pad;
                    if digits(pad) != len_digits || digits(xref_offset) != xref_digits {
                        continue;
                    }
                    let spaces = " ".repeat(slack as usize);
                    let mut head = objects.into_bytes();
                    head.extend_from_slice(
                        format!("6 0 obj\n<< /Length {pad} >>\nstream\n").as_bytes(),
                    );
                    let tail = format!("{filler_end}{xref}{spaces}{trailer_end}{xref_offset}{eof}")
                        .into_bytes();
                    return Some(PdfContent {
                        len,
                        key: mix64(seed ^ 0x0050_4446),
                        head,
                        pad,
                        tail,
                    });
                }
            }
        }
        None
    }
}

fn digits(n: u64) -> u64 {
    n.checked_ilog10().map_or(1, |d| u64::from(d) + 1)
}

impl Content for PdfContent {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) {
        let pieces = [
            Piece::Bytes(&self.head),
            Piece::Noise {
                len: self.pad,
                key: self.key,
            },
            Piece::Bytes(&self.tail),
        ];
        read_pieces(&pieces, offset, buf);
    }
}

/// A playable MP4 of an exact size: Motion-JPEG frames of a seeded photo (see `mp4.rs`).
pub struct Mp4Content {
    len: u64,
    key: u64,
    width: u16,
    height: u16,
    /// Computed on first read: it needs the encoded frame.
    layout: std::sync::OnceLock<Option<(crate::mp4::Layout, Arc<JpegCore>)>>,
}

impl Mp4Content {
    /// `None` when `len` is too small for the boxes and one frame of the smallest image.
    pub fn new(len: u64, seed: u64) -> Option<Mp4Content> {
        let room = len.checked_sub(crate::mp4::prefix_len())?;
        // The largest image of which a few frames fit (bounds are generous, checked by a test).
        let &(width, height, _) = JPEG_DIMENSIONS
            .iter()
            .find(|(_, _, min)| room >= *min * 4)
            .or_else(|| JPEG_DIMENSIONS.iter().find(|(_, _, min)| room >= *min))?;
        Some(Mp4Content {
            len,
            key: mix64(seed ^ 0x004D_5034),
            width,
            height,
            layout: std::sync::OnceLock::new(),
        })
    }

    fn layout(&self) -> Option<&(crate::mp4::Layout, Arc<JpegCore>)> {
        self.layout
            .get_or_init(|| {
                let core = JpegContent {
                    len: 0,
                    key: self.key,
                    width: self.width,
                    height: self.height,
                }
                .core()?;
                let layout = crate::mp4::Layout::new(
                    self.len,
                    self.width,
                    self.height,
                    core.bytes.len() as u64,
                )?;
                Some((layout, core))
            })
            .as_ref()
    }
}

impl Content for Mp4Content {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) {
        let Some((layout, core)) = self.layout() else {
            // Not expected (sizes are checked by tests); still exact-length bytes, no panic.
            fill_noise(self.key, offset, buf);
            return;
        };
        let pieces = [
            Piece::Bytes(&layout.head),
            Piece::Repeat {
                bytes: &core.bytes,
                count: layout.frames,
            },
            Piece::Noise {
                len: layout.mdat_tail,
                key: self.key,
            },
            Piece::Bytes(&layout.free_head),
            Piece::Noise {
                len: layout
                    .free_len
                    .saturating_sub(layout.free_head.len() as u64),
                key: self.key,
            },
        ];
        read_pieces(&pieces, offset, buf);
    }
}

/// Lower-case extension of a filename, if any.
fn extension(filename: &str) -> Option<String> {
    let (stem, ext) = filename.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// The `Content-Type` Persona's files host would send for this filename.
pub fn content_type_for(filename: &str) -> &'static str {
    match extension(filename).as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("heic") => "image/heic",
        Some("tif" | "tiff") => "image/tiff",
        Some("pdf") => "application/pdf",
        Some("mp4") => "video/mp4",
        Some("mov") => "video/quicktime",
        Some("webm") => "video/webm",
        Some("json") => "application/json",
        Some("txt") => "text/plain",
        _ => "application/octet-stream",
    }
}

/// Deterministic bytes of exactly `size` for a file named `filename`: a real JPEG, PDF or MP4
/// when the extension says so and the size allows, filler otherwise.
pub fn sized_file(filename: &str, size: u64, seed: u64) -> MockFile {
    let seed = mix64(seed ^ hash_str(filename));
    let content_type = content_type_for(filename);
    let content: Arc<dyn Content> = match content_type {
        "image/jpeg" => JpegContent::new(size, seed).map(|c| Arc::new(c) as Arc<dyn Content>),
        "application/pdf" => {
            PdfContent::new(size, seed, filename).map(|c| Arc::new(c) as Arc<dyn Content>)
        }
        "video/mp4" | "video/quicktime" => {
            Mp4Content::new(size, seed).map(|c| Arc::new(c) as Arc<dyn Content>)
        }
        _ => None,
    }
    .unwrap_or_else(|| Arc::new(NoiseContent::new(size, seed)));
    MockFile {
        filename: filename.to_string(),
        content_type: content_type.to_string(),
        content,
    }
}

/// A whole body, read in one go (for tests).
#[cfg(test)]
pub(crate) fn read_all(content: &dyn Content) -> Vec<u8> {
    let mut buf = vec![0u8; content.len() as usize];
    content.read_at(0, &mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading any range must give the same bytes as reading the whole body.
    fn assert_ranges_consistent(content: &dyn Content, seed: u64) {
        let whole = read_all(content);
        let len = whole.len() as u64;
        let mut rng = Rng::new(seed);
        for _ in 0..200 {
            let start = rng.below(len);
            let n = rng.range(0, (len - start).min(100_000));
            let mut buf = vec![0xAAu8; n as usize];
            content.read_at(start, &mut buf);
            assert_eq!(
                buf,
                whole[start as usize..(start + n) as usize],
                "range {start}+{n}"
            );
        }
        // Every single byte at a few boundaries of the 8-byte words.
        for start in [0, 1, 7, 8, 9, len / 2, len - 1] {
            let mut b = [0u8; 1];
            content.read_at(start, &mut b);
            assert_eq!(b[0], whole[start as usize]);
        }
    }

    #[test]
    fn jpegs_decode_with_the_exact_length() {
        for (i, size) in [
            100_000u64, 100_001, 100_002, 100_003, 100_004, 777_777, 2_000_000,
        ]
        .into_iter()
        .enumerate()
        {
            let jpeg = JpegContent::new(size, i as u64).expect("size is large enough");
            let bytes = read_all(&jpeg);
            assert_eq!(bytes.len() as u64, size);
            assert_eq!(&bytes[..2], &[0xFF, 0xD8], "SOI first");
            assert_eq!(&bytes[bytes.len() - 2..], &[0xFF, 0xD9], "EOI last");
            let mut decoder = jpeg_decoder::Decoder::new(&bytes[..]);
            let pixels = decoder.decode().expect("decodes");
            let info = decoder.info().expect("info");
            assert_eq!((info.width, info.height), (320, 240));
            assert_eq!(pixels.len(), 320 * 240 * 3);
        }
    }

    #[test]
    fn small_jpegs_decode_too() {
        for size in [1024u64, 1500, 8 * 1024, 10_000, 64 * 1024] {
            let bytes = read_all(&JpegContent::new(size, size).expect("fits"));
            assert_eq!(bytes.len() as u64, size);
            jpeg_decoder::Decoder::new(&bytes[..])
                .decode()
                .unwrap_or_else(|e| panic!("size {size}: {e}"));
        }
        assert!(JpegContent::new(1023, 1).is_none());
    }

    #[test]
    fn jpeg_cores_fit_their_minimum_sizes() {
        for seed in 0..20 {
            for (w, h, min) in JPEG_DIMENSIONS {
                let core = encode_core(mix64(seed), w, h).expect("encodes");
                assert!(
                    (core.bytes.len() as u64) < min,
                    "{w}x{h}: {} bytes",
                    core.bytes.len()
                );
            }
        }
    }

    #[test]
    fn jpegs_differ_per_seed() {
        let a = JpegContent::new(100_000, 1).unwrap();
        let b = JpegContent::new(100_000, 2).unwrap();
        let (a, b) = (read_all(&a), read_all(&b));
        let pa = jpeg_decoder::Decoder::new(&a[..]).decode().unwrap();
        let pb = jpeg_decoder::Decoder::new(&b[..]).decode().unwrap();
        assert_ne!(pa, pb, "different pictures, not only different padding");
    }

    #[test]
    fn ranges_match_whole_reads() {
        assert_ranges_consistent(&JpegContent::new(300_000, 5).unwrap(), 1);
        assert_ranges_consistent(&PdfContent::new(50_000, 5, "statement.pdf").unwrap(), 2);
        assert_ranges_consistent(&Mp4Content::new(1_000_000, 5).unwrap(), 3);
        assert_ranges_consistent(&Mp4Content::new(20_000, 5).unwrap(), 5);
        assert_ranges_consistent(&NoiseContent::new(70_001, 5), 4);
    }

    #[test]
    fn pdfs_are_well_formed_at_every_size() {
        // Sizes around digit-count jumps of the filler length and the xref offset.
        let mut sizes: Vec<u64> = vec![20_000, 500_000, 123_457, 0, 100, 500];
        for p in [1_000u64, 10_000, 100_000, 1_000_000] {
            sizes.extend(p - 3..p + 1_000);
        }
        sizes.sort_unstable();
        let mut smallest = None;
        for size in sizes {
            let Some(pdf) = PdfContent::new(size, size, "bank_statement.pdf") else {
                assert!(
                    smallest.is_none(),
                    "size {size} has no layout, {smallest:?} had"
                );
                continue;
            };
            smallest.get_or_insert(size);
            assert_eq!(pdf.len(), size);
            check_pdf_structure(&pdf);
        }
    }

    fn read_range(content: &dyn Content, offset: u64, n: u64) -> Vec<u8> {
        let n = n.min(content.len() - offset);
        let mut buf = vec![0u8; n as usize];
        content.read_at(offset, &mut buf);
        buf
    }

    /// Header, trailer, and the xref table and `startxref` pointing at the objects they name;
    /// reads only the ends, so it stays cheap for large sizes.
    fn check_pdf_structure(pdf: &PdfContent) {
        let len = pdf.len();
        let head = read_range(pdf, 0, 2000);
        assert!(head.starts_with(b"%PDF-1.4\n"));
        let tail_start = len.saturating_sub(1000);
        let tail = read_range(pdf, tail_start, 1000);
        assert!(tail.ends_with(b"%%EOF\n"));
        let tail = String::from_utf8_lossy(&tail);
        let startxref: u64 = tail
            .rsplit("startxref\n")
            .next()
            .and_then(|s| s.lines().next())
            .and_then(|s| s.trim().parse().ok())
            .expect("startxref");
        let table = read_range(pdf, startxref, 200);
        assert!(
            table.starts_with(b"xref\n0 7\n"),
            "startxref {startxref} of {len}"
        );
        let table = String::from_utf8_lossy(&table);
        for (n, line) in table.lines().skip(3).take(6).enumerate() {
            let off: u64 = line[..10].parse().unwrap();
            let expect = format!("{} 0 obj\n", n + 1);
            let at = read_range(pdf, off, expect.len() as u64);
            assert_eq!(at, expect.as_bytes(), "object {}", n + 1);
        }
        let head = String::from_utf8_lossy(&head);
        let declared: u64 = head
            .split("6 0 obj\n<< /Length ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .expect("filler length");
        assert_eq!(declared, pdf.pad);
        // The filler stream ends exactly where `endstream` is expected.
        let after_6 = head.rfind("6 0 obj").unwrap();
        let data_start = head[after_6..].find("stream\n").unwrap() + after_6 + "stream\n".len();
        let end = read_range(pdf, data_start as u64 + declared, 10);
        assert_eq!(end, b"\nendstream");
    }

    #[test]
    fn mp4_is_ftyp_moov_mdat_of_jpeg_frames_and_free_covering_the_file() {
        for len in [1_500_000u64, 1_000_003, 5_000_000, 3_000] {
            let bytes = read_all(&Mp4Content::new(len, 9).unwrap());
            assert_eq!(bytes.len() as u64, len);
            let mut kinds = Vec::new();
            let mut pos = 0usize;
            let mut mdat_body = 0..0;
            while pos < bytes.len() {
                let size = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
                let kind = String::from_utf8_lossy(&bytes[pos + 4..pos + 8]).to_string();
                if kind == "mdat" {
                    mdat_body = pos + 8..pos + size;
                }
                kinds.push(kind);
                pos += size;
            }
            assert_eq!(pos, bytes.len(), "{len}: boxes cover the file");
            assert_eq!(kinds[..3], ["ftyp", "moov", "mdat"], "{len}");
            // The first sample is a whole JPEG that decodes.
            let frame = &bytes[mdat_body];
            let mut decoder = jpeg_decoder::Decoder::new(frame);
            decoder.decode().unwrap_or_else(|e| panic!("{len}: {e}"));
        }
        let huge = Mp4Content::new(5 << 30, 1).unwrap();
        let mut tail = [0u8; 1];
        huge.read_at((5 << 30) - 1, &mut tail);
        assert!(Mp4Content::new(100, 1).is_none());
    }

    #[test]
    fn sized_file_picks_type_and_exact_size() {
        for (name, size, ty) in [
            ("selfie_photo.jpg", 150_000, "image/jpeg"),
            ("IMAGE.JPEG", 5_000, "image/jpeg"),
            ("statement.pdf", 30_000, "application/pdf"),
            ("tiny.pdf", 10, "application/pdf"),
            ("video.mp4", 2_000, "video/mp4"),
            ("blob", 65_536, "application/octet-stream"),
            ("empty.png", 0, "image/png"),
        ] {
            let file = sized_file(name, size, 7);
            assert_eq!(file.filename, name);
            assert_eq!(file.content_type, ty);
            assert_eq!(file.content.len(), size);
            assert_eq!(read_all(file.content.as_ref()).len() as u64, size);
        }
        let jpeg = read_all(sized_file("x.jpg", 200_000, 1).content.as_ref());
        jpeg_decoder::Decoder::new(&jpeg[..])
            .decode()
            .expect("decodes");
        let pdf = read_all(sized_file("x.pdf", 200_000, 1).content.as_ref());
        assert!(pdf.starts_with(b"%PDF-"));
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = read_all(sized_file("a.pdf", 40_000, 1).content.as_ref());
        let b = read_all(sized_file("a.pdf", 40_000, 1).content.as_ref());
        let c = read_all(sized_file("a.pdf", 40_000, 2).content.as_ref());
        let d = read_all(sized_file("b.pdf", 40_000, 1).content.as_ref());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn large_bodies_read_anywhere_quickly() {
        let size = 250 * 1024 * 1024;
        let pdf = PdfContent::new(size, 3, "large.pdf").unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        for offset in [0, size / 3, size - buf.len() as u64] {
            pdf.read_at(offset, &mut buf);
        }
        let mut end = [0u8; 6];
        pdf.read_at(size - 6, &mut end);
        assert_eq!(&end, b"%%EOF\n");
    }
}
