//! Spark custom pools: `/v1/workspaces/{id}/spark/pools`, and the workspace's Spark settings
//! (`/v1/workspaces/{id}/spark/settings`, [`get_settings`] and [`update_settings`]). A workspace lists its own pools
//! (`type: Workspace`) followed by its capacity's (`type: Capacity`, seeded by
//! `--capacity-pool` or the state file); only its own can be created and deleted here. An
//! Environment definition naming another workspace's pool is refused
//! ([`check_environment_pool`]).

use std::collections::{BTreeMap, HashMap};

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{S, created, json, ok_empty, ws, ws_mut};
use crate::error::ApiError;
use crate::server::{Ctx, Shared};
use crate::store::{Definition, SparkPool, Store, Workspace};
use crate::util::{PageRequest, parse_body, parse_id};

/// Node settings of a seeded capacity pool: the spec example's medium memory-optimized pool.
pub(crate) fn default_pool_settings() -> Value {
    json!({
        "nodeFamily": "MemoryOptimized",
        "nodeSize": "Medium",
        "autoScale": {"enabled": true, "minNodeCount": 1, "maxNodeCount": 2},
        "dynamicExecutorAllocation": {"enabled": true, "minExecutors": 1, "maxExecutors": 1},
    })
}

fn pool_not_found(raw: &str) -> ApiError {
    ApiError::not_found("PoolNotFound", "pool", raw)
}

/// Every pool the workspace sees, workspace pools first (id order), then its capacity's.
fn all_pools<'a>(store: &'a Store, w: &'a Workspace) -> impl Iterator<Item = Value> + 'a {
    let cap = w.capacity_id.and_then(|c| store.capacities.get(&c));
    w.spark_pools
        .values()
        .map(|p| p.to_json("Workspace"))
        .chain(
            cap.into_iter()
                .flat_map(|c| c.spark_pools.iter().map(|p| p.to_json("Capacity"))),
        )
}

pub(crate) async fn list(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Path(wsid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let store = s.read();
    let w = ws(&store, &wsid)?;
    let page = PageRequest::new(
        &ctx.origin,
        &format!("/v1/workspaces/{}/spark/pools", w.id),
        &q,
        s.config.page_size,
    )?;
    let pools: Vec<(uuid::Uuid, Value)> = all_pools(&store, w)
        .enumerate()
        // Keyset order for paging: position, so workspace pools stay ahead of capacity ones.
        .map(|(n, p)| (uuid::Uuid::from_u128(n as u128), p))
        .collect();
    let body = page.page("value", pools.iter().map(|(k, v)| (k, v.clone())));
    Ok(json(StatusCode::OK, &body))
}

/// Checks the `CreateCustomPoolRequest` shape: every field required, counts at least 1 and
/// min ≤ max.
fn check_settings(v: &Value) -> Result<Value, ApiError> {
    let obj = |k: &str| -> Result<&Value, ApiError> {
        v.get(k)
            .filter(|x| !x.is_null())
            .ok_or_else(|| ApiError::bad_body(format!("The field '{k}' is required")))
    };
    for (k, known) in [("nodeFamily", NODE_FAMILIES), ("nodeSize", NODE_SIZES)] {
        let value = obj(k)?.as_str().unwrap_or_default();
        if !known.contains(&value) {
            return Err(ApiError::bad_body(format!(
                "'{k}' must be one of {}, not {}",
                known.join(", "),
                obj(k)?
            )));
        }
    }
    for (k, min, max) in [
        ("autoScale", "minNodeCount", "maxNodeCount"),
        ("dynamicExecutorAllocation", "minExecutors", "maxExecutors"),
    ] {
        let o = obj(k)?;
        let n = |f: &str| o.get(f).and_then(Value::as_u64).filter(|n| *n >= 1);
        let (Some(lo), Some(hi), Some(_)) =
            (n(min), n(max), o.get("enabled").and_then(Value::as_bool))
        else {
            return Err(ApiError::bad_body(format!(
                "'{k}' needs 'enabled' (boolean) and '{min}', '{max}' (integers of at least 1)"
            )));
        };
        if lo > hi {
            return Err(ApiError::bad_body(format!(
                "'{k}.{min}' ({lo}) must not exceed '{k}.{max}' ({hi})"
            )));
        }
    }
    Ok(json!({
        "nodeFamily": v["nodeFamily"],
        "nodeSize": v["nodeSize"],
        "autoScale": v["autoScale"],
        "dynamicExecutorAllocation": v["dynamicExecutorAllocation"],
    }))
}

/// The spec's `NodeFamily` values.
const NODE_FAMILIES: &[&str] = &["MemoryOptimized"];
/// The spec's `NodeSize` values.
const NODE_SIZES: &[&str] = &["Small", "Medium", "Large", "XLarge", "XXLarge"];

/// Pool names, as `CreateCustomPoolRequest.name` says: 1-64 letters, numbers, dashes,
/// underscores and spaces (starting with a letter or digit), and not the reserved
/// `Starter Pool`.
pub(crate) fn valid_pool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ' ')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !name.eq_ignore_ascii_case("Starter Pool")
}

