//! The mock Persona server: a faithful local stand-in for Persona's API host and files host.
//!
//! Start one in-process with [`MockServer::start`], or run `personafs mock-server`. What the
//! mock does where Persona is silent is written down in `docs/MOCK.md`.

mod api;
mod changes;
pub mod cli;
pub mod content;
pub mod data;
mod events;
mod files;
pub mod fixtures;
pub mod generate;
pub mod ids;
mod memo;
mod mp4;
mod paging;
mod redaction;
mod respond;
mod search;
mod server;
mod state;
mod status_change;
mod token;
mod urls;
mod version;

use std::path::PathBuf;
use std::time::Duration;

/// What can change while the server runs (`POST /_mock/config`), and the same at start.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RuntimeConfig {
    /// Lifetime of signed file URLs, in milliseconds (`file_url_lifetime` accepts "6h", "2s" or ms).
    pub file_url_lifetime_ms: u64,
    pub api_latency_ms: u64,
    pub files_latency_ms: u64,
    /// Bytes per second per download; 0 = unlimited.
    pub files_bandwidth: u64,
    pub fail_rate: f64,
    pub truncate_rate: f64,
    pub reset_rate: f64,
    /// Requests per window on the API host; 0 = unlimited.
    pub rate_limit: u32,
    /// The rate limit's window in milliseconds (`rate_window` accepts "10s"); 0 = a minute,
    /// as Persona's. A shorter one lets a test run minutes of traffic in seconds; answers
    /// then carry `RateLimit-Policy: <limit>;w=<seconds>`.
    pub rate_window_ms: u64,
    /// Events kept at most (older ones are gone); 0 = no bound.
    pub events_max_count: usize,
    /// Events older than this (ms) are gone; 0 = no bound.
    pub events_max_age_ms: u64,
    /// Where each event is POSTed as a signed webhook; `None` = no delivery.
    pub webhook_url: Option<String>,
    /// A list page asked for with `page[after]=X` links to `page[after]=X` again as its next
    /// page (as a server answering with its spec's examples does): a cursor loop.
    pub repeat_cursor: bool,
    /// How far behind writes `POST /inquiries/search` is, in milliseconds (`search_lag`
    /// accepts "60s" or seconds): it shows the organization as it was that long ago.
    pub search_lag_ms: u64,
    /// `POST /inquiries/search` answers 403, as Persona does for a key without access to it.
    pub refuse_search: bool,
}

/// Events kept by default: the newest 10 000, and none older than 30 days.
pub const DEFAULT_EVENTS_MAX_COUNT: usize = 10_000;
pub const DEFAULT_EVENTS_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);

/// Everything the server is started with.
#[derive(Clone)]
pub struct MockConfig {
    pub api_key: String,
    pub api_listen: std::net::SocketAddr,
    pub files_listen: std::net::SocketAddr,
    /// Number of generated inquiries (0 = none).
    pub generate: usize,
    pub seed: u64,
    pub fixtures: Option<PathBuf>,
    pub runtime: RuntimeConfig,
    /// Webhook signing secrets: one, or two during a rotation (both sign every delivery).
    pub webhook_secrets: Vec<String>,
    /// `Persona-Organization-Id` / `Persona-Environment-Id` on every API answer; `None` =
    /// derived from the seed (set them to run two "organizations" in one test).
    pub organization_id: Option<String>,
    pub environment_id: Option<String>,
    /// Bytes of served files kept in memory (the most recently read; 0 = none), so that
    /// serving a file again costs what sending stored bytes costs.
    pub files_memo: u64,
}

/// What the files host keeps of served files by default: nothing. A mount caches what it
/// read, so its files are rarely sent twice (the benchmark, which sends them many times,
/// turns it on).
pub const DEFAULT_FILES_MEMO: u64 = 0;

impl MockConfig {
    /// The organization and environment ids this mock answers with.
    pub fn identity(&self) -> (String, String) {
        (
            self.organization_id
                .clone()
                .unwrap_or_else(|| format!("org_mock{:08x}", self.seed)),
            self.environment_id
                .clone()
                .unwrap_or_else(|| format!("env_mock{:08x}", self.seed)),
        )
    }
}

