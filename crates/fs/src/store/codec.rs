//! How values are written: times as signed nanoseconds since the epoch (exact, so an
//! `updated-at` compares equal after a round trip), sections as their directory names, and
//! the check that keeps secrets out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use personafs_client::Section;

use super::StoreError;

/// Nanoseconds since the epoch; times outside 1677..2262 saturate (never met in Persona's data).
pub(crate) fn time_to_db(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

pub(crate) fn time_from_db(n: i64) -> SystemTime {
    let abs = Duration::from_nanos(n.unsigned_abs());
    if n >= 0 {
        UNIX_EPOCH + abs
    } else {
        UNIX_EPOCH - abs
    }
}

pub(super) fn section_to_db(s: Section) -> &'static str {
    s.dir_name()
}

pub(super) fn section_from_db(s: &str) -> Option<Section> {
    match s {
        "document" => Some(Section::Document),
        "selfie" => Some(Section::Selfie),
        _ => None,
    }
}

pub(super) fn bad_value(column: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("not a {what}").into(),
    )
}

/// Marks of a URL, a signed query or a credential. None occurs in an id, a status, a file
/// name or a role; finding one means a secret is about to be written: refuse.
const SECRET_MARKS: &[&str] = &[
    "://",
    "x-amz-",
    "signature=",
    "token=",
    "persona_production_",
    "persona_sandbox_",
];

pub(super) fn check_clean(field: &'static str, value: &str) -> Result<(), StoreError> {
    let lower = value.to_ascii_lowercase();
    if SECRET_MARKS.iter().any(|m| lower.contains(m)) {
        return Err(StoreError::Secret { field });
    }
    Ok(())
}

/// Query parameters whose value is a secret: in `inquiry.json` each must read `REDACTED`.
const SECRET_PARAMS: &[&str] = &[
    "token=",
    "signature=",
    "x-amz-credential=",
    "x-amz-security-token=",
];

/// `inquiry.json` keeps URLs (their secrets replaced by `REDACTED`), so `check_clean` cannot
/// judge it: refuse an API key, or a secret parameter with any other value.
pub(super) fn check_clean_json(json: &[u8]) -> Result<(), StoreError> {
    let field = "inquiry.json";
    let lower = String::from_utf8_lossy(json).to_ascii_lowercase();
    if ["persona_production_", "persona_sandbox_"]
        .iter()
        .any(|m| lower.contains(m))
    {
        return Err(StoreError::Secret { field });
    }
    for param in SECRET_PARAMS {
        for (at, _) in lower.match_indices(param) {
            if !lower[at + param.len()..].starts_with("redacted") {
                return Err(StoreError::Secret { field });
            }
        }
    }
    Ok(())
}
