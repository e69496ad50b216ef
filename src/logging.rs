//! Logging: our own crate at the configured level, dependencies at `warn` whatever it is
//! (fuser at `error`: it warns about a second unmount after an external one),
//! because HTTP libraries log URLs (signed URLs carry access tokens) at debug and trace.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use tracing_subscriber::EnvFilter;

use crate::config::MountConfig;

/// Where a background mount logs when no `--log-file` is given.
pub fn default_log_file(cfg: &MountConfig) -> PathBuf {
    cfg.cache_dir.join("personafs.log")
}

/// Install the subscriber. A background process has no terminal, so it logs to a file.
pub fn init(cfg: &MountConfig, in_background: bool) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(format!("warn,fuser=error,personafs={}", cfg.log_level))?;
    let path = match (&cfg.log_file, in_background) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => Some(default_log_file(cfg)),
        (None, false) => None,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match path {
        Some(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .try_init()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        None => builder
            .with_writer(std::io::stderr)
            .try_init()
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    }
    Ok(())
}