/// The name a create or update asks for, checked: 400 `InvalidPoolName` when the spec's
/// rules refuse it.
fn requested_name(requested: &str) -> Result<&str, ApiError> {
    let name = requested.trim();
    if !valid_pool_name(name) {
        return Err(ApiError::invalid_input(
            "InvalidPoolName",
            format!("Pool name '{requested}' is invalid"),
        ));
    }
    Ok(name)
}

/// 409 `PoolNameAlreadyExists` when another of the workspace's pools (than `except`) is
/// called `name`: names are unique in a workspace, compared case-insensitively.
fn check_unique(w: &Workspace, name: &str, except: Option<Uuid>) -> Result<(), ApiError> {
    if w.spark_pools
        .values()
        .any(|p| Some(p.id) != except && p.name.eq_ignore_ascii_case(name))
    {
        return Err(ApiError::conflict(
            "PoolNameAlreadyExists",
            format!("A pool named '{name}' already exists in the workspace"),
        ));
    }
    Ok(())
}

/// The pools `--spark-pool` gives a new workspace named `display_name`, with the seeded
/// capacity pools' node settings.
pub(crate) fn configured_pools(s: &Shared, display_name: &str) -> BTreeMap<Uuid, SparkPool> {
    let mut pools = BTreeMap::new();
    for p in s
        .config
        .workspace_pools
        .iter()
        .filter(|p| p.applies_to(display_name))
    {
        if pools
            .values()
            .any(|x: &SparkPool| x.name.eq_ignore_ascii_case(&p.pool))
        {
            continue;
        }
        let id = s.new_id();
        pools.insert(
            id,
            SparkPool {
                id,
                name: p.pool.clone(),
                settings: default_pool_settings(),
            },
        );
    }
    pools
}

pub(crate) async fn create(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Path(wsid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let raw: Value = parse_body(&body)?;
    let requested = raw
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_body("The field 'name' is required (a string)"))?;
    let name = requested_name(requested)?;
    let settings = check_settings(&raw)?;
    let id = s.new_id();
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    check_unique(w, name, None)?;
    let pool = SparkPool {
        id,
        name: name.to_string(),
        settings,
    };
    let body = pool.to_json("Workspace");
    let location = format!("{}/v1/workspaces/{}/spark/pools/{id}", ctx.origin, w.id);
    w.spark_pools.insert(id, pool);
    Ok(created(&body, Some(location)))
}

