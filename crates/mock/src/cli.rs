//! `personafs mock-server`: the mock as a process, for curl, demos and benchmarks.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use super::data::Dataset;
use super::{MockConfig, MockServer, RuntimeConfig};
use personafs_client::units::parse_duration;
use personafs_client::units::parse_size;

/// Arguments of `personafs mock-server`. `Debug` (via the config) hides the API key.
#[derive(Clone, clap::Args)]
pub struct MockServerArgs {
    /// Address of the API host listener.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub api_listen: SocketAddr,
    /// Address of the files host listener.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub files_listen: SocketAddr,
    /// The API key clients must send (a test key for a local mock, so a flag is fine).
    #[arg(long, default_value = "persona_sandbox_demo")]
    pub api_key: String,
    /// Number of synthetic inquiries to serve.
    #[arg(long, default_value_t = 0)]
    pub generate: usize,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Serve DIR/inquiries/<id>.json with bytes from DIR/files/<filename>.
    #[arg(long, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
    /// Lifetime of signed file URLs, e.g. 6h, 10m, 1s.
    #[arg(long, default_value = "6h", value_parser = parse_duration)]
    pub file_url_lifetime: std::time::Duration,
    /// API requests per window (0 = unlimited).
    #[arg(long, default_value_t = 300)]
    pub rate_limit: u32,
    /// The rate limit's window, e.g. 10s (Persona's is a minute; a shorter one runs a test's
    /// minutes in seconds and adds `RateLimit-Policy: <limit>;w=<seconds>` to answers).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub rate_window: std::time::Duration,
    #[arg(long, default_value_t = 0)]
    pub api_latency_ms: u64,
    #[arg(long, default_value_t = 0)]
    pub files_latency_ms: u64,
    /// Bytes per second per download (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    pub files_bandwidth: u64,
    /// Fraction of API and file requests answered 500/502/503.
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    pub fail_rate: f64,
    /// Fraction of file bodies cut short of their Content-Length.
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    pub truncate_rate: f64,
    /// Fraction of downloads whose connection is dropped mid-body.
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    pub reset_rate: f64,
    /// Add an inquiry, newer than all others, whose one document is a PDF of this size
    /// (e.g. 200MiB; bytes are computed when read, so size costs no memory beyond
    /// --files-memo). Repeatable.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub large_file: Vec<u64>,
    /// POST every event to this URL as a signed webhook (`Persona-Signature`).
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
    /// File with the webhook signing secret (one per line; two during a rotation, both sign).
    #[arg(long, value_name = "FILE", requires = "webhook_url")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Events kept at most (older ones are gone; 0 = no bound).
    #[arg(long, default_value_t = crate::DEFAULT_EVENTS_MAX_COUNT)]
    pub events_max_count: usize,
    /// Events older than this are gone, e.g. 30d, 1h (0s = no bound).
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    pub events_max_age: std::time::Duration,
    /// Bytes of served files kept in memory, e.g. 1GiB; the most recently read are kept
    /// (0 = none, the default), so serving them again costs no computing, as a real files
    /// host sends stored bytes.
    #[arg(long, value_name = "SIZE", default_value_t = crate::DEFAULT_FILES_MEMO, value_parser = parse_size)]
    pub files_memo: u64,
    /// Answer a list page asked for with `page[after]=X` with a next link to `page[after]=X`
    /// again: a cursor loop, as some servers built from Persona's examples have.
    #[arg(long)]
    pub repeat_cursor: bool,
    /// How far `POST /inquiries/search` lags writes, e.g. 60s (it shows the organization
    /// as it was that long ago; Persona's is about a minute).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub search_lag: std::time::Duration,
    /// Answer `POST /inquiries/search` with 403, as for a key without access to search.
    #[arg(long)]
    pub refuse_search: bool,
}

fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{text:?} is not a fraction between 0 and 1")),
    }
}

