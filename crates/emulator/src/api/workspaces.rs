//! Workspaces, capacities and workspace role assignments.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

use super::{S, created, json, ok_empty, ws, ws_mut};
use crate::error::ApiError;
use crate::server::Ctx;
use crate::store::{RoleAssignment, Store, Workspace};
use crate::util::{PageRequest, parse_body, parse_id, parse_opt_uuid};

const RESERVED: &str = "Admin monitoring";
const ROLES: &[&str] = &["Admin", "Member", "Contributor", "Viewer"];
const PRINCIPAL_TYPES: &[&str] = &[
    "User",
    "Group",
    "ServicePrincipal",
    "ServicePrincipalProfile",
];

type Q = Query<HashMap<String, String>>;

fn check_name(name: &str) -> Result<(), ApiError> {
    let len = name.chars().count();
    if name.trim().is_empty() {
        return Err(ApiError::bad_body(
            "The workspace display name must not be empty",
        ));
    }
    if len > 256 {
        return Err(ApiError::bad_body(format!(
            "The workspace display name cannot contain more than 256 characters (got {len})"
        )));
    }
    if name.trim().eq_ignore_ascii_case(RESERVED) {
        return Err(ApiError::invalid_input(
            "InvalidWorkspaceName",
            format!("'{RESERVED}' is a reserved workspace name"),
        ));
    }
    Ok(())
}

fn check_description(d: &str) -> Result<(), ApiError> {
    let len = d.chars().count();
    if len > 4000 {
        return Err(ApiError::bad_body(format!(
            "The workspace description cannot contain more than 4000 characters (got {len})"
        )));
    }
    Ok(())
}

fn name_conflict(name: &str) -> ApiError {
    ApiError::conflict(
        "WorkspaceNameAlreadyExists",
        format!("Workspace name '{name}' already exists"),
    )
}

fn capacity_exists(store: &Store, id: Uuid) -> Result<(), ApiError> {
    if store.capacities.contains_key(&id) {
        Ok(())
    } else {
        Err(ApiError::not_found(
            "CapacityNotFound",
            "capacity",
            &id.to_string(),
        ))
    }
}

pub(crate) async fn list(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let page = PageRequest::new(&ctx.origin, "/v1/workspaces", &q, s.config.page_size)?;
    let roles: Option<Vec<String>> = match q.get("roles") {
        None => None,
        Some(r) => {
            let list: Vec<String> = r
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect();
            if let Some(bad) = list
                .iter()
                .find(|x| !ROLES.iter().any(|r| r.eq_ignore_ascii_case(x)))
            {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    format!("Invalid workspace role '{bad}'"),
                ));
            }
            Some(list)
        }
    };
    let caller = Uuid::parse_str(&ctx.principal_id).ok();
    let store = s.read();
    let body = page.page(
        "value",
        store
            .workspaces
            .iter()
            .filter(|(_, w)| match (&roles, caller) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(roles), Some(p)) => w
                    .role_assignments
                    .get(&p)
                    .is_some_and(|ra| roles.iter().any(|r| r.eq_ignore_ascii_case(&ra.role))),
            })
            .map(|(id, w)| (id, w.to_json(&store.capacities))),
    );
    Ok(json(StatusCode::OK, &body))
}

pub(crate) async fn create(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Req {
        display_name: String,
        description: Option<String>,
        capacity_id: Option<String>,
        domain_id: Option<String>,
    }
    let req: Req = parse_body(&body)?;
    check_name(&req.display_name)?;
    let description = req.description.unwrap_or_default();
    check_description(&description)?;
    let capacity = parse_opt_uuid("capacityId", req.capacity_id.as_deref())?;
    if parse_opt_uuid("domainId", req.domain_id.as_deref())?.is_some() {
        return Err(ApiError::not_found(
            "DomainNotFound",
            "domain",
            req.domain_id.as_deref().unwrap_or(""),
        ));
    }
    let id = s.new_id();
    let now = s.now();
    let mut store = s.write();
    if let Some(c) = capacity {
        capacity_exists(&store, c)?;
    }
    let key = req.display_name.to_lowercase();
    if store.workspace_names.contains_key(&key) {
        return Err(name_conflict(&req.display_name));
    }
    let spark_pools = super::spark::configured_pools(&s, &req.display_name);
    let mut w = Workspace {
        id,
        display_name: req.display_name,
        description,
        capacity_id: capacity,
        capacity_assigned_at: capacity.map(|_| now),
        role_assignments: Default::default(),
        folders: Default::default(),
        items: Default::default(),
        deleted_items: Default::default(),
        git: None,
        spark_pools,
        spark_settings: None,
    };
    // The creator becomes Admin, as in the real service.
    if let Ok(p) = Uuid::parse_str(&ctx.principal_id) {
        w.role_assignments.insert(
            p,
            RoleAssignment {
                principal_id: p,
                principal_type: ctx.principal_type.clone(),
                role: "Admin".into(),
            },
        );
    }
    let body = w.to_json(&store.capacities);
    store.workspace_names.insert(key, id);
    store.workspaces.insert(id, w);
    Ok(created(
        &body,
        Some(format!("{}/v1/workspaces/{id}", ctx.origin)),
    ))
}

