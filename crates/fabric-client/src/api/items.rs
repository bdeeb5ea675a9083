//! Items: the generic item endpoints and the lakehouse and notebook ones, which share one
//! implementation over a table of routes.

use reqwest::Method;

use crate::client::FabricClient;
use crate::error::FabricError;
use crate::models::{
    CreateItemRequest, Item, ItemDefinition, ItemDefinitionResponse, ItemType, Lakehouse, Notebook,
    UpdateDefinitionRequest, UpdateItemRequest,
};
use crate::pager::Paged;

/// Filters for [`FabricClient::list_items`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemFilter {
    /// Only items of this type.
    pub kind: Option<ItemType>,
    /// Only items under this folder.
    pub root_folder_id: Option<String>,
    /// Whether to include nested folders (service default: true).
    pub recursive: Option<bool>,
}

impl ItemFilter {
    /// Items of one type.
    pub fn of_type(kind: ItemType) -> Self {
        Self {
            kind: Some(kind),
            ..Self::default()
        }
    }
}

/// The routes of one item collection.
struct Routes {
    list: &'static str,
    one: &'static str,
    get_definition: &'static str,
    update_definition: &'static str,
    /// Whether the create body names the type (only the generic endpoint wants it).
    typed_create: bool,
}

const MOVE_ITEM: &str = "/workspaces/{workspaceId}/items/{itemId}/move";

const ITEMS: Routes = Routes {
    list: "/workspaces/{workspaceId}/items",
    one: "/workspaces/{workspaceId}/items/{itemId}",
    get_definition: "/workspaces/{workspaceId}/items/{itemId}/getDefinition",
    update_definition: "/workspaces/{workspaceId}/items/{itemId}/updateDefinition",
    typed_create: true,
};

const LAKEHOUSES: Routes = Routes {
    list: "/workspaces/{workspaceId}/lakehouses",
    one: "/workspaces/{workspaceId}/lakehouses/{lakehouseId}",
    get_definition: "/workspaces/{workspaceId}/lakehouses/{lakehouseId}/getDefinition",
    update_definition: "/workspaces/{workspaceId}/lakehouses/{lakehouseId}/updateDefinition",
    typed_create: false,
};

const NOTEBOOKS: Routes = Routes {
    list: "/workspaces/{workspaceId}/notebooks",
    one: "/workspaces/{workspaceId}/notebooks/{notebookId}",
    get_definition: "/workspaces/{workspaceId}/notebooks/{notebookId}/getDefinition",
    update_definition: "/workspaces/{workspaceId}/notebooks/{notebookId}/updateDefinition",
    typed_create: false,
};

impl FabricClient {
    fn create_in(
        &self,
        r: &Routes,
        workspace_id: &str,
        request: &CreateItemRequest,
    ) -> Result<crate::client::Call, FabricError> {
        let call = self.call(Method::POST, r.list, &[workspace_id]);
        if r.typed_create || request.kind.is_none() {
            call.json(request)
        } else {
            let untyped = CreateItemRequest {
                kind: None,
                ..request.clone()
            };
            call.json(&untyped)
        }
    }

    async fn get_definition_in(
        &self,
        r: &Routes,
        workspace_id: &str,
        item_id: &str,
        format: Option<&str>,
    ) -> Result<ItemDefinition, FabricError> {
        let mut call = self
            .call(Method::POST, r.get_definition, &[workspace_id, item_id])
            .idempotent(true);
        if let Some(f) = format {
            call = call.with_query("format", f);
        }
        let resp: ItemDefinitionResponse = self.lro_result(call).await?;
        Ok(resp.definition)
    }

    async fn update_definition_in(
        &self,
        r: &Routes,
        workspace_id: &str,
        item_id: &str,
        definition: &ItemDefinition,
        update_metadata: bool,
    ) -> Result<(), FabricError> {
        let body = UpdateDefinitionRequest {
            definition: definition.clone(),
        };
        let mut call = self
            .call(Method::POST, r.update_definition, &[workspace_id, item_id])
            .json(&body)?
            // Setting the same definition twice leaves the same item.
            .idempotent(true);
        if update_metadata {
            call = call.with_query("updateMetadata", "true");
        }
        self.lro_done(call).await
    }

    // ---- generic items ----

