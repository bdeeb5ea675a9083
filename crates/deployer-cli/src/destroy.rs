//! `fabrik destroy` as a plan: the deletes of what the configuration describes, never of what
//! it does not, ordered by the engine's graph and carried out by the same walk, journal and
//! report as every other run — so a destroy that dies halfway is listed by `fabrik status`,
//! and a second destroy plans what is left and finishes it.
//!
//! A workspace holding nothing the configuration does not describe is deleted whole. Else
//! its git connection is disconnected first, then its described items (those written in the
//! configuration and those its `repository:` publishes) are deleted, then its described
//! folders deepest first, and its described role assignments. A data-bearing item published
//! from a repository is kept unless its fabric-cicd `enable_<type>_unpublish` flag is given,
//! as fabric-cicd's unpublish keeps it. The deletes that destroy data — a whole workspace
//! holding data-bearing items, a configured lakehouse — are marked in the plan
//! ([`DestroyOp::data_loss`]) and carried out only with `--allow-data-loss`.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use fabrik_client::models::{Folder, Item};
use fabrik_client::{FabricClient, FabricError, ItemFilter};
use fabrik_core::resource::{ResourceKind, ResourceRef};
use futures::TryStreamExt;
use serde::Serialize;

use crate::config::{Desired, DesiredWorkspace};
use crate::engine::{
    Address, ApplyCx, DynOp, EngineError, Graph, Need, NodeSpec, Outcome, ctx, folder_path,
};
use crate::plan::{Action, Change, DataLoss, Plan, WorkspacePlan};

/// One delete of a destroy.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "delete", rename_all = "camelCase")]
pub enum DestroyOp {
    /// The whole workspace, with everything in it.
    #[serde(rename_all = "camelCase")]
    Workspace {
        /// Its id.
        id: String,
        /// Its name.
        name: String,
        /// The data-bearing items it holds (`lakehouse LH`), which go with it.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        holds_data: Vec<String>,
    },
    /// The git connection.
    Git {
        /// Its workspace.
        workspace_id: String,
    },
    /// An item.
    #[serde(rename_all = "camelCase")]
    Item {
        /// Its workspace.
        workspace_id: String,
        /// Its id.
        id: String,
        /// Its name.
        name: String,
        /// Its type.
        item_type: String,
        /// For an item a workspace's `repository:` publishes: fabric-cicd's
        /// `enable_<type>_unpublish` flag, which consents to deleting it.
        #[serde(skip)]
        cicd_flag: Option<&'static str>,
    },
    /// An empty folder.
    Folder {
        /// Its workspace.
        workspace_id: String,
        /// Its id.
        id: String,
        /// Its path.
        path: String,
    },
    /// A role assignment.
    Role {
        /// Its workspace.
        workspace_id: String,
        /// The principal.
        principal_id: String,
    },
}

impl DestroyOp {
    /// Whether the delete destroys stored data (see [`crate::plan::Change::data_loss`]).
    pub fn data_loss(&self) -> Option<DataLoss> {
        match self {
            DestroyOp::Workspace {
                name, holds_data, ..
            } if !holds_data.is_empty() => Some(DataLoss {
                reason: format!(
                    "deletes workspace {name} with the data stored in {}",
                    holds_data.join(", ")
                ),
                cicd_flag: None,
            }),
            DestroyOp::Item {
                name,
                item_type,
                cicd_flag,
                ..
            } => crate::plan::data_bearing(item_type).map(|t| DataLoss {
                reason: format!("deletes {t} {name} and the data stored in it"),
                cicd_flag: *cicd_flag,
            }),
            _ => None,
        }
    }

    fn resource(&self) -> ResourceRef {
        match self {
            DestroyOp::Workspace { id, name, .. } => ResourceRef::workspace(id, name),
            DestroyOp::Git { workspace_id } => ResourceRef::in_workspace(
                ResourceKind::GitConnection,
                workspace_id,
                workspace_id,
                None,
            ),
            DestroyOp::Item {
                workspace_id,
                id,
                name,
                ..
            } => {
                ResourceRef::in_workspace(ResourceKind::Item, workspace_id, id, Some(name.clone()))
            }
            DestroyOp::Folder {
                workspace_id,
                id,
                path,
            } => ResourceRef::in_workspace(
                ResourceKind::Folder,
                workspace_id,
                id,
                Some(path.clone()),
            ),
            DestroyOp::Role {
                workspace_id,
                principal_id,
            } => ResourceRef::in_workspace(
                ResourceKind::RoleAssignment,
                workspace_id,
                principal_id,
                None,
            ),
        }
    }