pub(crate) async fn get(
    State(s): S,
    Path((wsid, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let pid = parse_id(&id, "PoolNotFound", "pool")?;
    let store = s.read();
    let w = ws(&store, &wsid)?;
    let pool = all_pools(&store, w)
        .find(|p| p["id"] == json!(pid))
        .ok_or_else(|| pool_not_found(&id))?;
    Ok(json(StatusCode::OK, &pool))
}

/// `UpdateCustomPoolRequest`: every field optional, the ones given replace the pool's, and the
/// result must be a valid pool (so min ≤ max holds across a partial update).
pub(crate) async fn update(
    State(s): S,
    Path((wsid, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let pid = parse_id(&id, "PoolNotFound", "pool")?;
    let raw: Value = parse_body(&body)?;
    let Some(fields) = raw.as_object() else {
        return Err(ApiError::bad_body("The body must be a JSON object"));
    };
    let name = match fields.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) => Some(requested_name(n)?.to_string()),
        Some(other) => {
            return Err(ApiError::bad_body(format!(
                "'name' must be a string, not {other}"
            )));
        }
    };
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    let mut merged = w
        .spark_pools
        .get(&pid)
        .ok_or_else(|| pool_not_found(&id))?
        .settings
        .clone();
    for k in ["nodeFamily", "nodeSize"] {
        if let Some(v) = fields.get(k).filter(|v| !v.is_null()) {
            merged[k] = v.clone();
        }
    }
    for k in ["autoScale", "dynamicExecutorAllocation"] {
        if let Some(Value::Object(o)) = fields.get(k) {
            for (f, v) in o {
                merged[k][f] = v.clone();
            }
        }
    }
    let settings = check_settings(&merged)?;
    if let Some(n) = &name {
        check_unique(w, n, Some(pid))?;
    }
    let pool = w
        .spark_pools
        .get_mut(&pid)
        .ok_or_else(|| pool_not_found(&id))?;
    if let Some(n) = name {
        pool.name = n;
    }
    pool.settings = settings;
    Ok(json(StatusCode::OK, &pool.to_json("Workspace")))
}

pub(crate) async fn delete(
    State(s): S,
    Path((wsid, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let pid = parse_id(&id, "PoolNotFound", "pool")?;
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    w.spark_pools
        .remove(&pid)
        .ok_or_else(|| pool_not_found(&id))?;
    Ok(ok_empty())
}

/// The `instance_pool_id` an Environment's `Setting/Sparkcompute.yml` names, when it is a
/// GUID (a top-level `instance_pool_id:` line, quotes allowed).
fn sparkcompute_pool(d: &Definition) -> Option<uuid::Uuid> {
    let text = d
        .parts
        .iter()
        .find(|p| p.path.eq_ignore_ascii_case("Setting/Sparkcompute.yml"))
        .and_then(|p| super::items::decode_text(&p.payload))?;
    text.lines().find_map(|l| {
        let v = l.strip_prefix("instance_pool_id:")?.trim();
        uuid::Uuid::parse_str(v.trim_matches(|c| c == '"' || c == '\'')).ok()
    })
}

/// 400 `EnvironmentSparkPoolNotFound` when an Environment definition names a pool the
/// emulator knows as another workspace's (or another capacity's): the service resolves
/// `instance_pool_id` only among the pools the workspace lists. An id the emulator knows
/// nowhere is let through, as the spec's examples and repositories from a real tenant carry
/// ids of pools it never saw.
pub(crate) fn check_environment_pool(
    store: &Store,
    w: &Workspace,
    item_type: &str,
    d: &Definition,
) -> Result<(), ApiError> {
    if item_type != "Environment" {
        return Ok(());
    }
    let Some(pid) = sparkcompute_pool(d) else {
        return Ok(());
    };
    let id = json!(pid);
    if all_pools(store, w).any(|p| p["id"] == id) {
        return Ok(());
    }
    let elsewhere = store
        .workspaces
        .values()
        .any(|o| o.spark_pools.contains_key(&pid))
        || store
            .capacities
            .values()
            .any(|c| c.spark_pools.iter().any(|p| p.id == pid));
    if !elsewhere {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "EnvironmentSparkPoolNotFound",
        format!(
            "Setting/Sparkcompute.yml names instance pool '{pid}', which is not a pool of \
             workspace '{}' (use one of its own or its capacity's pools)",
            w.id
        ),
    ))
}

/// A new workspace's Spark settings: the spec example's shape, the starter pool by default.
fn default_settings() -> Value {
    json!({
        "automaticLog": {"enabled": true},
        "highConcurrency": {"notebookInteractiveRunEnabled": true, "notebookPipelineRunEnabled": false},
        "pool": {
            "customizeComputeEnabled": true,
            "defaultPool": {"name": "Starter Pool", "type": "Workspace", "id": Uuid::nil()},
            "starterPool": {"maxNodeCount": 1, "maxExecutors": 1},
        },
        "environment": {"runtimeVersion": "1.3"},
        "job": {"conservativeJobAdmissionEnabled": false, "sessionTimeoutInMinutes": 20},
    })
}

pub(crate) async fn get_settings(
    State(s): S,
    Path(wsid): Path<String>,
) -> Result<Response, ApiError> {
    let store = s.read();
    let w = ws(&store, &wsid)?;
    let v = w
        .spark_settings
        .as_deref()
        .cloned()
        .unwrap_or_else(default_settings);
    Ok(json(StatusCode::OK, &v))
}

/// Which JSON type each settable field of `UpdateWorkspaceSparkSettingsRequest` takes.
fn field_kind(group: &str, field: &str) -> Option<&'static str> {
    Some(match (group, field) {
        ("automaticLog", "enabled")
        | ("highConcurrency", "notebookInteractiveRunEnabled" | "notebookPipelineRunEnabled")
        | ("pool", "customizeComputeEnabled")
        | ("job", "conservativeJobAdmissionEnabled") => "boolean",
        ("pool", "defaultPool" | "starterPool") => "object",
        ("environment", "name" | "runtimeVersion") => "string",
        ("job", "sessionTimeoutInMinutes") => "integer",
        _ => return None,
    })
}

fn type_ok(kind: &str, v: &Value) -> bool {
    match kind {
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "string" => v.is_string() || v.is_null(),
        _ => v.as_u64().is_some(),
    }
}

/// The pool `defaultPool` names (`{name, type}`), with its id: the starter pool, one of the
/// workspace's own pools, or one of its capacity's.
fn resolve_default_pool(store: &Store, w: &Workspace, p: &Value) -> Result<Value, ApiError> {
    let name = p
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("Starter Pool");
    let kind = p.get("type").and_then(Value::as_str).unwrap_or("Workspace");
    if name.eq_ignore_ascii_case("Starter Pool") {
        return Ok(json!({"name": "Starter Pool", "type": "Workspace", "id": Uuid::nil()}));
    }
    all_pools(store, w)
        .find(|x| {
            x["type"] == kind
                && x["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .map(|x| json!({"name": x["name"], "type": kind, "id": x["id"]}))
        .ok_or_else(|| {
            ApiError::bad_body(format!(
                "'pool.defaultPool' names no {kind} pool '{name}' of the workspace"
            ))
        })
}

/// `PATCH …/spark/settings`: the fields given replace the workspace's, each checked for its
/// type; `defaultPool` must name a pool the workspace sees.
pub(crate) async fn update_settings(
    State(s): S,
    Path(wsid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let raw: Value = parse_body(&body)?;
    let Some(groups) = raw.as_object() else {
        return Err(ApiError::bad_body("The body must be a JSON object"));
    };
    let mut store = s.write();
    let w = ws(&store, &wsid)?;
    let mut merged = w
        .spark_settings
        .as_deref()
        .cloned()
        .unwrap_or_else(default_settings);
    for (group, fields) in groups {
        let Some(fields) = fields.as_object() else {
            return Err(ApiError::bad_body(format!("'{group}' must be an object")));
        };
        for (field, v) in fields {
            let kind = field_kind(group, field)
                .ok_or_else(|| ApiError::bad_body(format!("unknown setting '{group}.{field}'")))?;
            if !type_ok(kind, v) {
                return Err(ApiError::bad_body(format!(
                    "'{group}.{field}' must be a {kind}"
                )));
            }
            merged[group.as_str()][field.as_str()] = match field.as_str() {
                "defaultPool" => resolve_default_pool(&store, w, v)?,
                "starterPool" => {
                    let mut sp = merged["pool"]["starterPool"].clone();
                    for (k, n) in v.as_object().into_iter().flatten() {
                        let known = matches!(k.as_str(), "maxNodeCount" | "maxExecutors");
                        if !known || n.as_u64().is_none_or(|n| n < 1) {
                            return Err(ApiError::bad_body(format!(
                                "'pool.starterPool.{k}' must be an integer of at least 1"
                            )));
                        }
                        sp[k.as_str()] = n.clone();
                    }
                    sp
                }
                _ => v.clone(),
            };
        }
    }
    let w = ws_mut(&mut store, &wsid)?;
    w.spark_settings = Some(Box::new(merged.clone()));
    Ok(json(StatusCode::OK, &merged))
}
