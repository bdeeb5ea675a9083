//! Cost on the calling thread of instrumenting one call (span + counter + histogram) with the
//! exporters enabled: JSON console layer (to a sink), Prometheus recorder, Application
//! Insights worker running.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_main};
use fabrik_telemetry::{
    AppInsightsConfig, CallTimer, ConsoleFormat, RunContext, Telemetry, TelemetryConfig, timed,
};
use tracing_subscriber::fmt::writer::BoxMakeWriter;

fn instrument_one_call(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _enter = rt.enter();
    let config = TelemetryConfig {
        console: Some(ConsoleFormat::Json),
        app_insights: Some(AppInsightsConfig::new("bench", "http://127.0.0.1:9")),
        ..TelemetryConfig::default()
    };
    let parts = Telemetry::build_with(
        &config,
        RunContext::new(),
        BoxMakeWriter::new(std::io::sink),
    )
    .unwrap();
    let recorder = parts.recorder.expect("prometheus on");
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let _tracing = tracing::dispatcher::set_default(&parts.dispatch);
    let run = parts.telemetry.run_span();
    let _run = run.enter();

    let mut cx = Context::from_waker(Waker::noop());
    let timer = CallTimer::new("create_item");
    c.bench_function("telemetry/call_timer_span_counter_histogram", |b| {
        b.iter(|| {
            let fut = pin!(timer.time(async { black_box(1) }));
            match fut.poll(&mut cx) {
                Poll::Ready(v) => v,
                Poll::Pending => unreachable!("the call is ready at once"),
            }
        });
    });
    c.bench_function("telemetry/timed_call_span_counter_histogram", |b| {
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
}

// criterion_group! generates an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::instrument_one_call);
}
criterion_main!(group::benches);
