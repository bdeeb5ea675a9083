//! Configuration of every stage, with validation, seed-compatible defaults and environment reading.
//!
//! Each stage is an `Option`: `None` switches it off, so the CLI can map feature flags straight
//! onto the pipeline.
//!
//! # Why the defaults are what they are
//! They must carry a deployment through an API failing a fifth of its requests at random
//! (the fault matrix in `tests/e2e/faults.rs` checks it), and still stop quickly when the
//! API is down:
//! - **10 attempts** (the seed had 3). At a 20 % failure rate a call fails for good with
//!   probability 0.2^n: 0.8 % for 3 attempts, which in a 600-call deployment fails the run
//!   almost every time; 1e-7 for 10 (Azure's SDKs also default to 10 retries). What keeps
//!   retries from piling onto a failing service is the budget, not the attempt count.
//! - **Waits 1–60 s, decorrelated jitter** (the seed's range): concurrent callers spread out.
//! - **Retry budget 500 / 5 / 10 / 1** (the AWS SDK's standard mode). At 20 % failures the
//!   budget grows (a first-try success earns 1, a retry that succeeds is refunded), so it
//!   never bites; when every call fails, 100 retries drain it and calls fail at once.
//! - **Breaker: open when 80 % of at least 20 attempts in 30 s failed**, for 60 s, closing
//!   after 2 successful probes of 3. The seed's 5-failures-in-a-row rule opens by chance at
//!   a 20 % failure rate (0.2^5 per attempt: most runs of a few thousand attempts) and an open
//!   breaker fails every call of the run; 80 % of 20 is out of reach of 20 % random failures
//!   (about 1e-8 per window) but any outage reaches it within 20 attempts.
//!   `CIRCUIT_BREAKER_FAILURE_THRESHOLD` still selects the seed's rule.
//! - **30 s per attempt**: Fabric answers in well under a second (long work is a 202 and an
//!   operation to poll), so 30 s only ends attempts that hang, at the cost of one attempt.
//! - The CLI adds a deadline per call, all attempts included (`--call-timeout`, 300 s): room
//!   for the waits of 10 attempts and a hung one, still bounded.
//!
//! [`RetryConfig::seed`] and [`BreakerConfig::seed`] are the seed's values.

use std::fmt;
use std::time::Duration;

use fabrik_core::{Flag, FlagSource};

/// Environment variable: total attempts per call, the first one included.
pub const ENV_RETRY_MAX_ATTEMPTS: &str = "RETRY_MAX_ATTEMPTS";
/// Environment variable: smallest wait between attempts, in (fractional) seconds.
pub const ENV_RETRY_MIN_WAIT: &str = "RETRY_MIN_WAIT";
/// Environment variable: largest computed wait between attempts, in (fractional) seconds.
pub const ENV_RETRY_MAX_WAIT: &str = "RETRY_MAX_WAIT";
/// Environment variable: consecutive failures that open a breaker.
pub const ENV_BREAKER_FAILURE_THRESHOLD: &str = "CIRCUIT_BREAKER_FAILURE_THRESHOLD";
/// Environment variable: how long a breaker stays open, in (fractional) seconds.
pub const ENV_BREAKER_TIMEOUT_SECONDS: &str = "CIRCUIT_BREAKER_TIMEOUT_SECONDS";
/// Environment variable: half-open successes that close a breaker.
pub const ENV_BREAKER_SUCCESS_THRESHOLD: &str = "CIRCUIT_BREAKER_SUCCESS_THRESHOLD";

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment variable holds a value that does not parse or is out of range.
    #[error("environment variable {var}={value:?} is invalid: {reason}")]
    Env {
        /// The variable's name.
        var: &'static str,
        /// Its value as found.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration field is out of range.
    #[error("{field} = {value} is invalid: {reason}")]
    Invalid {
        /// The field, as `stage.field`.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(field: &'static str, value: impl fmt::Debug, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        field,
        value: format!("{value:?}"),
        reason: reason.to_owned(),
    }
}

