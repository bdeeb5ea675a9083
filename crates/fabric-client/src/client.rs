//! The client, its builder, and the one `execute` every request goes through.
//!
//! `execute` runs a request under the configured [`CallPolicy`] (one attempt without one):
//! each attempt gets a cached bearer token, sends `x-ms-client-request-id`, refreshes the token
//! once on `401 TokenExpired`, maps error answers to [`FabricError`], and is bounded by the
//! call's deadline on the injected clock. One tracing span per call records method, route
//! template, status, attempt and duration.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fabrik_core::TokenProvider;
use fabrik_core::classify::retry_hint;
use fabrik_core::metric_names;
use fabrik_core::policy::{CallContext, CallError, CallPolicy, call_with};
use fabrik_core::time::{Clock, Sleeper, SystemClock, TokioSleeper};
use futures::future::{Either, select};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument as _;
use url::Url;

use crate::auth::{FABRIC_SCOPE, TokenCache};
use crate::error::{ApiError, FabricError};
use crate::models::ErrorResponse;

/// Where the real service lives.
pub const DEFAULT_BASE_URL: &str = "https://api.fabric.microsoft.com";

/// The environment variable that overrides the base URL (the seed's name).
pub const BASE_URL_ENV: &str = "FABRIC_API_BASE_URL";

/// The base URL from [`BASE_URL_ENV`], else [`DEFAULT_BASE_URL`].
pub fn base_url_from_env() -> String {
    std::env::var(BASE_URL_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned())
}

const CLIENT_REQUEST_ID: &str = "x-ms-client-request-id";

/// A typed, async Microsoft Fabric REST client. Cheap to clone: clones share one connection
/// pool and token cache.
#[derive(Clone)]
pub struct FabricClient {
    pub(crate) inner: Arc<Inner>,
    pub(crate) call_timeout: Option<Duration>,
    pub(crate) lro_deadline: Duration,
}

pub(crate) struct Inner {
    http: reqwest::Client,
    /// API root, path ending in `/v1`.
    base: Url,
    tokens: TokenCache,
    policy: Option<Arc<dyn CallPolicy>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sleeper: Arc<dyn Sleeper>,
    pub(crate) lro_poll_interval: Duration,
    /// Bounds the calls in flight (a slot is held for a call and its retries, never while
    /// waiting out an operation's `Retry-After` between polls).
    in_flight: Option<Arc<tokio::sync::Semaphore>>,
}

impl fmt::Debug for FabricClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FabricClient")
            .field("base", &self.inner.base.as_str())
            .field("identity", &self.inner.tokens.describe())
            .field("policy", &self.inner.policy)
            .field("call_timeout", &self.call_timeout)
            .field("lro_deadline", &self.lro_deadline)
            .finish()
    }
}

/// Builds a [`FabricClient`].
pub struct FabricClientBuilder {
    base_url: String,
    token_provider: Option<Arc<dyn TokenProvider>>,
    policy: Option<Arc<dyn CallPolicy>>,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    call_timeout: Option<Duration>,
    lro_deadline: Duration,
    lro_poll_interval: Duration,
    scope: String,
    token_refresh_before: Duration,
    connect_timeout: Duration,
    user_agent: String,
    extra_roots: Vec<Vec<u8>>,
    max_in_flight: Option<usize>,
}

impl fmt::Debug for FabricClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FabricClientBuilder")
            .field("base_url", &self.base_url)
            .field("token_provider", &self.token_provider)
            .field("policy", &self.policy)
            .field("call_timeout", &self.call_timeout)
            .field("lro_deadline", &self.lro_deadline)
            .finish_non_exhaustive()
    }
}

impl FabricClient {
    /// A builder for a client of the API at `base_url` (e.g. [`DEFAULT_BASE_URL`], the seed's
    /// `FABRIC_API_BASE_URL`, or an emulator's `http://127.0.0.1:PORT`; a trailing `/v1` is
    /// accepted).
    pub fn builder(base_url: impl Into<String>) -> FabricClientBuilder {
        FabricClientBuilder {
            base_url: base_url.into(),
            token_provider: None,
            policy: None,
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(TokioSleeper),
            call_timeout: Some(Duration::from_secs(120)),
            lro_deadline: Duration::from_secs(30 * 60),
            lro_poll_interval: Duration::from_secs(5),
            scope: FABRIC_SCOPE.to_owned(),
            token_refresh_before: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(30),
            user_agent: concat!("fabrik/", env!("CARGO_PKG_VERSION")).to_owned(),
            extra_roots: Vec::new(),
            max_in_flight: None,
        }
    }

