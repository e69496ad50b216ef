//! `POST /api/v1/inquiries/search`, as both spec versions describe it: a query tree, a sort,
//! cursor pages (`page[...]` in the query string and/or the body's `page`; links to POST again
//! with the original body), `fields[...]`, and an index that lags writes by `search_lag`.

mod history;
mod query;
mod select;

pub use history::SearchIndex;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::respond::{bad_request, json_response};
use super::state::{State, bump, now_ms};
use super::urls::mint_urls;
use super::version::ApiVersion;
use query::Node;
use select::{Search, Sort, SortAttr, Source};

const SEARCH_PATH: &str = "/api/v1/inquiries/search";

/// A search request, checked.
#[derive(Debug)]
struct SearchRequest {
    query: Option<Node>,
    sort: Sort,
    size: usize,
    after: Option<String>,
    before: Option<String>,
    /// `fields[type]` → attribute names kept (sparse fieldsets).
    fields: Vec<(String, String)>,
}

fn page_size(value: &Value) -> Result<usize, String> {
    value
        .as_u64()
        .filter(|n| (1..=100).contains(n))
        .map(|n| n as usize)
        .ok_or_else(|| "page size must be an integer from 1 to 100".into())
}

impl SearchRequest {
    /// The body's fields, then the query string's `page[...]` over the body's `page` (a link
    /// carries the cursor and size, and is POSTed with the original body).
    fn parse(raw_query: Option<&str>, body: &[u8]) -> Result<SearchRequest, String> {
        let body: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice(body) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err("the body must be a JSON object".into()),
                Err(e) => return Err(format!("the body is not JSON: {e}")),
            }
        };
        if let Some(key) = body
            .keys()
            .find(|k| !["query", "sort", "page"].contains(&k.as_str()))
        {
            return Err(format!(
                "unknown key {key:?} in the body (query, sort, page)"
            ));
        }
        let query = body.get("query").map(query::parse).transpose()?;
        let sort = match body.get("sort") {
            None => Sort {
                attr: SortAttr::CreatedAt,
                descending: true,
            },
            Some(sort) => parse_sort(sort)?,
        };
        let mut request = SearchRequest {
            query,
            sort,
            size: 10,
            after: None,
            before: None,
            fields: Vec::new(),
        };
        match body.get("page") {
            None => {}
            Some(Value::Object(page)) => {
                for (key, value) in page {
                    let cursor = || match value {
                        Value::String(s) => Ok(Some(s.clone())),
                        _ => Err(format!("page.{key} must be a string")),
                    };
                    match key.as_str() {
                        "size" => request.size = page_size(value)?,
                        "after" => request.after = cursor()?,
                        "before" => request.before = cursor()?,
                        _ => return Err(format!("unknown key {key:?} in page")),
                    }
                }
            }
            Some(_) => return Err("page must be an object".into()),
        }
        let pairs = url::form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes());
        let (mut after, mut before) = (None, None);
        for (key, value) in pairs {
            match &*key {
                "page[size]" => {
                    let n = value.parse::<u64>().map(Value::from).unwrap_or(Value::Null);
                    request.size = page_size(&n)?;
                }
                "page[after]" => after = Some(value.into_owned()),
                "page[before]" => before = Some(value.into_owned()),
                k if k.starts_with("page[") => return Err(format!("{k} is not a page parameter")),
                k if k.starts_with("fields[") && k.ends_with(']') => {
                    request.fields.push((k.to_string(), value.into_owned()))
                }
                _ => {}
            }
        }
        if after.is_some() || before.is_some() {
            (request.after, request.before) = (after, before);
        }
        if request.after.is_some() && request.before.is_some() {
            return Err("page after and before cannot be combined".into());
        }
        Ok(request)
    }

    /// A relative, percent-encoded link to the page next to cursor `id`.
    fn link(&self, page_key: &str, id: &str) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair(page_key, id);
        s.append_pair("page[size]", &self.size.to_string());
        for (k, v) in &self.fields {
            s.append_pair(k, v);
        }
        format!("{SEARCH_PATH}?{}", s.finish())
    }

    /// Keep only the attributes `fields[<type>]` names.
    fn sparse(&self, item: &mut Value) {
        let Some(kind) = item["type"].as_str().map(String::from) else {
            return;
        };
        let key = format!("fields[{kind}]");
        let Some((_, names)) = self.fields.iter().find(|(k, _)| *k == key) else {
            return;
        };
        let names: Vec<&str> = names.split(',').map(str::trim).collect();
        if let Some(attributes) = item["attributes"].as_object_mut() {
            attributes.retain(|name, _| names.contains(&name.as_str()));
        }
    }
}

