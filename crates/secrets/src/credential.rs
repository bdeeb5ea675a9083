//! Choosing the Azure credential: explicitly (`FABRIK_AUTH` or a config key) or through an
//! automatic chain that reports every attempt and why it failed.
//!
//! azure_identity 1.0 has no DefaultAzureCredential and no EnvironmentCredential, and its
//! credentials read some settings straight from the process environment; so this module reads
//! every setting from the injected [`Env`] and passes it to the SDK explicitly. The App Service
//! managed identity and the Azure Pipelines OIDC request are written here (a few lines each)
//! because the SDK reads their endpoints only from the process environment.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::{ClientMethodOptions, StatusCode};
use azure_core::time::OffsetDateTime;
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertion, ClientAssertionCredential,
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use fabrik_core::AuthError;

use crate::env::Env;
use crate::error_chain;
use crate::transport::AzureHttp;

/// The environment variable that picks a credential explicitly.
pub const AUTH_ENV: &str = "FABRIK_AUTH";

/// A way to authenticate to Entra ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// Service principal with a secret: `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`.
    ClientSecret,
    /// Workload identity federation with `AZURE_TENANT_ID` and `AZURE_CLIENT_ID`: a token file
    /// (`AZURE_FEDERATED_TOKEN_FILE`, AKS) or GitHub Actions OIDC
    /// (`ACTIONS_ID_TOKEN_REQUEST_URL`, `ACTIONS_ID_TOKEN_REQUEST_TOKEN`).
    WorkloadIdentity,
    /// Azure Pipelines service connection OIDC (`SYSTEM_OIDCREQUESTURI`, `SYSTEM_ACCESSTOKEN`,
    /// `AZURESUBSCRIPTION_*`).
    AzurePipelines,
    /// Managed identity: App Service (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`) or the VM
    /// metadata endpoint; `AZURE_CLIENT_ID` picks a user-assigned identity.
    ManagedIdentity,
    /// The developer's `az login`.
    AzureCli,
}

impl AuthMethod {
    /// Every method, in the automatic chain's order (CI identities first, developer last).
    pub const ALL: [AuthMethod; 5] = [
        AuthMethod::ClientSecret,
        AuthMethod::WorkloadIdentity,
        AuthMethod::AzurePipelines,
        AuthMethod::ManagedIdentity,
        AuthMethod::AzureCli,
    ];

    /// The name used in `FABRIK_AUTH` and config (`client-secret`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecret => "client-secret",
            AuthMethod::WorkloadIdentity => "workload-identity",
            AuthMethod::AzurePipelines => "azure-pipelines",
            AuthMethod::ManagedIdentity => "managed-identity",
            AuthMethod::AzureCli => "azure-cli",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthMethod {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        AuthMethod::ALL
            .into_iter()
            .find(|m| m.as_str() == norm)
            .ok_or_else(|| {
                AuthError::Unavailable(format!(
                    "unknown auth method '{s}'; expected auto, {}",
                    AuthMethod::ALL.map(AuthMethod::as_str).join(", ")
                ))
            })
    }
}

/// Parses a method name where `auto` (or blank) means the automatic chain.
pub fn parse_method(s: &str) -> Result<Option<AuthMethod>, AuthError> {
    match s.trim() {
        "" => Ok(None),
        t if t.eq_ignore_ascii_case("auto") => Ok(None),
        t => t.parse().map(Some),
    }
}

/// Picks the method: a command-line choice, else `FABRIK_AUTH`, else the config file's key;
/// `None` means the automatic chain.
pub fn choose_method(
    cli: Option<AuthMethod>,
    env: &dyn Env,
    config: Option<AuthMethod>,
) -> Result<Option<AuthMethod>, AuthError> {
    if cli.is_some() {
        return Ok(cli);
    }
    match env.var(AUTH_ENV) {
        Some(v) if !v.trim().is_empty() => parse_method(&v),
        _ => Ok(config),
    }
}

/// A built credential and a description of the identity it stands for (never a secret).
#[derive(Clone)]
pub struct AzureCredential {
    credential: Arc<dyn TokenCredential>,
    identity: Identity,
}

#[derive(Clone)]
enum Identity {
    Fixed(String),
    Auto(Arc<AutoCredential>),
}

