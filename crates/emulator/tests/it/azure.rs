//! The Azure stand-ins over real TLS: Entra ID tokens (client secret, federated assertion,
//! managed identity), their use on `/v1`, Key Vault secrets, Application Insights ingestion,
//! and the error shapes of each. Clients trust only the emulator's generated CA.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use fabrik_core::time::ManualClock;
use fabrik_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_IDENTITY_HEADER, DEFAULT_INSTRUMENTATION_KEY,
    DEFAULT_MI_OBJECT_ID, DEFAULT_SP_OBJECT_ID, DEFAULT_TENANT_ID, Emulator, EmulatorConfig,
    TlsConfig,
};
use serde_json::{Value, json};

const FABRIC: &str = "https://api.fabric.microsoft.com/.default";
const VAULT: &str = "https://vault.azure.net/.default";

struct Tls {
    emu: Emulator,
    http: reqwest::Client,
    clock: ManualClock,
    url: String,
}

async fn start_with(f: impl FnOnce(&mut EmulatorConfig)) -> Tls {
    let clock = ManualClock::new();
    let mut config = EmulatorConfig {
        clock: Arc::new(clock.clone()),
        sleeper: Arc::new(clock.clone()),
        tls: Some(TlsConfig::default()),
        ..EmulatorConfig::default()
    };
    f(&mut config);
    let emu = Emulator::start(config).await.expect("emulator starts");
    let ca = reqwest::Certificate::from_pem(emu.ca_pem().expect("CA").as_bytes()).unwrap();
    // Only the emulator's CA: no system roots, nothing switched off.
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let url = emu.tls_base_url().expect("https url").to_string();
    Tls {
        emu,
        http,
        clock,
        url,
    }
}

async fn start() -> Tls {
    start_with(|_| {}).await
}

