//! `POST /items/bulkExportDefinitions?beta=true`: many items' definitions in one
//! long-running operation, laid out as the git format (`/<folders>/<Name>.<Type>/<file>`),
//! the shape `bulkImportDefinitions` takes back.
//!
//! Mode `All` exports every item whose type has a definition and skips the others, as the
//! spec says ("export all supported items"). Mode `Selective` exports the listed items; an
//! item listed twice is refused with `ItemReferencedMoreThanOnce` (the spec's error code), an
//! unknown item with `ItemNotFound`, and an item whose type has no definition with
//! `OperationNotSupportedForItem`, as `getDefinition` refuses it — so a caller can fall back
//! to per-item calls.

use std::collections::{HashMap, HashSet};

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::items::no_definition;
use super::{S, start_operation, ws};
use crate::error::ApiError;
use crate::server::Ctx;
use crate::store::{Item, Workspace};
use crate::types;
use crate::util::{parse_body, parse_id, query_bool};

#[derive(Deserialize)]
struct ItemRef {
    id: String,
}

#[derive(Deserialize)]
struct ExportReq {
    mode: String,
    #[serde(default)]
    items: Option<Vec<ItemRef>>,
}

pub(crate) async fn export(
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
    let req: ExportReq = parse_body(&body)?;
    let mut store = s.write();
    let result = {
        let w = ws(&store, &wsid)?;
        export_result(w, &chosen(w, req)?)
    };
    Ok(start_operation(&s, &mut store, &ctx, Some(result)))
}

/// The items a request asks for.
fn chosen(w: &Workspace, req: ExportReq) -> Result<Vec<&Item>, ApiError> {
    Ok(match (req.mode.as_str(), req.items) {
        ("All", _) => w
            .items
            .values()
            .filter(|i| types::has_definition(i.item_type))
            .collect(),
        ("Selective", Some(refs)) if !refs.is_empty() => selected(w, &refs)?,
        ("Selective", _) => {
            return Err(ApiError::invalid_input(
                "InvalidItems",
                "Mode 'Selective' needs a non-empty 'items' list",
            ));
        }
        (mode, _) => {
            return Err(ApiError::invalid_input(
                "InvalidMode",
                format!("Unknown mode '{mode}' (expected All or Selective)"),
            ));
        }
    })
}

/// The listed items, each once, each with a definition.
fn selected<'a>(w: &'a Workspace, refs: &[ItemRef]) -> Result<Vec<&'a Item>, ApiError> {
    let mut seen = HashSet::new();
    let mut items = Vec::with_capacity(refs.len());
    for r in refs {
        let id = parse_id(&r.id, "ItemNotFound", "item")?;
        if !seen.insert(id) {
            return Err(ApiError::bad_request(
                "ItemReferencedMoreThanOnce",
                format!("The item '{id}' is referenced more than once in the request"),
            ));
        }
        let item = w
            .items
            .get(&id)
            .ok_or_else(|| ApiError::not_found("ItemNotFound", "item", &r.id))?;
        if !types::has_definition(item.item_type) {
            return Err(no_definition(item.item_type).related(&r.id, "Item"));
        }
        items.push(item);
    }
    Ok(items)
}

/// `/<folder>/<subfolder>/<Name>.<Type>`: where the item lives in the git format.
fn root_path(w: &Workspace, item: &Item) -> String {
    let mut names = vec![format!("{}.{}", item.display_name, item.item_type)];
    let mut folder = item.folder_id;
    // Bounded by the folder count, so a corrupt parent cycle cannot loop forever.
    for _ in 0..=w.folders.len() {
        let Some(f) = folder.and_then(|id| w.folders.get(&id)) else {
            break;
        };
        names.push(f.display_name.clone());
        folder = f.parent_folder_id;
    }
    names.reverse();
    format!("/{}", names.join("/"))
}

/// The operation's result: the index (item → root path) and every part, `.platform` included,
/// under its item's root path; in root-path order.
fn export_result(w: &Workspace, items: &[&Item]) -> Value {
    let mut rooted: Vec<(String, Uuid, Value)> = items
        .iter()
        .map(|i| (root_path(w, i), i.id, i.definition_json(None)))
        .collect();
    rooted.sort_by(|a, b| a.0.cmp(&b.0));
    let index: Vec<Value> = rooted
        .iter()
        .map(|(root, id, _)| json!({"id": id, "rootPath": root}))
        .collect();
    let parts: Vec<Value> = rooted
        .iter()
        .flat_map(|(root, _, def)| {
            let parts = def["definition"]["parts"].as_array().cloned();
            parts.into_iter().flatten().map(move |p| {
                json!({
                    "path": format!("{root}/{}", p["path"].as_str().unwrap_or_default()),
                    "payload": p["payload"],
                    "payloadType": p["payloadType"],
                })
            })
        })
        .collect();
    json!({"itemDefinitionsIndex": index, "definitionParts": parts})
}