/// How the wait grows between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Jitter {
    /// Decorrelated jitter (AWS architecture blog): `wait = min(max_wait, rand[min_wait, 3 × previous])`.
    /// Spreads concurrent callers apart while still growing roughly exponentially.
    Decorrelated,
    /// Plain exponential `min_wait × 2^(retry − 1)`, capped at `max_wait` (the seed's tenacity wait).
    None,
}

/// Retry: how many attempts, and how long to wait between them.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// Total attempts per call, the first one included (AWS and resilience4j style; Polly and
    /// Azure count retries instead). 1 means never retry.
    pub max_attempts: u32,
    /// Base and smallest computed wait.
    pub min_wait: Duration,
    /// Largest computed wait. A server hint may exceed it: a hint is a floor, never capped.
    pub max_wait: Duration,
    /// How waits grow.
    pub jitter: Jitter,
}

impl RetryConfig {
    /// The seed's retry: 3 attempts, waits 1–60 s.
    pub fn seed() -> Self {
        Self {
            max_attempts: 3,
            ..Self::default()
        }
    }
}

impl Default for RetryConfig {
    /// 10 attempts, waits 1–60 s with decorrelated jitter (see the module docs for why).
    fn default() -> Self {
        Self {
            max_attempts: 10,
            min_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
            jitter: Jitter::Decorrelated,
        }
    }
}

/// Token-bucket retry budget (AWS SDK standard mode): retries spend tokens, successes earn
/// them back, so an outage cannot turn many callers into a retry storm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetConfig {
    /// Tokens when full.
    pub capacity: u32,
    /// Cost of a retry after a transient or throttled failure.
    pub retry_cost: u32,
    /// Cost of a retry after a timeout (costlier: timeouts hold server resources longest).
    pub timeout_retry_cost: u32,
    /// Tokens earned by a call that succeeds on its first attempt. A call that succeeds on a
    /// retry gets that retry's cost refunded instead.
    pub success_reward: u32,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            capacity: 500,
            retry_cost: 5,
            timeout_retry_cost: 10,
            success_reward: 1,
        }
    }
}

/// When a closed breaker opens.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TripRule {
    /// After `threshold` failures in a row (the seed's rule).
    ConsecutiveFailures {
        /// Failures in a row that open the breaker.
        threshold: u32,
    },
    /// When failures make up at least `ratio` of the calls in the last `sampling` window, once
    /// the window holds at least `min_throughput` calls (Polly v8's advanced breaker).
    FailureRatio {
        /// Failure share that opens the breaker, in (0, 1].
        ratio: f64,
        /// Calls the window must hold before it may open (at least 2).
        min_throughput: u32,
        /// Length of the sliding window (kept as 10 buckets).
        sampling: Duration,
    },
}

/// Circuit breaker: when to open, how long to stay open, how to probe.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// When to open.
    pub trip: TripRule,
    /// How long an open breaker rejects calls before it lets probes through.
    pub break_duration: Duration,
    /// Successful probes that close a half-open breaker.
    pub success_threshold: u32,
    /// Probes allowed in flight at once while half-open; more calls are rejected.
    pub half_open_max_probes: u32,
    /// Whether an open breaker makes the process not ready (reported to health).
    pub critical: bool,
}

impl BreakerConfig {
    /// The seed's breaker: open after 5 failures in a row, for 60 s; 2 successful probes of
    /// at most 3 close it.
    pub fn seed() -> Self {
        Self {
            trip: TripRule::ConsecutiveFailures { threshold: 5 },
            ..Self::default()
        }
    }
}

impl Default for BreakerConfig {
    /// Open when 80 % of at least 20 attempts in 30 s failed (see the module docs for why).
    fn default() -> Self {
        Self {
            trip: TripRule::FailureRatio {
                ratio: 0.8,
                min_throughput: 20,
                sampling: Duration::from_secs(30),
            },
            break_duration: Duration::from_secs(60),
            success_threshold: 2,
            half_open_max_probes: 3,
            critical: true,
        }
    }
}

/// Client-side GCRA rate limit per key (governor): `max_requests` every `per`, with bursts of
/// up to `burst` requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Requests allowed per period.
    pub max_requests: u32,
    /// The period.
    pub per: Duration,
    /// Requests that may go at once after a quiet spell.
    pub burst: u32,
}

