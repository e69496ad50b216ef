//! Choosing one page of search results without building every inquiry: generated inquiries
//! are judged from their summary and `created-at` with `updated-at` known only as a range
//! (built, once, when that range leaves the answer open), and only those whose range could
//! place them on the page are built.

use std::collections::BinaryHeap;
use std::sync::Arc;

use super::history::Attrs;
use super::query::{Known, Node, Truth, millis};
use crate::data::MockInquiry;
use crate::generate::epoch;
use crate::state::Store;

const DAY_MS: i64 = 86_400_000;
/// How long after `created-at` a generated inquiry's story may end (its `updated-at`): a
/// decision comes within a day and an expiry a day after creation; a redaction within 30
/// days after that (see `generate.rs`; `story_bounds_hold` checks it).
pub const STORY_MS: i64 = 2 * DAY_MS;
pub const REDACTED_STORY_MS: i64 = 32 * DAY_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortAttr {
    CreatedAt,
    UpdatedAt,
    Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub attr: SortAttr,
    pub descending: bool,
}

/// Where an inquiry seen by search comes from.
#[derive(Clone)]
pub enum Source {
    /// A generated inquiry never changed: computed from its index.
    Generated(u64),
    /// The version search sees of any other.
    Held(Arc<MockInquiry>, Attrs),
}

/// One inquiry that may match, with its sort key known as a range (normalized so that the
/// wanted order is ascending `(key, tie)`).
#[derive(Clone)]
struct Candidate {
    source: Source,
    position: u64,
    lo: i64,
    hi: i64,
    tie: i64,
    settled: bool,
}

/// The search view of the store at one moment, for one query and sort.
pub struct Search<'a> {
    pub store: &'a Store,
    pub query: Option<&'a Node>,
    pub sort: Sort,
    /// Changes made after this time (ms) are not visible yet.
    pub cutoff: i64,
    /// Status ranks, for sorting by status.
    statuses: Vec<String>,
    /// What may match, gathered once per request (a page and its neighbours' check).
    gathered: std::cell::OnceCell<Vec<Candidate>>,
}

/// A found inquiry: its place and what to send.
pub struct Hit {
    pub position: u64,
    pub source: Source,
    /// Its normalized `(key, tie)`, to ask for what lies before or after it.
    pub place: (i64, i64),
}

impl<'a> Search<'a> {
    pub fn new(store: &'a Store, query: Option<&'a Node>, sort: Sort, cutoff: i64) -> Self {
        let mut search = Search {
            store,
            query,
            sort,
            cutoff,
            statuses: Vec::new(),
            gathered: std::cell::OnceCell::new(),
        };
        if sort.attr == SortAttr::Status {
            let mut statuses: Vec<String> = crate::generate::STATUSES.map(String::from).to_vec();
            for (_, source) in search.held() {
                if let Source::Held(_, attrs) = source {
                    statuses.push(attrs.status);
                }
            }
            statuses.sort();
            statuses.dedup();
            search.statuses = statuses;
        }
        search
    }

    /// Every inquiry that is not a plain generated one, as search sees it now.
    fn held(&self) -> Vec<(u64, Source)> {
        let store = self.store;
        let mut held = Vec::new();
        for (position, inquiry) in store.held_inquiries() {
            let index = store.search_index();
            let attrs = if index.tracks(&inquiry.id) {
                match index.as_of(&inquiry.id, self.cutoff) {
                    Some(version) => {
                        held.push((
                            position,
                            Source::Held(version.inquiry.clone(), version.attrs.clone()),
                        ));
                        continue;
                    }
                    None => continue, // added after the cutoff
                }
            } else {
                Attrs::of(&inquiry)
            };
            held.push((position, Source::Held(inquiry, attrs)));
        }
        held
    }

    /// The sort key of exact attributes, normalized (negated when descending).
    fn key(&self, attrs: &Attrs) -> i64 {
        let key = match self.sort.attr {
            SortAttr::CreatedAt => attrs.created_at,
            SortAttr::UpdatedAt => attrs.updated_at,
            SortAttr::Status => self.status_rank(&attrs.status),
        };
        if self.sort.descending { -key } else { key }
    }

