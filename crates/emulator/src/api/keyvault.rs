//! The Key Vault secrets stand-in: one vault at the emulator's root (`/secrets/...`), with
//! versions, disabled secrets, paged lists and the challenge flow the Azure SDK expects: a
//! request without a token gets `401` and a `WWW-Authenticate` header naming the authority
//! and the vault resource; the SDK then fetches a token for that scope and retries.
//!
//! Any valid token for `https://vault.azure.net` may do anything (no access policies).
//! Deleting a secret purges it at once (no soft-delete recovery).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, RawQuery, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode, header};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::entra::VAULT_RESOURCE;
use crate::server::{LogEntry, Shared, TokenCheck, bearer, check_token, origin};
use crate::store::{SecretVersion, VaultSecret};
use crate::util::uuid_from;

/// Most entries per page of a list (`maxresults` may only lower it).
const MAX_PAGE: usize = 25;

/// `{"error":{"code","message"}}`, Key Vault's error shape.
fn kv_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    crate::api::json(
        status,
        &json!({"error": {"code": code, "message": message.into()}}),
    )
}

fn not_found(name: &str) -> Response {
    kv_error(
        StatusCode::NOT_FOUND,
        "SecretNotFound",
        format!(
            "A secret with (name/id) {name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
        ),
    )
}

fn bad_parameter(message: impl Into<String>) -> Response {
    kv_error(StatusCode::BAD_REQUEST, "BadParameter", message)
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Who the caller is, put in the request by [`gate`].
#[derive(Debug, Clone)]
struct Caller {
    origin: String,
}

/// Every vault request: the challenge / token check, the `api-version` check, the log.
pub(crate) async fn gate(State(s): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let origin = origin(&s, req.headers(), req.extensions());
    let log = |status: StatusCode, principal: Option<String>| {
        s.push_log(LogEntry {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            status: status.as_u16(),
            principal,
            fault: None,
            scope: None,
        });
    };
    let challenge = |message: &str| {
        let mut r = kv_error(StatusCode::UNAUTHORIZED, "Unauthorized", message);
        let value = format!(
            r#"Bearer authorization="{origin}/{}", resource="{VAULT_RESOURCE}""#,
            s.config.identity.default_tenant()
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    };
    let principal = match bearer(req.headers()).map(|t| check_token(&s, t)) {
        None => Err(challenge(
            "AKV10000: Request is missing a Bearer or PoP token.",
        )),
        Some(TokenCheck::Valid(id, _, aud)) => match aud {
            Some(a) if !a.trim_end_matches('/').eq_ignore_ascii_case(VAULT_RESOURCE) => {
                Err(challenge(&format!(
                    "AKV10022: Invalid audience. Expected {VAULT_RESOURCE}, found: {a}."
                )))
            }
            _ => Ok(id),
        },
        Some(TokenCheck::Expired) => Err(challenge("AKV10032: Token has expired.")),
        Some(TokenCheck::Unknown) => Err(challenge("AKV10001: Token is invalid.")),
    };
    let principal = match principal {
        Ok(p) => p,
        Err(r) => {
            log(r.status(), None);
            return r;
        }
    };
    let has_version = query.as_deref().is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "api-version" && !v.is_empty())
    });
    if !has_version {
        let r = bad_parameter("The 'api-version' query parameter is missing.");
        log(r.status(), Some(principal));
        return r;
    }
    req.extensions_mut().insert(Caller { origin });
    let resp = next.run(req).await;
    log(resp.status(), Some(principal));
    resp
}

fn caller(req_ext: &http::Extensions) -> String {
    req_ext
        .get::<Caller>()
        .map(|c| c.origin.clone())
        .unwrap_or_default()
}

fn valid_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn attributes(v: &SecretVersion) -> Value {
    let mut a = json!({
        "enabled": v.enabled,
        "created": v.created,
        "updated": v.updated,
        "recoveryLevel": "Purgeable",
    });
    if let Some(exp) = v.exp {
        a["exp"] = json!(exp);
    }
    if let Some(nbf) = v.nbf {
        a["nbf"] = json!(nbf);
    }
    a
}

/// A `SecretBundle` (with the value) or a `SecretItem` (without it, for lists).
fn bundle(origin: &str, secret: &VaultSecret, v: &SecretVersion, with_value: bool) -> Value {
    let mut b = json!({
        "id": format!("{origin}/secrets/{}/{}", secret.name, v.version),
        "attributes": attributes(v),
    });
    if with_value {
        b["value"] = json!(v.value);
    }
    if let Some(ct) = &v.content_type {
        b["contentType"] = json!(ct);
    }
    if let Some(tags) = &v.tags {
        b["tags"] = Value::Object(tags.clone());
    }
    b
}

