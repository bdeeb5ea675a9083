//! The emulated tenant: capacities, workspaces with their role assignments, items, folders
//! and git connections, shared git remotes, long-running operations and issued tokens.
//!
//! Everything lives in one [`Store`] behind a read-write lock (reads — the hot path — share
//! it). Maps are `BTreeMap`s keyed by id so listings, pages and the admin state dump come out
//! in one canonical order. Derived state (LRO status, capacity assignment progress, SQL
//! endpoint provisioning) is never stored: it is a pure function of when a thing started,
//! the configured delay and the clock's now, so there are no background tasks.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::util::fabric_time;

/// A capacity workspaces can be assigned to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Capacity {
    pub(crate) id: Uuid,
    pub(crate) display_name: String,
    pub(crate) sku: String,
    pub(crate) region: String,
    pub(crate) state: String,
    /// Capacity Spark pools (seeded: `--capacity-pool` or the state file), listed in every
    /// workspace on the capacity with `type: Capacity`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) spark_pools: Vec<SparkPool>,
}

/// A Spark custom pool (workspace or capacity), kept as the spec's `CustomPool` shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SparkPool {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    /// `nodeFamily`, `nodeSize`, `autoScale`, `dynamicExecutorAllocation` as sent.
    pub(crate) settings: Value,
}

impl SparkPool {
    /// The `CustomPool` shape with `type` `Workspace` or `Capacity`.
    pub(crate) fn to_json(&self, pool_type: &str) -> Value {
        let mut v = self.settings.clone();
        v["id"] = json!(self.id);
        v["name"] = json!(self.name);
        v["type"] = json!(pool_type);
        v
    }
}

/// A OneLake shortcut of an item.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Shortcut {
    pub(crate) path: String,
    pub(crate) name: String,
    pub(crate) target: Value,
}

impl Shortcut {
    pub(crate) fn to_json(&self) -> Value {
        json!({"path": self.path, "name": self.name, "target": self.target})
    }
}

/// An environment's last publish: its state derives from when it started, as LROs do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EnvPublish {
    pub(crate) target_version: Uuid,
    pub(crate) started_at: SystemTime,
    /// Ends `Failed` (an injected `lro-fail`) rather than `Success`.
    #[serde(default)]
    pub(crate) fails: bool,
    /// How long it runs when a profile drew it (`None`: the LRO delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) duration: Option<Duration>,
}

/// The per-type state few items have, boxed so the common item stays small.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemExtra {
    /// Warehouse: `creationPayload` collation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) collation: Option<String>,
    /// VariableLibrary: the active value set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) active_value_set: Option<String>,
    /// KQLDatabase: its eventhouse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parent_eventhouse: Option<Uuid>,
    /// KQLDatabase: `ReadWrite` or `Shortcut`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) database_type: Option<String>,
    /// Lakehouse and KQL database: shortcuts, sorted by (path, name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) shortcuts: Vec<Shortcut>,
    /// Environment: the last publish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) publish: Option<EnvPublish>,
    /// Environment: what the last publish took from the staged definition (`Item::definition`
    /// is the staging one, which `updateDefinition` writes and `getDefinition` reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) published: Option<Box<Definition>>,
    /// SemanticModel: connections bound with `bindConnection`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) connections: Vec<Uuid>,
}

/// A workspace role assignment; its id is the principal id, as in the real examples.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RoleAssignment {
    pub(crate) principal_id: Uuid,
    pub(crate) principal_type: String,
    pub(crate) role: String,
}

impl RoleAssignment {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "id": self.principal_id,
            "principal": {"id": self.principal_id, "type": self.principal_type},
            "role": self.role,
        })
    }
}

/// A workspace's role assignments, sorted by principal id. A `Vec` rather than a `BTreeMap`:
/// most workspaces have one or two, and a B-tree leaf reserves eleven slots.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Roles(Vec<RoleAssignment>);

