//! Who may sign in to the Entra ID stand-in: tenants, applications (service principals) with
//! their client secrets and federated credentials, the App Service managed identity, and how
//! long issued tokens live. The defaults give one working application and identity, so tests
//! and demos can authenticate without configuring anything.

use std::time::Duration;

use serde::Deserialize;

/// Tenant of the default application.
pub const DEFAULT_TENANT_ID: &str = "f4b2c1d0-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
/// Client (application) id of the default application.
pub const DEFAULT_CLIENT_ID: &str = "3c9a7e15-8b2d-4f60-9a1e-5d7c3b2a1f00";
/// Client secret of the default application. Public by design: the emulator guards nothing.
pub const DEFAULT_CLIENT_SECRET: &str = "fabrik-emulator-client-secret";
/// Object id of the default application's service principal: the principal its tokens stand
/// for in the Fabric API (role assignments, throttling).
pub const DEFAULT_SP_OBJECT_ID: &str = "6a0e4f2d-1b3c-4d5e-8f70-9a1b2c3d4e5f";
/// Issuer of the default application's federated credential.
pub const DEFAULT_FEDERATED_ISSUER: &str = "https://oidc.fabrik-emulator.local";
/// Subject of the default application's federated credential.
pub const DEFAULT_FEDERATED_SUBJECT: &str = "system:serviceaccount:fabrik:deployer";
/// The audience Entra ID requires in a federated client assertion.
pub const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";
/// `IDENTITY_HEADER` value of the default managed identity.
pub const DEFAULT_IDENTITY_HEADER: &str = "fabrik-emulator-identity-header";
/// Client id of the default managed identity.
pub const DEFAULT_MI_CLIENT_ID: &str = "9e8d7c6b-5a49-4837-a261-50f4e3d2c1b0";
/// Object id of the default managed identity's service principal.
pub const DEFAULT_MI_OBJECT_ID: &str = "0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f";
/// The instrumentation key Application Insights ingestion accepts by default.
pub const DEFAULT_INSTRUMENTATION_KEY: &str = "00000000-fab1-4e00-8000-00000000a1a1";

/// A federated identity credential of an application: assertions whose `iss` and `sub`
/// match (and whose `aud` is `audience`) are exchanged for tokens, as for GitHub Actions or
/// AKS workload identity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedCredential {
    /// The `iss` claim to expect.
    pub issuer: String,
    /// The `sub` claim to expect.
    pub subject: String,
    /// The `aud` claim to expect (default `api://AzureADTokenExchange`).
    #[serde(default = "default_audience")]
    pub audience: String,
}

fn default_audience() -> String {
    FEDERATED_AUDIENCE.into()
}

/// An application registration and its service principal.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    /// The tenant it lives in (the `{tenant}` of the token URL).
    #[serde(alias = "tenant-id", alias = "tenant")]
    pub tenant_id: String,
    /// Its client (application) id.
    #[serde(alias = "client-id")]
    pub client_id: String,
    /// Its client secret; `None` allows only federated credentials.
    #[serde(default, alias = "client-secret")]
    pub client_secret: Option<String>,
    /// Its service principal's object id: the principal id the Fabric API sees.
    #[serde(alias = "object-id")]
    pub object_id: String,
    /// Federated credentials accepted as client assertions.
    #[serde(default, alias = "federated-credentials")]
    pub federated_credentials: Vec<FederatedCredential>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs and Debug output.
        f.debug_struct("Application")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("has_secret", &self.client_secret.is_some())
            .field("object_id", &self.object_id)
            .field("federated_credentials", &self.federated_credentials)
            .finish()
    }
}

impl Application {
    /// The default application: [`DEFAULT_TENANT_ID`], [`DEFAULT_CLIENT_ID`],
    /// [`DEFAULT_CLIENT_SECRET`], [`DEFAULT_SP_OBJECT_ID`], and one federated credential
    /// ([`DEFAULT_FEDERATED_ISSUER`], [`DEFAULT_FEDERATED_SUBJECT`]).
    pub fn default_app() -> Self {
        Self {
            tenant_id: DEFAULT_TENANT_ID.into(),
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: Some(DEFAULT_CLIENT_SECRET.into()),
            object_id: DEFAULT_SP_OBJECT_ID.into(),
            federated_credentials: vec![FederatedCredential {
                issuer: DEFAULT_FEDERATED_ISSUER.into(),
                subject: DEFAULT_FEDERATED_SUBJECT.into(),
                audience: FEDERATED_AUDIENCE.into(),
            }],
        }
    }
}

