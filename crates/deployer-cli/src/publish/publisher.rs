//! Publishing a discovered repository's items into one workspace as an engine kind: read the
//! deployed items and their definitions, plan create / update / unchanged / delete by comparing
//! the parts fabrik would send with the deployed ones, order items by the logicalIds they
//! mention (any type, so no "referenced item is not yet deployed"), and apply with undo records
//! (an update journals the previous definition; a create journals its delete).
//!
//! Parts are rendered by [`pipeline::render`] (type step, logicalIds, `parameter.yml`, zero
//! workspace id). Besides definitions it plans renames and moves between folders (keeping the
//! item's id) and the type-specific post-steps: an Environment's publish, lakehouse
//! shortcuts, a variable library's active value set and semantic-model bindings.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use fabrik_client::models::{DefinitionPart, ItemDefinition, PayloadType};
use fabrik_core::resource::{ResourceKind, ResourceRef};
use futures::TryStreamExt;
use serde::Serialize;

use super::inputs::Unpublish;
use super::item_type::ItemType;
use super::parameter::ItemAttrs;
use super::pipeline::{self, Parameterization, World};
use super::repo::{RepoItem, Repository};
use crate::config::{Desired, DesiredWorkspace};
use crate::engine::kinds::item::ItemUndo;
use crate::engine::kinds::{folder, workspace};
use crate::engine::{
    Address, ApplyCx, Diff, DiffCx, EngineError, Kind, Need, Outcome, Planned, ReadCx, Registry,
    ctx,
};
use crate::plan::{Action, Plan};

#[path = "publisher_apply.rs"]
mod apply;
#[path = "publisher_bulk.rs"]
mod bulk;
#[path = "publisher_plan.rs"]
mod planning;
#[path = "publisher_read.rs"]
mod reading;
use apply::UpdateChange;
pub use bulk::BulkMember;
use planning::Slot;
pub use reading::{DefinitionReads, OneByOne};

/// The kind's name in addresses.
pub const NAME: &str = "published";

/// An item's parts: path and bytes.
type Parts = Vec<(String, Vec<u8>)>;

/// Definition reads under way at once per `--concurrency` slot: a read is two quick requests
/// around a wait of a second or more (the operation's Retry-After), so its slot would mostly
/// wait. The rate limiter paces the requests as it paces all others. (The client's
/// `max_in_flight` would bound the requests themselves, but a slot waited for under hung calls
/// starved the fault-matrix run of its deadlines, so the run does not set it.)
const DEFINITION_READS_PER_SLOT: usize = 16;

/// The zero GUID: in a shortcut's OneLake `itemId`, the lakehouse itself.
const ZERO: &str = super::parameter::ZERO_GUID;

/// Items of a repository published into one workspace.
#[derive(Debug, Clone)]
pub struct PublishKind {
    repo: Arc<Repository>,
    how: Parameterization,
    unpublish: Unpublish,
    /// For each repository item (by index), the items it waits for.
    refs: Vec<Vec<usize>>,
    /// `(type, name)` of items whose `$items` properties the parameters read.
    read_by_parameters: std::collections::BTreeSet<(String, String)>,
    /// Connection ids each semantic model (by repository index) is to be bound to.
    bindings: BTreeMap<usize, Vec<String>>,
    /// Other workspaces by name, listed once per run (for `$workspace.<name>`).
    workspaces: Arc<tokio::sync::OnceCell<BTreeMap<String, String>>>,
    /// The workspace's Spark pools, listed once per run (every Environment's `spark_pool`
    /// is looked up in them, when planned and when applied).
    pools: Arc<tokio::sync::OnceCell<(String, Vec<fabrik_client::models::SparkPool>)>>,
}

/// A deployed item of a type the repository may hold.
#[derive(Debug, Clone)]
pub struct LiveItem {
    id: String,
    item_type: ItemType,
    name: String,
    description: String,
    /// Its folder (`a/b`) and the folder's id; `None` at the root.
    folder: Option<(String, String)>,
    /// Decoded parts, for items the repository publishes with a definition.
    parts: Option<Vec<(String, Vec<u8>)>>,
    /// A VariableLibrary's active value set.
    value_set: Option<String>,
}

/// The value set fabric-cicd activates when the environment is not one of the library's.
pub const DEFAULT_VALUE_SET: &str = "Default value set";

/// The value set a VariableLibrary is to have active in `environment`: the environment's own
/// when `settings.json` lists it in `valueSetsOrder`, else the default (as fabric-cicd does).
fn value_set_for(item: &RepoItem, environment: &str) -> String {
    let listed = item
        .part("settings.json")
        .and_then(|p| p.text())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|v| v.get("valueSetsOrder").cloned())
        .and_then(|v| v.as_array().cloned())
        .is_some_and(|sets| sets.iter().any(|s| s.as_str() == Some(environment)));
    if listed {
        environment.to_string()
    } else {
        DEFAULT_VALUE_SET.to_string()
    }
}

/// The address key of a library's active value set.
fn value_set_key(item_key: &str) -> String {
    format!("{item_key}#activeValueSet")
}

/// An item moved between workspace folders (paths `a/b`; `None` is the root).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderMove {
    /// Where it is.
    pub from: Option<String>,
    /// Where the repository has it.
    pub to: Option<String>,
    /// The id of the folder it is in, for the undo.
    #[serde(skip)]
    pub from_id: Option<String>,
}

fn show_folder(f: &Option<String>) -> String {
    f.as_deref()
        .map_or_else(|| "the workspace root".to_string(), |f| format!("/{f}"))
}

/// What [`PublishKind::render_deployed`] makes: parts of deployed items by index, their
/// shortcuts (wanted, present), and the parts of items not deployed yet.
type Rendered = (
    BTreeMap<usize, Vec<(String, Vec<u8>)>>,
    BTreeMap<usize, (Vec<serde_json::Value>, Vec<serde_json::Value>)>,
    Vec<(usize, Vec<(String, Vec<u8>)>)>,
);

/// What a publish read: the deployed items, and the workspace's id.
#[derive(Debug, Clone, Default)]
pub struct Live {
    items: Vec<LiveItem>,
    /// The workspace's folders: (`a/b`, id).
    folders: Vec<(String, String)>,
    /// The parts fabrik would send, for deployed items with a definition, by repository index.
    rendered: BTreeMap<usize, Vec<(String, Vec<u8>)>>,
    /// Repository items (by index) that are a deployed orphan (by index into `items`) renamed:
    /// same type, same parts but `.platform`.
    renames: BTreeMap<usize, usize>,
    /// The connections the caller can use (listed when a semantic model is to be bound).
    connections: Vec<serde_json::Value>,
    /// For deployed semantic models to be bound: the connections they are bound to.
    bound: BTreeMap<usize, Vec<serde_json::Value>>,
    /// For deployed lakehouses whose shortcuts are published: (wanted, deployed) shortcuts.
    shortcuts: BTreeMap<usize, (Vec<serde_json::Value>, Vec<serde_json::Value>)>,
}

