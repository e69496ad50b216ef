//! What a listing says of each inquiry, laid out for a million of them: the ids in listing
//! order, one small row per id beside them, and an index of positions hashed by id (the ids
//! are not stored a second time as keys). About 90 bytes an inquiry, ids included; the
//! reference id and account the views group by cost a row nothing more (their pair's number
//! fits in its padding), and each string and pair is kept once (`KeyTable`).

use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::SystemTime;

use hashbrown::HashTable;

use crate::store::{time_from_db, time_to_db};

/// No time given.
const NONE: i64 = i64::MIN;

fn pack(t: Option<SystemTime>) -> i64 {
    t.map_or(NONE, time_to_db)
}

fn unpack(n: i64) -> Option<SystemTime> {
    (n != NONE).then(|| time_from_db(n))
}

/// What the views (`by-reference-id/`, `accounts/`) group an inquiry by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RowKeys {
    pub(crate) reference: Option<Arc<str>>,
    pub(crate) account: Option<Arc<str>>,
}

#[derive(Debug, Clone, Copy)]
struct Row {
    /// Nanoseconds since the epoch, as the metadata store keeps them (`NONE` when absent).
    created: i64,
    updated: i64,
    /// Place in name order.
    rank: u32,
    /// The (reference id, account) pair in this listing's `KeyTable` (`NO_KEY`: neither).
    /// A number of this table: a row goes to another listing through `keys_of`.
    keys: u32,
}

/// No key, no pair.
const NO_KEY: u32 = u32::MAX;

/// The reference ids and accounts of a listing, each string kept once in one buffer and
/// each (reference id, account) pair once: a million inquiries of 400,000 people cost about
/// 25 MB here, where a pair of shared strings in each row cost 60.
#[derive(Default)]
struct KeyTable {
    text: String,
    /// Where each string ends in `text`.
    ends: Vec<u32>,
    /// String numbers, hashed by string.
    strings: HashTable<u32>,
    /// (reference, account) string numbers, `NO_KEY` for none.
    pairs: Vec<[u32; 2]>,
    /// Pair numbers, hashed by pair.
    pair_index: HashTable<u32>,
    /// The two hash indexes are dropped once the listing is whole (8 MB at a million) and
    /// built again when a key is added after that.
    unindexed: bool,
}

/// String `n` of a `KeyTable`'s buffer.
fn text_in<'a>(text: &'a str, ends: &[u32], n: u32) -> &'a str {
    let n = n as usize;
    let start = if n == 0 { 0 } else { ends[n - 1] as usize };
    &text[start..ends[n] as usize]
}

impl KeyTable {
    fn text_of(&self, n: u32) -> &str {
        text_in(&self.text, &self.ends, n)
    }

    fn string(&mut self, s: &str, hasher: &RandomState) -> u32 {
        self.index_again(hasher);
        let hash = hasher.hash_one(s);
        if let Some(&n) = self.strings.find(hash, |&n| self.text_of(n) == s) {
            return n;
        }
        let (Ok(n), Ok(end)) = (
            u32::try_from(self.ends.len()),
            u32::try_from(self.text.len() + s.len()),
        ) else {
            return NO_KEY;
        };
        self.text.push_str(s);
        self.ends.push(end);
        let (text, ends) = (&self.text, &self.ends);
        self.strings
            .insert_unique(hash, n, |&m| hasher.hash_one(text_in(text, ends, m)));
        n
    }

    fn pair(
        &mut self,
        reference: Option<&str>,
        account: Option<&str>,
        hasher: &RandomState,
    ) -> u32 {
        if reference.is_none() && account.is_none() {
            return NO_KEY;
        }
        self.index_again(hasher);
        let pair = [reference, account].map(|k| k.map_or(NO_KEY, |k| self.string(k, hasher)));
        let hash = hasher.hash_one(pair);
        if let Some(&n) = self
            .pair_index
            .find(hash, |&n| self.pairs[n as usize] == pair)
        {
            return n;
        }
        let Ok(n) = u32::try_from(self.pairs.len()) else {
            return NO_KEY;
        };
        self.pairs.push(pair);
        let pairs = &self.pairs;
        self.pair_index
            .insert_unique(hash, n, |&m| hasher.hash_one(pairs[m as usize]));
        n
    }