    /// This client with a different deadline for long-running operations (per call site).
    pub fn with_lro_deadline(&self, deadline: Duration) -> Self {
        Self {
            lro_deadline: deadline,
            ..self.clone()
        }
    }

    /// This client with a different time limit per request (all attempts), or none.
    pub fn with_call_timeout(&self, timeout: Option<Duration>) -> Self {
        Self {
            call_timeout: timeout,
            ..self.clone()
        }
    }

    /// The API root in use (path ending in `/v1`).
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The deadline for long-running operations.
    pub fn lro_deadline(&self) -> Duration {
        self.lro_deadline
    }
}

impl FabricClientBuilder {
    /// Where tokens come from (required).
    pub fn token_provider(mut self, provider: Arc<dyn TokenProvider>) -> Self {
        self.token_provider = Some(provider);
        self
    }

    /// The policy every request runs under; `None` makes one attempt per request.
    pub fn policy(mut self, policy: Option<Arc<dyn CallPolicy>>) -> Self {
        self.policy = policy;
        self
    }

    /// The clock for deadlines and token expiry (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The sleeper for LRO polling waits and deadlines (default: tokio's timer).
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Time limit for one request, all attempts included (default 120 s; `None`: no limit).
    pub fn call_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Deadline for a long-running operation, from its first request (default 30 min).
    pub fn lro_deadline(mut self, deadline: Duration) -> Self {
        self.lro_deadline = deadline;
        self
    }

    /// At most `n` calls in flight at once (default: no bound). A call holds its slot through
    /// its retries; waiting between a long-running operation's polls holds none, so many
    /// operations can be waited for while few requests are on the wire. Waiting for a slot
    /// does not count against a call's deadline.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = Some(n.max(1));
        self
    }

    /// Wait between polls when the service gives no `Retry-After` (default 5 s).
    pub fn lro_poll_interval(mut self, interval: Duration) -> Self {
        self.lro_poll_interval = interval;
        self
    }

    /// The token scope (default `https://api.fabric.microsoft.com/.default`).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = scope.into();
        self
    }

    /// Refresh a cached token this long before it expires (default 120 s).
    pub fn token_refresh_before(mut self, margin: Duration) -> Self {
        self.token_refresh_before = margin;
        self
    }

    /// TCP/TLS connect timeout (real time: it guards the socket, not the logic; default 30 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Trusts an extra CA certificate (PEM) besides the system roots: a private CA, or the
    /// emulator's generated one. Verification is never turned off.
    pub fn extra_root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_roots.push(pem.into());
        self
    }

    /// Builds the client. Fails on a missing token provider, an unparsable base URL, or plain
    /// `http` to a host that is not loopback.
    pub fn build(self) -> Result<FabricClient, FabricError> {
        let provider = self
            .token_provider
            .ok_or_else(|| FabricError::InvalidRequest("no token provider configured".into()))?;
        let base = normalize_base(&self.base_url)?;
        let mut http = reqwest::Client::builder();
        for pem in &self.extra_roots {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| FabricError::InvalidRequest(format!("extra CA certificate: {e}")))?;
            if certs.is_empty() {
                return Err(FabricError::InvalidRequest(
                    "extra CA certificate: no PEM certificate found".into(),
                ));
            }
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http
            .user_agent(self.user_agent)
            .connect_timeout(self.connect_timeout)
            // Redirects would carry the bearer token to wherever they point; Fabric doesn't
            // redirect API calls (LRO Location is followed explicitly and checked).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| FabricError::InvalidRequest(format!("HTTP client: {e}")))?;
        let tokens = TokenCache::new(
            provider,
            self.scope,
            self.token_refresh_before,
            self.clock.clone(),
        );
        Ok(FabricClient {
            inner: Arc::new(Inner {
                http,
                base,
                tokens,
                policy: self.policy,
                clock: self.clock,
                sleeper: self.sleeper,
                lro_poll_interval: self.lro_poll_interval,
                in_flight: self
                    .max_in_flight
                    .map(|n| Arc::new(tokio::sync::Semaphore::new(n))),
            }),
            call_timeout: self.call_timeout,
            lro_deadline: self.lro_deadline,
        })
    }
}

