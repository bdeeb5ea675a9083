//! Shared test helpers: a classified error, a recording sink, flags, and a driver that moves a
//! manual clock exactly to the next pending sleep.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use fabrik_core::time::ManualClock;
use fabrik_core::{
    BoxFuture, BreakerState, Classify, Clock, ErrorClass, EventSink, Flag, FlagSource,
    RandomSource, ResilienceEvent, Sleeper,
};

/// An API error: an HTTP status (0 = connection error) and an optional server hint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) hint: Option<Duration>,
    pub(crate) body: String,
}

impl ApiError {
    pub(crate) fn status(status: u16) -> Self {
        Self {
            status,
            hint: None,
            body: format!("status {status}"),
        }
    }
    pub(crate) fn throttled(hint: Duration) -> Self {
        Self {
            status: 429,
            hint: Some(hint),
            body: "slow down".into(),
        }
    }
    pub(crate) fn connection() -> Self {
        Self::status(0)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.body)
    }
}

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        if self.status == 0 {
            ErrorClass::Transient
        } else {
            ErrorClass::from_status(self.status)
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        self.hint
    }
}

/// An owned copy of a [`ResilienceEvent`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ev {
    Retry {
        attempt: u32,
        delay: Duration,
        class: ErrorClass,
    },
    Throttled(Option<Duration>),
    Transition(BreakerState, BreakerState),
    Rejected(String),
    RateLimited(Duration),
}

#[derive(Debug, Default)]
pub(crate) struct Sink(pub Mutex<Vec<Ev>>);

impl Sink {
    pub(crate) fn events(&self) -> Vec<Ev> {
        self.0.lock().unwrap().clone()
    }
}

impl EventSink for Sink {
    fn record(&self, event: &ResilienceEvent<'_>) {
        let e = match event {
            ResilienceEvent::Retry {
                attempt,
                delay,
                class,
                ..
            } => Ev::Retry {
                attempt: *attempt,
                delay: *delay,
                class: *class,
            },
            ResilienceEvent::Throttled { retry_after, .. } => Ev::Throttled(*retry_after),
            ResilienceEvent::BreakerTransition { from, to, .. } => Ev::Transition(*from, *to),
            ResilienceEvent::Rejected { reason, .. } => Ev::Rejected(reason.to_string()),
            ResilienceEvent::RateLimited { waited, .. } => Ev::RateLimited(*waited),
            other => panic!("unexpected event {other:?}"),
        };
        self.0.lock().unwrap().push(e);
    }
}

/// Flags with retry and breaker set as given.
#[derive(Debug)]
pub(crate) struct Flags {
    pub(crate) retry: bool,
    pub(crate) breaker: bool,
}

impl FlagSource for Flags {
    fn is_enabled(&self, flag: Flag) -> bool {
        match flag {
            Flag::RetryLogic => self.retry,
            Flag::CircuitBreaker => self.breaker,
            _ => false,
        }
    }
}

/// Always the same draw: makes decorrelated jitter predictable.
#[derive(Debug)]
pub(crate) struct Fixed(pub f64);

impl RandomSource for Fixed {
    fn next_u64(&self) -> u64 {
        (self.0 * (1u64 << 53) as f64) as u64
    }
    fn next_f64(&self) -> f64 {
        self.0
    }
}

/// A [`ManualClock`] that also remembers when each sleep ends, so [`Stepper::drive`] can move
/// time exactly to the next one: no real waiting, no overshoot.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stepper {
    pub(crate) clock: ManualClock,
    ends: Arc<Mutex<Vec<Duration>>>,
}

impl Stepper {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.clock.elapsed()
    }

    /// Polls `fut` to completion, advancing the clock to the next sleep's end whenever it is stuck.
    pub(crate) fn drive<F: Future>(&self, fut: F) -> F::Output {
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut fut = pin!(fut);
        loop {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
            let now = self.clock.elapsed();
            let next = self
                .ends
                .lock()
                .unwrap()
                .iter()
                .copied()
                .filter(|e| *e > now)
                .min();
            match next {
                Some(at) => self.clock.advance(at - now),
                None => panic!("future is stuck with no sleep pending"),
            }
        }
    }
}

impl Clock for Stepper {
    fn now(&self) -> Instant {
        self.clock.now()
    }
    fn system_now(&self) -> SystemTime {
        self.clock.system_now()
    }
}

impl Sleeper for Stepper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.ends
            .lock()
            .unwrap()
            .push(self.clock.elapsed() + duration);
        self.clock.sleep(duration)
    }
}

/// A pipeline on the stepper's clock with fixed jitter (a draw of 0: waits start at min_wait).
pub(crate) fn build(
    cfg: fabrik_resilience::ResilienceConfig,
    s: &Stepper,
) -> fabrik_resilience::Pipeline {
    builder(cfg, s).build().unwrap()
}

pub(crate) fn builder(
    cfg: fabrik_resilience::ResilienceConfig,
    s: &Stepper,
) -> fabrik_resilience::PipelineBuilder {
    fabrik_resilience::Pipeline::builder(cfg)
        .clock(Arc::new(s.clone()))
        .sleeper(Arc::new(s.clone()))
        .random(Arc::new(Fixed(0.0)))
}

/// Retry only: `attempts` total, waits `min`..`max` seconds, plain exponential.
pub(crate) fn retry_only(attempts: u32, min: u64, max: u64) -> fabrik_resilience::ResilienceConfig {
    fabrik_resilience::ResilienceConfig::disabled().with_retry(Some(
        fabrik_resilience::RetryConfig {
            max_attempts: attempts,
            min_wait: Duration::from_secs(min),
            max_wait: Duration::from_secs(max),
            jitter: fabrik_resilience::Jitter::None,
        },
    ))
}
