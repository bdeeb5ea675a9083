//! OneLake shortcuts of a lakehouse (or KQL database): `/items/{id}/shortcuts` create (with
//! `shortcutConflictPolicy`), list (paginated), get and delete. A OneLake target must name
//! an item that exists.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{S, created, json, ok_empty, ws, ws_mut};
use crate::error::ApiError;
use crate::server::Ctx;
use crate::store::{Item, Shortcut, Store, Workspace};
use crate::util::{PageRequest, parse_body, parse_id};

/// The target kinds of the spec's `Target`, by the property that carries each.
const TARGETS: &[(&str, &str)] = &[
    ("oneLake", "OneLake"),
    ("amazonS3", "AmazonS3"),
    ("adlsGen2", "AdlsGen2"),
    ("googleCloudStorage", "GoogleCloudStorage"),
    ("s3Compatible", "S3Compatible"),
    ("dataverse", "Dataverse"),
    ("externalDataShare", "ExternalDataShare"),
    ("azureBlobStorage", "AzureBlobStorage"),
    ("oneDriveSharePoint", "OneDriveSharePoint"),
];

/// Items that hold shortcuts.
const HOLDERS: &[&str] = &["Lakehouse", "KQLDatabase"];

fn shortcut_not_found(path: &str) -> ApiError {
    ApiError::not_found("EntityNotFound", "shortcut", path)
}

/// `Tables/x/`, `/Tables/x` → `Tables/x`; it must lie under `Tables` or `Files`.
fn clean_path(p: &str) -> Result<String, ApiError> {
    let p = p.trim_matches('/');
    let root = p.split('/').next().unwrap_or_default();
    if !root.eq_ignore_ascii_case("Tables") && !root.eq_ignore_ascii_case("Files") {
        return Err(ApiError::invalid_input(
            "InvalidShortcutPath",
            format!("Shortcut path '{p}' must start with 'Tables' or 'Files'"),
        ));
    }
    Ok(p.to_string())
}

fn holder<'a>(w: &'a Workspace, raw: &str) -> Result<&'a Item, ApiError> {
    let iid = parse_id(raw, "ItemNotFound", "item")?;
    w.items
        .get(&iid)
        .filter(|i| HOLDERS.contains(&i.item_type))
        .ok_or_else(|| ApiError::not_found("ItemNotFound", "item", raw))
}

/// Validates a target and gives it its `type`; a OneLake target must exist.
fn check_target(store: &Store, target: &Value) -> Result<Value, ApiError> {
    let present: Vec<&(&str, &str)> = TARGETS
        .iter()
        .filter(|(k, _)| target.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    let [(key, kind)] = present.as_slice() else {
        return Err(ApiError::bad_body(
            "A shortcut target must have exactly one of oneLake, adlsGen2, amazonS3, …",
        ));
    };
    let mut out = json!({"type": kind});
    let mut body = target[*key].clone();
    if *key == "oneLake" {
        let id = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .and_then(|v| Uuid::parse_str(v).ok())
                .ok_or_else(|| ApiError::bad_body(format!("'target.oneLake.{k}' must be a GUID")))
        };
        let (wid, iid) = (id("workspaceId")?, id("itemId")?);
        let path = body
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_body("'target.oneLake.path' is required"))?;
        body["path"] = json!(clean_path(path)?);
        let exists = store
            .workspaces
            .get(&wid)
            .is_some_and(|w| w.items.contains_key(&iid));
        if !exists {
            return Err(ApiError::bad_request(
                "ShortcutTargetNotFound",
                format!("The shortcut target item '{iid}' in workspace '{wid}' was not found"),
            ));
        }
    }
    out[*key] = body;
    Ok(out)
}

