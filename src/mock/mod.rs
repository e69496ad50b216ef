//! The mock Persona server: a faithful local stand-in for Persona's API host and files host.
//!
//! INTERFACE STUB — the mock-server work replaces the bodies; keep these signatures (add more).

pub mod cli;
pub mod content;
pub mod data;
pub mod generate;

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
    /// Requests per minute on the API host; 0 = unlimited.
    pub rate_limit: u32,
}

/// Everything the server is started with.
#[derive(Debug, Clone)]
pub struct MockConfig {
    pub api_key: String,
    pub api_listen: std::net::SocketAddr,
    pub files_listen: std::net::SocketAddr,
    /// Number of generated inquiries (0 = none).
    pub generate: usize,
    pub seed: u64,
    pub fixtures: Option<PathBuf>,
    pub runtime: RuntimeConfig,
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
                ..Default::default()
            },
        }
    }
}

/// Counters, as `GET /_mock/stats` returns them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MockStats {
    pub api_list: u64,
    pub api_retrieve: u64,
    pub file_get: u64,
    pub file_head: u64,
    pub file_bytes: u64,
    pub file_expired: u64,
    pub rate_limited: u64,
    pub files_auth_header: u64,
}

/// A running mock server, with its own tokio runtime on background threads, so that both
/// async and plain (FUSE) tests can use it. Dropping it stops the server.
pub struct MockServer {}

impl MockServer {
    /// Bind both listeners and start serving.
    pub fn start(_config: MockConfig) -> std::io::Result<MockServer> {
        todo!()
    }
    /// `http://127.0.0.1:PORT/api/v1`
    pub fn api_base(&self) -> String {
        todo!()
    }
    /// `http://127.0.0.1:PORT`
    pub fn files_base(&self) -> String {
        todo!()
    }
    pub fn api_key(&self) -> String {
        todo!()
    }
    pub fn stats(&self) -> MockStats {
        todo!()
    }
    pub fn set_runtime(&self, _runtime: RuntimeConfig) {
        todo!()
    }
    pub fn runtime(&self) -> RuntimeConfig {
        todo!()
    }
    /// Ids of all inquiries, newest first (as the list endpoint orders them).
    pub fn inquiry_ids(&self) -> Vec<String> {
        todo!()
    }
    /// Redact an inquiry, as `DELETE /inquiries/{id}` does.
    pub fn redact(&self, _id: &str) -> bool {
        todo!()
    }
}