/// The typed collection whose endpoint gives `t`'s `$items` properties, for the types that
/// have more than `$id`.
fn attrs_collection(t: &str) -> Option<&'static str> {
    Some(match t {
        "Lakehouse" => "lakehouses",
        "MirroredDatabase" => "mirroredDatabases",
        "Warehouse" => "warehouses",
        "SQLDatabase" => "sqlDatabases",
        "Eventhouse" => "eventhouses",
        _ => return None,
    })
}

/// Whether `properties` still wait for a SQL endpoint (read them again, waiting).
fn provisioning(properties: Option<&serde_json::Value>) -> bool {
    properties
        .and_then(|p| p.pointer("/sqlEndpointProperties/provisioningStatus"))
        .and_then(|s| s.as_str())
        .is_some_and(|s| s == "InProgress" || s == "Failed")
}

/// An item's `$items` properties as fabric-cicd reads them (`PROPERTY_PATH_ATTR_MAPPING`),
/// from its type's `properties`: a lakehouse's or mirrored database's
/// `sqlEndpointProperties`, a warehouse's `connectionString`, a SQL database's `serverFqdn`, an
/// eventhouse's `queryServiceUri`.
fn attrs_of(t: &str, id: String, p: &serde_json::Value) -> ItemAttrs {
    let text = |ptr: &str| p.pointer(ptr).and_then(|v| v.as_str()).map(str::to_string);
    let attrs = match t {
        "Lakehouse" | "MirroredDatabase" => ItemAttrs {
            sql_endpoint: text("/sqlEndpointProperties/connectionString"),
            sql_endpoint_id: text("/sqlEndpointProperties/id"),
            ..ItemAttrs::default()
        },
        "Warehouse" => ItemAttrs {
            sql_endpoint: text("/connectionString"),
            ..ItemAttrs::default()
        },
        "SQLDatabase" => ItemAttrs {
            sql_endpoint: text("/serverFqdn"),
            ..ItemAttrs::default()
        },
        _ => ItemAttrs {
            query_service_uri: text("/queryServiceUri"),
            ..ItemAttrs::default()
        },
    };
    ItemAttrs { id, ..attrs }
}

/// An item's `$items` properties from its type's endpoint ([`attrs_of`]), waiting while its
/// SQL endpoint is provisioned. `None` for types with only `$id`.
async fn typed_attrs(
    client: &fabrik_client::FabricClient,
    ws: &str,
    t: &str,
    n: &str,
    id: String,
) -> Result<Option<ItemAttrs>, EngineError> {
    let Some(collection) = attrs_collection(t) else {
        return Ok(None);
    };
    let p = client
        .provisioned_item_properties(ws, collection, &id)
        .await
        .map_err(ctx(format!("reading the properties of {t} {n}")))?
        .unwrap_or_default();
    Ok(Some(attrs_of(t, id, &p)))
}

/// The file a lakehouse's shortcuts are written in.
const SHORTCUTS_FILE: &str = "shortcuts.metadata.json";

/// A shortcut's identity: its path (without surrounding `/`) and name.
fn shortcut_id(v: &serde_json::Value) -> (String, String) {
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    (text("path").trim_matches('/').to_string(), text("name"))
}

/// A shortcut's target as the service keeps it: without `type` (the service derives it) and
/// OneLake's `artifactType`, paths without surrounding `/`.
fn shortcut_target(v: &serde_json::Value) -> serde_json::Value {
    let mut t = v.get("target").cloned().unwrap_or_default();
    if let Some(o) = t.as_object_mut() {
        o.remove("type");
        if let Some(ol) = o.get_mut("oneLake").and_then(|x| x.as_object_mut()) {
            ol.remove("artifactType");
            if let Some(p) = ol.get("path").and_then(|x| x.as_str()) {
                let p = p.trim_matches('/').to_string();
                ol.insert("path".into(), serde_json::Value::String(p));
            }
        }
    }
    t
}

/// What to put (new or changed) and delete to turn `have` into `want`; nothing is deleted
/// when `want` is empty (as fabric-cicd: an empty file leaves deployed shortcuts alone).
fn shortcut_changes<'a>(
    want: &'a [serde_json::Value],
    have: &'a [serde_json::Value],
) -> (Vec<&'a serde_json::Value>, Vec<&'a serde_json::Value>) {
    let puts = want
        .iter()
        .filter(|w| {
            !have.iter().any(|h| {
                shortcut_id(h) == shortcut_id(w) && shortcut_target(h) == shortcut_target(w)
            })
        })
        .collect();
    let deletes = if want.is_empty() {
        Vec::new()
    } else {
        have.iter()
            .filter(|h| !want.iter().any(|w| shortcut_id(w) == shortcut_id(h)))
            .collect()
    };
    (puts, deletes)
}

/// A publish change.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum PublishOp {
    /// Create the item (with its definition, or its creation payload for shell items).
    #[serde(rename_all = "camelCase")]
    Create {
        /// `Type:Name`.
        item: String,
        /// Its workspace folder.
        folder: Option<String>,
        /// Index into the repository's items.
        #[serde(skip)]
        index: usize,
    },
    /// Replace the deployed definition.
    #[serde(rename_all = "camelCase")]
    Update {
        /// `Type:Name`.
        item: String,
        /// Paths of the parts that differ.
        differs: Vec<String>,
        /// The folder move, when the item is in another folder than the repository says.
        #[serde(skip_serializing_if = "Option::is_none")]
        moved: Option<FolderMove>,
        /// The deployed name and description, when the repository renamed the item (found by
        /// its parts); the update renames it.
        #[serde(skip_serializing_if = "Option::is_none")]
        renamed_from: Option<(String, String)>,
        /// Deployed id.
        #[serde(skip)]
        id: String,
        /// Index into the repository's items.
        #[serde(skip)]
        index: usize,
        /// The deployed parts (base64), journaled for the undo.
        #[serde(skip)]
        previous: Vec<(String, String)>,
    },
    /// Activate a VariableLibrary's value set for the environment.
    #[serde(rename_all = "camelCase")]
    ValueSet {
        /// `Type:Name` of the library.
        item: String,
        /// The active value set now (`None` for a library this run creates).
        from: Option<String>,
        /// The one to activate.
        to: String,
    },
    /// Bring a lakehouse's shortcuts to what its `shortcuts.metadata.json` says.
    #[serde(rename_all = "camelCase")]
    Shortcuts {
        /// `Type:Name` of the lakehouse.
        item: String,
        /// Index into the repository's items.
        #[serde(skip)]
        index: usize,
        /// The deployed shortcuts, journaled for the undo.
        #[serde(skip)]
        previous: Vec<serde_json::Value>,
    },
    /// Bind a semantic model's data sources to the connections `semantic_model_binding` names.
    #[serde(rename_all = "camelCase")]
    Bind {
        /// `Type:Name` of the model.
        item: String,
        /// The connections to bind (as listed).
        #[serde(skip)]
        connections: Vec<serde_json::Value>,
        /// The connections bound before, journaled for the undo.
        #[serde(skip)]
        previous: Vec<serde_json::Value>,
    },
    /// Create or update the items of one batch with `bulkImportDefinitions` (bulk mode).
    #[serde(rename_all = "camelCase")]
    BulkImport {
        /// Its number, from 1.
        batch: usize,
        /// The items.
        items: Vec<BulkMember>,
    },
    /// An item created or updated by a bulk import (the change it waits for).
    #[serde(rename_all = "camelCase")]
    Imported {
        /// `Type:Name`.
        item: String,
        /// Created (else updated).
        created: bool,
    },
    /// Delete a folder `--unpublish` leaves empty (and that the repository does not have).
    #[serde(rename_all = "camelCase")]
    DeleteFolder {
        /// Its path, `a/b`.
        path: String,
        /// Its id.
        #[serde(skip)]
        id: String,
    },
    /// Delete an orphan (`--unpublish`).
    #[serde(rename_all = "camelCase")]
    Delete {
        /// `Type:Name`.
        item: String,
        /// Deployed id.
        #[serde(skip)]
        id: String,
    },
}

