//! Counts resilience events into fabrik's metrics.

use fabrik_core::ErrorClass;
use fabrik_core::events::{EventSink, ResilienceEvent};
use fabrik_core::metric_names::{BREAKER_TRANSITIONS, REJECTIONS, RETRIES, THROTTLES};
use fabrik_core::policy::Rejection;

/// Histogram (seconds) of waits imposed by rate limiters, label `key`. Core has no name for
/// it yet, so it lives here.
pub const RATE_LIMIT_WAIT: &str = "fabrik_rate_limit_wait_seconds";

/// An [`EventSink`] that records every resilience event through the `metrics` facade under
/// the names in `fabrik_core::metric_names`, and logs breaker transitions. Cheap and
/// non-blocking, as the call path requires.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsEventSink;

impl EventSink for MetricsEventSink {
    fn record(&self, event: &ResilienceEvent<'_>) {
        match event {
            ResilienceEvent::Retry { key, class, .. } => {
                metrics::counter!(RETRIES, "key" => key.to_string(), "class" => class_label(*class))
                    .increment(1);
            }
            ResilienceEvent::Throttled { key, .. } => {
                metrics::counter!(THROTTLES, "key" => key.to_string()).increment(1);
            }
            ResilienceEvent::BreakerTransition { key, from, to } => {
                tracing::warn!(breaker = key, %from, %to, "circuit breaker changed state");
                metrics::counter!(BREAKER_TRANSITIONS, "key" => key.to_string(), "to" => to.to_string())
                    .increment(1);
            }
            ResilienceEvent::Rejected { key, reason } => {
                metrics::counter!(REJECTIONS, "key" => key.to_string(), "reason" => rejection_label(reason))
                    .increment(1);
            }
            ResilienceEvent::RateLimited { key, waited } => {
                metrics::histogram!(RATE_LIMIT_WAIT, "key" => key.to_string())
                    .record(waited.as_secs_f64());
            }
            _ => {}
        }
    }
}

fn class_label(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Transient => "transient",
        ErrorClass::Throttled => "throttled",
        ErrorClass::Timeout => "timeout",
        ErrorClass::Permanent => "permanent",
        _ => "other",
    }
}

fn rejection_label(r: &Rejection) -> &'static str {
    match r {
        Rejection::CircuitOpen { .. } => "circuit_open",
        Rejection::CircuitIsolated { .. } => "circuit_isolated",
        Rejection::BudgetExhausted { .. } => "budget_exhausted",
        Rejection::DeadlineExceeded { .. } => "deadline_exceeded",
        Rejection::HintBeyondDeadline { .. } => "hint_beyond_deadline",
        Rejection::AttemptTimedOut { .. } => "attempt_timed_out",
        Rejection::Bulkhead { .. } => "bulkhead",
        _ => "other",
    }
}
