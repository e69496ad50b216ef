//! Listing every inquiry the filters select, page after page.

use std::collections::{HashSet, VecDeque};
use std::sync::LazyLock;

use futures::Stream;
use parking_lot::Mutex;

use super::client::MAX_PAGE_SIZE;
use super::model::{MAX_INQUIRY_ID_LEN, inquiry_id_problem};
use super::{InquiryPage, InquirySummary, ListFilters, PersonaApi};
use crate::{Error, Result};

struct Pager<'a> {
    api: &'a dyn PersonaApi,
    filters: &'a ListFilters,
    page_size: u32,
    after: Option<String>,
    seen_cursors: HashSet<String>,
    buffered: VecDeque<InquirySummary>,
    finished: bool,
    /// The cursor that came back again, said once the buffered summaries are out.
    cut_at: Option<String>,
    /// A first page handed in, announced before its summaries as a fetched one is.
    first_page: Option<usize>,
}

impl Pager<'_> {
    async fn next_item(&mut self) -> Option<Result<Listed>> {
        if let Some(inquiries) = self.first_page.take() {
            return Some(Ok(Listed::Page { inquiries }));
        }
        if let Some(item) = self.buffered.pop_front() {
            return Some(Ok(Listed::Inquiry(item)));
        }
        if let Some(cursor) = self.cut_at.take() {
            return Some(Ok(Listed::CutShort { cursor }));
        }
        if self.finished {
            return None;
        }
        let page = match self
            .api
            .list_page(self.filters, self.after.as_deref(), self.page_size)
            .await
        {
            Ok(page) => page,
            Err(e) => {
                self.finished = true;
                return Some(Err(e));
            }
        };
        let count = page.inquiries.len();
        self.buffered.extend(valid_only(page.inquiries));
        match page.next_after {
            // An empty page with a cursor would page forever.
            Some(_) if count == 0 => self.finished = true,
            Some(cursor) => {
                if self.seen_cursors.insert(cursor.clone()) {
                    self.after = Some(cursor);
                } else {
                    // What was gathered stays; the end says the listing was cut short.
                    self.finished = true;
                    self.cut_at = Some(shown_cursor(&cursor));
                }
            }
            None => self.finished = true,
        }
        Some(Ok(Listed::Page { inquiries: count }))
    }
}

/// What a listing stream gives: each page as it arrives, then its inquiries; a listing
/// Persona's cursors cannot finish ends with `CutShort` after all it gathered.
#[derive(Debug, Clone, PartialEq)]
pub enum Listed {
    /// A page arrived holding this many summaries (its valid ones follow).
    Page {
        inquiries: usize,
    },
    Inquiry(InquirySummary),
    /// The next-page cursor came back again: the listing stops here, incomplete. `cursor`
    /// is safe to log (tokens redacted, at most 100 characters).
    CutShort {
        cursor: String,
    },
}

/// A cursor as it may be logged: whatever a server sent, no token and no flood.
fn shown_cursor(cursor: &str) -> String {
    let redacted = crate::redact::redact_text(cursor);
    let shown: String = redacted.chars().take(100).collect();
    format!("{shown:?}")
}

/// Ids already warned about, so that a listing refreshed every minute does not say it again.
static WARNED: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);
/// Past this many, ids are warned about every time rather than remembered.
const MAX_WARNED: usize = 10_000;

/// The summaries whose id is a Persona inquiry id; each other one is dropped, with one
/// warning per id that says what is wrong with it (an id that is not `inq_…` never becomes
/// a path).
fn valid_only(inquiries: Vec<InquirySummary>) -> impl Iterator<Item = InquirySummary> {
    inquiries
        .into_iter()
        .filter(|s| match inquiry_id_problem(&s.id) {
            None => true,
            Some(why) => {
                let shown: String = s.id.chars().take(MAX_INQUIRY_ID_LEN).collect();
                let first_time = {
                    let mut warned = WARNED.lock();
                    warned.len() >= MAX_WARNED || warned.insert(shown.clone())
                };
                if first_time {
                    tracing::warn!("list inquiries: dropping id {shown:?}: {why}");
                }
                false
            }
        })
}

/// Every inquiry the filters select, newest first, fetched a page of `page_size` (≤ 100) at
/// a time as the stream is read. A cursor that repeats ends the stream with an error, after
/// the summaries gathered.
pub fn list_stream<'a>(
    api: &'a dyn PersonaApi,
    filters: &'a ListFilters,
    page_size: u32,
) -> impl Stream<Item = Result<InquirySummary>> + Send + 'a {
    list_stream_from(api, filters, page_size, None)
}

