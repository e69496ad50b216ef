//! Changes through `POST /inquiries/search` (PERSONA_API.md, "Search inquiries"): the
//! inquiries updated at or after a time, oldest change first, in cursor pages of up to 100.
//! Search lags writes (about a minute at Persona), so a caller reaches back past the lag and
//! takes seeing a change twice. [`changes_since`] walks the pages and refuses an answer that
//! cannot be trusted: a cursor given twice, `updated-at` going backwards or before the time
//! asked for, an id that is not an inquiry's.
//!
//! One page is `PersonaApi::search_updated_since`: the body asks `updated_at >= <time>`
//! (whole milliseconds, [`whole_millis`]) sorted ascending, and the query asks only
//! [`SUMMARY_FIELDS`] (`fields[inquiry]`: a page of whole inquiries would be mostly personal
//! data); each attempt goes through the client's retry policy, deadline, body cap and budget
//! as a list page does. A 400, 403 or 404 from the API host is [`Error::is_search_refused`],
//! told apart from other failures; every way a walk fails is a [`SearchError`].

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::error::Host;
use crate::{Error, InquirySummary, PersonaApi};

/// The attributes a search page asks for (`fields[inquiry]`): what a summary holds.
pub const SUMMARY_FIELDS: &str = "status,reference-id,created-at,updated-at,redacted-at";

/// The largest search page.
pub const MAX_SEARCH_PAGE: u32 = 100;

/// `t` to whole milliseconds, as it goes on the wire and as Persona's timestamps are.
pub fn whole_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// The search body for "updated at or after `since`, by `updated_at` ascending".
pub fn updated_since_body(since: DateTime<Utc>, page_size: u32) -> Value {
    json!({
        "query": {
            "attribute": "updated_at",
            "operator": "gte",
            "value": whole_millis(since).to_rfc3339_opts(SecondsFormat::Millis, true),
        },
        "sort": {"attribute": "updated_at", "direction": "asc"},
        "page": {"size": page_size.clamp(1, MAX_SEARCH_PAGE)},
    })
}

impl Error {
    /// Persona will not search for this key or API version (400, 403 or 404 from the API
    /// host): use the list endpoint instead.
    pub fn is_search_refused(&self) -> bool {
        matches!(
            self,
            Error::Http {
                host: Host::Api,
                status: 400 | 403 | 404,
                ..
            }
        )
    }
}

/// Why a walk through search pages gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// Search is refused ([`Error::is_search_refused`]): fall back to listing.
    #[error("search refused: {0}")]
    Refused(Error),
    /// A next-page cursor that was already followed: the pages loop.
    #[error("search answered with the cursor {cursor:?} a second time")]
    RepeatedCursor { cursor: String },
    /// An inquiry whose `updated-at` is earlier than the one before it (or than the time
    /// asked for), in an answer sorted by `updated-at` ascending.
    #[error("search answered inquiry {id} updated at {updated_at} after one updated at {previous}")]
    WentBackwards {
        id: String,
        updated_at: DateTime<Utc>,
        previous: DateTime<Utc>,
    },
    /// An item without an inquiry id, or without `updated-at`.
    #[error("search answered an item that is not an inquiry with an updated-at: {id:?}")]
    NotAnInquiry { id: String },
    /// More pages than the caller takes: too many changes for a delta.
    #[error("more than {max_pages} pages of changes")]
    TooManyPages { max_pages: u32 },
    /// Any other failure (network, 5xx after retries, 401, a malformed body…).
    #[error(transparent)]
    Failed(Error),
}

impl From<Error> for SearchError {
    fn from(e: Error) -> Self {
        if e.is_search_refused() {
            SearchError::Refused(e)
        } else {
            SearchError::Failed(e)
        }
    }
}

/// The inquiries updated at or after a time, as search answered them.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    /// Oldest change first; an inquiry changed twice may appear once per change seen.
    pub inquiries: Vec<InquirySummary>,
    /// Pages asked for.
    pub pages: u32,
}

impl Changes {
    /// The latest `updated-at` seen (the watermark this answer vouches for).
    pub fn latest(&self) -> Option<DateTime<Utc>> {
        self.inquiries.last().and_then(|i| i.updated_at)
    }
}

