//! Names of the metrics fabrik records through the `metrics` facade.
//!
//! Fixed here so every crate records under the same names without depending on
//! `fabrik-telemetry`; docs/METRICS.md describes each with its labels.

/// Counter: HTTP requests, labels `method`, `route` (template, ids elided), `status`.
pub const HTTP_REQUESTS: &str = "fabrik_http_requests_total";
/// Histogram (seconds): HTTP request duration, labels `method`, `route`.
pub const HTTP_DURATION: &str = "fabrik_http_request_duration_seconds";
/// Counter: retries, labels `key`, `class`.
pub const RETRIES: &str = "fabrik_retries_total";
/// Counter: throttled responses (429), label `key`.
pub const THROTTLES: &str = "fabrik_throttled_total";
/// Counter: breaker state changes, labels `key`, `to`.
pub const BREAKER_TRANSITIONS: &str = "fabrik_breaker_transitions_total";
/// Counter: calls refused without an attempt, labels `key`, `reason`.
pub const REJECTIONS: &str = "fabrik_rejections_total";
/// Counter: long-running-operation polls, label `route`.
pub const LRO_POLLS: &str = "fabrik_lro_polls_total";
/// Histogram (seconds): long-running-operation duration, label `route`.
pub const LRO_DURATION: &str = "fabrik_lro_duration_seconds";
/// Counter: resources changed, labels `kind`, `action` (`created`, `updated`, `deleted`, `rolled_back`).
pub const RESOURCES: &str = "fabrik_resources_total";
/// Histogram (seconds): whole run duration, label `outcome`.
pub const RUN_DURATION: &str = "fabrik_run_duration_seconds";
/// Counter: git-format repositories read from disk (discovered and parsed) for publishing.
pub const REPOSITORY_READS: &str = "fabrik_repository_reads_total";
/// Counter: telemetry items dropped because the export queue was full or the exporter failed.
pub const TELEMETRY_DROPPED: &str = "fabrik_telemetry_dropped_total";
