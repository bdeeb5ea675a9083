//! A kind added through the `Kind` trait alone, with no edit to the engine: for every lakehouse
//! in a workspace, a data pipeline named after it whose description carries the lakehouse's
//! id. The pipeline references its lakehouse, so the graph orders it after the lakehouse's
//! create, and apply resolves the id the lakehouse's create produced. It journals an undo
//! payload of its own and recognises what its crashed creates made, so a failed run and a
//! killed one are rolled back by the kind itself.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use fabrik_cli::config::DesiredWorkspace;
use fabrik_cli::engine::UndoCx;
use fabrik_cli::engine::recovery::{listed, pick};
use fabrik_cli::engine::{
    Address, ApplyCx, Diff, DiffCx, EngineError, Kind, Need, Outcome, Planned, ReadCx, Registry,
    workspace_address,
};
use fabrik_cli::plan::Action;
use fabrik_client::models::{CreateItemRequest, ItemType};
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo, UndoError, UndoOutcome};
use fabrik_txn::Intent;

/// How often the toy kind carried out its own undo and recovery (tests run in one process).
static UNDONE: AtomicUsize = AtomicUsize::new(0);
static RECOVERED: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// The toy kind.
struct LoaderPipelines;

/// The toy kind's own undo payload: drop the pipeline it made.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct DropLoader {
    workspace: String,
    pipeline: String,
}

#[derive(Debug, serde::Serialize)]
enum LoaderOp {
    Create {
        name: String,
        lakehouse: String,
    },
    /// The kind's own delete, for `destroy`.
    Drop {
        name: String,
        id: String,
    },
}

#[async_trait]
impl Kind for LoaderPipelines {
    /// The pipelines that exist: (name, id).
    type Live = Vec<(String, String)>;
    type Op = LoaderOp;