/// As `list_stream`, starting from a first page already fetched (its cursor goes on).
pub fn list_stream_from<'a>(
    api: &'a dyn PersonaApi,
    filters: &'a ListFilters,
    page_size: u32,
    first: Option<InquiryPage>,
) -> impl Stream<Item = Result<InquirySummary>> + Send + 'a {
    use futures::StreamExt;
    list_pages_from(api, filters, page_size, first).filter_map(|item| async move {
        match item {
            Ok(Listed::Page { .. }) => None,
            Ok(Listed::Inquiry(s)) => Some(Ok(s)),
            Ok(Listed::CutShort { cursor }) => Some(Err(Error::InvalidResponse {
                context: "list inquiries".into(),
                message: format!("the next-page cursor {cursor} came back again"),
            })),
            Err(e) => Some(Err(e)),
        }
    })
}

/// As `list_stream_from`, saying when each page arrives and when the listing is cut short
/// (a repeating cursor) rather than failing: for a caller that shows what was gathered.
pub fn list_pages_from<'a>(
    api: &'a dyn PersonaApi,
    filters: &'a ListFilters,
    page_size: u32,
    first: Option<InquiryPage>,
) -> impl Stream<Item = Result<Listed>> + Send + 'a {
    let first_page = first.as_ref().map(|page| page.inquiries.len());
    let (buffered, after, finished) = match first {
        Some(page) => {
            let done = page.next_after.is_none() || page.inquiries.is_empty();
            (valid_only(page.inquiries).collect(), page.next_after, done)
        }
        None => (VecDeque::new(), None, false),
    };
    let pager = Pager {
        api,
        filters,
        page_size: page_size.clamp(1, MAX_PAGE_SIZE),
        seen_cursors: after.iter().cloned().collect(),
        after,
        buffered,
        finished,
        cut_at: None,
        first_page,
    };
    futures::stream::unfold(pager, |mut pager| async move {
        let item = pager.next_item().await?;
        Some((item, pager))
    })
}

