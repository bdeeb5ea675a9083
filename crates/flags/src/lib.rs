//! Typed feature flags.
