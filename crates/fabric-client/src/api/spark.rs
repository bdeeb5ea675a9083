//! Spark pools a workspace can use (its own custom pools and its capacity's).

use reqwest::Method;

use crate::client::FabricClient;
use crate::models::SparkPool;
use crate::pager::Paged;

const POOLS: &str = "/workspaces/{workspaceId}/spark/pools";

impl FabricClient {
    /// The workspace's custom pools (`type: Workspace`) and its capacity's (`type: Capacity`).
    pub fn list_spark_pools(&self, workspace_id: &str) -> Paged<SparkPool> {
        self.paged(self.call(Method::GET, POOLS, &[workspace_id]))
    }
}
