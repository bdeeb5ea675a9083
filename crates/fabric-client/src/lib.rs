//! Typed async Microsoft Fabric REST client that gets the hard parts right.
//!
//! - Every request goes through one `execute`: the resilience policy (core's [`CallPolicy`],
//!   one attempt without one), a cached bearer token refreshed once on `401 TokenExpired`,
//!   `x-ms-client-request-id`, error mapping to [`FabricError`] (which implements core's
//!   [`Classify`]), and a tracing span with the route template.
//! - Long-running operations follow `Location` wherever it points, wait `Retry-After` on the
//!   injected sleeper, fetch `/result`, and stop at the caller's deadline.
//! - Lists are [`Paged`] streams following `continuationUri`.
//! - [`FabricClient::get_or_create_workspace`] and [`FabricClient::get_or_create_item`]
//!   resolve name conflicts and apply-then-fail to the existing resource.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fabrik_client::FabricError> {
//! use std::sync::Arc;
//! use fabrik_client::{FabricClient, StaticTokenProvider};
//! let tokens = Arc::new(StaticTokenProvider::from_env("FABRIC_TOKEN")?);
//! let client = FabricClient::builder("https://api.fabric.microsoft.com")
//!     .token_provider(tokens)
//!     .build()?;
//! let workspaces = client.list_workspaces().collect_all().await?;
//! # Ok(()) }
//! ```
//!
//! [`CallPolicy`]: fabrik_core::policy::CallPolicy
//! [`Classify`]: fabrik_core::Classify

// The README's examples compile and run as doctests, so the crate's front page cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod api;
mod auth;
mod client;
mod error;
mod idempotent;
mod lro;
pub mod models;
mod pager;
mod roles;

pub use api::ItemFilter;
pub use auth::{FABRIC_SCOPE, StaticTokenProvider};
pub use client::{
    BASE_URL_ENV, DEFAULT_BASE_URL, FabricClient, FabricClientBuilder, base_url_from_env, check_url,
};
pub use error::{ApiError, FabricError};
pub use idempotent::{Ensured, Origin};
pub use lro::Operation;
pub use pager::Paged;
