//! Per-principal token buckets on the emulator's clock.
//!
//! Hand-written rather than `governor` because the bucket must run on the injected
//! [`fabrik_core::Clock`] (tests move a `ManualClock`) and report the exact wait for the
//! numeric `Retry-After`; the whole thing is a dozen lines.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ThrottleConfig;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets keyed by principal id.
#[derive(Debug)]
pub(crate) struct Throttle {
    config: ThrottleConfig,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Throttle {
    pub(crate) fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `principal` at `now`, or says how long until one is available.
    pub(crate) fn acquire(&self, principal: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let burst = f64::from(self.config.burst);
        let b = buckets.entry(principal.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.config.rate_per_sec).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(
                Duration::try_from_secs_f64((1.0 - b.tokens) / self.config.rate_per_sec)
                    .unwrap_or(Duration::MAX),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_per_principal() {
        let t = Throttle::new(ThrottleConfig {
            rate_per_sec: 2.0,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(t.acquire("a", t0).is_ok());
        }
        let wait = t.acquire("a", t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(t.acquire("b", t0).is_ok(), "buckets are per principal");
        assert!(t.acquire("a", t0 + Duration::from_millis(499)).is_err());
        assert!(t.acquire("a", t0 + Duration::from_millis(1000)).is_ok());
    }
}
