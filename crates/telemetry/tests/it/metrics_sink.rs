//! Resilience events counted into fabrik's metric names.

use std::time::Duration;

use fabrik_core::events::{BreakerState, EventSink, ResilienceEvent};
use fabrik_core::{ErrorClass, Rejection};
use fabrik_telemetry::MetricsEventSink;
use metrics_exporter_prometheus::PrometheusBuilder;

#[test]
fn every_resilience_event_is_counted_under_its_core_metric_name() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let sink = MetricsEventSink;
        let retry = ResilienceEvent::Retry {
            key: "fabric",
            attempt: 1,
            delay: Duration::from_millis(200),
            class: ErrorClass::Transient,
        };
        sink.record(&retry);
        sink.record(&retry);
        sink.record(&ResilienceEvent::Throttled {
            key: "fabric",
            retry_after: None,
        });
        sink.record(&ResilienceEvent::BreakerTransition {
            key: "fabric",
            from: BreakerState::Closed,
            to: BreakerState::Open,
        });
        let reason = Rejection::CircuitOpen {
            key: "fabric".into(),
            retry_in: Duration::from_secs(30),
        };
        sink.record(&ResilienceEvent::Rejected {
            key: "fabric",
            reason: &reason,
        });
        sink.record(&ResilienceEvent::RateLimited {
            key: "fabric",
            waited: Duration::from_millis(50),
        });
    });
    let text = handle.render();
    for line in [
        r#"fabrik_retries_total{key="fabric",class="transient"} 2"#,
        r#"fabrik_throttled_total{key="fabric"} 1"#,
        r#"fabrik_breaker_transitions_total{key="fabric",to="open"} 1"#,
        r#"fabrik_rejections_total{key="fabric",reason="circuit_open"} 1"#,
        r#"fabrik_rate_limit_wait_seconds_count{key="fabric"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}
