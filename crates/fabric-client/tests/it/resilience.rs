//! The client with fabrik-resilience plugged in as its policy, against the emulator's
//! throttling and each of its fault kinds.

use std::sync::Arc;
use std::time::Duration;

use fabrik_client::models::{CreateItemRequest, CreateWorkspaceRequest, ItemType};
use fabrik_client::{FabricClient, FabricError, Origin, StaticTokenProvider};
use fabrik_core::policy::{CallPolicy, Rejection};
use fabrik_core::time::ManualClock;
use fabrik_core::{Classify, ErrorClass, SplitMix64};
use fabrik_emulator::{Emulator, EmulatorConfig, ThrottleConfig};
use fabrik_resilience::{BreakerConfig, Pipeline, ResilienceConfig, RetryConfig, TripRule};

use crate::emulator::{Env, ME};

/// Retry up to 4 attempts, no attempt timeout (an auto-advancing sleeper would fire it at
/// once), no client-side pacing: what is tested is the reaction to the server.
fn config() -> ResilienceConfig {
    ResilienceConfig::disabled().with_retry(Some(RetryConfig {
        max_attempts: 4,
        min_wait: Duration::from_millis(100),
        max_wait: Duration::from_secs(10),
        ..RetryConfig::default()
    }))
}

fn pipeline(cfg: ResilienceConfig, clock: &ManualClock) -> Arc<dyn CallPolicy> {
    Arc::new(
        Pipeline::builder(cfg)
            .clock(Arc::new(clock.clone()))
            .sleeper(Arc::new(clock.clone()))
            .random(Arc::new(SplitMix64::new(7)))
            .build()
            .expect("pipeline"),
    )
}

async fn env_with_policy(
    cfg: ResilienceConfig,
    f: impl FnOnce(&mut EmulatorConfig),
) -> (Env, FabricClient) {
    let env = Env::with(f).await;
    let token = env.emu.mint_token(ME, Duration::from_secs(24 * 3600));
    let client = crate::emulator::builder(&env.emu, &env.clock)
        .token_provider(Arc::new(StaticTokenProvider::never_expiring(token.into())))
        .policy(Some(pipeline(cfg, &env.clock)))
        .build()
        .unwrap();
    (env, client)
}

fn count(log: &[String], prefix: &str) -> usize {
    log.iter().filter(|l| l.starts_with(prefix)).count()
}

#[tokio::test]
async fn throttled_calls_wait_the_servers_retry_after_and_succeed() {
    let (env, client) = env_with_policy(config(), |c| {
        c.throttle = Some(ThrottleConfig {
            rate_per_sec: 0.5,
            burst: 2,
        });
    })
    .await;
    for _ in 0..5 {
        client.list_capacities().collect_all().await.unwrap();
    }
    let log = env.requests().await;
    let throttled = log.iter().filter(|l| l.ends_with(" 429")).count();
    assert!(throttled >= 1, "the emulator throttled: {log:?}");
    assert_eq!(
        log.iter().filter(|l| l.ends_with(" 200")).count(),
        5,
        "{log:?}"
    );
    // Every retry after a 429 waited at least the server's hint (≥ 1 s at 0.5 req/s).
    let sleeps = env.clock.sleeps();
    assert_eq!(sleeps.len(), throttled, "{sleeps:?}");
    assert!(
        sleeps.iter().all(|s| *s >= Duration::from_secs(1)),
        "{sleeps:?}"
    );
}

#[tokio::test]
async fn each_transient_fault_kind_is_retried_and_permanent_ones_are_not() {
    let (env, client) = env_with_policy(config(), |_| {}).await;
    for (i, fault) in ["500", "502", "503", "504", "429", "reset"]
        .iter()
        .enumerate()
    {
        env.set_faults(&format!("GET /v1/capacities#1={fault}"))
            .await;
        let caps = client.list_capacities().collect_all().await;
        assert!(caps.is_ok(), "{fault}: {caps:?}");
        let log = env.requests().await;
        assert_eq!(
            count(&log, "GET /v1/capacities"),
            2 * (i + 1),
            "{fault}: {log:?}"
        );
    }
    // Injected latency only delays (on the injected clock): one request, no retry.
    env.set_faults("capacities:latency=250ms").await;
    let before = count(&env.requests().await, "GET /v1/capacities");
    assert!(client.list_capacities().collect_all().await.is_ok());
    assert_eq!(
        count(&env.requests().await, "GET /v1/capacities"),
        before + 1
    );
    assert!(env.clock.sleeps().contains(&Duration::from_millis(250)));
    // A 501 is permanent by status, but the service's `isRetriable: true` wins.
    env.set_faults("GET /v1/capacities#1=501").await;
    let before = count(&env.requests().await, "GET /v1/capacities");
    assert!(client.list_capacities().collect_all().await.is_ok());
    assert_eq!(
        count(&env.requests().await, "GET /v1/capacities"),
        before + 2
    );
    // Not retried: client errors.
    for fault in ["400", "403", "404"] {
        env.set_faults(&format!("GET /v1/capacities#1={fault}"))
            .await;
        let before = count(&env.requests().await, "GET /v1/capacities");
        let res = client.list_capacities().collect_all().await;
        let err = res.expect_err(&format!("{fault}: {:?}", env.requests().await));
        assert_eq!(err.class(), ErrorClass::Permanent, "{fault}");
        assert_eq!(
            count(&env.requests().await, "GET /v1/capacities"),
            before + 1,
            "{fault}"
        );
    }
}

