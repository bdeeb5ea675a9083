//! Configuration from the environment and connection strings; trace context.

use std::collections::HashMap;

use fabrik_telemetry::{
    AppInsightsConfig, ConsoleFormat, DEFAULT_INGESTION_ENDPOINT, RunContext, TelemetryConfig,
    TraceId,
};

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn without_a_key_nothing_is_exported() {
    // seed: disabled without key / without SDK.
    let c = TelemetryConfig::from_env(env(&[])).unwrap();
    assert!(c.app_insights.is_none());
    assert_eq!(c.console, Some(ConsoleFormat::Human));
    assert!(c.prometheus);
    assert_eq!(c.filter, "info");
}

#[test]
fn connection_string_gives_key_and_ingestion_endpoint() {
    // seed: enabled (with a key).
    let c = TelemetryConfig::from_env(env(&[
        (
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            "InstrumentationKey=abc-123;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/",
        ),
        ("FABRIK_LOG_FORMAT", "json"),
        ("RUST_LOG", "fabrik=debug"),
        ("ENVIRONMENT", "prod"),
    ]))
    .unwrap();
    let ai = c.app_insights.unwrap();
    assert_eq!(ai.instrumentation_key, "abc-123");
    assert_eq!(
        ai.ingestion_endpoint,
        "https://westeurope-5.in.applicationinsights.azure.com"
    );
    assert_eq!(c.console, Some(ConsoleFormat::Json));
    assert_eq!(c.filter, "fabrik=debug");
    assert_eq!(c.environment.as_deref(), Some("prod"));
}

#[test]
fn connection_string_forms() {
    let parse = |s| AppInsightsConfig::from_connection_string(s);
    let c = parse(" instrumentationkey = k ; EndpointSuffix=ai.contoso.com ").unwrap();
    assert_eq!(
        (
            c.instrumentation_key.as_str(),
            c.ingestion_endpoint.as_str()
        ),
        ("k", "https://dc.ai.contoso.com")
    );
    assert_eq!(
        parse("InstrumentationKey=k").unwrap().ingestion_endpoint,
        DEFAULT_INGESTION_ENDPOINT
    );
    let legacy =
        TelemetryConfig::from_env(env(&[("APPINSIGHTS_INSTRUMENTATION_KEY", "legacy")])).unwrap();
    assert_eq!(legacy.app_insights.unwrap().instrumentation_key, "legacy");
    for bad in [
        "IngestionEndpoint=https://x/",
        "InstrumentationKey=",
        "garbage",
        "InstrumentationKey=k;IngestionEndpoint=ftp://x",
    ] {
        let err = parse(bad).unwrap_err().to_string();
        assert!(!err.contains(bad), "error quotes the input: {err}");
    }
}

#[test]
fn config_debug_hides_the_instrumentation_key() {
    let ai = AppInsightsConfig::new("very-private-key", "https://x");
    assert!(!format!("{ai:?}").contains("very-private-key"));
}

#[test]
fn no_color_turns_colour_off_unless_empty() {
    assert!(TelemetryConfig::from_env(env(&[])).unwrap().color);
    assert!(
        !TelemetryConfig::from_env(env(&[("NO_COLOR", "1")]))
            .unwrap()
            .color
    );
    // no-color.org: an empty value does not count.
    assert!(
        TelemetryConfig::from_env(env(&[("NO_COLOR", "")]))
            .unwrap()
            .color
    );
}

#[test]
fn unknown_log_format_is_an_error() {
    assert!(TelemetryConfig::from_env(env(&[("FABRIK_LOG_FORMAT", "xml")])).is_err());
    let off = TelemetryConfig::from_env(env(&[("FABRIK_LOG_FORMAT", "off")])).unwrap();
    assert_eq!(off.console, None);
}