async fn read(r: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

impl Tls {
    async fn token_request(&self, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let r = self
            .http
            .post(format!("{}/{tenant}/oauth2/v2.0/token", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, _, body) = read(r).await;
        (status, body)
    }

    async fn secret_token(&self, scope: &str) -> String {
        let (status, body) = self
            .token_request(
                DEFAULT_TENANT_ID,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", DEFAULT_CLIENT_ID),
                    ("client_secret", DEFAULT_CLIENT_SECRET),
                    ("scope", scope),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3599);
        body["access_token"].as_str().unwrap().to_string()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.unwrap()).await
    }
}

/// Asserts Entra's error shape and returns the AADSTS code.
#[track_caller]
fn aadsts(body: &Value, error: &str) -> u64 {
    assert_eq!(body["error"], error, "{body}");
    let code = body["error_codes"][0].as_u64().expect("error_codes");
    let desc = body["error_description"].as_str().unwrap();
    assert!(desc.starts_with(&format!("AADSTS{code}: ")), "{desc}");
    for field in ["trace_id", "correlation_id", "timestamp", "error_uri"] {
        assert!(body[field].is_string(), "{field} missing: {body}");
    }
    code
}

#[tokio::test]
async fn https_needs_the_generated_ca_and_serves_the_fabric_api_too() {
    let t = start().await;
    assert!(t.url.starts_with("https://127.0.0.1:"), "{}", t.url);
    let pem = t.emu.ca_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    // Without the CA the handshake fails: the certificate is really checked.
    let err = reqwest::Client::builder()
        .tls_certs_only(std::iter::empty::<reqwest::Certificate>())
        .build()
        .unwrap()
        .get(format!("{}/v1/workspaces", t.url))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    // With it, the Fabric API answers on https, and absolute URLs say https.
    let token = t.emu.mint_token("u-1", Duration::from_secs(60));
    let (status, h, body) = t
        .call(
            reqwest::Method::POST,
            "/v1/workspaces",
            Some(&token),
            Some(json!({"displayName": "over tls"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let location = h["location"].to_str().unwrap();
    assert!(location.starts_with(&t.url), "{location}");
    // The plain port is unchanged.
    assert!(t.emu.base_url().starts_with("http://"));
}

#[tokio::test]
async fn the_ca_is_written_to_ca_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    let p = path.clone();
    let t = start_with(move |c| {
        c.tls = Some(TlsConfig {
            port: 0,
            ca_out: Some(p),
        })
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        t.emu.ca_pem().unwrap()
    );
}

#[tokio::test]
async fn a_service_principal_token_identifies_it_to_the_fabric_api_until_it_expires() {
    let t = start().await;
    let token = t.secret_token(FABRIC).await;
    // JWT-shaped, naming the principal.
    let claims: Value = {
        use base64::Engine as _;
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims["oid"], DEFAULT_SP_OBJECT_ID);
    assert_eq!(claims["appid"], DEFAULT_CLIENT_ID);
    assert_eq!(claims["tid"], DEFAULT_TENANT_ID);
    assert_eq!(claims["aud"], "https://api.fabric.microsoft.com");

    let (status, _, ws) = t
        .call(
            reqwest::Method::POST,
            "/v1/workspaces",
            Some(&token),
            Some(json!({"displayName": "sp-made"})),
        )
        .await;
    assert_eq!(status, 201, "{ws}");
    let id = ws["id"].as_str().unwrap();
    let (_, _, roles) = t
        .call(
            reqwest::Method::GET,
            &format!("/v1/workspaces/{id}/roleAssignments"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(roles["value"][0]["principal"]["id"], DEFAULT_SP_OBJECT_ID);
    assert_eq!(roles["value"][0]["principal"]["type"], "ServicePrincipal");
    assert_eq!(roles["value"][0]["role"], "Admin");

    // Past its lifetime on the emulator's clock the API refuses it.
    t.clock.advance(Duration::from_secs(3599));
    let (status, _, body) = t
        .call(reqwest::Method::GET, "/v1/workspaces", Some(&token), None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["errorCode"], "TokenExpired");
}

#[tokio::test]
async fn throttling_is_per_service_principal() {
    let t = start_with(|c| c.throttle = Some("1/1".parse().unwrap())).await;
    let sp = t.secret_token(FABRIC).await;
    let user = t.emu.mint_token("u-1", Duration::from_secs(600));
    let get = |tok: String| {
        let t = &t;
        async move {
            t.call(reqwest::Method::GET, "/v1/workspaces", Some(&tok), None)
                .await
                .0
        }
    };
    assert_eq!(get(sp.clone()).await, 200);
    assert_eq!(get(sp.clone()).await, 429);
    assert_eq!(get(user).await, 200, "another principal has its own bucket");
    let (_, _, log) = read(
        t.http
            .get(format!("{}/_emulator/requests", t.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let principals: Vec<&str> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["path"] == "/v1/workspaces")
        .map(|e| e["principal"].as_str().unwrap())
        .collect();
    assert_eq!(
        principals,
        [DEFAULT_SP_OBJECT_ID, DEFAULT_SP_OBJECT_ID, "u-1"]
    );
}

#[tokio::test]
async fn token_lifetime_is_configurable() {
    let t = start_with(|c| c.identity.token_lifetime = Duration::from_secs(60)).await;
    let (status, body) = t
        .token_request(
            DEFAULT_TENANT_ID,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", DEFAULT_CLIENT_ID),
                ("client_secret", DEFAULT_CLIENT_SECRET),
                ("scope", FABRIC),
            ],
        )
        .await;
    assert_eq!((status, body["expires_in"].as_u64()), (200, Some(60)));
    let token = body["access_token"].as_str().unwrap();
    t.clock.advance(Duration::from_secs(59));
    let ok = t
        .call(reqwest::Method::GET, "/v1/workspaces", Some(token), None)
        .await;
    assert_eq!(ok.0, 200);
    t.clock.advance(Duration::from_secs(1));
    let expired = t
        .call(reqwest::Method::GET, "/v1/workspaces", Some(token), None)
        .await;
    assert_eq!(expired.2["errorCode"], "TokenExpired");
}

#[tokio::test]
async fn federated_assertions_are_exchanged_when_they_match_a_credential() {
    let t = start().await;
    let assertion = t
        .emu
        .federated_assertion(DEFAULT_CLIENT_ID, Duration::from_secs(600))
        .unwrap();
    let form = |a: &str| {
        vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", DEFAULT_CLIENT_ID.to_string()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
            ),
            ("client_assertion", a.to_string()),
            ("scope", FABRIC.to_string()),
        ]
    };
    let send = |f: Vec<(&'static str, String)>| {
        let t = &t;
        async move {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            t.token_request(DEFAULT_TENANT_ID, &pairs).await
        }
    };
    let (status, body) = send(form(&assertion)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string());

    // Not a JWT.
    let (status, body) = send(form("not-a-jwt")).await;
    assert_eq!((status, aadsts(&body, "invalid_request")), (400, 50027));
    // Another subject.
    let forged = {
        use base64::Engine as _;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims = json!({"iss": fabrik_emulator::DEFAULT_FEDERATED_ISSUER, "sub": "repo:evil/repo",
            "aud": "api://AzureADTokenExchange", "exp": 4_102_444_800_i64});
        format!("{}.{}.sig", e.encode("{}"), e.encode(claims.to_string()))
    };
    let (status, body) = send(form(&forged)).await;
    assert_eq!((status, aadsts(&body, "invalid_client")), (400, 70021));
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("repo:evil/repo")
    );
    // Past its own expiry.
    t.clock.advance(Duration::from_secs(601));
    let (status, body) = send(form(&assertion)).await;
    assert_eq!((status, aadsts(&body, "invalid_client")), (400, 700024));
    // Wrong assertion type.
    let mut f = form(&assertion);
    f[2].1 = "password".into();
    let (status, body) = send(f).await;
    assert_eq!((status, aadsts(&body, "invalid_request")), (400, 50027));
}

#[tokio::test]
async fn token_endpoint_errors_have_entra_shapes_and_codes() {
    let t = start().await;
    let base = |secret: &'static str, scope: &'static str| {
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", secret),
            ("scope", scope),
        ]
    };
    // (tenant, form, status, error, AADSTS code)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str, u64);
    let cases: Vec<Case<'_>> = vec![
        (
            "no-such-tenant",
            base(DEFAULT_CLIENT_SECRET, FABRIC),
            400,
            "invalid_request",
            90002,
        ),
        (
            DEFAULT_TENANT_ID,
            base("wrong-secret-4f1a", FABRIC),
            401,
            "invalid_client",
            7_000_215,
        ),
        (
            DEFAULT_TENANT_ID,
            base(
                DEFAULT_CLIENT_SECRET,
                "https://api.fabric.microsoft.com/Workspace.Read.All",
            ),
            400,
            "invalid_scope",
            1_002_012,
        ),
        (
            DEFAULT_TENANT_ID,
            base(DEFAULT_CLIENT_SECRET, "https://nowhere.example/.default"),
            400,
            "invalid_resource",
            500_011,
        ),
        (
            DEFAULT_TENANT_ID,
            base(
                DEFAULT_CLIENT_SECRET,
                "https://vault.azure.net/.default https://api.fabric.microsoft.com/.default",
            ),
            400,
            "invalid_scope",
            70011,
        ),
        (
            DEFAULT_TENANT_ID,
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "00000000-0000-0000-0000-000000000000"),
                ("client_secret", "x"),
                ("scope", FABRIC),
            ],
            400,
            "unauthorized_client",
            700_016,
        ),
        (
            DEFAULT_TENANT_ID,
            vec![
                ("grant_type", "password"),
                ("client_id", DEFAULT_CLIENT_ID),
                ("scope", FABRIC),
            ],
            400,
            "unsupported_grant_type",
            70003,
        ),
        (
            DEFAULT_TENANT_ID,
            vec![("client_id", DEFAULT_CLIENT_ID), ("scope", FABRIC)],
            400,
            "invalid_request",
            900_144,
        ),
        (
            DEFAULT_TENANT_ID,
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", DEFAULT_CLIENT_ID),
                ("scope", FABRIC),
            ],
            401,
            "invalid_client",
            7_000_218,
        ),
        (DEFAULT_TENANT_ID, vec![], 400, "invalid_request", 900_144),
    ];
    for (tenant, form, status, error, code) in cases {
        let (got, body) = t.token_request(tenant, &form).await;
        assert_eq!(got, status, "{form:?}: {body}");
        assert_eq!(aadsts(&body, error), code, "{form:?}");
        assert!(
            !body.to_string().contains("wrong-secret-4f1a"),
            "the secret is not echoed"
        );
    }
    // Another method: a JSON 405, never a 500.
    let r = t
        .http
        .get(format!("{}/{DEFAULT_TENANT_ID}/oauth2/v2.0/token", t.url))
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(r).await;
    assert_eq!(status, 405);
    aadsts(&body, "invalid_request");
}

