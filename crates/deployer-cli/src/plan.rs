//! The plan: a pure diff of the desired state against the live state.
//!
//! Keeping the diff free of I/O makes the strongest properties cheap to test: the plan of a
//! state against itself is empty, and applying a plan yields the desired state.

use fabrik_core::ResourceKind;
use serde::Serialize;

use crate::config::model::Git;
use crate::config::{DesiredItem, DesiredPrincipal, DesiredWorkspace};

/// A folder as it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFolder {
    /// Id.
    pub id: String,
    /// Path from the workspace root, `a/b`.
    pub path: String,
}

/// An item as it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveItem {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Item type.
    pub item_type: String,
    /// Description.
    pub description: String,
    /// Folder path.
    pub folder: Option<String>,
    /// Definition parts (path, base64), read only for items whose definition is managed.
    pub definition: Option<Vec<(String, String)>>,
}

/// A role assignment as it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRole {
    /// Principal id (= assignment id).
    pub id: String,
    /// Role.
    pub role: String,
}

/// A workspace as it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveWorkspace {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Capacity id.
    pub capacity_id: Option<String>,
    /// Folders.
    pub folders: Vec<LiveFolder>,
    /// Items.
    pub items: Vec<LiveItem>,
    /// Role assignments.
    pub roles: Vec<LiveRole>,
    /// Git connection.
    pub git: Option<Git>,
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Make something new.
    Create,
    /// Change something that exists.
    Update,
    /// Remove something the configuration does not describe (only with `--prune`).
    Delete,
}

/// One change, with what is needed to carry it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Op {
    /// Create the workspace.
    CreateWorkspace {
        /// Description.
        description: String,
        /// Capacity id.
        capacity_id: Option<String>,
    },
    /// Change the workspace's description.
    UpdateWorkspace {
        /// New description.
        description: String,
        /// Previous description.
        previous: String,
    },
    /// Assign the workspace to a capacity.
    AssignCapacity {
        /// Capacity id.
        capacity_id: String,
        /// Previous capacity id.
        previous: Option<String>,
    },
    /// Create a folder (its parent exists or is created before it).
    CreateFolder {
        /// Path.
        path: String,
    },
    /// Create an item.
    CreateItem {
        /// The item.
        #[serde(skip)]
        item: DesiredItem,
        /// Its type.
        item_type: String,
    },
    /// Change an item's description.
    UpdateItem {
        /// Item id.
        id: String,
        /// Item type.
        item_type: String,
        /// New description.
        description: String,
        /// Previous description.
        previous: String,
    },
    /// Replace an item's definition.
    UpdateDefinition {
        /// Item id.
        id: String,
        /// Item type.
        item_type: String,
        /// New parts.
        #[serde(skip)]
        parts: Vec<(String, String)>,
        /// Previous parts.
        #[serde(skip)]
        previous: Vec<(String, String)>,
    },
    /// Add a role assignment.
    AddRole {
        /// The principal.
        principal: DesiredPrincipalView,
    },
    /// Change a role assignment's role.
    UpdateRole {
        /// Principal id.
        id: String,
        /// New role.
        role: String,
        /// Previous role.
        previous: String,
    },
    /// Delete an item the configuration does not describe. Irreversible: apply runs deletes
    /// last, after everything else in the workspace succeeded.
    DeleteItem {
        /// Item id.
        id: String,
        /// Item type.
        item_type: String,
    },
    /// Connect git.
    ConnectGit {
        /// The connection.
        #[serde(skip)]
        git: Git,
    },
}

