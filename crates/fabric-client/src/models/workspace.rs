//! Workspaces, capacities, principals and workspace role assignments.

use serde::{Deserialize, Serialize};

use super::common::{null_as_default, open_enum};

open_enum! {
    /// A workspace type.
    pub enum WorkspaceType {
        /// "My workspace".
        Personal,
        /// A regular workspace.
        Workspace,
        /// The admin monitoring workspace.
        AdminWorkspace,
    }
}

open_enum! {
    /// Progress of a workspace's capacity (un)assignment.
    pub enum CapacityAssignmentProgress {
        /// Done.
        Completed,
        /// Failed.
        Failed,
        /// Still running.
        InProgress,
    }
}

open_enum! {
    /// A capacity's state.
    pub enum CapacityState {
        /// Running.
        Active,
        /// Paused or suspended.
        Inactive,
    }
}

open_enum! {
    /// A workspace role.
    pub enum WorkspaceRole {
        /// Administrative access.
        Admin,
        /// Membership access.
        Member,
        /// Contribution access.
        Contributor,
        /// Read access.
        Viewer,
    }
}

open_enum! {
    /// The type of a principal.
    pub enum PrincipalType {
        /// An Entra user.
        User,
        /// An Entra service principal.
        ServicePrincipal,
        /// A security group.
        Group,
        /// A service principal profile.
        ServicePrincipalProfile,
        /// All users of the tenant.
        EntireTenant,
    }
}

/// A tag applied to a workspace or item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    /// Tag id.
    pub id: String,
    /// Tag name.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// A workspace's managed identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceIdentity {
    /// The Entra application id.
    #[serde(default)]
    pub application_id: Option<String>,
    /// The service principal id.
    #[serde(default)]
    pub service_principal_id: Option<String>,
}

/// OneLake endpoints of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OneLakeEndpoints {
    /// Blob API endpoint.
    #[serde(default)]
    pub blob_endpoint: Option<String>,
    /// DFS (ADLS Gen2) API endpoint.
    #[serde(default)]
    pub dfs_endpoint: Option<String>,
}

/// A workspace (the list shape and the richer get shape, `WorkspaceInfo`, in one type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    /// Workspace id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Description (the service sends `""` when empty).
    #[serde(default, deserialize_with = "null_as_default")]
    pub description: String,
    /// Workspace type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<WorkspaceType>,
    /// Assigned capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_id: Option<String>,
    /// Region of the assigned capacity (an open set of Azure region names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_region: Option<String>,
    /// Capacity assignment progress (get only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_assignment_progress: Option<CapacityAssignmentProgress>,
    /// Assigned domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_id: Option<String>,
    /// Workspace-specific API endpoint, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_endpoint: Option<String>,
    /// Workspace identity (get only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_identity: Option<WorkspaceIdentity>,
    /// OneLake endpoints (get only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_lake_endpoints: Option<OneLakeEndpoints>,
    /// Applied tags.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<Tag>,
}

/// Body of `POST /workspaces`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateWorkspaceRequest {
    /// Display name (unique in the tenant).
    pub display_name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Capacity to assign at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_id: Option<String>,
    /// Domain to assign at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_id: Option<String>,
}

/// Body of `PATCH /workspaces/{id}`; absent fields are left unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateWorkspaceRequest {
    /// New display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// New description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capacity {
    /// Capacity id.
    pub id: String,
    /// Display name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub display_name: String,
    /// SKU (`F2`, `F64`, `FT1`, `P1`, …).
    #[serde(default, deserialize_with = "null_as_default")]
    pub sku: String,
    /// Azure region.
    #[serde(default, deserialize_with = "null_as_default")]
    pub region: String,
    /// State.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<CapacityState>,
}

/// Details of a user principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDetails {
    /// The user principal name (`user@contoso.com`).
    #[serde(default)]
    pub user_principal_name: Option<String>,
}

/// Details of a service principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipalDetails {
    /// The Entra application (client) id.
    #[serde(default)]
    pub aad_app_id: Option<String>,
}

/// Details of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupDetails {
    /// `Unknown`, `SecurityGroup`, `DistributionList` (kept as the service sends it).
    #[serde(default)]
    pub group_type: Option<String>,
}

/// Details of a service principal profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipalProfileDetails {
    /// The service principal owning the profile.
    #[serde(default)]
    pub parent_principal: Option<Box<Principal>>,
}

/// A principal. The spec's polymorphic subtypes are flattened into optional detail fields,
/// so a new principal type still reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    /// Object id.
    pub id: String,
    /// Principal type.
    #[serde(rename = "type")]
    pub kind: PrincipalType,
    /// Display name (responses only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// User details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_details: Option<UserDetails>,
    /// Service principal details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal_details: Option<ServicePrincipalDetails>,
    /// Group details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_details: Option<GroupDetails>,
    /// Service principal profile details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal_profile_details: Option<ServicePrincipalProfileDetails>,
}

impl Principal {
    /// A principal reference for a request body: id and type only.
    pub fn new(id: impl Into<String>, kind: PrincipalType) -> Self {
        Self {
            id: id.into(),
            kind,
            display_name: None,
            user_details: None,
            service_principal_details: None,
            group_details: None,
            service_principal_profile_details: None,
        }
    }
}

/// A workspace role assignment. Its id equals the principal's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    /// Assignment id.
    pub id: String,
    /// Who.
    pub principal: Principal,
    /// Which role.
    pub role: WorkspaceRole,
}

/// Body of `POST /workspaces/{id}/roleAssignments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddRoleAssignmentRequest {
    /// Who.
    pub principal: Principal,
    /// Which role.
    pub role: WorkspaceRole,
}

/// Body of `PATCH /workspaces/{id}/roleAssignments/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRoleAssignmentRequest {
    /// The new role.
    pub role: WorkspaceRole,
}

/// Body of `POST /workspaces/{id}/assignToCapacity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignToCapacityRequest {
    /// The capacity.
    pub capacity_id: String,
}