    fn name(&self) -> &'static str {
        "loader"
    }

    fn resource_kind(&self) -> ResourceKind {
        ResourceKind::Item
    }

    fn claims_item_type(&self) -> Option<&'static str> {
        Some("DataPipeline")
    }

    async fn read(&self, cx: &ReadCx<'_>) -> Result<Self::Live, EngineError> {
        let mut live = Vec::new();
        for i in cx.items().await? {
            if i.kind.as_str() == "DataPipeline" {
                let at = Address::new(&cx.desired.name, "loader", &i.display_name);
                cx.know(at, &i.id);
                live.push((i.display_name.clone(), i.id.clone()));
            }
        }
        Ok(live)
    }

    fn destroy(&self, desired: &DesiredWorkspace, live: &Self::Live) -> Diff<LoaderOp> {
        let mut d = Diff::default();
        for lh in desired.items.iter().filter(|i| i.item_type == "Lakehouse") {
            let name = format!("Load_{}", lh.name);
            if let Some((_, id)) = live.iter().find(|(n, _)| *n == name) {
                d.changes.push(Planned {
                    action: Action::Delete,
                    key: name.clone(),
                    target: format!("pipeline {name}"),
                    detail: None,
                    needs: vec![],
                    op: LoaderOp::Drop {
                        name,
                        id: id.clone(),
                    },
                });
            }
        }
        d
    }

    fn diff(&self, desired: &DesiredWorkspace, live: &Self::Live, _: &DiffCx) -> Diff<LoaderOp> {
        let mut d = Diff::default();
        for lh in desired.items.iter().filter(|i| i.item_type == "Lakehouse") {
            let name = format!("Load_{}", lh.name);
            if live.iter().any(|(n, _)| *n == name) {
                continue;
            }
            d.changes.push(Planned {
                action: Action::Create,
                key: name.clone(),
                target: format!("pipeline {name}"),
                detail: Some(format!("loads {}", lh.name)),
                needs: vec![
                    Need::At(workspace_address(&desired.name)),
                    Need::At(Address::new(&desired.name, "lakehouse", &lh.name)),
                ],
                op: LoaderOp::Create {
                    name,
                    lakehouse: lh.name.clone(),
                },
            });
        }
        d
    }

    async fn apply(&self, op: &LoaderOp, cx: &ApplyCx<'_>) -> Result<Outcome, EngineError> {
        let ws = cx.workspace_id()?;
        let (name, lakehouse) = match op {
            LoaderOp::Create { name, lakehouse } => (name, lakehouse),
            LoaderOp::Drop { name, id } => {
                let resource =
                    ResourceRef::in_workspace(ResourceKind::Item, &ws, id, Some(name.clone()));
                cx.track_without_undo(resource).await?;
                DROPPED.fetch_add(1, Ordering::SeqCst);
                return match cx.client.delete_item(&ws, id).await {
                    Ok(()) => Ok(Outcome::Deleted),
                    Err(e) if e.is_not_found() => Ok(Outcome::Deleted),
                    Err(e) => Err(cx.fabric(&format!("dropping {}", cx.target))(e)),
                };
            }
        };
        let lakehouse =
            cx.id_of("lakehouse", lakehouse)
                .ok_or_else(|| EngineError::Unresolved {
                    target: cx.target.to_string(),
                    missing: format!("lakehouse {lakehouse}"),
                })?;
        let mut req = CreateItemRequest::new(name.clone(), ItemType::from("DataPipeline"));
        req.description = Some(format!("loads {lakehouse}"));
        let (outcome, _) = cx
            .create(
                Intent::create(ResourceKind::Item, Some(ws.clone()), name.clone()),
                &format!("creating {}", cx.target),
                cx.client.get_or_create_item(&ws, &req),
                |it| {
                    (
                        ResourceRef::in_workspace(
                            ResourceKind::Item,
                            &ws,
                            &it.id,
                            Some(name.clone()),
                        ),
                        Undo::new(
                            "loader",
                            &DropLoader {
                                workspace: ws.clone(),
                                pipeline: it.id.clone(),
                            },
                        ),
                    )
                },
            )
            .await?;
        Ok(outcome)
    }

    async fn undo(&self, undo: &Undo, cx: &UndoCx<'_>) -> Result<UndoOutcome, UndoError> {
        let DropLoader {
            workspace,
            pipeline,
        } = undo.payload_as()?;
        UNDONE.fetch_add(1, Ordering::SeqCst);
        fabrik_cli::engine::settle(cx.client.delete_item(&workspace, &pipeline).await, &[])
    }

    async fn recover(
        &self,
        intent: &Intent,
        cx: &UndoCx<'_>,
    ) -> Result<Option<(ResourceRef, Undo)>, UndoError> {
        RECOVERED.fetch_add(1, Ordering::SeqCst);
        let ws = intent.workspace_id.clone().unwrap_or_default();
        let list = cx
            .client
            .list_items(&ws, &fabrik_client::ItemFilter::default());
        let Some(items) = listed(list).await? else {
            return Ok(None);
        };
        let loaders = items
            .iter()
            .filter(|i| i.kind.as_str() == "DataPipeline" && i.display_name == intent.display_name)
            .collect();
        Ok(pick(intent, loaders, |i| &i.id)?.map(|i| {
            (
                ResourceRef::in_workspace(
                    ResourceKind::Item,
                    &ws,
                    &i.id,
                    Some(i.display_name.clone()),
                ),
                Undo::new(
                    "loader",
                    &DropLoader {
                        workspace: ws.clone(),
                        pipeline: i.id.clone(),
                    },
                ),
            )
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_added_through_the_trait_deploys_after_what_it_references() {
    let (emu, client, opts, _state) = crate::start().await;
    let desired = crate::examples("dev");
    let registry = Registry::builtin().with(LoaderPipelines);
    let plan = fabrik_cli::engine::plan_kinds(&client, &desired, &registry, 4, false)
        .await
        .unwrap();
    let loaders: Vec<usize> = plan
        .changes()
        .enumerate()
        .filter(|(_, (_, c))| c.address.kind == "loader")
        .map(|(i, _)| i)
        .collect();
    let lakehouses = desired
        .workspaces
        .iter()
        .flat_map(|w| &w.items)
        .filter(|i| i.item_type == "Lakehouse")
        .count();
    assert_eq!(loaders.len(), lakehouses);
    let all: Vec<_> = plan.changes().collect();
    for &i in &loaders {
        let deps: Vec<&str> = plan
            .graph
            .deps(i)
            .iter()
            .map(|&j| all[j].1.address.kind)
            .collect();
        assert!(deps.contains(&"lakehouse"), "{deps:?}");
    }

    let flags = fabrik_flags::Flags::defaults();
    let report = fabrik_cli::run::apply(&client, &flags, &desired, &plan, &opts)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    // Each pipeline names the id its lakehouse got in this run.
    for w in &desired.workspaces {
        let ws = client.find_workspace(&w.name).await.unwrap().unwrap();
        let items: Vec<fabrik_client::models::Item> = futures::TryStreamExt::try_collect(
            client.list_items(&ws.id, &fabrik_client::ItemFilter::default()),
        )
        .await
        .unwrap();
        for lh in items.iter().filter(|i| i.kind.as_str() == "Lakehouse") {
            let loader = items
                .iter()
                .find(|i| i.display_name == format!("Load_{}", lh.display_name))
                .expect("a loader per lakehouse");
            assert_eq!(loader.description, format!("loads {}", lh.id));
        }
    }
    let again = fabrik_cli::engine::plan_kinds(&client, &desired, &registry, 4, false)
        .await
        .unwrap();
    assert_eq!(again.change_count(), 0);
    // Without the kind, its pipelines are the generic kind's: unmanaged, left alone.
    let builtin = fabrik_cli::run::plan(&client, &desired, 4).await.unwrap();
    assert_eq!(builtin.change_count(), 0);
    assert!(
        builtin
            .workspaces
            .iter()
            .flat_map(|w| &w.unmanaged)
            .any(|u| u.starts_with("datapipeline Load_"))
    );
    emu.shutdown().await.unwrap();
}

/// One workspace of the examples holding only `lakehouses` lakehouses.
fn lakehouses_only(lakehouses: usize) -> fabrik_cli::config::Desired {
    let mut desired = crate::examples("dev");
    desired.workspaces.truncate(1);
    let w = &mut desired.workspaces[0];
    w.items.retain(|i| i.item_type == "Lakehouse");
    w.items.truncate(lakehouses);
    assert_eq!(
        w.items.len(),
        lakehouses,
        "the examples have enough lakehouses"
    );
    for i in &mut w.items {
        i.folder = None;
    }
    w.folders.clear();
    w.principals.clear();
    w.git = None;
    w.publish = None;
    desired
}

fn registry() -> Registry {
    Registry::builtin().with(LoaderPipelines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_is_rolled_back_by_the_kinds_own_undo() {
    // POSTs to items: two lakehouses, then their loaders; the second loader is refused.
    let faults = "POST /v1/workspaces/*/items#4=400".parse().unwrap();
    let config = fabrik_emulator::EmulatorConfig {
        faults,
        ..Default::default()
    };
    let (emu, client, mut opts, _state) = crate::start_with(config).await;
    opts.concurrency = 1;
    let before = crate::admin(&emu, "/_emulator/state").await;
    let desired = lakehouses_only(2);
    let plan = fabrik_cli::engine::plan_kinds(&client, &desired, &registry(), 1, false)
        .await
        .unwrap();
    assert_eq!(
        plan.change_count(),
        5,
        "a workspace, two lakehouses, two loaders"
    );
    let undone = UNDONE.load(Ordering::SeqCst);
    let flags = fabrik_flags::Flags::defaults();
    let report = fabrik_cli::run::apply(&client, &flags, &desired, &plan, &opts)
        .await
        .unwrap();
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.rollback_errors.is_empty(),
        "{:?}",
        report.rollback_errors
    );
    assert!(
        UNDONE.load(Ordering::SeqCst) > undone,
        "the loader made was dropped by the toy kind's own undo"
    );
    assert_eq!(crate::admin(&emu, "/_emulator/state").await, before);
    emu.shutdown().await.unwrap();
}

/// The child half of [`a_killed_run_is_recovered_by_the_kind_itself`]: applies with the toy
/// kind against the emulator the parent names, until the parent kills it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child process of a_killed_run_is_recovered_by_the_kind_itself"]
async fn toy_child_applies_until_killed() {
    let Ok(spec) = std::env::var("FABRIK_TOY_CHILD") else {
        panic!(
            "run only by a_killed_run_is_recovered_by_the_kind_itself, which sets FABRIK_TOY_CHILD"
        );
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
    let desired = lakehouses_only(1);
    let plan = fabrik_cli::engine::plan_kinds(&client, &desired, &registry(), 1, false)
        .await
        .unwrap();
    let flags = fabrik_flags::Flags::defaults();
    let _ = fabrik_cli::run::apply(&client, &flags, &desired, &plan, &opts).await;
    unreachable!("the loader's create hangs until this process is killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_is_recovered_by_the_kind_itself() {
    // The second item create (the loader, after its lakehouse) never answers.
    let faults = "POST /v1/workspaces/*/items#2=hang".parse().unwrap();
    let config = fabrik_emulator::EmulatorConfig {
        faults,
        ..Default::default()
    };
    let (emu, client, opts, state) = crate::start_with(config).await;
    let before = crate::admin(&emu, "/_emulator/state").await;
    let token = emu.mint_token_as(
        "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "ServicePrincipal",
        std::time::Duration::from_secs(3600),
    );
    let spec = format!("{}|{token}|{}", opts.base_url, state.path().display());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "toy_kind::toy_child_applies_until_killed",
            "--exact",
            "--ignored",
        ])
        .env("FABRIK_TOY_CHILD", spec)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the loader's create to hang (this waits on the other process, not a timer).
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
    assert!(hung, "the child never reached the loader's create");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Fabric may finish a create whose caller died: the pipeline appears after all.
    let ws = client
        .find_workspace(&lakehouses_only(1).workspaces[0].name)
        .await
        .unwrap()
        .expect("the killed run made the workspace");
    let lakehouse = &lakehouses_only(1).workspaces[0].items[0].name;
    let mut req =
        CreateItemRequest::new(format!("Load_{lakehouse}"), ItemType::from("DataPipeline"));
    req.description = Some("made by the service after its caller died".into());
    client.create_item(&ws.id, &req).await.unwrap();

    let runs = fabrik_txn::Journal::find_incomplete(state.path())
        .unwrap()
        .runs;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let recovered = RECOVERED.load(Ordering::SeqCst);
    let report =
        fabrik_cli::run::rollback_with(&registry(), &client, state.path(), &runs[0].run_id)
            .await
            .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert!(
        RECOVERED.load(Ordering::SeqCst) > recovered,
        "the loader's open intent went to the toy kind"
    );
    assert_eq!(crate::admin(&emu, "/_emulator/state").await, before);
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_plans_the_kinds_own_deletes_and_then_the_workspace() {
    let (emu, client, opts, _state) = crate::start().await;
    let desired = lakehouses_only(2);
    let plan = fabrik_cli::engine::plan_kinds(&client, &desired, &registry(), 4, false)
        .await
        .unwrap();
    let flags = fabrik_flags::Flags::defaults();
    let report = fabrik_cli::run::apply(&client, &flags, &desired, &plan, &opts)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    // Without the kind, its pipelines are nobody's: the workspace is kept for them.
    let builtin = fabrik_cli::destroy::destroy_plan(&client, &desired, &Default::default())
        .await
        .unwrap();
    let kinds: Vec<&str> = builtin.changes().map(|(_, c)| c.address.kind).collect();
    assert!(!kinds.contains(&"workspace"), "{kinds:?}");
    assert!(
        builtin.workspaces[0]
            .unmanaged
            .iter()
            .any(|u| u.contains("Load_"))
    );

    // With it, the kind drops them itself, and then the workspace goes whole.
    let options = fabrik_cli::destroy::DestroyOptions {
        kinds: Some(Registry::empty().with(LoaderPipelines)),
        ..Default::default()
    };
    let destroy = fabrik_cli::destroy::destroy_plan(&client, &desired, &options)
        .await
        .unwrap();
    let kinds: Vec<&str> = destroy.changes().map(|(_, c)| c.address.kind).collect();
    assert_eq!(kinds, ["loader", "loader", "workspace"], "{destroy:#?}");
    let dropped = DROPPED.load(Ordering::SeqCst);
    let mut opts = opts;
    opts.command = "destroy";
    let report = fabrik_cli::run::apply(&client, &flags, &desired, &destroy, &opts)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(DROPPED.load(Ordering::SeqCst), dropped + 2);
    let name = &desired.workspaces[0].name;
    assert!(client.find_workspace(name).await.unwrap().is_none());
    // The pipelines' deletes were sent before the workspace's.
    let log = crate::admin(&emu, "/_emulator/requests").await;
    let deletes: Vec<&str> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "DELETE")
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(deletes.len(), 3, "{deletes:?}");
    assert!(!deletes[2].contains("/items/"), "{deletes:?}");
    assert!(
        deletes[..2].iter().all(|p| p.contains("/items/")),
        "{deletes:?}"
    );
    emu.shutdown().await.unwrap();
}
