//! Git integration against in-memory remotes.
//!
//! A remote is one provider/owner/repository/branch/directory, shared by every workspace
//! connected to it, so a commit from one workspace is what `updateFromGit` brings into
//! another. Changes are found by comparing content hashes (name, description, definition)
//! on each side with the hashes both sides agreed on at the last sync.

use std::collections::{BTreeMap, BTreeSet};

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{S, json, ok_empty, start_operation, ws, ws_mut};
use crate::error::ApiError;
use crate::server::{Ctx, Shared};
use crate::store::{GitState, Item, RemoteBranch, RemoteItem, Store, Workspace};
use crate::util::{commit_hash, parse_body, parse_opt_body};

fn not_connected() -> ApiError {
    ApiError::bad_request(
        "WorkspaceNotConnectedToGit",
        "Workspace is not connected to git",
    )
}

fn not_initialized() -> ApiError {
    ApiError::bad_request(
        "WorkspaceGitConnectionNotInitialized",
        "The git connection of the workspace is not initialized; call initializeConnection first",
    )
}

fn check_len(v: &Value, field: &str, max: usize, required: bool) -> Result<String, ApiError> {
    match v.get(field) {
        Some(Value::String(s)) if s.chars().count() <= max => Ok(s.clone()),
        Some(Value::String(s)) => Err(ApiError::bad_body(format!(
            "'{field}' cannot contain more than {max} characters (got {})",
            s.chars().count()
        ))),
        None | Some(Value::Null) if !required => Ok(String::new()),
        None | Some(Value::Null) => Err(ApiError::bad_body(format!(
            "The field 'gitProviderDetails.{field}' is required"
        ))),
        Some(other) => Err(ApiError::bad_body(format!(
            "'{field}' must be a string, got {other}"
        ))),
    }
}

/// Validates `gitProviderDetails` and returns the remote key.
fn provider_key(p: &Value) -> Result<String, ApiError> {
    if !p.is_object() {
        return Err(ApiError::bad_body("'gitProviderDetails' must be an object"));
    }
    let kind = check_len(p, "gitProviderType", 64, true)?;
    let repo = check_len(p, "repositoryName", 128, true)?;
    let branch = check_len(p, "branchName", 250, true)?;
    let dir = check_len(p, "directoryName", 256, true)?;
    let owner = match kind.as_str() {
        "AzureDevOps" => format!(
            "{}/{}",
            check_len(p, "organizationName", 100, true)?,
            check_len(p, "projectName", 100, true)?
        ),
        "GitHub" => {
            check_len(p, "customDomainName", 100, false)?;
            check_len(p, "ownerName", 100, true)?
        }
        other => {
            return Err(ApiError::bad_body(format!(
                "Git provider type '{other}' is not supported (expected AzureDevOps or GitHub)"
            )));
        }
    };
    let dir = dir.trim_matches('/').to_lowercase();
    Ok(format!("{kind}/{}/{repo}/{branch}/{dir}", owner.to_lowercase()).to_lowercase())
}

fn check_credentials(c: &Value) -> Result<Value, ApiError> {
    match c.get("source").and_then(Value::as_str) {
        Some("ConfiguredConnection") => {
            let id = c
                .get("connectionId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Uuid::parse_str(id).map_err(|_| {
                ApiError::bad_body(format!(
                    "'connectionId' must be a GUID for ConfiguredConnection credentials, got '{id}'"
                ))
            })?;
            Ok(json!({"source": "ConfiguredConnection", "connectionId": id}))
        }
        Some(s @ ("Automatic" | "None")) => Ok(json!({"source": s})),
        Some(other) => Err(ApiError::bad_body(format!(
            "Unknown git credentials source '{other}'"
        ))),
        None => Err(ApiError::bad_body(
            "The field 'source' of the git credentials is required",
        )),
    }
}