fn key(t: ItemType, name: &str) -> String {
    format!("{}:{name}", t.as_str())
}

impl PublishKind {
    /// Parts rendered from secrets, for the deployed record: the deployed parts the previous
    /// run rendered from them are learned (so journals keep references, not that run's
    /// values), and the parts `rendered` now (by repository index) are recorded.
    fn note_secrets<'a>(
        &self,
        cx: &ReadCx<'_>,
        live: &[LiveItem],
        rendered: impl Iterator<Item = (&'a usize, &'a Parts)>,
    ) {
        let address = |t: ItemType, n: &str| Address::new(&cx.desired.name, NAME, key(t, n));
        for l in live {
            let at = address(l.item_type, &l.name);
            for (path, bytes) in l.parts.iter().flatten() {
                if let Ok(text) = std::str::from_utf8(bytes) {
                    cx.deployed_part(&at, path, text);
                }
            }
        }
        for (&index, parts) in rendered {
            let r = &self.repo.items[index];
            let at = address(r.item_type, &r.display_name);
            for (path, bytes) in parts {
                if let Ok(text) = std::str::from_utf8(bytes) {
                    cx.rendered_part(&at, path, text);
                }
            }
        }
    }

    /// With `--refresh=false`: the deployed items (by index into `live`) whose rendered parts
    /// have the digest the deployed record keeps for them, each given those parts as its
    /// deployed definition, which is then not read.
    fn trust_record(
        &self,
        cx: &ReadCx<'_>,
        live: &mut [LiveItem],
        rendered: &BTreeMap<usize, Parts>,
    ) -> std::collections::BTreeSet<usize> {
        let mut trusted = std::collections::BTreeSet::new();
        for (&index, parts) in rendered {
            let r = &self.repo.items[index];
            let at = Address::new(&cx.desired.name, NAME, key(r.item_type, &r.display_name));
            let Some(digest) = cx.trusted_digest(&at) else {
                continue;
            };
            let found = live
                .iter()
                .position(|l| l.item_type == r.item_type && l.name == r.display_name);
            if let Some(l) = found
                && digest == crate::deployed::digest_of(parts)
            {
                live[l].parts = Some(parts.clone());
                trusted.insert(l);
            }
        }
        trusted
    }

    /// Records, for the next deployed record, the digest of each item's rendered parts — when
    /// the rendering is final: an item that mentions one this run creates is rendered with a
    /// placeholder for its id, and gets no digest (the next run reads it).
    fn note_digests<'a>(
        &self,
        cx: &ReadCx<'_>,
        rendered: impl Iterator<Item = (&'a usize, &'a Parts)>,
    ) {
        for (&index, parts) in rendered {
            let placeholder = parts.iter().any(|(_, bytes)| {
                let text = String::from_utf8_lossy(bytes);
                text.contains(pipeline::CREATED_BY_THIS_RUN)
                    || text.contains(pipeline::ONCE_CREATED)
            });
            if placeholder {
                continue;
            }
            let r = &self.repo.items[index];
            let at = Address::new(&cx.desired.name, NAME, key(r.item_type, &r.display_name));
            cx.rendered_digest(&at, crate::deployed::digest_of(parts));
        }
    }

    /// Renders every selected item against `world`: the parts of deployed items (to diff
    /// with what is deployed), the shortcuts wanted and present of deployed lakehouses, and the
    /// parts of items not deployed yet (`fresh`: created, or a rename's new name).
    async fn render_deployed(
        &self,
        cx: &ReadCx<'_>,
        ws: &str,
        world: &World<'_>,
        deployed: &(dyn Fn(&str, &str) -> Option<String> + Sync),
    ) -> Result<Rendered, EngineError> {
        let mut rendered = BTreeMap::new();
        let mut shortcuts = BTreeMap::new();
        let mut fresh = Vec::new();
        for (index, item) in self.repo.items.iter().enumerate() {
            let with_shortcuts = self.publishes_shortcuts(item);
            if !item.selected || (item.item_type.is_shell() && !with_shortcuts) {
                continue;
            }
            let parts = pipeline::render(&self.repo, item, &self.how, world)
                .map_err(EngineError::Invalid)?;
            let Some(id) = deployed(item.item_type.as_str(), &item.display_name) else {
                if !item.item_type.is_shell() {
                    fresh.push((index, parts));
                }
                continue;
            };
            if with_shortcuts {
                let want = self
                    .wanted_shortcuts(item, &parts, &id)
                    .map_err(EngineError::Invalid)?;
                let have: Vec<serde_json::Value> = cx
                    .client
                    .list_shortcuts(ws, &id)
                    .try_collect()
                    .await
                    .map_err(ctx(format!(
                        "listing the shortcuts of {}",
                        item.display_name
                    )))?;
                shortcuts.insert(index, (want, have));
            }
            if !item.item_type.is_shell() {
                rendered.insert(index, parts);
            }
        }
        Ok((rendered, shortcuts, fresh))
    }

    /// Publishes the selected items of `repo` rendered as `how` says; with `unpublish`, deletes
    /// deployed items of the repository's types that it does not hold (fabric-cicd's guards:
    /// data-bearing types only when their flag is on — not offered yet, so they are never
    /// deleted). Fails on a reference that cannot be resolved (a report bound by path to no
    /// model of the repository).
    pub fn new(
        repo: Arc<Repository>,
        how: Parameterization,
        unpublish: Unpublish,
    ) -> Result<Self, String> {
        let mut refs = Vec::with_capacity(repo.items.len());
        for item in &repo.items {
            let mut r = Vec::new();
            if item.selected {
                for o in pipeline::references(&repo, item, &how)? {
                    if let Some(i) = repo.items.iter().position(|x| std::ptr::eq(x, o))
                        && repo.items[i].selected
                    {
                        r.push(i);
                    }
                }
            }
            refs.push(r);
        }
        let read_by_parameters = pipeline::items_read_by_parameters(&repo, &how);
        let mut bindings = BTreeMap::new();
        if let Some(p) = &how.parameters {
            for (index, item) in repo.items.iter().enumerate() {
                if item.selected && item.item_type == ItemType::SemanticModel {
                    let b = p.semantic_model_bindings(&how.environment, &[&item.display_name]);
                    if let Some((_, ids)) = b.into_iter().next() {
                        bindings.insert(index, ids);
                    }
                }
            }
        }
        Ok(Self {
            repo,
            how,
            unpublish,
            refs,
            read_by_parameters,
            bindings,
            workspaces: Arc::default(),
            pools: Arc::default(),
        })
    }

    fn needs(&self, ws: &str, index: usize) -> impl Iterator<Item = Need> + '_ {
        let ws = ws.to_string();
        self.refs[index].iter().map(move |&o| {
            let o = &self.repo.items[o];
            Need::At(Address::new(&ws, NAME, key(o.item_type, &o.display_name)))
        })
    }

    /// The `$items` properties (see [`typed_attrs`]) of the deployed items in `which`.
    async fn attrs(
        &self,
        client: &fabrik_client::FabricClient,
        ws: &str,
        id_of: &(dyn Fn(&str, &str) -> Option<String> + Sync),
        which: &std::collections::BTreeSet<(String, String)>,
    ) -> Result<BTreeMap<(String, String), ItemAttrs>, EngineError> {
        let mut out = BTreeMap::new();
        // Each type's collection is listed once, with every item's properties; an item the
        // list shows still provisioning is read again on its own, waiting.
        let mut listed: BTreeMap<&str, BTreeMap<String, serde_json::Value>> = BTreeMap::new();
        for (t, n) in which {
            let Some(id) = id_of(t, n) else { continue };
            let Some(collection) = attrs_collection(t) else {
                continue;
            };
            if !listed.contains_key(collection) {
                let items: Vec<fabrik_client::models::Item> = client
                    .list_typed(ws, collection)
                    .try_collect()
                    .await
                    .map_err(ctx(format!("listing the workspace's {collection}")))?;
                let by_id = items
                    .into_iter()
                    .map(|i| (i.id, i.properties.unwrap_or_default()))
                    .collect();
                listed.insert(collection, by_id);
            }
            let attrs = match listed[collection].get(&id) {
                Some(p) if !provisioning(Some(p)) => Some(attrs_of(t, id, p)),
                _ => typed_attrs(client, ws, t, n, id).await?,
            };
            if let Some(attrs) = attrs {
                out.insert((t.clone(), n.clone()), attrs);
            }
        }
        Ok(out)
    }

    /// The query URIs of the KQL databases `names` (deployed ones read from the service; in a
    /// plan, a placeholder for one of the repository this run creates).
    async fn kql_uris(
        &self,
        client: &fabrik_client::FabricClient,
        ws: &str,
        names: Vec<String>,
        id_of: &(dyn Fn(&str, &str) -> Option<String> + Sync),
        planning: bool,
    ) -> Result<BTreeMap<String, String>, EngineError> {
        let mut out = BTreeMap::new();
        for name in names {
            match id_of("KQLDatabase", &name) {
                Some(id) => {
                    let p = client
                        .item_properties(ws, "kqlDatabases", &id)
                        .await
                        .map_err(ctx(format!("reading KQL database {name}")))?;
                    let uri = p
                        .as_ref()
                        .and_then(|p| p.get("queryServiceUri"))
                        .and_then(|u| u.as_str())
                        .filter(|u| !u.is_empty());
                    if let Some(uri) = uri {
                        out.insert(name, uri.to_string());
                    }
                }
                None if planning
                    && self
                        .repo
                        .find(ItemType::KQLDatabase, &name)
                        .is_some_and(|d| d.selected) =>
                {
                    let later = format!(
                        "<queryServiceUri of KQL database {name}{}",
                        pipeline::ONCE_CREATED
                    );
                    out.insert(name, later);
                }
                None => {}
            }
        }
        Ok(out)
    }

    /// The items of other workspaces `$workspace.<name>.$items…` variables name, with their
    /// properties; one that does not exist is left out (rendering then names it).
    async fn other_items(
        &self,
        client: &fabrik_client::FabricClient,
        which: std::collections::BTreeSet<(String, String, String)>,
    ) -> Result<BTreeMap<(String, String, String), ItemAttrs>, EngineError> {
        let mut out = BTreeMap::new();
        if which.is_empty() {
            return Ok(out);
        }
        let workspaces = self.workspaces(client).await?;
        let mut listed: BTreeMap<String, Vec<fabrik_client::models::Item>> = BTreeMap::new();
        for (w, t, n) in which {
            let Some(wid) = workspaces.get(&w) else {
                continue;
            };
            if !listed.contains_key(wid) {
                let items: Vec<_> = client
                    .list_items(wid, &fabrik_client::ItemFilter::default())
                    .try_collect()
                    .await
                    .map_err(ctx(format!("listing the items of workspace {w}")))?;
                listed.insert(wid.clone(), items);
            }
            let found = listed[wid]
                .iter()
                .find(|i| i.kind.as_str() == t && i.display_name == n)
                .map(|i| i.id.clone());
            let Some(id) = found else { continue };
            let attrs = typed_attrs(client, wid, &t, &n, id.clone())
                .await?
                .unwrap_or(ItemAttrs {
                    id,
                    ..ItemAttrs::default()
                });
            out.insert((w, t, n), attrs);
        }
        Ok(out)
    }

    async fn pools(
        &self,
        client: &fabrik_client::FabricClient,
        ws: &str,
    ) -> Result<Vec<fabrik_client::models::SparkPool>, EngineError> {
        if !pipeline::needs_pools(&self.repo, &self.how) {
            return Ok(Vec::new());
        }
        let list = || async {
            client
                .list_spark_pools(ws)
                .try_collect::<Vec<_>>()
                .await
                .map_err(ctx("listing the workspace's Spark pools"))
        };
        let (of, pools) = self
            .pools
            .get_or_try_init(|| async { Ok::<_, EngineError>((ws.to_string(), list().await?)) })
            .await?;
        // Kept for the workspace it was listed for.
        if of == ws {
            Ok(pools.clone())
        } else {
            list().await
        }
    }

    async fn workspaces(
        &self,
        client: &fabrik_client::FabricClient,
    ) -> Result<BTreeMap<String, String>, EngineError> {
        if self.how.parameters.is_none() {
            return Ok(BTreeMap::new());
        }
        self.workspaces
            .get_or_try_init(|| async {
                let all: Vec<_> = client
                    .list_workspaces()
                    .try_collect()
                    .await
                    .map_err(ctx("listing workspaces for `$workspace.<name>` variables"))?;
                Ok(all.into_iter().map(|w| (w.display_name, w.id)).collect())
            })
            .await
            .cloned()
    }

    /// The connections (listed once) and, for deployed models to be bound, what they are bound
    /// to. A connection `semantic_model_binding` names that the caller cannot see is an error
    /// here, before any write (fabric-cicd logs it and goes on).
    async fn read_bindings(
        &self,
        cx: &ReadCx<'_>,
        ws: &str,
        ids: &BTreeMap<(String, String), String>,
    ) -> Result<
        (
            Vec<serde_json::Value>,
            BTreeMap<usize, Vec<serde_json::Value>>,
        ),
        EngineError,
    > {
        if self.bindings.is_empty() {
            return Ok((Vec::new(), BTreeMap::new()));
        }
        let connections: Vec<serde_json::Value> = cx
            .client
            .list_connections()
            .try_collect()
            .await
            .map_err(ctx("listing connections for semantic_model_binding"))?;
        let mut bound = BTreeMap::new();
        for (&index, wanted) in &self.bindings {
            let model = &self.repo.items[index];
            for id in wanted {
                if !connections.iter().any(|c| c["id"].as_str() == Some(id)) {
                    return Err(EngineError::Invalid(format!(
                        "semantic_model_binding: connection {id} (for semantic model {}) is not a connection this identity can use",
                        model.display_name
                    )));
                }
            }
            let key = ("SemanticModel".to_string(), model.display_name.clone());
            if let Some(id) = ids.get(&key) {
                let now: Vec<serde_json::Value> = cx
                    .client
                    .item_connections(ws, id)
                    .try_collect()
                    .await
                    .map_err(ctx(format!(
                        "reading the connections of {}",
                        model.display_name
                    )))?;
                bound.insert(index, now);
            }
        }
        Ok((connections, bound))
    }

    /// Which new repository items are deployed orphans renamed: an orphan of the same type
    /// whose parts, `.platform` aside, are the item's rendered parts. Each orphan serves once.
    fn renames(&self, items: &[LiveItem], fresh: &[(usize, Parts)]) -> BTreeMap<usize, usize> {
        let body = |parts: &[(String, Vec<u8>)]| {
            let mut v: Vec<&(String, Vec<u8>)> =
                parts.iter().filter(|(p, _)| p != ".platform").collect();
            v.sort();
            v.into_iter().cloned().collect::<Vec<_>>()
        };
        let mut out = BTreeMap::new();
        for (index, parts) in fresh {
            let r = &self.repo.items[*index];
            let want = body(parts);
            let source = items.iter().enumerate().find(|(l, o)| {
                o.item_type == r.item_type
                    && self.repo.find(o.item_type, &o.name).is_none()
                    && !out.values().any(|used| used == l)
                    && o.parts.as_deref().is_some_and(|have| body(have) == want)
            });
            if let Some((l, _)) = source {
                out.insert(*index, l);
            }
        }
        out
    }

    /// Whether `item` is a lakehouse whose shortcuts this publish brings in.
    fn publishes_shortcuts(&self, item: &RepoItem) -> bool {
        self.how.shortcuts.is_some()
            && item.selected
            && item.item_type == ItemType::Lakehouse
            && item.part(SHORTCUTS_FILE).is_some()
    }

    /// The shortcuts the rendered `shortcuts.metadata.json` gives the lakehouse `own_id`:
    /// excluded names left out, a zero OneLake `itemId` made the lakehouse's own (as
    /// fabric-cicd does).
    fn wanted_shortcuts(
        &self,
        item: &RepoItem,
        parts: &[(String, Vec<u8>)],
        own_id: &str,
    ) -> Result<Vec<serde_json::Value>, String> {
        let Some((_, bytes)) = parts.iter().find(|(p, _)| p == SHORTCUTS_FILE) else {
            return Ok(Vec::new());
        };
        let list: Vec<serde_json::Value> = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "{}/{SHORTCUTS_FILE}: not a JSON list of shortcuts: {e}",
                item.dir
            )
        })?;
        let exclude = self.how.shortcuts.as_ref().and_then(|r| r.exclude.as_ref());
        Ok(list
            .into_iter()
            .filter(|v| !exclude.is_some_and(|re| re.is_match(&shortcut_id(v).1)))
            .map(|mut v| {
                if let Some(ol) = v.pointer_mut("/target/oneLake")
                    && ol.get("itemId").and_then(|x| x.as_str()) == Some(ZERO)
                {
                    ol["itemId"] = serde_json::Value::String(own_id.to_string());
                }
                v
            })
            .collect())
    }

    /// Puts and deletes shortcuts of the lakehouse `id` until it has `want`; each change is
    /// journaled first with the shortcut it replaces.
    async fn sync_shortcuts(
        &self,
        cx: &ApplyCx<'_>,
        ws: &str,
        id: &str,
        want: &[serde_json::Value],
        previous: &[serde_json::Value],
    ) -> Result<(), EngineError> {
        let (puts, deletes) = shortcut_changes(want, previous);
        let undo = |v: &serde_json::Value| {
            let (path, name) = shortcut_id(v);
            let before = previous
                .iter()
                .find(|p| shortcut_id(p) == (path.clone(), name.clone()));
            ItemUndo::RestoreShortcut {
                workspace_id: ws.to_string(),
                item_id: id.to_string(),
                path,
                name,
                previous: before.map(|b| b.to_string()),
            }
            .record()
        };
        let what = |v: &serde_json::Value| {
            let (path, name) = shortcut_id(v);
            format!("shortcut {path}/{name} of {}", cx.target)
        };
        for v in puts {
            cx.track(
                ResourceRef::in_workspace(ResourceKind::Item, ws, id, Some(what(v))),
                undo(v),
            )
            .await?;
            match cx.client.put_shortcut(ws, id, v).await {
                Ok(()) => {}
                Err(e)
                    if self
                        .how
                        .shortcuts
                        .as_ref()
                        .is_some_and(|o| o.continue_on_failure) =>
                {
                    // fabric-cicd's continue_on_shortcut_failure: reported, and the run goes on.
                    tracing::warn!(error = %e, "publishing {} failed; going on", what(v));
                }
                Err(e) => return Err(cx.fabric(&format!("publishing {}", what(v)))(e)),
            }
        }
        for v in deletes {
            cx.track(
                ResourceRef::in_workspace(ResourceKind::Item, ws, id, Some(what(v))),
                undo(v),
            )
            .await?;
            let (path, name) = shortcut_id(v);
            match cx.client.delete_shortcut(ws, id, &path, &name).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(cx.fabric(&format!("deleting {}", what(v)))(e)),
            }
        }
        Ok(())
    }

    /// Plans deleting the folders that hold nothing once the planned orphans are gone and
    /// that the repository does not have (as fabric-cicd's unpublish does), deepest first.
    fn empty_folders(&self, ws: &str, live: &Live, d: &mut Diff<PublishOp>) {
        let deleted: Vec<(String, String)> = d
            .changes
            .iter()
            .filter_map(|c| match &c.op {
                PublishOp::Delete { id, .. } => Some((id.clone(), c.key.clone())),
                _ => None,
            })
            .collect();
        let mut kept: std::collections::BTreeSet<String> = self
            .repo
            .folders
            .iter()
            .map(|f| f.trim_start_matches('/').to_string())
            .collect();
        for l in &live.items {
            if !deleted.iter().any(|(id, _)| *id == l.id)
                && let Some((path, _)) = &l.folder
            {
                kept.insert(path.clone());
            }
        }
        // A kept folder keeps its parents.
        for f in kept.clone() {
            let mut p = f.as_str();
            while let Some((parent, _)) = p.rsplit_once('/') {
                kept.insert(parent.to_string());
                p = parent;
            }
        }
        let mut gone: Vec<&(String, String)> = live
            .folders
            .iter()
            .filter(|(p, _)| !kept.contains(p))
            .collect();
        gone.sort_by_key(|(p, _)| std::cmp::Reverse(p.matches('/').count()));
        for (path, id) in gone {
            let mut needs: Vec<Need> = live
                .items
                .iter()
                .filter(|l| l.folder.as_ref().is_some_and(|(p, _)| p == path))
                .filter_map(|l| deleted.iter().find(|(id, _)| *id == l.id))
                .map(|(_, key)| Need::At(Address::new(ws, NAME, key)))
                .collect();
            needs.extend(
                live.folders
                    .iter()
                    .filter(|(p, _)| p.rsplit_once('/').is_some_and(|(parent, _)| parent == path))
                    .map(|(p, _)| Need::At(Address::new(ws, NAME, format!("folder:{p}")))),
            );
            d.changes.push(Planned {
                action: Action::Delete,
                key: format!("folder:{path}"),
                target: format!("folder {path}"),
                detail: Some("empty once the orphans are gone".into()),
                needs,
                op: PublishOp::DeleteFolder {
                    path: path.clone(),
                    id: id.clone(),
                },
            });
        }
    }

    /// What fabric-cicd does once an item's definition is in: an Environment's staged
    /// definition is published. The change does not wait for the publish (minutes on the
    /// service): what mentions the environment needs only its id. The run waits for it once
    /// its changes are done, as fabric-cicd checks its environments at the end; a failed
    /// publish fails the run, which rolls back.
    async fn after_definition(
        &self,
        cx: &ApplyCx<'_>,
        ws: &str,
        r: &RepoItem,
        id: &str,
    ) -> Result<(), EngineError> {
        if r.item_type == ItemType::Environment {
            let what = format!("publishing environment {}", r.display_name);
            let started = cx
                .client
                .start_environment_publish(ws, id)
                .await
                .map_err(cx.fabric(&what))?;
            if let Some(op) = started {
                cx.wait_later(&what, op);
            }
        }
        Ok(())
    }

    /// Moves a deployed item to the folder the repository has it in; the undo moves it back.
    async fn move_item(
        &self,
        cx: &ApplyCx<'_>,
        ws: &str,
        id: &str,
        name: &str,
        m: &FolderMove,
    ) -> Result<(), EngineError> {
        let to = match &m.to {
            Some(f) => Some(
                cx.id_of(folder::NAME, f)
                    .ok_or_else(|| EngineError::Unresolved {
                        target: cx.target.to_string(),
                        missing: format!("folder {f}"),
                    })?,
            ),
            None => None,
        };
        cx.track(
            ResourceRef::in_workspace(ResourceKind::Item, ws, id, Some(name.to_string())),
            ItemUndo::Move {
                workspace_id: ws.to_string(),
                item_id: id.to_string(),
                folder_id: m.from_id.clone(),
            }
            .record(),
        )
        .await?;
        cx.client
            .move_item(ws, id, to.as_deref())
            .await
            .map_err(cx.fabric(&format!("moving {} to {}", cx.target, show_folder(&m.to))))
    }

    /// The parts to send, rendered with the ids this run knows (deployed or just created).
    async fn render_now(
        &self,
        r: &RepoItem,
        cx: &ApplyCx<'_>,
        ws: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, EngineError> {
        let id_of = |t: &str, n: &str| cx.id_of(NAME, &format!("{t}:{n}"));
        let attrs = self
            .attrs(
                cx.client,
                ws,
                &id_of,
                &pipeline::items_read_by(r, &self.how),
            )
            .await?;
        let pools = if r.item_type == ItemType::Environment {
            self.pools(cx.client, ws).await?
        } else {
            Vec::new()
        };
        let workspaces = self.workspaces(cx.client).await?;
        let other = self
            .other_items(cx.client, pipeline::other_workspace_items(r, &self.how))
            .await?;
        let kql_uris = self
            .kql_uris(
                cx.client,
                ws,
                pipeline::kql_databases(&self.repo, r),
                &id_of,
                false,
            )
            .await?;
        let world = World {
            workspace_id: ws,
            workspace_name: cx.workspace,
            ids: &id_of,
            attrs: &attrs,
            pools: &pools,
            workspaces: &workspaces,
            other: &other,
            kql_uris: &kql_uris,
            planning: false,
        };
        let parts =
            pipeline::render(&self.repo, r, &self.how, &world).map_err(EngineError::Invalid)?;
        if !r.item_type.is_shell() {
            // What is about to be deployed: the next run's `--refresh=false` trusts it.
            let digest = crate::deployed::digest_of(&parts);
            cx.sent_definition(NAME, &key(r.item_type, &r.display_name), digest);
        }
        Ok(parts)
    }
}

