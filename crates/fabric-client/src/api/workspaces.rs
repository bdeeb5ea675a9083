//! Workspaces, capacity assignment, capacities and workspace role assignments.

use reqwest::Method;

use crate::client::FabricClient;
use crate::error::FabricError;
use crate::models::{
    AddRoleAssignmentRequest, AssignToCapacityRequest, Capacity, CreateWorkspaceRequest,
    RoleAssignment, UpdateRoleAssignmentRequest, UpdateWorkspaceRequest, Workspace, WorkspaceRole,
};
use crate::pager::Paged;

const WORKSPACES: &str = "/workspaces";
const WORKSPACE: &str = "/workspaces/{workspaceId}";
const ASSIGN: &str = "/workspaces/{workspaceId}/assignToCapacity";
const UNASSIGN: &str = "/workspaces/{workspaceId}/unassignFromCapacity";
const CAPACITIES: &str = "/capacities";
const CAPACITY: &str = "/capacities/{capacityId}";
const ROLES: &str = "/workspaces/{workspaceId}/roleAssignments";
const ROLE: &str = "/workspaces/{workspaceId}/roleAssignments/{workspaceRoleAssignmentId}";

impl FabricClient {
    /// Every workspace the caller can access.
    pub fn list_workspaces(&self) -> Paged<Workspace> {
        self.paged(self.call(Method::GET, WORKSPACES, &[]))
    }

    /// One workspace.
    pub async fn get_workspace(&self, workspace_id: &str) -> Result<Workspace, FabricError> {
        self.fetch(self.call(Method::GET, WORKSPACE, &[workspace_id]))
            .await
    }

    /// Creates a workspace (`409`/`WorkspaceNameAlreadyExists` when the name is taken; see
    /// [`get_or_create_workspace`](Self::get_or_create_workspace)).
    pub async fn create_workspace(
        &self,
        request: &CreateWorkspaceRequest,
    ) -> Result<Workspace, FabricError> {
        self.create_workspace_as(request, false).await
    }

    /// `idempotent`: whether the policy may repeat the create after an ambiguous failure
    /// (get-or-create may: a repeat that clashes resolves to what the first one made).
    pub(crate) async fn create_workspace_as(
        &self,
        request: &CreateWorkspaceRequest,
        idempotent: bool,
    ) -> Result<Workspace, FabricError> {
        let call = self.call(Method::POST, WORKSPACES, &[]).json(request)?;
        self.fetch(call.idempotent(idempotent)).await
    }

    /// Updates a workspace's name or description.
    pub async fn update_workspace(
        &self,
        workspace_id: &str,
        request: &UpdateWorkspaceRequest,
    ) -> Result<Workspace, FabricError> {
        self.fetch(
            self.call(Method::PATCH, WORKSPACE, &[workspace_id])
                .json(request)?,
        )
        .await
    }

    /// Deletes a workspace and everything in it.
    pub async fn delete_workspace(&self, workspace_id: &str) -> Result<(), FabricError> {
        self.send_only(self.call(Method::DELETE, WORKSPACE, &[workspace_id]))
            .await
    }

    /// Assigns a workspace to a capacity. The service answers 202 and completes in the
    /// background; `capacity_assignment_progress` on the workspace tells when.
    pub async fn assign_to_capacity(
        &self,
        workspace_id: &str,
        capacity_id: &str,
    ) -> Result<(), FabricError> {
        let body = AssignToCapacityRequest {
            capacity_id: capacity_id.to_owned(),
        };
        let call = self
            .call(Method::POST, ASSIGN, &[workspace_id])
            .json(&body)?;
        // Assigning the same capacity again is harmless.
        self.send_only(call.idempotent(true)).await
    }

    /// Unassigns a workspace from its capacity (202, completes in the background).
    pub async fn unassign_from_capacity(&self, workspace_id: &str) -> Result<(), FabricError> {
        let call = self.call(Method::POST, UNASSIGN, &[workspace_id]);
        self.send_only(call.idempotent(true)).await
    }

    /// Every capacity the caller can use.
    pub fn list_capacities(&self) -> Paged<Capacity> {
        self.paged(self.call(Method::GET, CAPACITIES, &[]))
    }

    /// One capacity.
    pub async fn get_capacity(&self, capacity_id: &str) -> Result<Capacity, FabricError> {
        self.fetch(self.call(Method::GET, CAPACITY, &[capacity_id]))
            .await
    }

    /// Every role assignment of a workspace.
    pub fn list_role_assignments(&self, workspace_id: &str) -> Paged<RoleAssignment> {
        self.paged(self.call(Method::GET, ROLES, &[workspace_id]))
    }

    /// One role assignment (its id is the principal's id).
    pub async fn get_role_assignment(
        &self,
        workspace_id: &str,
        assignment_id: &str,
    ) -> Result<RoleAssignment, FabricError> {
        self.fetch(self.call(Method::GET, ROLE, &[workspace_id, assignment_id]))
            .await
    }

    /// Gives a principal a role in a workspace.
    pub async fn add_role_assignment(
        &self,
        workspace_id: &str,
        request: &AddRoleAssignmentRequest,
    ) -> Result<RoleAssignment, FabricError> {
        self.fetch(
            self.call(Method::POST, ROLES, &[workspace_id])
                .json(request)?,
        )
        .await
    }

    /// Changes a principal's role.
    pub async fn update_role_assignment(
        &self,
        workspace_id: &str,
        assignment_id: &str,
        role: WorkspaceRole,
    ) -> Result<RoleAssignment, FabricError> {
        let body = UpdateRoleAssignmentRequest { role };
        let call = self.call(Method::PATCH, ROLE, &[workspace_id, assignment_id]);
        self.fetch(call.json(&body)?).await
    }

    /// Removes a principal's role.
    pub async fn delete_role_assignment(
        &self,
        workspace_id: &str,
        assignment_id: &str,
    ) -> Result<(), FabricError> {
        self.send_only(self.call(Method::DELETE, ROLE, &[workspace_id, assignment_id]))
            .await
    }
}
