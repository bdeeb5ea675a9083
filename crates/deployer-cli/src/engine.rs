//! Reading live state and applying a plan through the Fabric client, with every change
//! journaled in a transaction so a failed or crashed run can be rolled back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use fabrik_client::models::{
    AddRoleAssignmentRequest, CreateFolderRequest, CreateItemRequest, CreateWorkspaceRequest,
    DefinitionPart, GitConnectRequest, GitCredentials, GitCredentialsSource, GitProviderDetails,
    GitProviderType, ItemDefinition, ItemType, PayloadType, Principal, PrincipalType,
    UpdateItemRequest, UpdateWorkspaceRequest, WorkspaceRole,
};
use fabrik_client::{FabricClient, FabricError, ItemFilter};
use fabrik_core::metric_names::RESOURCES;
use fabrik_core::resource::{DefinitionPart as UndoPart, ResourceKind, ResourceRef, Undo};
use fabrik_txn::{Intent, Transaction};
use futures::{StreamExt, TryStreamExt};
use tracing::Instrument as _;

use crate::config::model::Git;
use crate::config::{CapacityRef, Desired};
use crate::plan::{self, LiveFolder, LiveItem, LiveRole, LiveWorkspace, Op, Plan, WorkspacePlan};

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The service refused or failed.
    #[error("{context}: {source}")]
    Fabric {
        /// What fabrik was doing.
        context: String,
        /// The service's error.
        #[source]
        source: FabricError,
    },
    /// A capacity named in the config does not exist.
    #[error("capacity '{0}' not found (by id or display name)")]
    UnknownCapacity(String),
    /// The run was told to stop (its deadline passed) before this change started.
    #[error("stopped before {0}: the run's deadline passed")]
    Halted(String),
    /// The whole run took longer than its deadline.
    #[error("the run did not finish within its deadline of {0:?}")]
    RunDeadline(std::time::Duration),
    /// The deployment lock (a shared state backend's lease) was lost mid-run.
    #[error("the deployment lock was lost, so the run stopped: {0}")]
    LockLost(String),
    /// The journal failed: stop before doing anything we could not undo.
    #[error("journal: {0}")]
    Journal(String),
}

fn ctx(context: impl Into<String>) -> impl FnOnce(FabricError) -> EngineError {
    let context = context.into();
    move |source| EngineError::Fabric { context, source }
}

/// Resolves capacities named by display name to ids.
async fn capacity_ids(
    client: &FabricClient,
    desired: &Desired,
) -> Result<BTreeMap<String, String>, EngineError> {
    let mut out = BTreeMap::new();
    let wanted: Vec<&CapacityRef> = desired
        .workspaces
        .iter()
        .filter_map(|w| w.capacity.as_ref())
        .collect();
    if wanted.is_empty() {
        return Ok(out);
    }
    let caps: Vec<_> = client
        .list_capacities()
        .try_collect()
        .await
        .map_err(ctx("listing capacities"))?;
    for c in wanted {
        let (key, found) = match c {
            CapacityRef::Id(id) => (id, caps.iter().find(|x| x.id.eq_ignore_ascii_case(id))),
            CapacityRef::Name(n) => (
                n,
                caps.iter().find(|x| x.display_name.eq_ignore_ascii_case(n)),
            ),
        };
        let cap = found.ok_or_else(|| EngineError::UnknownCapacity(key.clone()))?;
        out.insert(key.clone(), cap.id.clone());
    }
    Ok(out)
}

fn capacity_key(c: &CapacityRef) -> &String {
    match c {
        CapacityRef::Id(s) | CapacityRef::Name(s) => s,
    }
}