fn definition(item: &RepoItem, parts: &[(String, Vec<u8>)]) -> ItemDefinition {
    ItemDefinition {
        format: item.definition_format().map(str::to_string),
        parts: parts
            .iter()
            .map(|(path, bytes)| DefinitionPart {
                path: path.clone(),
                payload: base64::engine::general_purpose::STANDARD.encode(bytes),
                payload_type: PayloadType::InlineBase64,
            })
            .collect(),
    }
}

/// What of a `.platform` part a deployment carries: the item's type, name and description. The
/// service rewrites the rest (formatting, its own logicalId), so bytes would always differ.
fn platform_metadata(bytes: &[u8]) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let m = v.get("metadata")?;
    let text = |k: &str| {
        m.get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    // An absent description and an empty one are the same deployment.
    Some(serde_json::json!([
        text("type"),
        text("displayName"),
        text("description")
    ]))
}

fn same_part(path: &str, want: &[u8], have: &[u8]) -> bool {
    want == have
        || (path == ".platform"
            && platform_metadata(want).is_some()
            && platform_metadata(want) == platform_metadata(have))
}

impl PublishOp {
    /// Whether it creates or updates an Environment, whose publish it then starts: the
    /// longest wait of a run, started before the other changes ready with it.
    fn starts_environment_publish(&self) -> bool {
        let env = |item: &str| {
            item.split_once(':')
                .is_some_and(|(t, _)| t == ItemType::Environment.as_str())
        };
        match self {
            PublishOp::Create { item, .. } | PublishOp::Update { item, .. } => env(item),
            _ => false,
        }
    }
}

