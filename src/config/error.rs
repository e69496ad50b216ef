//! The configuration's error: one line, meant to be printed as `personafs: {error}`.

/// A configuration or pre-mount check that failed; the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    pub fn new(message: impl Into<String>) -> ConfigError {
        ConfigError(message.into())
    }
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;
