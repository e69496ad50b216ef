//! Component tests of the filesystem's rules (SEMANTICS.md): the core over an in-memory
//! Persona (`MemoryApi`) wrapped in a fault injector (`FaultyApi`), with a real disk cache in
//! a temp dir. No FUSE, no HTTP. Assertions are on bytes, errnos and call counts; time only
//! passes, by the tests' own clock (`Env::clock`, shared by the core and the fake Persona):
//! a test advances it past a TTL rather than sleeping, and is never measured.

mod changes;
mod errors;
mod expiry;
mod far_reads;
mod kernel_cache;
mod listing;
mod metadata;
mod prefetch;
mod reads;
mod redaction;
mod shared;
mod store;
mod view_tree;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use personafs_client::PersonaApi;
use personafs_client::testing::{Call, FaultyApi, FileSpec, InquirySpec, MemoryApi};

use crate::cache::{CacheKey, CacheLimits, DiskCache};
use crate::{Attr, Clock, CoreConfig, FsCore, INQUIRIES, PrefetchConfig};

/// The one place the core is built: adapt here when its constructor changes.
fn build_core(api: Arc<dyn PersonaApi>, cache: Arc<DiskCache>, cfg: CoreConfig) -> Arc<FsCore> {
    FsCore::new(api, cache, cfg)
}

/// Downloads the core has started (each shared by all openers of its file).
fn downloads_started(core: &FsCore) -> u64 {
    core.counters.downloads.load(Ordering::SeqCst)
}

/// Reads served by their own ranged request, apart from the download.
fn far_reads(core: &FsCore) -> u64 {
    core.counters.far_reads.load(Ordering::SeqCst)
}

/// The core over `FaultyApi<MemoryApi>`, with its cache in a temp dir.
struct Env {
    core: Arc<FsCore>,
    api: Arc<FaultyApi<MemoryApi>>,
    cache: Arc<DiskCache>,
    /// The core's and Persona's clock (the config's, `config()` gives a manual one).
    clock: Clock,
    _dir: tempfile::TempDir,
}

/// Defaults of the tests: read-ahead off (tests of it turn it on), a short I/O timeout, a
/// clock the test advances.
fn config() -> CoreConfig {
    CoreConfig {
        clock: Clock::manual(),
        prefetch: PrefetchConfig {
            enabled: false,
            ..PrefetchConfig::default()
        },
        io_timeout: Duration::from_secs(10),
        ..CoreConfig::default()
    }
}

fn limits(max_size: u64) -> CacheLimits {
    CacheLimits {
        max_size,
        min_free: 0.0,
        max_age: None,
    }
}

impl Env {
    fn new(mem: MemoryApi, cfg: CoreConfig) -> Env {
        Env::with_limits(mem, cfg, limits(1 << 30))
    }

    fn with_limits(mem: MemoryApi, cfg: CoreConfig, limits: CacheLimits) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = DiskCache::open_dir(&dir.path().join("cache"), limits).expect("cache");
        let clock = cfg.clock.clone();
        mem.set_clock(clock.clone());
        let api = Arc::new(FaultyApi::new(mem));
        api.set_clock(clock.clone());
        let core = build_core(api.clone(), cache.clone(), cfg);
        Env {
            core,
            api,
            cache,
            clock,
            _dir: dir,
        }
    }

    fn mem(&self) -> &MemoryApi {
        self.api.inner()
    }

    /// Calls of a kind that reached the API (faults injected included).
    fn calls(&self, call: Call) -> u64 {
        self.api.calls(call)
    }

    /// Calls of every kind so far.
    fn total_calls(&self) -> u64 {
        Call::ALL.iter().map(|&c| self.calls(c)).sum()
    }

    /// Look up a path under `inquiries/` (`inq_a/document/doc_1-front-photo.jpg`).
    async fn lookup(&self, path: &str) -> crate::FsResult<Attr> {
        let mut parent = INQUIRIES;
        let mut attr = None;
        for name in path.split('/') {
            let a = self.core.lookup(parent, name).await?;
            parent = a.ino;
            attr = Some(a);
        }
        Ok(attr.expect("a non-empty path"))
    }

    async fn ino(&self, path: &str) -> u64 {
        self.lookup(path)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .ino
    }

    /// Names in a directory, in the order given.
    async fn names(&self, path: &str) -> Vec<String> {
        let ino = if path.is_empty() {
            INQUIRIES
        } else {
            self.ino(path).await
        };
        self.core
            .readdir(ino)
            .await
            .unwrap_or_else(|e| panic!("readdir {path}: {e}"))
            .into_iter()
            .map(|e| e.name.to_string())
            .collect()
    }

    /// Open, read to the end in 128 KiB reads, release.
    async fn read_all(&self, path: &str) -> crate::FsResult<Vec<u8>> {
        let ino = self.lookup(path).await?.ino;
        let opened = self.core.open(ino).await?;
        let out = self.read_fh(opened.fh).await;
        self.core.release(opened.fh);
        out
    }

    async fn read_fh(&self, fh: u64) -> crate::FsResult<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let chunk = self.core.read(fh, out.len() as u64, 128 << 10).await?;
            if chunk.is_empty() {
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
        }
    }

    /// The cache key of a file of the mount, as the core builds it.
    fn key(&self, id: &str, object_id: &str, name: &str, size: u64) -> CacheKey {
        CacheKey {
            inquiry_id: id.into(),
            object_id: object_id.into(),
            name: name.into(),
            size,
        }
    }

    /// The expected bytes of a file, from the API (costs no call).
    fn bytes(&self, id: &str, name: &str) -> Vec<u8> {
        self.mem()
            .bytes_of(id, name)
            .unwrap_or_else(|| panic!("no {id}/{name}"))
            .to_vec()
    }
}