pub(crate) async fn get(State(s): S, Path(wsid): Path<String>) -> Result<Response, ApiError> {
    let store = s.read();
    let w = ws(&store, &wsid)?;
    Ok(json(
        StatusCode::OK,
        &w.to_info_json(&store.capacities, s.now(), s.config.lro_delay),
    ))
}

pub(crate) async fn update(
    State(s): S,
    Path(wsid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Req {
        display_name: Option<String>,
        description: Option<String>,
    }
    let req: Req = parse_body(&body)?;
    if let Some(n) = &req.display_name {
        check_name(n)?;
    }
    if let Some(d) = &req.description {
        check_description(d)?;
    }
    let mut store = s.write();
    let id = ws(&store, &wsid)?.id;
    if let Some(n) = &req.display_name {
        let key = n.to_lowercase();
        if store
            .workspace_names
            .get(&key)
            .is_some_and(|other| *other != id)
        {
            return Err(name_conflict(n));
        }
        let old = store.workspaces[&id].display_name.to_lowercase();
        store.workspace_names.remove(&old);
        store.workspace_names.insert(key, id);
    }
    let store = &mut *store;
    let w = store
        .workspaces
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("WorkspaceNotFound", "workspace", &wsid))?;
    if let Some(n) = req.display_name {
        w.display_name = n;
    }
    if let Some(d) = req.description {
        w.description = d;
    }
    Ok(json(StatusCode::OK, &w.to_json(&store.capacities)))
}

pub(crate) async fn delete(State(s): S, Path(wsid): Path<String>) -> Result<Response, ApiError> {
    let mut store = s.write();
    let id = ws(&store, &wsid)?.id;
    if let Some(w) = store.workspaces.remove(&id) {
        store.workspace_names.remove(&w.display_name.to_lowercase());
    }
    Ok(ok_empty())
}

