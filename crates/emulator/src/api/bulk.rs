//! `POST /items/bulkImportDefinitions` (beta): a whole git-format tree in one request.
//!
//! Each part's path is workspace-absolute, `/<folders>/<Item dir>/<file>`; a directory holding
//! a `.platform` part is an item. Items pair with existing ones by logical id, or by type and
//! name with `options.allowPairingByName`; folders are created from the paths; logical ids of
//! the batch's items found in text parts are replaced by their item ids, as the service
//! resolves them. Everything is checked before anything changes; the answer is a
//! long-running operation whose result lists what was done to each item.

use std::collections::{BTreeMap, HashMap};

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::items::{DefinitionIn, PartIn, check_definition, check_item_description, check_type};
use super::{S, start_operation, ws_mut};
use crate::error::ApiError;
use crate::server::{Ctx, Shared};
use crate::store::{Definition, Folder, Item, Workspace};
use crate::util::{parse_body, query_bool};

fn invalid_path(path: &str, why: &str) -> ApiError {
    ApiError::bad_request(
        "InvalidFilesPath",
        format!("Definition part path '{path}' is invalid: {why}"),
    )
}

/// One item of the request, before it is applied.
struct Planned {
    dir: String,
    item_type: &'static str,
    display_name: String,
    description: String,
    logical_id: Uuid,
    folders: Vec<String>,
    parts: Vec<PartIn>,
    /// The existing item it pairs with.
    existing: Option<Uuid>,
}

/// The folder at `path` (names from the root), created as needed; `None` is the root.
fn ensure_folder(s: &Shared, w: &mut Workspace, path: &[String]) -> Option<Uuid> {
    let mut parent: Option<Uuid> = None;
    for name in path {
        let found = w
            .folders
            .values()
            .find(|f| f.parent_folder_id == parent && f.display_name.eq_ignore_ascii_case(name))
            .map(|f| f.id);
        parent = Some(found.unwrap_or_else(|| {
            let id = s.new_id();
            w.folders.insert(
                id,
                Folder {
                    id,
                    display_name: name.clone(),
                    parent_folder_id: parent,
                },
            );
            id
        }));
    }
    parent
}

