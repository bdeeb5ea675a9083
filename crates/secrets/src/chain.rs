//! A chain of secret providers tried in order, the seed's fallback (Key Vault, then the
//! environment, then a default).
//!
//! A provider that is unavailable (vault down, token refused) is logged as a warning and
//! skipped, so a deployment keeps working from the environment; when nobody has the secret
//! the error names every place looked and why any of them could not answer.

use std::sync::Arc;

use async_trait::async_trait;
use fabrik_core::{SecretError, SecretProvider, SecretString};

/// Providers tried in order; the first that has the secret wins.
#[derive(Debug, Clone, Default)]
pub struct SecretChain {
    links: Vec<Arc<dyn SecretProvider>>,
}

impl SecretChain {
    /// An empty chain (finds nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a provider, tried after those already added.
    pub fn with(mut self, provider: Arc<dyn SecretProvider>) -> Self {
        self.links.push(provider);
        self
    }

    /// Appends a provider in place.
    pub fn push(&mut self, provider: Arc<dyn SecretProvider>) {
        self.links.push(provider);
    }

    /// How many providers are chained.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// Whether no provider is chained.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Reads `name` and fails with [`SecretError::NotFound`] (naming every place looked)
    /// when no provider has it.
    pub async fn require(&self, name: &str) -> Result<SecretString, SecretError> {
        require(self, name).await
    }

    /// Reads `name`, or returns `default` when no provider has it or every store failed (the
    /// seed's `get_secret(name, default)`).
    pub async fn get_or(&self, name: &str, default: SecretString) -> SecretString {
        match self.get_secret(name).await {
            Ok(Some(v)) => v,
            _ => default,
        }
    }
}

/// Reads `name` from any provider and turns "not there" into [`SecretError::NotFound`] naming
/// where the provider looked.
pub async fn require(
    provider: &dyn SecretProvider,
    name: &str,
) -> Result<SecretString, SecretError> {
    match provider.get_secret(name).await? {
        Some(v) => Ok(v),
        None => Err(SecretError::NotFound {
            name: name.to_owned(),
            looked_in: vec![provider.describe()],
        }),
    }
}

#[async_trait]
impl SecretProvider for SecretChain {
    async fn get_secret(&self, name: &str) -> Result<Option<SecretString>, SecretError> {
        let mut looked_in = Vec::with_capacity(self.links.len());
        let mut any_unavailable = false;
        for link in &self.links {
            match link.get_secret(name).await {
                Ok(Some(value)) => {
                    tracing::debug!(secret = name, store = %link.describe(), "secret found");
                    return Ok(Some(value));
                }
                Ok(None) => looked_in.push(link.describe()),
                Err(SecretError::NotFound {
                    looked_in: inner, ..
                }) => looked_in.extend(inner),
                Err(err) => {
                    tracing::warn!(secret = name, store = %link.describe(), error = %err,
                        "secret store unavailable, falling back to the next one");
                    any_unavailable = true;
                    looked_in.push(format!("{} (unavailable: {err})", link.describe()));
                }
            }
        }
        if looked_in.is_empty() {
            return Ok(None);
        }
        // A miss in a chain is an error naming every place looked (and any outage), which is
        // what a user needs; outer chains flatten it into their own list.
        tracing::debug!(
            secret = name,
            any_unavailable,
            "secret not found in any store"
        );
        Err(SecretError::NotFound {
            name: name.to_owned(),
            looked_in,
        })
    }

    fn describe(&self) -> String {
        self.links
            .iter()
            .map(|l| l.describe())
            .collect::<Vec<_>>()
            .join(", then ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MapEnv;
    use crate::local::{DefaultSecrets, EnvSecrets};
    use fabrik_core::secret::ExposeSecret;

    #[derive(Debug)]
    struct Down;

    #[async_trait]
    impl SecretProvider for Down {
        async fn get_secret(&self, _: &str) -> Result<Option<SecretString>, SecretError> {
            Err(SecretError::Unavailable {
                store: "Key Vault https://kv.vault.azure.net".into(),
                reason: "connection refused".into(),
            })
        }
        fn describe(&self) -> String {
            "Key Vault https://kv.vault.azure.net".into()
        }
    }

    fn chain(env: MapEnv) -> SecretChain {
        SecretChain::new()
            .with(Arc::new(Down))
            .with(Arc::new(EnvSecrets::new(Arc::new(env))))
    }

    // Seed: test_env_fallback (vault failing → environment).
    #[tokio::test]
    async fn vault_down_falls_back_to_environment() {
        let c = chain(MapEnv::new().with("DB_PASSWORD", "from-env"));
        let v = c.get_secret("db-password").await.unwrap().unwrap();
        assert_eq!(v.expose_secret(), "from-env");
    }

    // Seed: test_default.
    #[tokio::test]
    async fn default_is_the_last_resort() {
        let c = chain(MapEnv::new());
        let v = c.get_or("missing", SecretString::from("fallback")).await;
        assert_eq!(v.expose_secret(), "fallback");
        let with_defaults = SecretChain::new()
            .with(Arc::new(EnvSecrets::new(Arc::new(MapEnv::new()))))
            .with(Arc::new(DefaultSecrets::new().with("port", "5432")));
        assert_eq!(
            with_defaults.require("port").await.unwrap().expose_secret(),
            "5432"
        );
    }

    #[tokio::test]
    async fn missing_everywhere_names_every_place_looked() {
        let c = chain(MapEnv::new()).with(Arc::new(DefaultSecrets::new()));
        let err = c.require("api-key").await.unwrap_err();
        let SecretError::NotFound { name, looked_in } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(name, "api-key");
        assert_eq!(looked_in.len(), 3, "{looked_in:?}");
        assert!(looked_in[0].starts_with("Key Vault https://kv.vault.azure.net (unavailable"));
        assert_eq!(looked_in[1], "environment");
        assert_eq!(looked_in[2], "defaults");
        let text = err.to_string();
        assert!(
            text.contains("Key Vault") && text.contains("environment") && text.contains("defaults")
        );
    }

    #[tokio::test]
    async fn nested_chains_flatten_their_places() {
        let inner = SecretChain::new().with(Arc::new(EnvSecrets::new(Arc::new(MapEnv::new()))));
        let outer = SecretChain::new()
            .with(Arc::new(inner))
            .with(Arc::new(DefaultSecrets::new()));
        let Err(SecretError::NotFound { looked_in, .. }) = outer.get_secret("x").await else {
            panic!("expected NotFound")
        };
        assert_eq!(looked_in, ["environment", "defaults"]);
        assert!(SecretChain::new().get_secret("x").await.unwrap().is_none());
    }
}