    fn get(&self, pair: u32) -> [Option<&str>; 2] {
        match self.pairs.get(pair as usize) {
            Some(&[r, a]) => [r, a].map(|k| (k != NO_KEY).then(|| self.text_of(k))),
            None => [None, None],
        }
    }

    /// The listing is whole: only reads follow, until a row is added.
    fn shrink(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.pairs.shrink_to_fit();
        self.strings = HashTable::new();
        self.pair_index = HashTable::new();
        self.unindexed = true;
    }

    fn index_again(&mut self, hasher: &RandomState) {
        if !std::mem::take(&mut self.unindexed) {
            return;
        }
        let (text, ends) = (&self.text, &self.ends);
        let hash = |m: u32| hasher.hash_one(text_in(text, ends, m));
        self.strings.reserve(ends.len(), |&m| hash(m));
        for n in 0..ends.len() as u32 {
            self.strings.insert_unique(hash(n), n, |&m| hash(m));
        }
        let pairs = &self.pairs;
        let hash = |m: u32| hasher.hash_one(pairs[m as usize]);
        self.pair_index.reserve(pairs.len(), |&m| hash(m));
        for n in 0..pairs.len() as u32 {
            self.pair_index.insert_unique(hash(n), n, |&m| hash(m));
        }
    }
}

/// A row that joins a listing (a delta's new inquiry).
#[derive(Debug, Clone)]
pub(crate) struct JoinedRow {
    pub(crate) id: Arc<str>,
    pub(crate) created: Option<SystemTime>,
    pub(crate) updated: Option<SystemTime>,
    pub(crate) keys: RowKeys,
}

#[derive(Default)]
pub(crate) struct ListingRows {
    /// Newest first, as Persona lists them.
    ids: Vec<Arc<str>>,
    rows: Vec<Row>,
    index: HashTable<u32>,
    hasher: RandomState,
    /// Positions in name order (filled by `finish`).
    by_name: Vec<u32>,
    keys: KeyTable,
}

impl ListingRows {
    /// Add `id` at the end unless it is listed already (a later page repeating an id).
    #[cfg(test)]
    pub(crate) fn push(
        &mut self,
        id: Arc<str>,
        created: Option<SystemTime>,
        updated: Option<SystemTime>,
    ) -> bool {
        self.push_with_keys(id, created, updated, RowKeys::default())
    }

    /// `push`, with the reference id and account the views group by.
    pub(crate) fn push_with_keys(
        &mut self,
        id: Arc<str>,
        created: Option<SystemTime>,
        updated: Option<SystemTime>,
        keys: RowKeys,
    ) -> bool {
        let (reference, account) = (keys.reference.as_deref(), keys.account.as_deref());
        self.push_keyed(id, created, updated, reference, account)
    }

    /// `push_with_keys`, with the keys borrowed (a listing page's, another listing's).
    pub(crate) fn push_keyed(
        &mut self,
        id: Arc<str>,
        created: Option<SystemTime>,
        updated: Option<SystemTime>,
        reference: Option<&str>,
        account: Option<&str>,
    ) -> bool {
        if self.position(&id).is_some() {
            return false;
        }
        let Ok(position) = u32::try_from(self.ids.len()) else {
            return false;
        };
        let keys = self.keys.pair(reference, account, &self.hasher);
        let hash = self.hasher.hash_one(&*id);
        self.ids.push(id);
        self.rows.push(Row {
            created: pack(created),
            updated: pack(updated),
            rank: 0,
            keys,
        });
        let (ids, hasher) = (&self.ids, &self.hasher);
        self.index
            .insert_unique(hash, position, |&p| hasher.hash_one(&*ids[p as usize]));
        true
    }

    /// The listing is whole: give back spare capacity and sort the name order.
    pub(crate) fn finish(&mut self) {
        self.keys.shrink();
        self.ids.shrink_to_fit();
        self.rows.shrink_to_fit();
        let (ids, hasher) = (&self.ids, &self.hasher);
        self.index
            .shrink_to_fit(|&p| hasher.hash_one(&*ids[p as usize]));
        let mut by_name: Vec<u32> = (0..self.ids.len() as u32).collect();
        by_name.sort_unstable_by(|&a, &b| self.ids[a as usize].cmp(&self.ids[b as usize]));
        for (rank, &p) in by_name.iter().enumerate() {
            self.rows[p as usize].rank = rank as u32;
        }
        self.by_name = by_name;
    }

