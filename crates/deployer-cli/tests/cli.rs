//! The `fabrik` binary against the in-process emulator: broken inputs send no request, and a
//! run killed with SIGKILL is undone by `fabrik rollback RUN_ID`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use fabrik_emulator::{Emulator, EmulatorConfig, FaultConfig};

fn fabrik() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fabrik"));
    c.env_remove("FABRIC_API_BASE_URL")
        .env("FABRIK_LOG", "off")
        .stdin(Stdio::null());
    c
}

/// An emulator with default settings and a token for a service principal on it.
async fn emulator_as_service_principal() -> (Emulator, String) {
    let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let token = emu.mint_token_as(
        "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "ServicePrincipal",
        Duration::from_secs(3600),
    );
    (emu, token)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken")
}

async fn log(emu: &Emulator) -> Vec<serde_json::Value> {
    let v: serde_json::Value = reqwest::get(format!("{}/_emulator/requests", emu.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["requests"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_inputs_give_their_documented_errors_and_send_no_request() {
    let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let token = emu.mint_token(
        "9117cbfa-f0a7-43b7-846f-96ba66a3c1c0",
        Duration::from_secs(3600),
    );
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 8);
    for config in cases {
        let state = tempfile::tempdir().unwrap();
        let out = fabrik()
            .args(["apply", "--config"])
            .arg(&config)
            .args(["--base-url", &format!("{}/v1", emu.base_url())])
            .arg("--state-dir")
            .arg(state.path())
            .env("FABRIC_TOKEN", &token)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{}: {stderr}", config.display());
        let expected = std::fs::read_to_string(config.with_extension("expected")).unwrap();
        for line in expected.lines().filter(|l| !l.is_empty()) {
            assert!(
                stderr.contains(line),
                "{}: expected '{line}' in:\n{stderr}",
                config.display()
            );
        }
        assert!(stderr.contains("nothing was deployed"), "{stderr}");
        // Errors come with a caret under the column.
        if !config.ends_with("bad-yaml.yaml") {
            assert!(stderr.contains(" | ") && stderr.contains('^'), "{stderr}");
        }
    }
    assert_eq!(
        log(&emu).await,
        Vec::<serde_json::Value>::new(),
        "no request may be sent"
    );
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_way_is_undone_by_rollback_run_id() {
    // Every write is slowed, so the run is still going when it is killed.
    let faults: FaultConfig = "writes:latency=40ms".parse().unwrap();
    let emu = Emulator::start(EmulatorConfig {
        faults,
        ..Default::default()
    })
    .await
    .unwrap();
    let token = emu.mint_token_as(
        "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "ServicePrincipal",
        Duration::from_secs(3600),
    );
    let state_url = format!("{}/_emulator/state", emu.base_url());
    let before: serde_json::Value = reqwest::get(&state_url)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fabrik.yaml");
    let base = format!("{}/v1", emu.base_url());
    let mut child = fabrik()
        .args(["apply", "--config"])
        .arg(&examples)
        .args(["--base-url", &base, "--concurrency", "1"])
        .arg("--state-dir")
        .arg(dir.path())
        .env("FABRIC_TOKEN", &token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the run to be well under way (this waits on the other process, not a timer).
    let mut writes = 0;
    for _ in 0..6000 {
        writes = log(&emu)
            .await
            .iter()
            .filter(|r| r["method"] != "GET" && r["status"].as_u64() < Some(300))
            .count();
        if writes >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(writes >= 8, "the run did not get going");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let during: serde_json::Value = reqwest::get(&state_url)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(during, before, "the killed run left resources behind");

    let status = fabrik()
        .arg("status")
        .arg("--state-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&status.stdout);
    let run_id = listing
        .split_whitespace()
        .next()
        .expect("a run is listed")
        .to_string();
    assert!(
        listing.contains("Interrupted") || listing.contains("Active"),
        "{listing}"
    );

    let out = fabrik()
        .args(["rollback", &run_id, "--base-url", &base])
        .arg("--state-dir")
        .arg(dir.path())
        .env("FABRIC_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let after: serde_json::Value = reqwest::get(&state_url)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(live(after), live(before));

    // Rolling back again is harmless: everything is already undone.
    let again = fabrik()
        .args(["rollback", &run_id, "--base-url", &base])
        .arg("--state-dir")
        .arg(dir.path())
        .env("FABRIC_TOKEN", &token)
        .output()
        .unwrap();
    assert!(again.status.success());
    emu.shutdown().await.unwrap();
}

/// The emulator keeps soft-deleted items apart; compare what is live.
fn live(mut state: serde_json::Value) -> serde_json::Value {
    if let Some(o) = state.as_object_mut() {
        o.retain(|k, _| {
            !k.to_lowercase().contains("deleted") && !k.to_lowercase().contains("recycle")
        });
    }
    state
}

/// A SIGTERM while the first cycle runs waits for it: the cycle finishes and is committed,
/// and serve exits 0 (it used to install its handler only after the first cycle, so the
/// signal killed it mid-run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stopped_during_its_first_cycle_finishes_the_cycle_first() {
    let faults: FaultConfig = "writes:latency=150ms".parse().unwrap();
    let emu = Emulator::start(EmulatorConfig {
        faults,
        ..Default::default()
    })
    .await
    .unwrap();
    let token = emu.mint_token_as(
        "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "ServicePrincipal",
        Duration::from_secs(3600),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fabrik.yaml");
    std::fs::write(
        &config,
        "project: {name: s, prefix: s}\nworkspaces:\n  - name: one\n    lakehouses: [{name: LH_a}, {name: LH_b}, {name: LH_c}, {name: LH_d}]\n",
    )
    .unwrap();
    let runs = dir.path().join("runs");
    let mut serve = fabrik()
        .args(["serve", "--interval", "3600", "--listen", "127.0.0.1:0"])
        .args(["--concurrency", "1", "--config"])
        .arg(&config)
        .args(["--base-url", &format!("{}/v1", emu.base_url())])
        .arg("--state-dir")
        .arg(&runs)
        .env("FABRIC_TOKEN", &token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first cycle has started writing (this waits on the other process, not a timer).
    let mut writing = false;
    for _ in 0..6000 {
        writing = log(&emu).await.iter().any(|r| r["method"] != "GET");
        if writing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(writing, "serve never started its first cycle");
    let _ = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let stopped = serve.wait().unwrap();
    assert!(stopped.success(), "{stopped:?}");
    let state = emu.state().to_string();
    for lh in ["LH_a", "LH_b", "LH_c", "LH_d"] {
        assert!(state.contains(lh), "the cycle finished: {lh} missing");
    }
    let status = fabrik()
        .arg("status")
        .arg("--state-dir")
        .arg(&runs)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&status.stdout);
    assert!(listing.contains("Committed"), "{listing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reconciles_serves_probes_and_stops_on_sigterm() {
    use tokio::io::AsyncBufReadExt;
    let (emu, token) = emulator_as_service_principal().await;
    let (collector, received) = otlp_collector().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fabrik.yaml");
    // A secret reference: serve resolves it every cycle, as apply does.
    std::fs::write(
        &config,
        "project: {name: s, prefix: s}\nworkspaces:\n  - name: one\n    description: \"key ${secret:fabrik-test-api-key}\"\n",
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fabrik"))
        .env("FABRIK_TEST_API_KEY", "sk-serve-5d1e9a")
        .args([
            "serve",
            "--interval",
            "3600",
            "--listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&config)
        .args(["--base-url", &format!("{}/v1", emu.base_url())])
        .arg("--state-dir")
        .arg(dir.path().join("runs"))
        .env("FABRIC_TOKEN", &token)
        .env("FABRIK_LOG", "off")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .next_line()
        .await
        .unwrap()
        .expect("serve prints its address");
    let addr = line.rsplit(' ').next().unwrap().to_string();
    let names = || async {
        let v: serde_json::Value = reqwest::get(format!("{}/_emulator/state", emu.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v.to_string()
    };
    // The first reconciliation deploys the workspace (waiting on the other process).
    let mut deployed = false;
    for _ in 0..6000 {
        if names().await.contains("s-one-dev") {
            deployed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(deployed, "serve deployed the config");
    assert!(
        names().await.contains("key sk-serve-5d1e9a"),
        "the secret was resolved"
    );
    let ready = reqwest::get(format!("{addr}/health/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "healthy", "{body}");
    assert_eq!(
        reqwest::get(format!("{addr}/health/live"))
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = reqwest::get(format!("{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("fabrik_"), "{metrics}");

    // A change to the file is picked up without waiting for the interval.
    std::fs::write(
        &config,
        "project: {name: s, prefix: s}\nworkspaces:\n  - name: one\n  - name: two\n",
    )
    .unwrap();
    let mut redeployed = false;
    for _ in 0..6000 {
        if names().await.contains("s-two-dev") {
            redeployed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(redeployed, "serve re-applied the changed config");

    // SIGTERM stops it cleanly.
    let pid = child.id().unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("serve stops")
        .unwrap();
    assert!(status.success(), "{status:?}");
    // Each reconciliation is a root span of its own, with its plan under it.
    let spans = otlp_entries(&received, "traces", "Spans");
    let cycles: Vec<&serde_json::Value> = spans
        .iter()
        .filter(|s| s["name"] == "fabrik.reconcile")
        .collect();
    assert!(cycles.len() >= 2, "{spans:?}");
    assert!(
        cycles
            .iter()
            .all(|c| c["parentSpanId"].as_str().unwrap_or("").is_empty()),
        "{cycles:?}"
    );
    assert!(spans.iter().all(|s| s["name"] != "fabrik.run"), "{spans:?}");
    assert!(
        spans.iter().any(|s| s["name"] == "fabrik.plan"
            && cycles.iter().any(|c| c["spanId"] == s["parentSpanId"])),
        "{spans:?}"
    );
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_references_are_deployed_but_never_printed_or_journaled() {
    let (emu, token) = emulator_as_service_principal().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fabrik.yaml");
    std::fs::write(
        &config,
        "project: {name: s, prefix: s}\nworkspaces:\n  - name: one\n    description: \"key ${secret:fabrik-test-api-key}\"\n",
    )
    .unwrap();
    let secret = "sk-live-4f9c2a7e1b";
    let state = dir.path().join("runs");
    let run = |cmd: &str| {
        fabrik()
            .args([cmd, "--config"])
            .arg(&config)
            .args([
                "--base-url",
                &format!("{}/v1", emu.base_url()),
                "--output",
                "json",
            ])
            .arg("--state-dir")
            .arg(&state)
            .env("FABRIC_TOKEN", &token)
            .env("FABRIK_TEST_API_KEY", secret)
            .output()
            .unwrap()
    };
    for cmd in ["validate", "plan", "apply", "plan"] {
        let out = run(cmd);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{cmd}: {text}");
        assert!(!text.contains(secret), "{cmd} printed the secret: {text}");
    }
    // The value was deployed…
    let state_json: serde_json::Value = reqwest::get(format!("{}/_emulator/state", emu.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(state_json.to_string().contains(&format!("key {secret}")));
    // …and no journal holds it; the apply wrote one, so the check has something to read.
    let journals: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert!(!journals.is_empty(), "no journal in {}", state.display());
    for journal in journals {
        let text = std::fs::read_to_string(&journal).unwrap();
        // The workspace whose description holds the secret was journaled.
        assert!(
            text.contains(r#""undo":{"kind":"workspace","payload":{"op":"delete""#),
            "{text}"
        );
        assert!(
            !text.contains(secret),
            "{} holds the secret",
            journal.display()
        );
    }
    // A missing secret is an error at its reference naming where fabrik looked; nothing is sent.
    let out = fabrik()
        .args(["validate", "--config"])
        .arg(&config)
        .env_remove("FABRIK_TEST_API_KEY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("fabrik.yaml:4:23") && stderr.contains("fabrik-test-api-key"),
        "{stderr}"
    );
    emu.shutdown().await.unwrap();
}

#[test]
fn the_readme_main_command_deploys_the_examples_and_a_second_plan_is_empty() {
    let out = fabrik().arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("signed in as service principal"),
        "{stdout}"
    );
    assert!(stdout.contains("plan: 28 to create"), "{stdout}");
    assert!(stdout.contains("applied: 28 created"), "{stdout}");
    assert!(stdout.contains("second plan is empty"), "{stdout}");
    // Without a terminal, progress is a line per change on stderr; a summary table follows.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("  created lakehouse BRONZE_Sales_Lakehouse (contoso-sales-ingest-dev)"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("  created ").count(), 28, "{stderr}");
    assert!(
        stdout.contains("WORKSPACE                    CREATED  UPDATED  DELETED  EXISTED"),
        "{stdout}"
    );
    assert!(
        stdout.contains("contoso-sales-ingest-dev          12        0        0        0"),
        "{stdout}"
    );
}

/// Runs fabrik against the emulator with a token, in `dir`, returning (exit code, stdout, stderr).
fn run_in(emu: &Emulator, token: &str, dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = fabrik()
        .args(args)
        .arg("--config")
        .arg(dir.join("fabrik.yaml"))
        .args(["--base-url", &format!("{}/v1", emu.base_url())])
        .arg("--state-dir")
        .arg(dir.join("runs"))
        .env("FABRIC_TOKEN", token)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_exit_codes_no_rollback_report_file_and_destroy_confirmation() {
    let (emu, token) = emulator_as_service_principal().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("fabrik.yaml"),
        "project: {name: s, prefix: s}\nworkspaces:\n  - name: one\n    lakehouses: [{name: LH_one}]\n  - name: two\n    git: {provider: GitHub, owner: o, repository: r, branch: main, connection_id: 7d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a}\n",
    )
    .unwrap();

    // Changes pending: 2; --output json is a plan document.
    let (code, stdout, _) = run_in(
        &emu,
        &token,
        d,
        &["plan", "--detailed-exitcode", "--output", "json"],
    );
    assert_eq!(code, Some(2));
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["workspaces"].as_array().unwrap().len(), 2);
    // Invalid input is never "changes pending": a usage error and a broken config exit 4.
    let (code, _, stderr) = run_in(
        &emu,
        &token,
        d,
        &["plan", "--detailed-exitcode", "--no-such-option"],
    );
    assert_eq!(code, Some(4), "{stderr}");
    let (code, _, stderr) = run_in(
        &emu,
        &token,
        d,
        &["plan", "--detailed-exitcode", "--config", "missing.yaml"],
    );
    assert_eq!(code, Some(4), "{stderr}");
    // Markdown for a pull request: the table and the Mermaid graph.
    let (code, stdout, _) = run_in(&emu, &token, d, &["plan", "--output", "markdown"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("| workspace | create |") && stdout.contains("```mermaid"),
        "{stdout}"
    );

    // Workspace "two" has no capacity, so its git connect fails; --no-rollback keeps the rest.
    let report = d.join("report.json");
    let (code, _, stderr) = run_in(
        &emu,
        &token,
        d,
        &[
            "apply",
            "--no-rollback",
            "--concurrency",
            "1",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["result"]["errors"].as_array().unwrap().len(), 1, "{r}");
    assert!(
        r["result"]["rolled_back"].as_array().unwrap().is_empty(),
        "{r}"
    );
    assert_eq!(
        r["result"]["left_in_place"].as_array().unwrap().len(),
        4,
        "{r}"
    );
    let state = emu.state().to_string();
    assert!(
        state.contains("s-one-dev") && state.contains("LH_one") && state.contains("s-two-dev"),
        "{state}"
    );

    // Fix the config: drop git. Now plan has nothing left for "one"; after apply, exit code 0.
    std::fs::write(d.join("fabrik.yaml"), "project: {name: s, prefix: s}\nworkspaces:\n  - name: one\n    lakehouses: [{name: LH_one}]\n  - name: two\n").unwrap();
    let (code, stdout, _) = run_in(&emu, &token, d, &["plan", "--detailed-exitcode"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("plan: 0 to create, 0 to update"),
        "{stdout}"
    );

    // destroy asks first; with no terminal to answer, it refuses and removes nothing.
    let (code, _, stderr) = run_in(&emu, &token, d, &["destroy"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("pass --yes"), "{stderr}");
    assert!(emu.state().to_string().contains("s-one-dev"));
    // s-one-dev holds a lakehouse: its delete destroys data, refused without
    // --allow-data-loss (exit 4, the workspace named), and nothing is removed.
    let writes = |log: &[serde_json::Value]| log.iter().filter(|r| r["method"] != "GET").count();
    let before = writes(&log(&emu).await);
    let (code, _, stderr) = run_in(&emu, &token, d, &["destroy", "--yes"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        stderr.contains("workspace s-one-dev") && stderr.contains("lakehouse LH_one"),
        "{stderr}"
    );
    assert_eq!(writes(&log(&emu).await), before, "nothing was written");
    assert!(emu.state().to_string().contains("s-one-dev"));
    let (code, stdout, _) = run_in(&emu, &token, d, &["destroy", "--yes", "--allow-data-loss"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(!emu.state().to_string().contains("s-one-dev"));
    emu.shutdown().await.unwrap();
}

#[test]
fn flags_command_reports_values_sources_and_readiness_and_rejects_typos() {
    let out = fabrik()
        .args(["flags", "--feature", "retry_logic=off"])
        .env("FEATURE_USE_ROLLBACK", "no")
        .env("FEATURE_USE_CIRCUIT_BRAKER", "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("retry_logic      FEATURE_USE_RETRY_LOGIC      off   command line"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "rollback         FEATURE_USE_ROLLBACK         off   env FEATURE_USE_ROLLBACK"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("production ready: no"), "{stdout}");
    assert!(
        stderr.contains("did you mean FEATURE_USE_CIRCUIT_BREAKER?"),
        "{stderr}"
    );
    let bad = fabrik()
        .arg("flags")
        .env("FEATURE_USE_TELEMETRY", "ture")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("invalid value 'ture' for FEATURE_USE_TELEMETRY")
    );
}

/// Runs `fabrik apply` on a one-workspace config against `emu` with `env` set; returns the
/// trace id the run summary prints.
fn apply_one_workspace(emu: &Emulator, token: &str, dir: &Path, env: &[(&str, &str)]) -> String {
    std::fs::write(
        dir.join("fabrik.yaml"),
        "project: {name: t, prefix: t}\nworkspaces:\n  - name: one\n",
    )
    .unwrap();
    let out = fabrik()
        .args(["apply", "--config"])
        .arg(dir.join("fabrik.yaml"))
        .args(["--base-url", &format!("{}/v1", emu.base_url())])
        .arg("--state-dir")
        .arg(dir.join("runs"))
        .env("FABRIC_TOKEN", token)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace = stdout
        .split("trace ")
        .nth(1)
        .and_then(|t| t.split(')').next())
        .expect("the summary prints the trace id")
        .to_string();
    assert_eq!(trace.len(), 32, "{stdout}");
    trace
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_reports_to_application_insights_under_the_trace_id_it_prints() {
    let (emu, token) = emulator_as_service_principal().await;
    let dir = tempfile::tempdir().unwrap();
    let cs = emu.app_insights_connection_string();
    let trace = apply_one_workspace(
        &emu,
        &token,
        dir.path(),
        &[("APPLICATIONINSIGHTS_CONNECTION_STRING", &cs)],
    );
    // The process flushed on exit: the event is there, under the run's operation id.
    let envelopes = emu.telemetry();
    let apply = envelopes
        .iter()
        .find(|e| e.to_string().contains("fabrik.apply"))
        .unwrap_or_else(|| panic!("no fabrik.apply event in {envelopes:?}"));
    assert_eq!(apply["tags"]["ai.operation.id"], trace.as_str(), "{apply}");
    assert!(
        apply.to_string().contains("\"outcome\":\"succeeded\""),
        "{apply}"
    );
    assert!(!apply.to_string().contains(&token), "no token in telemetry");
    emu.shutdown().await.unwrap();
}

/// What an OTLP collector received: (`traces` or `metrics`, JSON body) per request.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>;

/// An OTLP/HTTP (JSON) collector on loopback that keeps what it receives; returns its base URL.
async fn otlp_collector() -> (String, Received) {
    let received = Received::default();
    let keep = |path: &'static str| {
        let r = received.clone();
        axum::routing::post(move |body: axum::body::Bytes| async move {
            let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            r.lock().unwrap().push((path.to_owned(), v));
            ""
        })
    };
    let app = axum::Router::new()
        .route("/v1/traces", keep("traces"))
        .route("/v1/metrics", keep("metrics"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (collector, received)
}

/// The `kind` (`Spans` or `Metrics`) entries of everything received under `path`.
fn otlp_entries(received: &Received, path: &str, kind: &str) -> Vec<serde_json::Value> {
    let (resource, scope, entries) = match kind {
        "Spans" => ("resourceSpans", "scopeSpans", "spans"),
        _ => ("resourceMetrics", "scopeMetrics", "metrics"),
    };
    let list = |v: &serde_json::Value, k: &str| v[k].as_array().cloned().unwrap_or_default();
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == path)
        .flat_map(|(_, body)| list(body, resource))
        .flat_map(|r| list(&r, scope))
        .flat_map(|s| list(&s, entries))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_exports_its_spans_and_metrics_over_otlp_under_the_trace_id_it_prints() {
    let (collector, received) = otlp_collector().await;

    let (emu, token) = emulator_as_service_principal().await;
    let dir = tempfile::tempdir().unwrap();
    let trace = apply_one_workspace(
        &emu,
        &token,
        dir.path(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ],
    );

    // The process flushed both signals on exit.
    let spans = otlp_entries(&received, "traces", "Spans");
    // One tree under the run's root span: run → workspace → change → HTTP call.
    let named = |name: &str| {
        spans
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no {name} span in {spans:?}"))
    };
    let (run, workspace, change) = (
        named("fabrik.run"),
        named("fabrik.workspace"),
        named("fabrik.change"),
    );
    named("fabrik.plan");
    assert_eq!(workspace["parentSpanId"], run["spanId"]);
    assert_eq!(change["parentSpanId"], workspace["spanId"]);
    assert!(
        change["attributes"].to_string().contains("created"),
        "{change}"
    );
    assert!(
        spans
            .iter()
            .any(|s| s["name"] == "fabric.call" && s["parentSpanId"] == change["spanId"]),
        "the create call is a child of its step: {spans:?}"
    );
    assert!(
        spans.iter().all(|s| s["traceId"] == trace.as_str()),
        "{spans:?}"
    );
    assert!(!format!("{spans:?}").contains(&token), "no token in spans");
    let metrics = otlp_entries(&received, "metrics", "Metrics");
    let resources = metrics
        .iter()
        .find(|m| m["name"] == "fabrik_resources_total")
        .unwrap_or_else(|| panic!("no fabrik_resources_total in {metrics:?}"));
    let created_workspace = resources["sum"]["dataPoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            let a = p["attributes"].to_string();
            a.contains("\"workspace\"") && a.contains("\"created\"")
        })
        .unwrap_or_else(|| panic!("{resources}"));
    assert!(
        created_workspace["asInt"] == 1 || created_workspace["asInt"] == "1",
        "{created_workspace}"
    );
    assert!(
        metrics
            .iter()
            .any(|m| m["name"] == "fabrik_http_requests_total"),
        "{metrics:?}"
    );

    // FEATURE_USE_TELEMETRY=off keeps everything local.
    let sent_before = received.lock().unwrap().len();
    let out = fabrik()
        .args(["plan", "--config"])
        .arg(dir.path().join("fabrik.yaml"))
        .args(["--base-url", &format!("{}/v1", emu.base_url())])
        .env("FABRIC_TOKEN", &token)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)
        .env("FEATURE_USE_TELEMETRY", "off")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(received.lock().unwrap().len(), sent_before);

    // So does `features: {telemetry: off}` in fabrik.yaml: one flag resolution for every command.
    let config = dir.path().join("fabrik.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}features:\n  telemetry: off\n")).unwrap();
    let out = fabrik()
        .args(["plan", "--config"])
        .arg(&config)
        .args(["--base-url", &format!("{}/v1", emu.base_url())])
        .env("FABRIC_TOKEN", &token)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(received.lock().unwrap().len(), sent_before);
    // A features section that is not flag: value pairs is invalid input, not silently skipped.
    std::fs::write(&config, format!("{text}features: [telemetry]\n")).unwrap();
    let out = fabrik()
        .args(["plan", "--config"])
        .arg(&config)
        .args(["--base-url", &format!("{}/v1", emu.base_url())])
        .env("FABRIC_TOKEN", &token)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("features:"));
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_cert_lets_fabrik_talk_https_to_a_private_ca() {
    let emu = Emulator::start(EmulatorConfig {
        tls: Some(fabrik_emulator::TlsConfig {
            port: 0,
            ca_out: None,
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let token = emu.mint_token(
        "9117cbfa-f0a7-43b7-846f-96ba66a3c1c0",
        Duration::from_secs(600),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fabrik.yaml"),
        "project: {name: c, prefix: c}\nworkspaces:\n  - name: one\n",
    )
    .unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, emu.ca_pem().unwrap()).unwrap();
    let base = format!("{}/v1", emu.tls_base_url().unwrap());
    let plan = |ca: Option<&Path>| {
        let mut c = fabrik();
        c.args(["plan", "--config"])
            .arg(dir.path().join("fabrik.yaml"))
            .args(["--base-url", &base])
            .env("FABRIC_TOKEN", &token);
        if let Some(ca) = ca {
            c.arg("--ca-cert").arg(ca);
        }
        c.output().unwrap()
    };
    let ok = plan(Some(&ca));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("+ workspace c-one-dev"));
    let refused = plan(None);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "without the CA the certificate is refused"
    );
    let missing = plan(Some(&dir.path().join("nope.pem")));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read the CA certificate"));
    emu.shutdown().await.unwrap();
}

/// Every output of an apply, an update that fails and is rolled back, and a later `fabrik
/// rollback`: stdout, stderr, the JSON report, the plan JSON, the journals and the logs (JSON
/// lines at debug) hold no secret value; the journal keeps the reference, so the rollback
/// still restores the description that held the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_of_an_apply_an_update_or_a_rollback_holds_a_secret() {
    let (emu, token) = emulator_as_service_principal().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secret = "sk-live-77ab31c9e0";
    let run = |args: &[&str]| {
        let out = fabrik()
            .args(args)
            .arg("--config")
            .arg(d.join("fabrik.yaml"))
            .args(["--base-url", &format!("{}/v1", emu.base_url())])
            .arg("--state-dir")
            .arg(d.join("runs"))
            .env("FABRIC_TOKEN", &token)
            .env("FABRIK_TEST_API_KEY", secret)
            .env("FABRIK_LOG", "debug")
            .env("FABRIK_LOG_FORMAT", "json")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let mut everything = String::new();
    std::fs::write(
        d.join("fabrik.yaml"),
        "project: {name: z, prefix: z}\nworkspaces:\n  - name: one\n    description: \"key ${secret:fabrik-test-api-key}\"\n",
    )
    .unwrap();
    let report = d.join("report.json");
    let (code, text) = run(&["apply", "--report", report.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    everything += &text;
    everything += &std::fs::read_to_string(&report).unwrap();
    // The update changes the description; the git connect after it fails (no capacity), so
    // the run rolls the update back from its journal.
    std::fs::write(
        d.join("fabrik.yaml"),
        "project: {name: z, prefix: z}\nworkspaces:\n  - name: one\n    description: \"rotated key ${secret:fabrik-test-api-key}\"\n    git: {provider: GitHub, owner: o, repository: r, branch: main, connection_id: 7d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a}\n",
    )
    .unwrap();
    let (_, text) = run(&["plan", "--output", "json"]);
    everything += &text;
    let (code, text) = run(&["apply", "--report", report.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("rolled back"), "{text}");
    everything += &text;
    everything += &std::fs::read_to_string(&report).unwrap();
    // The rollback restored the description with the secret in it.
    assert!(
        emu.state()
            .to_string()
            .contains(&format!("\"key {secret}\"")),
        "{}",
        emu.state()
    );
    let mut journals = String::new();
    let mut run_id = None;
    for entry in std::fs::read_dir(d.join("runs")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains(r#""kind":"workspace","payload":{"description""#)
            && text.contains(r#""op":"restore""#)
        {
            run_id = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        }
        journals += &text;
    }
    assert!(
        journals.contains("${secret:fabrik-test-api-key}"),
        "{journals}"
    );
    everything += &journals;
    // Rolling the failed run back again from its journal is safe and prints no secret either.
    let run_id = run_id.expect("the failed run's journal");
    let (_, text) = run(&["rollback", &run_id]);
    everything += &text;
    assert!(
        !everything.contains(secret),
        "a secret leaked:\n{everything}"
    );
    emu.shutdown().await.unwrap();
}

/// `fabrik auth check` gets a token and makes one read with it; it names the credential, never
/// prints the token, and fails (1) when the service refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_check_proves_the_credential_works_without_printing_it() {
    let (emu, token) = emulator_as_service_principal().await;
    let check = |token: &str| {
        fabrik()
            .args(["auth", "check"])
            .args(["--base-url", &format!("{}/v1", emu.base_url())])
            .env("FABRIC_TOKEN", token)
            .output()
            .unwrap()
    };
    let out = check(&token);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("from FABRIC_TOKEN") && stdout.contains("sees 0 workspace(s)"),
        "{stdout}"
    );
    assert!(!stdout.contains(&token));
    let bad = check("not-a-token-the-emulator-issued");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused the token"), "{stderr}");
    assert!(
        !stderr.contains("not-a-token-the-emulator-issued"),
        "{stderr}"
    );
    emu.shutdown().await.unwrap();
}

/// docs/CLI.md keeps up with `--help`: every command and every option `--help` lists (the
/// emulator's own options aside, which `fabrik emulator --help` documents) is in it.
#[test]
fn every_command_and_option_in_help_is_documented() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/CLI.md"))
            .unwrap();
    let help = |args: &[&str]| {
        let out = fabrik().args(args).arg("--help").output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let options = |text: &str| -> Vec<String> {
        text.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '=')
            .filter(|w| {
                w.starts_with("--")
                    && w.len() > 2
                    && w[2..].chars().all(|c| c.is_ascii_lowercase() || c == '-')
            })
            .map(str::to_string)
            .collect()
    };
    let top = help(&[]);
    let commands: Vec<String> = top
        .split("Commands:")
        .nth(1)
        .and_then(|s| s.split("Options:").next())
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 12, "{commands:?}");
    let mut missing = Vec::new();
    for o in options(&top) {
        if !docs.contains(&o) && !o.starts_with("--help") && o != "--version" {
            missing.push(o);
        }
    }
    for c in commands.iter().filter(|c| *c != "emulator") {
        if !docs.contains(&format!("`{c}")) {
            missing.push(c.clone());
        }
        let sub: Vec<&str> = if c == "auth" {
            vec!["auth", "check"]
        } else {
            vec![c.as_str()]
        };
        for o in options(&help(&sub)) {
            if !docs.contains(&o) && o != "--help" && !o.starts_with("--help") {
                missing.push(format!("{c} {o}"));
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "not in docs/CLI.md: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let (emu, token) = emulator_as_service_principal().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fabrik.yaml"),
        "project: {name: t, prefix: t}\nworkspaces:\n  - name: one\n",
    )
    .unwrap();
    // stderr is a pipe here, as in `fabrik serve 2> serve.log`.
    let out = fabrik()
        .args(["apply", "--config"])
        .arg(dir.path().join("fabrik.yaml"))
        .args(["--base-url", &format!("{}/v1", emu.base_url())])
        .arg("--state-dir")
        .arg(dir.path().join("runs"))
        .env("FABRIC_TOKEN", &token)
        .env("FABRIK_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("transaction started"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "escape codes in: {stderr:?}");
    emu.shutdown().await.unwrap();
}

/// What a new user meets (issue 23): a failed, rolled-back run says it failed and what was
/// rolled back, with fabrik's own lines only (no library log line with the default filter);
/// a successful apply lists the workspaces it made or used with their ids, in text and JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_says_so_and_an_apply_names_its_workspace_ids() {
    let (emu, token) = emulator_as_service_principal().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Workspace "two" has no capacity, so its git connect fails and the run rolls back.
    std::fs::write(
        d.join("fabrik.yaml"),
        "project: {name: f, prefix: f}\nworkspaces:\n  - name: one\n    lakehouses: [{name: LH_one}]\n  - name: two\n    git: {provider: GitHub, owner: o, repository: r, branch: main, connection_id: 7d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a}\n",
    )
    .unwrap();
    let out = fabrik()
        .env_remove("FABRIK_LOG")
        .args(["apply", "--concurrency", "1", "--config"])
        .arg(d.join("fabrik.yaml"))
        .args(["--base-url", &format!("{}/v1", emu.base_url())])
        .arg("--state-dir")
        .arg(d.join("runs"))
        .env("FABRIC_TOKEN", &token)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(!stdout.contains("applied:"), "{stdout}");
    assert!(
        stdout.contains("failed: 1 error(s); all ")
            && stdout.contains("were rolled back, nothing is applied"),
        "{stdout}"
    );
    assert!(stdout.contains("rolled back "), "{stdout}");
    assert!(stderr.contains("error: "), "{stderr}");
    assert!(
        !stderr.contains("WARN") && !stderr.contains("fabrik_txn"),
        "only fabrik's own lines: {stderr}"
    );
    assert!(
        !stdout.contains("workspaces:"),
        "a failed run lists no ids: {stdout}"
    );

    // Without git it succeeds: the ids are printed (JSON: `workspaces`), and again on a run
    // with nothing to do.
    std::fs::write(
        d.join("fabrik.yaml"),
        "project: {name: f, prefix: f}\nworkspaces:\n  - name: one\n    lakehouses: [{name: LH_one}]\n  - name: two\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run_in(&emu, &token, d, &["apply", "--output", "json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let json_start = stdout.rfind("\n{").map_or(0, |i| i + 1);
    let result: serde_json::Value = serde_json::from_str(&stdout[json_start..]).unwrap();
    let live = emu.state();
    let id_of = |name: &str| {
        live["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["displayName"] == name)
            .map(|w| w["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(
        result["workspaces"],
        serde_json::json!([{"name": "f-one-dev", "id": id_of("f-one-dev")}, {"name": "f-two-dev", "id": id_of("f-two-dev")}]),
        "{stdout}"
    );
    let (code, stdout, _) = run_in(&emu, &token, d, &["apply"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains(&format!(
            "workspaces:\n  f-one-dev  {}\n  f-two-dev  {}\n",
            id_of("f-one-dev"),
            id_of("f-two-dev")
        )),
        "{stdout}"
    );
    emu.shutdown().await.unwrap();
}

/// A repository holding one lakehouse, `New`.
fn lakehouse_repo(root: &Path) {
    let dir = root.join("New.Lakehouse");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".platform"),
        serde_json::json!({
            "$schema": "https://developer.microsoft.com/json-schemas/fabric/gitIntegration/platformProperties/2.0.0/schema.json",
            "metadata": {"type": "Lakehouse", "displayName": "New"},
            "config": {"version": "2.0", "logicalId": "3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b4d09"},
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("lakehouse.metadata.json"), "{}").unwrap();
}

/// `status` names each run by its command (a publish is not an apply) and prints JSON with
/// `--output json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_publish_runs_and_speaks_json() {
    let (emu, token) = emulator_as_service_principal().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("fabrik.yaml"),
        "project: {name: s, prefix: s}\nworkspaces:\n  - name: one\n",
    )
    .unwrap();
    let (code, _, stderr) = run_in(&emu, &token, d, &["apply"]);
    assert_eq!(code, Some(0), "{stderr}");
    let ws = emu.state()["workspaces"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let repo = d.join("repo");
    lakehouse_repo(&repo);
    let (code, _, stderr) = run_in(
        &emu,
        &token,
        d,
        &[
            "publish",
            "--repository",
            repo.to_str().unwrap(),
            "--workspace-id",
            &ws,
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");

    let (code, stdout, stderr) = run_in(&emu, &token, d, &["status", "--output", "json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let status: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let names: Vec<&str> = status["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["apply dev", "publish dev"], "{stdout}");
    assert!(
        status["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["runId"].is_string() && r["status"] == "committed"),
        "{stdout}"
    );
    let (_, text, _) = run_in(&emu, &token, d, &["status"]);
    assert!(text.lines().any(|l| l.ends_with("  publish dev")), "{text}");
    emu.shutdown().await.unwrap();
}

/// No credential: one error line (no library log line beside it with the default filter) that
/// says to set FABRIC_TOKEN.
#[test]
fn a_missing_credential_is_one_error_that_names_fabric_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fabrik.yaml"),
        "project: {name: t, prefix: t}\nworkspaces:\n  - name: one\n",
    )
    .unwrap();
    // The Azure CLI credential, with no `az` to find: fails at once, without the network.
    let out = fabrik()
        .env_remove("FABRIK_LOG")
        .env_remove("FABRIC_TOKEN")
        .env("PATH", "/nonexistent")
        .args(["plan", "--auth", "azure-cli", "--config"])
        .arg(dir.path().join("fabrik.yaml"))
        .args(["--base-url", "http://127.0.0.1:9/v1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.matches("error:").count(),
        1,
        "printed once: {stderr}"
    );
    assert!(!stderr.contains("WARN"), "{stderr}");
    assert!(
        stderr.contains("to fix it: set FABRIC_TOKEN to a bearer token"),
        "{stderr}"
    );
}

/// `--workspace-id` takes an id: a name is invalid input (exit 4) before any request, and the
/// error says how to name a workspace instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_name_given_as_workspace_id_is_invalid_input() {
    let (emu, token) = emulator_as_service_principal().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("fabrik.yaml"), "project: {name: t, prefix: t}\n").unwrap();
    let repo = d.join("repo");
    lakehouse_repo(&repo);
    let publish = [
        "publish",
        "--repository",
        repo.to_str().unwrap(),
        "--workspace-id",
        "t-one-dev",
    ];
    let out = d.join("out");
    let export = [
        "export",
        "--out",
        out.to_str().unwrap(),
        "--workspace-id",
        "t-one-dev",
    ];
    for args in [&publish[..], &export[..]] {
        let (code, _, stderr) = run_in(&emu, &token, d, args);
        assert_eq!(code, Some(4), "{args:?}: {stderr}");
        assert!(
            stderr.contains("--workspace-id `t-one-dev` is not a workspace id: it expects a GUID")
                && stderr.contains("core.workspace: NAME"),
            "{stderr}"
        );
    }
    assert_eq!(
        log(&emu).await,
        Vec::<serde_json::Value>::new(),
        "no request"
    );
    emu.shutdown().await.unwrap();
}

/// `fabrik emulator --state FILE` saves its state when stopped with SIGTERM (a service
/// manager, a CI job's end), not only on Ctrl-C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_saves_its_state_file_on_sigterm() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("emulator-state.json");
    let mut emu = fabrik()
        .args(["emulator", "--port", "0", "--accept-any-token", "--state"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(emu.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    reqwest::Client::new()
        .post(format!("{base}/v1/workspaces"))
        .bearer_auth("any")
        .json(&serde_json::json!({"displayName": "kept-by-sigterm"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &emu.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stopped = emu.wait().unwrap();
    assert!(stopped.success(), "{stopped:?}");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains("kept-by-sigterm"), "{saved}");
}

/// Options are offered where they do something: `--prune` on plan and apply, `--lenient` on
/// the commands that read principals files, `--report` and `--allow-data-loss` on the commands
/// that apply a plan — not on `publish` or `export` when they do nothing there; and `export`,
/// which reads one workspace, lists none of the global options about environments, plan
/// output, journals, locks or apply deadlines (and ignores them).
#[test]
fn help_lists_options_only_where_they_apply() {
    let help = |cmd: &str| {
        let out = fabrik().args([cmd, "--help"]).output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let has = |text: &str, option: &str| text.lines().any(|l| l.trim_start().starts_with(option));
    for (cmd, present, absent) in [
        (
            "publish",
            &[
                "--allow-data-loss",
                "--report",
                "--env",
                "--output",
                "--state-dir",
                "--state ",
                "--lock-timeout",
                "--run-timeout",
            ][..],
            &["--prune", "--lenient", "--workspace <", "--shard"][..],
        ),
        (
            "export",
            &[
                "--workspace-id",
                "--out ",
                "--base-url",
                "--concurrency",
                "--auth",
                "--feature",
                "--config",
            ][..],
            &[
                "--prune",
                "--lenient",
                "--report",
                "--allow-data-loss",
                "--workspace <",
                "--shard",
                "--env",
                "--output",
                "--state",
                "--lock-timeout",
                "--run-timeout",
            ][..],
        ),
        (
            "apply",
            &[
                "--prune",
                "--lenient",
                "--report",
                "--allow-data-loss",
                "--workspace <",
                "--shard",
            ][..],
            &[][..],
        ),
        (
            "plan",
            &["--prune", "--lenient", "--workspace <", "--shard"][..],
            &["--report", "--allow-data-loss"][..],
        ),
        (
            "destroy",
            &[
                "--lenient",
                "--report",
                "--allow-data-loss",
                "--workspace <",
                "--shard",
            ][..],
            &["--prune"][..],
        ),
    ] {
        let text = help(cmd);
        for o in present {
            assert!(has(&text, o), "{cmd} --help lacks {o}:\n{text}");
        }
        for o in absent {
            assert!(!has(&text, o), "{cmd} --help lists {o}:\n{text}");
        }
        assert!(!text.contains("seed"), "{cmd} --help: {text}");
    }
    // Given to export anyway (a wrapper passing them to every command), they are accepted:
    // the run gets as far as checking the workspace id.
    let out = fabrik()
        .args(["export", "--workspace-id", "x", "--out", "y"])
        .args(["--state-dir", "z", "--env", "prod", "--output", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("`x` is not a workspace id"), "{stderr}");
    // ... and never silently: each is named as ignored.
    for flag in ["--state-dir", "--env", "--output"] {
        assert!(
            stderr.contains(&format!(
                "warning: export does not use {flag}; it is ignored"
            )),
            "{stderr}"
        );
    }
}

/// `--workspace` and `--shard` narrow a plan to their workspaces; a bad `--shard`, an unknown
/// `--workspace`, both at once, or an `unlock` with neither a run nor `--all` is invalid
/// input (exit 4) naming the value, before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_and_shard_select_what_is_planned_and_bad_values_exit_4() {
    let (emu, token) = emulator_as_service_principal().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("fabrik.yaml"),
        "project: {name: s, prefix: s}\nworkspaces:\n  - name: one\n    lakehouses: [{name: LH_one}]\n  - name: two\n  - name: three\n",
    )
    .unwrap();
    let planned = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["plan", "--output", "json"];
        all.extend_from_slice(args);
        let (code, stdout, stderr) = run_in(&emu, &token, d, &all);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        plan["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(planned(&[]).len(), 3);
    // By configured name or deployed name, in any case.
    assert_eq!(
        planned(&["--workspace", "two", "--workspace", "S-ONE-DEV"]),
        ["s-one-dev", "s-two-dev"]
    );
    // Sorted: s-one-dev, s-three-dev, s-two-dev; shard 1/2 takes the 1st and 3rd.
    assert_eq!(planned(&["--shard", "1/2"]), ["s-one-dev", "s-two-dev"]);
    assert_eq!(planned(&["--shard", "2/2"]), ["s-three-dev"]);
    assert_eq!(planned(&["--shard", "3/3"]), ["s-two-dev"]);
    let before = log(&emu).await.len();
    for (args, named) in [
        (&["plan", "--shard", "0/2"][..], "0/2"),
        (&["plan", "--shard", "3/2"][..], "3/2"),
        (&["apply", "--shard", "1/0"][..], "1/0"),
        (&["destroy", "--yes", "--shard", "half"][..], "half"),
        (&["apply", "--workspace", "nope"][..], "nope"),
        (&["destroy", "--yes", "--workspace", "nope"][..], "nope"),
        (
            &["plan", "--workspace", "one", "--shard", "1/2"][..],
            "--shard",
        ),
        (&["unlock"][..], "--all"),
        (&["unlock", "run-1", "--all"][..], "--all"),
    ] {
        let (code, _, stderr) = run_in(&emu, &token, d, args);
        assert_eq!(code, Some(4), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?} names {named}: {stderr}");
    }
    assert_eq!(log(&emu).await.len(), before, "no request was sent");

    // An apply of one shard makes only its workspaces; a destroy of one workspace removes
    // only that one.
    let live = || async {
        let v: serde_json::Value = reqwest::get(format!("{}/_emulator/state", emu.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut names: Vec<String> = v["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["displayName"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let (code, _, stderr) = run_in(&emu, &token, d, &["apply", "--shard", "1/2"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(live().await, ["s-one-dev", "s-two-dev"]);
    let (code, _, stderr) = run_in(&emu, &token, d, &["apply"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = run_in(
        &emu,
        &token,
        d,
        &[
            "destroy",
            "--yes",
            "--allow-data-loss",
            "--workspace",
            "one",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(live().await, ["s-three-dev", "s-two-dev"]);
}
