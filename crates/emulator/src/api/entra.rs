//! The Entra ID stand-in: `POST /{tenant}/oauth2/v2.0/token` (client credentials with a
//! client secret or a federated client assertion) and the App Service managed-identity
//! endpoint `GET /msi/token`. Errors carry Entra's shape and AADSTS codes.
//!
//! Issued tokens are JWT-shaped (claims `aud`, `iss`, `tid`, `oid`, `appid`, `idtyp`, `exp`)
//! so clients that read the principal out of a token can, but their validity comes from the
//! emulator's token table — the third segment is random, not a signature.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::identity::{Application, FEDERATED_AUDIENCE};
use crate::server::{LogEntry, Shared};
use crate::store::Token;
use crate::util::uuid_from;

/// The Fabric API's resources: tokens for either are accepted under `/v1`.
const FABRIC_RESOURCES: &[&str] = &[
    "https://api.fabric.microsoft.com",
    "https://analysis.windows.net/powerbi/api",
];
/// Key Vault's resource.
pub(crate) const VAULT_RESOURCE: &str = "https://vault.azure.net";
/// Resources a token can be asked for (others are "not found in the tenant").
const RESOURCES: &[&str] = &[
    "https://api.fabric.microsoft.com",
    "https://analysis.windows.net/powerbi/api",
    VAULT_RESOURCE,
    "https://management.azure.com",
    "https://storage.azure.com",
];

/// Whether a token's audience is the Fabric API.
pub(crate) fn is_fabric_audience(aud: &str) -> bool {
    let aud = aud.trim_end_matches('/');
    FABRIC_RESOURCES.iter().any(|r| r.eq_ignore_ascii_case(aud))
}

fn known_resource(resource: &str) -> Option<&'static str> {
    let r = resource.trim_end_matches('/');
    RESOURCES
        .iter()
        .copied()
        .find(|k| k.eq_ignore_ascii_case(r))
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An Entra ID error: `{error, error_description, error_codes, timestamp, trace_id,
/// correlation_id, error_uri}`, the description starting `AADSTS<code>: `.
fn entra_error(s: &Shared, status: StatusCode, error: &str, code: u32, message: &str) -> Response {
    let trace = uuid_from(&s.ids);
    let correlation = uuid_from(&s.ids);
    let now = time::OffsetDateTime::from_unix_timestamp(unix(s.now()))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let stamp = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {message} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {stamp}"
        ),
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    json_response(status, &body)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = crate::api::json(status, body);
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    r
}

/// An Entra error not yet rendered (kept small so `Result`s carrying it stay cheap).
struct Refusal {
    status: StatusCode,
    error: &'static str,
    code: u32,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, error: &'static str, code: u32, message: String) -> Self {
        Self {
            status,
            error,
            code,
            message,
        }
    }

    fn render(&self, s: &Shared) -> Response {
        entra_error(s, self.status, self.error, self.code, &self.message)
    }
}

fn missing(param: &str) -> Refusal {
    Refusal::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900_144,
        format!("The request body must contain the following parameter: '{param}'."),
    )
}