/// Every inquiry updated at or after `since`, in pages of [`MAX_SEARCH_PAGE`], at most
/// `max_pages` of them.
pub async fn changes_since(
    api: &(impl PersonaApi + ?Sized),
    since: DateTime<Utc>,
    max_pages: u32,
) -> Result<Changes, SearchError> {
    let mut changes = Changes {
        inquiries: Vec::new(),
        pages: 0,
    };
    let mut followed: HashSet<String> = HashSet::new();
    let mut previous = whole_millis(since);
    let mut after: Option<String> = None;
    loop {
        if changes.pages == max_pages {
            return Err(SearchError::TooManyPages { max_pages });
        }
        let page = api
            .search_updated_since(since, after.as_deref(), MAX_SEARCH_PAGE)
            .await?;
        changes.pages += 1;
        for inquiry in page.inquiries {
            let updated_at = match inquiry.updated_at {
                Some(t) if inquiry.id.starts_with("inq_") => t,
                _ => return Err(SearchError::NotAnInquiry { id: inquiry.id }),
            };
            if updated_at < previous {
                return Err(SearchError::WentBackwards {
                    id: inquiry.id,
                    updated_at,
                    previous,
                });
            }
            previous = updated_at;
            changes.inquiries.push(inquiry);
        }
        match page.next_after {
            None => return Ok(changes),
            Some(cursor) => {
                if !followed.insert(cursor.clone()) {
                    return Err(SearchError::RepeatedCursor { cursor });
                }
                after = Some(cursor);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::{Call, Fault, FaultyApi, InquirySpec, MemoryApi, SearchGarble};

    /// `n` inquiries created a year ago, so every change made now is after `since`.
    fn organization(n: usize) -> MemoryApi {
        let api = MemoryApi::new();
        for i in 0..n {
            api.add_inquiry(
                InquirySpec::new(&format!("inq_{i:04}")).created_at("2025-01-01T00:00:00Z"),
            );
        }
        api
    }

    fn ids(changes: &Changes) -> Vec<&str> {
        changes.inquiries.iter().map(|i| i.id.as_str()).collect()
    }

    #[tokio::test]
    async fn changes_come_oldest_first_over_pages() {
        let api = organization(300);
        let since = Utc::now();
        // 150 changes, in an order that is not the ids' order.
        let changed: Vec<String> = (0..150)
            .map(|k| format!("inq_{:04}", (k * 7) % 300))
            .collect();
        for (k, id) in changed.iter().enumerate() {
            assert!(if k % 2 == 0 {
                api.set_status(id, "approved")
            } else {
                api.redact(id)
            });
        }
        let changes = changes_since(&api, since, 10).await.unwrap();
        assert_eq!(
            ids(&changes),
            changed.iter().map(String::as_str).collect::<Vec<_>>()
        );
        assert_eq!(changes.pages, 2);
        assert_eq!(api.calls(Call::Search), 2);
        assert_eq!(changes.latest(), changes.inquiries[149].updated_at);
        assert!(changes.inquiries[1].redacted_at.is_some());
        // Nothing changed since then: one page, empty.
        let later = changes.latest().unwrap() + chrono::Duration::milliseconds(1);
        let none = changes_since(&api, later, 10).await.unwrap();
        assert!(none.inquiries.is_empty());
        assert_eq!(none.pages, 1);
        // Too many pages for the caller.
        let err = changes_since(&api, since, 1).await.unwrap_err();
        assert!(
            matches!(err, SearchError::TooManyPages { max_pages: 1 }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn refusals_are_told_apart_from_failures() {
        let api = organization(3);
        for status in [400, 403, 404] {
            api.refuse_search(Some(status));
            let err = changes_since(&api, Utc::now(), 5).await.unwrap_err();
            assert!(
                matches!(err, SearchError::Refused(ref e) if e.status() == Some(status)),
                "{err}"
            );
        }
        for status in [401, 500] {
            api.refuse_search(Some(status));
            let err = changes_since(&api, Utc::now(), 5).await.unwrap_err();
            assert!(
                matches!(err, SearchError::Failed(ref e) if !e.is_search_refused()),
                "{err}"
            );
        }
        api.refuse_search(None);
        let faulty = FaultyApi::new(organization(3));
        faulty.fail_next(Call::Search, 1, Fault::Status(403));
        faulty.fail_next(Call::Search, 1, Fault::Network);
        let err = changes_since(&faulty, Utc::now(), 5).await.unwrap_err();
        assert!(matches!(err, SearchError::Refused(_)), "{err}");
        let err = changes_since(&faulty, Utc::now(), 5).await.unwrap_err();
        assert!(
            matches!(err, SearchError::Failed(Error::Network { .. })),
            "{err}"
        );
        assert!(changes_since(&faulty, Utc::now(), 5).await.is_ok());
        assert_eq!(faulty.injected(Call::Search), 2);
    }

    #[tokio::test]
    async fn a_repeated_cursor_and_updated_at_going_backwards_are_errors() {
        let inner = organization(250);
        let since = Utc::now();
        for k in 0..220 {
            inner.set_status(&format!("inq_{k:04}"), "declined");
        }
        let api = FaultyApi::new(inner);
        let fine = changes_since(&api, since, 10).await.unwrap();
        assert_eq!((fine.inquiries.len(), fine.pages), (220, 3));
        // The second page names its own cursor again.
        api.garble_search(2, SearchGarble::RepeatCursor);
        match changes_since(&api, since, 10).await {
            Err(SearchError::RepeatedCursor { cursor }) => assert_eq!(cursor, "inq_0099"),
            other => panic!("{:?}", other.map(|c| c.pages)),
        }
        api.clear();
        // Reversed, a page of changes made a few milliseconds apart goes backwards.
        let inner = organization(5);
        let clock = crate::clock::Clock::manual();
        inner.set_clock(clock.clone());
        let since = Utc::now();
        for k in 0..5 {
            inner.set_status(&format!("inq_{k:04}"), "declined");
            clock.advance(Duration::from_millis(2));
        }
        let api = FaultyApi::new(inner);
        api.garble_search(1, SearchGarble::Backwards);
        match changes_since(&api, since, 10).await {
            Err(SearchError::WentBackwards {
                updated_at,
                previous,
                ..
            }) => assert!(updated_at < previous),
            other => panic!("{:?}", other.map(|c| c.pages)),
        }
        assert_eq!(api.injected(Call::Search), 1);
        assert_eq!(
            changes_since(&api, since, 10)
                .await
                .unwrap()
                .inquiries
                .len(),
            5
        );
    }

    #[tokio::test]
    async fn an_item_that_is_no_inquiry_or_older_than_asked_is_refused() {
        struct Odd(Vec<InquirySummary>);
        #[async_trait::async_trait]
        impl PersonaApi for Odd {
            async fn list_page(
                &self,
                _: &crate::ListFilters,
                _: Option<&str>,
                _: u32,
            ) -> crate::Result<crate::InquiryPage> {
                unimplemented!()
            }
            async fn retrieve_inquiry(&self, _: &str) -> crate::Result<crate::RetrievedInquiry> {
                unimplemented!()
            }
            async fn list_events(
                &self,
                _: &[String],
                _: &crate::EventsFrom,
                _: u32,
            ) -> crate::Result<crate::EventPage> {
                unimplemented!()
            }
            async fn search_updated_since(
                &self,
                _: DateTime<Utc>,
                _: Option<&str>,
                _: u32,
            ) -> crate::Result<crate::InquiryPage> {
                Ok(crate::InquiryPage {
                    inquiries: self.0.clone(),
                    next_after: None,
                })
            }
            async fn file_size(&self, _: &str) -> crate::Result<u64> {
                unimplemented!()
            }
            async fn download(
                &self,
                _: &str,
                _: u64,
                _: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
            ) -> crate::Result<u64> {
                unimplemented!()
            }
            async fn download_range(
                &self,
                _: &str,
                _: u64,
                _: u64,
                _: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
            ) -> crate::Result<u64> {
                unimplemented!()
            }
        }
        let since = Utc::now();
        let item = |id: &str, at: Option<DateTime<Utc>>| InquirySummary {
            id: id.into(),
            status: None,
            created_at: None,
            updated_at: at,
            redacted_at: None,
            ..Default::default()
        };
        let cases = [
            (vec![item("doc_1", Some(since))], "NotAnInquiry"),
            (vec![item("inq_1", None)], "NotAnInquiry"),
            (
                vec![item("inq_1", Some(since - chrono::Duration::seconds(1)))],
                "WentBackwards",
            ),
        ];
        for (items, want) in cases {
            let err = changes_since(&Odd(items), since, 3).await.unwrap_err();
            assert!(format!("{err:?}").starts_with(want), "{err:?}");
        }
        let ok = changes_since(&Odd(vec![item("inq_1", Some(since))]), since, 3)
            .await
            .unwrap();
        assert_eq!(ok.inquiries.len(), 1);
    }

    #[tokio::test]
    async fn memory_search_lags_as_set() {
        let api = organization(5);
        let since = Utc::now();
        api.set_search_lag(Duration::from_secs(60));
        api.set_status("inq_0001", "approved");
        assert!(
            changes_since(&api, since, 3)
                .await
                .unwrap()
                .inquiries
                .is_empty()
        );
        api.set_search_lag(Duration::ZERO);
        let changes = changes_since(&api, since, 3).await.unwrap();
        assert_eq!(ids(&changes), ["inq_0001"]);
        assert_eq!(changes.inquiries[0].status.as_deref(), Some("approved"));
    }

    #[test]
    fn the_body_asks_for_changes_oldest_first() {
        let since = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678Z")
            .unwrap()
            .with_timezone(&Utc);
        let body = updated_since_body(since, 500);
        assert_eq!(body["query"]["attribute"], "updated_at");
        assert_eq!(body["query"]["operator"], "gte");
        assert_eq!(body["query"]["value"], "2026-01-02T03:04:05.678Z");
        assert_eq!(
            body["sort"],
            json!({"attribute": "updated_at", "direction": "asc"})
        );
        assert_eq!(body["page"]["size"], 100);
    }
}
