//! The readiness checks over core's traits.

use std::sync::Arc;

use fabrik_core::HealthStatus;
use fabrik_core::auth::AuthError;
use fabrik_core::events::BreakerState::{Closed, HalfOpen, Open};
use fabrik_core::secret::SecretError;
use fabrik_core::time::ManualClock;
use fabrik_health::{BreakerCheck, HealthCheck, SecretCheck, TokenCheck};

use crate::registry::registry;
use crate::support::{Breakers, SECRET_VALUE, Secrets, Tokens};

fn token(result: Result<(), AuthError>) -> Arc<TokenCheck> {
    Arc::new(TokenCheck::new(
        Arc::new(Tokens(result)),
        vec!["https://api.fabric.microsoft.com/.default".into()],
    ))
}

fn secrets(result: Result<bool, SecretError>) -> Arc<SecretCheck> {
    Arc::new(SecretCheck::new(
        Arc::new(Secrets(result)),
        "FABRIC_CLIENT_SECRET",
    ))
}

#[tokio::test]
async fn open_critical_breaker_is_unhealthy_and_named() {
    // seed: open circuit breaker.
    let b = Breakers::with(&[("fabric-api", Open, true), ("graph", Closed, true)]);
    let r = BreakerCheck::new(b).check().await;
    assert_eq!(r.status, HealthStatus::Unhealthy);
    assert_eq!(
        r.detail.as_deref(),
        Some("critical breaker 'fabric-api' open (probe in 30.0s)")
    );
}

#[tokio::test]
async fn half_open_breaker_is_degraded() {
    // seed: half-open circuit breaker.
    let b = Breakers::with(&[("fabric-api", HalfOpen, true)]);
    let r = BreakerCheck::new(b).check().await;
    assert_eq!(r.status, HealthStatus::Degraded);
    assert_eq!(r.detail.as_deref(), Some("breaker 'fabric-api' half-open"));
}

#[tokio::test]
async fn open_non_critical_breaker_is_degraded() {
    let b = Breakers::with(&[("telemetry", Open, false)]);
    let r = BreakerCheck::new(b).check().await;
    assert_eq!(r.status, HealthStatus::Degraded);
    assert!(
        r.detail
            .unwrap()
            .contains("'telemetry' open (not critical)")
    );
}

#[tokio::test]
async fn no_breakers_is_healthy() {
    // seed: no breakers.
    let r = BreakerCheck::new(Breakers::with(&[])).check().await;
    assert_eq!(r.status, HealthStatus::Healthy);
    assert_eq!(r.detail.as_deref(), Some("no breakers registered"));
    let r = BreakerCheck::new(Breakers::with(&[("a", Closed, true)]))
        .check()
        .await;
    assert_eq!(r.status, HealthStatus::Healthy);
}

#[tokio::test]
async fn breaker_check_follows_state_changes() {
    // seed: health reflects breaker state (the integration test the seed had to skip).
    let b = Breakers::with(&[("fabric-api", Closed, true)]);
    let check = BreakerCheck::new(b.clone()).named("breakers");
    assert_eq!(check.name(), "breakers");
    assert_eq!(check.check().await.status, HealthStatus::Healthy);
    b.set(&[("fabric-api", Open, true)]);
    assert_eq!(check.check().await.status, HealthStatus::Unhealthy);
    b.set(&[("fabric-api", HalfOpen, true)]);
    assert_eq!(check.check().await.status, HealthStatus::Degraded);
}

#[tokio::test]
async fn readiness_all_healthy_with_every_dependency_answering() {
    // seed: readiness all healthy.
    let clock = ManualClock::new();
    let reg = registry(
        &clock,
        vec![
            token(Ok(())),
            secrets(Ok(true)),
            Arc::new(BreakerCheck::new(Breakers::with(&[(
                "fabric-api",
                Closed,
                true,
            )]))),
        ],
    );
    let report = reg.readiness().await;
    assert_eq!(report.status, HealthStatus::Healthy);
    assert_eq!(
        report
            .checks
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["token", "secrets", "circuit_breakers"]
    );
}

#[tokio::test]
async fn unreachable_identity_provider_degrades_readiness() {
    // seed: degraded Azure connection.
    let clock = ManualClock::new();
    let reg = registry(
        &clock,
        vec![token(Err(AuthError::Transport("connection reset".into())))],
    );
    let report = reg.readiness().await;
    assert_eq!(report.status, HealthStatus::Degraded);
    assert_eq!(report.http_status(), 200);
}

#[tokio::test]
async fn refused_credential_makes_readiness_unhealthy() {
    // seed: Azure auth failure.
    for err in [
        AuthError::Rejected("invalid client".into()),
        AuthError::Unavailable("none".into()),
    ] {
        let r = token(Err(err)).check().await;
        assert_eq!(r.status, HealthStatus::Unhealthy);
        assert!(
            r.detail
                .unwrap()
                .starts_with("client secret for app 1234: ")
        );
    }
}

#[tokio::test]
async fn failing_secret_provider_makes_readiness_unhealthy() {
    // seed: unhealthy secret manager.
    let clock = ManualClock::new();
    let err = SecretError::Unavailable {
        store: "Key Vault".into(),
        reason: "403".into(),
    };
    let reg = registry(&clock, vec![token(Ok(())), secrets(Err(err))]);
    let report = reg.readiness().await;
    assert_eq!(report.status, HealthStatus::Unhealthy);
    assert_eq!(report.check("token").unwrap().status, HealthStatus::Healthy);
    assert_eq!(
        report.check("secrets").unwrap().detail.as_deref(),
        Some("secret store Key Vault unavailable: 403")
    );
}

#[tokio::test]
async fn secret_provider_without_the_secret_is_degraded() {
    let r = secrets(Ok(false)).check().await;
    assert_eq!(r.status, HealthStatus::Degraded);
    assert_eq!(
        r.detail.as_deref(),
        Some("environment answered but has no 'FABRIC_CLIENT_SECRET'")
    );
}

#[tokio::test]
async fn key_vault_disabled_leaves_readiness_to_the_other_checks() {
    // seed: Azure connection with Key Vault disabled — no secret check is registered.
    let clock = ManualClock::new();
    let report = registry(&clock, vec![token(Ok(()))]).readiness().await;
    assert_eq!(report.status, HealthStatus::Healthy);
    assert!(report.check("secrets").is_none());
}

#[tokio::test]
async fn no_secret_or_token_value_appears_in_a_report() {
    let clock = ManualClock::new();
    let reg = registry(&clock, vec![token(Ok(())), secrets(Ok(true))]);
    let json = serde_json::to_string(&reg.readiness().await).unwrap();
    assert!(
        json.contains("token obtained as client secret for app 1234"),
        "{json}"
    );
    assert!(!json.contains(SECRET_VALUE), "{json}");
}
