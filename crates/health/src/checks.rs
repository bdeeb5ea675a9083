//! Readiness checks over core's traits: breakers, token acquisition, the secret provider.
//!
//! They read dependencies only through `fabrik-core` traits, so they work with whatever the
//! CLI wires in; the seed's breaker check read the wrong shape and always failed.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fabrik_core::auth::{AuthError, TokenProvider};
use fabrik_core::events::{BreakerState, BreakerStateSource};
use fabrik_core::secret::{SecretError, SecretProvider};
use fabrik_core::{CheckResult, HealthCheck};

/// Reads every breaker: a critical one open → unhealthy, naming it; any half-open or a
/// non-critical one open → degraded; otherwise healthy.
#[derive(Debug, Clone)]
pub struct BreakerCheck {
    name: String,
    source: Arc<dyn BreakerStateSource>,
}

impl BreakerCheck {
    /// A check named `circuit_breakers` over `source`.
    pub fn new(source: Arc<dyn BreakerStateSource>) -> Self {
        Self {
            name: "circuit_breakers".to_owned(),
            source,
        }
    }

    /// Renames the check.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

#[async_trait]
impl HealthCheck for BreakerCheck {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> CheckResult {
        let breakers = self.source.breakers();
        let (mut critical_open, mut other) = (String::new(), String::new());
        for b in &breakers {
            let (list, what) = match (b.state, b.critical) {
                (BreakerState::Closed, _) => continue,
                (BreakerState::Open, true) => (&mut critical_open, "open"),
                (BreakerState::Open, false) => (&mut other, "open (not critical)"),
                (BreakerState::HalfOpen, _) => (&mut other, "half-open"),
            };
            if !list.is_empty() {
                list.push_str(", ");
            }
            let _ = write!(list, "'{}' {what}", b.key);
            if let Some(d) = b.retry_in {
                let _ = write!(list, " (probe in {})", secs(d));
            }
        }
        if !critical_open.is_empty() {
            let mut detail = format!("critical breaker {critical_open}");
            if !other.is_empty() {
                let _ = write!(detail, "; also {other}");
            }
            CheckResult::unhealthy(detail)
        } else if !other.is_empty() {
            CheckResult::degraded(format!("breaker {other}"))
        } else {
            CheckResult {
                detail: Some(match breakers.len() {
                    0 => "no breakers registered".to_owned(),
                    n => format!("{n} breaker(s) closed"),
                }),
                ..CheckResult::healthy()
            }
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Asks a token provider for a token: obtained → healthy; the identity provider unreachable
/// (transient) → degraded; no credential or refused → unhealthy. The token never appears.
#[derive(Debug, Clone)]
pub struct TokenCheck {
    name: String,
    provider: Arc<dyn TokenProvider>,
    scopes: Vec<String>,
}

impl TokenCheck {
    /// A check named `token` for `scopes`.
    pub fn new(provider: Arc<dyn TokenProvider>, scopes: Vec<String>) -> Self {
        Self {
            name: "token".to_owned(),
            provider,
            scopes,
        }
    }

    /// Renames the check.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

#[async_trait]
impl HealthCheck for TokenCheck {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> CheckResult {
        let scopes: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        let who = self.provider.describe();
        match self.provider.token(&scopes).await {
            Ok(_) => CheckResult {
                detail: Some(format!("token obtained as {who}")),
                ..CheckResult::healthy()
            },
            Err(e @ AuthError::Transport(_)) => CheckResult::degraded(format!("{who}: {e}")),
            Err(e) => CheckResult::unhealthy(format!("{who}: {e}")),
        }
    }
}

/// Asks the secret provider for one secret: it answers with it → healthy; it answers without
/// it → degraded; it fails → unhealthy. The value never appears.
#[derive(Debug, Clone)]
pub struct SecretCheck {
    name: String,
    provider: Arc<dyn SecretProvider>,
    secret: String,
}

impl SecretCheck {
    /// A check named `secrets` that reads `secret` from `provider`.
    pub fn new(provider: Arc<dyn SecretProvider>, secret: impl Into<String>) -> Self {
        Self {
            name: "secrets".to_owned(),
            provider,
            secret: secret.into(),
        }
    }

    /// Renames the check.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

#[async_trait]
impl HealthCheck for SecretCheck {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> CheckResult {
        let (name, store) = (&self.secret, self.provider.describe());
        match self.provider.get_secret(name).await {
            Ok(Some(_)) => CheckResult {
                detail: Some(format!("'{name}' readable from {store}")),
                ..CheckResult::healthy()
            },
            Ok(None) => CheckResult::degraded(format!("{store} answered but has no '{name}'")),
            Err(e @ SecretError::NotFound { .. }) => CheckResult::degraded(e.to_string()),
            Err(e) => CheckResult::unhealthy(e.to_string()),
        }
    }
}
