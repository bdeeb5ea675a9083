//! Type-specific calls publishing makes after an item's definition: an Environment's staging
//! publish, a VariableLibrary's active value set.

use reqwest::Method;
use serde_json::json;

use crate::client::FabricClient;
use crate::error::FabricError;
use crate::models::Item;

const ENV_PUBLISH: &str = "/workspaces/{workspaceId}/environments/{environmentId}/staging/publish";
const VARIABLE_LIBRARY: &str = "/workspaces/{workspaceId}/variableLibraries/{variableLibraryId}";

impl FabricClient {
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
