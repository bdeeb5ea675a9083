//! Workspace folders.

use reqwest::Method;

use crate::client::FabricClient;
use crate::error::FabricError;
use crate::models::{CreateFolderRequest, Folder, MoveFolderRequest, UpdateFolderRequest};
use crate::pager::Paged;

const FOLDERS: &str = "/workspaces/{workspaceId}/folders";
const FOLDER: &str = "/workspaces/{workspaceId}/folders/{folderId}";
const MOVE: &str = "/workspaces/{workspaceId}/folders/{folderId}/move";

impl FabricClient {
    /// Every folder of a workspace, at any depth.
    pub fn list_folders(&self, workspace_id: &str) -> Paged<Folder> {
        self.paged(self.call(Method::GET, FOLDERS, &[workspace_id]))
    }

    /// One folder.
    pub async fn get_folder(
        &self,
        workspace_id: &str,
        folder_id: &str,
    ) -> Result<Folder, FabricError> {
        self.fetch(self.call(Method::GET, FOLDER, &[workspace_id, folder_id]))
            .await
    }

    /// Creates a folder.
    pub async fn create_folder(
        &self,
        workspace_id: &str,
        request: &CreateFolderRequest,
    ) -> Result<Folder, FabricError> {
        self.create_folder_as(workspace_id, request, false).await
    }

    pub(crate) async fn create_folder_as(
        &self,
        workspace_id: &str,
        request: &CreateFolderRequest,
        idempotent: bool,
    ) -> Result<Folder, FabricError> {
        let call = self
            .call(Method::POST, FOLDERS, &[workspace_id])
            .json(request)?;
        self.fetch(call.idempotent(idempotent)).await
    }

    /// Renames a folder.
    pub async fn update_folder(
        &self,
        workspace_id: &str,
        folder_id: &str,
        display_name: &str,
    ) -> Result<Folder, FabricError> {
        let body = UpdateFolderRequest {
            display_name: display_name.to_owned(),
        };
        let call = self.call(Method::PATCH, FOLDER, &[workspace_id, folder_id]);
        self.fetch(call.json(&body)?).await
    }

    /// Moves a folder under another one (`None`: to the workspace root).
    pub async fn move_folder(
        &self,
        workspace_id: &str,
        folder_id: &str,
        target_folder_id: Option<&str>,
    ) -> Result<Folder, FabricError> {
        let body = MoveFolderRequest {
            target_folder_id: target_folder_id.map(str::to_owned),
        };
        let call = self.call(Method::POST, MOVE, &[workspace_id, folder_id]);
        self.fetch(call.json(&body)?.idempotent(true)).await
    }

    /// Deletes an (empty) folder.
    pub async fn delete_folder(
        &self,
        workspace_id: &str,
        folder_id: &str,
    ) -> Result<(), FabricError> {
        self.send_only(self.call(Method::DELETE, FOLDER, &[workspace_id, folder_id]))
            .await
    }
}
