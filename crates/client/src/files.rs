//! The pure mapping from a retrieved inquiry to the files a mount shows (FILESYSTEM.md).
//!
//! Names are built per object, from that object alone, so that a new document or another
//! response order renames nothing. Only the choice of *which* objects a section shows, and
//! the removal of a file already listed, look at the inquiry as a whole.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use serde_json::Value;

use super::model::{IncludedObject, ObjectFamily};
use super::{RemoteFile, RetrievedInquiry, Section};
use crate::body::MAX_INQUIRY_JSON;
use crate::redact::redact_json;

/// Longest file name most filesystems (and FUSE clients) accept, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// Attributes holding a file object `{filename, url, byte-size}`; role = attribute name.
const FILE_OBJECT_ATTRS: &[&str] = &[
    "front-photo",
    "back-photo",
    "selfie-photo",
    "center-photo",
    "left-photo",
    "right-photo",
    "video",
];

/// Attributes holding a bare URL string; role = attribute name without `-url`.
const URL_ATTRS: &[&str] = &[
    "front-photo-url",
    "back-photo-url",
    "selfie-photo-url",
    "center-photo-url",
    "left-photo-url",
    "right-photo-url",
    "video-url",
];

/// Verification types whose files stand in for documents when there are none.
const DOCUMENT_FALLBACK_KINDS: &[&str] = &["verification/government-id", "verification/document"];
const SELFIE_FALLBACK_KINDS: &[&str] = &["verification/selfie"];

/// One file found in an object, before naming.
struct Candidate {
    /// `front-photo`, or the Persona filename for `files[]` (`normalized-` + it for
    /// `files-normalized[]`).
    role: String,
    /// The role without extension (`front-photo`, `bank_statement`, `normalized-scan`).
    stem: String,
    /// Without the dot; empty never happens (`bin` is the fallback).
    ext: String,
    url: String,
    size: Option<u64>,
}

/// A named file of one object.
struct Named {
    candidate: Candidate,
    name: String,
}

/// The files of an inquiry, `document/` first then `selfie/`, each section's objects in id
/// order. A redacted inquiry has none.
pub fn files_of(inquiry: &RetrievedInquiry) -> Vec<RemoteFile> {
    if inquiry.redacted_at.is_some() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let sections = [
        (
            Section::Document,
            ObjectFamily::Document,
            DOCUMENT_FALLBACK_KINDS,
        ),
        (Section::Selfie, ObjectFamily::Selfie, SELFIE_FALLBACK_KINDS),
    ];
    for (section, family, fallback) in sections {
        let primary: Vec<&IncludedObject> = inquiry
            .included
            .iter()
            .filter(|o| o.family() == family)
            .collect();
        let chosen = if primary.iter().any(|o| !candidates_of(o).is_empty()) {
            primary
        } else {
            inquiry
                .included
                .iter()
                .filter(|o| fallback.contains(&o.kind.as_str()))
                .collect()
        };
        out.extend(section_files(inquiry, section, chosen));
    }
    out
}

/// Name the files of the chosen objects and drop any file already listed in the section.
fn section_files(
    inquiry: &RetrievedInquiry,
    section: Section,
    mut objects: Vec<&IncludedObject>,
) -> Vec<RemoteFile> {
    // Id order, not response order: which copy of a shared file survives must not depend on
    // how Persona happened to order `included`.
    objects.sort_by(|a, b| (&a.id, &a.kind).cmp(&(&b.id, &b.kind)));
    let mut seen_urls = HashSet::new();
    let mut names = HashSet::new();
    let mut files = Vec::new();
    for object in objects {
        let object_id = sanitize(&object.id);
        let mtime = object
            .processed_at()
            .or_else(|| object.created_at())
            .or(inquiry.created_at)
            .map(SystemTime::from)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        for Named { candidate, name } in name_object(&object_id, candidates_of(object)) {
            if !seen_urls.insert(url_identity(&candidate.url)) {
                continue;
            }
            // Two objects can only collide through truncation of absurdly long names.
            let name = if names.contains(&name) {
                match (2..)
                    .map_while(|n| build_name(&object_id, &candidate.stem, &candidate.ext, n))
                    .find(|n| !names.contains(n))
                {
                    Some(name) => name,
                    None => continue,
                }
            } else {
                name
            };
            names.insert(name.clone());
            files.push(RemoteFile {
                section,
                object_id: object.id.clone(),
                role: sanitize(&candidate.role),
                name,
                url: candidate.url,
                size: candidate.size,
                mtime,
            });
        }
    }
    files
}