/// Issues a token for `principal` and `resource` with the configured lifetime.
fn issue(
    s: &Shared,
    tenant: &str,
    client_id: &str,
    object_id: &str,
    resource: &str,
) -> (String, u64) {
    let lifetime = s.config.identity.token_lifetime;
    let now = s.now();
    let expires_at = crate::util::later(now, lifetime);
    let header = b64(br#"{"typ":"JWT","alg":"none"}"#);
    let claims = json!({
        "aud": resource,
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "iat": unix(now),
        "nbf": unix(now),
        "exp": unix(expires_at),
        "appid": client_id,
        "idtyp": "app",
        "oid": object_id,
        "sub": object_id,
        "tid": tenant,
        "ver": "1.0",
    });
    let rng = crate::api::admin::token_rng();
    let random = format!("{}{}", uuid_from(rng).simple(), uuid_from(rng).simple());
    let token = format!(
        "{header}.{}.{}",
        b64(claims.to_string().as_bytes()),
        b64(random.as_bytes())
    );
    crate::api::admin::insert_token(
        s,
        token.clone(),
        Token {
            principal_id: object_id.to_string(),
            principal_type: "ServicePrincipal".into(),
            expires_at,
            audience: Some(resource.to_string()),
        },
    );
    (token, lifetime.as_secs())
}

fn log(
    s: &Shared,
    method: &str,
    path: &str,
    status: StatusCode,
    principal: Option<&str>,
    scope: Option<&str>,
) {
    s.push_log(LogEntry {
        method: method.into(),
        path: path.into(),
        query: None,
        status: status.as_u16(),
        principal: principal.map(str::to_string),
        fault: None,
        scope: scope.map(str::to_string),
    });
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) async fn token(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let scope = form.get("scope").map(String::as_str);
    let (resp, principal) = token_response(&s, &tenant, &form);
    log(
        &s,
        "POST",
        &format!("/{tenant}/oauth2/v2.0/token"),
        resp.status(),
        principal.as_deref(),
        scope,
    );
    resp
}

fn token_response(
    s: &Shared,
    tenant: &str,
    form: &HashMap<String, String>,
) -> (Response, Option<String>) {
    let identity = &s.config.identity;
    let bad = StatusCode::BAD_REQUEST;
    if !identity.has_tenant(tenant) {
        let msg = format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
        );
        return (entra_error(s, bad, "invalid_request", 90_002, &msg), None);
    }
    let get = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(grant) = get("grant_type") else {
        return (missing("grant_type").render(s), None);
    };
    if grant != "client_credentials" {
        let msg = format!("The app requested an unsupported grant type '{grant}'.");
        return (
            entra_error(s, bad, "unsupported_grant_type", 70_003, &msg),
            None,
        );
    }
    let Some(client_id) = get("client_id") else {
        return (missing("client_id").render(s), None);
    };
    let Some(app) = identity.app(tenant, client_id) else {
        let msg = format!(
            "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
        );
        return (
            entra_error(s, bad, "unauthorized_client", 700_016, &msg),
            None,
        );
    };
    let Some(scope) = get("scope") else {
        return (missing("scope").render(s), None);
    };
    let resource = match client_credentials_resource(tenant, scope) {
        Ok(r) => r,
        Err(e) => return (e.render(s), None),
    };
    if let Err(e) = authenticate_client(s, app, form) {
        return (e.render(s), None);
    }
    let (token, lifetime) = issue(s, tenant, &app.client_id, &app.object_id, resource);
    let body = json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    });
    (
        json_response(StatusCode::OK, &body),
        Some(app.object_id.clone()),
    )
}

/// The one `{resource}/.default` scope client credentials allow.
fn client_credentials_resource(tenant: &str, scope: &str) -> Result<&'static str, Refusal> {
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let invalid =
        |code: u32, msg: String| Refusal::new(StatusCode::BAD_REQUEST, "invalid_scope", code, msg);
    let [one] = scopes.as_slice() else {
        return Err(invalid(
            70_011,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        ));
    };
    let Some(resource) = one.strip_suffix("/.default") else {
        return Err(invalid(
            1_002_012,
            format!(
                "The provided value for scope {one} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    };
    known_resource(resource).ok_or_else(|| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500_011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        )
    })
}

/// Checks the client secret, or the federated client assertion.
fn authenticate_client(
    s: &Shared,
    app: &Application,
    form: &HashMap<String, String>,
) -> Result<(), Refusal> {
    let get = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let invalid_client = |status: StatusCode, code: u32, msg: String| {
        Refusal::new(status, "invalid_client", code, msg)
    };
    if let Some(secret) = get("client_secret") {
        return if app.client_secret.as_deref() == Some(secret) {
            Ok(())
        } else {
            Err(invalid_client(
                StatusCode::UNAUTHORIZED,
                7_000_215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    app.client_id
                ),
            ))
        };
    }
    let Some(assertion) = get("client_assertion") else {
        return Err(invalid_client(
            StatusCode::UNAUTHORIZED,
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".into(),
        ));
    };
    let Some(kind) = get("client_assertion_type") else {
        return Err(missing("client_assertion_type"));
    };
    if kind != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50_027,
            format!("Invalid client_assertion_type '{kind}'."),
        ));
    }
    let Some(claims) = jwt_claims(assertion) else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50_027,
            "JWT token is invalid or malformed.".into(),
        ));
    };
    let now = unix(s.now());
    let exp = claims.get("exp").and_then(Value::as_i64);
    let nbf = claims.get("nbf").and_then(Value::as_i64);
    if exp.is_none_or(|e| e <= now) || nbf.is_some_and(|n| n > now) {
        return Err(invalid_client(
            StatusCode::BAD_REQUEST,
            700_024,
            "Client assertion is not within its valid time range.".into(),
        ));
    }
    let claim = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let (iss, sub) = (claim("iss"), claim("sub"));
    let matched = app
        .federated_credentials
        .iter()
        .any(|f| f.issuer == iss && f.subject == sub && audiences.contains(&f.audience.as_str()));
    if matched {
        return Ok(());
    }
    Err(invalid_client(
        StatusCode::BAD_REQUEST,
        70_021,
        format!(
            "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'.",
            audiences.join(",")
        ),
    ))
}