impl fmt::Debug for AzureCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureCredential")
            .field("identity", &self.describe())
            .finish_non_exhaustive()
    }
}

impl AzureCredential {
    /// Builds the chosen credential, or the automatic chain when `method` is `None`. An
    /// explicit choice whose settings are missing fails here, naming what is missing.
    pub fn build(
        method: Option<AuthMethod>,
        env: &dyn Env,
        http: &AzureHttp,
    ) -> Result<Self, AuthError> {
        match method {
            Some(m) => {
                let (credential, desc) = build_one(m, env, http).map_err(AuthError::Unavailable)?;
                Ok(Self {
                    credential,
                    identity: Identity::Fixed(desc),
                })
            }
            None => {
                let candidates = AuthMethod::ALL
                    .into_iter()
                    .map(|m| Candidate {
                        method: m,
                        built: build_one(m, env, http),
                        configured_by: configured_by(m, env),
                    })
                    .collect();
                let auto = Arc::new(AutoCredential {
                    candidates,
                    chosen: Mutex::new(None),
                });
                Ok(Self {
                    credential: auto.clone(),
                    identity: Identity::Auto(auto),
                })
            }
        }
    }

    /// Wraps any SDK credential (for callers that build their own).
    pub fn from_sdk(credential: Arc<dyn TokenCredential>, identity: impl Into<String>) -> Self {
        Self {
            credential,
            identity: Identity::Fixed(identity.into()),
        }
    }

    /// The SDK credential, for SDK clients (Key Vault, Storage).
    pub fn sdk(&self) -> Arc<dyn TokenCredential> {
        self.credential.clone()
    }

    /// Which identity is in use; for the automatic chain, which link answered (once one has).
    pub fn describe(&self) -> String {
        match &self.identity {
            Identity::Fixed(d) => d.clone(),
            Identity::Auto(a) => a.describe(),
        }
    }
}

type Built = Result<(Arc<dyn TokenCredential>, String), String>;

fn need(env: &dyn Env, names: &[&str]) -> Result<Vec<String>, String> {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| env.non_empty(n).is_none())
        .collect();
    if missing.is_empty() {
        Ok(names.iter().filter_map(|n| env.non_empty(n)).collect())
    } else {
        Err(format!("{} not set", missing.join(", ")))
    }
}

fn first_of(env: &dyn Env, names: &[&str]) -> Result<String, String> {
    names
        .iter()
        .find_map(|n| env.non_empty(n))
        .ok_or_else(|| format!("{} not set", names.join(" or ")))
}

fn sdk_err(e: azure_core::Error) -> String {
    error_chain(&e)
}

fn build_one(method: AuthMethod, env: &dyn Env, http: &AzureHttp) -> Built {
    match method {
        AuthMethod::ClientSecret => client_secret(env, http),
        AuthMethod::WorkloadIdentity => workload_identity(env, http),
        AuthMethod::AzurePipelines => azure_pipelines(env, http),
        AuthMethod::ManagedIdentity => managed_identity(env, http),
        AuthMethod::AzureCli => {
            let cred = AzureCliCredential::new(Some(AzureCliCredentialOptions {
                executor: http.cli_executor.clone(),
                ..Default::default()
            }))
            .map_err(sdk_err)?;
            Ok((cred, "azure-cli: the signed-in `az` account".to_owned()))
        }
    }
}

fn client_secret(env: &dyn Env, http: &AzureHttp) -> Built {
    let authority = http.authority_host();
    let v = need(
        env,
        &["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"],
    )?;
    let (tenant, client, secret) = (&v[0], &v[1], &v[2]);
    let cred = ClientSecretCredential::new(
        tenant,
        client.clone(),
        Secret::new(secret.clone()),
        Some(ClientSecretCredentialOptions {
            client_options: http.client_options(),
        }),
    )
    .map_err(sdk_err)?;
    Ok((
        cred,
        format!("client-secret: service principal {client} in tenant {tenant} via {authority}"),
    ))
}

