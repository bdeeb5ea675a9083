//! `fabrik auth check`: which identity is in use and whether tokens for the Fabric API and
//! Key Vault can be had. Also a readiness [`HealthCheck`].

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use fabrik_core::{AuthError, CheckResult, HealthCheck, TokenProvider};

/// The Fabric REST API scope.
pub const FABRIC_SCOPE: &str = "https://api.fabric.microsoft.com/.default";
/// The Key Vault scope.
pub const VAULT_SCOPE: &str = "https://vault.azure.net/.default";

/// Whether a token for one scope could be had.
#[derive(Debug, Clone)]
pub struct ScopeCheck {
    /// The scope asked for.
    pub scope: String,
    /// The token's expiry, or why there is none.
    pub result: Result<SystemTime, AuthError>,
}

/// The outcome of [`auth_check`]. Holds no token.
#[derive(Debug, Clone)]
pub struct AuthReport {
    /// The identity in use (after the automatic chain has chosen, if it could).
    pub identity: String,
    /// The Fabric API scope.
    pub fabric: ScopeCheck,
    /// The Key Vault scope, when a vault is in use.
    pub vault: Option<ScopeCheck>,
}

impl AuthReport {
    /// Whether every checked scope yielded a token.
    pub fn is_ok(&self) -> bool {
        self.fabric.result.is_ok() && self.vault.as_ref().is_none_or(|v| v.result.is_ok())
    }
}

impl fmt::Display for AuthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "identity: {}", self.identity)?;
        for c in std::iter::once(&self.fabric).chain(self.vault.as_ref()) {
            match &c.result {
                Ok(exp) => {
                    let secs = exp
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    writeln!(f, "{}: ok (token expires at unix {secs})", c.scope)?
                }
                Err(e) => writeln!(f, "{}: FAILED: {e}", c.scope)?,
            }
        }
        Ok(())
    }
}

/// Asks `provider` for a Fabric token and, if `check_vault`, a Key Vault token.
pub async fn auth_check(provider: &dyn TokenProvider, check_vault: bool) -> AuthReport {
    let check = |scope: &'static str| async move {
        ScopeCheck {
            scope: scope.to_owned(),
            result: provider.token(&[scope]).await.map(|t| t.expires_at),
        }
    };
    let fabric = check(FABRIC_SCOPE).await;
    let vault = if check_vault {
        Some(check(VAULT_SCOPE).await)
    } else {
        None
    };
    AuthReport {
        identity: provider.describe(),
        fabric,
        vault,
    }
}

/// Readiness: unhealthy when no Fabric token can be had, degraded when only the vault fails
/// (secrets then come from the environment).
#[derive(Debug, Clone)]
pub struct AuthHealthCheck {
    provider: Arc<dyn TokenProvider>,
    check_vault: bool,
}

impl AuthHealthCheck {
    /// Checks `provider`, and the vault scope if `check_vault`.
    pub fn new(provider: Arc<dyn TokenProvider>, check_vault: bool) -> Self {
        Self {
            provider,
            check_vault,
        }
    }
}

#[async_trait]
impl HealthCheck for AuthHealthCheck {
    fn name(&self) -> &str {
        "azure_auth"
    }

    async fn check(&self) -> CheckResult {
        let r = auth_check(self.provider.as_ref(), self.check_vault).await;
        match (&r.fabric.result, r.vault.as_ref().map(|v| &v.result)) {
            (Err(e), _) => CheckResult::unhealthy(format!("{}: {e}", r.identity)),
            (Ok(_), Some(Err(e))) => {
                CheckResult::degraded(format!("{}: vault token: {e}", r.identity))
            }
            _ => CheckResult::healthy(),
        }
    }
}
