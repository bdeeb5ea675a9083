//! The deployment benchmark (`cargo xtask bench`): the release `fabrik` binary deploys to the
//! emulator running as its own process, with fabrik's default settings unless a case says
//! otherwise.
//!
//! 1. 200 workspaces × (3 lakehouses, 10 principals), the emulator throttled at 25, 100 and 400
//!    requests/s per principal, fabrik given **no** `--rate-limit`: wall time against requests ÷
//!    rate (bar ≤ 1.2), 429 answers, and no resource failed;
//! 2. the same, throttling off, LRO delay 0: API calls per second end to end, peak RSS;
//! 3. the second, no-op apply of the same config: its wall time and that it writes nothing;
//! 4. one workspace with 300 items (lakehouses and notebooks in 10 folders), every create a
//!    long-running operation of 50 ms (`--create-mode 202 --lro-delay 50`):
//!    the default `--concurrency` against `--concurrency 1` (bar: ≥ 5× faster);
//! 5. the unthrottled deployment with local and with Azure Blob state (Azurite), alternating
//!    (bar: Azure within 1.2× of local); writes `docs/benchmarks/deploy-state.md`;
//! 6. a short deploy (about 250 requests) throttled at a rate fabrik is not told, ten runs
//!    (bar: median ≤ 1.1 × accepted requests ÷ rate, worst ≤ 1.25);
//! 7. the 200 workspaces by one runner and by four runners at once (`--shard I/4`), each its
//!    own identity, state in Azure Blob (bar: each workspace once, wall ≤ 0.35 × one runner's);
//! 8. an estate with content: 1,000 workspaces, each publishing a generated 50-item repository,
//!    deployed once (unthrottled), then a no-op `plan --refresh=false` against the emulator's
//!    Fabric-like profile with one identity's quota (bar: wall ≤ 1.1 × requests ÷ quota,
//!    requests ≤ 5 per workspace, peak RSS < 500 MB); writes `docs/benchmarks/deploy-estate.md`.
//!
//! Every run must succeed, or the benchmark fails; a missed bar fails it after the documents
//! are written. Writes `docs/benchmarks/deploy.md` when cases 1–4, 6 and 7 ran; `deploy-bench throttled|unthrottled|items|pacing|shards|state|estate` runs one, and `deploy-bench
//! compare OTHER_FABRIK` times this build against another on the unthrottled case. Run from the
//! workspace root after a release build.

#![allow(clippy::print_stdout, reason = "a benchmark reports to the terminal")]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[path = "../bench_doc.rs"]
mod bench_doc;
use bench_doc::{Bar, Provenance, bars_section};

const WORKSPACES: usize = 200;

fn config() -> String {
    config_of(WORKSPACES)
}

/// `workspaces` workspaces × (3 lakehouses, 10 principals): about 14 requests each.
fn config_of(workspaces: usize) -> String {
    let mut y = String::from("project: {name: bench, prefix: bench}\nworkspaces:\n");
    for w in 0..workspaces {
        let _ = writeln!(y, "  - name: w{w:03}\n    lakehouses:");
        for l in 0..3 {
            let _ = writeln!(y, "      - name: LH_{w}_{l}");
        }
        y.push_str("    principals:\n");
        for p in 0..10 {
            let _ = writeln!(
                y,
                "      - {{id: 00000000-0000-4000-8000-{w:06}{p:06}, role: Viewer, type: Group}}"
            );
        }
    }
    y
}

/// One workspace, 10 folders, 150 lakehouses and 150 notebooks spread over them.
fn items_config(dir: &Path) -> String {
    let mut y = String::from(
        "project: {name: items, prefix: items}\nworkspaces:\n  - name: big\n    folders:\n",
    );
    for f in 0..10 {
        let _ = writeln!(y, "      - f{f}");
    }
    y.push_str("    lakehouses:\n");
    for i in 0..150 {
        let _ = writeln!(y, "      - {{name: LH_{i:03}, folder: f{}}}", i % 10);
    }
    y.push_str("    notebooks:\n");
    for i in 0..150 {
        let file = dir.join(format!("nb{i}.py"));
        std::fs::write(&file, format!("# Fabric notebook source\nprint({i})\n")).unwrap();
        let _ = writeln!(
            y,
            "      - {{name: NB_{i:03}, folder: f{}, file: {}}}",
            i % 10,
            file.display()
        );
    }
    y
}

struct Emulator {
    _child: Child,
    base: String,
}

async fn emulator(bin: &Path, extra: &[&str]) -> Emulator {
    let mut child = Command::new(bin)
        .args(["emulator", "--port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the emulator");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("emulator printed its address");
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.trim().to_string();
        }
    };
    Emulator {
        _child: child,
        base,
    }
}

async fn token(base: &str) -> String {
    token_for(base, "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f").await
}

