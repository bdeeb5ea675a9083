//! The HTTP side: shared state, the request pipeline (request id → auth → throttle →
//! faults → handler → error rendering → request log) and the accept loop.
//!
//! The accept loop drives hyper directly (rather than `axum::serve`) so an injected
//! "connection reset" can drop exactly the connection it was decided for.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use fabrik_core::SplitMix64;
use http::{HeaderValue, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower::ServiceExt as _;

use crate::EmulatorConfig;
use crate::error::{ApiError, PendingError, from_status};
use crate::faults::{FaultAction, FaultEngine};
use crate::profile::{EndpointClass, LroKind, LroTiming, Profile};
use crate::store::Store;
use crate::throttle::Throttle;
use crate::util::{JSON, fnv, us_time, uuid_from};

/// One line of the request log.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LogEntry {
    pub(crate) method: String,
    pub(crate) path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) query: Option<String>,
    /// 0 when no response was sent (injected reset or hang).
    pub(crate) status: u16,
    pub(crate) principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fault: Option<String>,
    /// The scope (Entra ID) or resource (managed identity) a token was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) scope: Option<String>,
}

/// The bounded request log.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    pub(crate) entries: VecDeque<LogEntry>,
    pub(crate) dropped: u64,
}

/// State shared by every request.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: EmulatorConfig,
    pub(crate) store: RwLock<Store>,
    /// Ids of resources (and commit hashes): reproducible with the seed.
    pub(crate) ids: SplitMix64,
    /// Request ids: a separate stream so reads do not shift resource ids.
    request_ids: SplitMix64,
    pub(crate) faults: RwLock<Arc<FaultEngine>>,
    throttle: Option<Throttle>,
    /// The per-identity quota (`--quota`), a second bucket beside `throttle`.
    quota: Option<Throttle>,
    /// Timings to imitate (`--profile`).
    pub(crate) profile: Option<Profile>,
    pub(crate) log: Mutex<RequestLog>,
    /// Accepted Application Insights envelopes, oldest first (bounded like the request log).
    pub(crate) telemetry: Mutex<TelemetryLog>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// The bounded store of ingested telemetry.
#[derive(Debug, Default)]
pub(crate) struct TelemetryLog {
    pub(crate) items: VecDeque<serde_json::Value>,
    pub(crate) dropped: u64,
}

impl Shared {
    pub(crate) fn new(
        config: EmulatorConfig,
        store: Store,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, String> {
        let profile = config
            .profile
            .map(|p| Profile::new(p, config.time_scale, config.seed))
            .transpose()?;
        Ok(Self {
            ids: SplitMix64::new(config.seed),
            request_ids: SplitMix64::new(config.seed ^ 0x005E_ED0F_4E9E),
            faults: RwLock::new(Arc::new(FaultEngine::new(
                config.faults.clone(),
                config.seed,
            ))),
            throttle: config.throttle.map(Throttle::new),
            quota: config
                .quota
                .map(|q| Throttle::new(crate::config::quota_bucket(q, config.time_scale))),
            profile,
            store: RwLock::new(store),
            log: Mutex::new(RequestLog::default()),
            telemetry: Mutex::new(TelemetryLog::default()),
            shutdown,
            config,
        })
    }

    /// How long a new operation of `kind` runs and the `Retry-After` it asks for: the
    /// profile's when one is in force, else the LRO delay.
    pub(crate) fn lro_timing(&self, kind: LroKind) -> LroTiming {
        match &self.profile {
            Some(p) => p.lro(kind),
            None => LroTiming {
                duration: self.config.lro_delay,
                retry_after: crate::api::retry_after_secs(self),
            },
        }
    }

    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn new_id(&self) -> uuid::Uuid {
        uuid_from(&self.ids)
    }

    pub(crate) fn now(&self) -> std::time::SystemTime {
        self.config.clock.system_now()
    }

    pub(crate) fn push_log(&self, entry: LogEntry) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.entries.len() >= self.config.request_log_limit.max(1) {
            log.entries.pop_front();
            log.dropped += 1;
        }
        log.entries.push_back(entry);
    }

    async fn wait_shutdown(&self) {
        let mut rx = self.shutdown.clone();
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Who is calling and how to address the emulator in absolute URLs.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) principal_id: String,
    pub(crate) principal_type: String,
    /// `http://host:port` as the client addressed us.
    pub(crate) origin: String,
}

