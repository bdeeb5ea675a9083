//! Span export over OTLP/HTTP against a loopback receiver of `POST /v1/traces`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use fabrik_telemetry::{OtlpConfig, OtlpProtocol, RunContext, Telemetry, TelemetryConfig, timed};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use tracing::Instrument;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// What the receiver got: (content type, body) per request.
type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

/// Starts an OTLP/HTTP trace receiver; returns its base URL and what it receives.
async fn receiver() -> (String, Received) {
    let received = Received::default();
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            post(
                |State(r): State<Received>, h: HeaderMap, body: Bytes| async move {
                    let ct = h
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    r.lock().unwrap().push((ct, body));
                    "" // an empty response: full success in both encodings
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, received)
}

fn env(pairs: &[(&str, &str)]) -> TelemetryConfig {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut c = TelemetryConfig::from_env(|k| map.get(k).cloned()).unwrap();
    c.console = None;
    c
}

/// A span as received: name, trace id, span id, parent span id (hex).
#[derive(Debug)]
struct Got {
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes protobuf requests; returns the spans and each request's `service.name`.
fn decode_protobuf(received: &Received) -> (Vec<Got>, Vec<String>) {
    let (mut spans, mut services) = (Vec::new(), Vec::new());
    for (ct, body) in received.lock().unwrap().iter() {
        assert_eq!(ct, "application/x-protobuf");
        let req = ExportTraceServiceRequest::decode(body.clone()).unwrap();
        for rs in req.resource_spans {
            for kv in rs.resource.unwrap().attributes {
                if let ("service.name", Some(AnyValue::StringValue(s))) =
                    (kv.key.as_str(), kv.value.and_then(|v| v.value))
                {
                    services.push(s);
                }
            }
            for s in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                spans.push(Got {
                    name: s.name,
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent: hex(&s.parent_span_id),
                });
            }
        }
    }
    (spans, services)
}

#[tokio::test]
async fn spans_arrive_over_http_protobuf_with_the_run_trace_id() {
    let (base, received) = receiver().await;
    let config = env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &base),
        ("OTEL_SERVICE_NAME", "fabrik-ci"),
    ]);
    assert_eq!(
        config.otlp.as_ref().unwrap().traces_endpoint,
        format!("{base}/v1/traces")
    );
    let parts = crate::build(&config);
    let _d = tracing::dispatcher::set_default(&parts.dispatch);
    let t = parts.telemetry;
    async {
        timed("plan", async { tracing::info!("planning") }).await;
    }
    .instrument(t.run_span())
    .await;
    // A span outside the run span (e.g. the serve loop's) belongs to the run's trace too.
    tracing::info_span!("reconcile").in_scope(|| {});

    let report = t.flush(Duration::from_secs(10)).await;
    assert_eq!(
        (report.accepted, report.dropped, report.timed_out),
        (3, 0, false)
    );
    let (spans, services) = decode_protobuf(&received);
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["call", "fabrik.run", "reconcile"]);
    let trace = t.trace_id().to_string();
    assert!(spans.iter().all(|s| s.trace_id == trace), "{spans:?}");
    assert_eq!(
        spans[0].parent, spans[1].span_id,
        "call is a child of the run"
    );
    assert!(services.iter().all(|s| s == "fabrik-ci") && !services.is_empty());
}

#[tokio::test]
async fn http_json_is_chosen_by_the_standard_variables() {
    let (base, received) = receiver().await;
    let config = env(&[
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            &format!("{base}/v1/traces"),
        ),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
    ]);
    assert_eq!(
        config.otlp.as_ref().unwrap().protocol,
        OtlpProtocol::HttpJson
    );
    let parts = crate::build(&config);
    let _d = tracing::dispatcher::set_default(&parts.dispatch);
    let t = parts.telemetry;
    t.run_span().in_scope(|| {});
    let report = t.shutdown(Duration::from_secs(10)).await;
    assert_eq!((report.accepted, report.dropped), (1, 0));

    let received = received.lock().unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].0, "application/json");
    let body: serde_json::Value = serde_json::from_slice(&received[0].1).unwrap();
    let span = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["name"], "fabrik.run");
    assert_eq!(span["traceId"], t.trace_id().to_string());
}

