//! Installing telemetry for the whole process, as the CLI does. A test binary of its own:
//! a global subscriber and recorder stay installed until the process ends.

use std::time::Duration;

use fabrik_telemetry::{Telemetry, TelemetryConfig, global, timed, timed_fn};
use metrics_exporter_prometheus::PrometheusBuilder;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

#[tokio::test]
async fn installed_telemetry_counts_timed_calls_and_local_recorders_still_get_theirs() {
    let config = TelemetryConfig {
        console: None,
        ..TelemetryConfig::default()
    };
    let parts = Telemetry::build_with(
        &config,
        fabrik_telemetry::RunContext::new(),
        BoxMakeWriter::new(std::io::sink),
    )
    .unwrap();
    let t = Telemetry::install(parts).unwrap();
    assert_eq!(global().trace_id(), t.trace_id());
    let prometheus = t.prometheus().unwrap();

    // `timed` keeps its handles for the installed recorder; every call still counts.
    for _ in 0..3 {
        assert_eq!(timed("plan", async { 1 }).await, 1);
    }
    assert_eq!(timed_fn("diff", || 2), 2);
    assert_eq!(timed_fn("diff", || 3), 3);
    let text = prometheus.render();
    for series in [
        r#"fabrik_calls_total{name="plan",outcome="ok"} 3"#,
        r#"fabrik_call_duration_seconds_count{name="plan"} 3"#,
        r#"fabrik_calls_total{name="diff",outcome="ok"} 2"#,
    ] {
        assert!(text.contains(series), "{series} in\n{text}");
    }

    // A recorder set for this thread takes over, and the installed one is left alone.
    let local = PrometheusBuilder::new().build_recorder();
    let local_handle = local.handle();
    {
        let _l = metrics::set_default_local_recorder(&local);
        timed_fn("plan", || ());
    }
    assert!(
        local_handle
            .render()
            .contains(r#"fabrik_calls_total{name="plan",outcome="ok"} 1"#),
        "{}",
        local_handle.render()
    );
    timed_fn("plan", || ());
    assert!(
        prometheus
            .render()
            .contains(r#"fabrik_calls_total{name="plan",outcome="ok"} 4"#)
    );

    // Once is all: a second install is refused, naming what is taken.
    let again = Telemetry::build_with(
        &config,
        fabrik_telemetry::RunContext::new(),
        BoxMakeWriter::new(std::io::sink),
    )
    .unwrap();
    let err = Telemetry::install(again).unwrap_err().to_string();
    assert!(err.contains("already installed"), "{err}");
    t.shutdown(Duration::from_secs(5)).await;
}
