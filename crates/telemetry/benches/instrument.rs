//! Cost on the calling thread of instrumenting one call (span + counter + histogram) with the
//! exporters enabled: JSON console layer (to a sink), Prometheus recorder, Application
//! Insights worker running; then the same with OTLP span export on (to a loopback receiver).

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_main};
use fabrik_telemetry::{
    AppInsightsConfig, CallTimer, ConsoleFormat, OtlpConfig, RunContext, Telemetry,
    TelemetryConfig, timed,
};
use tracing_subscriber::fmt::writer::BoxMakeWriter;

fn instrument_one_call(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _enter = rt.enter();
    let mut config = TelemetryConfig {
        console: Some(ConsoleFormat::Json),
        app_insights: Some(AppInsightsConfig::new("bench", "http://127.0.0.1:9")),
        ..TelemetryConfig::default()
    };
    bench_with(c, &config, "telemetry");
    // A receiver that takes every batch, so spans flow rather than pile up and drop.
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/v1/traces", axum::routing::post(|| async { "" }));
    rt.spawn(async move { axum::serve(listener, app).await });
    config.otlp = Some(OtlpConfig::new(format!("http://{addr}/v1/traces")));
    bench_with(c, &config, "telemetry_otlp");
}

fn bench_with(c: &mut Criterion, config: &TelemetryConfig, group: &str) {
    let parts = Telemetry::build_with(config, RunContext::new(), BoxMakeWriter::new(std::io::sink))
        .unwrap();
    let recorder = parts.recorder.expect("prometheus on");
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let _tracing = tracing::dispatcher::set_default(&parts.dispatch);
    let run = parts.telemetry.run_span();
    let _run = run.enter();

    let mut cx = Context::from_waker(Waker::noop());
    let timer = CallTimer::new("create_item");
    c.bench_function(&format!("{group}/call_timer_span_counter_histogram"), |b| {
        b.iter(|| {
            let fut = pin!(timer.time(async { black_box(1) }));
            match fut.poll(&mut cx) {
                Poll::Ready(v) => v,
                Poll::Pending => unreachable!("the call is ready at once"),
            }
        });
    });
    c.bench_function(&format!("{group}/timed_call_span_counter_histogram"), |b| {
        b.iter(|| {
            let fut = pin!(timed("create_item", async { black_box(1) }));
            match fut.poll(&mut cx) {
                Poll::Ready(v) => v,
                Poll::Pending => unreachable!("the call is ready at once"),
            }
        });
    });
    assert!(
        parts
            .telemetry
            .prometheus()
            .unwrap()
            .render()
            .contains("fabrik_calls_total")
    );
    // Spans the OTLP queue dropped rather than make the calling thread wait, if any.
    let text = parts.telemetry.prometheus().unwrap().render();
    for line in text
        .lines()
        .filter(|l| l.starts_with("fabrik_telemetry_dropped_total"))
    {
        #[allow(clippy::print_stderr)] // a bench reports on stderr
        {
            eprintln!("{group}: {line}");
        }
    }
}

// criterion_group! generates an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::instrument_one_call);
}
criterion_main!(group::benches);
