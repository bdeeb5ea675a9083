//! Metric export over OTLP/HTTP against a loopback receiver of `POST /v1/metrics`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use fabrik_telemetry::{CallTimer, OtlpMetricsConfig, TelemetryConfig};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
use prost::Message;

type Received = Arc<Mutex<Vec<Bytes>>>;

async fn receiver() -> (String, Received) {
    let received = Received::default();
    let app = axum::Router::new()
        .route(
            "/v1/metrics",
            post(|State(r): State<Received>, body: Bytes| async move {
                r.lock().unwrap().push(body);
                ""
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, received)
}

fn labels(attributes: &[KeyValue]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect();
    v.sort();
    v
}

/// One export as the receiver decoded it: metric name → (unit, data), and `service.name`.
fn decode(body: &Bytes) -> (HashMap<String, (String, Data)>, String) {
    let req = ExportMetricsServiceRequest::decode(body.clone()).unwrap();
    let mut metrics = HashMap::new();
    let mut service = String::new();
    for rm in req.resource_metrics {
        for kv in rm.resource.unwrap().attributes {
            if let ("service.name", Some(AnyValue::StringValue(s))) =
                (kv.key.as_str(), kv.value.and_then(|v| v.value))
            {
                service = s;
            }
        }
        for sm in rm.scope_metrics {
            for m in sm.metrics {
                metrics.insert(m.name, (m.unit, m.data.unwrap()));
            }
        }
    }
    (metrics, service)
}

// Current-thread runtime: the recorder installed for this thread sees every metric.
#[tokio::test]
async fn metrics_arrive_cumulative_with_labels_units_and_the_service_name() {
    let (base, received) = receiver().await;
    let config = TelemetryConfig {
        console: None,
        service_name: "fabrik-ci".into(),
        otlp_metrics: Some(OtlpMetricsConfig::new(format!("{base}/v1/metrics"))),
        ..TelemetryConfig::default()
    };
    let parts = crate::build(&config);
    let _m = metrics::set_default_local_recorder(parts.recorder.as_ref().unwrap());
    // See `crate::interested`.
    let _d = tracing::dispatcher::set_default(&parts.dispatch);
    let t = parts.telemetry;
    let timer = CallTimer::new("plan");
    for _ in 0..2 {
        timer.time(async {}).await;
    }
    metrics::gauge!("fabrik_test_queue_depth", "queue" => "a").set(7.5);
    let report = t.flush(Duration::from_secs(10)).await;
    assert!(!report.timed_out);

    // The same values reach Prometheus: both recorders are fed.
    let text = t.prometheus().unwrap().render();
    assert!(
        text.contains(r#"fabrik_calls_total{name="plan",outcome="ok"} 2"#),
        "{text}"
    );

    let bodies = received.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "one export per flush");
    let (metrics, service) = decode(&bodies[0]);
    assert_eq!(service, "fabrik-ci");
    let Data::Sum(calls) = &metrics["fabrik_calls_total"].1 else {
        panic!("{metrics:?}")
    };
    assert!(calls.is_monotonic);
    assert_eq!(calls.aggregation_temporality, 2, "cumulative");
    assert_eq!(
        labels(&calls.data_points[0].attributes),
        [
            ("name".into(), "plan".into()),
            ("outcome".into(), "ok".into())
        ]
    );
    assert_eq!(calls.data_points[0].value, Some(Number::AsInt(2)));
    let (unit, Data::Histogram(duration)) = &metrics["fabrik_call_duration_seconds"] else {
        panic!("{metrics:?}")
    };
    assert_eq!(unit, "s");
    let point = &duration.data_points[0];
    assert_eq!(point.count, 2);
    assert_eq!(point.explicit_bounds.first(), Some(&0.005));
    let Data::Gauge(depth) = &metrics["fabrik_test_queue_depth"].1 else {
        panic!("{metrics:?}")
    };
    assert_eq!(depth.data_points[0].value, Some(Number::AsDouble(7.5)));

    // The next export carries the running totals.
    timer.time(async {}).await;
    t.shutdown(Duration::from_secs(10)).await;
    let bodies = received.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2);
    let (metrics, _) = decode(&bodies[1]);
    let Data::Sum(calls) = &metrics["fabrik_calls_total"].1 else {
        panic!()
    };
    assert_eq!(calls.data_points[0].value, Some(Number::AsInt(3)));
    let Data::Histogram(duration) = &metrics["fabrik_call_duration_seconds"].1 else {
        panic!()
    };
    assert_eq!(duration.data_points[0].count, 3);
}

#[tokio::test(start_paused = true)]
async fn metrics_go_out_on_the_interval_and_a_dead_collector_is_counted_not_fatal() {
    let (base, received) = receiver().await;
    let mut otlp = OtlpMetricsConfig::new(format!("{base}/v1/metrics"));
    otlp.interval = Duration::from_secs(30);
    let config = TelemetryConfig {
        console: None,
        otlp_metrics: Some(otlp),
        ..TelemetryConfig::default()
    };
    {
        let parts = crate::build(&config);
        let _m = metrics::set_default_local_recorder(parts.recorder.as_ref().unwrap());
        metrics::counter!("fabrik_test_total").increment(1);
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert!(
            received.lock().unwrap().is_empty(),
            "sent before the interval"
        );
        // Paused time jumps ahead whenever the runtime is idle, so waiting is instant.
        while received.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Nothing listens on this port: exports fail, the run goes on, failures are counted.
    let port = crate::dead_port();
    let config = TelemetryConfig {
        console: None,
        otlp_metrics: Some(OtlpMetricsConfig::new(format!(
            "http://127.0.0.1:{port}/v1/metrics"
        ))),
        ..TelemetryConfig::default()
    };
    let parts = crate::build(&config);
    let _m = metrics::set_default_local_recorder(parts.recorder.as_ref().unwrap());
    let t = parts.telemetry;
    metrics::counter!("fabrik_test_total").increment(1);
    let report = t.shutdown(Duration::from_secs(60)).await;
    assert!(!report.timed_out);
    let text = t.prometheus().unwrap().render();
    assert!(
        text.contains(
            r#"fabrik_telemetry_dropped_total{exporter="otlp_metrics",reason="send_failed"} 1"#
        ),
        "{text}"
    );
}
