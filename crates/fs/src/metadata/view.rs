//! One inquiry as the mount shows it, built from one retrieve.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::store::{StoredFile, StoredInquiry};
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
    /// `redacted-at`, when redacted.
    pub redacted_at: Option<SystemTime>,
    /// `inquiry.json`: the body with every access token removed.
    pub json: Arc<Vec<u8>>,
    /// A hash of `json`, taken at its first open (`json_fingerprint`); reset with `json`.
    pub json_hash: OnceLock<u64>,
    pub files: BTreeMap<(Section, Arc<str>), FileInfo>,
    /// When the retrieve that gave these URLs was sent.
    pub fetched_at: Instant,
    /// False when a file had to be left out (its size could not be learned).
    pub complete: bool,
    /// False for a view loaded from the metadata store: it has no URLs (they are never
    /// stored), so a download retrieves the inquiry first.
    pub has_urls: bool,
    /// `updated-at` of the inquiry as this view saw it.
    pub updated: Option<SystemTime>,
}

impl InquiryView {
    /// A fingerprint of `inquiry.json` (never 0), hashed once per view: every open of the
    /// file compares it with what the kernel holds.
    pub fn json_fingerprint(&self) -> u64 {
        *self.json_hash.get_or_init(|| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            self.json.hash(&mut h);
            h.finish().max(1)
        })
    }

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
            redacted_at: inquiry.redacted_at.map(SystemTime::from),
            json: Arc::new(files::inquiry_json(inquiry)),
            json_hash: OnceLock::new(),
            files,
            fetched_at,
            complete: true,
            has_urls: true,
            updated: inquiry.updated_at.map(SystemTime::from),
        }
    }

    /// A view from the metadata store: names, sizes and times as last seen, no URLs. Files
    /// whose size was never learnt are left out (and the view marked incomplete).
    pub fn from_stored(stored: StoredInquiry, json: Vec<u8>, loaded_at: Instant) -> InquiryView {
        let redacted = stored.redacted_at.is_some();
        let complete = stored.files.iter().all(|f| f.size.is_some());
        let files = stored
            .files
            .into_iter()
            .filter(|_| !redacted)
            .filter_map(|f| {
                let size = f.size?;
                Some((
                    (f.section, Arc::from(f.name.as_str())),
                    FileInfo {
                        object_id: f.object_id,
                        role: f.role,
                        url: String::new(),
                        size,
                        mtime: f.mtime,
                    },
                ))
            })
            .collect();
        InquiryView {
            id: Arc::from(stored.id.as_str()),
            created: stored.created_at.unwrap_or(UNIX_EPOCH),
            status: stored.status,
            redacted,
            redacted_at: stored.redacted_at,
            json: Arc::new(json),
            json_hash: OnceLock::new(),
            files,
            fetched_at: loaded_at,
            complete,
            has_urls: false,
            updated: stored.updated_at,
        }
    }

    /// The token-free part of this view, for the metadata store.
    pub fn to_stored(&self, checked_at: SystemTime) -> StoredInquiry {
        StoredInquiry {
            id: self.id.to_string(),
            status: self.status.clone(),
            created_at: (self.created != UNIX_EPOCH).then_some(self.created),
            updated_at: self.updated,
            redacted_at: self.redacted_at,
            checked_at,
            files: self
                .files
                .iter()
                .map(|((section, name), f)| StoredFile {
                    section: *section,
                    name: name.to_string(),
                    object_id: f.object_id.clone(),
                    role: f.role.clone(),
                    size: Some(f.size),
                    mtime: f.mtime,
                })
                .collect(),
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
