//! Items (generic, lakehouse, notebook), item definitions and folders.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use super::common::{null_as_default, open_enum};
use super::workspace::{Principal, Tag};

open_enum! {
    /// An item type (the spec's 51 values; the service also sends others, e.g. `KustoDashboard`).
    #[allow(missing_docs)]
    pub enum ItemType {
        Dashboard, Report, SemanticModel, PaginatedReport, Datamart, Lakehouse, Eventhouse,
        Environment, KQLDatabase, KQLQueryset, KQLDashboard, DataPipeline, Notebook,
        SparkJobDefinition, MLExperiment, MLModel, Warehouse, Eventstream, SQLEndpoint,
        MirroredWarehouse, MirroredDatabase, Reflex, GraphQLApi, MountedDataFactory, SQLDatabase,
        CopyJob, VariableLibrary, Dataflow, ApacheAirflowJob, WarehouseSnapshot,
        DigitalTwinBuilder, DigitalTwinBuilderFlow, MirroredAzureDatabricksCatalog, Map,
        AnomalyDetector, UserDataFunction, GraphModel, GraphQuerySet, SnowflakeDatabase,
        OperationsAgent, CosmosDBDatabase, Ontology, EventSchemaSet, DataAgent, MirroredCatalog,
        AppBackend, OrgApp, OrgAppAudience, DataBuildToolJob, AzureDatabricksStorage, Plan,
    }
}

open_enum! {
    /// How a definition part's payload is encoded.
    pub enum PayloadType {
        /// Base64 inline.
        InlineBase64,
    }
}

open_enum! {
    /// Provisioning status of a lakehouse's SQL endpoint.
    pub enum SqlEndpointProvisioningStatus {
        /// Still provisioning.
        InProgress,
        /// Ready.
        Success,
        /// Failed.
        Failed,
    }
}

/// A sensitivity label applied to an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SensitivityLabel {
    /// Label id.
    pub id: String,
}

/// An item. `P` is the type-specific `properties` object: [`LakehouseProperties`] for
/// lakehouses, raw JSON for anything else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item<P = serde_json::Value> {
    /// Item id.
    pub id: String,
    /// Display name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub display_name: String,
    /// Description.
    #[serde(default, deserialize_with = "null_as_default")]
    pub description: String,
    /// Item type.
    #[serde(rename = "type")]
    pub kind: ItemType,
    /// Workspace id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub workspace_id: String,
    /// Folder id, when in a folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder_id: Option<String>,
    /// Applied tags.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<Tag>,
    /// Sensitivity label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity_label: Option<SensitivityLabel>,
    /// Default identity, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_identity: Option<Principal>,
    /// Type-specific properties.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub properties: Option<P>,
}

fn none<P>() -> Option<P> {
    None
}

/// A lakehouse.
pub type Lakehouse = Item<LakehouseProperties>;
/// A notebook (no type-specific properties).
pub type Notebook = Item;

/// SQL endpoint of a lakehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqlEndpointProperties {
    /// SQL connection string (null while provisioning).
    #[serde(default)]
    pub connection_string: Option<String>,
    /// SQL endpoint id (null while provisioning).
    #[serde(default)]
    pub id: Option<String>,
    /// Provisioning status.
    #[serde(default)]
    pub provisioning_status: Option<SqlEndpointProvisioningStatus>,
}

/// Lakehouse-specific properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LakehouseProperties {
    /// OneLake path of the Tables directory.
    #[serde(default)]
    pub one_lake_tables_path: Option<String>,
    /// OneLake path of the Files directory.
    #[serde(default)]
    pub one_lake_files_path: Option<String>,
    /// SQL endpoint.
    #[serde(default)]
    pub sql_endpoint_properties: Option<SqlEndpointProperties>,
    /// Default schema of a schema-enabled lakehouse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_schema: Option<String>,
}