/// Every inquiry the filters select, in pages of 100; the first error ends it.
pub async fn list_all(api: &dyn PersonaApi, filters: &ListFilters) -> Result<Vec<InquirySummary>> {
    use futures::TryStreamExt;
    list_stream(api, filters, MAX_PAGE_SIZE).try_collect().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RetrievedInquiry;
    use async_trait::async_trait;

    /// Pages served from a script: cursor → (ids, next cursor).
    struct Scripted {
        pages: Vec<(
            Option<&'static str>,
            Vec<&'static str>,
            Option<&'static str>,
        )>,
        calls: Mutex<Vec<(Option<String>, u32)>>,
    }

    #[async_trait]
    impl PersonaApi for Scripted {
        async fn list_page(
            &self,
            _: &ListFilters,
            after: Option<&str>,
            size: u32,
        ) -> Result<InquiryPage> {
            self.calls.lock().push((after.map(str::to_string), size));
            let (_, ids, next) = self
                .pages
                .iter()
                .find(|(cursor, _, _)| *cursor == after)
                .ok_or_else(|| Error::NotFound("page".into()))?;
            Ok(InquiryPage {
                inquiries: ids
                    .iter()
                    .map(|id| InquirySummary {
                        id: id.to_string(),
                        status: None,
                        created_at: None,
                        updated_at: None,
                        redacted_at: None,
                        ..Default::default()
                    })
                    .collect(),
                next_after: next.map(str::to_string),
            })
        }
        async fn list_events(
            &self,
            _: &[String],
            _: &crate::EventsFrom,
            _: u32,
        ) -> Result<crate::EventPage> {
            unimplemented!()
        }
        async fn search_updated_since(
            &self,
            _: chrono::DateTime<chrono::Utc>,
            _: Option<&str>,
            _: u32,
        ) -> Result<InquiryPage> {
            unimplemented!()
        }
        async fn retrieve_inquiry(&self, id: &str) -> Result<RetrievedInquiry> {
            Err(Error::NotFound(id.into()))
        }
        async fn file_size(&self, _: &str) -> Result<u64> {
            Ok(0)
        }
        async fn download(
            &self,
            _: &str,
            _: u64,
            _: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
        ) -> Result<u64> {
            Ok(0)
        }
        async fn download_range(
            &self,
            _: &str,
            _: u64,
            _: u64,
            _: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
        ) -> Result<u64> {
            Ok(0)
        }
    }

    #[tokio::test]
    async fn follows_cursors_to_the_end() {
        let api = Scripted {
            pages: vec![
                (None, vec!["inq_5", "inq_4"], Some("inq_4")),
                (Some("inq_4"), vec!["inq_3", "inq_2"], Some("inq_2")),
                (Some("inq_2"), vec!["inq_1"], None),
            ],
            calls: Mutex::new(Vec::new()),
        };
        let all = list_all(&api, &ListFilters::default()).await.unwrap();
        let ids: Vec<_> = all.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["inq_5", "inq_4", "inq_3", "inq_2", "inq_1"]);
        let calls = api.calls.lock().clone();
        assert_eq!(calls.len(), 3);
        assert!(calls.iter().all(|(_, size)| *size == 100));
        assert_eq!(calls[1].0.as_deref(), Some("inq_4"));
    }

    #[tokio::test]
    async fn a_repeating_cursor_is_an_error() {
        let api = Scripted {
            pages: vec![
                (None, vec!["inq_3"], Some("inq_3")),
                (Some("inq_3"), vec!["inq_2"], Some("inq_3")),
            ],
            calls: Mutex::new(Vec::new()),
        };
        let err = list_all(&api, &ListFilters::default()).await.unwrap_err();
        assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
        assert_eq!(api.calls.lock().len(), 2);
    }

    #[tokio::test]
    async fn a_repeating_cursor_cuts_the_listing_after_what_was_gathered() {
        use futures::TryStreamExt;
        let api = Scripted {
            pages: vec![
                (None, vec!["inq_3"], Some("c1")),
                (Some("c1"), vec!["inq_2"], Some("c1")),
            ],
            calls: Mutex::new(Vec::new()),
        };
        let filters = ListFilters::default();
        let got: Vec<Listed> = list_pages_from(&api, &filters, 100, None)
            .try_collect()
            .await
            .unwrap();
        let summary = |id: &str| {
            Listed::Inquiry(InquirySummary {
                id: id.into(),
                status: None,
                created_at: None,
                updated_at: None,
                redacted_at: None,
                ..Default::default()
            })
        };
        assert_eq!(
            got,
            [
                Listed::Page { inquiries: 1 },
                summary("inq_3"),
                Listed::Page { inquiries: 1 },
                summary("inq_2"),
                Listed::CutShort {
                    cursor: "\"c1\"".into()
                },
            ]
        );
        assert_eq!(api.calls.lock().len(), 2);
        // A cursor carrying a token is logged without it.
        assert_eq!(
            shown_cursor("https://x/files/a?access_token=secret"),
            format!(
                "{:?}",
                crate::redact::redact_text("https://x/files/a?access_token=secret")
            )
        );
        assert!(!shown_cursor("x?access_token=secret").contains("secret"));
    }

    #[tokio::test]
    async fn ids_that_are_not_inquiry_ids_are_dropped() {
        let long: &'static str = Box::leak(format!("inq_{}", "x".repeat(61)).into_boxed_str());
        let api = Scripted {
            pages: vec![
                (None, vec!["inq_3", "doc_1", "inq_../../etc"], Some("c1")),
                // A page of nothing but bad ids still leads on to the next one.
                (Some("c1"), vec![long, "inq_"], Some("c2")),
                (Some("c2"), vec!["inq_2", "inq_1\n", "inq_1"], None),
            ],
            calls: Mutex::new(Vec::new()),
        };
        let all = list_all(&api, &ListFilters::default()).await.unwrap();
        let ids: Vec<_> = all.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["inq_3", "inq_2", "inq_1"]);
        assert_eq!(api.calls.lock().len(), 3);

        // A first page handed in is filtered the same way.
        let first = InquiryPage {
            inquiries: ["inq_9", "bogus"]
                .iter()
                .map(|id| InquirySummary {
                    id: id.to_string(),
                    status: None,
                    created_at: None,
                    updated_at: None,
                    redacted_at: None,
                    ..Default::default()
                })
                .collect(),
            next_after: None,
        };
        use futures::TryStreamExt;
        let filters = ListFilters::default();
        let ids: Vec<String> = list_stream_from(&api, &filters, 100, Some(first))
            .map_ok(|s| s.id)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(ids, ["inq_9"]);
    }

    #[tokio::test]
    async fn an_empty_page_with_a_cursor_ends_the_listing() {
        let api = Scripted {
            pages: vec![
                (None, vec!["inq_1"], Some("inq_1")),
                (Some("inq_1"), vec![], Some("inq_0")),
            ],
            calls: Mutex::new(Vec::new()),
        };
        let all = list_all(&api, &ListFilters::default()).await.unwrap();
        assert_eq!(all.len(), 1);
    }
}