/// Deterministic bytes that differ at every offset (so a misplaced range shows).
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// An inquiry with two documents (three files) and a selfie: the usual fixture.
fn sample_inquiry(id: &str, seed: u64) -> InquirySpec {
    InquirySpec::new(id)
        .document(
            "doc_1",
            [
                FileSpec::photo("front-photo", "front.jpg", bytes(seed, 150_000)),
                FileSpec::photo("back-photo", "back.jpg", bytes(seed + 1, 90_000)),
            ],
        )
        .document(
            "doc_2",
            [FileSpec::file("statement.pdf", bytes(seed + 2, 40_000))],
        )
        .selfie(
            "self_1",
            [FileSpec::photo(
                "center-photo",
                "center.jpg",
                bytes(seed + 3, 60_000),
            )],
        )
}

/// `inq_a`, `inq_b`, `inq_c`, each the sample, `inq_a` the newest.
fn sample_api() -> MemoryApi {
    let mem = MemoryApi::new();
    for (i, id) in ["inq_c", "inq_b", "inq_a"].iter().enumerate() {
        mem.add_inquiry(
            sample_inquiry(id, 10 * i as u64).created_at(&format!("2024-05-0{}T00:00:00Z", i + 1)),
        );
    }
    mem
}

/// Wait (polling) until `cond` holds; fails the test after 10 s.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
        crate::testing::poll_step().await;
    }
}

/// Wait until background work has ended: no read-ahead task left, no download running, no
/// call to the API in flight.
async fn settle(env: &Env) {
    wait_for("background work ended", || {
        env.core.readahead_idle()
            && env.core.downloads_registered() == 0
            && Call::ALL.iter().all(|&c| env.api.in_flight(c) == 0)
    })
    .await;
}

/// The errno of a failed call; panics on success.
/// The inquiries of the store and changes tests: three approved ones, 10 s apart.
const THREE_IDS: [&str; 3] = ["inq_a", "inq_b", "inq_c"];

fn three_approved() -> Arc<MemoryApi> {
    let mem = MemoryApi::new();
    for (i, id) in THREE_IDS.iter().enumerate() {
        mem.add_inquiry(sample_inquiry(id, 10 * i as u64).status("approved"));
    }
    Arc::new(mem)
}

fn errno<T>(r: crate::FsResult<T>) -> i32 {
    match r {
        Ok(_) => panic!("expected an error, got a success"),
        Err(e) => crate::errno_of(&e),
    }
}

/// Files of the sample inquiry: (section, name, object id).
const SAMPLE_FILES: [(&str, &str, &str); 4] = [
    ("document", "doc_1-back-photo.jpg", "doc_1"),
    ("document", "doc_1-front-photo.jpg", "doc_1"),
    ("document", "doc_2-statement.pdf", "doc_2"),
    ("selfie", "self_1-center-photo.jpg", "self_1"),
];

/// The size of a file of the sample inquiry.
fn sample_size(name: &str) -> u64 {
    match name {
        "doc_1-front-photo.jpg" => 150_000,
        "doc_1-back-photo.jpg" => 90_000,
        "doc_2-statement.pdf" => 40_000,
        "self_1-center-photo.jpg" => 60_000,
        _ => panic!("{name} is not in the sample"),
    }
}
