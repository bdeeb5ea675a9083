//! Integration tests of fabrik-client: spec examples and the real trace as fixtures, and the
//! client against the in-process emulator over loopback.

mod bulk_export;
mod bulk_import;
mod emulator;
mod fixtures;
mod lro_protocol;
mod real_trace;
mod resilience;
mod spec_examples;
mod tls;