fn params(query: Option<String>) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// `GET /secrets/{name}` and `/secrets/{name}/`: the latest version.
pub(crate) async fn get_latest(
    State(s): State<Arc<Shared>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    read(&s, &caller(req.extensions()), &name, None)
}

/// `GET /secrets/{name}/{version}` (an empty version means the latest).
pub(crate) async fn get_version(
    State(s): State<Arc<Shared>>,
    Path((name, version)): Path<(String, String)>,
    req: Request,
) -> Response {
    let version = Some(version.as_str()).filter(|v| !v.is_empty());
    read(&s, &caller(req.extensions()), &name, version)
}

fn read(s: &Shared, origin: &str, name: &str, version: Option<&str>) -> Response {
    let store = s.read();
    let Some(secret) = store.secrets.get(&name.to_lowercase()) else {
        return not_found(name);
    };
    let found = match version {
        None => secret.versions.last(),
        Some(ver) => secret
            .versions
            .iter()
            .find(|v| v.version.eq_ignore_ascii_case(ver)),
    };
    let Some(v) = found else {
        return not_found(&format!("{name}/{}", version.unwrap_or_default()));
    };
    if !v.enabled {
        return crate::api::json(
            StatusCode::FORBIDDEN,
            &json!({"error": {
                "code": "Forbidden",
                "message": "Operation get is not allowed on a disabled secret.",
                "innererror": {"code": "SecretDisabled"},
            }}),
        );
    }
    crate::api::json(StatusCode::OK, &bundle(origin, secret, v, true))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attributes {
    enabled: Option<bool>,
    exp: Option<i64>,
    nbf: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetBody {
    value: Option<String>,
    content_type: Option<String>,
    attributes: Option<Attributes>,
    tags: Option<Map<String, Value>>,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("Invalid request body: {e}"))
}

/// `PUT /secrets/{name}`: a new version (the secret is created on its first).
pub(crate) async fn set(
    State(s): State<Arc<Shared>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    let origin = caller(req.extensions());
    let body = match axum::body::to_bytes(req.into_body(), s.config.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return kv_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestBodyTooLarge",
                "The request body is too large.",
            );
        }
    };
    if !valid_name(&name) {
        return bad_parameter(format!(
            "The request URI contains an invalid name: {name}. Secret names may contain only 0-9, a-z, A-Z and -, up to 127 characters."
        ));
    }
    let b: SetBody = match parse(&body) {
        Ok(b) => b,
        Err(e) => return bad_parameter(e),
    };
    let Some(value) = b.value else {
        return bad_parameter("The parameter 'value' is required.");
    };
    let attrs = b.attributes.unwrap_or(Attributes {
        enabled: None,
        exp: None,
        nbf: None,
    });
    let (secret, v) = put(
        &s,
        &name,
        value,
        b.content_type,
        attrs.enabled.unwrap_or(true),
        (attrs.exp, attrs.nbf),
        b.tags,
    );
    crate::api::json(StatusCode::OK, &bundle(&origin, &secret, &v, true))
}

/// Stores a new version; returns the secret and that version.
pub(crate) fn put(
    s: &Shared,
    name: &str,
    value: String,
    content_type: Option<String>,
    enabled: bool,
    (exp, nbf): (Option<i64>, Option<i64>),
    tags: Option<Map<String, Value>>,
) -> (VaultSecret, SecretVersion) {
    let now = unix(s.now());
    let v = SecretVersion {
        version: uuid_from(&s.ids).simple().to_string(),
        value,
        content_type,
        enabled,
        exp,
        nbf,
        created: now,
        updated: now,
        tags,
    };
    let mut store = s.write();
    let secret = store
        .secrets
        .entry(name.to_lowercase())
        .or_insert_with(|| VaultSecret {
            name: name.to_string(),
            versions: Vec::new(),
        });
    secret.versions.push(v.clone());
    (
        VaultSecret {
            name: secret.name.clone(),
            versions: Vec::new(),
        },
        v,
    )
}

