//! Bearer tokens for a scope.
//!
//! Exists so the Fabric client and the health probes can authenticate without knowing Azure.
//! Implemented by `fabrik-secrets` (client secret, workload identity, managed identity, Azure
//! CLI credentials); consumed by `fabrik-client` (Authorization header) and `fabrik-health`
//! (readiness: can a token be had).

use std::fmt;
use std::time::SystemTime;

use async_trait::async_trait;
use secrecy::SecretString;

/// A bearer token and when it stops being valid. The token never prints.
#[derive(Clone)]
pub struct AccessToken {
    /// The token itself.
    pub token: SecretString,
    /// When the issuer says it expires.
    pub expires_at: SystemTime,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a token could not be had.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No credential is configured or applicable (with what was tried and why each failed).
    #[error("no credential available: {0}")]
    Unavailable(String),
    /// The identity provider refused (bad secret, unknown client, scope not allowed).
    #[error("authentication failed: {0}")]
    Rejected(String),
    /// The identity provider could not be reached or failed transiently.
    #[error("identity provider unreachable: {0}")]
    Transport(String),
}

impl crate::Classify for AuthError {
    fn class(&self) -> crate::ErrorClass {
        match self {
            AuthError::Transport(_) => crate::ErrorClass::Transient,
            _ => crate::ErrorClass::Permanent,
        }
    }
}

/// Obtains bearer tokens. Implementations cache and refresh as they see fit; callers may ask
/// again at will and call [`invalidate`](Self::invalidate) when a server says a token expired.
#[async_trait]
pub trait TokenProvider: Send + Sync + fmt::Debug {
    /// A token valid for all of `scopes` (e.g. `https://api.fabric.microsoft.com/.default`).
    async fn token(&self, scopes: &[&str]) -> Result<AccessToken, AuthError>;

    /// Forget any cached token for `scopes`, so the next call fetches a fresh one.
    fn invalidate(&self, _scopes: &[&str]) {}

    /// A short description of the identity in use, for `fabrik auth check` and logs.
    fn describe(&self) -> String;
}
