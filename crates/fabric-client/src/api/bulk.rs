//! Bulk export and import of item definitions (beta).

use reqwest::Method;

use crate::client::FabricClient;
use crate::error::FabricError;
use crate::models::{BulkExportRequest, BulkExportResponse, BulkImportRequest, BulkImportResponse};

const BULK_EXPORT: &str = "/workspaces/{workspaceId}/items/bulkExportDefinitions";
const BULK_IMPORT: &str = "/workspaces/{workspaceId}/items/bulkImportDefinitions";

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

    /// Creates or updates many items from their git-format parts in one long-running call
    /// (`?beta=true`); the result says, per item, its id and whether it was created. Folders
    /// in the part paths are created as needed.
    pub async fn bulk_import_definitions(
        &self,
        workspace_id: &str,
        request: &BulkImportRequest,
    ) -> Result<BulkImportResponse, FabricError> {
        let call = self
            .call(Method::POST, BULK_IMPORT, &[workspace_id])
            .with_query("beta", "true")
            .json(request)?
            // Sent again, the same parts pair with the items the first import made (by
            // logical id), so a retry updates them to the same definitions.
            .idempotent(true);
        self.lro_result(call).await
    }
}