/// Give each candidate of one object a unique name, in attribute then array order; a second
/// copy of the same URL within the object is dropped.
fn name_object(object_id: &str, candidates: Vec<Candidate>) -> Vec<Named> {
    let mut urls: HashMap<String, usize> = HashMap::new();
    let mut names = HashSet::new();
    let mut out: Vec<Named> = Vec::new();
    for candidate in candidates {
        if let Some(&first) = urls.get(&url_identity(&candidate.url)) {
            // The same file again (`photo-urls[]` repeating `*-url`): it may know the size.
            let kept = &mut out[first].candidate;
            kept.size = kept.size.or(candidate.size);
            continue;
        }
        let Some(name) = (1..)
            .map_while(|n| build_name(object_id, &candidate.stem, &candidate.ext, n))
            .find(|name| !names.contains(name))
        else {
            continue;
        };
        names.insert(name.clone());
        urls.insert(url_identity(&candidate.url), out.len());
        out.push(Named { candidate, name });
    }
    out
}

/// `<object-id>-<stem>[-n].<ext>`, sanitized and cut to 255 bytes (keeping suffix and
/// extension). `None` for names that cannot be used, or for absurd `n`.
fn build_name(object_id: &str, stem: &str, ext: &str, n: usize) -> Option<String> {
    if n > 10_000 {
        return None;
    }
    let suffix = if n > 1 {
        format!("-{n}")
    } else {
        String::new()
    };
    let tail = format!("{suffix}.{}", sanitize(ext));
    let head = sanitize(&format!("{object_id}-{stem}"));
    let head = truncate_utf8(&head, MAX_NAME_BYTES.saturating_sub(tail.len()));
    let name = format!("{head}{tail}");
    let usable = !name.is_empty() && name != "." && name != ".." && name.len() <= MAX_NAME_BYTES;
    usable.then_some(name)
}

/// Replace what may not appear in a file name: `/`, NUL and control characters.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c == '/' || c.is_control() { '_' } else { c })
        .collect()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The extension of a file name, without the dot: 1–10 ASCII letters or digits after a
/// non-empty stem. Anything else (`.bashrc`, `x.tar/../y`) has none.
fn extension(name: &str) -> Option<&str> {
    let (stem, ext) = name.rsplit_once('.')?;
    let ok = !stem.is_empty()
        && (1..=10).contains(&ext.len())
        && ext.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then_some(ext)
}

/// The last path segment of a URL, percent-decoded.
fn url_filename(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let last = parsed.path_segments()?.next_back()?;
    let decoded = percent_encoding::percent_decode_str(last)
        .decode_utf8_lossy()
        .into_owned();
    (!decoded.is_empty()).then_some(decoded)
}

/// What makes two URLs the same file: host, path and access token (Persona repeats one
/// URL in several attributes, e.g. `front-photo-url` and `photo-urls[].url`). The path
/// alone is not enough: different files share a filename (`image.png` for both sides).
fn url_identity(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let token = u
                .query_pairs()
                .find(|(k, _)| k == "access_token")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            format!(
                "{}://{}:{}{}?{token}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.port_or_known_default().unwrap_or(0),
                u.path()
            )
        }
        Err(_) => url.to_string(),
    }
}

fn size_of(v: &Value) -> Option<u64> {
    match v.get("byte-size")? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn str_field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name)?.as_str().filter(|s| !s.is_empty())
}