impl std::fmt::Debug for MockConfig {
    /// Everything but the API key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockConfig")
            .field("api_key", &"<hidden>")
            .field("api_listen", &self.api_listen)
            .field("files_listen", &self.files_listen)
            .field("generate", &self.generate)
            .field("seed", &self.seed)
            .field("fixtures", &self.fixtures)
            .field("runtime", &self.runtime)
            .field(
                "webhook_secrets",
                &format!("<{} hidden>", self.webhook_secrets.len()),
            )
            .field("organization_id", &self.organization_id)
            .field("environment_id", &self.environment_id)
            .field("files_memo", &self.files_memo)
            .finish()
    }
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            api_key: "persona_sandbox_demo".into(),
            api_listen: "127.0.0.1:0".parse().unwrap(),
            files_listen: "127.0.0.1:0".parse().unwrap(),
            generate: 0,
            seed: 1,
            fixtures: None,
            runtime: RuntimeConfig {
                file_url_lifetime_ms: Duration::from_secs(6 * 3600).as_millis() as u64,
                rate_limit: 300,
                events_max_count: DEFAULT_EVENTS_MAX_COUNT,
                events_max_age_ms: DEFAULT_EVENTS_MAX_AGE.as_millis() as u64,
                ..Default::default()
            },
            webhook_secrets: Vec::new(),
            organization_id: None,
            environment_id: None,
            files_memo: DEFAULT_FILES_MEMO,
        }
    }
}

/// Counters, as `GET /_mock/stats` returns them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct MockStats {
    /// Authenticated API requests inside the rate limit (every endpoint).
    pub api_requests: u64,
    pub api_list: u64,
    /// Retrieves of inquiries, documents and verifications.
    pub api_retrieve: u64,
    pub api_delete: u64,
    /// Requests to the Events API (`/events`, `/events/{id}`), not counted in the two above.
    pub api_events: u64,
    /// Requests to `POST /inquiries/search`.
    pub api_search: u64,
    /// Download requests (files host and legacy keyed endpoint), whatever their answer.
    pub file_get: u64,
    pub file_head: u64,
    /// Body bytes actually sent by downloads.
    pub file_bytes: u64,
    pub file_expired: u64,
    /// Download tokens refused as not ours.
    pub file_forged: u64,
    pub rate_limited: u64,
    /// Files-host requests that carried an `Authorization` header (a key leak).
    pub files_auth_header: u64,
    /// API requests refused with 401.
    pub unauthorized: u64,
    /// 5xx answers injected by `fail_rate`.
    pub injected_failures: u64,
    /// Bodies cut short by `truncate_rate`.
    pub truncated: u64,
    /// Connections dropped by `reset_rate`.
    pub resets: u64,
    /// Events recorded since start, and those since dropped by the retention bound.
    pub events: u64,
    pub events_dropped: u64,
    /// Webhook delivery attempts answered 2xx, and those that failed.
    pub webhooks_delivered: u64,
    pub webhooks_failed: u64,
    /// Authenticated API requests by client: the `X-Mock-Client` header's tag, else
    /// `untagged` (so a test sees whose requests were refused with 429).
    pub clients: std::collections::BTreeMap<String, ClientCounts>,
}

/// One client's API requests, as `MockStats::clients` counts them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ClientCounts {
    /// Requests inside the rate limit.
    pub requests: u64,
    /// Requests refused with 429.
    pub rate_limited: u64,
}

/// A running mock server, with its own tokio runtime on background threads, so that both
/// async and plain (FUSE) tests can use it. Dropping it stops the server.
pub struct MockServer {
    running: server::Running,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("api_base", &self.api_base())
            .field("files_base", &self.files_base())
            .finish_non_exhaustive()
    }
}

impl MockServer {
    /// Bind both listeners and start serving the generated and/or fixture data of `config`.
    pub fn start(config: MockConfig) -> std::io::Result<MockServer> {
        Self::start_with_dataset(config, data::Dataset::default())
    }

    /// As [`MockServer::start`], serving `dataset` as well (for tests that build their own).
    /// The generated inquiries are not built here: each is derived from its index when asked.
    pub fn start_with_dataset(
        config: MockConfig,
        mut dataset: data::Dataset,
    ) -> std::io::Result<MockServer> {
        if let Some(dir) = &config.fixtures {
            merge(&mut dataset, fixtures::load(dir)?);
        }
        let generator = generate::Generator::new(config.generate as u64, config.seed);
        let running = server::start(&config, generator, dataset)?;
        Ok(MockServer { running })
    }

