//! Bulk export of item definitions (beta).

use reqwest::Method;

use crate::client::FabricClient;
use crate::error::FabricError;
use crate::models::{BulkExportRequest, BulkExportResponse};

const BULK_EXPORT: &str = "/workspaces/{workspaceId}/items/bulkExportDefinitions";

impl FabricClient {
    /// Many items' definitions in one long-running call (`?beta=true`), laid out as the git
    /// format. When the service cannot export a listed item (its type has no definition),
    /// the error answers [`FabricError::is_not_supported`]: fall back to
    /// [`get_item_definition`](Self::get_item_definition) per item.
    pub async fn bulk_export_definitions(
        &self,
        workspace_id: &str,
        request: &BulkExportRequest,
    ) -> Result<BulkExportResponse, FabricError> {
        let call = self
            .call(Method::POST, BULK_EXPORT, &[workspace_id])
            .with_query("beta", "true")
            .json(request)?
            // A read: asking twice exports the same definitions.
            .idempotent(true);
        self.lro_result(call).await
    }
}