/// Paths whose content differs; `.platform` only when both sides have it (the service may not
/// return it) and then by its metadata.
fn differing(want: &[(String, Vec<u8>)], have: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut out: Vec<String> = want
        .iter()
        .filter(|(p, _)| p != ".platform" || have.iter().any(|(h, _)| h == p))
        .filter(|(p, b)| !have.iter().any(|(h, hb)| h == p && same_part(p, b, hb)))
        .map(|(p, _)| p.clone())
        .collect();
    out.extend(
        have.iter()
            .filter(|(p, _)| p != ".platform" && !want.iter().any(|(w, _)| w == p))
            .map(|(p, _)| p.clone()),
    );
    out
}

#[async_trait]
impl Kind for PublishKind {
    type Live = Live;
    type Op = PublishOp;

    fn name(&self) -> &'static str {
        NAME
    }

    fn resource_kind(&self) -> ResourceKind {
        ResourceKind::Item
    }

    async fn read(&self, cx: &ReadCx<'_>) -> Result<Live, EngineError> {
        let Some(ws) = cx.workspace_id() else {
            // A workspace this run creates: nothing deployed, but the connections to bind to
            // are checked now all the same.
            let (connections, _) = self.read_bindings(cx, "", &BTreeMap::new()).await?;
            return Ok(Live {
                connections,
                ..Live::default()
            });
        };
        let folders: BTreeMap<String, String> = cx
            .folder_paths()
            .await?
            .into_iter()
            .map(|(path, id)| (id, path))
            .collect();
        let mut items = self.live_items(cx, &folders).await?;
        let ids: BTreeMap<(String, String), String> = items
            .iter()
            .map(|l| {
                (
                    (l.item_type.as_str().to_string(), l.name.clone()),
                    l.id.clone(),
                )
            })
            .collect();
        let deployed = |t: &str, n: &str| ids.get(&(t.to_string(), n.to_string())).cloned();
        // What rendering needs is read while the definitions' operations run. With
        // `--refresh=false` definitions are read once the parts are rendered (below): only
        // those whose rendering is not the one the deployed record says was deployed.
        let definitions = async {
            if cx.trusts_record() {
                return Ok(());
            }
            self.read_definitions(cx, ws, &mut items, &Default::default())
                .await
        };
        let around = async {
            let attrs = self
                .attrs(cx.client, ws, &deployed, &self.read_by_parameters)
                .await?;
            let pools = self.pools(cx.client, ws).await?;
            let workspaces = self.workspaces(cx.client).await?;
            Ok::<_, EngineError>((attrs, pools, workspaces))
        };
        let (read, around) = futures::join!(definitions, around);
        read?;
        let (attrs, pools, workspaces) = around?;
        // An item this run creates has no id yet: a placeholder stands for it, so a deployed item
        // that mentions it differs, and every part is rendered (and checked) before any write.
        let planned = |t: &str, n: &str| {
            deployed(t, n).or_else(|| {
                let found = self.repo.find(t.parse().ok()?, n).filter(|r| r.selected);
                found.map(|_| format!("<id of {t} {n}{}", pipeline::CREATED_BY_THIS_RUN))
            })
        };
        let other_which = self
            .repo
            .selected()
            .flat_map(|i| pipeline::other_workspace_items(i, &self.how))
            .collect();
        let other = self.other_items(cx.client, other_which).await?;
        let kql_names: Vec<String> = self
            .repo
            .selected()
            .flat_map(|i| pipeline::kql_databases(&self.repo, i))
            .collect();
        let kql_uris = self
            .kql_uris(cx.client, ws, kql_names, &deployed, true)
            .await?;
        let world = World {
            workspace_id: ws,
            workspace_name: &cx.desired.name,
            ids: &planned,
            attrs: &attrs,
            pools: &pools,
            workspaces: &workspaces,
            other: &other,
            kql_uris: &kql_uris,
            planning: true,
        };
        let (mut rendered, shortcuts, fresh) =
            self.render_deployed(cx, ws, &world, &deployed).await?;
        if cx.trusts_record() {
            let trusted = self.trust_record(cx, &mut items, &rendered);
            self.read_definitions(cx, ws, &mut items, &trusted).await?;
        }
        self.note_digests(cx, rendered.iter().chain(fresh.iter().map(|(i, p)| (i, p))));
        self.note_secrets(
            cx,
            &items,
            rendered.iter().chain(fresh.iter().map(|(i, p)| (i, p))),
        );
        let renames = self.renames(&items, &fresh);
        for (&index, &l) in &renames {
            // Items that mention the renamed one find it under its new name.
            let r = &self.repo.items[index];
            cx.know(
                Address::new(&cx.desired.name, NAME, key(r.item_type, &r.display_name)),
                items[l].id.clone(),
            );
        }
        rendered.extend(fresh.into_iter().filter(|(i, _)| renames.contains_key(i)));
        let folders = folders.into_iter().map(|(id, path)| (path, id)).collect();
        let (connections, bound) = self.read_bindings(cx, ws, &ids).await?;
        Ok(Live {
            items,
            folders,
            rendered,
            renames,
            connections,
            bound,
            shortcuts,
        })
    }

    fn diff(&self, desired: &DesiredWorkspace, live: &Live, _: &DiffCx) -> Diff<PublishOp> {
        let ws = &desired.name;
        let deployed: BTreeMap<String, &LiveItem> = live
            .items
            .iter()
            .map(|l| (key(l.item_type, &l.name), l))
            .collect();
        let mut d = Diff::default();
        // Plan order is the walk's tie-break among changes ready together: fabric-cicd's type
        // order (its §2.1), then the repository's order within a type.
        let mut order: Vec<usize> = (0..self.repo.items.len())
            .filter(|&i| self.repo.items[i].selected)
            .collect();
        order.sort_by_key(|&i| self.repo.items[i].item_type.facts().order);
        for index in order {
            let item = &self.repo.items[index];
            let slot = Slot {
                ws,
                index,
                item,
                k: key(item.item_type, &item.display_name),
                target: format!(
                    "{} {}",
                    item.item_type.as_str().to_lowercase(),
                    item.display_name
                ),
                folder: item
                    .folder
                    .as_deref()
                    .map(|f| f.trim_start_matches('/').to_string()),
            };
            self.plan_value_set(&slot, deployed.get(&slot.k).copied(), &mut d);
            self.plan_shortcuts(&slot, live, &mut d);
            self.plan_bind(&slot, live, &mut d);
            // A renamed item is updated under its new name, keeping its id.
            let found = deployed
                .get(&slot.k)
                .copied()
                .or_else(|| live.renames.get(&index).map(|&l| &live.items[l]));
            self.plan_item(slot, found, live, &mut d);
        }
        self.plan_orphans(live, &mut d);
        if self.unpublish.enabled {
            self.empty_folders(ws, live, &mut d);
        }
        if self.how.bulk {
            self.batch(ws, &mut d);
        }
        d
    }

    fn starts_early(&self, op: &PublishOp) -> bool {
        op.starts_environment_publish()
    }

    async fn apply(&self, op: &PublishOp, cx: &ApplyCx<'_>) -> Result<Outcome, EngineError> {
        let ws = cx.workspace_id()?;
        match op {
            PublishOp::Create {
                item,
                folder,
                index,
            } => self.apply_create(cx, &ws, item, folder, *index).await,
            PublishOp::Update {
                id,
                index,
                previous,
                differs,
                moved,
                renamed_from,
                ..
            } => {
                let change = UpdateChange {
                    id,
                    index: *index,
                    previous,
                    differs,
                    moved: moved.as_ref(),
                    renamed_from: renamed_from.as_ref(),
                };
                self.apply_update(cx, &ws, change).await
            }
            PublishOp::ValueSet { item, from, to } => {
                self.apply_value_set(cx, &ws, item, from, to).await
            }
            PublishOp::Shortcuts {
                item,
                index,
                previous,
            } => {
                let r = &self.repo.items[*index];
                let id = self.id_in_run(cx, item)?;
                let parts = self.render_now(r, cx, &ws).await?;
                let want = self
                    .wanted_shortcuts(r, &parts, &id)
                    .map_err(EngineError::Invalid)?;
                self.sync_shortcuts(cx, &ws, &id, &want, previous).await?;
                Ok(Outcome::Updated)
            }
            PublishOp::Bind {
                item,
                connections,
                previous,
            } => self.apply_bind(cx, &ws, item, connections, previous).await,
            PublishOp::BulkImport { items, .. } => self.apply_bulk(cx, &ws, items).await,
            PublishOp::Imported { item, created } => {
                // The batch it waits for made or updated it; it only has to have an id now.
                self.id_in_run(cx, item)?;
                Ok(if *created {
                    Outcome::Created
                } else {
                    Outcome::Updated
                })
            }
            PublishOp::DeleteFolder { id, path } => {
                cx.track_without_undo(ResourceRef::in_workspace(
                    ResourceKind::Folder,
                    &ws,
                    id,
                    Some(path.clone()),
                ))
                .await?;
                match cx.client.delete_folder(&ws, id).await {
                    Ok(()) => Ok(Outcome::Deleted),
                    Err(e) if e.is_not_found() => Ok(Outcome::Deleted),
                    Err(e) => Err(ctx(format!("deleting folder /{path} in {}", cx.workspace))(
                        e,
                    )),
                }
            }
            PublishOp::Delete { id, .. } => {
                cx.track_without_undo(ResourceRef::in_workspace(ResourceKind::Item, &ws, id, None))
                    .await?;
                match cx.client.delete_item(&ws, id).await {
                    Ok(()) => Ok(Outcome::Deleted),
                    Err(e) if e.is_not_found() => Ok(Outcome::Deleted),
                    Err(e) => Err(ctx(format!(
                        "unpublishing {} in {}",
                        cx.target, cx.workspace
                    ))(e)),
                }
            }
        }
    }
}