pub(crate) async fn connect(
    State(s): S,
    Path(wsid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Req {
        git_provider_details: Value,
        my_git_credentials: Option<Value>,
    }
    let req: Req = parse_body(&body)?;
    let key = provider_key(&req.git_provider_details)?;
    let is_github = req
        .git_provider_details
        .get("gitProviderType")
        .and_then(Value::as_str)
        == Some("GitHub");
    let credentials = match &req.my_git_credentials {
        Some(c) => check_credentials(c)?,
        None if is_github => {
            return Err(ApiError::bad_body(
                "'myGitCredentials' is required for GitHub",
            ));
        }
        None => json!({"source": "Automatic"}),
    };
    let commit = commit_hash(&s.ids);
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    if w.capacity_id.is_none() {
        return Err(ApiError::bad_request(
            "WorkspaceHasNoCapacityAssigned",
            "No capacity assigned to workspace",
        ));
    }
    if w.git.is_some() {
        return Err(ApiError::conflict(
            "WorkspaceAlreadyConnectedToGit",
            "Workspace is already connected to git",
        ));
    }
    w.git = Some(Box::new(GitState {
        provider: req.git_provider_details,
        remote_key: key.clone(),
        initialized: false,
        head: None,
        last_sync: None,
        synced: BTreeMap::new(),
        credentials,
    }));
    store.repos.entry(key).or_insert(RemoteBranch {
        commit,
        items: BTreeMap::new(),
    });
    Ok(ok_empty())
}

pub(crate) async fn disconnect(
    State(s): S,
    Path(wsid): Path<String>,
) -> Result<Response, ApiError> {
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    if w.git.take().is_none() {
        return Err(not_connected());
    }
    Ok(ok_empty())
}

pub(crate) async fn connection(
    State(s): S,
    Path(wsid): Path<String>,
) -> Result<Response, ApiError> {
    let store = s.read();
    let w = ws(&store, &wsid)?;
    let body = match &w.git {
        None => {
            json!({"gitProviderDetails": null, "gitSyncDetails": null, "gitConnectionState": "NotConnected"})
        }
        Some(g) => {
            let sync = match (&g.head, g.last_sync) {
                (Some(h), Some(t)) => {
                    json!({"head": h, "lastSyncTime": crate::util::fabric_time(t)})
                }
                _ => Value::Null,
            };
            json!({
                "gitProviderDetails": g.provider,
                "gitSyncDetails": sync,
                "gitConnectionState": if g.initialized { "ConnectedAndInitialized" } else { "Connected" },
                "gitConnectionType": "Full",
            })
        }
    };
    Ok(json(StatusCode::OK, &body))
}

fn git_state(w: &Workspace) -> Result<&GitState, ApiError> {
    w.git.as_deref().ok_or_else(not_connected)
}

pub(crate) async fn initialize(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Path(wsid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Req {
        initialization_strategy: Option<String>,
    }
    let req: Req = parse_opt_body(&body)?;
    let strategy = req.initialization_strategy.unwrap_or_else(|| "None".into());
    if !["None", "PreferRemote", "PreferWorkspace"].contains(&strategy.as_str()) {
        return Err(ApiError::bad_body(format!(
            "Unknown initialization strategy '{strategy}'"
        )));
    }
    let now = s.now();
    let mut store = s.write();
    let store_ref = &mut *store;
    let w = ws_mut(store_ref, &wsid)?;
    let key = git_state(w)?.remote_key.clone();
    let remote = store_ref.repos.get(&key).cloned().unwrap_or(RemoteBranch {
        commit: String::new(),
        items: BTreeMap::new(),
    });
    let w = ws_mut(store_ref, &wsid)?;
    let action = match (!w.items.is_empty(), !remote.items.is_empty()) {
        (false, false) => "None",
        (true, false) => "CommitToGit",
        (false, true) => "UpdateFromGit",
        (true, true) => match strategy.as_str() {
            "PreferRemote" => "UpdateFromGit",
            "PreferWorkspace" => "CommitToGit",
            _ => {
                return Err(ApiError::bad_request(
                    "MissingInitializationPolicy",
                    "Both the workspace and the remote have content; an initialization strategy is required",
                ));
            }
        },
    };
    let g = w.git.as_mut().ok_or_else(not_connected)?;
    g.initialized = true;
    g.synced.clear();
    if action == "UpdateFromGit" {
        g.head = None;
    } else {
        g.head = Some(remote.commit.clone());
        g.last_sync = Some(now);
    }
    let mut result = json!({"requiredAction": action, "remoteCommitHash": remote.commit});
    if let Some(h) = &g.head {
        result["workspaceHead"] = json!(h);
    }
    Ok(start_operation(&s, &mut store, &ctx, Some(result)))
}

/// One side's change of an item since the last sync.
fn change(now: Option<u64>, synced: Option<u64>) -> Option<&'static str> {
    match (now, synced) {
        (Some(_), None) => Some("Added"),
        (Some(a), Some(b)) if a != b => Some("Modified"),
        (None, Some(_)) => Some("Deleted"),
        _ => None,
    }
}

#[derive(Debug)]
struct Change {
    logical_id: Uuid,
    object_id: Option<Uuid>,
    item_type: &'static str,
    display_name: String,
    workspace: Option<&'static str>,
    remote: Option<&'static str>,
    conflict: &'static str,
}

fn changes(w: &Workspace, g: &GitState, remote: &RemoteBranch) -> Vec<Change> {
    let by_logical: BTreeMap<Uuid, &Item> = w.items.values().map(|i| (i.logical_id, i)).collect();
    let ids: BTreeSet<Uuid> = by_logical
        .keys()
        .chain(remote.items.keys())
        .chain(g.synced.keys())
        .copied()
        .collect();
    ids.into_iter()
        .filter_map(|lid| {
            let wi = by_logical.get(&lid);
            let ri = remote.items.get(&lid);
            let wh = wi.map(|i| i.content_hash());
            let rh = ri.map(|r| r.hash);
            let sh = g.synced.get(&lid).copied();
            let (wc, rc) = (change(wh, sh), change(rh, sh));
            if wc.is_none() && rc.is_none() {
                return None;
            }
            let conflict = match (wc, rc) {
                (Some(_), Some(_)) if wh == rh => "SameChanges",
                (Some(_), Some(_)) => "Conflict",
                _ => "None",
            };
            Some(Change {
                logical_id: lid,
                object_id: wi.map(|i| i.id),
                item_type: wi
                    .map(|i| i.item_type)
                    .or(ri.map(|r| r.item_type))
                    .unwrap_or_default(),
                display_name: wi
                    .map(|i| i.display_name.clone())
                    .or(ri.map(|r| r.display_name.clone()))
                    .unwrap_or_default(),
                workspace: wc,
                remote: rc,
                conflict,
            })
        })
        .collect()
}

fn connected<'a>(
    store: &'a Store,
    wsid: &str,
) -> Result<(&'a Workspace, &'a GitState, &'a RemoteBranch), ApiError> {
    let w = ws(store, wsid)?;
    let g = git_state(w)?;
    if !g.initialized {
        return Err(not_initialized());
    }
    let r = store.repos.get(&g.remote_key).ok_or_else(not_connected)?;
    Ok((w, g, r))
}