    /// `http://127.0.0.1:PORT/api/v1`
    pub fn api_base(&self) -> String {
        self.running.state.api_base.clone()
    }
    /// `http://127.0.0.1:PORT`
    pub fn files_base(&self) -> String {
        self.running.state.files_base.clone()
    }
    pub fn api_key(&self) -> String {
        self.running.state.api_key.clone()
    }
    pub fn stats(&self) -> MockStats {
        self.running.state.stats()
    }
    pub fn set_runtime(&self, runtime: RuntimeConfig) {
        *self.running.state.runtime.write() = runtime;
    }
    pub fn runtime(&self) -> RuntimeConfig {
        self.running.state.runtime()
    }
    /// While `down`, the files host answers no request: each waits, unanswered, until the
    /// host is back (a network black hole; connections are still accepted).
    pub fn set_files_down(&self, down: bool) {
        self.running
            .state
            .files_down
            .store(down, std::sync::atomic::Ordering::Relaxed);
    }
    /// While revoked, every API request is refused with 401, as for a deleted key.
    pub fn set_key_revoked(&self, revoked: bool) {
        self.running
            .state
            .key_revoked
            .store(revoked, std::sync::atomic::Ordering::Relaxed);
    }
    /// Moves the clock of signed URLs ahead by `by`: the URLs issued so far expire as if `by`
    /// had passed (those issued later live their whole lifetime from then). Only their
    /// lifetimes see it; a test waits out a URL lifetime with it instead of sleeping.
    pub fn advance_url_clock(&self, by: std::time::Duration) {
        self.running
            .state
            .url_clock_ahead_ms
            .fetch_add(by.as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
    }
    /// Every access token the server has put in a URL so far (both URL forms).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.running.state.issued_tokens.lock().clone()
    }
    /// Ids of all inquiries, newest first (as the list endpoint orders them).
    pub fn inquiry_ids(&self) -> Vec<String> {
        let store = self.running.state.store.read();
        (0..store.len()).map(|p| store.id_at(p)).collect()
    }
    /// Number of inquiries served.
    pub fn inquiry_count(&self) -> u64 {
        self.running.state.store.read().len()
    }
    /// Id of the inquiry at `position` in the newest-first order (cheap at any size).
    pub fn inquiry_id_at(&self, position: u64) -> Option<String> {
        let store = self.running.state.store.read();
        (position < store.len()).then(|| store.id_at(position))
    }
    /// Redact an inquiry, as `DELETE /inquiries/{id}` does.
    pub fn redact(&self, id: &str) -> bool {
        changes::redact(&self.running.state, id).is_some()
    }
    /// Add an inquiry newer than all others (as `POST /_mock/inquiries`); returns its id.
    pub fn add_inquiry(&self, status: &str, with_files: bool) -> Option<String> {
        let status = generate::STATUSES.iter().find(|s| **s == status)?;
        let data = changes::add_inquiry(&self.running.state, status, with_files);
        data["id"].as_str().map(String::from)
    }
    /// Add a document with one file to an inquiry (as `POST /_mock/inquiries/{id}/documents`);
    /// returns the document id.
    pub fn add_document(&self, id: &str, filename: &str, size: u64) -> Option<String> {
        let object = changes::add_document(&self.running.state, id, filename, size).ok()?;
        object["id"].as_str().map(String::from)
    }
    /// Move an inquiry to `status` (as `POST /_mock/inquiries/{id}/status`); `false` for an
    /// unknown status or inquiry, or a redacted one.
    pub fn set_status(&self, id: &str, status: &str) -> bool {
        let Some(status) = generate::STATUSES.iter().find(|s| **s == status) else {
            return false;
        };
        status_change::set_status(&self.running.state, id, status).is_ok()
    }
    /// Replace the webhook signing secrets (a rotation: the old and the new one, then the new).
    pub fn set_webhook_secrets(&self, secrets: Vec<String>) {
        *self.running.state.webhook_secrets.write() = secrets;
    }
}

/// Add `extra` to `into`; an inquiry of `extra` replaces one with the same id.
fn merge(into: &mut data::Dataset, extra: data::Dataset) {
    let ids: std::collections::HashSet<&str> =
        extra.inquiries.iter().map(|i| i.id.as_str()).collect();
    into.inquiries.retain(|i| !ids.contains(i.id.as_str()));
    into.inquiries.extend(extra.inquiries);
    into.files.extend(extra.files);
}
