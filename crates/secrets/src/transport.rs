//! How the Azure SDK clients reach Entra ID and Key Vault: one reqwest client (optionally
//! trusting an extra CA, e.g. the emulator's), the authority host, and retry settings.
//!
//! The extra CA is *added* to the platform roots; nothing here disables certificate
//! verification.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::http::{ClientOptions, RetryOptions, Transport};
use fabrik_core::AuthError;

use crate::env::Env;

/// The public cloud's Entra ID authority.
pub const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";
/// Environment variable naming a PEM file of extra CA certificates to trust.
pub const EXTRA_CA_ENV: &str = "FABRIK_CA_CERT";

/// Options shared by every Azure client fabrik builds.
#[derive(Clone, Default)]
pub struct AzureOptions {
    /// PEM bundle of extra CA certificates to trust in addition to the platform roots.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Entra ID authority host; `None` uses `AZURE_AUTHORITY_HOST`, else the public cloud.
    pub authority_host: Option<String>,
    /// Turn off the SDK's retries so failures surface at once (tests, probes).
    pub no_retries: bool,
    /// Whether the automatic chain may probe the VM metadata endpoint (169.254.169.254) for a
    /// managed identity. On by default, as users of DefaultAzureCredential expect.
    pub probe_imds: bool,
    /// How the Azure CLI is run (`None`: a real shell). Tests inject a fake.
    pub cli_executor: Option<Arc<dyn azure_identity::Executor>>,
}

impl fmt::Debug for AzureOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureOptions")
            .field("extra_ca", &self.extra_ca_pem.as_ref().map(|p| p.len()))
            .field("authority_host", &self.authority_host)
            .field("no_retries", &self.no_retries)
            .field("probe_imds", &self.probe_imds)
            .finish_non_exhaustive()
    }
}

impl AzureOptions {
    /// Defaults: platform roots, authority from the environment, SDK retries, IMDS probing.
    pub fn new() -> Self {
        Self {
            probe_imds: true,
            ..Self::default()
        }
    }

    /// Reads `AZURE_AUTHORITY_HOST` and `FABRIK_CA_CERT` (a PEM file path) from `env`.
    pub fn from_env(env: &dyn Env) -> Result<Self, AuthError> {
        let mut o = Self::new();
        o.authority_host = env.non_empty("AZURE_AUTHORITY_HOST");
        if let Some(path) = env.non_empty(EXTRA_CA_ENV) {
            o = o.with_extra_ca_file(path)?;
        }
        Ok(o)
    }

    /// Trusts the CA certificates in the PEM file at `path` as well as the platform roots.
    pub fn with_extra_ca_file(mut self, path: impl AsRef<Path>) -> Result<Self, AuthError> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|e| {
            AuthError::Unavailable(format!("cannot read CA file {}: {e}", path.display()))
        })?;
        self.extra_ca_pem = Some(pem);
        Ok(self)
    }

    /// Resolves the options into the HTTP pieces every client shares.
    pub fn build(&self, env: &dyn Env) -> Result<AzureHttp, AuthError> {
        let authority = self
            .authority_host
            .clone()
            .or_else(|| env.non_empty("AZURE_AUTHORITY_HOST"))
            .unwrap_or_else(|| PUBLIC_AUTHORITY.to_owned());
        Ok(AzureHttp {
            client: http_client(self.extra_ca_pem.as_deref(), Duration::from_secs(20))?,
            probe_client: http_client(self.extra_ca_pem.as_deref(), Duration::from_secs(2))?,
            authority_host: authority.trim_end_matches('/').to_owned(),
            no_retries: self.no_retries,
            probe_imds: self.probe_imds,
            cli_executor: self.cli_executor.clone(),
        })
    }
}

/// Like the SDK's own reqwest client (timeouts, no redirects), plus the extra roots.
fn http_client(
    extra_ca_pem: Option<&[u8]>,
    connect_timeout: Duration,
) -> Result<reqwest::Client, AuthError> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .read_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = extra_ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| AuthError::Unavailable(format!("extra CA is not valid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(AuthError::Unavailable(
                "extra CA file holds no certificate".into(),
            ));
        }
        b = b.tls_certs_merge(certs);
    }
    b.build().map_err(|e| {
        AuthError::Unavailable(format!(
            "cannot build HTTP client: {}",
            crate::error_chain(&e)
        ))
    })
}

/// Resolved HTTP settings: hand [`client_options`](Self::client_options) to any SDK client.
#[derive(Clone)]
pub struct AzureHttp {
    pub(crate) client: reqwest::Client,
    pub(crate) probe_client: reqwest::Client,
    pub(crate) authority_host: String,
    pub(crate) no_retries: bool,
    pub(crate) probe_imds: bool,
    pub(crate) cli_executor: Option<Arc<dyn azure_identity::Executor>>,
}

impl fmt::Debug for AzureHttp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureHttp")
            .field("authority_host", &self.authority_host)
            .field("no_retries", &self.no_retries)
            .finish_non_exhaustive()
    }
}

impl AzureHttp {
    /// The Entra ID authority host in use.
    pub fn authority_host(&self) -> &str {
        &self.authority_host
    }

    /// The reqwest client (with any extra CA) that the SDK clients use.
    pub fn http_client(&self) -> &reqwest::Client {
        &self.client
    }

    /// SDK client options: our transport, our authority (set explicitly so the SDK never
    /// reads the process environment behind the injected one), our retry choice.
    pub fn client_options(&self) -> ClientOptions {
        self.options_with(self.client.clone())
    }

    pub(crate) fn probe_options(&self) -> ClientOptions {
        self.options_with(self.probe_client.clone())
    }

    fn options_with(&self, client: reqwest::Client) -> ClientOptions {
        let mut cloud = CustomConfiguration::default();
        cloud.authority_host = self.authority_host.clone();
        let mut o = ClientOptions {
            transport: Some(Transport::new(Arc::new(client))),
            cloud: Some(Arc::new(CloudConfiguration::from(cloud))),
            ..ClientOptions::default()
        };
        if self.no_retries {
            o.retry = RetryOptions::none();
        }
        o
    }
}
