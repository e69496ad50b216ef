//! What the running server shares between its handlers and the `MockServer` handle.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use super::data::{Dataset, MockFile, MockInquiry};
use super::token::Signer;
use super::{MockStats, RuntimeConfig};

/// Counters behind `GET /_mock/stats`.
#[derive(Default)]
pub struct Stats {
    pub api_requests: AtomicU64,
    pub api_list: AtomicU64,
    pub api_retrieve: AtomicU64,
    pub api_delete: AtomicU64,
    pub file_get: AtomicU64,
    pub file_head: AtomicU64,
    pub file_bytes: AtomicU64,
    pub file_expired: AtomicU64,
    pub file_forged: AtomicU64,
    pub rate_limited: AtomicU64,
    pub files_auth_header: AtomicU64,
    pub unauthorized: AtomicU64,
    pub injected_failures: AtomicU64,
    pub truncated: AtomicU64,
    pub resets: AtomicU64,
}

pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    pub fn snapshot(&self) -> MockStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MockStats {
            api_requests: get(&self.api_requests),
            api_list: get(&self.api_list),
            api_retrieve: get(&self.api_retrieve),
            api_delete: get(&self.api_delete),
            file_get: get(&self.file_get),
            file_head: get(&self.file_head),
            file_bytes: get(&self.file_bytes),
            file_expired: get(&self.file_expired),
            file_forged: get(&self.file_forged),
            rate_limited: get(&self.rate_limited),
            files_auth_header: get(&self.files_auth_header),
            unauthorized: get(&self.unauthorized),
            injected_failures: get(&self.injected_failures),
            truncated: get(&self.truncated),
            resets: get(&self.resets),
        }
    }
}

/// The dataset, indexed for the endpoints, plus what redaction removed.
pub struct Store {
    /// Newest first; ties keep their dataset order.
    pub inquiries: Vec<MockInquiry>,
    by_id: HashMap<String, usize>,
    /// Included object id → (inquiry index, index in its `included`).
    objects: HashMap<String, (usize, usize)>,
    pub files: HashMap<String, MockFile>,
    /// Keys of files deleted by redaction: their tokens still verify, the bytes are gone.
    pub removed: HashSet<String>,
}

impl Store {
    pub fn new(mut dataset: Dataset) -> Store {
        dataset
            .inquiries
            .sort_by_key(|i| std::cmp::Reverse(i.created_at));
        let mut store = Store {
            inquiries: dataset.inquiries,
            by_id: HashMap::new(),
            objects: HashMap::new(),
            files: dataset.files,
            removed: HashSet::new(),
        };
        for (i, inq) in store.inquiries.iter().enumerate() {
            store.by_id.insert(inq.id.clone(), i);
            for (j, obj) in inq.included.iter().enumerate() {
                if let Some(id) = obj.get("id").and_then(|v| v.as_str()) {
                    store.objects.entry(id.to_string()).or_insert((i, j));
                }
            }
        }
        store
    }

    pub fn position(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub fn inquiry(&self, id: &str) -> Option<&MockInquiry> {
        self.position(id).map(|i| &self.inquiries[i])
    }

    pub fn inquiry_mut(&mut self, id: &str) -> Option<&mut MockInquiry> {
        self.position(id).map(|i| &mut self.inquiries[i])
    }

    /// An included object by id, with the inquiry that holds it.
    pub fn object(&self, id: &str) -> Option<(&MockInquiry, &serde_json::Value)> {
        let &(i, j) = self.objects.get(id)?;
        let inq = &self.inquiries[i];
        Some((inq, &inq.included[j]))
    }

    /// A file that can still be served.
    pub fn file(&self, key: &str) -> Option<&MockFile> {
        if self.removed.contains(key) {
            return None;
        }
        self.files.get(key)
    }
}

/// A fixed 60-second window shared by all API requests (as Persona's per-environment budget).
pub struct RateWindow {
    started: Instant,
    used: u32,
}

/// What the rate limiter said about one request, and what the `RateLimit-*` headers show.
#[derive(Debug, Clone, Copy)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
}

const WINDOW: Duration = Duration::from_secs(60);
/// What the headers report while the limit is off (0): a budget no test will reach.
pub const UNLIMITED_REPORTED: u32 = 1_000_000;

impl RateWindow {
    pub fn new() -> RateWindow {
        RateWindow {
            started: Instant::now(),
            used: 0,
        }
    }

    /// Count one request (when `take`) against `limit` and report the budget.
    pub fn check(&mut self, limit: u32, take: bool) -> RateDecision {
        let now = Instant::now();
        if now.duration_since(self.started) >= WINDOW {
            self.started = now;
            self.used = 0;
        }
        let reset_secs = (WINDOW - now.duration_since(self.started))
            .as_secs_f64()
            .ceil() as u64;
        let effective = if limit == 0 {
            UNLIMITED_REPORTED
        } else {
            limit
        };
        let allowed = limit == 0 || self.used < limit;
        if take && allowed {
            self.used = self.used.saturating_add(1);
        }
        RateDecision {
            allowed,
            limit: effective,
            remaining: effective.saturating_sub(self.used),
            reset_secs,
        }
    }
}

/// Everything the handlers share.
pub struct State {
    pub api_key: String,
    /// `http://127.0.0.1:PORT/api/v1`
    pub api_base: String,
    /// `http://127.0.0.1:PORT`
    pub files_base: String,
    pub signer: Signer,
    pub stats: Stats,
    pub runtime: RwLock<RuntimeConfig>,
    pub store: RwLock<Store>,
    pub rate: Mutex<RateWindow>,
    /// Test switches (in-process only): see `MockServer::set_files_down` and `set_key_revoked`.
    pub files_down: AtomicBool,
    pub key_revoked: AtomicBool,
    /// Every access token minted, so tests can prove none leaks (capped, oldest kept).
    pub issued_tokens: Mutex<Vec<String>>,
}

/// Enough for any test run; past it, tokens are no longer recorded.
pub const MAX_RECORDED_TOKENS: usize = 200_000;

impl State {
    pub fn runtime(&self) -> RuntimeConfig {
        self.runtime.read().clone()
    }

    pub fn record_token(&self, token: &str) {
        let mut tokens = self.issued_tokens.lock();
        if tokens.len() < MAX_RECORDED_TOKENS {
            tokens.push(token.to_string());
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_window_refuses_past_the_budget() {
        let mut w = RateWindow::new();
        assert!(w.check(2, true).allowed);
        let second = w.check(2, true);
        assert!(second.allowed);
        assert_eq!(second.remaining, 0);
        let third = w.check(2, true);
        assert!(!third.allowed);
        assert!(third.reset_secs <= 60 && third.reset_secs >= 1);
        assert!(w.check(0, true).allowed, "0 turns the limit off");
    }
}