#[tokio::test]
async fn a_token_is_only_good_for_its_audience() {
    let t = start().await;
    let vault = t.secret_token(VAULT).await;
    let (status, _, body) = t
        .call(reqwest::Method::GET, "/v1/workspaces", Some(&vault), None)
        .await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (401, Some("InvalidToken"))
    );
    let fabric = t.secret_token(FABRIC).await;
    let (status, h, body) = t
        .call(
            reqwest::Method::GET,
            "/secrets/x/?api-version=7.5",
            Some(&fabric),
            None,
        )
        .await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("audience")
    );
    assert!(h.contains_key("www-authenticate"));
}

#[tokio::test]
async fn the_managed_identity_endpoint_speaks_the_app_service_shape() {
    let t = start().await;
    let mi = |query: &str, header: Option<&str>| {
        let mut r = t
            .http
            .get(format!("{}/msi/token?{query}", t.emu.base_url()))
            .header("metadata", "true");
        if let Some(h) = header {
            r = r.header("x-identity-header", h);
        }
        async move { read(r.send().await.unwrap()).await }
    };
    let q = "api-version=2019-08-01&resource=https://api.fabric.microsoft.com";
    // Plain http, as App Service serves it.
    let (status, _, body) = mi(q, Some(DEFAULT_IDENTITY_HEADER)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["resource"], "https://api.fabric.microsoft.com");
    let expires: u64 = body["expires_on"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires, 1_767_225_600 + 3599, "the emulator's clock");
    let token = body["access_token"].as_str().unwrap();
    let (status, _, ws) = t
        .call(
            reqwest::Method::POST,
            "/v1/workspaces",
            Some(token),
            Some(json!({"displayName": "mi-made"})),
        )
        .await;
    assert_eq!(status, 201);
    let id = ws["id"].as_str().unwrap();
    let (_, _, roles) = t
        .call(
            reqwest::Method::GET,
            &format!("/v1/workspaces/{id}/roleAssignments"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(roles["value"][0]["principal"]["id"], DEFAULT_MI_OBJECT_ID);

    for (query, header, status) in [
        (q, None, 401),
        (q, Some("wrong"), 401),
        (
            "api-version=2017-09-01&resource=https://vault.azure.net",
            Some(DEFAULT_IDENTITY_HEADER),
            400,
        ),
        ("api-version=2019-08-01", Some(DEFAULT_IDENTITY_HEADER), 400),
        (
            "api-version=2019-08-01&resource=https://nowhere.example",
            Some(DEFAULT_IDENTITY_HEADER),
            400,
        ),
        (
            "api-version=2019-08-01&resource=https://vault.azure.net&client_id=someone-else",
            Some(DEFAULT_IDENTITY_HEADER),
            400,
        ),
    ] {
        let (got, _, body) = mi(query, header).await;
        assert_eq!(got, status, "{query}: {body}");
        assert_eq!(body["statusCode"], status, "{body}");
        assert!(body["message"].is_string());
    }
}

#[tokio::test]
async fn key_vault_challenges_then_serves_versions_lists_and_errors() {
    let t = start().await;
    let get = |path: String, token: Option<String>| {
        let t = &t;
        async move {
            t.call(reqwest::Method::GET, &path, token.as_deref(), None)
                .await
        }
    };
    // No token: the challenge names the authority and the vault resource.
    let (status, h, body) = get("/secrets/db/?api-version=7.5".into(), None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "Unauthorized");
    let challenge = h["www-authenticate"].to_str().unwrap();
    assert_eq!(
        challenge,
        format!(
            r#"Bearer authorization="{}/{DEFAULT_TENANT_ID}", resource="https://vault.azure.net""#,
            t.url
        )
    );
    let token = Some(t.secret_token(VAULT).await);

    let (status, _, body) = get("/secrets/db/?api-version=7.5".into(), token.clone()).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "SecretNotFound");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("(name/id) db was not found")
    );

    let put = |name: &str, body: Value| {
        let t = &t;
        let token = token.clone();
        let path = format!("/secrets/{name}?api-version=7.5");
        async move {
            t.call(reqwest::Method::PUT, &path, token.as_deref(), Some(body))
                .await
        }
    };
    let (status, _, v1) = put("db", json!({"value": "one"})).await;
    assert_eq!(status, 200, "{v1}");
    let (_, _, v2) = put("db", json!({"value": "two", "contentType": "text/plain"})).await;
    let v1_id = v1["id"].as_str().unwrap();
    assert!(
        v1_id.starts_with(&format!("{}/secrets/db/", t.url)),
        "{v1_id}"
    );
    let v1_version = v1_id.rsplit('/').next().unwrap().to_string();

    let (_, _, latest) = get("/secrets/DB/?api-version=7.5".into(), token.clone()).await;
    assert_eq!(
        (latest["value"].as_str(), latest["id"].as_str()),
        (Some("two"), v2["id"].as_str())
    );
    assert_eq!(latest["attributes"]["enabled"], true);
    assert_eq!(latest["attributes"]["created"], 1_767_225_600);
    let (_, _, old) = get(
        format!("/secrets/db/{v1_version}?api-version=7.5"),
        token.clone(),
    )
    .await;
    assert_eq!(old["value"], "one");
    let (status, _, body) = get(
        "/secrets/db/0123456789abcdef0123456789abcdef?api-version=7.5".into(),
        token.clone(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("SecretNotFound"))
    );

    // Disabled: 403 with the inner code.
    let (status, _, body) = t
        .call(
            reqwest::Method::PATCH,
            &format!("/secrets/db/{v1_version}?api-version=7.5"),
            token.as_deref(),
            Some(json!({"attributes": {"enabled": false}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("value").is_none());
    let (status, _, body) = get(
        format!("/secrets/db/{v1_version}?api-version=7.5"),
        token.clone(),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["innererror"]["code"], "SecretDisabled");

    // Lists page with nextLink, never carry values.
    for name in ["a", "b", "c"] {
        put(name, json!({"value": name})).await;
    }
    let mut names = Vec::new();
    let mut next = Some(format!("{}/secrets?api-version=7.5&maxresults=2", t.url));
    while let Some(url) = next {
        let path = url.strip_prefix(&t.url).unwrap().to_string();
        let (status, _, page) = get(path, token.clone()).await;
        assert_eq!(status, 200, "{page}");
        for item in page["value"].as_array().unwrap() {
            assert!(item.get("value").is_none());
            names.push(
                item["id"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
            );
        }
        next = page["nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(names, ["a", "b", "c", "db"]);
    let (_, _, versions) = get("/secrets/db/versions?api-version=7.5".into(), token.clone()).await;
    assert_eq!(versions["value"].as_array().unwrap().len(), 2);

    // Bad requests: 400 BadParameter, never a 500.
    for (method, path, body) in [
        (
            reqwest::Method::PUT,
            "/secrets/bad_name?api-version=7.5",
            Some(json!({"value": "x"})),
        ),
        (
            reqwest::Method::PUT,
            "/secrets/ok?api-version=7.5",
            Some(json!({"nope": 1})),
        ),
        (
            reqwest::Method::PUT,
            "/secrets/ok?api-version=7.5",
            Some(json!("not an object")),
        ),
        (reqwest::Method::GET, "/secrets/db/", None),
        (
            reqwest::Method::GET,
            "/secrets?api-version=7.5&maxresults=99",
            None,
        ),
    ] {
        let (status, _, body) = t.call(method, path, token.as_deref(), body).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "BadParameter", "{path}");
    }
    let (status, _, body) = t
        .call(
            reqwest::Method::POST,
            "/secrets/db?api-version=7.5",
            token.as_deref(),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (405, Some("MethodNotAllowed"))
    );

    // Delete: the bundle, then gone.
    let (status, _, body) = t
        .call(
            reqwest::Method::DELETE,
            "/secrets/db?api-version=7.5",
            token.as_deref(),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        body["recoveryId"]
            .as_str()
            .unwrap()
            .ends_with("/deletedsecrets/db")
    );
    let (status, _, _) = get("/secrets/db/?api-version=7.5".into(), token.clone()).await;
    assert_eq!(status, 404);
}

fn envelope(ikey: &str, base_type: &str, base: Value) -> Value {
    json!({
        "name": format!("Microsoft.ApplicationInsights.{base_type}"),
        "time": "2026-01-01T00:00:00.000Z",
        "iKey": ikey,
        "tags": {"ai.cloud.role": "fabrik"},
        "data": {"baseType": base_type, "baseData": base},
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn app_insights_ingestion_validates_and_stores_envelopes() {
    let t = start().await;
    let key = DEFAULT_INSTRUMENTATION_KEY;
    let items = json!([
        envelope(
            key,
            "EventData",
            json!({"ver": 2, "name": "deploy.started"})
        ),
        envelope(
            key,
            "MetricData",
            json!({"ver": 2, "metrics": [{"name": "items", "value": 3.0}]})
        ),
        envelope(
            key,
            "ExceptionData",
            json!({"ver": 2, "exceptions": [{"typeName": "E", "message": "m"}]})
        ),
        envelope(
            key,
            "RequestData",
            json!({"ver": 2, "id": "r1", "duration": "00:00:01.000", "responseCode": "200"})
        ),
        envelope(
            key,
            "RemoteDependencyData",
            json!({"ver": 2, "name": "GET /v1", "duration": "00:00:00.100"})
        ),
        envelope(
            &key.to_uppercase(),
            "MessageData",
            json!({"ver": 2, "message": "hello"})
        ),
    ]);
    let post = |url: String, body: Vec<u8>, gz: bool| {
        let mut r = t
            .http
            .post(url)
            .header("content-type", "application/x-json-stream");
        if gz {
            r = r.header("content-encoding", "gzip");
        }
        async move { read(r.body(body).send().await.unwrap()).await }
    };
    // Gzip over plain http (what exporters use with an http IngestionEndpoint).
    let (status, _, body) = post(
        format!("{}/v2.1/track", t.emu.base_url()),
        gzip(items.to_string().as_bytes()),
        true,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"itemsReceived": 6, "itemsAccepted": 6, "errors": []})
    );

    // Newline-delimited, over https, partly invalid: 206 with the indexes refused.
    let lines = [
        envelope(key, "EventData", json!({"name": "ok"})).to_string(),
        envelope(
            "11111111-2222-3333-4444-555555555555",
            "EventData",
            json!({"name": "x"}),
        )
        .to_string(),
        envelope(key, "EventData", json!({})).to_string(),
        "{not json".to_string(),
        envelope(key, "NoSuchData", json!({"name": "x"})).to_string(),
    ]
    .join("\n");
    let (status, _, body) = post(format!("{}/v2/track", t.url), lines.into_bytes(), false).await;
    assert_eq!(status, 206, "{body}");
    assert_eq!(
        (
            body["itemsReceived"].as_u64(),
            body["itemsAccepted"].as_u64()
        ),
        (Some(5), Some(1))
    );
    let errors = body["errors"].as_array().unwrap();
    let indexes: Vec<u64> = errors
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [1, 2, 3, 4]);
    assert_eq!(errors[0]["message"], "Invalid instrumentation key");
    assert!(errors.iter().all(|e| e["statusCode"] == 400));

    // Nothing valid: 400, same shape. A broken gzip stream: 400, not 500.
    let bad = json!([envelope("nope", "EventData", json!({"name": "x"}))]).to_string();
    let (status, _, body) = post(format!("{}/v2/track", t.url), bad.into_bytes(), false).await;
    assert_eq!((status, body["itemsAccepted"].as_u64()), (400, Some(0)));
    let (status, _, body) = post(format!("{}/v2/track", t.url), b"garbage".to_vec(), true).await;
    assert_eq!((status, body["itemsReceived"].as_u64()), (400, Some(0)));

    // Stored for inspection.
    let (_, _, stored) = read(
        t.http
            .get(format!("{}/_emulator/telemetry", t.emu.base_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(stored["items"].as_array().unwrap().len(), 7);
    assert_eq!(t.emu.telemetry().len(), 7);
    let (_, _, events) = read(
        t.http
            .get(format!(
                "{}/_emulator/telemetry?type=EventData",
                t.emu.base_url()
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let names: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"]["baseData"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["deploy.started", "ok"]);
    assert_eq!(
        t.emu.app_insights_connection_string(),
        format!("InstrumentationKey={key};IngestionEndpoint={}/", t.url)
    );
}

/// The real Application Insights exporter, pointed at the emulator by a connection string
/// only, delivers envelopes that then show up in `/_emulator/telemetry`. The span is handed
/// to the exporter directly: a batch processor would only add background timing.
#[tokio::test]
async fn an_app_insights_exporter_delivers_to_the_emulator() {
    use opentelemetry::trace::{
        Event, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
    let t = start().await;
    let emu = &t.emu;
    // The exporter insists on https; it trusts only the emulator's CA.
    let exporter = opentelemetry_application_insights::Exporter::new_from_connection_string(
        emu.app_insights_connection_string(),
        t.http.clone(),
    )
    .expect("valid connection string");
    let start = std::time::SystemTime::now();
    let span = SpanData {
        span_context: SpanContext::new(
            TraceId::from(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c_u128),
            SpanId::from(0x00f0_67aa_0ba9_02b7_u64),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: "deploy workspace".into(),
        start_time: start,
        end_time: start + Duration::from_millis(40),
        attributes: vec![opentelemetry::KeyValue::new("workspace", "sales")],
        dropped_attributes_count: 0,
        events: {
            let mut e = SpanEvents::default();
            e.events.push(Event::new("item created", start, vec![], 0));
            e
        },
        links: SpanLinks::default(),
        status: Status::Ok,
        instrumentation_scope: opentelemetry::InstrumentationScope::builder("fabrik-test").build(),
    };
    exporter
        .export(vec![span])
        .await
        .expect("the exporter delivered without error");

    let r: Value = reqwest::get(format!("{}/_emulator/telemetry", emu.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = r["items"].as_array().unwrap();
    let kinds: Vec<&str> = items
        .iter()
        .map(|e| e["data"]["baseType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["RemoteDependencyData", "MessageData"], "{r}");
    assert_eq!(items[0]["data"]["baseData"]["name"], "deploy workspace");
    assert_eq!(items[0]["iKey"], DEFAULT_INSTRUMENTATION_KEY);
    assert_eq!(items[1]["data"]["baseData"]["message"], "item created");
    // The exporter's request was accepted in full.
    let log: Value = reqwest::get(format!("{}/_emulator/requests", emu.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tracks: Vec<u64> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["path"].as_str().unwrap().ends_with("/track"))
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    assert_eq!(tracks, [200], "{log}");
}
