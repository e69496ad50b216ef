//! `--fixtures DIR`: real Retrieve-an-Inquiry bodies from `DIR/inquiries/<id>.json`, with every
//! Persona file URL turned into a placeholder for a file served from `DIR/files/<filename>`
//! (or deterministic bytes of the declared size).

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::data::{BytesContent, Content, Dataset, FILE_URL_PLACEHOLDER, MockFile, MockInquiry};
use super::urls::walk;

/// Size of a fixture file with neither bytes on disk nor a `byte-size`.
const DEFAULT_SIZE: u64 = 64 * 1024;

fn invalid(path: &Path, message: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("fixture {}: {message}", path.display()),
    )
}

/// Load every `DIR/inquiries/*.json`.
pub fn load(dir: &Path) -> io::Result<Dataset> {
    let mut dataset = Dataset::default();
    let mut paths: Vec<_> = std::fs::read_dir(dir.join("inquiries"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path)?;
        let body: Value = serde_json::from_str(&text).map_err(|e| invalid(&path, e))?;
        let inquiry =
            inquiry_from_body(body, dir, &mut dataset.files).map_err(|e| invalid(&path, e))?;
        dataset.inquiries.push(inquiry);
    }
    Ok(dataset)
}

fn inquiry_from_body(
    body: Value,
    dir: &Path,
    files: &mut HashMap<String, MockFile>,
) -> Result<MockInquiry, String> {
    let Value::Object(mut body) = body else {
        return Err("not a JSON object".into());
    };
    let mut data = body.remove("data").ok_or("no `data`")?;
    let id = data["id"]
        .as_str()
        .ok_or("`data.id` is not a string")?
        .to_string();
    let created_at = data["attributes"]["created-at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(DateTime::<Utc>::UNIX_EPOCH, |t| t.with_timezone(&Utc));
    let mut included = match body.remove("included") {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err("`included` is not an array".into()),
    };
    // One key per distinct URL within the inquiry: the same file named twice (e.g.
    // `front-photo-url` and `photo-urls[].url`) stays one file.
    let mut keys: HashMap<String, String> = HashMap::new();
    let mut sizes: HashMap<String, u64> = HashMap::new();
    for value in std::iter::once(&mut data).chain(included.iter_mut()) {
        collect_sizes(value, &mut sizes);
        walk(value, &mut |s| {
            let filename = persona_file_name(s)?;
            let next = keys.len();
            let key = keys
                .entry(s.to_string())
                .or_insert_with(|| format!("fixture/{id}/{next}"))
                .clone();
            if !files.contains_key(&key) {
                let size = sizes.get(s).copied().unwrap_or(DEFAULT_SIZE);
                files.insert(key.clone(), fixture_file(dir, &filename, size, &key));
            }
            Some(Value::String(format!("{FILE_URL_PLACEHOLDER}{key}")))
        });
    }
    Ok(MockInquiry {
        id,
        created_at,
        data,
        included,
    })
}

/// `url` → `byte-size` for every file object (`{"url": …, "byte-size": …}`) in `value`.
fn collect_sizes(value: &Value, sizes: &mut HashMap<String, u64>) {
    match value {
        Value::Object(map) => {
            if let (Some(url), Some(size)) = (
                map.get("url").and_then(Value::as_str),
                map.get("byte-size").and_then(Value::as_u64),
            ) {
                sizes.insert(url.to_string(), size);
            }
            map.values().for_each(|v| collect_sizes(v, sizes));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_sizes(v, sizes)),
        _ => {}
    }
}

/// The filename of a Persona file URL in either form, else `None`:
/// `https://files.withpersona.com/<name>?access_token=…` or
/// `https://(api.)withpersona.com/api/v1/files/<token>/<name>`.
pub fn persona_file_name(text: &str) -> Option<String> {
    let url = url::Url::parse(text).ok()?;
    let segments: Vec<&str> = url.path_segments()?.collect();
    let name = match (url.host_str()?, segments.as_slice()) {
        ("files.withpersona.com", [name]) => *name,
        ("withpersona.com" | "api.withpersona.com", ["api", "v1", "files", _token, name]) => *name,
        _ => return None,
    };
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .ok()?;
    (!name.is_empty()).then(|| name.into_owned())
}

fn fixture_file(dir: &Path, filename: &str, size: u64, key: &str) -> MockFile {
    // Only a plain name is looked up, so a fixture cannot point outside DIR/files.
    let on_disk = (!filename.contains(['/', '\\']) && filename != ".." && filename != ".")
        .then(|| std::fs::read(dir.join("files").join(filename)).ok())
        .flatten();
    let content: Arc<dyn Content> = match on_disk {
        Some(bytes) => Arc::new(BytesContent(bytes)),
        None => Arc::new(PatternContent {
            len: size,
            seed: fnv1a(key.as_bytes()),
        }),
    };
    MockFile {
        filename: filename.to_string(),
        content_type: content_type_of(filename).to_string(),
        content,
    }
}

/// Deterministic pseudo-random bytes, computed on read.
pub struct PatternContent {
    pub len: u64,
    pub seed: u64,
}

impl Content for PatternContent {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) {
        for (i, byte) in buf.iter_mut().enumerate() {
            let pos = offset + i as u64;
            let word = splitmix64(self.seed ^ (pos / 8));
            *byte = word.to_le_bytes()[(pos % 8) as usize];
        }
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// MIME type from a filename's extension.
pub fn content_type_of(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("heic") => "image/heic",
        Some("pdf") => "application/pdf",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mov") => "video/quicktime",
        Some("json") => "application/json",
        Some("txt") => "text/plain",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_both_url_forms_and_nothing_else() {
        assert_eq!(
            persona_file_name("https://files.withpersona.com/a%20b.jpg?access_token=x").as_deref(),
            Some("a b.jpg")
        );
        assert_eq!(
            persona_file_name("https://withpersona.com/api/v1/files/tok/front.png").as_deref(),
            Some("front.png")
        );
        assert_eq!(persona_file_name("https://example.com/a.jpg"), None);
        assert_eq!(
            persona_file_name("https://withpersona.com/api/v1/inquiries/x"),
            None
        );
        assert_eq!(persona_file_name("inq_123"), None);
    }

    #[test]
    fn pattern_content_is_deterministic_and_offset_consistent() {
        let c = PatternContent { len: 100, seed: 7 };
        let mut whole = [0u8; 100];
        c.read_at(0, &mut whole);
        let mut part = [0u8; 10];
        c.read_at(45, &mut part);
        assert_eq!(&whole[45..55], &part);
        assert_ne!(whole[..8], whole[8..16]);
    }
}