impl Roles {
    fn pos(&self, id: &Uuid) -> Result<usize, usize> {
        self.0.binary_search_by(|r| r.principal_id.cmp(id))
    }
    pub(crate) fn get(&self, id: &Uuid) -> Option<&RoleAssignment> {
        self.pos(id).ok().map(|i| &self.0[i])
    }
    pub(crate) fn get_mut(&mut self, id: &Uuid) -> Option<&mut RoleAssignment> {
        self.pos(id).ok().map(|i| &mut self.0[i])
    }
    pub(crate) fn contains_key(&self, id: &Uuid) -> bool {
        self.pos(id).is_ok()
    }
    pub(crate) fn insert(&mut self, id: Uuid, ra: RoleAssignment) {
        match self.pos(&id) {
            Ok(i) => self.0[i] = ra,
            Err(i) => self.0.insert(i, ra),
        }
    }
    pub(crate) fn remove(&mut self, id: &Uuid) {
        if let Ok(i) = self.pos(id) {
            self.0.remove(i);
        }
    }
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
    pub(crate) fn values(&self) -> impl Iterator<Item = &RoleAssignment> {
        self.0.iter()
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Uuid, &RoleAssignment)> {
        self.0.iter().map(|r| (&r.principal_id, r))
    }
}

/// The `ItemType` enum of the spec (`common/definitions.json`).
pub(crate) const ITEM_TYPES: &[&str] = &[
    "Dashboard",
    "Report",
    "SemanticModel",
    "PaginatedReport",
    "Datamart",
    "Lakehouse",
    "Eventhouse",
    "Environment",
    "KQLDatabase",
    "KQLQueryset",
    "KQLDashboard",
    "DataPipeline",
    "Notebook",
    "SparkJobDefinition",
    "MLExperiment",
    "MLModel",
    "Warehouse",
    "Eventstream",
    "SQLEndpoint",
    "MirroredWarehouse",
    "MirroredDatabase",
    "Reflex",
    "GraphQLApi",
    "MountedDataFactory",
    "SQLDatabase",
    "CopyJob",
    "VariableLibrary",
    "Dataflow",
    "ApacheAirflowJob",
    "WarehouseSnapshot",
    "DigitalTwinBuilder",
    "DigitalTwinBuilderFlow",
    "MirroredAzureDatabricksCatalog",
    "Map",
    "AnomalyDetector",
    "UserDataFunction",
    "GraphModel",
    "GraphQuerySet",
    "SnowflakeDatabase",
    "OperationsAgent",
    "CosmosDBDatabase",
    "Ontology",
    "EventSchemaSet",
    "DataAgent",
    "MirroredCatalog",
    "AppBackend",
    "OrgApp",
    "OrgAppAudience",
    "DataBuildToolJob",
    "AzureDatabricksStorage",
    "Plan",
];

/// `&'static str` under a name serde's derive does not recognise as a borrowed string (it
/// would otherwise demand `'de: 'static`).
pub(crate) type StaticStr = &'static str;

/// Item types are one of [`ITEM_TYPES`], kept as `&'static str` so 100,000 items do not
/// carry 100,000 copies of "Notebook".
mod item_type {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &&'static str, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(t)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
        let t = String::deserialize(d)?;
        super::ITEM_TYPES
            .iter()
            .find(|x| **x == t)
            .copied()
            .ok_or_else(|| serde::de::Error::custom(format!("unknown item type '{t}'")))
    }
}

/// One part of an item definition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Part {
    pub(crate) path: String,
    pub(crate) payload: String,
    pub(crate) payload_type: String,
}

/// An item definition as sent by clients (without `.platform`, which is derived).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub(crate) struct Definition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) format: Option<String>,
    pub(crate) parts: Vec<Part>,
}

/// An item of any type.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Item {
    pub(crate) id: Uuid,
    #[serde(rename = "type", with = "item_type")]
    pub(crate) item_type: StaticStr,
    pub(crate) display_name: String,
    pub(crate) description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) folder_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) definition: Option<Box<Definition>>,
    /// The git logical id (stable across workspaces synced from one branch).
    pub(crate) logical_id: Uuid,
    pub(crate) created_at: SystemTime,
    /// Lakehouse only: created with `enableSchemas`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) enable_schemas: bool,
    /// Per-type state (shortcuts, collation, KQL parent, publish, bindings), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) extra: Option<Box<ItemExtra>>,
}

impl Item {
    /// The per-type state, created on first write.
    pub(crate) fn extra_mut(&mut self) -> &mut ItemExtra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// A lakehouse's (or mirrored database's) SQL analytics endpoint id: derived from the
    /// item id, not stored.
    pub(crate) fn sql_endpoint_id(&self) -> Option<Uuid> {
        matches!(self.item_type, "Lakehouse" | "MirroredDatabase").then(|| {
            Uuid::from_u128(
                self.id.as_u128().rotate_left(64) ^ 0x5A5A_0000_0000_0000_0000_5A5A_0000_0000,
            )
        })
    }

