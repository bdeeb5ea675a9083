//! Waits between attempts: decorrelated-jitter backoff with the server's hint as a floor.

use std::time::Duration;

use fabrik_core::RandomSource;

use crate::config::{Jitter, RetryConfig};

/// The computed backoff before retry number `retry` (1 for the wait after the first attempt),
/// given the previous computed backoff (`None` before the first retry). Always within
/// `[min_wait, max_wait]`.
pub fn backoff(
    cfg: &RetryConfig,
    retry: u32,
    previous: Option<Duration>,
    rng: &dyn RandomSource,
) -> Duration {
    let d = match cfg.jitter {
        Jitter::Decorrelated => {
            let lo = cfg.min_wait.as_secs_f64();
            let hi = (previous.unwrap_or(cfg.min_wait).as_secs_f64() * 3.0).max(lo);
            Duration::try_from_secs_f64(lo + rng.next_f64() * (hi - lo)).unwrap_or(cfg.max_wait)
        }
        Jitter::None => {
            let factor = 2u32.saturating_pow(retry.saturating_sub(1));
            cfg.min_wait.saturating_mul(factor)
        }
    };
    d.clamp(cfg.min_wait, cfg.max_wait)
}

/// The wait actually taken: the larger of the computed backoff and the server's hint. The
/// hint is a floor (never retry sooner than asked) and is never capped by `max_wait`; the
/// caller's deadline bounds it instead.
pub fn wait_with_hint(backoff: Duration, hint: Option<Duration>) -> Duration {
    hint.map_or(backoff, |h| h.max(backoff))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabrik_core::SplitMix64;

    fn cfg(jitter: Jitter) -> RetryConfig {
        RetryConfig {
            max_attempts: 10,
            min_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(10),
            jitter,
        }
    }

    #[test]
    fn exponential_doubles_then_caps() {
        let c = cfg(Jitter::None);
        let rng = SplitMix64::new(1);
        let waits: Vec<u64> = (1..=6)
            .map(|n| backoff(&c, n, None, &rng).as_secs())
            .collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn decorrelated_stays_in_range_and_grows_from_the_previous_wait() {
        let c = cfg(Jitter::Decorrelated);
        let rng = SplitMix64::new(7);
        let mut prev = None;
        let mut seen_above_min = false;
        for n in 1..50 {
            let d = backoff(&c, n, prev, &rng);
            assert!(d >= c.min_wait && d <= c.max_wait, "{d:?}");
            if let Some(p) = prev {
                assert!(d <= (p * 3).max(c.min_wait), "{d:?} after {p:?}");
            }
            seen_above_min |= d > Duration::from_secs(3);
            prev = Some(d);
        }
        assert!(seen_above_min, "jitter never grew past 3 s in 49 draws");
    }

    #[test]
    fn hint_is_a_floor_not_a_cap() {
        let b = Duration::from_secs(2);
        assert_eq!(wait_with_hint(b, None), b);
        assert_eq!(wait_with_hint(b, Some(Duration::from_millis(300))), b);
        assert_eq!(
            wait_with_hint(b, Some(Duration::from_secs(90))),
            Duration::from_secs(90)
        );
    }
}
