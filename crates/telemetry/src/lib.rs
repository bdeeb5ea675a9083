//! Traces, metrics and Application Insights / OpenTelemetry export for fabrik.
//!
//! fabrik records through the `tracing` and `metrics` facades, so users' own subscribers and
//! recorders work. This crate builds the ones fabrik offers by configuration
//! ([`TelemetryConfig`], usually [`TelemetryConfig::from_env`]): console output (human or JSON
//! lines), a Prometheus registry for `GET /metrics`, Application Insights export from
//! `APPLICATIONINSIGHTS_CONNECTION_STRING`, and export of spans and metrics over OTLP/HTTP from
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (batched; spans through a bounded queue that drops and counts
//! rather than blocks; flushed on shutdown with a deadline).
//!
//! Each run has one W3C trace id ([`RunContext`]): the root span carries it, every exported
//! item carries it as its operation id, and the CLI prints it in the run summary.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use fabrik_telemetry::{Telemetry, TelemetryConfig};
//!
//! let config = TelemetryConfig::from_env(|k| std::env::var(k).ok())?;
//! let telemetry = Telemetry::init(&config)?;
//! telemetry.track_event("deployment_started", &[("environment", "dev")]);
//! let n = telemetry.timed("plan", async { 42 }).await;
//! // … run summary:
//! println!("trace id: {}", telemetry.trace_id());
//! telemetry.shutdown(Duration::from_secs(5)).await;
//! # let _ = n; Ok(()) }
//! ```

// The README's examples compile and run as doctests, so the crate's front page cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod appinsights;
mod config;
mod context;
mod handle;
mod json_fields;
mod otlp;
mod otlp_metrics;
mod queue;
mod sink;

pub use config::{
    AppInsightsConfig, ConfigError, ConsoleFormat, DEFAULT_INGESTION_ENDPOINT, OtlpConfig,
    OtlpMetricsConfig, OtlpProtocol, TelemetryConfig,
};
pub use context::{RunContext, SpanId, TraceId};
pub use handle::{
    CALL_DURATION, CALLS, CallTimer, Dependency, Telemetry, TelemetryError, TelemetryParts, global,
    timed, timed_fn,
};
pub use otlp_metrics::{OtlpRecorder, Recorder};
pub use queue::FlushReport;
pub use sink::{MetricsEventSink, RATE_LIMIT_WAIT};

/// Fire-and-forget [`Telemetry::track_event`] on the [`global`] handle.
pub fn track_event(name: &str, properties: &[(&str, &str)]) {
    global().track_event(name, properties);
}

/// Fire-and-forget [`Telemetry::track_metric`] on the [`global`] handle.
pub fn track_metric(name: &str, value: f64, properties: &[(&str, &str)]) {
    global().track_metric(name, value, properties);
}

/// Fire-and-forget [`Telemetry::track_exception`] on the [`global`] handle.
pub fn track_exception(error: &(dyn std::error::Error + 'static), properties: &[(&str, &str)]) {
    global().track_exception(error, properties);
}

/// Fire-and-forget [`Telemetry::track_dependency`] on the [`global`] handle.
pub fn track_dependency(dependency: Dependency, properties: &[(&str, &str)]) {
    global().track_dependency(dependency, properties);
}
