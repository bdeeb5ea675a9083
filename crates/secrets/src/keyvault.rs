//! Azure Key Vault secrets through `azure_security_keyvault_secrets`.
//!
//! The vault is chosen by `KEY_VAULT_URL` or `AZURE_KEY_VAULT_NAME` (→ `https://NAME.vault.azure.net`)
//! and used only when the Key Vault feature flag is on. Names follow the seed: lower-cased,
//! `_` → `-` (vault names allow only letters, digits and dashes).

use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;
use azure_core::http::RequestContent;
use azure_security_keyvault_secrets::models::SetSecretParameters;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use fabrik_core::secret::ExposeSecret;
use fabrik_core::{SecretError, SecretProvider, SecretString};

use crate::credential::AzureCredential;
use crate::env::Env;
use crate::error_chain;
use crate::transport::AzureHttp;

/// The vault URL from `KEY_VAULT_URL` or `AZURE_KEY_VAULT_NAME`, when `enabled` (the value of
/// `FEATURE_USE_AZURE_KEYVAULT` / `FEATURE_USE_KEY_VAULT` as the caller's flag source reads it).
pub fn vault_url_from_env(env: &dyn Env, enabled: bool) -> Option<String> {
    if !enabled {
        return None;
    }
    env.non_empty("KEY_VAULT_URL").or_else(|| {
        env.non_empty("AZURE_KEY_VAULT_NAME")
            .map(|n| format!("https://{}.vault.azure.net", n.trim()))
    })
}

/// The Key Vault flag read straight from `env` (`FEATURE_USE_AZURE_KEYVAULT` or its alias
/// `FEATURE_USE_KEY_VAULT`, `true` in any case), for callers without a flag source.
pub fn keyvault_flag_from_env(env: &dyn Env) -> bool {
    let flag = fabrik_core::Flag::AzureKeyVault;
    std::iter::once(flag.env_var())
        .chain(flag.aliases().iter().copied())
        .any(|name| env.is_true(name))
}

/// The seed's Key Vault name for a secret: lower-cased, `_` → `-`.
pub fn vault_secret_name(name: &str) -> String {
    name.to_lowercase().replace('_', "-")
}

/// Reads (and writes) secrets in one Azure Key Vault.
pub struct KeyVaultSecrets {
    client: SecretClient,
    url: String,
}

impl fmt::Debug for KeyVaultSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultSecrets")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(h) => h
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

impl KeyVaultSecrets {
    /// A client for the vault at `url`, authenticating with `credential`.
    pub fn new(
        url: &str,
        credential: &AzureCredential,
        http: &AzureHttp,
    ) -> Result<Self, SecretError> {
        let unavailable = |reason: String| SecretError::Unavailable {
            store: format!("Key Vault {url}"),
            reason,
        };
        let parsed =
            reqwest::Url::parse(url).map_err(|e| unavailable(format!("invalid vault URL: {e}")))?;
        let options = SecretClientOptions {
            client_options: http.client_options(),
            // The SDK checks that the challenge's resource matches the vault's domain; a local
            // stand-in on a loopback address cannot be under vault.azure.net. TLS is still verified.
            verify_challenge_resource: Some(!is_loopback(&parsed)),
            ..Default::default()
        };
        let client = SecretClient::new(url, credential.sdk(), Some(options))
            .map_err(|e| unavailable(error_chain(&e)))?;
        Ok(Self {
            client,
            url: url.trim_end_matches('/').to_owned(),
        })
    }

    /// The vault's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn unavailable(&self, e: &azure_core::Error) -> SecretError {
        SecretError::Unavailable {
            store: self.describe(),
            reason: error_chain(e),
        }
    }

    /// Stores `value` under `name` (a new version if it exists). Only Key Vault can store
    /// secrets (the seed's `set_secret`).
    pub async fn set_secret(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        let params = SetSecretParameters {
            value: Some(value.expose_secret().to_owned()),
            ..Default::default()
        };
        let body: RequestContent<SetSecretParameters> = params
            .try_into()
            .map_err(|e: azure_core::Error| self.unavailable(&e))?;
        self.client
            .set_secret(&vault_secret_name(name), body, None)
            .await
            .map_err(|e| self.unavailable(&e))?;
        Ok(())
    }
}

#[async_trait]
impl SecretProvider for KeyVaultSecrets {
    async fn get_secret(&self, name: &str) -> Result<Option<SecretString>, SecretError> {
        match self.client.get_secret(&vault_secret_name(name), None).await {
            Ok(resp) => {
                let secret = resp.into_model().map_err(|e| self.unavailable(&e))?;
                Ok(secret.value.map(SecretString::from))
            }
            Err(e) if e.http_status().is_some_and(|s| u16::from(s) == 404) => Ok(None),
            Err(e) => Err(self.unavailable(&e)),
        }
    }

    fn describe(&self) -> String {
        format!("Key Vault {}", self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MapEnv;

    // Seed: test_kv_initialization (which vault, and only behind the flag).
    #[test]
    fn vault_url_comes_from_key_vault_url_or_the_name_behind_the_flag() {
        let by_name = MapEnv::new().with("AZURE_KEY_VAULT_NAME", "contoso-kv");
        assert_eq!(
            vault_url_from_env(&by_name, true).as_deref(),
            Some("https://contoso-kv.vault.azure.net")
        );
        assert_eq!(vault_url_from_env(&by_name, false), None);
        let both = by_name
            .clone()
            .with("KEY_VAULT_URL", "https://other.vault.azure.net/");
        assert_eq!(
            vault_url_from_env(&both, true).as_deref(),
            Some("https://other.vault.azure.net/")
        );
        assert_eq!(vault_url_from_env(&MapEnv::new(), true), None);
    }

    #[test]
    fn the_flag_is_read_under_both_seed_names() {
        assert!(!keyvault_flag_from_env(&MapEnv::new()));
        assert!(keyvault_flag_from_env(
            &MapEnv::new().with("FEATURE_USE_AZURE_KEYVAULT", "True")
        ));
        assert!(keyvault_flag_from_env(
            &MapEnv::new().with("FEATURE_USE_KEY_VAULT", "true")
        ));
        assert!(!keyvault_flag_from_env(
            &MapEnv::new().with("FEATURE_USE_KEY_VAULT", "1")
        ));
    }

    #[test]
    fn vault_names_are_lower_kebab() {
        assert_eq!(vault_secret_name("DB_PASSWORD"), "db-password");
        assert_eq!(vault_secret_name("api-key"), "api-key");
    }

    #[test]
    fn only_loopback_hosts_skip_the_challenge_domain_check() {
        assert!(is_loopback(&"https://127.0.0.1:8443".parse().unwrap()));
        assert!(is_loopback(&"https://[::1]:8443".parse().unwrap()));
        assert!(is_loopback(&"https://localhost".parse().unwrap()));
        assert!(!is_loopback(&"https://kv.vault.azure.net".parse().unwrap()));
    }
}
