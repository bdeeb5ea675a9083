//! The pipeline: every stage composed in one documented order, as a [`CallPolicy`].
//!
//! Order, outer to inner (Polly's standard HTTP pipeline, with the rate limit moved inside
//! the retry loop):
//!
//! 1. **bulkhead** — one concurrency slot for the whole call, waiting in a bounded queue;
//! 2. **deadline** — the earlier of `CallContext::deadline` and `total_timeout` bounds all
//!    that follows: no wait is started that would end past it;
//! 3. **retry** — with decorrelated jitter, the server's hint as a floor (a throttle's hint is
//!    the wait itself when the adaptive limiter paces the lane), and the retry budget;
//! 4. per attempt: **rate limit** (static GCRA, then adaptive) → **circuit breaker** →
//!    **attempt timeout** → the attempt.
//!
//! The rate limit sits inside the retry loop, unlike Polly's, because every attempt is a
//! request the server counts: a retry that skipped the limiter is how retry storms get past a
//! client-side limit (AWS's adaptive mode paces retries too). The breaker sits inside the retry
//! so each attempt is recorded and an open breaker ends the call at once instead of burning
//! attempts.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use fabrik_core::policy::{CallError, call_with};
use fabrik_core::time::TokioSleeper;
use fabrik_core::{
    Attempt, AttemptError, BoxFuture, CallContext, CallPolicy, Classify, Clock, ErrorClass,
    EventSink, PolicyError, RandomSource, Rejection, ResilienceEvent, Sleeper, SplitMix64,
    SystemClock,
};
use futures::future::{Either, select};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::backoff::{backoff, wait_with_hint};
use crate::breaker::{BreakerRegistry, CircuitBreaker};
use crate::budget::RetryBudget;
use crate::config::{BulkheadConfig, ConfigError, ResilienceConfig};
use crate::rate::{AdaptiveLimiter, StaticLimiter};

/// Per-key state: everything keyed lives in one entry, so a call costs one map lookup.
#[derive(Debug)]
struct Lane {
    breaker: Option<Arc<CircuitBreaker>>,
    limiter: Option<StaticLimiter>,
    adaptive: Option<AdaptiveLimiter>,
    budget: Option<RetryBudget>,
}

#[derive(Debug)]
struct Bulkhead {
    permits: Semaphore,
    queued: AtomicU32,
    max_queue: u32,
}

/// Decrements the bulkhead's queue count when a waiter leaves, however it leaves.
struct Queued<'a>(&'a AtomicU32);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How an attempt that did not succeed ended: its error, and its time limit if it timed out.
type Failed = (AttemptError, Option<Duration>);

/// One call's progress through its attempts.
struct CallRun<'a> {
    ctx: &'a CallContext,
    lane: Arc<Lane>,
    /// The earlier of the caller's deadline and the total timeout.
    deadline: Option<Instant>,
    /// The last backoff computed: decorrelated jitter grows from it.
    previous_backoff: Option<Duration>,
    /// What the retry budget charged for the retry in progress, refunded on its success.
    spent: Option<u32>,
}

