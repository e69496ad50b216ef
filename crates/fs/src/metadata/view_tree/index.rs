//! The views of one listing: its inquiries grouped by reference id, by account and by
//! day of creation (UTC). Built when a view is first asked about a listing, and dropped
//! with the next listing; each group is a range of listing positions (newest first), so
//! a million inquiries cost about 4 bytes each per view plus one entry per key.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use super::naming::{FULL_HASH, SHORT_HASH, Ymd, plausible_account_id, reference_name};
use crate::metadata::listing_rows::ListingRows;

/// One reference id or account and its inquiries.
#[derive(Debug, Clone)]
pub(crate) struct KeyGroup {
    /// The directory name (see `naming`).
    pub(crate) name: Arc<str>,
    /// The id as Persona gave it.
    pub(crate) raw: Arc<str>,
    start: u32,
    len: u32,
}

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
        let n = rows.len();
        let mut refs = Vec::new();
        let mut accounts = Vec::new();
        let mut days = Vec::new();
        for p in 0..n {
            let Ok(pos) = u32::try_from(p) else { break };
            if let Some(keys) = rows.keys_at(p) {
                if let Some(r) = keys.reference.as_ref().filter(|r| !r.is_empty()) {
                    refs.push((r.clone(), pos));
                }
                if let Some(a) = keys.account.as_ref().filter(|a| plausible_account_id(a)) {
                    accounts.push((a.clone(), pos));
                }
            }
            if let Some(day) = rows.created_at(p).and_then(day_of) {
                days.push((day, pos));
            }
        }
        index.references = index.groups(refs, true);
        index.accounts = index.groups(accounts, false);
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
        index.members.shrink_to_fit();
        for (k, groups) in [&index.references, &index.accounts].into_iter().enumerate() {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            for g in groups {
                g.name.hash(&mut h);
            }
            index.fingerprints[k] = h.finish().max(1);
        }
        index
    }

    /// Groups of `(key, position)` pairs, sorted by name; reference ids are named safely.
    fn groups(&mut self, mut pairs: Vec<(Arc<str>, u32)>, references: bool) -> Vec<KeyGroup> {
        pairs.sort_unstable();
        let mut groups = Vec::new();
        let mut at = 0;
        while at < pairs.len() {
            let raw = pairs[at].0.clone();
            let start = self.members.len() as u32;
            while at < pairs.len() && pairs[at].0 == raw {
                self.members.push(pairs[at].1);
                at += 1;
            }
            let len = self.members.len() as u32 - start;
            let name = if references {
                reference_name(&raw, SHORT_HASH)
            } else {
                raw.clone()
            };
            groups.push(KeyGroup {
                name,
                raw,
                start,
                len,
            });
        }
        groups.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        // Two changed names that still meet (their short hashes agree) take the full hash.
        let mut met = false;
        for i in 1..groups.len() {
            if groups[i - 1].name == groups[i].name {
                for g in [i - 1, i] {
                    groups[g].name = reference_name(&groups[g].raw, FULL_HASH);
                }
                met = true;
            }
        }
        if met {
            groups.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        }
        groups.shrink_to_fit();
        groups
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

    /// The group named `name`.
    pub(crate) fn key(&self, keyed: Keyed, name: &str) -> Option<&KeyGroup> {
        let keys = self.keys(keyed);
        let at = keys.binary_search_by(|g| (*g.name).cmp(name)).ok()?;
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
            .map(|g| &*g.name)
            .collect();
        assert_eq!(
            names,
            ["u-1", "u-2"],
            "sorted; an empty reference id is none"
        );
        let u1 = index.key(Keyed::Reference, "u-1").unwrap();
        assert_eq!(ids(&rows, index.key_members(u1)), ["inq_d", "inq_b"]);
        let accounts: Vec<&str> = index
            .keys(Keyed::Account)
            .iter()
            .map(|g| &*g.name)
            .collect();
        assert_eq!(
            accounts,
            ["act_1", "act_2"],
            "a malformed account is left out"
        );
        let a1 = index.key(Keyed::Account, "act_1").unwrap();
        assert_eq!(ids(&rows, index.key_members(a1)), ["inq_d", "inq_c"]);
        assert!(index.key(Keyed::Account, "act_3").is_none());
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
        let crafted = reference_name(&Arc::from("a/b"), SHORT_HASH);
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
            assert!(w[0].name < w[1].name, "names are distinct and sorted");
        }
        let slash = index.key(Keyed::Reference, &crafted).unwrap();
        assert_eq!(&*slash.raw, "a/b");
        assert_eq!(ids(&rows, index.key_members(slash)), ["inq_1", "inq_6"]);
        assert_eq!(&*index.key(Keyed::Reference, "a_b").unwrap().raw, "a_b");
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