    /// The ids in listing order.
    pub(crate) fn ids(&self) -> &[Arc<str>] {
        &self.ids
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Position of `id` in listing order.
    pub(crate) fn position(&self, id: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(id);
        self.index
            .find(hash, |&p| &*self.ids[p as usize] == id)
            .map(|&p| p as usize)
    }

    pub(crate) fn created(&self, id: &str) -> Option<SystemTime> {
        self.created_at(self.position(id)?)
    }

    pub(crate) fn updated(&self, id: &str) -> Option<SystemTime> {
        unpack(self.rows[self.position(id)?].updated)
    }

    /// The reference id and account of the inquiry at `position`, borrowed.
    pub(crate) fn keys_of(&self, position: usize) -> [Option<&str>; 2] {
        self.rows
            .get(position)
            .map_or([None, None], |r| self.keys.get(r.keys))
    }

    /// The numbers of the reference id and account of the inquiry at `position` (the same
    /// string has the same number throughout this listing): see `key_text`.
    pub(crate) fn key_numbers_at(&self, position: usize) -> [Option<u32>; 2] {
        match self
            .rows
            .get(position)
            .and_then(|r| self.keys.pairs.get(r.keys as usize))
        {
            Some(&[r, a]) => [r, a].map(|k| (k != NO_KEY).then_some(k)),
            None => [None, None],
        }
    }

    /// The key string numbered `n` by `key_numbers_at`.
    pub(crate) fn key_text(&self, n: u32) -> &str {
        self.keys.text_of(n)
    }

    /// The same, as owned strings.
    #[cfg(test)]
    pub(crate) fn keys_at(&self, position: usize) -> Option<RowKeys> {
        self.rows.get(position)?;
        let [reference, account] = self.keys_of(position).map(|k| k.map(Arc::from));
        Some(RowKeys { reference, account })
    }

    /// `created-at` of the inquiry at `position`.
    pub(crate) fn created_at(&self, position: usize) -> Option<SystemTime> {
        unpack(self.rows.get(position)?.created)
    }

    /// These rows without `left` and with `joined` in their places, newest first by
    /// `created-at` then by id (Persona's order), ready to `finish`. A joined id already
    /// listed keeps its row.
    pub(crate) fn changed(
        &self,
        mut joined: Vec<JoinedRow>,
        left: &HashSet<Arc<str>>,
    ) -> ListingRows {
        joined.sort_by(|a, b| (pack(b.created), &b.id).cmp(&(pack(a.created), &a.id)));
        let mut out = ListingRows::default();
        let mut joined = joined.into_iter().peekable();
        for (p, id) in self.ids.iter().enumerate() {
            let row = &self.rows[p];
            while let Some(j) = joined.next_if(|j| (pack(j.created), &j.id) > (row.created, id)) {
                out.push_with_keys(j.id, j.created, j.updated, j.keys);
            }
            if !left.contains(id) {
                let (created, updated) = (unpack(row.created), unpack(row.updated));
                let [reference, account] = self.keys.get(row.keys);
                out.push_keyed(id.clone(), created, updated, reference, account);
            }
        }
        for j in joined {
            out.push_with_keys(j.id, j.created, j.updated, j.keys);
        }
        out
    }

    /// Place of `id` in name order (after `finish`).
    pub(crate) fn rank(&self, id: &str) -> Option<usize> {
        Some(self.rows[self.position(id)?].rank as usize)
    }

    /// Up to `n` inquiries after name-order place `rank`.
    pub(crate) fn after_by_name(&self, rank: usize, n: usize) -> Vec<Arc<str>> {
        self.by_name
            .iter()
            .skip(rank + 1)
            .take(n)
            .map(|&p| self.ids[p as usize].clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(s: u64) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::new(s, 123_456_789))
    }

    #[test]
    fn rows_are_found_by_id_with_their_times_and_places() {
        let mut b = ListingRows::default();
        for (i, id) in ["inq_c", "inq_a", "inq_b"].into_iter().enumerate() {
            assert!(b.push(Arc::from(id), at(i as u64), at(100 + i as u64)));
        }
        assert!(
            !b.push(Arc::from("inq_a"), at(9), at(9)),
            "a repeated id is not added"
        );
        assert!(b.push(Arc::from("inq_d"), None, None));
        assert_eq!(b.len(), 4);
        b.finish();
        let rows = b;
        assert_eq!(rows.ids().len(), 4);
        assert_eq!(rows.position("inq_b"), Some(2));
        assert_eq!(
            rows.created("inq_a"),
            at(1),
            "times are kept to the nanosecond"
        );
        assert_eq!(rows.updated("inq_c"), at(100));
        assert_eq!(rows.created("inq_d"), None);
        assert_eq!(rows.created_at(2), at(2));
        assert_eq!(rows.position("inq_x"), None);
        assert_eq!(rows.rank("inq_a"), Some(0));
        assert_eq!(rows.rank("inq_d"), Some(3));
        assert_eq!(
            rows.after_by_name(0, 2),
            vec![Arc::<str>::from("inq_b"), Arc::from("inq_c")]
        );
    }

    #[test]
    fn keys_are_kept_per_row_and_shared_between_rows() {
        let keys = |r: &str, a: Option<&str>| RowKeys {
            reference: Some(Arc::from(r)),
            account: a.map(Arc::from),
        };
        let mut b = ListingRows::default();
        assert!(b.push_with_keys(Arc::from("inq_a"), at(2), None, keys("u-1", Some("act_1"))));
        assert!(b.push_with_keys(Arc::from("inq_b"), at(1), None, keys("u-1", None)));
        assert!(b.push(Arc::from("inq_c"), at(0), None));
        b.finish();
        assert_eq!(b.keys_at(0), Some(keys("u-1", Some("act_1"))));
        assert_eq!(b.keys_at(1), Some(keys("u-1", None)));
        assert_eq!(b.keys_at(2), Some(RowKeys::default()));
        assert_eq!(b.keys_at(3), None);
        assert_eq!(b.keys_of(1), [Some("u-1"), None]);
        assert_eq!(b.keys.text, "u-1act_1", "each string is kept once");
        assert_eq!(b.keys.pairs.len(), 2, "and each pair");
        // A row added once the listing is whole still finds the strings and pairs it has.
        assert!(b.push_keyed(Arc::from("inq_d"), at(0), None, Some("u-1"), Some("act_1")));
        assert!(b.push_keyed(Arc::from("inq_e"), at(0), None, Some("u-2"), None));
        assert_eq!(b.keys.text, "u-1act_1u-2");
        assert_eq!(b.keys.pairs.len(), 3);
        assert_eq!(b.keys_of(3), [Some("u-1"), Some("act_1")]);
        assert_eq!(b.keys_of(4), [Some("u-2"), None]);
    }

    #[test]
    fn joined_rows_go_in_their_places_and_left_ones_go() {
        let mut b = ListingRows::default();
        for (id, c) in [("inq_d", 40), ("inq_b", 20), ("inq_a", 10)] {
            b.push(Arc::from(id), at(c), at(c + 1));
        }
        b.finish();
        let j = |id: &str, c: Option<u64>| JoinedRow {
            id: Arc::from(id),
            created: c.and_then(at),
            updated: at(99),
            keys: RowKeys {
                reference: Some(Arc::from("ref")),
                account: None,
            },
        };
        let left: HashSet<Arc<str>> = [Arc::from("inq_b")].into();
        let mut c = b.changed(
            vec![
                j("inq_old", None),
                j("inq_c", Some(30)),
                j("inq_e", Some(50)),
                j("inq_a2", Some(10)), // same time as inq_a: by id, descending
            ],
            &left,
        );
        c.finish();
        let ids: Vec<&str> = c.ids().iter().map(|i| &**i).collect();
        assert_eq!(
            ids,
            ["inq_e", "inq_d", "inq_c", "inq_a2", "inq_a", "inq_old"]
        );
        assert_eq!(c.updated("inq_d"), at(41), "a kept row keeps its times");
        assert_eq!(c.updated("inq_c"), at(99));
        assert_eq!(
            c.keys_at(c.position("inq_c").unwrap())
                .unwrap()
                .reference
                .as_deref(),
            Some("ref")
        );
        assert_eq!(c.rank("inq_a"), Some(0));
    }

    #[test]
    fn times_before_the_epoch_survive() {
        let before = UNIX_EPOCH - Duration::from_secs(86_400);
        let mut b = ListingRows::default();
        b.push(Arc::from("inq_old"), Some(before), None);
        b.finish();
        assert_eq!(b.created("inq_old"), Some(before));
    }
}