/// A token of the service principal `principal`: each identity has its own quota.
async fn token_for(base: &str, principal: &str) -> String {
    let body = serde_json::json!({"principalId": principal, "principalType": "ServicePrincipal", "lifetimeSeconds": 86400});
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/_emulator/token"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["accessToken"].as_str().unwrap().to_string()
}

async fn requests(base: &str) -> (usize, usize, usize) {
    let v: serde_json::Value = reqwest::get(format!("{base}/_emulator/requests"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = v["requests"].as_array().cloned().unwrap_or_default();
    let dropped = v["dropped"].as_u64().unwrap_or(0) as usize;
    let writes = list.iter().filter(|r| r["method"] != "GET").count();
    let throttled = list.iter().filter(|r| r["status"] == 429).count();
    (list.len() + dropped, writes, throttled)
}

struct Run {
    wall: Duration,
    peak_rss_kb: u64,
    ok: bool,
    code: Option<i32>,
}

/// Runs `fabrik apply`, sampling its peak RSS (VmHWM) while it runs.
async fn apply(
    bin: &Path,
    config: &Path,
    base: &str,
    token: &str,
    state: &Path,
    extra: &[&str],
) -> Run {
    let mut args = vec!["apply"];
    args.extend_from_slice(extra);
    command_run(bin, &args, config, base, token, state).await
}

/// Runs `fabrik ARGS` on `config`, sampling its peak RSS (VmHWM) while it runs.
async fn command_run(
    bin: &Path,
    args: &[&str],
    config: &Path,
    base: &str,
    token: &str,
    state: &Path,
) -> Run {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .arg("--config")
        .arg(config)
        .args(["--base-url", &format!("{base}/v1")])
        .arg("--state-dir")
        .arg(state)
        .env("FABRIC_TOKEN", token)
        .env("FABRIK_LOG", "off")
        .stdout(Stdio::null())
        // Progress lines go to stderr; the run's exit status says whether it succeeded.
        .stderr(Stdio::null())
        .spawn()
        .expect("start fabrik");
    let pid = child.id().unwrap();
    let mut peak = 0;
    let status = loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:"));
        if let Some(kb) =
            hwm.and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kb);
        }
        tokio::select! {
            s = child.wait() => break s.unwrap(),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    };
    Run {
        wall: started.elapsed(),
        peak_rss_kb: peak,
        ok: status.success(),
        code: status.code(),
    }
}

