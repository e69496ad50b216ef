//! Persona API versions (the `Persona-Version` header). [`PERSONA_VERSIONS`] is the
//! `api-version` enum of the official spec, checked by a unit test against every spec bundle
//! in the repository; `--persona-version` takes only these.

/// Every API version Persona publishes, newest first.
///
/// From Persona's official OpenAPI bundle: the `enum` of `components.schemas.api-version`,
/// the schema of the `Persona-Version` header parameter (`persona-version-header`), identical
/// in the 2023-01-05 and 2025-12-08 bundles. A unit test checks this list against the spec.
pub const PERSONA_VERSIONS: &[&str] = &[
    "2025-12-08",
    "2025-10-27",
    "2023-01-05",
    "2022-09-01",
    "2021-08-18",
    "2021-07-05",
    "2021-02-21",
    "2020-05-18",
];

/// The version personafs sends unless told otherwise: the one that introduced signed file
/// URLs on the files host (PERSONA_API.md), and whose `included` defaults personafs relies on.
pub const DEFAULT_PERSONA_VERSION: &str = "2023-01-05";

/// A `Persona-Version` value, refused unless Persona publishes it.
pub fn parse_persona_version(text: &str) -> Result<String, String> {
    let text = text.trim();
    if PERSONA_VERSIONS.contains(&text) {
        return Ok(text.to_string());
    }
    let shown: String = text.chars().take(40).collect();
    Err(format!(
        "unknown Persona API version {shown:?}; Persona publishes {}",
        PERSONA_VERSIONS.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn known_versions_are_accepted_and_others_refused_naming_the_list() {
        assert_eq!(parse_persona_version("2023-01-05").unwrap(), "2023-01-05");
        assert_eq!(parse_persona_version(" 2025-12-08 ").unwrap(), "2025-12-08");
        assert!(PERSONA_VERSIONS.contains(&DEFAULT_PERSONA_VERSION));
        for bad in ["2023-01-06", "", "latest", "2023-1-5", "2023-01-05x"] {
            let err = parse_persona_version(bad).unwrap_err();
            assert!(
                err.contains("2023-01-05") && err.contains("2020-05-18"),
                "{err}"
            );
        }
        let err = parse_persona_version(&"9".repeat(500)).unwrap_err();
        assert!(err.len() < 250, "the bad value is shortened: {err}");
    }

    /// The list matches `components.schemas.api-version.enum` of every spec bundle present.
    #[test]
    fn versions_match_the_official_spec() {
        let dir = std::env::var_os("PERSONAFS_OPENAPI_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../../shared/persona-openapi"
                ))
            });
        let mut checked = 0;
        for name in ["2023-01-05.yaml", "2025-12-08.yaml"] {
            let path = dir.join(name);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let spec: serde_yaml::Value = serde_yaml::from_str(&text).expect("spec is YAML");
            let versions: Vec<&str> = spec["components"]["schemas"]["api-version"]["enum"]
                .as_sequence()
                .expect("api-version has an enum")
                .iter()
                .map(|v| v.as_str().expect("a string version"))
                .collect();
            assert_eq!(versions, PERSONA_VERSIONS, "{}", path.display());
            let header = &spec["components"]["parameters"]["persona-version-header"];
            assert_eq!(header["name"].as_str(), Some("Persona-Version"));
            assert_eq!(
                header["schema"]["$ref"].as_str(),
                Some("#/components/schemas/api-version")
            );
            checked += 1;
        }
        if checked == 0 {
            assert!(
                std::env::var_os("CI").is_none(),
                "the official spec is missing from {}, and CI must run this test",
                dir.display()
            );
            eprintln!(
                "SKIPPED: no spec in {}; set PERSONAFS_OPENAPI_DIR to check the version list",
                dir.display()
            );
        }
    }
}
