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

/// The adaptive rate for one key: off until a throttle; then the rate the server accepted over
/// the last window (at worst the current rate × `decrease_factor`), growing by
/// `recovery_per_sec + probe_per_sec × rate` every second; off again at a finite ceiling.
///
/// Why measure rather than only halve (AIMD): a token-bucket server accepts exactly its rate
/// from a client that offers more, so the successes counted in the last window *are* its rate.
/// Sending at that rate keeps the run at the limit; AIMD's sawtooth averages ~75 % of it.
///
/// Hand-written because governor's quota cannot change at run time; the state is tiny and
/// behind a mutex (successes are counted in 20 buckets over the window, so the count costs no
/// allocation); an atomic flag keeps the idle pacing path to one load.
#[derive(Debug)]
pub struct AdaptiveLimiter {
    cfg: AdaptiveConfig,
    active: AtomicBool,
    state: Mutex<AdaptiveState>,
}

const BUCKETS: usize = 20;

#[derive(Debug)]
struct AdaptiveState {
    /// Rate at `since`.
    rate: f64,
    since: Instant,
    /// Earliest instant the next request may go.
    next_slot: Instant,
    /// When the rate was last cut.
    last_cut: Option<Instant>,
    /// When the limiter was made: bucket numbers count from here.
    origin: Instant,
    /// Successes per bucket of `window / BUCKETS`, with the bucket number they were counted in.
    accepted: [(u64, u32); BUCKETS],
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
                last_cut: None,
                origin: now,
                accepted: [(u64::MAX, 0); BUCKETS],
            }),
            cfg,
        }
    }

    fn rate_at(&self, s: &AdaptiveState, now: Instant) -> f64 {
        let secs = now.saturating_duration_since(s.since).as_secs_f64();
        let gain = self.cfg.recovery_per_sec + self.cfg.probe_per_sec * s.rate;
        (s.rate + gain * secs).min(self.cfg.ceiling)
    }

    fn bucket(&self, s: &AdaptiveState, now: Instant) -> u64 {
        let width = self.cfg.window.as_nanos() / BUCKETS as u128;
        (now.saturating_duration_since(s.origin).as_nanos() / width.max(1)) as u64
    }

    /// Whether the limiter is slowing calls down.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// The allowed rate now (requests/s); the ceiling when inactive.
    pub fn current_rate(&self, now: Instant) -> f64 {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if self.is_active() {
            self.rate_at(&s, now)
        } else {
            self.cfg.ceiling
        }
    }

    /// Counts a request the server accepted.
    pub fn on_success(&self, now: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let b = self.bucket(&s, now);
        let slot = &mut s.accepted[(b % BUCKETS as u64) as usize];
        if slot.0 == b {
            slot.1 += 1;
        } else {
            *slot = (b, 1);
        }
    }

    /// Requests/s the server accepted over the window before `now`.
    fn measured(&self, s: &AdaptiveState, now: Instant) -> f64 {
        let b = self.bucket(s, now);
        let oldest = b.saturating_sub(BUCKETS as u64 - 1);
        let n: u32 = s
            .accepted
            .iter()
            .filter(|(at, _)| *at != u64::MAX && *at >= oldest && *at <= b)
            .map(|(_, n)| n)
            .sum();
        f64::from(n) / self.cfg.window.as_secs_f64()
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

    /// Records a throttle: sets the rate to what the server accepted over the window, at most
    /// once per half window (the 429s of requests already in flight are the same signal, as
    /// TCP cuts once per round trip).
    pub fn on_throttle(&self, now: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let active = self.is_active();
        let current = if active {
            self.rate_at(&s, now)
        } else {
            self.cfg.ceiling
        };
        let recently_cut = active
            && s.last_cut.is_some_and(|c| {
                now.saturating_duration_since(c)
                    < (self.cfg.window / 2).max(Duration::from_secs_f64(1.0 / current))
            });
        if recently_cut {
            return;
        }
        let measured = self.measured(&s, now);
        let floor = if current.is_finite() {
            current * self.cfg.decrease_factor
        } else {
            0.0
        };
        let rate = measured.max(floor).min(current).max(self.cfg.min_rate);
        s.rate = rate;
        s.since = now;
        s.last_cut = Some(now);
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
            probe_per_sec: 0.0,
            window: Duration::from_secs(1),
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
                probe_per_sec: 0.0,
                window: Duration::from_secs(1),
            },
            None,
            t0,
        );
        for i in 0..10 {
            a.on_throttle(t0 + Duration::from_secs(2 * i));
        }
        assert!(a.current_rate(t0 + Duration::from_secs(18)) >= 1.0);
    }

    /// A token-bucket server (rate r, burst r) and a client that offers up to 2,000 requests/s
    /// and re-sends every throttled request: over 60 s the limiter finds r, so the server's
    /// capacity is used (≥ 95 % of r·t accepted) with few 429s (< 5 % of the requests).
    #[test]
    fn adaptive_finds_and_holds_the_servers_rate() {
        for r in [25.0, 100.0, 400.0] {
            let t0 = Instant::now();
            let a = AdaptiveLimiter::new(AdaptiveConfig::default(), None, t0);
            let (mut tokens, mut refilled) = (r, t0);
            let (mut t, mut last) = (t0, t0);
            let (mut accepted, mut throttled) = (0u32, 0u32);
            let end = t0 + Duration::from_secs(60);
            while t < end {
                let wait = a.reserve(t, None).unwrap();
                t = (t + wait).max(last + Duration::from_micros(500));
                last = t;
                tokens = (tokens + (t - refilled).as_secs_f64() * r).min(r);
                refilled = t;
                if tokens >= 1.0 {
                    tokens -= 1.0;
                    accepted += 1;
                    a.on_success(t);
                } else {
                    throttled += 1;
                    a.on_throttle(t);
                }
            }
            let capacity = r * 60.0;
            assert!(
                f64::from(accepted) >= 0.95 * capacity,
                "rate {r}: accepted {accepted} of a capacity of {capacity}"
            );
            assert!(
                f64::from(throttled) < 0.05 * f64::from(accepted + throttled),
                "rate {r}: {throttled} throttled of {}",
                accepted + throttled
            );
        }
    }
}