impl std::fmt::Debug for MockServerArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MockServerArgs")
            .field(&self.config())
            .finish()
    }
}

impl MockServerArgs {
    pub fn config(&self) -> MockConfig {
        MockConfig {
            api_key: self.api_key.clone(),
            api_listen: self.api_listen,
            files_listen: self.files_listen,
            generate: self.generate,
            seed: self.seed,
            fixtures: self.fixtures.clone(),
            runtime: RuntimeConfig {
                file_url_lifetime_ms: self.file_url_lifetime.as_millis() as u64,
                api_latency_ms: self.api_latency_ms,
                files_latency_ms: self.files_latency_ms,
                files_bandwidth: self.files_bandwidth,
                fail_rate: self.fail_rate,
                truncate_rate: self.truncate_rate,
                reset_rate: self.reset_rate,
                rate_limit: self.rate_limit,
                rate_window_ms: match self.rate_window.as_millis() as u64 {
                    60_000 => 0,
                    ms => ms.max(1),
                },
                events_max_count: self.events_max_count,
                events_max_age_ms: self.events_max_age.as_millis() as u64,
                webhook_url: self.webhook_url.clone(),
                repeat_cursor: self.repeat_cursor,
                search_lag_ms: self.search_lag.as_millis() as u64,
                refuse_search: self.refuse_search,
            },
            webhook_secrets: Vec::new(),
            organization_id: None,
            environment_id: None,
            files_memo: self.files_memo,
        }
    }

    /// The webhook secrets of `--webhook-secret-file`: one or two non-empty lines.
    fn webhook_secrets(&self) -> anyhow::Result<Vec<String>> {
        let Some(path) = &self.webhook_secret_file else {
            return Ok(Vec::new());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the webhook secret file {}", path.display()))?;
        let secrets: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        if secrets.is_empty() || secrets.len() > 2 {
            anyhow::bail!(
                "the webhook secret file {} must hold one secret, or two during a rotation \
                 (one per line); it holds {}",
                path.display(),
                secrets.len()
            );
        }
        Ok(secrets)
    }

    /// The config to start with and the dataset to serve besides the generated inquiries
    /// (which the server derives when asked): the fixtures, then the `--large-file` inquiries
    /// (newest, in flag order), with their ids.
    pub fn dataset(&self) -> anyhow::Result<(MockConfig, Dataset, Vec<String>)> {
        let mut config = self.config();
        config.webhook_secrets = self.webhook_secrets()?;
        if self.large_file.is_empty() {
            return Ok((config, Dataset::default(), Vec::new()));
        }
        let mut dataset = Dataset::default();
        if let Some(dir) = &config.fixtures {
            dataset = super::fixtures::load(dir)
                .with_context(|| format!("loading fixtures from {}", dir.display()))?;
        }
        // Newer than the newest generated inquiry too (index 0), which is not in `dataset`.
        let newest = (config.generate > 0).then(|| {
            super::generate::Generator::new(config.generate as u64, config.seed).created_at(0)
        });
        let ids = (self.large_file.iter().enumerate())
            .map(|(i, &size)| {
                super::generate::add_large_document_after(
                    &mut dataset,
                    size,
                    config.seed + i as u64,
                    newest,
                )
            })
            .collect();
        let config = MockConfig {
            fixtures: None,
            ..config
        };
        Ok((config, dataset, ids))
    }
}

/// Run the mock server until SIGINT or SIGTERM; prints `api=…`, `files=…` and one
/// `large=<inquiry id> <size>` per `--large-file` on stdout first.
pub fn run(args: MockServerArgs) -> anyhow::Result<()> {
    let (config, dataset, large) = args.dataset()?;
    let server =
        MockServer::start_with_dataset(config, dataset).context("starting the mock server")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "api={}", server.api_base())?;
    writeln!(out, "files={}", server.files_base())?;
    for (id, size) in large.iter().zip(&args.large_file) {
        writeln!(out, "large={id} {size}")?;
    }
    out.flush()?;
    drop(out);
    let waiter = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    waiter.block_on(until_signal())?;
    drop(server);
    Ok(())
}