impl RateLimitConfig {
    /// `n` requests per second with a burst of `n`.
    pub fn per_second(n: u32) -> Self {
        Self {
            max_requests: n,
            per: Duration::from_secs(1),
            burst: n,
        }
    }

    /// Requests per second this limit allows in the long run.
    pub fn rate(&self) -> f64 {
        f64::from(self.max_requests) / self.per.as_secs_f64()
    }
}

/// Adaptive rate per key: inactive until the server throttles (429); then the rate the server
/// accepted over the last `window` becomes the allowed rate (never less than the current rate
/// × `decrease_factor`, the plain AIMD cut, when too little was sent to measure), and it climbs
/// back by `recovery_per_sec` plus `probe_per_sec` of itself every second, so a run finds the
/// service's limit and spends its time there. With a finite ceiling the stage switches itself
/// off again on reaching it.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveConfig {
    /// Highest rate (requests/s): unbounded by default, the static rate limit's when one is set.
    pub ceiling: f64,
    /// The rate never drops below this (requests/s).
    pub min_rate: f64,
    /// A cut never goes below the current rate times this, in (0, 1) (AWS adaptive mode uses 0.7).
    pub decrease_factor: f64,
    /// Requests/s gained per second without throttling.
    pub recovery_per_sec: f64,
    /// Fraction of the rate gained per second without throttling (probing for more room).
    pub probe_per_sec: f64,
    /// How far back accepted requests count towards the measured rate.
    pub window: Duration,
}

impl Default for AdaptiveConfig {
    /// Measured over 1 s; a cut to at worst half the rate; +1 request/s and +5 % per second:
    /// at 25–400 requests/s a run probes past the limit every 1–3 s, so a throttle costs a few
    /// 429s, not a halved rate.
    fn default() -> Self {
        Self {
            ceiling: f64::INFINITY,
            min_rate: 0.5,
            decrease_factor: 0.5,
            recovery_per_sec: 1.0,
            probe_per_sec: 0.05,
            window: Duration::from_secs(1),
        }
    }
}

/// Concurrency limit for the whole pipeline (bulkhead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkheadConfig {
    /// Calls in flight at once.
    pub max_concurrent: u32,
    /// Calls that may wait for a slot; more are rejected at once.
    pub max_queue: u32,
}

/// The whole pipeline. `None` switches a stage off.
#[derive(Debug, Clone, PartialEq)]
pub struct ResilienceConfig {
    /// Retry stage.
    pub retry: Option<RetryConfig>,
    /// Retry budget (only meaningful with retry on).
    pub budget: Option<BudgetConfig>,
    /// Circuit breaker per key.
    pub breaker: Option<BreakerConfig>,
    /// Static GCRA rate limit per key.
    pub rate_limit: Option<RateLimitConfig>,
    /// Adaptive rate per key, reacting to 429.
    pub adaptive: Option<AdaptiveConfig>,
    /// Concurrency limit.
    pub bulkhead: Option<BulkheadConfig>,
    /// Time limit of one attempt.
    pub attempt_timeout: Option<Duration>,
    /// Time limit of a whole call, all attempts and waits included; combined with the
    /// caller's `CallContext::deadline` (the earlier wins).
    pub total_timeout: Option<Duration>,
}

impl Default for ResilienceConfig {
    /// Retry, budget, breaker, adaptive rate and a 30 s attempt timeout on; no static rate
    /// limit, bulkhead or total timeout (Fabric publishes no quota to pace against).
    fn default() -> Self {
        Self {
            retry: Some(RetryConfig::default()),
            budget: Some(BudgetConfig::default()),
            breaker: Some(BreakerConfig::default()),
            rate_limit: None,
            adaptive: Some(AdaptiveConfig::default()),
            bulkhead: None,
            attempt_timeout: Some(Duration::from_secs(30)),
            total_timeout: None,
        }
    }
}

