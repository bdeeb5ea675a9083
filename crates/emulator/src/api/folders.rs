//! Workspace folders, nested up to ten levels.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

use super::items::{folder_ref, in_scope, scope};
use super::{S, created, json, ok_empty, ws, ws_mut};
use crate::error::ApiError;
use crate::server::Ctx;
use crate::store::{Folder, Workspace};
use crate::util::{PageRequest, parse_body, parse_id, parse_opt_body};

pub(crate) const MAX_DEPTH: usize = 10;

/// Folder name rules: 1–255 characters, no control characters, no leading or trailing
/// space, none of `~"#.&*:<>?/\{|}`.
pub(crate) fn check_name(name: &str) -> Result<(), ApiError> {
    let bad = |why: String| {
        ApiError::bad_request(
            "InvalidFolderDisplayName",
            format!("The folder display name '{name}' is invalid: {why}"),
        )
    };
    let len = name.chars().count();
    if len == 0 || len > 255 {
        return Err(bad(format!("it must have 1 to 255 characters (got {len})")));
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err(bad("it must not start or end with a space".into()));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || "~\"#.&*:<>?/\\{|}".contains(*c))
    {
        return Err(bad(format!("it must not contain {c:?}")));
    }
    Ok(())
}

fn folder_not_found(raw: &str) -> ApiError {
    ApiError::not_found("FolderNotFound", "folder", raw)
}

fn find(w: &Workspace, raw: &str) -> Result<Uuid, ApiError> {
    let id = parse_id(raw, "FolderNotFound", "folder")?;
    w.folders
        .contains_key(&id)
        .then_some(id)
        .ok_or_else(|| folder_not_found(raw))
}

fn sibling_taken(w: &Workspace, parent: Option<Uuid>, name: &str, except: Option<Uuid>) -> bool {
    w.folders.values().any(|f| {
        Some(f.id) != except
            && f.parent_folder_id == parent
            && f.display_name.eq_ignore_ascii_case(name)
    })
}

fn name_conflict(name: &str) -> ApiError {
    ApiError::conflict(
        "FolderDisplayNameAlreadyInUse",
        format!("Folder display name '{name}' is already used"),
    )
}

fn too_deep() -> ApiError {
    ApiError::bad_request(
        "FolderDepthOutOfRange",
        format!("Folders can be nested at most {MAX_DEPTH} levels deep"),
    )
}

/// Levels of folders at and below `id` (1 for a leaf).
fn subtree_height(w: &Workspace, id: Uuid) -> usize {
    1 + w
        .folders
        .values()
        .filter(|f| f.parent_folder_id == Some(id))
        .map(|f| subtree_height(w, f.id))
        .max()
        .unwrap_or(0)
}

pub(crate) async fn list(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Path(wsid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let store = s.read();
    let w = ws(&store, &wsid)?;
    let (root, recursive) = scope(w, &q)?;
    let page = PageRequest::new(
        &ctx.origin,
        &format!("/v1/workspaces/{}/folders", w.id),
        &q,
        s.config.page_size,
    )?;
    let body = page.page(
        "value",
        w.folders
            .iter()
            // A folder is listed under `root` when its parent is within it (not root itself).
            .filter(|(id, f)| {
                Some(**id) != root && in_scope(w, f.parent_folder_id, root, recursive)
            })
            .map(|(id, f)| (id, f.to_json(&w.id))),
    );
    Ok(json(StatusCode::OK, &body))
}

pub(crate) async fn create(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Path(wsid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Req {
        display_name: String,
        parent_folder_id: Option<String>,
    }
    let req: Req = parse_body(&body)?;
    check_name(&req.display_name)?;
    let id = s.new_id();
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    let parent = folder_ref(w, req.parent_folder_id.as_deref(), "parentFolderId")?;
    if parent.is_some_and(|p| w.folder_depth(p) >= MAX_DEPTH) {
        return Err(too_deep());
    }
    if sibling_taken(w, parent, &req.display_name, None) {
        return Err(name_conflict(&req.display_name));
    }
    let f = Folder {
        id,
        display_name: req.display_name,
        parent_folder_id: parent,
    };
    let body = f.to_json(&w.id);
    w.folders.insert(id, f);
    Ok(created(
        &body,
        Some(format!(
            "{}/v1/workspaces/{}/folders/{id}",
            ctx.origin, w.id
        )),
    ))
}

pub(crate) async fn get(
    State(s): S,
    Path((wsid, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let store = s.read();
    let w = ws(&store, &wsid)?;
    let fid = find(w, &id)?;
    Ok(json(StatusCode::OK, &w.folders[&fid].to_json(&w.id)))
}

pub(crate) async fn update(
    State(s): S,
    Path((wsid, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Req {
        display_name: String,
    }
    let req: Req = parse_body(&body)?;
    check_name(&req.display_name)?;
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    let fid = find(w, &id)?;
    let parent = w.folders[&fid].parent_folder_id;
    if sibling_taken(w, parent, &req.display_name, Some(fid)) {
        return Err(name_conflict(&req.display_name));
    }
    let f = w
        .folders
        .get_mut(&fid)
        .ok_or_else(|| folder_not_found(&id))?;
    f.display_name = req.display_name;
    let wid = w.id;
    Ok(json(StatusCode::OK, &w.folders[&fid].to_json(&wid)))
}

pub(crate) async fn delete(
    State(s): S,
    Path((wsid, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    let fid = find(w, &id)?;
    let has_children = w.folders.values().any(|f| f.parent_folder_id == Some(fid))
        || w.items.values().any(|i| i.folder_id == Some(fid));
    if has_children {
        return Err(ApiError::bad_request(
            "FolderNotEmpty",
            format!("The folder '{id}' is not empty"),
        ));
    }
    w.folders.remove(&fid);
    Ok(ok_empty())
}

pub(crate) async fn move_folder(
    State(s): S,
    Path((wsid, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Req {
        target_folder_id: Option<String>,
    }
    let req: Req = parse_opt_body(&body)?;
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    let fid = find(w, &id)?;
    let target = folder_ref(w, req.target_folder_id.as_deref(), "targetFolderId")?;
    if w.folder_within(target, fid) {
        return Err(ApiError::bad_request(
            "InfiniteFolderHierarchyLoop",
            "The folder can't be moved into itself or any of its descendants",
        ));
    }
    let target_depth = target.map(|t| w.folder_depth(t)).unwrap_or(0);
    if target_depth + subtree_height(w, fid) > MAX_DEPTH {
        return Err(too_deep());
    }
    let name = w.folders[&fid].display_name.clone();
    if sibling_taken(w, target, &name, Some(fid)) {
        return Err(name_conflict(&name));
    }
    let f = w
        .folders
        .get_mut(&fid)
        .ok_or_else(|| folder_not_found(&id))?;
    f.parent_folder_id = target;
    let wid = w.id;
    Ok(json(StatusCode::OK, &w.folders[&fid].to_json(&wid)))
}
