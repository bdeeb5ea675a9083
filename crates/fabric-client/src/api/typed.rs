//! Type-specific calls publishing makes after an item's definition: an Environment's staging
//! publish, a VariableLibrary's active value set.

use reqwest::Method;
use serde_json::json;

use crate::client::FabricClient;
use crate::error::FabricError;
use crate::models::Item;

/// An item's typed endpoint (`{collection}`: `lakehouses`, `warehouses`, …).
const TYPED_ITEM: &str = "/workspaces/{workspaceId}/{collection}/{itemId}";
const ENV_PUBLISH: &str = "/workspaces/{workspaceId}/environments/{environmentId}/staging/publish";
const VARIABLE_LIBRARY: &str = "/workspaces/{workspaceId}/variableLibraries/{variableLibraryId}";
/// A typed collection (`/workspaces/{id}/lakehouses`, …), listed with each item's properties.
const TYPED_ITEMS: &str = "/workspaces/{workspaceId}/{collection}";

impl FabricClient {
    /// The items of one typed collection of a workspace (`lakehouses`, `warehouses`, …), each
    /// with the `properties` its typed endpoint gives: one paged list where reading each item
    /// would cost a call per item.
    pub fn list_typed(&self, workspace_id: &str, collection: &str) -> crate::Paged<Item> {
        self.paged(self.call(Method::GET, TYPED_ITEMS, &[workspace_id, collection]))
    }

    /// The `properties` of an item from its typed endpoint
    /// (`/workspaces/{id}/{collection}/{itemId}`, e.g. `warehouses`), when it has some.
    pub async fn item_properties(
        &self,
        workspace_id: &str,
        collection: &str,
        item_id: &str,
    ) -> Result<Option<serde_json::Value>, FabricError> {
        let call = self.call(
            Method::GET,
            TYPED_ITEM,
            &[workspace_id, collection, item_id],
        );
        let item: Item = self.fetch(call).await?;
        Ok(item.properties)
    }

    /// [`item_properties`](Self::item_properties), waiting while a SQL endpoint is still being
    /// provisioned (`sqlEndpointProperties.provisioningStatus` `InProgress`, as after a
    /// lakehouse is created): polled every second on the client's clock, up to its LRO
    /// deadline; `Failed` is an error.
    pub async fn provisioned_item_properties(
        &self,
        workspace_id: &str,
        collection: &str,
        item_id: &str,
    ) -> Result<Option<serde_json::Value>, FabricError> {
        let started = self.inner.clock.now();
        loop {
            let p = self
                .item_properties(workspace_id, collection, item_id)
                .await?;
            let status = p
                .as_ref()
                .and_then(|p| p.pointer("/sqlEndpointProperties/provisioningStatus"))
                .and_then(|s| s.as_str());
            match status {
                Some("InProgress") => {}
                Some("Failed") => {
                    return Err(FabricError::InvalidRequest(format!(
                        "the SQL endpoint of {collection}/{item_id} failed to provision"
                    )));
                }
                _ => return Ok(p),
            }
            if self.inner.clock.now().saturating_duration_since(started) >= self.lro_deadline() {
                return Err(FabricError::InvalidRequest(format!(
                    "the SQL endpoint of {collection}/{item_id} was still provisioning after {:?}",
                    self.lro_deadline()
                )));
            }
            self.inner
                .sleeper
                .sleep(std::time::Duration::from_secs(1))
                .await;
        }
    }

    /// Publishes an Environment's staged definition and waits until the publish ends
    /// (long-running; a failed publish is an error).
    pub async fn publish_environment(
        &self,
        workspace_id: &str,
        environment_id: &str,
    ) -> Result<(), FabricError> {
        let call = self
            .call(Method::POST, ENV_PUBLISH, &[workspace_id, environment_id])
            .with_query("beta", "False")
            // A second publish while one runs is refused: not safe to repeat blindly.
            .idempotent(false);
        self.lro_done(call).await
    }

    /// Starts publishing an Environment's staged definition: `None` when the service answered
    /// that it is done, else the operation to wait for ([`wait_operation`](Self::wait_operation)),
    /// so a caller may go on with other work meanwhile (an Environment publish takes minutes).
    pub async fn start_environment_publish(
        &self,
        workspace_id: &str,
        environment_id: &str,
    ) -> Result<Option<crate::Operation>, FabricError> {
        let call = self
            .call(Method::POST, ENV_PUBLISH, &[workspace_id, environment_id])
            .with_query("beta", "False")
            // A second publish while one runs is refused: not safe to repeat blindly.
            .idempotent(false);
        Ok(match self.lro_start(call).await? {
            crate::lro::Started::Done(_) => None,
            crate::lro::Started::Running(op) => Some(op),
        })
    }

    /// A VariableLibrary's active value set (`None` when the service does not say).
    pub async fn active_value_set(
        &self,
        workspace_id: &str,
        library_id: &str,
    ) -> Result<Option<String>, FabricError> {
        let item: Item = self
            .fetch(self.call(Method::GET, VARIABLE_LIBRARY, &[workspace_id, library_id]))
            .await?;
        Ok(item
            .properties
            .as_ref()
            .and_then(|p| p.get("activeValueSetName"))
            .and_then(|v| v.as_str())
            .map(str::to_string))
    }

    /// Every VariableLibrary of a workspace with its active value set (`None` when the service
    /// does not say), by item id: one paged list instead of a read per library.
    pub async fn active_value_sets(
        &self,
        workspace_id: &str,
    ) -> Result<std::collections::BTreeMap<String, Option<String>>, FabricError> {
        use futures::TryStreamExt as _;
        let libraries: Vec<Item> = self
            .list_typed(workspace_id, "variableLibraries")
            .try_collect()
            .await?;
        Ok(libraries
            .into_iter()
            .map(|item| {
                let set = item
                    .properties
                    .as_ref()
                    .and_then(|p| p.get("activeValueSetName"))
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
                (item.id, set)
            })
            .collect())
    }

    /// Sets a VariableLibrary's active value set.
    pub async fn set_active_value_set(
        &self,
        workspace_id: &str,
        library_id: &str,
        value_set: &str,
    ) -> Result<(), FabricError> {
        let body = json!({"properties": {"activeValueSetName": value_set}});
        let call = self
            .call(Method::PATCH, VARIABLE_LIBRARY, &[workspace_id, library_id])
            .json(&body)?
            .idempotent(true);
        self.send_only(call).await
    }
}
