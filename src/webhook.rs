//! The webhook receiver (`--webhook-listen ADDR`, `--webhook-secret-file FILE`): Persona's
//! signed event deliveries, applied through the same path as the events feed
//! (`FsCore::apply_event`).
//!
//! It accepts only `POST /` with `Content-Type: application/json`, a body of at most 1 MiB,
//! and a `Persona-Signature` that matches one of the secrets with a time within 5 minutes.
//! Anything else is refused (401 for a signature, 404/405/413/415 for the rest) before the
//! body is parsed; a body is never logged. It answers 200 at once and applies the change in
//! the background. Refusals are logged at most once a minute.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use parking_lot::Mutex;
use personafs_client::telemetry::Snapshot;
use personafs_client::webhook::{SignatureError, parse_secrets, verify};
use personafs_fs::FsCore;

/// The largest body accepted.
pub const MAX_BODY: usize = 1 << 20;
/// How often a refusal is logged at most.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The secrets file: read at start, read again when it changes (a rotation).
pub struct Secrets {
    path: PathBuf,
    loaded: Mutex<(Option<SystemTime>, Vec<String>)>,
}

/// Read a secrets file, refusing one that group or others may read.
pub fn read_secrets(path: &Path) -> anyhow::Result<(Option<SystemTime>, Vec<String>)> {
    let meta = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot read webhook secret file {}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "permissions {mode:04o} for webhook secret file '{}' are too open; run: chmod 600 {}",
            path.display(),
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read webhook secret file {}: {e}", path.display()))?;
    let secrets = parse_secrets(&text);
    if secrets.is_empty() {
        anyhow::bail!("webhook secret file {} holds no secret", path.display());
    }
    Ok((meta.modified().ok(), secrets))
}

impl Secrets {
    pub fn load(path: &Path) -> anyhow::Result<Secrets> {
        Ok(Secrets {
            path: path.to_path_buf(),
            loaded: Mutex::new(read_secrets(path)?),
        })
    }

    /// The secrets now: the file is read again when its mtime changed; a file that became
    /// unusable keeps the last good secrets (with a warning).
    fn current(&self) -> Vec<String> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let mut loaded = self.loaded.lock();
        if mtime.is_some() && mtime != loaded.0 {
            match read_secrets(&self.path) {
                Ok(fresh) => {
                    tracing::info!("webhook secrets reloaded ({} secrets)", fresh.1.len());
                    *loaded = fresh;
                }
                Err(e) => {
                    tracing::warn!("{e:#}; keeping the webhook secrets read before");
                    loaded.0 = mtime;
                }
            }
        }
        loaded.1.clone()
    }
}

/// What the receiver did, counted for `personafs status` and `/metrics`.
#[derive(Debug, Default)]
pub struct WebhookCounts {
    /// Webhooks verified and accepted.
    pub accepted: AtomicU64,
    /// Webhooks refused (bad or missing signature, stale time, bad request).
    pub refused: AtomicU64,
}

impl WebhookCounts {
    /// Put these counts into a snapshot of the mount's state.
    pub fn fill(&self, s: &mut Snapshot) {
        s.webhooks_accepted = self.accepted.load(Ordering::Relaxed);
        s.webhooks_refused = self.refused.load(Ordering::Relaxed);
    }
}

struct Receiver {
    core: Arc<FsCore>,
    secrets: Secrets,
    counts: Arc<WebhookCounts>,
    last_warn: Mutex<Option<Instant>>,
}

impl Receiver {
    fn refuse(&self, status: StatusCode, why: &str) -> StatusCode {
        self.counts.refused.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last_warn.lock();
        if last.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                status = status.as_u16(),
                "webhook refused: {why} (further refusals are not logged for a minute)"
            );
        }
        status
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return r.refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not application/json");
    }
    let signature = headers
        .get("Persona-Signature")
        .map(|v| v.to_str().unwrap_or("?"));
    if let Err(e) = verify(signature, &body, &r.secrets.current(), now_unix()) {
        let why = match e {
            SignatureError::Missing => "no Persona-Signature",
            SignatureError::Malformed => "malformed Persona-Signature",
            SignatureError::Stale => "signature time more than 5 minutes off",
            SignatureError::Mismatch => "signature does not match a secret",
        };
        return r.refuse(StatusCode::UNAUTHORIZED, why);
    }
    // Verified: only now is the body read.
    let event = match personafs_client::events::parse_webhook_event(&body) {
        Ok(event) => event,
        Err(_) => return r.refuse(StatusCode::BAD_REQUEST, "the body is not an event"),
    };
    r.counts.accepted.fetch_add(1, Ordering::Relaxed);
    let core = r.core.clone();
    tokio::spawn(async move {
        core.apply_event(&event).await;
    });
    StatusCode::OK
}

/// Start the receiver on `addr` for as long as the runtime runs.
pub fn serve(
    rt: &tokio::runtime::Handle,
    addr: std::net::SocketAddr,
    secrets: Secrets,
    core: Arc<FsCore>,
    counts: Arc<WebhookCounts>,
) -> anyhow::Result<()> {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .map_err(|e| anyhow::anyhow!("cannot receive webhooks on {addr}: {e}"))?;
    let receiver = Arc::new(Receiver {
        core,
        secrets,
        counts,
        last_warn: Mutex::new(None),
    });
    let app = axum::Router::new()
        .route("/", axum::routing::post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(receiver);
    tracing::info!("receiving webhooks on http://{addr}/");
    rt.spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("webhook receiver stopped: {e}");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secrets_file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets");
        std::fs::write(&path, "whsec_a\nwhsec_b\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_secrets(&path).unwrap_err().to_string();
        assert!(
            err.contains("too open") && err.contains("chmod 600"),
            "{err}"
        );
        assert!(!err.contains("whsec_"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secrets(&path).unwrap().1, ["whsec_a", "whsec_b"]);
        std::fs::write(&path, "# none\n").unwrap();
        assert!(read_secrets(&path).is_err(), "an empty file is refused");
    }
}