/// Parses and checks the base URL, making its path end in `/v1`.
fn normalize_base(raw: &str) -> Result<Url, FabricError> {
    let mut url = Url::parse(raw.trim())
        .map_err(|e| FabricError::InvalidUrl(format!("base URL '{raw}': {e}")))?;
    check_url(&url)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(FabricError::InvalidUrl(format!(
            "base URL '{raw}' must not have a query or fragment"
        )));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    if !path.ends_with("/v1") {
        url.set_path(&format!("{path}/v1"));
    } else {
        url.set_path(&path);
    }
    Ok(url)
}

/// The transport rule for every URL the client calls, given or followed: `https`, or `http`
/// to a loopback host only (the emulator). A token never travels in clear off the machine.
pub fn check_url(url: &Url) -> Result<(), FabricError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(FabricError::InvalidUrl(format!(
            "{url}: plain http is allowed only for loopback hosts"
        ))),
        other => Err(FabricError::InvalidUrl(format!(
            "{url}: unsupported scheme '{other}'"
        ))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// One request, before policy and auth.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: Method,
    /// Route template relative to `/v1`, ids elided (`/workspaces/{workspaceId}`).
    pub(crate) route: &'static str,
    pub(crate) url: Url,
    pub(crate) body: Option<Bytes>,
    /// Whether repeating it is safe (told to the policy).
    pub(crate) idempotent: bool,
}

impl Call {
    pub(crate) fn with_query(mut self, key: &str, value: &str) -> Self {
        self.url.query_pairs_mut().append_pair(key, value);
        self
    }

    pub(crate) fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Result<Self, FabricError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| FabricError::InvalidRequest(format!("request body: {e}")))?;
        self.body = Some(Bytes::from(bytes));
        Ok(self)
    }

    pub(crate) fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }

    pub(crate) fn operation(&self) -> String {
        format!("{} /v1{}", self.method, self.route)
    }
}

/// An answer with a success status, body read.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) operation: String,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as `T`.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, FabricError> {
        serde_json::from_slice(&self.body).map_err(|e| FabricError::Decode {
            operation: self.operation.clone(),
            status: self.status,
            message: e.to_string(),
        })
    }
}

/// A `{name}` segment of a route, filled from the call's ids.
fn is_placeholder(seg: &str) -> bool {
    seg.starts_with('{') && seg.ends_with('}')
}

