//! The HTTP client for Persona's API host and files host.
//!
//! Safety rules that shape this file: the API key goes only to the API host (and to old-form
//! file URLs, which live there); a file URL on any host not configured is refused before any
//! request; no message carries the key, a token or a full signed URL.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use url::Url;

use super::model::{error_title_details, inquiry_id_problem, parse_inquiry, parse_list_page};
use super::query::filter_params;
use super::ratelimit::{Budget, BudgetPolicy, RateHeaders, RateLimiter};
use super::retry::{RetryPolicy, Transient, transient_status, transient_transport};
use super::{EventPage, EventsFrom, InquiryPage, ListFilters, PersonaApi, RetrievedInquiry};
use crate::body::{Deadline, read_capped, read_error_body};
use crate::error::Host;
use crate::redact::redact_text;
use crate::{Error, Result};

/// The longest an error body is waited for: it only adds words to the message.
pub(super) const ERROR_BODY_WAIT: Duration = Duration::from_secs(5);

/// The Persona API key. Its Debug and Display never show it.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }
    /// The key itself, for the Authorization header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Everything the client is configured with.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// E.g. `https://withpersona.com/api/v1` (the mock's `http://127.0.0.1:PORT/api/v1`).
    pub api_base: String,
    pub api_key: ApiKey,
    /// `Persona-Version` header.
    pub persona_version: String,
    pub connect_timeout: Duration,
    /// For an API request as a whole; for a download, the longest wait for the response
    /// head or for the next chunk of the body.
    pub request_timeout: Duration,
    /// `host` or `host:port` that file URLs may point to. A name without a port matches the
    /// scheme's default port only.
    pub allowed_file_hosts: Vec<String>,
    /// Retries after the first attempt, for every request kind (see `retry::RetryPolicy`).
    pub max_retries: u32,
    pub retry_base_delay: Duration,
    /// The longest wait the server can impose: `RateLimit-Reset` after a 429, `Retry-After`
    /// after a 429 or 5xx, are obeyed up to this.
    pub max_rate_limit_wait: Duration,
    /// How much of Persona's request budget this client may use (`ratelimit`).
    pub budget: BudgetPolicy,
    /// The deadline of one operation (`--io-timeout`). An API request ends within it as a
    /// whole: every attempt, pause, rate-limit wait and byte of the body. A download must
    /// gain `min_transfer_rate` × this in each such period, across its attempts.
    pub operation_timeout: Duration,
    /// The largest API body read (`--max-response-size`); a larger one is an error, never
    /// buffered.
    pub max_response_size: u64,
    /// Bytes per second under which a download counts as stalled (see `operation_timeout`).
    pub min_transfer_rate: u64,
    /// Where retries, 429s and the server's remaining budget are counted.
    pub telemetry: Option<Arc<crate::telemetry::Telemetry>>,
}

pub use crate::version::DEFAULT_PERSONA_VERSION;
/// Persona's largest page.
pub const MAX_PAGE_SIZE: u32 = 100;
/// The default `max_response_size`. A real inquiry with every document and verification
/// included is well under 1 MiB and a 100-inquiry list page about 100 KiB: 16 MiB is over
/// sixteen times that, yet bounds what one answer costs once parsed (a body of tiny JSON
/// objects takes some 40 times its size in memory: about 600 MiB for 15 MiB).
pub const DEFAULT_MAX_RESPONSE_SIZE: u64 = 16 << 20;
/// The default `min_transfer_rate`: far below any working link, far above a trickle.
pub const DEFAULT_MIN_TRANSFER_RATE: u64 = 1024;

