//! Secrets and Azure credentials for fabrik.
//!
//! - Secrets ([`fabrik_core::SecretProvider`]): [`local::EnvSecrets`], [`local::DotEnvSecrets`],
//!   [`keyvault::KeyVaultSecrets`], [`local::DefaultSecrets`], chained by [`chain::SecretChain`]
//!   and cached by [`cache::CachedSecrets`]; [`setup::build_secrets`] assembles the seed's order.
//! - Credentials ([`fabrik_core::TokenProvider`]): [`credential::AzureCredential`] (client secret,
//!   workload identity, Azure Pipelines, managed identity, Azure CLI, or an automatic chain),
//!   adapted and cached by [`token::AzureTokenProvider`]; [`setup::AzureAuth`] assembles them.
//! - [`check::auth_check`]: which identity, and can tokens be had.
//!
//! Every environment read goes through [`env::Env`]; every time read through a core `Clock`.
//!
//! ```rust,no_run
//! use std::sync::Arc;
//! use fabrik_core::{SecretProvider, SystemClock, TokenProvider};
//! use fabrik_secrets::{AzureAuth, AzureOptions, ProcessEnv, SecretsOptions, auth_check, build_secrets};
//! use fabrik_secrets::local::DefaultSecrets;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let env = Arc::new(ProcessEnv);
//! let clock = Arc::new(SystemClock);
//! // --auth flag > FABRIK_AUTH > config key > automatic chain; FABRIK_CA_CERT adds a CA.
//! let options = AzureOptions::from_env(env.as_ref())?;
//! let auth = AzureAuth::from_env(None, None, env.as_ref(), &options, clock.clone())?;
//! println!("{}", auth_check(auth.tokens.as_ref(), true).await);
//!
//! let secrets = build_secrets(
//!     env.clone(),
//!     &SecretsOptions { keyvault_enabled: true, dotenv: Some(".env".into()), defaults: DefaultSecrets::new() },
//!     Some(&auth),
//!     clock,
//! )?;
//! let _db = secrets.get_secret("db-password").await?;
//! # Ok(()) }
//! ```

// The README's examples compile and run as doctests, so the crate's front page cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod cache;
pub mod chain;
pub mod check;
pub mod credential;
pub mod env;
pub mod keyvault;
pub mod local;
pub mod setup;
pub mod token;
pub mod transport;

pub use cache::CachedSecrets;
pub use chain::SecretChain;
pub use check::{AuthReport, auth_check};
pub use credential::{AuthMethod, AzureCredential};
pub use env::{Env, MapEnv, ProcessEnv};
pub use setup::{AzureAuth, SecretsOptions, build_secrets};
pub use token::AzureTokenProvider;
pub use transport::{AzureHttp, AzureOptions};

/// An error and all its causes, joined: azure_core's Display hides the cause (a TLS failure
/// reads as "error sending request"), and the cause is what a user needs.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}