    /// The generic `Item` shape.
    pub(crate) fn to_json(&self, workspace_id: &Uuid) -> Value {
        let mut v = json!({
            "id": self.id,
            "type": self.item_type,
            "displayName": self.display_name,
            "description": self.description,
            "workspaceId": workspace_id,
        });
        if let Some(f) = &self.folder_id {
            v["folderId"] = json!(f);
        }
        v
    }

    /// The `.platform` part the service derives from the item's metadata.
    pub(crate) fn platform_part(&self) -> Part {
        let platform = json!({
            "$schema": "https://developer.microsoft.com/json-schemas/fabric/gitIntegration/platformProperties/2.0.0/schema.json",
            "metadata": {"type": self.item_type, "displayName": self.display_name, "description": self.description},
            "config": {"version": "2.0", "logicalId": self.logical_id},
        });
        Part {
            path: ".platform".into(),
            payload: base64::engine::general_purpose::STANDARD
                .encode(serde_json::to_vec_pretty(&platform).unwrap_or_default()),
            payload_type: "InlineBase64".into(),
        }
    }

    /// The full definition as `getDefinition` returns it: stored parts (or the type's empty
    /// default) followed by `.platform`.
    pub(crate) fn definition_json(&self, format: Option<&str>) -> Value {
        let mut def = self
            .definition
            .as_deref()
            .cloned()
            .unwrap_or_else(|| default_definition(self.item_type));
        if let Some(f) = format {
            if self.item_type == "Notebook" {
                crate::notebook::convert(&mut def, f);
            }
            def.format = Some(f.to_string());
        }
        def.parts.push(self.platform_part());
        json!({"definition": def})
    }

    /// What git compares: name, description and definition content.
    pub(crate) fn content_hash(&self) -> u64 {
        let v = json!([
            self.item_type,
            self.display_name,
            self.description,
            self.definition
        ]);
        crate::util::fnv(v.to_string().as_bytes())
    }
}

/// The definition an item created without one reports.
fn default_definition(item_type: &str) -> Definition {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let part = |path: &str, content: &str| Part {
        path: path.into(),
        payload: b64(content),
        payload_type: "InlineBase64".into(),
    };
    match item_type {
        "Notebook" => Definition {
            format: None,
            parts: vec![part("notebook-content.py", "# Fabric notebook source\n")],
        },
        "Lakehouse" => Definition {
            format: Some("LakehouseDefinitionV1".into()),
            parts: vec![part("lakehouse.metadata.json", "{}")],
        },
        _ => Definition::default(),
    }
}

/// A workspace folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Folder {
    pub(crate) id: Uuid,
    pub(crate) display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parent_folder_id: Option<Uuid>,
}

impl Folder {
    pub(crate) fn to_json(&self, workspace_id: &Uuid) -> Value {
        let mut v =
            json!({"id": self.id, "displayName": self.display_name, "workspaceId": workspace_id});
        if let Some(p) = &self.parent_folder_id {
            v["parentFolderId"] = json!(p);
        }
        v
    }
}

/// A workspace's git connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GitState {
    /// `gitProviderDetails` as connected (validated).
    pub(crate) provider: Value,
    /// Which shared remote branch/directory this is ([`Store::repos`] key).
    pub(crate) remote_key: String,
    pub(crate) initialized: bool,
    /// The commit the workspace is synced to.
    pub(crate) head: Option<String>,
    pub(crate) last_sync: Option<SystemTime>,
    /// Content hashes by logical id at the last sync (what both sides agreed on).
    pub(crate) synced: BTreeMap<Uuid, u64>,
    /// `myGitCredentials` as configured.
    pub(crate) credentials: Value,
}

/// An item as stored on a remote branch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RemoteItem {
    #[serde(rename = "type", with = "item_type")]
    pub(crate) item_type: StaticStr,
    pub(crate) display_name: String,
    pub(crate) description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) definition: Option<Box<Definition>>,
    pub(crate) hash: u64,
}

/// One branch + directory of a git repository, shared by every workspace connected to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RemoteBranch {
    pub(crate) commit: String,
    pub(crate) items: BTreeMap<Uuid, RemoteItem>,
}