/// Reads one workspace's live state (folders, items, definitions of managed notebooks,
/// role assignments, git connection).
async fn read_workspace(
    client: &FabricClient,
    id: &str,
    name: &str,
    description: &str,
    capacity_id: Option<String>,
    managed_definitions: &[(String, String, Option<String>)],
) -> Result<LiveWorkspace, EngineError> {
    let folders: Vec<_> = client
        .list_folders(id)
        .try_collect()
        .await
        .map_err(ctx(format!("listing folders of {name}")))?;
    let by_id: BTreeMap<&str, (&str, Option<&str>)> = folders
        .iter()
        .map(|f| {
            (
                f.id.as_str(),
                (f.display_name.as_str(), f.parent_folder_id.as_deref()),
            )
        })
        .collect();
    let path_of = |fid: &str| -> String {
        let mut parts = Vec::new();
        let mut cur = Some(fid);
        while let Some(c) = cur {
            let Some((n, parent)) = by_id.get(c) else {
                break;
            };
            parts.push(*n);
            cur = *parent;
            if parts.len() > 10 {
                break;
            }
        }
        parts.reverse();
        parts.join("/")
    };
    let live_folders: Vec<LiveFolder> = folders
        .iter()
        .map(|f| LiveFolder {
            id: f.id.clone(),
            path: path_of(&f.id),
        })
        .collect();
    let items: Vec<_> = client
        .list_items(id, &ItemFilter::default())
        .try_collect()
        .await
        .map_err(ctx(format!("listing items of {name}")))?;
    let mut live_items = Vec::new();
    for it in items {
        let kind = it.kind.as_str().to_string();
        let managed = managed_definitions
            .iter()
            .find(|(t, n, _)| *t == kind && n.eq_ignore_ascii_case(&it.display_name));
        let definition = if let Some((_, _, format)) = managed {
            // Read in the format the config provides, so the parts compare like for like.
            let d = client
                .get_item_definition(id, &it.id, format.as_deref())
                .await
                .map_err(ctx(format!(
                    "reading the definition of {kind} {}",
                    it.display_name
                )))?;
            Some(d.parts.into_iter().map(|p| (p.path, p.payload)).collect())
        } else {
            None
        };
        live_items.push(LiveItem {
            id: it.id.clone(),
            name: it.display_name.clone(),
            item_type: kind,
            description: it.description.clone(),
            folder: it.folder_id.as_deref().map(&path_of),
            definition,
        });
    }
    let roles: Vec<_> = client
        .list_role_assignments(id)
        .try_collect()
        .await
        .map_err(ctx(format!("listing role assignments of {name}")))?;
    let git = match client.git_connection(id).await {
        Ok(c) => c.git_provider_details.map(|d| Git {
            provider: d.git_provider_type.as_str().to_string(),
            owner: d.owner_name,
            organization: d.organization_name,
            project: d.project_name,
            repository: d.repository_name,
            branch: d.branch_name,
            directory: d.directory_name,
            connection_id: None,
        }),
        Err(e)
            if e.status() == Some(404) || e.error_code() == Some("WorkspaceNotConnectedToGit") =>
        {
            None
        }
        Err(e) => return Err(ctx(format!("reading the git connection of {name}"))(e)),
    };
    Ok(LiveWorkspace {
        id: id.to_string(),
        name: name.to_string(),
        description: description.to_string(),
        capacity_id,
        folders: live_folders,
        items: live_items,
        roles: roles
            .into_iter()
            .map(|r| LiveRole {
                id: r.principal.id,
                role: r.role.as_str().to_string(),
            })
            .collect(),
        git,
    })
}

/// Reads live state and diffs it against `desired`. `concurrency` bounds parallel workspace reads.
pub async fn plan(
    client: &FabricClient,
    desired: &Desired,
    concurrency: usize,
) -> Result<Plan, EngineError> {
    plan_with(client, desired, concurrency, false).await
}

/// [`plan`], and with `prune` items the configuration does not describe are planned for deletion.
pub async fn plan_with(
    client: &FabricClient,
    desired: &Desired,
    concurrency: usize,
    prune: bool,
) -> Result<Plan, EngineError> {
    let span = tracing::info_span!(
        "fabrik.plan",
        environment = %desired.environment,
        workspaces = desired.workspaces.len(),
    );
    read_and_diff(client, desired, concurrency, prune)
        .instrument(span)
        .await
}

