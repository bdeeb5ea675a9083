//! A kind added through the `Kind` trait alone, with no edit to the engine: for every lakehouse
//! in a workspace, a data pipeline named after it whose description carries the lakehouse's
//! id. The pipeline references its lakehouse, so the graph orders it after the lakehouse's
//! create, and apply resolves the id the lakehouse's create produced.

use async_trait::async_trait;
use fabrik_cli::config::DesiredWorkspace;
use fabrik_cli::engine::{
    Address, ApplyCx, Diff, DiffCx, EngineError, Kind, Need, Outcome, Planned, ReadCx, Registry,
    workspace_address,
};
use fabrik_cli::plan::Action;
use fabrik_client::models::{CreateItemRequest, ItemType};
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo};
use fabrik_txn::Intent;

/// The toy kind.
struct LoaderPipelines;

#[derive(Debug, serde::Serialize)]
struct CreateLoader {
    name: String,
    lakehouse: String,
}

#[async_trait]
impl Kind for LoaderPipelines {
    /// Names of the pipelines that exist.
    type Live = Vec<String>;
    type Op = CreateLoader;

    fn name(&self) -> &'static str {
        "loader"
    }

    fn resource_kind(&self) -> ResourceKind {
        ResourceKind::Item
    }

    fn claims_item_type(&self) -> Option<&'static str> {
        Some("DataPipeline")
    }

    async fn read(&self, cx: &ReadCx<'_>) -> Result<Vec<String>, EngineError> {
        Ok(cx
            .items()
            .await?
            .iter()
            .filter(|i| i.kind.as_str() == "DataPipeline")
            .map(|i| i.display_name.clone())
            .collect())
    }

    fn diff(
        &self,
        desired: &DesiredWorkspace,
        live: &Vec<String>,
        _: &DiffCx,
    ) -> Diff<CreateLoader> {
        let mut d = Diff::default();
        for lh in desired.items.iter().filter(|i| i.item_type == "Lakehouse") {
            let name = format!("Load_{}", lh.name);
            if live.contains(&name) {
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
                op: CreateLoader {
                    name,
                    lakehouse: lh.name.clone(),
                },
            });
        }
        d
    }

    async fn apply(&self, op: &CreateLoader, cx: &ApplyCx<'_>) -> Result<Outcome, EngineError> {
        let ws = cx.workspace_id()?;
        let lakehouse =
            cx.id_of("lakehouse", &op.lakehouse)
                .ok_or_else(|| EngineError::Unresolved {
                    target: cx.target.to_string(),
                    missing: format!("lakehouse {}", op.lakehouse),
                })?;
        let mut req = CreateItemRequest::new(op.name.clone(), ItemType::from("DataPipeline"));
        req.description = Some(format!("loads {lakehouse}"));
        let (outcome, _) = cx
            .create(
                Intent::create(ResourceKind::Item, Some(ws.clone()), op.name.clone()),
                &format!("creating {}", cx.target),
                cx.client.get_or_create_item(&ws, &req),
                |it| {
                    (
                        ResourceRef::in_workspace(
                            ResourceKind::Item,
                            &ws,
                            &it.id,
                            Some(op.name.clone()),
                        ),
                        Undo::DeleteItem {
                            workspace_id: ws.clone(),
                            item_id: it.id.clone(),
                        },
                    )
                },
            )
            .await?;
        Ok(outcome)
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
