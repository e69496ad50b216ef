//! `personafs status`: a running mount answers on a local socket, private to the user who
//! mounted it (directory 0700, socket 0600, and the peer's uid is checked), with a
//! [`Snapshot`] of its counters as one JSON line.
//!
//! Sockets live in `/run/personafs` for root, else `$XDG_RUNTIME_DIR/personafs` (or
//! `/tmp/personafs-<uid>`), one per mount, named after a hash of the mountpoint.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use personafs_client::telemetry::{ListingProgress, Snapshot};

/// Builds a snapshot on request.
pub type SnapshotFn = Arc<dyn Fn() -> Snapshot + Send + Sync>;

const REQUEST: &str = "status\n";

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// The directory holding this user's status sockets.
pub fn socket_dir() -> PathBuf {
    let uid = euid();
    if uid == 0 {
        return PathBuf::from("/run/personafs");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("personafs"),
        _ => PathBuf::from(format!("/tmp/personafs-{uid}")),
    }
}

/// FNV-1a of the mountpoint's path: short, stable across versions, fits `sun_path`.
fn path_hash(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.as_os_str().as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The socket of the mount at `mountpoint` (an absolute, canonical path).
pub fn socket_path(mountpoint: &Path) -> PathBuf {
    socket_dir().join(format!("{}.sock", path_hash(mountpoint)))
}

/// A private directory of ours: created 0700, refused if someone else owns it or may write.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != euid() || meta.mode() & 0o077 != 0 {
        anyhow::bail!(
            "{} must be a directory of yours that nobody else can open (mode 0700)",
            dir.display()
        );
    }
    Ok(())
}

/// Serves status requests for one mount until the runtime stops; the socket file is removed
/// when the returned guard drops.
pub struct StatusServer {
    path: PathBuf,
}

impl Drop for StatusServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl StatusServer {
    pub fn start(
        rt: &tokio::runtime::Handle,
        mountpoint: &Path,
        snapshot: SnapshotFn,
    ) -> anyhow::Result<StatusServer> {
        let path = socket_path(mountpoint);
        private_dir(path.parent().expect("socket has a directory"))?;
        // A socket left by a mount that was killed: nobody answers on it any more.
        if path.exists() && UnixStream::connect(&path).is_err() {
            std::fs::remove_file(&path)?;
        }
        let _guard = rt.enter();
        let listener = tokio::net::UnixListener::bind(&path).map_err(|e| {
            anyhow::anyhow!("cannot listen on the status socket {}: {e}", path.display())
        })?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let me = euid();
        rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // The socket is 0600 already; the peer's uid is checked all the same.
                match stream.peer_cred() {
                    Ok(c) if c.uid() == me || c.uid() == 0 => {}
                    _ => continue,
                }
                let snapshot = snapshot.clone();
                tokio::spawn(async move {
                    let _ = answer(stream, snapshot).await;
                });
            }
        });
        Ok(StatusServer { path })
    }
}

async fn answer(stream: tokio::net::UnixStream, snapshot: SnapshotFn) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut read = tokio::io::BufReader::new(read);
    tokio::time::timeout(Duration::from_secs(5), read.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    if line != REQUEST {
        return Ok(());
    }
    let mut body = serde_json::to_vec(&snapshot()).map_err(std::io::Error::other)?;
    body.push(b'\n');
    write.write_all(&body).await
}

/// Ask the mount listening on `socket` for its snapshot.
pub fn query(socket: &Path) -> anyhow::Result<Snapshot> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(REQUEST.as_bytes())?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(serde_json::from_str(&line)?)
}

