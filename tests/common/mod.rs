//! Shared harness of the end-to-end tests: a mock Persona server over loopback (`generated`,
//! `unlimited`, `mock`), a real FUSE mount of personafs on a temp directory in this process
//! (`TestMount`, unmounted with `unmount()`), waits (`wait_for`, `wait_until`) and
//! commands (`run`, `stdout_of`). The binary as a process of its own is in `binary`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use personafs_client::{ApiKey, ClientConfig, HttpClient, PersonaApi, files_of};
use personafs_fs::cache::{CacheLimits, DiskCache};
use personafs_fs::mount::{Mount, Parts};
use personafs_fs::{CoreConfig, FsCore, FuseOptions};
use personafs_mock::{MockConfig, MockServer, MockStats};

/// A mock organization of `n` generated inquiries, the same for the same `seed`.
pub fn generated(n: usize, seed: u64) -> MockConfig {
    MockConfig {
        generate: n,
        seed,
        ..Default::default()
    }
}

/// As `generated`, without the mock's own rate limit: the client's (300/min) is what a real
/// mount obeys; the mock's would only slow a test down.
pub fn unlimited(n: usize, seed: u64) -> MockConfig {
    let mut config = generated(n, seed);
    config.runtime.rate_limit = 0;
    config
}

/// A mock server of `generated(n, seed)`.
pub fn mock(n: usize, seed: u64) -> MockServer {
    MockServer::start(generated(n, seed)).expect("mock starts")
}

/// A free loopback port (bound then released: whoever needs it binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How often the waits below look again.
const POLL: Duration = Duration::from_millis(50);

/// Poll `probe` until it gives `Ok`; panic with `what` and its last `Err` after `limit` (a
/// hang detector, not a timing).
pub fn wait_for<T, E: std::fmt::Debug>(
    what: &str,
    limit: Duration,
    mut probe: impl FnMut() -> Result<T, E>,
) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) => assert!(
                start.elapsed() < limit,
                "{what}: not within {limit:?}; last: {last:?}"
            ),
        }
        // The poll interval: what is polled for has no signal to wait on.
        std::thread::sleep(POLL);
    }
}

/// Poll `ready` until it holds; panic with `what` after `limit` (a hang detector).
pub fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    wait_for(what, limit, || if ready() { Ok(()) } else { Err(false) })
}

/// Returns once the wall clock is in a later millisecond than when called: a change made
/// after it is stamped later than one made before (the mock stamps in whole milliseconds).
pub fn next_millisecond() {
    let now = chrono::Utc::now().timestamp_millis();
    while chrono::Utc::now().timestamp_millis() <= now {
        std::hint::spin_loop();
    }
}

/// FUSE tests need `/dev/fuse`. Elsewhere they skip loudly; in CI (`CI` set) they fail.
pub fn fuse_available() -> bool {
    if Path::new("/dev/fuse").exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("/dev/fuse is missing in CI: the FUSE tests are mandatory there");
    }
    eprintln!("\n!!!!! SKIPPING FUSE TEST: /dev/fuse is missing on this machine !!!!!\n");
    false
}

pub fn host_port(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    format!("{}:{}", u.host_str().unwrap(), u.port().unwrap())
}

/// A client for the mock, as the product builds it.
pub fn client_for(mock: &MockServer) -> HttpClient {
    client_with(mock, |_| {})
}

pub fn client_with(mock: &MockServer, tweak: impl FnOnce(&mut ClientConfig)) -> HttpClient {
    let mut c = ClientConfig::new(mock.api_base(), ApiKey::new(mock.api_key()));
    c.allowed_file_hosts = vec![host_port(&mock.files_base()), host_port(&mock.api_base())];
    c.retry_base_delay = Duration::from_millis(20);
    tweak(&mut c);
    HttpClient::new(c).unwrap()
}

pub struct TestMount {
    pub mock: HeldMock,
    pub rt: tokio::runtime::Runtime,
    pub core: Arc<FsCore>,
    pub api: Arc<dyn PersonaApi>,
    pub mountpoint: tempfile::TempDir,
    pub cache_dir: PathBuf,
    _cache_tmp: Option<tempfile::TempDir>,
    session: Option<Mount>,
}

pub struct Options {
    pub core: CoreConfig,
    pub client: Box<dyn FnOnce(&mut ClientConfig)>,
    pub cache_dir: Option<PathBuf>,
    pub cache_limits: CacheLimits,
    pub fuse: FuseOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            core: CoreConfig::default(),
            client: Box::new(|_| {}),
            cache_dir: None,
            cache_limits: CacheLimits {
                max_size: 1 << 30,
                min_free: 0.0,
                max_age: None,
            },
            fuse: FuseOptions::default(),
        }
    }
}

