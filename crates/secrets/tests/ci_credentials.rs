//! Credentials whose other side the emulator does not play — the Azure CLI, and the CI OIDC
//! endpoints of Azure Pipelines and GitHub Actions — against a loopback HTTPS stand-in
//! (tests/common/standin.rs), trusted only through fabrik's extra-CA option.

mod common;

use std::sync::Arc;
use std::time::SystemTime;

use common::standin::*;
use common::{FakeAz, synced_clock};
use fabrik_core::secret::ExposeSecret;
use fabrik_core::{AuthError, TokenProvider};
use fabrik_secrets::check::FABRIC_SCOPE;
use fabrik_secrets::{AuthMethod, AzureAuth, AzureOptions, MapEnv};

struct Ctx {
    server: Server,
    _dir: tempfile::TempDir,
    options: AzureOptions,
    base_env: MapEnv,
}

async fn ctx() -> Ctx {
    let server = start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = server.ca_file(dir.path());
    let base_env = MapEnv::new()
        .with("AZURE_AUTHORITY_HOST", server.url())
        .with("FABRIK_CA_CERT", ca.display().to_string());
    let mut options = AzureOptions::from_env(&base_env).unwrap();
    options.no_retries = true;
    options.probe_imds = false;
    Ctx {
        server,
        _dir: dir,
        options,
        base_env,
    }
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
async fn workload_identity_on_github_actions_asks_the_runner_for_the_oidc_token() {
    let c = ctx().await;
    let env = c
        .base_env
        .clone()
        .with("AZURE_TENANT_ID", TENANT)
        .with("AZURE_CLIENT_ID", CLIENT_ID)
        .with(
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            format!("{}/gh-oidc?api-version=2.0", c.server.url()),
        )
        .with("ACTIONS_ID_TOKEN_REQUEST_TOKEN", GH_REQUEST_TOKEN);
    let a = auth(&c, Some(AuthMethod::WorkloadIdentity), &env).unwrap();
    assert!(fabric_token(&a).await.unwrap().ends_with("-assertion"));
    assert_eq!(c.server.seen(|s| s.oidc), 1);
    assert!(a.tokens.describe().contains("GitHub Actions OIDC"));
}

#[tokio::test]
async fn azure_pipelines_fetches_the_oidc_token_then_exchanges_it() {
    let c = ctx().await;
    let env = c
        .base_env
        .clone()
        .with("AZURESUBSCRIPTION_TENANT_ID", TENANT)
        .with("AZURESUBSCRIPTION_CLIENT_ID", CLIENT_ID)
        .with(
            "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
            SERVICE_CONNECTION,
        )
        .with("SYSTEM_ACCESSTOKEN", SYSTEM_TOKEN)
        .with("SYSTEM_OIDCREQUESTURI", format!("{}/oidc", c.server.url()));
    let a = auth(&c, Some(AuthMethod::AzurePipelines), &env).unwrap();
    assert!(fabric_token(&a).await.unwrap().ends_with("-assertion"));
    assert_eq!(c.server.seen(|s| s.oidc), 1);
}

#[tokio::test]
async fn azure_cli_token_is_used() {
    let mut c = ctx().await;
    let exp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let az = FakeAz::answering(format!(
        r#"{{"accessToken":"cli-token","expires_on":{exp},"tokenType":"Bearer"}}"#
    ));
    c.options.cli_executor = Some(Arc::new(az.clone()));
    let a = auth(&c, Some(AuthMethod::AzureCli), &c.base_env.clone()).unwrap();
    assert_eq!(fabric_token(&a).await.unwrap(), "cli-token");
    // The token came from asking the CLI for Fabric's scope, once.
    let calls = az.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0].starts_with("/bin/sh -c ")
            && calls[0].contains(
                "az account get-access-token -o json --scope https://api.fabric.microsoft.com/.default"
            ),
        "{calls:?}"
    );
}
