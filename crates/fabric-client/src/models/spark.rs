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

/// A workspace's Spark settings (`GET …/spark/settings`), and the body of their update
/// (`PATCH`): every field optional, so an update names only what it changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSparkSettings {
    /// Automatic logging of Spark runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic_log: Option<AutomaticLog>,
    /// High concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_concurrency: Option<HighConcurrency>,
    /// Pools: customization, the default pool, the starter pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<SparkPoolsSettings>,
    /// The default environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<SparkEnvironment>,
    /// Jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<SparkJobSettings>,
}

/// Automatic logging.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutomaticLog {
    /// On or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// High concurrency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HighConcurrency {
    /// For interactive notebook runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notebook_interactive_run_enabled: Option<bool>,
    /// For notebooks run by pipelines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notebook_pipeline_run_enabled: Option<bool>,
}

/// The pool settings of a workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SparkPoolsSettings {
    /// Whether items may choose their own compute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customize_compute_enabled: Option<bool>,
    /// The pool items run on by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_pool: Option<InstancePool>,
    /// The starter pool's limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starter_pool: Option<StarterPool>,
}

/// A pool named by name and type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstancePool {
    /// Pool name (`Starter Pool`, or a custom pool's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `Workspace` or `Capacity`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Pool id (returned; an update may give it instead of the name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// The starter pool's limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StarterPool {
    /// Most nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_node_count: Option<u32>,
    /// Most executors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_executors: Option<u32>,
}

/// The default environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SparkEnvironment {
    /// Environment item name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Spark runtime version (`1.3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_version: Option<String>,
}

/// Job settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SparkJobSettings {
    /// Conservative job admission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conservative_job_admission_enabled: Option<bool>,
    /// Minutes before an idle session ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_timeout_in_minutes: Option<u32>,
}