fn workload_identity(env: &dyn Env, http: &AzureHttp) -> Built {
    let authority = http.authority_host();
    let gh = (
        env.non_empty("ACTIONS_ID_TOKEN_REQUEST_URL"),
        env.non_empty("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    );
    let has_source =
        env.non_empty("AZURE_FEDERATED_TOKEN_FILE").is_some() || matches!(gh, (Some(_), Some(_)));
    // Report everything missing at once, so one run tells the user what to set.
    let v = match (
        need(env, &["AZURE_TENANT_ID", "AZURE_CLIENT_ID"]),
        has_source,
    ) {
        (Ok(v), true) => v,
        (ids, _) => {
            let mut missing: Vec<String> = ids.err().into_iter().collect();
            if !has_source {
                missing.push("AZURE_FEDERATED_TOKEN_FILE not set (nor ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN)".to_owned());
            }
            return Err(missing.join("; "));
        }
    };
    let (tenant, client) = (&v[0], &v[1]);
    match (env.non_empty("AZURE_FEDERATED_TOKEN_FILE"), gh) {
        (Some(file), _) => {
            let cred = WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions {
                    client_options: http.client_options(),
                },
                client_id: Some(client.clone()),
                tenant_id: Some(tenant.clone()),
                token_file_path: Some(file.clone().into()),
            }))
            .map_err(sdk_err)?;
            Ok((
                cred,
                format!(
                    "workload-identity: application {client} in tenant {tenant} (token file {file}) via {authority}"
                ),
            ))
        }
        // GitHub Actions with `permissions: id-token: write`: ask the runner for an
        // OIDC token with Entra's federation audience, as azure/login does.
        (None, (Some(url), Some(token))) => {
            let mut url = reqwest::Url::parse(&url)
                .map_err(|e| format!("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL: {e}"))?;
            url.query_pairs_mut()
                .append_pair("audience", "api://AzureADTokenExchange");
            let assertion = OidcAssertion {
                client: http.http_client().clone(),
                url,
                bearer: Secret::new(token),
                kind: OidcKind::GitHubActions,
            };
            let cred = assertion_credential(http, tenant, client, assertion)?;
            Ok((
                cred,
                format!(
                    "workload-identity: application {client} in tenant {tenant} (GitHub Actions OIDC) via {authority}"
                ),
            ))
        }
        _ => Err("no federated token source".to_owned()),
    }
}

/// A credential that signs in as `client` with the OIDC token `assertion` fetches.
fn assertion_credential(
    http: &AzureHttp,
    tenant: &str,
    client: &str,
    assertion: OidcAssertion,
) -> Result<Arc<dyn TokenCredential>, String> {
    let cred = ClientAssertionCredential::new(
        tenant.to_owned(),
        client.to_owned(),
        assertion,
        Some(ClientAssertionCredentialOptions {
            client_options: http.client_options(),
        }),
    )
    .map_err(sdk_err)?;
    Ok(cred)
}

fn azure_pipelines(env: &dyn Env, http: &AzureHttp) -> Built {
    let authority = http.authority_host();
    let tenant = first_of(env, &["AZURESUBSCRIPTION_TENANT_ID", "AZURE_TENANT_ID"])?;
    let client = first_of(env, &["AZURESUBSCRIPTION_CLIENT_ID", "AZURE_CLIENT_ID"])?;
    let v = need(
        env,
        &[
            "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
            "SYSTEM_OIDCREQUESTURI",
            "SYSTEM_ACCESSTOKEN",
        ],
    )?;
    let mut url = reqwest::Url::parse(&v[1])
        .map_err(|e| format!("SYSTEM_OIDCREQUESTURI is not a URL: {e}"))?;
    url.query_pairs_mut()
        .append_pair("api-version", "7.1")
        .append_pair("serviceConnectionId", &v[0]);
    let assertion = OidcAssertion {
        client: http.http_client().clone(),
        url,
        bearer: Secret::new(v[2].clone()),
        kind: OidcKind::AzurePipelines,
    };
    let cred = assertion_credential(http, &tenant, &client, assertion)?;
    Ok((
        cred,
        format!(
            "azure-pipelines: service connection {} (application {client}, tenant {tenant}) via {authority}",
            v[0]
        ),
    ))
}

