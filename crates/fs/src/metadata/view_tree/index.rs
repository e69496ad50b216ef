//! The views of one listing: its inquiries grouped by reference id, by account and by
//! day of creation (UTC). Built when a view is first asked about a listing, and dropped
//! with the next listing; each group is a range of listing positions (newest first) and
//! the number of its key in the listing's key table, so a million inquiries cost about 4
//! bytes each per view plus 16 per key (names are read from the listing, not copied).

use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use super::naming::{FULL_HASH, SHORT_HASH, Ymd, plausible_account_id, reference_name};
use crate::metadata::listing_rows::ListingRows;

/// One reference id or account and its inquiries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyGroup {
    /// The id as Persona gave it: its number in the listing's key table.
    key: u32,
    /// Its name when not the id itself (see `naming`): a place in `ViewIndex::renamed`.
    renamed: u32,
    start: u32,
    len: u32,
}

/// Not renamed.
const SAME: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
pub(crate) struct DayGroup {
    pub(crate) day: Ymd,
    start: u32,
    len: u32,
}

/// Which grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Keyed {
    Reference,
    Account,
}

#[derive(Default)]
pub(crate) struct ViewIndex {
    /// Sorted by name.
    references: Vec<KeyGroup>,
    /// Names of reference ids that had to change.
    renamed: Vec<Box<str>>,
    accounts: Vec<KeyGroup>,
    /// Sorted by day.
    days: Vec<DayGroup>,
    /// Listing positions, each group's in listing order.
    members: Vec<u32>,
    /// A hash of each keyed view's names, for telling whether its listing changed.
    fingerprints: [u64; 2],
}

/// The UTC day of a time.
pub(crate) fn day_of(t: SystemTime) -> Option<Ymd> {
    Ymd::of(DateTime::<Utc>::from(t).date_naive())
}

impl ViewIndex {
    pub(crate) fn build(rows: &ListingRows) -> ViewIndex {
        let mut index = ViewIndex::default();
        let n = rows.len().min(u32::MAX as usize);
        let reference =
            |p: usize| rows.key_numbers_at(p)[0].filter(|&r| !rows.key_text(r).is_empty());
        let account = |p: usize| {
            rows.key_numbers_at(p)[1].filter(|&a| plausible_account_id(rows.key_text(a)))
        };
        let day = |p: usize| rows.created_at(p).and_then(day_of);
        // Counted first, and one view grouped at a time: a million inquiries would otherwise
        // hold 20 MB of pairs at once, and growing vectors leave their old room behind.
        let (mut nr, mut na, mut nd) = (0, 0, 0);
        for p in 0..n {
            nr += usize::from(reference(p).is_some());
            na += usize::from(account(p).is_some());
            nd += usize::from(day(p).is_some());
        }
        index.members.reserve_exact(nr + na + nd);
        let pairs = |count: usize, key: &dyn Fn(usize) -> Option<u32>| {
            let mut v = Vec::with_capacity(count);
            v.extend((0..n).filter_map(|p| Some((key(p)?, p as u32))));
            v
        };
        let refs = pairs(nr, &reference);
        index.references = index.groups(rows, refs, true);
        let accounts = pairs(na, &account);
        index.accounts = index.groups(rows, accounts, false);
        let mut days = Vec::with_capacity(nd);
        days.extend((0..n).filter_map(|p| Some((day(p)?, p as u32))));
        days.sort_unstable();
        let mut at = 0;
        while at < days.len() {
            let day = days[at].0;
            let start = index.members.len() as u32;
            while at < days.len() && days[at].0 == day {
                index.members.push(days[at].1);
                at += 1;
            }
            let len = index.members.len() as u32 - start;
            index.days.push(DayGroup { day, start, len });
        }
        drop(days);
        index.days.shrink_to_fit();
        index.members.shrink_to_fit();
        for keyed in [Keyed::Reference, Keyed::Account] {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            for g in index.keys(keyed) {
                index.name(rows, g).hash(&mut h);
            }
            index.fingerprints[keyed as usize] = h.finish().max(1);
        }
        index
    }

