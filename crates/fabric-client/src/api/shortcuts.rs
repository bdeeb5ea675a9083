//! OneLake shortcuts of a lakehouse. Shortcuts are kept as JSON: publishing reads them from
//! a repository's `shortcuts.metadata.json` and sends them as they are written there.

use reqwest::Method;
use serde_json::Value;

use crate::client::FabricClient;
use crate::error::FabricError;
use crate::pager::Paged;

const SHORTCUTS: &str = "/workspaces/{workspaceId}/items/{itemId}/shortcuts";

impl FabricClient {
    /// The item's shortcuts (`{path, name, target}` each).
    pub fn list_shortcuts(&self, workspace_id: &str, item_id: &str) -> Paged<Value> {
        self.paged(self.call(Method::GET, SHORTCUTS, &[workspace_id, item_id]))
    }

    /// Creates `shortcut`, or replaces the one at its path and name.
    pub async fn put_shortcut(
        &self,
        workspace_id: &str,
        item_id: &str,
        shortcut: &Value,
    ) -> Result<(), FabricError> {
        let call = self
            .call(Method::POST, SHORTCUTS, &[workspace_id, item_id])
            .with_query("shortcutConflictPolicy", "CreateOrOverwrite")
            .json(shortcut)?
            // CreateOrOverwrite with the same body gives the same shortcut.
            .idempotent(true);
        self.send_only(call).await
    }

    /// Deletes the shortcut `name` under `path` (`Tables/dbo`: one segment per part).
    pub async fn delete_shortcut(
        &self,
        workspace_id: &str,
        item_id: &str,
        path: &str,
        name: &str,
    ) -> Result<(), FabricError> {
        let mut call = self.call(Method::DELETE, SHORTCUTS, &[workspace_id, item_id]);
        if let Ok(mut segs) = call.url.path_segments_mut() {
            segs.extend(path.split('/').filter(|s| !s.is_empty()));
            segs.push(name);
        }
        self.send_only(call).await
    }
}