/// The repositories the workspaces of a config publish (`repository:`), one publish per
/// workspace, planned and applied with the rest of the config.
#[derive(Debug, Clone, Default)]
pub struct ContentKind {
    by_workspace: BTreeMap<String, PublishKind>,
}

impl ContentKind {
    /// The publishes `desired` asks for (`None` when no workspace has a repository): the
    /// repositories read when the config was loaded, or (a `Desired` built without them) read
    /// now.
    pub fn for_desired(desired: &Desired) -> Result<Option<Self>, EngineError> {
        let mut by_workspace = BTreeMap::new();
        for ws in &desired.workspaces {
            let Some(p) = &ws.publish else { continue };
            // Read when the config was loaded: taken as it is, so a run reads it once.
            let loaded = p
                .loaded
                .as_ref()
                .and_then(|l| l.0.downcast_ref::<super::reader::LoadedRepo>());
            let (repo, how) = match loaded {
                Some(l) => (Arc::clone(&l.repo), l.how.clone()),
                None => {
                    let args = super::reader::args(
                        &p.repository,
                        p.parameter.as_deref(),
                        p.item_types.as_deref().unwrap_or_default(),
                    );
                    let invalid = |problems: Vec<crate::config::Problem>| {
                        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                        EngineError::Invalid(text.concat())
                    };
                    let read = super::reader::read_for_config(&args, &desired.environment);
                    let Some(r) = read.map_err(invalid)? else {
                        continue;
                    };
                    (Arc::new(r.repo), r.how)
                }
            };
            let kind =
                PublishKind::new(repo, how, Unpublish::default()).map_err(EngineError::Invalid)?;
            by_workspace.insert(ws.name.clone(), kind);
        }
        Ok((!by_workspace.is_empty()).then_some(Self { by_workspace }))
    }
}