/// `PATCH /secrets/{name}/{version}`: attributes, content type and tags (not the value).
pub(crate) async fn update(
    State(s): State<Arc<Shared>>,
    Path((name, version)): Path<(String, String)>,
    req: Request,
) -> Response {
    let origin = caller(req.extensions());
    let Ok(body) = axum::body::to_bytes(req.into_body(), s.config.max_body_bytes).await else {
        return kv_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestBodyTooLarge",
            "The request body is too large.",
        );
    };
    let b: SetBody = match parse(&body) {
        Ok(b) => b,
        Err(e) => return bad_parameter(e),
    };
    let now = unix(s.now());
    let mut store = s.write();
    let Some(secret) = store.secrets.get_mut(&name.to_lowercase()) else {
        return not_found(&name);
    };
    let found = if version.is_empty() {
        secret.versions.last_mut()
    } else {
        secret
            .versions
            .iter_mut()
            .find(|v| v.version.eq_ignore_ascii_case(&version))
    };
    let Some(v) = found else {
        return not_found(&format!("{name}/{version}"));
    };
    if let Some(a) = b.attributes {
        if let Some(e) = a.enabled {
            v.enabled = e;
        }
        if a.exp.is_some() {
            v.exp = a.exp;
        }
        if a.nbf.is_some() {
            v.nbf = a.nbf;
        }
    }
    if b.content_type.is_some() {
        v.content_type = b.content_type;
    }
    if b.tags.is_some() {
        v.tags = b.tags;
    }
    v.updated = now;
    let v = v.clone();
    let shell = VaultSecret {
        name: secret.name.clone(),
        versions: Vec::new(),
    };
    // An update answers without the value, as the service does.
    crate::api::json(StatusCode::OK, &bundle(&origin, &shell, &v, false))
}

/// `DELETE /secrets/{name}`: every version; answers a `DeletedSecretBundle`.
pub(crate) async fn delete(
    State(s): State<Arc<Shared>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    let origin = caller(req.extensions());
    let Some(secret) = s.write().secrets.remove(&name.to_lowercase()) else {
        return not_found(&name);
    };
    let Some(last) = secret.versions.last() else {
        return not_found(&name);
    };
    let now = unix(s.now());
    let mut b = bundle(&origin, &secret, last, false);
    b["recoveryId"] = json!(format!("{origin}/deletedsecrets/{}", secret.name));
    b["deletedDate"] = json!(now);
    b["scheduledPurgeDate"] = json!(now);
    crate::api::json(StatusCode::OK, &b)
}

/// One page of items after `skip` (a name), with the `nextLink` to the next one.
fn page(origin: &str, path: &str, query: Option<String>, items: Vec<(String, Value)>) -> Response {
    let q = params(query);
    let max = match q.get("maxresults").map(|m| m.parse::<usize>()) {
        None => MAX_PAGE,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return bad_parameter(format!(
                "The value of 'maxresults' must be an integer from 1 to {MAX_PAGE}."
            ));
        }
    };
    let skip = q.get("$skiptoken").cloned().unwrap_or_default();
    let mut rest = items
        .into_iter()
        .filter(|(k, _)| skip.is_empty() || *k > skip);
    let value: Vec<(String, Value)> = rest.by_ref().take(max).collect();
    let next = match (value.last(), rest.next()) {
        (Some((last, _)), Some(_)) => {
            let mut url = url::form_urlencoded::Serializer::new(String::new());
            url.append_pair(
                "api-version",
                q.get("api-version").map_or("7.5", String::as_str),
            );
            url.append_pair("$skiptoken", last);
            url.append_pair("maxresults", &max.to_string());
            json!(format!("{origin}{path}?{}", url.finish()))
        }
        _ => Value::Null,
    };
    let value: Vec<Value> = value.into_iter().map(|(_, v)| v).collect();
    crate::api::json(StatusCode::OK, &json!({"value": value, "nextLink": next}))
}

/// `GET /secrets`: the latest version of each secret, without values, paged.
pub(crate) async fn list(
    State(s): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Response {
    let origin = caller(req.extensions());
    let items: Vec<(String, Value)> = s
        .read()
        .secrets
        .iter()
        .filter_map(|(key, secret)| {
            let v = secret.versions.last()?;
            let mut item = bundle(&origin, secret, v, false);
            item["id"] = json!(format!("{origin}/secrets/{}", secret.name));
            Some((key.clone(), item))
        })
        .collect();
    page(&origin, "/secrets", query, items)
}

/// `GET /secrets/{name}/versions`: every version of one secret, without values, paged.
pub(crate) async fn versions(
    State(s): State<Arc<Shared>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Response {
    let origin = caller(req.extensions());
    let items: Vec<(String, Value)> = {
        let store = s.read();
        let Some(secret) = store.secrets.get(&name.to_lowercase()) else {
            return not_found(&name);
        };
        // Keyed by creation order, so the skip token pages them in order.
        secret
            .versions
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{i:08}"), bundle(&origin, secret, v, false)))
            .collect()
    };
    page(&origin, &format!("/secrets/{name}/versions"), query, items)
}

/// Any other method on a vault path.
pub(crate) async fn method_not_allowed(method: Method) -> Response {
    kv_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("The requested resource does not support http method '{method}'."),
    )
}
