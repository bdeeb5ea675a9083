//! Circuit breaker (Closed / Open / HalfOpen, plus manual isolation) and a registry per key.
//!
//! Two trip rules: consecutive failures (the seed) and failure ratio over a sliding window with
//! a minimum throughput (Polly v8). Open → HalfOpen happens lazily on the next call once the
//! break is over; at most `half_open_max_probes` probes run at once, `success_threshold`
//! successful probes close the breaker and any failed probe reopens it.
//!
//! Concurrency: state and a generation number share one atomic word, so a closed breaker admits
//! a call with a single load and records a success with a load (plus a store only after a
//! failure): calls from many threads do not contend. Transitions take a mutex. A permit carries
//! the word it was issued under; an outcome reported after the breaker moved on (a slow call
//! finishing after the breaker opened) is ignored, as in Polly.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use fabrik_core::{
    BreakerSnapshot, BreakerState, BreakerStateSource, Clock, ErrorClass, EventSink, Rejection,
    ResilienceEvent,
};

use crate::config::{BreakerConfig, TripRule};

const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
const ISOLATED: u64 = 3;
const STATE_BITS: u64 = 0b11;

fn state_of(word: u64) -> u64 {
    word & STATE_BITS
}

/// A breaker's state including manual isolation, which core's [`BreakerState`] folds into `Open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls flow.
    Closed,
    /// Calls are rejected until the break ends.
    Open,
    /// Probes decide whether to close.
    HalfOpen,
    /// Opened by hand; stays open until [`CircuitBreaker::reset`].
    Isolated,
}

impl CircuitState {
    fn from_word(word: u64) -> Self {
        match state_of(word) {
            CLOSED => CircuitState::Closed,
            OPEN => CircuitState::Open,
            HALF_OPEN => CircuitState::HalfOpen,
            _ => CircuitState::Isolated,
        }
    }

    /// The state as health and telemetry see it (isolated reads as open).
    pub fn public(self) -> BreakerState {
        match self {
            CircuitState::Closed => BreakerState::Closed,
            CircuitState::Open | CircuitState::Isolated => BreakerState::Open,
            CircuitState::HalfOpen => BreakerState::HalfOpen,
        }
    }
}

/// Counters of one breaker, for diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerStats {
    /// The state now.
    pub state: CircuitState,
    /// Failures in a row while closed (consecutive rule).
    pub consecutive_failures: u32,
    /// Calls and failures in the sliding window (ratio rule; zero otherwise).
    pub window_calls: u32,
    /// Failures in the sliding window.
    pub window_failures: u32,
    /// Probes in flight while half-open.
    pub probes_in_flight: u32,
    /// Successful probes so far while half-open.
    pub probe_successes: u32,
    /// Times the breaker has opened (including isolation).
    pub times_opened: u64,
    /// For an open breaker, how long until a probe is allowed.
    pub retry_in: Option<Duration>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    start: Option<Instant>,
    calls: u32,
    failures: u32,
}

/// Polly's rolling window: 10 buckets over the sampling duration, evicted by age.
#[derive(Debug, Default)]
struct Window {
    buckets: VecDeque<Bucket>,
}

impl Window {
    fn record(&mut self, now: Instant, sampling: Duration, failed: bool) {
        let width = sampling / 10;
        while let Some(b) = self.buckets.front()
            && b.start
                .is_some_and(|s| now.saturating_duration_since(s) >= sampling)
        {
            self.buckets.pop_front();
        }
        let fresh = match self.buckets.back() {
            Some(b) => b
                .start
                .is_none_or(|s| now.saturating_duration_since(s) >= width),
            None => true,
        };
        if fresh {
            self.buckets.push_back(Bucket {
                start: Some(now),
                calls: 0,
                failures: 0,
            });
        }
        if let Some(b) = self.buckets.back_mut() {
            b.calls += 1;
            b.failures += u32::from(failed);
        }
    }

    fn totals(&self) -> (u32, u32) {
        self.buckets
            .iter()
            .fold((0, 0), |(c, f), b| (c + b.calls, f + b.failures))
    }
}

#[derive(Debug)]
struct Inner {
    open_until: Instant,
    half_open_since: Instant,
    probes_in_flight: u32,
    probe_successes: u32,
    window: Window,
    times_opened: u64,
}

