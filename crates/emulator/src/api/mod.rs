//! Route table and the helpers every handler shares (responses, LRO start, lookups).

pub(crate) mod admin;
pub(crate) mod appinsights;
mod bulk;
mod bulk_export;
mod connections;
pub(crate) mod entra;
mod environments;
mod folders;
mod git;
mod items;
pub(crate) mod keyvault;
mod operations;
pub(crate) mod props;
mod shortcuts;
pub(crate) mod spark;
mod workspaces;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, on, post};
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;
use crate::profile::{LroKind, LroTiming};
use crate::server::{Ctx, Shared, finalize, gate};
use crate::store::{Operation, Store, Workspace};
use crate::util::{JSON, parse_id};

pub(crate) use environments::PublishFails;

/// The state every handler extracts.
type S = axum::extract::State<Arc<Shared>>;

/// A JSON response with the given status.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, serde_json::to_vec(body).unwrap_or_default()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, JSON.clone());
    r
}

/// `200 OK` with an empty body (deletes, git connect/disconnect), as the service answers.
pub(crate) fn ok_empty() -> Response {
    StatusCode::OK.into_response()
}

/// `201 Created` with an absolute `Location`.
pub(crate) fn created(body: &Value, location: Option<String>) -> Response {
    let mut r = json(StatusCode::CREATED, body);
    if let Some(loc) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    r
}

/// Seconds a client should wait between polls: the LRO delay, rounded up.
pub(crate) fn retry_after_secs(s: &Shared) -> u64 {
    s.config.lro_delay.as_secs_f64().ceil() as u64
}

/// Records a long-running operation and answers `202 Accepted` with the three LRO headers
/// and the body `null`: the recorded real 202s carry a JSON content type and a body that
/// decodes to null, and clients that decode the JSON of every 202 (fabric-cicd's
/// environment publish) depend on it.
pub(crate) fn start_operation(
    s: &Shared,
    store: &mut Store,
    ctx: &Ctx,
    result: Option<Value>,
) -> Response {
    start_timed_operation(s, store, ctx, result, s.lro_timing(LroKind::Operation))
}

/// [`start_operation`] with a given duration and `Retry-After`.
pub(crate) fn start_timed_operation(
    s: &Shared,
    store: &mut Store,
    ctx: &Ctx,
    result: Option<Value>,
    timing: LroTiming,
) -> Response {
    let id = s.new_id();
    store.operations.insert(
        id,
        Operation {
            id,
            created_at: s.now(),
            result,
            error: None,
            duration: Some(timing.duration),
            retry_after: Some(timing.retry_after),
        },
    );
    let mut r = (StatusCode::ACCEPTED, "null").into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, JSON.clone());
    if let Ok(v) = HeaderValue::from_str(&format!("{}/v1/operations/{id}", ctx.origin)) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        h.insert("x-ms-operation-id", v);
    }
    h.insert(header::RETRY_AFTER, HeaderValue::from(timing.retry_after));
    r
}

/// A 202 whose operation ends `Failed` (the `lro-fail` fault): nothing changes.
pub(crate) fn start_failed_operation(s: &Shared, ctx: Option<&Ctx>) -> Response {
    let Some(ctx) = ctx else {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UnknownError",
            "An error occurred",
        )
        .into_response();
    };
    let mut store = s.write();
    let resp = start_operation(s, &mut store, ctx, None);
    let id = resp
        .headers()
        .get("x-ms-operation-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok());
    if let Some(op) = id.and_then(|id| store.operations.get_mut(&id)) {
        op.error = Some(serde_json::json!({
            "errorCode": "UnknownError",
            "message": "The operation failed (injected fault)",
        }));
    }
    resp
}

pub(crate) fn ws_id(raw: &str) -> Result<Uuid, ApiError> {
    parse_id(raw, "WorkspaceNotFound", "workspace")
}

