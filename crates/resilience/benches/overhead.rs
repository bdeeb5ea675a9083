//! Overhead of the full pipeline over a bare async call (`bare` vs `pipeline`), and the
//! throughput of one circuit breaker shared by tasks on two worker threads.
//!
//! Run with `cargo bench -p fabrik-resilience --bench overhead`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fabrik_core::{CallContext, Classify, ErrorClass, SystemClock};
use fabrik_resilience::{
    BreakerConfig, CircuitBreaker, Pipeline, RateLimitConfig, ResilienceConfig,
};

#[derive(Debug)]
struct BenchError;

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bench error")
    }
}

impl Classify for BenchError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Transient
    }
}

/// The trivial operation both benchmarks run.
async fn op(n: u32) -> Result<u32, BenchError> {
    Ok(black_box(n) + 1)
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    c.bench_function("bare", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(op(black_box(1)).await) })
    });

    // Every stage on: an ample GCRA limit, adaptive rate (idle until a 429), retry with its
    // budget, the breaker and a 30 s attempt timeout on tokio's timer.
    let cfg = ResilienceConfig::default().with_rate_limit(Some(RateLimitConfig {
        max_requests: 1_000_000_000,
        per: Duration::from_secs(1),
        burst: 1_000_000,
    }));
    assert!(cfg.retry.is_some() && cfg.breaker.is_some() && cfg.attempt_timeout.is_some());
    let pipeline = Pipeline::builder(cfg).build().expect("pipeline");
    let ctx = CallContext::new("api.fabric.microsoft.com", "GET /v1/workspaces");
    c.bench_function("pipeline", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(pipeline.run(&ctx, op).await.is_ok()) })
    });
}

/// Runs `iters` admit-and-succeed rounds on one breaker, split over `tasks` tokio tasks on a
/// two-worker runtime; returns the wall time.
fn run_breaker(
    rt: &tokio::runtime::Runtime,
    breaker: &Arc<CircuitBreaker>,
    tasks: u64,
    iters: u64,
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|i| {
                let b = breaker.clone();
                let n = iters / tasks + u64::from(i < iters % tasks);
                tokio::spawn(async move {
                    for _ in 0..n {
                        b.try_acquire().expect("closed").success();
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.expect("task");
        }
        start.elapsed()
    })
}

fn breaker_throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let breaker = Arc::new(CircuitBreaker::new(
        "shared",
        BreakerConfig::default(),
        Arc::new(SystemClock),
    ));
    let mut g = c.benchmark_group("breaker");
    g.throughput(Throughput::Elements(1));
    g.bench_function("1_task", |b| {
        b.iter_custom(|iters| run_breaker(&rt, &breaker, 1, iters))
    });
    g.bench_function("2_tasks", |b| {
        b.iter_custom(|iters| run_breaker(&rt, &breaker, 2, iters))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = overhead, breaker_throughput
}
criterion_main!(benches);