pub(crate) async fn assign_capacity(
    State(s): S,
    Path(wsid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Req {
        capacity_id: String,
    }
    let req: Req = parse_body(&body)?;
    let cap = parse_opt_uuid("capacityId", Some(&req.capacity_id))?
        .ok_or_else(|| ApiError::bad_body("The field 'capacityId' is required"))?;
    let now = s.now();
    let mut store = s.write();
    capacity_exists(&store, cap)?;
    let w = ws_mut(&mut store, &wsid)?;
    w.capacity_id = Some(cap);
    w.capacity_assigned_at = Some(now);
    Ok(axum::response::IntoResponse::into_response(
        StatusCode::ACCEPTED,
    ))
}

pub(crate) async fn unassign_capacity(
    State(s): S,
    Path(wsid): Path<String>,
) -> Result<Response, ApiError> {
    let now = s.now();
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    w.capacity_id = None;
    w.capacity_assigned_at = Some(now);
    Ok(axum::response::IntoResponse::into_response(
        StatusCode::ACCEPTED,
    ))
}

pub(crate) async fn list_capacities(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let page = PageRequest::new(&ctx.origin, "/v1/capacities", &q, s.config.page_size)?;
    let store = s.read();
    let body = page.page(
        "value",
        store
            .capacities
            .iter()
            .map(|(id, c)| (id, serde_json::to_value(c).unwrap_or_default())),
    );
    Ok(json(StatusCode::OK, &body))
}

pub(crate) async fn get_capacity(
    State(s): S,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let cid = parse_id(&id, "CapacityNotFound", "capacity")?;
    let store = s.read();
    let c = store
        .capacities
        .get(&cid)
        .ok_or_else(|| ApiError::not_found("CapacityNotFound", "capacity", &id))?;
    Ok(json(
        StatusCode::OK,
        &serde_json::to_value(c).unwrap_or_default(),
    ))
}

fn check_role(role: &str) -> Result<String, ApiError> {
    ROLES
        .iter()
        .find(|r| r.eq_ignore_ascii_case(role))
        .map(|r| r.to_string())
        .ok_or_else(|| {
            ApiError::bad_body(format!(
                "Invalid workspace role '{role}' (expected Admin, Member, Contributor or Viewer)"
            ))
        })
}

fn ra_id(raw: &str) -> Result<Uuid, ApiError> {
    parse_id(raw, "WorkspaceRoleAssignmentNotFound", "role assignment")
}

fn ra_not_found(raw: &str) -> ApiError {
    ApiError::not_found("WorkspaceRoleAssignmentNotFound", "role assignment", raw)
}

/// The last Admin of a workspace can be neither removed nor demoted.
fn last_admin(w: &Workspace, principal: Uuid) -> bool {
    w.role_assignments
        .get(&principal)
        .is_some_and(|r| r.role == "Admin")
        && w.role_assignments
            .values()
            .filter(|r| r.role == "Admin")
            .count()
            == 1
}

pub(crate) async fn add_role(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Path(wsid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    struct Principal {
        id: String,
        #[serde(rename = "type")]
        kind: String,
    }
    #[derive(Deserialize)]
    struct Req {
        principal: Principal,
        role: String,
    }
    let req: Req = parse_body(&body)?;
    let pid = Uuid::parse_str(&req.principal.id).map_err(|_| {
        ApiError::bad_body(format!(
            "The principal id '{}' is not a valid GUID",
            req.principal.id
        ))
    })?;
    let kind = PRINCIPAL_TYPES
        .iter()
        .find(|t| t.eq_ignore_ascii_case(&req.principal.kind))
        .ok_or_else(|| {
            ApiError::bad_request(
                "PrincipalTypeNotSupported",
                format!(
                    "Principal type '{}' is not supported for workspace role assignments",
                    req.principal.kind
                ),
            )
        })?;
    let role = check_role(&req.role)?;
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    if w.role_assignments.contains_key(&pid) {
        return Err(ApiError::conflict(
            "PrincipalAlreadyHasWorkspaceRolePermissions",
            format!("Principal '{pid}' already has a role in this workspace"),
        ));
    }
    if w.role_assignments.len() >= 1000 {
        return Err(ApiError::bad_request(
            "WorkspaceRoleAssignmentsLimitExceeded",
            "A workspace can have at most 1,000 role assignments",
        ));
    }
    let ra = RoleAssignment {
        principal_id: pid,
        principal_type: kind.to_string(),
        role,
    };
    let body = ra.to_json();
    w.role_assignments.insert(pid, ra);
    Ok(created(
        &body,
        Some(format!(
            "{}/v1/workspaces/{}/roleAssignments/{pid}",
            ctx.origin, w.id
        )),
    ))
}

pub(crate) async fn list_roles(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Path(wsid): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let store = s.read();
    let w = ws(&store, &wsid)?;
    let page = PageRequest::new(
        &ctx.origin,
        &format!("/v1/workspaces/{}/roleAssignments", w.id),
        &q,
        s.config.page_size,
    )?;
    let body = page.page(
        "value",
        w.role_assignments.iter().map(|(id, r)| (id, r.to_json())),
    );
    Ok(json(StatusCode::OK, &body))
}

pub(crate) async fn get_role(
    State(s): S,
    Path((wsid, ra)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let store = s.read();
    let w = ws(&store, &wsid)?;
    let r = w
        .role_assignments
        .get(&ra_id(&ra)?)
        .ok_or_else(|| ra_not_found(&ra))?;
    Ok(json(StatusCode::OK, &r.to_json()))
}

pub(crate) async fn update_role(
    State(s): S,
    Path((wsid, ra)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    struct Req {
        role: String,
    }
    let req: Req = parse_body(&body)?;
    let role = check_role(&req.role)?;
    let pid = ra_id(&ra)?;
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    if !w.role_assignments.contains_key(&pid) {
        return Err(ra_not_found(&ra));
    }
    if role != "Admin" && last_admin(w, pid) {
        return Err(ApiError::bad_request(
            "LastAdminRoleCannotBeChanged",
            "The role assignment of the last admin can't be changed",
        ));
    }
    let r = w
        .role_assignments
        .get_mut(&pid)
        .ok_or_else(|| ra_not_found(&ra))?;
    r.role = role;
    Ok(json(StatusCode::OK, &r.to_json()))
}

pub(crate) async fn delete_role(
    State(s): S,
    Path((wsid, ra)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let pid = ra_id(&ra)?;
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    if !w.role_assignments.contains_key(&pid) {
        return Err(ra_not_found(&ra));
    }
    if last_admin(w, pid) {
        return Err(ApiError::bad_request(
            "LastAdminRoleCannotBeDeleted",
            "The role assignment of the last admin can't be deleted",
        ));
    }
    w.role_assignments.remove(&pid);
    Ok(ok_empty())
}
