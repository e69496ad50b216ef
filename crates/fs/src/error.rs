//! The filesystem's error: the errno a FUSE reply carries and a message safe to log. The one
//! place where a Persona client error becomes an errno (the contract's errno table).

use std::fmt;
use std::io;

use personafs_client::error::Host;

/// A failed filesystem operation. The message never holds an API key, an access token or a
/// signed URL (client messages are redacted where they are made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsError {
    errno: i32,
    message: String,
}

pub type FsResult<T> = Result<T, FsError>;

impl FsError {
    pub fn new(errno: i32, message: impl Into<String>) -> FsError {
        FsError {
            errno,
            message: message.into(),
        }
    }

    /// The errno to answer the kernel with.
    pub fn errno(&self) -> i32 {
        self.errno
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn not_found(what: impl fmt::Display) -> FsError {
        FsError::new(libc::ENOENT, format!("not found: {what}"))
    }

    /// The file existed when it was opened but is gone now (removed, inquiry redacted).
    pub(crate) fn gone(what: impl fmt::Display) -> FsError {
        FsError::new(libc::ESTALE, format!("file is gone: {what}"))
    }

    pub(crate) fn not_dir() -> FsError {
        FsError::new(libc::ENOTDIR, "not a directory")
    }

    pub(crate) fn is_dir() -> FsError {
        FsError::new(libc::EISDIR, "is a directory")
    }

    pub(crate) fn bad_handle() -> FsError {
        FsError::new(libc::EBADF, "bad file handle")
    }

    pub(crate) fn io(message: impl Into<String>) -> FsError {
        FsError::new(libc::EIO, message)
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (errno {})", self.message, self.errno)
    }
}

impl std::error::Error for FsError {}

impl From<io::Error> for FsError {
    fn from(e: io::Error) -> FsError {
        FsError::new(e.raw_os_error().unwrap_or(libc::EIO), e.to_string())
    }
}

impl From<personafs_client::Error> for FsError {
    fn from(e: personafs_client::Error) -> FsError {
        use personafs_client::Error as E;
        let errno = match &e {
            // A refused key answers every caller with "permission denied".
            E::Http {
                host: Host::Api,
                status: 401 | 403,
                ..
            } => libc::EACCES,
            E::Http {
                host: Host::Api,
                status: 404,
                ..
            } => libc::ENOENT,
            // The client's answer to a string that cannot be an inquiry id.
            E::NotFound(_) => libc::ENOENT,
            // A local failure (writing a download to disk): its own errno, e.g. ENOSPC.
            E::Io(io) => io.raw_os_error().unwrap_or(libc::EIO),
            _ => libc::EIO,
        };
        FsError::new(errno, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use personafs_client::Error;

    fn http(host: Host, status: u16) -> Error {
        Error::Http {
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
                Error::Network {
                    context: "c".into(),
                    message: "m".into(),
                },
                libc::EIO,
            ),
            (
                Error::Io(io::Error::from_raw_os_error(libc::ENOSPC)),
                libc::ENOSPC,
            ),
        ];
        for (e, errno) in cases {
            let shown = e.to_string();
            let fs = FsError::from(e);
            assert_eq!(fs.errno(), errno, "{shown}");
            assert_eq!(fs.message(), shown);
        }
    }
}
