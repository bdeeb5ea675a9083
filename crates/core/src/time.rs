//! Injected time: a clock to read and a sleeper to wait on.
//!
//! Exists so every time-based behaviour (backoff, breaker timeouts, token expiry, cache TTLs,
//! LRO polling) can be tested deterministically without real sleeps. Production code uses
//! [`SystemClock`] and, with the `tokio` feature, `TokioSleeper`; tests use
//! `ManualClock` (feature `test-util`), which is both a clock and a sleeper.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

/// A boxed, sendable future: the object-safe shape of every async trait method here.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Reads the time. Monotonic time for durations and deadlines, wall time for timestamps.
pub trait Clock: Send + Sync + Debug {
    /// Monotonic now, for measuring and deadlines.
    fn now(&self) -> Instant;
    /// Wall-clock now, for timestamps and token expiry.
    fn system_now(&self) -> SystemTime;
}

/// Waits. Separate from [`Clock`] so a component that only reads time cannot block.
pub trait Sleeper: Send + Sync + Debug {
    /// A future that completes after `duration` has passed on this sleeper's clock.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn system_now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The real sleeper on tokio's timer (so tokio's paused test time drives it too).
#[cfg(feature = "tokio")]
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

#[cfg(feature = "tokio")]
impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

#[cfg(feature = "test-util")]
pub use manual::ManualClock;

#[cfg(feature = "test-util")]
mod manual {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Waker};

    /// A clock that moves only when told: both a [`Clock`] and a [`Sleeper`].
    ///
    /// With `auto_advance`, every sleep moves the clock forward by its duration and completes
    /// at once, so a retry loop with minutes of backoff runs in microseconds and the clock
    /// afterwards says exactly how long it would have taken. Without it, sleepers wait until
    /// [`ManualClock::advance`] passes their deadline.
    #[derive(Debug, Clone)]
    pub struct ManualClock {
        inner: Arc<Mutex<State>>,
        auto_advance: bool,
    }

    #[derive(Debug)]
    struct State {
        base: Instant,
        base_system: SystemTime,
        offset: Duration,
        sleepers: Vec<(Duration, Waker)>,
        slept: Vec<Duration>,
    }

    impl Default for ManualClock {
        fn default() -> Self {
            Self::new()
        }
    }

    impl ManualClock {
        /// A clock at wall time 2026-01-01T00:00:00Z that moves only on [`advance`](Self::advance).
        pub fn new() -> Self {
            Self {
                inner: Arc::new(Mutex::new(State {
                    base: Instant::now(),
                    base_system: SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600),
                    offset: Duration::ZERO,
                    sleepers: Vec::new(),
                    slept: Vec::new(),
                })),
                auto_advance: false,
            }
        }

        /// A clock whose sleeps complete at once, moving the clock forward by their duration.
        pub fn auto_advance() -> Self {
            Self {
                auto_advance: true,
                ..Self::new()
            }
        }

        /// Moves the clock forward and wakes every sleeper whose deadline has passed.
        pub fn advance(&self, by: Duration) {
            let wakers = {
                let mut s = self.inner.lock().expect("clock lock");
                s.offset += by;
                let now = s.offset;
                let (due, pending): (Vec<_>, Vec<_>) =
                    s.sleepers.drain(..).partition(|(at, _)| *at <= now);
                s.sleepers = pending;
                due
            };
            for (_, w) in wakers {
                w.wake();
            }
        }

        /// How far the clock has moved since it was made.
        pub fn elapsed(&self) -> Duration {
            self.inner.lock().expect("clock lock").offset
        }

        /// Every duration passed to [`Sleeper::sleep`], in order.
        pub fn sleeps(&self) -> Vec<Duration> {
            self.inner.lock().expect("clock lock").slept.clone()
        }

        /// How many sleepers are waiting for the clock to move.
        pub fn waiting(&self) -> usize {
            self.inner.lock().expect("clock lock").sleepers.len()
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Instant {
            let s = self.inner.lock().expect("clock lock");
            s.base + s.offset
        }
        fn system_now(&self) -> SystemTime {
            let s = self.inner.lock().expect("clock lock");
            s.base_system + s.offset
        }
    }

    impl Sleeper for ManualClock {
        fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
            let deadline = {
                let mut s = self.inner.lock().expect("clock lock");
                s.slept.push(duration);
                s.offset + duration
            };
            if self.auto_advance {
                let mut s = self.inner.lock().expect("clock lock");
                if s.offset < deadline {
                    s.offset = deadline;
                }
                return Box::pin(std::future::ready(()));
            }
            Box::pin(ManualSleep {
                clock: self.inner.clone(),
                deadline,
            })
        }
    }

    struct ManualSleep {
        clock: Arc<Mutex<State>>,
        deadline: Duration,
    }

    impl Future for ManualSleep {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let mut s = self.clock.lock().expect("clock lock");
            if s.offset >= self.deadline {
                return Poll::Ready(());
            }
            s.sleepers.push((self.deadline, cx.waker().clone()));
            Poll::Pending
        }
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn manual_sleep_completes_only_when_advanced_past_its_deadline() {
        let clock = ManualClock::new();
        let start = clock.now();
        let mut fut = clock.sleep(Duration::from_secs(10));
        assert!((&mut fut).now_or_never().is_none());
        clock.advance(Duration::from_secs(9));
        assert!((&mut fut).now_or_never().is_none());
        clock.advance(Duration::from_secs(1));
        assert!(fut.now_or_never().is_some());
        assert_eq!(clock.now() - start, Duration::from_secs(10));
    }

    #[test]
    fn auto_advance_moves_the_clock_by_each_sleep() {
        let clock = ManualClock::auto_advance();
        let t0 = clock.system_now();
        assert!(
            clock
                .sleep(Duration::from_millis(1500))
                .now_or_never()
                .is_some()
        );
        assert!(
            clock
                .sleep(Duration::from_millis(500))
                .now_or_never()
                .is_some()
        );
        assert_eq!(clock.elapsed(), Duration::from_secs(2));
        assert_eq!(
            clock.system_now().duration_since(t0).unwrap(),
            Duration::from_secs(2)
        );
        assert_eq!(
            clock.sleeps(),
            vec![Duration::from_millis(1500), Duration::from_millis(500)]
        );
    }
}
