//! Configuration: the seed's documented environment variables, validation, flags.

use std::collections::HashMap;
use std::time::Duration;

use fabrik_resilience::{
    BreakerConfig, ConfigError, RateLimitConfig, ResilienceConfig, RetryConfig, TripRule,
};

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn defaults_are_the_documented_ones_and_the_seeds_where_it_had_one() {
    let c = ResilienceConfig::from_env(env(&[])).unwrap();
    assert_eq!(c, ResilienceConfig::default());
    let r = c.retry.unwrap();
    assert_eq!(
        (r.max_attempts, r.min_wait, r.max_wait),
        (10, Duration::from_secs(1), Duration::from_secs(60))
    );
    assert_eq!(RetryConfig::seed().max_attempts, 3);
    let b = c.breaker.unwrap();
    assert_eq!(
        b.trip,
        TripRule::FailureRatio {
            ratio: 0.8,
            min_throughput: 20,
            sampling: Duration::from_secs(30)
        }
    );
    assert_eq!(
        BreakerConfig::seed().trip,
        TripRule::ConsecutiveFailures { threshold: 5 }
    );
    assert_eq!(
        (
            b.success_threshold,
            b.break_duration,
            b.half_open_max_probes
        ),
        (2, Duration::from_secs(60), 3)
    );
}

#[test]
fn all_six_variables_are_read() {
    let c = ResilienceConfig::from_env(env(&[
        ("RETRY_MAX_ATTEMPTS", "7"),
        ("RETRY_MIN_WAIT", "0.5"),
        ("RETRY_MAX_WAIT", "30"),
        ("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "9"),
        ("CIRCUIT_BREAKER_TIMEOUT_SECONDS", "12.5"),
        ("CIRCUIT_BREAKER_SUCCESS_THRESHOLD", " 4 "),
    ]))
    .unwrap();
    let r = c.retry.unwrap();
    assert_eq!(r.max_attempts, 7);
    assert_eq!(r.min_wait, Duration::from_millis(500));
    assert_eq!(r.max_wait, Duration::from_secs(30));
    let b = c.breaker.unwrap();
    assert_eq!(b.trip, TripRule::ConsecutiveFailures { threshold: 9 });
    assert_eq!(b.break_duration, Duration::from_millis(12_500));
    assert_eq!(b.success_threshold, 4);
}

#[test]
fn empty_values_keep_the_default() {
    let c = ResilienceConfig::from_env(env(&[("RETRY_MAX_ATTEMPTS", "")])).unwrap();
    assert_eq!(c.retry, Some(RetryConfig::default()));
}

#[test]
fn invalid_values_name_the_variable_and_value() {
    let cases = [
        ("RETRY_MAX_ATTEMPTS", "three"),
        ("RETRY_MAX_ATTEMPTS", "0"),
        ("RETRY_MAX_ATTEMPTS", "-1"),
        ("RETRY_MIN_WAIT", "1s"),
        ("RETRY_MAX_WAIT", "-2"),
        ("RETRY_MAX_WAIT", "NaN"),
        ("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "0"),
        ("CIRCUIT_BREAKER_TIMEOUT_SECONDS", "0"),
        ("CIRCUIT_BREAKER_TIMEOUT_SECONDS", "inf"),
        ("CIRCUIT_BREAKER_SUCCESS_THRESHOLD", "2.5"),
    ];
    for (var, value) in cases {
        let err = ResilienceConfig::from_env(env(&[(var, value)])).unwrap_err();
        match &err {
            ConfigError::Env {
                var: v, value: got, ..
            } => {
                assert_eq!((*v, got.as_str()), (var, value));
            }
            other => panic!("{var}={value}: {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(var) && msg.contains(value), "{msg}");
    }
}

#[test]
fn min_wait_above_max_wait_is_an_error() {
    let err = ResilienceConfig::from_env(env(&[("RETRY_MIN_WAIT", "90")])).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("RETRY_MIN_WAIT") && msg.contains("90"),
        "{msg}"
    );
}

#[test]
fn switched_off_stages_stay_off_under_env() {
    let c = ResilienceConfig::disabled()
        .apply_env(env(&[("RETRY_MAX_ATTEMPTS", "5")]))
        .unwrap();
    assert_eq!(c.retry, None);
}

#[test]
fn failure_threshold_variable_selects_the_consecutive_rule() {
    let ratio = BreakerConfig {
        trip: TripRule::FailureRatio {
            ratio: 0.1,
            min_throughput: 100,
            sampling: Duration::from_secs(30),
        },
        ..BreakerConfig::default()
    };
    let c = ResilienceConfig::default()
        .with_breaker(Some(ratio))
        .apply_env(env(&[("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "3")]))
        .unwrap();
    assert_eq!(
        c.breaker.unwrap().trip,
        TripRule::ConsecutiveFailures { threshold: 3 }
    );
}

#[test]
fn flags_switch_stages_off() {
    let c = ResilienceConfig::default().with_flags(false, true);
    assert!(c.retry.is_none() && c.budget.is_none() && c.breaker.is_some());
    let c = ResilienceConfig::default().with_flags(true, false);
    assert!(c.retry.is_some() && c.breaker.is_none());
}

#[test]
fn validation_names_the_field_and_value() {
    let bad = [
        (
            ResilienceConfig::default().with_retry(Some(RetryConfig {
                max_attempts: 0,
                ..RetryConfig::default()
            })),
            "retry.max_attempts",
        ),
        (
            ResilienceConfig::default().with_breaker(Some(BreakerConfig {
                half_open_max_probes: 0,
                ..BreakerConfig::default()
            })),
            "breaker.half_open_max_probes",
        ),
        (
            ResilienceConfig::default().with_breaker(Some(BreakerConfig {
                trip: TripRule::FailureRatio {
                    ratio: 1.5,
                    min_throughput: 10,
                    sampling: Duration::from_secs(1),
                },
                ..BreakerConfig::default()
            })),
            "breaker.failure_ratio",
        ),
        (
            ResilienceConfig::default().with_rate_limit(Some(RateLimitConfig {
                max_requests: 0,
                per: Duration::from_secs(1),
                burst: 1,
            })),
            "rate_limit.max_requests",
        ),
        (
            ResilienceConfig::default().with_attempt_timeout(Some(Duration::ZERO)),
            "attempt_timeout",
        ),
    ];
    for (cfg, field) in bad {
        let err = cfg.validate().unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { field: f, .. } if *f == field),
            "{err}"
        );
        assert!(err.to_string().starts_with(field), "{err}");
        assert!(
            fabrik_resilience::Pipeline::builder(cfg).build().is_err(),
            "build validates too"
        );
    }
}