fn managed_identity(env: &dyn Env, http: &AzureHttp) -> Built {
    let user_assigned = env.non_empty("AZURE_CLIENT_ID");
    let who = match &user_assigned {
        Some(id) => format!("user-assigned {id}"),
        None => "system-assigned".to_owned(),
    };
    match (
        env.non_empty("IDENTITY_ENDPOINT"),
        env.non_empty("IDENTITY_HEADER"),
    ) {
        (Some(endpoint), Some(header)) => {
            let endpoint = reqwest::Url::parse(&endpoint)
                .map_err(|e| format!("IDENTITY_ENDPOINT is not a URL: {e}"))?;
            let desc = format!("managed-identity: {who} via App Service endpoint {endpoint}");
            let cred = AppServiceManagedIdentity {
                client: http.http_client().clone(),
                endpoint,
                header: Secret::new(header),
                client_id: user_assigned,
            };
            Ok((Arc::new(cred), desc))
        }
        (Some(_), None) => Err("IDENTITY_ENDPOINT is set but IDENTITY_HEADER is not".into()),
        (None, _) if !http.probe_imds => {
            Err("IDENTITY_ENDPOINT not set and IMDS probing disabled".into())
        }
        (None, _) => {
            let cred = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                user_assigned_id: user_assigned.map(UserAssignedId::ClientId),
                // A short connect timeout: off Azure the metadata endpoint never answers.
                client_options: http.probe_options(),
            }))
            .map_err(sdk_err)?;
            Ok((
                cred,
                format!("managed-identity: {who} via the VM metadata endpoint"),
            ))
        }
    }
}

/// What configured `method` in `env`, for messages; `None` when the chain finds it without
/// any setting (the VM metadata endpoint it probes, the signed-in `az` account).
fn configured_by(method: AuthMethod, env: &dyn Env) -> Option<&'static str> {
    match method {
        AuthMethod::ClientSecret => Some("AZURE_CLIENT_SECRET"),
        AuthMethod::WorkloadIdentity => {
            Some(if env.non_empty("AZURE_FEDERATED_TOKEN_FILE").is_some() {
                "AZURE_FEDERATED_TOKEN_FILE"
            } else {
                "ACTIONS_ID_TOKEN_REQUEST_URL"
            })
        }
        AuthMethod::AzurePipelines => Some("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"),
        AuthMethod::ManagedIdentity => env
            .non_empty("IDENTITY_ENDPOINT")
            .map(|_| "IDENTITY_ENDPOINT"),
        AuthMethod::AzureCli => None,
    }
}

/// Why the chain stopped at `method`, which Entra ID refused: what configured it, or that
/// nothing did and the chain only found it (so the message never says the user set it up).
fn rejection_message(method: AuthMethod, configured_by: Option<&str>, tried: &[String]) -> String {
    let tried = tried.join("; ");
    match configured_by {
        Some(var) => format!("{method} (configured by {var}) was rejected; tried: {tried}"),
        None => format!(
            "no credential is configured, and {method}, which the automatic chain found on \
             this machine without any setting, was refused a token; tried: {tried}"
        ),
    }
}

/// One link of the automatic chain.
struct Candidate {
    method: AuthMethod,
    built: Built,
    configured_by: Option<&'static str>,
}

/// Tries each configured credential in order, remembers the first that yields a token, and
/// otherwise reports every attempt. A credential that is *rejected* (bad secret, unknown
/// application) ends the search: silently falling through to another identity would deploy
/// as somebody else.
pub(crate) struct AutoCredential {
    candidates: Vec<Candidate>,
    chosen: Mutex<Option<usize>>,
}

impl fmt::Debug for AutoCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AutoCredential")
            .field("identity", &self.describe())
            .finish()
    }
}

impl AutoCredential {
    fn describe(&self) -> String {
        let chosen = *self.chosen.lock().unwrap_or_else(|p| p.into_inner());
        match chosen.and_then(|i| self.candidates[i].built.as_ref().ok()) {
            Some((_, desc)) => format!("automatic → {desc}"),
            None => {
                let ready: Vec<&str> = self
                    .candidates
                    .iter()
                    .filter(|c| c.built.is_ok())
                    .map(|c| c.method.as_str())
                    .collect();
                format!(
                    "automatic (not yet resolved; candidates: {})",
                    ready.join(", ")
                )
            }
        }
    }
}

/// Whether an Entra ID answer means "this identity is not allowed" rather than "can't reach".
pub(crate) fn is_rejection(e: &azure_core::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(az) = err.downcast_ref::<azure_core::Error>()
            && let Some(status) = az.http_status()
        {
            return matches!(u16::from(status), 400 | 401 | 403);
        }
        cur = err.source();
    }
    false
}

