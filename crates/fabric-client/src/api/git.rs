//! Git integration of a workspace.

use reqwest::Method;

use crate::client::FabricClient;
use crate::error::FabricError;
use crate::models::{
    CommitToGitRequest, GitConnectRequest, GitConnection, GitStatusResponse,
    InitializeGitConnectionRequest, InitializeGitConnectionResponse, UpdateFromGitRequest,
};

const CONNECT: &str = "/workspaces/{workspaceId}/git/connect";
const DISCONNECT: &str = "/workspaces/{workspaceId}/git/disconnect";
const CONNECTION: &str = "/workspaces/{workspaceId}/git/connection";
const INITIALIZE: &str = "/workspaces/{workspaceId}/git/initializeConnection";
const STATUS: &str = "/workspaces/{workspaceId}/git/status";
const COMMIT: &str = "/workspaces/{workspaceId}/git/commitToGit";
const UPDATE: &str = "/workspaces/{workspaceId}/git/updateFromGit";

impl FabricClient {
    /// Connects a workspace to a repository and branch (no sync: initialize next).
    pub async fn git_connect(
        &self,
        workspace_id: &str,
        request: &GitConnectRequest,
    ) -> Result<(), FabricError> {
        self.send_only(
            self.call(Method::POST, CONNECT, &[workspace_id])
                .json(request)?,
        )
        .await
    }

    /// Disconnects a workspace from Git.
    pub async fn git_disconnect(&self, workspace_id: &str) -> Result<(), FabricError> {
        self.send_only(self.call(Method::POST, DISCONNECT, &[workspace_id]))
            .await
    }

    /// The workspace's Git connection (state `NotConnected` when there is none).
    pub async fn git_connection(&self, workspace_id: &str) -> Result<GitConnection, FabricError> {
        self.fetch(self.call(Method::GET, CONNECTION, &[workspace_id]))
            .await
    }

    /// Initializes a connected workspace (long-running).
    pub async fn git_initialize(
        &self,
        workspace_id: &str,
        request: &InitializeGitConnectionRequest,
    ) -> Result<InitializeGitConnectionResponse, FabricError> {
        let call = self
            .call(Method::POST, INITIALIZE, &[workspace_id])
            .json(request)?;
        self.lro_result(call).await
    }

    /// Differences between the workspace and its branch (long-running).
    pub async fn git_status(&self, workspace_id: &str) -> Result<GitStatusResponse, FabricError> {
        let call = self.call(Method::GET, STATUS, &[workspace_id]);
        self.lro_result(call).await
    }

    /// Commits workspace changes to the branch (long-running).
    pub async fn git_commit(
        &self,
        workspace_id: &str,
        request: &CommitToGitRequest,
    ) -> Result<(), FabricError> {
        let call = self
            .call(Method::POST, COMMIT, &[workspace_id])
            .json(request)?;
        self.lro_done(call).await
    }

    /// Updates the workspace from the branch (long-running).
    pub async fn git_update(
        &self,
        workspace_id: &str,
        request: &UpdateFromGitRequest,
    ) -> Result<(), FabricError> {
        let call = self
            .call(Method::POST, UPDATE, &[workspace_id])
            .json(request)?;
        self.lro_done(call).await
    }
}
