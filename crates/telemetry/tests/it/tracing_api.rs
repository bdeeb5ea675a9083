//! The global handle, logging fallback, console JSON lines and the timing wrapper.

use std::io::Write;
use std::sync::{Arc, Mutex};

use fabrik_telemetry::{
    CallTimer, ConsoleFormat, RunContext, Telemetry, TelemetryConfig, global, timed, timed_fn,
    track_event,
};
use metrics_exporter_prometheus::PrometheusBuilder;
use tracing::Instrument;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn console(format: ConsoleFormat) -> (Telemetry, tracing::Dispatch, Buf) {
    let buf = Buf::default();
    let w = buf.clone();
    let config = TelemetryConfig {
        console: Some(format),
        prometheus: false,
        ..TelemetryConfig::default()
    };
    let parts = Telemetry::build_with(
        &config,
        RunContext::new(),
        BoxMakeWriter::new(move || w.clone()),
    )
    .unwrap();
    (parts.telemetry, parts.dispatch, buf)
}

#[tokio::test]
async fn before_init_the_global_handle_is_disabled_and_the_same_every_time() {
    // seed: disabled by default, singleton.
    let a = global();
    let b = global();
    assert!(std::ptr::eq(a, b));
    assert_eq!(a.trace_id(), b.trace_id());
    assert!(a.prometheus().is_none());
    track_event("ignored", &[("k", "v")]);
    let report = a.shutdown(std::time::Duration::from_secs(1)).await;
    assert_eq!(
        (report.accepted, report.dropped, report.timed_out),
        (0, 0, false)
    );
}

#[test]
fn human_console_output_to_a_writer_has_no_colour_codes() {
    let (_t, dispatch, buf) = console(ConsoleFormat::Human);
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::warn!(workspace = "sales", "something to see");
    });
    let out = buf.text();
    assert!(out.contains("WARN") && out.contains("workspace"), "{out}");
    assert!(!out.contains('\u{1b}'), "escape codes in: {out:?}");
}

#[test]
fn without_an_exporter_events_fall_back_to_logging() {
    // seed: fallback to logging.
    let (t, dispatch, buf) = console(ConsoleFormat::Human);
    tracing::dispatcher::with_default(&dispatch, || {
        t.track_event(
            "deployment_finished",
            &[("workspace", "sales"), ("token", "hunter2")],
        );
    });
    let out = buf.text();
    assert!(out.contains("deployment_finished"), "{out}");
    assert!(out.contains("workspace=sales"), "{out}");
    assert!(
        out.contains("token=[redacted]") && !out.contains("hunter2"),
        "{out}"
    );
}

#[tokio::test]
async fn json_lines_carry_the_run_trace_id_and_the_timed_span() {
    let (t, dispatch, buf) = console(ConsoleFormat::Json);
    let _d = tracing::dispatcher::set_default(&dispatch);
    let run = t.run_span();
    async {
        timed("plan", async { tracing::info!("planning") }).await;
    }
    .instrument(run)
    .await;
    let line = buf
        .text()
        .lines()
        .find(|l| l.contains("planning"))
        .unwrap()
        .to_owned();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["spans"][0]["name"], "fabrik.run");
    assert_eq!(v["spans"][0]["trace_id"], t.trace_id().to_string());
    assert_eq!(v["spans"][1]["name"], "call");
    assert_eq!(v["spans"][1]["operation"], "plan");
}

#[tokio::test]
async fn timed_counts_calls_and_records_durations() {
    // seed: track_performance.
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _m = metrics::set_default_local_recorder(&recorder);
    let _d = crate::interested();
    for _ in 0..3 {
        assert_eq!(timed("diff", async { 5 }).await, 5);
    }
    let timer = CallTimer::new("apply");
    assert_eq!(timer.time(async { 6 }).await, 6);
    // Plain functions too.
    assert_eq!(timed_fn("diff", || 7), 7);
    assert_eq!(timer.time_fn(|| 8), 8);
    Telemetry::disabled().record_run("succeeded", std::time::Duration::from_secs(2));
    let text = handle.render();
    assert!(
        text.contains(r#"fabrik_calls_total{name="diff",outcome="ok"} 4"#),
        "{text}"
    );
    assert!(
        text.contains(r#"fabrik_call_duration_seconds_count{name="diff"} 4"#),
        "{text}"
    );
    assert!(
        text.contains(r#"fabrik_calls_total{name="apply",outcome="ok"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"fabrik_run_duration_seconds_sum{outcome="succeeded"} 2"#),
        "{text}"
    );
}
