//! Registry rules: aggregation, liveness vs readiness, timeouts, TTL cache, single flight.

use std::sync::Arc;
use std::time::Duration;

use fabrik_core::time::ManualClock;
use fabrik_core::{CheckResult, HealthCheck, HealthStatus};
use fabrik_health::{DuplicateCheck, HealthRegistry, Probe, aggregate};
use futures::FutureExt;

use crate::support::{Fixed, Hung, Panics};

pub(crate) fn registry(clock: &ManualClock, checks: Vec<Arc<dyn HealthCheck>>) -> HealthRegistry {
    checks
        .into_iter()
        .fold(HealthRegistry::builder(), |b, c| b.check(c))
        .clock(Arc::new(clock.clone()))
        .sleeper(Arc::new(clock.clone()))
        .ttl(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[test]
fn aggregation_is_the_worst_status() {
    use HealthStatus::*;
    assert_eq!(aggregate([]), Healthy);
    assert_eq!(aggregate([Healthy, Healthy]), Healthy);
    assert_eq!(aggregate([Healthy, Degraded, Healthy]), Degraded);
    assert_eq!(aggregate([Degraded, Unhealthy, Healthy]), Unhealthy);
    assert_eq!(aggregate([Unhealthy, Degraded]), Unhealthy);
}

#[tokio::test]
async fn each_aggregation_rule_holds_through_a_probe() {
    // seed: readiness all-healthy, degraded, unhealthy; convenience functions (http_status, is_ok).
    let cases = [
        (
            vec![CheckResult::healthy(), CheckResult::healthy()],
            HealthStatus::Healthy,
            200,
        ),
        (
            vec![CheckResult::healthy(), CheckResult::degraded("slow")],
            HealthStatus::Degraded,
            200,
        ),
        (
            vec![
                CheckResult::degraded("slow"),
                CheckResult::unhealthy("down"),
                CheckResult::healthy(),
            ],
            HealthStatus::Unhealthy,
            503,
        ),
    ];
    let names = ["a", "b", "c"];
    for (results, expected, code) in cases {
        let clock = ManualClock::new();
        let checks = results
            .into_iter()
            .zip(names)
            .map(|(r, n)| Arc::new(Fixed::new(n, r)) as Arc<dyn HealthCheck>)
            .collect();
        let report = registry(&clock, checks).readiness().await;
        assert_eq!(report.status, expected);
        assert_eq!(report.http_status(), code);
        assert_eq!(report.is_ok(), code == 200);
    }
}

#[tokio::test]
async fn disabled_registry_reports_healthy_without_running_checks() {
    // seed: disabled (flag off → healthy).
    let failing = Arc::new(Fixed::new("db", CheckResult::unhealthy("down")));
    let reg = HealthRegistry::builder()
        .check(failing.clone())
        .enabled(false)
        .build()
        .unwrap();
    let report = reg.readiness().await;
    assert_eq!(report.status, HealthStatus::Healthy);
    assert!(report.checks.is_empty());
    assert_eq!(failing.runs(), 0);
}

#[tokio::test]
async fn enabled_registry_runs_its_checks() {
    // seed: enabled.
    let clock = ManualClock::new();
    let failing = Arc::new(Fixed::new("db", CheckResult::unhealthy("down")));
    let report = registry(&clock, vec![failing.clone()]).readiness().await;
    assert_eq!(failing.runs(), 1);
    assert_eq!(report.status, HealthStatus::Unhealthy);
    assert_eq!(report.check("db").unwrap().detail.as_deref(), Some("down"));
}

#[tokio::test]
async fn liveness_runs_only_checks_that_are_not_readiness_only() {
    // seed: basic status (liveness) is separate from readiness.
    let clock = ManualClock::new();
    let mut alive = Fixed::new("event_loop", CheckResult::healthy());
    alive.readiness_only = false;
    let alive = Arc::new(alive);
    let dep = Arc::new(Fixed::new("fabric", CheckResult::unhealthy("unreachable")));
    let reg = registry(&clock, vec![alive.clone(), dep.clone()]);
    let live = reg.liveness().await;
    assert_eq!(live.probe, Probe::Liveness);
    assert_eq!(live.status, HealthStatus::Healthy);
    assert_eq!(live.checks.len(), 1);
    assert_eq!(dep.runs(), 0);
    let ready = reg.readiness().await;
    assert_eq!(ready.status, HealthStatus::Unhealthy);
    assert_eq!(ready.checks.len(), 2);
    // The liveness run is reused by readiness within the TTL.
    assert_eq!(alive.runs(), 1);
    assert!(ready.check("event_loop").unwrap().cached);
}

#[tokio::test]
async fn liveness_with_no_checks_says_the_process_answers() {
    let report = HealthRegistry::builder().build().unwrap().liveness().await;
    assert_eq!(report.status, HealthStatus::Healthy);
    assert_eq!(report.http_status(), 200);
}

#[tokio::test]
async fn hung_check_times_out_at_its_deadline_and_never_holds_the_probe_longer() {
    let clock = ManualClock::new();
    let fast = Arc::new(Fixed::new("fast", CheckResult::healthy()));
    let reg = registry(&clock, vec![Arc::new(Hung), fast]);
    let mut probe = Box::pin(reg.readiness());
    assert!((&mut probe).now_or_never().is_none());
    clock.advance(Duration::from_millis(1999));
    assert!(
        (&mut probe).now_or_never().is_none(),
        "done before the deadline"
    );
    clock.advance(Duration::from_millis(1));
    let report = probe.now_or_never().expect("answered at the deadline");
    let hung = report.check("hung").unwrap();
    assert!(hung.timed_out);
    assert_eq!(hung.status, HealthStatus::Unhealthy);
    assert_eq!(hung.duration, Duration::from_secs(2));
    assert_eq!(hung.detail.as_deref(), Some("timed out after 2s"));
    assert_eq!(report.check("fast").unwrap().status, HealthStatus::Healthy);
    assert_eq!(report.status, HealthStatus::Unhealthy);
    assert_eq!(report.duration, Duration::from_secs(2));
    // The timeout is cached like any result, so the next probe does not wait again.
    let again = reg.readiness().now_or_never().expect("from cache");
    assert!(again.check("hung").unwrap().cached);
}

#[tokio::test]
async fn registry_default_timeout_applies_to_checks_without_their_own() {
    let clock = ManualClock::new();
    let mut slow = Fixed::new("slow", CheckResult::healthy());
    slow.sleep = Some((clock.clone(), Duration::from_secs(60)));
    let reg = HealthRegistry::builder()
        .check(Arc::new(slow))
        .clock(Arc::new(clock.clone()))
        .sleeper(Arc::new(clock.clone()))
        .default_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let mut probe = Box::pin(reg.readiness());
    assert!((&mut probe).now_or_never().is_none());
    clock.advance(Duration::from_millis(300));
    let report = probe.now_or_never().unwrap();
    assert!(report.checks[0].timed_out);
}

#[tokio::test]
async fn duration_fields_measure_the_check_on_the_injected_clock() {
    // seed: duration fields.
    let clock = ManualClock::new();
    let mut slow = Fixed::new("slow", CheckResult::healthy());
    slow.sleep = Some((clock.clone(), Duration::from_millis(250)));
    let reg = registry(&clock, vec![Arc::new(slow)]);
    let mut probe = Box::pin(reg.readiness());
    assert!((&mut probe).now_or_never().is_none());
    clock.advance(Duration::from_millis(250));
    let report = probe.now_or_never().unwrap();
    assert!(!report.checks[0].timed_out);
    assert_eq!(report.checks[0].duration, Duration::from_millis(250));
    assert_eq!(report.duration, Duration::from_millis(250));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["checks"][0]["duration_ms"], 250.0);
    assert_eq!(json["duration_ms"], 250.0);
}

#[tokio::test]
async fn durations_print_rounded_to_the_microsecond() {
    let clock = ManualClock::new();
    let mut quick = Fixed::new("quick", CheckResult::healthy());
    quick.sleep = Some((clock.clone(), Duration::from_nanos(21_695)));
    let reg = registry(&clock, vec![Arc::new(quick)]);
    let mut probe = Box::pin(reg.readiness());
    assert!((&mut probe).now_or_never().is_none());
    clock.advance(Duration::from_nanos(21_695));
    let text = serde_json::to_string(&probe.now_or_never().unwrap()).unwrap();
    // Not 0.021695000000000002, as `as_secs_f64() * 1000.0` printed.
    assert!(text.contains(r#""duration_ms":0.022,"#), "{text}");
    assert_eq!(text.matches(r#""duration_ms":0.022,"#).count(), 2, "{text}");
}

#[tokio::test]
async fn timestamps_are_rfc3339_from_the_injected_clock() {
    // seed: timestamp format.
    let clock = ManualClock::new();
    clock.advance(Duration::from_millis(1500));
    let report = registry(
        &clock,
        vec![Arc::new(Fixed::new("a", CheckResult::healthy()))],
    )
    .readiness()
    .await;
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["timestamp"], "2026-01-01T00:00:01.5Z");
    assert_eq!(json["checks"][0]["timestamp"], "2026-01-01T00:00:01.5Z");
    let parsed = time::OffsetDateTime::parse(
        json["timestamp"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(std::time::SystemTime::from(parsed), report.timestamp);
}

#[tokio::test]
async fn results_are_reused_within_the_ttl_and_rerun_after_it() {
    let clock = ManualClock::new();
    let check = Arc::new(Fixed::new("a", CheckResult::healthy()));
    let reg = registry(&clock, vec![check.clone()]);
    assert!(!reg.readiness().await.checks[0].cached);
    clock.advance(Duration::from_millis(4999));
    assert!(reg.readiness().await.checks[0].cached);
    assert_eq!(check.runs(), 1);
    clock.advance(Duration::from_millis(1));
    assert!(!reg.readiness().await.checks[0].cached);
    assert_eq!(check.runs(), 2);
}

#[tokio::test]
async fn clones_share_checks_and_cache() {
    // seed: singletons — one registry shared by the router and the program.
    let clock = ManualClock::new();
    let check = Arc::new(Fixed::new("a", CheckResult::healthy()));
    let reg = registry(&clock, vec![check.clone()]);
    let other = reg.clone();
    reg.readiness().await;
    assert!(other.readiness().await.checks[0].cached);
    assert_eq!(check.runs(), 1);
    assert_eq!(other.names().collect::<Vec<_>>(), ["a"]);
}

#[tokio::test]
async fn concurrent_probes_share_one_run() {
    let clock = ManualClock::new();
    let gate = Arc::new(tokio::sync::Notify::new());
    let mut check = Fixed::new("gated", CheckResult::degraded("warming up"));
    check.gate = Some(gate.clone());
    let check = Arc::new(check);
    let reg = registry(&clock, vec![check.clone()]);
    let probes: Vec<_> = (0..100)
        .map(|_| {
            let reg = reg.clone();
            tokio::spawn(async move { reg.readiness().await })
        })
        .collect();
    // On the current-thread runtime one yield lets every probe reach the check or its lock.
    tokio::task::yield_now().await;
    assert_eq!(check.runs(), 1);
    gate.notify_one();
    let mut cached = 0;
    for p in probes {
        let report = p.await.unwrap();
        assert_eq!(report.status, HealthStatus::Degraded);
        cached += usize::from(report.checks[0].cached);
    }
    assert_eq!(check.runs(), 1);
    assert_eq!(cached, 99);
}

#[tokio::test]
async fn panicking_check_is_unhealthy_and_the_probe_survives() {
    // seed: circuit-breaker check error → unhealthy.
    let clock = ManualClock::new();
    let ok = Arc::new(Fixed::new("ok", CheckResult::healthy()));
    let report = registry(&clock, vec![Arc::new(Panics), ok])
        .readiness()
        .await;
    assert_eq!(report.status, HealthStatus::Unhealthy);
    assert_eq!(
        report.check("panics").unwrap().detail.as_deref(),
        Some("check panicked")
    );
    assert_eq!(report.check("ok").unwrap().status, HealthStatus::Healthy);
}

#[test]
fn duplicate_names_are_refused() {
    let err = HealthRegistry::builder()
        .check(Arc::new(Fixed::new("a", CheckResult::healthy())))
        .check(Arc::new(Fixed::new("a", CheckResult::healthy())))
        .build()
        .unwrap_err();
    assert_eq!(err, DuplicateCheck("a".into()));
}
