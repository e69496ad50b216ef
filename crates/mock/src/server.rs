//! Binding the two listeners and running them on the server's own tokio runtime.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use parking_lot::{Mutex, RwLock};
use serde_json::Value;

use super::data::Dataset;
use super::events::Events;
use super::generate::Generator;
use super::respond::{bad_request, json_response};
use super::state::{RateWindow, State, Stats, Store};
use super::token::Signer;
use super::{MockConfig, RuntimeConfig, api, changes, events, files};
use personafs_client::units::parse_duration;

/// The serving thread and the way to stop it.
pub struct Running {
    pub state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Bind both listeners (errors surface here, synchronously) and serve on a background thread.
pub fn start(config: &MockConfig, generator: Generator, dataset: Dataset) -> io::Result<Running> {
    let api_listener = bind(config.api_listen)?;
    let files_listener = bind(config.files_listen)?;
    let state = Arc::new(State {
        api_key: config.api_key.clone(),
        api_base: format!("http://{}/api/v1", api_listener.local_addr()?),
        files_base: format!("http://{}", files_listener.local_addr()?),
        signer: Signer::random(),
        stats: Stats::default(),
        runtime: RwLock::new(config.runtime.clone()),
        store: RwLock::new(Store::new(generator, dataset)),
        rate: Mutex::new(RateWindow::new()),
        files_down: Default::default(),
        key_revoked: Default::default(),
        url_clock_ahead_ms: Default::default(),
        issued_tokens: Default::default(),
        events: Events::new(config.seed),
        webhook_secrets: RwLock::new(config.webhook_secrets.clone()),
        identity: config.identity(),
        memo: super::memo::ChunkMemo::new(config.files_memo),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("personafs-mock")
        .enable_all()
        .build()?;
    let api_app = api_router(state.clone());
    let files_app = files_router(state.clone());
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
    let (webhook_tx, webhook_rx) = tokio::sync::mpsc::unbounded_channel();
    state.events.set_webhook(Some(webhook_tx));
    let webhook_state = state.clone();
    let thread = std::thread::Builder::new()
        .name("personafs-mock".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listeners = tokio::net::TcpListener::from_std(api_listener)
                    .and_then(|api| Ok((api, tokio::net::TcpListener::from_std(files_listener)?)));
                let (api, files) = match listeners {
                    Ok(pair) => pair,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                tokio::spawn(events::deliver(webhook_state, webhook_rx));
                tokio::select! {
                    r = axum::serve(api, api_app) => log_stop("API", r),
                    r = axum::serve(files, files_app) => log_stop("files", r),
                    _ = stopped => {}
                }
            });
            // Open downloads (even bandwidth-capped ones) are cut rather than awaited.
            runtime.shutdown_timeout(Duration::from_secs(1));
        })?;
    ready_rx
        .recv()
        .map_err(|_| io::Error::other("mock server thread ended before serving"))??;
    Ok(Running {
        state,
        shutdown: Some(shutdown),
        thread: Some(thread),
    })
}

fn log_stop(which: &str, result: io::Result<()>) {
    if let Err(e) = result {
        tracing::error!("mock {which} listener stopped: {e}");
    }
}

fn api_router(state: Arc<State>) -> Router {
    Router::new()
        .route("/api/v1/inquiries", get(api::list))
        .route(
            "/api/v1/inquiries/{id}",
            get(api::retrieve).delete(api::delete),
        )
        .route("/api/v1/documents/{id}", get(api::document))
        .route(
            "/api/v1/verification/selfies/{id}",
            get(api::selfie_verification),
        )
        .route("/api/v1/verifications/{id}", get(api::verification))
        .route("/api/v1/files/{token}/{filename}", get(api::legacy_file))
        .route("/api/v1/inquiries/search", post(crate::search::post_search))
        .route("/api/v1/events", get(events::list))
        .route("/api/v1/events/{id}", get(events::retrieve))
        .fallback(api::fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::gate,
        ))
        // Control endpoints: added after the layer, so no auth, rate limit or faults.
        .route("/_mock/stats", get(stats))
        .route("/_mock/config", post(set_config).get(get_config))
        .route("/_mock/inquiries", post(changes::post_inquiry))
        .route(
            "/_mock/inquiries/{id}/documents",
            post(changes::post_document),
        )
        .route("/_mock/inquiries/{id}/redact", post(changes::post_redact))
        .route(
            "/_mock/inquiries/{id}/status",
            post(crate::status_change::post_status),
        )
        .with_state(state)
}