/// Case 5: the 200-workspace deployment with journals in the local directory and with
/// journals and the lock in Azure Blob Storage (Azurite), alternating so machine load affects
/// both alike; throttled as in case 1 (the benchmark's bar) and unthrottled (the worst case for
/// journal latency). Returns the document and its bar (the throttled case's ratio).
async fn state_backends(bin: &Path, dir: &Path, config_path: &Path) -> (String, Vec<Bar>) {
    let provenance = Provenance::start(
        &std::env::current_dir().unwrap(),
        "cargo xtask bench --deploy-only",
    );
    let azurite = fabrik_state_azure::azurite::Azurite::start();
    let mut bars = Vec::new();
    let mut md = format!(
        "One case alone: `target/release/deploy-bench state` after `cargo build --release -p fabrik-cli -p fabrik-tests --bins`. {WORKSPACES} workspaces × (3 lakehouses, 10 principals), `--concurrency 16`; fabrik, the emulator and Azurite (in memory, 127.0.0.1) are separate processes on this 2-core machine. Local: journals fsync'd in the state directory. Azure: `--state http://127.0.0.1:PORT/devstoreaccount1/CONTAINER?SAS`, so the run also takes, renews and releases a lease per workspace it writes, and every journal group commit is an acknowledged append-block. Runs alternate local/Azure, each on a fresh emulator.\n"
    );
    let cases: [(&str, &[&str], &[&str], usize); 2] = [
        (
            "Throttled at 100 requests/s per principal, `--rate-limit 100` (case 1's setting; bar: median Azure ≤ 1.2 × median local)",
            &["--throttle", "100/100"],
            &["--rate-limit", "100"],
            2,
        ),
        (
            "Throttling off, LRO delay 0 (case 2's setting: no Fabric latency to hide the journal's)",
            &["--lro-delay", "0"],
            &[],
            3,
        ),
    ];
    for (n, (title, emu_args, run_args, runs)) in cases.iter().enumerate() {
        let mut local = Vec::new();
        let mut azure = Vec::new();
        for i in 0..*runs {
            for backend in ["local", "azure"] {
                let emu = emulator(bin, emu_args).await;
                let tok = token(&emu.base).await;
                let state = dir.join(format!("state-{n}-{backend}-{i}"));
                let url = azurite.url_with_sas(&format!("bench{n}x{i}"));
                let mut extra: Vec<&str> = run_args.to_vec();
                if backend == "azure" {
                    extra.extend(["--state", url.as_str()]);
                }
                let run = apply(bin, config_path, &emu.base, &tok, &state, &extra).await;
                assert!(run.ok, "the {backend} run {i} of case 5.{n} failed");
                let (total, _, _) = requests(&emu.base).await;
                println!(
                    "state 5.{n} {backend} run {i}: {total} requests in {:.2}s",
                    run.wall.as_secs_f64()
                );
                match backend {
                    "local" => local.push(run.wall.as_secs_f64()),
                    _ => azure.push(run.wall.as_secs_f64()),
                }
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            if v.len().is_multiple_of(2) {
                (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
            } else {
                v[v.len() / 2]
            }
        };
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.2} s"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (l, a) = (median(&mut local), median(&mut azure));
        println!(
            "state 5.{n}: local median {l:.2}s, azure median {a:.2}s, ratio {:.3}",
            a / l
        );
        let _ = write!(
            md,
            "\n## 5.{} {title}\n\n| backend | runs (wall) | median |\n|---|---|---|\n| local directory | {} | {l:.2} s |\n| Azure Blob (Azurite) | {} | {a:.2} s |\n\nRatio Azure ÷ local: **{:.3}** (Azure adds {:.2} s)\n",
            n + 1,
            list(&local),
            list(&azure),
            a / l,
            a - l
        );
        if n == 0 {
            bars.push(Bar::new(
                "200 workspaces with journals and locks in Azure Blob (Azurite) vs local, throttled at 100/s",
                "median ≤ 1.2 × local",
                format!("{:.3} ({a:.2} s vs {l:.2} s)", a / l),
                a / l <= 1.2,
            ));
        }
    }
    md.push_str(
        "\nReading: with Fabric's own pace (5.1) the journal's round trips hide behind the calls and the two backends are alike. Without it (5.2), each run is well under a second and the figure is set by how long one durable group commit takes: an acknowledged append-block to Azurite (one per group, up to 16 records each) against an fsync on a disk other work may be writing to, so it swings either way with the load.\n\n",
    );
    md.push_str(&bars_section(&bars));
    let doc = format!(
        "# Deployment benchmark: state backends\n\n{}\n{md}",
        provenance.finish()
    );
    (doc, bars)
}

/// `deploy-bench compare OTHER`: the unthrottled case with this build's `fabrik` and another
/// build's (e.g. the engine before a change), alternating, eight runs each against fresh
/// emulators, both at `--concurrency 16`; prints every wall time and the medians.
async fn compare(bin: &Path, other: &Path, dir: &Path, config: &Path) {
    let mut walls: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for i in 0..8 {
        for (k, b) in [other, bin].into_iter().enumerate() {
            let emu = emulator(bin, &["--lro-delay", "0"]).await;
            let tok = token(&emu.base).await;
            let state = dir.join(format!("cmp-{k}-{i}"));
            let run = apply(b, config, &emu.base, &tok, &state, &["--concurrency", "16"]).await;
            check(&run, "compared apply");
            walls[k].push(run.wall.as_secs_f64());
        }
    }
    for (name, mut w) in ["other", "this"].into_iter().zip(walls) {
        w.sort_by(f64::total_cmp);
        println!("{name}: median {:.3}s of {w:.3?}", w[w.len() / 2]);
    }
}

fn check(run: &Run, what: &str) {
    assert!(
        run.ok,
        "{what}: the fabrik run failed, so its figures mean nothing"
    );
}

/// A case's section of the document and its bars.
type Section = (String, Vec<Bar>);

/// Case 1: throttled at three rates, no `--rate-limit`.
async fn throttled(bin: &Path, dir: &Path, config_path: &Path) -> Section {
    let mut md = format!(
        "## 1. Throttled, fabrik given no `--rate-limit`\n\n{WORKSPACES} workspaces × (3 lakehouses, 10 principals). The emulator's bucket per principal holds one second of requests (burst = rate). fabrik finds the rate from the 429s it gets (crates/resilience/src/rate.rs).\n\n| rate | requests | wall | requests ÷ rate | ratio (bar ≤ 1.2) | 429 answers | run succeeded |\n|---|---|---|---|---|---|---|\n"
    );
    let mut measured = Vec::new();
    let mut met = true;
    for rate in [100u32, 25, 400] {
        let emu = emulator(bin, &["--throttle", &format!("{rate}/{rate}")]).await;
        let tok = token(&emu.base).await;
        let state = dir.join(format!("runs-throttled-{rate}"));
        let run = apply(bin, config_path, &emu.base, &tok, &state, &[]).await;
        let (total, _, throttled) = requests(&emu.base).await;
        let minimum = total as f64 / f64::from(rate);
        let ratio = run.wall.as_secs_f64() / minimum;
        println!(
            "throttled at {rate}/s: {total} requests in {:.1}s; minimum {minimum:.1}s; ratio {ratio:.3}; 429s {throttled}; ok {}",
            run.wall.as_secs_f64(),
            run.ok
        );
        check(&run, "throttled apply");
        let _ = writeln!(
            md,
            "| {rate}/s | {total} | {:.1} s | {minimum:.1} s | {ratio:.3} | {throttled} | {} |",
            run.wall.as_secs_f64(),
            run.ok
        );
        measured.push(format!("{rate}/s: {ratio:.3} ({throttled} answers of 429)"));
        met &= ratio <= 1.2;
    }
    let bars = vec![Bar::new(
        "200 workspaces throttled per principal, **no `--rate-limit`**",
        "wall ≤ 1.2 × requests ÷ rate, no failures",
        measured.join("; "),
        met,
    )];
    (md, bars)
}

/// Cases 2 and 3: unthrottled, then the no-op second apply.
async fn unthrottled(bin: &Path, dir: &Path, config_path: &Path) -> Section {
    let emu = emulator(bin, &["--lro-delay", "0"]).await;
    let tok = token(&emu.base).await;
    let state = dir.join("runs2");
    let run = apply(bin, config_path, &emu.base, &tok, &state, &[]).await;
    let (total, _, _) = requests(&emu.base).await;
    let rate = total as f64 / run.wall.as_secs_f64();
    let rss_mb = run.peak_rss_kb as f64 / 1024.0;
    println!(
        "unthrottled: {total} requests in {:.2}s = {rate:.0}/s; peak RSS {rss_mb:.1} MB; ok {}",
        run.wall.as_secs_f64(),
        run.ok
    );
    check(&run, "unthrottled apply");
    let mut md = format!(
        "## 2. Throttling off, LRO delay 0\n\n| requests | wall | API calls/s (bar ≥ 2,000) | fabrik peak RSS (bar < 100 MB) | run succeeded |\n|---|---|---|---|---|\n| {total} | {:.2} s | {rate:.0} | {rss_mb:.1} MB | {} |\n\n",
        run.wall.as_secs_f64(),
        run.ok
    );
    let _ = reqwest::Client::new()
        .delete(format!("{}/_emulator/requests", emu.base))
        .send()
        .await;
    let again = apply(bin, config_path, &emu.base, &tok, &state, &[]).await;
    let (reads, writes, _) = requests(&emu.base).await;
    let wall = again.wall.as_secs_f64();
    println!(
        "no-op apply: {reads} requests ({writes} writes) in {wall:.2}s; ok {}",
        again.ok
    );
    check(&again, "no-op apply");
    let _ = writeln!(
        md,
        "## 3. Second, no-op apply\n\n| requests | writes | wall (bar < 2 s) | run succeeded |\n|---|---|---|---|\n| {reads} | {writes} | {wall:.2} s | {} |\n",
        again.ok
    );
    let bars = vec![
        Bar::new(
            "200 workspaces, no throttling",
            "≥ 2,000 calls/s, peak RSS < 100 MB",
            format!("{rate:.0} calls/s, {rss_mb:.1} MB"),
            rate >= 2000.0 && rss_mb < 100.0,
        ),
        Bar::new(
            "second, no-op apply",
            "one read pass, no writes, < 2 s",
            format!("{reads} reads, {writes} writes, {wall:.2} s"),
            writes == 0 && wall < 2.0,
        ),
    ];
    (md, bars)
}

/// Case 4: one workspace of 300 items, default concurrency against 1.
async fn items(bin: &Path, dir: &Path) -> Section {
    let items_path = dir.join("items.yaml");
    std::fs::write(&items_path, items_config(dir)).unwrap();
    let mut walls = Vec::new();
    for concurrency in [None, Some("1")] {
        let emu = emulator(bin, &["--lro-delay", "50", "--create-mode", "202"]).await;
        let tok = token(&emu.base).await;
        let state = dir.join(format!("runs-items-{concurrency:?}"));
        let extra: Vec<&str> = concurrency
            .map(|c| vec!["--concurrency", c])
            .unwrap_or_default();
        let run = apply(bin, &items_path, &emu.base, &tok, &state, &extra).await;
        let (total, _, _) = requests(&emu.base).await;
        println!(
            "300 items, concurrency {}: {total} requests in {:.2}s; ok {}",
            concurrency.unwrap_or("default"),
            run.wall.as_secs_f64(),
            run.ok
        );
        check(&run, "300-item apply");
        walls.push((total, run.wall.as_secs_f64()));
    }
    let speedup = walls[1].1 / walls[0].1;
    println!("speed-up {speedup:.1}x");
    let md = format!(
        "## 4. One workspace, 300 items in 10 folders, every create a 50 ms long-running operation\n\n| `--concurrency` | requests | wall |\n|---|---|---|\n| default ({DEFAULT_CONCURRENCY}) | {} | {:.2} s |\n| 1 | {} | {:.2} s |\n\nSpeed-up {speedup:.1}× (bar ≥ 5×).\n\n",
        walls[0].0, walls[0].1, walls[1].0, walls[1].1
    );
    let bars = vec![Bar::new(
        "one workspace, 300 items, 50 ms LROs: default concurrency vs 1",
        "≥ 5× faster",
        format!("{speedup:.1}× ({:.1} s vs {:.1} s)", walls[0].1, walls[1].1),
        speedup >= 5.0,
    )];
    (md, bars)
}

/// Workspaces of the short deploy of case 6: about 250 requests.
const PACING_WORKSPACES: usize = 18;
/// The rate case 6 throttles at, which fabrik is not told.
const PACING_RATE: u32 = 25;
/// Runs of case 6.
const PACING_RUNS: usize = 10;

/// Case 6: a short deploy (about 250 requests) against a rate fabrik is not told, ten runs,
/// each on a fresh emulator: wall time against the accepted requests ÷ rate.
async fn pacing(bin: &Path, dir: &Path) -> Section {
    let config_path = dir.join("pacing.yaml");
    std::fs::write(&config_path, config_of(PACING_WORKSPACES)).unwrap();
    let rate = f64::from(PACING_RATE);
    let mut md = format!(
        "## 6. Adaptive pacing at an unknown rate: a short deploy, {PACING_RUNS} runs\n\n{PACING_WORKSPACES} workspaces × (3 lakehouses, 10 principals), the emulator throttled at {PACING_RATE} requests/s per principal (bucket of one second), fabrik given no `--rate-limit`; each run on a fresh emulator. The ratio divides the wall time by the requests the emulator accepted (429 answers left out) ÷ rate: the least time the work can take.\n\n| run | requests accepted | 429 answers | wall | accepted ÷ rate | ratio |\n|---|---|---|---|---|---|\n"
    );
    let mut ratios = Vec::new();
    for i in 0..PACING_RUNS {
        let emu = emulator(
            bin,
            &["--throttle", &format!("{PACING_RATE}/{PACING_RATE}")],
        )
        .await;
        let tok = token(&emu.base).await;
        let state = dir.join(format!("runs-pacing-{i}"));
        let run = apply(bin, &config_path, &emu.base, &tok, &state, &[]).await;
        check(&run, "short throttled apply");
        let (total, _, throttled) = requests(&emu.base).await;
        let accepted = total - throttled;
        let minimum = accepted as f64 / rate;
        let ratio = run.wall.as_secs_f64() / minimum;
        println!(
            "pacing run {i}: {accepted} accepted, {throttled} 429s in {:.2}s; ratio {ratio:.3}",
            run.wall.as_secs_f64()
        );
        let _ = writeln!(
            md,
            "| {} | {accepted} | {throttled} | {:.2} s | {minimum:.2} s | {ratio:.3} |",
            i + 1,
            run.wall.as_secs_f64()
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    let median = (ratios[PACING_RUNS / 2 - 1] + ratios[PACING_RUNS / 2]) / 2.0;
    let worst = ratios[PACING_RUNS - 1];
    let _ = writeln!(md, "\nMedian {median:.3}, worst {worst:.3}.\n");
    let bars = vec![Bar::new(
        "adaptive pacing at an unknown rate, a short deploy (~250 requests), 10 runs",
        "median ≤ 1.1 × requests ÷ rate, worst ≤ 1.25",
        format!("median {median:.3}, worst {worst:.3}"),
        median <= 1.1 && worst <= 1.25,
    )];
    (md, bars)
}

/// Runners of case 7, each its own identity.
const RUNNERS: usize = 4;
/// The per-identity rate of case 7.
const SHARD_RATE: u32 = 100;

/// How many workspaces of each name the emulator holds: exactly once each is the bar.
async fn workspace_names(base: &str, token: &str) -> std::collections::BTreeMap<String, usize> {
    let v: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/v1/workspaces"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut names = std::collections::BTreeMap::new();
    for w in v["value"].as_array().into_iter().flatten() {
        *names
            .entry(w["displayName"].as_str().unwrap_or("").to_string())
            .or_insert(0) += 1;
    }
    assert!(
        v["continuationToken"].is_null(),
        "list workspaces in one page (--page-size)"
    );
    names
}

/// Case 7: the 200 workspaces by one runner, then by four runners at once (`--shard I/4`),
/// each its own identity with its own quota, journals and locks in Azure Blob (Azurite).
async fn shards(bin: &Path, dir: &Path, config_path: &Path) -> Section {
    let azurite = fabrik_state_azure::azurite::Azurite::start();
    let throttle = format!("{SHARD_RATE}/{SHARD_RATE}");
    let emu_args = ["--throttle", throttle.as_str(), "--page-size", "1000"];
    let emu = emulator(bin, &emu_args).await;
    let tok = token(&emu.base).await;
    let url = azurite.url_with_sas("shards-one");
    let one = apply(
        bin,
        config_path,
        &emu.base,
        &tok,
        &dir.join("shards-one"),
        &["--state", &url],
    )
    .await;
    check(&one, "one runner");
    drop(emu);

    let emu = emulator(bin, &emu_args).await;
    let url = azurite.url_with_sas("shards-four");
    let started = Instant::now();
    let mut runners = Vec::new();
    for i in 1..=RUNNERS {
        let tok = token_for(
            &emu.base,
            &format!("6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e{i:02}"),
        )
        .await;
        let (bin, config, base, url) = (
            bin.to_path_buf(),
            config_path.to_path_buf(),
            emu.base.clone(),
            url.clone(),
        );
        let state = dir.join(format!("shards-{i}"));
        runners.push(tokio::spawn(async move {
            let shard = format!("{i}/{RUNNERS}");
            apply(
                &bin,
                &config,
                &base,
                &tok,
                &state,
                &["--state", &url, "--shard", &shard],
            )
            .await
        }));
    }
    for r in runners {
        check(&r.await.unwrap(), "a shard's runner");
    }
    let four = started.elapsed().as_secs_f64();
    let names = workspace_names(&emu.base, &token(&emu.base).await).await;
    let once = names.len() == WORKSPACES && names.values().all(|&n| n == 1);
    let ratio = four / one.wall.as_secs_f64();
    println!(
        "shards: one runner {:.2}s, {RUNNERS} runners {four:.2}s, ratio {ratio:.3}; {} workspaces, each once: {once}",
        one.wall.as_secs_f64(),
        names.len()
    );
    let md = format!(
        "## 7. {RUNNERS} runners, {RUNNERS} identities, one environment\n\nThe {WORKSPACES} workspaces of case 1, the emulator throttled at {SHARD_RATE} requests/s per identity, journals and locks in Azure Blob (Azurite): one runner deploys them all; then, on a fresh emulator, {RUNNERS} runners at once, each `fabrik apply --shard I/{RUNNERS}` with its own service principal.\n\n| runners | wall | workspaces deployed | each exactly once |\n|---|---|---|---|\n| 1 | {:.2} s | {WORKSPACES} | yes |\n| {RUNNERS} | {four:.2} s | {} | {} |\n\nRatio {ratio:.3} (bar ≤ 0.35).\n\n",
        one.wall.as_secs_f64(),
        names.len(),
        if once { "yes" } else { "**no**" }
    );
    let bars = vec![Bar::new(
        "4 runners with 4 identities, `--shard I/4`, 200 workspaces, Azure Blob state on Azurite",
        "every workspace deployed exactly once; wall ≤ 0.35 × one runner's",
        format!(
            "{ratio:.3} ({four:.2} s vs {:.2} s); each once: {}",
            one.wall.as_secs_f64(),
            if once { "yes" } else { "no" }
        ),
        once && ratio <= 0.35,
    )];
    (md, bars)
}

/// Writes `docs/benchmarks/{name}.md`; false when a bar was missed.
fn write_doc(root: &Path, name: &str, doc: &str, bars: &[Bar]) -> bool {
    std::fs::create_dir_all(root.join("docs/benchmarks")).unwrap();
    std::fs::write(root.join(format!("docs/benchmarks/{name}.md")), doc).unwrap();
    let missed: Vec<&str> = bars
        .iter()
        .filter(|b| !b.met)
        .map(|b| b.what.as_str())
        .collect();
    if !missed.is_empty() {
        println!(
            "bar(s) missed, figures written to docs/benchmarks/{name}.md: {}",
            missed.join("; ")
        );
    }
    missed.is_empty()
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let root = std::env::current_dir().unwrap();
    let bin: PathBuf = root.join("target/release/fabrik");
    assert!(
        bin.is_file(),
        "build first: cargo build --release -p fabrik-cli"
    );
    let only: Option<String> = std::env::args().nth(1);
    let wants = |case: &str| only.as_deref().is_none_or(|o| o == case);
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("fabrik.yaml");
    std::fs::write(&config_path, config()).unwrap();
    if only.as_deref() == Some("compare") {
        let other = PathBuf::from(
            std::env::args()
                .nth(2)
                .expect("compare OTHER_FABRIK_BINARY"),
        );
        compare(&bin, &other, dir.path(), &config_path).await;
        return std::process::ExitCode::SUCCESS;
    }
    let provenance = Provenance::start(&root, "cargo xtask bench --deploy-only");
    let mut sections = Vec::new();
    if wants("throttled") {
        sections.push(throttled(&bin, dir.path(), &config_path).await);
    }
    if wants("unthrottled") {
        sections.push(unthrottled(&bin, dir.path(), &config_path).await);
    }
    if wants("items") {
        sections.push(items(&bin, dir.path()).await);
    }
    if wants("pacing") {
        sections.push(pacing(&bin, dir.path()).await);
    }
    if wants("shards") {
        sections.push(shards(&bin, dir.path(), &config_path).await);
    }
    let mut ok = true;
    if only.is_none() {
        let mut md = format!(
            "# Deployment benchmark\n\n{}\nOne case alone: `target/release/deploy-bench throttled|unthrottled|items|pacing|shards|state` after `cargo build --release -p fabrik-cli -p fabrik-tests --bins`. fabrik and the emulator are separate release processes on this machine; fabrik runs with its defaults (`--concurrency` {DEFAULT_CONCURRENCY}) unless a case says otherwise. Every run must succeed, or the benchmark fails.\n\n",
            provenance.finish()
        );
        let mut bars = Vec::new();
        for (text, b) in sections {
            md.push_str(&text);
            bars.extend(b);
        }
        md.push_str(&bars_section(&bars));
        ok &= write_doc(&root, "deploy", &md, &bars);
    }
    if wants("state") {
        let (doc, bars) = state_backends(&bin, dir.path(), &config_path).await;
        ok &= write_doc(&root, "deploy-state", &doc, &bars);
    }
    if wants("estate") {
        let (doc, bars) = estate(&root, &bin, dir.path()).await;
        ok &= write_doc(&root, "deploy-estate", &doc, &bars);
    }
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// Workspaces of case 8.
const ESTATE_WORKSPACES: usize = 1000;
/// Items of case 8's generated repository: notebooks, and pipelines that run them.
const ESTATE_NOTEBOOKS: usize = 40;
const ESTATE_PIPELINES: usize = 10;
/// Case 8's quota: calls per minute for the one identity, and the profile's time scale (the
/// same as `cargo xtask bench-publish --profile fabric`'s: 200 a minute, the low end of the
/// unified quota, 20 times faster).
const ESTATE_QUOTA: u32 = 200;
const ESTATE_TIME_SCALE: u32 = 20;

/// Writes case 8's repository into `dir`: `ESTATE_NOTEBOOKS` notebooks and `ESTATE_PIPELINES`
/// pipelines, each running a notebook by its logicalId (so its rendered definition holds the
/// id of an item the first deploy creates).
fn estate_repo(dir: &Path) {
    let platform = |t: &str, name: &str, logical: &str| {
        serde_json::json!({
            "$schema": "https://developer.microsoft.com/json-schemas/fabric/gitIntegration/platformProperties/2.0.0/schema.json",
            "metadata": {"type": t, "displayName": name},
            "config": {"version": "2.0", "logicalId": logical},
        })
        .to_string()
    };
    let logical = |k: usize| format!("0e57a7e0-0000-4000-8000-{k:012}");
    for n in 0..ESTATE_NOTEBOOKS {
        let d = dir.join(format!("NB_{n:02}.Notebook"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join(".platform"),
            platform("Notebook", &format!("NB_{n:02}"), &logical(n)),
        )
        .unwrap();
        std::fs::write(
            d.join("notebook-content.py"),
            format!(
                "# Fabric notebook source\n\n# CELL ********************\n\nprint('step {n}')\n"
            ),
        )
        .unwrap();
    }
    for p in 0..ESTATE_PIPELINES {
        let d = dir.join(format!("PL_{p:02}.DataPipeline"));
        std::fs::create_dir_all(&d).unwrap();
        let k = ESTATE_NOTEBOOKS + p;
        std::fs::write(
            d.join(".platform"),
            platform("DataPipeline", &format!("PL_{p:02}"), &logical(k)),
        )
        .unwrap();
        let content = serde_json::json!({"properties": {"activities": [{
            "name": "Run", "type": "TridentNotebook",
            "typeProperties": {"notebookId": logical(p), "workspaceId": "00000000-0000-0000-0000-000000000000"},
        }]}});
        std::fs::write(d.join("pipeline-content.json"), content.to_string()).unwrap();
    }
}

/// Stops an emulator started with `--state FILE` so that it saves its state (SIGINT), and
/// waits for it.
async fn save_and_stop(mut emu: Emulator) {
    let pid = emu._child.id().expect("the emulator runs");
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "signal the emulator");
    let status = emu._child.wait().await.unwrap();
    assert!(
        status.success(),
        "the emulator saved its state and exited: {status}"
    );
}

/// Case 8: 1,000 workspaces each publishing the generated 50-item repository, deployed once
/// against an unthrottled emulator that then saves its state; then a no-op
/// `plan --refresh=false` against the same state on the Fabric-like profile with one
/// identity's quota, fabrik not told the quota.
async fn estate(root: &Path, bin: &Path, dir: &Path) -> Section {
    let provenance = Provenance::start(
        root,
        "cargo xtask bench --deploy-only (deploy-bench estate)",
    );
    let repo = dir.join("repo50");
    estate_repo(&repo);
    let config_path = dir.join("estate.yaml");
    let mut y = String::from("project: {name: estate, prefix: estate}\nworkspaces:\n");
    for w in 0..ESTATE_WORKSPACES {
        let _ = writeln!(y, "  - name: e{w:04}\n    repository: {{path: repo50}}");
    }
    std::fs::write(&config_path, y).unwrap();
    let saved = dir.join("estate-emulator.json");
    let saved_arg = saved.to_str().unwrap().to_string();
    let state = dir.join("runs-estate");

    let emu = emulator(bin, &["--lro-delay", "0", "--state", &saved_arg]).await;
    let tok = token(&emu.base).await;
    let first = apply(bin, &config_path, &emu.base, &tok, &state, &[]).await;
    check(&first, "the estate's first apply");
    let (deployed, _, _) = requests(&emu.base).await;
    println!(
        "estate: first apply, {deployed} requests in {:.1}s",
        first.wall.as_secs_f64()
    );
    save_and_stop(emu).await;

    let (scale, quota) = (ESTATE_TIME_SCALE.to_string(), ESTATE_QUOTA.to_string());
    let emu = emulator(
        bin,
        &[
            "--state",
            &saved_arg,
            "--profile",
            "fabric",
            "--time-scale",
            &scale,
            "--quota",
            &quota,
        ],
    )
    .await;
    let tok = token(&emu.base).await;
    let plan = command_run(
        bin,
        &["plan", "--refresh=false", "--detailed-exitcode"],
        &config_path,
        &emu.base,
        &tok,
        &state,
    )
    .await;
    let (total, writes, throttled) = requests(&emu.base).await;
    let accepted = total - throttled;
    let rate = f64::from(ESTATE_QUOTA * ESTATE_TIME_SCALE) / 60.0;
    let minimum = (accepted as f64 - f64::from(ESTATE_QUOTA)).max(0.0) / rate;
    let wall = plan.wall.as_secs_f64();
    let ratio = wall / (accepted as f64 / rate);
    let per_ws = accepted as f64 / ESTATE_WORKSPACES as f64;
    let rss_mb = plan.peak_rss_kb as f64 / 1024.0;
    println!(
        "estate: no-op plan --refresh=false: {accepted} requests ({throttled} 429s, {writes} writes) in {wall:.1}s; ratio {ratio:.3}; {per_ws:.2}/workspace; peak RSS {rss_mb:.1} MB; exit {:?}",
        plan.code
    );
    // 0: the plan has no change (--detailed-exitcode says 2 when it has).
    assert_eq!(
        plan.code,
        Some(0),
        "the estate's no-op plan found changes or failed"
    );
    let md = format!(
        "# Estate benchmark: 1,000 workspaces with content, a no-op plan\n\n{}\nOne case alone: `target/release/deploy-bench estate` after `cargo build --release -p fabrik-cli -p fabrik-tests --bins`.\n\n**Estate**: {ESTATE_WORKSPACES} workspaces, each publishing (its `repository:`) one generated repository of {} items: {ESTATE_NOTEBOOKS} notebooks and {ESTATE_PIPELINES} pipelines, each pipeline running a notebook by its logicalId. Deployed once by `fabrik apply` against an unthrottled emulator ({deployed} requests, {:.1} s), which then saves its state.\n\n**Measured**: `fabrik plan --refresh=false --detailed-exitcode` with fabrik's defaults, the state directory the apply left (its deployed records hold each item's digest), against the emulator restarted on that state with the Fabric-like profile (`--profile fabric --time-scale {ESTATE_TIME_SCALE} --quota {ESTATE_QUOTA}`: Fabric's latencies from the recorded trace divided by {ESTATE_TIME_SCALE}; one identity's quota of {ESTATE_QUOTA} calls a minute — the low end of the unified quota — times {ESTATE_TIME_SCALE}, {rate:.1} calls/s after a first minute's allowance of {ESTATE_QUOTA}). fabrik is not told the quota. The plan must exit 0 (no change).\n\n| workspaces | requests accepted | per workspace | 429 answers | writes | wall | requests ÷ quota | ratio | least possible (burst spent) | peak RSS |\n|---|---|---|---|---|---|---|---|---|---|\n| {ESTATE_WORKSPACES} | {accepted} | {per_ws:.2} | {throttled} | {writes} | {wall:.1} s | {:.1} s | {ratio:.3} | {minimum:.1} s | {rss_mb:.1} MB |\n\n",
        provenance.finish(),
        ESTATE_NOTEBOOKS + ESTATE_PIPELINES,
        first.wall.as_secs_f64(),
        accepted as f64 / rate,
    );
    let bars = vec![Bar::new(
        "estate no-op plan with content: 1,000 workspaces × 50 items, one identity, Fabric-like profile",
        "wall ≤ 1.1 × requests ÷ quota, requests ≤ 5 per workspace, peak RSS < 500 MB",
        format!("{ratio:.3}, {per_ws:.2} per workspace, {rss_mb:.1} MB"),
        ratio <= 1.1 && per_ws <= 5.0 && rss_mb < 500.0 && writes == 0,
    )];
    let mut md = md;
    md.push_str(&bars_section(&bars));
    (md, bars)
}

/// fabrik's default `--concurrency` (crates/deployer-cli/src/main.rs), shown in the report.
const DEFAULT_CONCURRENCY: usize = 16;
