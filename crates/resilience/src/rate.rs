//! Rate limiting per key: a static GCRA limit (governor) and an adaptive AIMD limit that
//! reacts to throttling.
//!
//! governor keeps its own clock and its `until_ready` sleeps on `futures_timer`, which neither
//! fabrik's manual clock nor tokio's paused time can drive. So the limiter reads time through
//! [`GovernorClock`] (fabrik's injected [`Clock`] as a governor clock) and the pipeline waits
//! for the exact instant in governor's `NotUntil` through the injected `Sleeper`: no
//! busy-waiting, and tests move time by hand.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fabrik_core::Clock;
use governor::clock::Clock as _;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::config::{AdaptiveConfig, RateLimitConfig};

/// fabrik's injected clock as a governor clock: nanoseconds since the limiter was made.
#[derive(Debug, Clone)]
pub struct GovernorClock {
    clock: Arc<dyn Clock>,
    origin: Instant,
}

impl GovernorClock {
    /// A governor clock reading `clock`, starting at its current instant.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let origin = clock.now();
        Self { clock, origin }
    }
}

impl governor::clock::Clock for GovernorClock {
    type Instant = Nanos;
    fn now(&self) -> Nanos {
        Nanos::from(self.clock.now().saturating_duration_since(self.origin))
    }
}

type Gcra = RateLimiter<NotKeyed, InMemoryState, GovernorClock, NoOpMiddleware<Nanos>>;

/// A static GCRA limit for one key.
pub struct StaticLimiter {
    limiter: Gcra,
}

impl fmt::Debug for StaticLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticLimiter").finish_non_exhaustive()
    }
}

impl StaticLimiter {
    /// A limiter for `cfg` (assumed valid) on `clock`.
    pub fn new(cfg: &RateLimitConfig, clock: Arc<dyn Clock>) -> Self {
        let one = NonZeroU32::MIN;
        let quota = Quota::with_period(cfg.per / cfg.max_requests)
            .unwrap_or_else(|| Quota::per_second(one))
            .allow_burst(NonZeroU32::new(cfg.burst).unwrap_or(one));
        Self {
            limiter: RateLimiter::direct_with_clock(quota, GovernorClock::new(clock)),
        }
    }

    /// Takes a permit now, or says how long until one may be free (taking nothing).
    pub fn check(&self) -> Result<(), Duration> {
        self.limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }
}

/// AIMD rate for one key: off until a throttle, then `rate × decrease_factor` per throttle,
/// recovering by `recovery_per_sec` every second, off again at the ceiling.
///
/// Hand-written because governor's quota cannot change at run time; the state is tiny and
/// only touched under a mutex while the stage is active (an atomic flag keeps the idle path
/// to one load).
#[derive(Debug)]
pub struct AdaptiveLimiter {
    cfg: AdaptiveConfig,
    active: AtomicBool,
    state: Mutex<AdaptiveState>,
}

#[derive(Debug)]
struct AdaptiveState {
    /// Rate at `since`.
    rate: f64,
    since: Instant,
    /// Earliest instant the next request may go.
    next_slot: Instant,
}

impl AdaptiveLimiter {
    /// An inactive limiter; `ceiling` overrides `cfg.ceiling` (the static limit's rate, if any).
    pub fn new(cfg: AdaptiveConfig, ceiling: Option<f64>, now: Instant) -> Self {
        let mut cfg = cfg;
        if let Some(c) = ceiling {
            cfg.ceiling = c.max(cfg.min_rate);
        }
        Self {
            active: AtomicBool::new(false),
            state: Mutex::new(AdaptiveState {
                rate: cfg.ceiling,
                since: now,
                next_slot: now,
            }),
            cfg,
        }
    }

    fn rate_at(&self, s: &AdaptiveState, now: Instant) -> f64 {
        let secs = now.saturating_duration_since(s.since).as_secs_f64();
        (s.rate + self.cfg.recovery_per_sec * secs).min(self.cfg.ceiling)
    }

    /// Whether the limiter is slowing calls down.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// The allowed rate now (requests/s); the ceiling when inactive.
    pub fn current_rate(&self, now: Instant) -> f64 {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.rate_at(&s, now)
    }

