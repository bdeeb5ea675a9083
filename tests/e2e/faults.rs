//! The fault matrix: with the emulator failing a fifth of requests in every way a cloud API
//! does (429, 500, 503, dropped connections, and writes that are applied and then fail),
//! apply ends in exactly the state a fault-free run produces.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fabrik_cli::config::{Desired, DesiredItem, DesiredPrincipal, DesiredWorkspace};
use fabrik_cli::run::{self, RunOptions, Timing};
use fabrik_client::{FabricClient, ItemFilter};
use fabrik_core::time::ManualClock;
use fabrik_emulator::{Emulator, EmulatorConfig, FaultConfig};
use fabrik_resilience::{ResilienceConfig, RetryConfig};
use futures::TryStreamExt;

/// 50 workspaces × (3 lakehouses, 2 notebooks, 5 principals).
fn big_config() -> Desired {
    let workspaces = (0..50)
        .map(|w| DesiredWorkspace {
            name: format!("fm-{w:02}"),
            description: format!("workspace {w}"),
            capacity: None,
            folders: vec![],
            items: (0..3)
                .map(|i| DesiredItem {
                    name: format!("LH_{w}_{i}"),
                    item_type: "Lakehouse".into(),
                    description: String::new(),
                    folder: None,
                    definition: None,
                })
                .chain((0..2).map(|i| DesiredItem {
                    name: format!("NB_{w}_{i}"),
                    item_type: "Notebook".into(),
                    description: String::new(),
                    folder: None,
                    definition: Some(vec![("notebook-content.py".into(), "cHJpbnQoMSk=".into())]),
                }))
                .collect(),
            principals: (0..5)
                .map(|p| DesiredPrincipal {
                    id: format!("00000000-0000-4000-8000-{:06}{:06}", w, p),
                    kind: "User".into(),
                    role: ["Admin", "Member", "Contributor", "Viewer", "Viewer"][p].into(),
                })
                .collect(),
            git: None,
        })
        .collect();
    Desired {
        environment: "dev".into(),
        workspaces,
        features: Default::default(),
        hash: "fault-matrix".into(),
    }
}

/// What the deployment looks like, by name: ids differ between emulators.
type Snapshot = BTreeMap<String, (BTreeSet<(String, String)>, BTreeSet<(String, String)>)>;

async fn snapshot(client: &FabricClient) -> Snapshot {
    let mut out = Snapshot::new();
    let workspaces: Vec<_> = client.list_workspaces().try_collect().await.unwrap();
    for w in workspaces {
        let items: Vec<_> = client
            .list_items(&w.id, &ItemFilter::default())
            .try_collect()
            .await
            .unwrap();
        let roles: Vec<_> = client
            .list_role_assignments(&w.id)
            .try_collect()
            .await
            .unwrap();
        out.insert(
            w.display_name,
            (
                items
                    .into_iter()
                    .map(|i| (i.kind.as_str().to_string(), i.display_name))
                    .collect(),
                roles
                    .into_iter()
                    .map(|r| (r.principal.id, r.role.as_str().to_string()))
                    .collect(),
            ),
        );
    }
    out
}

async fn deploy(faults: &str) -> (Snapshot, usize) {
    let config = EmulatorConfig {
        faults: faults.parse::<FaultConfig>().unwrap(),
        seed: 7,
        ..Default::default()
    };
    let emu = Emulator::start(config).await.unwrap();
    let token = emu.mint_token_as(
        "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "ServicePrincipal",
        Duration::from_secs(86_400),
    );
    let state = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        base_url: format!("{}/v1", emu.base_url()),
        concurrency: 8,
        state_dir: state.path().to_path_buf(),
        rollback: true,
        lro_deadline: Duration::from_secs(600),
        // An auto-advancing clock completes every timer at once, so timeouts are off here.
        call_timeout: None,
        run_timeout: None,
        rate_limit: None,
        progress: None,
        extra_ca_pem: None,
        run_sleeper: None,
    };
    // Waits (backoff, Retry-After) pass on a manual clock: the test takes no real time for them.
    let clock = Arc::new(ManualClock::auto_advance());
    let timing = Timing {
        clock: clock.clone(),
        sleeper: clock,
    };
    // Enough attempts that 20% independent failures cannot exhaust them (0.2^10 per call);
    // the breaker and budget are off here: this test is about idempotent retries, and a
    // breaker *should* trip at a 20% error rate.
    let resilience = ResilienceConfig::disabled().with_retry(Some(RetryConfig {
        max_attempts: 10,
        min_wait: Duration::from_millis(50),
        max_wait: Duration::from_secs(2),
        ..RetryConfig::default()
    }));
    let provider = run::static_token(token, SystemTime::now() + Duration::from_secs(86_400));
    let client = run::client_with(&opts, provider, resilience, Some(timing)).unwrap();
    let desired = big_config();
    let flags = fabrik_flags::Flags::defaults();
    let plan = fabrik_cli::engine::plan(&client, &desired, 8)
        .await
        .unwrap();
    let report = run::apply(&client, &flags, &desired, &plan, &opts)
        .await
        .unwrap();
    assert!(
        report.errors.is_empty(),
        "faults '{faults}': {:?}",
        report.errors
    );
    // Read back without faults.
    let _ = reqwest::Client::new()
        .put(format!("{}/_emulator/faults", emu.base_url()))
        .body("")
        .send()
        .await
        .unwrap();
    let snap = snapshot(&client).await;
    let log: serde_json::Value = reqwest::get(format!("{}/_emulator/requests", emu.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let failed = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"].as_u64().unwrap_or(0) >= 429)
        .count();
    emu.shutdown().await.unwrap();
    (snap, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_percent_transient_faults_end_in_the_fault_free_state() {
    let (clean, clean_failures) = deploy("").await;
    assert_eq!(clean_failures, 0);
    assert_eq!(clean.len(), 50);
    assert!(
        clean
            .values()
            .all(|(items, roles)| items.len() == 5 && roles.len() >= 5)
    );

    let faults = "429=0.05,500=0.04,503=0.04,reset=0.03,writes:apply-then-500=0.02,writes:apply-then-reset=0.02";
    let (faulty, failures) = deploy(faults).await;
    assert!(
        failures > 50,
        "the fault injection must actually bite ({failures} failures)"
    );
    assert_eq!(faulty, clean, "nothing duplicated, nothing missing");
}