impl Op {
    /// The kind of resource this change touches.
    pub fn resource_kind(&self) -> ResourceKind {
        match self {
            Op::CreateWorkspace { .. } | Op::UpdateWorkspace { .. } => ResourceKind::Workspace,
            Op::AssignCapacity { .. } => ResourceKind::CapacityAssignment,
            Op::CreateFolder { .. } => ResourceKind::Folder,
            Op::CreateItem { item_type, .. }
            | Op::UpdateItem { item_type, .. }
            | Op::UpdateDefinition { item_type, .. }
            | Op::DeleteItem { item_type, .. } => match item_type.as_str() {
                "Lakehouse" => ResourceKind::Lakehouse,
                "Notebook" => ResourceKind::Notebook,
                _ => ResourceKind::Item,
            },
            Op::AddRole { .. } | Op::UpdateRole { .. } => ResourceKind::RoleAssignment,
            Op::ConnectGit { .. } => ResourceKind::GitConnection,
        }
    }
}

/// The `kind` label of `fabrik_resources_total` (docs/METRICS.md).
pub fn kind_label(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Workspace => "workspace",
        ResourceKind::Lakehouse => "lakehouse",
        ResourceKind::Notebook => "notebook",
        ResourceKind::Folder => "folder",
        ResourceKind::RoleAssignment => "role_assignment",
        ResourceKind::GitConnection => "git_connection",
        ResourceKind::CapacityAssignment => "capacity_assignment",
        _ => "item",
    }
}

/// A principal as plans show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredPrincipalView {
    /// Object id.
    pub id: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Role.
    pub role: String,
}

impl From<&DesiredPrincipal> for DesiredPrincipalView {
    fn from(p: &DesiredPrincipal) -> Self {
        Self {
            id: p.id.clone(),
            kind: p.kind.clone(),
            role: p.role.clone(),
        }
    }
}

/// One planned change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Create or update.
    pub action: Action,
    /// What it is about, for humans: `lakehouse BRONZE_Sales`.
    pub target: String,
    /// What will change: `description: "a" → "b"`.
    pub detail: Option<String>,
    /// How.
    #[serde(flatten)]
    pub op: Op,
}

/// The plan for one workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkspacePlan {
    /// The workspace's display name.
    pub name: String,
    /// Its id, when it exists.
    pub id: Option<String>,
    /// Changes in the order they must be applied.
    pub changes: Vec<Change>,
    /// Resources in the workspace that the config does not describe (left alone).
    pub unmanaged: Vec<String>,
    /// The desired state, for apply.
    #[serde(skip)]
    pub desired: DesiredWorkspace,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Per workspace.
    pub workspaces: Vec<WorkspacePlan>,
}

impl Plan {
    /// How many changes in all.
    pub fn change_count(&self) -> usize {
        self.workspaces.iter().map(|w| w.changes.len()).sum()
    }
}

fn change(action: Action, target: String, detail: Option<String>, op: Op) -> Change {
    Change {
        action,
        target,
        detail,
        op,
    }
}

/// Diffs one workspace. `capacity_id` is the desired capacity, already resolved to an id.
/// Items the configuration does not describe are reported as unmanaged and left alone.
pub fn diff_workspace(
    desired: &DesiredWorkspace,
    capacity_id: Option<&str>,
    live: Option<&LiveWorkspace>,
) -> WorkspacePlan {
    diff_workspace_pruning(desired, capacity_id, live, false)
}

