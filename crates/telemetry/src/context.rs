//! W3C trace context: one trace id per run.
//!
//! Every span, log line and exported item of a run carries the same trace id, which the CLI
//! prints in the run summary so the run can be found in any backend.

use std::fmt;

/// A W3C trace id: 16 random bytes, never all zero, shown as 32 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(u128);

/// A W3C span (parent) id: 8 random bytes, never all zero, shown as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId(u64);

impl TraceId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(nonzero(rand::random()))
    }
    /// The id as a number.
    pub fn to_u128(self) -> u128 {
        self.0
    }
    /// Parses 32 hex digits (not all zero).
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u128::from_str_radix(s, 16).ok())
            .flatten()
            .filter(|v| *v != 0)
            .map(Self)
    }
}

impl SpanId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(nonzero(rand::random::<u64>() as u128) as u64)
    }
    /// The id as a number.
    pub fn to_u64(self) -> u64 {
        self.0
    }
    /// Parses 16 hex digits (not all zero).
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(s, 16).ok())
            .flatten()
            .filter(|v| *v != 0)
            .map(Self)
    }
}

fn nonzero(v: u128) -> u128 {
    if v == 0 { 1 } else { v }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}
impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}
impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}
impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

/// The trace context of one run: its trace id and the id of its root span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunContext {
    /// Shared by all telemetry of the run.
    pub trace_id: TraceId,
    /// The run's root span, parent of everything else.
    pub root_span_id: SpanId,
}

impl RunContext {
    /// A new run with fresh random ids.
    pub fn new() -> Self {
        Self {
            trace_id: TraceId::random(),
            root_span_id: SpanId::random(),
        }
    }

    /// Continues a caller's trace from a W3C `traceparent` header value
    /// (`00-<trace id>-<parent id>-<flags>`), e.g. a CI pipeline's; `None` if malformed.
    pub fn from_traceparent(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace, _parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || flags.len() != 2 {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        Some(Self {
            trace_id: TraceId::parse(trace)?,
            root_span_id: SpanId::random(),
        })
    }

    /// The `traceparent` header value for calls made under the root span (sampled).
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.root_span_id)
    }
}

impl Default for RunContext {
    fn default() -> Self {
        Self::new()
    }
}
