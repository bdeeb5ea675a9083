//! Connections and a semantic model's binding to them. Kept as JSON: publishing copies a
//! connection's `connectivityType` and `connectionDetails` into the binding it sends.

use reqwest::Method;
use serde_json::{Value, json};

use crate::client::FabricClient;
use crate::error::FabricError;
use crate::pager::Paged;

const CONNECTIONS: &str = "/connections";
const ITEM_CONNECTIONS: &str = "/workspaces/{workspaceId}/items/{itemId}/connections";
const BIND: &str = "/workspaces/{workspaceId}/semanticModels/{semanticModelId}/bindConnection";

impl FabricClient {
    /// The connections the caller can use.
    pub fn list_connections(&self) -> Paged<Value> {
        self.paged(self.call(Method::GET, CONNECTIONS, &[]))
    }

    /// The connections an item is bound to.
    pub fn item_connections(&self, workspace_id: &str, item_id: &str) -> Paged<Value> {
        self.paged(self.call(Method::GET, ITEM_CONNECTIONS, &[workspace_id, item_id]))
    }

    /// Binds the semantic model's data source (`connectionDetails` `type` and `path`) to the
    /// connection `connection` (a connection as listed); with `connection` `None`, unbinds it.
    pub async fn bind_connection(
        &self,
        workspace_id: &str,
        model_id: &str,
        details: &Value,
        connection: Option<&Value>,
    ) -> Result<(), FabricError> {
        let binding = match connection {
            Some(c) => json!({
                "id": c["id"],
                "connectivityType": c["connectivityType"],
                "connectionDetails": details,
            }),
            None => json!({"connectivityType": "None", "connectionDetails": details}),
        };
        let call = self
            .call(Method::POST, BIND, &[workspace_id, model_id])
            .json(&json!({"connectionBinding": binding}))?
            // Binding the same source to the same connection twice leaves one binding.
            .idempotent(true);
        self.send_only(call).await
    }
}
