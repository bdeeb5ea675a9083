//! The `fabrik` binary with shared state in Azure Blob Storage (a real Azurite on loopback)
//! against the in-process Fabric emulator: concurrent applies take turns, a run killed on one
//! "machine" is rolled back from another, a broken lease or a storage outage stops the run,
//! and everything it did is undone.
//!
//! Each "machine" is a process with its own working directory; only the container URL is
//! shared. Waiting is on the other processes and the services, never on a fixed sleep.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use fabrik_core::JournalStore;
use fabrik_emulator::{Emulator, EmulatorConfig, FaultConfig};
use fabrik_state_azure::azurite::Azurite;
use fabrik_state_azure::{AzureBlobStore, AzureStateOptions, StateUrl};

/// The start of the lock keys of the examples' dev environment
/// (`<project prefix>.<environment>`); each workspace's lock adds `.<workspace name>`.
const KEY: &str = "contoso-sales.dev";

/// The examples' dev workspaces, sorted: the order their locks are taken in.
const WORKSPACES: [&str; 3] = [
    "contoso-sales-curated-dev",
    "contoso-sales-ingest-dev",
    "contoso-sales-reporting-dev",
];

/// The lock of one of the examples' dev workspaces.
fn ws_key(workspace: &str) -> String {
    format!("{KEY}.{workspace}")
}

fn shared_azurite() -> &'static Azurite {
    static AZURITE: OnceLock<Azurite> = OnceLock::new();
    AZURITE.get_or_init(Azurite::start)
}

fn container() -> String {
    format!("e2e{}", &uuid_like()[..20])
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:08x}{:04x}", t, std::process::id(), n)
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fabrik.yaml")
}

struct World {
    emu: Emulator,
    token: String,
    base: String,
    /// The container URL without its SAS: what every "machine" is given.
    state: String,
}