/// [`diff_workspace`], and with `prune` items the configuration does not describe become
/// deletes, planned after every other change. Role assignments and git connections are never
/// pruned: removing an unlisted assignment could lock the deployer itself out.
pub fn diff_workspace_pruning(
    desired: &DesiredWorkspace,
    capacity_id: Option<&str>,
    live: Option<&LiveWorkspace>,
    prune: bool,
) -> WorkspacePlan {
    let mut changes = Vec::new();
    let mut unmanaged = Vec::new();
    let mut deletes = Vec::new();
    let empty = LiveWorkspace {
        id: String::new(),
        name: desired.name.clone(),
        description: String::new(),
        capacity_id: None,
        folders: vec![],
        items: vec![],
        roles: vec![],
        git: None,
    };
    let live_ws = match live {
        Some(l) => {
            if l.description != desired.description {
                changes.push(change(
                    Action::Update,
                    format!("workspace {}", desired.name),
                    Some(format!(
                        "description: {:?} → {:?}",
                        l.description, desired.description
                    )),
                    Op::UpdateWorkspace {
                        description: desired.description.clone(),
                        previous: l.description.clone(),
                    },
                ));
            }
            if let Some(c) = capacity_id
                && l.capacity_id.as_deref() != Some(c)
            {
                changes.push(change(
                    Action::Update,
                    format!("workspace {}", desired.name),
                    Some(format!(
                        "capacity: {} → {c}",
                        l.capacity_id.as_deref().unwrap_or("none")
                    )),
                    Op::AssignCapacity {
                        capacity_id: c.to_string(),
                        previous: l.capacity_id.clone(),
                    },
                ));
            }
            l
        }
        None => {
            changes.push(change(
                Action::Create,
                format!("workspace {}", desired.name),
                None,
                Op::CreateWorkspace {
                    description: desired.description.clone(),
                    capacity_id: capacity_id.map(str::to_string),
                },
            ));
            &empty
        }
    };

    for f in &desired.folders {
        if !live_ws.folders.iter().any(|l| &l.path == f) {
            changes.push(change(
                Action::Create,
                format!("folder {f}"),
                None,
                Op::CreateFolder { path: f.clone() },
            ));
        }
    }

    for item in &desired.items {
        let found = live_ws
            .items
            .iter()
            .find(|l| l.item_type == item.item_type && l.name.eq_ignore_ascii_case(&item.name));
        let target = format!("{} {}", item.item_type.to_lowercase(), item.name);
        match found {
            None => changes.push(change(
                Action::Create,
                target,
                item.folder.as_ref().map(|f| format!("in folder {f}")),
                Op::CreateItem {
                    item: item.clone(),
                    item_type: item.item_type.clone(),
                },
            )),
            Some(l) => {
                if l.description != item.description {
                    changes.push(change(
                        Action::Update,
                        target.clone(),
                        Some(format!(
                            "description: {:?} → {:?}",
                            l.description, item.description
                        )),
                        Op::UpdateItem {
                            id: l.id.clone(),
                            item_type: item.item_type.clone(),
                            description: item.description.clone(),
                            previous: l.description.clone(),
                        },
                    ));
                }
                if let Some(parts) = &item.definition
                    && !same_parts(parts, l.definition.as_deref().unwrap_or(&[]))
                {
                    changes.push(change(
                        Action::Update,
                        target,
                        Some("definition changed".into()),
                        Op::UpdateDefinition {
                            id: l.id.clone(),
                            item_type: item.item_type.clone(),
                            parts: parts.clone(),
                            previous: l.definition.clone().unwrap_or_default(),
                        },
                    ));
                }
            }
        }
    }
    for l in &live_ws.items {
        if !desired
            .items
            .iter()
            .any(|d| d.item_type == l.item_type && d.name.eq_ignore_ascii_case(&l.name))
        {
            unmanaged.push(format!("{} {}", l.item_type.to_lowercase(), l.name));
            if prune {
                deletes.push(change(
                    Action::Delete,
                    format!("{} {}", l.item_type.to_lowercase(), l.name),
                    Some("not in the configuration".into()),
                    Op::DeleteItem {
                        id: l.id.clone(),
                        item_type: l.item_type.clone(),
                    },
                ));
            }
        }
    }

    for p in &desired.principals {
        match live_ws
            .roles
            .iter()
            .find(|r| r.id.eq_ignore_ascii_case(&p.id))
        {
            None => changes.push(change(
                Action::Create,
                format!("role {} for {} {}", p.role, p.kind, p.id),
                None,
                Op::AddRole {
                    principal: p.into(),
                },
            )),
            Some(r) if r.role != p.role => changes.push(change(
                Action::Update,
                format!("role for {} {}", p.kind, p.id),
                Some(format!("role: {} → {}", r.role, p.role)),
                Op::UpdateRole {
                    id: r.id.clone(),
                    role: p.role.clone(),
                    previous: r.role.clone(),
                },
            )),
            Some(_) => {}
        }
    }

    if let Some(g) = &desired.git {
        match &live_ws.git {
            None => changes.push(change(
                Action::Create,
                format!("git connection {}/{}@{}", g.owner.as_deref().or(g.organization.as_deref()).unwrap_or(""), g.repository, g.branch),
                None,
                Op::ConnectGit { git: g.clone() },
            )),
            Some(l) if !same_git(l, g) => unmanaged.push(format!(
                "git connection differs ({}@{} in Fabric); disconnect it to let fabrik connect the configured one",
                l.repository, l.branch
            )),
            Some(_) => {}
        }
    }

    if prune {
        // Deletes go last; what they delete is no longer "unmanaged and left alone".
        unmanaged.retain(|u| !deletes.iter().any(|d: &Change| &d.target == u));
        changes.extend(deletes);
    }
    WorkspacePlan {
        name: desired.name.clone(),
        id: live.map(|l| l.id.clone()),
        changes,
        unmanaged,
        desired: desired.clone(),
    }
}

