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
mod tracing_api;
