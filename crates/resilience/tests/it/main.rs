//! Integration tests of fabrik-resilience: seed parity, pipeline behaviour and invariants.

mod breaker;
mod config;
mod pipeline;
mod props;
mod seed_breaker;
mod seed_retry;
mod support;
