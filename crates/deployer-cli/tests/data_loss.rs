//! The data-loss guard (issue 23): a plan marks every change that destroys stored data, and
//! `apply`, `publish` and `destroy` carry such a plan out only with `--allow-data-loss` (or,
//! for fabric-cicd's guarded types, their `enable_<type>_unpublish` flag) — refused with exit
//! code 4 and no write otherwise.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use fabrik_emulator::{Emulator, EmulatorConfig};

fn fabrik() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fabrik"));
    c.env_remove("FABRIC_API_BASE_URL")
        .env("FABRIK_LOG", "off")
        .stdin(Stdio::null());
    c
}

async fn emulator() -> (Emulator, String) {
    let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let token = emu.mint_token_as(
        "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "ServicePrincipal",
        Duration::from_secs(3600),
    );
    (emu, token)
}

/// Requests that change something (anything but GET), as the emulator logged them.
async fn writes(emu: &Emulator) -> usize {
    let v: serde_json::Value = reqwest::get(format!("{}/_emulator/requests", emu.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["requests"]
        .as_array()
        .map(|a| a.iter().filter(|r| r["method"] != "GET").count())
        .unwrap_or(0)
}

/// The names of the items in the emulator's workspaces (deleted items aside).
fn items(emu: &Emulator) -> Vec<String> {
    emu.state()["workspaces"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|w| w["items"].as_array().cloned().unwrap_or_default())
        .filter_map(|i| i["displayName"].as_str().map(str::to_owned))
        .collect()
}

/// Runs fabrik in `dir` (its fabrik.yaml, its state directory) against `emu`.
fn run(emu: &Emulator, token: &str, dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
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
async fn a_prune_that_deletes_a_lakehouse_is_marked_and_refused_without_allow_data_loss() {
    let (emu, token) = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("fabrik.yaml"),
        "project: {name: g, prefix: g}\nworkspaces:\n  - name: one\n    lakehouses: [{name: LH_keep}, {name: LH_old}]\n",
    )
    .unwrap();
    let (code, _, stderr) = run(&emu, &token, d, &["apply"]);
    assert_eq!(code, Some(0), "{stderr}");
    // LH_old leaves the configuration: with --prune, its delete is the plan's one change.
    std::fs::write(
        d.join("fabrik.yaml"),
        "project: {name: g, prefix: g}\nworkspaces:\n  - name: one\n    lakehouses: [{name: LH_keep}]\n",
    )
    .unwrap();

    let (code, stdout, stderr) = run(&emu, &token, d, &["plan", "--prune", "--output", "json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let change = &plan["workspaces"][0]["changes"][0];
    assert_eq!(change["action"], "delete", "{plan}");
    assert_eq!(change["dataLoss"], true, "{plan}");
    assert!(
        change["dataLossReason"]
            .as_str()
            .is_some_and(|r| r.contains("Lakehouse LH_old")),
        "{plan}"
    );
    assert_eq!(plan["summary"]["dataLoss"], 1, "{plan}");

    let (_, md, _) = run(
        &emu,
        &token,
        d,
        &["plan", "--prune", "--output", "markdown"],
    );
    assert!(
        md.starts_with("## fabrik plan\n\n**⚠️ Data loss: 1 change(s)"),
        "the warning leads the comment, in bold: {md}"
    );
    assert!(md.contains("- **g-one-dev: `-` lakehouse LH_old"), "{md}");
    let (_, text, _) = run(&emu, &token, d, &["plan", "--prune"]);
    assert!(
        text.contains(
            "- lakehouse LH_old (not in the configuration) [DATA LOSS: deletes Lakehouse LH_old"
        ),
        "{text}"
    );
    assert!(text.contains("(1 destroying stored data)"), "{text}");

    // Refused: exit 4, the change named, nothing written.
    let before = writes(&emu).await;
    let (code, _, stderr) = run(&emu, &token, d, &["apply", "--prune"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        stderr.contains("--allow-data-loss") && stderr.contains("lakehouse LH_old"),
        "{stderr}"
    );
    assert_eq!(writes(&emu).await, before, "a refused plan writes nothing");
    assert!(items(&emu).contains(&"LH_old".to_string()));

    // Allowed.
    let (code, _, stderr) = run(&emu, &token, d, &["apply", "--prune", "--allow-data-loss"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(items(&emu), ["LH_keep"]);

    // A prune that deletes nothing holding data needs no consent.
    std::fs::write(
        d.join("fabrik.yaml"),
        "project: {name: g, prefix: g}\nworkspaces:\n  - name: one\n    lakehouses: [{name: LH_keep}]\n    folders: [raw]\n",
    )
    .unwrap();
    let (code, _, stderr) = run(&emu, &token, d, &["apply", "--prune"]);
    assert_eq!(code, Some(0), "{stderr}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_unpublishes_a_lakehouse_with_enable_lakehouse_unpublish_as_consent() {
    let (emu, token) = emulator().await;
    let base = format!("{}/v1", emu.base_url());
    let http = reqwest::Client::new();
    let ws: serde_json::Value = http
        .post(format!("{base}/workspaces"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"displayName": "pub"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let ws = ws["id"].as_str().unwrap().to_string();
    http.post(format!("{base}/workspaces/{ws}/items"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"displayName": "Old", "type": "Lakehouse"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let repo = tempfile::tempdir().unwrap();
    lakehouse_repo(repo.path());
    let state = tempfile::tempdir().unwrap();
    let publish = |extra: &[&str]| {
        let out = fabrik()
            .arg("publish")
            .arg("--repository")
            .arg(repo.path())
            .args(["--workspace-id", &ws, "--base-url", &base, "--unpublish"])
            .args(extra)
            .arg("--state-dir")
            .arg(state.path())
            .env("FABRIC_TOKEN", &token)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let flag = ["--cicd-feature", "enable_lakehouse_unpublish"];
    let (code, stdout, stderr) = publish(&[&flag[..], &["--plan", "--output", "json"]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let delete = plan["workspaces"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["action"] == "delete")
        .cloned()
        .unwrap_or_else(|| panic!("the orphan's delete is planned: {plan}"));
    assert_eq!(delete["target"], "lakehouse Old", "{plan}");
    assert_eq!(delete["dataLoss"], true, "{plan}");
    // The flag is the consent: no --allow-data-loss needed.
    let (code, _, stderr) = publish(&flag);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(items(&emu), ["New"]);
    emu.shutdown().await.unwrap();
}