#[tokio::test(start_paused = true)]
async fn collector_down_spans_are_dropped_and_counted_without_failing_the_run() {
    let port = crate::dead_port();
    let config = TelemetryConfig {
        console: None,
        otlp: Some(OtlpConfig::new(format!(
            "http://127.0.0.1:{port}/v1/traces"
        ))),
        ..TelemetryConfig::default()
    };
    let parts = crate::build(&config);
    let _d = tracing::dispatcher::set_default(&parts.dispatch);
    let _m = metrics::set_default_local_recorder(parts.recorder.as_ref().unwrap());
    let t = parts.telemetry;
    let out = timed("apply", async { 42 }).instrument(t.run_span()).await;
    assert_eq!(out, 42);
    // The exporter retries with backoff (paused time makes that instant), then gives up.
    let report = t.shutdown(Duration::from_secs(30)).await;
    assert_eq!(
        (report.accepted, report.dropped, report.timed_out),
        (0, 2, false)
    );
    let text = t.prometheus().unwrap().render();
    assert!(
        text.contains(r#"fabrik_telemetry_dropped_total{exporter="otlp",reason="send_failed"} 2"#),
        "{text}"
    );
}

#[tokio::test]
async fn fields_events_kinds_and_status_are_exported_and_secrets_are_not() {
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

    let (base, received) = receiver().await;
    let config = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &base)]);
    let run = RunContext::new();
    let parts = Telemetry::build_with(&config, run, BoxMakeWriter::new(std::io::sink)).unwrap();
    let _d = tracing::dispatcher::set_default(&parts.dispatch);
    let t = parts.telemetry;
    async {
        let call = tracing::info_span!(
            "fabric.call",
            otel.kind = "client",
            route = "/v1/workspaces",
            status = tracing::field::Empty,
            attempt = 1u32,
            client_secret = "s3cr3t-value",
        );
        call.record("status", 429);
        call.record("attempt", 2u32); // recorded again: replaced, not repeated
        call.in_scope(|| {
            tracing::warn!(retry_after_s = 3, "throttled");
            tracing::error!("gave up");
        });
        let step = tracing::info_span!(
            "step",
            otel.name = "create lakehouse",
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
        );
        step.record("otel.status_code", "error");
        step.record("otel.status_message", "403 from the service");
    }
    .instrument(t.run_span())
    .await;
    t.flush(Duration::from_secs(10)).await;

    let mut spans = Vec::new();
    for (_, body) in received.lock().unwrap().iter() {
        let req = ExportTraceServiceRequest::decode(body.clone()).unwrap();
        for rs in req.resource_spans {
            for ss in rs.scope_spans {
                assert_eq!(ss.scope.unwrap().name, "fabrik");
                spans.extend(ss.spans);
            }
        }
    }
    assert!(
        !format!("{spans:?}").contains("s3cr3t"),
        "a secret left the process"
    );
    let run_span = spans.iter().find(|s| s.name == "fabrik.run").unwrap();
    assert_eq!(
        hex(&run_span.span_id),
        run.root_span_id.to_string(),
        "the run span is the parent Application Insights items and traceparent name"
    );
    let call = spans.iter().find(|s| s.name == "fabric.call").unwrap();
    assert_eq!(call.parent_span_id, run_span.span_id);
    assert_eq!(call.kind, SpanKind::Client as i32);
    let attrs: HashMap<&str, String> = call
        .attributes
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                Some(AnyValue::IntValue(i)) => i.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.as_str(), v)
        })
        .collect();
    assert_eq!(attrs.len(), 4, "{attrs:?}");
    assert_eq!(attrs["route"], "/v1/workspaces");
    assert_eq!(attrs["status"], "429");
    assert_eq!(attrs["attempt"], "2");
    assert_eq!(attrs["client_secret"], "[redacted]");
    let events: Vec<&str> = call.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(events, ["throttled", "gave up"]);
    assert!(
        call.events[0]
            .attributes
            .iter()
            .any(|kv| kv.key == "retry_after_s")
    );
    let status = call.status.as_ref().unwrap();
    assert_eq!(
        (status.code, status.message.as_str()),
        (StatusCode::Error as i32, "gave up")
    );
    assert!(call.end_time_unix_nano >= call.start_time_unix_nano);
    // `otel.name` renames a span; `otel.status_*` set its status and are not attributes.
    let step = spans.iter().find(|s| s.name == "create lakehouse").unwrap();
    let status = step.status.as_ref().unwrap();
    assert_eq!(
        (status.code, status.message.as_str()),
        (StatusCode::Error as i32, "403 from the service")
    );
    assert!(step.attributes.is_empty(), "{:?}", step.attributes);
    // Wall-clock times (the layer reads the TSC; the worker converts).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let age = now.saturating_sub(call.start_time_unix_nano);
    assert!(age < 60_000_000_000, "started {age} ns ago");
}

/// A console writer that keeps what it is given.
#[derive(Clone, Default)]
struct Console(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Console {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn otlp_gets_info_spans_whatever_the_console_filter_shows() {
    // A bare level and an EnvFilter directive: both keep the console to warnings.
    for filter in ["warn", "warn,hyper=error"] {
        let (base, received) = receiver().await;
        let mut config = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &base)]);
        config.console = Some(fabrik_telemetry::ConsoleFormat::Json);
        config.filter = filter.into();
        let console = Console::default();
        let writer = console.clone();
        let parts = Telemetry::build_with(
            &config,
            RunContext::new(),
            BoxMakeWriter::new(move || writer.clone()),
        )
        .unwrap();
        let _d = tracing::dispatcher::set_default(&parts.dispatch);
        tracing::info_span!("step", n = 1).in_scope(|| {
            tracing::info!("quiet");
            tracing::warn!("loud");
        });
        parts.telemetry.flush(Duration::from_secs(10)).await;

        let (spans, _) = decode_protobuf(&received);
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["step"], "{filter}");
        let printed = String::from_utf8(console.0.lock().unwrap().clone()).unwrap();
        assert!(printed.contains("loud"), "{filter}: {printed}");
        assert!(!printed.contains("quiet"), "{filter}: {printed}");
    }
}