    /// Reserves the next slot and returns how long to wait for it, unless that is more than
    /// `limit`: then nothing is reserved and the needed wait is returned as the error.
    pub fn reserve(&self, now: Instant, limit: Option<Duration>) -> Result<Duration, Duration> {
        if !self.is_active() {
            return Ok(Duration::ZERO);
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let rate = self.rate_at(&s, now);
        if rate >= self.cfg.ceiling {
            self.active.store(false, Ordering::Release);
            return Ok(Duration::ZERO);
        }
        let slot = s.next_slot.max(now);
        let wait = slot - now;
        if limit.is_some_and(|l| wait > l) {
            return Err(wait);
        }
        s.next_slot = slot + Duration::from_secs_f64(1.0 / rate);
        Ok(wait)
    }

    /// Records a throttle: cuts the rate, at most once per current interval so a burst of 429s
    /// from requests already in flight counts as one signal (TCP's once-per-RTT rule).
    pub fn on_throttle(&self, now: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.rate_at(&s, now);
        let recently_cut = self.is_active()
            && now.saturating_duration_since(s.since) < Duration::from_secs_f64(1.0 / current);
        if recently_cut {
            return;
        }
        let rate = (current * self.cfg.decrease_factor).max(self.cfg.min_rate);
        s.rate = rate;
        s.since = now;
        s.next_slot = s.next_slot.max(now + Duration::from_secs_f64(1.0 / rate));
        self.active.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabrik_core::time::ManualClock;

    #[test]
    fn gcra_on_the_manual_clock() {
        let clock = ManualClock::new();
        let l = StaticLimiter::new(
            &RateLimitConfig {
                max_requests: 2,
                per: Duration::from_secs(1),
                burst: 1,
            },
            Arc::new(clock.clone()),
        );
        assert_eq!(l.check(), Ok(()));
        assert_eq!(l.check(), Err(Duration::from_millis(500)));
        clock.advance(Duration::from_millis(499));
        assert_eq!(l.check(), Err(Duration::from_millis(1)));
        clock.advance(Duration::from_millis(1));
        assert_eq!(l.check(), Ok(()));
    }

    #[test]
    fn adaptive_cuts_on_throttle_and_recovers_linearly() {
        let clock = ManualClock::new();
        let t0 = clock.now();
        let cfg = AdaptiveConfig {
            ceiling: 10.0,
            min_rate: 1.0,
            decrease_factor: 0.5,
            recovery_per_sec: 1.0,
        };
        let a = AdaptiveLimiter::new(cfg, None, t0);
        assert_eq!(a.reserve(t0, None), Ok(Duration::ZERO));
        a.on_throttle(t0);
        assert!(a.is_active());
        assert_eq!(a.current_rate(t0), 5.0);
        // A second 429 within one interval (200 ms) is the same signal.
        a.on_throttle(t0 + Duration::from_millis(100));
        assert_eq!(a.current_rate(t0), 5.0);
        // Spacing: the first slot is one interval after the throttle, then 1/rate apart.
        assert_eq!(a.reserve(t0, None), Ok(Duration::from_millis(200)));
        assert_eq!(a.reserve(t0, None), Ok(Duration::from_millis(400)));
        assert_eq!(
            a.reserve(t0, Some(Duration::from_millis(100))),
            Err(Duration::from_millis(600)),
            "too long for the limit: nothing reserved"
        );
        // +1 req/s per second: back at the ceiling after 5 s, and the stage switches off.
        assert_eq!(a.current_rate(t0 + Duration::from_secs(2)), 7.0);
        let t5 = t0 + Duration::from_secs(5);
        assert_eq!(a.reserve(t5, None), Ok(Duration::ZERO));
        assert!(!a.is_active());
    }

    #[test]
    fn adaptive_never_drops_below_min_rate() {
        let t0 = Instant::now();
        let a = AdaptiveLimiter::new(
            AdaptiveConfig {
                ceiling: 4.0,
                min_rate: 1.0,
                decrease_factor: 0.1,
                recovery_per_sec: 0.5,
            },
            None,
            t0,
        );
        for i in 0..10 {
            a.on_throttle(t0 + Duration::from_secs(2 * i));
        }
        assert!(a.current_rate(t0 + Duration::from_secs(18)) >= 1.0);
    }
}
