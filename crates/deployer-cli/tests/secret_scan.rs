//! One scan for planted secrets across every channel the `fabrik` binary writes to.
//!
//! Distinct secret values are planted where a user gives them: a `${secret:…}` from Key Vault
//! in a workspace description, a `parameter.yml` `$ENV:` value a publish renders into a
//! notebook, the SAS of an Azure Blob state URL (Azurite), the `FABRIC_TOKEN` bearer token,
//! the service principal's client secret (Key Vault is read as that principal), a principal's
//! description (`${secret:…}` from the environment: fabrik takes principals by object id only,
//! so a principal's name is not an input anywhere, and the description is the field closest
//! to it), `serve`'s `FABRIK_STATE_KEY` passphrase (a Key Vault secret), and an API key in
//! `OTEL_EXPORTER_OTLP_HEADERS`.
//!
//! Then `apply`, two `publish`es, an `apply` that fails and is rolled back, `fabrik rollback
//! RUN_ID`, one `serve` cycle, `status` (the SAS in `--state`, then in `FABRIK_STATE_SAS`,
//! then for a store that cannot be reached),
//! `plan --output markdown` and `export` run as separate processes against the emulator over
//! loopback, with debug JSON logs, `--report`, an OTLP collector and Application Insights (the
//! emulator's ingestion). Every channel is read back — stdout, stderr, the reports, the local
//! journals, the journals in the blob container, the OTLP capture, the ingested App Insights
//! envelopes and `serve`'s health and metrics endpoints — checked to hold something, and
//! scanned for every planted value in the forms it could take (as is, percent-encoded, and
//! inside base64 at any alignment).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use fabrik_core::JournalStore;
use fabrik_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_INSTRUMENTATION_KEY, DEFAULT_TENANT_ID,
    Emulator, EmulatorConfig, TlsConfig,
};
use fabrik_state_azure::azurite::Azurite;
use fabrik_state_azure::{AzureBlobStore, AzureStateOptions, StateUrl};

/// The Key Vault secret a workspace description refers to, and its value.
const DESCRIPTION_SECRET: &str = "scan-description-key";
const DESCRIPTION_VALUE: &str = "kv-desc-3f7b1c9e5a2d4410";
/// The Key Vault secret `serve`'s `FABRIK_STATE_KEY` refers to, and its value.
const STATE_KEY_SECRET: &str = "scan-state-passphrase";
const STATE_KEY_VALUE: &str = "kv-state-Passphrase-61d0b8f3e2";
/// An API key for the OTLP collector, in `OTEL_EXPORTER_OTLP_HEADERS`.
const OTLP_API_KEY: &str = "otlp-key-0f5e9d27a4c1b8";
/// The principal description's secret, read from the environment (`SCAN_PRINCIPAL_NAME`).
const PRINCIPAL_VALUE: &str = "scan.principal.8c41d2e7@contoso.example";
/// The `$ENV:` variable `parameter.yml` renders into the notebook, and its value.
const STORAGE_VAR: &str = "SCAN_STORAGE_KEY";
const STORAGE_VALUE: &str = "sk-storage-5Vn8qL2xZr0Tw";
/// The deployed workspace's name (`{prefix}-{name}-{environment}`).
const WORKSPACE: &str = "scan-one-dev";

/// What the OTLP collector received: one JSON body per request.
type Received = Arc<Mutex<Vec<serde_json::Value>>>;

