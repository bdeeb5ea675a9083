//! Reading a deployed workspace for `fabrik export`: its folders, its items of the types
//! fabric-cicd publishes, their definitions (several getDefinition calls at once), and the
//! Spark pools its Environments name.

use std::collections::BTreeMap;

use base64::Engine as _;
use fabrik_client::{FabricClient, ItemFilter};
use futures::{StreamExt, TryStreamExt};

use super::export::ExportItem;
use super::item_type::ItemType;
use super::repo::Part;

/// Folder id → `/a/b` path.
fn folder_paths(folders: &[fabrik_client::models::Folder]) -> BTreeMap<String, String> {
    let by_id: BTreeMap<&str, &fabrik_client::models::Folder> =
        folders.iter().map(|f| (f.id.as_str(), f)).collect();
    let mut out = BTreeMap::new();
    for f in folders {
        let mut segs = vec![f.display_name.as_str()];
        let mut parent = f.parent_folder_id.as_deref();
        // A parent chain longer than the folder count is a loop in the service's answer.
        while let Some(p) = parent.and_then(|p| by_id.get(p)) {
            if segs.len() > folders.len() {
                break;
            }
            segs.push(p.display_name.as_str());
            parent = p.parent_folder_id.as_deref();
        }
        segs.reverse();
        out.insert(f.id.clone(), format!("/{}", segs.join("/")));
    }
    out
}

/// The workspace's items as [`ExportItem`]s, their deployed ids standing as logicalIds (the
/// same ids other items' parts mention, so a publish of the export maps them to its targets).
/// Items of types without a definition API are written with `.platform` only.
pub async fn read_workspace(
    client: &FabricClient,
    workspace_id: &str,
    concurrency: usize,
) -> Result<Vec<ExportItem>, String> {
    let folders: Vec<_> = client
        .list_folders(workspace_id)
        .try_collect()
        .await
        .map_err(|e| format!("listing the folders of workspace {workspace_id}: {e}"))?;
    let paths = folder_paths(&folders);
    let items: Vec<_> = client
        .list_items(workspace_id, &ItemFilter::default())
        .try_collect()
        .await
        .map_err(|e| format!("listing the items of workspace {workspace_id}: {e}"))?;
    let known: Vec<(fabrik_client::models::Item, ItemType)> = items
        .into_iter()
        .filter_map(|i| {
            let t = i.kind.as_str().parse::<ItemType>().ok()?;
            Some((i, t))
        })
        .collect();
    futures::stream::iter(known)
        .map(|(item, t)| {
            let folder = item.folder_id.as_ref().and_then(|f| paths.get(f)).cloned();
            async move {
                let parts = match client
                    .get_item_definition(workspace_id, &item.id, None)
                    .await
                {
                    Ok(d) => d
                        .parts
                        .into_iter()
                        .filter(|p| p.path != ".platform")
                        .map(|p| {
                            let bytes = base64::engine::general_purpose::STANDARD
                                .decode(p.payload.as_bytes())
                                .map_err(|e| {
                                    format!("{} {}: part {}: {e}", t, item.display_name, p.path)
                                })?;
                            Ok(Part::from_file_bytes(p.path, bytes))
                        })
                        .collect::<Result<Vec<_>, String>>()?,
                    // A type whose definition the service does not give out (a shell
                    // warehouse) is exported as its `.platform`.
                    Err(e)
                        if t.is_shell() && e.status().is_some_and(|s| (400..500).contains(&s)) =>
                    {
                        Vec::new()
                    }
                    Err(e) => {
                        return Err(format!(
                            "reading the definition of {} {}: {e}",
                            t, item.display_name
                        ));
                    }
                };
                Ok(ExportItem {
                    id: item.id.clone(),
                    item_type: t,
                    display_name: item.display_name.clone(),
                    description: item.description.clone(),
                    folder,
                    logical_id: None,
                    creation_payload: None,
                    parts,
                })
            }
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await
}

/// The workspace's Spark pools when one of `items` (an Environment's `Sparkcompute.yml`) names
/// a pool id; no request otherwise, so exporting a workspace without Spark settings needs no
/// Spark API.
pub async fn read_pools(
    client: &FabricClient,
    workspace_id: &str,
    items: &[ExportItem],
) -> Result<Vec<fabrik_client::models::SparkPool>, String> {
    let names_a_pool = items
        .iter()
        .filter(|i| i.item_type == ItemType::Environment)
        .filter_map(|i| {
            i.parts
                .iter()
                .find(|p| p.path == "Setting/Sparkcompute.yml")
        })
        .any(|p| {
            p.text()
                .and_then(super::parameter::instance_pool_id)
                .is_some()
        });
    if !names_a_pool {
        return Ok(Vec::new());
    }
    client
        .list_spark_pools(workspace_id)
        .try_collect()
        .await
        .map_err(|e| format!("listing the Spark pools of workspace {workspace_id}: {e}"))
}