async fn until_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: MockServerArgs,
    }

    #[test]
    fn flags_become_the_config() {
        let w = Wrapper::parse_from([
            "x",
            "--file-url-lifetime",
            "1s",
            "--rate-limit",
            "5",
            "--fail-rate",
            "0.25",
            "--api-listen",
            "127.0.0.1:0",
            "--search-lag",
            "60s",
        ]);
        let config = w.args.config();
        assert_eq!(config.runtime.file_url_lifetime_ms, 1000);
        assert_eq!(config.runtime.search_lag_ms, 60_000);
        assert_eq!(config.runtime.rate_limit, 5);
        assert_eq!(config.runtime.fail_rate, 0.25);
        assert_eq!(config.api_key, "persona_sandbox_demo");
        let defaults = Wrapper::parse_from(["x"]).args.config();
        assert_eq!(defaults.runtime, MockConfig::default().runtime);
        assert!(Wrapper::try_parse_from(["x", "--fail-rate", "2"]).is_err());
        assert!(!format!("{config:?}").contains("persona_sandbox_demo"));
        assert!(!format!("{:?}", w.args).contains("persona_sandbox_demo"));
    }

    #[test]
    fn webhook_flags_read_one_or_two_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        let args = |lines: &str| {
            std::fs::write(&file, lines).unwrap();
            Wrapper::parse_from([
                "x",
                "--webhook-url",
                "http://127.0.0.1:9/hook",
                "--webhook-secret-file",
                file.to_str().unwrap(),
                "--events-max-age",
                "1h",
            ])
            .args
        };
        let (config, _, _) = args("wbhsec_old\n\nwbhsec_new\n").dataset().unwrap();
        assert_eq!(config.webhook_secrets, ["wbhsec_old", "wbhsec_new"]);
        assert_eq!(
            config.runtime.webhook_url.as_deref(),
            Some("http://127.0.0.1:9/hook")
        );
        assert_eq!(config.runtime.events_max_age_ms, 3_600_000);
        assert!(
            !format!("{config:?}").contains("wbhsec"),
            "secrets stay hidden"
        );
        assert!(args("").dataset().is_err());
        assert!(args("a\nb\nc\n").dataset().is_err());
        let without_url = Wrapper::try_parse_from(["x", "--webhook-secret-file", "f"]);
        assert!(without_url.is_err());
    }

    #[test]
    fn large_files_are_the_newest_inquiries() {
        let w = Wrapper::parse_from([
            "x",
            "--generate",
            "3",
            "--large-file",
            "200MiB",
            "--large-file",
            "1000",
        ]);
        let (config, dataset, ids) = w.args.dataset().unwrap();
        assert_eq!(
            config.generate, 3,
            "generated inquiries are derived by the server"
        );
        assert_eq!(dataset.inquiries.len(), 2);
        assert_eq!(ids.len(), 2);
        let server = MockServer::start_with_dataset(config, dataset).unwrap();
        assert_eq!(server.inquiry_ids().len(), 5);
        // Newest first: the last large file added comes first.
        assert_eq!(server.inquiry_ids()[..2], [ids[1].clone(), ids[0].clone()]);
        let sizes: Vec<u64> = ids
            .iter()
            .map(|id| {
                let store = server.running.state.store.read();
                let inquiry = store.inquiry(id).unwrap();
                let files = &inquiry.included[0]["attributes"]["files"];
                files[0]["byte-size"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(sizes, [200 << 20, 1000]);
        let none = Wrapper::parse_from(["x", "--generate", "3"])
            .args
            .dataset()
            .unwrap();
        assert_eq!((none.0.generate, none.1.inquiries.len()), (3, 0));
    }
}