#[async_trait]
impl Kind for ContentKind {
    type Live = Option<Live>;
    type Op = PublishOp;

    fn name(&self) -> &'static str {
        NAME
    }

    fn resource_kind(&self) -> ResourceKind {
        ResourceKind::Item
    }

    async fn read(&self, cx: &ReadCx<'_>) -> Result<Option<Live>, EngineError> {
        match self.by_workspace.get(&cx.desired.name) {
            Some(k) => k.read(cx).await.map(Some),
            None => Ok(None),
        }
    }

    fn diff(
        &self,
        desired: &DesiredWorkspace,
        live: &Option<Live>,
        cx: &DiffCx,
    ) -> Diff<PublishOp> {
        match (self.by_workspace.get(&desired.name), live) {
            (Some(k), Some(l)) => k.diff(desired, l, cx),
            _ => Diff::default(),
        }
    }

    fn starts_early(&self, op: &PublishOp) -> bool {
        op.starts_environment_publish()
    }

    async fn apply(&self, op: &PublishOp, cx: &ApplyCx<'_>) -> Result<Outcome, EngineError> {
        let k = self
            .by_workspace
            .get(cx.workspace)
            .ok_or_else(|| EngineError::Invalid(format!("{}: no repository", cx.workspace)))?;
        k.apply(op, cx).await
    }
}

