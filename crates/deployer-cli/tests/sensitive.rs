//! Values deployed from secrets stay sensitive across runs, each `fabrik` command its own
//! process as a user runs them: after a description rendered from `${secret:A}` is changed to
//! `${secret:B}` (a workspace's, an item's), the next plan, apply, report, log and journal
//! show the deployed value as `(sensitive)` or as the reference `${secret:A}`, never A's value — whether or not A is
//! still in the environment — and a rollback restores it by resolving `${secret:A}` again.
//! The same for a definition part rendered from a `parameter.yml` `$ENV:` value, and with
//! shared state in Azure Blob Storage (Azurite).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use fabrik_emulator::{Emulator, EmulatorConfig};
use fabrik_state_azure::azurite::Azurite;

const FIRST: &str = "first-Zq81xk-owner";
const SECOND: &str = "second-Rt4vX9-owner";
const LAKE_FIRST: &str = "lake-first-Hq2mW7";
const LAKE_SECOND: &str = "lake-second-Pn5cJ3";

fn fabrik() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fabrik"));
    c.env_remove("FABRIC_API_BASE_URL")
        .env_remove("SENS_FIRST")
        .env_remove("SENS_SECOND")
        .env_remove("SENS_LAKE_FIRST")
        .env_remove("SENS_LAKE_SECOND")
        .env("FABRIK_LOG", "debug")
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

/// A project with one workspace described as `owner ${secret:NAME}`, and git after it when
/// `failing_git` (the connect fails on the emulator: no capacity), so the run rolls back.
fn config(dir: &Path, secret: &str, failing_git: bool) -> PathBuf {
    let git = if failing_git {
        "    git: {provider: GitHub, owner: o, repository: r, branch: main, connection_id: 7d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a}\n"
    } else {
        ""
    };
    let path = dir.join("fabrik.yaml");
    std::fs::write(
        &path,
        format!(
            "project: {{name: s, prefix: s}}\nworkspaces:\n  - name: one\n    description: \"owner ${{secret:{secret}}}\"\n{git}"
        ),
    )
    .unwrap();
    path
}

/// [`config`]'s project on a capacity, with a lakehouse described as `lake ${secret:LAKE}`.
fn config_with_lakehouse(dir: &Path, secret: &str, lake: &str) {
    std::fs::write(
        dir.join("fabrik.yaml"),
        format!(
            "project: {{name: s, prefix: s}}\nenvironments:\n  dev: {{capacity: emulator-capacity-1}}\nworkspaces:\n  - name: one\n    description: \"owner ${{secret:{secret}}}\"\n    lakehouses:\n      - name: LH_Sens\n        description: \"lake ${{secret:{lake}}}\"\n"
        ),
    )
    .unwrap();
}

/// The description of the lakehouse of [`config_with_lakehouse`].
fn lakehouse_description(emu: &Emulator) -> String {
    let state = emu.state();
    let items = state["workspaces"][0]["items"].as_array().unwrap();
    let lh = items
        .iter()
        .find(|i| i["displayName"] == "LH_Sens")
        .unwrap();
    lh["description"].as_str().unwrap_or_default().to_string()
}

/// Everything a directory holds, as text, with every base64 string in its JSON decoded
/// beside it (journals keep definition parts as base64).
fn texts(dir: &Path) -> String {
    use base64::Engine as _;
    fn walk(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::String(s) => {
                if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(s) {
                    out.push_str(&String::from_utf8_lossy(&b));
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            for line in text.lines() {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                    walk(&v, &mut out);
                }
            }
            out.push_str(&text);
        }
    }
    out
}

