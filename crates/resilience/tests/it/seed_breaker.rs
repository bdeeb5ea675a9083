//! Counterparts of the seed's tests/unit/test_circuit_breaker.py (13 cases), in its order.
//! Seed defaults: failure_threshold 5, success_threshold 2, open for 60 s, 3 half-open calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fabrik_core::time::ManualClock;
use fabrik_core::{BreakerState, BreakerStateSource, CallContext, Rejection};
use fabrik_resilience::{
    BreakerConfig, BreakerRegistry, CallError, CircuitBreaker, CircuitState, ResilienceConfig,
};

use crate::support::*;

fn breaker(clock: &ManualClock) -> CircuitBreaker {
    CircuitBreaker::new("fabric", BreakerConfig::seed(), Arc::new(clock.clone()))
}

fn fail_n(b: &CircuitBreaker, n: u32) {
    for _ in 0..n {
        b.try_acquire().expect("admitted").failure();
    }
}

fn open_breaker(clock: &ManualClock) -> CircuitBreaker {
    let b = breaker(clock);
    fail_n(&b, 5);
    assert_eq!(b.state(), CircuitState::Open);
    b
}

fn ctx() -> CallContext {
    CallContext::new("fabric", "POST /v1/workspaces")
}

fn breaker_only() -> ResilienceConfig {
    ResilienceConfig::disabled().with_breaker(Some(BreakerConfig::seed()))
}

#[test]
fn breaker_flag_off_passes_everything_through() {
    let s = Stepper::new();
    let cfg = breaker_only().with_flag_source(&Flags {
        retry: false,
        breaker: false,
    });
    let p = build(cfg, &s);
    assert!(p.breakers().is_none());
    let calls = AtomicU32::new(0);
    for _ in 0..10 {
        let r: Result<(), _> = s.drive(p.run(&ctx(), |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(ApiError::status(503)) }
        }));
        assert!(matches!(r, Err(CallError::Failed(_))));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 10, "never short-circuited");
}