/// Snapshots of every live mount of this user, by socket; stale sockets are skipped.
pub fn query_all() -> Vec<Snapshot> {
    let Ok(entries) = std::fs::read_dir(socket_dir()) else {
        return Vec::new();
    };
    let mut all: Vec<Snapshot> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "sock"))
        .filter_map(|e| query(&e.path()).ok())
        .collect();
    all.sort_by(|a, b| a.mountpoint.cmp(&b.mountpoint));
    all
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// How long the rest of a listing takes: a page of 100 per request, at the budget's pace or
/// at the pace seen so far, whichever is slower; the last whole listing says how many are
/// coming.
fn time_left(l: &ListingProgress, rate_per_minute: u32) -> String {
    let Some(expected) = l.expected_inquiries else {
        let pace = match rate_per_minute {
            0 => String::new(),
            r => format!(
                "; at {r} requests/min, {} inquiries a minute",
                u64::from(r) * 100
            ),
        };
        return format!("time left unknown (no earlier listing to compare with){pace}");
    };
    let pages_left = expected.saturating_sub(l.inquiries).div_ceil(100);
    let at_budget = match rate_per_minute {
        0 => 0,
        r => pages_left * 60 / u64::from(r),
    };
    let at_pace = match l.pages {
        0 => 0,
        p => pages_left * l.elapsed_secs / p,
    };
    let budget = match rate_per_minute {
        0 => "no request limit".to_string(),
        r => format!("{r} requests/min"),
    };
    format!(
        "about {} left for ~{expected} ({budget})",
        duration(at_budget.max(at_pace))
    )
}

fn pairs(map: &std::collections::BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The request budget: the share (or absolute limit) and reserve, then where this window
/// stands and how long requests waited for it.
fn budget_lines(s: &Snapshot) -> String {
    let Some(b) = &s.budget else {
        return String::new();
    };
    let window = match b.window_secs {
        60 => "a minute".to_string(),
        w => format!("per {}", duration(w)),
    };
    let share = match (b.share_percent, b.cap) {
        (Some(p), Some(cap)) => format!(
            "{p} % of Persona's {} {window}: {cap} calls",
            b.server_limit
        ),
        (Some(p), None) => format!("{p} % of Persona's {} {window}", b.server_limit),
        (None, Some(cap)) => format!("{cap} calls a minute (--api-rate-limit)"),
        (None, None) => "no client-side limit".to_string(),
    };
    let reserve = (b.reserve_percent as u64 * b.server_limit).div_ceil(100);
    let mut out = format!(
        "  budget:      {share}; reserve {} % (nothing sent below {reserve} left)\n",
        b.reserve_percent
    );
    let all = match b.shared_calls_in_window {
        Some(n) => format!(" (all mounts {n})"),
        None => String::new(),
    };
    let remaining = match b.last_remaining {
        Some(n) => n.to_string(),
        None => "none yet".to_string(),
    };
    out += &format!(
        "  window:      {} calls in the last {}{all}; last RateLimit-Remaining {remaining}; waited {} for the budget\n",
        b.calls_in_window,
        duration(b.window_secs),
        duration(s.budget_waited_ms / 1000)
    );
    if b.held_secs > 0 {
        out += &format!(
            "               stopped at the reserve: {} to the window's reset\n",
            duration(b.held_secs)
        );
    }
    out
}

/// The human-readable form of one snapshot.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let state = if s.online { "online" } else { "OFFLINE" };
    out += &format!(
        "{}  (pid {}, up {}, {state})\n",
        s.mountpoint,
        s.pid,
        duration(s.uptime_secs)
    );
    out += &format!("  API calls:   {}\n", pairs(&s.api_calls));
    out += &budget_lines(s);
    out += &format!(
        "  rate:        429s seen {}; retries {}; URL refreshes {}\n",
        s.rate_limited, s.retries, s.url_refreshes
    );
    out += &format!(
        "  downloads:   {} active, {} done, {} failed; {} downloaded\n",
        s.downloads_active,
        s.downloads_done,
        s.downloads_failed,
        bytes(s.bytes_downloaded)
    );
    out += &format!(
        "  cache:       {} hits, {} misses; {} of {} in {} files\n",
        s.cache_hits,
        s.cache_misses,
        bytes(s.cache_bytes),
        bytes(s.cache_max_bytes),
        s.cache_files
    );
    out += &format!("  errors:      {}\n", pairs(&s.errors));
    out += &format!(
        "  metadata:    {} inquiries, {} inodes, {} open files\n",
        s.metadata_entries, s.inodes, s.open_handles
    );
    if let Some(l) = &s.listing {
        out += &format!(
            "  listing:     in progress for {}: {} pages, {} inquiries so far; {}\n",
            duration(l.elapsed_secs),
            l.pages,
            l.inquiries,
            time_left(l, s.rate_limit_per_minute)
        );
    }
    if let Some(cursor) = &s.listing_cut_at {
        out += &format!(
            "  listing:     cut short: the next-page cursor {cursor} came back again (what was listed shows)\n"
        );
    }
    out += &delta_lines(s);
    // Only a mount that watches events or receives webhooks has anything to say here.
    if s.events_applied + s.webhooks_accepted + s.webhooks_refused > 0 {
        out += &format!(
            "  changes:     {} applied; webhooks {} accepted, {} refused\n",
            s.events_applied, s.webhooks_accepted, s.webhooks_refused
        );
    }
    out
}

