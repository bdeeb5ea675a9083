//! Secrets by name.
//!
//! Exists so configuration can say `${secret:NAME}` without knowing where secrets live.
//! Implemented by `fabrik-secrets` (environment, .env file, Azure Key Vault, chains, caches);
//! consumed by the CLI's config resolution and by health readiness.

use std::fmt;

use async_trait::async_trait;
pub use secrecy::{ExposeSecret, SecretString};

/// Why a secret could not be read. Never carries the secret's value.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// No provider had it; lists every place looked.
    #[error("secret '{name}' not found (looked in: {})", looked_in.join(", "))]
    NotFound {
        /// The secret's name as asked.
        name: String,
        /// Each place looked, in order.
        looked_in: Vec<String>,
    },
    /// The store could not be reached or refused; the chain may fall back.
    #[error("secret store {store} unavailable: {reason}")]
    Unavailable {
        /// Which store.
        store: String,
        /// Why.
        reason: String,
    },
}

/// Reads secrets. `Ok(None)` means "this provider does not have it", so chains can fall back.
#[async_trait]
pub trait SecretProvider: Send + Sync + fmt::Debug {
    /// The secret called `name`, if this provider has it.
    async fn get_secret(&self, name: &str) -> Result<Option<SecretString>, SecretError>;

    /// Where this provider looks, for error messages ("environment", "Key Vault https://…").
    fn describe(&self) -> String;
}