    async fn send(&self, client: &FabricClient) -> Result<(), FabricError> {
        match self {
            DestroyOp::Workspace { id, .. } => client.delete_workspace(id).await,
            DestroyOp::Git { workspace_id } => client.git_disconnect(workspace_id).await,
            DestroyOp::Item {
                workspace_id, id, ..
            } => client.delete_item(workspace_id, id).await,
            DestroyOp::Folder {
                workspace_id, id, ..
            } => client.delete_folder(workspace_id, id).await,
            DestroyOp::Role {
                workspace_id,
                principal_id,
            } => {
                client
                    .delete_role_assignment(workspace_id, principal_id)
                    .await
            }
        }
    }
}

#[async_trait]
impl DynOp for DestroyOp {
    fn kind(&self) -> &'static str {
        "destroy"
    }
    fn resource_kind(&self) -> ResourceKind {
        self.resource().kind
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
    async fn apply(&self, cx: &ApplyCx<'_>) -> Result<Outcome, EngineError> {
        // Journaled before it is sent: a delete cannot be undone, but a crashed destroy's
        // journal says what it was doing.
        cx.track_without_undo(self.resource()).await?;
        match self.send(cx.client).await {
            Ok(()) => Ok(Outcome::Deleted),
            // Already gone (a second destroy after a crash), or git already disconnected.
            Err(e) if e.is_not_found() || e.error_code() == Some("WorkspaceNotConnectedToGit") => {
                Ok(Outcome::Deleted)
            }
            Err(e) => Err(cx.fabric(&format!("deleting {}", cx.target))(e)),
        }
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Consent to delete data-bearing repository items, by fabric-cicd's flag names, and the
/// kinds that plan deletes of their own.
#[derive(Debug, Clone, Default)]
pub struct DestroyOptions {
    /// fabric-cicd features given (`enable_lakehouse_unpublish`, …).
    pub cicd_features: Vec<String>,
    /// Kinds a program adds ([`crate::engine::Kind::destroy`]): their deletes join the plan,
    /// and what they delete counts as described. Of the built-in kinds, those configured by a
    /// key of their own (`spark_pools:`) plan their deletes so too; the others' deletes are
    /// this module's.
    pub kinds: Option<crate::engine::Registry>,
}

/// The plan of a destroy: for each described workspace that exists, its deletes.
pub async fn destroy_plan(
    client: &FabricClient,
    desired: &Desired,
    options: &DestroyOptions,
) -> Result<Plan, EngineError> {
    let all: Vec<_> = client
        .list_workspaces()
        .try_collect()
        .await
        .map_err(ctx("listing workspaces"))?;
    let mut workspaces = Vec::new();
    for d in &desired.workspaces {
        let Some(w) = all
            .iter()
            .find(|w| w.display_name.eq_ignore_ascii_case(&d.name))
        else {
            continue;
        };
        let items: Vec<Item> = client
            .list_items(&w.id, &ItemFilter::default())
            .try_collect()
            .await
            .map_err(ctx(format!("listing items of {}", d.name)))?;
        let folders: Vec<Folder> = client
            .list_folders(&w.id)
            .try_collect()
            .await
            .map_err(ctx(format!("listing folders of {}", d.name)))?;
        let roles: Vec<String> = client
            .list_role_assignments(&w.id)
            .map_ok(|r| r.principal.id)
            .try_collect()
            .await
            .map_err(ctx(format!("listing role assignments of {}", d.name)))?;
        let git = d.git.is_some() && connected(client, &w.id, &d.name).await?;
        // Built-in kinds configured by a key of their own plan their deletes, as added ones do.
        let configured = crate::engine::Registry::builtin().configured_in(d);
        let kinds = match &options.kinds {
            Some(more) => configured.and(more),
            None => configured,
        };
        let (own, covered) = if kinds.names().is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let live = crate::engine::LiveWorkspace {
                id: w.id.clone(),
                name: w.display_name.clone(),
                description: w.description.clone(),
                capacity_id: w.capacity_id.clone(),
            };
            kinds.plan_destroys(client, d, &live).await?
        };
        let live = Live {
            id: &w.id,
            items: &items,
            folders: &folders,
            roles: &roles,
            git,
            covered: &covered,
        };
        workspaces.push(workspace_plan(d, &live, options, own));
    }
    let nodes: Vec<NodeSpec> = workspaces
        .iter()
        .flat_map(|w: &WorkspacePlan| &w.changes)
        .map(|c| NodeSpec {
            address: c.address.clone(),
            action: c.action,
            needs: c.needs.clone(),
        })
        .collect();
    let graph = Graph::build(&nodes)?;
    Ok(Plan { workspaces, graph })
}

/// What one workspace holds.
struct Live<'a> {
    id: &'a str,
    items: &'a [Item],
    folders: &'a [Folder],
    roles: &'a [String],
    /// Connected to git.
    git: bool,
    /// Ids of the resources the kinds' own deletes remove.
    covered: &'a [String],
}

