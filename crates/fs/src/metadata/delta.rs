//! Deltas: freshness bought with Persona's change signal (search on `updated-at`), costing
//! the number of changes rather than the number of inquiries.
//!
//! The rules, kept here apart from the listing they act on (tested with the clock given):
//! - A **watermark** is the latest `updated-at` search reported, and when it was taken. A
//!   delta asks for everything updated since the watermark minus an **overlap** (default
//!   2 min) that covers search's index lag, and for the list endpoint's first page (newest
//!   first, no lag) for inquiries too new for search. It moves the watermark to the latest
//!   `updated-at` search gave; the list page never moves it.
//! - A delta that succeeds **vouches** for every inquiry of the organization as of its time:
//!   the listing and every view not reported changed stay good for the metadata TTL.
//! - A **whole listing** is taken instead when there is nothing to go on from (no listing, no
//!   watermark), when the watermark is older than the full-listing interval (default a day),
//!   when that interval has passed since the last whole listing, and when search's answer
//!   cannot be trusted (a repeated cursor, `updated-at` going backwards, an item that is not
//!   an inquiry, more pages than [`MAX_PAGES`], a malformed body). A whole listing sets the
//!   watermark to the time it began (local clock; the overlap also covers a small skew).
//! - Search refused (400/403/404) falls back for good to listing by TTL.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use personafs_client::query::{Bound, created_at_bound};
use personafs_client::search::SearchError;
use personafs_client::{InquirySummary, ListFilters};

pub use crate::config::DeltaConfig;

/// Pages of changes one delta takes at most (20,000 changes); more means a whole listing.
pub(crate) const MAX_PAGES: u32 = 200;

/// The latest `updated-at` search reported (Persona's clock), and when (this host's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Watermark {
    pub(crate) updated: DateTime<Utc>,
    pub(crate) taken: SystemTime,
}

impl Watermark {
    /// As kept in the store's cursor table: two integers of milliseconds.
    pub(crate) fn encode(&self) -> String {
        let taken = DateTime::<Utc>::from(self.taken).timestamp_millis();
        format!("{} {taken}", self.updated.timestamp_millis())
    }

    pub(crate) fn decode(text: &str) -> Option<Watermark> {
        let (updated, taken) = text.split_once(' ')?;
        Some(Watermark {
            updated: DateTime::from_timestamp_millis(updated.parse().ok()?)?,
            taken: DateTime::from_timestamp_millis(taken.parse().ok()?)?.into(),
        })
    }
}

/// Why a whole listing was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FullReason {
    /// Nothing to go on from: no listing or no watermark (a first mount, other filters).
    First,
    /// The full-listing interval passed since the last whole listing.
    Scheduled,
    /// The watermark is older than the full-listing interval.
    Gap,
    /// Search answered something that cannot be trusted.
    Untrusted,
    /// More changes than one delta takes.
    TooManyChanges,
    /// Search is refused for this key or version: listing by TTL, as without deltas.
    SearchRefused,
}

impl FullReason {
    pub const ALL: [FullReason; 6] = [
        FullReason::First,
        FullReason::Scheduled,
        FullReason::Gap,
        FullReason::Untrusted,
        FullReason::TooManyChanges,
        FullReason::SearchRefused,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FullReason::First => "first",
            FullReason::Scheduled => "scheduled",
            FullReason::Gap => "gap",
            FullReason::Untrusted => "untrusted",
            FullReason::TooManyChanges => "too-many-changes",
            FullReason::SearchRefused => "search-refused",
        }
    }
}

/// What the next refresh of the listing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Ask for the changes since this time.
    Delta { since: DateTime<Utc> },
    /// Take a whole listing.
    Full(FullReason),
}

/// The next refresh, from the watermark, when the last whole listing was taken, and now.
pub(crate) fn next(
    cfg: &DeltaConfig,
    watermark: Option<&Watermark>,
    last_full: Option<SystemTime>,
    now: SystemTime,
) -> Next {
    let (Some(w), Some(full)) = (watermark, last_full) else {
        return Next::Full(FullReason::First);
    };
    let older = |t: SystemTime| {
        now.duration_since(t)
            .is_ok_and(|d| d > cfg.full_listing_every)
    };
    if older(w.taken) {
        return Next::Full(FullReason::Gap);
    }
    if older(full) {
        return Next::Full(FullReason::Scheduled);
    }
    let overlap = chrono::Duration::from_std(cfg.overlap).unwrap_or(chrono::Duration::zero());
    Next::Delta {
        since: w.updated - overlap,
    }
}