/// One circuit breaker. Share it as `Arc<CircuitBreaker>`; get keyed ones from a [`BreakerRegistry`].
pub struct CircuitBreaker {
    key: String,
    cfg: BreakerConfig,
    clock: Arc<dyn Clock>,
    events: Option<Arc<dyn EventSink>>,
    /// `generation << 2 | state`.
    word: AtomicU64,
    consecutive: AtomicU32,
    inner: Mutex<Inner>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("key", &self.key)
            .field("state", &self.state())
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Permission to make one call through a breaker. Report the outcome with
/// [`record`](Self::record), [`success`](Self::success) or [`failure`](Self::failure);
/// dropping it unreported (a cancelled call) frees its half-open probe slot.
#[must_use = "report the call's outcome, or the breaker learns nothing"]
#[derive(Debug)]
pub struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    word: u64,
    reported: bool,
}

impl BreakerPermit<'_> {
    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        state_of(self.word) == HALF_OPEN
    }

    /// Reports the outcome by class: permanent failures (400, 404 …) prove the service is up
    /// and answering, so they count as successes; transient, throttled and timed-out ones count
    /// as failures.
    pub fn record(self, outcome: Result<(), ErrorClass>) {
        match outcome {
            Err(class) if class.is_retryable() => self.failure(),
            _ => self.success(),
        }
    }

    /// Reports a success.
    pub fn success(mut self) {
        self.reported = true;
        self.breaker.on_outcome(self.word, true);
    }

    /// Reports a failure.
    pub fn failure(mut self) {
        self.reported = true;
        self.breaker.on_outcome(self.word, false);
    }
}

impl Drop for BreakerPermit<'_> {
    fn drop(&mut self) {
        if !self.reported && self.is_probe() {
            self.breaker.release_probe(self.word);
        }
    }
}

type Transition = Option<(CircuitState, CircuitState)>;

impl CircuitBreaker {
    /// A closed breaker for `key`. The config is assumed valid (see `ResilienceConfig::validate`).
    pub fn new(key: impl Into<String>, cfg: BreakerConfig, clock: Arc<dyn Clock>) -> Self {
        let now = clock.now();
        Self {
            key: key.into(),
            cfg,
            clock,
            events: None,
            word: AtomicU64::new(CLOSED),
            consecutive: AtomicU32::new(0),
            inner: Mutex::new(Inner {
                open_until: now,
                half_open_since: now,
                probes_in_flight: 0,
                probe_successes: 0,
                window: Window::default(),
                times_opened: 0,
            }),
        }
    }

    /// Sends state transitions to `sink`.
    pub fn with_events(mut self, sink: Option<Arc<dyn EventSink>>) -> Self {
        self.events = sink;
        self
    }

