//! Traces, metrics and Application Insights / OpenTelemetry export for fabrik.
//!
//! Not built yet: this crate exports nothing until its issue lands.