#[async_trait]
impl TokenCredential for AutoCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let chosen = *self.chosen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = chosen
            && let Ok((cred, _)) = &self.candidates[i].built
        {
            return cred.get_token(scopes, options).await;
        }
        let mut report = Vec::new();
        for (i, c) in self.candidates.iter().enumerate() {
            let method = c.method;
            match &c.built {
                Err(why) => report.push(format!("{method}: {why}")),
                Ok((cred, desc)) => match cred.get_token(scopes, options.clone()).await {
                    Ok(token) => {
                        tracing::info!(identity = %desc, "automatic credential chain chose {method}");
                        *self.chosen.lock().unwrap_or_else(|p| p.into_inner()) = Some(i);
                        return Ok(token);
                    }
                    Err(e) => {
                        report.push(format!("{method}: {}", error_chain(&e)));
                        if is_rejection(&e) {
                            let msg = rejection_message(method, c.configured_by, &report);
                            return Err(azure_core::Error::with_error(
                                ErrorKind::Credential,
                                e,
                                msg,
                            ));
                        }
                    }
                },
            }
        }
        Err(azure_core::Error::with_message(
            ErrorKind::Credential,
            format!("no credential worked; tried: {}", report.join("; ")),
        ))
    }
}

/// App Service / Functions managed identity (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`).
struct AppServiceManagedIdentity {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    header: Secret,
    client_id: Option<String>,
}

impl fmt::Debug for AppServiceManagedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppServiceManagedIdentity")
            .field("endpoint", &self.endpoint.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct MiTokenResponse {
    access_token: String,
    expires_on: serde_json::Value,
}

fn http_error(status: u16, what: &str, body: &str) -> azure_core::Error {
    // Entra-style bodies carry an error code and description, never the token.
    let detail: String = body.chars().take(300).collect();
    azure_core::Error::with_message(
        ErrorKind::HttpResponse {
            status: StatusCode::from(status),
            error_code: None,
            raw_response: None,
        },
        format!("{what} answered HTTP {status}: {detail}"),
    )
}

fn io_error(what: &str, e: reqwest::Error) -> azure_core::Error {
    azure_core::Error::with_error(ErrorKind::Io, e, format!("{what} unreachable"))
}

/// Sends `req` to the token or assertion endpoint `what` and decodes its JSON answer.
async fn fetch_json<T: serde::de::DeserializeOwned>(
    req: reqwest::RequestBuilder,
    what: &str,
) -> azure_core::Result<T> {
    let resp = req.send().await.map_err(|e| io_error(what, e))?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(|e| io_error(what, e))?;
    if !(200..300).contains(&status) {
        return Err(http_error(status, what, &body));
    }
    serde_json::from_str(&body).map_err(|e| {
        azure_core::Error::with_message(
            ErrorKind::DataConversion,
            format!("{what} sent an unexpected body: {e}"),
        )
    })
}

#[async_trait]
impl TokenCredential for AppServiceManagedIdentity {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let [scope] = scopes else {
            return Err(azure_core::Error::with_message(
                ErrorKind::Credential,
                "managed identity needs exactly one scope",
            ));
        };
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("api-version", "2019-08-01")
            .append_pair("resource", resource);
        if let Some(id) = &self.client_id {
            url.query_pairs_mut().append_pair("client_id", id);
        }
        let what = "managed identity endpoint";
        let req = self
            .client
            .get(url)
            .header("x-identity-header", self.header.secret())
            .header("metadata", "true");
        let parsed: MiTokenResponse = fetch_json(req, what).await?;
        // App Service sends expires_on as a string of unix seconds; accept a number too.
        let secs = match &parsed.expires_on {
            serde_json::Value::String(s) => s.parse::<i64>().ok(),
            serde_json::Value::Number(n) => n.as_i64(),
            _ => None,
        }
        .ok_or_else(|| {
            azure_core::Error::with_message(
                ErrorKind::DataConversion,
                "expires_on is not unix seconds",
            )
        })?;
        let expires_on = OffsetDateTime::from_unix_timestamp(secs).map_err(|e| {
            azure_core::Error::with_message(ErrorKind::DataConversion, e.to_string())
        })?;
        Ok(AccessToken::new(parsed.access_token, expires_on))
    }
}

