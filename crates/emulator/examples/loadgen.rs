//! A small load generator for the emulator's benchmarks (see docs/benchmarks/emulator.md).
//!
//! ```text
//! loadgen URL populate WORKSPACES ITEMS   # create WORKSPACES workspaces with ITEMS notebooks each
//! loadgen URL get SECONDS CONNECTIONS     # GET /v1/workspaces/{id} in a closed loop, report req/s
//! ```
//! The emulator must run with `--accept-any-token`. Every loop is bounded by a count or a
//! duration, and only the given (loopback) URL is contacted.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TOKEN: &str = "loadgen";

async fn populate(base: &str, workspaces: usize, items: usize) {
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (http, next, base) = (http.clone(), next.clone(), base.to_string());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                if n >= workspaces {
                    break;
                }
                let ws: Value = http
                    .post(format!("{base}/v1/workspaces"))
                    .bearer_auth(TOKEN)
                    .json(&json!({"displayName": format!("bench-{n}")}))
                    .send()
                    .await
                    .expect("create workspace")
                    .json()
                    .await
                    .expect("workspace body");
                let id = ws["id"].as_str().expect("workspace id").to_string();
                for i in 0..items {
                    let r = http
                        .post(format!("{base}/v1/workspaces/{id}/items"))
                        .bearer_auth(TOKEN)
                        .json(&json!({"displayName": format!("nb-{i}"), "type": "Notebook"}))
                        .send()
                        .await
                        .expect("create item");
                    assert_eq!(r.status().as_u16(), 201);
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    println!(
        "populated {workspaces} workspaces x {items} items in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

async fn get(base: &str, seconds: u64, connections: usize) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .expect("client");
    let list: Value = http
        .get(format!("{base}/v1/workspaces"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("list body");
    let id = list["value"][0]["id"]
        .as_str()
        .expect("a workspace exists")
        .to_string();
    let url = format!("{base}/v1/workspaces/{id}");
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (http, url, done) = (http.clone(), url.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let r = http.get(&url).bearer_auth(TOKEN).send().await.expect("get");
                assert_eq!(r.status().as_u16(), 200);
                r.bytes().await.expect("body");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let n = done.load(Ordering::Relaxed);
    println!(
        "{n} requests in {seconds}s: {:.0} req/s",
        n as f64 / seconds as f64
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage =
        "usage: loadgen URL populate WORKSPACES ITEMS | loadgen URL get SECONDS CONNECTIONS";
    let (Some(base), Some(cmd), Some(a), Some(b)) =
        (args.get(1), args.get(2), args.get(3), args.get(4))
    else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let num = |s: &str| -> u64 {
        s.parse().unwrap_or_else(|_| {
            eprintln!("not a number: '{s}'\n{usage}");
            std::process::exit(2)
        })
    };
    match cmd.as_str() {
        "populate" => populate(base, num(a) as usize, num(b) as usize).await,
        "get" => get(base, num(a), num(b) as usize).await,
        other => {
            eprintln!("unknown command '{other}'\n{usage}");
            std::process::exit(2);
        }
    }
}
