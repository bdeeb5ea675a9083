//! Workspace folders, nested with `/`; a folder needs its parent.

use async_trait::async_trait;
use fabrik_client::models::CreateFolderRequest;
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo};
use fabrik_txn::Intent;
use serde::Serialize;

use super::workspace;
use crate::config::DesiredWorkspace;
use crate::engine::{
    Address, ApplyCx, Diff, DiffCx, EngineError, Kind, Need, Outcome, Planned, ReadCx,
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
                        Undo::DeleteFolder {
                            workspace_id: ws.clone(),
                            folder_id: f.id.clone(),
                        },
                    )
                },
            )
            .await?;
        cx.set_id(NAME, path, &folder.id);
        Ok(outcome)
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
