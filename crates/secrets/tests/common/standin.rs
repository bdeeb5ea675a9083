//! A loopback HTTPS stand-in for what the emulator does not serve: the CI OIDC endpoints of
//! Azure Pipelines and GitHub Actions, and an Entra token endpoint that exchanges their
//! (opaque) OIDC token. It serves a leaf certificate for 127.0.0.1 signed by a freshly
//! generated CA, which clients trust only through fabrik's extra-CA option. Everything the
//! emulator serves (Entra ID, managed identity, Key Vault) is tested against the emulator in
//! `azure_tls.rs`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;

pub const TENANT: &str = "tenant-1";
pub const CLIENT_ID: &str = "app-1";
pub const CLIENT_SECRET: &str = "s3cr3t-client-value-7f1e";
pub const ASSERTION: &str = "federated-assertion-jwt-9c2d";
pub const SYSTEM_TOKEN: &str = "pipelines-system-token-51bb";
pub const SERVICE_CONNECTION: &str = "sc-1";
pub const GH_REQUEST_TOKEN: &str = "gh-request-token-77cc";

#[derive(Debug, Default)]
pub struct Seen {
    /// (grant kind, scope) per successful token request.
    pub tokens: Vec<(String, String)>,
    pub token_failures: usize,
    pub oidc: usize,
}

#[derive(Debug)]
pub struct Inner {
    pub seen: Mutex<Seen>,
    pub lifetime_secs: Mutex<u64>,
    pub issued: Mutex<u64>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub addr: SocketAddr,
    pub ca_pem: String,
    pub state: Arc<Inner>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
    pub fn seen<R>(&self, f: impl FnOnce(&Seen) -> R) -> R {
        f(&self.state.seen.lock().unwrap())
    }
    /// Writes the CA to a file, as the emulator's --ca-out does.
    pub fn ca_file(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let p = dir.join("ca.pem");
        std::fs::write(&p, &self.ca_pem).unwrap();
        p
    }
}

fn tls_config() -> (Arc<rustls::ServerConfig>, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "fabrik test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca, &ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    (Arc::new(cfg), ca_cert.pem())
}

pub async fn start() -> Server {
    let (tls, ca_pem) = tls_config();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(Inner {
        seen: Mutex::default(),
        lifetime_secs: Mutex::new(3599),
        issued: Mutex::new(0),
    });
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/oidc", post(oidc))
        .route("/gh-oidc", get(gh_oidc))
        .with_state(state.clone());
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                break;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
                    .await;
            });
        }
    });
    Server {
        addr,
        ca_pem,
        state,
    }
}

type St = State<Arc<Inner>>;

fn issue(state: &Inner, kind: &str, scope: &str) -> (String, u64) {
    let mut n = state.issued.lock().unwrap();
    *n += 1;
    state
        .seen
        .lock()
        .unwrap()
        .tokens
        .push((kind.into(), scope.into()));
    (
        format!("tok-{}-{kind}", *n),
        *state.lifetime_secs.lock().unwrap(),
    )
}

fn entra_error(status: StatusCode, error: &str, code: u32, desc: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {desc}"),
            "error_codes": [code],
        })),
    )
        .into_response()
}

async fn token(State(state): St, Path(tenant): Path<String>, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let scope = form.get("scope").cloned().unwrap_or_default();
    let fail = |s: &Inner| s.seen.lock().unwrap().token_failures += 1;
    if tenant != TENANT {
        fail(&state);
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            "Tenant not found.",
        );
    }
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        fail(&state);
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application not found in the directory.",
        );
    }
    let kind = match (form.get("client_secret"), form.get("client_assertion")) {
        (Some(s), _) if s == CLIENT_SECRET => "secret",
        (_, Some(a)) if a == ASSERTION => "assertion",
        _ => {
            fail(&state);
            return entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            );
        }
    };
    let (tok, life) = issue(&state, kind, &scope);
    axum::Json(json!({"token_type": "Bearer", "expires_in": life, "access_token": tok}))
        .into_response()
}

async fn oidc(
    State(state): St,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let auth_ok = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {SYSTEM_TOKEN}"));
    if !auth_ok || q.get("serviceConnectionId").map(String::as_str) != Some(SERVICE_CONNECTION) {
        return (StatusCode::UNAUTHORIZED, "bad system token").into_response();
    }
    state.seen.lock().unwrap().oidc += 1;
    axum::Json(json!({"oidcToken": ASSERTION})).into_response()
}

async fn gh_oidc(
    State(state): St,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let auth_ok = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {GH_REQUEST_TOKEN}"));
    if !auth_ok || q.get("audience").map(String::as_str) != Some("api://AzureADTokenExchange") {
        return (StatusCode::UNAUTHORIZED, "bad request token or audience").into_response();
    }
    state.seen.lock().unwrap().oidc += 1;
    axum::Json(json!({"count": 1, "value": ASSERTION})).into_response()
}
