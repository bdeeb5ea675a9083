//! Settles create intents whose outcome never reached the journal (the process died between
//! the server applying a create and the journal learning its id): finds the resource by name.
//!
//! Apply only creates what its plan found missing, so a resource of that name found later was
//! most likely created by the interrupted run; that is the bet a by-name resolver makes.

use async_trait::async_trait;
use fabrik_client::{FabricClient, FabricError, ItemFilter};
use fabrik_core::Classify;
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo, UndoError};
use fabrik_txn::{Intent, IntentResolver};
use futures::TryStreamExt;

/// Resolves intents by display name through the Fabric client.
#[derive(Debug, Clone)]
pub struct ByName(pub FabricClient);

fn err(e: FabricError) -> UndoError {
    UndoError {
        message: e.to_string(),
        class: e.class(),
    }
}

#[async_trait]
impl IntentResolver for ByName {
    async fn resolve(&self, intent: &Intent) -> Result<Option<(ResourceRef, Undo)>, UndoError> {
        let client = &self.0;
        let name = &intent.display_name;
        match (intent.kind, intent.workspace_id.as_deref()) {
            (ResourceKind::Workspace, _) => {
                Ok(client.find_workspace(name).await.map_err(err)?.map(|w| {
                    (
                        ResourceRef::workspace(&w.id, &w.display_name),
                        Undo::DeleteWorkspace { workspace_id: w.id },
                    )
                }))
            }
            (ResourceKind::Folder, Some(ws)) => {
                // Folder intents carry the folder's path; walk it from the root.
                let folders: Vec<_> = client.list_folders(ws).try_collect().await.map_err(err)?;
                let mut parent: Option<String> = None;
                let mut found = None;
                for part in name.split('/') {
                    found = folders
                        .iter()
                        .find(|f| f.display_name == part && f.parent_folder_id == parent);
                    match found {
                        Some(f) => parent = Some(f.id.clone()),
                        None => return Ok(None),
                    }
                }
                Ok(found.map(|f| {
                    (
                        ResourceRef::in_workspace(
                            ResourceKind::Folder,
                            ws,
                            &f.id,
                            Some(name.clone()),
                        ),
                        Undo::DeleteFolder {
                            workspace_id: ws.to_string(),
                            folder_id: f.id.clone(),
                        },
                    )
                }))
            }
            (kind, Some(ws)) => {
                let item_type = match kind {
                    ResourceKind::Lakehouse => Some("Lakehouse"),
                    ResourceKind::Notebook => Some("Notebook"),
                    _ => None,
                };
                let items: Vec<_> = client
                    .list_items(ws, &ItemFilter::default())
                    .try_collect()
                    .await
                    .map_err(err)?;
                Ok(items
                    .into_iter()
                    .find(|i| {
                        &i.display_name == name && item_type.is_none_or(|t| i.kind.as_str() == t)
                    })
                    .map(|i| {
                        (
                            ResourceRef::in_workspace(
                                kind,
                                ws,
                                &i.id,
                                Some(i.display_name.clone()),
                            ),
                            Undo::DeleteItem {
                                workspace_id: ws.to_string(),
                                item_id: i.id,
                            },
                        )
                    }))
            }
            (_, None) => Ok(None),
        }
    }
}
