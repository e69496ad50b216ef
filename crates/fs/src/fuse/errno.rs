//! The contract's errno table (SEMANTICS, errno): the one place where a filesystem error
//! becomes the errno the kernel is answered with.

use personafs_client::Error as ClientError;

use crate::error::FsError;

/// The errno a FUSE reply carries for `e`.
pub fn errno_of(e: &FsError) -> i32 {
    match e {
        FsError::NotFound(_) => libc::ENOENT,
        FsError::Gone(_) => libc::ESTALE,
        FsError::NotDir => libc::ENOTDIR,
        FsError::IsDir => libc::EISDIR,
        FsError::NotLink(_) => libc::EINVAL,
        FsError::BadHandle => libc::EBADF,
        FsError::Persona(e) => client_errno(e),
        // A local failure keeps its own errno (ENOSPC, ...).
        FsError::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
        FsError::TimedOut { .. }
        | FsError::EndedShort(_)
        | FsError::Task { .. }
        | FsError::NoAnswer(_) => libc::EIO,
    }
}

fn client_errno(e: &ClientError) -> i32 {
    match e {
        // A refused key answers every caller with "permission denied".
        e if e.is_refused_key() => libc::EACCES,
        // An API 404, or a string that cannot be an inquiry id.
        e if e.is_not_found() => libc::ENOENT,
        // A local failure (writing a download to disk): its own errno, e.g. ENOSPC.
        ClientError::Io(io) => io.raw_os_error().unwrap_or(libc::EIO),
        // Network and server failures after retries, the files host's refusals, ...
        _ => libc::EIO,
    }
}

/// The symbolic name of the errnos a mount answers with (`personafs status`, `/metrics`, the
/// audit log).
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EACCES => "EACCES",
        libc::EROFS => "EROFS",
        libc::ESTALE => "ESTALE",
        libc::EBADF => "EBADF",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::ENOSPC => "ENOSPC",
        libc::EINTR => "EINTR",
        libc::EAGAIN => "EAGAIN",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EPERM => "EPERM",
        libc::ENOSYS => "ENOSYS",
        libc::EINVAL => "EINVAL",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use personafs_client::error::Host;
    use std::io;

    fn http(host: Host, status: u16) -> ClientError {
        ClientError::Http {
            host,
            status,
            title: None,
            details: None,
            request_id: None,
            context: "test".into(),
        }
    }

    #[test]
    fn client_errors_map_to_the_contracts_errnos() {
        let cases = [
            (http(Host::Api, 401), libc::EACCES),
            (http(Host::Api, 403), libc::EACCES),
            (http(Host::Api, 404), libc::ENOENT),
            (http(Host::Api, 500), libc::EIO),
            (http(Host::Files, 403), libc::EIO),
            (http(Host::Files, 404), libc::EIO),
            (
                ClientError::Network {
                    context: "c".into(),
                    message: "m".into(),
                },
                libc::EIO,
            ),
            (
                ClientError::Io(io::Error::from_raw_os_error(libc::ENOSPC)),
                libc::ENOSPC,
            ),
        ];
        for (e, errno) in cases {
            let shown = e.to_string();
            let fs = FsError::from(e);
            assert_eq!(errno_of(&fs), errno, "{shown}");
            assert_eq!(fs.to_string(), shown);
        }
    }

    #[test]
    fn the_filesystems_own_failures_map_to_the_contracts_errnos() {
        let cases = [
            (FsError::not_found("x"), libc::ENOENT),
            (FsError::gone("x"), libc::ESTALE),
            (FsError::NotDir, libc::ENOTDIR),
            (FsError::IsDir, libc::EISDIR),
            (FsError::NotLink(7), libc::EINVAL),
            (FsError::BadHandle, libc::EBADF),
            (
                io::Error::from_raw_os_error(libc::ENOSPC).into(),
                libc::ENOSPC,
            ),
            (io::Error::other("no errno").into(), libc::EIO),
            (
                FsError::TimedOut {
                    what: "x".into(),
                    after: std::time::Duration::from_secs(1),
                },
                libc::EIO,
            ),
            (FsError::EndedShort("x".into()), libc::EIO),
            (FsError::NoAnswer("x"), libc::EIO),
        ];
        for (e, errno) in cases {
            assert_eq!(errno_of(&e), errno, "{e}");
        }
    }

    #[test]
    fn errors_are_counted_by_errno_name() {
        let c = crate::Counters::default();
        for errno in [libc::ENOENT, libc::EIO, libc::ENOENT] {
            c.error(errno_name(errno));
        }
        let mut s = personafs_client::telemetry::Snapshot::default();
        c.fill(&mut s);
        assert_eq!(s.errors["ENOENT"], 2);
        assert_eq!(s.errors["EIO"], 1);
    }
}
