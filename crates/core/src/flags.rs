//! Feature flags by name.
//!
//! Exists so components can be switched on and off by configuration without depending on how
//! flags are read. Implemented by `fabrik-flags` (environment, config file, command line);
//! consumed by the CLI when it assembles the pipeline.

use std::fmt;

/// The flags fabrik knows, with the seed's environment variable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Flag {
    /// Retry transient failures (`FEATURE_USE_RETRY_LOGIC`).
    RetryLogic,
    /// Circuit breakers (`FEATURE_USE_CIRCUIT_BREAKER`).
    CircuitBreaker,
    /// Roll back failed runs (`FEATURE_USE_ROLLBACK`).
    Rollback,
    /// Export telemetry (`FEATURE_USE_TELEMETRY`).
    Telemetry,
    /// Health probes (`FEATURE_USE_HEALTH_CHECKS`).
    HealthChecks,
    /// Read secrets from Azure Key Vault (`FEATURE_USE_AZURE_KEYVAULT`, alias `FEATURE_USE_KEY_VAULT`).
    AzureKeyVault,
}

impl Flag {
    /// Every flag, in a stable order.
    pub const ALL: [Flag; 6] = [
        Flag::RetryLogic,
        Flag::CircuitBreaker,
        Flag::Rollback,
        Flag::Telemetry,
        Flag::HealthChecks,
        Flag::AzureKeyVault,
    ];

    /// The environment variable that sets it.
    pub fn env_var(self) -> &'static str {
        match self {
            Flag::RetryLogic => "FEATURE_USE_RETRY_LOGIC",
            Flag::CircuitBreaker => "FEATURE_USE_CIRCUIT_BREAKER",
            Flag::Rollback => "FEATURE_USE_ROLLBACK",
            Flag::Telemetry => "FEATURE_USE_TELEMETRY",
            Flag::HealthChecks => "FEATURE_USE_HEALTH_CHECKS",
            Flag::AzureKeyVault => "FEATURE_USE_AZURE_KEYVAULT",
        }
    }

    /// Other environment variable names accepted for it (the seed's aliases).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Flag::AzureKeyVault => &["FEATURE_USE_KEY_VAULT"],
            _ => &[],
        }
    }

    /// The key used in config files and on the command line (`retry_logic`, …).
    pub fn key(self) -> &'static str {
        match self {
            Flag::RetryLogic => "retry_logic",
            Flag::CircuitBreaker => "circuit_breaker",
            Flag::Rollback => "rollback",
            Flag::Telemetry => "telemetry",
            Flag::HealthChecks => "health_checks",
            Flag::AzureKeyVault => "azure_keyvault",
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Answers whether a flag is on.
pub trait FlagSource: Send + Sync + fmt::Debug {
    /// The flag's effective value.
    fn is_enabled(&self, flag: Flag) -> bool;
}