async fn read_and_diff(
    client: &FabricClient,
    desired: &Desired,
    concurrency: usize,
    prune: bool,
) -> Result<Plan, EngineError> {
    let caps = capacity_ids(client, desired).await?;
    let all: Vec<_> = client
        .list_workspaces()
        .try_collect()
        .await
        .map_err(ctx("listing workspaces"))?;
    let reads = desired.workspaces.iter().map(|d| {
        let live = all
            .iter()
            .find(|w| w.display_name.eq_ignore_ascii_case(&d.name))
            .cloned();
        let cap = d
            .capacity
            .as_ref()
            .and_then(|c| caps.get(capacity_key(c)).cloned());
        let managed: Vec<(String, String, Option<String>)> = d
            .items
            .iter()
            .filter_map(|i| {
                let p = i.definition.as_ref()?;
                Some((i.item_type.clone(), i.name.clone(), definition_format(p)))
            })
            .collect();
        async move {
            let live = match live {
                Some(w) => Some(
                    read_workspace(
                        client,
                        &w.id,
                        &w.display_name,
                        &w.description,
                        w.capacity_id.clone(),
                        &managed,
                    )
                    .await?,
                ),
                None => None,
            };
            Ok::<_, EngineError>(plan::diff_workspace_pruning(
                d,
                cap.as_deref(),
                live.as_ref(),
                prune,
            ))
        }
    });
    let workspaces: Vec<WorkspacePlan> = futures::stream::iter(reads)
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    Ok(Plan { workspaces })
}

/// Called after each change is applied and journaled (progress bars, log lines).
#[derive(Clone)]
pub struct Progress(pub Arc<dyn Fn(&Applied) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// What apply did to one resource.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    /// Workspace name.
    pub workspace: String,
    /// What.
    pub target: String,
    /// `created`, `updated`, `deleted`, `existed`.
    pub outcome: &'static str,
}

/// The definition format parts imply: notebooks given as `.ipynb` are `ipynb`; `.py` is the default.
fn definition_format(parts: &[(String, String)]) -> Option<String> {
    parts
        .iter()
        .any(|(path, _)| path.ends_with(".ipynb"))
        .then(|| "ipynb".to_string())
}

fn parts(p: &[(String, String)]) -> ItemDefinition {
    ItemDefinition {
        format: definition_format(p),
        parts: p
            .iter()
            .map(|(path, payload)| DefinitionPart {
                path: path.clone(),
                payload: payload.clone(),
                payload_type: PayloadType::InlineBase64,
            })
            .collect(),
    }
}

fn journal(e: fabrik_txn::TxnError) -> EngineError {
    EngineError::Journal(e.to_string())
}

