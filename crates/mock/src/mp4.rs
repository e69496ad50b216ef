//! A playable MP4 of an exact size: Motion-JPEG frames of a generated photo, written by hand.
//!
//! Layout: `ftyp`, `moov` (one video track whose sample entry is QuickTime's `jpeg`, which
//! ffmpeg and most players decode as MJPEG), `mdat` holding the frames (all the same JPEG, one
//! chunk), then a `free` box of filler up to the exact size. A remainder too small for a box
//! (1–7 bytes) stays inside `mdat` after the frames, where no sample points.
//!
//! The `moov` box has a fixed size whatever the frame size and count, so the whole layout is
//! known from the size alone except the frame bytes, which are encoded on first read.

/// Frames per second of the video (the media timescale is milliseconds).
const FPS: u32 = 10;
const TIMESCALE: u32 = 1000;
/// At most this many frames (3 seconds); fewer when the size allows fewer.
pub const MAX_FRAMES: u64 = 30;

/// `ftyp`: ISO base media, compatible with the common brands.
fn ftyp() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(b"isom");
    body.extend_from_slice(&0x200u32.to_be_bytes());
    for brand in [b"isom", b"iso2", b"mp41"] {
        body.extend_from_slice(brand);
    }
    mp4_box(b"ftyp", &body)
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// `moov` for `frames` samples of `frame_len` bytes each, `width`×`height`, the first sample at
/// byte `data_offset` of the file.
pub fn moov(width: u16, height: u16, frames: u32, frame_len: u32, data_offset: u32) -> Vec<u8> {
    let delta = TIMESCALE / FPS;
    let duration = frames * delta;

    let mut mvhd = full(0, 0);
    for v in [0u32, 0, TIMESCALE, duration, 0x0001_0000] {
        mvhd.extend_from_slice(&v.to_be_bytes());
    }
    mvhd.extend_from_slice(&0x0100u16.to_be_bytes()); // volume
    mvhd.extend_from_slice(&[0; 10]);
    MATRIX
        .iter()
        .for_each(|v| mvhd.extend_from_slice(&v.to_be_bytes()));
    mvhd.extend_from_slice(&[0; 24]);
    mvhd.extend_from_slice(&2u32.to_be_bytes()); // next track id

    let mut tkhd = full(0, 3); // enabled, in movie
    for v in [0u32, 0, 1, 0, duration, 0, 0] {
        tkhd.extend_from_slice(&v.to_be_bytes());
    }
    tkhd.extend_from_slice(&[0; 8]); // layer, alternate group, volume, reserved
    MATRIX
        .iter()
        .for_each(|v| tkhd.extend_from_slice(&v.to_be_bytes()));
    tkhd.extend_from_slice(&(u32::from(width) << 16).to_be_bytes());
    tkhd.extend_from_slice(&(u32::from(height) << 16).to_be_bytes());

    let mut mdhd = full(0, 0);
    for v in [0u32, 0, TIMESCALE, duration] {
        mdhd.extend_from_slice(&v.to_be_bytes());
    }
    mdhd.extend_from_slice(&0x55C4u16.to_be_bytes()); // "und"
    mdhd.extend_from_slice(&[0; 2]);

    let mut hdlr = full(0, 0);
    hdlr.extend_from_slice(&[0; 4]);
    hdlr.extend_from_slice(b"vide");
    hdlr.extend_from_slice(&[0; 12]);
    hdlr.extend_from_slice(b"VideoHandler\0");

    let mut vmhd = full(0, 1);
    vmhd.extend_from_slice(&[0; 8]);

    let mut dref = full(0, 0);
    dref.extend_from_slice(&1u32.to_be_bytes());
    dref.extend_from_slice(&mp4_box(b"url ", &full(0, 1))); // media in this file
    let dinf = mp4_box(b"dinf", &mp4_box(b"dref", &dref));

    // VisualSampleEntry 'jpeg' (Photo-JPEG): one JPEG image per sample.
    let mut entry = vec![0; 6];
    entry.extend_from_slice(&1u16.to_be_bytes()); // data reference index
    entry.extend_from_slice(&[0; 16]);
    entry.extend_from_slice(&width.to_be_bytes());
    entry.extend_from_slice(&height.to_be_bytes());
    entry.extend_from_slice(&0x0048_0000u32.to_be_bytes()); // 72 dpi
    entry.extend_from_slice(&0x0048_0000u32.to_be_bytes());
    entry.extend_from_slice(&[0; 4]);
    entry.extend_from_slice(&1u16.to_be_bytes()); // frame count per sample
    let mut name = [0u8; 32];
    let label = b"Photo - JPEG";
    name[0] = label.len() as u8;
    name[1..=label.len()].copy_from_slice(label);
    entry.extend_from_slice(&name);
    entry.extend_from_slice(&0x0018u16.to_be_bytes()); // depth
    entry.extend_from_slice(&(-1i16).to_be_bytes());
    let mut stsd = full(0, 0);
    stsd.extend_from_slice(&1u32.to_be_bytes());
    stsd.extend_from_slice(&mp4_box(b"jpeg", &entry));

    let table = |values: &[u32]| {
        let mut b = full(0, 0);
        values
            .iter()
            .for_each(|v| b.extend_from_slice(&v.to_be_bytes()));
        b
    };
    let stbl = [
        mp4_box(b"stsd", &stsd),
        mp4_box(b"stts", &table(&[1, frames, delta])),
        mp4_box(b"stsc", &table(&[1, 1, frames, 1])),
        mp4_box(b"stsz", &table(&[frame_len, frames])),
        mp4_box(b"stco", &table(&[1, data_offset])),
    ]
    .concat();
    let minf = [mp4_box(b"vmhd", &vmhd), dinf, mp4_box(b"stbl", &stbl)].concat();
    let mdia = [
        mp4_box(b"mdhd", &mdhd),
        mp4_box(b"hdlr", &hdlr),
        mp4_box(b"minf", &minf),
    ]
    .concat();
    let trak = [mp4_box(b"tkhd", &tkhd), mp4_box(b"mdia", &mdia)].concat();
    let moov = [mp4_box(b"mvhd", &mvhd), mp4_box(b"trak", &trak)].concat();
    mp4_box(b"moov", &moov)
}

