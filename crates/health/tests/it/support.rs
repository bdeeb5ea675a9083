//! Fakes of core's traits and small checks used across the tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use fabrik_core::auth::{AccessToken, AuthError, TokenProvider};
use fabrik_core::events::{BreakerSnapshot, BreakerState, BreakerStateSource};
use fabrik_core::secret::{SecretError, SecretProvider, SecretString};
use fabrik_core::time::{ManualClock, Sleeper};
use fabrik_core::{CheckResult, HealthCheck};

pub(crate) const SECRET_VALUE: &str = "s3cr3t-value-that-must-never-show";

/// Breakers whose states a test sets.
#[derive(Debug, Default)]
pub(crate) struct Breakers(pub Mutex<Vec<BreakerSnapshot>>);

impl Breakers {
    pub(crate) fn with(list: &[(&str, BreakerState, bool)]) -> Arc<Self> {
        let b = Arc::new(Self::default());
        b.set(list);
        b
    }
    pub(crate) fn set(&self, list: &[(&str, BreakerState, bool)]) {
        *self.0.lock().unwrap() = list
            .iter()
            .map(|(key, state, critical)| BreakerSnapshot {
                key: (*key).to_owned(),
                state: *state,
                critical: *critical,
                retry_in: (*state == BreakerState::Open).then_some(Duration::from_secs(30)),
            })
            .collect();
    }
}

impl BreakerStateSource for Breakers {
    fn breakers(&self) -> Vec<BreakerSnapshot> {
        self.0.lock().unwrap().clone()
    }
}

/// A token provider that answers with a fixed outcome.
#[derive(Debug)]
pub(crate) struct Tokens(pub Result<(), AuthError>);

#[async_trait]
impl TokenProvider for Tokens {
    async fn token(&self, _scopes: &[&str]) -> Result<AccessToken, AuthError> {
        self.0.clone().map(|()| AccessToken {
            token: SecretString::from(SECRET_VALUE),
            expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000),
        })
    }
    fn describe(&self) -> String {
        "client secret for app 1234".to_owned()
    }
}

/// A secret provider that answers with a fixed outcome (`Ok(true)`: has the secret).
#[derive(Debug)]
pub(crate) struct Secrets(pub Result<bool, SecretError>);

#[async_trait]
impl SecretProvider for Secrets {
    async fn get_secret(&self, _name: &str) -> Result<Option<SecretString>, SecretError> {
        self.0
            .clone()
            .map(|has| has.then(|| SecretString::from(SECRET_VALUE)))
    }
    fn describe(&self) -> String {
        "environment".to_owned()
    }
}

/// A check with a fixed result that counts its runs; optionally waits on a gate or sleeps on
/// a manual clock first.
#[derive(Debug)]
pub(crate) struct Fixed {
    pub(crate) name: &'static str,
    pub(crate) result: CheckResult,
    pub(crate) runs: AtomicUsize,
    pub(crate) readiness_only: bool,
    pub(crate) gate: Option<Arc<tokio::sync::Notify>>,
    pub(crate) sleep: Option<(ManualClock, Duration)>,
    pub(crate) timeout: Option<Duration>,
}

impl Fixed {
    pub(crate) fn new(name: &'static str, result: CheckResult) -> Self {
        Self {
            name,
            result,
            runs: AtomicUsize::new(0),
            readiness_only: true,
            gate: None,
            sleep: None,
            timeout: None,
        }
    }
    pub(crate) fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl HealthCheck for Fixed {
    fn name(&self) -> &str {
        self.name
    }
    async fn check(&self) -> CheckResult {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            gate.notified().await;
        }
        if let Some((clock, d)) = &self.sleep {
            clock.sleep(*d).await;
        }
        self.result.clone()
    }
    fn readiness_only(&self) -> bool {
        self.readiness_only
    }
    fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

/// A check that never finishes.
#[derive(Debug)]
pub(crate) struct Hung;

#[async_trait]
impl HealthCheck for Hung {
    fn name(&self) -> &str {
        "hung"
    }
    async fn check(&self) -> CheckResult {
        std::future::pending().await
    }
    fn timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(2))
    }
}

/// A check that panics, as the seed's breaker check raised.
#[derive(Debug)]
pub(crate) struct Panics;

#[async_trait]
impl HealthCheck for Panics {
    fn name(&self) -> &str {
        "panics"
    }
    async fn check(&self) -> CheckResult {
        panic!("breaker registry exploded")
    }
}