impl ClientConfig {
    /// Defaults: version [`DEFAULT_PERSONA_VERSION`], 10 s connect, 60 s request, 60 s per
    /// operation, 6 retries from 500 ms, half of Persona's request budget, 16 MiB bodies, 1 KiB/s minimum
    /// download rate, file hosts derived from `api_base` (see [`default_file_hosts`]).
    pub fn new(api_base: impl Into<String>, api_key: ApiKey) -> Self {
        let api_base = api_base.into();
        ClientConfig {
            allowed_file_hosts: default_file_hosts(&api_base),
            api_base,
            api_key,
            persona_version: DEFAULT_PERSONA_VERSION.to_string(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_retries: 6,
            retry_base_delay: Duration::from_millis(500),
            max_rate_limit_wait: Duration::from_secs(60),
            budget: BudgetPolicy::default(),
            operation_timeout: Duration::from_secs(60),
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
            min_transfer_rate: DEFAULT_MIN_TRANSFER_RATE,
            telemetry: None,
        }
    }

    /// The one retry policy every request of the client follows.
    /// A fresh count of attempts for one request, counted in the telemetry.
    pub fn attempts(&self) -> crate::retry::Attempts {
        self.retry_policy().start().counted(self.telemetry.clone())
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.max_retries,
            base_delay: self.retry_base_delay,
            max_server_wait: self.max_rate_limit_wait,
        }
    }
}

/// The API host, plus Persona's files host and its other API host when the API base is one
/// of Persona's (`files.<domain>` for another `api.<domain>` or `<domain>`).
pub fn default_file_hosts(api_base: &str) -> Vec<String> {
    let Ok(url) = Url::parse(api_base) else {
        return Vec::new();
    };
    let Some(host) = url.host_str() else {
        return Vec::new();
    };
    let api = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let mut hosts = vec![api];
    let domain = host.strip_prefix("api.").unwrap_or(host);
    if url
        .host()
        .is_some_and(|h| matches!(h, url::Host::Domain(_)))
        && domain.contains('.')
    {
        hosts.push(format!("files.{domain}"));
        if domain == "withpersona.com" {
            hosts.push("withpersona.com".into());
            hosts.push("api.withpersona.com".into());
        }
    }
    let mut unique = Vec::new();
    for h in hosts {
        if !unique.contains(&h) {
            unique.push(h);
        }
    }
    unique
}

/// One entry of `allowed_file_hosts`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HostRule {
    host: String,
    port: Option<u16>,
}

impl HostRule {
    fn parse(entry: &str) -> Result<HostRule> {
        let url = Url::parse(&format!("http://{}", entry.trim()))
            .ok()
            .filter(|u| u.path() == "/" && u.query().is_none() && u.username().is_empty());
        let url = url.ok_or_else(|| Error::Config(format!("invalid file host {entry:?}")))?;
        Ok(HostRule {
            host: url.host_str().unwrap_or_default().to_ascii_lowercase(),
            port: url.port(),
        })
    }

    fn matches(&self, url: &Url) -> bool {
        let host_ok = url
            .host_str()
            .is_some_and(|h| h.eq_ignore_ascii_case(&self.host));
        let port_ok = match self.port {
            Some(port) => url.port_or_known_default() == Some(port),
            None => url.port().is_none(),
        };
        host_ok && port_ok
    }
}

/// How a file URL is fetched.
#[derive(Debug, Clone)]
pub(super) struct FileTarget {
    pub url: Url,
    pub host: Host,
    /// Old-form URL on the API host: the API key goes along.
    pub keyed: bool,
}

/// The Persona client. Cheap to clone; clones share connections and the request budget.
#[derive(Clone)]
pub struct HttpClient {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub http: reqwest::Client,
    pub config: ClientConfig,
    /// `api_base` with a trailing slash, for joining.
    pub api_base: Url,
    pub file_hosts: Vec<HostRule>,
    pub budget: Arc<dyn Budget>,
    /// Who answered: the ids of the last API answer that named them.
    pub identity: parking_lot::Mutex<Option<Identity>>,
}

