//! Workspace role assignments. Never pruned: removing an unlisted assignment could lock the
//! deployer itself out.

use async_trait::async_trait;
use fabrik_client::models::{AddRoleAssignmentRequest, Principal, PrincipalType, WorkspaceRole};
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo, UndoError, UndoOutcome};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use super::workspace;
use crate::config::{DesiredPrincipal, DesiredWorkspace};
use crate::engine::{
    Address, ApplyCx, Diff, DiffCx, EngineError, Kind, Need, Outcome, Planned, ReadCx, UndoCx, ctx,
    settle,
};
use crate::plan::Action;

/// Role assignments.
#[derive(Debug, Clone, Copy)]
pub struct RoleKind;

/// The kind's name in addresses and journals.
pub const NAME: &str = "role";

/// How a role change is undone (the kind's journaled payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum RoleUndo {
    /// Remove an assignment that was added.
    Remove {
        /// Its workspace.
        workspace_id: String,
        /// The assignment (equal to the principal id).
        assignment_id: String,
    },
    /// Put back the role an assignment had.
    Restore {
        /// Its workspace.
        workspace_id: String,
        /// The assignment.
        assignment_id: String,
        /// The previous role.
        role: String,
    },
}

impl RoleUndo {
    /// The journal's record of it.
    pub fn record(&self) -> Undo {
        Undo::new(NAME, self)
    }
}

/// A role assignment as it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRole {
    /// Principal id (= assignment id).
    pub id: String,
    /// Role.
    pub role: String,
}

/// A role assignment change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum RoleOp {
    /// Add an assignment.
    Add {
        /// Principal id.
        id: String,
        /// Principal type.
        #[serde(rename = "type")]
        kind: String,
        /// Role.
        role: String,
    },
    /// Change an assignment's role.
    Update {
        /// Principal id.
        id: String,
        /// New role.
        role: String,
        /// Previous role.
        previous: String,
    },
}

fn add(p: &DesiredPrincipal) -> RoleOp {
    RoleOp::Add {
        id: p.id.clone(),
        kind: p.kind.clone(),
        role: p.role.clone(),
    }
}

#[async_trait]
impl Kind for RoleKind {
    type Live = Vec<LiveRole>;
    type Op = RoleOp;

    fn name(&self) -> &'static str {
        NAME
    }

    fn resource_kind(&self) -> ResourceKind {
        ResourceKind::RoleAssignment
    }

    async fn read(&self, cx: &ReadCx<'_>) -> Result<Self::Live, EngineError> {
        let Some(id) = cx.workspace_id() else {
            return Ok(vec![]);
        };
        let roles: Vec<_> = cx
            .client
            .list_role_assignments(id)
            .try_collect()
            .await
            .map_err(ctx(format!(
                "listing role assignments of {}",
                cx.desired.name
            )))?;
        Ok(roles
            .into_iter()
            .map(|r| LiveRole {
                id: r.principal.id,
                role: r.role.as_str().to_string(),
            })
            .collect())
    }

    fn diff(&self, desired: &DesiredWorkspace, live: &Vec<LiveRole>, _: &DiffCx) -> Diff<RoleOp> {
        let ws = &desired.name;
        let needs = || vec![Need::At(Address::new(ws, workspace::NAME, ws))];
        let mut d = Diff::default();
        for p in &desired.principals {
            match live.iter().find(|r| r.id.eq_ignore_ascii_case(&p.id)) {
                None => d.changes.push(Planned {
                    action: Action::Create,
                    key: p.id.to_lowercase(),
                    target: format!("role {} for {} {}", p.role, p.kind, p.id),
                    detail: None,
                    needs: needs(),
                    op: add(p),
                }),
                Some(r) if r.role != p.role => d.changes.push(Planned {
                    action: Action::Update,
                    key: p.id.to_lowercase(),
                    target: format!("role for {} {}", p.kind, p.id),
                    detail: Some(format!("role: {} → {}", r.role, p.role)),
                    needs: needs(),
                    op: RoleOp::Update {
                        id: r.id.clone(),
                        role: p.role.clone(),
                        previous: r.role.clone(),
                    },
                }),
                Some(_) => {}
            }
        }
        d
    }

    async fn apply(&self, op: &RoleOp, cx: &ApplyCx<'_>) -> Result<Outcome, EngineError> {
        let ws = cx.workspace_id()?;
        match op {
            RoleOp::Add { id, kind, role } => {
                cx.track(
                    ResourceRef::in_workspace(ResourceKind::RoleAssignment, &ws, id, None),
                    RoleUndo::Remove {
                        workspace_id: ws.clone(),
                        assignment_id: id.clone(),
                    }
                    .record(),
                )
                .await?;
                let req = AddRoleAssignmentRequest {
                    principal: Principal::new(id.clone(), PrincipalType::from(kind.as_str())),
                    role: WorkspaceRole::from(role.as_str()),
                };
                let e = cx
                    .client
                    .ensure_role_assignment(&ws, &req)
                    .await
                    .map_err(cx.fabric(&format!("adding {}", cx.target)))?;
                Ok(if e.origin == fabrik_client::Origin::AlreadyExisted {
                    Outcome::Existed
                } else {
                    Outcome::Created
                })
            }
            RoleOp::Update { id, role, previous } => {
                cx.track(
                    ResourceRef::in_workspace(ResourceKind::RoleAssignment, &ws, id, None),
                    RoleUndo::Restore {
                        workspace_id: ws.clone(),
                        assignment_id: id.clone(),
                        role: previous.clone(),
                    }
                    .record(),
                )
                .await?;
                cx.client
                    .update_role_assignment(&ws, id, WorkspaceRole::from(role.as_str()))
                    .await
                    .map_err(cx.fabric(&format!("updating {}", cx.target)))?;
                Ok(Outcome::Updated)
            }
        }
    }

    async fn undo(&self, undo: &Undo, cx: &UndoCx<'_>) -> Result<UndoOutcome, UndoError> {
        let c = cx.client;
        let result = match undo.payload_as::<RoleUndo>()? {
            RoleUndo::Remove {
                workspace_id,
                assignment_id,
            } => {
                c.delete_role_assignment(&workspace_id, &assignment_id)
                    .await
            }
            RoleUndo::Restore {
                workspace_id,
                assignment_id,
                role,
            } => c
                .update_role_assignment(
                    &workspace_id,
                    &assignment_id,
                    WorkspaceRole::from(role.as_str()),
                )
                .await
                .map(drop),
        };
        settle(result, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::kinds::tests::desired;

    #[test]
    fn roles_compare_by_principal_id_whatever_its_case() {
        let d = desired();
        let same = vec![LiveRole {
            id: d.principals[0].id.to_uppercase(),
            role: "Admin".into(),
        }];
        assert!(
            RoleKind
                .diff(&d, &same, &DiffCx::default())
                .changes
                .is_empty()
        );
        let viewer = vec![LiveRole {
            role: "Viewer".into(),
            ..same[0].clone()
        }];
        let c = RoleKind.diff(&d, &viewer, &DiffCx::default()).changes;
        assert_eq!(c[0].detail.as_deref(), Some("role: Viewer → Admin"));
        let added = RoleKind.diff(&d, &vec![], &DiffCx::default()).changes;
        assert_eq!(added[0].action, Action::Create);
    }
}