/// The claims of a compact JWT. Signatures are not checked: the emulator cannot reach the
/// issuers' keys, and the point is to exercise the client side of the exchange.
fn jwt_claims(jwt: &str) -> Option<serde_json::Map<String, Value>> {
    let mut parts = jwt.trim().split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A client assertion for an application's first federated credential, valid for
/// `lifetime` on the emulator's clock — what GitHub Actions or AKS would hand the workload.
pub(crate) fn federated_assertion(
    s: &Shared,
    client_id: &str,
    lifetime: Duration,
) -> Option<String> {
    let app = s
        .config
        .identity
        .applications
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(client_id))?;
    let fed = app.federated_credentials.first()?;
    let now = s.now();
    let claims = json!({
        "iss": fed.issuer,
        "sub": fed.subject,
        "aud": if fed.audience.is_empty() { FEDERATED_AUDIENCE } else { fed.audience.as_str() },
        "iat": unix(now),
        "nbf": unix(now),
        "exp": unix(crate::util::later(now, lifetime)),
    });
    Some(format!(
        "{}.{}.{}",
        b64(br#"{"typ":"JWT","alg":"none"}"#),
        b64(claims.to_string().as_bytes()),
        b64(uuid_from(crate::api::admin::token_rng())
            .simple()
            .to_string()
            .as_bytes())
    ))
}

fn mi_error(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        &json!({"statusCode": status.as_u16(), "message": message}),
    )
}

/// `GET /msi/token?api-version=2019-08-01&resource=…` with `x-identity-header`: the App
/// Service managed-identity endpoint (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`).
pub(crate) async fn managed_identity(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let q: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let resource = q.get("resource").cloned();
    let (resp, principal) = mi_response(&s, &headers, &q);
    log(
        &s,
        "GET",
        "/msi/token",
        resp.status(),
        principal.as_deref(),
        resource.as_deref(),
    );
    resp
}

fn mi_response(
    s: &Shared,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> (Response, Option<String>) {
    let bad = StatusCode::BAD_REQUEST;
    let Some(mi) = &s.config.identity.managed_identity else {
        return (
            mi_error(bad, "No managed identity is assigned to this resource."),
            None,
        );
    };
    let header = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok());
    if header != Some(mi.header.as_str()) {
        return (
            mi_error(
                StatusCode::UNAUTHORIZED,
                "The X-IDENTITY-HEADER request header is missing or invalid.",
            ),
            None,
        );
    }
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    match get("api-version") {
        Some("2019-08-01") => {}
        Some(v) => {
            return (
                mi_error(
                    bad,
                    &format!("The api-version '{v}' is not supported; use 2019-08-01."),
                ),
                None,
            );
        }
        None => {
            return (
                mi_error(bad, "The api-version parameter is required."),
                None,
            );
        }
    }
    let Some(resource) = get("resource") else {
        return (mi_error(bad, "The resource parameter is required."), None);
    };
    let named = [
        get("client_id").map(|c| c.eq_ignore_ascii_case(&mi.client_id)),
        get("principal_id").map(|p| p.eq_ignore_ascii_case(&mi.object_id)),
        get("object_id").map(|p| p.eq_ignore_ascii_case(&mi.object_id)),
    ];
    if named.contains(&Some(false)) {
        return (
            mi_error(
                bad,
                "No Managed Identity found for specified ClientId/ResourceId/PrincipalId.",
            ),
            None,
        );
    }
    let Some(known) = known_resource(resource.strip_suffix("/.default").unwrap_or(resource)) else {
        let tenant = s.config.identity.default_tenant();
        return (
            mi_error(
                bad,
                &format!(
                    "AADSTS500011: The resource principal named {resource} was not found in the tenant named {tenant}."
                ),
            ),
            None,
        );
    };
    let tenant = s.config.identity.default_tenant().to_string();
    let (token, _) = issue(s, &tenant, &mi.client_id, &mi.object_id, known);
    let expires_on = unix(crate::util::later(
        s.now(),
        s.config.identity.token_lifetime,
    ));
    let body = json!({
        "access_token": token,
        "expires_on": expires_on.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": mi.client_id,
    });
    (
        json_response(StatusCode::OK, &body),
        Some(mi.object_id.clone()),
    )
}

/// Any other method on the token endpoint: Entra answers 405 without a body... except the
/// SDK never sends one; a JSON error keeps clients' parsers happy.
pub(crate) async fn token_method_not_allowed(State(s): State<Arc<Shared>>) -> Response {
    let mut r = entra_error(
        &s,
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        900_561,
        "The endpoint only accepts POST requests.",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    r.into_response()
}
