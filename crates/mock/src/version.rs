//! What the `Persona-Version` header changes in the mock's answers.

/// Versions Persona documents; anything else is treated as `DEFAULT`.
const KNOWN: &[&str] = &[
    "2020-05-18",
    "2021-02-21",
    "2021-07-05",
    "2021-08-18",
    "2022-09-01",
    "2023-01-05",
    "2025-10-27",
    "2025-12-08",
];
const DEFAULT: &str = "2023-01-05";
/// First version with signed URLs on the files host.
const SIGNED_URLS_FROM: &str = "2023-01-05";
/// First version that includes nothing unless `include=` asks.
const NOTHING_INCLUDED_FROM: &str = "2025-10-27";
/// First version whose inquiry schema has no top-level PII attributes (only `fields`).
const FIELDS_ONLY_FROM: &str = "2025-12-08";

/// A known API version (dates in `YYYY-MM-DD` compare correctly as strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersion(&'static str);

impl ApiVersion {
    /// The version a request asked for; missing or unknown → 2023-01-05.
    pub fn from_header(value: Option<&str>) -> ApiVersion {
        let asked = value.map(str::trim).unwrap_or(DEFAULT);
        ApiVersion(
            KNOWN
                .iter()
                .copied()
                .find(|v| *v == asked)
                .unwrap_or(DEFAULT),
        )
    }

    /// Whether file URLs take the old keyed form `<api>/files/<token>/<name>`.
    pub fn legacy_file_urls(self) -> bool {
        self.0 < SIGNED_URLS_FROM
    }

    /// Whether inquiry attributes leave out the top-level copies of `fields` (`name-first`…).
    pub fn fields_only(self) -> bool {
        self.0 >= FIELDS_ONLY_FROM
    }

    /// Relationships included when the request has no `include=` parameter.
    pub fn default_includes(self) -> &'static [&'static str] {
        if self.0 < NOTHING_INCLUDED_FROM {
            &["documents"]
        } else {
            &[]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_choose_url_form_and_default_includes() {
        let old = ApiVersion::from_header(Some("2022-09-01"));
        assert!(old.legacy_file_urls());
        assert_eq!(old.default_includes(), ["documents"]);
        let current = ApiVersion::from_header(None);
        assert!(!current.legacy_file_urls());
        let unknown = ApiVersion::from_header(Some("1999-01-01"));
        assert_eq!(unknown, current);
        let new = ApiVersion::from_header(Some("2025-12-08"));
        assert!(new.default_includes().is_empty());
        assert!(!new.legacy_file_urls());
    }
}