/// Why a delta gave no answer: a whole listing instead, or nothing this time.
#[derive(Debug)]
pub(crate) enum Unusable {
    Full(FullReason),
    /// Persona failed (network, 5xx, offline): nothing vouched, try again later.
    Failed(personafs_client::Error),
}

pub(crate) fn unusable(e: SearchError) -> Unusable {
    match e {
        SearchError::Refused(_) => Unusable::Full(FullReason::SearchRefused),
        SearchError::TooManyPages { .. } => Unusable::Full(FullReason::TooManyChanges),
        SearchError::RepeatedCursor { .. }
        | SearchError::WentBackwards { .. }
        | SearchError::NotAnInquiry { .. } => Unusable::Full(FullReason::Untrusted),
        SearchError::Failed(e @ personafs_client::Error::InvalidResponse { .. }) => {
            tracing::debug!("search answered a malformed body: {e}");
            Unusable::Full(FullReason::Untrusted)
        }
        SearchError::Failed(e) => Unusable::Failed(e),
    }
}

/// Whether an inquiry is in the mount's filters: `None` when the summary lacks what a filter
/// needs (membership then stays as it was).
pub(crate) fn in_scope(filters: &ListFilters, s: &InquirySummary) -> Option<bool> {
    fn is(want: &Option<String>, have: &Option<String>) -> Option<bool> {
        match want {
            None => Some(true),
            Some(w) => have.as_ref().map(|h| h == w),
        }
    }
    let status = match filters.status.is_empty() {
        true => Some(true),
        false => s.status.as_ref().map(|st| filters.status.contains(st)),
    };
    let ids = filters.inquiry_ids.is_empty() || filters.inquiry_ids.contains(&s.id);
    let created = |text: &Option<String>, bound: Bound| -> Option<bool> {
        let Some(text) = text else { return Some(true) };
        let limit = created_at_bound(text, bound).ok()?;
        let limit = DateTime::parse_from_rfc3339(&limit)
            .ok()?
            .with_timezone(&Utc);
        let c = s.created_at?;
        Some(match bound {
            Bound::Start => c >= limit,
            Bound::End => c <= limit,
        })
    };
    let parts = [
        status,
        Some(ids),
        is(&filters.reference_id, &s.reference_id),
        is(&filters.account_id, &s.account_id),
        is(&filters.inquiry_template_id, &s.template_id),
        created(&filters.created_after, Bound::Start),
        created(&filters.created_before, Bound::End),
    ];
    if parts.contains(&Some(false)) {
        Some(false)
    } else if parts.contains(&None) {
        None
    } else {
        Some(true)
    }
}

/// What one delta changes, worked out from the answers before anything is applied.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Planned {
    /// In the filters and not listed: they join the listing.
    pub(crate) joined: Vec<InquirySummary>,
    /// Listed and now out of the filters: they leave it.
    pub(crate) left: Vec<Arc<str>>,
    /// Every inquiry reported, with its `updated-at`: a view older than that is stale.
    pub(crate) reported: Vec<(Arc<str>, SystemTime)>,
    /// Inquiries reported redacted.
    pub(crate) redacted: Vec<Arc<str>>,
}

impl Planned {
    /// Whether the listing's members change.
    pub(crate) fn moves_listing(&self) -> bool {
        !self.joined.is_empty() || !self.left.is_empty()
    }
}