impl ResilienceConfig {
    /// Every stage off: calls run once, unprotected.
    pub fn disabled() -> Self {
        Self {
            retry: None,
            budget: None,
            breaker: None,
            rate_limit: None,
            adaptive: None,
            bulkhead: None,
            attempt_timeout: None,
            total_timeout: None,
        }
    }

    /// Sets the retry stage (`None` = off).
    pub fn with_retry(mut self, retry: Option<RetryConfig>) -> Self {
        self.retry = retry;
        self
    }
    /// Sets the retry budget (`None` = off).
    pub fn with_budget(mut self, budget: Option<BudgetConfig>) -> Self {
        self.budget = budget;
        self
    }
    /// Sets the breaker (`None` = off).
    pub fn with_breaker(mut self, breaker: Option<BreakerConfig>) -> Self {
        self.breaker = breaker;
        self
    }
    /// Sets the static rate limit (`None` = off).
    pub fn with_rate_limit(mut self, rate_limit: Option<RateLimitConfig>) -> Self {
        self.rate_limit = rate_limit;
        self
    }
    /// Sets the adaptive rate (`None` = off).
    pub fn with_adaptive(mut self, adaptive: Option<AdaptiveConfig>) -> Self {
        self.adaptive = adaptive;
        self
    }
    /// Sets the bulkhead (`None` = off).
    pub fn with_bulkhead(mut self, bulkhead: Option<BulkheadConfig>) -> Self {
        self.bulkhead = bulkhead;
        self
    }
    /// Sets the per-attempt timeout (`None` = off).
    pub fn with_attempt_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.attempt_timeout = timeout;
        self
    }
    /// Sets the whole-call timeout (`None` = only the caller's deadline).
    pub fn with_total_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.total_timeout = timeout;
        self
    }

    /// Switches retry (with its budget) and the breaker off when their feature flags are off,
    /// the seed's `FEATURE_USE_RETRY_LOGIC` / `FEATURE_USE_CIRCUIT_BREAKER` semantics.
    pub fn with_flags(mut self, retry: bool, breaker: bool) -> Self {
        if !retry {
            self.retry = None;
            self.budget = None;
        }
        if !breaker {
            self.breaker = None;
        }
        self
    }

    /// [`with_flags`](Self::with_flags) reading [`Flag::RetryLogic`] and [`Flag::CircuitBreaker`].
    pub fn with_flag_source(self, flags: &dyn FlagSource) -> Self {
        self.with_flags(
            flags.is_enabled(Flag::RetryLogic),
            flags.is_enabled(Flag::CircuitBreaker),
        )
    }

    /// The defaults overridden by the seed's documented variables, read from the process environment.
    pub fn from_process_env() -> Result<Self, ConfigError> {
        Self::from_env(|name| std::env::var(name).ok())
    }

    /// The defaults overridden by `RETRY_MAX_ATTEMPTS`, `RETRY_MIN_WAIT`, `RETRY_MAX_WAIT`
    /// (seconds), `CIRCUIT_BREAKER_FAILURE_THRESHOLD`, `CIRCUIT_BREAKER_TIMEOUT_SECONDS`
    /// (seconds) and `CIRCUIT_BREAKER_SUCCESS_THRESHOLD`, looked up through `lookup` so tests
    /// need not touch the process environment. An unset or empty variable keeps the default.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::default().apply_env(lookup)
    }

    /// Overrides this configuration's retry and breaker settings from the seed's variables
    /// (see [`from_env`](Self::from_env)); a stage that is off stays off. Validates the result.
    pub fn apply_env(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |var: &'static str| {
            lookup(var)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (var, v))
        };
        if let Some(retry) = &mut self.retry {
            if let Some((var, v)) = get(ENV_RETRY_MAX_ATTEMPTS) {
                retry.max_attempts = parse_count(var, &v)?;
            }
            if let Some((var, v)) = get(ENV_RETRY_MIN_WAIT) {
                retry.min_wait = parse_secs(var, &v)?;
            }
            if let Some((var, v)) = get(ENV_RETRY_MAX_WAIT) {
                retry.max_wait = parse_secs(var, &v)?;
            }
            if retry.min_wait > retry.max_wait {
                // Blame the variable that was set (the max, if both were).
                let (var, other) = match get(ENV_RETRY_MAX_WAIT) {
                    Some(_) => (ENV_RETRY_MAX_WAIT, retry.min_wait),
                    None => (ENV_RETRY_MIN_WAIT, retry.max_wait),
                };
                let reason = if var == ENV_RETRY_MAX_WAIT {
                    format!("below the minimum wait {other:?}")
                } else {
                    format!("above the maximum wait {other:?}")
                };
                return Err(ConfigError::Env {
                    var,
                    value: lookup(var).unwrap_or_default(),
                    reason,
                });
            }
        }
        if let Some(breaker) = &mut self.breaker {
            if let Some((var, v)) = get(ENV_BREAKER_FAILURE_THRESHOLD) {
                let threshold = parse_count(var, &v)?;
                match &mut breaker.trip {
                    TripRule::ConsecutiveFailures { threshold: t } => *t = threshold,
                    // The variable names a count of failures; a ratio breaker has none.
                    TripRule::FailureRatio { .. } => {
                        breaker.trip = TripRule::ConsecutiveFailures { threshold }
                    }
                }
            }
            if let Some((var, v)) = get(ENV_BREAKER_TIMEOUT_SECONDS) {
                breaker.break_duration = parse_secs(var, &v)?;
                if breaker.break_duration.is_zero() {
                    return Err(ConfigError::Env {
                        var,
                        value: v,
                        reason: "must be greater than 0".into(),
                    });
                }
            }
            if let Some((var, v)) = get(ENV_BREAKER_SUCCESS_THRESHOLD) {
                breaker.success_threshold = parse_count(var, &v)?;
            }
        }
        self.validate()?;
        Ok(self)
    }

    /// Checks every enabled stage; the error names the offending field and value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(r) = &self.retry {
            check_retry(r)?;
        }
        if let Some(b) = &self.budget {
            check_budget(b)?;
        }
        if let Some(b) = &self.breaker {
            check_breaker(b)?;
        }
        if let Some(r) = &self.rate_limit {
            check_rate_limit(r)?;
        }
        if let Some(a) = &self.adaptive {
            check_adaptive(a)?;
        }
        if let Some(b) = &self.bulkhead
            && b.max_concurrent == 0
        {
            return Err(invalid(
                "bulkhead.max_concurrent",
                b.max_concurrent,
                "must be at least 1",
            ));
        }
        if let Some(t) = self.attempt_timeout
            && t.is_zero()
        {
            return Err(invalid("attempt_timeout", t, "must be greater than 0"));
        }
        if let Some(t) = self.total_timeout
            && t.is_zero()
        {
            return Err(invalid("total_timeout", t, "must be greater than 0"));
        }
        Ok(())
    }
}