fn method_str(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

impl FabricClient {
    /// A call to `route` (relative to `/v1`, `{name}` segments filled from `ids` in order,
    /// each percent-encoded as one path segment).
    pub(crate) fn call(&self, method: Method, route: &'static str, ids: &[&str]) -> Call {
        let mut url = self.inner.base.clone();
        {
            // The base path always has segments (it ends in /v1), so this cannot fail.
            if let Ok(mut segs) = url.path_segments_mut() {
                let mut ids = ids.iter();
                for seg in route.split('/').filter(|s| !s.is_empty()) {
                    if is_placeholder(seg) {
                        segs.push(ids.next().copied().unwrap_or_default());
                    } else {
                        segs.push(seg);
                    }
                }
            }
        }
        let idempotent = method != Method::POST;
        Call {
            method,
            route,
            url,
            body: None,
            idempotent,
        }
    }

    /// A call to an absolute URL the service gave (LRO `Location`, `continuationUri`),
    /// resolved against `relative_to` and checked by [`check_url`].
    pub(crate) fn call_url(
        &self,
        method: Method,
        route: &'static str,
        target: &str,
        relative_to: &Url,
    ) -> Result<Call, FabricError> {
        let url = relative_to
            .join(target)
            .map_err(|e| FabricError::InvalidUrl(format!("'{target}': {e}")))?;
        check_url(&url)?;
        Ok(Call {
            method,
            route,
            url,
            body: None,
            idempotent: true,
        })
    }

    /// Runs `call` under the policy and returns the successful answer.
    pub(crate) async fn execute(&self, call: &Call) -> Result<Response, FabricError> {
        // A slot for the whole call (its retries included), taken before its deadline starts:
        // waiting for one is not the call's time. The semaphore is never closed, so acquiring
        // cannot fail. Waits between an operation's polls are outside any call: no slot.
        let _slot = match &self.inner.in_flight {
            Some(s) => s.clone().acquire_owned().await.ok(),
            None => None,
        };
        let operation = call.operation();
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let clock = &self.inner.clock;
        let start = clock.now();
        let deadline = self.call_timeout.map(|t| start + t);
        let ctx = CallContext {
            key: call.url.host_str().unwrap_or_default().to_owned(),
            operation: operation.clone(),
            idempotent: call.idempotent,
            deadline,
        };
        let span = tracing::info_span!(
            "fabric.call",
            method = method_str(&call.method),
            route = call.route,
            status = tracing::field::Empty,
            attempt = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
            request_id = tracing::field::Empty,
            client_request_id = %client_request_id,
        );
        let policy = self.inner.policy.as_deref();
        let result = call_with(policy, &ctx, |n| {
            self.attempt(call, n, &operation, &client_request_id, deadline, &span)
        })
        .instrument(span.clone())
        .await;
        let elapsed = clock.now().saturating_duration_since(start);
        span.record("duration_ms", elapsed.as_secs_f64() * 1000.0);
        match result {
            Ok(r) => Ok(r),
            Err(CallError::Failed(e)) => {
                tracing::debug!(parent: &span, error = %e, "fabric call failed");
                Err(e)
            }
            Err(CallError::Rejected { rejection, last }) => Err(FabricError::Rejected {
                operation,
                rejection,
                last: last.map(Box::new),
            }),
        }
    }

    async fn attempt(
        &self,
        call: &Call,
        n: u32,
        operation: &str,
        client_request_id: &str,
        deadline: Option<Instant>,
        span: &tracing::Span,
    ) -> Result<Response, FabricError> {
        span.record("attempt", n);
        let tokens = &self.inner.tokens;
        let mut auth = tokens.header().await?;

        let mut resp = self
            .send(call, &auth, operation, client_request_id, deadline)
            .await?;
        if resp.status == 401 && token_expired(&resp) {
            // The token died early (revoked, clock skew): refresh once and repeat.
            tokens.invalidate(&auth);
            auth = tokens.header().await?;
            resp = self
                .send(call, &auth, operation, client_request_id, deadline)
                .await?;
        }
        span.record("status", resp.status);
        let request_id = resp
            .headers
            .get("requestid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(id) = &request_id {
            span.record("request_id", id.as_str());
        }
        if (200..300).contains(&resp.status) {
            return Ok(resp);
        }
        Err(self.api_error(resp, request_id, client_request_id, n))
    }

    fn api_error(
        &self,
        resp: Response,
        header_request_id: Option<String>,
        client_request_id: &str,
        attempt: u32,
    ) -> FabricError {
        let body: Option<ErrorResponse> = serde_json::from_slice(&resp.body).ok();
        let raw_message = body.is_none().then(|| {
            let text = String::from_utf8_lossy(&resp.body);
            text.chars().take(300).collect::<String>()
        });
        let mut e = ApiError::from_body(resp.status, body);
        if e.error_code.is_empty()
            && let Some(code) = resp.header("x-ms-public-api-error-code")
        {
            e.error_code = code.to_owned();
        }
        if e.message.is_empty() {
            e.message = raw_message.unwrap_or_default();
        }
        if e.request_id.is_none() {
            e.request_id = header_request_id;
        }
        e.client_request_id = Some(client_request_id.to_owned());
        e.retry_after = retry_hint(|n| resp.header(n), self.inner.clock.system_now());
        e.operation = resp.operation;
        e.attempt = attempt;
        FabricError::Api(Box::new(e))
    }

    /// One HTTP exchange, body read, bounded by the deadline.
    async fn send(
        &self,
        call: &Call,
        auth: &HeaderValue,
        operation: &str,
        client_request_id: &str,
        deadline: Option<Instant>,
    ) -> Result<Response, FabricError> {
        let mut req = self
            .inner
            .http
            .request(call.method.clone(), call.url.clone())
            .header(AUTHORIZATION, auth.clone())
            .header(CLIENT_REQUEST_ID, client_request_id);
        if let Some(body) = &call.body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let started = self.inner.clock.now();
        let exchange = async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        };
        let outcome = match deadline {
            None => exchange.await,
            Some(deadline) => {
                let remaining = deadline.saturating_duration_since(started);
                if remaining.is_zero() {
                    return Err(self.timeout(operation, deadline));
                }
                let timer = self.inner.sleeper.sleep(remaining);
                match select(Box::pin(exchange), timer).await {
                    Either::Left((r, _)) => r,
                    Either::Right(((), _)) => return Err(self.timeout(operation, deadline)),
                }
            }
        };
        let method = method_str(&call.method);
        let elapsed = self.inner.clock.now().saturating_duration_since(started);
        let (status, headers, body) = outcome.map_err(|e| {
            metrics::counter!(metric_names::HTTP_REQUESTS, "method" => method, "route" => call.route, "status" => "error").increment(1);
            if e.is_timeout() {
                FabricError::Timeout {
                    operation: operation.to_owned(),
                    after: elapsed,
                }
            } else {
                FabricError::Transport {
                    operation: operation.to_owned(),
                    message: error_chain(&e),
                }
            }
        })?;
        metrics::counter!(metric_names::HTTP_REQUESTS, "method" => method, "route" => call.route, "status" => status_label(status)).increment(1);
        metrics::histogram!(metric_names::HTTP_DURATION, "method" => method, "route" => call.route)
            .record(elapsed.as_secs_f64());
        Ok(Response {
            status,
            headers,
            body,
            operation: operation.to_owned(),
        })
    }

    fn timeout(&self, operation: &str, deadline: Instant) -> FabricError {
        FabricError::Timeout {
            operation: operation.to_owned(),
            after: self
                .call_timeout
                .unwrap_or_else(|| deadline.saturating_duration_since(self.inner.clock.now())),
        }
    }

    /// Sends `call` and decodes the answer as `T`.
    pub(crate) async fn fetch<T: DeserializeOwned>(&self, call: Call) -> Result<T, FabricError> {
        self.execute(&call).await?.json()
    }

    /// Sends `call` and ignores the answer's body.
    pub(crate) async fn send_only(&self, call: Call) -> Result<(), FabricError> {
        self.execute(&call).await.map(drop)
    }
}