/// `http` or `https`: how the request's connection was made (for absolute URLs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scheme(pub(crate) &'static str);

/// `scheme://host` as the client addressed us (the `Host` header), for absolute URLs.
pub(crate) fn origin(s: &Shared, req_headers: &http::HeaderMap, ext: &http::Extensions) -> String {
    let scheme = ext.get::<Scheme>().map_or("http", |s| s.0);
    req_headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| format!("{scheme}://{h}"))
        .unwrap_or_else(|| format!("{scheme}://{}:{}", s.config.host, s.config.port))
}

/// The bearer token of an `Authorization` header, if there is one.
pub(crate) fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let header = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// What an access token is worth.
pub(crate) enum TokenCheck {
    /// Issued by us and still valid: principal id, principal type, audience (`None`: any API).
    Valid(String, String, Option<String>),
    /// Issued by us, past its lifetime on the emulator's clock.
    Expired,
    /// Not one of ours (accepted anyway with `accept_any_token`).
    Unknown,
}

/// Looks a token up; with `accept_any_token` an unknown token is valid for any audience.
pub(crate) fn check_token(s: &Shared, token: &str) -> TokenCheck {
    if let Some(t) = s.read().tokens.get(token) {
        if s.now() >= t.expires_at {
            return TokenCheck::Expired;
        }
        return TokenCheck::Valid(
            t.principal_id.clone(),
            t.principal_type.clone(),
            t.audience.clone(),
        );
    }
    if s.config.accept_any_token {
        let (id, kind) = principal_from_any_token(token);
        return TokenCheck::Valid(id, kind, None);
    }
    TokenCheck::Unknown
}

/// Drops the connection a request arrived on (for injected resets).
#[derive(Debug, Clone)]
pub(crate) struct ConnKill(Arc<Notify>);

/// The content type of an empty answer.
static PLAIN: std::sync::LazyLock<HeaderValue> =
    std::sync::LazyLock::new(|| HeaderValue::from_static("text/plain; charset=utf-8"));

/// Outermost layer on every route: assigns the request id, renders errors in the Fabric
/// shape (including axum's own rejections), sets `RequestId` and `Content-Type`.
pub(crate) async fn finalize(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let request_id = uuid_from(&s.request_ids).to_string();
    let resp = next.run(req).await;
    let mut resp = render_errors(resp, &request_id).await;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("RequestId", v);
    }
    // An empty answer (a delete, a git connect) is not typed JSON: clients that decode every
    // JSON-typed body (fabric-cicd: `response.json()` whenever the type says JSON) fail on it,
    // so the service cannot be sending that. Still typed, as every answer here is.
    let empty = axum::body::HttpBody::size_hint(resp.body()).exact() == Some(0);
    let content_type = if empty { PLAIN.clone() } else { JSON.clone() };
    resp.headers_mut()
        .entry(header::CONTENT_TYPE)
        .or_insert(content_type);
    resp
}

async fn render_errors(resp: Response, request_id: &str) -> Response {
    if let Some(PendingError(e)) = resp.extensions().get::<PendingError>().cloned() {
        return e.render(request_id);
    }
    let status = resp.status();
    if status.is_client_error() || status.is_server_error() {
        // An axum rejection or fallback: keep its status and text, give it the real shape.
        let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024)
            .await
            .unwrap_or_default();
        return from_status(status, String::from_utf8_lossy(&bytes).trim()).render(request_id);
    }
    resp
}

/// The principal a bearer token stands for, or why it is refused.
fn authenticate(s: &Shared, req: &Request) -> Result<(String, String), ApiError> {
    let unauthorized =
        |code: &'static str, msg: &str| ApiError::new(StatusCode::UNAUTHORIZED, code, msg);
    if !req.headers().contains_key(header::AUTHORIZATION) {
        return Err(unauthorized("Unauthorized", "Access token is missing"));
    }
    let token = bearer(req.headers()).ok_or_else(|| {
        unauthorized(
            "Unauthorized",
            "Authorization header must be 'Bearer <token>'",
        )
    })?;
    match check_token(s, token) {
        TokenCheck::Valid(_, _, Some(aud)) if !crate::api::entra::is_fabric_audience(&aud) => {
            Err(unauthorized(
                "InvalidToken",
                format!("Access token audience '{aud}' is not valid for the Fabric API").as_str(),
            ))
        }
        TokenCheck::Valid(id, kind, _) => Ok((id, kind)),
        TokenCheck::Expired => Err(unauthorized(
            "TokenExpired",
            "Access token has expired, resubmit with a new access token",
        )),
        TokenCheck::Unknown => Err(unauthorized("InvalidToken", "Access token is invalid")),
    }
}