fn check_retry(r: &RetryConfig) -> Result<(), ConfigError> {
    if r.max_attempts == 0 {
        return Err(invalid(
            "retry.max_attempts",
            r.max_attempts,
            "must be at least 1",
        ));
    }
    if r.min_wait > r.max_wait {
        return Err(invalid(
            "retry.min_wait",
            r.min_wait,
            &format!("must not exceed retry.max_wait {:?}", r.max_wait),
        ));
    }
    Ok(())
}

fn check_budget(b: &BudgetConfig) -> Result<(), ConfigError> {
    if b.capacity == 0 {
        return Err(invalid("budget.capacity", b.capacity, "must be at least 1"));
    }
    if b.retry_cost == 0 || b.retry_cost > b.capacity {
        return Err(invalid(
            "budget.retry_cost",
            b.retry_cost,
            "must be in 1..=capacity",
        ));
    }
    if b.timeout_retry_cost == 0 || b.timeout_retry_cost > b.capacity {
        return Err(invalid(
            "budget.timeout_retry_cost",
            b.timeout_retry_cost,
            "must be in 1..=capacity",
        ));
    }
    Ok(())
}

fn check_breaker(b: &BreakerConfig) -> Result<(), ConfigError> {
    check_trip(&b.trip)?;
    if b.break_duration.is_zero() {
        return Err(invalid(
            "breaker.break_duration",
            b.break_duration,
            "must be greater than 0",
        ));
    }
    if b.success_threshold == 0 {
        return Err(invalid(
            "breaker.success_threshold",
            b.success_threshold,
            "must be at least 1",
        ));
    }
    if b.half_open_max_probes == 0 {
        return Err(invalid(
            "breaker.half_open_max_probes",
            b.half_open_max_probes,
            "must be at least 1",
        ));
    }
    Ok(())
}

