//! Resilience events and circuit-breaker states.
//!
//! Exists so telemetry can count what resilience did and health can read breaker states,
//! without either depending on `fabrik-resilience` (the seed's health check read breaker
//! state through the wrong shape and always failed). Emitted by `fabrik-resilience`;
//! consumed by `fabrik-telemetry` ([`EventSink`]) and `fabrik-health` ([`BreakerStateSource`]).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ErrorClass;

/// A circuit breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are rejected until the break ends.
    Open,
    /// A limited number of probe calls decide whether to close again.
    HalfOpen,
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        })
    }
}

/// A breaker as a health check sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerSnapshot {
    /// The breaker's key.
    pub key: String,
    /// Its state now.
    pub state: BreakerState,
    /// Whether an open breaker makes the process not ready.
    pub critical: bool,
    /// For an open breaker, how long until a probe is allowed.
    pub retry_in: Option<Duration>,
}

/// Anything that can list its breakers (a registry).
pub trait BreakerStateSource: Send + Sync + fmt::Debug {
    /// Every breaker and its current state.
    fn breakers(&self) -> Vec<BreakerSnapshot>;
}

/// Something resilience did, worth counting.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ResilienceEvent<'a> {
    /// A failed attempt will be retried after `delay`.
    Retry {
        /// The call's key.
        key: &'a str,
        /// The attempt that failed.
        attempt: u32,
        /// The wait before the next one.
        delay: Duration,
        /// Why it failed.
        class: ErrorClass,
    },
    /// The server throttled a call (HTTP 429).
    Throttled {
        /// The call's key.
        key: &'a str,
        /// The server's hint, if any.
        retry_after: Option<Duration>,
    },
    /// A breaker changed state.
    BreakerTransition {
        /// The breaker's key.
        key: &'a str,
        /// Old state.
        from: BreakerState,
        /// New state.
        to: BreakerState,
    },
    /// A call was refused without being attempted.
    Rejected {
        /// The call's key.
        key: &'a str,
        /// Why.
        reason: &'a crate::Rejection,
    },
    /// A rate limiter made a call wait.
    RateLimited {
        /// The limiter's key.
        key: &'a str,
        /// How long.
        waited: Duration,
    },
}

/// Receives resilience events. Must be cheap and must not block: it runs on the call path.
pub trait EventSink: Send + Sync + fmt::Debug {
    /// Records one event.
    fn record(&self, event: &ResilienceEvent<'_>);
}