/// The start of a full box's body: version and flags.
fn full(version: u8, flags: u32) -> Vec<u8> {
    let mut b = flags.to_be_bytes().to_vec();
    b[0] = version;
    b
}

/// A box with a 32-bit size.
pub fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + body.len());
    b.extend_from_slice(&(8 + body.len() as u32).to_be_bytes());
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

/// The header of a box of `size` bytes in all (64-bit "largesize" form past 4 GiB - 1).
pub fn box_header(kind: &[u8; 4], size: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(16);
    match u32::try_from(size) {
        Ok(size) => b.extend_from_slice(&size.to_be_bytes()),
        Err(_) => {
            b.extend_from_slice(&1u32.to_be_bytes());
            b.extend_from_slice(kind);
            b.extend_from_slice(&size.to_be_bytes());
            return b;
        }
    }
    b.extend_from_slice(kind);
    b
}

/// Bytes before the first frame: `ftyp`, `moov` and the `mdat` header.
pub fn prefix_len() -> u64 {
    (ftyp().len() + moov(1, 1, 1, 1, 0).len() + 8) as u64
}

/// Where every byte of one MP4 file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `ftyp` + `moov` + `mdat` header.
    pub head: Vec<u8>,
    pub frames: u64,
    /// Bytes of `mdat` after the frames (0–7).
    pub mdat_tail: u64,
    /// Header of the trailing `free` box (empty when there is none); the rest is filler.
    pub free_head: Vec<u8>,
    pub free_len: u64,
}

impl Layout {
    /// The layout of a `len`-byte file of `frame_len`-byte `width`×`height` frames, or `None`
    /// when not even one frame fits.
    pub fn new(len: u64, width: u16, height: u16, frame_len: u64) -> Option<Layout> {
        let room = len.checked_sub(prefix_len())?;
        let frames = (room / frame_len.max(1)).min(MAX_FRAMES);
        if frames == 0 {
            return None;
        }
        let rest = room - frames * frame_len;
        let (mdat_tail, free_len) = if rest < 16 { (rest, 0) } else { (0, rest) };
        let mdat_len = 8 + frames * frame_len + mdat_tail;
        let data_offset = ftyp().len() as u64 + moov(1, 1, 1, 1, 0).len() as u64 + 8;
        let mut head = ftyp();
        head.extend_from_slice(&moov(
            width,
            height,
            frames as u32,
            u32::try_from(frame_len).ok()?,
            data_offset as u32,
        ));
        head.extend_from_slice(&box_header(b"mdat", mdat_len));
        let free_head = if free_len > 0 {
            box_header(b"free", free_len)
        } else {
            Vec::new()
        };
        Some(Layout {
            head,
            frames,
            mdat_tail,
            free_head,
            free_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (type, start, size) of the top-level boxes.
    fn top_boxes(bytes: &[u8]) -> Vec<(String, usize, usize)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos + 8 <= bytes.len() {
            let mut size = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
            if size == 1 {
                size = u64::from_be_bytes(bytes[pos + 8..pos + 16].try_into().unwrap()) as usize;
            }
            out.push((
                String::from_utf8_lossy(&bytes[pos + 4..pos + 8]).into(),
                pos,
                size,
            ));
            pos += size;
        }
        assert_eq!(pos, bytes.len(), "boxes cover the file exactly");
        out
    }

    #[test]
    fn moov_size_does_not_depend_on_its_numbers() {
        assert_eq!(
            moov(1, 1, 1, 1, 0).len(),
            moov(320, 240, 30, 65_000, 1_000_000).len()
        );
    }

    #[test]
    fn boxes_cover_every_size_exactly() {
        let frame = 1000u64;
        for len in [
            prefix_len() + 1000,
            prefix_len() + 1007,
            prefix_len() + 1016,
            2_000_000,
        ] {
            let layout = Layout::new(len, 8, 8, frame).unwrap();
            let mut bytes = layout.head.clone();
            bytes.resize(
                bytes.len() + (layout.frames * frame + layout.mdat_tail) as usize,
                0,
            );
            bytes.extend_from_slice(&layout.free_head);
            bytes.resize(len as usize, 0);
            let kinds: Vec<String> = top_boxes(&bytes).into_iter().map(|b| b.0).collect();
            assert_eq!(kinds[..3], ["ftyp", "moov", "mdat"]);
            assert!(kinds.len() == 3 || kinds[3] == "free", "{kinds:?}");
        }
        assert_eq!(
            Layout::new(2_000_000, 8, 8, frame).unwrap().frames,
            MAX_FRAMES
        );
        assert!(Layout::new(prefix_len() + 999, 8, 8, frame).is_none());
        let huge = Layout::new(5 << 30, 8, 8, frame).unwrap();
        assert_eq!(&huge.free_head[..8], &[0, 0, 0, 1, b'f', b'r', b'e', b'e']);
    }
}
