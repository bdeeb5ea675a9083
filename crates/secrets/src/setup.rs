//! One-call assembly for the CLI: credential from flags, `FABRIK_AUTH` or config; the seed's
//! secret chain (Key Vault → environment → .env → defaults) behind a TTL cache.

use std::path::PathBuf;
use std::sync::Arc;

use fabrik_core::{AuthError, Clock, SecretError, SecretProvider};

use crate::cache::{CachedSecrets, ttl_from_env};
use crate::chain::SecretChain;
use crate::credential::{AuthMethod, AzureCredential, choose_method};
use crate::env::Env;
use crate::keyvault::{KeyVaultSecrets, vault_url_from_env};
use crate::local::{DefaultSecrets, DotEnvSecrets, EnvSecrets};
use crate::token::AzureTokenProvider;
use crate::transport::{AzureHttp, AzureOptions};

/// The Azure side: HTTP settings, the chosen credential and its token provider.
#[derive(Debug, Clone)]
pub struct AzureAuth {
    /// HTTP settings shared by every SDK client.
    pub http: AzureHttp,
    /// The credential in use.
    pub credential: AzureCredential,
    /// Cached, refreshing tokens for the Fabric client and health probes.
    pub tokens: Arc<AzureTokenProvider>,
}

impl AzureAuth {
    /// Chooses the method (`cli` flag > `FABRIK_AUTH` > `config`; none → automatic chain) and
    /// builds the credential. `options` carries the extra CA and authority overrides.
    pub fn from_env(
        cli: Option<AuthMethod>,
        config: Option<AuthMethod>,
        env: &dyn Env,
        options: &AzureOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthError> {
        let http = options.build(env)?;
        let method = choose_method(cli, env, config)?;
        let credential = AzureCredential::build(method, env, &http)?;
        let tokens = Arc::new(AzureTokenProvider::new(credential.clone(), clock));
        Ok(Self {
            http,
            credential,
            tokens,
        })
    }
}

/// What the secret chain is built from.
#[derive(Debug, Clone)]
pub struct SecretsOptions {
    /// The Key Vault feature flag (`FEATURE_USE_AZURE_KEYVAULT` / `FEATURE_USE_KEY_VAULT`).
    pub keyvault_enabled: bool,
    /// A `.env` file to read after the environment, if it exists.
    pub dotenv: Option<PathBuf>,
    /// Last-resort values.
    pub defaults: DefaultSecrets,
}

/// Builds the seed's chain: Key Vault (when the flag is on and a vault is configured), the
/// environment, the `.env` file, then defaults; cached for `SECRET_CACHE_TTL`.
pub fn build_secrets(
    env: Arc<dyn Env>,
    options: &SecretsOptions,
    auth: Option<&AzureAuth>,
    clock: Arc<dyn Clock>,
) -> Result<CachedSecrets, SecretError> {
    let mut chain = SecretChain::new();
    if let Some(url) = vault_url_from_env(env.as_ref(), options.keyvault_enabled) {
        match auth {
            Some(a) => chain.push(Arc::new(KeyVaultSecrets::new(
                &url,
                &a.credential,
                &a.http,
            )?)),
            None => {
                tracing::warn!(vault = %url, "Key Vault configured but no Azure credential; using the environment")
            }
        }
    }
    chain.push(Arc::new(EnvSecrets::new(env.clone())));
    if let Some(path) = &options.dotenv
        && let Some(d) = DotEnvSecrets::load_if_exists(path)?
    {
        chain.push(Arc::new(d));
    }
    chain.push(Arc::new(options.defaults.clone()));
    let provider: Arc<dyn SecretProvider> = Arc::new(chain);
    Ok(CachedSecrets::new(
        provider,
        clock,
        ttl_from_env(env.as_ref()),
    ))
}

/// The vault to store secrets in (the seed's `set_secret`): only Key Vault can store, so this
/// fails, saying what is missing, when the flag is off, no vault is configured or there is no
/// Azure credential.
pub fn secret_store(
    env: &dyn Env,
    keyvault_enabled: bool,
    auth: Option<&AzureAuth>,
) -> Result<KeyVaultSecrets, SecretError> {
    let refuse = |reason: &str| SecretError::Unavailable {
        store: "secret store".to_owned(),
        reason: format!("storing secrets requires Azure Key Vault: {reason}"),
    };
    if !keyvault_enabled {
        return Err(refuse(
            "the azure_keyvault flag (FEATURE_USE_AZURE_KEYVAULT) is off",
        ));
    }
    let url = vault_url_from_env(env, true)
        .ok_or_else(|| refuse("set AZURE_KEY_VAULT_NAME or KEY_VAULT_URL"))?;
    let auth = auth.ok_or_else(|| refuse("no Azure credential"))?;
    KeyVaultSecrets::new(&url, &auth.credential, &auth.http)
}
