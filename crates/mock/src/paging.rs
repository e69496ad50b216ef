//! The paging part of a JSON:API list query (`page[size]`, `page[after]`, `page[before]`)
//! and the `filter[...]` pairs its links repeat, shared by the inquiry and event listings.

/// Paging and filters as given, checked.
pub(crate) struct Paging {
    pub(crate) size: usize,
    /// Whether `page[size]` was given (then links repeat it).
    size_given: bool,
    pub(crate) after: Option<String>,
    pub(crate) before: Option<String>,
    /// `filter[...]` pairs as given, repeated in links.
    filters: Vec<(String, String)>,
}

impl Paging {
    pub(crate) fn new() -> Paging {
        Paging {
            size: 10,
            size_given: false,
            after: None,
            before: None,
            filters: Vec::new(),
        }
    }

    /// Take a `page[...]` pair; `false` when `key` is something else. A `filter[...]` pair is
    /// kept for the links (its meaning is the caller's).
    pub(crate) fn take(&mut self, key: &str, value: &str) -> Result<bool, String> {
        match key {
            "page[size]" => {
                self.size = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or("page[size] must be an integer from 1 to 100")?;
                self.size_given = true;
            }
            "page[after]" => self.after = Some(value.to_string()),
            "page[before]" => self.before = Some(value.to_string()),
            k if k.starts_with("filter[") => {
                self.filters.push((key.to_string(), value.to_string()));
                return Ok(false);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// After every pair was taken: the combinations that are refused.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.after.is_some() && self.before.is_some() {
            return Err("page[after] and page[before] cannot be combined".into());
        }
        Ok(())
    }

    /// A relative, percent-encoded link to the page next to cursor `id` on `path`.
    pub(crate) fn link(&self, path: &str, page_key: &str, id: &str) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair(page_key, id);
        if self.size_given {
            s.append_pair("page[size]", &self.size.to_string());
        }
        for (k, v) in &self.filters {
            s.append_pair(k, v);
        }
        format!("{path}?{}", s.finish())
    }
}

/// The items of a comma-separated filter value.
pub(crate) fn items(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}