    fn status_rank(&self, status: &str) -> i64 {
        self.statuses
            .binary_search_by(|s| s.as_str().cmp(status))
            .unwrap_or_else(|i| i) as i64
    }

    /// Ties go oldest first when ascending (newest first, as the list, when descending).
    fn tie(&self, position: u64) -> i64 {
        let tie = -(position as i64);
        if self.sort.descending { -tie } else { tie }
    }

    /// The normalized `(key, tie)` of the inquiry at `position` (a cursor).
    pub fn place_of(&self, position: u64) -> (i64, i64) {
        let inquiry = self.store.at(position);
        let index = self.store.search_index();
        let attrs = match index.as_of(&inquiry.id, self.cutoff) {
            Some(version) => version.attrs.clone(),
            None => Attrs::of(&inquiry),
        };
        (self.key(&attrs), self.tie(position))
    }

    /// Exact attributes of a generated inquiry (built once, then remembered).
    fn generated_attrs(&self, index: u64, position: u64) -> Attrs {
        let generator = self.store.generator();
        let summary = generator.summary(index);
        let created_at = millis(generator.created_at(index));
        let updated_at = match self.store.search_index().known_updated(index) {
            Some(t) => t,
            None => {
                let t = Attrs::of(&self.store.at(position)).updated_at;
                self.store.search_index().remember_updated(index, t);
                t
            }
        };
        Attrs {
            status: summary.status.to_string(),
            created_at,
            updated_at,
            reference_id: summary.reference_id,
            template_id: Some(summary.template_id),
        }
    }

    fn truth(&self, known: &Known) -> Truth {
        self.query.map_or(Truth::Yes, |q| q.eval(known))
    }

    fn candidates(&self) -> Vec<Candidate> {
        let mut out = Vec::new();
        for (position, source) in self.held() {
            let Source::Held(_, attrs) = &source else {
                continue;
            };
            let known = known(attrs, (attrs.updated_at, attrs.updated_at));
            if self.truth(&known) == Truth::No {
                continue;
            }
            let key = self.key(attrs);
            out.push(Candidate {
                tie: self.tie(position),
                source,
                position,
                lo: key,
                hi: key,
                settled: true,
            });
        }
        let store = self.store;
        let generator = store.generator();
        let (lo, hi) = self.query.map_or((i64::MIN, i64::MAX), |q| {
            q.created_bounds(REDACTED_STORY_MS)
        });
        if lo > hi {
            return out;
        }
        let to_time = |ms: i64| chrono::DateTime::from_timestamp_millis(ms);
        // Indices are newest first: those created at or before `hi`, then at or after `lo`.
        let first = match to_time(hi) {
            Some(t) if hi != i64::MAX => generator.newer_than(t),
            _ => 0,
        };
        let end = match to_time(lo.saturating_sub(1)) {
            Some(t) if lo != i64::MIN => generator.newer_than(t),
            _ => generator.count(),
        };
        let epoch = millis(epoch());
        for index in first..end {
            if store.generated_changed(index) {
                continue;
            }
            let summary = generator.summary(index);
            let created_at = millis(generator.created_at(index));
            let updated = match store.search_index().known_updated(index) {
                Some(t) => (t, t),
                None => {
                    let story = if summary.redacted {
                        REDACTED_STORY_MS
                    } else {
                        STORY_MS
                    };
                    (created_at, epoch.min(created_at + story).max(created_at))
                }
            };
            let known = Known {
                status: summary.status,
                created_at,
                updated,
                reference_id: summary.reference_id.as_deref(),
                template_id: Some(&summary.template_id),
            };
            let truth = self.truth(&known);
            if truth == Truth::No {
                continue;
            }
            let position = store.generated_position(index);
            let (lo, hi) = match self.sort.attr {
                SortAttr::CreatedAt => (created_at, created_at),
                SortAttr::UpdatedAt => updated,
                SortAttr::Status => {
                    let rank = self.status_rank(summary.status);
                    (rank, rank)
                }
            };
            let (lo, hi) = if self.sort.descending {
                (-hi, -lo)
            } else {
                (lo, hi)
            };
            out.push(Candidate {
                source: Source::Generated(index),
                position,
                lo,
                hi,
                tie: self.tie(position),
                settled: truth == Truth::Yes && lo == hi,
            });
        }
        out
    }

