//! Connections (`/v1/connections`: create, list, get, delete), an item's connections
//! (`GET /items/{id}/connections`) and a semantic model's `bindConnection`.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{S, created, json, ok_empty, ws, ws_mut};
use crate::error::ApiError;
use crate::server::Ctx;
use crate::util::{PageRequest, fabric_time, parse_body, parse_id};

const CONNECTIVITY: &[&str] = &[
    "ShareableCloud",
    "PersonalCloud",
    "OnPremisesGateway",
    "OnPremisesGatewayPersonal",
    "VirtualNetworkGateway",
    "StreamingVirtualNetworkGateway",
];

fn connection_not_found(raw: &str) -> ApiError {
    ApiError::not_found("ConnectionNotFound", "connection", raw)
}

pub(crate) async fn create(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Details {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        parameters: Vec<Param>,
    }
    #[derive(Deserialize)]
    struct Param {
        value: Value,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Req {
        connectivity_type: String,
        display_name: String,
        connection_details: Details,
        privacy_level: Option<String>,
        credential_details: Option<Value>,
        gateway_id: Option<String>,
        allow_usage_in_user_controlled_code: Option<bool>,
        allow_connection_usage_in_gateway: Option<bool>,
    }
    let req: Req = parse_body(&body)?;
    if !CONNECTIVITY.contains(&req.connectivity_type.as_str()) {
        return Err(ApiError::bad_body(format!(
            "'connectivityType' must be one of {}, got '{}'",
            CONNECTIVITY.join(", "),
            req.connectivity_type
        )));
    }
    if req.display_name.trim().is_empty() {
        return Err(ApiError::bad_body("'displayName' must not be empty"));
    }
    let gateway = req
        .gateway_id
        .as_deref()
        .map(|g| parse_id(g, "InvalidInput", "gateway"))
        .transpose()?;
    if req.connectivity_type.contains("Gateway") && gateway.is_none() {
        return Err(ApiError::invalid_input(
            "InvalidConnectionDetails",
            "A gateway connection needs 'gatewayId'",
        ));
    }
    // The service shows a connection's parameters as one `path`, joined with ';'.
    let path = req
        .connection_details
        .parameters
        .iter()
        .map(|p| match &p.value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(";");
    let mut cred = json!({});
    if let Some(c) = &req.credential_details {
        for k in [
            "singleSignOnType",
            "connectionEncryption",
            "skipTestConnection",
        ] {
            if let Some(v) = c.get(k) {
                cred[k] = v.clone();
            }
        }
        // Secrets are never echoed: only their type.
        if let Some(t) = c.pointer("/credentials/credentialType") {
            cred["credentialType"] = t.clone();
        }
    }
    let id = s.new_id();
    let mut v = json!({
        "id": id,
        "displayName": req.display_name,
        "connectivityType": req.connectivity_type,
        "connectionDetails": {"type": req.connection_details.kind, "path": path},
        "privacyLevel": req.privacy_level.unwrap_or_else(|| "Organizational".into()),
        "credentialDetails": cred,
        "connectionRecency": {"createdDateTime": format!("{}Z", &fabric_time(s.now())[..19])},
    });
    if let Some(g) = gateway {
        v["gatewayId"] = json!(g);
    }
    if let Some(b) = req.allow_usage_in_user_controlled_code {
        v["allowUsageInUserControlledCode"] = json!(b);
    }
    if let Some(b) = req.allow_connection_usage_in_gateway {
        v["allowConnectionUsageInGateway"] = json!(b);
    }
    let mut store = s.write();
    let name = v["displayName"].as_str().unwrap_or_default().to_lowercase();
    if store
        .connections
        .values()
        .any(|c| c["displayName"].as_str().map(str::to_lowercase).as_deref() == Some(&name))
    {
        return Err(ApiError::conflict(
            "DuplicateConnectionName",
            format!("A connection named '{}' already exists", v["displayName"]),
        ));
    }
    store.connections.insert(id, v.clone());
    Ok(created(
        &v,
        Some(format!("{}/v1/connections/{id}", ctx.origin)),
    ))
}

pub(crate) async fn list(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let store = s.read();
    let page = PageRequest::new(&ctx.origin, "/v1/connections", &q, s.config.page_size)?;
    let body = page.page(
        "value",
        store.connections.iter().map(|(id, c)| (id, c.clone())),
    );
    Ok(json(StatusCode::OK, &body))
}

pub(crate) async fn get(State(s): S, Path(id): Path<String>) -> Result<Response, ApiError> {
    let cid = parse_id(&id, "ConnectionNotFound", "connection")?;
    let store = s.read();
    let c = store
        .connections
        .get(&cid)
        .ok_or_else(|| connection_not_found(&id))?;
    Ok(json(StatusCode::OK, c))
}

pub(crate) async fn delete(State(s): S, Path(id): Path<String>) -> Result<Response, ApiError> {
    let cid = parse_id(&id, "ConnectionNotFound", "connection")?;
    let mut store = s.write();
    store
        .connections
        .remove(&cid)
        .ok_or_else(|| connection_not_found(&id))?;
    Ok(ok_empty())
}

/// The `ItemConnection` shape of a connection.
fn item_connection(c: &Value) -> Value {
    let mut v = json!({
        "id": c["id"],
        "displayName": c["displayName"],
        "connectivityType": c["connectivityType"],
        "connectionDetails": c["connectionDetails"],
    });
    if let Some(g) = c.get("gatewayId") {
        v["gatewayId"] = g.clone();
    }
    v
}

/// `GET /items/{id}/connections`: the connections bound to the item (that still exist).
pub(crate) async fn item_connections(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Path((wsid, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let iid = parse_id(&id, "ItemNotFound", "item")?;
    let store = s.read();
    let w = ws(&store, &wsid)?;
    let i = w
        .items
        .get(&iid)
        .ok_or_else(|| ApiError::not_found("ItemNotFound", "item", &id))?;
    let page = PageRequest::new(
        &ctx.origin,
        &format!("/v1/workspaces/{}/items/{iid}/connections", w.id),
        &q,
        s.config.page_size,
    )?;
    let mut bound: Vec<(Uuid, Value)> = i
        .extra
        .iter()
        .flat_map(|x| x.connections.iter())
        .filter_map(|c| store.connections.get(c).map(|v| (*c, item_connection(v))))
        .collect();
    bound.sort_by_key(|(k, _)| *k);
    let body = page.page("value", bound.iter().map(|(k, v)| (k, v.clone())));
    Ok(json(StatusCode::OK, &body))
}

/// `POST /semanticModels/{id}/bindConnection`: binds the model's data source (identified by
/// its connection type and path) to a connection; `connectivityType: None` unbinds it.
pub(crate) async fn bind(
    State(s): S,
    Path((wsid, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Details {
        #[serde(rename = "type")]
        kind: String,
        path: String,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Binding {
        id: Option<String>,
        connectivity_type: Option<String>,
        connection_details: Details,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Req {
        connection_binding: Binding,
    }
    let req: Req = parse_body(&body)?;
    let b = req.connection_binding;
    let iid = parse_id(&id, "ItemNotFound", "item")?;
    let mut store = s.write();
    let unbind = b.connectivity_type.as_deref() == Some("None");
    let target = match (&b.id, unbind) {
        (_, true) => None,
        (Some(cid), false) => {
            let c = parse_id(cid, "ConnectionNotFound", "connection")?;
            let conn = store
                .connections
                .get(&c)
                .ok_or_else(|| connection_not_found(cid))?;
            if conn["connectionDetails"]["type"] != json!(b.connection_details.kind) {
                return Err(ApiError::invalid_input(
                    "InvalidConnectionDetails",
                    format!(
                        "Connection '{cid}' is of type {}, not {}",
                        conn["connectionDetails"]["type"], b.connection_details.kind
                    ),
                ));
            }
            Some(c)
        }
        (None, false) => {
            return Err(ApiError::bad_body(
                "'connectionBinding.id' is required unless 'connectivityType' is None",
            ));
        }
    };
    // Which bound connection serves the same data source (type and path)?
    let same_source: Vec<Uuid> = store
        .connections
        .iter()
        .filter(|(_, c)| {
            c["connectionDetails"]["type"] == json!(b.connection_details.kind)
                && c["connectionDetails"]["path"] == json!(b.connection_details.path)
        })
        .map(|(k, _)| *k)
        .collect();
    let w = ws_mut(&mut store, &wsid)?;
    let i = w
        .items
        .get_mut(&iid)
        .filter(|i| i.item_type == "SemanticModel")
        .ok_or_else(|| ApiError::not_found("ItemNotFound", "item", &id))?;
    let x = i.extra_mut();
    x.connections
        .retain(|c| !same_source.contains(c) && Some(*c) != target);
    if let Some(t) = target {
        x.connections.push(t);
    }
    Ok(ok_empty())
}
