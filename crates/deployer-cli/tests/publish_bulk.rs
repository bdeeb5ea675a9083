//! `fabrik publish --bulk` (and fabric-cicd's `enable_bulk_publish`) against the in-process
//! emulator over HTTP: the shared fixture deploys as a standard publish deploys it, in far
//! fewer write requests; a re-publish updates by bulk import; a failure after a batch rolls
//! the batch back; a Warehouse goes one by one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::Engine as _;
use fabrik_emulator::{Emulator, EmulatorConfig, FaultConfig};
use serde_json::Value;

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

async fn emulator() -> (Emulator, String) {
    let emu = Emulator::start(EmulatorConfig {
        faults: FaultConfig::default(),
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

async fn requests(emu: &Emulator) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{}/_emulator/requests", emu.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["requests"].as_array().cloned().unwrap_or_default()
}

async fn workspace(emu: &Emulator, token: &str, name: &str) -> String {
    let http = reqwest::Client::new();
    let caps: Value = http
        .get(format!("{}/v1/capacities", emu.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ws: Value = http
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

fn publish(root: &Path, base: &str, token: &str, ws: &str, state: &Path) -> Command {
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

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How many logged requests are `method` to a path ending with `suffix`.
fn count(log: &[Value], method: &str, suffix: &str) -> usize {
    log.iter()
        .filter(|r| r["method"] == method)
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with(suffix)))
        .count()
}

/// Per-item writes: a create (`POST /workspaces/{id}/items` or a typed collection) or a
/// definition update of one item.
fn per_item_writes(log: &[Value]) -> usize {
    log.iter()
        .filter(|r| r["method"] == "POST")
        .filter_map(|r| r["path"].as_str())
        .filter(|p| {
            let segs: Vec<&str> = p.trim_start_matches('/').split('/').collect();
            p.ends_with("/updateDefinition")
                || (segs.len() == 4 && segs[1] == "workspaces" && segs[3] != "folders")
        })
        .count()
}

/// A workspace's items as `Type:Name` → (folder path, description, parts), every id of the
/// workspace (its own, its items', its folders') replaced by what it names, so two workspaces
/// holding the same deployment compare equal.
fn deployment(emu: &Emulator, ws: &str) -> BTreeMap<String, Value> {
    let state = emu.state();
    let w = state["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == ws)
        .unwrap()
        .clone();
    let folders: BTreeMap<String, (String, Option<String>)> = w["folders"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                (
                    f["displayName"].as_str().unwrap().to_string(),
                    f["parentFolderId"].as_str().map(str::to_string),
                ),
            )
        })
        .collect();
    let path = |mut id: Option<String>| {
        let mut names = Vec::new();
        while let Some(i) = id {
            let (n, p) = folders[&i].clone();
            names.insert(0, n);
            id = p;
        }
        names.join("/")
    };
    let items = w["items"].as_array().cloned().unwrap_or_default();
    let mut names: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            let k = format!(
                "{}:{}",
                i["type"].as_str().unwrap_or_default(),
                i["displayName"].as_str().unwrap()
            );
            (i["id"].as_str().unwrap().to_string(), k)
        })
        .collect();
    names.push((ws.to_string(), "WORKSPACE".into()));
    let mut out = BTreeMap::new();
    for i in &items {
        let k = format!(
            "{}:{}",
            i["type"].as_str().unwrap_or_default(),
            i["displayName"].as_str().unwrap()
        );
        let mut parts = BTreeMap::new();
        for p in i["definition"]["parts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(p["payload"].as_str().unwrap())
                .unwrap();
            let mut text = String::from_utf8_lossy(&bytes).into_owned();
            for (id, name) in &names {
                text = text.replace(id.as_str(), name);
            }
            let path = p["path"].as_str().unwrap().to_string();
            // The service writes its own `.platform` (the logicalId it keeps).
            if path != ".platform" {
                parts.insert(path, text);
            }
        }
        out.insert(
            k,
            serde_json::json!({
                "folder": path(i["folderId"].as_str().map(str::to_string)),
                "description": i["description"],
                "parts": parts,
            }),
        );
    }
    out
}

/// The fixture's items as a standard publish deploys them, and as `--bulk` does: the same
/// items, folders, descriptions and definitions, with bulk imports instead of per-item writes
/// for every type but the Warehouse (and the shell Lakehouse), which go one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_first_publish_deploys_what_a_standard_one_does_in_far_fewer_requests() {
    let (emu, token) = emulator().await;
    let base = format!("{}/v1", emu.base_url());
    let state = tempfile::tempdir().unwrap();
    let standard = workspace(&emu, &token, "standard").await;
    let bulk = workspace(&emu, &token, "bulk").await;

    let before = requests(&emu).await.len();
    ok(
        publish(&fixture_root(), &base, &token, &standard, state.path())
            .args(["--env", "prod"])
            .output()
            .unwrap(),
    );
    let log = requests(&emu).await.split_off(before);
    let standard_writes = per_item_writes(&log);
    assert_eq!(count(&log, "POST", "/bulkImportDefinitions"), 0);

    let plan = ok(publish(&fixture_root(), &base, &token, &bulk, state.path())
        .args(["--env", "prod", "--bulk", "--plan"])
        .output()
        .unwrap());
    assert!(
        plan.contains("bulk import 1 (bulkImportDefinitions)"),
        "{plan}"
    );
    assert!(plan.contains("by bulk import 1"), "{plan}");

    let before = requests(&emu).await.len();
    ok(publish(&fixture_root(), &base, &token, &bulk, state.path())
        .args(["--env", "prod", "--bulk"])
        .output()
        .unwrap());
    let log = requests(&emu).await.split_off(before);
    let imports = count(&log, "POST", "/bulkImportDefinitions");
    let one_by_one = per_item_writes(&log);
    assert!(imports >= 1, "{log:?}");
    // One by one: the Warehouse (bulk import refuses it) and the Lakehouses (no definition).
    let shells: Vec<&str> = log
        .iter()
        .filter(|r| r["method"] == "POST")
        .filter_map(|r| r["path"].as_str())
        .filter(|p| {
            p.ends_with("/items") || p.ends_with("/warehouses") || p.ends_with("/lakehouses")
        })
        .collect();
    assert_eq!(count(&log, "POST", "/updateDefinition"), 0, "{log:?}");
    assert!(
        imports + one_by_one < standard_writes,
        "bulk: {imports} import(s) + {one_by_one} per-item writes; standard: {standard_writes}"
    );
    let warehouse_created = emu.state()["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == bulk.as_str())
        .unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["type"] == "Warehouse");
    // The emulator refuses a bulk import holding a Warehouse (as the service does), so it can
    // only have been created by its own request: three per-item creates, the Warehouse's and
    // the two Lakehouses'.
    assert!(
        warehouse_created,
        "the Warehouse is published one by one: {shells:?}"
    );
    assert_eq!(one_by_one, 3, "{shells:?}");
    assert_eq!(deployment(&emu, &bulk), deployment(&emu, &standard));

    // Nothing changed: a second bulk publish writes nothing.
    let again = ok(publish(&fixture_root(), &base, &token, &bulk, state.path())
        .args(["--env", "prod", "--bulk"])
        .output()
        .unwrap());
    assert!(again.contains("no changes"), "{again}");
    emu.shutdown().await.unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// A notebook `name` whose code mentions `mentions` (a logicalId makes it a reference).
fn notebook(root: &Path, name: &str, logical_id: &str, mentions: &str) {
    let dir = root.join(format!("{name}.Notebook"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".platform"),
        serde_json::json!({
            "metadata": {"type": "Notebook", "displayName": name},
            "config": {"version": "2.0", "logicalId": logical_id},
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("notebook-content.py"),
        format!("# Fabric notebook source\n\n# CELL ********************\n\nprint('{mentions}')\n"),
    )
    .unwrap();
}

/// A re-publish after a change updates by bulk import (no `updateDefinition`); a failure after
/// a batch (the second import refused) rolls the run back: the items it created are gone, the
/// ones it updated have their previous definitions again, put back by one bulk import.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_republish_updates_by_import_and_a_failure_after_a_batch_rolls_back() {
    let (emu, token) = emulator().await;
    let base = format!("{}/v1", emu.base_url());
    let state = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    copy_dir(&fixture_root(), repo.path());
    let ws = workspace(&emu, &token, "bulk-again").await;
    let run = || {
        publish(repo.path(), &base, &token, &ws, state.path())
            .args(["--env", "prod", "--bulk"])
            .output()
            .unwrap()
    };
    ok(run());

    let ingest = repo
        .path()
        .join("notebooks/Ingest.Notebook/notebook-content.py");
    let mut code = std::fs::read_to_string(&ingest).unwrap();
    code.push_str("\n# changed once\n");
    std::fs::write(&ingest, &code).unwrap();
    let before = requests(&emu).await.len();
    let out = ok(run());
    let log = requests(&emu).await.split_off(before);
    assert_eq!(
        count(&log, "POST", "/bulkImportDefinitions"),
        1,
        "{out}\n{log:?}"
    );
    assert_eq!(count(&log, "POST", "/updateDefinition"), 0, "{log:?}");
    let deployed = deployment(&emu, &ws);
    let part = &deployed["Notebook:Ingest"]["parts"]["notebook-content.py"];
    assert!(part.as_str().unwrap().contains("# changed once"), "{part}");

    // Two new notebooks, the second mentioning the first (so a later batch), and Ingest
    // changed again; the second import is refused.
    notebook(
        repo.path(),
        "First",
        "5d2c8a10-1b2c-4d3e-8f40-516273849501",
        "none",
    );
    notebook(
        repo.path(),
        "Second",
        "5d2c8a10-1b2c-4d3e-8f40-516273849502",
        "5d2c8a10-1b2c-4d3e-8f40-516273849501",
    );
    code.push_str("# changed twice\n");
    std::fs::write(&ingest, &code).unwrap();
    emu.set_faults(
        "POST /v1/workspaces/*/items/bulkImportDefinitions#2=400"
            .parse()
            .unwrap(),
    );
    let before = requests(&emu).await.len();
    let failed = run();
    assert!(!failed.status.success());
    let log = requests(&emu).await.split_off(before);
    // Two batches sent (the second refused), then the rollback: Ingest's previous definition
    // put back by one more bulk import, First deleted.
    assert_eq!(
        count(&log, "POST", "/bulkImportDefinitions"),
        3,
        "{}\n{log:?}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert_eq!(count(&log, "POST", "/updateDefinition"), 0, "{log:?}");
    assert_eq!(count(&log, "DELETE", ""), 1, "{log:?}");
    let after = deployment(&emu, &ws);
    assert!(
        !after.contains_key("Notebook:First"),
        "created, then deleted"
    );
    assert_eq!(after, deployed, "updated items are restored");
    emu.shutdown().await.unwrap();
}

/// fabric-cicd's `enable_bulk_publish` (with `enable_experimental_features`) in `config.yml`
/// publishes as `--bulk` does; with a Warehouse in scope it falls back to item by item, as
/// fabric-cicd does, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enable_bulk_publish_in_config_yml_does_what_bulk_does_or_falls_back_as_fabric_cicd() {
    let (emu, token) = emulator().await;
    let base = format!("{}/v1", emu.base_url());
    let dir = tempfile::tempdir().unwrap();
    let types =
        "[VariableLibrary, Lakehouse, Environment, Notebook, DataPipeline, SemanticModel, Report]";
    let with_config = |ws: &str, types: &str| {
        let config = dir.path().join(format!("{ws}.yml"));
        std::fs::write(
            &config,
            format!(
                "core:\n  workspace_id: {ws}\n  repository_directory: \"{}\"\n  item_types_in_scope: {types}\nunpublish:\n  skip: true\nfeatures:\n  - enable_experimental_features\n  - enable_bulk_publish\n",
                fixture_root().display()
            ),
        )
        .unwrap();
        let mut c = fabrik();
        c.args(["publish", "--cicd-config"])
            .arg(&config)
            .args(["--env", "prod", "--base-url", &base])
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .env("FABRIC_TOKEN", &token);
        c.output().unwrap()
    };

    let by_flag = workspace(&emu, &token, "by-flag").await;
    ok(
        publish(&fixture_root(), &base, &token, &by_flag, dir.path())
            .args(["--env", "prod", "--bulk", "--item-types"])
            .arg(types.trim_matches(['[', ']']).replace(' ', ""))
            .output()
            .unwrap(),
    );
    let by_config = workspace(&emu, &token, "by-config").await;
    let before = requests(&emu).await.len();
    ok(with_config(&by_config, types));
    let log = requests(&emu).await.split_off(before);
    assert!(
        count(&log, "POST", "/bulkImportDefinitions") >= 1,
        "{log:?}"
    );
    assert_eq!(count(&log, "POST", "/updateDefinition"), 0, "{log:?}");
    assert_eq!(deployment(&emu, &by_config), deployment(&emu, &by_flag));

    // The fixture's config.yml scope has the Warehouse: fabric-cicd's standard mode.
    let fallback = workspace(&emu, &token, "fallback").await;
    let before = requests(&emu).await.len();
    let out = with_config(
        &fallback,
        "[VariableLibrary, Lakehouse, Warehouse, Environment, Notebook, DataPipeline, SemanticModel, Report]",
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(
        stderr.contains("falls back to its standard mode") && stderr.contains("Gold.Warehouse"),
        "{stderr}"
    );
    let log = requests(&emu).await.split_off(before);
    assert_eq!(count(&log, "POST", "/bulkImportDefinitions"), 0, "{log:?}");
    emu.shutdown().await.unwrap();
}
