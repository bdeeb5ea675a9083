//! The Spark custom pool kind (`spark_pools:`) against the emulator: apply creates and
//! updates, a second plan is empty, a failed run restores the pools as they were, a run
//! killed mid-create is recovered by the kind (only the pool it made goes), and `destroy`
//! removes the described pools.

use fabrik_cli::config::{Desired, DesiredWorkspace};
use fabrik_cli::engine::kinds::spark_pool::{KEY, PoolUndo};
use fabrik_cli::engine::{Recovery, Registry};
use fabrik_client::models::{
    AutoScale, CreateCustomPoolRequest, CustomPool, DynamicExecutorAllocation, PoolSettings,
};
use fabrik_core::resource::{UndoOutcome, Undoer};
use serde_json::{Value, json};

const WS: &str = "spark-e2e";

fn pool(name: &str, size: &str, max_nodes: u32) -> Value {
    json!({
        "name": name,
        "node_size": size,
        "auto_scale": {"min_node_count": 1, "max_node_count": max_nodes},
        "dynamic_executor_allocation": {"enabled": false, "min_executors": 1, "max_executors": 2},
    })
}

/// One workspace describing `pools`, and `lakehouses` lakehouses.
fn desired(pools: Value, lakehouses: &[&str]) -> Desired {
    let mut d = crate::examples("dev");
    d.workspaces.truncate(1);
    let w: &mut DesiredWorkspace = &mut d.workspaces[0];
    w.name = WS.into();
    w.items.clear();
    w.folders.clear();
    w.principals.clear();
    w.git = None;
    w.publish = None;
    w.capacity = None;
    w.sections.clear();
    w.sections.insert(KEY.into(), pools);
    for name in lakehouses {
        w.items.push(fabrik_cli::config::DesiredItem {
            name: (*name).into(),
            item_type: "Lakehouse".into(),
            description: String::new(),
            folder: None,
            definition: None,
        });
    }
    d
}

fn settings(size: &str, max_nodes: u32) -> PoolSettings {
    PoolSettings {
        node_family: "MemoryOptimized".into(),
        node_size: size.into(),
        auto_scale: AutoScale {
            enabled: true,
            min_node_count: 1,
            max_node_count: max_nodes,
        },
        dynamic_executor_allocation: DynamicExecutorAllocation {
            enabled: false,
            min_executors: 1,
            max_executors: 2,
        },
    }
}

