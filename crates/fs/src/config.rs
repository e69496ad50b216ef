//! How the core behaves; see `MountConfig` for what each setting means to a user.

use std::sync::Arc;
use std::time::Duration;

use personafs_client::ListFilters;
use personafs_client::clock::Clock;
use personafs_client::shared_state::SharedViews;

use crate::counters::Counters;
use crate::store::MetadataStore;

#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub filters: ListFilters,
    pub metadata_ttl: Duration,
    pub negative_ttl: Duration,
    pub file_url_lifetime: Duration,
    /// Fraction of the lifetime kept as a safety margin before a URL counts as stale.
    pub url_refresh_margin: f64,
    pub uid: u32,
    pub gid: u32,
    pub file_mode: u16,
    pub dir_mode: u16,
    /// How long a read may wait for bytes from the network before it fails with EIO.
    pub io_timeout: Duration,
    pub prefetch: PrefetchConfig,
    /// Inquiry views kept in memory (and as many "no such inquiry" answers); beyond it the
    /// least recently used go, and are retrieved again when needed.
    pub max_views: usize,
    /// The runtime the core runs its background work on. `None`: the runtime `FsCore::new`
    /// is called in (it then panics outside one).
    pub runtime: Option<tokio::runtime::Handle>,
    /// Where the core counts what it does (for `personafs status` and `/metrics`).
    pub counters: Arc<Counters>,
    /// The persisted metadata store of the cache directory: views and the listing survive a
    /// remount, and the mount answers from it when Persona cannot be reached. `None`: memory
    /// only.
    pub store: Option<Arc<MetadataStore>>,
    /// While Persona is unreachable (the circuit breaker is open), how often one request
    /// probes it again.
    pub offline_probe: Duration,
    /// Inquiry views shared with the other mounts of the environment (`--shared-state`):
    /// one retrieve per inquiry across them. `None`: this mount retrieves alone.
    pub shared_views: Option<Arc<dyn SharedViews>>,
    /// Which views the root shows beside `inquiries/`.
    pub views: ViewSet,
    /// Freshness by deltas (search on `updated-at`); `None`: the listing is taken again
    /// every metadata TTL, as when Persona refuses search.
    pub deltas: Option<DeltaConfig>,
    /// What every component decides by time with (TTLs, the breaker's probe, how old a
    /// view or a listing is): the host's clock, or one a test moves.
    pub clock: Clock,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            filters: ListFilters::default(),
            metadata_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(10),
            file_url_lifetime: Duration::from_secs(6 * 3600),
            url_refresh_margin: 0.10,
            // SAFETY: geteuid and getegid cannot fail and touch no memory.
            uid: unsafe { libc::geteuid() },
            // SAFETY: as above.
            gid: unsafe { libc::getegid() },
            file_mode: 0o444,
            dir_mode: 0o555,
            io_timeout: Duration::from_secs(60),
            prefetch: PrefetchConfig::default(),
            max_views: 2_000,
            runtime: None,
            counters: Arc::default(),
            store: None,
            offline_probe: Duration::from_secs(15),
            shared_views: None,
            views: ViewSet::default(),
            deltas: Some(Default::default()),
            clock: Clock::host(),
        }
    }
}

impl CoreConfig {
    /// How long a retrieve's URLs are used: their lifetime less the safety margin.
    pub(crate) fn url_budget(&self) -> Duration {
        self.file_url_lifetime
            .mul_f64((1.0 - self.url_refresh_margin).clamp(0.0, 1.0))
    }
}

/// How far and how much to read ahead (`readahead`).
#[derive(Debug, Clone)]
pub struct PrefetchConfig {
    pub enabled: bool,
    /// Inquiries after the current one (in listing order) to read ahead.
    pub inquiries_ahead: usize,
    /// Prefetch downloads in flight at once.
    pub max_downloads: usize,
    /// Bytes downloaded ahead that nobody has opened yet.
    pub max_unread_bytes: u64,
}

impl Default for PrefetchConfig {
    fn default() -> Self {
        PrefetchConfig {
            enabled: true,
            inquiries_ahead: 8,
            max_downloads: 8,
            max_unread_bytes: 256 << 20,
        }
    }
}

/// The views beside `inquiries/` (`--views`): all three unless told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewSet {
    pub by_reference_id: bool,
    pub accounts: bool,
    pub by_day: bool,
}

impl Default for ViewSet {
    fn default() -> Self {
        ViewSet {
            by_reference_id: true,
            accounts: true,
            by_day: true,
        }
    }
}

impl ViewSet {
    pub const NONE: ViewSet = ViewSet {
        by_reference_id: false,
        accounts: false,
        by_day: false,
    };

    /// `by-reference-id,accounts,by-day` (any of them, comma-separated), `all` or `none`.
    pub fn parse(text: &str) -> Result<ViewSet, String> {
        let text = text.trim();
        match text {
            "all" => return Ok(ViewSet::default()),
            "none" | "" => return Ok(ViewSet::NONE),
            _ => {}
        }
        let mut set = ViewSet::NONE;
        for name in text.split(',').map(str::trim) {
            match name {
                "by-reference-id" => set.by_reference_id = true,
                "accounts" => set.accounts = true,
                "by-day" => set.by_day = true,
                other => {
                    let shown: String = other.chars().take(40).collect();
                    return Err(format!(
                        "unknown view {shown:?}: the views are by-reference-id, accounts and \
                         by-day (or all, none)"
                    ));
                }
            }
        }
        Ok(set)
    }

    /// As `parse` reads it.
    pub fn names(&self) -> String {
        let names: Vec<&str> = [
            (self.by_reference_id, "by-reference-id"),
            (self.accounts, "accounts"),
            (self.by_day, "by-day"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(",")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_parse_and_print_back() {
        assert_eq!(ViewSet::parse("none"), Ok(ViewSet::NONE));
        assert_eq!(ViewSet::parse("all"), Ok(ViewSet::default()));
        let two = ViewSet::parse("by-day, accounts").unwrap();
        assert!(two.by_day && two.accounts && !two.by_reference_id);
        assert_eq!(two.names(), "accounts,by-day");
        assert_eq!(
            ViewSet::parse(&ViewSet::default().names()),
            Ok(ViewSet::default())
        );
        assert_eq!(ViewSet::NONE.names(), "none");
        assert!(
            ViewSet::parse("by-reference-id,days")
                .unwrap_err()
                .contains("days")
        );
    }
}

/// How deltas are taken (`--delta-overlap`, `--full-listing-every`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeltaConfig {
    /// How far before the watermark a delta asks from: covers search's index lag.
    pub overlap: Duration,
    /// A whole listing at least this often, and whenever the watermark is older.
    pub full_listing_every: Duration,
}

impl Default for DeltaConfig {
    fn default() -> Self {
        DeltaConfig {
            overlap: Duration::from_secs(120),
            full_listing_every: Duration::from_secs(24 * 3600),
        }
    }
}
