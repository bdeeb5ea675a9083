//! End-to-end: the CLI's engine deploys the shipped examples to the in-process emulator over
//! real HTTP, idempotently, and rolls back on a permanent failure.

use std::path::Path;
use std::time::{Duration, SystemTime};

use fabrik_cli::config::{self, LoadOptions};
use fabrik_cli::run::{self, RunOptions};
use fabrik_emulator::{Emulator, EmulatorConfig};

async fn start() -> (
    Emulator,
    fabrik_client::FabricClient,
    RunOptions,
    tempfile::TempDir,
) {
    start_with(EmulatorConfig::default()).await
}

async fn start_with(
    config: EmulatorConfig,
) -> (
    Emulator,
    fabrik_client::FabricClient,
    RunOptions,
    tempfile::TempDir,
) {
    let emu = Emulator::start(config).await.expect("emulator");
    let token = emu.mint_token_as(
        "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "ServicePrincipal",
        Duration::from_secs(3600),
    );
    let state = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        base_url: format!("{}/v1", emu.base_url()),
        concurrency: 4,
        state_dir: state.path().to_path_buf(),
        rollback: true,
        lro_deadline: Duration::from_secs(60),
        call_timeout: Some(Duration::from_secs(30)),
        run_timeout: None,
        rate_limit: None,
        progress: None,
        extra_ca_pem: None,
        run_sleeper: None,
        command: "apply",
    };
    let provider = run::static_token(token, SystemTime::now() + Duration::from_secs(3600));
    let client = run::client(&opts, &fabrik_flags::Flags::defaults(), provider).unwrap();
    (emu, client, opts, state)
}

/// A new workspace on the emulator, with no capacity.
async fn workspace(
    client: &fabrik_client::FabricClient,
    name: &str,
) -> fabrik_client::models::Workspace {
    client
        .create_workspace(&fabrik_client::models::CreateWorkspaceRequest {
            display_name: name.into(),
            description: None,
            capacity_id: None,
            domain_id: None,
        })
        .await
        .expect("workspace")
}

fn examples(env: &str) -> config::Desired {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fabrik.yaml");
    let opts = LoadOptions {
        environment: env.into(),
        lenient: false,
        env: Default::default(),
        secrets: Default::default(),
        repositories: Some(fabrik_cli::publish::reader::RepoReader::shared()),
        sections: fabrik_cli::engine::Registry::builtin().sections(),
    };
    config::load(&path, &opts).expect("examples are valid").0
}

/// Sets the emulator's faults (`METHOD path#n=status`, as `/_emulator/faults` takes them).
async fn put_faults(emu: &Emulator, spec: &str) {
    let r = reqwest::Client::new()
        .put(format!("{}/_emulator/faults", emu.base_url()))
        .json(&serde_json::json!({ "spec": spec }))
        .send()
        .await
        .expect("faults");
    assert!(r.status().is_success(), "faults '{spec}' refused");
}