async fn pools_of(client: &fabrik_client::FabricClient, ws: &str) -> Vec<CustomPool> {
    futures::TryStreamExt::try_collect(client.list_custom_pools(ws))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_are_created_then_updated_and_a_second_plan_is_empty() {
    let (emu, client, opts, _state) = crate::start().await;
    let first = desired(
        json!([pool("etl", "Small", 2), pool("ad hoc", "Large", 3)]),
        &[],
    );
    let plan = fabrik_cli::run::plan(&client, &first, 4).await.unwrap();
    let kinds: Vec<&str> = plan.changes().map(|(_, c)| c.address.kind).collect();
    assert_eq!(kinds, ["workspace", "spark_pool", "spark_pool"]);
    let report = crate::plan_and_apply(&client, &opts, &first).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let ws = client.find_workspace(WS).await.unwrap().unwrap().id;
    let etl = client.find_custom_pool(&ws, "etl").await.unwrap().unwrap();
    assert_eq!(etl.settings, settings("Small", 2));
    assert!(
        client
            .find_custom_pool(&ws, "AD HOC")
            .await
            .unwrap()
            .is_some()
    );
    let again = fabrik_cli::run::plan(&client, &first, 4).await.unwrap();
    assert_eq!(again.change_count(), 0, "{again:#?}");

    let second = desired(
        json!([pool("etl", "Medium", 4), pool("ad hoc", "Large", 3)]),
        &[],
    );
    let plan = fabrik_cli::run::plan(&client, &second, 4).await.unwrap();
    assert_eq!(plan.change_count(), 1);
    let (_, update) = plan.changes().next().unwrap();
    assert_eq!(
        update.detail.as_deref(),
        Some("node_size: Small → Medium, auto_scale.max_node_count: 2 → 4")
    );
    let report = crate::plan_and_apply(&client, &opts, &second).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let etl_after = client.find_custom_pool(&ws, "etl").await.unwrap().unwrap();
    assert_eq!(etl_after.id, etl.id, "updated in place");
    assert_eq!(etl_after.settings, settings("Medium", 4));
    let again = fabrik_cli::run::plan(&client, &second, 4).await.unwrap();
    assert_eq!(again.change_count(), 0, "{again:#?}");
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_restores_the_pools_as_they_were() {
    let (emu, client, mut opts, _state) = crate::start().await;
    opts.concurrency = 1;
    let report = crate::plan_and_apply(
        &client,
        &opts,
        &desired(json!([pool("etl", "Small", 2)]), &[]),
    )
    .await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let before = crate::admin(&emu, "/_emulator/state").await;
    // Pools go before items: etl is updated, nightly created, then the lakehouse is refused.
    crate::put_faults(&emu, "POST /v1/workspaces/*/items#1=400").await;
    let changed = desired(
        json!([pool("etl", "Large", 5), pool("nightly", "Small", 1)]),
        &["BRONZE_Refused"],
    );
    let report = crate::plan_and_apply(&client, &opts, &changed).await;
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.rollback_errors.is_empty(),
        "{:?}",
        report.rollback_errors
    );
    assert_eq!(crate::admin(&emu, "/_emulator/state").await, before);
    let ws = client.find_workspace(WS).await.unwrap().unwrap().id;
    let names: Vec<String> = pools_of(&client, &ws)
        .await
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["etl"]);
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pool_is_recreated_by_its_undo() {
    let (emu, client, _opts, _state) = crate::start().await;
    let ws = crate::workspace(&client, WS).await.id;
    let undo = PoolUndo::Recreate {
        workspace_id: ws.clone(),
        name: "pruned".into(),
        settings: settings("XLarge", 3),
    }
    .record();
    let recovery = Recovery::new(Registry::builtin(), client.clone());
    assert_eq!(recovery.undo(&undo).await.unwrap(), UndoOutcome::Done);
    let back = client
        .find_custom_pool(&ws, "pruned")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.settings, settings("XLarge", 3));
    // Twice is the same: the pool is there.
    assert_eq!(recovery.undo(&undo).await.unwrap(), UndoOutcome::Done);
    assert_eq!(pools_of(&client, &ws).await.len(), 1);
    // Deleting what is gone is done already.
    let delete = PoolUndo::Delete {
        workspace_id: ws.clone(),
        pool_id: back.id.clone(),
    }
    .record();
    assert_eq!(recovery.undo(&delete).await.unwrap(), UndoOutcome::Done);
    assert_eq!(
        recovery.undo(&delete).await.unwrap(),
        UndoOutcome::AlreadyGone
    );
    emu.shutdown().await.unwrap();
}