/// Retry, retry budget, circuit breaker, rate limits, bulkhead and timeouts, composed.
/// Use it as an `Arc<dyn CallPolicy>` or call [`run`](Self::run) with any async closure.
pub struct Pipeline {
    cfg: ResilienceConfig,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    random: Arc<dyn RandomSource>,
    events: Option<Arc<dyn EventSink>>,
    breakers: Option<Arc<BreakerRegistry>>,
    bulkhead: Option<Bulkhead>,
    lanes: RwLock<HashMap<String, Arc<Lane>>>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("cfg", &self.cfg)
            .field("breakers", &self.breakers)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Pipeline`]: configuration plus the injected clock, sleeper, randomness and sink.
#[derive(Debug)]
pub struct PipelineBuilder {
    cfg: ResilienceConfig,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    random: Option<Arc<dyn RandomSource>>,
    events: Option<Arc<dyn EventSink>>,
    breakers: Option<Arc<BreakerRegistry>>,
}

impl PipelineBuilder {
    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// The sleeper (default: tokio's timer).
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }
    /// Randomness for jitter (default: [`SplitMix64::from_entropy`]).
    pub fn random(mut self, random: Arc<dyn RandomSource>) -> Self {
        self.random = Some(random);
        self
    }
    /// Where events go (default: nowhere).
    pub fn events(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = Some(sink);
        self
    }
    /// A breaker registry to share (with health, or other pipelines). Its own breaker config
    /// wins over the pipeline's; the pipeline uses it only when its breaker stage is on.
    pub fn breakers(mut self, registry: Arc<BreakerRegistry>) -> Self {
        self.breakers = Some(registry);
        self
    }

    /// Validates the configuration and builds the pipeline.
    pub fn build(self) -> Result<Pipeline, ConfigError> {
        self.cfg.validate()?;
        let breakers = self.cfg.breaker.as_ref().map(|b| {
            self.breakers.unwrap_or_else(|| {
                Arc::new(
                    BreakerRegistry::new(b.clone(), self.clock.clone())
                        .with_events(self.events.clone()),
                )
            })
        });
        let bulkhead = self
            .cfg
            .bulkhead
            .as_ref()
            .map(|b: &BulkheadConfig| Bulkhead {
                permits: Semaphore::new(b.max_concurrent as usize),
                queued: AtomicU32::new(0),
                max_queue: b.max_queue,
            });
        Ok(Pipeline {
            cfg: self.cfg,
            clock: self.clock,
            sleeper: self.sleeper,
            random: self
                .random
                .unwrap_or_else(|| Arc::new(SplitMix64::from_entropy())),
            events: self.events,
            breakers,
            bulkhead,
            lanes: RwLock::new(HashMap::new()),
        })
    }
}

/// Runs `fut` unless `timer` finishes first (`None`).
async fn race<F: Future>(fut: F, timer: BoxFuture<'static, ()>) -> Option<F::Output> {
    let fut = std::pin::pin!(fut);
    match select(fut, timer).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Pipeline {
    /// A builder for `config`, with the system clock, tokio's timer and entropy-seeded jitter.
    pub fn builder(config: ResilienceConfig) -> PipelineBuilder {
        PipelineBuilder {
            cfg: config,
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(TokioSleeper),
            random: None,
            events: None,
            breakers: None,
        }
    }

    /// Runs `f` (called with the attempt number, from 1) through the pipeline and returns its
    /// value or its own last error, or the rejection that stopped it.
    pub async fn run<T, E, F, Fut>(&self, ctx: &CallContext, f: F) -> Result<T, CallError<E>>
    where
        T: Send,
        E: Classify + fmt::Display + Send,
        F: Fn(u32) -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, E>> + Send,
    {
        call_with(Some(self), ctx, f).await
    }

    /// The configuration.
    pub fn config(&self) -> &ResilienceConfig {
        &self.cfg
    }

    /// The breaker registry, when the breaker stage is on: hand it to health as a
    /// [`fabrik_core::BreakerStateSource`].
    pub fn breakers(&self) -> Option<&Arc<BreakerRegistry>> {
        self.breakers.as_ref()
    }

    /// Tokens left in the retry budget of `key` (`None` if the budget is off or the key unused).
    pub fn budget_available(&self, key: &str) -> Option<u32> {
        self.find_lane(key)?.budget.as_ref().map(|b| b.available())
    }

    /// The adaptive rate of `key` now, in requests/s, while it is slowing calls down.
    pub fn adaptive_rate(&self, key: &str) -> Option<f64> {
        let lane = self.find_lane(key)?;
        let a = lane.adaptive.as_ref()?;
        a.is_active().then(|| a.current_rate(self.clock.now()))
    }

    fn find_lane(&self, key: &str) -> Option<Arc<Lane>> {
        let lanes = self.lanes.read().unwrap_or_else(|p| p.into_inner());
        lanes.get(key).cloned()
    }

    fn lane(&self, key: &str) -> Arc<Lane> {
        if let Some(l) = self.find_lane(key) {
            return l;
        }
        let mut lanes = self.lanes.write().unwrap_or_else(|p| p.into_inner());
        lanes
            .entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(Lane {
                    breaker: self.breakers.as_ref().map(|r| r.get(key)),
                    limiter: self
                        .cfg
                        .rate_limit
                        .as_ref()
                        .map(|r| StaticLimiter::new(r, self.clock.clone())),
                    adaptive: self.cfg.adaptive.as_ref().map(|a| {
                        let ceiling = self.cfg.rate_limit.as_ref().map(|r| r.rate());
                        AdaptiveLimiter::new(a.clone(), ceiling, self.clock.now())
                    }),
                    budget: self
                        .cfg
                        .budget
                        .as_ref()
                        .filter(|_| self.cfg.retry.is_some())
                        .map(|b| RetryBudget::new(b.clone())),
                })
            })
            .clone()
    }

    fn emit(&self, event: ResilienceEvent<'_>) {
        if let Some(sink) = &self.events {
            sink.record(&event);
        }
    }

    fn reject(&self, ctx: &CallContext, reason: Rejection) -> PolicyError {
        self.emit(ResilienceEvent::Rejected {
            key: &ctx.key,
            reason: &reason,
        });
        PolicyError::Rejected(reason)
    }

    async fn enter_bulkhead<'a>(
        &self,
        b: &'a Bulkhead,
        ctx: &CallContext,
        deadline: Option<Instant>,
    ) -> Result<SemaphorePermit<'a>, PolicyError> {
        if let Ok(p) = b.permits.try_acquire() {
            return Ok(p);
        }
        let full = || Rejection::Bulkhead {
            key: ctx.key.clone(),
        };
        if b.queued.fetch_add(1, Ordering::AcqRel) >= b.max_queue {
            b.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(self.reject(ctx, full()));
        }
        let _queued = Queued(&b.queued);
        let acquired = match deadline {
            None => Some(b.permits.acquire().await),
            Some(d) => {
                let remaining = d.saturating_duration_since(self.clock.now());
                race(b.permits.acquire(), self.sleeper.sleep(remaining)).await
            }
        };
        match acquired {
            Some(Ok(p)) => Ok(p),
            // The semaphore is never closed; treat it as full rather than panic.
            Some(Err(_)) => Err(self.reject(ctx, full())),
            None => Err(self.reject(ctx, Rejection::DeadlineExceeded { attempts: 0 })),
        }
    }

    /// Waits for the static and adaptive rate limits, never past the deadline.
    async fn pace(
        &self,
        ctx: &CallContext,
        lane: &Lane,
        deadline: Option<Instant>,
        attempts_made: u32,
    ) -> Result<(), PolicyError> {
        let mut waited = Duration::ZERO;
        let past_deadline = || Rejection::DeadlineExceeded {
            attempts: attempts_made,
        };
        if let Some(limiter) = &lane.limiter {
            // Each wait ends at governor's next conforming instant, so this loops only when
            // another caller took that permit first.
            while let Err(wait) = limiter.check() {
                if let Some(d) = deadline
                    && wait >= d.saturating_duration_since(self.clock.now())
                {
                    return Err(self.reject(ctx, past_deadline()));
                }
                self.sleeper.sleep(wait).await;
                waited += wait;
            }
        }
        if let Some(adaptive) = &lane.adaptive {
            let now = self.clock.now();
            let limit = deadline.map(|d| d.saturating_duration_since(now));
            match adaptive.reserve(now, limit) {
                Ok(wait) if !wait.is_zero() => {
                    self.sleeper.sleep(wait).await;
                    waited += wait;
                }
                Ok(_) => {}
                Err(_) => return Err(self.reject(ctx, past_deadline())),
            }
        }
        if !waited.is_zero() {
            self.emit(ResilienceEvent::RateLimited {
                key: &ctx.key,
                waited,
            });
        }
        Ok(())
    }

    async fn run_attempts(&self, ctx: &CallContext, op: &dyn Attempt) -> Result<(), PolicyError> {
        let start = self.clock.now();
        let deadline = earliest(
            ctx.deadline,
            self.cfg.total_timeout.and_then(|t| start.checked_add(t)),
        );
        let _slot = match &self.bulkhead {
            Some(b) => Some(self.enter_bulkhead(b, ctx, deadline).await?),
            None => None,
        };
        let mut run = CallRun {
            ctx,
            lane: self.lane(&ctx.key),
            deadline,
            previous_backoff: None,
            spent: None,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.pace(ctx, &run.lane, deadline, attempt - 1).await?;
            let Some(failed) = self.attempt_once(&run, op, attempt).await? else {
                return Ok(());
            };
            let wait = self.retry_wait(&mut run, attempt, failed)?;
            if !wait.is_zero() {
                self.sleeper.sleep(wait).await;
            }
        }
    }

    /// Attempt number `attempt` through the breaker and under its time limit: `None` when it
    /// succeeded, else how it failed.
    async fn attempt_once(
        &self,
        run: &CallRun<'_>,
        op: &dyn Attempt,
        attempt: u32,
    ) -> Result<Option<Failed>, PolicyError> {
        let (ctx, lane) = (run.ctx, &run.lane);
        let mut permit = match &lane.breaker {
            Some(b) => Some(b.try_acquire().map_err(|r| self.reject(ctx, r))?),
            None => None,
        };
        let remaining = run
            .deadline
            .map(|d| d.saturating_duration_since(self.clock.now()));
        if remaining == Some(Duration::ZERO) {
            return Err(self.reject(
                ctx,
                Rejection::DeadlineExceeded {
                    attempts: attempt - 1,
                },
            ));
        }
        // The attempt's limit is its own timeout or what the deadline leaves, if shorter.
        let limit = match (self.cfg.attempt_timeout, remaining) {
            (Some(t), Some(r)) if r < t => Some((r, true)),
            (Some(t), _) => Some((t, false)),
            (None, Some(r)) => Some((r, true)),
            (None, None) => None,
        };
        let outcome = match limit {
            None => Some(op.attempt(attempt).await),
            Some((l, _)) => race(op.attempt(attempt), self.sleeper.sleep(l)).await,
        };
        let (err, timed_out) = match outcome {
            Some(Ok(())) => {
                if let Some(p) = permit {
                    p.success();
                }
                if let Some(a) = &lane.adaptive {
                    a.on_success(self.clock.now());
                }
                if let Some(b) = &lane.budget {
                    b.on_success(run.spent);
                }
                return Ok(None);
            }
            Some(Err(e)) => (e, None),
            None => {
                let (after, by_deadline) = limit.unwrap_or_default();
                if let Some(p) = permit.take() {
                    p.failure();
                }
                if by_deadline {
                    let attempts = attempt;
                    return Err(self.reject(ctx, Rejection::DeadlineExceeded { attempts }));
                }
                let summary = format!("attempt {attempt} timed out after {after:?}");
                let e = AttemptError {
                    class: ErrorClass::Timeout,
                    retry_after: None,
                    summary,
                };
                (e, Some(after))
            }
        };
        if let Some(p) = permit {
            p.record(Err(err.class));
        }
        Ok(Some((err, timed_out)))
    }

    /// After attempt `attempt` failed: how long to wait before the next one, or the error
    /// that ends the call (no retry allowed, none left, the deadline, the budget).
    fn retry_wait(
        &self,
        run: &mut CallRun<'_>,
        attempt: u32,
        (err, timed_out): Failed,
    ) -> Result<Duration, PolicyError> {
        let (ctx, lane) = (run.ctx, &run.lane);
        if err.class == ErrorClass::Throttled {
            if let Some(a) = &lane.adaptive {
                a.on_throttle(self.clock.now());
            }
            self.emit(ResilienceEvent::Throttled {
                key: &ctx.key,
                retry_after: err.retry_after,
            });
        }
        let retry = self.cfg.retry.as_ref();
        let max_attempts = retry.map_or(1, |r| r.max_attempts);
        // A non-idempotent call may have taken effect before a 5xx or a timeout; only a
        // throttle (the server refused it) is safe to repeat.
        let may_retry = err.class.is_retryable()
            && attempt < max_attempts
            && (ctx.idempotent || err.class == ErrorClass::Throttled);
        let Some(retry) = retry.filter(|_| may_retry) else {
            return Err(match timed_out {
                Some(after) => self.reject(ctx, Rejection::AttemptTimedOut { attempt, after }),
                None => PolicyError::Failed {
                    attempts: attempt,
                    last: err,
                },
            });
        };
        let computed = backoff(retry, attempt, run.previous_backoff, self.random.as_ref());
        run.previous_backoff = Some(computed);
        let wait = match (err.class, err.retry_after, &lane.adaptive) {
            // A throttle that names its wait, on a lane the adaptive limiter paces: the server
            // said when, and the limiter (just told of the throttle) spaces the retry among the
            // other calls. A jittered backoff on top (1–3 s at the first retry by default)
            // would idle the call past the wait it was given: at the end of a short run that
            // tail is the run's cost.
            (ErrorClass::Throttled, Some(hint), Some(_)) => hint,
            _ => wait_with_hint(computed, err.retry_after),
        };
        if let Some(d) = run.deadline {
            let remaining = d.saturating_duration_since(self.clock.now());
            if wait >= remaining {
                // Fail now rather than sleep into the deadline.
                let reason = match err.retry_after {
                    Some(hint) if hint >= remaining => {
                        Rejection::HintBeyondDeadline { hint, remaining }
                    }
                    _ => Rejection::DeadlineExceeded { attempts: attempt },
                };
                return Err(self.reject(ctx, reason));
            }
        }
        if let Some(budget) = &lane.budget {
            match budget.try_acquire(err.class) {
                Some(cost) => run.spent = Some(cost),
                None => {
                    let key = ctx.key.clone();
                    return Err(self.reject(ctx, Rejection::BudgetExhausted { key }));
                }
            }
        }
        self.emit(ResilienceEvent::Retry {
            key: &ctx.key,
            attempt,
            delay: wait,
            class: err.class,
        });
        Ok(wait)
    }
}

impl CallPolicy for Pipeline {
    fn execute<'a>(
        &'a self,
        ctx: &'a CallContext,
        op: &'a dyn Attempt,
    ) -> BoxFuture<'a, Result<(), PolicyError>> {
        Box::pin(self.run_attempts(ctx, op))
    }
}
