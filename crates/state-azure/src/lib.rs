//! Run journals and deployment locks (fabrik keys one per workspace) for fabrik in Azure Blob
//! Storage.
//!
//! [`AzureBlobStore`] implements core's [`JournalStore`](fabrik_core::JournalStore) (journals
//! as append blobs, written with the writer's lease and an append-position condition, each
//! append acknowledged by the service before it returns) and
//! [`DeploymentLocks`](fabrik_core::DeploymentLocks) (one blob per lock; its lease, renewed in
//! the background, is the lock; its metadata names the holder). It uses the Azure SDK for
//! Rust (`azure_storage_blob`), authenticating with a SAS token or an Entra token from any
//! core [`TokenProvider`](fabrik_core::TokenProvider). The SAS is kept as a secret and
//! redacted from every message. See the README for the layout and the guarantees.
//!
//! The `test-util` feature adds [`azurite::Azurite`], which installs (once) and starts
//! Microsoft's Storage emulator on a free loopback port for tests.

// The README's examples compile and run as doctests, so the crate's front page cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(feature = "test-util")]
pub mod azurite;
mod error;
mod io;
mod lease;
mod store;
mod url;

pub use lease::LeaseTiming;
pub use store::{AzureBlobStore, AzureStateOptions};
pub use url::{StateUrl, is_blob_url};