/// Whether the workspace is connected to git (asked only where the configuration has git).
async fn connected(client: &FabricClient, id: &str, name: &str) -> Result<bool, EngineError> {
    match client.git_connection(id).await {
        Ok(c) => Ok(c.git_provider_details.is_some()),
        Err(e) if e.is_not_found() || e.error_code() == Some("WorkspaceNotConnectedToGit") => {
            Ok(false)
        }
        Err(e) => Err(ctx(format!("reading the git connection of {name}"))(e)),
    }
}

/// Whether the configuration describes `item`.
enum Described {
    /// No: it is kept.
    No,
    /// In the configuration's items.
    Configured,
    /// Published from the workspace's `repository:`; `Some(flag)` when it holds data, with
    /// fabric-cicd's flag that consents to deleting it.
    Published(Option<&'static str>),
}

fn described(d: &DesiredWorkspace, item: &Item) -> Described {
    let (t, n) = (item.kind.as_str(), item.display_name.as_str());
    if d.items
        .iter()
        .any(|m| m.item_type == t && m.name.eq_ignore_ascii_case(n))
    {
        return Described::Configured;
    }
    let published = d.publish.as_ref().is_some_and(|p| {
        p.items
            .iter()
            .any(|(pt, pn)| pt == t && pn.eq_ignore_ascii_case(n))
    });
    if published {
        Described::Published(crate::plan::cicd_unpublish_flag(t))
    } else {
        Described::No
    }
}

fn change(d: &DesiredWorkspace, kind: &'static str, key: &str, op: DestroyOp) -> Change {
    let target = match &op {
        DestroyOp::Workspace { name, .. } => format!("workspace {name}"),
        DestroyOp::Git { .. } => "git connection".into(),
        DestroyOp::Item { name, .. } => format!("{kind} {name}"),
        DestroyOp::Folder { path, .. } => format!("folder {path}"),
        DestroyOp::Role { principal_id, .. } => format!("role of {principal_id}"),
    };
    Change {
        action: Action::Delete,
        target,
        detail: None,
        address: Address::new(&d.name, kind, key),
        needs: Vec::new(),
        op: Arc::new(op),
    }
}

fn workspace_plan(
    d: &DesiredWorkspace,
    live: &Live<'_>,
    options: &DestroyOptions,
    own: Vec<Change>,
) -> WorkspacePlan {
    let ws = live.id.to_string();
    let mut kept = Vec::new();
    let mut doomed = Vec::new();
    let label = |i: &Item| format!("{} {}", i.kind.as_str().to_lowercase(), i.display_name);
    for i in live.items {
        if live.covered.contains(&i.id) {
            continue; // a kind deletes it itself
        }
        match described(d, i) {
            Described::Configured | Described::Published(None) => doomed.push((i, None)),
            Described::Published(Some(flag)) if options.cicd_features.iter().any(|g| g == flag) => {
                doomed.push((i, Some(flag)))
            }
            Described::Published(Some(flag)) => kept.push(format!(
                "{} (holds data: pass --cicd-feature {flag} to delete it)",
                label(i)
            )),
            Described::No => kept.push(label(i)),
        }
    }
    // The kinds' own deletes come first: a workspace deleted whole waits for them.
    let own_needs: Vec<Need> = own.iter().map(|c| Need::At(c.address.clone())).collect();
    let mut changes = own;
    if kept.is_empty() {
        // Deleting the workspace removes everything in it at once.
        let op = DestroyOp::Workspace {
            id: ws.clone(),
            name: d.name.clone(),
            holds_data: live
                .items
                .iter()
                .filter(|i| crate::plan::data_bearing(i.kind.as_str()).is_some())
                .map(label)
                .collect(),
        };
        let mut whole = change(d, "workspace", &d.name, op);
        whole.needs = own_needs;
        changes.push(whole);
    } else {
        changes.extend(partial(d, live, &doomed));
    }
    WorkspacePlan {
        name: d.name.clone(),
        id: Some(ws.clone()),
        changes,
        unmanaged: kept,
        // The kinds' own deletes find the workspace by its address, as in any plan.
        known_ids: vec![(crate::engine::workspace_address(&d.name), ws.clone())],
        seen_items: Vec::new(),
        desired: d.clone(),
        reads: Default::default(),
        rendered: None,
        record_unchanged: true,
        deployed: Default::default(),
    }
}

/// The deletes inside a workspace that is kept: git first, then items, folders deepest first
/// (each after what it held), then roles.
fn partial(
    d: &DesiredWorkspace,
    live: &Live<'_>,
    doomed: &[(&Item, Option<&'static str>)],
) -> Vec<Change> {
    let ws = live.id.to_string();
    let mut changes = Vec::new();
    let git = live.git.then(|| {
        let op = DestroyOp::Git {
            workspace_id: ws.clone(),
        };
        change(d, "git", "git", op)
    });
    let git_need: Vec<Need> = git.iter().map(|g| Need::At(g.address.clone())).collect();
    changes.extend(git);
    for (i, cicd_flag) in doomed {
        let key = format!("{}.{}", i.display_name, i.kind.as_str());
        let op = DestroyOp::Item {
            workspace_id: ws.clone(),
            id: i.id.clone(),
            name: i.display_name.clone(),
            item_type: i.kind.as_str().to_string(),
            cicd_flag: *cicd_flag,
        };
        let mut c = change(d, "item", &key, op);
        c.target = format!("{} {}", i.kind.as_str().to_lowercase(), i.display_name);
        c.needs = git_need.clone();
        changes.push(c);
    }
    let doomed: Vec<&Item> = doomed.iter().map(|(i, _)| *i).collect();
    changes.extend(folder_deletes(d, live, &doomed, &changes));
    for p in d
        .principals
        .iter()
        .filter(|p| live.roles.iter().any(|r| r.eq_ignore_ascii_case(&p.id)))
    {
        let op = DestroyOp::Role {
            workspace_id: ws.clone(),
            principal_id: p.id.clone(),
        };
        changes.push(change(d, "role", &p.id, op));
    }
    changes
}

/// Described folders that hold nothing kept, each after the deletes of what it holds.
fn folder_deletes(
    d: &DesiredWorkspace,
    live: &Live<'_>,
    doomed: &[&Item],
    item_changes: &[Change],
) -> Vec<Change> {
    let by_id: std::collections::HashMap<&str, &Folder> =
        live.folders.iter().map(|f| (f.id.as_str(), f)).collect();
    let path_of = |id: &str| folder_path(&by_id, id);
    let described: BTreeSet<&str> = d.folders.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    let mut folders: Vec<(&Folder, String)> = live
        .folders
        .iter()
        .map(|f| (f, path_of(&f.id)))
        .filter(|(_, p)| described.contains(p.as_str()))
        .collect();
    // Deepest first, so a parent's needs name its children's deletes.
    folders.sort_by_key(|(_, p)| std::cmp::Reverse(p.matches('/').count()));
    for (f, path) in &folders {
        let inside = |p: &str| p == path || p.starts_with(&format!("{path}/"));
        let holds_kept = live.items.iter().any(|i| {
            i.folder_id
                .as_deref()
                .is_some_and(|fid| inside(&path_of(fid)))
                && !doomed.iter().any(|x| x.id == i.id)
        }) || live.folders.iter().any(|g| {
            let gp = path_of(&g.id);
            gp.starts_with(&format!("{path}/")) && !described.contains(gp.as_str())
        });
        if holds_kept {
            continue;
        }
        let mut needs: Vec<Need> = doomed
            .iter()
            .zip(item_changes.iter().filter(|c| c.address.kind == "item"))
            .filter(|(i, _)| {
                i.folder_id
                    .as_deref()
                    .is_some_and(|fid| inside(&path_of(fid)))
            })
            .map(|(_, c)| Need::At(c.address.clone()))
            .collect();
        needs.extend(
            out.iter()
                .filter(|c: &&Change| c.address.key.starts_with(&format!("{path}/")))
                .map(|c| Need::At(c.address.clone())),
        );
        let op = DestroyOp::Folder {
            workspace_id: live.id.to_string(),
            id: f.id.clone(),
            path: path.clone(),
        };
        let mut c = change(d, "folder", path, op);
        c.needs = needs;
        out.push(c);
    }
    out
}