/// A long-running operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Operation {
    pub(crate) id: Uuid,
    pub(crate) created_at: SystemTime,
    /// The body of `/result`, if the operation has one.
    pub(crate) result: Option<Value>,
    /// The error a failed operation reports (`ErrorResponse` without `requestId`).
    pub(crate) error: Option<Value>,
    /// How long it runs (`None`, in state files of older versions: the LRO delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) duration: Option<Duration>,
    /// The `Retry-After` its polls ask for while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retry_after: Option<u64>,
}

/// Where an operation is, from `(created_at, delay, now)`: the first quarter of the delay
/// `NotStarted`, then `Running` with a proportional `percentComplete`, then done.
pub(crate) fn operation_state(op: &Operation, now: SystemTime, delay: Duration) -> (Value, bool) {
    let delay = op.duration.unwrap_or(delay);
    let elapsed = now.duration_since(op.created_at).unwrap_or(Duration::ZERO);
    let done = elapsed >= delay;
    let (status, pct, updated) = if done {
        let s = if op.error.is_some() {
            "Failed"
        } else {
            "Succeeded"
        };
        (s, 100, crate::util::later(op.created_at, delay))
    } else if elapsed < delay / 4 {
        ("NotStarted", 0, op.created_at)
    } else {
        let pct = (elapsed.as_secs_f64() / delay.as_secs_f64() * 100.0) as u64;
        ("Running", pct.min(99), now)
    };
    let body = json!({
        "status": status,
        "createdTimeUtc": fabric_time(op.created_at),
        "lastUpdatedTimeUtc": fabric_time(updated),
        "percentComplete": pct,
        "error": if done { op.error.clone().unwrap_or(Value::Null) } else { Value::Null },
    });
    (body, done)
}

/// An issued bearer token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Token {
    pub(crate) principal_id: String,
    pub(crate) principal_type: String,
    pub(crate) expires_at: SystemTime,
    /// The resource it was issued for; `None` (minted by the admin API) is good for any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) audience: Option<String>,
}

/// One version of a Key Vault secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SecretVersion {
    pub(crate) version: String,
    pub(crate) value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) content_type: Option<String>,
    pub(crate) enabled: bool,
    /// Unix seconds, as Key Vault reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) nbf: Option<i64>,
    pub(crate) created: i64,
    pub(crate) updated: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tags: Option<serde_json::Map<String, Value>>,
}

/// A Key Vault secret: its name as first written and its versions, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VaultSecret {
    pub(crate) name: String,
    pub(crate) versions: Vec<SecretVersion>,
}

/// A workspace and everything in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Workspace {
    pub(crate) id: Uuid,
    pub(crate) display_name: String,
    pub(crate) description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) capacity_id: Option<Uuid>,
    /// When the last capacity (un)assignment started; progress derives from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) capacity_assigned_at: Option<SystemTime>,
    #[serde(default)]
    pub(crate) role_assignments: Roles,
    #[serde(default)]
    pub(crate) folders: BTreeMap<Uuid, Folder>,
    #[serde(default)]
    pub(crate) items: BTreeMap<Uuid, Item>,
    /// Soft-deleted items (kept out of every listing; shown apart in the admin state).
    #[serde(default)]
    pub(crate) deleted_items: BTreeMap<Uuid, Item>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) git: Option<Box<GitState>>,
    /// Workspace Spark custom pools.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) spark_pools: BTreeMap<Uuid, SparkPool>,
    /// Workspace Spark settings, once changed (until then the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) spark_settings: Option<Box<Value>>,
}

impl Workspace {
    /// The `Workspace` shape used in lists and create/update responses.
    pub(crate) fn to_json(&self, caps: &BTreeMap<Uuid, Capacity>) -> Value {
        let mut v = json!({
            "id": self.id,
            "displayName": self.display_name,
            "description": self.description,
            "type": "Workspace",
        });
        if let Some(c) = self.capacity_id {
            v["capacityId"] = json!(c);
            if let Some(cap) = caps.get(&c) {
                v["capacityRegion"] = json!(cap.region);
            }
        }
        v
    }

