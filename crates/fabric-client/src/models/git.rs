//! Git integration: connection, status, initialize, commit and update.

use serde::{Deserialize, Serialize};

use super::common::{Timestamp, null_as_default, open_enum};
use super::item::ItemType;

open_enum! {
    /// A Git provider.
    pub enum GitProviderType {
        /// Azure DevOps.
        AzureDevOps,
        /// GitHub.
        GitHub,
    }
}

open_enum! {
    /// Git connection state of a workspace.
    pub enum GitConnectionState {
        /// Not connected.
        NotConnected,
        /// Connected, not initialized.
        Connected,
        /// Connected and initialized.
        ConnectedAndInitialized,
    }
}

open_enum! {
    /// Git connection type.
    pub enum GitConnectionType {
        /// All items are synced.
        Full,
        /// Only selected items are synced.
        Selective,
    }
}

open_enum! {
    /// Strategy when content exists on both sides at initialization.
    pub enum InitializationStrategy {
        /// None.
        None,
        /// Prefer the remote side.
        PreferRemote,
        /// Prefer the workspace side.
        PreferWorkspace,
    }
}

open_enum! {
    /// What to do after initializing.
    pub enum RequiredAction {
        /// Nothing.
        None,
        /// Update the workspace from Git.
        UpdateFromGit,
        /// Commit the workspace to Git.
        CommitToGit,
    }
}

open_enum! {
    /// Commit mode.
    pub enum CommitMode {
        /// Every uncommitted change.
        All,
        /// The listed items.
        Selective,
    }
}

open_enum! {
    /// A change to an item.
    pub enum ChangeType {
        /// Added.
        Added,
        /// Deleted.
        Deleted,
        /// Modified.
        Modified,
    }
}

open_enum! {
    /// Whether both sides changed an item.
    pub enum ConflictType {
        /// No conflict.
        None,
        /// Different changes on both sides.
        Conflict,
        /// The same change on both sides.
        SameChanges,
    }
}

open_enum! {
    /// Conflict resolution scope.
    pub enum ConflictResolutionType {
        /// Workspace level.
        Workspace,
    }
}

open_enum! {
    /// Conflict resolution policy.
    pub enum ConflictResolutionPolicy {
        /// Take the remote side.
        PreferRemote,
        /// Take the workspace side.
        PreferWorkspace,
    }
}

open_enum! {
    /// Where Git credentials come from.
    pub enum GitCredentialsSource {
        /// A configured connection.
        ConfiguredConnection,
        /// Obtained automatically.
        Automatic,
        /// Not configured.
        None,
    }
}

/// Git provider details (the polymorphic spec type flattened: provider-specific fields are
/// optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitProviderDetails {
    /// Provider.
    pub git_provider_type: GitProviderType,
    /// Repository name.
    pub repository_name: String,
    /// Branch name.
    pub branch_name: String,
    /// Directory inside the repository.
    #[serde(default, deserialize_with = "null_as_default")]
    pub directory_name: String,
    /// Azure DevOps organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    /// Azure DevOps project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    /// GitHub owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_name: Option<String>,
    /// GitHub Enterprise data-residency domain (`*.ghe.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_domain_name: Option<String>,
}

/// Git credentials for connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitCredentials {
    /// Source.
    pub source: GitCredentialsSource,
    /// Connection id, for `ConfiguredConnection`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
}

/// Body of `POST /workspaces/{id}/git/connect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitConnectRequest {
    /// Provider details.
    pub git_provider_details: GitProviderDetails,
    /// Credentials (required for GitHub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub my_git_credentials: Option<GitCredentials>,
}

/// Sync details of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitSyncDetails {
    /// Synced commit.
    #[serde(default, deserialize_with = "null_as_default")]
    pub head: String,
    /// When last synced.
    #[serde(default)]
    pub last_sync_time: Option<Timestamp>,
}

/// A workspace's Git connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitConnection {
    /// Provider details (null when not connected).
    #[serde(default)]
    pub git_provider_details: Option<GitProviderDetails>,
    /// Sync details (null when not connected).
    #[serde(default)]
    pub git_sync_details: Option<GitSyncDetails>,
    /// State.
    #[serde(default)]
    pub git_connection_state: Option<GitConnectionState>,
    /// Type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_connection_type: Option<GitConnectionType>,
}

/// Body of `initializeConnection`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeGitConnectionRequest {
    /// Strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization_strategy: Option<InitializationStrategy>,
}

/// Result of `initializeConnection`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeGitConnectionResponse {
    /// What to do next.
    #[serde(default)]
    pub required_action: Option<RequiredAction>,
    /// Workspace head.
    #[serde(default)]
    pub workspace_head: Option<String>,
    /// Remote commit.
    #[serde(default)]
    pub remote_commit_hash: Option<String>,
}

/// Identifies an item on either side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemIdentifier {
    /// Workspace object id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// Logical id (stable across workspaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical_id: Option<String>,
}

/// Item metadata in a status change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemMetadata {
    /// Identifier.
    pub item_identifier: ItemIdentifier,
    /// Type.
    pub item_type: ItemType,
    /// Display name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub display_name: String,
}

/// One changed item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemChange {
    /// The item.
    pub item_metadata: ItemMetadata,
    /// Change on the remote side.
    #[serde(default)]
    pub remote_change: Option<ChangeType>,
    /// Change on the workspace side.
    #[serde(default)]
    pub workspace_change: Option<ChangeType>,
    /// Conflict.
    #[serde(default)]
    pub conflict_type: Option<ConflictType>,
}

/// Result of `git/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitStatusResponse {
    /// Workspace head (null before the first sync).
    #[serde(default)]
    pub workspace_head: Option<String>,
    /// Remote commit.
    #[serde(default)]
    pub remote_commit_hash: Option<String>,
    /// Changed items.
    #[serde(default, deserialize_with = "null_as_default")]
    pub changes: Vec<ItemChange>,
}

/// Body of `commitToGit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitToGitRequest {
    /// Mode.
    pub mode: CommitMode,
    /// Workspace head the commit is based on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_head: Option<String>,
    /// Commit message (≤ 300 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Items, for selective mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemIdentifier>,
}

/// Conflict resolution for `updateFromGit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConflictResolution {
    /// Scope.
    pub conflict_resolution_type: ConflictResolutionType,
    /// Policy.
    pub conflict_resolution_policy: ConflictResolutionPolicy,
}

/// Options for `updateFromGit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateOptions {
    /// Consent to override incoming items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_override_items: Option<bool>,
}

/// Body of `updateFromGit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateFromGitRequest {
    /// Workspace head (may be null right after initialize).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_head: Option<String>,
    /// Remote commit to update to.
    pub remote_commit_hash: String,
    /// Conflict resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_resolution: Option<ConflictResolution>,
    /// Options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<UpdateOptions>,
}
