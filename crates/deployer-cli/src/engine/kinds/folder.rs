//! Workspace folders, nested with `/`; a folder needs its parent.

use async_trait::async_trait;
use fabrik_client::models::{CreateFolderRequest, Folder};
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo, UndoError, UndoOutcome};
use fabrik_txn::Intent;
use serde::{Deserialize, Serialize};

use super::workspace;
use crate::config::DesiredWorkspace;
use crate::engine::recovery::{listed, pick};
use crate::engine::{
    Address, ApplyCx, Diff, DiffCx, EngineError, Kind, Need, Outcome, Planned, ReadCx, UndoCx,
    settle,
};
use crate::plan::Action;

/// The kind's name in addresses; items reference their folder by it.
pub const NAME: &str = "folder";

/// Folders.
#[derive(Debug, Clone, Copy)]
pub struct FolderKind;

/// Create a folder (its parent exists or is created before it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateFolder {
    /// Path from the workspace root.
    pub path: String,
}

/// The address of folder `path` in `workspace`, for kinds whose resources live in folders.
pub fn address(workspace: &str, path: &str) -> Address {
    Address::new(workspace, NAME, path)
}

/// How a folder change is undone (the kind's journaled payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum FolderUndo {
    /// Delete the folder that was created.
    Delete {
        /// Its workspace.
        workspace_id: String,
        /// The folder.
        folder_id: String,
    },
}

impl FolderUndo {
    /// The journal's record of it.
    pub fn record(&self) -> Undo {
        Undo::new(NAME, self)
    }
}

#[async_trait]
impl Kind for FolderKind {
    /// Paths of the folders that exist.
    type Live = Vec<String>;
    type Op = CreateFolder;

    fn name(&self) -> &'static str {
        NAME
    }

    fn resource_kind(&self) -> ResourceKind {
        ResourceKind::Folder
    }

    async fn read(&self, cx: &ReadCx<'_>) -> Result<Self::Live, EngineError> {
        let paths = cx.folder_paths().await?;
        for (path, id) in &paths {
            cx.know(address(&cx.desired.name, path), id.clone());
        }
        Ok(paths.into_iter().map(|(p, _)| p).collect())
    }

    fn diff(
        &self,
        desired: &DesiredWorkspace,
        live: &Vec<String>,
        _: &DiffCx,
    ) -> Diff<CreateFolder> {
        let ws = &desired.name;
        let changes = desired
            .folders
            .iter()
            .filter(|f| !live.contains(f))
            .map(|f| {
                let mut needs = vec![Need::At(Address::new(ws, workspace::NAME, ws))];
                if let Some((parent, _)) = f.rsplit_once('/') {
                    needs.push(Need::At(address(ws, parent)));
                }
                Planned {
                    action: Action::Create,
                    key: f.clone(),
                    target: format!("folder {f}"),
                    detail: None,
                    needs,
                    op: CreateFolder { path: f.clone() },
                }
            })
            .collect();
        Diff {
            changes,
            unmanaged: vec![],
        }
    }

    async fn apply(&self, op: &CreateFolder, cx: &ApplyCx<'_>) -> Result<Outcome, EngineError> {
        let ws = cx.workspace_id()?;
        let path = &op.path;
        let (parent, leaf) = match path.rsplit_once('/') {
            Some((p, l)) => {
                let id = cx.id_of(NAME, p).ok_or_else(|| EngineError::Unresolved {
                    target: cx.target.to_string(),
                    missing: format!("folder {p}"),
                })?;
                (Some(id), l.to_string())
            }
            None => (None, path.clone()),
        };
        let req = CreateFolderRequest {
            display_name: leaf,
            parent_folder_id: parent,
        };
        let (outcome, folder) = cx
            .create(
                Intent::create(ResourceKind::Folder, Some(ws.clone()), path.clone()),
                &format!("creating folder {path}"),
                cx.client.get_or_create_folder(&ws, &req),
                |f| {
                    (
                        ResourceRef::in_workspace(
                            ResourceKind::Folder,
                            &ws,
                            &f.id,
                            Some(path.clone()),
                        ),
                        FolderUndo::Delete {
                            workspace_id: ws.clone(),
                            folder_id: f.id.clone(),
                        }
                        .record(),
                    )
                },
            )
            .await?;
        cx.set_id(NAME, path, &folder.id);
        Ok(outcome)
    }

    async fn undo(&self, undo: &Undo, cx: &UndoCx<'_>) -> Result<UndoOutcome, UndoError> {
        let FolderUndo::Delete {
            workspace_id,
            folder_id,
        } = undo.payload_as()?;
        settle(
            cx.client.delete_folder(&workspace_id, &folder_id).await,
            &[],
        )
    }

    /// Folder intents carry the folder's path; walk it from the root.
    async fn recover(
        &self,
        intent: &Intent,
        cx: &UndoCx<'_>,
    ) -> Result<Option<(ResourceRef, Undo)>, UndoError> {
        let Some(ws) = intent.workspace_id.as_deref() else {
            return Ok(None);
        };
        let Some(folders) = listed::<Folder>(cx.client.list_folders(ws)).await? else {
            return Ok(None);
        };
        let mut parent: Option<String> = None;
        let mut found = None;
        for part in intent.display_name.split('/') {
            found = folders
                .iter()
                .find(|f| f.display_name == part && f.parent_folder_id == parent);
            match found {
                Some(f) => parent = Some(f.id.clone()),
                None => return Ok(None),
            }
        }
        let found = found.into_iter().collect();
        Ok(pick(intent, found, |f| &f.id)?.map(|f| {
            (
                ResourceRef::in_workspace(
                    ResourceKind::Folder,
                    ws,
                    &f.id,
                    Some(intent.display_name.clone()),
                ),
                FolderUndo::Delete {
                    workspace_id: ws.to_string(),
                    folder_id: f.id.clone(),
                }
                .record(),
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::kinds::tests::desired;

    #[test]
    fn missing_folders_are_created_after_their_parents() {
        let d = desired();
        let changes = FolderKind
            .diff(&d, &vec!["raw".into()], &DiffCx::default())
            .changes;
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].op.path, "raw/x");
        assert!(
            changes[0]
                .needs
                .contains(&Need::At(address("p-a-dev", "raw")))
        );
        assert!(
            FolderKind
                .diff(&d, &vec!["raw".into(), "raw/x".into()], &DiffCx::default())
                .changes
                .is_empty()
        );
    }
}