/// Replaces each logical id in a text part with its item id (binary parts stay as sent).
fn resolve_logical_ids(payload: &str, ids: &HashMap<String, String>) -> String {
    let engine = base64::engine::general_purpose::STANDARD;
    let Some(text) = engine
        .decode(payload)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return payload.to_string();
    };
    let mut out = text.clone();
    for (logical, id) in ids {
        out = out.replace(logical.as_str(), id);
    }
    if out == text {
        payload.to_string()
    } else {
        engine.encode(out)
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ImportOptions {
    #[serde(default)]
    allow_pairing_by_name: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImportReq {
    definition_parts: Vec<PartIn>,
    #[serde(default)]
    options: ImportOptions,
}

pub(crate) async fn import(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Path(wsid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if query_bool(&q, "beta")? != Some(true) {
        return Err(ApiError::bad_request(
            "InvalidParameter",
            "This API is in beta: the query parameter 'beta' must be true",
        ));
    }
    let req: ImportReq = parse_body(&body)?;
    let mut planned = plan_items(&req.definition_parts)?;
    assign_parts(&mut planned, req.definition_parts)?;
    check_unique_names(&planned)?;
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    pair_existing(w, &mut planned, req.options.allow_pairing_by_name)?;
    let checked = check_definitions(&s, planned)?;
    let details = apply(&s, w, checked);
    let result = json!({"importItemDefinitionsDetails": details});
    Ok(start_operation(&s, &mut store, &ctx, Some(result)))
}

/// The request's items: each directory with a `.platform`, read for type, name and logical
/// id, with the folders above it.
fn plan_items(parts: &[PartIn]) -> Result<BTreeMap<String, Planned>, ApiError> {
    let dirs: Vec<&str> = parts
        .iter()
        .filter_map(|p| p.path.strip_suffix("/.platform"))
        .collect();
    let mut planned: BTreeMap<String, Planned> = BTreeMap::new();
    for p in parts.iter().filter(|p| p.path.ends_with("/.platform")) {
        let dir = p.path.trim_end_matches("/.platform").to_string();
        if !dir.starts_with('/') || dir.len() < 2 {
            return Err(invalid_path(&p.path, "it must be /<folders>/<item>/<file>"));
        }
        let meta = super::items::decode_json(&p.payload)
            .ok_or_else(|| invalid_path(&p.path, "the .platform is not base64 JSON"))?;
        let field = |ptr: &str| {
            meta.pointer(ptr)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let item_type = check_type(&field("/metadata/type").unwrap_or_default())?;
        let display_name = field("/metadata/displayName")
            .ok_or_else(|| invalid_path(&p.path, "metadata.displayName is missing"))?;
        let description = field("/metadata/description").unwrap_or_default();
        check_item_description(&description)?;
        let logical_id = field("/config/logicalId")
            .and_then(|l| Uuid::parse_str(&l).ok())
            .filter(|l| !l.is_nil())
            .ok_or_else(|| invalid_path(&p.path, "config.logicalId must be a non-zero GUID"))?;
        // Folders: the path above the item, up to an enclosing item (`X.Eventhouse/.children`).
        let segs: Vec<&str> = dir.trim_start_matches('/').split('/').collect();
        let mut folders = Vec::new();
        for (k, seg) in segs[..segs.len() - 1].iter().enumerate() {
            let prefix = format!("/{}", segs[..=k].join("/"));
            if *seg == ".children" || dirs.contains(&prefix.as_str()) {
                break;
            }
            super::folders::check_name(seg)?;
            folders.push(seg.to_string());
        }
        planned.insert(
            dir.clone(),
            Planned {
                dir,
                item_type,
                display_name,
                description,
                logical_id,
                folders,
                parts: Vec::new(),
                existing: None,
            },
        );
    }
    Ok(planned)
}

/// Gives every part to the deepest item directory above it, with an item-relative path.
fn assign_parts(
    planned: &mut BTreeMap<String, Planned>,
    parts: Vec<PartIn>,
) -> Result<(), ApiError> {
    for p in parts {
        let owner = planned
            .keys()
            .filter(|d| p.path.starts_with(&format!("{d}/")))
            .max_by_key(|d| d.len())
            .cloned()
            .ok_or_else(|| {
                invalid_path(&p.path, "no item directory (with a .platform) holds it")
            })?;
        if let Some(item) = planned.get_mut(&owner) {
            item.parts.push(PartIn {
                path: p.path[owner.len() + 1..].to_string(),
                payload: p.payload,
                payload_type: p.payload_type,
            });
        }
    }
    Ok(())
}

/// No two items of the batch share a type and a name.
fn check_unique_names(planned: &BTreeMap<String, Planned>) -> Result<(), ApiError> {
    let mut seen = HashMap::new();
    for it in planned.values() {
        let key = (it.item_type, it.display_name.to_lowercase());
        if let Some(other) = seen.insert(key, &it.dir) {
            return Err(ApiError::bad_request(
                "DuplicateDisplayNameAndType",
                format!(
                    "'{}' and '{other}' are both a {} named '{}'",
                    it.dir, it.item_type, it.display_name
                ),
            ));
        }
    }
    Ok(())
}

/// Pairs each item with an existing one (by logical id, or by name when allowed); a new
/// item's name must be free.
fn pair_existing(
    w: &Workspace,
    planned: &mut BTreeMap<String, Planned>,
    allow_pairing_by_name: bool,
) -> Result<(), ApiError> {
    for it in planned.values_mut() {
        it.existing = w
            .items
            .values()
            .find(|i| i.logical_id == it.logical_id && i.item_type == it.item_type)
            .or_else(|| {
                w.items.values().find(|i| {
                    allow_pairing_by_name
                        && i.item_type == it.item_type
                        && i.display_name.eq_ignore_ascii_case(&it.display_name)
                })
            })
            .map(|i| i.id);
        if it.existing.is_none() && w.name_taken(it.item_type, &it.display_name, None) {
            return Err(ApiError::conflict(
                "ItemDisplayNameAlreadyInUse",
                format!("Item display name '{}' is already used", it.display_name),
            ));
        }
    }
    Ok(())
}

/// Gives each item its id (new or paired), resolves the batch's logical ids in its parts
/// and validates its definition.
fn check_definitions(
    s: &Shared,
    planned: BTreeMap<String, Planned>,
) -> Result<Vec<(Uuid, Definition, Planned)>, ApiError> {
    let ids: HashMap<String, Uuid> = planned
        .values()
        .map(|it| (it.dir.clone(), it.existing.unwrap_or_else(|| s.new_id())))
        .collect();
    let by_logical: HashMap<String, String> = planned
        .values()
        .map(|it| (it.logical_id.to_string(), ids[&it.dir].to_string()))
        .collect();
    let mut checked = Vec::with_capacity(planned.len());
    for mut it in planned.into_values() {
        let parts = std::mem::take(&mut it.parts)
            .into_iter()
            .map(|p| PartIn {
                payload: if p.path == ".platform" {
                    p.payload
                } else {
                    resolve_logical_ids(&p.payload, &by_logical)
                },
                ..p
            })
            .collect();
        let (definition, _) = check_definition(
            it.item_type,
            DefinitionIn {
                format: None,
                parts,
            },
        )?;
        checked.push((ids[&it.dir], definition, it));
    }
    Ok(checked)
}

/// Creates or updates every item (all checked already); the operation's per-item details.
fn apply(s: &Shared, w: &mut Workspace, checked: Vec<(Uuid, Definition, Planned)>) -> Vec<Value> {
    let now = s.now();
    let mut details = Vec::with_capacity(checked.len());
    for (id, definition, it) in checked {
        let Planned {
            item_type,
            display_name,
            description,
            logical_id,
            folders,
            existing,
            ..
        } = it;
        let update = existing.is_some();
        let folder_id = ensure_folder(s, w, &folders);
        if update && let Some(i) = w.items.get_mut(&id) {
            i.definition = Some(Box::new(definition));
            i.display_name = display_name.clone();
            i.description = description;
            i.folder_id = folder_id;
        } else {
            w.items.insert(
                id,
                Item {
                    id,
                    item_type,
                    display_name: display_name.clone(),
                    description,
                    folder_id,
                    definition: Some(Box::new(definition)),
                    logical_id,
                    created_at: now,
                    enable_schemas: false,
                    extra: None,
                },
            );
        }
        details.push(json!({
            "itemId": id,
            "itemDisplayName": display_name,
            "itemType": item_type,
            "itemLogicalId": logical_id,
            "operationType": if update { "Update" } else { "Create" },
            "operationStatus": "Succeeded",
        }));
    }
    details
}
