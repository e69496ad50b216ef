//! Keeping secrets out of logs, errors and `inquiry.json`.
//!
//! Persona's signed file URLs carry their secret in two places: the `access_token` query
//! parameter (new form) and the `/files/<token>/` path segment (old form). Everything that
//! shows a URL to a person goes through [`redact_url`]; JSON bodies go through
//! [`redact_json`].

use serde_json::Value;

/// What a removed secret is replaced with.
pub const REDACTED: &str = "REDACTED";

/// A URL that is safe to log: every query value, any user info and the token segment of an
/// old-form `/files/<token>/<name>` path are replaced with `REDACTED`; the rest is kept so
/// the message still says which host and file were involved.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Not a URL we understand: still never echo a token that might be inside.
        return redact_text(url);
    };
    if parsed.cannot_be_a_base() {
        return redact_text(url);
    }
    if !parsed.username().is_empty() {
        let _ = parsed.set_username(REDACTED);
    }
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some(REDACTED));
    }
    if parsed.query().is_some() {
        let names: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
        if names.is_empty() {
            parsed.set_query(None);
        } else {
            let mut pairs = parsed.query_pairs_mut();
            pairs.clear();
            for name in &names {
                pairs.append_pair(name, REDACTED);
            }
        }
    }
    let path = redact_files_segment(parsed.path());
    parsed.set_path(&path);
    if parsed.fragment().is_some() {
        parsed.set_fragment(None);
    }
    parsed.to_string()
}

/// Replace the segment after `files/` in an old-form path (`/api/v1/files/<token>/<name>`).
fn redact_files_segment(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let mut out = Vec::with_capacity(segments.len());
    let mut i = 0;
    while i < segments.len() {
        out.push(segments[i]);
        // Only a token that is followed by a filename: `/files/<token>/<name>`.
        if segments[i] == "files" && i + 2 < segments.len() && !segments[i + 1].is_empty() {
            out.push(REDACTED);
            i += 2;
            continue;
        }
        i += 1;
    }
    out.join("/")
}

/// Redact tokens inside free text (a string that may merely contain a URL).
pub fn redact_text(text: &str) -> String {
    let mut out = redact_param_values(text, "access_token=");
    if out.contains("/files/") {
        out = out
            .split(char::is_whitespace)
            .map(|word| {
                if word.contains("://") {
                    redact_files_segment(word)
                } else {
                    word.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
    }
    out
}

/// Replace the value after each `marker` (up to `&`, `#`, whitespace or a quote).
fn redact_param_values(text: &str, marker: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(marker) {
        let value_start = pos + marker.len();
        out.push_str(&rest[..value_start]);
        let value = &rest[value_start..];
        let end = value
            .find(|c: char| c == '&' || c == '#' || c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(value.len());
        if end > 0 {
            out.push_str(REDACTED);
        }
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

fn looks_like_url(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}

/// A copy of `value` in which every URL-like string has its tokens removed.
pub fn redact_json(value: &Value) -> Value {
    match value {
        Value::String(s) if looks_like_url(s) => Value::String(redact_url(s)),
        Value::String(s) if s.contains("access_token=") => Value::String(redact_text(s)),
        Value::Array(items) => Value::Array(items.iter().map(redact_json).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact_json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn new_form_token_is_replaced_and_the_rest_kept() {
        let out = redact_url("https://files.withpersona.com/abc.jpg?access_token=SECRET123");
        assert_eq!(
            out,
            "https://files.withpersona.com/abc.jpg?access_token=REDACTED"
        );
    }

    #[test]
    fn every_query_value_and_user_info_is_replaced() {
        let out = redact_url("https://u:p@h.example/x.pdf?a=1&access_token=SECRET&sig=S2#frag");
        assert!(!out.contains("SECRET") && !out.contains("S2") && !out.contains(":p@"));
        assert!(out.contains("h.example/x.pdf"), "{out}");
        assert!(!out.contains("frag"));
    }

    #[test]
    fn old_form_token_segment_is_replaced() {
        let out = redact_url("https://withpersona.com/api/v1/files/TOK_SECRET/front.jpg");
        assert_eq!(
            out,
            "https://withpersona.com/api/v1/files/REDACTED/front.jpg"
        );
    }

    #[test]
    fn a_files_directory_without_token_is_left_alone() {
        let out = redact_url("https://h.example/files/report.pdf");
        assert_eq!(out, "https://h.example/files/report.pdf");
    }

    #[test]
    fn unparseable_url_still_loses_its_token() {
        let out = redact_url("not a url access_token=SECRET&x=1");
        assert!(!out.contains("SECRET"), "{out}");
        assert!(out.contains("access_token=REDACTED&x=1"), "{out}");
    }

    #[test]
    fn json_urls_are_redacted_at_any_depth() {
        let body = json!({
            "data": {"id": "inq_1", "attributes": {"name": "Jane"}},
            "included": [{
                "attributes": {
                    "front-photo": {"url": "https://files.withpersona.com/a.jpg?access_token=T1", "byte-size": 3},
                    "original-urls": ["https://withpersona.com/api/v1/files/T2/b.jpg"],
                    "note": "see https://files.withpersona.com/c.jpg?access_token=T3 please"
                }
            }]
        });
        let out = redact_json(&body).to_string();
        for secret in ["T1", "T2", "T3"] {
            assert!(!out.contains(secret), "{secret} left in {out}");
        }
        assert!(out.contains("Jane") && out.contains("a.jpg") && out.contains("b.jpg"));
        assert!(out.contains("\"byte-size\":3"));
    }
}
