//! Retry, circuit breaker, rate limiting and timeouts for throttled cloud APIs, deterministic
//! and observable.
//!
//! Build a [`Pipeline`] from a [`ResilienceConfig`] (defaults, [`ResilienceConfig::from_env`],
//! feature flags through [`ResilienceConfig::with_flags`]) and use it either as an
//! `Arc<dyn fabrik_core::CallPolicy>` (the Fabric client) or directly with any async closure
//! through [`Pipeline::run`]. Time and randomness are injected through `fabrik_core`, so every
//! behaviour is testable with a manual clock. The order of the stages is documented in
//! [`pipeline`].
//!
//! ```
//! use fabrik_resilience::{Pipeline, ResilienceConfig};
//! let cfg = ResilienceConfig::from_env(|_| None).unwrap().with_flags(true, true);
//! let pipeline = Pipeline::builder(cfg).build().unwrap();
//! let policy: std::sync::Arc<dyn fabrik_core::CallPolicy> = std::sync::Arc::new(pipeline);
//! # let _ = policy;
//! ```

// The README's examples compile and run as doctests, so the crate's front page cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod config;
pub mod pipeline;
pub mod rate;

pub use breaker::{BreakerPermit, BreakerRegistry, BreakerStats, CircuitBreaker, CircuitState};
pub use budget::RetryBudget;
pub use config::{
    AdaptiveConfig, BreakerConfig, BudgetConfig, BulkheadConfig, ConfigError, Jitter,
    RateLimitConfig, ResilienceConfig, RetryConfig, TripRule,
};
pub use fabrik_core::policy::CallError;
pub use pipeline::{Pipeline, PipelineBuilder};
pub use rate::{AdaptiveLimiter, GovernorClock, StaticLimiter};