/// Plans publishing `repo` into the workspace `workspace_id`: its folders, then its items.
/// Returns the desired state (for the run's journal) and the plan.
pub async fn plan(
    client: &fabrik_client::FabricClient,
    repo: Arc<Repository>,
    how: Parameterization,
    workspace_id: &str,
    unpublish: Unpublish,
    concurrency: usize,
) -> Result<(Desired, Plan), EngineError> {
    let environment = how.environment.clone();
    let kind = PublishKind::new(Arc::clone(&repo), how, unpublish).map_err(EngineError::Invalid)?;
    let ws = client
        .get_workspace(workspace_id)
        .await
        .map_err(ctx(format!("reading workspace {workspace_id}")))?;
    let desired = Desired {
        environment,
        workspaces: vec![DesiredWorkspace {
            name: ws.display_name.clone(),
            description: ws.description.clone(),
            capacity: None,
            folders: repo
                .folders
                .iter()
                .map(|f| f.trim_start_matches('/').to_string())
                .collect(),
            items: vec![],
            principals: vec![],
            git: None,
            publish: None,
            sections: Default::default(),
        }],
        features: Default::default(),
        hash: format!("publish {}", repo.root.display()),
    };
    let registry = Registry::empty().with(folder::FolderKind).with(kind);
    let plan = crate::engine::plan_kinds(client, &desired, &registry, concurrency, false).await?;
    Ok((desired, plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_parts_compare_by_type_name_and_description() {
        let sent = br#"{"metadata": {"type": "Notebook", "displayName": "Utils"}, "config": {"logicalId": "b0ba6349-06e8-4d0c-a9c5-1a11372d5805"}}"#;
        let deployed = br#"{"config": {"logicalId": "3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c07", "version": "2.0"}, "metadata": {"description": "", "displayName": "Utils", "type": "Notebook"}}"#;
        let want = vec![
            (".platform".to_string(), sent.to_vec()),
            ("a.py".to_string(), b"x".to_vec()),
        ];
        let have = vec![
            (".platform".to_string(), deployed.to_vec()),
            ("a.py".to_string(), b"x".to_vec()),
        ];
        assert_eq!(differing(&want, &have), Vec::<String>::new());
        let renamed = br#"{"metadata": {"type": "Notebook", "displayName": "Other"}}"#;
        let want = vec![(".platform".to_string(), renamed.to_vec())];
        assert_eq!(
            differing(&want, &have),
            vec![".platform".to_string(), "a.py".to_string()]
        );
    }
}