fn parse_sort(sort: &Value) -> Result<Sort, String> {
    let Value::Object(sort) = sort else {
        return Err("sort must be an object {attribute, direction}".into());
    };
    if let Some(key) = sort
        .keys()
        .find(|k| !["attribute", "direction"].contains(&k.as_str()))
    {
        return Err(format!("unknown key {key:?} in sort"));
    }
    let attr = match sort.get("attribute") {
        Some(Value::String(s)) if s == "created_at" => SortAttr::CreatedAt,
        Some(Value::String(s)) if s == "updated_at" => SortAttr::UpdatedAt,
        Some(Value::String(s)) if s == "status" => SortAttr::Status,
        Some(other) => {
            return Err(format!(
                "sort attribute {other} is not one of created_at, updated_at, status"
            ));
        }
        None => return Err("sort needs attribute".into()),
    };
    let descending = match sort.get("direction") {
        Some(Value::String(s)) if s == "desc" => true,
        Some(Value::String(s)) if s == "asc" => false,
        Some(other) => return Err(format!("sort direction {other} is not asc or desc")),
        None => return Err("sort needs direction".into()),
    };
    Ok(Sort { attr, descending })
}

/// `POST /api/v1/inquiries/search`
pub async fn post_search(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    bump(&state.stats.api_search);
    if state.runtime().refuse_search {
        return crate::respond::error(
            axum::http::StatusCode::FORBIDDEN,
            "Forbidden",
            Some("This API key does not have access to search inquiries"),
        );
    }
    let request = match SearchRequest::parse(raw.as_deref(), &body) {
        Ok(r) => r,
        Err(details) => return bad_request(&details),
    };
    let lag = state.runtime().search_lag_ms;
    let cutoff = (now_ms() as i64).saturating_sub(lag as i64);
    let store = state.store.read();
    let search = Search::new(&store, request.query.as_ref(), request.sort, cutoff);
    let cursor = |id: &String| {
        (store.position(id))
            .map(|p| search.place_of(p))
            .ok_or_else(|| format!("page cursor {id} is not a known inquiry"))
    };
    let size = request.size;
    let (hits, has_prev, has_next) = match (&request.after, &request.before) {
        (Some(id), _) => {
            let place = match cursor(id) {
                Ok(p) => p,
                Err(e) => return bad_request(&e),
            };
            let mut hits = search.page(Some(place), size + 1, false);
            let more = hits.len() > size;
            hits.truncate(size);
            let earlier =
                (hits.first()).is_some_and(|h| !search.page(Some(h.place), 1, true).is_empty());
            (hits, earlier, more)
        }
        (None, Some(id)) => {
            let place = match cursor(id) {
                Ok(p) => p,
                Err(e) => return bad_request(&e),
            };
            let mut hits = search.page(Some(place), size + 1, true);
            let more = hits.len() > size;
            hits.truncate(size);
            hits.reverse();
            let later =
                (hits.last()).is_some_and(|h| !search.page(Some(h.place), 1, false).is_empty());
            (hits, more, later)
        }
        (None, None) => {
            let mut hits = search.page(None, size + 1, false);
            let more = hits.len() > size;
            hits.truncate(size);
            (hits, false, more)
        }
    };
    let link = |flag: bool, key: &str, position: Option<u64>| match position {
        Some(p) if flag => Value::String(request.link(key, &store.id_at(p))),
        _ => Value::Null,
    };
    let prev = link(has_prev, "page[before]", hits.first().map(|h| h.position));
    let next = link(has_next, "page[after]", hits.last().map(|h| h.position));
    let version =
        ApiVersion::from_header(headers.get("persona-version").and_then(|v| v.to_str().ok()));
    let data: Vec<Value> = (hits.iter())
        .map(|hit| {
            let mut item = match &hit.source {
                Source::Generated(_) => store.at(hit.position).data.clone(),
                Source::Held(inquiry, _) => inquiry.data.clone(),
            };
            if version.fields_only()
                && let Some(attributes) = item["attributes"].as_object_mut()
            {
                attributes.retain(|name, _| !crate::redaction::PII.contains(&name.as_str()));
            }
            request.sparse(&mut item);
            item
        })
        .collect();
    let mut body = json!({ "data": data, "links": { "prev": prev, "next": next } });
    mint_urls(&state, &store, &mut body, version.legacy_file_urls());
    json_response(StatusCode::OK, &body)
}