fn files_router(state: Arc<State>) -> Router {
    Router::new()
        .route("/{filename}", get(files::signed_file))
        .fallback(|| async { super::respond::not_found() })
        .with_state(state)
}

async fn stats(AxState(state): AxState<Arc<State>>) -> Response {
    json_response(StatusCode::OK, &serde_json::json!(state.stats()))
}

async fn get_config(AxState(state): AxState<Arc<State>>) -> Response {
    json_response(StatusCode::OK, &serde_json::json!(state.runtime()))
}

async fn set_config(AxState(state): AxState<Arc<State>>, body: Bytes) -> Response {
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(&format!("body is not JSON: {e}")),
    };
    let mut runtime = state.runtime.write();
    match apply_patch(&runtime, &patch) {
        Ok(new) => {
            *runtime = new;
            json_response(StatusCode::OK, &serde_json::json!(*runtime))
        }
        Err(details) => bad_request(&details),
    }
}

/// `current` with the keys of `patch` changed; `file_url_lifetime` takes a duration string
/// ("2s", "6h", "500ms") or a number of seconds.
pub fn apply_patch(current: &RuntimeConfig, patch: &Value) -> Result<RuntimeConfig, String> {
    let Value::Object(patch) = patch else {
        return Err("expected a JSON object".into());
    };
    let mut merged = serde_json::to_value(current).map_err(|e| e.to_string())?;
    let fields = merged.as_object_mut().expect("RuntimeConfig is an object");
    for (key, value) in patch {
        if key == "events_max_age" {
            let age = match value {
                Value::String(s) => parse_duration(s)?,
                _ => return Err("events_max_age must be a string like \"30d\"".into()),
            };
            fields.insert(
                "events_max_age_ms".into(),
                Value::from(age.as_millis() as u64),
            );
        } else if key == "file_url_lifetime" || key == "search_lag" || key == "rate_window" {
            let lifetime = match value {
                Value::String(s) => parse_duration(s)?,
                Value::Number(n) => n
                    .as_f64()
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or(format!("{key} must be a non-negative number of seconds"))?,
                _ => return Err(format!("{key} must be a string like \"2s\"")),
            };
            fields.insert(
                format!("{key}_ms"),
                Value::from(lifetime.as_millis() as u64),
            );
        } else if fields.contains_key(key) {
            fields.insert(key.clone(), value.clone());
        } else {
            return Err(format!("unknown setting {key:?}"));
        }
    }
    let new: RuntimeConfig = serde_json::from_value(merged).map_err(|e| e.to_string())?;
    for (name, rate) in [
        ("fail_rate", new.fail_rate),
        ("truncate_rate", new.truncate_rate),
        ("reset_rate", new.reset_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!("{name} must be between 0 and 1"));
        }
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_changes_only_given_keys() {
        let current = MockConfig::default().runtime;
        let new = apply_patch(
            &current,
            &serde_json::json!({"file_url_lifetime": "2s", "fail_rate": 0.5}),
        )
        .unwrap();
        assert_eq!(new.file_url_lifetime_ms, 2000);
        assert_eq!(new.fail_rate, 0.5);
        assert_eq!(new.rate_limit, current.rate_limit);
        assert!(apply_patch(&current, &serde_json::json!({"nope": 1})).is_err());
        assert!(apply_patch(&current, &serde_json::json!({"fail_rate": 2})).is_err());
        assert!(apply_patch(&current, &serde_json::json!({"rate_limit": "x"})).is_err());
    }
}
