//! The real Azure SDK (azure_identity's ClientSecretCredential and WorkloadIdentityCredential,
//! azure_security_keyvault_secrets) over real TLS against `fabrik_emulator::Emulator`, trusted
//! only through the CA the emulator writes (`ca_out`) and fabrik's extra-CA option.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{FakeAz, Logs, synced_clock};
use fabrik_core::secret::ExposeSecret;
use fabrik_core::{
    AuthError, HealthCheck, HealthStatus, SecretError, SecretProvider, SecretString, TokenProvider,
};
use fabrik_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_IDENTITY_HEADER, DEFAULT_MI_OBJECT_ID,
    DEFAULT_SP_OBJECT_ID, DEFAULT_TENANT_ID, Emulator, EmulatorConfig, TlsConfig,
};
use fabrik_secrets::check::{AuthHealthCheck, FABRIC_SCOPE, VAULT_SCOPE};
use fabrik_secrets::keyvault::KeyVaultSecrets;
use fabrik_secrets::local::DefaultSecrets;
use fabrik_secrets::{
    AuthMethod, AzureAuth, AzureOptions, MapEnv, SecretsOptions, auth_check, build_secrets,
};
use serde_json::Value;

struct Ctx {
    emu: Emulator,
    /// The emulator's HTTPS URL: authority host and vault URL.
    url: String,
    dir: tempfile::TempDir,
    options: AzureOptions,
    base_env: MapEnv,
}

async fn ctx_with(f: impl FnOnce(&mut EmulatorConfig)) -> Ctx {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    // The emulator's clock starts at wall time: the SDK stamps token expiry with real time.
    let clock = synced_clock();
    let mut config = EmulatorConfig {
        clock: Arc::new(clock.clone()),
        sleeper: Arc::new(clock),
        tls: Some(TlsConfig {
            port: 0,
            ca_out: Some(ca.clone()),
        }),
        ..EmulatorConfig::default()
    };
    f(&mut config);
    let emu = Emulator::start(config).await.unwrap();
    let url = emu.tls_base_url().unwrap().to_owned();
    let base_env = MapEnv::new()
        .with("AZURE_AUTHORITY_HOST", url.clone())
        .with("FABRIK_CA_CERT", ca.display().to_string());
    let mut options = AzureOptions::from_env(&base_env).unwrap();
    options.no_retries = true;
    options.probe_imds = false;
    Ctx {
        emu,
        url,
        dir,
        options,
        base_env,
    }
}

async fn ctx() -> Ctx {
    ctx_with(|_| {}).await
}