/// With `--accept-any-token`: a JWT's `oid` (or `sub`) claim, else a stable id derived from
/// the token, so each distinct token is its own principal for throttling.
fn principal_from_any_token(token: &str) -> (String, String) {
    let claims = token.split('.').nth(1).and_then(|p| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p.trim_end_matches('='))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    });
    if let Some(c) = claims {
        let id = c
            .get("oid")
            .or_else(|| c.get("sub"))
            .and_then(|v| v.as_str());
        if let Some(id) = id {
            let kind = if c.get("idtyp").and_then(|v| v.as_str()) == Some("app") {
                "ServicePrincipal"
            } else {
                "User"
            };
            return (id.to_string(), kind.to_string());
        }
    }
    let h = fnv(token.as_bytes());
    let id = uuid::Builder::from_random_bytes(
        [h.to_le_bytes(), h.rotate_left(32).to_le_bytes()]
            .concat()
            .try_into()
            .unwrap_or([0; 16]),
    )
    .into_uuid();
    (id.to_string(), "User".to_string())
}

fn injected(status: u16) -> ApiError {
    let st = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (code, msg) = match status {
        429 => (
            "RequestBlocked",
            "Request is blocked by the upstream service".to_string(),
        ),
        500 => ("UnknownError", "An error occurred".to_string()),
        502 => (
            "BadGateway",
            "The service received an invalid response from an upstream server".to_string(),
        ),
        503 => (
            "ServiceUnavailable",
            "The service is temporarily unavailable".to_string(),
        ),
        504 => (
            "GatewayTimeout",
            "The upstream service did not respond in time".to_string(),
        ),
        s => ("InjectedFault", format!("Injected fault with status {s}")),
    };
    let e = ApiError::new(st, code, msg);
    if status == 429 || status == 503 {
        e.retry_after(1)
    } else {
        e
    }
}

/// 429 as the service sends it (body seen on a real 429: `RequestBlocked`, "blocked … until:
/// <time>"), with `Retry-After` the whole seconds until a call is allowed again, at least 1.
fn throttled(s: &Shared, wait: Duration) -> ApiError {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let until = us_time(crate::util::later(s.now(), Duration::from_secs(secs)));
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RequestBlocked",
        format!("Request is blocked by the upstream service until: {until}"),
    )
    .retry_after(secs)
}