pub(crate) async fn create(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Path((wsid, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    struct Req {
        path: String,
        name: String,
        target: Value,
    }
    let req: Req = parse_body(&body)?;
    let policy = q
        .get("shortcutConflictPolicy")
        .map_or("Abort", String::as_str);
    if ![
        "Abort",
        "GenerateUniqueName",
        "CreateOrOverwrite",
        "OverwriteOnly",
    ]
    .contains(&policy)
    {
        return Err(ApiError::bad_body(format!(
            "Unknown shortcutConflictPolicy '{policy}'"
        )));
    }
    let path = clean_path(&req.path)?;
    if req.name.is_empty() || req.name.contains('/') {
        return Err(ApiError::bad_body(format!(
            "Shortcut name '{}' is invalid",
            req.name
        )));
    }
    let mut store = s.write();
    let target = check_target(&store, &req.target)?;
    let w = ws_mut(&mut store, &wsid)?;
    let iid = holder(w, &id)?.id;
    let wid = w.id;
    let item = w
        .items
        .get_mut(&iid)
        .ok_or_else(|| ApiError::not_found("ItemNotFound", "item", &id))?;
    let list = &mut item.extra_mut().shortcuts;
    let taken = |list: &Vec<Shortcut>, name: &str| {
        list.iter()
            .position(|x| x.path.eq_ignore_ascii_case(&path) && x.name.eq_ignore_ascii_case(name))
    };
    let mut name = req.name.clone();
    let existing = taken(list, &name);
    let status = match (policy, existing) {
        ("Abort", Some(_)) => {
            return Err(ApiError::conflict(
                "ShortcutAlreadyExists",
                format!("A shortcut '{path}/{name}' already exists"),
            ));
        }
        ("OverwriteOnly", None) => return Err(shortcut_not_found(&format!("{path}/{name}"))),
        ("GenerateUniqueName", Some(_)) => {
            let mut n = 1;
            while taken(list, &format!("{}_{n}", req.name)).is_some() {
                n += 1;
            }
            name = format!("{}_{n}", req.name);
            StatusCode::CREATED
        }
        (_, Some(i)) => {
            list.remove(i);
            StatusCode::OK
        }
        (_, None) => StatusCode::CREATED,
    };
    let sc = Shortcut {
        path: path.clone(),
        name: name.clone(),
        target,
    };
    let body = sc.to_json();
    let pos = list
        .binary_search_by(|x| (x.path.as_str(), x.name.as_str()).cmp(&(&path, &name)))
        .unwrap_or_else(|e| e);
    list.insert(pos, sc);
    let location = format!(
        "{}/v1/workspaces/{wid}/items/{iid}/shortcuts/{path}/{name}",
        ctx.origin
    );
    if status == StatusCode::CREATED {
        return Ok(created(&body, Some(location)));
    }
    let mut r = json(status, &body);
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

pub(crate) async fn list(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Path((wsid, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let store = s.read();
    let w = ws(&store, &wsid)?;
    let i = holder(w, &id)?;
    let page = PageRequest::new(
        &ctx.origin,
        &format!("/v1/workspaces/{}/items/{}/shortcuts", w.id, i.id),
        &q,
        s.config.page_size,
    )?;
    // Keyset by position in (path, name) order.
    let all: Vec<(Uuid, Value)> = i
        .extra
        .iter()
        .flat_map(|x| x.shortcuts.iter())
        .enumerate()
        .map(|(n, sc)| (Uuid::from_u128(n as u128), sc.to_json()))
        .collect();
    let body = page.page("value", all.iter().map(|(k, v)| (k, v.clone())));
    Ok(json(StatusCode::OK, &body))
}

/// `Tables/dbo/sales` → (`Tables/dbo`, `sales`).
fn split(rest: &str) -> Result<(String, &str), ApiError> {
    let rest = rest.trim_matches('/');
    let (path, name) = rest
        .rsplit_once('/')
        .ok_or_else(|| shortcut_not_found(rest))?;
    Ok((clean_path(path)?, name))
}

pub(crate) async fn get(
    State(s): S,
    Path((wsid, id, rest)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (path, name) = split(&rest)?;
    let store = s.read();
    let w = ws(&store, &wsid)?;
    let i = holder(w, &id)?;
    let sc = i
        .extra
        .iter()
        .flat_map(|x| x.shortcuts.iter())
        .find(|x| x.path.eq_ignore_ascii_case(&path) && x.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| shortcut_not_found(&rest))?;
    Ok(json(StatusCode::OK, &sc.to_json()))
}

pub(crate) async fn delete(
    State(s): S,
    Path((wsid, id, rest)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (path, name) = split(&rest)?;
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    let iid = holder(w, &id)?.id;
    let item = w
        .items
        .get_mut(&iid)
        .ok_or_else(|| ApiError::not_found("ItemNotFound", "item", &id))?;
    let list = &mut item.extra_mut().shortcuts;
    let pos = list
        .iter()
        .position(|x| x.path.eq_ignore_ascii_case(&path) && x.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| shortcut_not_found(&rest))?;
    list.remove(pos);
    Ok(ok_empty())
}