impl Options {
    /// No read-ahead: for tests that count downloads, retrieves or cache entries exactly.
    pub fn exact() -> Options {
        let mut o = Options::default();
        o.core.prefetch.enabled = false;
        o
    }
}

impl TestMount {
    pub fn start(mock: MockConfig) -> TestMount {
        Self::with(
            MockServer::start(mock).expect("mock starts"),
            Options::default(),
        )
    }

    /// As `start`, without read-ahead.
    pub fn start_exact(mock: MockConfig) -> TestMount {
        Self::with(
            MockServer::start(mock).expect("mock starts"),
            Options::exact(),
        )
    }

    pub fn with(mock: MockServer, opts: Options) -> TestMount {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        let api: Arc<dyn PersonaApi> = Arc::new(client_with(&mock, opts.client));
        let (cache_dir, cache_tmp) = match opts.cache_dir {
            Some(d) => (d, None),
            None => {
                let t = tempfile::tempdir().unwrap();
                (t.path().join("cache"), Some(t))
            }
        };
        let cache = DiskCache::open_dir(&cache_dir, opts.cache_limits).unwrap();
        let parts = Parts {
            api: api.clone(),
            cache,
            core: opts.core,
            fuse: opts.fuse,
            audit: None,
        };
        let mountpoint = tempfile::tempdir().unwrap();
        let session = personafs_fs::mount::wire(parts, rt.handle().clone())
            .mount(mountpoint.path(), || {})
            .expect("mount succeeds");
        let core = session.core().clone();
        TestMount {
            mock: HeldMock(Some(mock)),
            rt,
            core,
            api,
            mountpoint,
            cache_dir,
            _cache_tmp: cache_tmp,
            session: Some(session),
        }
    }

    pub fn path(&self) -> &Path {
        self.mountpoint.path()
    }

    pub fn inquiries(&self) -> PathBuf {
        self.path().join("inquiries")
    }

    pub fn stats(&self) -> MockStats {
        self.mock.stats()
    }

    /// The files of an inquiry and their bytes, fetched straight from the mock over HTTP
    /// (with the product's client, which knows both URL forms), not through the mount.
    pub fn direct_files(&self, id: &str) -> Vec<(String, String, Vec<u8>)> {
        self.rt.block_on(async {
            // Tests run with URLs that live a second; on a busy machine one can expire before
            // its download starts: then fetch them all again with fresh URLs.
            for attempt in 1.. {
                let inquiry = self.api.retrieve_inquiry(id).await.unwrap();
                let mut out = Vec::new();
                let mut expired = false;
                for f in files_of(&inquiry) {
                    let mut bytes = Vec::new();
                    match self.api.download(&f.url, 0, &mut bytes).await {
                        Ok(_) => out.push((f.section.dir_name().to_string(), f.name, bytes)),
                        Err(e) if e.is_url_expired() && attempt < 5 => {
                            expired = true;
                            break;
                        }
                        Err(e) => panic!("direct download of {}: {e}", f.name),
                    }
                }
                if !expired {
                    return out;
                }
            }
            unreachable!()
        })
    }

    pub fn unmount(mut self) {
        if let Some(s) = self.session.take() {
            s.unmount_and_join().unwrap();
        }
    }

    /// Unmount, keeping the mock running (for a remount over the same organization).
    pub fn into_mock(mut self) -> MockServer {
        if let Some(s) = self.session.take() {
            s.unmount_and_join().unwrap();
        }
        self.mock.0.take().expect("the mock is held until now")
    }
}

/// The mount's mock server, which `TestMount::into_mock` can hand on.
pub struct HeldMock(Option<MockServer>);

impl std::ops::Deref for HeldMock {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        self.0.as_ref().expect("the mock was handed on")
    }
}

impl Drop for TestMount {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = s.unmount_and_join();
        }
    }
}

/// Run a command, returning (success, stdout, stderr).
pub fn run(cmd: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run `cmd`, asserting that it succeeds (its output in the message if not); its stdout.
pub fn stdout_of(cmd: &mut std::process::Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{cmd:?}: {stdout}\n{stderr}");
    stdout.into_owned()
}

/// The entries of `dir`, read in full: the kernel opens a directory without asking
/// personafs, so what listing it costs (an error, a retrieve) comes with reading it.
#[allow(dead_code)] // not every test binary lists
pub fn list(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect()
}

/// Every file below `root`, relative, sorted.
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().to_path_buf());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}
