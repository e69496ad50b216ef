//! The Persona client's error: what went wrong talking to Persona, safe to log. The filesystem
//! carries it as the source of its own error and turns it into an errno in one place (its
//! FUSE adapter's `errno_of`).

use std::fmt;

/// Which of Persona's two hosts answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    Api,
    Files,
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Host::Api => "API host",
            Host::Files => "files host",
        })
    }
}

/// Every message here must be safe to log: no API key, no access token, no signed URL.
/// Build URLs into messages only through `crate::redact::redact_url`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An HTTP error status from Persona, after any retries.
    #[error("{context}: {}{host} answered HTTP {status}{}{}{}",
        refused_key_note(*host, *status),
        title.as_deref().map(|t| format!(" {t}")).unwrap_or_default(),
        details.as_deref().map(|d| format!(": {d}")).unwrap_or_default(),
        request_id.as_deref().map(|r| format!(" (request id {r})")).unwrap_or_default())]
    Http {
        host: Host,
        status: u16,
        title: Option<String>,
        details: Option<String>,
        request_id: Option<String>,
        context: String,
    },
    /// Connection refused, reset, timed out: after any retries.
    #[error("{context}: network error: {message}")]
    Network { context: String, message: String },
    /// A body shorter (or longer) than announced. Never taken as a success.
    #[error("{context}: body was {received} bytes, expected {expected}")]
    Truncated {
        context: String,
        expected: u64,
        received: u64,
    },
    /// A body larger than the client takes (`--max-response-size`): never read beyond it.
    #[error("{context}: the answer is larger than the {} limit (--max-response-size){}",
        crate::body::human_bytes(*limit),
        announced.map(|n| format!("; it announced {}", crate::body::human_bytes(n))).unwrap_or_default())]
    TooLarge {
        context: String,
        limit: u64,
        /// The `Content-Length` the server announced, when it did.
        announced: Option<u64>,
    },
    /// A file URL that points to a host we do not trust with requests.
    #[error("refused to fetch a file from foreign host {host:?}")]
    ForeignHost { host: String },
    /// A response we could not understand (malformed JSON, wrong types, HTML with 200...).
    #[error("{context}: invalid response: {message}")]
    InvalidResponse { context: String, message: String },
    /// The events cursor names an event Persona no longer keeps: events were missed.
    #[error("{context}: the events cursor is no longer known to Persona")]
    CursorGone { context: String },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Config(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A 401 from the API host almost always means a wrong, revoked or expired key: say so.
fn refused_key_note(host: Host, status: u16) -> &'static str {
    match (host, status) {
        (Host::Api, 401) => "the API key was refused: ",
        _ => "",
    }
}

impl Error {
    /// A files-host answer that means "this signed URL is no longer good": re-retrieve, retry.
    pub fn is_url_expired(&self) -> bool {
        matches!(
            self,
            Error::Http {
                host: Host::Files,
                status: 401 | 403 | 410,
                ..
            }
        )
    }

    /// Persona has no such thing: a 404 from the API host, or an id that cannot be one.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::Http {
                host: Host::Api,
                status: 404,
                ..
            } | Error::NotFound(_)
        )
    }

    /// The API host refused the key (401 or 403): every caller is refused alike.
    pub fn is_refused_key(&self) -> bool {
        matches!(
            self,
            Error::Http {
                host: Host::Api,
                status: 401 | 403,
                ..
            }
        )
    }

    /// The HTTP status, if this error carries one (for logging).
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}