/// One part of an item definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionPart {
    /// Path inside the definition (`notebook-content.py`, `.platform`).
    pub path: String,
    /// Base64 payload.
    pub payload: String,
    /// Payload encoding.
    #[serde(default = "inline_base64")]
    pub payload_type: PayloadType,
}

fn inline_base64() -> PayloadType {
    PayloadType::InlineBase64
}

impl DefinitionPart {
    /// A part from raw bytes, base64-encoded.
    pub fn from_bytes(path: impl Into<String>, bytes: &[u8]) -> Self {
        Self {
            path: path.into(),
            payload: B64.encode(bytes),
            payload_type: PayloadType::InlineBase64,
        }
    }

    /// The decoded payload.
    pub fn decode(&self) -> Result<Vec<u8>, base64::DecodeError> {
        B64.decode(self.payload.as_bytes())
    }
}

/// An item definition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemDefinition {
    /// Definition format (`ipynb`, `fabricGitSource`, `LakehouseDefinitionV1`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The parts.
    #[serde(default, deserialize_with = "null_as_default")]
    pub parts: Vec<DefinitionPart>,
}

/// Response of `getDefinition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemDefinitionResponse {
    /// The definition.
    pub definition: ItemDefinition,
}

/// Body of `updateDefinition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateDefinitionRequest {
    /// The new definition.
    pub definition: ItemDefinition,
}

/// Body of `POST /workspaces/{id}/items` (and, with `kind` ignored, of the lakehouse and
/// notebook creates). Use `definition` or `creation_payload`, not both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateItemRequest {
    /// Display name.
    pub display_name: String,
    /// Item type (omitted on the type-specific endpoints).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ItemType>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Folder to create the item in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder_id: Option<String>,
    /// Initial definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<ItemDefinition>,
    /// Type-specific creation properties (lakehouse: `{"enableSchemas": true}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_payload: Option<serde_json::Value>,
    /// Sensitivity label to apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity_label_settings: Option<SensitivityLabelSettings>,
}

open_enum! {
    /// How to apply a sensitivity label.
    pub enum SensitivityLabelApplyStrategy {
        /// Fail the request when the label cannot be applied.
        ApplyOrFail,
        /// Ignore a label that cannot be applied.
        Ignore,
    }
}

/// Sensitivity label settings of a create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SensitivityLabelSettings {
    /// The label.
    pub label_id: String,
    /// The strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity_label_apply_strategy: Option<SensitivityLabelApplyStrategy>,
}

impl CreateItemRequest {
    /// A request with a name and type and nothing else.
    pub fn new(display_name: impl Into<String>, kind: ItemType) -> Self {
        Self {
            display_name: display_name.into(),
            kind: Some(kind),
            description: None,
            folder_id: None,
            definition: None,
            creation_payload: None,
            sensitivity_label_settings: None,
        }
    }
}

/// Body of an item `PATCH`; absent fields are left unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateItemRequest {
    /// New display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// New description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A Spark pool, as `GET /workspaces/{id}/spark/pools` lists it (node settings left out:
/// deployment tools look pools up by name and type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SparkPool {
    /// Pool id.
    pub id: String,
    /// Pool name.
    pub name: String,
    /// `Workspace` or `Capacity`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// A workspace folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Folder {
    /// Folder id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Workspace id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub workspace_id: String,
    /// Parent folder; absent for top-level folders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_folder_id: Option<String>,
}

/// Body of `POST /workspaces/{id}/folders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateFolderRequest {
    /// Display name.
    pub display_name: String,
    /// Parent folder; absent for a top-level folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_folder_id: Option<String>,
}

/// Body of a folder `PATCH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateFolderRequest {
    /// New display name.
    pub display_name: String,
}

/// Body of `POST …/folders/{id}/move` and `POST …/items/{id}/move`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MoveFolderRequest {
    /// Destination folder; absent moves to the workspace root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_folder_id: Option<String>,
}