    /// The exact normalized key of a candidate, or `None` when it does not match.
    fn settle(&self, candidate: &Candidate) -> Option<i64> {
        if candidate.settled {
            return Some(candidate.lo);
        }
        let Source::Generated(index) = candidate.source else {
            return Some(candidate.lo);
        };
        let attrs = self.generated_attrs(index, candidate.position);
        let updated = (attrs.updated_at, attrs.updated_at);
        (self.truth(&known(&attrs, updated)) == Truth::Yes).then(|| self.key(&attrs))
    }

    /// Up to `count` matches in the wanted order strictly after `after` (or from the start);
    /// with `backward`, up to `count` strictly before `after` (or from the end), nearest first.
    pub fn page(&self, after: Option<(i64, i64)>, count: usize, backward: bool) -> Vec<Hit> {
        let mut candidates = self.gathered.get_or_init(|| self.candidates()).clone();
        // Walking backward is walking forward in the negated order.
        if backward {
            for c in &mut candidates {
                (c.lo, c.hi, c.tie) = (-c.hi, -c.lo, -c.tie);
            }
        }
        let after = after.map(|(k, t)| if backward { (-k, -t) } else { (k, t) });
        candidates.sort_unstable_by_key(|c| (c.lo, c.tie));
        // The best `count` so far, worst on top.
        let mut best: BinaryHeap<(i64, i64, usize)> = BinaryHeap::new();
        for (i, c) in candidates.iter().enumerate() {
            if best.len() == count
                && let Some(&(k, t, _)) = best.peek()
                && (c.lo, c.tie) > (k, t)
            {
                break;
            }
            if after.is_some_and(|a| (c.hi, c.tie) <= a) {
                continue;
            }
            let Some(key) = self.settle(c) else { continue };
            let key = if backward && !c.settled { -key } else { key };
            if after.is_some_and(|a| (key, c.tie) <= a) {
                continue;
            }
            best.push((key, c.tie, i));
            if best.len() > count {
                best.pop();
            }
        }
        let mut hits = best.into_sorted_vec();
        hits.truncate(count);
        hits.into_iter()
            .map(|(k, t, i)| Hit {
                position: candidates[i].position,
                source: candidates[i].source.clone(),
                place: if backward { (-k, -t) } else { (k, t) },
            })
            .collect()
    }
}

fn known(attrs: &Attrs, updated: (i64, i64)) -> Known<'_> {
    Known {
        status: &attrs.status,
        created_at: attrs.created_at,
        updated,
        reference_id: attrs.reference_id.as_deref(),
        template_id: attrs.template_id.as_deref(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::Generator;

    /// The ranges search assumes for generated inquiries' `updated-at` hold for what the
    /// generator builds (over every plan, redacted or not).
    #[test]
    fn story_bounds_hold() {
        let mut redacted = 0;
        for seed in [1, 9] {
            let generator = Generator::new(600, seed);
            for index in 0..generator.count() {
                let built = generator.inquiry(index).inquiry;
                let attrs = Attrs::of(&built);
                let summary = generator.summary(index);
                redacted += usize::from(summary.redacted);
                let story = if summary.redacted {
                    REDACTED_STORY_MS
                } else {
                    STORY_MS
                };
                assert!(attrs.updated_at >= attrs.created_at, "{index}");
                assert!(
                    attrs.updated_at <= attrs.created_at + story,
                    "{seed} {index}"
                );
                assert_eq!(attrs.created_at, millis(generator.created_at(index)));
                assert_eq!(attrs.status, summary.status);
            }
        }
        assert!(redacted > 0);
    }
}
