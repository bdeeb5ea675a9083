//! GET item throughput against the in-process emulator on loopback, and the client's own CPU
//! per call.
//!
//! The emulator and the client run on separate single-threaded tokio runtimes whose threads
//! are named, so the CPU time of the client's thread (HTTP, token header, span, metrics,
//! deserialize) is read apart from the server's from `/proc/self/task/*/stat`.
//!
//! Run: `cargo bench -p fabrik-client --bench get_item` (env: `BENCH_SECS`, `BENCH_CONCURRENCY`).

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fabrik_client::models::{CreateItemRequest, CreateWorkspaceRequest, ItemType};
use fabrik_client::{FabricClient, StaticTokenProvider};
use fabrik_emulator::{Emulator, EmulatorConfig};

/// User+system CPU seconds of this process's threads whose name starts with `prefix`.
fn cpu_of_threads(prefix: &str) -> f64 {
    let mut ticks = 0u64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // Format: pid (comm) state ... ; comm may hold spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        let rest: Vec<&str> = stat[close + 2..].split(' ').collect();
        // Fields 14 and 15 (utime, stime) are at 11 and 12 after the state field.
        let utime: u64 = rest.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
        let stime: u64 = rest.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        ticks += utime + stime;
    }
    ticks as f64 / 100.0 // CLK_TCK is 100 on Linux
}

fn runtime(name: &'static str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("runtime")
}

fn main() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let concurrency: usize = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);

    let server_rt = runtime("emu-worker");
    let emu = server_rt
        .block_on(Emulator::start(EmulatorConfig {
            request_log_limit: 1,
            ..EmulatorConfig::default()
        }))
        .expect("emulator");
    let token = emu.mint_token(
        "a1b2c3d4-0000-4000-8000-000000000001",
        Duration::from_secs(86_400),
    );
    let base = emu.base_url().to_owned();

    let client_rt = runtime("client-worker");
    let client = client_rt.block_on(async {
        FabricClient::builder(&base)
            .token_provider(Arc::new(StaticTokenProvider::never_expiring(token.into())))
            .build()
            .expect("client")
    });
    let (ws, item) = client_rt.block_on(async {
        let ws = client
            .create_workspace(&CreateWorkspaceRequest {
                display_name: "bench".into(),
                ..Default::default()
            })
            .await
            .expect("workspace");
        let item = client
            .create_item(
                &ws.id,
                &CreateItemRequest::new("Bronze", ItemType::Lakehouse),
            )
            .await
            .expect("item");
        (ws.id, item.id)
    });

    let run = |duration: Duration| {
        let calls = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let cpu_client0 = cpu_of_threads("client-worker");
        let cpu_server0 = cpu_of_threads("emu-worker");
        let start = Instant::now();
        client_rt.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let (client, ws, item) = (client.clone(), ws.clone(), item.clone());
                let (calls, errors) = (calls.clone(), errors.clone());
                tasks.push(tokio::spawn(async move {
                    while start.elapsed() < duration {
                        match client.get_item(&ws, &item).await {
                            Ok(_) => calls.fetch_add(1, Ordering::Relaxed),
                            Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                }));
            }
            for t in tasks {
                t.await.expect("task");
            }
        });
        let wall = start.elapsed().as_secs_f64();
        let n = calls.load(Ordering::Relaxed);
        let client_cpu = cpu_of_threads("client-worker") - cpu_client0;
        let server_cpu = cpu_of_threads("emu-worker") - cpu_server0;
        (
            n,
            errors.load(Ordering::Relaxed),
            wall,
            client_cpu,
            server_cpu,
        )
    };

    run(Duration::from_secs(1)); // warm up connections and caches
    let (n, errors, wall, client_cpu, server_cpu) = run(Duration::from_secs(secs));
    println!("GET /v1/workspaces/{{workspaceId}}/items/{{itemId}} against the in-process emulator");
    println!("  concurrency           {concurrency}");
    println!("  calls                 {n} ({errors} errors) in {wall:.2} s");
    println!("  throughput            {:.0} calls/s", n as f64 / wall);
    println!(
        "  client CPU per call   {:.1} µs (client thread: HTTP, auth header, span, metrics, JSON)",
        client_cpu / n as f64 * 1e6
    );
    println!(
        "  server CPU per call   {:.1} µs (emulator thread)",
        server_cpu / n as f64 * 1e6
    );

    // The client-side work that isn't I/O, alone: decoding the body and one span.
    let body = br#"{"id":"5b218778-e7a5-4d73-8187-f10824047715","type":"Lakehouse","displayName":"Bronze","description":"","workspaceId":"cfafbeb1-8037-4d0c-896e-a46fb27ff229","sensitivityLabel":{"id":"b7b4f4d9-3f0d-4b3e-8f3d-4f6d3f4f3f4f"}}"#;
    let iters = 200_000u32;
    let t = Instant::now();
    for _ in 0..iters {
        let span = tracing::info_span!(
            "fabric.call",
            method = "GET",
            route = "/workspaces/{workspaceId}/items/{itemId}",
            status = tracing::field::Empty
        );
        span.record("status", 200u16);
        let item: fabrik_client::models::Item = serde_json::from_slice(body).expect("item");
        std::hint::black_box(item);
    }
    println!(
        "  decode + span alone   {:.2} µs per call (no subscriber installed)",
        t.elapsed().as_secs_f64() / f64::from(iters) * 1e6
    );
    // For `cargo xtask bench`, which writes docs/benchmarks/client.md from this line.
    println!(
        "bench-json: {}",
        serde_json::json!({
            "calls_per_s": n as f64 / wall,
            "errors": errors,
            "client_cpu_us": client_cpu / n as f64 * 1e6,
            "server_cpu_us": server_cpu / n as f64 * 1e6,
            "decode_span_us": t.elapsed().as_secs_f64() / f64::from(iters) * 1e6,
        })
    );
    server_rt.block_on(async { emu.shutdown().await.expect("shutdown") });
}