    /// The breaker's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Its configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.cfg
    }

    /// The state now. An open breaker whose break is over still reads `Open` until the next
    /// call moves it to half-open (the transition is lazy).
    pub fn state(&self) -> CircuitState {
        CircuitState::from_word(self.word.load(Ordering::Acquire))
    }

    /// Asks to make a call. Immediate: a rejection says how long until a probe is allowed.
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_>, Rejection> {
        let word = self.word.load(Ordering::Acquire);
        if state_of(word) == CLOSED {
            return Ok(self.permit(word));
        }
        self.acquire_slow()
    }

    fn permit(&self, word: u64) -> BreakerPermit<'_> {
        BreakerPermit {
            breaker: self,
            word,
            reported: false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent plain data; keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn acquire_slow(&self) -> Result<BreakerPermit<'_>, Rejection> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let word = self.word.load(Ordering::Acquire);
        let mut transition = None;
        let result = match state_of(word) {
            CLOSED => Ok(word),
            OPEN if now >= inner.open_until => {
                transition = Some((CircuitState::Open, CircuitState::HalfOpen));
                Ok(self.enter_half_open(&mut inner, word, now))
            }
            OPEN => Err(Some(inner.open_until - now)),
            HALF_OPEN if inner.probes_in_flight < self.cfg.half_open_max_probes => {
                inner.probes_in_flight += 1;
                Ok(word)
            }
            HALF_OPEN => {
                // Probes that hang for a whole break are written off, as in Polly: new probes
                // go out under a new generation and the old ones' outcomes are ignored.
                let stale_at = inner.half_open_since + self.cfg.break_duration;
                if now >= stale_at {
                    Ok(self.enter_half_open(&mut inner, word, now))
                } else {
                    Err(Some(stale_at - now))
                }
            }
            // Isolated: no probe is ever allowed until a reset.
            _ => Err(None),
        };
        drop(inner);
        self.emit(transition);
        match result {
            Ok(w) => Ok(self.permit(w)),
            Err(Some(retry_in)) => Err(Rejection::CircuitOpen {
                key: self.key.clone(),
                retry_in,
            }),
            Err(None) => Err(Rejection::CircuitIsolated {
                key: self.key.clone(),
            }),
        }
    }

    /// Moves to half-open with one probe (the caller's) in flight; returns the new word.
    fn enter_half_open(&self, inner: &mut Inner, word: u64, now: Instant) -> u64 {
        inner.half_open_since = now;
        inner.probes_in_flight = 1;
        inner.probe_successes = 0;
        self.store(word, HALF_OPEN)
    }

    fn store(&self, old: u64, state: u64) -> u64 {
        let word = ((old >> 2).wrapping_add(1) << 2) | state;
        self.word.store(word, Ordering::Release);
        word
    }

    fn open(&self, inner: &mut Inner, word: u64, now: Instant) -> Transition {
        inner.open_until = now.checked_add(self.cfg.break_duration).unwrap_or(now);
        inner.times_opened += 1;
        self.store(word, OPEN);
        Some((CircuitState::from_word(word), CircuitState::Open))
    }

    fn close(&self, inner: &mut Inner, word: u64) -> Transition {
        inner.window = Window::default();
        inner.probes_in_flight = 0;
        inner.probe_successes = 0;
        self.consecutive.store(0, Ordering::Relaxed);
        self.store(word, CLOSED);
        Some((CircuitState::from_word(word), CircuitState::Closed))
    }

    fn on_outcome(&self, permit_word: u64, ok: bool) {
        let current = self.word.load(Ordering::Acquire);
        if current != permit_word {
            return; // The breaker moved on since this call was admitted.
        }
        if state_of(current) == CLOSED
            && let TripRule::ConsecutiveFailures { threshold } = self.cfg.trip
        {
            if ok {
                if self.consecutive.load(Ordering::Relaxed) != 0 {
                    self.consecutive.store(0, Ordering::Relaxed);
                }
                return;
            }
            if self.consecutive.fetch_add(1, Ordering::AcqRel) + 1 < threshold {
                return;
            }
        }
        let now = self.clock.now();
        let mut inner = self.lock();
        let word = self.word.load(Ordering::Acquire);
        if word != permit_word {
            return;
        }
        let transition = match (state_of(word), &self.cfg.trip) {
            (CLOSED, TripRule::ConsecutiveFailures { .. }) => self.open(&mut inner, word, now),
            (
                CLOSED,
                TripRule::FailureRatio {
                    ratio,
                    min_throughput,
                    sampling,
                },
            ) => {
                inner.window.record(now, *sampling, !ok);
                let (calls, failures) = inner.window.totals();
                let trip = !ok
                    && calls >= *min_throughput
                    && f64::from(failures) >= *ratio * f64::from(calls);
                if trip {
                    self.open(&mut inner, word, now)
                } else {
                    None
                }
            }
            (HALF_OPEN, _) if ok => {
                inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
                inner.probe_successes += 1;
                if inner.probe_successes >= self.cfg.success_threshold {
                    self.close(&mut inner, word)
                } else {
                    None
                }
            }
            (HALF_OPEN, _) => self.open(&mut inner, word, now),
            _ => None,
        };
        drop(inner);
        self.emit(transition);
    }

    fn release_probe(&self, permit_word: u64) {
        let mut inner = self.lock();
        if self.word.load(Ordering::Acquire) == permit_word {
            inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
        }
    }

    /// Opens the breaker by hand until [`reset`](Self::reset) (Polly's `Isolate`).
    pub fn isolate(&self) {
        let mut inner = self.lock();
        let word = self.word.load(Ordering::Acquire);
        if state_of(word) == ISOLATED {
            return;
        }
        inner.times_opened += 1;
        inner.probes_in_flight = 0;
        self.store(word, ISOLATED);
        drop(inner);
        self.emit(Some((
            CircuitState::from_word(word),
            CircuitState::Isolated,
        )));
    }

    /// Closes the breaker by hand and clears its counters.
    pub fn reset(&self) {
        let mut inner = self.lock();
        let word = self.word.load(Ordering::Acquire);
        let transition = self.close(&mut inner, word);
        drop(inner);
        if state_of(word) != CLOSED {
            self.emit(transition);
        }
    }

    /// Counters, for diagnostics and tests.
    pub fn stats(&self) -> BreakerStats {
        let now = self.clock.now();
        let inner = self.lock();
        let state = self.state();
        let (window_calls, window_failures) = inner.window.totals();
        BreakerStats {
            state,
            consecutive_failures: self.consecutive.load(Ordering::Relaxed),
            window_calls,
            window_failures,
            probes_in_flight: inner.probes_in_flight,
            probe_successes: inner.probe_successes,
            times_opened: inner.times_opened,
            retry_in: self.retry_in(state, &inner, now),
        }
    }

    fn retry_in(&self, state: CircuitState, inner: &Inner, now: Instant) -> Option<Duration> {
        match state {
            CircuitState::Open => Some(inner.open_until.saturating_duration_since(now)),
            _ => None,
        }
    }

    /// The breaker as health sees it.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let s = self.stats();
        BreakerSnapshot {
            key: self.key.clone(),
            state: s.state.public(),
            critical: self.cfg.critical,
            retry_in: s.retry_in,
        }
    }

    fn emit(&self, transition: Transition) {
        if let (Some(sink), Some((from, to))) = (&self.events, transition) {
            let (from, to) = (from.public(), to.public());
            if from != to {
                sink.record(&ResilienceEvent::BreakerTransition {
                    key: &self.key,
                    from,
                    to,
                });
            }
        }
    }
}

