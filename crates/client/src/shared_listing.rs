//! With `--shared-state`, the list pages of one environment are shared too: mounts that list
//! at about the same time (started together, say) take each other's pages instead of each
//! listing every page. One mount lists a page under a claim, as for an inquiry's view; the
//! others wait for it.
//!
//! The first page is never shared: it is where a new inquiry appears (newest first), and a
//! mount lists again after an event announced one, so its first page must be its own. A
//! later page is named by its cursor (the last id of the page before), which a new inquiry
//! does not move.
//!
//! A page is ids, statuses and times: nothing secret. It is kept only [`PAGE_KEEP`] (a
//! listing is only as fresh as its pages, and each mount judges its listing's age from when
//! it listed), under a key named by a digest of the query (its filters may hold reference
//! or account ids: those never appear in a key).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::shared_state::{Claim, SharedViews, holding};
use crate::{
    EventPage, EventsFrom, InquiryPage, ListFilters, PersonaApi, Result, RetrievedInquiry,
};

/// How long a shared page stays in Redis: long enough for mounts started together, short
/// enough that a page taken from another mount is about as fresh as one listed here.
pub const PAGE_KEEP: Duration = Duration::from_secs(10);

/// Bumped when the wire form changes: a page of another version is ignored.
const VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
struct Wire<P> {
    v: u8,
    page: P,
}

fn encode(page: &InquiryPage) -> Option<Vec<u8>> {
    serde_json::to_vec(&Wire { v: VERSION, page }).ok()
}

fn decode(bytes: &[u8]) -> Option<InquiryPage> {
    let wire: Wire<InquiryPage> = serde_json::from_slice(bytes).ok()?;
    (wire.v == VERSION).then_some(wire.page)
}

/// The key of one page: a digest of the whole query (every filter, the cursor, the size).
fn page_key(filters: &ListFilters, after: Option<&str>, page_size: u32) -> String {
    let query = serde_json::json!({ "filters": filters, "after": after, "page_size": page_size });
    let digest = Sha256::digest(query.to_string().as_bytes());
    format!("page-{}", hex::encode(&digest[..16]))
}

/// A [`PersonaApi`] whose list pages are shared through `pages` (views kept
/// [`PAGE_KEEP`]); every other call goes to `inner` as it is.
pub struct SharedListing {
    inner: Arc<dyn PersonaApi>,
    pages: Arc<dyn SharedViews>,
}

impl SharedListing {
    pub fn new(inner: Arc<dyn PersonaApi>, pages: Arc<dyn SharedViews>) -> SharedListing {
        SharedListing { inner, pages }
    }
}

#[async_trait]
impl PersonaApi for SharedListing {
    async fn list_page(
        &self,
        filters: &ListFilters,
        after: Option<&str>,
        page_size: u32,
    ) -> Result<InquiryPage> {
        if after.is_none() {
            return self.inner.list_page(filters, after, page_size).await;
        }
        let key = page_key(filters, after, page_size);
        if let Some(page) = self.pages.fetch(&key).await.as_deref().and_then(decode) {
            return Ok(page);
        }
        match self.pages.claim(&key).await {
            Claim::Mine(lease) => {
                // Another mount may have published and released between our look and our
                // claim: look once more before spending a request.
                if let Some(page) = self.pages.fetch(&key).await.as_deref().and_then(decode) {
                    self.pages.release(lease).await;
                    return Ok(page);
                }
                let listed = holding(
                    self.pages.as_ref(),
                    &lease,
                    self.inner.list_page(filters, after, page_size),
                )
                .await;
                if let Ok(page) = &listed
                    && let Some(bytes) = encode(page)
                {
                    self.pages.publish(&key, &bytes).await;
                }
                self.pages.release(lease).await;
                listed
            }
            Claim::Taken => match self
                .pages
                .wait_for(&key, None)
                .await
                .as_deref()
                .and_then(decode)
            {
                Some(page) => Ok(page),
                None => self.inner.list_page(filters, after, page_size).await,
            },
            Claim::Unavailable => self.inner.list_page(filters, after, page_size).await,
        }
    }

    async fn retrieve_inquiry(&self, id: &str) -> Result<RetrievedInquiry> {
        self.inner.retrieve_inquiry(id).await
    }

    async fn list_events(
        &self,
        names: &[String],
        from: &EventsFrom,
        page_size: u32,
    ) -> Result<EventPage> {
        self.inner.list_events(names, from, page_size).await
    }

    // Search pages are not shared: each delta asks from its own watermark.
    async fn search_updated_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        after: Option<&str>,
        page_size: u32,
    ) -> Result<InquiryPage> {
        self.inner
            .search_updated_since(since, after, page_size)
            .await
    }

    async fn file_size(&self, url: &str) -> Result<u64> {
        self.inner.file_size(url).await
    }

    async fn download(
        &self,
        url: &str,
        offset: u64,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<u64> {
        self.inner.download(url, offset, out).await
    }

    async fn download_range(
        &self,
        url: &str,
        start: u64,
        end: u64,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<u64> {
        self.inner.download_range(url, start, end, out).await
    }
}

#[cfg(test)]
#[path = "shared_listing_tests.rs"]
mod tests;
