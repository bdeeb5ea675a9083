//! Integration tests of fabrik-telemetry. Counterparts of the seed's test_telemetry.py
//! (15 cases) are marked `seed:`.
//!
//! Application Insights export is tested against a loopback capture server that speaks the
//! ingestion protocol; the same tests against the emulator's ingestion endpoint remain to be
//! written once it exists.

mod appinsights;
mod capture;
mod config;
mod metrics_sink;
mod tracing_api;