    /// Items of a workspace, optionally filtered by type or folder.
    pub fn list_items(&self, workspace_id: &str, filter: &ItemFilter) -> Paged<Item> {
        let mut call = self.call(Method::GET, ITEMS.list, &[workspace_id]);
        if let Some(kind) = &filter.kind {
            call = call.with_query("type", kind.as_str());
        }
        if let Some(folder) = &filter.root_folder_id {
            call = call.with_query("rootFolderId", folder);
        }
        if let Some(recursive) = filter.recursive {
            call = call.with_query("recursive", if recursive { "true" } else { "false" });
        }
        self.paged(call)
    }

    /// One item.
    pub async fn get_item(&self, workspace_id: &str, item_id: &str) -> Result<Item, FabricError> {
        self.fetch(self.call(Method::GET, ITEMS.one, &[workspace_id, item_id]))
            .await
    }

    /// Creates an item of `request.kind` (long-running: 201, or 202 then polled).
    pub async fn create_item(
        &self,
        workspace_id: &str,
        request: &CreateItemRequest,
    ) -> Result<Item, FabricError> {
        self.create_item_as(workspace_id, request, false).await
    }

    pub(crate) async fn create_item_as(
        &self,
        workspace_id: &str,
        request: &CreateItemRequest,
        idempotent: bool,
    ) -> Result<Item, FabricError> {
        if request.kind.is_none() {
            return Err(FabricError::InvalidRequest(
                "create_item needs the item type".into(),
            ));
        }
        let call = self.create_in(&ITEMS, workspace_id, request)?;
        self.lro_result(call.idempotent(idempotent)).await
    }

    /// Updates an item's name or description.
    pub async fn update_item(
        &self,
        workspace_id: &str,
        item_id: &str,
        request: &UpdateItemRequest,
    ) -> Result<Item, FabricError> {
        let call = self.call(Method::PATCH, ITEMS.one, &[workspace_id, item_id]);
        self.fetch(call.json(request)?).await
    }

    /// Deletes an item.
    pub async fn delete_item(&self, workspace_id: &str, item_id: &str) -> Result<(), FabricError> {
        self.send_only(self.call(Method::DELETE, ITEMS.one, &[workspace_id, item_id]))
            .await
    }

    /// An item's definition (long-running), in `format` or the type's default.
    pub async fn get_item_definition(
        &self,
        workspace_id: &str,
        item_id: &str,
        format: Option<&str>,
    ) -> Result<ItemDefinition, FabricError> {
        self.get_definition_in(&ITEMS, workspace_id, item_id, format)
            .await
    }

    /// Moves an item into a folder (`None`: the workspace root).
    pub async fn move_item(
        &self,
        workspace_id: &str,
        item_id: &str,
        target_folder_id: Option<&str>,
    ) -> Result<(), FabricError> {
        let body = crate::models::MoveFolderRequest {
            target_folder_id: target_folder_id.map(str::to_owned),
        };
        let call = self.call(Method::POST, MOVE_ITEM, &[workspace_id, item_id]);
        // Moving to where the item already is changes nothing: safe to repeat.
        self.send_only(call.json(&body)?.idempotent(true)).await
    }

    /// Replaces an item's definition (long-running); with `update_metadata`, the `.platform`
    /// part also updates name and description.
    pub async fn update_item_definition(
        &self,
        workspace_id: &str,
        item_id: &str,
        definition: &ItemDefinition,
        update_metadata: bool,
    ) -> Result<(), FabricError> {
        self.update_definition_in(&ITEMS, workspace_id, item_id, definition, update_metadata)
            .await
    }

    // ---- lakehouses ----

    /// Lakehouses of a workspace.
    pub fn list_lakehouses(&self, workspace_id: &str) -> Paged<Lakehouse> {
        self.paged(self.call(Method::GET, LAKEHOUSES.list, &[workspace_id]))
    }

    /// One lakehouse, with its properties.
    pub async fn get_lakehouse(
        &self,
        workspace_id: &str,
        lakehouse_id: &str,
    ) -> Result<Lakehouse, FabricError> {
        self.fetch(self.call(Method::GET, LAKEHOUSES.one, &[workspace_id, lakehouse_id]))
            .await
    }