pub(crate) async fn status(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Path(wsid): Path<String>,
) -> Result<Response, ApiError> {
    let mut store = s.write();
    let (w, g, remote) = connected(&store, &wsid)?;
    let list: Vec<Value> = changes(w, g, remote)
        .into_iter()
        .map(|c| {
            let mut ident = json!({"logicalId": c.logical_id});
            if let Some(o) = c.object_id {
                ident["objectId"] = json!(o);
            }
            let mut v = json!({
                "itemMetadata": {"itemIdentifier": ident, "itemType": c.item_type, "displayName": c.display_name},
                "conflictType": c.conflict,
            });
            if let Some(x) = c.workspace {
                v["workspaceChange"] = json!(x);
            }
            if let Some(x) = c.remote {
                v["remoteChange"] = json!(x);
            }
            v
        })
        .collect();
    let result = json!({
        "workspaceHead": g.head.clone().unwrap_or_default(),
        "remoteCommitHash": remote.commit,
        "changes": list,
    });
    Ok(start_operation(&s, &mut store, &ctx, Some(result)))
}

fn head_mismatch() -> ApiError {
    ApiError::bad_request(
        "WorkspaceHeadMismatch",
        "Head in the request doesn't match the head in the system",
    )
}

pub(crate) async fn commit(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Path(wsid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Ident {
        object_id: Option<Uuid>,
        logical_id: Option<Uuid>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Req {
        mode: String,
        workspace_head: Option<String>,
        comment: Option<String>,
        items: Option<Vec<Ident>>,
    }
    let req: Req = parse_body(&body)?;
    if !["All", "Selective"].contains(&req.mode.as_str()) {
        return Err(ApiError::bad_body(format!(
            "Unknown commit mode '{}' (expected All or Selective)",
            req.mode
        )));
    }
    if let Some(c) = &req.comment
        && c.chars().count() > 300
    {
        return Err(ApiError::bad_body(
            "'comment' cannot contain more than 300 characters",
        ));
    }
    let new_commit = commit_hash(&s.ids);
    let mut store = s.write();
    let (w, g, remote) = connected(&store, &wsid)?;
    if req
        .workspace_head
        .as_ref()
        .is_some_and(|h| Some(h) != g.head.as_ref())
    {
        return Err(head_mismatch());
    }
    if g.head.as_deref() != Some(remote.commit.as_str()) {
        return Err(ApiError::bad_request(
            "WorkspaceHeadMismatch",
            "The remote branch has commits the workspace does not have; update from git first",
        ));
    }
    let selected = |c: &Change| match (&req.mode[..], &req.items) {
        ("Selective", Some(items)) => items.iter().any(|i| {
            i.logical_id == Some(c.logical_id)
                || (i.object_id.is_some() && i.object_id == c.object_id)
        }),
        ("Selective", None) => false,
        _ => true,
    };
    let todo: Vec<Change> = changes(w, g, remote)
        .into_iter()
        .filter(|c| c.workspace.is_some())
        .filter(selected)
        .collect();
    if todo.is_empty() {
        return Err(ApiError::bad_request(
            "NoChangesToCommit",
            "There are no changes to commit",
        ));
    }
    let by_logical: BTreeMap<Uuid, Item> = w
        .items
        .values()
        .map(|i| (i.logical_id, i.clone()))
        .collect();
    let key = g.remote_key.clone();
    let wid = w.id;
    let mut synced = g.synced.clone();
    let remote = store.repos.get_mut(&key).ok_or_else(not_connected)?;
    for c in &todo {
        match by_logical.get(&c.logical_id) {
            Some(i) => {
                let hash = i.content_hash();
                remote.items.insert(
                    c.logical_id,
                    RemoteItem {
                        item_type: i.item_type,
                        display_name: i.display_name.clone(),
                        description: i.description.clone(),
                        definition: i.definition.clone(),
                        hash,
                    },
                );
                synced.insert(c.logical_id, hash);
            }
            None => {
                remote.items.remove(&c.logical_id);
                synced.remove(&c.logical_id);
            }
        }
    }
    remote.commit = new_commit.clone();
    let now = s.now();
    if let Some(g) = store.workspaces.get_mut(&wid).and_then(|w| w.git.as_mut()) {
        g.head = Some(new_commit);
        g.last_sync = Some(now);
        g.synced = synced;
    }
    Ok(start_operation(&s, &mut store, &ctx, None))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Resolution {
    conflict_resolution_type: String,
    conflict_resolution_policy: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateOptions {
    allow_override_items: Option<bool>,
}

/// The `updateFromGit` body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateReq {
    workspace_head: Option<String>,
    remote_commit_hash: String,
    conflict_resolution: Option<Resolution>,
    options: Option<UpdateOptions>,
}

/// Whether conflicts take the remote side (`Some(true)`), the workspace's (`Some(false)`),
/// or are not resolved (`None`, so any conflict refuses the update).
fn prefer_remote(r: Option<&Resolution>) -> Result<Option<bool>, ApiError> {
    let Some(r) = r else {
        return Ok(None);
    };
    if r.conflict_resolution_type != "Workspace" {
        return Err(ApiError::bad_body(format!(
            "Unknown conflict resolution type '{}'",
            r.conflict_resolution_type
        )));
    }
    match r.conflict_resolution_policy.as_str() {
        "PreferRemote" => Ok(Some(true)),
        "PreferWorkspace" => Ok(Some(false)),
        other => Err(ApiError::bad_body(format!(
            "Unknown conflict resolution policy '{other}'"
        ))),
    }
}

/// The remote changes an update brings in, after the request's heads, conflict resolution and
/// override consent are checked against them.
fn incoming_changes(
    req: &UpdateReq,
    prefer_remote: Option<bool>,
    (w, g, remote): (&Workspace, &GitState, &RemoteBranch),
) -> Result<Vec<Change>, ApiError> {
    if req.remote_commit_hash != remote.commit {
        return Err(ApiError::bad_request(
            "InvalidRemoteCommitHash",
            format!(
                "Remote commit hash '{}' is not the head of the remote branch",
                req.remote_commit_hash
            ),
        ));
    }
    if let (Some(given), Some(head)) = (&req.workspace_head, &g.head)
        && given != head
    {
        return Err(head_mismatch());
    }
    let all = changes(w, g, remote);
    if all.iter().any(|c| c.conflict == "Conflict") && prefer_remote.is_none() {
        return Err(ApiError::conflict(
            "GitConflictResolutionRequired",
            "Items changed both in the workspace and in git; a conflict resolution is required",
        ));
    }
    let incoming: Vec<Change> = all
        .into_iter()
        .filter(|c| c.remote.is_some())
        .filter(|c| c.conflict != "Conflict" || prefer_remote == Some(true))
        .collect();
    let allow_override = req
        .options
        .as_ref()
        .and_then(|o| o.allow_override_items)
        .unwrap_or(false);
    if !allow_override && incoming.iter().any(|c| c.object_id.is_some()) {
        return Err(ApiError::bad_request(
            "OverrideItemsConsentRequired",
            "Incoming changes override workspace items; set options.allowOverrideItems to true",
        ));
    }
    Ok(incoming)
}

/// The workspace's items with `incoming` applied: updated, removed, and created (new ids).
fn updated_items(
    s: &Shared,
    w: &Workspace,
    remote: &RemoteBranch,
    incoming: &[Change],
) -> BTreeMap<Uuid, Item> {
    let mut items = w.items.clone();
    let by_logical: BTreeMap<Uuid, Uuid> = w.items.values().map(|i| (i.logical_id, i.id)).collect();
    let now = s.now();
    for c in incoming {
        match (
            remote.items.get(&c.logical_id),
            by_logical.get(&c.logical_id),
        ) {
            (Some(r), Some(id)) => {
                if let Some(i) = items.get_mut(id) {
                    i.display_name = r.display_name.clone();
                    i.description = r.description.clone();
                    i.definition = r.definition.clone();
                }
            }
            (Some(r), None) => {
                let id = s.new_id();
                items.insert(id, new_item(id, c.logical_id, r.clone(), now));
            }
            (None, Some(id)) => {
                items.remove(id);
            }
            (None, None) => {}
        }
    }
    items
}

fn new_item(id: Uuid, logical_id: Uuid, r: RemoteItem, now: std::time::SystemTime) -> Item {
    Item {
        id,
        item_type: r.item_type,
        display_name: r.display_name,
        description: r.description,
        folder_id: None,
        definition: r.definition,
        logical_id,
        created_at: now,
        enable_schemas: false,
        extra: None,
    }
}

/// 400 `PotentialDuplicateDisplayNameAndType` when two of `items` share type and name.
fn check_unique_names(items: &BTreeMap<Uuid, Item>) -> Result<(), ApiError> {
    let mut seen = BTreeSet::new();
    for i in items.values() {
        if !seen.insert((i.item_type.to_lowercase(), i.display_name.to_lowercase())) {
            return Err(ApiError::bad_request(
                "PotentialDuplicateDisplayNameAndType",
                format!(
                    "Update operation will create a duplicate display name and type: '{}' ({})",
                    i.display_name, i.item_type
                ),
            ));
        }
    }
    Ok(())
}

pub(crate) async fn update_from_git(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Path(wsid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: UpdateReq = parse_body(&body)?;
    let prefer_remote = prefer_remote(req.conflict_resolution.as_ref())?;
    let mut store = s.write();
    let (w, g, remote) = connected(&store, &wsid)?;
    let incoming = incoming_changes(&req, prefer_remote, (w, g, remote))?;
    // Plan the new item set, then check names before touching anything.
    let items = updated_items(&s, w, remote, &incoming);
    check_unique_names(&items)?;
    let remote_commit = remote.commit.clone();
    let synced: BTreeMap<Uuid, u64> = remote.items.iter().map(|(k, v)| (*k, v.hash)).collect();
    let wid = w.id;
    let now = s.now();
    let w = store.workspaces.get_mut(&wid).ok_or_else(not_connected)?;
    w.items = items;
    if let Some(g) = w.git.as_mut() {
        g.head = Some(remote_commit);
        g.last_sync = Some(now);
        g.synced = synced;
    }
    Ok(start_operation(&s, &mut store, &ctx, None))
}

pub(crate) async fn get_credentials(
    State(s): S,
    Path(wsid): Path<String>,
) -> Result<Response, ApiError> {
    let store = s.read();
    let g = git_state(ws(&store, &wsid)?)?;
    Ok(json(StatusCode::OK, &g.credentials))
}

pub(crate) async fn update_credentials(
    State(s): S,
    Path(wsid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let v: Value = parse_body(&body)?;
    let creds = check_credentials(&v)?;
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    let g = w.git.as_mut().ok_or_else(not_connected)?;
    g.credentials = creds.clone();
    Ok(json(StatusCode::OK, &creds))
}