/// Applies one workspace's changes in order, journaling each in `txn` before it is reported done.
pub async fn apply_workspace(
    client: &FabricClient,
    txn: &Transaction,
    wp: &WorkspacePlan,
    progress: Option<&Progress>,
    halt: Option<&AtomicBool>,
) -> Result<Vec<Applied>, EngineError> {
    let mut done = Vec::new();
    let name = wp.name.clone();
    let mut ws_id = wp.id.clone().unwrap_or_default();
    let mut folder_ids: BTreeMap<String, String> = BTreeMap::new();
    if !wp
        .changes
        .iter()
        .all(|c| matches!(c.op, Op::CreateWorkspace { .. }))
        && !ws_id.is_empty()
    {
        let folders: Vec<_> = client
            .list_folders(&ws_id)
            .try_collect()
            .await
            .map_err(ctx(format!("listing folders of {name}")))?;
        let by_id: BTreeMap<String, (String, Option<String>)> = folders
            .iter()
            .map(|f| {
                (
                    f.id.clone(),
                    (f.display_name.clone(), f.parent_folder_id.clone()),
                )
            })
            .collect();
        for f in &folders {
            let mut parts = vec![f.display_name.clone()];
            let mut cur = f.parent_folder_id.clone();
            while let Some(c) = cur {
                let Some((n, p)) = by_id.get(&c) else { break };
                parts.push(n.clone());
                cur = p.clone();
            }
            parts.reverse();
            folder_ids.insert(parts.join("/"), f.id.clone());
        }
    }
    for change in &wp.changes {
        // A halted run starts no new change; the one in flight was allowed to finish, so
        // nothing is cut off between the server applying it and the journal recording it.
        if halt.is_some_and(|h| h.load(Ordering::SeqCst)) {
            return Err(EngineError::Halted(format!("{} in {name}", change.target)));
        }
        let target = change.target.clone();
        // One span per deployment step: the step's HTTP calls are its children.
        let span = tracing::info_span!(
            "fabrik.change",
            workspace = %name,
            action = ?change.action,
            target = %target,
            outcome = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
        );
        let outcome: Result<&'static str, EngineError> = async {
            Ok(match &change.op {
                Op::CreateWorkspace {
                    description,
                    capacity_id,
                } => {
                    let intent = txn
                        .intend(Intent::create(ResourceKind::Workspace, None, &name))
                        .await
                        .map_err(journal)?;
                    let req = CreateWorkspaceRequest {
                        display_name: name.clone(),
                        description: Some(description.clone()),
                        capacity_id: capacity_id.clone(),
                        domain_id: None,
                    };
                    let ensured = match client.get_or_create_workspace(&req).await {
                        Ok(e) => e,
                        Err(e) => {
                            let _ = txn.fail_intent(intent, &e.to_string()).await;
                            return Err(ctx(format!("creating workspace {name}"))(e));
                        }
                    };
                    ws_id = ensured.value.id.clone();
                    if ensured.created_here() {
                        txn.complete_intent(
                            intent,
                            ResourceRef::workspace(&ws_id, &name),
                            Undo::DeleteWorkspace {
                                workspace_id: ws_id.clone(),
                            },
                        )
                        .await
                        .map_err(journal)?;
                        "created"
                    } else {
                        txn.fail_intent(intent, "already existed")
                            .await
                            .map_err(journal)?;
                        "existed"
                    }
                }
                Op::UpdateWorkspace {
                    description,
                    previous,
                } => {
                    txn.track(
                        ResourceRef::workspace(&ws_id, &name),
                        Undo::RestoreWorkspace {
                            workspace_id: ws_id.clone(),
                            display_name: name.clone(),
                            description: previous.clone(),
                        },
                    )
                    .await
                    .map_err(journal)?;
                    let req = UpdateWorkspaceRequest {
                        display_name: None,
                        description: Some(description.clone()),
                    };
                    client
                        .update_workspace(&ws_id, &req)
                        .await
                        .map_err(ctx(format!("updating workspace {name}")))?;
                    "updated"
                }
                Op::AssignCapacity {
                    capacity_id,
                    previous,
                } => {
                    let undo = match previous {
                        Some(p) => Undo::AssignCapacity {
                            workspace_id: ws_id.clone(),
                            capacity_id: p.clone(),
                        },
                        None => Undo::UnassignCapacity {
                            workspace_id: ws_id.clone(),
                        },
                    };
                    txn.track(
                        ResourceRef::in_workspace(
                            ResourceKind::CapacityAssignment,
                            &ws_id,
                            &ws_id,
                            None,
                        ),
                        undo,
                    )
                    .await
                    .map_err(journal)?;
                    client
                        .assign_to_capacity(&ws_id, capacity_id)
                        .await
                        .map_err(ctx(format!("assigning {name} to capacity {capacity_id}")))?;
                    "updated"
                }
                Op::CreateFolder { path } => {
                    let (parent, leaf) = match path.rsplit_once('/') {
                        Some((p, l)) => (folder_ids.get(p).cloned(), l.to_string()),
                        None => (None, path.clone()),
                    };
                    let intent = txn
                        .intend(Intent::create(
                            ResourceKind::Folder,
                            Some(ws_id.clone()),
                            path.clone(),
                        ))
                        .await
                        .map_err(journal)?;
                    let req = CreateFolderRequest {
                        display_name: leaf,
                        parent_folder_id: parent,
                    };
                    let ensured = match client.get_or_create_folder(&ws_id, &req).await {
                        Ok(e) => e,
                        Err(e) => {
                            let _ = txn.fail_intent(intent, &e.to_string()).await;
                            return Err(ctx(format!("creating folder {path} in {name}"))(e));
                        }
                    };
                    folder_ids.insert(path.clone(), ensured.value.id.clone());
                    finish(
                        txn,
                        intent,
                        ensured.created_here(),
                        ResourceKind::Folder,
                        &ws_id,
                        &ensured.value.id,
                        path,
                        Undo::DeleteFolder {
                            workspace_id: ws_id.clone(),
                            folder_id: ensured.value.id.clone(),
                        },
                    )
                    .await?
                }
                Op::CreateItem { item, item_type } => {
                    let kind = if item_type == "Lakehouse" {
                        ResourceKind::Lakehouse
                    } else {
                        ResourceKind::Notebook
                    };
                    let intent = txn
                        .intend(Intent::create(kind, Some(ws_id.clone()), item.name.clone()))
                        .await
                        .map_err(journal)?;
                    let mut req = CreateItemRequest::new(
                        item.name.clone(),
                        ItemType::from(item_type.as_str()),
                    );
                    req.description = Some(item.description.clone());
                    req.folder_id = item
                        .folder
                        .as_ref()
                        .and_then(|f| folder_ids.get(f).cloned());
                    req.definition = item.definition.as_deref().map(parts);
                    let ensured = match client.get_or_create_item(&ws_id, &req).await {
                        Ok(e) => e,
                        Err(e) => {
                            let _ = txn.fail_intent(intent, &e.to_string()).await;
                            return Err(ctx(format!("creating {target} in {name}"))(e));
                        }
                    };
                    let id = ensured.value.id.clone();
                    finish(
                        txn,
                        intent,
                        ensured.created_here(),
                        kind,
                        &ws_id,
                        &id,
                        &item.name,
                        Undo::DeleteItem {
                            workspace_id: ws_id.clone(),
                            item_id: id.clone(),
                        },
                    )
                    .await?
                }
                Op::UpdateItem {
                    id,
                    description,
                    previous,
                    ..
                } => {
                    txn.track(
                        ResourceRef::in_workspace(ResourceKind::Item, &ws_id, id, None),
                        Undo::RestoreItem {
                            workspace_id: ws_id.clone(),
                            item_id: id.clone(),
                            display_name: target
                                .split_once(' ')
                                .map(|(_, n)| n.to_string())
                                .unwrap_or_default(),
                            description: previous.clone(),
                        },
                    )
                    .await
                    .map_err(journal)?;
                    let req = UpdateItemRequest {
                        display_name: None,
                        description: Some(description.clone()),
                    };
                    client
                        .update_item(&ws_id, id, &req)
                        .await
                        .map_err(ctx(format!("updating {target} in {name}")))?;
                    "updated"
                }
                Op::UpdateDefinition {
                    id,
                    parts: new,
                    previous,
                    ..
                } => {
                    txn.track(
                        ResourceRef::in_workspace(ResourceKind::Item, &ws_id, id, None),
                        Undo::RestoreDefinition {
                            workspace_id: ws_id.clone(),
                            item_id: id.clone(),
                            parts: previous
                                .iter()
                                .map(|(p, v)| UndoPart {
                                    path: p.clone(),
                                    payload: v.clone(),
                                })
                                .collect(),
                            format: definition_format(new),
                        },
                    )
                    .await
                    .map_err(journal)?;
                    client
                        .update_item_definition(&ws_id, id, &parts(new), false)
                        .await
                        .map_err(ctx(format!(
                            "updating the definition of {target} in {name}"
                        )))?;
                    "updated"
                }
                Op::AddRole { principal } => {
                    txn.track(
                        ResourceRef::in_workspace(
                            ResourceKind::RoleAssignment,
                            &ws_id,
                            &principal.id,
                            None,
                        ),
                        Undo::RemoveRoleAssignment {
                            workspace_id: ws_id.clone(),
                            assignment_id: principal.id.clone(),
                        },
                    )
                    .await
                    .map_err(journal)?;
                    let req = AddRoleAssignmentRequest {
                        principal: Principal::new(
                            principal.id.clone(),
                            PrincipalType::from(principal.kind.as_str()),
                        ),
                        role: WorkspaceRole::from(principal.role.as_str()),
                    };
                    match client.ensure_role_assignment(&ws_id, &req).await {
                        Ok(e) if e.origin == fabrik_client::Origin::AlreadyExisted => "existed",
                        Ok(_) => "created",
                        Err(e) => return Err(ctx(format!("adding {target} to {name}"))(e)),
                    }
                }
                Op::UpdateRole { id, role, previous } => {
                    txn.track(
                        ResourceRef::in_workspace(ResourceKind::RoleAssignment, &ws_id, id, None),
                        Undo::RestoreRole {
                            workspace_id: ws_id.clone(),
                            assignment_id: id.clone(),
                            role: previous.clone(),
                        },
                    )
                    .await
                    .map_err(journal)?;
                    client
                        .update_role_assignment(&ws_id, id, WorkspaceRole::from(role.as_str()))
                        .await
                        .map_err(ctx(format!("updating {target} in {name}")))?;
                    "updated"
                }
                Op::DeleteItem { id, item_type } => {
                    // Journaled without an undo: a deleted item cannot be put back as it was, so the
                    // plan runs deletes after everything else in the workspace.
                    let kind = match item_type.as_str() {
                        "Lakehouse" => ResourceKind::Lakehouse,
                        "Notebook" => ResourceKind::Notebook,
                        _ => ResourceKind::Item,
                    };
                    txn.track_step(fabrik_txn::Step::without_undo(ResourceRef::in_workspace(
                        kind,
                        &ws_id,
                        id,
                        target.split_once(' ').map(|(_, n)| n.to_string()),
                    )))
                    .await
                    .map_err(journal)?;
                    match client.delete_item(&ws_id, id).await {
                        Ok(()) => "deleted",
                        Err(e) if e.is_not_found() => "deleted",
                        Err(e) => return Err(ctx(format!("deleting {target} in {name}"))(e)),
                    }
                }
                Op::ConnectGit { git } => {
                    txn.track(
                        ResourceRef::in_workspace(
                            ResourceKind::GitConnection,
                            &ws_id,
                            &ws_id,
                            None,
                        ),
                        Undo::DisconnectGit {
                            workspace_id: ws_id.clone(),
                        },
                    )
                    .await
                    .map_err(journal)?;
                    let req = GitConnectRequest {
                        git_provider_details: GitProviderDetails {
                            git_provider_type: GitProviderType::from(git.provider.as_str()),
                            repository_name: git.repository.clone(),
                            branch_name: git.branch.clone(),
                            directory_name: git.directory.clone(),
                            organization_name: git.organization.clone(),
                            project_name: git.project.clone(),
                            owner_name: git.owner.clone(),
                            custom_domain_name: None,
                        },
                        my_git_credentials: git.connection_id.as_ref().map(|id| GitCredentials {
                            source: GitCredentialsSource::ConfiguredConnection,
                            connection_id: Some(id.clone()),
                        }),
                    };
                    match client.git_connect(&ws_id, &req).await {
                        Ok(()) => "created",
                        Err(e) if e.error_code() == Some("WorkspaceAlreadyConnectedToGit") => {
                            "existed"
                        }
                        Err(e) => return Err(ctx(format!("connecting git for {name}"))(e)),
                    }
                }
            })
        }
        .instrument(span.clone())
        .await;
        let outcome = outcome.inspect_err(|e| {
            span.record("otel.status_code", "error");
            span.record("otel.status_message", e.to_string());
        })?;
        span.record("outcome", outcome);
        if outcome != "existed" {
            metrics::counter!(
                RESOURCES,
                "kind" => plan::kind_label(change.op.resource_kind()),
                "action" => outcome,
            )
            .increment(1);
        }
        let applied = Applied {
            workspace: name.clone(),
            target,
            outcome,
        };
        if let Some(p) = progress {
            (p.0)(&applied);
        }
        done.push(applied);
    }
    Ok(done)
}