    /// The `WorkspaceInfo` shape of GET: adds assignment progress and OneLake endpoints.
    pub(crate) fn to_info_json(
        &self,
        caps: &BTreeMap<Uuid, Capacity>,
        now: SystemTime,
        delay: Duration,
    ) -> Value {
        let mut v = self.to_json(caps);
        if let Some(at) = self.capacity_assigned_at {
            let progress = if now >= crate::util::later(at, delay) {
                "Completed"
            } else {
                "InProgress"
            };
            v["capacityAssignmentProgress"] = json!(progress);
        }
        if let Some(cap) = self.capacity_id.and_then(|c| caps.get(&c)) {
            let region: String = cap.region.to_lowercase().split_whitespace().collect();
            v["oneLakeEndpoints"] = json!({
                "blobEndpoint": format!("https://{region}-onelake.blob.fabric.microsoft.com"),
                "dfsEndpoint": format!("https://{region}-onelake.dfs.fabric.microsoft.com"),
            });
        }
        v
    }

    /// Another live item of the same type with this name (case-insensitive)?
    pub(crate) fn name_taken(&self, item_type: &str, name: &str, except: Option<Uuid>) -> bool {
        self.items.values().any(|i| {
            Some(i.id) != except
                && i.item_type.eq_ignore_ascii_case(item_type)
                && i.display_name.eq_ignore_ascii_case(name)
        })
    }

    /// Is `folder` (or the workspace root, `None`) `ancestor` or below it?
    pub(crate) fn folder_within(&self, folder: Option<Uuid>, ancestor: Uuid) -> bool {
        let mut cur = folder;
        let mut guard = 0;
        while let Some(f) = cur {
            if f == ancestor {
                return true;
            }
            cur = self.folders.get(&f).and_then(|x| x.parent_folder_id);
            guard += 1;
            if guard > 64 {
                break;
            }
        }
        false
    }

    /// 1 for a folder at the root, 2 for its child, …
    pub(crate) fn folder_depth(&self, folder: Uuid) -> usize {
        let mut depth = 0;
        let mut cur = Some(folder);
        while let Some(f) = cur {
            depth += 1;
            cur = self.folders.get(&f).and_then(|x| x.parent_folder_id);
            if depth > 64 {
                break;
            }
        }
        depth
    }
}

/// The whole emulated tenant. Serialized as is to the `--state` file.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Store {
    pub(crate) capacities: BTreeMap<Uuid, Capacity>,
    pub(crate) workspaces: BTreeMap<Uuid, Workspace>,
    /// Git remotes by `provider/owner/repo/branch/directory`.
    #[serde(default)]
    pub(crate) repos: BTreeMap<String, RemoteBranch>,
    #[serde(default)]
    pub(crate) operations: HashMap<Uuid, Operation>,
    #[serde(default)]
    pub(crate) tokens: HashMap<String, Token>,
    /// Key Vault secrets by lower-cased name (names are case-insensitive).
    #[serde(default)]
    pub(crate) secrets: BTreeMap<String, VaultSecret>,
    /// Tenant connections (`/v1/connections`), as the spec's `Connection` shape.
    #[serde(default)]
    pub(crate) connections: BTreeMap<Uuid, Value>,
    /// Lower-cased workspace names → id (tenant-wide uniqueness); rebuilt on load.
    #[serde(skip)]
    pub(crate) workspace_names: HashMap<String, Uuid>,
}

impl Store {
    pub(crate) fn reindex(&mut self) {
        self.workspace_names = self
            .workspaces
            .values()
            .map(|w| (w.display_name.to_lowercase(), w.id))
            .collect();
    }

    /// The admin view: live resources in id order, soft-deleted items apart, no operations,
    /// tokens or request log.
    pub(crate) fn admin_view(&self) -> Value {
        let mut deleted = Vec::new();
        let workspaces: Vec<Value> = self
            .workspaces
            .values()
            .map(|w| {
                for i in w.deleted_items.values() {
                    let mut v = serde_json::to_value(i).unwrap_or_default();
                    v["workspaceId"] = json!(w.id);
                    deleted.push(v);
                }
                let mut v = serde_json::to_value(w).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.remove("deletedItems");
                    for key in ["folders", "items"] {
                        if let Some(m) = o.get_mut(key) {
                            let list: Vec<Value> = m
                                .as_object()
                                .map(|m| m.values().cloned().collect())
                                .unwrap_or_default();
                            *m = Value::Array(list);
                        }
                    }
                }
                v
            })
            .collect();
        json!({
            "capacities": self.capacities.values().collect::<Vec<_>>(),
            "workspaces": workspaces,
            "deletedItems": deleted,
            "gitRemotes": self.repos,
            "connections": self.connections.values().collect::<Vec<_>>(),
        })
    }
}