/// An OTLP/HTTP (JSON) collector on loopback that keeps what it receives.
async fn otlp_collector() -> (String, Received) {
    let received = Received::default();
    let keep = || {
        let r = received.clone();
        axum::routing::post(move |body: axum::body::Bytes| async move {
            let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            r.lock().unwrap().push(v);
            ""
        })
    };
    let app = axum::Router::new()
        .route("/v1/traces", keep())
        .route("/v1/metrics", keep());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// Where a command keeps its state.
enum State<'a> {
    /// The blob container, its SAS in the URL's query (`FABRIK_STATE`).
    Azure,
    /// The blob container, its URL with the SAS given as `--state`.
    AzureFlag,
    /// The blob container, the SAS apart in `FABRIK_STATE_SAS`.
    AzureSasVar,
    /// A local state directory.
    Local(&'a Path),
}

struct World {
    emu: Emulator,
    azurite: Azurite,
    container: String,
    dir: tempfile::TempDir,
    token: String,
    collector: String,
    received: Received,
    /// Text per channel, gathered as the commands run.
    channels: BTreeMap<&'static str, String>,
}

impl World {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let emu = Emulator::start(EmulatorConfig {
            tls: Some(TlsConfig {
                port: 0,
                ca_out: Some(dir.path().join("ca.pem")),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
        emu.put_secret(DESCRIPTION_SECRET, DESCRIPTION_VALUE);
        emu.put_secret(STATE_KEY_SECRET, STATE_KEY_VALUE);
        let token = emu.mint_token_as(
            "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
            "ServicePrincipal",
            Duration::from_secs(3600),
        );
        let (collector, received) = otlp_collector().await;
        Self {
            emu,
            azurite: Azurite::start(),
            container: format!("scan{}", std::process::id()),
            dir,
            token,
            collector,
            received,
            channels: BTreeMap::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `fabrik` with every planted input and every telemetry channel on.
    fn fabrik(&self, state: &State<'_>) -> Command {
        let vault = self.emu.tls_base_url().unwrap();
        // Plain HTTP ingestion, so the exporter needs no CA.
        let app_insights = format!(
            "InstrumentationKey={DEFAULT_INSTRUMENTATION_KEY};IngestionEndpoint={}/",
            self.emu.base_url()
        );
        let mut c = Command::new(env!("CARGO_BIN_EXE_fabrik"));
        c.current_dir(self.dir.path())
            .env_remove("FABRIC_API_BASE_URL")
            .env_remove("FABRIK_STATE_KEY")
            .env_remove("FABRIK_STATE_SAS")
            .env("NO_COLOR", "1")
            .env("FABRIK_LOG", "debug")
            .env("FABRIK_LOG_FORMAT", "json")
            .env("FABRIC_TOKEN", &self.token)
            .env("FEATURE_USE_AZURE_KEYVAULT", "true")
            .env("KEY_VAULT_URL", vault)
            .env("AZURE_AUTHORITY_HOST", vault)
            .env("AZURE_TENANT_ID", DEFAULT_TENANT_ID)
            .env("AZURE_CLIENT_ID", DEFAULT_CLIENT_ID)
            .env("AZURE_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
            .env("FABRIK_CA_CERT", self.path("ca.pem"))
            .env("SCAN_PRINCIPAL_NAME", PRINCIPAL_VALUE)
            .env(STORAGE_VAR, STORAGE_VALUE)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &self.collector)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
            .env(
                "OTEL_EXPORTER_OTLP_HEADERS",
                format!("x-api-key={OTLP_API_KEY}"),
            )
            .env("APPLICATIONINSIGHTS_CONNECTION_STRING", app_insights)
            .args(["--base-url", &format!("{}/v1", self.emu.base_url())])
            .stdin(Stdio::null());
        match state {
            State::Azure => {
                c.env("FABRIK_STATE", self.azurite.url_with_sas(&self.container));
            }
            State::AzureFlag => {
                c.env_remove("FABRIK_STATE")
                    .arg("--state")
                    .arg(self.azurite.url_with_sas(&self.container));
            }
            State::AzureSasVar => {
                c.env("FABRIK_STATE", self.azurite.container_url(&self.container))
                    .env("FABRIK_STATE_SAS", Azurite::sas());
            }
            State::Local(dir) => {
                c.env_remove("FABRIK_STATE").arg("--state-dir").arg(dir);
            }
        }
        c
    }

    /// Runs `fabrik ARGS`, keeping its stdout and stderr; returns its exit code and both.
    fn run(&mut self, state: &State<'_>, args: &[&str]) -> (Option<i32>, String) {
        let out = self.fabrik(state).args(args).output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        self.keep("stdout", &stdout);
        self.keep("stderr", &stderr);
        let shown = format!("fabrik {args:?}: {:?}\n{stdout}\n{stderr}", out.status);
        (out.status.code(), shown)
    }

    fn keep(&mut self, channel: &'static str, text: &str) {
        let c = self.channels.entry(channel).or_default();
        c.push_str(text);
        c.push('\n');
    }

    /// Reads `--report FILE` into the report channel.
    fn keep_report(&mut self, file: &Path) {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains("\"applied\""), "{text}");
        self.keep("report", &text);
    }

    async fn workspace_id(&self) -> String {
        let list: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/v1/workspaces", self.emu.base_url()))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["displayName"] == WORKSPACE)
            .and_then(|w| w["id"].as_str())
            .unwrap_or_else(|| panic!("{WORKSPACE} not in {list}"))
            .to_owned()
    }
}

/// The configuration: a description from Key Vault and a principal whose description is a
/// secret from the environment; `extra` is appended to the workspace.
fn config(description: &str, extra: &str) -> String {
    format!(
        "project: {{name: scan, prefix: scan}}\nworkspaces:\n  - name: one\n    description: \"{description} ${{secret:{DESCRIPTION_SECRET}}}\"\n    principals:\n      - id: 0b9e1f52-6c3d-4a8e-9f71-2d4c6b8a0e13\n        role: Viewer\n        type: User\n        description: \"${{secret:scan-principal-name}}\"\n{extra}"
    )
}

/// A git-format repository of one notebook whose text `parameter.yml` replaces with the
/// `$ENV:` value; `cell` tells two versions apart.
fn repository(root: &Path, cell: &str) {
    let nb = root.join("Ingest.Notebook");
    std::fs::create_dir_all(&nb).unwrap();
    std::fs::write(
        nb.join(".platform"),
        serde_json::json!({
            "metadata": {"type": "Notebook", "displayName": "Ingest"},
            "config": {"version": "2.0", "logicalId": "5d2c8b1e-7f3a-4e69-b0d4-91c6a2e8f357"},
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        nb.join("notebook-content.py"),
        format!(
            "# Fabric notebook source\n\n# CELL ********************\n\nkey = \"stdatadev\"\n{cell}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        root.join("parameter.yml"),
        format!(
            "find_replace:\n  - find_value: \"stdatadev\"\n    replace_value:\n      dev: \"$ENV:{STORAGE_VAR}\"\n    item_name: Ingest\n"
        ),
    )
    .unwrap();
}

/// `apply`, two `publish`es (the second updates the notebook, journaling the definition the
/// first rendered the secret into), all on the blob container.
async fn apply_and_publish(w: &mut World) -> String {
    std::fs::write(w.path("fabrik.yaml"), config("key", "")).unwrap();
    let report = w.path("apply.json");
    let (code, shown) = w.run(
        &State::Azure,
        &["apply", "--report", report.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{shown}");
    w.keep_report(&report);
    let ws = w.workspace_id().await;
    let repo = w.path("repo");
    for cell in ["print(1)", "print(2)"] {
        repository(&repo, cell);
        let report = w.path("publish.json");
        let (code, shown) = w.run(
            &State::Azure,
            &[
                "publish",
                "--repository",
                repo.to_str().unwrap(),
                "--workspace-id",
                &ws,
                "--cicd-feature",
                "enable_environment_variable_replacement",
                "--report",
                report.to_str().unwrap(),
            ],
        );
        assert_eq!(code, Some(0), "{shown}");
        w.keep_report(&report);
    }
    ws
}

/// An `apply` that changes the description, then fails (a git connection needs a capacity)
/// and is rolled back, and `fabrik rollback` of it again from its local journal.
fn failed_run_and_rollback(w: &mut World, state: &Path) {
    let failing = w.path("failing.yaml");
    let git = "    git: {provider: GitHub, owner: o, repository: r, branch: main, connection_id: 7d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a}\n";
    std::fs::write(&failing, config("changed key", git)).unwrap();
    let report = w.path("failed.json");
    let (code, shown) = w.run(
        &State::Local(state),
        &[
            "apply",
            "--config",
            failing.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{shown}");
    assert!(shown.contains("rolled back"), "{shown}");
    w.keep_report(&report);
    let run_id = std::fs::read_dir(state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .expect("the failed run's journal");
    let (code, shown) = w.run(
        &State::Local(state),
        &["rollback", &run_id, "--config", failing.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{shown}");
}

/// `serve`, its journals encrypted with a state key from Key Vault, until its first cycle has
/// created a lakehouse; then SIGTERM.
async fn serve_one_cycle(w: &mut World, state: &Path) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let file = w.path("serve.yaml");
    std::fs::write(&file, config("key", "    lakehouses: [{name: LH_scan}]\n")).unwrap();
    let mut cmd = w.fabrik(&State::Local(state));
    cmd.args(["serve", "--interval", "3600", "--listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(&file)
        .env(
            "FABRIK_STATE_KEY",
            format!("${{secret:{STATE_KEY_SECRET}}}"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // stderr is read to its end all along, so debug logging never blocks on a full pipe.
    let mut stderr = child.stderr.take().unwrap();
    let logs = tokio::spawn(async move {
        let mut s = String::new();
        stderr.read_to_string(&mut s).await.unwrap();
        s
    });
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines
        .next_line()
        .await
        .unwrap()
        .expect("serve prints its address");
    let mut deployed = false;
    for _ in 0..6000 {
        if w.emu.state().to_string().contains("LH_scan") {
            deployed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // What its endpoints serve is a channel too: the readiness checks describe the
    // credential and the secret store.
    let addr = first.rsplit(' ').next().unwrap().to_owned();
    for path in ["/health/ready", "/health/live", "/metrics"] {
        let body = reqwest::get(format!("{addr}{path}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        w.keep("serve endpoints", &body);
    }
    let pid = child.id().unwrap().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("serve stops")
        .unwrap();
    let mut stdout = first;
    while let Ok(Some(l)) = lines.next_line().await {
        stdout.push('\n');
        stdout.push_str(&l);
    }
    let stderr = logs.await.unwrap();
    assert!(
        deployed && status.success(),
        "{status:?}\n{stdout}\n{stderr}"
    );
    w.keep("stdout", &stdout);
    w.keep("stderr", &stderr);
}

/// `status` with the SAS given each way, and against a store that cannot be reached (its
/// error names the URL); a plan showing the description the failed run would have changed.
fn status_and_plan(w: &mut World) {
    for state in [State::AzureFlag, State::AzureSasVar] {
        let (code, shown) = w.run(&state, &["status", "--output", "json"]);
        assert!(code == Some(0) && shown.contains("publish dev"), "{shown}");
    }
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = format!(
        "http://127.0.0.1:{dead}/devstoreaccount1/gone?{}",
        Azurite::sas()
    );
    let (code, shown) = w.run(
        &State::Local(Path::new("unused")),
        &["status", "--state", &unreachable],
    );
    assert!(code == Some(1) && shown.contains("list failed"), "{shown}");
    let failing = w.path("failing.yaml");
    let (code, shown) = w.run(
        &State::Azure,
        &[
            "plan",
            "--output",
            "markdown",
            "--config",
            failing.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{shown}");
}

/// Every file under `dir`, as text.
fn files(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out += &files(&p);
        } else {
            out += &String::from_utf8_lossy(&std::fs::read(&p).unwrap());
        }
    }
    out
}

/// The journals in the blob container, read back from Azurite.
async fn azure_journals(w: &World) -> String {
    let url = StateUrl::parse(&w.azurite.url_with_sas(&w.container)).unwrap();
    let store = AzureBlobStore::new(url, AzureStateOptions::default()).unwrap();
    let runs = store.list().await.unwrap();
    assert!(runs.len() >= 3, "apply and two publishes journal: {runs:?}");
    let mut out = String::new();
    for run in runs {
        out += &String::from_utf8(store.read(&run).await.unwrap()).unwrap();
    }
    with_decoded(&out)
}

/// `text` (JSON lines), followed by what each of its base64 strings decodes to: a journaled
/// definition part's text.
fn with_decoded(text: &str) -> String {
    fn walk(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::String(s) => {
                let b64 = base64::engine::general_purpose::STANDARD;
                if let Ok(bytes) = b64.decode(s) {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                    out.push('\n');
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = text.to_owned();
    for line in text.lines() {
        if let Ok(v) = serde_json::from_str(line) {
            walk(&v, &mut out);
        }
    }
    out
}

/// The forms `value` could take in text: as is, percent-encoded, and base64 at each of the
/// three alignments (the characters that encode only its own bytes).
fn forms(value: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = vec![value.to_owned()];
    let encoded: String = value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    out.push(encoded);
    for pad in 0..3usize {
        let mut bytes = vec![0u8; pad];
        bytes.extend_from_slice(value.as_bytes());
        let text = b64.encode(&bytes);
        let start = pad.div_ceil(3) * 4;
        let end = bytes.len() / 3 * 4;
        out.push(text[start..end].to_owned());
    }
    out.sort();
    out.dedup();
    out
}

/// Every planted secret, by what it is.
fn planted(w: &World) -> Vec<(&'static str, String)> {
    let sas = Azurite::sas();
    let sig = sas.split("sig=").nth(1).unwrap().to_owned();
    let sig_decoded = sig
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    vec![
        (
            "Key Vault secret in a description",
            DESCRIPTION_VALUE.into(),
        ),
        (
            "secret in a principal's description",
            PRINCIPAL_VALUE.into(),
        ),
        ("parameter.yml $ENV value", STORAGE_VALUE.into()),
        ("state URL SAS signature", sig_decoded),
        ("FABRIC_TOKEN", w.token.clone()),
        ("OTLP header API key", OTLP_API_KEY.into()),
        (
            "state key passphrase from Key Vault",
            STATE_KEY_VALUE.into(),
        ),
        (
            "service principal client secret",
            DEFAULT_CLIENT_SECRET.into(),
        ),
    ]
}

/// Where `text` (of `channel`) holds a form of a `planted` value, with the text around it.
fn found(channel: &str, text: &str, planted: &[(&'static str, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (what, value) in planted {
        for form in forms(value) {
            if let Some(at) = text.find(&form) {
                out.push(format!(
                    "{channel}: {what} ({form}) in …{}…",
                    around(text, at, form.len())
                ));
            }
        }
    }
    out
}

/// Up to 200 bytes either side of `text[at..at + len]`.
fn around(text: &str, at: usize, len: usize) -> &str {
    let mut from = at.saturating_sub(200);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (at + len + 200).min(text.len());
    while !text.is_char_boundary(to) {
        to += 1;
    }
    &text[from..to]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_channel_of_any_command_holds_a_planted_secret() {
    let mut w = World::start().await;
    let ws = apply_and_publish(&mut w).await;
    let failed_state = w.path("failed-runs");
    failed_run_and_rollback(&mut w, &failed_state);
    let serve_state = w.path("serve-runs");
    serve_one_cycle(&mut w, &serve_state).await;
    status_and_plan(&mut w);
    let out = w.path("export");
    let (code, shown) = w.run(
        &State::Azure,
        &[
            "export",
            "--workspace-id",
            &ws,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{shown}");

    // The secrets were used: deployed, rendered and restored (so the scan is not vacuous).
    let exported = files(&out);
    assert!(
        exported.contains(STORAGE_VALUE),
        "publish rendered the value"
    );
    assert!(
        w.emu
            .state()
            .to_string()
            .contains(&format!("key {DESCRIPTION_VALUE}")),
        "the description from Key Vault was deployed, and restored by the rollback"
    );
    let local = with_decoded(&(files(&failed_state) + &files(&serve_state)));
    assert!(
        local.contains(&format!("${{secret:{DESCRIPTION_SECRET}}}")),
        "{local}"
    );
    let served = files(&serve_state);
    assert!(
        served.contains("LH_scan") && served.contains("\"sealed\""),
        "serve journaled its cycle, encrypted with the key from Key Vault: {served}"
    );
    w.keep("local journals", &local);
    let azure = azure_journals(&w).await;
    assert!(
        azure.contains(&format!("fabrik-secret:env:{STORAGE_VAR}")),
        "{azure}"
    );
    w.keep("Azure Blob journals", &azure);
    let otlp = serde_json::to_string(&*w.received.lock().unwrap()).unwrap();
    for span in [
        "fabrik.run",
        "fabrik.reconcile",
        "fabric.call",
        "fabrik_resources_total",
    ] {
        assert!(otlp.contains(span), "no {span} in the OTLP capture: {otlp}");
    }
    w.keep("OTLP", &otlp);
    let envelopes = w.emu.telemetry();
    assert!(
        envelopes
            .iter()
            .any(|e| e.to_string().contains("fabrik.apply")),
        "{envelopes:?}"
    );
    w.keep("App Insights", &serde_json::to_string(&envelopes).unwrap());

    // The scan finds a planted value where it belongs: the notebook export holds what
    // publish rendered.
    assert!(!found("export", &exported, &planted(&w)).is_empty());
    let mut leaks = Vec::new();
    for (channel, text) in &w.channels {
        assert!(
            text.trim().len() > 100,
            "{channel} is (nearly) empty: {text}"
        );
        leaks.extend(found(channel, text, &planted(&w)));
    }
    assert!(
        leaks.is_empty(),
        "{} leak(s):\n{}",
        leaks.len(),
        leaks.join("\n\n")
    );
    // Where a secret was, the terminal shows it redacted.
    assert!(
        w.channels["stdout"].contains("\"key [secret]\""),
        "{}",
        w.channels["stdout"]
    );
    w.emu.shutdown().await.unwrap();
}