pub(crate) fn ws<'a>(store: &'a Store, raw: &str) -> Result<&'a Workspace, ApiError> {
    let id = ws_id(raw)?;
    store
        .workspaces
        .get(&id)
        .ok_or_else(|| ApiError::not_found("WorkspaceNotFound", "workspace", raw))
}

pub(crate) fn ws_mut<'a>(store: &'a mut Store, raw: &str) -> Result<&'a mut Workspace, ApiError> {
    let id = ws_id(raw)?;
    store
        .workspaces
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("WorkspaceNotFound", "workspace", raw))
}

async fn not_found_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "EntityNotFound",
        "The requested resource or API was not found",
    )
}

/// The whole route table.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let v1 = Router::new()
        .route(
            "/v1/workspaces",
            get(workspaces::list).post(workspaces::create),
        )
        .route(
            "/v1/workspaces/{ws}",
            get(workspaces::get)
                .patch(workspaces::update)
                .delete(workspaces::delete),
        )
        .route(
            "/v1/workspaces/{ws}/assignToCapacity",
            post(workspaces::assign_capacity),
        )
        .route(
            "/v1/workspaces/{ws}/unassignFromCapacity",
            post(workspaces::unassign_capacity),
        )
        .route(
            "/v1/workspaces/{ws}/roleAssignments",
            get(workspaces::list_roles).post(workspaces::add_role),
        )
        .route(
            "/v1/workspaces/{ws}/roleAssignments/{ra}",
            get(workspaces::get_role)
                .patch(workspaces::update_role)
                .delete(workspaces::delete_role),
        )
        .route("/v1/capacities", get(workspaces::list_capacities))
        .route("/v1/capacities/{id}", get(workspaces::get_capacity))
        .route("/v1/operations/{id}", get(operations::state))
        .route("/v1/operations/{id}/result", get(operations::result))
        .route(
            "/v1/workspaces/{ws}/folders",
            get(folders::list).post(folders::create),
        )
        .route(
            "/v1/workspaces/{ws}/folders/{id}",
            get(folders::get)
                .patch(folders::update)
                .delete(folders::delete),
        )
        .route(
            "/v1/workspaces/{ws}/folders/{id}/move",
            post(folders::move_folder),
        )
        .route(
            "/v1/workspaces/{ws}/items/{id}/move",
            post(items::move_item),
        )
        .route("/v1/workspaces/{ws}/git/connect", post(git::connect))
        .route("/v1/workspaces/{ws}/git/disconnect", post(git::disconnect))
        .route("/v1/workspaces/{ws}/git/connection", get(git::connection))
        .route(
            "/v1/workspaces/{ws}/git/initializeConnection",
            post(git::initialize),
        )
        .route("/v1/workspaces/{ws}/git/status", get(git::status))
        .route("/v1/workspaces/{ws}/git/commitToGit", post(git::commit))
        .route(
            "/v1/workspaces/{ws}/git/updateFromGit",
            post(git::update_from_git),
        )
        .route(
            "/v1/workspaces/{ws}/git/myGitCredentials",
            get(git::get_credentials).patch(git::update_credentials),
        );
    let v1 = v1
        .route(
            "/v1/connections",
            get(connections::list).post(connections::create),
        )
        .route(
            "/v1/connections/{id}",
            get(connections::get).delete(connections::delete),
        )
        .route(
            "/v1/workspaces/{ws}/items/bulkImportDefinitions",
            post(bulk::import),
        )
        .route(
            "/v1/workspaces/{ws}/items/bulkExportDefinitions",
            post(bulk_export::export),
        )
        .route(
            "/v1/workspaces/{ws}/items/{id}/connections",
            get(connections::item_connections),
        )
        .route(
            "/v1/workspaces/{ws}/semanticModels/{id}/bindConnection",
            post(connections::bind),
        )
        .route(
            "/v1/workspaces/{ws}/spark/pools",
            get(spark::list).post(spark::create),
        )
        .route(
            "/v1/workspaces/{ws}/spark/settings",
            get(spark::get_settings).patch(spark::update_settings),
        )
        .route(
            "/v1/workspaces/{ws}/spark/pools/{id}",
            get(spark::get).patch(spark::update).delete(spark::delete),
        )
        .route(
            "/v1/workspaces/{ws}/environments/{id}/staging/publish",
            post(environments::publish),
        )
        .route(
            "/v1/workspaces/{ws}/items/{id}/shortcuts",
            get(shortcuts::list).post(shortcuts::create),
        )
        .route(
            "/v1/workspaces/{ws}/items/{id}/shortcuts/{*rest}",
            get(shortcuts::get).delete(shortcuts::delete),
        );
    let kinds = std::iter::once(("items", items::Kind::GENERIC)).chain(
        crate::types::TYPES
            .iter()
            .map(|t| (t.segment, items::Kind(Some(t)))),
    );
    let mut v1 = v1;
    for (segment, kind) in kinds {
        let ext = axum::Extension(kind);
        v1 = v1
            .route(
                &format!("/v1/workspaces/{{ws}}/{segment}"),
                get(items::list).post(items::create).layer(ext),
            )
            .route(
                &format!("/v1/workspaces/{{ws}}/{segment}/{{id}}"),
                get(items::get)
                    .patch(items::update)
                    .delete(items::delete)
                    .layer(ext),
            )
            .route(
                &format!("/v1/workspaces/{{ws}}/{segment}/{{id}}/getDefinition"),
                post(items::get_definition).layer(ext),
            )
            .route(
                &format!("/v1/workspaces/{{ws}}/{segment}/{{id}}/updateDefinition"),
                post(items::update_definition).layer(ext),
            );
    }
    let v1 = v1.layer(axum::middleware::from_fn_with_state(shared.clone(), gate));
    let admin = Router::new()
        .route("/_emulator/state", get(admin::state))
        .route("/_emulator/reset", post(admin::reset))
        .route(
            "/_emulator/requests",
            get(admin::requests).delete(admin::clear_requests),
        )
        .route(
            "/_emulator/faults",
            get(admin::get_faults).put(admin::put_faults),
        )
        .route("/_emulator/token", post(admin::token))
        .route(
            "/_emulator/telemetry",
            get(appinsights::list).delete(appinsights::clear),
        );
    let fabric = Router::new()
        .merge(admin)
        .merge(v1)
        .fallback(not_found_route)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            finalize,
        ));
    // The Azure stand-ins answer in their own error shapes, so they stay outside `finalize`.
    fabric
        .merge(azure_router(&shared))
        .layer(DefaultBodyLimit::max(shared.config.max_body_bytes))
        .with_state(shared)
}

/// Entra ID, the managed-identity endpoint, Key Vault and Application Insights ingestion.
fn azure_router(shared: &Arc<Shared>) -> Router<Arc<Shared>> {
    use axum::routing::MethodFilter;
    let kv405 = || keyvault::method_not_allowed;
    let vault = Router::new()
        .route("/secrets", get(keyvault::list).fallback(kv405()))
        .route(
            "/secrets/{name}",
            get(keyvault::get_latest)
                .put(keyvault::set)
                .delete(keyvault::delete)
                .fallback(kv405()),
        )
        .route(
            "/secrets/{name}/",
            get(keyvault::get_latest).fallback(kv405()),
        )
        .route(
            "/secrets/{name}/versions",
            get(keyvault::versions).fallback(kv405()),
        )
        .route(
            "/secrets/{name}/{version}",
            get(keyvault::get_version)
                .patch(keyvault::update)
                .fallback(kv405()),
        )
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            keyvault::gate,
        ));
    Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            on(MethodFilter::POST, entra::token).fallback(entra::token_method_not_allowed),
        )
        .route("/msi/token", get(entra::managed_identity))
        .route("/v2/track", post(appinsights::track))
        .route("/v2.1/track", post(appinsights::track))
        .merge(vault)
}
