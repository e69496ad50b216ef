//! Turning `mockfile:<key>` placeholders into URLs a client can fetch, at send time.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::data::FILE_URL_PLACEHOLDER;
use super::state::{State, Store};
use super::token::TokenKind;

/// Characters kept as they are in a filename path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Replace every placeholder in `value` by a fresh URL of the requested form; a placeholder
/// whose file is gone (redacted) or unknown becomes `null`.
pub fn mint_urls(state: &State, store: &Store, value: &mut Value, legacy: bool) {
    let expires = state
        .url_now_ms()
        .saturating_add(state.runtime.read().file_url_lifetime_ms);
    walk(value, &mut |s: &str| {
        let key = s.strip_prefix(FILE_URL_PLACEHOLDER)?;
        let Some(file) = store.file(key) else {
            return Some(Value::Null);
        };
        let name = encode_segment(&file.filename);
        Some(Value::String(if legacy {
            let token = state.signer.mint(TokenKind::Legacy, key, 0);
            state.record_token(&token);
            format!("{}/files/{token}/{name}", state.api_base)
        } else {
            let token = state.signer.mint(TokenKind::Signed, key, expires);
            state.record_token(&token);
            format!("{}/{name}?access_token={token}", state.files_base)
        }))
    });
}

/// Visit every string of `value`; where `replace` returns a value, put it in place.
pub fn walk(value: &mut Value, replace: &mut impl FnMut(&str) -> Option<Value>) {
    match value {
        Value::String(s) => {
            if let Some(new) = replace(s) {
                *value = new;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| walk(v, replace)),
        Value::Object(map) => map.values_mut().for_each(|v| walk(v, replace)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_replaces_nested_strings_only_where_asked() {
        let mut v = serde_json::json!({"a": ["x", {"b": "mockfile:k"}], "c": 3});
        walk(&mut v, &mut |s| {
            (s == "mockfile:k").then(|| Value::from("url"))
        });
        assert_eq!(v, serde_json::json!({"a": ["x", {"b": "url"}], "c": 3}));
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("a b/c.jpg"), "a%20b%2Fc.jpg");
    }
}
