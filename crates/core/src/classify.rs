//! Failure classification: is an error worth retrying, and did the server say when.
//!
//! Exists so that a resilience policy can decide about errors it knows nothing else about.
//! Implemented by error types that cross the wire (the Fabric client's `FabricError`, transport
//! errors); consumed by the retry and circuit-breaker stages of `fabrik-resilience`.
//! The HTTP status → class mapping lives here, in [`ErrorClass::from_status`], and nowhere else.

use std::time::{Duration, SystemTime};

/// What kind of failure an error is, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ErrorClass {
    /// May succeed if tried again (5xx gateway errors, dropped connections).
    Transient,
    /// The server refused because of load or quota (HTTP 429); retry after its hint.
    Throttled,
    /// The attempt ran out of time (HTTP 408, connect or read timeouts).
    Timeout,
    /// Trying again will not help (4xx other than 408/429, validation, not found).
    Permanent,
}

impl ErrorClass {
    /// The one mapping from an HTTP status code to a class: 408 is a timeout, 429 throttled,
    /// 500, 502, 503 and 504 transient, everything else permanent.
    pub fn from_status(status: u16) -> Self {
        match status {
            408 => ErrorClass::Timeout,
            429 => ErrorClass::Throttled,
            500 | 502 | 503 | 504 => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }

    /// A stable lower-case name, for metric labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Throttled => "throttled",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Permanent => "permanent",
        }
    }

    /// Whether a retry policy may try again after this class of failure.
    pub fn is_retryable(self) -> bool {
        !matches!(self, ErrorClass::Permanent)
    }
}

/// An error that can say how it should be treated by a retry policy.
pub trait Classify {
    /// The class of this failure.
    fn class(&self) -> ErrorClass;

    /// The server's hint of how long to wait before trying again, if it gave one.
    /// A retry policy treats it as a floor: never sooner.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// Parses the value of a `Retry-After` header: integer or fractional seconds, or an HTTP-date
/// (relative to `now`; a date in the past means "now"). Returns `None` for anything else.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Some(d) = parse_seconds(value) {
        return Some(d);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses a millisecond hint (`x-ms-retry-after-ms`, `retry-after-ms`).
pub fn parse_retry_after_ms(value: &str) -> Option<Duration> {
    let ms = value.trim().parse::<f64>().ok()?;
    (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms / 1000.0))
}

/// Reads the server's wait hint from response headers, given a lookup by lower-case name.
/// The millisecond headers are more precise and win over `Retry-After` when both are present.
pub fn retry_hint<'a>(
    header: impl Fn(&str) -> Option<&'a str>,
    now: SystemTime,
) -> Option<Duration> {
    header("x-ms-retry-after-ms")
        .and_then(parse_retry_after_ms)
        .or_else(|| header("retry-after-ms").and_then(parse_retry_after_ms))
        .or_else(|| header("retry-after").and_then(|v| parse_retry_after(v, now)))
}

fn parse_seconds(value: &str) -> Option<Duration> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let secs = value.parse::<f64>().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping_matches_the_documented_retryable_set() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(ErrorClass::from_status(s).is_retryable(), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 409, 501, 505] {
            assert_eq!(ErrorClass::from_status(s), ErrorClass::Permanent, "{s}");
        }
        assert_eq!(ErrorClass::from_status(429), ErrorClass::Throttled);
        assert_eq!(ErrorClass::from_status(408), ErrorClass::Timeout);
    }

    #[test]
    fn retry_after_accepts_integer_fractional_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after("20", now), Some(Duration::from_secs(20)));
        // The seed truncated "0.3" to a 60 s default; it means 300 ms.
        assert_eq!(
            parse_retry_after(" 0.3 ", now),
            Some(Duration::from_millis(300))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(7)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn millisecond_headers_win() {
        let now = SystemTime::UNIX_EPOCH;
        let h = |name: &str| match name {
            "retry-after" => Some("5"),
            "x-ms-retry-after-ms" => Some("1500"),
            _ => None,
        };
        assert_eq!(retry_hint(h, now), Some(Duration::from_millis(1500)));
        let h2 = |name: &str| (name == "retry-after-ms").then_some("250");
        assert_eq!(retry_hint(h2, now), Some(Duration::from_millis(250)));
        let h3 = |name: &str| (name == "retry-after").then_some("2");
        assert_eq!(retry_hint(h3, now), Some(Duration::from_secs(2)));
        assert_eq!(retry_hint(|_: &str| None, now), None);
    }
}
