//! A `redis-server` of a test's own on a free port, for the tests of everything shared in
//! Redis (client, fs component and end-to-end tests). Skipped loudly when `redis-server` is
//! not installed, except in CI where that fails the test.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` of our own, stopped when dropped.
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RedisServer {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Redis on `port`, or `None` (said loudly) when `redis-server` is not installed outside
    /// CI. In CI a missing server fails the test.
    pub fn start_on(port: u16) -> Option<RedisServer> {
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "redis-server is not installed, and CI must run the tests of what is shared in Redis"
                );
                eprintln!(
                    "\n*** SKIPPED: redis-server is not installed (apt-get install redis-server); \
                     what is shared in Redis was NOT tested ***\n"
                );
                return None;
            }
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        let mut server = RedisServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            server.answers_itself(),
            "port {port} is answered by another redis-server"
        );
        Some(server)
    }

    /// A Redis of our own on a free port. Tests running at once may each be handed the same
    /// free port: the server that cannot bind it exits, and the test would talk to (and
    /// kill) the other's. So the server on the port must be ours, or another port is tried.
    pub fn start() -> Option<RedisServer> {
        for _ in 0..5 {
            let port = free_port();
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                continue; // taken already
            }
            match std::panic::catch_unwind(|| Self::start_on(port)) {
                Ok(server) => return server,
                Err(_) => eprintln!("redis-server on port {port} was not ours; another port"),
            }
        }
        panic!("no redis-server of our own after 5 ports");
    }

    /// Whether the server answering on our port is our child (its `process_id`).
    fn answers_itself(&mut self) -> bool {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return false;
        }
        let info: Option<String> = redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
            .and_then(|mut c| redis::cmd("INFO").arg("server").query(&mut c))
            .ok();
        let pid = info.as_deref().and_then(|i| {
            i.lines()
                .find_map(|l| l.strip_prefix("process_id:"))
                .and_then(|p| p.trim().parse::<u32>().ok())
        });
        pid == Some(self.child.id())
    }
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl RedisServer {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kill the server now (a test of what happens when Redis dies).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RedisServer {
    /// Every key and its value (strings only), to prove what was, and was not, written.
    pub async fn contents(&self) -> Vec<(String, Vec<u8>)> {
        let client = redis::Client::open(self.url()).expect("a Redis URL");
        let mut c = client
            .get_multiplexed_async_connection()
            .await
            .expect("the test's redis-server");
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut c)
            .await
            .expect("KEYS");
        keys.sort();
        let mut out = Vec::new();
        for key in keys {
            let value: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut c)
                .await
                .unwrap_or(None);
            out.push((key, value.unwrap_or_default()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_another_server_answers_is_not_taken_for_ours() {
        let Some(first) = RedisServer::start() else {
            return;
        };
        // A second server on the same port cannot bind it: it must not pass for ours.
        let taken = std::panic::catch_unwind(|| RedisServer::start_on(first.port()));
        assert!(
            taken.is_err(),
            "a server that could not bind passed for ours"
        );
        let Some(mut second) = RedisServer::start() else {
            return;
        };
        assert_ne!(second.port(), first.port());
        assert!(second.answers_itself());
    }
}
