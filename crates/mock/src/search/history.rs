//! What search sees: the organization as it was `search_lag` ago. Each change to an inquiry
//! keeps the version it replaced (with the time it changed), so a change younger than the lag
//! is not yet visible and the version before it is; an inquiry added later than that is not
//! visible at all. Also keeps generated inquiries' exact `updated-at` once computed.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::query::millis;
use crate::data::MockInquiry;

/// Versions kept per inquiry; past it the oldest go (a lag that long is not a test's).
const MAX_VERSIONS: usize = 16;

/// The searchable attributes of one version of an inquiry.
#[derive(Debug, Clone)]
pub struct Attrs {
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub reference_id: Option<String>,
    pub template_id: Option<String>,
}

impl Attrs {
    pub fn of(inquiry: &MockInquiry) -> Attrs {
        let attributes = &inquiry.data["attributes"];
        let text = |v: &serde_json::Value| v.as_str().map(String::from);
        let related = |name: &str| text(&inquiry.data["relationships"][name]["data"]["id"]);
        let created_at = millis(inquiry.created_at);
        Attrs {
            status: text(&attributes["status"]).unwrap_or_default(),
            created_at,
            updated_at: (attributes["updated-at"].as_str())
                .and_then(super::query::parse_time)
                .unwrap_or(created_at),
            reference_id: text(&attributes["reference-id"]),
            template_id: related("inquiry-template").or_else(|| related("template")),
        }
    }
}

/// One version of an inquiry, current from `since` (ms since the epoch) until the next.
#[derive(Clone)]
pub struct Version {
    pub since: i64,
    pub inquiry: Arc<MockInquiry>,
    pub attrs: Attrs,
}

#[derive(Default)]
pub struct SearchIndex {
    /// Inquiry id → its versions, oldest first (only inquiries changed or added at runtime).
    versions: HashMap<String, Vec<Version>>,
    /// Generated inquiry index → its exact `updated-at` (ms), once built.
    updated: Mutex<HashMap<u64, i64>>,
}

impl SearchIndex {
    /// `inquiry` changed at `now` (ms); `previous` is what it was, `None` for a new one.
    pub fn record(
        &mut self,
        previous: Option<&Arc<MockInquiry>>,
        inquiry: &Arc<MockInquiry>,
        now: i64,
    ) {
        let versions = self.versions.entry(inquiry.id.clone()).or_default();
        if versions.is_empty()
            && let Some(previous) = previous
        {
            versions.push(Version {
                since: i64::MIN,
                inquiry: previous.clone(),
                attrs: Attrs::of(previous),
            });
        }
        versions.push(Version {
            since: now,
            inquiry: inquiry.clone(),
            attrs: Attrs::of(inquiry),
        });
        if versions.len() > MAX_VERSIONS {
            versions.remove(0);
        }
    }

    /// Whether `id` has versions (then [`SearchIndex::as_of`] answers for it).
    pub fn tracks(&self, id: &str) -> bool {
        self.versions.contains_key(id)
    }

    /// The version of `id` current at `cutoff`; `None` when it did not exist yet (or is not
    /// tracked).
    pub fn as_of(&self, id: &str, cutoff: i64) -> Option<&Version> {
        let versions = self.versions.get(id)?;
        versions.iter().rev().find(|v| v.since <= cutoff)
    }

    pub fn known_updated(&self, index: u64) -> Option<i64> {
        self.updated.lock().get(&index).copied()
    }

    pub fn remember_updated(&self, index: u64, updated: i64) {
        self.updated.lock().insert(index, updated);
    }
}