/// The child half of [`a_killed_run_leaves_only_the_pools_it_did_not_make`]: applies until
/// the parent kills it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child process of a_killed_run_leaves_only_the_pools_it_did_not_make"]
async fn spark_child_applies_until_killed() {
    let Ok(spec) = std::env::var("FABRIK_SPARK_CHILD") else {
        panic!("run only by a_killed_run_leaves_only_the_pools_it_did_not_make");
    };
    let [base_url, token, state_dir]: [&str; 3] =
        spec.split('|').collect::<Vec<_>>().try_into().unwrap();
    let mut opts = fabrik_cli::run::RunOptions::defaults(base_url, state_dir);
    opts.concurrency = 1;
    let provider = fabrik_cli::run::static_token(
        token.to_string(),
        std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
    );
    let client =
        fabrik_cli::run::client(&opts, &fabrik_flags::Flags::defaults(), provider).unwrap();
    let _ = crate::plan_and_apply(
        &client,
        &opts,
        &desired(json!([pool("etl", "Small", 2)]), &[]),
    )
    .await;
    unreachable!("the pool's create hangs until this process is killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_leaves_only_the_pools_it_did_not_make() {
    let (emu, client, opts, state) = crate::start().await;
    let ws = crate::workspace(&client, WS).await.id;
    let hand_made = CreateCustomPoolRequest {
        name: "hand made".into(),
        settings: settings("Small", 1),
    };
    client.create_custom_pool(&ws, &hand_made).await.unwrap();
    let before = crate::admin(&emu, "/_emulator/state").await;
    crate::put_faults(&emu, "POST /v1/workspaces/*/spark/pools#1=hang").await;
    let token = emu.mint_token_as(
        "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "ServicePrincipal",
        std::time::Duration::from_secs(3600),
    );
    let spec = format!("{}|{token}|{}", opts.base_url, state.path().display());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "spark_pool::spark_child_applies_until_killed",
            "--exact",
            "--ignored",
        ])
        .env("FABRIK_SPARK_CHILD", spec)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the pool's create to hang (this waits on the other process, not a timer).
    let mut hung = false;
    for _ in 0..6000 {
        let log = crate::admin(&emu, "/_emulator/requests").await;
        hung = log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["method"] == "POST" && r["fault"] == "hang");
        if hung {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(hung, "the child never reached the pool's create");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    crate::put_faults(&emu, "").await;
    // Fabric may finish a create whose caller died: the pool appears after all.
    let made = CreateCustomPoolRequest {
        name: "etl".into(),
        settings: settings("Small", 2),
    };
    client.create_custom_pool(&ws, &made).await.unwrap();

    let runs = fabrik_txn::Journal::find_incomplete(state.path())
        .unwrap()
        .runs;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let report = fabrik_cli::run::rollback(&client, state.path(), &runs[0].run_id)
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(crate::admin(&emu, "/_emulator/state").await, before);
    let names: Vec<String> = pools_of(&client, &ws)
        .await
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["hand made"]);
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_removes_the_described_pools() {
    let (emu, client, opts, _state) = crate::start().await;
    let d = desired(
        json!([pool("etl", "Small", 2), pool("nightly", "Small", 1)]),
        &[],
    );
    let report = crate::plan_and_apply(&client, &opts, &d).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let ws = client.find_workspace(WS).await.unwrap().unwrap().id;
    // A hand-made report keeps the workspace; a hand-made pool is left too.
    crate::add_hand_made_report(&client, WS).await;
    let hand_made = CreateCustomPoolRequest {
        name: "hand made".into(),
        settings: settings("Small", 1),
    };
    client.create_custom_pool(&ws, &hand_made).await.unwrap();
    let plan = fabrik_cli::destroy::destroy_plan(&client, &d, &Default::default())
        .await
        .unwrap();
    let kinds: Vec<&str> = plan.changes().map(|(_, c)| c.address.kind).collect();
    assert_eq!(kinds, ["spark_pool", "spark_pool"], "{plan:#?}");
    let mut opts = opts;
    opts.command = "destroy";
    let report =
        fabrik_cli::run::apply(&client, &fabrik_flags::Flags::defaults(), &d, &plan, &opts)
            .await
            .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let names: Vec<String> = pools_of(&client, &ws)
        .await
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["hand made"]);
    emu.shutdown().await.unwrap();
}

/// A workspace that describes no pools costs no pool request: not in the plan, not in the
/// apply (a call per workspace would be the whole cost of a no-op plan of a large estate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_without_pools_sends_no_pool_request() {
    let (emu, client, opts, _state) = crate::start().await;
    let mut without = desired(json!([]), &["L"]);
    without.workspaces[0].sections.clear();
    let report = crate::plan_and_apply(&client, &opts, &without).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let again = fabrik_cli::run::plan(&client, &without, 4).await.unwrap();
    assert_eq!(again.change_count(), 0, "{again:#?}");
    let log = crate::admin(&emu, "/_emulator/requests").await;
    let paths: Vec<&str> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["path"].as_str())
        .collect();
    assert!(
        paths.iter().any(|p| p.ends_with("/workspaces")),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.contains("/spark/pools")),
        "{paths:?}"
    );
    emu.shutdown().await.unwrap();
}
