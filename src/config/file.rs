//! The TOML config file: loading it (private files only), rejecting unknown keys, and
//! reading its values as text for the option parsers.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{ConfigError, Result};
use super::{OPTION_KEYS, SECRET_KEYS};

/// A loaded config file: its path (for messages and relative paths) and its keys.
#[derive(Clone)]
pub struct ConfigFile {
    path: PathBuf,
    table: toml::Table,
}

// Hand-written: the table may hold an inline `api_key`.
impl std::fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigFile")
            .field("path", &self.path)
            .field("keys", &self.table.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Refuse a file that grants any access to group or others, as ssh does for private keys.
pub fn check_private(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| {
        ConfigError::new(format!("cannot read {}: {}", path.display(), io_reason(&e)))
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(ConfigError::new(format!(
            "permissions {mode:04o} for '{}' are too open; run: chmod 600 {}",
            path.display(),
            shell_quote(path)
        )));
    }
    Ok(())
}

impl ConfigFile {
    /// Load a config file: it must be private, valid TOML, and use only known keys.
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let path = std::path::absolute(path).map_err(|e| {
            ConfigError::new(format!(
                "cannot use config file {}: {}",
                path.display(),
                io_reason(&e)
            ))
        })?;
        check_private(&path)?;
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::new(format!(
                "cannot read config file {}: {}",
                path.display(),
                io_reason(&e)
            ))
        })?;
        ConfigFile::parse(path, &text)
    }

    /// Parse config text (no permission check); `path` is used for messages only.
    pub fn parse(path: PathBuf, text: &str) -> Result<ConfigFile> {
        // Only the parser's message and position: its default rendering quotes the source
        // line, which may hold an inline API key.
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            let position = e
                .span()
                .map(|span| {
                    let before = &text.as_bytes()[..span.start.min(text.len())];
                    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
                    format!(" line {line}")
                })
                .unwrap_or_default();
            ConfigError::new(format!(
                "config file {}{position}: {}",
                path.display(),
                e.message().trim().replace('\n', "; ")
            ))
        })?;
        for key in table.keys() {
            if !OPTION_KEYS.contains(&key.as_str()) && !SECRET_KEYS.contains(&key.as_str()) {
                let hint = closest_key(key)
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                return Err(ConfigError::new(format!(
                    "unknown key `{key}` in config file {}{hint}",
                    path.display()
                )));
            }
        }
        Ok(ConfigFile { path, table })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file sets `key`.
    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// The keys the file sets.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.table.keys().map(String::as_str)
    }

    /// A single value as text (strings as is; numbers, booleans and dates as written).
    pub fn scalar(&self, key: &str) -> Result<Option<String>> {
        self.table
            .get(key)
            .map(|value| {
                scalar_text(value).ok_or_else(|| {
                    ConfigError::new(format!(
                        "invalid value for {key} in config file {}: expected a single value",
                        self.path.display()
                    ))
                })
            })
            .transpose()
    }

    /// A list: an array of values, or one comma-separated string.
    pub fn list(&self, key: &str) -> Result<Option<Vec<String>>> {
        let Some(value) = self.table.get(key) else {
            return Ok(None);
        };
        let items = match value {
            toml::Value::Array(items) => items.iter().map(scalar_text).collect(),
            other => scalar_text(other).map(|text| split_list(&text)),
        };
        items.map(Some).ok_or_else(|| {
            ConfigError::new(format!(
                "invalid value for {key} in config file {}: expected a list of values",
                self.path.display()
            ))
        })
    }

    /// A string value that must not be echoed in messages (the inline API key).
    pub(crate) fn secret(&self, key: &str) -> Result<Option<String>> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ConfigError::new(format!(
                "invalid value for {key} in config file {}: expected a string",
                self.path.display()
            ))),
        }
    }
}

/// Split a comma-separated list, dropping empty items.
pub(crate) fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn scalar_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(d) => Some(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

/// The known key nearest to a typo, if it is near enough to be a likely typo.
pub fn closest_key(key: &str) -> Option<&'static str> {
    OPTION_KEYS
        .iter()
        .chain(SECRET_KEYS)
        .map(|k| (strsim::levenshtein(key, k), *k))
        .filter(|(d, _)| *d <= 2.max(key.len() / 4))
        .min()
        .map(|(_, k)| k)
}

/// An io::Error's reason without the "(os error N)" noise.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Quote a path for a copy-pasteable shell command, only when needed.
pub(crate) fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+,@%=:".contains(&b));
    if plain && !text.is_empty() {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile> {
        ConfigFile::parse(PathBuf::from("/etc/p.toml"), text)
    }

    #[test]
    fn unknown_key_is_named_with_a_hint() {
        let err = parse("metdata_ttl = \"5s\"").unwrap_err().to_string();
        assert!(err.contains("unknown key `metdata_ttl`"), "{err}");
        assert!(err.contains("did you mean `metadata_ttl`"), "{err}");
        let err = parse("[server]\nport = 1").unwrap_err().to_string();
        assert!(err.contains("unknown key `server`"), "{err}");
        assert!(!err.contains("did you mean"), "{err}");
    }

    #[test]
    fn syntax_errors_never_quote_the_source() {
        let err = parse("threads = 4\napi_key = persona_sandbox_SECRET\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("SECRET"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn values_as_text() {
        let file = parse(
            "threads = 8\nprefetch = false\ncreated_after = 2024-01-02\n\
             status = [\"completed\", \"approved\"]\ninquiry_id = \"inq_a, inq_b\"\n\
             api_key = \"persona_sandbox_x\"",
        )
        .unwrap();
        assert_eq!(file.scalar("threads").unwrap().as_deref(), Some("8"));
        assert_eq!(file.scalar("prefetch").unwrap().as_deref(), Some("false"));
        assert_eq!(
            file.scalar("created_after").unwrap().as_deref(),
            Some("2024-01-02")
        );
        assert_eq!(
            file.list("status").unwrap(),
            Some(vec!["completed".to_string(), "approved".to_string()])
        );
        assert_eq!(
            file.list("inquiry_id").unwrap(),
            Some(vec!["inq_a".to_string(), "inq_b".to_string()])
        );
        assert!(file.scalar("status").is_err());
        assert_eq!(file.scalar("uid").unwrap(), None);
        assert!(!format!("{file:?}").contains("persona_sandbox_x"));
    }

    #[test]
    fn quoting_for_the_chmod_hint() {
        assert_eq!(shell_quote(Path::new("/x/key")), "/x/key");
        assert_eq!(shell_quote(Path::new("/my dir/it's")), r"'/my dir/it'\''s'");
    }
}