    /// Groups of `(key, position)` pairs, sorted by name; reference ids are named safely.
    fn groups(
        &mut self,
        rows: &ListingRows,
        mut pairs: Vec<(u32, u32)>,
        references: bool,
    ) -> Vec<KeyGroup> {
        pairs.sort_unstable();
        let mut groups = Vec::new();
        let mut at = 0;
        while at < pairs.len() {
            let key = pairs[at].0;
            let start = self.members.len() as u32;
            while at < pairs.len() && pairs[at].0 == key {
                self.members.push(pairs[at].1);
                at += 1;
            }
            let len = self.members.len() as u32 - start;
            let mut renamed = SAME;
            if references {
                let raw = rows.key_text(key);
                let name = reference_name(raw, SHORT_HASH);
                if let Cow::Owned(name) = name {
                    renamed = self.renamed.len() as u32;
                    self.renamed.push(name.into_boxed_str());
                }
            }
            groups.push(KeyGroup {
                key,
                renamed,
                start,
                len,
            });
        }
        groups.sort_unstable_by(|a, b| self.name(rows, a).cmp(self.name(rows, b)));
        // Two changed names that still meet (their short hashes agree) take the full hash.
        let mut met = false;
        for i in 1..groups.len() {
            if self.name(rows, &groups[i - 1]) == self.name(rows, &groups[i]) {
                for g in [i - 1, i] {
                    let full = reference_name(rows.key_text(groups[g].key), FULL_HASH);
                    self.renamed[groups[g].renamed as usize] = full.into_owned().into_boxed_str();
                }
                met = true;
            }
        }
        if met {
            groups.sort_unstable_by(|a, b| self.name(rows, a).cmp(self.name(rows, b)));
        }
        groups.shrink_to_fit();
        groups
    }

    /// The directory name of `g`.
    pub(crate) fn name<'a>(&'a self, rows: &'a ListingRows, g: &KeyGroup) -> &'a str {
        match g.renamed {
            SAME => rows.key_text(g.key),
            n => &self.renamed[n as usize],
        }
    }

    pub(crate) fn keys(&self, keyed: Keyed) -> &[KeyGroup] {
        match keyed {
            Keyed::Reference => &self.references,
            Keyed::Account => &self.accounts,
        }
    }

    pub(crate) fn fingerprint(&self, keyed: Keyed) -> u64 {
        self.fingerprints[keyed as usize]
    }

    /// The id of `g` as Persona gave it.
    #[cfg(test)]
    pub(crate) fn raw<'a>(&self, rows: &'a ListingRows, g: &KeyGroup) -> &'a str {
        rows.key_text(g.key)
    }

    /// The group named `name`.
    pub(crate) fn key(&self, rows: &ListingRows, keyed: Keyed, name: &str) -> Option<&KeyGroup> {
        let keys = self.keys(keyed);
        let at = keys
            .binary_search_by(|g| self.name(rows, g).cmp(name))
            .ok()?;
        Some(&keys[at])
    }

    pub(crate) fn key_members(&self, g: &KeyGroup) -> &[u32] {
        &self.members[g.start as usize..(g.start + g.len) as usize]
    }

    pub(crate) fn day(&self, day: Ymd) -> Option<&[u32]> {
        let at = self.days.binary_search_by_key(&day, |g| g.day).ok()?;
        let g = self.days[at];
        Some(&self.members[g.start as usize..(g.start + g.len) as usize])
    }

    /// The days with inquiries, oldest first.
    pub(crate) fn days(&self) -> impl Iterator<Item = Ymd> + '_ {
        self.days.iter().map(|g| g.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::listing_rows::RowKeys;
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    fn rows(list: &[(&str, Option<&str>, Option<&str>, u64)]) -> ListingRows {
        let mut rows = ListingRows::default();
        for (id, r, a, at) in list {
            rows.push_with_keys(
                Arc::from(*id),
                Some(UNIX_EPOCH + Duration::from_secs(*at)),
                None,
                RowKeys {
                    reference: r.map(Arc::from),
                    account: a.map(Arc::from),
                },
            );
        }
        rows.finish();
        rows
    }

    fn ids(rows: &ListingRows, members: &[u32]) -> Vec<String> {
        members
            .iter()
            .map(|&p| rows.ids()[p as usize].to_string())
            .collect()
    }

    const DAY: u64 = 86_400;

    #[test]
    fn inquiries_are_grouped_by_key_and_day_newest_first() {
        // 2026-01-02 is day 20455 since the epoch.
        let d = 20_455 * DAY;
        let rows = rows(&[
            ("inq_e", Some("u-2"), Some("act_2"), d + DAY + 5),
            ("inq_d", Some("u-1"), Some("act_1"), d + 50),
            ("inq_c", None, Some("act_1"), d + 40),
            ("inq_b", Some("u-1"), None, d - 10),
            ("inq_a", Some(""), Some("act_../x"), d - 20),
        ]);
        let index = ViewIndex::build(&rows);
        let names: Vec<&str> = index
            .keys(Keyed::Reference)
            .iter()
            .map(|g| index.name(&rows, g))
            .collect();
        assert_eq!(
            names,
            ["u-1", "u-2"],
            "sorted; an empty reference id is none"
        );
        let u1 = index.key(&rows, Keyed::Reference, "u-1").unwrap();
        assert_eq!(ids(&rows, index.key_members(u1)), ["inq_d", "inq_b"]);
        let accounts: Vec<&str> = index
            .keys(Keyed::Account)
            .iter()
            .map(|g| index.name(&rows, g))
            .collect();
        assert_eq!(
            accounts,
            ["act_1", "act_2"],
            "a malformed account is left out"
        );
        let a1 = index.key(&rows, Keyed::Account, "act_1").unwrap();
        assert_eq!(ids(&rows, index.key_members(a1)), ["inq_d", "inq_c"]);
        assert!(index.key(&rows, Keyed::Account, "act_3").is_none());
        let jan2 = Ymd {
            year: 2026,
            month: 1,
            day: 2,
        };
        assert_eq!(ids(&rows, index.day(jan2).unwrap()), ["inq_d", "inq_c"]);
        let days: Vec<Ymd> = index.days().collect();
        assert_eq!(days.len(), 3);
        assert_eq!(days[0].day, 1);
        assert_eq!(days[2].day, 3);
    }

    #[test]
    fn hostile_reference_ids_get_distinct_safe_names() {
        let crafted = reference_name("a/b", SHORT_HASH).into_owned();
        let rows = rows(&[
            ("inq_1", Some("a/b"), None, 1),
            ("inq_2", Some("a\nb"), None, 2),
            ("inq_3", Some("a_b"), None, 3),
            ("inq_4", Some(&crafted), None, 4),
            ("inq_5", Some(".."), None, 5),
            ("inq_6", Some("a/b"), None, 6),
        ]);
        let index = ViewIndex::build(&rows);
        let groups = index.keys(Keyed::Reference);
        assert_eq!(groups.len(), 5);
        for w in groups.windows(2) {
            assert!(
                index.name(&rows, &w[0]) < index.name(&rows, &w[1]),
                "names are distinct and sorted"
            );
        }
        let slash = index.key(&rows, Keyed::Reference, &crafted).unwrap();
        assert_eq!(index.raw(&rows, slash), "a/b");
        assert_eq!(ids(&rows, index.key_members(slash)), ["inq_1", "inq_6"]);
        assert_eq!(
            index.raw(&rows, index.key(&rows, Keyed::Reference, "a_b").unwrap()),
            "a_b"
        );
    }

    #[test]
    fn the_fingerprint_follows_the_names() {
        let a = ViewIndex::build(&rows(&[("inq_1", Some("x"), Some("act_1"), 1)]));
        let b = ViewIndex::build(&rows(&[
            ("inq_2", Some("x"), Some("act_1"), 2),
            ("inq_1", Some("x"), Some("act_1"), 1),
        ]));
        let c = ViewIndex::build(&rows(&[("inq_1", Some("y"), Some("act_1"), 1)]));
        assert_eq!(
            a.fingerprint(Keyed::Reference),
            b.fingerprint(Keyed::Reference)
        );
        assert_ne!(
            a.fingerprint(Keyed::Reference),
            c.fingerprint(Keyed::Reference)
        );
        assert_eq!(a.fingerprint(Keyed::Account), c.fingerprint(Keyed::Account));
    }
}

