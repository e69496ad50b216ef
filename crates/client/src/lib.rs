//! personafs-client: the Persona side of personafs. The API client behind the `PersonaApi`
//! trait, its typed model, and the pure mapping from a retrieved inquiry to the files a mount
//! shows. No FUSE, no CLI.

pub mod body;
pub mod client;
pub mod clock;
pub mod download;
pub mod error;
pub mod events;
pub mod files;
pub mod listing;
pub mod model;
pub mod query;
pub mod ratelimit;
pub mod redact;
pub mod redis_link;
pub mod retry;
pub mod search;
pub mod shared_budget;
pub mod shared_listing;
pub mod shared_state;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod units;
pub mod version;
pub mod webhook;

use std::time::SystemTime;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use error::{Error, Result};
pub use events::{Event, EventPage, EventsFrom};

pub use client::{ApiKey, ClientConfig, HttpClient, Identity};
pub use files::{files_of, inquiry_json};
pub use listing::{Listed, list_all, list_pages_from, list_stream, list_stream_from};
pub use model::IncludedObject;
pub use search::{Changes, SearchError, changes_since};

/// Filters of the list endpoint (PERSONA_API.md, "List inquiries").
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ListFilters {
    pub status: Vec<String>,
    pub inquiry_ids: Vec<String>,
    pub account_id: Option<String>,
    pub reference_id: Option<String>,
    pub inquiry_template_id: Option<String>,
    /// A date (`2024-01-31`: from the start of that day, UTC) or an RFC 3339 date-time,
    /// sent in UTC as `filter[created-at-start]` (see `query::created_at_bound`).
    pub created_after: Option<String>,
    /// A date (to the end of that day, UTC) or an RFC 3339 date-time, sent in UTC as
    /// `filter[created-at-end]`.
    pub created_before: Option<String>,
}

/// One inquiry as the list endpoint (or search) shows it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InquirySummary {
    pub id: String,
    pub status: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// `updated-at`: when anything about the inquiry last changed.
    pub updated_at: Option<DateTime<Utc>>,
    pub redacted_at: Option<DateTime<Utc>>,
    /// `reference-id`: the customer's own id for the person, any string they chose.
    #[serde(default)]
    pub reference_id: Option<String>,
    /// The `account` relationship's id.
    #[serde(default)]
    pub account_id: Option<String>,
    /// The `inquiry-template` relationship's id (`template` in older versions).
    #[serde(default)]
    pub template_id: Option<String>,
}

/// One page of the list endpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InquiryPage {
    pub inquiries: Vec<InquirySummary>,
    /// The cursor for the next page (`page[after]`), `None` on the last page.
    pub next_after: Option<String>,
}

/// A retrieved inquiry: the parsed parts personafs uses, and the raw body for `inquiry.json`.
/// Its Debug output leaves out the raw body (signed URLs).
#[derive(Clone)]
pub struct RetrievedInquiry {
    pub id: String,
    pub status: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// `updated-at`: when anything about the inquiry last changed.
    pub updated_at: Option<DateTime<Utc>>,
    pub redacted_at: Option<DateTime<Utc>>,
    /// `included[]`, typed where we know the type, kept as JSON otherwise.
    pub included: Vec<model::IncludedObject>,
    /// The response body exactly as received (contains signed URLs: never show it as is).
    pub raw: serde_json::Value,
    /// When the request that returned these URLs was sent (URL lifetimes count from here).
    pub fetched_at: SystemTime,
}

/// The two directories of an inquiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    Document,
    Selfie,
}

impl Section {
    pub fn dir_name(self) -> &'static str {
        match self {
            Section::Document => "document",
            Section::Selfie => "selfie",
        }
    }
}

/// One file a mount shows, as FILESYSTEM.md names it. Its Debug output redacts the URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub section: Section,
    /// `doc_…`, `ver_…`, `self_…`.
    pub object_id: String,
    /// `front-photo`, `center-photo`, `video`, a Persona filename, `normalized-<filename>`…
    pub role: String,
    /// The final, sanitized, unique-within-its-object file name: `<object-id>-<role>.<ext>`.
    pub name: String,
    /// The signed URL (a secret: never log it unredacted).
    pub url: String,
    /// `byte-size` when the API gave one.
    pub size: Option<u64>,
    /// `processed-at`, else `created-at` of the object, else the inquiry's `created-at`.
    pub mtime: SystemTime,
}

impl std::fmt::Debug for RetrievedInquiry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetrievedInquiry")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("redacted_at", &self.redacted_at)
            .field("included", &self.included.len())
            .field("fetched_at", &self.fetched_at)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RemoteFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteFile")
            .field("section", &self.section)
            .field("object_id", &self.object_id)
            .field("role", &self.role)
            .field("name", &self.name)
            .field("url", &crate::redact::redact_url(&self.url))
            .field("size", &self.size)
            .field("mtime", &self.mtime)
            .finish()
    }
}

/// Everything personafs asks of Persona. Behind a trait so tests can inject faults.
#[async_trait]
pub trait PersonaApi: Send + Sync + 'static {
    /// One page of `GET /inquiries`, newest first.
    async fn list_page(
        &self,
        filters: &ListFilters,
        after: Option<&str>,
        page_size: u32,
    ) -> Result<InquiryPage>;

    /// `GET /inquiries/{id}?include=documents,selfies,verifications`.
    async fn retrieve_inquiry(&self, id: &str) -> Result<RetrievedInquiry>;

    /// One page of `GET /events`, newest first, from `from`; `names` filters by event name
    /// (`filter[name]`; empty: every event). A cursor Persona no longer keeps (older than the
    /// events it retains) is [`Error::CursorGone`].
    async fn list_events(
        &self,
        names: &[String],
        from: &EventsFrom,
        page_size: u32,
    ) -> Result<EventPage>;

    /// One page of `POST /inquiries/search`: the inquiries updated at or after `since`, by
    /// `updated-at` ascending, from cursor `after` (the previous page's `next_after`).
    /// Search lags writes (about a minute at Persona). A key or version that may not search
    /// gets an error with [`Error::is_search_refused`]; [`changes_since`] walks the pages.
    async fn search_updated_since(
        &self,
        since: DateTime<Utc>,
        after: Option<&str>,
        page_size: u32,
    ) -> Result<InquiryPage>;

    /// The size of the file behind a URL (a `HEAD`), for files without `byte-size`.
    async fn file_size(&self, url: &str) -> Result<u64>;

    /// Stream the file behind `url` from byte `offset` into `out`; returns the bytes written.
    /// Resumes with `Range` after dropped connections. A body shorter than announced is an
    /// error. A files-host 401/403/410 comes back as an error with `is_url_expired()`.
    async fn download(
        &self,
        url: &str,
        offset: u64,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<u64>;

    /// Bytes `start..end` of the file behind `url` into `out`, with one bounded `Range`
    /// request (resumed like `download`); fewer only when the file is shorter.
    async fn download_range(
        &self,
        url: &str,
        start: u64,
        end: u64,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<u64>;
}
