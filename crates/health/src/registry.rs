//! The registry of named checks: timeouts, TTL cache with single flight, aggregation.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use fabrik_core::time::{Clock, Sleeper, SystemClock, TokioSleeper};
use fabrik_core::{CheckResult, HealthCheck, HealthStatus};
use futures::FutureExt;
use futures::future::{Either, join_all, select};
use serde::{Serialize, Serializer};

/// Which probe a report answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    /// The process is responsive (Kubernetes `livenessProbe`).
    Liveness,
    /// The process can do its work (Kubernetes `readinessProbe`).
    Readiness,
}

/// One check's outcome as a probe reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// The check's name.
    pub name: String,
    /// Its status.
    pub status: HealthStatus,
    /// Why, if the check said (never a secret: checks must not put one here).
    pub detail: Option<String>,
    /// How long the check ran.
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// When the check ran (RFC 3339 in JSON).
    #[serde(serialize_with = "rfc3339")]
    pub timestamp: SystemTime,
    /// Whether it ran out of time (then it is unhealthy).
    pub timed_out: bool,
    /// Whether this answer came from the cache rather than a run for this probe.
    pub cached: bool,
}

/// A probe's answer: the aggregate and every check that took part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// Which probe.
    pub probe: Probe,
    /// The worst status of all checks (healthy when there are none).
    pub status: HealthStatus,
    /// When the probe was answered (RFC 3339 in JSON).
    #[serde(serialize_with = "rfc3339")]
    pub timestamp: SystemTime,
    /// How long the probe took.
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// Each check, in registration order.
    pub checks: Vec<CheckReport>,
}

impl HealthReport {
    /// 503 when unhealthy; 200 when healthy or degraded (degraded still serves traffic).
    pub fn http_status(&self) -> u16 {
        if self.status == HealthStatus::Unhealthy {
            503
        } else {
            200
        }
    }

    /// Whether the probe passes (not unhealthy).
    pub fn is_ok(&self) -> bool {
        self.status != HealthStatus::Unhealthy
    }

    /// The report of the check called `name`.
    pub fn check(&self, name: &str) -> Option<&CheckReport> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// The aggregate of many statuses: the worst one (unhealthy > degraded > healthy); healthy
/// when there are none.
pub fn aggregate(statuses: impl IntoIterator<Item = HealthStatus>) -> HealthStatus {
    statuses.into_iter().max().unwrap_or(HealthStatus::Healthy)
}

/// Two checks were registered under one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateCheck(pub String);

impl fmt::Display for DuplicateCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "two health checks are named '{}'", self.0)
    }
}

impl std::error::Error for DuplicateCheck {}

/// Builds a [`HealthRegistry`].
#[derive(Debug)]
pub struct HealthRegistryBuilder {
    checks: Vec<Arc<dyn HealthCheck>>,
    default_timeout: Duration,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    enabled: bool,
}

impl HealthRegistryBuilder {
    /// Adds a check.
    pub fn check(mut self, check: Arc<dyn HealthCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// The timeout of checks that do not state their own (default 5 s).
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// How long a check's result is reused (default 5 s; zero runs a check on every probe,
    /// still sharing one run among concurrent probes).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The clock for durations, cache ages and timestamps (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The sleeper that times checks out (default: tokio's timer).
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// With `false` (the health-checks flag off) probes run no check and report healthy, as
    /// the seed did.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// The registry, or the first name used twice.
    pub fn build(self) -> Result<HealthRegistry, DuplicateCheck> {
        let mut names = std::collections::HashSet::new();
        for c in &self.checks {
            if !names.insert(c.name().to_owned()) {
                return Err(DuplicateCheck(c.name().to_owned()));
            }
        }
        let slots = self
            .checks
            .into_iter()
            .map(|check| Slot {
                timeout: check.timeout().unwrap_or(self.default_timeout),
                check,
                cached: Mutex::new(None),
                flight: tokio::sync::Mutex::new(()),
            })
            .collect();
        Ok(HealthRegistry {
            inner: Arc::new(Inner {
                slots,
                ttl: self.ttl,
                clock: self.clock,
                sleeper: self.sleeper,
                enabled: self.enabled,
            }),
        })
    }
}

/// Named checks with per-check timeout and a TTL cache. Cheap to clone; clones share checks
/// and cache, so the router and the rest of the program see the same results.
#[derive(Debug, Clone)]
pub struct HealthRegistry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    slots: Vec<Slot>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    enabled: bool,
}