/// Plan a delta: `searched` (every inquiry, oldest change first) then `newest` (the list
/// endpoint's first page, already within the filters). `listed` says whether an id is in
/// the listing now. An inquiry reported twice counts as its last report.
pub(crate) fn plan(
    filters: &ListFilters,
    listed: impl Fn(&str) -> bool,
    searched: Vec<InquirySummary>,
    newest: Vec<InquirySummary>,
) -> Planned {
    let mut last: HashMap<String, (InquirySummary, Option<bool>)> = HashMap::new();
    // A redaction is for good: any report of it counts, whatever came after.
    let mut redacted: HashSet<String> = HashSet::new();
    let mut order = Vec::new();
    for (s, from_list) in searched
        .into_iter()
        .map(|s| (s, false))
        .chain(newest.into_iter().map(|s| (s, true)))
    {
        let scope = if from_list {
            Some(true)
        } else {
            in_scope(filters, &s)
        };
        if s.redacted_at.is_some() {
            redacted.insert(s.id.clone());
        }
        let newer = match last.get(&s.id) {
            None => {
                order.push(s.id.clone());
                true
            }
            Some((seen, _)) => s.updated_at >= seen.updated_at,
        };
        if newer {
            last.insert(s.id.clone(), (s, scope));
        }
    }
    let mut planned = Planned::default();
    for id in order {
        let Some((s, scope)) = last.remove(&id) else {
            continue;
        };
        let key: Arc<str> = Arc::from(s.id.as_str());
        if let Some(updated) = s.updated_at {
            planned.reported.push((key.clone(), updated.into()));
        }
        if redacted.contains(&s.id) {
            planned.redacted.push(key.clone());
        }
        match (scope, listed(&s.id)) {
            (Some(true), false) => planned.joined.push(s),
            (Some(false), true) => planned.left.push(key),
            _ => {}
        }
    }
    planned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000 + s, 0).unwrap()
    }

    fn sys(s: i64) -> SystemTime {
        t(s).into()
    }

    fn summary(id: &str, updated: i64) -> InquirySummary {
        InquirySummary {
            id: id.into(),
            status: Some("completed".into()),
            created_at: Some(t(0)),
            updated_at: Some(t(updated)),
            ..Default::default()
        }
    }

    #[test]
    fn a_delta_reaches_back_by_the_overlap_and_gives_way_to_whole_listings() {
        let cfg = DeltaConfig::default();
        let w = Watermark {
            updated: t(1_000),
            taken: sys(1_100),
        };
        assert_eq!(
            next(&cfg, Some(&w), Some(sys(0)), sys(1_200)),
            Next::Delta { since: t(880) },
            "two minutes before the watermark"
        );
        assert_eq!(
            next(&cfg, None, Some(sys(0)), sys(1_200)),
            Next::Full(FullReason::First)
        );
        assert_eq!(
            next(&cfg, Some(&w), None, sys(1_200)),
            Next::Full(FullReason::First),
            "no stored listing to go on from"
        );
        let day = 24 * 3600;
        assert_eq!(
            next(&cfg, Some(&w), Some(sys(1_000)), sys(1_100 + day + 1)),
            Next::Full(FullReason::Gap),
            "nothing vouched for a day: the changes since may be more than search keeps"
        );
        let recent = Watermark {
            updated: t(day),
            taken: sys(day + 50),
        };
        assert_eq!(
            next(&cfg, Some(&recent), Some(sys(0)), sys(day + 100)),
            Next::Full(FullReason::Scheduled)
        );
        assert_eq!(
            next(&cfg, Some(&recent), Some(sys(100)), sys(day + 100)),
            Next::Delta {
                since: t(day - 120)
            },
            "the interval is not yet over"
        );
    }

    #[test]
    fn a_watermark_survives_its_text() {
        let w = Watermark {
            updated: DateTime::from_timestamp_millis(1_750_000_000_123).unwrap(),
            taken: DateTime::from_timestamp_millis(1_750_000_100_456)
                .unwrap()
                .into(),
        };
        assert_eq!(Watermark::decode(&w.encode()), Some(w));
        for bad in ["", "1", "x y", "1 2 3", "99999999999999999999 1"] {
            assert_eq!(Watermark::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn untrusted_answers_take_a_whole_listing_and_failures_wait() {
        use personafs_client::Error;
        let http = |status| Error::Http {
            host: personafs_client::error::Host::Api,
            status,
            title: None,
            details: None,
            request_id: None,
            context: "search".into(),
        };
        let full = |e| match unusable(e) {
            Unusable::Full(r) => Some(r),
            Unusable::Failed(_) => None,
        };
        assert_eq!(
            full(SearchError::from(http(403))),
            Some(FullReason::SearchRefused)
        );
        assert_eq!(full(SearchError::from(http(503))), None);
        assert_eq!(
            full(SearchError::RepeatedCursor { cursor: "c".into() }),
            Some(FullReason::Untrusted)
        );
        assert_eq!(
            full(SearchError::TooManyPages { max_pages: 1 }),
            Some(FullReason::TooManyChanges)
        );
        let malformed = Error::InvalidResponse {
            context: "search".into(),
            message: "malformed JSON".into(),
        };
        assert_eq!(
            full(SearchError::Failed(malformed)),
            Some(FullReason::Untrusted)
        );
    }

    #[test]
    fn filters_hold_on_what_a_summary_shows() {
        let mut s = summary("inq_1", 5);
        s.reference_id = Some("ref-1".into());
        s.template_id = Some("itmpl_1".into());
        let all = ListFilters::default();
        assert_eq!(in_scope(&all, &s), Some(true));
        let status = ListFilters {
            status: vec!["approved".into()],
            ..Default::default()
        };
        assert_eq!(in_scope(&status, &s), Some(false));
        s.status = Some("approved".into());
        assert_eq!(in_scope(&status, &s), Some(true));
        let account = ListFilters {
            account_id: Some("act_1".into()),
            ..Default::default()
        };
        assert_eq!(in_scope(&account, &s), None, "the summary shows no account");
        let both = ListFilters {
            account_id: Some("act_1".into()),
            reference_id: Some("other".into()),
            ..Default::default()
        };
        assert_eq!(in_scope(&both, &s), Some(false), "one filter says no");
        let created = ListFilters {
            created_after: Some("2025-06-15".into()),
            created_before: Some("2025-06-15T23:00:00Z".into()),
            inquiry_template_id: Some("itmpl_1".into()),
            ..Default::default()
        };
        // t(0) is 2025-06-15T15:06:40Z.
        assert_eq!(in_scope(&created, &s), Some(true));
        s.created_at = Some(t(-86_400));
        assert_eq!(in_scope(&created, &s), Some(false));
        let ids = ListFilters {
            inquiry_ids: vec!["inq_2".into()],
            ..Default::default()
        };
        assert_eq!(in_scope(&ids, &s), Some(false));
    }

    #[test]
    fn a_plan_joins_new_inquiries_drops_those_changed_out_and_marks_the_rest() {
        let filters = ListFilters {
            status: vec!["completed".into()],
            ..Default::default()
        };
        let listed = |id: &str| ["inq_listed", "inq_out"].contains(&id);
        let mut out = summary("inq_out", 3);
        out.status = Some("approved".into());
        let mut redacted = summary("inq_listed", 4);
        redacted.redacted_at = Some(t(4));
        let searched = vec![
            summary("inq_new", 1),
            summary("inq_listed", 2),
            out,
            redacted,
            summary("inq_new", 6), // changed again: its last report counts
        ];
        let newest = vec![summary("inq_brand_new", 7), summary("inq_listed", 4)];
        let p = plan(&filters, listed, searched, newest);
        let ids = |v: &[InquirySummary]| v.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&p.joined), vec!["inq_new", "inq_brand_new"]);
        assert_eq!(p.joined[0].updated_at, Some(t(6)));
        assert_eq!(p.left, vec![Arc::<str>::from("inq_out")]);
        assert_eq!(p.redacted, vec![Arc::<str>::from("inq_listed")]);
        assert_eq!(
            p.reported,
            vec![
                (Arc::from("inq_new"), sys(6)),
                (Arc::from("inq_listed"), sys(4)),
                (Arc::from("inq_out"), sys(3)),
                (Arc::from("inq_brand_new"), sys(7)),
            ]
        );
        assert!(p.moves_listing());
        let quiet = plan(&filters, listed, vec![summary("inq_listed", 2)], vec![]);
        assert!(!quiet.moves_listing());
    }
}