/// Deltas: when the last one was taken, how old the watermark is, what they applied, and
/// the whole listings taken and why.
fn delta_lines(s: &Snapshot) -> String {
    let Some(d) = &s.deltas else {
        return String::new();
    };
    let now = s.started_unix + s.uptime_secs;
    let ago = |t: Option<u64>| match t {
        Some(t) => format!("{} ago", duration(now.saturating_sub(t))),
        None => "never".to_string(),
    };
    let mode = if d.search_refused {
        " (search refused: listing every --metadata-ttl instead)"
    } else {
        ""
    };
    let full: std::collections::BTreeMap<String, u64> = (d.full_listings.iter())
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    let last_full = match (&d.last_full_reason, d.last_full_unix) {
        (Some(why), t) => format!("; last {} ({why})", ago(t)),
        _ => String::new(),
    };
    format!(
        "  deltas:      {} taken, last {}; watermark {}; {} changes applied in {} search pages{mode}\n  \
         whole lists: {}{last_full}\n",
        d.deltas,
        ago(d.last_delta_unix),
        ago(d.watermark_unix),
        d.changes_applied,
        d.search_pages,
        pairs(&full),
    )
}

/// `personafs status [MOUNTPOINT] [--json]`.
pub fn run(mountpoint: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let snapshots = match mountpoint {
        Some(mp) => {
            let mp =
                std::fs::canonicalize(mp).map_err(|e| anyhow::anyhow!("{}: {e}", mp.display()))?;
            let socket = socket_path(&mp);
            let s = query(&socket).map_err(|e| {
                anyhow::anyhow!(
                    "no personafs mount of yours answers at {} ({e})",
                    mp.display()
                )
            })?;
            vec![s]
        }
        None => query_all(),
    };
    if json {
        let text = match mountpoint {
            Some(_) => serde_json::to_string_pretty(&snapshots[0])?,
            None => serde_json::to_string_pretty(&snapshots)?,
        };
        println!("{text}");
    } else if snapshots.is_empty() {
        println!("no personafs mounts of yours are running");
    } else {
        for s in &snapshots {
            print!("{}", render(s));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use personafs_client::ratelimit::BudgetStatus;

    #[test]
    fn socket_names_are_short_and_distinct() {
        let a = socket_path(Path::new("/mnt/persona"));
        let b = socket_path(Path::new("/mnt/persona2"));
        assert_ne!(a, b);
        assert!(a.file_name().unwrap().len() < 30);
        assert_eq!(a, socket_path(Path::new("/mnt/persona")));
    }

    #[test]
    fn deltas_say_when_what_and_why() {
        let mut s = Snapshot {
            started_unix: 1_000_000,
            uptime_secs: 600,
            deltas: Some(personafs_client::telemetry::DeltaSnapshot {
                deltas: 12,
                search_pages: 14,
                changes_applied: 530,
                full_listings: [("first".to_string(), 1), ("untrusted".to_string(), 0)].into(),
                last_delta_unix: Some(1_000_590),
                last_full_unix: Some(1_000_000),
                last_full_reason: Some("first".into()),
                watermark_unix: Some(1_000_480),
                search_refused: false,
            }),
            ..Snapshot::default()
        };
        let text = render(&s);
        assert!(
            text.contains("deltas:      12 taken, last 10s ago; watermark 2m 0s ago; 530 changes applied in 14 search pages\n"),
            "{text}"
        );
        assert!(
            text.contains("whole lists: first 1; last 10m 0s ago (first)"),
            "{text}"
        );
        s.deltas.as_mut().unwrap().search_refused = true;
        assert!(render(&s).contains("search refused"));
        s.deltas = None;
        assert!(!render(&s).contains("deltas:"));
    }

    #[test]
    fn render_names_every_figure() {
        let mut s = Snapshot {
            mountpoint: "/mnt/p".into(),
            pid: 7,
            uptime_secs: 3725,
            online: true,
            rate_limit_per_minute: 150,
            budget: Some(BudgetStatus {
                share_percent: Some(50),
                reserve_percent: 30,
                server_limit: 300,
                window_secs: 60,
                cap: Some(150),
                calls_in_window: 87,
                shared_calls_in_window: Some(120),
                held_secs: 12,
                last_remaining: Some(89),
            }),
            budget_waited_ms: 130_500,
            cache_max_bytes: 10 << 30,
            events_applied: 4,
            webhooks_accepted: 2,
            webhooks_refused: 1,
            ..Default::default()
        };
        s.api_calls.insert("retrieve".into(), 12);
        s.errors.insert("ENOENT".into(), 3);
        let text = render(&s);
        for want in [
            "/mnt/p",
            "pid 7",
            "up 1h 2m",
            "online",
            "retrieve 12",
            "budget:      50 % of Persona's 300 a minute: 150 calls; reserve 30 % (nothing sent below 90 left)",
            "window:      87 calls in the last 1m 0s (all mounts 120); last RateLimit-Remaining 89; waited 2m 10s for the budget",
            "stopped at the reserve: 12s to the window's reset",
            "ENOENT 3",
            "10.0 GiB",
            "4 applied; webhooks 2 accepted, 1 refused",
        ] {
            assert!(text.contains(want), "{want:?} missing from:\n{text}");
        }
        assert!(!text.contains("listing:"), "no listing under way:\n{text}");
    }

    #[test]
    fn an_absolute_limit_and_a_short_window_are_said_so() {
        let mut b = BudgetStatus {
            reserve_percent: 30,
            server_limit: 50,
            window_secs: 10,
            cap: Some(40),
            ..Default::default()
        };
        let s = |b: &BudgetStatus| {
            render(&Snapshot {
                budget: Some(b.clone()),
                ..Default::default()
            })
        };
        let text = s(&b);
        assert!(text.contains("budget:      40 calls a minute (--api-rate-limit); reserve 30 % (nothing sent below 15 left)"), "{text}");
        assert!(text.contains("last RateLimit-Remaining none yet"), "{text}");
        assert!(!text.contains("stopped"), "{text}");
        b.share_percent = Some(50);
        b.cap = Some(25);
        assert!(
            s(&b).contains("50 % of Persona's 50 per 10s: 25 calls"),
            "{}",
            s(&b)
        );
    }

    #[test]
    fn a_listing_in_progress_shows_pages_inquiries_and_time_left() {
        let mut s = Snapshot {
            rate_limit_per_minute: 300,
            listing: Some(ListingProgress {
                pages: 120,
                inquiries: 12_000,
                elapsed_secs: 24,
                expected_inquiries: Some(100_000),
            }),
            listing_cut_at: Some("\"inq_x\"".into()),
            ..Default::default()
        };
        let text = render(&s);
        // 880 pages left at 300 a minute: 2m 56s (faster than the pace so far: 24 s / 120).
        assert!(
            text.contains("in progress for 24s: 120 pages, 12000 inquiries so far; about 2m 56s left for ~100000 (300 requests/min)"),
            "{text}"
        );
        assert!(text.contains("cursor \"inq_x\" came back again"), "{text}");
        // Slower than the budget (latency): the pace seen so far governs.
        s.listing.as_mut().unwrap().elapsed_secs = 240;
        assert!(render(&s).contains("about 29m 20s left"), "{}", render(&s));
        s.listing.as_mut().unwrap().expected_inquiries = None;
        assert!(
            render(&s).contains("time left unknown (no earlier listing to compare with); at 300 requests/min, 30000 inquiries a minute"),
            "{}",
            render(&s)
        );
    }
}
