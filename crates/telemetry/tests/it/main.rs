//! Integration tests of fabrik-telemetry. Counterparts of the seed's test_telemetry.py
//! (15 cases) are marked `seed:`.
//!
//! Application Insights export is tested against the emulator's ingestion endpoint (which
//! validates envelopes as the service does); OTLP export against a loopback `/v1/traces`
//! receiver that decodes what it gets.

mod appinsights;
mod config;
mod metrics_sink;
mod otlp;
mod otlp_metrics;
mod tracing_api;

use fabrik_telemetry::{RunContext, Telemetry, TelemetryConfig, TelemetryParts};
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// Builds telemetry for `config` for a new run, console output discarded.
fn build(config: &TelemetryConfig) -> TelemetryParts {
    Telemetry::build_with(config, RunContext::new(), BoxMakeWriter::new(std::io::sink)).unwrap()
}

/// A loopback port nothing listens on: bound, then released.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A subscriber interested in every span, for tests that run instrumented code without one of
/// their own. Callsite interest is process-wide: a span first met on a thread where no
/// subscriber wants it can be cached as never wanted (tracing-core registers callsites and
/// subscribers concurrently), which switches that span off in tests running alongside.
fn interested() -> tracing::subscriber::DefaultGuard {
    tracing::subscriber::set_default(tracing_subscriber::registry())
}
