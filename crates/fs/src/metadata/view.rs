//! One inquiry as the mount shows it, built from one retrieve.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use personafs_client::{RemoteFile, RetrievedInquiry, Section, files};

/// Statuses after which an inquiry no longer changes by itself.
const FINAL_STATUSES: &[&str] = &["completed", "approved", "declined", "failed", "expired"];

/// A file of the view. `size` is exact (from `byte-size`, else a HEAD).
#[derive(Debug, Clone)]
pub struct FileInfo {
    pub object_id: String,
    pub role: String,
    pub url: String,
    pub size: u64,
    pub mtime: SystemTime,
}

#[derive(Debug)]
pub struct InquiryView {
    pub id: Arc<str>,
    pub created: SystemTime,
    pub status: Option<String>,
    pub redacted: bool,
    /// `inquiry.json`: the body with every access token removed.
    pub json: Arc<Vec<u8>>,
    pub files: BTreeMap<(Section, Arc<str>), FileInfo>,
    /// When the retrieve that gave these URLs was sent.
    pub fetched_at: Instant,
    /// False when a file had to be left out (its size could not be learned).
    pub complete: bool,
}

impl InquiryView {
    /// Build a view. `sizes` resolves files without `byte-size` (previous view, else HEAD).
    pub fn new(
        inquiry: &RetrievedInquiry,
        fetched_at: Instant,
        files: Vec<(RemoteFile, u64)>,
    ) -> InquiryView {
        let redacted = inquiry.redacted_at.is_some();
        let files = if redacted {
            BTreeMap::new()
        } else {
            files
                .into_iter()
                .map(|(f, size)| {
                    (
                        (f.section, Arc::from(f.name.as_str())),
                        FileInfo {
                            object_id: f.object_id,
                            role: f.role,
                            url: f.url,
                            size,
                            mtime: f.mtime,
                        },
                    )
                })
                .collect()
        };
        InquiryView {
            id: Arc::from(inquiry.id.as_str()),
            created: inquiry
                .created_at
                .map(SystemTime::from)
                .unwrap_or(UNIX_EPOCH),
            status: inquiry.status.clone(),
            redacted,
            json: Arc::new(files::inquiry_json(inquiry)),
            files,
            fetched_at,
            complete: true,
        }
    }

    /// A final inquiry's metadata is not retrieved again just because it aged.
    pub fn is_final(&self) -> bool {
        self.redacted
            || self
                .status
                .as_deref()
                .is_some_and(|s| FINAL_STATUSES.contains(&s))
    }

    pub fn section(&self, section: Section) -> impl Iterator<Item = (&Arc<str>, &FileInfo)> {
        self.files
            .range((section, Arc::from(""))..)
            .take_while(move |((s, _), _)| *s == section)
            .map(|((_, name), info)| (name, info))
    }

    pub fn file(&self, section: Section, name: &str) -> Option<&FileInfo> {
        self.files.get(&(section, Arc::from(name)))
    }
}