impl Ctx {
    /// The emulator's request log (Entra ID, managed identity, Key Vault, `/v1`).
    async fn log(&self) -> Vec<Value> {
        let v: Value = reqwest::get(format!("{}/_emulator/requests", self.emu.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["requests"].as_array().unwrap().clone()
    }

    /// `(status, scope)` of every token request, in order.
    async fn token_requests(&self) -> Vec<(u64, String)> {
        self.log()
            .await
            .iter()
            .filter(|e| {
                e["path"].as_str().unwrap().ends_with("/oauth2/v2.0/token")
                    || e["path"] == "/msi/token"
            })
            .map(|e| {
                (
                    e["status"].as_u64().unwrap(),
                    e["scope"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// `(status, principal)` of every request to `path`.
    async fn requests_to(&self, path: &str) -> Vec<(u64, Option<String>)> {
        self.log()
            .await
            .iter()
            .filter(|e| e["path"] == path)
            .map(|e| {
                (
                    e["status"].as_u64().unwrap(),
                    e["principal"].as_str().map(str::to_owned),
                )
            })
            .collect()
    }

    /// `GET /v1/workspaces` over HTTPS with `token`, trusting only the emulator's CA.
    async fn fabric_status(&self, token: &str) -> u16 {
        let ca = reqwest::Certificate::from_pem(self.emu.ca_pem().unwrap().as_bytes()).unwrap();
        reqwest::Client::builder()
            .tls_certs_only([ca])
            .build()
            .unwrap()
            .get(format!("{}/v1/workspaces", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

fn sp_env(c: &Ctx) -> MapEnv {
    c.base_env
        .clone()
        .with("AZURE_TENANT_ID", DEFAULT_TENANT_ID)
        .with("AZURE_CLIENT_ID", DEFAULT_CLIENT_ID)
        .with("AZURE_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
}

fn mi_env(c: &Ctx) -> MapEnv {
    // Plain http, as App Service serves its identity endpoint.
    c.base_env
        .clone()
        .with(
            "IDENTITY_ENDPOINT",
            format!("{}/msi/token", c.emu.base_url()),
        )
        .with("IDENTITY_HEADER", DEFAULT_IDENTITY_HEADER)
}

fn auth(c: &Ctx, method: Option<AuthMethod>, env: &MapEnv) -> Result<AzureAuth, AuthError> {
    AzureAuth::from_env(method, None, env, &c.options, Arc::new(synced_clock()))
}

async fn fabric_token(a: &AzureAuth) -> Result<String, AuthError> {
    a.tokens
        .token(&[FABRIC_SCOPE])
        .await
        .map(|t| t.token.expose_secret().to_owned())
}

#[tokio::test]
async fn client_secret_gets_a_token_over_tls_with_only_the_extra_ca() {
    let c = ctx().await;
    let env = sp_env(&c).with("FABRIK_AUTH", "client-secret");
    let a = auth(&c, None, &env).unwrap();
    let tok = fabric_token(&a).await.unwrap();
    assert_eq!(
        c.token_requests().await,
        vec![(200, FABRIC_SCOPE.to_owned())]
    );
    assert!(
        a.tokens.describe().contains("client-secret")
            && a.tokens.describe().contains(DEFAULT_CLIENT_ID)
    );
    // The token is the service principal's on the Fabric API.
    assert_eq!(c.fabric_status(&tok).await, 200);
    assert_eq!(
        c.requests_to("/v1/workspaces").await,
        vec![(200, Some(DEFAULT_SP_OBJECT_ID.to_owned()))]
    );
}

#[tokio::test]
async fn without_the_extra_ca_the_certificate_is_refused() {
    let c = ctx().await;
    let mut options = c.options.clone();
    options.extra_ca_pem = None;
    let env = sp_env(&c);
    let a = AzureAuth::from_env(
        Some(AuthMethod::ClientSecret),
        None,
        &env,
        &options,
        Arc::new(synced_clock()),
    )
    .unwrap();
    let err = fabric_token(&a).await.unwrap_err();
    assert!(matches!(err, AuthError::Transport(_)), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    assert!(c.token_requests().await.is_empty());
}

#[tokio::test]
async fn a_wrong_secret_is_rejected_with_the_entra_code_and_without_the_secret() {
    let c = ctx().await;
    let env = sp_env(&c).with("AZURE_CLIENT_SECRET", "wrong-secret-value-123");
    let a = auth(&c, Some(AuthMethod::ClientSecret), &env).unwrap();
    let err = fabric_token(&a).await.unwrap_err();
    assert!(matches!(err, AuthError::Rejected(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("AADSTS7000215"), "{text}");
    assert!(!text.contains("wrong-secret-value-123"));
    assert_eq!(
        c.token_requests().await,
        vec![(401, FABRIC_SCOPE.to_owned())]
    );
}

#[tokio::test]
async fn workload_identity_exchanges_the_federated_token_file() {
    let c = ctx().await;
    let file = c.dir.path().join("federated-token");
    let assertion = c
        .emu
        .federated_assertion(DEFAULT_CLIENT_ID, Duration::from_secs(3600))
        .unwrap();
    std::fs::write(&file, assertion).unwrap();
    let env = c
        .base_env
        .clone()
        .with("AZURE_TENANT_ID", DEFAULT_TENANT_ID)
        .with("AZURE_CLIENT_ID", DEFAULT_CLIENT_ID)
        .with("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string());
    let a = auth(&c, Some(AuthMethod::WorkloadIdentity), &env).unwrap();
    let tok = fabric_token(&a).await.unwrap();
    assert!(a.tokens.describe().starts_with("workload-identity"));
    assert_eq!(
        c.token_requests().await,
        vec![(200, FABRIC_SCOPE.to_owned())]
    );
    assert_eq!(c.fabric_status(&tok).await, 200);
}

#[tokio::test]
async fn a_federated_token_that_matches_no_credential_is_rejected() {
    // Another application trusts another subject; its assertion is no good for ours.
    let c = ctx_with(|cfg| {
        cfg.identity
            .applications
            .push(fabrik_emulator::Application {
                client_id: "other-app".into(),
                client_secret: None,
                object_id: "other-object".into(),
                federated_credentials: vec![fabrik_emulator::FederatedCredential {
                    issuer: "https://token.actions.githubusercontent.com".into(),
                    subject: "repo:someone/else:ref:refs/heads/main".into(),
                    audience: fabrik_emulator::FEDERATED_AUDIENCE.into(),
                }],
                ..fabrik_emulator::Application::default_app()
            });
    })
    .await;
    let file = c.dir.path().join("federated-token");
    let assertion = c
        .emu
        .federated_assertion("other-app", Duration::from_secs(3600))
        .unwrap();
    std::fs::write(&file, assertion).unwrap();
    let env = c
        .base_env
        .clone()
        .with("AZURE_TENANT_ID", DEFAULT_TENANT_ID)
        .with("AZURE_CLIENT_ID", DEFAULT_CLIENT_ID)
        .with("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string());
    let a = auth(&c, Some(AuthMethod::WorkloadIdentity), &env).unwrap();
    let err = fabric_token(&a).await.unwrap_err();
    assert!(matches!(err, AuthError::Rejected(_)), "{err:?}");
    assert!(err.to_string().contains("AADSTS70021"), "{err}");
    assert!(err.to_string().contains("repo:someone/else"), "{err}");
}

#[tokio::test]
async fn app_service_managed_identity_uses_the_identity_endpoint() {
    let c = ctx().await;
    let a = auth(&c, Some(AuthMethod::ManagedIdentity), &mi_env(&c)).unwrap();
    let tok = fabric_token(&a).await.unwrap();
    assert_eq!(
        c.token_requests().await,
        vec![(200, "https://api.fabric.microsoft.com".to_owned())]
    );
    assert_eq!(c.fabric_status(&tok).await, 200);
    assert_eq!(
        c.requests_to("/v1/workspaces").await,
        vec![(200, Some(DEFAULT_MI_OBJECT_ID.to_owned()))]
    );
}

#[tokio::test]
async fn tokens_are_cached_and_refreshed_before_expiry() {
    // Under the SDK's own 300 s refresh window, so only our cache decides.
    let c = ctx_with(|cfg| cfg.identity.token_lifetime = Duration::from_secs(240)).await;
    let clock = synced_clock();
    let env = sp_env(&c);
    let a = AzureAuth::from_env(
        Some(AuthMethod::ClientSecret),
        None,
        &env,
        &c.options,
        Arc::new(clock.clone()),
    )
    .unwrap();
    let first = fabric_token(&a).await.unwrap();
    clock.advance(Duration::from_secs(100));
    assert_eq!(fabric_token(&a).await.unwrap(), first);
    assert_eq!(c.token_requests().await.len(), 1);
    clock.advance(Duration::from_secs(25)); // past half of 240 s
    assert_ne!(fabric_token(&a).await.unwrap(), first);
    assert_eq!(c.token_requests().await.len(), 2);
}

#[tokio::test]
async fn an_expired_token_is_refused_by_the_fabric_api() {
    let clock = synced_clock();
    let emu_clock = clock.clone();
    let c = ctx_with(move |cfg| {
        cfg.identity.token_lifetime = Duration::from_secs(600);
        cfg.clock = Arc::new(emu_clock.clone());
        cfg.sleeper = Arc::new(emu_clock);
    })
    .await;
    let a = auth(&c, Some(AuthMethod::ClientSecret), &sp_env(&c)).unwrap();
    let tok = fabric_token(&a).await.unwrap();
    assert_eq!(c.fabric_status(&tok).await, 200);
    clock.advance(Duration::from_secs(600));
    assert_eq!(c.fabric_status(&tok).await, 401);
}

fn kv_env(c: &Ctx) -> MapEnv {
    sp_env(c).with("KEY_VAULT_URL", c.url.clone())
}

fn secrets_opts() -> SecretsOptions {
    SecretsOptions {
        keyvault_enabled: true,
        dotenv: None,
        defaults: DefaultSecrets::new(),
    }
}

// Seed: test_kv_get_secret.
#[tokio::test]
async fn key_vault_read_goes_through_the_challenge_flow() {
    let c = ctx().await;
    c.emu.put_secret("db-password", "vault-value");
    let env = kv_env(&c)
        .with("DB_PASSWORD", "env-value")
        .with("ONLY_IN_ENV", "env-only");
    let a = auth(&c, Some(AuthMethod::ClientSecret), &env).unwrap();
    let s = build_secrets(
        Arc::new(env),
        &secrets_opts(),
        Some(&a),
        Arc::new(synced_clock()),
    )
    .unwrap();
    let v = s.get_secret("DB_PASSWORD").await.unwrap().unwrap();
    assert_eq!(v.expose_secret(), "vault-value");
    assert_eq!(
        c.requests_to("/secrets/db-password/").await,
        vec![(401, None), (200, Some(DEFAULT_SP_OBJECT_ID.to_owned()))],
        "the first request carries no token; the retry does"
    );
    assert_eq!(
        c.token_requests().await,
        vec![(200, VAULT_SCOPE.to_owned())]
    );
    // Missing in the vault (404 SecretNotFound) → the environment answers.
    let env_only = s.get_secret("only-in-env").await.unwrap().unwrap();
    assert_eq!(env_only.expose_secret(), "env-only");
    assert_eq!(
        c.requests_to("/secrets/only-in-env/").await,
        vec![(404, Some(DEFAULT_SP_OBJECT_ID.to_owned()))]
    );
    assert_eq!(
        c.token_requests().await.len(),
        1,
        "the vault token is reused"
    );
}

#[tokio::test]
async fn a_disabled_secret_is_an_error_not_a_fallback() {
    let c = ctx().await;
    let version = c.emu.put_secret("api-key", "v1");
    let a = auth(&c, Some(AuthMethod::ClientSecret), &kv_env(&c)).unwrap();
    let kv = KeyVaultSecrets::new(&c.url, &a.credential, &a.http).unwrap();
    assert_eq!(
        kv.get_secret("api-key")
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "v1"
    );
    // Disable it through the vault API, as an operator would.
    let token = a.tokens.token(&[VAULT_SCOPE]).await.unwrap();
    let ca = reqwest::Certificate::from_pem(c.emu.ca_pem().unwrap().as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let patched = http
        .patch(format!(
            "{}/secrets/api-key/{version}?api-version=7.5",
            c.url
        ))
        .bearer_auth(token.token.expose_secret())
        .json(&serde_json::json!({"attributes": {"enabled": false}}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status().as_u16(), 200);
    let err = kv.get_secret("api-key").await.unwrap_err();
    assert!(matches!(err, SecretError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("disabled"), "{err}");
}

// Seed: test_kv_fallback.
#[tokio::test]
async fn vault_unavailable_falls_back_to_the_environment_with_a_warning() {
    let c = ctx().await;
    let logs = Logs::default();
    let _g = logs.install();
    // A port with nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let env = sp_env(&c)
        .with("KEY_VAULT_URL", format!("https://{closed}"))
        .with("API_KEY", "from-env");
    let a = auth(&c, Some(AuthMethod::ClientSecret), &env).unwrap();
    let s = build_secrets(
        Arc::new(env),
        &secrets_opts(),
        Some(&a),
        Arc::new(synced_clock()),
    )
    .unwrap();
    let v = s.get_secret("api-key").await.unwrap().unwrap();
    assert_eq!(v.expose_secret(), "from-env");
    let text = logs.text();
    assert!(
        text.contains("WARN") && text.contains("falling back"),
        "{text}"
    );
}

#[tokio::test]
async fn a_secret_missing_everywhere_names_every_place_looked() {
    let c = ctx().await;
    let dotenv = c.dir.path().join(".env");
    std::fs::write(&dotenv, "OTHER=1\n").unwrap();
    let env = kv_env(&c);
    let a = auth(&c, Some(AuthMethod::ClientSecret), &env).unwrap();
    let opts = SecretsOptions {
        dotenv: Some(dotenv),
        ..secrets_opts()
    };
    let s = build_secrets(Arc::new(env), &opts, Some(&a), Arc::new(synced_clock())).unwrap();
    let err = fabrik_secrets::chain::require(&s, "nowhere")
        .await
        .unwrap_err();
    let SecretError::NotFound { looked_in, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(looked_in.len(), 4, "{looked_in:?}");
    assert_eq!(looked_in[0], format!("Key Vault {}", c.url));
    assert_eq!(looked_in[1], "environment");
    assert!(looked_in[2].starts_with(".env file"));
    assert_eq!(looked_in[3], "defaults");
}

// Seed: test_set_secret_requires_keyvault.
#[tokio::test]
async fn only_key_vault_stores_secrets() {
    let c = ctx().await;
    let env = kv_env(&c);
    let a = auth(&c, Some(AuthMethod::ClientSecret), &env).unwrap();
    let kv = KeyVaultSecrets::new(&c.url, &a.credential, &a.http).unwrap();
    kv.set_secret("NEW_SECRET", &SecretString::from("stored"))
        .await
        .unwrap();
    kv.set_secret("NEW_SECRET", &SecretString::from("stored again"))
        .await
        .unwrap();
    assert_eq!(
        kv.get_secret("new-secret")
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "stored again",
        "the latest version wins"
    );
    assert_eq!(
        c.requests_to("/secrets/new-secret").await.len(),
        3,
        "challenge, then two writes"
    );
    // With the flag off no vault is configured, so there is nothing that could store it.
    assert!(fabrik_secrets::keyvault::vault_url_from_env(&env, false).is_none());
}

#[tokio::test]
async fn the_automatic_chain_reports_every_attempt_when_all_fail() {
    let mut c = ctx().await;
    let az = FakeAz::signed_out();
    c.options.cli_executor = Some(Arc::new(az.clone()));
    let env = c
        .base_env
        .clone()
        .with("AZURE_TENANT_ID", DEFAULT_TENANT_ID);
    let a = auth(&c, None, &env).unwrap();
    let err = fabric_token(&a).await.unwrap_err();
    assert_eq!(az.calls().len(), 1, "the CLI was tried: {:?}", az.calls());
    let text = err.to_string();
    for m in AuthMethod::ALL {
        assert!(text.contains(&format!("{m}:")), "{m} missing from: {text}");
    }
    assert!(text.contains("AZURE_CLIENT_SECRET"), "{text}");
    assert!(text.contains("AZURE_FEDERATED_TOKEN_FILE"), "{text}");
    assert!(text.contains("IDENTITY_ENDPOINT"), "{text}");
    assert!(text.contains("az login"), "{text}");
}

#[tokio::test]
async fn the_automatic_chain_picks_the_first_working_credential_and_says_which() {
    let mut c = ctx().await;
    c.options.cli_executor = Some(Arc::new(FakeAz::signed_out()));
    let a = auth(&c, None, &mi_env(&c)).unwrap();
    fabric_token(&a).await.unwrap();
    let report = auth_check(a.tokens.as_ref(), true).await;
    assert!(report.is_ok(), "{report}");
    assert!(
        report.identity.starts_with("automatic → managed-identity"),
        "{}",
        report.identity
    );
    assert!(report.to_string().contains(VAULT_SCOPE));
    assert_eq!(
        c.token_requests().await,
        vec![
            (200, "https://api.fabric.microsoft.com".to_owned()),
            (200, "https://vault.azure.net".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_rejected_configured_credential_stops_the_automatic_chain() {
    let mut c = ctx().await;
    let az =
        FakeAz::answering(r#"{"accessToken":"cli","expires_on":4102444800,"tokenType":"Bearer"}"#);
    c.options.cli_executor = Some(Arc::new(az.clone()));
    let env = sp_env(&c).with("AZURE_CLIENT_SECRET", "bad");
    let a = auth(&c, None, &env).unwrap();
    let err = fabric_token(&a).await.unwrap_err();
    assert!(
        az.calls().is_empty(),
        "the working CLI was never asked: {:?}",
        az.calls()
    );
    assert!(matches!(err, AuthError::Rejected(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("client-secret (configured by AZURE_CLIENT_SECRET) was rejected"),
        "{err}"
    );
}

#[tokio::test]
async fn auth_check_and_health_report_failures() {
    let c = ctx().await;
    let env = sp_env(&c).with("AZURE_CLIENT_SECRET", "bad");
    let a = auth(&c, Some(AuthMethod::ClientSecret), &env).unwrap();
    let report = auth_check(a.tokens.as_ref(), false).await;
    assert!(!report.is_ok());
    assert!(report.to_string().contains("FAILED"), "{report}");
    let check = AuthHealthCheck::new(a.tokens.clone(), true);
    assert_eq!(check.check().await.status, HealthStatus::Unhealthy);
    let good = auth(&c, Some(AuthMethod::ClientSecret), &sp_env(&c)).unwrap();
    assert_eq!(
        AuthHealthCheck::new(good.tokens.clone(), true)
            .check()
            .await
            .status,
        HealthStatus::Healthy
    );
}

/// Known secret values never reach a log line, an error message or Debug output.
#[tokio::test]
async fn secrets_never_appear_in_logs_errors_or_debug() {
    let c = ctx().await;
    let logs = Logs::default();
    let _g = logs.install();
    const VAULT_VALUE: &str = "vault-secret-value-d41d8";
    const ENV_VALUE: &str = "env-secret-value-e3b0c";
    c.emu.put_secret("db-password", VAULT_VALUE);
    let env = kv_env(&c).with("API_KEY", ENV_VALUE);
    let a = auth(&c, Some(AuthMethod::ClientSecret), &env).unwrap();
    let s = build_secrets(
        Arc::new(env.clone()),
        &secrets_opts(),
        Some(&a),
        Arc::new(synced_clock()),
    )
    .unwrap();
    let mut outputs = Vec::new();
    let token = a.tokens.token(&[FABRIC_SCOPE]).await.unwrap();
    let token_value = token.token.expose_secret().to_owned();
    outputs.push(format!("{token:?}"));
    let v = s.get_secret("db-password").await.unwrap().unwrap();
    assert_eq!(v.expose_secret(), VAULT_VALUE);
    outputs.push(format!("{v:?}"));
    outputs.push(format!("{:?}", s.get_secret("api-key").await.unwrap()));
    outputs.push(format!("{s:?} {a:?} {env:?}"));
    // Failures too: a wrong secret whose value must not leak, a missing secret.
    let bad_env = sp_env(&c).with("AZURE_CLIENT_SECRET", "bad-secret-value-0a1b");
    let bad = auth(&c, Some(AuthMethod::ClientSecret), &bad_env).unwrap();
    let e = bad.tokens.token(&[FABRIC_SCOPE]).await.unwrap_err();
    outputs.push(format!("{e} {e:?}"));
    let e = fabrik_secrets::chain::require(&s, "nowhere")
        .await
        .unwrap_err();
    outputs.push(format!("{e} {e:?}"));
    outputs.push(auth_check(bad.tokens.as_ref(), true).await.to_string());
    outputs.push(logs.text());
    assert!(
        !logs.text().is_empty(),
        "the subscriber captured the SDK's logs"
    );
    for out in &outputs {
        for secret in [
            VAULT_VALUE,
            ENV_VALUE,
            DEFAULT_CLIENT_SECRET,
            "bad-secret-value-0a1b",
            token_value.as_str(),
        ] {
            assert!(!out.contains(secret), "{secret} leaked into: {out}");
        }
    }
}