#[allow(
    clippy::too_many_arguments,
    reason = "one place records every kind of create"
)]
async fn finish(
    txn: &Transaction,
    intent: fabrik_txn::IntentId,
    created: bool,
    kind: ResourceKind,
    ws_id: &str,
    id: &str,
    name: &str,
    undo: Undo,
) -> Result<&'static str, EngineError> {
    if created {
        txn.complete_intent(
            intent,
            ResourceRef::in_workspace(kind, ws_id, id, Some(name.to_string())),
            undo,
        )
        .await
        .map_err(journal)?;
        Ok("created")
    } else {
        txn.fail_intent(intent, "already existed")
            .await
            .map_err(journal)?;
        Ok("existed")
    }
}

/// Applies every workspace's plan, `concurrency` workspaces at a time; stops at the first
/// failure (after the workspaces in flight finish) and returns everything done so far.
pub async fn apply(
    client: &FabricClient,
    txn: &Arc<Transaction>,
    plan: &Plan,
    concurrency: usize,
    progress: Option<&Progress>,
    halt: &AtomicBool,
) -> (Vec<Applied>, Vec<EngineError>) {
    // Once one workspace fails, or the run is halted, workspaces not yet started are skipped.
    let stop = AtomicBool::new(false);
    let stop = &stop;
    let runs = plan
        .workspaces
        .iter()
        .filter(|w| !w.changes.is_empty())
        .map(|wp| async move {
            if stop.load(Ordering::SeqCst) || halt.load(Ordering::SeqCst) {
                return Ok(Vec::new());
            }
            let span = tracing::info_span!("fabrik.workspace", workspace = %wp.name);
            let r = apply_workspace(client, txn, wp, progress, Some(halt))
                .instrument(span)
                .await;
            if r.is_err() {
                stop.store(true, Ordering::SeqCst);
            }
            r
        });
    let mut stream = futures::stream::iter(runs).buffer_unordered(concurrency.max(1));
    let mut done = Vec::new();
    let mut errors = Vec::new();
    while let Some(r) = stream.next().await {
        match r {
            Ok(mut d) => done.append(&mut d),
            // The workspaces in flight finish, so the journal is complete before any rollback.
            Err(e) => errors.push(e),
        }
    }
    (done, errors)
}