/// Breakers by key (endpoint, host, workspace): one breaker per key, made on first use.
/// Implements [`BreakerStateSource`] so health can read every breaker's state.
pub struct BreakerRegistry {
    cfg: BreakerConfig,
    clock: Arc<dyn Clock>,
    events: Option<Arc<dyn EventSink>>,
    map: RwLock<HashMap<String, Arc<CircuitBreaker>>>,
}

impl fmt::Debug for BreakerRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerRegistry")
            .field("cfg", &self.cfg)
            .field("breakers", &self.breakers())
            .finish_non_exhaustive()
    }
}

impl BreakerRegistry {
    /// An empty registry whose breakers use `cfg` (assumed valid) and `clock`.
    pub fn new(cfg: BreakerConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            cfg,
            clock,
            events: None,
            map: RwLock::new(HashMap::new()),
        }
    }

    /// Sends every breaker's transitions to `sink`.
    pub fn with_events(mut self, sink: Option<Arc<dyn EventSink>>) -> Self {
        self.events = sink;
        self
    }

    /// The breaker for `key`, made on first use: the same `Arc` every time.
    pub fn get(&self, key: &str) -> Arc<CircuitBreaker> {
        if let Some(b) = self.find(key) {
            return b;
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        map.entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(
                    CircuitBreaker::new(key, self.cfg.clone(), self.clock.clone())
                        .with_events(self.events.clone()),
                )
            })
            .clone()
    }

    /// The breaker for `key`, if one was made.
    pub fn find(&self, key: &str) -> Option<Arc<CircuitBreaker>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(key).cloned()
    }

    /// Every breaker, sorted by key.
    pub fn all(&self) -> Vec<Arc<CircuitBreaker>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = map.values().cloned().collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    /// Isolates the breaker for `key` (making it if needed).
    pub fn isolate(&self, key: &str) {
        self.get(key).isolate();
    }

    /// Resets the breaker for `key`; false if there is none.
    pub fn reset(&self, key: &str) -> bool {
        self.find(key).map(|b| b.reset()).is_some()
    }

    /// Resets every breaker.
    pub fn reset_all(&self) {
        for b in self.all() {
            b.reset();
        }
    }
}

impl BreakerStateSource for BreakerRegistry {
    fn breakers(&self) -> Vec<BreakerSnapshot> {
        self.all().iter().map(|b| b.snapshot()).collect()
    }
}
