//! systemd's notify protocol (`Type=notify`): a few datagrams to `$NOTIFY_SOCKET`.
//! `READY=1` once the mount answers, `STATUS=` lines on the way, `STOPPING=1` when it goes
//! down. Without `NOTIFY_SOCKET` (not started by systemd) every call does nothing.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::OnceLock;

static SOCKET: OnceLock<Option<(UnixDatagram, SocketAddr)>> = OnceLock::new();

/// The notify socket's address: a path, or `@name` for an abstract socket.
fn address(text: &str) -> Option<SocketAddr> {
    if let Some(name) = text.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        return SocketAddr::from_abstract_name(name.as_bytes()).ok();
    }
    if !text.starts_with('/') {
        return None;
    }
    SocketAddr::from_pathname(text).ok()
}

fn socket() -> Option<&'static (UnixDatagram, SocketAddr)> {
    SOCKET
        .get_or_init(|| {
            let text = std::env::var("NOTIFY_SOCKET").ok()?;
            let addr = address(&text)?;
            Some((UnixDatagram::unbound().ok()?, addr))
        })
        .as_ref()
}

/// Send one message (`KEY=VALUE` lines). Failures are logged, never fatal: a service
/// manager that stopped listening must not take the mount down.
pub fn send(message: &str) {
    if let Some((socket, addr)) = socket()
        && let Err(e) = socket.send_to_addr(message.as_bytes(), addr)
    {
        tracing::warn!("cannot notify the service manager: {e}");
    }
}

/// A human-readable status line for `systemctl status`.
pub fn status(text: &str) {
    send(&format!("STATUS={}", text.replace('\n', " ")));
}

/// The mount answers.
pub fn ready(mountpoint: &std::path::Path) {
    send(&format!("READY=1\nSTATUS=serving {}", mountpoint.display()));
}

/// Going down (a signal or an external unmount).
pub fn stopping(why: &str) {
    send(&format!("STOPPING=1\nSTATUS={why}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(address("/run/systemd/notify").is_some());
        assert!(address("@/org/freedesktop/systemd1/notify/123").is_some());
        assert!(address("relative/sock").is_none());
        assert!(address("").is_none());
    }
}