    /// Creates a lakehouse (long-running). `request.kind` is ignored; schemas are enabled with
    /// `creation_payload: {"enableSchemas": true}`.
    pub async fn create_lakehouse(
        &self,
        workspace_id: &str,
        request: &CreateItemRequest,
    ) -> Result<Lakehouse, FabricError> {
        let call = self.create_in(&LAKEHOUSES, workspace_id, request)?;
        self.lro_result(call).await
    }

    /// Updates a lakehouse's name or description.
    pub async fn update_lakehouse(
        &self,
        workspace_id: &str,
        lakehouse_id: &str,
        request: &UpdateItemRequest,
    ) -> Result<Lakehouse, FabricError> {
        let call = self.call(Method::PATCH, LAKEHOUSES.one, &[workspace_id, lakehouse_id]);
        self.fetch(call.json(request)?).await
    }

    /// Deletes a lakehouse.
    pub async fn delete_lakehouse(
        &self,
        workspace_id: &str,
        lakehouse_id: &str,
    ) -> Result<(), FabricError> {
        self.send_only(self.call(
            Method::DELETE,
            LAKEHOUSES.one,
            &[workspace_id, lakehouse_id],
        ))
        .await
    }

    /// A lakehouse's definition (long-running).
    pub async fn get_lakehouse_definition(
        &self,
        workspace_id: &str,
        lakehouse_id: &str,
    ) -> Result<ItemDefinition, FabricError> {
        self.get_definition_in(&LAKEHOUSES, workspace_id, lakehouse_id, None)
            .await
    }

    /// Replaces a lakehouse's definition (long-running).
    pub async fn update_lakehouse_definition(
        &self,
        workspace_id: &str,
        lakehouse_id: &str,
        definition: &ItemDefinition,
        update_metadata: bool,
    ) -> Result<(), FabricError> {
        self.update_definition_in(
            &LAKEHOUSES,
            workspace_id,
            lakehouse_id,
            definition,
            update_metadata,
        )
        .await
    }

    // ---- notebooks ----

    /// Notebooks of a workspace.
    pub fn list_notebooks(&self, workspace_id: &str) -> Paged<Notebook> {
        self.paged(self.call(Method::GET, NOTEBOOKS.list, &[workspace_id]))
    }

    /// One notebook.
    pub async fn get_notebook(
        &self,
        workspace_id: &str,
        notebook_id: &str,
    ) -> Result<Notebook, FabricError> {
        self.fetch(self.call(Method::GET, NOTEBOOKS.one, &[workspace_id, notebook_id]))
            .await
    }

    /// Creates a notebook (long-running), optionally with a definition. `request.kind` is
    /// ignored.
    pub async fn create_notebook(
        &self,
        workspace_id: &str,
        request: &CreateItemRequest,
    ) -> Result<Notebook, FabricError> {
        let call = self.create_in(&NOTEBOOKS, workspace_id, request)?;
        self.lro_result(call).await
    }

    /// Updates a notebook's name or description.
    pub async fn update_notebook(
        &self,
        workspace_id: &str,
        notebook_id: &str,
        request: &UpdateItemRequest,
    ) -> Result<Notebook, FabricError> {
        let call = self.call(Method::PATCH, NOTEBOOKS.one, &[workspace_id, notebook_id]);
        self.fetch(call.json(request)?).await
    }

    /// Deletes a notebook.
    pub async fn delete_notebook(
        &self,
        workspace_id: &str,
        notebook_id: &str,
    ) -> Result<(), FabricError> {
        self.send_only(self.call(Method::DELETE, NOTEBOOKS.one, &[workspace_id, notebook_id]))
            .await
    }

    /// A notebook's definition (long-running) in `format` (`ipynb` or `fabricGitSource`).
    pub async fn get_notebook_definition(
        &self,
        workspace_id: &str,
        notebook_id: &str,
        format: Option<&str>,
    ) -> Result<ItemDefinition, FabricError> {
        self.get_definition_in(&NOTEBOOKS, workspace_id, notebook_id, format)
            .await
    }

    /// Replaces a notebook's definition (long-running).
    pub async fn update_notebook_definition(
        &self,
        workspace_id: &str,
        notebook_id: &str,
        definition: &ItemDefinition,
        update_metadata: bool,
    ) -> Result<(), FabricError> {
        self.update_definition_in(
            &NOTEBOOKS,
            workspace_id,
            notebook_id,
            definition,
            update_metadata,
        )
        .await
    }
}
