//! `/health/ready` served from cache over loopback: requests per second.
//!
//! One server and 32 keep-alive client connections share the machine (and its 2 cores), so the
//! figure is a floor for the server alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{Criterion, Throughput, criterion_main};
use fabrik_core::{CheckResult, HealthCheck};
use fabrik_health::{HealthRegistry, router};

#[derive(Debug)]
struct Ok(&'static str);

#[async_trait]
impl HealthCheck for Ok {
    fn name(&self) -> &str {
        self.0
    }
    async fn check(&self) -> CheckResult {
        CheckResult::healthy()
    }
}

const CLIENTS: u64 = 32;

fn ready_from_cache(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(async {
        let registry = HealthRegistry::builder()
            .check(Arc::new(Ok("token")))
            .check(Arc::new(Ok("secrets")))
            .check(Arc::new(Ok("circuit_breakers")))
            .ttl(Duration::from_secs(3600))
            .build()
            .unwrap();
        registry.readiness().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(registry, None)).await });
        format!("http://{addr}/health/ready")
    });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS as usize)
        .build()
        .unwrap();

    let mut group = c.benchmark_group("health");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ready_from_cache_loopback", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let start = Instant::now();
                let tasks: Vec<_> = (0..CLIENTS)
                    .map(|i| {
                        let (http, url) = (http.clone(), url.clone());
                        let n = iters / CLIENTS + u64::from(i < iters % CLIENTS);
                        tokio::spawn(async move {
                            for _ in 0..n {
                                let res = http.get(&url).send().await.unwrap();
                                assert_eq!(res.status().as_u16(), 200);
                                res.bytes().await.unwrap();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                start.elapsed()
            }
        });
    });
    group.finish();
}

// The macro generates an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::ready_from_cache);
}
criterion_main!(group::benches);