#[test]
fn enabled_with_flag_opens_and_rejects_without_calling() {
    let s = Stepper::new();
    let cfg = breaker_only().with_flag_source(&Flags {
        retry: false,
        breaker: true,
    });
    let p = build(cfg, &s);
    let calls = AtomicU32::new(0);
    let call = || {
        s.drive(p.run(&ctx(), |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(ApiError::status(503)) }
        }))
    };
    for _ in 0..5 {
        assert!(matches!(call(), Err(CallError::Failed(_))));
    }
    match call() {
        Err(CallError::Rejected {
            rejection: Rejection::CircuitOpen { key, retry_in },
            ..
        }) => {
            assert_eq!(key, "fabric");
            assert_eq!(retry_in, Duration::from_secs(60));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[test]
fn transitions_to_half_open_after_the_timeout() {
    let clock = ManualClock::new();
    let b = open_breaker(&clock);
    clock.advance(Duration::from_secs(59));
    match b.try_acquire() {
        Err(Rejection::CircuitOpen { retry_in, .. }) => {
            assert_eq!(retry_in, Duration::from_secs(1))
        }
        other => panic!("{other:?}"),
    }
    clock.advance(Duration::from_secs(1));
    let probe = b.try_acquire().expect("a probe after 60 s");
    assert!(probe.is_probe());
    assert_eq!(b.state(), CircuitState::HalfOpen);
    probe.success();
}

#[test]
fn closes_after_success_threshold() {
    let clock = ManualClock::new();
    let b = open_breaker(&clock);
    clock.advance(Duration::from_secs(60));
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), CircuitState::HalfOpen, "one success of two");
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), CircuitState::Closed);
    // Closed again with a clean count: it takes five new failures to reopen.
    fail_n(&b, 4);
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
fn reopens_on_failure_in_half_open() {
    let clock = ManualClock::new();
    let b = open_breaker(&clock);
    clock.advance(Duration::from_secs(60));
    b.try_acquire().unwrap().success();
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), CircuitState::Open);
    match b.try_acquire() {
        Err(Rejection::CircuitOpen { retry_in, .. }) => {
            assert_eq!(retry_in, Duration::from_secs(60))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn half_open_admits_at_most_max_calls() {
    let clock = ManualClock::new();
    let b = open_breaker(&clock);
    clock.advance(Duration::from_secs(60));
    let probes: Vec<_> = (0..3).map(|_| b.try_acquire().expect("probe")).collect();
    assert!(matches!(
        b.try_acquire(),
        Err(Rejection::CircuitOpen { .. })
    ));
    assert_eq!(b.stats().probes_in_flight, 3);
    // A finished probe frees its slot; so does a cancelled one (dropped unreported).
    let mut probes = probes.into_iter();
    probes.next().unwrap().success();
    let fourth = b.try_acquire().expect("slot freed by a success");
    drop(probes.next());
    let fifth = b.try_acquire().expect("slot freed by a cancellation");
    assert!(matches!(
        b.try_acquire(),
        Err(Rejection::CircuitOpen { .. })
    ));
    fourth.success();
    assert_eq!(b.state(), CircuitState::Closed);
    // Outcomes of probes from the closed generation are ignored.
    fifth.failure();
    drop(probes);
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(b.stats().consecutive_failures, 0);
}

#[test]
fn reset_closes_and_clears() {
    let clock = ManualClock::new();
    let b = open_breaker(&clock);
    b.reset();
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(b.stats().consecutive_failures, 0);
    b.try_acquire().expect("closed admits").success();
}

#[test]
fn stats_report_state_and_counters() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    fail_n(&b, 3);
    let s = b.stats();
    assert_eq!(
        (s.state, s.consecutive_failures, s.times_opened),
        (CircuitState::Closed, 3, 0)
    );
    assert_eq!(s.retry_in, None);
    b.try_acquire().unwrap().success();
    assert_eq!(
        b.stats().consecutive_failures,
        0,
        "a success resets the count"
    );
    fail_n(&b, 5);
    clock.advance(Duration::from_secs(20));
    let s = b.stats();
    assert_eq!((s.state, s.times_opened), (CircuitState::Open, 1));
    assert_eq!(s.retry_in, Some(Duration::from_secs(40)));
}

#[test]
fn registry_returns_one_breaker_per_key() {
    let clock = ManualClock::new();
    let r = BreakerRegistry::new(BreakerConfig::seed(), Arc::new(clock));
    let a = r.get("api");
    assert!(Arc::ptr_eq(&a, &r.get("api")));
    assert!(!Arc::ptr_eq(&a, &r.get("other")));
    fail_n(&a, 5);
    assert_eq!(r.get("api").state(), CircuitState::Open);
    assert_eq!(r.get("other").state(), CircuitState::Closed);
}

#[test]
fn get_all_lists_every_breaker_for_health() {
    // The seed's health check read `b.state.value == "OPEN"` from stats dicts and always
    // failed; here health reads typed snapshots through core's BreakerStateSource.
    let clock = ManualClock::new();
    let r = BreakerRegistry::new(BreakerConfig::seed(), Arc::new(clock.clone()));
    fail_n(&r.get("b-open"), 5);
    r.get("a-closed");
    let c = r.get("c-half");
    fail_n(&c, 5);
    clock.advance(Duration::from_secs(60));
    let _probe = c.try_acquire().unwrap();
    let source: &dyn BreakerStateSource = &r;
    let snaps = source.breakers();
    let view: Vec<_> = snaps
        .iter()
        .map(|s| (s.key.as_str(), s.state, s.retry_in))
        .collect();
    assert_eq!(
        view,
        vec![
            ("a-closed", BreakerState::Closed, None),
            ("b-open", BreakerState::Open, Some(Duration::ZERO)),
            ("c-half", BreakerState::HalfOpen, None),
        ]
    );
    assert!(snaps.iter().all(|s| s.critical));
    assert_eq!(BreakerState::HalfOpen.to_string(), "half_open");
}

#[test]
fn reset_all_closes_every_breaker() {
    let clock = ManualClock::new();
    let r = BreakerRegistry::new(BreakerConfig::seed(), Arc::new(clock));
    for k in ["a", "b", "c"] {
        fail_n(&r.get(k), 5);
    }
    r.isolate("d");
    r.reset_all();
    assert!(r.breakers().iter().all(|s| s.state == BreakerState::Closed));
    assert_eq!(r.breakers().len(), 4);
    assert!(r.reset("a"));
    assert!(!r.reset("never-made"));
}

#[test]
fn preserves_value_and_error_through_the_breaker() {
    let s = Stepper::new();
    let p = build(breaker_only(), &s);
    let r: Result<Vec<&str>, CallError<ApiError>> =
        s.drive(p.run(&ctx(), |_| async { Ok(vec!["lakehouse", "notebook"]) }));
    assert_eq!(r.unwrap(), vec!["lakehouse", "notebook"]);
    let r: Result<(), _> = s.drive(p.run(&ctx(), |_| async {
        Err(ApiError {
            status: 409,
            hint: None,
            body: "ItemDisplayNameAlreadyInUse".into(),
        })
    }));
    match r {
        Err(CallError::Failed(e)) => assert_eq!(e.body, "ItemDisplayNameAlreadyInUse"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn passes_arguments_through_the_breaker() {
    let s = Stepper::new();
    let p = build(breaker_only(), &s);
    let name = String::from("sales");
    let r: Result<String, CallError<ApiError>> = s.drive(p.run(&ctx(), |n| {
        let name = name.clone();
        async move { Ok(format!("{name}-{n}")) }
    }));
    assert_eq!(r.unwrap(), "sales-1");
}