#[tokio::test]
async fn get_or_create_lets_the_policy_repeat_creates_and_resolves_the_clash() {
    let (env, client) = env_with_policy(config(), |_| {}).await;
    // A plain create is not idempotent: after apply-then-500 the policy does not repeat it.
    env.set_faults("POST /v1/workspaces#1=apply-then-500").await;
    let err = client
        .create_workspace(&CreateWorkspaceRequest {
            display_name: "Plain".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert_eq!(count(&env.requests().await, "POST /v1/workspaces"), 1);

    // get_or_create marks it idempotent: the repeat clashes (409) with what the first attempt
    // applied, and that resolves to the one workspace, recognised as this call's own.
    env.set_faults("POST /v1/workspaces#1=apply-then-500").await;
    let ws = client
        .get_or_create_workspace(&CreateWorkspaceRequest {
            display_name: "Once".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ws.origin, Origin::Recovered);
    let log = env.requests().await;
    assert!(
        log.iter()
            .any(|l| l.starts_with("POST /v1/workspaces ") && l.ends_with(" 409")),
        "{log:?}"
    );
    let named = client.find_workspace("Once").await.unwrap();
    assert_eq!(named.map(|w| w.id), Some(ws.value.id.clone()));

    // A dropped connection after the item was applied: same story for items.
    let ws_id = ws.value.id;
    env.set_faults(&format!(
        "POST /v1/workspaces/{ws_id}/items#1=apply-then-reset"
    ))
    .await;
    let item = client
        .get_or_create_item(&ws_id, &CreateItemRequest::new("Gold", ItemType::Lakehouse))
        .await
        .unwrap();
    assert_eq!(item.origin, Origin::Recovered);

    // A 503 that did not apply: retried, created once.
    env.set_faults(&format!("POST /v1/workspaces/{ws_id}/items#1=503"))
        .await;
    let silver = client
        .get_or_create_item(
            &ws_id,
            &CreateItemRequest::new("Silver", ItemType::Lakehouse),
        )
        .await
        .unwrap();
    assert_eq!(silver.origin, Origin::Created);
    env.set_faults("").await;
    let mut names: Vec<_> = client
        .list_lakehouses(&ws_id)
        .collect_all()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.display_name)
        .collect();
    names.sort();
    assert_eq!(names, ["Gold", "Silver"]);
}

#[tokio::test]
async fn a_hung_attempt_times_out_and_is_retried() {
    let clock = ManualClock::new();
    let emu = Emulator::start(EmulatorConfig {
        clock: Arc::new(clock.clone()),
        sleeper: Arc::new(clock.clone()),
        faults: "GET /v1/capacities#1=hang".parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let token = emu.mint_token(ME, Duration::from_secs(3600));
    let cfg = config().with_attempt_timeout(Some(Duration::from_secs(5)));
    let client = crate::emulator::builder(&emu, &clock)
        .token_provider(Arc::new(StaticTokenProvider::never_expiring(token.into())))
        .policy(Some(pipeline(cfg, &clock)))
        .build()
        .unwrap();
    let call = tokio::spawn(async move { client.list_capacities().collect_all().await });
    // Drive the manual clock: whenever something waits on it, move it on by a second.
    while !call.is_finished() {
        if clock.waiting() > 0 {
            clock.advance(Duration::from_secs(1));
        }
        tokio::task::yield_now().await;
    }
    let caps = call.await.unwrap();
    assert!(caps.is_ok(), "{caps:?}");
    assert!(
        clock.elapsed() >= Duration::from_secs(5),
        "{:?}",
        clock.elapsed()
    );
    drop(emu);
}

#[tokio::test]
async fn a_failing_host_opens_the_breaker_and_calls_are_refused_without_a_request() {
    let cfg = config()
        .with_retry(Some(RetryConfig {
            max_attempts: 1,
            ..RetryConfig::default()
        }))
        .with_breaker(Some(BreakerConfig {
            trip: TripRule::ConsecutiveFailures { threshold: 3 },
            break_duration: Duration::from_secs(60),
            ..BreakerConfig::default()
        }));
    let (env, client) =
        env_with_policy(cfg, |c| c.faults = "capacities:503=1".parse().unwrap()).await;
    for _ in 0..3 {
        let e = client.list_capacities().collect_all().await.unwrap_err();
        assert_eq!(e.status(), Some(503));
    }
    let before = env.requests().await.len();
    let err = client.list_capacities().collect_all().await.unwrap_err();
    assert!(
        matches!(
            err,
            FabricError::Rejected {
                rejection: Rejection::CircuitOpen { .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(env.requests().await.len(), before, "no request while open");
}

#[tokio::test]
async fn a_refused_retry_reports_the_failure_that_was_being_retried() {
    use std::error::Error as _;
    // A budget for one retry: the second 503 is not retried.
    let cfg = config().with_budget(Some(fabrik_resilience::BudgetConfig {
        capacity: 5,
        retry_cost: 5,
        timeout_retry_cost: 5,
        success_reward: 1,
    }));
    let (_env, client) =
        env_with_policy(cfg, |c| c.faults = "capacities:503=1".parse().unwrap()).await;
    let err = client.list_capacities().collect_all().await.unwrap_err();
    let FabricError::Rejected {
        rejection: Rejection::BudgetExhausted { .. },
        last: Some(last),
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(last.status(), Some(503));
    assert!(err.to_string().contains("503"), "{err}");
    let source = err
        .source()
        .expect("the last attempt's error is the source");
    assert_eq!(source.to_string(), last.to_string());
}