/// Runs `c`; (exit code, stdout + stderr).
fn run(c: &mut Command) -> (Option<i32>, String) {
    let out = c.output().unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The description of the one workspace on the emulator.
fn description(emu: &Emulator) -> String {
    let state = emu.state();
    let ws = state["workspaces"].as_array().unwrap();
    assert_eq!(ws.len(), 1, "{state}");
    ws[0]["description"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Run 1 deploys `owner ${secret:sens-first}`; the config then names `${secret:sens-second}`.
/// The plan (text and JSON) and the apply with its report show the deployed description as
/// `(sensitive)` and the journal keeps `${secret:sens-first}`: never the first value, with or
/// without it still in the environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_description_deployed_from_a_secret_stays_sensitive_after_its_reference_changes() {
    for first_still_set in [true, false] {
        let (emu, token) = emulator().await;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let state = d.join("state");
        let fabrik = |args: &[&str], first: bool| {
            let mut c = fabrik();
            c.args(args)
                .arg("--config")
                .arg(d.join("fabrik.yaml"))
                .args(["--base-url", &format!("{}/v1", emu.base_url())])
                .arg("--state-dir")
                .arg(&state)
                .env("FABRIC_TOKEN", &token)
                .env("SENS_SECOND", SECOND)
                .env("SENS_LAKE_SECOND", LAKE_SECOND);
            if first {
                c.env("SENS_FIRST", FIRST)
                    .env("SENS_LAKE_FIRST", LAKE_FIRST);
            }
            c
        };
        config_with_lakehouse(d, "sens-first", "sens-lake-first");
        let (code, text) = run(&mut fabrik(&["apply"], true));
        assert_eq!(code, Some(0), "{text}");
        assert_eq!(description(&emu), format!("owner {FIRST}"));
        assert_eq!(lakehouse_description(&emu), format!("lake {LAKE_FIRST}"));

        config_with_lakehouse(d, "sens-second", "sens-lake-second");
        let mut everything = String::new();
        for output in ["text", "json", "markdown"] {
            let (code, text) = run(&mut fabrik(&["plan", "--output", output], first_still_set));
            assert_eq!(code, Some(0), "{text}");
            assert!(text.contains("(sensitive)"), "{output}: {text}");
            everything += &text;
        }
        let report = d.join("report.json");
        let (code, text) = run(&mut fabrik(
            &["apply", "--report", report.to_str().unwrap()],
            first_still_set,
        ));
        assert_eq!(code, Some(0), "{text}");
        everything += &text;
        let report = std::fs::read_to_string(&report).unwrap();
        assert!(report.contains("(sensitive)"), "{report}");
        everything += &report;
        assert_eq!(description(&emu), format!("owner {SECOND}"));
        assert_eq!(lakehouse_description(&emu), format!("lake {LAKE_SECOND}"));
        let journals = texts(&state);
        assert!(
            journals.contains("owner ${secret:sens-first}"),
            "{journals}"
        );
        assert!(
            journals.contains("lake ${secret:sens-lake-first}"),
            "{journals}"
        );
        everything += &journals;
        assert!(
            !everything.contains(FIRST) && !everything.contains(LAKE_FIRST),
            "first set: {first_still_set}; a first value leaked:\n{everything}"
        );
        emu.shutdown().await.unwrap();
    }
}

/// The run of the second reference fails after its description update: it rolls back to
/// `owner <first value>` by resolving `${secret:sens-first}`, printing no value. A run left
/// failed (`--no-rollback`) is rolled back by `fabrik rollback RUN_ID` in another process the
/// same way; without the first secret that rollback stops before undoing anything, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_restores_a_value_deployed_from_a_secret_by_resolving_its_reference() {
    let (emu, token) = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = d.join("state");
    let fabrik = |args: &[&str], first: bool| {
        let mut c = fabrik();
        c.args(args)
            .arg("--config")
            .arg(d.join("fabrik.yaml"))
            .args(["--base-url", &format!("{}/v1", emu.base_url())])
            .arg("--state-dir")
            .arg(&state)
            .env("FABRIC_TOKEN", &token)
            .env("SENS_SECOND", SECOND);
        if first {
            c.env("SENS_FIRST", FIRST);
        }
        c
    };
    config(d, "sens-first", false);
    let (code, text) = run(&mut fabrik(&["apply"], true));
    assert_eq!(code, Some(0), "{text}");

    config(d, "sens-second", true);
    let mut everything = String::new();
    let (code, text) = run(&mut fabrik(&["apply"], false));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("rolled back"), "{text}");
    everything += &text;
    assert_eq!(description(&emu), format!("owner {FIRST}"));

    let report = d.join("report.json");
    let (code, text) = run(&mut fabrik(
        &[
            "apply",
            "--no-rollback",
            "--report",
            report.to_str().unwrap(),
        ],
        false,
    ));
    assert_eq!(code, Some(1), "{text}");
    everything += &text;
    assert_eq!(description(&emu), format!("owner {SECOND}"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let run_id = report["result"]["run_id"].as_str().unwrap().to_string();

    // Without the first secret: nothing is undone, and the error names the reference.
    let (code, text) = run(&mut fabrik(&["rollback", &run_id], false));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("'sens-first'") && text.contains("nothing was undone"),
        "{text}"
    );
    everything += &text;
    assert_eq!(description(&emu), format!("owner {SECOND}"));

    let (code, text) = run(&mut fabrik(&["rollback", &run_id], true));
    assert_eq!(code, Some(0), "{text}");
    everything += &text;
    assert_eq!(description(&emu), format!("owner {FIRST}"));
    everything += &texts(&state);
    assert!(
        !everything.contains(FIRST),
        "the first value leaked:\n{everything}"
    );
    emu.shutdown().await.unwrap();
}

/// A repository of one notebook whose `PWSLOT` a `parameter.yml` replaces with `$ENV:SENS_PW`.
fn env_repo(root: &Path) {
    let nb = root.join("Ingest.Notebook");
    std::fs::create_dir_all(&nb).unwrap();
    std::fs::write(
        nb.join(".platform"),
        serde_json::json!({
            "metadata": {"type": "Notebook", "displayName": "Ingest"},
            "config": {"version": "2.0", "logicalId": "3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b0001"},
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        nb.join("notebook-content.py"),
        "# Fabric notebook source\n\n# CELL ********************\n\nconn = \"PWSLOT\"\n",
    )
    .unwrap();
    std::fs::write(
        root.join("parameter.yml"),
        "find_replace:\n  - find_value: \"PWSLOT\"\n    replace_value:\n      dev: \"$ENV:SENS_PW\"\n",
    )
    .unwrap();
}

/// The notebook's deployed content.
fn notebook(emu: &Emulator) -> String {
    use base64::Engine as _;
    let state = emu.state();
    let item = &state["workspaces"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["displayName"] == "Ingest")
        .cloned()
        .unwrap_or_else(|| panic!("Ingest is deployed: {state}"));
    let part = item["definition"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == "notebook-content.py")
        .cloned()
        .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(part["payload"].as_str().unwrap())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// Publish 1 renders `$ENV:SENS_PW` into a notebook; publish 2 renders the variable's new
/// value and fails after the update (the service answers 400 once it applied it): its plan,
/// report, log and journal hold `${fabrik-secret:env:SENS_PW}` where the deployed (first)
/// value was, never that value, and its rollback puts the first content back. Publish 3
/// fails the same way with rollback off; `fabrik rollback` of it in another process restores
/// the first content by resolving the variable again, and without it undoes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definition_part_published_from_an_env_value_stays_sensitive_after_it_changes() {
    let update = "POST /v1/workspaces/*/items/*/updateDefinition";
    let emu = Emulator::start(EmulatorConfig {
        faults: format!("{update}#1=apply-then-400,{update}#3=apply-then-400")
            .parse()
            .unwrap(),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let token = emu.mint_token_as(
        "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "ServicePrincipal",
        Duration::from_secs(3600),
    );
    let http = reqwest::Client::new();
    let caps: serde_json::Value = http
        .get(format!("{}/v1/capacities", emu.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ws: serde_json::Value = http
        .post(format!("{}/v1/workspaces", emu.base_url()))
        .bearer_auth(&token)
        .json(&serde_json::json!({"displayName": "sens-publish", "capacityId": caps["value"][0]["id"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ws = ws["id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let repo = d.join("repo");
    env_repo(&repo);
    let state = d.join("state");
    let publish = |args: &[&str], pw: Option<&str>| {
        let mut c = fabrik();
        c.arg(args[0])
            .args(&args[1..])
            .arg("--config")
            .arg(d.join("none.yaml"))
            .args(["--base-url", &format!("{}/v1", emu.base_url())])
            .arg("--state-dir")
            .arg(&state)
            .env("FABRIC_TOKEN", &token)
            .env_remove("SENS_PW");
        if args[0] == "publish" {
            c.arg("--repository")
                .arg(&repo)
                .args(["--workspace-id", &ws])
                .args(["--cicd-feature", "enable_environment_variable_replacement"]);
        }
        if let Some(pw) = pw {
            c.env("SENS_PW", pw);
        }
        c
    };
    let (code, text) = run(&mut publish(&["publish"], Some(FIRST)));
    assert_eq!(code, Some(0), "{text}");
    assert!(notebook(&emu).contains(FIRST));

    let mut everything = String::new();
    let (code, text) = run(&mut publish(&["publish", "--plan"], Some(SECOND)));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("notebook-content.py"), "{text}");
    everything += &text;
    let report = d.join("report.json");
    let (code, text) = run(&mut publish(
        &["publish", "--report", report.to_str().unwrap()],
        Some(SECOND),
    ));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("rolled back"), "{text}");
    everything += &text;
    everything += &std::fs::read_to_string(&report).unwrap();
    assert!(notebook(&emu).contains(FIRST), "{}", notebook(&emu));
    let journals = texts(&state);
    assert!(
        journals.contains("conn = \"${fabrik-secret:env:SENS_PW}\""),
        "{journals}"
    );

    let (code, text) = run(&mut publish(
        &[
            "publish",
            "--feature",
            "rollback=off",
            "--report",
            report.to_str().unwrap(),
        ],
        Some(SECOND),
    ));
    assert_eq!(code, Some(1), "{text}");
    everything += &text;
    assert!(notebook(&emu).contains(SECOND));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let run_id = report["result"]["run_id"].as_str().unwrap().to_string();
    let (code, text) = run(&mut publish(&["rollback", &run_id], None));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("'env:SENS_PW'") && text.contains("nothing was undone"),
        "{text}"
    );
    everything += &text;
    assert!(notebook(&emu).contains(SECOND));
    let (code, text) = run(&mut publish(&["rollback", &run_id], Some(FIRST)));
    assert_eq!(code, Some(0), "{text}");
    assert!(notebook(&emu).contains(FIRST), "{}", notebook(&emu));
    everything += &texts(&state);
    assert!(
        !everything.contains(FIRST),
        "the first value leaked:\n{everything}"
    );
    emu.shutdown().await.unwrap();
}

/// With shared state in an Azure Blob container, the record is a blob beside the journals
/// (`deployed/<lock key>.json`, references only) and a run on another machine — another
/// working directory, nothing local shared — learns from it as a local run does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployed_record_lives_in_shared_state_and_a_run_elsewhere_uses_it() {
    let azurite = Azurite::start();
    let (emu, token) = emulator().await;
    let container = format!(
        "sens{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let url = azurite.container_url(&container);
    let config_dir = tempfile::tempdir().unwrap();
    let cfg = config_dir.path();
    let on_machine = |cwd: &Path, args: &[&str]| {
        let mut c = fabrik();
        c.current_dir(cwd)
            .args(args)
            .arg("--config")
            .arg(cfg.join("fabrik.yaml"))
            .args(["--base-url", &format!("{}/v1", emu.base_url())])
            .env_remove("FABRIK_STATE_DIR")
            .env("FABRIC_TOKEN", &token)
            .env("FABRIK_STATE", &url)
            .env("FABRIK_STATE_SAS", Azurite::sas())
            .env("SENS_FIRST", FIRST)
            .env("SENS_SECOND", SECOND);
        c
    };
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    config(cfg, "sens-first", false);
    let (code, text) = run(&mut on_machine(one.path(), &["apply"]));
    assert_eq!(code, Some(0), "{text}");

    let store = fabrik_state_azure::AzureBlobStore::new(
        fabrik_state_azure::StateUrl::parse(&url)
            .unwrap()
            .with_sas(Some(Azurite::sas().into())),
        fabrik_state_azure::AzureStateOptions::default(),
    )
    .unwrap();
    use fabrik_core::JournalStore as _;
    let name = emu.state()["workspaces"][0]["displayName"]
        .as_str()
        .unwrap()
        .to_lowercase();
    let record = store
        .read_record(&format!("s.dev.{name}"))
        .await
        .unwrap()
        .map(|b| String::from_utf8(b).unwrap());
    let record = record.unwrap_or_else(|| panic!("a record under the workspace's lock key"));
    assert!(record.contains("owner ${secret:sens-first}"), "{record}");
    assert!(!record.contains(FIRST), "{record}");

    config(cfg, "sens-second", false);
    let (code, text) = run(&mut on_machine(two.path(), &["plan"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("(sensitive)"), "{text}");
    assert!(!text.contains(FIRST), "{text}");
    emu.shutdown().await.unwrap();
    drop(azurite);
}

/// A `serve` cycle leaves the deployed record as `apply` does: a later plan, in another
/// process and after the reference changed, shows the description it deployed as
/// `(sensitive)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_cycle_leaves_the_deployed_record_a_later_plan_uses() {
    let (emu, token) = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = d.join("state");
    config(d, "sens-first", false);
    let mut serve = fabrik()
        .args(["serve", "--interval", "3600", "--listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(d.join("fabrik.yaml"))
        .args(["--base-url", &format!("{}/v1", emu.base_url())])
        .arg("--state-dir")
        .arg(&state)
        .env("FABRIC_TOKEN", &token)
        .env("SENS_FIRST", FIRST)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first cycle wrote its record (this waits on the other process, not a timer).
    let records = state.join("deployed");
    let mut record = None;
    for _ in 0..6000 {
        // The record is written beside and renamed into place: only the `.json` counts.
        record = std::fs::read_dir(&records).ok().and_then(|e| {
            e.filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "json"))
        });
        if record.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    assert!(serve.wait().unwrap().success());
    let record = std::fs::read_to_string(record.expect("serve wrote a record")).unwrap();
    assert!(record.contains("owner ${secret:sens-first}"), "{record}");
    assert!(!record.contains(FIRST), "{record}");

    config(d, "sens-second", false);
    let (code, text) = run(fabrik()
        .arg("plan")
        .arg("--config")
        .arg(d.join("fabrik.yaml"))
        .args(["--base-url", &format!("{}/v1", emu.base_url())])
        .arg("--state-dir")
        .arg(&state)
        .env("FABRIC_TOKEN", &token)
        .env("SENS_SECOND", SECOND));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("(sensitive)"), "{text}");
    assert!(!text.contains(FIRST), "{text}");
    emu.shutdown().await.unwrap();
}

/// A `publish` into a workspace that `apply` deploys replaces only its own entries of the
/// workspace's record: the description `apply` rendered from a secret stays listed beside the
/// parts `publish` rendered, and the other way round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_and_publish_into_one_workspace_keep_each_others_entries_of_its_record() {
    let (emu, token) = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = d.join("state");
    let repo = d.join("repo");
    env_repo(&repo);
    config_with_lakehouse(d, "sens-first", "sens-lake-first");
    let fabrik = |args: &[&str]| {
        let mut c = fabrik();
        c.args(args)
            .arg("--config")
            .arg(d.join("fabrik.yaml"))
            .args(["--base-url", &format!("{}/v1", emu.base_url())])
            .arg("--state-dir")
            .arg(&state)
            .env("FABRIC_TOKEN", &token)
            .env("SENS_FIRST", FIRST)
            .env("SENS_LAKE_FIRST", LAKE_FIRST)
            .env("SENS_PW", SECOND);
        c
    };
    let record = || {
        let records: Vec<_> = std::fs::read_dir(state.join("deployed"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(records.len(), 1, "{records:?}");
        std::fs::read_to_string(&records[0]).unwrap()
    };
    let (code, text) = run(&mut fabrik(&["apply"]));
    assert_eq!(code, Some(0), "{text}");
    let ws = emu.state()["workspaces"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, text) = run(&mut fabrik(&[
        "publish",
        "--repository",
        repo.to_str().unwrap(),
        "--workspace-id",
        &ws,
        "--cicd-feature",
        "enable_environment_variable_replacement",
    ]));
    assert_eq!(code, Some(0), "{text}");
    let after_publish = record();
    for entry in [
        "owner ${secret:sens-first}",
        "lake ${secret:sens-lake-first}",
        "${fabrik-secret:env:SENS_PW}",
    ] {
        assert!(after_publish.contains(entry), "{entry}: {after_publish}");
    }
    let (code, text) = run(&mut fabrik(&["apply"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(
        record().contains("${fabrik-secret:env:SENS_PW}"),
        "{}",
        record()
    );
    emu.shutdown().await.unwrap();
}
