//! Object-safe traits and the shared vocabulary of fabrik.
//!
//! Every other fabrik crate depends on this one and on no other fabrik crate, so each concern
//! (HTTP client, resilience, transactions, secrets, telemetry, health, flags) can be used alone
//! and composed at run time behind `Arc<dyn Trait>`. This crate knows nothing about Azure,
//! HTTP libraries or async runtimes (an optional `tokio` feature adds a real sleeper).
//!
//! | Module | What it says | Implemented by | Consumed by |
//! |---|---|---|---|
//! | [`classify`] | is a failure transient, and did the server ask us to wait | client errors | resilience |
//! | [`time`] | what time it is, and how to wait | tokio / manual clocks | resilience, client, txn, secrets, health |
//! | [`random`] | jitter that tests can reproduce | seeded generators | resilience, emulator |
//! | [`auth`] | bearer tokens for a scope | secrets (Azure credentials) | client, health |
//! | [`secret`] | secrets by name | secrets (env, .env, Key Vault) | CLI config, health |
//! | [`health`] | named async health checks | every crate with a dependency to watch | health |
//! | [`resource`] | what a deployment created, and how to undo it | the deployer's kinds (each carries out its own undo) | txn |
//! | [`flags`] | feature flags by name | flags | CLI |
//! | [`state`] | where run journals and deployment locks live | txn (local dir), state-azure | txn, CLI |
//! | [`policy`] | a policy wrapping every attempt of a call | resilience | client |
//! | [`events`] | resilience events and breaker states | resilience | telemetry, health |
//! | [`metric_names`] | names of the metrics fabrik records | — | every crate that records |
//!
//! Telemetry decision: fabrik records through the `tracing` and `metrics` facades, so users'
//! own subscribers and recorders work; this crate only fixes the metric names
//! ([`metric_names`]) and the resilience event vocabulary ([`events`]).

// The README's examples compile and run as doctests, so the crate's front page cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod auth;
pub mod classify;
pub mod events;
pub mod flags;
pub mod health;
pub mod metric_names;
pub mod policy;
pub mod random;
pub mod resource;
pub mod secret;
pub mod state;
pub mod time;

pub use auth::{AccessToken, AuthError, TokenProvider};
pub use classify::{Classify, ErrorClass};
pub use events::{BreakerSnapshot, BreakerState, BreakerStateSource, EventSink, ResilienceEvent};
pub use flags::{Flag, FlagSource};
pub use health::{CheckResult, HealthCheck, HealthStatus};
pub use policy::{Attempt, AttemptError, CallContext, CallPolicy, PolicyError, Rejection};
pub use random::{RandomSource, SplitMix64};
pub use resource::{ResourceKind, ResourceRef, Undo, UndoError, UndoOutcome, Undoer};
pub use secret::{SecretError, SecretProvider, SecretString};
pub use state::{
    DeploymentLocks, HeldLock, JournalAppender, JournalStore, LockError, LockHolder, StateError,
    acquire_lock,
};
pub use time::{BoxFuture, Clock, Sleeper, SystemClock};
