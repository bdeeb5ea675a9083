//! Bulk export and import of item definitions (beta): requests and results.

use serde::{Deserialize, Serialize};

use super::common::{null_as_default, open_enum};
use super::item::DefinitionPart;

open_enum! {
    /// Which items a bulk export covers.
    pub enum BulkExportMode {
        /// Every item whose type has a definition; the others are skipped.
        All,
        /// The items listed in the request.
        Selective,
    }
}

/// One item to export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportItemIdentifier {
    /// The item id.
    pub id: String,
}

/// Body of `POST /workspaces/{id}/items/bulkExportDefinitions?beta=true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkExportRequest {
    /// All supported items, or the listed ones.
    pub mode: BulkExportMode,
    /// The items, for [`BulkExportMode::Selective`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ExportItemIdentifier>>,
}

impl BulkExportRequest {
    /// Every item of the workspace that has a definition.
    pub fn all() -> Self {
        Self {
            mode: BulkExportMode::All,
            items: None,
        }
    }

    /// The given items (the service refuses the whole request if one has no definition).
    pub fn selective<I: Into<String>>(ids: impl IntoIterator<Item = I>) -> Self {
        Self {
            mode: BulkExportMode::Selective,
            items: Some(
                ids.into_iter()
                    .map(|id| ExportItemIdentifier { id: id.into() })
                    .collect(),
            ),
        }
    }
}

/// Where one exported item's parts are: `/<folders>/<Name>.<Type>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemDefinitionIndexEntry {
    /// The item id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    /// The item's directory, workspace-absolute.
    #[serde(default, deserialize_with = "null_as_default")]
    pub root_path: String,
}

/// Result of a bulk export: the index and every part, paths workspace-absolute (the layout
/// `bulkImportDefinitions` takes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkExportResponse {
    /// Item → root path.
    #[serde(default, deserialize_with = "null_as_default")]
    pub item_definitions_index: Vec<ItemDefinitionIndexEntry>,
    /// Every part of every exported item, `.platform` included.
    #[serde(default, deserialize_with = "null_as_default")]
    pub definition_parts: Vec<DefinitionPart>,
}

impl BulkExportResponse {
    /// The parts of one exported item, with paths relative to its root (as `getDefinition`
    /// gives them); empty if the item is not in the index.
    pub fn parts_of(&self, item_id: &str) -> Vec<DefinitionPart> {
        let Some(entry) = self.item_definitions_index.iter().find(|e| e.id == item_id) else {
            return Vec::new();
        };
        let prefix = format!("{}/", entry.root_path);
        self.definition_parts
            .iter()
            .filter_map(|p| {
                let path = p.path.strip_prefix(&prefix)?;
                Some(DefinitionPart {
                    path: path.to_owned(),
                    ..p.clone()
                })
            })
            .collect()
    }
}

/// How `bulkImportDefinitions` pairs imported items with the workspace's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkImportOptions {
    /// Pair an item whose logical id the workspace does not know with the existing item of
    /// its type and display name (the service's default is `false`: a name conflict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_pairing_by_name: Option<bool>,
}

/// Body of `POST /workspaces/{id}/items/bulkImportDefinitions?beta=true`: every part of every
/// item, paths workspace-absolute (`/<folders>/<Item dir>/<file>`), each item with its
/// `.platform`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkImportRequest {
    /// The parts.
    pub definition_parts: Vec<DefinitionPart>,
    /// Pairing options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BulkImportOptions>,
}

open_enum! {
    /// What an import did to an item.
    pub enum ItemDefinitionOperationType {
        /// The item was created.
        Create,
        /// The item was updated.
        Update,
    }
}

open_enum! {
    /// How an item's import ended.
    pub enum ImportItemDefinitionOperationStatus {
        /// Imported.
        Succeeded,
        /// Not imported.
        Failed,
        /// Imported in part.
        SucceededDespiteFailures,
    }
}

/// What the import did to one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportItemDefinitionsDetails {
    /// The item's id (new, or the paired item's).
    #[serde(default, deserialize_with = "null_as_default")]
    pub item_id: String,
    /// Its display name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub item_display_name: String,
    /// Its type.
    #[serde(default, deserialize_with = "null_as_default")]
    pub item_type: String,
    /// Its logical id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub item_logical_id: String,
    /// Create or update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_type: Option<ItemDefinitionOperationType>,
    /// How it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_status: Option<ImportItemDefinitionOperationStatus>,
}

/// Result of a bulk import: one entry per imported item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkImportResponse {
    /// Per item.
    #[serde(default, deserialize_with = "null_as_default")]
    pub import_item_definitions_details: Vec<ImportItemDefinitionsDetails>,
}