/// Where a CI OIDC token comes from; the SDK's ClientAssertionCredential exchanges it.
#[derive(Debug, Clone, Copy)]
enum OidcKind {
    /// POST, answer `{"oidcToken": …}`.
    AzurePipelines,
    /// GET, answer `{"value": …}`.
    GitHubActions,
}

/// A CI-issued OIDC token used as the client assertion.
struct OidcAssertion {
    client: reqwest::Client,
    url: reqwest::Url,
    bearer: Secret,
    kind: OidcKind,
}

impl fmt::Debug for OidcAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcAssertion")
            .field("kind", &self.kind)
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct OidcResponse {
    #[serde(rename = "oidcToken", alias = "value")]
    token: String,
}

#[async_trait]
impl ClientAssertion for OidcAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        let (what, req) = match self.kind {
            OidcKind::AzurePipelines => (
                "Azure Pipelines OIDC endpoint",
                self.client
                    .post(self.url.clone())
                    .header("content-type", "application/json")
                    .header("x-tfs-fedauthredirect", "Suppress"),
            ),
            OidcKind::GitHubActions => (
                "GitHub Actions OIDC endpoint",
                self.client.get(self.url.clone()),
            ),
        };
        let parsed: OidcResponse = fetch_json(req.bearer_auth(self.bearer.secret()), what).await?;
        Ok(parsed.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MapEnv;

    #[test]
    fn method_names_round_trip_and_unknown_names_list_the_choices() {
        for m in AuthMethod::ALL {
            assert_eq!(m.as_str().parse::<AuthMethod>().unwrap(), m);
        }
        assert_eq!(
            "CLIENT_SECRET".parse::<AuthMethod>().unwrap(),
            AuthMethod::ClientSecret
        );
        assert_eq!(parse_method("auto").unwrap(), None);
        let err = "password".parse::<AuthMethod>().unwrap_err().to_string();
        assert!(
            err.contains("client-secret") && err.contains("azure-cli"),
            "{err}"
        );
    }

    #[test]
    fn cli_beats_env_beats_config() {
        let env = MapEnv::new().with(AUTH_ENV, "managed-identity");
        let none = MapEnv::new();
        assert_eq!(
            choose_method(Some(AuthMethod::AzureCli), &env, None).unwrap(),
            Some(AuthMethod::AzureCli)
        );
        assert_eq!(
            choose_method(None, &env, Some(AuthMethod::ClientSecret)).unwrap(),
            Some(AuthMethod::ManagedIdentity)
        );
        assert_eq!(
            choose_method(None, &none, Some(AuthMethod::ClientSecret)).unwrap(),
            Some(AuthMethod::ClientSecret)
        );
        assert_eq!(
            choose_method(
                None,
                &MapEnv::new().with(AUTH_ENV, "auto"),
                Some(AuthMethod::ClientSecret)
            )
            .unwrap(),
            None
        );
        assert!(choose_method(None, &MapEnv::new().with(AUTH_ENV, "nope"), None).is_err());
    }

    #[test]
    fn a_rejection_says_what_configured_the_credential_and_never_claims_the_user_did() {
        let tried = ["client-secret: AZURE_CLIENT_SECRET is not set".to_string()];
        let probed = rejection_message(AuthMethod::ManagedIdentity, None, &tried);
        assert!(!probed.contains("configured by"), "{probed}");
        assert!(
            probed.starts_with("no credential is configured, and managed-identity")
                && probed.contains("found on this machine without any setting")
                && probed.ends_with("tried: client-secret: AZURE_CLIENT_SECRET is not set"),
            "{probed}"
        );
        let set = rejection_message(
            AuthMethod::ClientSecret,
            Some("AZURE_CLIENT_SECRET"),
            &tried,
        );
        assert!(
            set.starts_with("client-secret (configured by AZURE_CLIENT_SECRET) was rejected"),
            "{set}"
        );
        // Managed identity counts as configured only through App Service's variables; the VM
        // metadata endpoint is probed.
        let env = MapEnv::new();
        assert_eq!(configured_by(AuthMethod::ManagedIdentity, &env), None);
        let app_service = MapEnv::new().with("IDENTITY_ENDPOINT", "http://127.0.0.1:1/token");
        assert_eq!(
            configured_by(AuthMethod::ManagedIdentity, &app_service),
            Some("IDENTITY_ENDPOINT")
        );
    }
}