impl World {
    async fn start(azurite: &Azurite, faults: &str) -> Self {
        let faults: FaultConfig = faults.parse().unwrap();
        let emu = Emulator::start(EmulatorConfig {
            faults,
            // The publishing fixture's prod `spark_pool` entry names this pool.
            capacity_pools: vec!["ProdCapacityPool".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        let token = emu.mint_token_as(
            "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
            "ServicePrincipal",
            Duration::from_secs(3600),
        );
        let base = format!("{}/v1", emu.base_url());
        Self {
            emu,
            token,
            base,
            state: azurite.container_url(&container()),
        }
    }

    /// `fabrik` on a fresh "machine": its own working directory, the shared container URL,
    /// the SAS in FABRIK_STATE_SAS, short leases renewed often.
    fn fabrik(&self, cwd: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fabrik"));
        c.current_dir(cwd)
            .env_remove("FABRIC_API_BASE_URL")
            .env_remove("FABRIK_STATE_DIR")
            .env("FABRIK_LOG", "off")
            .env("FABRIC_TOKEN", &self.token)
            .env("FABRIK_STATE", &self.state)
            .env("FABRIK_STATE_SAS", Azurite::sas())
            .env("FABRIK_STATE_LEASE_SECONDS", "15")
            .env("FABRIK_STATE_RENEW_MS", "100")
            .args(["--base-url", &self.base])
            .stdin(Stdio::null());
        c
    }

    fn apply(&self, cwd: &Path, extra: &[&str]) -> Command {
        let mut c = self.fabrik(cwd);
        c.arg("apply")
            .arg("--config")
            .arg(examples())
            .args(["--concurrency", "1"])
            .args(extra);
        c
    }

    async fn fabric_state(&self) -> serde_json::Value {
        let v: serde_json::Value = reqwest::get(format!("{}/_emulator/state", self.emu.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        live(v)
    }

    /// Successful writes the emulator has seen.
    async fn writes(&self) -> usize {
        let v: serde_json::Value =
            reqwest::get(format!("{}/_emulator/requests", self.emu.base_url()))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        v["requests"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|r| r["method"] != "GET" && r["status"].as_u64() < Some(300))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Waits until the running apply has made `n` writes (waits on that process).
    async fn wait_for_writes(&self, n: usize) {
        for _ in 0..12_000 {
            if self.writes().await >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the run did not get going");
    }

    /// The run ids `fabrik status` lists from `cwd`, with their status words.
    fn status(&self, cwd: &Path) -> Vec<(String, String)> {
        let out = self.fabrik(cwd).arg("status").output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                Some((w.next()?.to_owned(), w.next()?.to_owned()))
            })
            .filter(|(id, _)| id != "no")
            .collect()
    }

    fn store(&self) -> AzureBlobStore {
        let url = StateUrl::parse(&format!("{}?{}", self.state, Azurite::sas())).unwrap();
        AzureBlobStore::new(url, AzureStateOptions::default()).unwrap()
    }
}

fn live(mut state: serde_json::Value) -> serde_json::Value {
    if let Some(o) = state.as_object_mut() {
        o.retain(|k, _| {
            !k.to_lowercase().contains("deleted") && !k.to_lowercase().contains("recycle")
        });
    }
    state
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The SAS's signature appears in `s` in no form (as sent, percent-decoded, or in a query
/// the SDK re-encoded); a `sig=` the SDK's own logging redacted is fine.
fn assert_no_sas(s: &str) {
    let sas = Azurite::sas();
    let sent = sas.split("sig=").nth(1).unwrap();
    let decoded = sent
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    for form in [sent, decoded.as_str(), &decoded[..decoded.len().min(16)]] {
        assert!(!s.contains(form), "the SAS signature leaked: {s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_applies_on_one_environment_take_turns_and_the_second_deploys_nothing_new() {
    let w = World::start(shared_azurite(), "writes:latency=5ms").await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = w
        .apply(a_dir.path(), &["--lock-timeout", "600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = w
        .apply(b_dir.path(), &["--lock-timeout", "600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    let nothing = "no changes: the deployment matches the configuration";
    let quiet: Vec<bool> = [&a, &b]
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(nothing))
        .collect();
    assert_eq!(
        quiet.iter().filter(|q| **q).count(),
        1,
        "exactly one run deploys, the other waits and finds nothing to do:\n{}\n{}",
        text(&a),
        text(&b)
    );
    // One journal: the waiting run planned after the first had finished, so it never wrote.
    let runs = w.status(a_dir.path());
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].1, "Committed");
    assert_no_sas(&text(&a));
    assert_no_sas(&text(&b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_apply_with_a_short_timeout_fails_with_exit_3_naming_the_holder() {
    let w = World::start(shared_azurite(), "writes:latency=40ms").await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = w
        .apply(a_dir.path(), &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    w.wait_for_writes(2).await;
    let b = w
        .apply(b_dir.path(), &["--lock-timeout", "1"])
        .output()
        .unwrap();
    let run = w.status(b_dir.path());
    a.kill().unwrap();
    a.wait().unwrap();
    assert_eq!(b.status.code(), Some(3), "{}", text(&b));
    let err = String::from_utf8_lossy(&b.stderr);
    assert_eq!(run.len(), 1, "{run:?}");
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown-user".into());
    for part in [
        KEY,
        &format!("run {} (apply) by {user}@", run[0].0),
        " since 20",
        "fabrik unlock",
    ] {
        assert!(err.contains(part), "expected {part:?} in {err}");
    }
    assert_no_sas(&err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_on_one_machine_is_rolled_back_from_another_with_only_the_url() {
    let w = World::start(shared_azurite(), "writes:latency=40ms").await;
    let before = w.fabric_state().await;
    let machine_a = tempfile::tempdir().unwrap();
    let mut a = w
        .apply(machine_a.path(), &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    w.wait_for_writes(8).await;
    a.kill().unwrap(); // SIGKILL: no end record, no release
    a.wait().unwrap();
    drop(machine_a); // its working directory (and any local state) is gone
    assert_ne!(
        w.fabric_state().await,
        before,
        "the killed run left resources behind"
    );

    // Machine B: an empty directory, no config, only the container URL.
    let machine_b = tempfile::tempdir().unwrap();
    let runs = w.status(machine_b.path());
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run_id = runs[0].0.clone();
    // The dead run's lease has not lapsed yet: rollback says who holds the lock.
    let held = w
        .fabrik(machine_b.path())
        .args(["rollback", &run_id])
        .output()
        .unwrap();
    assert_eq!(held.status.code(), Some(3), "{}", text(&held));
    // Without a terminal and without --yes, unlock asks and refuses.
    let refused = w
        .fabrik(machine_b.path())
        .args(["unlock", &run_id])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "{}", text(&refused));
    let unlock = w
        .fabrik(machine_b.path())
        .args(["unlock", &run_id, "--yes"])
        .output()
        .unwrap();
    assert!(unlock.status.success(), "{}", text(&unlock));
    // Every lock the run held: one per workspace it was writing.
    for ws in WORKSPACES {
        assert!(
            String::from_utf8_lossy(&unlock.stdout).contains(&format!("released {} ", ws_key(ws))),
            "{}",
            text(&unlock)
        );
    }
    let rollback = w
        .fabrik(machine_b.path())
        .args(["rollback", &run_id])
        .output()
        .unwrap();
    assert!(rollback.status.success(), "{}", text(&rollback));
    assert_eq!(w.fabric_state().await, before);
    let runs = w.status(machine_b.path());
    assert_eq!(runs[0].1, "RolledBack", "{runs:?}");
    assert_no_sas(&text(&rollback));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_broken_by_a_third_party_stops_the_run_and_rolls_it_back() {
    let w = World::start(shared_azurite(), "writes:latency=40ms").await;
    let before = w.fabric_state().await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let a = w
        .apply(dir.path(), &["--report", report.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    w.wait_for_writes(4).await;
    // Breaking any one of the run's workspace locks stops it.
    let broken = w.store().break_lock(&ws_key(WORKSPACES[1])).await.unwrap();
    assert!(broken.is_some_and(|h| h.command == "apply"));
    let out = a.wait_with_output().unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the deployment lock was lost"),
        "{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rolled back"),
        "{}",
        text(&out)
    );
    assert_eq!(w.fabric_state().await, before);
    assert_no_sas(&text(&out));
    let report = std::fs::read_to_string(&report).unwrap();
    assert!(report.contains("the deployment lock was lost"), "{report}");
    assert_no_sas(&report);
    // The journal in the container says what happened, and holds no credential either.
    let runs = w.status(dir.path());
    let journal = w.store().read(&runs[0].0).await.unwrap();
    let journal = String::from_utf8(journal).unwrap();
    assert!(journal.contains("\"status\":\"rolledBack\""), "{journal}");
    assert_no_sas(&journal);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_outage_stops_the_run_and_rollback_completes_when_it_is_back() {
    let mut azurite = Azurite::start_persistent();
    let w = World::start(&azurite, "writes:latency=40ms").await;
    let before = w.fabric_state().await;
    let dir = tempfile::tempdir().unwrap();
    // Debug logs on, the SDK's included: the SAS must not show up in them either. They go to
    // a file: a pipe nobody reads while the run goes would fill up and stall it.
    let log_path = dir.path().join("stderr.log");
    let a = w
        .apply(dir.path(), &[])
        .env("FABRIK_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    w.wait_for_writes(4).await;
    azurite.stop();
    let mut out = a.wait_with_output().unwrap();
    out.stderr = std::fs::read(&log_path).unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("journal") && err.contains("append failed"),
        "{}",
        text(&out)
    );
    assert_no_sas(&text(&out));
    azurite.restart();
    let other = tempfile::tempdir().unwrap();
    let runs = w.status(other.path());
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run_id = runs[0].0.clone();
    // The stopped run could not release its lease while storage was down.
    let unlock = w
        .fabrik(other.path())
        .args(["unlock", &run_id, "--yes"])
        .output()
        .unwrap();
    assert!(unlock.status.success(), "{}", text(&unlock));
    let rollback = w
        .fabrik(other.path())
        .args(["rollback", &run_id])
        .output()
        .unwrap();
    assert!(rollback.status.success(), "{}", text(&rollback));
    assert_eq!(w.fabric_state().await, before);
}

fn fixture_repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/git-format-repo")
}

impl World {
    /// A workspace on the emulator's capacity, made outside fabrik.
    async fn workspace(&self, name: &str) -> String {
        let http = reqwest::Client::new();
        let caps: serde_json::Value = http
            .get(format!("{}/capacities", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ws: serde_json::Value = http
            .post(format!("{}/workspaces", self.base))
            .bearer_auth(&self.token)
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

    fn publish(&self, cwd: &Path, ws: &str) -> Command {
        let mut c = self.fabrik(cwd);
        c.arg("publish")
            .arg("--repository")
            .arg(fixture_repo())
            .args(["--workspace-id", ws, "--env", "prod", "--concurrency", "1"])
            .args(["--lock-timeout", "600"]);
        c
    }

    /// The lock's holder, if any.
    async fn holder(&self, key: &str) -> Option<fabrik_core::LockHolder> {
        use fabrik_core::DeploymentLocks;
        self.store().holder(key).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_that_waited_for_the_lock_plans_what_the_first_left_and_writes_nothing() {
    let w = World::start(shared_azurite(), "writes:latency=20ms").await;
    let ws = w.workspace("published-twice").await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // No fabrik.yaml: the prefix is `fabrik`; the lock is the target workspace's.
    let key = "fabrik.prod.published-twice";
    let a = w
        .publish(a_dir.path(), &ws)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first holds the lock from its start: before it has written anything.
    let mut held = None;
    for _ in 0..12_000 {
        held = w.holder(key).await;
        if held.as_ref().is_some_and(|h| h.command == "publish") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        held.is_some_and(|h| h.command == "publish"),
        "the first publish takes the lock"
    );
    let b = w
        .publish(b_dir.path(), &ws)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    assert!(
        String::from_utf8_lossy(&b.stdout)
            .contains("no changes: the deployment matches the configuration"),
        "the second publish plans after the first and finds nothing to do:\n{}",
        text(&b)
    );
    // One journal (the second wrote nothing), and no item twice.
    let runs = w.status(a_dir.path());
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].1, "Committed");
    let items: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/workspaces/{ws}/items", w.base))
        .bearer_auth(&w.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut names: Vec<String> = items["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{}.{}", i["displayName"], i["type"]))
        .collect();
    let all = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), all, "an item was published twice: {items}");
}

/// A copy of examples/ whose fabrik.yaml names `state_url` as its `state.url`.
fn examples_with_state(dir: &Path, state_url: &str) -> PathBuf {
    let src = examples().parent().unwrap().to_path_buf();
    for sub in ["notebooks", "principals"] {
        let (from, to) = (src.join(sub), dir.join(sub));
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(&from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    let text = std::fs::read_to_string(examples()).unwrap();
    let config = dir.join("fabrik.yaml");
    std::fs::write(&config, format!("{text}\nstate:\n  url: {state_url}\n")).unwrap();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_state_url_holds_the_lock_while_it_applies_and_journals_to_the_container() {
    // Writes slow enough (about 25 of them, one at a time) that the cycle is still going when
    // the concurrent apply, a new process, asks for the lock on a loaded machine.
    let w = World::start(shared_azurite(), "writes:latency=200ms").await;
    let project = tempfile::tempdir().unwrap();
    let config = examples_with_state(project.path(), &w.state);
    let mut serve = w.fabrik(project.path());
    let mut serve = serve
        .env_remove("FABRIK_STATE")
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .args(["--interval", "3600", "--listen", "127.0.0.1:0"])
        .args(["--concurrency", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    w.wait_for_writes(2).await;
    // A concurrent apply from another machine, by the same configuration, is refused.
    let other = tempfile::tempdir().unwrap();
    let apply = w
        .fabrik(other.path())
        .env_remove("FABRIK_STATE")
        .arg("apply")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(apply.status.code(), Some(3), "{}", text(&apply));
    let err = String::from_utf8_lossy(&apply.stderr);
    assert!(err.contains("(serve)"), "the holder is named: {err}");
    assert!(err.contains(KEY), "{err}");
    // The cycle's journal is in the container, committed once the cycle ends.
    let mut runs = Vec::new();
    for _ in 0..12_000 {
        runs = w.status(other.path());
        if runs.iter().any(|(_, s)| s == "Committed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let stopped = serve.wait().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].1, "Committed");
    assert!(stopped.success(), "{stopped:?}");
    assert!(
        !project.path().join(".fabrik").exists(),
        "nothing was journaled locally"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroy_killed_halfway_is_listed_from_another_machine_and_finished_by_a_second() {
    // The second workspace delete hangs: the destroy is killed while it waits.
    let w = World::start(shared_azurite(), "DELETE /v1/workspaces/*#2=hang").await;
    let deployer = tempfile::tempdir().unwrap();
    let out = w.apply(deployer.path(), &[]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let names = |state: &serde_json::Value| -> Vec<String> {
        state["workspaces"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w["displayName"].as_str().map(str::to_owned))
                    .filter(|n| n.starts_with("contoso-sales"))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(names(&w.fabric_state().await).len(), 3);

    let machine_a = tempfile::tempdir().unwrap();
    let destroy = |dir: &Path| {
        let mut c = w.fabrik(dir);
        c.arg("destroy").arg("--config").arg(examples()).args([
            "--yes",
            "--allow-data-loss",
            "--concurrency",
            "1",
        ]);
        c
    };
    let mut a = destroy(machine_a.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let hung = async || {
        let v: serde_json::Value = reqwest::get(format!("{}/_emulator/requests", w.emu.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["requests"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["fault"] == "hang"))
    };
    let mut seen = false;
    for _ in 0..12_000 {
        if hung().await {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seen, "the destroy never reached its second delete");
    a.kill().unwrap(); // SIGKILL halfway
    a.wait().unwrap();
    assert_eq!(
        names(&w.fabric_state().await).len(),
        2,
        "one workspace went"
    );

    // Another machine sees the dead destroy, releases its lock and finishes the job.
    let machine_b = tempfile::tempdir().unwrap();
    let out = w.fabrik(machine_b.path()).arg("status").output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    let line = listing
        .lines()
        .find(|l| l.contains("destroy dev"))
        .unwrap_or_else(|| panic!("the killed destroy is listed: {listing}"));
    let run_id = line.split_whitespace().next().unwrap().to_string();
    let out = w
        .fabrik(machine_b.path())
        .args(["unlock", &run_id, "--yes"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = destroy(machine_b.path()).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        names(&w.fabric_state().await).is_empty(),
        "everything described is gone"
    );
    let runs = w.status(machine_b.path());
    assert_eq!(
        runs.len(),
        3,
        "apply, the killed destroy, the second: {runs:?}"
    );
    assert_no_sas(&text(&out));
}

impl World {
    /// Waits until lock `key` is held by an `apply` other than run `not_run` (waits on the
    /// running process); returns its holder.
    async fn wait_for_holder(&self, key: &str, not_run: &str) -> fabrik_core::LockHolder {
        for _ in 0..12_000 {
            if let Some(h) = self.holder(key).await
                && h.command == "apply"
                && h.run_id != not_run
            {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("nobody took {key}");
    }

    /// The successful requests `method path` the emulator has seen.
    async fn requests(&self, method: &str, path: &str) -> usize {
        let v: serde_json::Value =
            reqwest::get(format!("{}/_emulator/requests", self.emu.base_url()))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        v["requests"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|r| {
                        r["method"] == method
                            && r["path"] == path
                            && r["status"].as_u64() < Some(300)
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    /// The examples' dev workspaces that exist, sorted.
    async fn dev_workspaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self.fabric_state().await["workspaces"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w["displayName"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_of_one_environment_deploy_at_once_and_each_workspace_once() {
    // Writes slow enough that shard 1 (two workspaces) still holds its locks when shard 2,
    // a new process, takes its own.
    let w = World::start(shared_azurite(), "writes:latency=100ms").await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Sorted, the 1st and 3rd workspace are shard 1/2, the 2nd is shard 2/2.
    let (one, two) = (
        [ws_key(WORKSPACES[0]), ws_key(WORKSPACES[2])],
        ws_key(WORKSPACES[1]),
    );
    let a = w
        .apply(a_dir.path(), &["--shard", "1/2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let a_holder = w.wait_for_holder(&one[1], "").await;
    assert_eq!(
        w.holder(&one[0]).await.map(|h| h.run_id),
        Some(a_holder.run_id.clone())
    );
    assert_eq!(
        w.holder(&two).await,
        None,
        "shard 1 leaves shard 2's workspace alone"
    );
    // No --lock-timeout: were a lock shared, the second would fail at once with exit 3.
    let b = w
        .apply(b_dir.path(), &["--shard", "2/2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    w.wait_for_holder(&two, &a_holder.run_id).await;
    // Both hold their locks at this moment: the runs overlap.
    for k in &one {
        assert_eq!(
            w.holder(k).await.map(|h| h.run_id),
            Some(a_holder.run_id.clone()),
            "shard 1 still runs"
        );
    }
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    // Each says what it selected, in the configuration's order.
    assert!(
        String::from_utf8_lossy(&a.stderr).contains(&format!(
            "selected 2 of 3 workspace(s): {}, {}",
            WORKSPACES[0], WORKSPACES[2]
        )),
        "{}",
        text(&a)
    );
    // Each workspace was created exactly once, and all three exist.
    assert_eq!(w.requests("POST", "/v1/workspaces").await, 3);
    assert_eq!(w.dev_workspaces().await, WORKSPACES);
    // Two journals, both committed; nothing is left to do for the whole environment.
    let runs = w.status(a_dir.path());
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|(_, s)| s == "Committed"), "{runs:?}");
    let again = w.apply(a_dir.path(), &[]).output().unwrap();
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout)
            .contains("no changes: the deployment matches the configuration"),
        "{}",
        text(&again)
    );
    for k in one.iter().chain([&two]) {
        assert_eq!(w.holder(k).await, None, "{k} was released");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_selecting_one_workspace_take_turns_or_the_second_exits_3() {
    let w = World::start(shared_azurite(), "writes:latency=100ms").await;
    let (a_dir, b_dir, c_dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let key = ws_key(WORKSPACES[1]);
    let a = w
        .apply(a_dir.path(), &["--workspace", "ingest"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let holder = w.wait_for_holder(&key, "").await;
    // The same workspace by its deployed name, without waiting: exit 3 naming lock and holder.
    let c = w
        .apply(c_dir.path(), &["--workspace", WORKSPACES[1]])
        .output()
        .unwrap();
    assert_eq!(c.status.code(), Some(3), "{}", text(&c));
    let err = String::from_utf8_lossy(&c.stderr);
    for part in [
        key.as_str(),
        &format!("run {} (apply)", holder.run_id),
        "fabrik unlock",
    ] {
        assert!(err.contains(part), "expected {part:?} in {err}");
    }
    // Two workspaces, the first in sorted order free: taken, then given back when the second
    // is found held.
    let d = w
        .apply(
            c_dir.path(),
            &["--workspace", "ingest", "--workspace", "curated"],
        )
        .output()
        .unwrap();
    assert_eq!(d.status.code(), Some(3), "{}", text(&d));
    assert_eq!(
        w.holder(&ws_key(WORKSPACES[0])).await,
        None,
        "curated's lock was released"
    );
    // Waiting: it plans once the first is done, and finds nothing to do.
    let b = w
        .apply(
            b_dir.path(),
            &["--workspace", "ingest", "--lock-timeout", "600"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    assert!(
        String::from_utf8_lossy(&b.stdout)
            .contains("no changes: the deployment matches the configuration"),
        "the second waits and plans after the first:\n{}",
        text(&b)
    );
    assert_eq!(w.requests("POST", "/v1/workspaces").await, 1);
    assert_eq!(w.dev_workspaces().await, [WORKSPACES[1]]);
    let runs = w.status(a_dir.path());
    assert_eq!(runs.len(), 1, "one journal: {runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlock_all_releases_every_workspace_lock_of_the_environment_after_confirmation() {
    let w = World::start(shared_azurite(), "writes:latency=100ms").await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = w
        .apply(a_dir.path(), &["--shard", "1/2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Its locks are taken in sorted order: once it holds the last, it holds both.
    let a_holder = w.wait_for_holder(&ws_key(WORKSPACES[2]), "").await;
    let mut b = w
        .apply(b_dir.path(), &["--shard", "2/2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    w.wait_for_holder(&ws_key(WORKSPACES[1]), &a_holder.run_id)
        .await;
    a.kill().unwrap(); // SIGKILL: the leases stay until they lapse
    b.kill().unwrap();
    a.wait().unwrap();
    b.wait().unwrap();
    let other = tempfile::tempdir().unwrap();
    // Without a terminal and without --yes, it asks and refuses.
    let refused = w
        .fabrik(other.path())
        .args(["unlock", "--all"])
        .arg("--config")
        .arg(examples())
        .output()
        .unwrap();
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(w.holder(&ws_key(WORKSPACES[0])).await.is_some());
    let out = w
        .fabrik(other.path())
        .args(["unlock", "--all", "--yes"])
        .arg("--config")
        .arg(examples())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for ws in WORKSPACES {
        assert!(
            stdout.contains(&format!("released {} ", ws_key(ws))),
            "{}",
            text(&out)
        );
        assert_eq!(w.holder(&ws_key(ws)).await, None);
    }
    // Another environment's locks are not the environment's.
    let prod = w
        .fabrik(other.path())
        .args(["unlock", "--all", "--yes", "--env", "prod"])
        .arg("--config")
        .arg(examples())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&prod.stdout).contains("no deployment lock of contoso-sales.prod"),
        "{}",
        text(&prod)
    );
}