struct Slot {
    check: Arc<dyn HealthCheck>,
    timeout: Duration,
    /// The last result and the monotonic time it completed.
    cached: Mutex<Option<(Instant, CheckReport)>>,
    /// Held while the check runs, so concurrent probes wait for that run instead of starting
    /// their own (single flight).
    flight: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("check", &self.check.name())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HealthRegistry {
    /// A builder with the defaults: 5 s timeout, 5 s TTL, system clock, tokio timer, enabled.
    pub fn builder() -> HealthRegistryBuilder {
        HealthRegistryBuilder {
            checks: Vec::new(),
            default_timeout: Duration::from_secs(5),
            ttl: Duration::from_secs(5),
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(TokioSleeper),
            enabled: true,
        }
    }

    /// The registered checks' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.inner.slots.iter().map(|s| s.check.name())
    }

    /// Liveness: the checks that are not readiness-only. With none, the answer itself shows
    /// the process is responsive.
    pub async fn liveness(&self) -> HealthReport {
        self.probe(Probe::Liveness).await
    }

    /// Readiness: every check.
    pub async fn readiness(&self) -> HealthReport {
        self.probe(Probe::Readiness).await
    }

    async fn probe(&self, probe: Probe) -> HealthReport {
        let inner = &*self.inner;
        let start = inner.clock.now();
        let checks = if inner.enabled {
            let runs = inner
                .slots
                .iter()
                .filter(|s| probe == Probe::Readiness || !s.check.readiness_only())
                .map(|s| self.run(s));
            join_all(runs).await
        } else {
            Vec::new()
        };
        HealthReport {
            probe,
            status: aggregate(checks.iter().map(|c| c.status)),
            timestamp: inner.clock.system_now(),
            duration: inner.clock.now().saturating_duration_since(start),
            checks,
        }
    }

    fn fresh(&self, slot: &Slot) -> Option<CheckReport> {
        let cached = slot.cached.lock().expect("health cache lock");
        let (at, report) = cached.as_ref()?;
        let age = self.inner.clock.now().saturating_duration_since(*at);
        (age < self.inner.ttl).then(|| CheckReport {
            cached: true,
            ..report.clone()
        })
    }

    async fn run(&self, slot: &Slot) -> CheckReport {
        if let Some(hit) = self.fresh(slot) {
            return hit;
        }
        let _flight = slot.flight.lock().await;
        // Another probe may have run the check while this one waited.
        if let Some(hit) = self.fresh(slot) {
            return hit;
        }
        let inner = &*self.inner;
        let timestamp = inner.clock.system_now();
        let start = inner.clock.now();
        // A panicking check is a broken dependency, not a reason to take the probe down.
        let check = AssertUnwindSafe(slot.check.check()).catch_unwind();
        let (result, timed_out) =
            match select(Box::pin(check), inner.sleeper.sleep(slot.timeout)).await {
                Either::Left((Ok(result), _)) => (result, false),
                Either::Left((Err(_), _)) => (CheckResult::unhealthy("check panicked"), false),
                Either::Right(_) => (
                    CheckResult::unhealthy(format!("timed out after {:?}", slot.timeout)),
                    true,
                ),
            };
        let end = inner.clock.now();
        let report = CheckReport {
            name: slot.check.name().to_owned(),
            status: result.status,
            detail: result.detail,
            duration: end.saturating_duration_since(start),
            timestamp,
            timed_out,
            cached: false,
        };
        *slot.cached.lock().expect("health cache lock") = Some((end, report.clone()));
        report
    }
}

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let formatted = time::OffsetDateTime::from(*t)
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(serde::ser::Error::custom)?;
    s.serialize_str(&formatted)
}

/// Milliseconds to the microsecond: finer digits are noise to a reader, and `as_secs_f64() *
/// 1000.0` printed binary-float residue (`0.021695000000000002`). Dividing a whole number of
/// microseconds gives the double nearest to the 3-decimal value, which prints as just that.
fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    let micros = d.as_nanos().saturating_add(500) / 1000;
    s.serialize_f64(micros as f64 / 1000.0)
}