fn check_trip(trip: &TripRule) -> Result<(), ConfigError> {
    match trip {
        TripRule::ConsecutiveFailures { threshold } => {
            if *threshold == 0 {
                return Err(invalid(
                    "breaker.failure_threshold",
                    threshold,
                    "must be at least 1",
                ));
            }
        }
        TripRule::FailureRatio {
            ratio,
            min_throughput,
            sampling,
        } => {
            if !(*ratio > 0.0 && *ratio <= 1.0) {
                return Err(invalid("breaker.failure_ratio", ratio, "must be in (0, 1]"));
            }
            if *min_throughput < 2 {
                return Err(invalid(
                    "breaker.min_throughput",
                    min_throughput,
                    "must be at least 2",
                ));
            }
            if sampling.is_zero() {
                return Err(invalid(
                    "breaker.sampling",
                    sampling,
                    "must be greater than 0",
                ));
            }
        }
    }
    Ok(())
}

fn check_rate_limit(r: &RateLimitConfig) -> Result<(), ConfigError> {
    if r.max_requests == 0 {
        return Err(invalid(
            "rate_limit.max_requests",
            r.max_requests,
            "must be at least 1",
        ));
    }
    if r.per.is_zero() || r.per / r.max_requests == Duration::ZERO {
        return Err(invalid(
            "rate_limit.per",
            r.per,
            "must leave at least 1 ns between requests",
        ));
    }
    if r.burst == 0 {
        return Err(invalid("rate_limit.burst", r.burst, "must be at least 1"));
    }
    Ok(())
}

fn check_adaptive(a: &AdaptiveConfig) -> Result<(), ConfigError> {
    if !(a.min_rate > 0.0 && a.min_rate.is_finite()) {
        return Err(invalid(
            "adaptive.min_rate",
            a.min_rate,
            "must be a positive number",
        ));
    }
    if a.ceiling.is_nan() || a.ceiling < a.min_rate {
        return Err(invalid(
            "adaptive.ceiling",
            a.ceiling,
            "must be at least adaptive.min_rate",
        ));
    }
    if !(a.decrease_factor > 0.0 && a.decrease_factor < 1.0) {
        return Err(invalid(
            "adaptive.decrease_factor",
            a.decrease_factor,
            "must be in (0, 1)",
        ));
    }
    if !(a.recovery_per_sec > 0.0 && a.recovery_per_sec.is_finite()) {
        return Err(invalid(
            "adaptive.recovery_per_sec",
            a.recovery_per_sec,
            "must be a positive number",
        ));
    }
    if !(a.probe_per_sec >= 0.0 && a.probe_per_sec.is_finite()) {
        return Err(invalid(
            "adaptive.probe_per_sec",
            a.probe_per_sec,
            "must be zero or a positive number",
        ));
    }
    if a.window.is_zero() {
        return Err(invalid(
            "adaptive.window",
            format!("{:?}", a.window),
            "must be longer than zero",
        ));
    }
    Ok(())
}

fn parse_count(var: &'static str, value: &str) -> Result<u32, ConfigError> {
    match value.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err(ConfigError::Env {
            var,
            value: value.to_owned(),
            reason: "must be at least 1".into(),
        }),
        Err(e) => Err(ConfigError::Env {
            var,
            value: value.to_owned(),
            reason: format!("not a whole number ({e})"),
        }),
    }
}

/// Seconds, integer or fractional ("0.5"); the seed documented seconds for these variables.
fn parse_secs(var: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let err = |reason: &str| ConfigError::Env {
        var,
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let secs: f64 = value
        .trim()
        .parse()
        .map_err(|_| err("not a number of seconds"))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(err("must be a finite, non-negative number of seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| err("too large"))
}
