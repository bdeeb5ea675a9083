//! Named async health checks.
//!
//! Exists so any component can report its health without depending on the health crate.
//! Implemented by whoever owns a dependency worth watching (token providers, secret stores,
//! breaker registries via [`crate::BreakerStateSource`]); consumed by `fabrik-health`, which
//! aggregates them into liveness and readiness probes.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Health of one check or of a whole probe. Ordered: `Healthy < Degraded < Unhealthy`, so
/// the aggregate of many is their maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Working.
    Healthy,
    /// Working with reduced capability (a fallback in use, a breaker half-open).
    Degraded,
    /// Not working.
    Unhealthy,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The status.
    pub status: HealthStatus,
    /// A human-readable detail; must never hold a secret.
    pub detail: Option<String>,
}

impl CheckResult {
    /// Healthy, with no detail.
    pub fn healthy() -> Self {
        Self {
            status: HealthStatus::Healthy,
            detail: None,
        }
    }
    /// Degraded, saying why.
    pub fn degraded(detail: impl Into<String>) -> Self {
        Self {
            status: HealthStatus::Degraded,
            detail: Some(detail.into()),
        }
    }
    /// Unhealthy, saying why.
    pub fn unhealthy(detail: impl Into<String>) -> Self {
        Self {
            status: HealthStatus::Unhealthy,
            detail: Some(detail.into()),
        }
    }
}

/// One named check. Checks should be quick; the registry enforces a timeout regardless.
#[async_trait]
pub trait HealthCheck: Send + Sync + fmt::Debug {
    /// A stable name, shown in probe output.
    fn name(&self) -> &str;
    /// Runs the check.
    async fn check(&self) -> CheckResult;
    /// Whether this check belongs to readiness only (true) or also to liveness (false).
    fn readiness_only(&self) -> bool {
        true
    }
    /// How long the check may take before it is reported as timed out.
    fn timeout(&self) -> Option<Duration> {
        None
    }
}
