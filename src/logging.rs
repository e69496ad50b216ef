//! Logging: our own crate at the configured level, dependencies at `warn` whatever it is
//! (fuser at `error`: it warns about a second unmount after an external one),
//! because HTTP libraries log URLs (signed URLs carry access tokens) at debug and trace.
//!
//! Destination: `--log-file` if given; else the journal when systemd connected our stderr
//! to it (`JOURNAL_STREAM`); else stderr in the foreground and `<cache dir>/personafs.log`
//! in the background.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::MountConfig;

/// Where a background mount logs when no `--log-file` is given.
pub fn default_log_file(cfg: &MountConfig) -> PathBuf {
    cfg.cache_dir.join("personafs.log")
}

/// Whether `JOURNAL_STREAM` (`DEVICE:INODE`) names our stderr: systemd sets it when it
/// connects stderr to the journal, and it is inherited by children whose stderr is not.
pub fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    let Some((dev, ino)) = journal_stream.and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(stat) = nix::sys::stat::fstat(std::io::stderr()) else {
        return false;
    };
    dev.parse::<u64>().ok() == Some(stat.st_dev) && ino.parse::<u64>().ok() == Some(stat.st_ino)
}

/// Install the subscriber. A background process has no terminal, so it logs to a file.
pub fn init(cfg: &MountConfig, in_background: bool) -> anyhow::Result<()> {
    let filter = || EnvFilter::try_new(format!("warn,fuser=error,personafs={}", cfg.log_level));
    let journal = std::env::var("JOURNAL_STREAM").ok();
    if cfg.log_file.is_none() && stderr_is_journal(journal.as_deref()) {
        // The journal may be unreachable (a container without journald): then stderr,
        // which systemd also sends there.
        if let Ok(layer) = tracing_journald::layer() {
            return tracing_subscriber::registry()
                .with(filter()?)
                .with(layer.with_syslog_identifier("personafs".into()))
                .try_init()
                .map_err(|e| anyhow::anyhow!("{e}"));
        }
    }
    let path = match (&cfg.log_file, in_background) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => Some(default_log_file(cfg)),
        (None, false) => None,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter()?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_our_stderr() {
        assert!(!stderr_is_journal(None));
        assert!(!stderr_is_journal(Some("garbage")));
        let stat = nix::sys::stat::fstat(std::io::stderr()).unwrap();
        let ours = format!("{}:{}", stat.st_dev, stat.st_ino);
        assert!(stderr_is_journal(Some(&ours)));
        let other = format!("{}:{}", stat.st_dev, stat.st_ino.wrapping_add(1));
        assert!(!stderr_is_journal(Some(&other)));
    }
}
