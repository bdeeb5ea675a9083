//! Cost on the calling thread of instrumenting one call (span + counter + histogram) with the
//! exporters enabled: JSON console layer (to a sink), Prometheus recorder, Application
//! Insights worker running; then the same with OTLP span export on (to a loopback receiver),
//! with the queue drained between samples and, last, with the queue left full.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_main};
use fabrik_telemetry::{
    AppInsightsConfig, CallTimer, ConsoleFormat, OtlpConfig, OtlpMetricsConfig, RunContext,
    Telemetry, TelemetryConfig, timed,
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
    bench_with(c, &rt, &config, "telemetry", Drain::Every(1024), false);
    // A receiver that takes every batch, so spans flow rather than pile up and drop.
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(|| async { "" }))
        .route("/v1/metrics", axum::routing::post(|| async { "" }));
    rt.spawn(async move { axum::serve(listener, app).await });
    // The default queue (2,048 spans, batches of 512), drained after every 1,024 calls outside
    // the timing: the calling thread pays for recording and queuing each span, as in a run,
    // where spans are far apart and the queue never fills.
    config.otlp = Some(OtlpConfig::new(format!("http://{addr}/v1/traces")));
    // OTLP metrics too: every counter and histogram feeds Prometheus and OTLP.
    config.otlp_metrics = Some(OtlpMetricsConfig::new(format!("http://{addr}/v1/metrics")));
    bench_with(c, &rt, &config, "telemetry_otlp", Drain::Every(1024), false);
    // The default queue, never drained: a million spans a second outrun the exporter, the
    // queue stays full, and each span is dropped and counted.
    config.otlp = Some(OtlpConfig::new(format!("http://{addr}/v1/traces")));
    bench_with(
        c,
        &rt,
        &config,
        "telemetry_otlp_saturated",
        Drain::Never,
        false,
    );
    // As the CLI runs: the same exporters installed for the whole process (global subscriber
    // and recorder, no thread-local override). Last, because installing is for good.
    bench_with(
        c,
        &rt,
        &config,
        "telemetry_otlp_installed",
        Drain::Every(1024),
        true,
    );
}

#[derive(Clone, Copy, PartialEq)]
enum Drain {
    /// Flush, untimed, after this many calls.
    Every(u64),
    Never,
}

fn bench_with(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    config: &TelemetryConfig,
    group: &str,
    drain: Drain,
    install: bool,
) {
    let parts = Telemetry::build_with(config, RunContext::new(), BoxMakeWriter::new(std::io::sink))
        .unwrap();
    let telemetry = parts.telemetry.clone();
    let (recorder, dispatch) = if install {
        Telemetry::install(parts).unwrap();
        (None, None)
    } else {
        (parts.recorder, Some(parts.dispatch))
    };
    let _metrics = recorder
        .as_ref()
        .map(|r| metrics::set_default_local_recorder(r));
    let _tracing = dispatch.as_ref().map(tracing::dispatcher::set_default);
    let run = telemetry.run_span();
    let _run = run.enter();

    // Times `iters` calls of `one`, letting the exporters send what was queued (untimed) after
    // every `Drain::Every` calls.
    let measure = |iters: u64, one: &mut dyn FnMut()| {
        let chunk = match drain {
            Drain::Every(n) => n,
            Drain::Never => iters,
        };
        let mut elapsed = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let n = left.min(chunk);
            let start = Instant::now();
            for _ in 0..n {
                one();
            }
            elapsed += start.elapsed();
            left -= n;
            if drain != Drain::Never {
                rt.block_on(telemetry.flush(Duration::from_secs(120)));
            }
        }
        elapsed
    };
    let mut cx = Context::from_waker(Waker::noop());
    let timer = CallTimer::new("create_item");
    c.bench_function(&format!("{group}/call_timer_span_counter_histogram"), |b| {
        b.iter_custom(|iters| {
            measure(iters, &mut || {
                let fut = pin!(timer.time(async { black_box(1) }));
                match fut.poll(&mut cx) {
                    Poll::Ready(v) => black_box(v),
                    Poll::Pending => unreachable!("the call is ready at once"),
                };
            })
        });
    });
    if drain != Drain::Never {
        c.bench_function(&format!("{group}/timed_call_span_counter_histogram"), |b| {
            b.iter_custom(|iters| {
                measure(iters, &mut || {
                    let fut = pin!(timed("create_item", async { black_box(1) }));
                    match fut.poll(&mut cx) {
                        Poll::Ready(v) => black_box(v),
                        Poll::Pending => unreachable!("the call is ready at once"),
                    };
                })
            });
        });
    }
    let text = telemetry.prometheus().unwrap().render();
    assert!(text.contains("fabrik_calls_total"));
    // What the exporters accepted and dropped (a drained queue should drop nothing).
    let report = rt.block_on(telemetry.flush(Duration::from_secs(120)));
    #[allow(clippy::print_stderr)] // a bench reports on stderr
    {
        eprintln!(
            "{group}: exported {} spans/items, dropped {}",
            report.accepted, report.dropped
        );
        for line in text
            .lines()
            .filter(|l| l.starts_with("fabrik_telemetry_dropped_total"))
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