/// The identity the App Service managed-identity endpoint (`GET /msi/token`) hands out.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedIdentity {
    /// Its client id (a request may name it with `client_id`).
    #[serde(alias = "client-id")]
    pub client_id: String,
    /// Its service principal's object id: the principal id the Fabric API sees.
    #[serde(alias = "object-id")]
    pub object_id: String,
    /// The `IDENTITY_HEADER` value callers must send as `x-identity-header`.
    pub header: String,
}

impl std::fmt::Debug for ManagedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedIdentity")
            .field("client_id", &self.client_id)
            .field("object_id", &self.object_id)
            .finish_non_exhaustive()
    }
}

impl Default for ManagedIdentity {
    fn default() -> Self {
        Self {
            client_id: DEFAULT_MI_CLIENT_ID.into(),
            object_id: DEFAULT_MI_OBJECT_ID.into(),
            header: DEFAULT_IDENTITY_HEADER.into(),
        }
    }
}

/// The Entra ID stand-in's directory and token policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityConfig {
    /// Registered applications; their tenants are the tenants that exist.
    pub applications: Vec<Application>,
    /// The managed identity, or `None` to answer the endpoint with an error.
    pub managed_identity: Option<ManagedIdentity>,
    /// Lifetime of issued tokens on the emulator's clock (default 3599 s, as Entra reports);
    /// short lifetimes exercise refresh.
    pub token_lifetime: Duration,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            applications: vec![Application::default_app()],
            managed_identity: Some(ManagedIdentity::default()),
            token_lifetime: Duration::from_secs(3599),
        }
    }
}

impl IdentityConfig {
    /// Whether a tenant id names a tenant that has at least one application.
    pub(crate) fn has_tenant(&self, tenant: &str) -> bool {
        self.applications
            .iter()
            .any(|a| a.tenant_id.eq_ignore_ascii_case(tenant))
    }

    /// The tenant Key Vault challenges name: the first application's.
    pub(crate) fn default_tenant(&self) -> &str {
        self.applications
            .first()
            .map_or(DEFAULT_TENANT_ID, |a| a.tenant_id.as_str())
    }

    /// The application `client_id` registered in `tenant`.
    pub(crate) fn app(&self, tenant: &str, client_id: &str) -> Option<&Application> {
        self.applications.iter().find(|a| {
            a.tenant_id.eq_ignore_ascii_case(tenant) && a.client_id.eq_ignore_ascii_case(client_id)
        })
    }
}

/// `CLIENT_ID:SECRET[:OBJECT_ID]` (the `--app` flag), in `tenant`. Without an object id one is
/// derived from the client id, so the principal stays the same across runs.
pub(crate) fn parse_app(spec: &str, tenant: &str) -> Result<Application, String> {
    let mut parts = spec.splitn(3, ':');
    let client_id = parts.next().unwrap_or_default().trim();
    let secret = parts.next().map(str::trim).unwrap_or_default();
    if client_id.is_empty() || secret.is_empty() {
        return Err(format!(
            "invalid --app '{client_id}:…': expected CLIENT_ID:SECRET[:OBJECT_ID]"
        ));
    }
    let object_id = match parts.next().map(str::trim) {
        Some(o) if !o.is_empty() => o.to_string(),
        _ => {
            let h = crate::util::fnv(client_id.as_bytes());
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&h.to_le_bytes());
            b[8..].copy_from_slice(&h.rotate_left(29).to_le_bytes());
            uuid::Builder::from_random_bytes(b).into_uuid().to_string()
        }
    };
    Ok(Application {
        tenant_id: tenant.to_string(),
        client_id: client_id.to_string(),
        client_secret: Some(secret.to_string()),
        object_id,
        federated_credentials: Vec::new(),
    })
}
