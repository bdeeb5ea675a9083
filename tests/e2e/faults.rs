//! The fault matrix: with the emulator failing a fifth of all requests in every way a cloud
//! API does (429, 500, 503, dropped connections, writes that are applied and then fail, and
//! hangs the client must time out on), `fabrik apply` with the shipped defaults ends in
//! exactly the state a fault-free run produces.
//!
//! Time: the runtime is tokio's current-thread one with paused time, and everything — the
//! emulator, the client, the engine — runs on it over real loopback HTTP. Paused time
//! advances only when no task can run and no socket is ready, so backoff waits, `Retry-After`
//! hints and the 30 s attempt timeout that ends a hang take no real time, while a request the
//! emulator is answering can never time out (its socket is ready as soon as it is written).
//! The client is what `fabrik apply` builds (`RunOptions::defaults`, `run::run_resilience`
//! with the default flags); only its clock is tokio's instead of the system's, so deadlines
//! are measured on the same paused time as the waits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fabrik_cli::config::{Desired, DesiredItem, DesiredPrincipal, DesiredWorkspace};
use fabrik_cli::run::{self, RunOptions, Timing};
use fabrik_client::{FabricClient, ItemFilter};
use fabrik_core::Clock;
use fabrik_core::time::TokioSleeper;
use fabrik_emulator::{Emulator, EmulatorConfig, FaultConfig};
use futures::TryStreamExt;

/// 20 % of reads and 20 % of writes fail (the probabilities add up: see the emulator's fault
/// SPEC): throttling, server errors, dropped connections, hangs, and for writes the two
/// faults that apply the change before failing.
const FAULTS: &str = "429=0.05,500=0.04,503=0.04,reset=0.03,hang=0.01,reads:500=0.03,\
                      writes:apply-then-500=0.02,writes:apply-then-reset=0.01";

/// Tokio's clock, which the paused test runtime drives (the system clock would not move
/// while paused time does).
#[derive(Debug)]
struct TokioClock {
    start: tokio::time::Instant,
    start_system: SystemTime,
}

impl TokioClock {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            start: tokio::time::Instant::now(),
            start_system: SystemTime::now(),
        })
    }
}

impl Clock for TokioClock {
    fn now(&self) -> std::time::Instant {
        tokio::time::Instant::now().into_std()
    }
    fn system_now(&self) -> SystemTime {
        self.start_system + self.start.elapsed()
    }
}

/// 50 workspaces × (3 lakehouses, 5 principals).
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
                .collect(),
            principals: (0..5)
                .map(|p| DesiredPrincipal {
                    id: format!("00000000-0000-4000-8000-{:06}{:06}", w, p),
                    kind: "User".into(),
                    role: ["Admin", "Member", "Contributor", "Viewer", "Viewer"][p].into(),
                })
                .collect(),
            git: None,
            publish: None,
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

/// What a run did.
struct Outcome {
    report: run::ApplyReport,
    /// The deployment, read back without faults.
    snapshot: Snapshot,
    /// The emulator's count: `/v1` requests and injected failures during the apply.
    stats: fabrik_emulator::FaultStats,
    /// The kinds of fault injected, from the emulator's request log.
    kinds: BTreeSet<String>,
}

async fn deploy(faults: &str) -> Outcome {
    let clock = TokioClock::new();
    let config = EmulatorConfig {
        faults: faults.parse::<FaultConfig>().unwrap(),
        // Every request has rules that apply to it and reads and writes both add up to 20 %,
        // so whether the i-th request fails depends only on i and the seed, not on which
        // request arrives i-th. Over the first N requests this seed fails between 19 % and
        // 21 % for every N from 300 to 4,000 (an apply makes about 600); an arbitrary seed
        // strays further over so few requests (binomial σ ≈ 1.6 % at 600).
        seed: 394,
        clock: clock.clone(),
        sleeper: Arc::new(TokioSleeper),
        ..Default::default()
    };
    let emu = Emulator::start(config).await.unwrap();
    let token = emu.mint_token_as(
        "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "ServicePrincipal",
        Duration::from_secs(86_400),
    );
    let state = tempfile::tempdir().unwrap();
    // What `fabrik apply` runs with when no flag or variable says otherwise.
    let opts = RunOptions::defaults(format!("{}/v1", emu.base_url()), state.path());
    let flags = fabrik_flags::Flags::defaults();
    let resilience = run::run_resilience(&opts, &flags).unwrap();
    let timing = Timing {
        clock: clock.clone(),
        sleeper: Arc::new(TokioSleeper),
    };
    let provider = run::static_token(token, SystemTime::now() + Duration::from_secs(86_400));
    let client = run::client_with(&opts, provider, resilience, Some(timing)).unwrap();
    let desired = big_config();
    let plan = fabrik_cli::engine::plan(&client, &desired, opts.concurrency)
        .await
        .unwrap();
    let report = run::apply(&client, &flags, &desired, &plan, &opts)
        .await
        .unwrap();
    let stats = emu.fault_stats();
    let log: serde_json::Value = reqwest::get(format!("{}/_emulator/requests", emu.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["fault"].as_str().map(str::to_owned))
        .collect();
    // Read back without faults.
    emu.set_faults(FaultConfig::default());
    let snapshot = snapshot(&client).await;
    emu.shutdown().await.unwrap();
    Outcome {
        report,
        snapshot,
        stats,
        kinds,
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn twenty_percent_faults_of_every_kind_end_in_the_fault_free_state_with_the_defaults() {
    let clean = deploy("").await;
    assert_eq!(clean.stats.faulted, 0);
    assert_eq!(clean.snapshot.len(), 50);
    assert!(
        clean
            .snapshot
            .values()
            .all(|(items, roles)| items.len() == 3 && roles.len() >= 5)
    );

    let faulty = deploy(FAULTS).await;
    let report = &faulty.report;
    assert!(
        report.errors.is_empty() && report.rollback_errors.is_empty(),
        "{:?}\nrollback: {:?}",
        report.errors,
        report.rollback_errors,
    );
    let rate = faulty.stats.rate();
    assert!(
        (0.18..=0.22).contains(&rate),
        "realized fault rate {rate} ({:?})",
        faulty.stats
    );
    let every_kind = [
        "429",
        "500",
        "503",
        "reset",
        "hang",
        "apply-then-500",
        "apply-then-reset",
    ];
    assert!(
        every_kind.iter().all(|k| faulty.kinds.contains(*k)),
        "{:?}",
        faulty.kinds
    );
    assert_eq!(
        faulty.snapshot, clean.snapshot,
        "nothing duplicated, nothing missing"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_rollback_under_twenty_percent_faults_retries_its_undo_calls_to_the_end() {
    // The same faults, and the 200th role assignment refused for good (400): the apply
    // fails with about 200 changes made, and rolls all of them back through the same faults.
    let spec = format!("POST /v1/workspaces/*/roleAssignments#200=400,{FAULTS}");
    let failed = deploy(&spec).await;
    let report = &failed.report;
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(report.errors[0].contains("HTTP 400"), "{:?}", report.errors);
    assert!(
        report.rolled_back.len() > 100,
        "{}",
        report.rolled_back.len()
    );
    assert!(
        report.rollback_errors.is_empty(),
        "undo calls gave up: {:?}",
        report.rollback_errors
    );
    assert!(failed.stats.faulted > 50, "{:?}", failed.stats);
    assert_eq!(failed.snapshot, Snapshot::new(), "everything undone");
}
