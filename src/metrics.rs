//! `--metrics-listen ADDR`: the mount's counters on `/metrics` in the Prometheus text format.
//! Labels are kinds and errno names only: never an inquiry id, a file name, a URL or a token.

use std::net::SocketAddr;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::status::SnapshotFn;
use personafs_client::telemetry::Snapshot;

/// `9100` means `127.0.0.1:9100`: metrics are local unless an address says otherwise.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| {
        format!("invalid address {text:?} (examples: 9100, 127.0.0.1:9100, [::1]:9100)")
    })
}

struct SnapshotCollector(SnapshotFn);

impl std::fmt::Debug for SnapshotCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotCollector")
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    let c = ConstCounter::new(value);
    c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> std::fmt::Result {
    let g = ConstGauge::new(value as i64);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

fn labelled_counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: &std::collections::BTreeMap<String, u64>,
) -> std::fmt::Result {
    let probe = ConstCounter::new(0u64);
    let mut family = encoder.encode_descriptor(name, help, None, probe.metric_type())?;
    for (k, v) in values {
        let labels = [(label.to_string(), k.clone())];
        ConstCounter::new(*v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// The request budget: share, reserve, this window, the time spent waiting.
fn budget_metrics(e: &mut DescriptorEncoder, s: &Snapshot) -> std::fmt::Result {
    let Some(b) = &s.budget else {
        return Ok(());
    };
    gauge(
        e,
        "personafs_budget_share_percent",
        "Percent of Persona's RateLimit-Limit this mount (with shared state: all mounts) uses; 0 with an absolute --api-rate-limit",
        u64::from(b.share_percent.unwrap_or(0)),
    )?;
    gauge(
        e,
        "personafs_budget_reserve_percent",
        "Below this percent of Persona's limit left, nothing is sent until the window resets",
        u64::from(b.reserve_percent),
    )?;
    gauge(
        e,
        "personafs_budget_persona_limit",
        "The RateLimit-Limit Persona reports",
        b.server_limit,
    )?;
    gauge(
        e,
        "personafs_budget_window_seconds",
        "The length of Persona's rate-limit window",
        b.window_secs,
    )?;
    gauge(
        e,
        "personafs_budget_calls_allowed",
        "API calls allowed per window (0: no client-side limit)",
        b.cap.unwrap_or(0),
    )?;
    gauge(
        e,
        "personafs_budget_calls_in_window",
        "API calls this mount made in the last window",
        b.calls_in_window,
    )?;
    if let Some(all) = b.shared_calls_in_window {
        gauge(
            e,
            "personafs_budget_shared_calls_in_window",
            "API calls all mounts sharing the budget made in the last window",
            all,
        )?;
    }
    gauge(
        e,
        "personafs_budget_held_seconds",
        "Seconds until the window resets while the reserve stops requests (0: not stopped)",
        b.held_secs,
    )?;
    let waited = ConstCounter::new(s.budget_waited_ms as f64 / 1000.0);
    waited.encode(e.encode_descriptor(
        "personafs_budget_waited_seconds",
        "Time API requests spent waiting for the request budget, all together",
        None,
        waited.metric_type(),
    )?)
}

/// Deltas: counts, the whole listings and why, the watermark's age.
fn delta_metrics(e: &mut DescriptorEncoder, s: &Snapshot) -> std::fmt::Result {
    let Some(d) = &s.deltas else {
        return Ok(());
    };
    counter(
        e,
        "personafs_deltas",
        "Deltas (search on updated-at) taken",
        d.deltas,
    )?;
    counter(
        e,
        "personafs_delta_search_pages",
        "Search pages the deltas asked for",
        d.search_pages,
    )?;
    counter(
        e,
        "personafs_delta_changes_applied",
        "Inquiries the deltas reported changed",
        d.changes_applied,
    )?;
    labelled_counter(
        e,
        "personafs_full_listings",
        "Whole listings taken, by why",
        "reason",
        &d.full_listings,
    )?;
    let now = s.started_unix + s.uptime_secs;
    if let Some(t) = d.watermark_unix {
        gauge(
            e,
            "personafs_delta_watermark_age_seconds",
            "Seconds since the latest updated-at search reported",
            now.saturating_sub(t),
        )?;
    }
    if let Some(t) = d.last_delta_unix {
        gauge(
            e,
            "personafs_delta_last_seconds",
            "Seconds since the last delta",
            now.saturating_sub(t),
        )?;
    }
    gauge(
        e,
        "personafs_search_refused",
        "1 when Persona refuses search and the listing is taken again by TTL",
        u64::from(d.search_refused),
    )
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let s = (self.0)();
        gauge(
            &mut e,
            "personafs_uptime_seconds",
            "Seconds since the mount started",
            s.uptime_secs,
        )?;
        gauge(
            &mut e,
            "personafs_online",
            "1 while Persona answers, 0 while offline",
            u64::from(s.online),
        )?;
        labelled_counter(
            &mut e,
            "personafs_api_calls",
            "Requests sent to Persona, by kind",
            "kind",
            &s.api_calls,
        )?;
        gauge(
            &mut e,
            "personafs_rate_budget_left",
            "The last RateLimit-Remaining Persona sent: requests left in its window",
            s.rate_budget_left,
        )?;
        gauge(
            &mut e,
            "personafs_rate_limit_per_minute",
            "API requests per minute this mount may send (0: no client-side limit)",
            u64::from(s.rate_limit_per_minute),
        )?;
        budget_metrics(&mut e, &s)?;
        delta_metrics(&mut e, &s)?;
        counter(
            &mut e,
            "personafs_rate_limited",
            "Answers of HTTP 429 received",
            s.rate_limited,
        )?;
        counter(
            &mut e,
            "personafs_retries",
            "Requests sent again after an error",
            s.retries,
        )?;
        counter(
            &mut e,
            "personafs_url_refreshes",
            "Inquiries retrieved again for fresh file URLs",
            s.url_refreshes,
        )?;
        gauge(
            &mut e,
            "personafs_downloads_active",
            "Downloads in progress",
            s.downloads_active,
        )?;
        counter(
            &mut e,
            "personafs_downloads_done",
            "Downloads completed",
            s.downloads_done,
        )?;
        counter(
            &mut e,
            "personafs_downloads_failed",
            "Downloads failed",
            s.downloads_failed,
        )?;
        counter(
            &mut e,
            "personafs_downloaded_bytes",
            "Bytes downloaded from the files host",
            s.bytes_downloaded,
        )?;
        counter(
            &mut e,
            "personafs_cache_hits",
            "File opens served from the disk cache",
            s.cache_hits,
        )?;
        counter(
            &mut e,
            "personafs_cache_misses",
            "File opens that needed a download",
            s.cache_misses,
        )?;
        counter(&mut e, "personafs_opens", "Files opened", s.opens)?;
        counter(
            &mut e,
            "personafs_dir_reads",
            "Directory listings the kernel read from personafs",
            s.dir_reads,
        )?;
        counter(
            &mut e,
            "personafs_dir_drops",
            "Directory listings the kernel kept and was told to drop (changed or due a refresh)",
            s.dir_drops,
        )?;
        counter(
            &mut e,
            "personafs_events_applied",
            "Changes applied from the events feed or webhooks",
            s.events_applied,
        )?;
        counter(
            &mut e,
            "personafs_webhooks_accepted",
            "Webhooks verified and accepted",
            s.webhooks_accepted,
        )?;
        counter(
            &mut e,
            "personafs_webhooks_refused",
            "Webhooks refused (signature, type, body)",
            s.webhooks_refused,
        )?;
        gauge(
            &mut e,
            "personafs_cache_bytes",
            "Bytes in the disk cache",
            s.cache_bytes,
        )?;
        gauge(
            &mut e,
            "personafs_cache_max_bytes",
            "The disk cache's size cap",
            s.cache_max_bytes,
        )?;
        gauge(
            &mut e,
            "personafs_cache_files",
            "Files in the disk cache",
            s.cache_files,
        )?;
        labelled_counter(
            &mut e,
            "personafs_errors",
            "Requests answered with an error, by errno",
            "errno",
            &s.errors,
        )?;
        gauge(
            &mut e,
            "personafs_metadata_entries",
            "Inquiries whose metadata the mount holds",
            s.metadata_entries,
        )?;
        gauge(
            &mut e,
            "personafs_inodes",
            "Inodes the kernel may refer to",
            s.inodes,
        )?;
        gauge(
            &mut e,
            "personafs_open_files",
            "Files open through the mount",
            s.open_handles,
        )?;
        Ok(())
    }
}

/// The text a scrape of `/metrics` returns.
pub fn render(snapshot: &SnapshotFn) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector(snapshot.clone())));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// Serve `/metrics` on `addr` for as long as the runtime runs.
pub fn serve(
    rt: &tokio::runtime::Handle,
    addr: SocketAddr,
    snapshot: SnapshotFn,
) -> anyhow::Result<()> {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let snapshot = snapshot.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    render(&snapshot),
                )
            }
        }),
    );
    tracing::info!("metrics on http://{addr}/metrics");
    rt.spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("metrics server stopped: {e}");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_budget_is_exported() {
        let snap = Snapshot {
            budget: Some(personafs_client::ratelimit::BudgetStatus {
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
            budget_waited_ms: 2_500,
            rate_budget_left: 89,
            ..Default::default()
        };
        let f: SnapshotFn = Arc::new(move || snap.clone());
        let text = render(&f);
        for want in [
            "personafs_budget_share_percent 50",
            "personafs_budget_reserve_percent 30",
            "personafs_budget_persona_limit 300",
            "personafs_budget_window_seconds 60",
            "personafs_budget_calls_allowed 150",
            "personafs_budget_calls_in_window 87",
            "personafs_budget_shared_calls_in_window 120",
            "personafs_budget_held_seconds 12",
            "personafs_budget_waited_seconds_total 2.5",
            "personafs_rate_budget_left 89",
        ] {
            assert!(text.contains(want), "{want} missing:\n{text}");
        }
    }

    #[test]
    fn deltas_are_exported() {
        let snap = Snapshot {
            started_unix: 1_000,
            uptime_secs: 100,
            deltas: Some(personafs_client::telemetry::DeltaSnapshot {
                deltas: 4,
                search_pages: 5,
                changes_applied: 120,
                full_listings: [("first".to_string(), 1), ("gap".to_string(), 0)].into(),
                last_delta_unix: Some(1_090),
                watermark_unix: Some(1_040),
                ..Default::default()
            }),
            ..Default::default()
        };
        let f: SnapshotFn = Arc::new(move || snap.clone());
        let text = render(&f);
        for want in [
            "personafs_deltas_total 4",
            "personafs_delta_search_pages_total 5",
            "personafs_delta_changes_applied_total 120",
            "personafs_full_listings_total{reason=\"first\"} 1",
            "personafs_full_listings_total{reason=\"gap\"} 0",
            "personafs_delta_watermark_age_seconds 60",
            "personafs_delta_last_seconds 10",
            "personafs_search_refused 0",
        ] {
            assert!(text.contains(want), "{want} missing:\n{text}");
        }
    }

    #[test]
    fn bare_ports_listen_on_loopback() {
        assert_eq!(parse_listen("9100").unwrap().to_string(), "127.0.0.1:9100");
        assert_eq!(
            parse_listen("0.0.0.0:9100").unwrap().to_string(),
            "0.0.0.0:9100"
        );
        assert!(parse_listen("nine").is_err());
    }

    #[test]
    fn every_counter_is_exported_without_ids() {
        let snap = {
            let mut s = Snapshot {
                online: true,
                cache_hits: 4,
                events_applied: 3,
                dir_reads: 7,
                dir_drops: 6,
                webhooks_accepted: 2,
                webhooks_refused: 5,
                ..Default::default()
            };
            s.api_calls.insert("retrieve".into(), 9);
            s.errors.insert("ENOENT".into(), 2);
            s
        };
        let f: SnapshotFn = Arc::new(move || snap.clone());
        let text = render(&f);
        assert!(
            text.contains("personafs_api_calls_total{kind=\"retrieve\"} 9"),
            "{text}"
        );
        assert!(
            text.contains("personafs_errors_total{errno=\"ENOENT\"} 2"),
            "{text}"
        );
        assert!(text.contains("personafs_cache_hits_total 4"), "{text}");
        assert!(text.contains("personafs_online 1"), "{text}");
        assert!(text.contains("personafs_events_applied_total 3"), "{text}");
        assert!(text.contains("personafs_dir_reads_total 7"), "{text}");
        assert!(text.contains("personafs_dir_drops_total 6"), "{text}");
        assert!(
            text.contains("personafs_webhooks_accepted_total 2"),
            "{text}"
        );
        assert!(
            text.contains("personafs_webhooks_refused_total 5"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
