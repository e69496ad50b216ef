//! Inquiry views shared with the other mounts of the same Persona environment (`--shared-state`):
//! the wire form of a view, and the one rule that strips URLs from what is shared.
//!
//! A shared view is the store's token-free view (status, times, each file's name, object id,
//! role, size, mtime) plus `inquiry.json` with every URL replaced. Never a signed URL, an
//! access token or the API key: a mount that needs URLs retrieves the inquiry itself.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::view::InquiryView;
use crate::store::{StoredFile, StoredInquiry};
use personafs_client::Section;
use personafs_client::clock::Clock;
use personafs_client::redact::REDACTED;

/// Bumped when the wire form changes: a view of another version is ignored.
const VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
struct Wire {
    v: u8,
    id: String,
    status: Option<String>,
    /// Nanoseconds since the epoch (exact, so `updated-at` compares equal to the listing's).
    created: Option<u64>,
    updated: Option<u64>,
    redacted: Option<u64>,
    /// When the publishing mount retrieved it.
    checked: u64,
    files: Vec<WireFile>,
    /// `inquiry.json`, URLs replaced (see [`strip_urls`]).
    json: String,
}

#[derive(Serialize, Deserialize)]
struct WireFile {
    section: String,
    name: String,
    object_id: String,
    role: String,
    size: u64,
    mtime: u64,
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn time(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(n)
}

fn section_of(name: &str) -> Option<Section> {
    [Section::Document, Section::Selfie]
        .into_iter()
        .find(|s| s.dir_name() == name)
}

/// The shared form of a view retrieved at `checked` (`None` when it cannot be shared:
/// incomplete, or `inquiry.json` not UTF-8).
pub(crate) fn encode(view: &InquiryView, checked: SystemTime) -> Option<Vec<u8>> {
    if !view.complete {
        return None; // a file is missing for now: its next retrieve is shared instead
    }
    let stored = view.to_stored(checked);
    let wire = Wire {
        v: VERSION,
        id: stored.id,
        status: stored.status,
        created: stored.created_at.map(nanos),
        updated: stored.updated_at.map(nanos),
        redacted: stored.redacted_at.map(nanos),
        checked: nanos(checked),
        files: stored
            .files
            .into_iter()
            .map(|f| WireFile {
                section: f.section.dir_name().to_string(),
                name: f.name,
                object_id: f.object_id,
                role: f.role,
                size: f.size.unwrap_or(0),
                mtime: nanos(f.mtime),
            })
            .collect(),
        json: String::from_utf8(view.json.to_vec()).ok()?,
    };
    serde_json::to_vec(&wire).ok()
}

/// A view another mount published for `id`, as a view of this mount (no URLs: a download
/// retrieves first), and when it was retrieved. `None` if it is not a valid view of `id`.
pub(crate) fn decode(id: &str, bytes: &[u8], clock: &Clock) -> Option<(InquiryView, SystemTime)> {
    let wire: Wire = serde_json::from_slice(bytes).ok()?;
    if wire.v != VERSION || wire.id != id {
        return None;
    }
    let checked = time(wire.checked);
    let files = wire
        .files
        .into_iter()
        .map(|f| {
            Some(StoredFile {
                section: section_of(&f.section)?,
                name: f.name,
                object_id: f.object_id,
                role: f.role,
                size: Some(f.size),
                mtime: time(f.mtime),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let stored = StoredInquiry {
        id: wire.id,
        status: wire.status,
        created_at: wire.created.map(time),
        updated_at: wire.updated.map(time),
        redacted_at: wire.redacted.map(time),
        checked_at: checked,
        files,
    };
    // Its age counts: a view retrieved 50 s ago elsewhere is 50 s old here too.
    let age = clock.system().duration_since(checked).unwrap_or_default();
    let now = clock.now();
    let fetched_at = now.checked_sub(age).unwrap_or(now);
    let view = InquiryView::from_stored(stored, wire.json.into_bytes(), fetched_at);
    Some((view, checked))
}

/// `inquiry.json` with every URL (any string holding `http://` or `https://`) replaced by
/// `REDACTED`, pretty-printed as `inquiry_json` does. With shared state, every mount shows
/// this form whether it retrieved the inquiry or took another's view, so `inquiry.json`
/// does not change with who retrieved it. `None` if it is not JSON.
pub(crate) fn strip_urls(json: &[u8]) -> Option<Vec<u8>> {
    fn walk(v: &mut Value) {
        match v {
            Value::String(s) if s.contains("http://") || s.contains("https://") => {
                *s = REDACTED.to_string();
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            Value::Object(map) => map.values_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value: Value = serde_json::from_slice(json).ok()?;
    walk(&mut value);
    let mut out = serde_json::to_vec_pretty(&value).ok()?;
    out.push(b'\n');
    Some(out)
}

/// A view with its `inquiry.json` in the shared form.
pub(crate) fn with_stripped_json(mut view: InquiryView) -> InquiryView {
    match strip_urls(&view.json) {
        Some(json) => view.json = Arc::new(json),
        // Not JSON (never from Persona): show nothing rather than risk a URL in a share.
        None => view.json = Arc::new(b"{}\n".to_vec()),
    }
    view.json_hash = Default::default();
    view
}