/// What a million inquiries cost: run by hand, `cargo test -p personafs-fs --lib
/// a_million_inquiries -- --ignored --nocapture` (RSS from /proc, so alone in its process).
#[cfg(test)]
mod million {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    fn rss() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse::<usize>().ok())
            .unwrap_or(0)
            * 1024
    }

    fn mib(bytes: usize) -> f64 {
        bytes as f64 / 1_048_576.0
    }

    #[test]
    #[ignore]
    fn a_million_inquiries_grouped() {
        let n = 1_000_000u64;
        let accounts = n / 3 + 1;
        // About three inquiries a person; a tenth without an account, a fifth without a
        // reference id, as the mock generates them.
        let inquiry = |i: u64| {
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03);
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let a = x % accounts;
            let id: Arc<str> = Arc::from(format!("inq_{i:024}"));
            let created = Some(UNIX_EPOCH + Duration::from_secs(1_765_000_000 - i * 15));
            let account = (!x.is_multiple_of(10)).then(|| format!("act_{a:024}"));
            let reference = (!x.is_multiple_of(5)).then(|| format!("user-{a:06}"));
            (id, created, reference, account)
        };
        let base = rss();
        let mut plain = ListingRows::default();
        for i in 0..n {
            let (id, created, _, _) = inquiry(i);
            plain.push(id, created, created);
        }
        plain.finish();
        let after_plain = rss();
        let mut rows = ListingRows::default();
        for i in 0..n {
            let (id, created, reference, account) = inquiry(i);
            rows.push_keyed(
                id,
                created,
                created,
                reference.as_deref(),
                account.as_deref(),
            );
        }
        rows.finish();
        let after_keyed = rss();
        let index = ViewIndex::build(&rows);
        let after_index = rss();
        let (without, with) = (after_plain - base, after_keyed - after_plain);
        println!(
            "a million rows: {:.1} MiB without keys, {:.1} MiB with them (+{:.1}); the views' \
             index {:.1} MiB ({} reference ids, {} accounts, {} days)",
            mib(without),
            mib(with),
            mib(with.saturating_sub(without)),
            mib(after_index - after_keyed),
            index.keys(Keyed::Reference).len(),
            index.keys(Keyed::Account).len(),
            index.days().count(),
        );
    }
}
