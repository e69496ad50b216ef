//! Directory names for the views' keys. A reference id is any string a Persona customer
//! chose, so it is made safe exactly as file names are (`personafs_client::files::sanitize`:
//! `/`, NUL and control characters replaced; `.`/`..` and names over 255 bytes refused);
//! an account id (`act_…`) or a date is used only when it is well-formed.
//!
//! Two different reference ids never share a name: an id whose name had to change gets
//! `~` and the first 12 hex digits of its SHA-256 appended (the full 64 when two such
//! names would still meet), and an id is used as it is only when it does not itself end in
//! such a suffix. A name used as it is therefore never ends like a changed one, and two
//! changed names differ by their hashes.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use personafs_client::files::{sanitize, truncate_utf8};
use sha2::{Digest, Sha256};

/// The longest name a directory entry may have.
const MAX_NAME: usize = 255;
/// Hex digits of the hash in a changed name, and in one that still met another.
pub(crate) const SHORT_HASH: usize = 12;
pub(crate) const FULL_HASH: usize = 64;

/// Whether `s` ends in `~` and `n` lowercase hex digits.
fn ends_in_hash(s: &str, n: usize) -> bool {
    let b = s.as_bytes();
    b.len() > n
        && b[b.len() - n - 1] == b'~'
        && b[b.len() - n..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// Whether reference id `raw` is its own name: safe as a file name, and not looking like
/// a changed one.
pub(crate) fn is_plain(raw: &str) -> bool {
    !raw.is_empty()
        && raw != "."
        && raw != ".."
        && raw.len() <= MAX_NAME
        && !raw.contains(['/', '\0'])
        && !raw.chars().any(char::is_control)
        && !ends_in_hash(raw, SHORT_HASH)
        && !ends_in_hash(raw, FULL_HASH)
}

/// The name of reference id `raw`, with `hex` digits of its hash when it has to change.
pub(crate) fn reference_name(raw: &str, hex: usize) -> Cow<'_, str> {
    if is_plain(raw) {
        return Cow::Borrowed(raw);
    }
    let digest = hex::encode(Sha256::digest(raw.as_bytes()));
    let suffix = format!("~{}", &digest[..hex.min(FULL_HASH)]);
    let safe = sanitize(raw);
    let head = truncate_utf8(&safe, MAX_NAME - suffix.len());
    Cow::Owned(format!("{head}{suffix}"))
}

/// A well-formed account id (`act_` and letters, digits, `_` or `-`); anything else is in
/// no directory and is ENOENT without asking Persona.
pub(crate) fn plausible_account_id(s: &str) -> bool {
    s.len() <= 64
        && s.len() > 4
        && s.starts_with("act_")
        && s[4..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A day of `by-day/` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Ymd {
    pub(crate) year: u16,
    pub(crate) month: u8,
    pub(crate) day: u8,
}

impl Ymd {
    pub(crate) fn of(date: NaiveDate) -> Option<Ymd> {
        Some(Ymd {
            year: u16::try_from(date.year()).ok().filter(|y| *y <= 9999)?,
            month: date.month() as u8,
            day: date.day() as u8,
        })
    }

    pub(crate) fn date(self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.year.into(), self.month.into(), self.day.into())
    }
}

/// `YYYY`: four digits.
pub(crate) fn parse_year(name: &str) -> Option<u16> {
    (name.len() == 4 && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
        .filter(|y| *y >= 1)
}

/// `MM` (01–12) or `DD` (01–31): two digits.
pub(crate) fn parse_two(name: &str, max: u8) -> Option<u8> {
    (name.len() == 2 && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
        .filter(|n| (1..=max).contains(n))
}

pub(crate) fn year_name(y: u16) -> Arc<str> {
    Arc::from(format!("{y:04}"))
}

pub(crate) fn two_name(n: u8) -> Arc<str> {
    Arc::from(format!("{n:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn name(raw: &str) -> String {
        reference_name(raw, SHORT_HASH).into_owned()
    }

    fn valid(n: &str) {
        assert!(!n.is_empty() && n != "." && n != "..", "{n:?}");
        assert!(n.len() <= MAX_NAME, "{} bytes", n.len());
        assert!(
            !n.contains(['/', '\0']) && !n.chars().any(char::is_control),
            "{n:?}"
        );
    }

    #[test]
    fn safe_ids_are_their_own_names() {
        for raw in ["user-12345", "a b", "50%", "ünïcødé 🙂", "..x", "x~12"] {
            assert_eq!(name(raw), raw);
        }
    }

    #[test]
    fn hostile_ids_are_made_safe_like_file_names_with_a_hash() {
        let long = "x".repeat(1_000);
        let emoji_long = "🙂".repeat(100);
        for raw in [
            "a/b",
            "../../etc/passwd",
            "..",
            ".",
            "tab\there",
            "nul\0",
            "line\nbreak",
            long.as_str(),
            emoji_long.as_str(),
            "/",
        ] {
            let n = name(raw);
            valid(&n);
            assert_ne!(n, raw);
            assert!(ends_in_hash(&n, SHORT_HASH), "{n:?}");
            assert!(!is_plain(&n), "a changed name is never taken for an id");
        }
        assert!(name("a/b").starts_with("a_b~"));
        assert!(name("../../etc/passwd").starts_with(".._.._etc_passwd~"));
        assert!(name(&long).starts_with("xxxx"));
        assert!(
            name(&emoji_long).is_char_boundary(name(&emoji_long).len() - SHORT_HASH - 1),
            "cut on a character boundary"
        );
    }

    #[test]
    fn two_ids_never_share_a_name() {
        // Ids that sanitize alike, and an id that spells another's changed name.
        let a_slash = name("a/b");
        let crafted = [
            "a/b",
            "a\nb",
            "a_b",
            "a\tb",
            a_slash.as_str(),
            "a_b~000000000000",
        ];
        let names: HashSet<String> = crafted.iter().map(|r| name(r)).collect();
        assert_eq!(names.len(), crafted.len(), "{names:?}");
        assert_ne!(
            name(&a_slash),
            a_slash,
            "an id shaped like a changed name changes"
        );
    }

    #[test]
    fn the_full_hash_is_a_name_too() {
        let full = reference_name("a/b", FULL_HASH);
        assert!(ends_in_hash(&full, FULL_HASH));
        valid(&full);
        assert_ne!(&*full, name("a/b"));
        assert!(!is_plain(&full));
    }

    #[test]
    fn accounts_and_dates_are_checked() {
        assert!(plausible_account_id("act_ABC123xyz"));
        for bad in ["act_", "act_../x", "acc_1", "act_a/b", "ACT_1"] {
            assert!(!plausible_account_id(bad), "{bad}");
        }
        assert_eq!(parse_year("2026"), Some(2026));
        assert_eq!(parse_year("26"), None);
        assert_eq!(parse_year("+202"), None);
        assert_eq!(parse_two("02", 12), Some(2));
        assert_eq!(parse_two("13", 12), None);
        assert_eq!(parse_two("2", 12), None);
        assert_eq!(parse_two("00", 31), None);
        let feb30 = Ymd {
            year: 2026,
            month: 2,
            day: 30,
        };
        assert_eq!(feb30.date(), None);
    }
}
