//! `--audit-log FILE`: one JSON line per open of a file of the mount, for compliance review
//! ("who opened this person's passport photo, when, with which program"). The file is created
//! 0600 and appended to; SIGHUP makes the mount reopen it, so logrotate can move it away.
//! Lines carry paths, ids and the opener's identity: never a URL, a token or the key.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use personafs_fs::audit::{AuditSink, OpenRecord};

pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
    reopen: AtomicBool,
}

fn open_append(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)?;
    // An existing file keeps its mode on open: make sure nobody else can read the log.
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

impl AuditLog {
    pub fn open(path: &Path) -> anyhow::Result<Arc<AuditLog>> {
        let file = open_append(path)
            .map_err(|e| anyhow::anyhow!("cannot open the audit log {}: {e}", path.display()))?;
        Ok(Arc::new(AuditLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            reopen: AtomicBool::new(false),
        }))
    }

    /// Reopen the file before the next line (after SIGHUP).
    pub fn request_reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }

    /// Reopen on every SIGHUP, for as long as the runtime runs.
    pub fn reopen_on_sighup(self: &Arc<Self>, rt: &tokio::runtime::Handle) -> anyhow::Result<()> {
        let _guard = rt.enter();
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let log = Arc::downgrade(self);
        rt.spawn(async move {
            while hup.recv().await.is_some() {
                match log.upgrade() {
                    Some(log) => log.request_reopen(),
                    None => return,
                }
            }
        });
        Ok(())
    }

    fn write_line(&self, line: &str) {
        let mut file = self.file.lock();
        if self.reopen.swap(false, Ordering::Relaxed) {
            match open_append(&self.path) {
                Ok(f) => *file = f,
                Err(e) => tracing::warn!(
                    "cannot reopen the audit log {}: {e}; writing to the old file",
                    self.path.display()
                ),
            }
        }
        // One write per line: O_APPEND keeps concurrent lines whole.
        if let Err(e) = file.write_all(line.as_bytes()) {
            tracing::warn!("audit log {}: {e}", self.path.display());
        }
    }
}

/// The short name of a process (`/proc/PID/comm`), or "?" once it is gone.
fn process_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The JSON line of one open.
pub fn line(rec: &OpenRecord, time: chrono::DateTime<chrono::Utc>, process: &str) -> String {
    let (result, source, errno) = match rec.outcome {
        Ok(source) => ("ok", Some(source.name()), None),
        Err(e) => ("refused", None, Some(personafs_fs::errno_name(e))),
    };
    let file = rec.file.as_ref();
    let value = serde_json::json!({
        "time": time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "uid": rec.uid,
        "gid": rec.gid,
        "pid": rec.pid,
        "process": process,
        "path": file.map(|f| f.path.as_str()),
        "inquiry_id": file.map(|f| f.inquiry_id.as_str()),
        "object_id": file.and_then(|f| f.object_id.as_deref()),
        "size": file.map(|f| f.size),
        "source": source,
        "result": result,
        "errno": errno,
    });
    let mut s = value.to_string();
    s.push('\n');
    s
}

impl AuditSink for AuditLog {
    fn record(&self, rec: OpenRecord) {
        let line = line(&rec, chrono::Utc::now(), &process_name(rec.pid));
        self.write_line(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use personafs_fs::audit::{OpenedFile, Source};

    fn rec(outcome: Result<Source, i32>) -> OpenRecord {
        OpenRecord {
            uid: 1000,
            gid: 100,
            pid: std::process::id(),
            file: Some(OpenedFile {
                path: "inquiries/inq_1/document/doc_1-front-photo.jpg".into(),
                inquiry_id: "inq_1".into(),
                object_id: Some("doc_1".into()),
                size: 42,
            }),
            outcome,
        }
    }

    #[test]
    fn lines_are_json_with_the_opener_and_the_file() {
        let l = line(&rec(Ok(Source::Cache)), chrono::Utc::now(), "cat");
        assert!(l.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["uid"], 1000);
        assert_eq!(v["process"], "cat");
        assert_eq!(v["inquiry_id"], "inq_1");
        assert_eq!(v["object_id"], "doc_1");
        assert_eq!(v["source"], "cache");
        assert_eq!(v["result"], "ok");
        let refused = line(&rec(Err(libc::EROFS)), chrono::Utc::now(), "vi");
        let v: serde_json::Value = serde_json::from_str(&refused).unwrap();
        assert_eq!(v["result"], "refused");
        assert_eq!(v["errno"], "EROFS");
    }

    #[test]
    fn the_log_is_private_appended_and_reopened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path).unwrap();
        log.record(rec(Ok(Source::Network)));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Rotation: the file is moved away, the next line goes to a new file after SIGHUP.
        let rotated = dir.path().join("audit.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        log.record(rec(Ok(Source::Cache)));
        log.request_reopen();
        log.record(rec(Ok(Source::Cache)));
        let old = std::fs::read_to_string(&rotated).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert_eq!(old.lines().count(), 2);
        assert_eq!(new.lines().count(), 1);
        let first: serde_json::Value = serde_json::from_str(old.lines().next().unwrap()).unwrap();
        assert_eq!(first["source"], "network");
        // The process name of this test binary, read from /proc.
        assert_ne!(first["process"], "?");
    }
}