/// The organization and environment a key belongs to, as Persona names them on every answer
/// (`Persona-Organization-Id`, `Persona-Environment-Id`). Ids, not secrets: what is shared
/// between mounts is keyed by them, never by the API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub organization: String,
    pub environment: String,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client with its own local budget (`budget`).
    pub fn new(config: ClientConfig) -> Result<HttpClient> {
        let budget = Arc::new(RateLimiter::new(config.budget));
        Self::with_budget(config, budget)
    }

    /// A client whose API requests draw from `budget` (e.g. a `SharedBudget` that every
    /// process of the organization shares).
    pub fn with_budget(config: ClientConfig, budget: Arc<dyn Budget>) -> Result<HttpClient> {
        let mut api_base = Url::parse(&config.api_base)
            .map_err(|e| Error::Config(format!("invalid API base URL: {e}")))?;
        if !matches!(api_base.scheme(), "http" | "https") || api_base.host_str().is_none() {
            return Err(Error::Config(
                "the API base URL must be http(s)://host/…".into(),
            ));
        }
        if !api_base.path().ends_with('/') {
            let path = format!("{}/", api_base.path());
            api_base.set_path(&path);
        }
        if config.api_key.expose().is_empty() {
            return Err(Error::Config("the API key is empty".into()));
        }
        HeaderValue::from_str(&format!("Bearer {}", config.api_key.expose()))
            .map_err(|_| Error::Config("the API key contains invalid characters".into()))?;
        HeaderValue::from_str(&config.persona_version)
            .map_err(|_| Error::Config("invalid Persona-Version".into()))?;
        let mut file_hosts = config
            .allowed_file_hosts
            .iter()
            .map(|h| HostRule::parse(h))
            .collect::<Result<Vec<_>>>()?;
        // Old-form file URLs live on the API host, so it is always allowed.
        file_hosts.push(HostRule {
            host: api_base.host_str().unwrap_or_default().to_ascii_lowercase(),
            port: api_base.port(),
        });

        let redirect_rules = file_hosts.clone();
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else if redirect_rules.iter().any(|r| r.matches(attempt.url())) {
                // reqwest drops Authorization when the host changes.
                attempt.follow()
            } else {
                attempt.error("redirect to a host that is not allowed")
            }
        });
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(config.connect_timeout)
            .redirect(redirect)
            // A Referer after a redirect would repeat the signed URL, token and all.
            .referer(false)
            .user_agent(concat!("personafs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpClient {
            inner: Arc::new(Inner {
                http,
                budget,
                api_base,
                file_hosts,
                config,
                identity: parking_lot::Mutex::new(None),
            }),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The organization and environment of the key, once an API answer named them (`None`
    /// before the first answer, or from a server that does not send the headers).
    pub fn identity(&self) -> Option<Identity> {
        self.inner.identity.lock().clone()
    }

    fn api_url(&self, path: &str) -> Result<Url> {
        self.inner
            .api_base
            .join(path)
            .map_err(|e| Error::Config(format!("cannot build an API URL: {e}")))
    }

    /// Headers every API request carries.
    fn api_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let config = &self.inner.config;
        // Both were validated in `new`.
        if let Ok(mut auth) = HeaderValue::from_str(&format!("Bearer {}", config.api_key.expose()))
        {
            auth.set_sensitive(true);
            headers.insert(AUTHORIZATION, auth);
        }
        if let Ok(v) = HeaderValue::from_str(&config.persona_version) {
            headers.insert("Persona-Version", v);
        }
        headers.insert("Key-Inflection", HeaderValue::from_static("kebab"));
        headers.insert("Accept", HeaderValue::from_static("application/json"));
        headers
    }

    /// Decide whether and how a file URL may be fetched, before any request.
    pub(super) fn file_target(&self, url: &str) -> Result<FileTarget> {
        let parsed = Url::parse(url).map_err(|_| Error::InvalidResponse {
            context: "file URL".into(),
            message: "not a valid URL".into(),
        })?;
        let host_port = match (parsed.host_str(), parsed.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => String::new(),
        };
        let api = &self.inner.api_base;
        // Plain http only where the API itself is plain http (a local mock).
        let scheme_ok = parsed.scheme() == "https" || parsed.scheme() == api.scheme();
        if !matches!(parsed.scheme(), "http" | "https") || !scheme_ok {
            return Err(Error::ForeignHost { host: host_port });
        }
        let same_origin = parsed.scheme() == api.scheme()
            && parsed.host_str().map(str::to_ascii_lowercase)
                == api.host_str().map(str::to_ascii_lowercase)
            && parsed.port_or_known_default() == api.port_or_known_default();
        let files_prefix = format!("{}files/", api.path());
        if same_origin && parsed.path().starts_with(&files_prefix) {
            return Ok(FileTarget {
                url: parsed,
                host: Host::Api,
                keyed: true,
            });
        }
        if !self.inner.file_hosts.iter().any(|r| r.matches(&parsed)) {
            return Err(Error::ForeignHost { host: host_port });
        }
        Ok(FileTarget {
            host: if same_origin { Host::Api } else { Host::Files },
            url: parsed,
            keyed: false,
        })
    }

    /// One API GET under the retry policy; the body of the 2xx answer. The whole of it —
    /// budget, attempts, pauses, bodies — ends within `operation_timeout`.
    async fn api_get(&self, context: &str, url: Url) -> Result<Bytes> {
        self.api_request(context, url, None).await
    }

    /// As [`HttpClient::api_get`], a POST of a JSON body when `json` is given (a search: it
    /// changes nothing, so it is retried as a GET is).
    pub(super) async fn api_request(
        &self,
        context: &str,
        url: Url,
        json: Option<&Bytes>,
    ) -> Result<Bytes> {
        let config = &self.inner.config;
        let deadline = Deadline::after(config.operation_timeout);
        let mut attempts = config.attempts();
        loop {
            let waiting = std::time::Instant::now();
            let acquired = tokio::time::timeout_at(deadline.at, self.inner.budget.acquire()).await;
            if let Some(t) = &config.telemetry {
                t.budget_waited(waiting.elapsed());
            }
            if acquired.is_err() {
                return Err(deadline.passed(context, "waiting for the request budget"));
            }
            let request = match json {
                None => self.inner.http.get(url.clone()),
                Some(body) => (self.inner.http.post(url.clone()))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone()),
            };
            let request = request.headers(self.api_headers()).send();
            let until = deadline
                .at
                .min(tokio::time::Instant::now() + config.request_timeout);
            let sent = match tokio::time::timeout_at(until, request).await {
                Ok(sent) => sent,
                Err(_) if deadline.remaining().is_zero() => {
                    return Err(deadline.passed(context, "waiting for an answer"));
                }
                Err(_) => {
                    let err = Error::Network {
                        context: context.to_string(),
                        message: "timed out: no answer".into(),
                    };
                    attempts
                        .pause_until(err, Transient::Timeout, false, Some(deadline.at))
                        .await?;
                    continue;
                }
            };
            let resp = match sent {
                Ok(resp) => resp,
                Err(e) => {
                    let failure = transient_transport(&e);
                    let err = network_error(context, e);
                    match failure {
                        Some(failure) => {
                            attempts
                                .pause_until(err, failure, false, Some(deadline.at))
                                .await?
                        }
                        None => return Err(err),
                    }
                    continue;
                }
            };
            let headers = resp.headers().clone();
            self.observe_rate_limit(&headers).await;
            let status = resp.status();
            let (err, failure) = if status.is_success() {
                let body = read_capped(
                    resp,
                    config.max_response_size,
                    &deadline,
                    config.request_timeout,
                    context,
                )
                .await;
                match body {
                    Ok(body) => return Ok(body),
                    // Too large is final; out of time is the operation's end.
                    Err(e)
                        if matches!(e, Error::TooLarge { .. })
                            || deadline.remaining().is_zero() =>
                    {
                        return Err(e);
                    }
                    // The body was cut: the request goes again.
                    Err(e) => (e, Some(Transient::ShortBody)),
                }
            } else {
                let body = read_error_body(resp, deadline.remaining().min(ERROR_BODY_WAIT)).await;
                let err = http_error(Host::Api, status, &headers, &body, context);
                (err, transient_status(status, &headers))
            };
            match failure {
                Some(failure) => {
                    attempts
                        .pause_until(err, failure, false, Some(deadline.at))
                        .await?
                }
                None => return Err(err),
            }
        }
    }

    async fn observe_rate_limit(&self, headers: &HeaderMap) {
        let id = |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        if let (Some(organization), Some(environment)) =
            (id("Persona-Organization-Id"), id("Persona-Environment-Id"))
        {
            *self.inner.identity.lock() = Some(Identity {
                organization,
                environment,
            });
        }
        if let (Some(t), Some(left)) = (
            &self.inner.config.telemetry,
            header_u64(headers, "RateLimit-Remaining"),
        ) {
            t.rate_budget_left
                .store(left, std::sync::atomic::Ordering::Relaxed);
        }
        let policy = headers
            .get("RateLimit-Policy")
            .and_then(|v| v.to_str().ok())
            .and_then(RateHeaders::policy_window);
        self.inner
            .budget
            .observe(RateHeaders {
                limit: header_u64(headers, "RateLimit-Limit"),
                remaining: header_u64(headers, "RateLimit-Remaining"),
                reset_secs: header_u64(headers, "RateLimit-Reset"),
                window_secs: policy,
            })
            .await;
    }

    /// A request to a file URL (no retries here): the key only for old-form URLs.
    pub(super) fn file_request(
        &self,
        method: Method,
        target: &FileTarget,
    ) -> reqwest::RequestBuilder {
        let mut req = self.inner.http.request(method, target.url.clone());
        if target.keyed {
            req = req.headers(self.api_headers());
        }
        req
    }
}