#[test]
fn traceparent_is_w3c_and_round_trips_the_trace_id() {
    let run = RunContext::new();
    let tp = run.traceparent();
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4);
    assert_eq!((parts[0], parts[3]), ("00", "01"));
    assert_eq!(parts[1].len(), 32);
    assert_eq!(parts[2].len(), 16);
    assert_eq!(parts[1], run.trace_id.to_string());
    let continued = RunContext::from_traceparent(&tp).unwrap();
    assert_eq!(continued.trace_id, run.trace_id);
    assert_ne!(RunContext::new().trace_id, run.trace_id);
    for bad in [
        "00-00000000000000000000000000000000-0000000000000001-01",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        "00-xyz-b7ad6b7169203331-01",
    ] {
        assert!(RunContext::from_traceparent(bad).is_none(), "{bad}");
    }
    assert_eq!(
        TraceId::parse("0af7651916cd43dd8448eb211c80319c")
            .unwrap()
            .to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
}

#[test]
fn otlp_is_configured_by_the_standard_variables() {
    use fabrik_telemetry::{OtlpConfig, OtlpProtocol};
    use std::time::Duration;
    assert!(TelemetryConfig::from_env(env(&[])).unwrap().otlp.is_none());
    let c = OtlpConfig::from_env(env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318/"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(c.traces_endpoint, "https://collector:4318/v1/traces");
    assert_eq!(c.protocol, OtlpProtocol::HttpProtobuf);
    assert_eq!(c.timeout, Duration::from_millis(2500));
    // The signal's own variables win, and its endpoint is used as is.
    let c = OtlpConfig::from_env(env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318/custom"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(c.traces_endpoint, "http://b:4318/custom");
    assert_eq!(c.protocol, OtlpProtocol::HttpJson);
    for off in [
        ("OTEL_SDK_DISABLED", "true"),
        ("OTEL_TRACES_EXPORTER", "none"),
    ] {
        let vars = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"), off];
        assert!(
            OtlpConfig::from_env(env(&vars)).unwrap().is_none(),
            "{off:?}"
        );
    }
    for bad in [
        [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ],
        [("OTEL_EXPORTER_OTLP_ENDPOINT", "a:4318"), ("X", "")],
        [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "5s"),
        ],
    ] {
        assert!(TelemetryConfig::from_env(env(&bad)).is_err(), "{bad:?}");
    }
    let mut c = OtlpConfig::new("http://a:4318/v1/traces");
    c.headers
        .push(("x-api-key".into(), "very-private-key".into()));
    let debug = format!("{c:?}");
    assert!(
        debug.contains("x-api-key") && !debug.contains("very-private-key"),
        "{debug}"
    );
}

#[test]
fn otlp_metrics_are_configured_by_the_standard_variables() {
    use fabrik_telemetry::{OtlpMetricsConfig, OtlpProtocol};
    use std::time::Duration;
    assert!(
        TelemetryConfig::from_env(env(&[]))
            .unwrap()
            .otlp_metrics
            .is_none()
    );
    // One endpoint variable turns on both signals, each under its own path.
    let c = TelemetryConfig::from_env(env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "15000"),
    ]))
    .unwrap();
    assert_eq!(
        c.otlp.unwrap().traces_endpoint,
        "http://collector:4318/v1/traces"
    );
    let m = c.otlp_metrics.unwrap();
    assert_eq!(m.endpoint, "http://collector:4318/v1/metrics");
    assert_eq!(m.protocol, OtlpProtocol::HttpJson);
    assert_eq!(m.interval, Duration::from_secs(15));
    assert_eq!(m.timeout, Duration::from_secs(10));
    // The signal's own variables win; each signal can be turned off alone.
    let m = OtlpMetricsConfig::from_env(env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://b:9090/otlp"),
        ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "750"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(m.endpoint, "http://b:9090/otlp");
    assert_eq!(m.timeout, Duration::from_millis(750));
    let c = TelemetryConfig::from_env(env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
        ("OTEL_METRICS_EXPORTER", "none"),
    ]))
    .unwrap();
    assert!(c.otlp.is_some() && c.otlp_metrics.is_none());
    // Bad values name the variable that holds them.
    for (key, value) in [
        ("OTEL_METRIC_EXPORT_INTERVAL", "1m"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "0"),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "soon"),
    ] {
        let e = TelemetryConfig::from_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            (key, value),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains(key), "{e}");
    }
}
