//! Health checks with liveness and readiness probes and an embeddable HTTP router.
//!
//! A [`HealthRegistry`] holds named [`HealthCheck`]s (core's trait), runs each under a
//! timeout, caches each result for a TTL with single flight (concurrent probes share one run),
//! and aggregates them: unhealthy > degraded > healthy. Liveness runs only the checks that are
//! not readiness-only (with none, it says the process answers); readiness runs them all.
//!
//! [`checks`] has the readiness checks fabrik needs, read through core's traits: breakers
//! ([`BreakerCheck`]), token acquisition ([`TokenCheck`]) and the secret provider
//! ([`SecretCheck`]). [`router`] serves `GET /health/live`, `GET /health/ready` and,
//! given a renderer, `GET /metrics`.
//!
//! ```no_run
//! # async fn demo(breakers: std::sync::Arc<dyn fabrik_core::BreakerStateSource>) -> std::io::Result<()> {
//! use std::sync::Arc;
//! use fabrik_health::{BreakerCheck, HealthRegistry, router};
//!
//! let registry = HealthRegistry::builder()
//!     .check(Arc::new(BreakerCheck::new(breakers)))
//!     .build()
//!     .expect("check names are unique");
//! let app = router(registry, None);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

// The README's examples compile and run as doctests, so the crate's front page cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod checks;
mod registry;
mod router;

pub use checks::{BreakerCheck, SecretCheck, TokenCheck};
pub use fabrik_core::{CheckResult, HealthCheck, HealthStatus};
pub use registry::{
    CheckReport, DuplicateCheck, HealthRegistry, HealthRegistryBuilder, HealthReport, Probe,
    aggregate,
};
pub use router::{MetricsRender, router};