pub(super) fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

pub(super) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?.trim();
    (!v.is_empty() && v.len() <= 200).then(|| redact_text(v))
}

/// `Error::Http` from a status, Persona's error body and the `Request-Id` header.
pub(super) fn http_error(
    host: Host,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    context: &str,
) -> Error {
    let (title, details) = error_title_details(body);
    Error::Http {
        host,
        status: status.as_u16(),
        title,
        details,
        request_id: header_str(headers, "Request-Id"),
        context: context.to_string(),
    }
}

/// `Error::Network` without the URL reqwest would put in its message.
pub(super) fn network_error(context: &str, e: reqwest::Error) -> Error {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "connection dropped while reading the body"
    } else if e.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    };
    let mut message = kind.to_string();
    let e = e.without_url();
    let mut source = std::error::Error::source(&e);
    let mut root = None;
    while let Some(s) = source {
        root = Some(s.to_string());
        source = s.source();
    }
    if let Some(root) = root {
        message = format!("{message}: {}", redact_text(&root));
    }
    Error::Network {
        context: context.to_string(),
        message,
    }
}

#[async_trait]
impl PersonaApi for HttpClient {
    async fn list_page(
        &self,
        filters: &ListFilters,
        after: Option<&str>,
        page_size: u32,
    ) -> Result<InquiryPage> {
        let mut url = self.api_url("inquiries")?;
        let filter_params = filter_params(filters)?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("page[size]", &page_size.clamp(1, MAX_PAGE_SIZE).to_string());
            if let Some(after) = after {
                q.append_pair("page[after]", after);
            }
            for (name, value) in filter_params {
                q.append_pair(name, &value);
            }
        }
        let context = "list inquiries";
        let body = self.api_get(context, url).await?;
        parse_list_page(context, &body)
    }

    async fn retrieve_inquiry(&self, id: &str) -> Result<RetrievedInquiry> {
        // Only a well-formed id goes into the URL path.
        if let Some(why) = inquiry_id_problem(id) {
            return Err(Error::NotFound(format!(
                "{:?} is not an inquiry id: {why}",
                id.chars().take(64).collect::<String>()
            )));
        }
        let mut url = self.api_url(&format!("inquiries/{id}"))?;
        url.query_pairs_mut()
            .append_pair("include", "documents,selfies,verifications");
        let context = format!("retrieve inquiry {id}");
        // URL lifetimes count from the request: take the time before it is sent.
        let fetched_at = SystemTime::now();
        let body = self.api_get(&context, url).await?;
        let inquiry = parse_inquiry(&context, &body, fetched_at)?;
        // Never show another inquiry's files under the name asked for.
        if inquiry.id != id {
            let err = Error::InvalidResponse {
                context,
                message: format!(
                    "the answer is for inquiry {:?}, not the one asked for",
                    inquiry.id.chars().take(64).collect::<String>()
                ),
            };
            tracing::warn!("{err}");
            return Err(err);
        }
        Ok(inquiry)
    }

    async fn list_events(
        &self,
        names: &[String],
        from: &EventsFrom,
        page_size: u32,
    ) -> Result<EventPage> {
        let mut url = self.api_url("events")?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("page[size]", &page_size.clamp(1, MAX_PAGE_SIZE).to_string());
            match from {
                EventsFrom::Newest => {}
                EventsFrom::After(id) => {
                    q.append_pair("page[after]", id);
                }
                EventsFrom::Before(id) => {
                    q.append_pair("page[before]", id);
                }
            }
            if !names.is_empty() {
                q.append_pair("filter[name]", &names.join(","));
            }
        }
        let context = "list events";
        match self.api_get(context, url).await {
            Ok(body) => crate::events::parse_event_page(context, &body),
            // A 400 to a request with a cursor: the cursor is no longer kept.
            Err(Error::Http { status: 400, .. }) if *from != EventsFrom::Newest => {
                Err(Error::CursorGone {
                    context: context.to_string(),
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn search_updated_since(
        &self,
        since: DateTime<Utc>,
        after: Option<&str>,
        page_size: u32,
    ) -> Result<InquiryPage> {
        let size = page_size.clamp(1, MAX_PAGE_SIZE);
        let mut url = self.api_url("inquiries/search")?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(after) = after {
                q.append_pair("page[after]", after);
            }
            q.append_pair("page[size]", &size.to_string());
            // Only what a summary holds: a page of 100 whole inquiries is mostly PII.
            q.append_pair("fields[inquiry]", crate::search::SUMMARY_FIELDS);
        }
        let body = Bytes::from(crate::search::updated_since_body(since, size).to_string());
        let context = "search inquiries";
        let answer = self.api_request(context, url, Some(&body)).await?;
        parse_list_page(context, &answer)
    }

    async fn file_size(&self, url: &str) -> Result<u64> {
        self.head_size(url).await
    }

    async fn download(
        &self,
        url: &str,
        offset: u64,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<u64> {
        self.download_to(url, offset, None, out).await
    }

    async fn download_range(
        &self,
        url: &str,
        start: u64,
        end: u64,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<u64> {
        if start >= end {
            return Ok(0);
        }
        self.download_to(url, start, Some(end), out).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(api_base: &str, hosts: &[&str]) -> HttpClient {
        let mut config = ClientConfig::new(api_base, ApiKey::new("persona_sandbox_SECRET"));
        if !hosts.is_empty() {
            config.allowed_file_hosts = hosts.iter().map(|h| h.to_string()).collect();
        }
        HttpClient::new(config).unwrap()
    }

    #[test]
    fn api_key_never_shows() {
        let key = ApiKey::new("persona_sandbox_SECRET");
        let config = ClientConfig::new("https://withpersona.com/api/v1", key.clone());
        for text in [
            format!("{key}"),
            format!("{key:?}"),
            format!("{config:?}"),
            format!("{:?}", HttpClient::new(config.clone()).unwrap()),
        ] {
            assert!(!text.contains("SECRET"), "{text}");
        }
        assert_eq!(key.to_string(), "ApiKey(***)");
    }

    #[test]
    fn default_hosts_for_persona_and_others() {
        assert_eq!(
            default_file_hosts("https://withpersona.com/api/v1"),
            [
                "withpersona.com",
                "files.withpersona.com",
                "api.withpersona.com"
            ]
        );
        assert_eq!(
            default_file_hosts("https://api.withpersona.com/api/v1"),
            [
                "api.withpersona.com",
                "files.withpersona.com",
                "withpersona.com"
            ]
        );
        assert_eq!(
            default_file_hosts("http://127.0.0.1:8080/api/v1"),
            ["127.0.0.1:8080"]
        );
        let config = ClientConfig::new("https://withpersona.com/api/v1", ApiKey::new("k"));
        assert_eq!(config.persona_version, "2023-01-05");
        assert_eq!(config.budget, BudgetPolicy::default());
    }

    #[test]
    fn file_urls_are_classified_before_any_request() {
        let c = client("https://withpersona.com/api/v1", &[]);
        let t = c
            .file_target("https://files.withpersona.com/a.jpg?access_token=x")
            .unwrap();
        assert!(!t.keyed && t.host == Host::Files);
        let t = c
            .file_target("https://withpersona.com/api/v1/files/TOKEN/a.jpg")
            .unwrap();
        assert!(t.keyed && t.host == Host::Api);
        // Same path on another host, over http, or another port: refused or unkeyed.
        for url in [
            "https://evil.example/api/v1/files/TOKEN/a.jpg",
            "https://files.withpersona.com.evil.example/a.jpg",
            "https://files.withpersona.com:8443/a.jpg",
            "ftp://files.withpersona.com/a.jpg",
            "file:///etc/passwd",
        ] {
            let err = c.file_target(url).unwrap_err();
            assert!(matches!(err, Error::ForeignHost { .. }), "{url}: {err:?}");
        }
        let t = c
            .file_target("http://withpersona.com/api/v1/files/TOKEN/a.jpg")
            .unwrap_err();
        assert!(
            matches!(t, Error::ForeignHost { .. }),
            "no key over another scheme"
        );
        assert!(c.file_target("not a url").is_err());
    }

    #[test]
    fn explicit_ports_must_match() {
        let c = client("http://127.0.0.1:1000/api/v1", &["127.0.0.1:2000"]);
        assert!(!c.file_target("http://127.0.0.1:2000/f.jpg").unwrap().keyed);
        let t = c
            .file_target("http://127.0.0.1:1000/api/v1/files/T/f.jpg")
            .unwrap();
        assert!(t.keyed);
        assert!(c.file_target("http://127.0.0.1:3000/f.jpg").is_err());
        assert!(c.file_target("http://127.0.0.1/f.jpg").is_err());
    }

    #[test]
    fn bad_configs_are_refused() {
        let bad = |base: &str, key: &str| {
            HttpClient::new(ClientConfig::new(base, ApiKey::new(key))).is_err()
        };
        assert!(bad("not a url", "k"));
        assert!(bad("ftp://x/api", "k"));
        assert!(bad("https://withpersona.com/api/v1", ""));
        assert!(bad("https://withpersona.com/api/v1", "bad\nkey"));
        let mut config = ClientConfig::new("https://withpersona.com/api/v1", ApiKey::new("k"));
        config.allowed_file_hosts = vec!["host/with/path".into()];
        assert!(HttpClient::new(config).is_err());
    }

    #[tokio::test]
    async fn inquiry_ids_are_checked_before_use_in_a_path() {
        // Port 9 (discard): any request that went out would fail as a network error.
        let c = client("http://127.0.0.1:9/api/v1", &[]);
        for bad in [
            "",
            "../documents/doc_1",
            "inq_1?x=1",
            "inq 1",
            "inq_1/",
            "doc_1",
        ] {
            let err = c.retrieve_inquiry(bad).await.unwrap_err();
            assert!(matches!(err, Error::NotFound(_)), "{bad}: {err:?}");
        }
    }
}
