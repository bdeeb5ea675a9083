//! The workspace Spark settings kind (`spark_settings:`) against the emulator: apply sets the
//! named settings (the default pool after that pool's create), a second plan is empty, and a
//! failed run puts the previous values back.

use fabrik_cli::config::Desired;
use fabrik_cli::engine::kinds::{spark_pool, spark_settings};
use serde_json::{Value, json};

const WS: &str = "spark-settings-e2e";

fn desired(settings: Value, lakehouses: &[&str]) -> Desired {
    let mut d = crate::examples("dev");
    d.workspaces.truncate(1);
    let w = &mut d.workspaces[0];
    w.name = WS.into();
    w.items.clear();
    w.folders.clear();
    w.principals.clear();
    w.git = None;
    w.publish = None;
    w.capacity = None;
    w.sections.clear();
    w.sections.insert(
        spark_pool::KEY.into(),
        json!([{"name": "gold-builds", "node_size": "Medium",
                "auto_scale": {"min_node_count": 1, "max_node_count": 4},
                "dynamic_executor_allocation": {"min_executors": 1, "max_executors": 2}}]),
    );
    w.sections.insert(spark_settings::KEY.into(), settings);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_settings_are_set_after_the_default_pool_and_a_second_plan_is_empty() {
    let (emu, client, opts, _state) = crate::start().await;
    let d = desired(
        json!({"default_pool": "gold-builds", "session_timeout_minutes": 45}),
        &[],
    );
    let plan = fabrik_cli::run::plan(&client, &d, 4).await.unwrap();
    let all: Vec<_> = plan.changes().collect();
    let settings = all
        .iter()
        .position(|(_, c)| c.address.kind == spark_settings::NAME)
        .expect("a settings change");
    let pool = all
        .iter()
        .position(|(_, c)| c.address.kind == spark_pool::NAME)
        .expect("a pool create");
    assert!(plan.graph.deps(settings).contains(&pool), "{plan:#?}");
    let report = crate::plan_and_apply(&client, &opts, &d).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let ws = client.find_workspace(WS).await.unwrap().unwrap().id;
    let live = client.get_spark_settings(&ws).await.unwrap();
    let pool_id = client
        .find_custom_pool(&ws, "gold-builds")
        .await
        .unwrap()
        .unwrap()
        .id;
    let default = live.pool.clone().unwrap().default_pool.unwrap();
    assert_eq!(default.id.as_deref(), Some(pool_id.as_str()));
    assert_eq!(
        live.job.clone().unwrap().session_timeout_in_minutes,
        Some(45)
    );
    // What the configuration does not name is as it was.
    assert_eq!(live.automatic_log.unwrap().enabled, Some(true));
    let again = fabrik_cli::run::plan(&client, &d, 4).await.unwrap();
    assert_eq!(again.change_count(), 0, "{again:#?}");
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_puts_the_previous_settings_back() {
    let (emu, client, mut opts, _state) = crate::start().await;
    opts.concurrency = 1;
    let first = desired(json!({"session_timeout_minutes": 30}), &[]);
    let report = crate::plan_and_apply(&client, &opts, &first).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let ws = client.find_workspace(WS).await.unwrap().unwrap().id;
    let before = client.get_spark_settings(&ws).await.unwrap();
    // Settings go before items: they change, then the lakehouse is refused.
    crate::put_faults(&emu, "POST /v1/workspaces/*/items#1=400").await;
    let changed = desired(
        json!({"session_timeout_minutes": 60, "automatic_log": false, "default_pool": "gold-builds"}),
        &["BRONZE_Refused"],
    );
    let report = crate::plan_and_apply(&client, &opts, &changed).await;
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.rollback_errors.is_empty(),
        "{:?}",
        report.rollback_errors
    );
    assert!(
        report.applied.iter().any(|a| a.target == "spark settings"),
        "the settings were changed before the failure: {:?}",
        report.applied
    );
    assert_eq!(client.get_spark_settings(&ws).await.unwrap(), before);
    emu.shutdown().await.unwrap();
}
