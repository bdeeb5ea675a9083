//! Spark custom pools of a workspace (`/workspaces/{id}/spark/pools`).

use serde::{Deserialize, Serialize};

/// A custom pool as the service returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomPool {
    /// Pool id.
    pub id: String,
    /// Pool name, unique in the workspace.
    pub name: String,
    /// `Workspace` (the workspace's own) or `Capacity` (its capacity's, listed alongside).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Node and scaling settings.
    #[serde(flatten)]
    pub settings: PoolSettings,
}

/// A pool's node and scaling settings: the fields create and update send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolSettings {
    /// Node family (`MemoryOptimized`; the service may add more).
    pub node_family: String,
    /// Node size (`Small` … `XXLarge`; the service may add more).
    pub node_size: String,
    /// Autoscale.
    pub auto_scale: AutoScale,
    /// Dynamic executor allocation.
    pub dynamic_executor_allocation: DynamicExecutorAllocation,
}

/// Autoscale of a pool's nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoScale {
    /// Whether nodes scale.
    pub enabled: bool,
    /// At least 1.
    pub min_node_count: u32,
    /// At least 1, not below `min_node_count`.
    pub max_node_count: u32,
}

/// Dynamic allocation of a pool's executors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DynamicExecutorAllocation {
    /// Whether executors are allocated dynamically.
    pub enabled: bool,
    /// At least 1.
    pub min_executors: u32,
    /// At least 1, not below `min_executors`.
    pub max_executors: u32,
}

/// `POST /workspaces/{id}/spark/pools`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCustomPoolRequest {
    /// Pool name: 1-64 letters, digits, dashes, underscores and spaces; not `Starter Pool`.
    pub name: String,
    /// Settings.
    #[serde(flatten)]
    pub settings: PoolSettings,
}

/// `PATCH /workspaces/{id}/spark/pools/{poolId}`: every field optional; fabrik sends the
/// whole settings, so a pool ends as described whatever it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateCustomPoolRequest {
    /// A new name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Settings.
    #[serde(flatten)]
    pub settings: PoolSettings,
}
