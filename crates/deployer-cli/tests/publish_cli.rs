//! `fabrik publish` as a user runs it, against the in-process emulator: problems in
//! `parameter.yml` and reference cycles are reported at their place before any request, a
//! deployed part that is not base64 stops the publish, an exported Environment finds the
//! target's Spark pool by name, the plan names the parts that differ, a re-publish reads the
//! deployed definitions by one bulk export (one by one when the service refuses it, as the plan
//! says), and a publish killed with SIGKILL is undone by `fabrik rollback RUN_ID`.

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

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/git-format-repo")
}

async fn emulator(faults: FaultConfig) -> (Emulator, String) {
    let emu = Emulator::start(EmulatorConfig {
        faults,
        capacity_pools: vec!["ProdCapacityPool".into()],
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let token = emu.mint_token_as(
        "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "ServicePrincipal",
        Duration::from_secs(3600),
    );
    (emu, token)
}

async fn requests(emu: &Emulator) -> Vec<serde_json::Value> {
    let v: serde_json::Value = reqwest::get(format!("{}/_emulator/requests", emu.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["requests"].as_array().cloned().unwrap_or_default()
}

/// A workspace on the emulator's capacity (whose pools prod's `spark_pool` entry names).
async fn workspace(emu: &Emulator, token: &str, name: &str) -> String {
    let http = reqwest::Client::new();
    let caps: serde_json::Value = http
        .get(format!("{}/v1/capacities", emu.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ws: serde_json::Value = http
        .post(format!("{}/v1/workspaces", emu.base_url()))
        .bearer_auth(token)
        .json(&serde_json::json!({"displayName": name, "capacityId": caps["value"][0]["id"]}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    ws["id"].as_str().unwrap().to_string()
}

fn publish(base: &str, token: &str, ws: &str, state: &Path) -> Command {
    let mut c = fabrik();
    c.arg("publish")
        .arg("--repository")
        .arg(fixture_root())
        .args(["--workspace-id", ws, "--base-url", base])
        .arg("--state-dir")
        .arg(state)
        .env("FABRIC_TOKEN", token);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameter_file_mistakes_are_reported_at_their_place_and_send_no_request() {
    let (emu, token) = emulator(FaultConfig::default()).await;
    let base = format!("{}/v1", emu.base_url());
    let dir = tempfile::tempdir().unwrap();
    // The negatives of the fixture's notes, each with the line it is reported at.
    let cases = [
        (
            "find_replace:\n  - find_value: \"stdatadev\"\n    replace_value:\n      prod: \"a\"\n      PROD: \"b\"\n",
            5,
            "PROD",
        ),
        (
            "find_replace:\n  - find_value: \"$items.Notebook.Ingest.$id\"\n    replace_value:\n      prod: \"x\"\n",
            2,
            "$items",
        ),
        (
            "find_replace:\n  - find_value: '(a)(b)'\n    is_regex: \"true\"\n    replace_value:\n      prod: \"x\"\n",
            2,
            "group",
        ),
        (
            "find_replace:\n  - find_value: \"stdatadev\"\n    replace_value:\n      _ALL_: \"a\"\n      prod: \"b\"\n",
            5,
            "_ALL_",
        ),
    ];
    for (n, (text, line, word)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("parameter-{n}.yml"));
        std::fs::write(&file, text).unwrap();
        let out = publish(
            &base,
            &token,
            "11111111-2222-4333-8444-555555555555",
            dir.path(),
        )
        .arg("--parameter")
        .arg(&file)
        .args(["--env", "prod"])
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "case {n}: {stderr}");
        let at = format!("{}:{line}:", file.display());
        assert!(stderr.contains(&at), "case {n}: expected {at} in\n{stderr}");
        assert!(
            stderr.contains(word),
            "case {n}: expected {word} in\n{stderr}"
        );
        assert!(stderr.contains("nothing was published"), "{stderr}");
    }
    assert_eq!(requests(&emu).await, Vec::<serde_json::Value>::new());
    emu.shutdown().await.unwrap();
}

/// A repository of two pipelines that run each other.
fn cyclic_repo(root: &Path) {
    for (name, me, other) in [
        (
            "A",
            "3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b4d01",
            "3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b4d02",
        ),
        (
            "B",
            "3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b4d02",
            "3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b4d01",
        ),
    ] {
        let dir = root.join(format!("{name}.DataPipeline"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(".platform"),
            serde_json::json!({
                "$schema": "https://developer.microsoft.com/json-schemas/fabric/gitIntegration/platformProperties/2.0.0/schema.json",
                "metadata": {"type": "DataPipeline", "displayName": name},
                "config": {"version": "2.0", "logicalId": me},
            })
            .to_string(),
        )
        .unwrap();
        std::fs::write(
            dir.join("pipeline-content.json"),
            serde_json::json!({"properties": {"activities": [{"name": "run", "type": "ExecutePipeline",
                "typeProperties": {"pipeline": {"referenceName": other, "type": "PipelineReference"}}}]}})
            .to_string(),
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_cycle_is_an_error_naming_its_items_and_nothing_is_written() {
    let (emu, token) = emulator(FaultConfig::default()).await;
    let base = format!("{}/v1", emu.base_url());
    let ws = workspace(&emu, &token, "cycle").await;
    let repo = tempfile::tempdir().unwrap();
    cyclic_repo(repo.path());
    let state = tempfile::tempdir().unwrap();
    let out = fabrik()
        .arg("publish")
        .arg("--repository")
        .arg(repo.path())
        .args(["--workspace-id", &ws, "--base-url", &base])
        .arg("--state-dir")
        .arg(state.path())
        .env("FABRIC_TOKEN", &token)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("cycle"), "{stderr}");
    assert!(
        stderr.contains("DataPipeline:A") && stderr.contains("DataPipeline:B"),
        "{stderr}"
    );
    let writes = requests(&emu)
        .await
        .into_iter()
        .filter(|r| r["method"] != "GET" && !is_read(r))
        .count();
    assert_eq!(writes, 1, "only the test's own workspace create");
    emu.shutdown().await.unwrap();
}

/// The service keeps definition payloads opaque (the emulator too), so a deployed part can be
/// anything; the publish must stop at it rather than read it as an empty part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_part_that_is_not_base64_stops_the_publish_naming_item_and_part() {
    let (emu, token) = emulator(FaultConfig::default()).await;
    let base = format!("{}/v1", emu.base_url());
    let ws = workspace(&emu, &token, "badpart").await;
    reqwest::Client::new()
        .post(format!("{base}/workspaces/{ws}/items"))
        .bearer_auth(&token)
        .json(
            &serde_json::json!({"displayName": "Utils", "type": "Notebook", "definition": {
            "parts": [{"path": "notebook-content.py", "payload": "not base64!",
                       "payloadType": "InlineBase64"}]}}),
        )
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path().join("Utils.Notebook");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".platform"),
        serde_json::json!({
            "metadata": {"type": "Notebook", "displayName": "Utils"},
            "config": {"version": "2.0", "logicalId": "3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b4e01"},
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("notebook-content.py"),
        "# Fabric notebook source\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let before = writes(&requests(&emu).await);
    let out = fabrik()
        .arg("publish")
        .arg("--repository")
        .arg(repo.path())
        .args(["--workspace-id", &ws, "--base-url", &base])
        .arg("--state-dir")
        .arg(state.path())
        .env("FABRIC_TOKEN", &token)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Notebook Utils") && stderr.contains("part notebook-content.py"),
        "{stderr}"
    );
    assert_eq!(writes(&requests(&emu).await), before, "nothing was written");
    emu.shutdown().await.unwrap();
}

/// A workspace pool named `name`; its id.
async fn spark_pool(emu: &Emulator, token: &str, ws: &str, name: &str) -> String {
    let p: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/v1/workspaces/{ws}/spark/pools", emu.base_url()))
        .bearer_auth(token)
        .json(
            &serde_json::json!({"name": name, "nodeFamily": "MemoryOptimized", "nodeSize": "Small",
            "autoScale": {"enabled": true, "minNodeCount": 1, "maxNodeCount": 2},
            "dynamicExecutorAllocation": {"enabled": false, "minExecutors": 1, "maxExecutors": 1}}),
        )
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    p["id"].as_str().unwrap().to_string()
}

/// The decoded `path` part of item `name` in workspace `ws`, from the emulator's state.
fn deployed_part(emu: &Emulator, ws: &str, name: &str, path: &str) -> String {
    use base64::Engine as _;
    let state = emu.state();
    let w = state["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == ws)
        .unwrap();
    let item = w["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["displayName"] == name)
        .unwrap_or_else(|| panic!("{name} is deployed in {w}"));
    let part = item["definition"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == path)
        .unwrap_or_else(|| panic!("{name} has {path}: {item}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(part["payload"].as_str().unwrap())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// An export names an Environment's Spark pool by name, so publishing it into another
/// workspace uses that workspace's pool of the same name (the source's id would be refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_environment_uses_the_target_workspaces_pool_of_the_same_name() {
    use base64::Engine as _;
    let (emu, token) = emulator(FaultConfig::default()).await;
    let base = format!("{}/v1", emu.base_url());
    let (src, dst) = (
        workspace(&emu, &token, "source").await,
        workspace(&emu, &token, "target").await,
    );
    let src_pool = spark_pool(&emu, &token, &src, "SmallPool").await;
    let dst_pool = spark_pool(&emu, &token, &dst, "SmallPool").await;
    let compute = format!("driver_cores: 4\ninstance_pool_id: {src_pool}\nruntime_version: 1.3\n");
    reqwest::Client::new()
        .post(format!("{base}/workspaces/{src}/environments"))
        .bearer_auth(&token)
        .json(
            &serde_json::json!({"displayName": "Spark", "definition": {"parts": [
            {"path": "Setting/Sparkcompute.yml", "payloadType": "InlineBase64",
             "payload": base64::engine::general_purpose::STANDARD.encode(&compute)}]}}),
        )
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let repo = out.path().join("repo");
    let export = fabrik()
        .args(["export", "--workspace-id", &src, "--base-url", &base])
        .arg("--out")
        .arg(&repo)
        .env("FABRIC_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let params = std::fs::read_to_string(repo.join("parameter.yml")).unwrap();
    assert!(
        params.contains(&src_pool) && params.contains("name: \"SmallPool\""),
        "{params}"
    );
    let state = tempfile::tempdir().unwrap();
    let publish = fabrik()
        .arg("publish")
        .arg("--repository")
        .arg(&repo)
        .args(["--workspace-id", &dst, "--base-url", &base])
        .arg("--state-dir")
        .arg(state.path())
        .env("FABRIC_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        publish.status.success(),
        "{}",
        String::from_utf8_lossy(&publish.stderr)
    );
    let deployed = deployed_part(&emu, &dst, "Spark", "Setting/Sparkcompute.yml");
    assert!(
        deployed.contains(&format!("instance_pool_id: {dst_pool}")),
        "{deployed}"
    );
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_names_the_parts_that_differ_and_the_exit_code_says_changes_are_pending() {
    let (emu, token) = emulator(FaultConfig::default()).await;
    let base = format!("{}/v1", emu.base_url());
    let ws = workspace(&emu, &token, "plan").await;
    let state = tempfile::tempdir().unwrap();
    let out = publish(&base, &token, &ws, state.path())
        .args(["--env", "prod"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let same = publish(&base, &token, &ws, state.path())
        .args(["--env", "prod", "--plan", "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );
    // Another environment changes the storage account in the notebook, the schedule and the
    // variable library.
    let other = publish(&base, &token, &ws, state.path())
        .args([
            "--env",
            "staging",
            "--plan",
            "--detailed-exitcode",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        other.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&other.stdout).unwrap();
    let text = plan.to_string();
    for part in ["notebook-content.py", ".schedules", "variables.json"] {
        assert!(text.contains(part), "{part} differs in {text}");
    }
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_killed_mid_way_is_undone_by_rollback_run_id() {
    // Every write is slowed, so the publish is still going when it is killed.
    let (emu, token) = emulator("writes:latency=40ms".parse().unwrap()).await;
    let base = format!("{}/v1", emu.base_url());
    let ws = workspace(&emu, &token, "killed").await;
    let state_url = format!("{}/_emulator/state", emu.base_url());
    let before: serde_json::Value = reqwest::get(&state_url)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = publish(&base, &token, &ws, dir.path())
        .args(["--env", "prod", "--concurrency", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut writes = 0;
    for _ in 0..4000 {
        writes = requests(&emu)
            .await
            .iter()
            .filter(|r| r["method"] == "POST" && !is_read(r))
            .count();
        if writes >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(writes >= 8, "the publish did not get going");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let during: serde_json::Value = reqwest::get(&state_url)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(
        live(during),
        live(before.clone()),
        "the killed publish left items behind"
    );

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

/// Whether a logged request reads though the API spells it POST: a definition read, one item's
/// (`getDefinition`) or many (`bulkExportDefinitions`).
fn is_read(r: &serde_json::Value) -> bool {
    r["path"]
        .as_str()
        .is_some_and(|p| p.ends_with("/getDefinition") || p.ends_with("/bulkExportDefinitions"))
}

/// Requests other than reads.
fn writes(log: &[serde_json::Value]) -> usize {
    log.iter()
        .filter(|r| r["method"] != "GET" && !is_read(r))
        .filter(|r| r["path"].as_str().is_some_and(|p| p.starts_with("/v1")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fabric_cicds_config_yml_publishes_and_a_second_publish_writes_nothing() {
    let (emu, token) = emulator(FaultConfig::default()).await;
    let base = format!("{}/v1", emu.base_url());
    let ws = workspace(&emu, &token, "from-config").await;
    // A config.yml as fabric-cicd reads it: the workspace by name, the shared fixture as the
    // repository, its parameter.yml, shortcuts on.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "core:\n  workspace:\n    prod: from-config\n  repository_directory: \"{}\"\n  parameter: \"{}\"\npublish:\n  exclude_regex: \"^DONT_DEPLOY.*\"\nunpublish:\n  skip:\n    prod: true\nfeatures:\n  - enable_shortcut_publish\n",
            fixture_root().display(),
            fixture_root().join("parameter.yml").display()
        ),
    )
    .unwrap();
    let run = || {
        let mut c = fabrik();
        c.args(["publish", "--cicd-config"])
            .arg(&config)
            .args(["--env", "prod", "--base-url", &base])
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .env("FABRIC_TOKEN", &token);
        c.output().unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let items: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/workspaces/{ws}/items"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(items["value"].as_array().unwrap().len(), 11, "{items}");

    let before = requests(&emu).await.len();
    let second = run();
    assert!(second.status.success());
    let log = requests(&emu).await;
    assert_eq!(writes(&log[before..]), 0, "{:?}", &log[before..]);
    emu.shutdown().await.unwrap();
}

/// A repository of one DataPipeline called `name`.
fn pipeline_repo(root: &Path, name: &str) {
    let dir = root.join(format!("{name}.DataPipeline"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".platform"),
        serde_json::json!({
            "metadata": {"type": "DataPipeline", "displayName": name},
            "config": {"version": "2.0", "logicalId": "3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b4caa"}
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("pipeline-content.json"),
        r#"{"properties": {"activities": []}}"#,
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_never_deletes_an_item_of_another_type_that_shares_the_name() {
    // The second item create hangs: the first is the Notebook made by hand below, the second
    // the repository's DataPipeline of the same name.
    let (emu, token) = emulator("POST /v1/workspaces/*/items#2=hang".parse().unwrap()).await;
    let base = format!("{}/v1", emu.base_url());
    let ws = workspace(&emu, &token, "same-name").await;
    let notebook: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/workspaces/{ws}/items"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"displayName": "Same", "type": "Notebook"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let repo = tempfile::tempdir().unwrap();
    pipeline_repo(repo.path(), "Same");
    let dir = tempfile::tempdir().unwrap();
    let mut child = fabrik()
        .arg("publish")
        .arg("--repository")
        .arg(repo.path())
        .args(["--workspace-id", &ws, "--base-url", &base])
        .arg("--state-dir")
        .arg(dir.path())
        .env("FABRIC_TOKEN", &token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let hung = |log: &[serde_json::Value]| {
        log.iter()
            .any(|r| r["method"] == "POST" && r["fault"] == "hang")
    };
    let mut seen = false;
    for _ in 0..4000 {
        if hung(&requests(&emu).await) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seen, "the pipeline's create was never sent");
    child.kill().unwrap(); // SIGKILL while the create hangs
    child.wait().unwrap();

    let journal = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .find(|t| t.contains("\"intent\""))
        .expect("the create intent is journaled");
    assert!(
        journal.contains(r#""itemType":"DataPipeline""#),
        "the intent records the item type: {journal}"
    );
    let status = fabrik()
        .arg("status")
        .arg("--state-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&status.stdout).to_string();
    let run_id = listing.split_whitespace().next().expect("a run is listed");
    let out = fabrik()
        .args(["rollback", run_id, "--base-url", &base])
        .arg("--state-dir")
        .arg(dir.path())
        .env("FABRIC_TOKEN", &token)
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{printed}");
    assert!(
        !printed.contains("Same"),
        "nothing named Same was undone: {printed}"
    );
    let items: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/workspaces/{ws}/items"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = items["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [notebook["id"].as_str().unwrap()],
        "the notebook is kept"
    );
    emu.shutdown().await.unwrap();
}

/// fabric-cicd's feature flags and `config.yml` keys fabrik cannot honour, or that fabric-cicd
/// refuses without their flags, stop the run with exit 4 at the line that sets them (or on
/// `--cicd-feature`), before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_yml_features_and_keys_fabrik_refuses_are_errors_at_their_line() {
    let (emu, token) = emulator(FaultConfig::default()).await;
    let base = format!("{}/v1", emu.base_url());
    let dir = tempfile::tempdir().unwrap();
    let head = format!(
        "core:\n  workspace_id: 11111111-2222-4333-8444-555555555555\n  repository_directory: \"{}\"\n",
        fixture_root().display()
    );
    // (the rest of config.yml, extra --cicd-feature flags, where the error is, a word in it)
    let cases: [(&str, &[&str], &str, &str); 6] = [
        (
            "features:\n  - enable_everything\n",
            &[],
            "config.yml:5:",
            "enable_everything",
        ),
        (
            "features:\n  - enable_hard_delete\n",
            &[],
            "config.yml:5:",
            "enable_hard_delete",
        ),
        (
            "features:\n  - enable_bulk_publish\n",
            &[],
            "config.yml:5:",
            "without `enable_experimental_features`",
        ),
        (
            "",
            &["enable_response_collection"],
            "--cicd-feature",
            "enable_response_collection",
        ),
        (
            "publish:\n  items_to_include: [Ingest.Notebook]\n",
            &["enable_items_to_include"],
            "config.yml:5:",
            "`enable_experimental_features`",
        ),
        (
            "constants:\n  PARALLEL_MAX_WORKERS: 4\n",
            &[],
            "config.yml:5:",
            "--concurrency",
        ),
    ];
    for (n, (rest, flags, at, word)) in cases.iter().enumerate() {
        let config = dir.path().join("config.yml");
        std::fs::write(&config, format!("{head}{rest}")).unwrap();
        let mut c = fabrik();
        c.args(["publish", "--cicd-config"])
            .arg(&config)
            .args(["--env", "test", "--base-url", &base])
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .env("FABRIC_TOKEN", &token);
        for f in *flags {
            c.args(["--cicd-feature", f]);
        }
        let out = c.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "case {n}: {stderr}");
        assert!(stderr.contains(at), "case {n}: expected {at} in\n{stderr}");
        assert!(
            stderr.contains(word),
            "case {n}: expected {word} in\n{stderr}"
        );
        assert!(
            stderr.contains("1 problem(s) found"),
            "case {n}: one error\n{stderr}"
        );
    }
    assert_eq!(requests(&emu).await, Vec::<serde_json::Value>::new());
    emu.shutdown().await.unwrap();
}

/// A repository of `n` notebooks, `NB0` … (logicalIds told apart by their last digits).
fn notebooks_repo(root: &Path, n: usize) {
    for i in 0..n {
        let dir = root.join(format!("NB{i}.Notebook"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(".platform"),
            serde_json::json!({
                "metadata": {"type": "Notebook", "displayName": format!("NB{i}")},
                "config": {"version": "2.0", "logicalId": format!("3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b{i:04}")},
            })
            .to_string(),
        )
        .unwrap();
        std::fs::write(
            dir.join("notebook-content.py"),
            format!("# Fabric notebook source\n\n# CELL ********************\n\nprint({i})\n"),
        )
        .unwrap();
    }
}

/// `fabrik publish` of the repository at `root`.
fn publish_repo(root: &Path, base: &str, token: &str, ws: &str, state: &Path) -> Command {
    let mut c = fabrik();
    c.arg("publish")
        .arg("--repository")
        .arg(root)
        .args(["--workspace-id", ws, "--base-url", base])
        .arg("--state-dir")
        .arg(state)
        .env("FABRIC_TOKEN", token);
    c
}

/// How many logged requests' paths end with `suffix`.
fn ending(log: &[serde_json::Value], suffix: &str) -> usize {
    log.iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with(suffix)))
        .count()
}

/// Issue 26: re-publishing reads the deployed definitions with one bulk export, so the requests
/// of a publish that changes nothing are as many for 12 items as for 3 (operation polls aside,
/// which follow the server's timing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_republish_reads_definitions_by_one_bulk_export_whatever_the_item_count() {
    let (emu, token) = emulator(FaultConfig::default()).await;
    let base = format!("{}/v1", emu.base_url());
    let mut counts = Vec::new();
    for n in [3, 12] {
        let ws = workspace(&emu, &token, &format!("bulk{n}")).await;
        let repo = tempfile::tempdir().unwrap();
        notebooks_repo(repo.path(), n);
        let state = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = publish_repo(repo.path(), &base, &token, &ws, state.path())
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        run(&[]);
        let before = requests(&emu).await.len();
        let plan = run(&["--plan"]);
        assert!(
            plan.contains(&format!(
                "deployed definitions read by 1 bulk export(s) ({n} item(s))\n"
            )),
            "{plan}"
        );
        let again = run(&[]);
        assert!(again.contains("no changes"), "{again}");
        let log = requests(&emu).await.split_off(before);
        assert_eq!(ending(&log, "/getDefinition"), 0, "{log:?}");
        assert_eq!(ending(&log, "/bulkExportDefinitions"), 2, "{log:?}");
        assert_eq!(writes(&log), 0, "{log:?}");
        let not_polls = log.iter().filter(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| !p.starts_with("/v1/operations/"))
        });
        counts.push(not_polls.count());
    }
    assert_eq!(counts[0], counts[1], "requests for 3 items, for 12");
    emu.shutdown().await.unwrap();
}

/// When the service refuses bulk export (here a 400, as when the beta API is not enabled),
/// definitions are read one by one: the plan says so and names the items, a publish that
/// changes something still updates what differs, and one that changes nothing writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_bulk_export_falls_back_to_reading_each_definition_and_the_plan_says_so() {
    let (emu, token) = emulator(FaultConfig::default()).await;
    let base = format!("{}/v1", emu.base_url());
    let ws = workspace(&emu, &token, "fallback").await;
    let state = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = publish(&base, &token, &ws, state.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.code() == Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["--env", "prod"]);
    let refuse = "POST /v1/workspaces/*/items/bulkExportDefinitions";
    emu.set_faults(
        (1..=5)
            .map(|n| format!("{refuse}#{n}=400"))
            .collect::<Vec<_>>()
            .join(",")
            .parse()
            .unwrap(),
    );

    let before = requests(&emu).await.len();
    let json = run(&["--env", "prod", "--plan", "--output", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    let reads = &plan["workspaces"][0]["definitionReads"];
    assert_eq!(reads["bulkExports"], 1, "{json}");
    assert_eq!(reads["exported"], 0, "{json}");
    let one_by_one = reads["oneByOne"].as_array().unwrap();
    let names: Vec<&str> = one_by_one
        .iter()
        .map(|o| o["item"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Notebook:Ingest") && names.contains(&"DataPipeline:Daily Load"),
        "{json}"
    );
    for o in one_by_one {
        let why = o["why"].as_str().unwrap();
        assert!(
            why.contains("bulk export refused") && why.contains("400"),
            "{why}"
        );
    }
    assert_eq!(plan["summary"]["update"], 0, "{json}");
    let log = requests(&emu).await.split_off(before);
    assert_eq!(ending(&log, "/getDefinition"), one_by_one.len(), "{log:?}");

    let before = requests(&emu).await.len();
    let text = run(&["--env", "prod", "--plan"]);
    assert!(
        text.contains("read one by one, bulk export refused") && text.contains("Notebook:Ingest"),
        "{text}"
    );
    let md = run(&["--env", "prod", "--plan", "--output", "markdown"]);
    assert!(
        md.contains("Deployed definitions read by 1 bulk export(s) (0 item(s)); ")
            && md.contains("read one by one, bulk export refused"),
        "{md}"
    );
    let again = run(&["--env", "prod"]);
    assert!(again.contains("no changes"), "{again}");
    let log = requests(&emu).await.split_off(before);
    assert_eq!(writes(&log), 0, "{log:?}");
    assert_eq!(ending(&log, "/getDefinition"), 3 * one_by_one.len());

    // Another environment changes definitions: read one by one (the fifth refusal), updated.
    let staged = run(&["--env", "staging"]);
    assert!(!staged.contains("no changes"), "{staged}");
    // Read back by bulk export (no more refusals), the updates match the repository.
    let before = requests(&emu).await.len();
    let plan = run(&["--env", "staging", "--plan", "--detailed-exitcode"]);
    assert!(
        plan.contains("bulk export(s)") && !plan.contains("one by one"),
        "{plan}"
    );
    let log = requests(&emu).await.split_off(before);
    assert_eq!(ending(&log, "/getDefinition"), 0, "{log:?}");
    emu.shutdown().await.unwrap();
}

/// Copies the directory `from` into `to` (created).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Changes a deployed notebook's content behind fabrik's back (as a user in the portal
/// would), through the service's own `updateDefinition`.
async fn edit_outside_fabrik(emu: &Emulator, token: &str, ws: &str, name: &str) {
    use base64::Engine as _;
    let id = emu.state()["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == ws)
        .and_then(|w| {
            w["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["displayName"] == name)
                .map(|i| i["id"].as_str().unwrap().to_string())
        })
        .unwrap();
    let content = base64::engine::general_purpose::STANDARD
        .encode("# Fabric notebook source\n\n# CELL ********************\n\nprint('edited')\n");
    let body = serde_json::json!({"definition": {"format": "ipynb", "parts": [
        {"path": "notebook-content.py", "payload": content, "payloadType": "InlineBase64"}]}});
    let http = reqwest::Client::new();
    let url = format!(
        "{}/v1/workspaces/{ws}/items/{id}/updateDefinition",
        emu.base_url()
    );
    let r = http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    if let Some(op) = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
    {
        loop {
            let s: serde_json::Value = http
                .get(&op)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            match s["status"].as_str() {
                Some("Succeeded") => break,
                Some("Failed") => panic!("{s}"),
                _ => tokio::task::yield_now().await,
            }
        }
    }
    assert!(deployed_part(emu, ws, name, "notebook-content.py").contains("edited"));
}

/// Issue 26, `--refresh=false`: after a publish, a plan that trusts the deployed record reads
/// no definition of an item whose rendering did not change (items mentioning others created
/// in the same run included: their digests are those of what the apply sent), says it did not
/// refresh, and reads just the item whose files changed; a change made outside fabrik is seen
/// only by a refreshing plan — the trade-off the flag's help states.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_false_reads_only_what_changed_since_the_record_and_says_it_did_not_refresh() {
    let (emu, token) = emulator(FaultConfig::default()).await;
    let base = format!("{}/v1", emu.base_url());
    let ws = workspace(&emu, &token, "refresh").await;
    let repo = tempfile::tempdir().unwrap();
    copy_tree(&fixture_root(), repo.path());
    let state = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = publish_repo(repo.path(), &base, &token, &ws, state.path())
            .args(["--env", "prod"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&[]);
    // The fixture's items with a definition (not its lakehouses and warehouse).
    let definitions = 8;

    let before = requests(&emu).await.len();
    let json = run(&["--plan", "--refresh=false", "--output", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    let reads = &plan["workspaces"][0]["definitionReads"];
    assert_eq!(reads["refresh"], false, "{json}");
    assert_eq!(reads["trusted"], definitions, "{json}");
    assert_eq!(reads["bulkExports"], 0, "{json}");
    assert_eq!(
        plan["workspaces"][0]["changes"].as_array().map(Vec::len),
        Some(0),
        "{json}"
    );
    let text = run(&["--plan", "--refresh=false"]);
    assert!(text.contains("not refreshed (--refresh=false)"), "{text}");
    let again = run(&["--refresh=false"]);
    assert!(again.contains("no changes"), "{again}");
    let log = requests(&emu).await.split_off(before);
    assert_eq!(ending(&log, "/getDefinition"), 0, "{log:?}");
    assert_eq!(ending(&log, "/bulkExportDefinitions"), 0, "{log:?}");
    assert_eq!(writes(&log), 0, "{log:?}");

    // One notebook's file changes: only it is read, and it is updated.
    let nb = repo
        .path()
        .join("notebooks/Ingest.Notebook/notebook-content.py");
    let text = std::fs::read_to_string(&nb).unwrap();
    std::fs::write(&nb, format!("{text}\n# changed\n")).unwrap();
    let json = run(&["--plan", "--refresh=false", "--output", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    let reads = &plan["workspaces"][0]["definitionReads"];
    assert_eq!(reads["trusted"], definitions - 1, "{json}");
    assert_eq!(reads["exported"], 1, "{json}");
    let changes = plan["workspaces"][0]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{json}");
    assert!(
        changes[0]["target"].as_str().unwrap().contains("Ingest"),
        "{json}"
    );
    run(&["--refresh=false"]);
    assert!(deployed_part(&emu, &ws, "Ingest", "notebook-content.py").contains("# changed"));

    // A change outside fabrik: not seen without a refresh, seen with one.
    edit_outside_fabrik(&emu, &token, &ws, "Utils").await;
    let trusting = run(&["--plan", "--refresh=false", "--detailed-exitcode"]);
    assert!(trusting.contains("no changes"), "{trusting}");
    let out = publish_repo(repo.path(), &base, &token, &ws, state.path())
        .args(["--env", "prod", "--plan", "--detailed-exitcode"])
        .output()
        .unwrap();
    let refreshed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{refreshed}");
    assert!(refreshed.contains("Utils"), "{refreshed}");
    emu.shutdown().await.unwrap();
}

/// An Environment's publish is started by its change and waited for by the run once its
/// other changes are done: the notebook that mentions the environment (it needs only its id)
/// is created while the publish runs, and a publish that ends `Failed` fails the run, which
/// rolls back everything, the notebook included, and names the environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_publish_is_waited_for_at_the_end_and_its_failure_rolls_the_run_back() {
    let faults = "POST /v1/workspaces/*/environments/*/staging/publish#1=lro-fail"
        .parse()
        .unwrap();
    let (emu, token) = emulator(faults).await;
    let base = format!("{}/v1", emu.base_url());
    let ws = workspace(&emu, &token, "envlast").await;
    let state = tempfile::tempdir().unwrap();
    let report = state.path().join("report.json");
    let out = publish(&base, &token, &ws, state.path())
        .args(["--env", "prod", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("publishing environment Spark"), "{stderr}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let undone: Vec<&str> = r["result"]["rolled_back"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    // The notebook mentioning the environment was created while its publish ran.
    assert!(undone.iter().any(|t| t.contains("Ingest")), "{undone:?}");
    assert!(undone.iter().any(|t| t.contains("Spark")), "{undone:?}");
    assert!(
        r["result"]["rollback_errors"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{r}"
    );
    let left = emu.state()["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == ws)
        .map(|w| w["items"].as_array().map_or(0, Vec::len))
        .unwrap();
    assert_eq!(left, 0, "everything the run made is rolled back");
    emu.shutdown().await.unwrap();
}