/// The `/v1` gate: auth, throttle, faults, then the handler; logs the outcome.
pub(crate) async fn gate(State(s): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let log = |status: u16, principal: Option<String>, fault: Option<String>| {
        s.push_log(LogEntry {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            status,
            principal,
            fault,
            scope: None,
        })
    };
    let (principal_id, principal_type) = match authenticate(&s, &req) {
        Ok(p) => p,
        Err(e) => {
            log(e.status.as_u16(), None, None);
            return e.into_response();
        }
    };
    let now = s.config.clock.now();
    for bucket in [&s.throttle, &s.quota].into_iter().flatten() {
        if let Err(wait) = bucket.acquire(&principal_id, now) {
            log(429, Some(principal_id), None);
            return throttled(&s, wait).into_response();
        }
    }
    let decision = {
        let engine = s.faults.read().unwrap_or_else(|e| e.into_inner()).clone();
        engine.decide(&method, &path)
    };
    let service_time = s.profile.as_ref().map_or(Duration::ZERO, |p| {
        p.latency(EndpointClass::of(&method, &path))
    });
    let latency = decision.latency.saturating_add(service_time);
    if !latency.is_zero() {
        s.config.sleeper.sleep(latency).await;
    }
    let fault_name = decision.action.map(|a| match a {
        FaultAction::Status(c) => c.to_string(),
        FaultAction::Reset => "reset".into(),
        FaultAction::Hang => "hang".into(),
        FaultAction::ApplyThenStatus(c) => format!("apply-then-{c}"),
        FaultAction::ApplyThenReset => "apply-then-reset".into(),
        FaultAction::OperationFailed => "lro-fail".into(),
        FaultAction::Latency { .. } => "latency".into(),
    });
    let kill = req.extensions().get::<ConnKill>().cloned();
    match decision.action {
        Some(FaultAction::Status(c)) => {
            log(c, Some(principal_id), fault_name);
            return injected(c).into_response();
        }
        Some(FaultAction::Reset) => {
            log(0, Some(principal_id), fault_name);
            return drop_connection(&s, kill).await;
        }
        Some(FaultAction::Hang) => {
            log(0, Some(principal_id), fault_name);
            return drop_connection(&s, None).await;
        }
        _ => {}
    }
    let origin = origin(&s, req.headers(), req.extensions());
    req.extensions_mut().insert(Ctx {
        principal_id: principal_id.clone(),
        principal_type,
        origin,
    });
    // An environment publish under `lro-fail` is carried out and ends `Failed`, as a real
    // publish that fails does.
    if decision.action == Some(FaultAction::OperationFailed) && path.ends_with("/staging/publish") {
        req.extensions_mut().insert(crate::api::PublishFails);
        let resp = next.run(req).await;
        log(resp.status().as_u16(), Some(principal_id), fault_name);
        return resp;
    }
    if decision.action == Some(FaultAction::OperationFailed) {
        log(202, Some(principal_id), fault_name);
        let ctx = req.extensions().get::<Ctx>().cloned();
        return crate::api::start_failed_operation(&s, ctx.as_ref());
    }
    let resp = next.run(req).await;
    match decision.action {
        Some(FaultAction::ApplyThenStatus(c)) => {
            log(c, Some(principal_id), fault_name);
            injected(c).into_response()
        }
        Some(FaultAction::ApplyThenReset) => {
            log(0, Some(principal_id), fault_name);
            drop_connection(&s, kill).await
        }
        _ => {
            log(resp.status().as_u16(), Some(principal_id), None);
            resp
        }
    }
}

/// Drops the connection (when `kill` is given) and never answers: the connection task drops
/// this future with the connection, or shutdown ends it.
async fn drop_connection(s: &Shared, kill: Option<ConnKill>) -> Response {
    if let Some(k) = kill {
        k.0.notify_one();
    }
    s.wait_shutdown().await;
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "The emulator is shutting down",
    )
    .into_response()
}

/// Accepts connections until shutdown, then lets in-flight requests finish (5 s at most).
/// With `tls`, each connection is an HTTPS one.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: watch::Receiver<bool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut conns = tokio::task::JoinSet::new();
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (router, shutdown) = (router.clone(), shutdown.clone());
                match &tls {
                    None => {
                        conns.spawn(connection(stream, router, shutdown, Scheme("http")));
                    }
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        conns.spawn(async move {
                            // A client that never finishes the handshake must not hold a task
                            // forever; this is a network timeout, not a timer under test.
                            let hs = tokio::time::timeout(
                                Duration::from_secs(10),
                                acceptor.accept(stream),
                            );
                            if let Ok(Ok(tls_stream)) = hs.await {
                                connection(tls_stream, router, shutdown, Scheme("https")).await;
                            }
                        });
                    }
                }
            }
            _ = stop.changed() => break,
        }
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.abort_all();
    }
}

async fn connection<I>(
    stream: I,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
    scheme: Scheme,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let conn_kill = ConnKill(kill.clone());
    let svc = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(conn_kill.clone());
        req.extensions_mut().insert(scheme);
        // Typed collections are matched case-insensitively and without a trailing slash,
        // as the service does (before routing, which is exact).
        if let Some(path) = crate::types::canonical_path(req.uri().path()) {
            let pq = match req.uri().query() {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            if let Ok(pq) = pq.parse::<http::uri::PathAndQuery>() {
                let mut parts = req.uri().clone().into_parts();
                parts.path_and_query = Some(pq);
                if let Ok(uri) = http::Uri::from_parts(parts) {
                    *req.uri_mut() = uri;
                }
            }
        }
        router.clone().oneshot(req.map(Body::new))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            // Dropping the connection closes the socket without an answer.
            _ = kill.notified() => break,
            changed = shutdown.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
