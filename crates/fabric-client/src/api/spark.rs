//! Spark pools a workspace can use (its own custom pools and its capacity's).

use futures::TryStreamExt;
use reqwest::Method;

use crate::client::FabricClient;
use crate::error::FabricError;
use crate::idempotent::{Ensured, Origin};
use crate::models::{
    CreateCustomPoolRequest, CustomPool, SparkPool, UpdateCustomPoolRequest, WorkspaceSparkSettings,
};
use crate::pager::Paged;

const POOLS: &str = "/workspaces/{workspaceId}/spark/pools";
const POOL: &str = "/workspaces/{workspaceId}/spark/pools/{poolId}";
const SETTINGS: &str = "/workspaces/{workspaceId}/spark/settings";

impl FabricClient {
    /// The workspace's custom pools (`type: Workspace`) and its capacity's (`type: Capacity`).
    pub fn list_spark_pools(&self, workspace_id: &str) -> Paged<SparkPool> {
        self.paged(self.call(Method::GET, POOLS, &[workspace_id]))
    }

    /// The same list with each pool's node settings.
    pub fn list_custom_pools(&self, workspace_id: &str) -> Paged<CustomPool> {
        self.paged(self.call(Method::GET, POOLS, &[workspace_id]))
    }

    /// One pool.
    pub async fn get_custom_pool(
        &self,
        workspace_id: &str,
        pool_id: &str,
    ) -> Result<CustomPool, FabricError> {
        self.fetch(self.call(Method::GET, POOL, &[workspace_id, pool_id]))
            .await
    }

    /// Creates a workspace pool.
    pub async fn create_custom_pool(
        &self,
        workspace_id: &str,
        request: &CreateCustomPoolRequest,
    ) -> Result<CustomPool, FabricError> {
        self.create_custom_pool_as(workspace_id, request, false)
            .await
    }

    async fn create_custom_pool_as(
        &self,
        workspace_id: &str,
        request: &CreateCustomPoolRequest,
        idempotent: bool,
    ) -> Result<CustomPool, FabricError> {
        let call = self
            .call(Method::POST, POOLS, &[workspace_id])
            .json(request)?;
        self.fetch(call.idempotent(idempotent)).await
    }

    /// The workspace pool called `request.name`, created if it does not exist (an existing
    /// one is returned as it is).
    pub async fn get_or_create_custom_pool(
        &self,
        workspace_id: &str,
        request: &CreateCustomPoolRequest,
    ) -> Result<Ensured<CustomPool>, FabricError> {
        match self
            .create_custom_pool_as(workspace_id, request, true)
            .await
        {
            Ok(value) => Ok(Ensured {
                value,
                origin: Origin::Created,
            }),
            Err(e) => {
                let lookup = || self.find_custom_pool(workspace_id, &request.name);
                self.resolve(e, lookup).await
            }
        }
    }

    /// The workspace's own pool called `name` (pool names compare case-insensitively).
    pub async fn find_custom_pool(
        &self,
        workspace_id: &str,
        name: &str,
    ) -> Result<Option<CustomPool>, FabricError> {
        let pools: Vec<CustomPool> = self.list_custom_pools(workspace_id).try_collect().await?;
        Ok(pools
            .into_iter()
            .find(|p| p.kind == "Workspace" && p.name.eq_ignore_ascii_case(name)))
    }

    /// Updates a workspace pool.
    pub async fn update_custom_pool(
        &self,
        workspace_id: &str,
        pool_id: &str,
        request: &UpdateCustomPoolRequest,
    ) -> Result<CustomPool, FabricError> {
        let call = self.call(Method::PATCH, POOL, &[workspace_id, pool_id]);
        self.fetch(call.json(request)?).await
    }

    /// Deletes a workspace pool.
    pub async fn delete_custom_pool(
        &self,
        workspace_id: &str,
        pool_id: &str,
    ) -> Result<(), FabricError> {
        self.send_only(self.call(Method::DELETE, POOL, &[workspace_id, pool_id]))
            .await
    }

    /// The workspace's Spark settings.
    pub async fn get_spark_settings(
        &self,
        workspace_id: &str,
    ) -> Result<WorkspaceSparkSettings, FabricError> {
        self.fetch(self.call(Method::GET, SETTINGS, &[workspace_id]))
            .await
    }

    /// Changes the fields `update` gives of the workspace's Spark settings; returns them all.
    pub async fn update_spark_settings(
        &self,
        workspace_id: &str,
        update: &WorkspaceSparkSettings,
    ) -> Result<WorkspaceSparkSettings, FabricError> {
        let call = self.call(Method::PATCH, SETTINGS, &[workspace_id]);
        self.fetch(call.json(update)?).await
    }
}