/// A candidate with a named role: extension from the filename, else the URL, else `bin`.
fn named(role: &str, filename: Option<&str>, url: &str, size: Option<u64>) -> Candidate {
    let from_url = url_filename(url);
    let ext = filename
        .and_then(extension)
        .or_else(|| from_url.as_deref().and_then(extension))
        .unwrap_or("bin")
        .to_string();
    Candidate {
        role: role.to_string(),
        stem: role.to_string(),
        ext,
        url: url.to_string(),
        size,
    }
}

/// A candidate named after its Persona filename (`files[]`), with an optional prefix.
fn by_filename(prefix: &str, entry: &Value) -> Option<Candidate> {
    let url = str_field(entry, "url")?;
    let filename = str_field(entry, "filename")
        .map(str::to_string)
        .or_else(|| url_filename(url))
        .unwrap_or_else(|| "file".to_string());
    let (stem, ext) = match extension(&filename) {
        Some(ext) => (
            filename[..filename.len() - ext.len() - 1].to_string(),
            ext.to_string(),
        ),
        None => {
            let ext = url_filename(url)
                .as_deref()
                .and_then(extension)
                .unwrap_or("bin")
                .to_string();
            (filename.clone(), ext)
        }
    };
    Some(Candidate {
        role: format!("{prefix}{filename}"),
        stem: format!("{prefix}{stem}"),
        ext,
        url: url.to_string(),
        size: size_of(entry),
    })
}

/// `page` of `photo-urls[]` → role: `left_photo` → `left-photo`, `front` → `front-photo`.
fn page_role(page: Option<&str>) -> String {
    let role = page.unwrap_or("photo").replace('_', "-");
    if role.ends_with("photo") {
        role
    } else {
        format!("{role}-photo")
    }
}

/// Every file an object carries, in a fixed attribute order, then array order.
fn candidates_of(object: &IncludedObject) -> Vec<Candidate> {
    let attrs = &object.attributes;
    let mut out = Vec::new();
    for &key in FILE_OBJECT_ATTRS {
        if let Some(file) = attrs.get(key)
            && let Some(url) = str_field(file, "url")
        {
            out.push(named(key, str_field(file, "filename"), url, size_of(file)));
        }
    }
    for &key in URL_ATTRS {
        if let Some(url) = attrs
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            out.push(named(key.trim_end_matches("-url"), None, url, None));
        }
    }
    for entry in array(attrs, "photo-urls") {
        let role = page_role(str_field(entry, "page"));
        if let Some(url) = str_field(entry, "url") {
            out.push(named(
                &role,
                str_field(entry, "filename"),
                url,
                size_of(entry),
            ));
        }
        if let Some(url) = str_field(entry, "normalized-url") {
            let filename = str_field(entry, "filename");
            out.push(named(&format!("normalized-{role}"), filename, url, None));
        }
    }
    out.extend(array(attrs, "files").filter_map(|e| by_filename("", e)));
    out.extend(array(attrs, "files-normalized").filter_map(|e| by_filename("normalized-", e)));
    out
}

fn array<'a>(attrs: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    attrs
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.is_object())
}

/// `inquiry.json`: the body, pretty-printed, every access token removed, ending in a newline.
/// Past [`MAX_INQUIRY_JSON`] it is compact instead; past that again, a short object saying so.
pub fn inquiry_json(inquiry: &RetrievedInquiry) -> Vec<u8> {
    let redacted = redact_json(&inquiry.raw);
    let mut out = serde_json::to_vec_pretty(&redacted).unwrap_or_default();
    if out.len() > MAX_INQUIRY_JSON {
        out = serde_json::to_vec(&redacted).unwrap_or_default();
    }
    if out.len() > MAX_INQUIRY_JSON {
        tracing::warn!(inquiry = %inquiry.id, bytes = out.len(), "inquiry.json left out: too large");
        let note = format!(
            "inquiry.json is {} bytes, over the {} personafs serves",
            out.len(),
            crate::body::human_bytes(MAX_INQUIRY_JSON as u64)
        );
        out = serde_json::to_vec_pretty(&serde_json::json!({"personafs-error": note}))
            .unwrap_or_default();
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