/// What destroy did to one workspace.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Destroyed {
    /// Workspace name.
    pub workspace: String,
    /// Resources removed.
    pub removed: Vec<String>,
    /// Whether the workspace itself was deleted (only when nothing unmanaged was left in it).
    pub workspace_deleted: bool,
    /// Resources left because the config does not describe them.
    pub kept: Vec<String>,
}

/// Removes what the config describes: managed items, role assignments, git connection and
/// folders, then the workspace itself when nothing the config does not describe is left in it.
pub async fn destroy(
    client: &FabricClient,
    desired: &Desired,
) -> Result<Vec<Destroyed>, EngineError> {
    let all: Vec<_> = client
        .list_workspaces()
        .try_collect()
        .await
        .map_err(ctx("listing workspaces"))?;
    let mut out = Vec::new();
    for d in &desired.workspaces {
        let Some(w) = all
            .iter()
            .find(|w| w.display_name.eq_ignore_ascii_case(&d.name))
        else {
            continue;
        };
        let live = read_workspace(
            client,
            &w.id,
            &w.display_name,
            &w.description,
            w.capacity_id.clone(),
            &[],
        )
        .await?;
        let mut done = Destroyed {
            workspace: d.name.clone(),
            removed: vec![],
            workspace_deleted: false,
            kept: vec![],
        };
        let managed = |l: &LiveItem| {
            d.items
                .iter()
                .any(|i| i.item_type == l.item_type && i.name.eq_ignore_ascii_case(&l.name))
        };
        done.kept = live
            .items
            .iter()
            .filter(|l| !managed(l))
            .map(|l| format!("{} {}", l.item_type.to_lowercase(), l.name))
            .collect();
        if done.kept.is_empty() {
            // Deleting the workspace removes everything in it at once.
            client
                .delete_workspace(&w.id)
                .await
                .map_err(ctx(format!("deleting workspace {}", d.name)))?;
            done.workspace_deleted = true;
            done.removed.push(format!("workspace {}", d.name));
            out.push(done);
            continue;
        }
        if d.git.is_some() && live.git.is_some() {
            client
                .git_disconnect(&w.id)
                .await
                .map_err(ctx(format!("disconnecting git of {}", d.name)))?;
            done.removed.push("git connection".into());
        }
        for l in live.items.iter().filter(|l| managed(l)) {
            match client.delete_item(&w.id, &l.id).await {
                Ok(()) => done
                    .removed
                    .push(format!("{} {}", l.item_type.to_lowercase(), l.name)),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(ctx(format!("deleting {} {}", l.item_type, l.name))(e)),
            }
        }
        for p in &d.principals {
            if live.roles.iter().any(|r| r.id.eq_ignore_ascii_case(&p.id)) {
                match client.delete_role_assignment(&w.id, &p.id).await {
                    Ok(()) => done.removed.push(format!("role of {} {}", p.kind, p.id)),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(ctx(format!("removing the role of {}", p.id))(e)),
                }
            }
        }
        out.push(done);
    }
    Ok(out)
}