/// Git connections compare by where they point; the credentials' connection is not readable back.
fn same_git(live: &Git, want: &Git) -> bool {
    Git {
        connection_id: None,
        ..want.clone()
    } == Git {
        connection_id: None,
        ..live.clone()
    }
}

/// Definitions compare by the parts fabrik manages; parts the service adds (`.platform`) are ignored.
fn same_parts(want: &[(String, String)], have: &[(String, String)]) -> bool {
    want.iter()
        .all(|(path, payload)| have.iter().any(|(p, v)| p == path && v == payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> DesiredWorkspace {
        DesiredWorkspace {
            name: "p-a-dev".into(),
            description: "d".into(),
            capacity: None,
            folders: vec!["raw".into(), "raw/x".into()],
            items: vec![
                DesiredItem {
                    name: "BRONZE_L".into(),
                    item_type: "Lakehouse".into(),
                    description: "".into(),
                    folder: None,
                    definition: None,
                },
                DesiredItem {
                    name: "01_N".into(),
                    item_type: "Notebook".into(),
                    description: "n".into(),
                    folder: Some("raw".into()),
                    definition: Some(vec![("notebook-content.py".into(), "cHJpbnQ=".into())]),
                },
            ],
            principals: vec![DesiredPrincipal {
                id: "9117cbfa-f0a7-43b7-846f-96ba66a3c1c0".into(),
                kind: "User".into(),
                role: "Admin".into(),
            }],
            git: None,
        }
    }

    fn live_of(d: &DesiredWorkspace) -> LiveWorkspace {
        LiveWorkspace {
            id: "w1".into(),
            name: d.name.clone(),
            description: d.description.clone(),
            capacity_id: Some("c1".into()),
            folders: d
                .folders
                .iter()
                .enumerate()
                .map(|(i, p)| LiveFolder {
                    id: format!("f{i}"),
                    path: p.clone(),
                })
                .collect(),
            items: d
                .items
                .iter()
                .enumerate()
                .map(|(i, it)| LiveItem {
                    id: format!("i{i}"),
                    name: it.name.clone(),
                    item_type: it.item_type.clone(),
                    description: it.description.clone(),
                    folder: it.folder.clone(),
                    definition: it.definition.clone().map(|mut p| {
                        p.push((".platform".into(), "e30=".into()));
                        p
                    }),
                })
                .collect(),
            roles: d
                .principals
                .iter()
                .map(|p| LiveRole {
                    id: p.id.to_uppercase(),
                    role: p.role.clone(),
                })
                .collect(),
            git: d.git.clone(),
        }
    }

    #[test]
    fn a_state_against_itself_plans_nothing() {
        let d = desired();
        let plan = diff_workspace(&d, Some("c1"), Some(&live_of(&d)));
        assert_eq!(plan.changes, vec![]);
        assert!(plan.unmanaged.is_empty());
    }

    #[test]
    fn nothing_live_plans_every_create_in_dependency_order() {
        let d = desired();
        let plan = diff_workspace(&d, Some("c1"), None);
        let ops: Vec<&str> = plan
            .changes
            .iter()
            .map(|c| match &c.op {
                Op::CreateWorkspace { .. } => "ws",
                Op::CreateFolder { .. } => "folder",
                Op::CreateItem { .. } => "item",
                Op::AddRole { .. } => "role",
                _ => "other",
            })
            .collect();
        assert_eq!(ops, vec!["ws", "folder", "folder", "item", "item", "role"]);
        assert!(plan.changes.iter().all(|c| c.action == Action::Create));
    }

    #[test]
    fn drift_shows_as_exactly_that_drift() {
        let d = desired();
        let mut live = live_of(&d);
        live.items[0].description = "changed by hand".into();
        live.roles[0].role = "Viewer".into();
        live.items.retain(|i| i.item_type != "Notebook");
        live.items.push(LiveItem {
            id: "x".into(),
            name: "Other".into(),
            item_type: "Report".into(),
            description: "".into(),
            folder: None,
            definition: None,
        });
        let plan = diff_workspace(&d, Some("c2"), Some(&live));
        let targets: Vec<(Action, &str, Option<&str>)> = plan
            .changes
            .iter()
            .map(|c| (c.action, c.target.as_str(), c.detail.as_deref()))
            .collect();
        assert_eq!(
            targets,
            vec![
                (
                    Action::Update,
                    "workspace p-a-dev",
                    Some("capacity: c1 → c2")
                ),
                (
                    Action::Update,
                    "lakehouse BRONZE_L",
                    Some("description: \"changed by hand\" → \"\"")
                ),
                (Action::Create, "notebook 01_N", Some("in folder raw")),
                (
                    Action::Update,
                    "role for User 9117cbfa-f0a7-43b7-846f-96ba66a3c1c0",
                    Some("role: Viewer → Admin")
                ),
            ]
        );
        assert_eq!(plan.unmanaged, vec!["report Other"]);
    }

    #[test]
    fn prune_turns_unmanaged_items_into_deletes_planned_last() {
        let d = desired();
        let mut live = live_of(&d);
        live.items.push(LiveItem {
            id: "x".into(),
            name: "Other".into(),
            item_type: "Report".into(),
            description: "".into(),
            folder: None,
            definition: None,
        });
        live.items[0].description = "drift".into();
        live.roles.push(LiveRole {
            id: "someone-else".into(),
            role: "Admin".into(),
        });
        let kept = diff_workspace(&d, Some("c1"), Some(&live));
        assert!(kept.changes.iter().all(|c| c.action != Action::Delete));
        assert_eq!(kept.unmanaged, vec!["report Other"]);
        let pruned = diff_workspace_pruning(&d, Some("c1"), Some(&live), true);
        let last = pruned.changes.last().unwrap();
        assert_eq!(last.action, Action::Delete);
        assert_eq!(
            last.op,
            Op::DeleteItem {
                id: "x".into(),
                item_type: "Report".into()
            }
        );
        assert_eq!(
            pruned.changes.len(),
            2,
            "the drift update, then the delete; roles are never pruned"
        );
        assert!(pruned.unmanaged.is_empty());
    }

    #[test]
    fn changed_notebook_content_updates_the_definition() {
        let d = desired();
        let mut live = live_of(&d);
        live.items[1].definition = Some(vec![("notebook-content.py".into(), "b2xk".into())]);
        let plan = diff_workspace(&d, Some("c1"), Some(&live));
        assert_eq!(plan.changes.len(), 1);
        assert!(
            matches!(&plan.changes[0].op, Op::UpdateDefinition { previous, .. } if previous[0].1 == "b2xk")
        );
    }
}
