//! The composed pipeline: deadlines, hints, timeouts, budget, rate limits, bulkhead, events.

use std::future::pending;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fabrik_core::{BreakerState, CallContext, Clock, ErrorClass, Rejection, Sleeper};
use fabrik_resilience::{
    AdaptiveConfig, BreakerConfig, BudgetConfig, BulkheadConfig, CallError, RateLimitConfig,
    ResilienceConfig,
};

use crate::support::*;

const KEY: &str = "api.fabric.microsoft.com";

fn ctx() -> CallContext {
    CallContext::new(KEY, "GET /v1/workspaces/{id}")
}

fn ctx_deadline(s: &Stepper, within: Duration) -> CallContext {
    ctx().with_deadline(Some(s.now() + within))
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn hint_beyond_the_deadline_fails_at_once() {
    let s = Stepper::new();
    let p = build(retry_only(5, 1, 60), &s);
    let calls = AtomicU32::new(0);
    let r: Result<(), _> = s.drive(p.run(&ctx_deadline(&s, secs(5)), |_| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Err(ApiError::throttled(secs(10))) }
    }));
    match r {
        Err(CallError::Rejected {
            rejection: Rejection::HintBeyondDeadline { hint, remaining },
            ..
        }) => {
            assert_eq!((hint, remaining), (secs(10), secs(5)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(s.elapsed(), Duration::ZERO, "no sleeping into the deadline");
}

#[test]
fn total_timeout_bounds_backoff_too() {
    let s = Stepper::new();
    let p = build(retry_only(10, 1, 60).with_total_timeout(Some(secs(5))), &s);
    let r: Result<(), _> = s.drive(p.run(&ctx(), |_| async { Err(ApiError::status(503)) }));
    // Waits 1, 2 (3 s used); the next 4 s wait would end past 5 s: stop after attempt 3.
    match r {
        Err(CallError::Rejected {
            rejection: Rejection::DeadlineExceeded { attempts },
            ..
        }) => {
            assert_eq!(attempts, 3)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.elapsed(), secs(3));
}

#[test]
fn attempt_timeout_cuts_hung_attempts_and_is_retried() {
    let s = Stepper::new();
    let cfg = retry_only(2, 1, 60).with_attempt_timeout(Some(secs(10)));
    let p = build(cfg, &s);
    let r: Result<(), CallError<ApiError>> = s.drive(p.run(&ctx(), |_| pending()));
    match r {
        Err(CallError::Rejected {
            rejection: Rejection::AttemptTimedOut { attempt, after },
            ..
        }) => {
            assert_eq!((attempt, after), (2, secs(10)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.elapsed(), secs(10 + 1 + 10));
}

#[test]
fn timed_out_attempt_then_success() {
    let s = Stepper::new();
    let p = build(retry_only(3, 1, 60).with_attempt_timeout(Some(secs(2))), &s);
    let sleeper = s.clone();
    let r = s.drive(p.run(&ctx(), |n| {
        let nap = sleeper.sleep(if n == 1 { secs(60) } else { secs(1) });
        async move {
            nap.await;
            Ok::<_, ApiError>(n)
        }
    }));
    assert_eq!(r.unwrap(), 2);
    assert_eq!(s.elapsed(), secs(2 + 1 + 1));
}

#[test]
fn deadline_cuts_a_long_attempt() {
    let s = Stepper::new();
    let p = build(
        retry_only(3, 1, 60).with_attempt_timeout(Some(secs(30))),
        &s,
    );
    let r: Result<(), CallError<ApiError>> =
        s.drive(p.run(&ctx_deadline(&s, secs(4)), |_| pending()));
    match r {
        Err(CallError::Rejected {
            rejection: Rejection::DeadlineExceeded { attempts },
            ..
        }) => {
            assert_eq!(attempts, 1)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.elapsed(), secs(4));
}

#[test]
fn retry_budget_is_shared_by_callers_of_a_key() {
    let s = Stepper::new();
    let sink = Arc::new(Sink::default());
    let cfg = retry_only(3, 1, 1).with_budget(Some(BudgetConfig {
        capacity: 12,
        retry_cost: 5,
        timeout_retry_cost: 10,
        success_reward: 1,
    }));
    let p = builder(cfg, &s).events(sink.clone()).build().unwrap();
    let fail = || s.drive(p.run(&ctx(), |_| async { Err::<(), _>(ApiError::status(503)) }));
    // First caller: two retries (10 tokens), then attempts run out.
    assert!(matches!(fail(), Err(CallError::Failed(_))));
    assert_eq!(p.budget_available(KEY), Some(2));
    // Second caller: no token for even one retry.
    match fail() {
        Err(CallError::Rejected {
            rejection: Rejection::BudgetExhausted { key },
            last,
        }) => {
            assert_eq!(key, KEY);
            // The refusal still says what failed: the first attempt's 503.
            assert_eq!(last.map(|e| e.status), Some(503));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        sink.events()
            .contains(&Ev::Rejected(format!("retry budget for '{KEY}' exhausted")))
    );
    // First-try successes earn tokens back.
    for _ in 0..3 {
        s.drive(p.run(&ctx(), |_| async { Ok::<_, ApiError>(()) }))
            .unwrap();
    }
    assert_eq!(p.budget_available(KEY), Some(5));
    // Another key has its own bucket.
    let other = CallContext::new("other", "GET /");
    assert!(matches!(
        s.drive(p.run(&other, |_| async { Err::<(), _>(ApiError::status(503)) })),
        Err(CallError::Failed(_))
    ));
}

#[test]
fn non_idempotent_calls_retry_only_throttles() {
    let s = Stepper::new();
    let p = build(retry_only(3, 1, 1), &s);
    let mut c = ctx();
    c.idempotent = false;
    let calls = AtomicU32::new(0);
    let r: Result<(), _> = s.drive(p.run(&c, |_| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Err(ApiError::status(503)) }
    }));
    assert!(matches!(r, Err(CallError::Failed(_))));
    assert_eq!(
        calls.swap(0, Ordering::SeqCst),
        1,
        "a 503 may have applied the write"
    );
    let r = s.drive(p.run(&c, |n| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 1 {
                Err(ApiError::status(429))
            } else {
                Ok(n)
            }
        }
    }));
    assert_eq!(
        r.unwrap(),
        2,
        "a 429 was refused by the server: safe to repeat"
    );
}

#[test]
fn open_breaker_ends_the_retry_loop_at_once() {
    let s = Stepper::new();
    let sink = Arc::new(Sink::default());
    let cfg = retry_only(10, 1, 1).with_breaker(Some(BreakerConfig {
        trip: fabrik_resilience::TripRule::ConsecutiveFailures { threshold: 3 },
        ..BreakerConfig::default()
    }));
    let p = builder(cfg, &s).events(sink.clone()).build().unwrap();
    let calls = AtomicU32::new(0);
    let r: Result<(), _> = s.drive(p.run(&ctx(), |_| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Err(ApiError::status(503)) }
    }));
    match r {
        Err(CallError::Rejected {
            rejection: Rejection::CircuitOpen { retry_in, .. },
            ..
        }) => {
            // Opened by attempt 3 at t = 2 s; attempt 4 asks 1 s later.
            assert_eq!(retry_in, secs(59));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(
        sink.events()
            .contains(&Ev::Transition(BreakerState::Closed, BreakerState::Open))
    );
    let health = p.breakers().unwrap();
    use fabrik_core::BreakerStateSource;
    assert_eq!(health.breakers()[0].state, BreakerState::Open);
}

#[test]
fn shared_registry_is_what_health_reads() {
    let s = Stepper::new();
    let reg = Arc::new(fabrik_resilience::BreakerRegistry::new(
        BreakerConfig::default(),
        Arc::new(s.clone()),
    ));
    let p = builder(
        ResilienceConfig::disabled().with_breaker(Some(BreakerConfig::default())),
        &s,
    )
    .breakers(reg.clone())
    .build()
    .unwrap();
    let _ = s.drive(p.run(&ctx(), |_| async { Ok::<_, ApiError>(()) }));
    let source: Arc<dyn fabrik_core::BreakerStateSource> = reg.clone();
    assert_eq!(source.breakers()[0].key, KEY);
    reg.isolate(KEY);
    let r = s.drive(p.run(&ctx(), |_| async { Ok::<_, ApiError>(()) }));
    assert!(matches!(
        r,
        Err(CallError::Rejected {
            rejection: Rejection::CircuitIsolated { .. },
            ..
        })
    ));
}

#[test]
fn gcra_rate_limit_waits_without_busy_looping() {
    let s = Stepper::new();
    let sink = Arc::new(Sink::default());
    let cfg = ResilienceConfig::disabled().with_rate_limit(Some(RateLimitConfig {
        max_requests: 2,
        per: secs(1),
        burst: 1,
    }));
    let p = builder(cfg, &s).events(sink.clone()).build().unwrap();
    let times: Vec<Duration> = (0..3)
        .map(|_| {
            s.drive(p.run(&ctx(), |_| {
                let t = s.elapsed();
                async move { Ok::<_, ApiError>(t) }
            }))
            .unwrap()
        })
        .collect();
    let ms = Duration::from_millis;
    assert_eq!(times, vec![ms(0), ms(500), ms(1000)]);
    assert_eq!(
        s.clock.sleeps(),
        vec![ms(500), ms(500)],
        "one sleep per wait"
    );
    assert_eq!(
        sink.events(),
        vec![Ev::RateLimited(ms(500)), Ev::RateLimited(ms(500))]
    );
}

#[test]
fn concurrent_callers_share_the_gcra_limit() {
    let s = Stepper::new();
    let cfg = ResilienceConfig::disabled().with_rate_limit(Some(RateLimitConfig::per_second(10)));
    let p = build(cfg, &s);
    let c = ctx();
    let calls: Vec<_> = (0..30)
        .map(|_| {
            p.run(&c, |_| {
                let t = s.elapsed();
                async move { Ok::<_, ApiError>(t) }
            })
        })
        .collect();
    let times = s.drive(futures::future::join_all(calls));
    let times: Vec<Duration> = times.into_iter().map(Result::unwrap).collect();
    // A burst of 10, then one every 100 ms.
    assert_eq!(times.iter().filter(|t| t.is_zero()).count(), 10);
    assert_eq!(*times.iter().max().unwrap(), Duration::from_millis(2000));
    let mut sorted = times.clone();
    sorted.sort();
    for w in sorted[9..].windows(2) {
        assert_eq!(w[1] - w[0], Duration::from_millis(100));
    }
}

#[test]
fn rate_limit_wait_past_the_deadline_fails_at_once() {
    let s = Stepper::new();
    let cfg = ResilienceConfig::disabled().with_rate_limit(Some(RateLimitConfig {
        max_requests: 1,
        per: secs(10),
        burst: 1,
    }));
    let p = build(cfg, &s);
    s.drive(p.run(&ctx(), |_| async { Ok::<_, ApiError>(()) }))
        .unwrap();
    let r = s.drive(p.run(&ctx_deadline(&s, secs(5)), |_| async {
        Ok::<_, ApiError>(())
    }));
    assert!(matches!(
        r,
        Err(CallError::Rejected {
            rejection: Rejection::DeadlineExceeded { attempts: 0 },
            ..
        })
    ));
    assert_eq!(s.elapsed(), Duration::ZERO);
}

#[test]
fn adaptive_rate_slows_down_on_429_and_recovers() {
    let s = Stepper::new();
    let sink = Arc::new(Sink::default());
    let cfg = retry_only(2, 0, 0).with_adaptive(Some(AdaptiveConfig {
        ceiling: 10.0,
        min_rate: 1.0,
        decrease_factor: 0.5,
        recovery_per_sec: 1.0,
        probe_per_sec: 0.0,
        window: Duration::from_secs(1),
    }));
    let p = builder(cfg, &s).events(sink.clone()).build().unwrap();
    assert_eq!(p.adaptive_rate(KEY), None);
    let r = s.drive(p.run(&ctx(), |n| async move {
        if n == 1 {
            Err(ApiError::status(429))
        } else {
            Ok(n)
        }
    }));
    assert_eq!(r.unwrap(), 2);
    // Rate cut to 5/s: the retry waited one interval (200 ms) for its slot.
    assert_eq!(s.elapsed(), Duration::from_millis(200));
    assert!(
        sink.events()
            .contains(&Ev::RateLimited(Duration::from_millis(200)))
    );
    let rate = p.adaptive_rate(KEY).unwrap();
    assert!((rate - 5.2).abs() < 1e-9, "{rate}");
    // Five quiet seconds later the rate is back at the ceiling and the stage is idle.
    s.clock.advance(secs(5));
    s.drive(p.run(&ctx(), |_| async { Ok::<_, ApiError>(0) }))
        .unwrap();
    assert_eq!(p.adaptive_rate(KEY), None);
    assert_eq!(
        s.elapsed(),
        Duration::from_millis(5200),
        "no wait once recovered"
    );
}

/// A throttle with `Retry-After` on a lane the adaptive limiter paces waits the hint, not a
/// longer backoff (here 4 s): the limiter spaces the retry. Without the limiter the hint stays
/// a floor under the backoff.
#[test]
fn a_paced_throttle_waits_its_hint_not_the_backoff() {
    let throttled_once = |n: u32| async move {
        if n == 1 {
            Err(ApiError::throttled(secs(1)))
        } else {
            Ok(n)
        }
    };
    let adaptive = AdaptiveConfig {
        ceiling: 10.0,
        min_rate: 1.0,
        decrease_factor: 0.5,
        recovery_per_sec: 1.0,
        probe_per_sec: 0.0,
        window: Duration::from_secs(1),
    };
    let s = Stepper::new();
    let p = build(retry_only(2, 4, 4).with_adaptive(Some(adaptive)), &s);
    assert_eq!(s.drive(p.run(&ctx(), throttled_once)).unwrap(), 2);
    // The hint (1 s) covers the limiter's first slot (200 ms at 5/s): 1 s in all.
    assert_eq!(s.clock.sleeps(), [secs(1)]);
    assert_eq!(s.elapsed(), secs(1));

    let s = Stepper::new();
    let p = build(retry_only(2, 4, 4), &s);
    assert_eq!(s.drive(p.run(&ctx(), throttled_once)).unwrap(), 2);
    assert_eq!(s.elapsed(), secs(4), "unpaced, the backoff is the wait");
}

#[test]
fn bulkhead_rejects_when_full_and_queues_up_to_its_limit() {
    let s = Stepper::new();
    let sink = Arc::new(Sink::default());
    let cfg = ResilienceConfig::disabled().with_bulkhead(Some(BulkheadConfig {
        max_concurrent: 1,
        max_queue: 1,
    }));
    let p = builder(cfg, &s).events(sink.clone()).build().unwrap();
    let c = ctx();
    // Three calls at once: one runs, one queues, one is rejected.
    let r = s.drive(futures::future::join3(
        p.run(&c, |_| {
            let nap = s.sleep(secs(1));
            async move {
                nap.await;
                Ok::<_, ApiError>(1)
            }
        }),
        p.run(&c, |_| async { Ok::<_, ApiError>(2) }),
        p.run(&c, |_| async { Ok::<_, ApiError>(3) }),
    ));
    assert_eq!(r.0.unwrap(), 1);
    assert_eq!(r.1.unwrap(), 2, "queued, then ran");
    assert!(matches!(
        r.2,
        Err(CallError::Rejected {
            rejection: Rejection::Bulkhead { .. },
            ..
        })
    ));
    assert_eq!(
        sink.events(),
        vec![Ev::Rejected(format!(
            "concurrency limit for '{KEY}' reached"
        ))]
    );
}

#[test]
fn throttles_and_retries_are_reported() {
    let s = Stepper::new();
    let sink = Arc::new(Sink::default());
    let p = builder(retry_only(2, 1, 1), &s)
        .events(sink.clone())
        .build()
        .unwrap();
    let r: Result<(), _> = s.drive(p.run(&ctx(), |_| async {
        Err(ApiError::throttled(Duration::from_millis(1500)))
    }));
    assert!(matches!(
        r,
        Err(CallError::Failed(ApiError { status: 429, .. }))
    ));
    assert_eq!(
        sink.events(),
        vec![
            Ev::Throttled(Some(Duration::from_millis(1500))),
            Ev::Retry {
                attempt: 1,
                delay: Duration::from_millis(1500),
                class: ErrorClass::Throttled
            },
            Ev::Throttled(Some(Duration::from_millis(1500))),
        ]
    );
}

/// The default wiring (system clock, tokio's timer) on tokio's paused clock: the retry sleeps and
/// the attempt-timeout timers run on tokio's timer, which paused time completes at once.
#[tokio::test(start_paused = true)]
async fn default_wiring_runs_on_tokio() {
    let p = fabrik_resilience::Pipeline::builder(ResilienceConfig::default())
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let r = p
        .run(&ctx(), |n| async move {
            if n < 3 {
                Err(ApiError::status(503))
            } else {
                Ok(n)
            }
        })
        .await;
    assert_eq!(r.unwrap(), 3);
    // Two backoffs of at least min_wait (1 s) each passed on tokio's clock.
    assert!(start.elapsed() >= secs(2), "{:?}", start.elapsed());
    // An attempt that never finishes is cut by the 30 s attempt timeout, on tokio's timer.
    let one = fabrik_resilience::Pipeline::builder(
        ResilienceConfig::disabled().with_attempt_timeout(Some(secs(30))),
    )
    .build()
    .unwrap();
    let r: Result<(), CallError<ApiError>> = one.run(&ctx(), |_| pending()).await;
    assert!(matches!(
        r,
        Err(CallError::Rejected {
            rejection: Rejection::AttemptTimedOut { attempt: 1, .. },
            ..
        })
    ));
}