fn token_expired(resp: &Response) -> bool {
    if resp.header("x-ms-public-api-error-code") == Some("TokenExpired") {
        return true;
    }
    serde_json::from_slice::<ErrorResponse>(&resp.body)
        .is_ok_and(|b| b.error_code == "TokenExpired")
}

/// Static labels for common statuses: the metric label needs no allocation on the hot path.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        202 => "202",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        409 => "409",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        s if s < 300 => "2xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

/// The error and its sources on one line (reqwest's top-level message alone says little).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_gets_v1_and_http_only_on_loopback() {
        let check = |raw: &str| normalize_base(raw).map(|u| u.to_string());
        assert_eq!(
            check("https://api.fabric.microsoft.com").unwrap(),
            "https://api.fabric.microsoft.com/v1"
        );
        assert_eq!(
            check("https://api.fabric.microsoft.com/v1/").unwrap(),
            "https://api.fabric.microsoft.com/v1"
        );
        assert_eq!(
            check("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080/v1"
        );
        assert_eq!(
            check("http://localhost:1/v1").unwrap(),
            "http://localhost:1/v1"
        );
        assert_eq!(check("http://[::1]:9/").unwrap(), "http://[::1]:9/v1");
        assert_eq!(check("http://127.9.9.9").unwrap(), "http://127.9.9.9/v1");
        for bad in [
            "http://api.fabric.microsoft.com",
            "http://10.0.0.1:80",
            "http://localhost.evil.com",
            "ftp://127.0.0.1",
            "not a url",
            "https://x/v1?a=b",
        ] {
            assert!(
                matches!(normalize_base(bad), Err(FabricError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }
}