async fn admin(emu: &Emulator, path: &str) -> serde_json::Value {
    reqwest::get(format!("{}{path}", emu.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn writes(log: &serde_json::Value) -> usize {
    let entries = log
        .as_array()
        .or_else(|| log.get("requests").and_then(|r| r.as_array()))
        .expect("request log");
    // getDefinition and bulkExportDefinitions are reads that the API spells as POST.
    entries
        .iter()
        .filter(|e| e["method"] != "GET")
        .filter(|e| {
            e["path"].as_str().is_some_and(|p| {
                p.starts_with("/v1")
                    && !p.ends_with("/getDefinition")
                    && !p.ends_with("/bulkExportDefinitions")
            })
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_deploy_and_a_second_apply_sends_no_writes() {
    let (emu, client, opts, _state) = start().await;
    let desired = examples("dev");
    let flags = fabrik_flags::Flags::defaults();
    let plan = fabrik_cli::run::plan(&client, &desired, 4).await.unwrap();
    assert_eq!(plan.change_count(), 29);
    let report = run::apply(&client, &flags, &desired, &plan, &opts)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.applied.len(), 29);

    reqwest::Client::new()
        .delete(format!("{}/_emulator/requests", emu.base_url()))
        .send()
        .await
        .unwrap();
    let again = fabrik_cli::run::plan(&client, &desired, 4).await.unwrap();
    assert_eq!(again.change_count(), 0, "{again:#?}");
    let report = run::apply(&client, &flags, &desired, &again, &opts)
        .await
        .unwrap();
    assert!(report.applied.is_empty() && report.run_id.is_none());
    assert_eq!(writes(&admin(&emu, "/_emulator/requests").await), 0);
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_rolls_back_to_the_state_before_the_run() {
    let (emu, client, opts, _state) = start().await;
    let flags = fabrik_flags::Flags::defaults();
    // Something exists before the run and must survive the rollback.
    let before_desired = examples("test");
    let mut first = before_desired.clone();
    first.workspaces.truncate(1);
    first.workspaces[0].git = None;
    let plan = fabrik_cli::run::plan(&client, &first, 4).await.unwrap();
    let r = run::apply(&client, &flags, &first, &plan, &opts)
        .await
        .unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let before = admin(&emu, "/_emulator/state").await;

    // A workspace whose git connection names no credentials fails permanently (400) late in the run.
    let mut desired = examples("test");
    desired.workspaces[0].git.as_mut().unwrap().connection_id = None;
    let plan = fabrik_cli::run::plan(&client, &desired, 1).await.unwrap();
    let report = run::apply(&client, &flags, &desired, &plan, &opts)
        .await
        .unwrap();
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(report.errors[0].contains("git"), "{:?}", report.errors);
    assert!(!report.rolled_back.is_empty());
    assert!(
        report.rollback_errors.is_empty(),
        "{:?}",
        report.rollback_errors
    );
    let mut after = admin(&emu, "/_emulator/state").await;
    let mut before = before;
    // Soft-deleted items are kept apart by the emulator; compare what is live.
    for s in [&mut before, &mut after] {
        if let Some(o) = s.as_object_mut() {
            o.retain(|k, _| {
                !k.to_lowercase().contains("deleted") && !k.to_lowercase().contains("recycle")
            });
        }
    }
    assert_eq!(after, before);
    emu.shutdown().await.unwrap();
}

mod export;
mod faults;
mod kind_undo;
mod live;
mod plan_output;
mod publish;
mod publish_params;
mod run_metrics;
mod spark_pool;
mod spark_settings;
mod toy_kind;

/// Plans and applies `desired` with the default flags; the run's report.
async fn plan_and_apply(
    client: &fabrik_client::FabricClient,
    opts: &RunOptions,
    desired: &config::Desired,
) -> run::ApplyReport {
    let flags = fabrik_flags::Flags::defaults();
    let plan = fabrik_cli::run::plan(client, desired, 4).await.unwrap();
    run::apply(client, &flags, desired, &plan, opts)
        .await
        .unwrap()
}

/// Plans and applies `desired`; the run must succeed.
async fn deploy(
    client: &fabrik_client::FabricClient,
    opts: &RunOptions,
    desired: &config::Desired,
) {
    let report = plan_and_apply(client, opts, desired).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

/// Someone adds a report by hand to workspace `name`.
async fn add_hand_made_report(client: &fabrik_client::FabricClient, name: &str) {
    let ws = client.find_workspace(name).await.unwrap().unwrap();
    client
        .create_item(
            &ws.id,
            &fabrik_client::models::CreateItemRequest::new("Hand made", "Report".into()),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_removes_what_the_config_describes_and_keeps_the_rest() {
    let (emu, client, opts, _state) = start().await;
    let desired = examples("dev");
    deploy(&client, &opts, &desired).await;
    // Someone adds a report by hand to the reporting workspace.
    add_hand_made_report(&client, &desired.workspaces[2].name).await;

    let options = fabrik_cli::destroy::DestroyOptions::default();
    let plan = fabrik_cli::destroy::destroy_plan(&client, &desired, &options)
        .await
        .unwrap();
    // Deleted whole: the workspace's delete, after only the deletes kinds plan themselves
    // (the curated workspace's Spark pool).
    let whole = |w: &fabrik_cli::plan::WorkspacePlan| {
        let kind = |c: &fabrik_cli::plan::Change| c.resource_kind();
        w.changes.last().map(kind) == Some(fabrik_core::resource::ResourceKind::Workspace)
            && w.changes[..w.changes.len() - 1]
                .iter()
                .all(|c| c.address.kind == "spark_pool")
    };
    assert_eq!(plan.workspaces.iter().filter(|w| whole(w)).count(), 2);
    let kept = &plan.workspaces[2];
    assert!(!whole(kept));
    assert_eq!(kept.unmanaged, vec!["report Hand made"]);
    assert!(
        kept.changes
            .iter()
            .any(|c| c.target == "lakehouse GOLD_Reporting_Lakehouse")
    );
    let flags = fabrik_flags::Flags::defaults();
    let report = fabrik_cli::run::apply(&client, &flags, &desired, &plan, &opts)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let left: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(client.list_workspaces())
        .await
        .unwrap();
    assert_eq!(
        left.iter()
            .map(|w| w.display_name.as_str())
            .collect::<Vec<_>>(),
        vec![desired.workspaces[2].name.as_str()]
    );
    // A second destroy finds nothing more to remove.
    let again = fabrik_cli::destroy::destroy_plan(&client, &desired, &options)
        .await
        .unwrap();
    assert_eq!(
        again.change_count(),
        0,
        "{}",
        fabrik_cli::render::text(&again)
    );
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_made_directly_in_the_service_shows_in_plan_and_apply_repairs_it() {
    use fabrik_client::models::{UpdateItemRequest, WorkspaceRole};
    let (emu, client, opts, _state) = start().await;
    let desired = examples("dev");
    let flags = fabrik_flags::Flags::defaults();
    deploy(&client, &opts, &desired).await;

    // Someone edits things by hand: a lakehouse description, a role, and deletes a notebook.
    let ws = client
        .find_workspace(&desired.workspaces[0].name)
        .await
        .unwrap()
        .unwrap();
    let items: Vec<_> =
        futures::TryStreamExt::try_collect(client.list_items(&ws.id, &Default::default()))
            .await
            .unwrap();
    let lh = items
        .iter()
        .find(|i| i.display_name == "BRONZE_Sales_Lakehouse")
        .unwrap();
    let nb = items
        .iter()
        .find(|i| i.display_name == "01_Ingest_Sales_Notebook")
        .unwrap();
    client
        .update_item(
            &ws.id,
            &lh.id,
            &UpdateItemRequest {
                display_name: None,
                description: Some("edited by hand".into()),
            },
        )
        .await
        .unwrap();
    client.delete_item(&ws.id, &nb.id).await.unwrap();
    client
        .update_role_assignment(
            &ws.id,
            "c3d4e5f6-a7b8-4c9d-8e1f-2a3b4c5d6e7f",
            WorkspaceRole::Admin,
        )
        .await
        .unwrap();

    let drift = fabrik_cli::run::plan(&client, &desired, 4).await.unwrap();
    let changes: Vec<(String, Option<String>)> = drift
        .workspaces
        .iter()
        .flat_map(|w| &w.changes)
        .map(|c| (c.target.clone(), c.detail.clone()))
        .collect();
    assert_eq!(
        changes,
        vec![
            (
                "lakehouse BRONZE_Sales_Lakehouse".to_string(),
                Some("description: \"edited by hand\" → \"Raw sales extracts\"".to_string())
            ),
            (
                "notebook 01_Ingest_Sales_Notebook".to_string(),
                Some("in folder bronze".to_string())
            ),
            (
                "role for Group c3d4e5f6-a7b8-4c9d-8e1f-2a3b4c5d6e7f".to_string(),
                Some("role: Admin → Viewer".to_string())
            ),
        ]
    );
    let report = run::apply(&client, &flags, &desired, &drift, &opts)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        fabrik_cli::run::plan(&client, &desired, 4)
            .await
            .unwrap()
            .change_count(),
        0
    );
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_on_the_seventh_workspace_rolls_everything_back() {
    use fabrik_cli::config::{DesiredItem, DesiredPrincipal, DesiredWorkspace};
    let (emu, client, mut opts, _state) = start().await;
    opts.concurrency = 1;
    let before = admin(&emu, "/_emulator/state").await;
    let workspaces = (0..10)
        .map(|w| DesiredWorkspace {
            name: format!("perm-{w}"),
            description: String::new(),
            capacity: None,
            folders: vec![],
            items: vec![DesiredItem {
                name: format!("LH_{w}"),
                item_type: "Lakehouse".into(),
                description: String::new(),
                folder: None,
                definition: None,
            }],
            principals: vec![DesiredPrincipal {
                id: "9117cbfa-f0a7-43b7-846f-96ba66a3c1c0".into(),
                kind: "Group".into(),
                role: "Viewer".into(),
            }],
            git: None,
            publish: None,
            sections: Default::default(),
        })
        .collect();
    let desired = config::Desired {
        environment: "dev".into(),
        workspaces,
        features: Default::default(),
        hash: "x".into(),
    };
    // The 7th workspace create is refused for good.
    emu.set_faults("POST /v1/workspaces#7=403".parse().unwrap());
    let flags = fabrik_flags::Flags::defaults();
    let plan = fabrik_cli::run::plan(&client, &desired, 1).await.unwrap();
    let report = run::apply(&client, &flags, &desired, &plan, &opts)
        .await
        .unwrap();
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.errors[0].contains("perm-6") && report.errors[0].contains("403"),
        "{:?}",
        report.errors
    );
    assert_eq!(
        report.rolled_back.len(),
        18,
        "6 workspaces, 6 lakehouses, 6 roles: {:?}",
        report.rolled_back
    );
    let after = admin(&emu, "/_emulator/state").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_items_the_config_does_not_describe_and_nothing_else() {
    let (emu, client, opts, _state) = start().await;
    let desired = examples("dev");
    let flags = fabrik_flags::Flags::defaults();
    deploy(&client, &opts, &desired).await;
    add_hand_made_report(&client, &desired.workspaces[2].name).await;

    // Without --prune it is reported and left alone.
    let kept = fabrik_cli::run::plan(&client, &desired, 4).await.unwrap();
    assert_eq!(kept.change_count(), 0);
    assert_eq!(kept.workspaces[2].unmanaged, vec!["report Hand made"]);
    // With --prune it is the one change, and apply deletes it.
    let pruned = fabrik_cli::run::plan_with(&client, &desired, 4, true)
        .await
        .unwrap();
    let changes: Vec<_> = pruned.workspaces.iter().flat_map(|w| &w.changes).collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].action, fabrik_cli::plan::Action::Delete);
    assert_eq!(changes[0].target, "report Hand made");
    let report = run::apply(&client, &flags, &desired, &pruned, &opts)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.applied[0].outcome, "deleted");
    assert_eq!(
        fabrik_cli::run::plan_with(&client, &desired, 4, true)
            .await
            .unwrap()
            .change_count(),
        0
    );
    emu.shutdown().await.unwrap();
}

/// The whole-run deadline, timed by a manual clock: the test moves time past the deadline
/// while an item create is in flight; that create finishes (and is journaled), no further
/// change starts, and the run rolls back to the state before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_its_deadline_stops_and_rolls_back() {
    use std::sync::Arc;
    // Item creates take the emulated service 200 ms.
    let emu = Emulator::start(EmulatorConfig {
        faults: "items:latency=200ms".parse().unwrap(),
        ..Default::default()
    })
    .await
    .unwrap();
    let token = emu.mint_token_as(
        "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "ServicePrincipal",
        Duration::from_secs(86_400),
    );
    let state = tempfile::tempdir().unwrap();
    let clock = Arc::new(fabrik_core::time::ManualClock::new());
    let opts = RunOptions {
        base_url: format!("{}/v1", emu.base_url()),
        concurrency: 1,
        state_dir: state.path().to_path_buf(),
        rollback: true,
        lro_deadline: Duration::from_secs(3600),
        call_timeout: None,
        run_timeout: Some(Duration::from_secs(60)),
        rate_limit: None,
        progress: None,
        extra_ca_pem: None,
        run_sleeper: Some(clock.clone()),
        command: "apply",
    };
    let provider = run::static_token(token, SystemTime::now() + Duration::from_secs(86_400));
    let client = run::client_with(
        &opts,
        provider,
        fabrik_resilience::ResilienceConfig::disabled(),
        None,
    )
    .unwrap();
    let before = emu.state();
    let mut desired = examples("dev");
    desired.workspaces.truncate(1);
    desired.workspaces[0].git = None;
    let flags = fabrik_flags::Flags::defaults();
    let plan = fabrik_cli::run::plan(&client, &desired, 1).await.unwrap();
    // Once both folders exist the next change is an item create: move the clock past the
    // deadline then (waiting on the run's progress, read in process, not on a timer).
    let drive = async {
        for _ in 0..6000 {
            let s = emu.state().to_string();
            if s.contains("\"bronze\"") && s.contains("\"silver\"") && clock.waiting() >= 1 {
                clock.advance(Duration::from_secs(61));
                return true;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        false
    };
    let (report, advanced) =
        tokio::join!(run::apply(&client, &flags, &desired, &plan, &opts), drive);
    assert!(advanced, "the run got under way");
    let report = report.unwrap();
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.errors[0].contains("deadline of 60s"),
        "{:?}",
        report.errors
    );
    assert!(
        report.applied.len() < plan.change_count(),
        "the run stopped early: {:?}",
        report.applied
    );
    assert!(!report.rolled_back.is_empty());
    assert_eq!(live(emu.state()), live(before));
    emu.shutdown().await.unwrap();
}
