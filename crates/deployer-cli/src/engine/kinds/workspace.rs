//! The workspace itself: created with its description and capacity, or its description updated.

use async_trait::async_trait;
use fabrik_client::models::{CreateWorkspaceRequest, UpdateWorkspaceRequest};
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo, UndoError, UndoOutcome};
use fabrik_txn::Intent;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::config::DesiredWorkspace;
use crate::engine::recovery::{failed, pick};
use crate::engine::{
    ApplyCx, Diff, DiffCx, EngineError, Kind, LiveWorkspace, Outcome, Planned, ReadCx, UndoCx,
    settle, workspace_address,
};
use crate::plan::Action;

/// The kind's name in addresses.
pub const NAME: &str = "workspace";

/// Workspaces.
#[derive(Debug, Clone, Copy)]
pub struct WorkspaceKind;

/// A workspace change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum WorkspaceOp {
    /// Create it.
    #[serde(rename_all = "camelCase")]
    Create {
        /// Description.
        description: String,
        /// Capacity id.
        capacity_id: Option<String>,
    },
    /// Change its description.
    #[serde(rename_all = "camelCase")]
    Update {
        /// New description.
        description: String,
        /// Previous description (journaled for the undo; not shown).
        #[serde(skip)]
        previous: String,
    },
}

/// How a workspace change is undone (the kind's journaled payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum WorkspaceUndo {
    /// Delete the workspace that was created.
    Delete {
        /// The workspace.
        workspace_id: String,
    },
    /// Put back its previous name and description.
    Restore {
        /// The workspace.
        workspace_id: String,
        /// Previous display name.
        display_name: String,
        /// Previous description.
        description: String,
    },
}

impl WorkspaceUndo {
    /// The journal's record of it.
    pub fn record(&self) -> Undo {
        Undo::new(NAME, self)
    }
}

#[async_trait]
impl Kind for WorkspaceKind {
    type Live = Option<LiveWorkspace>;
    type Op = WorkspaceOp;

    fn name(&self) -> &'static str {
        NAME
    }

    fn resource_kind(&self) -> ResourceKind {
        ResourceKind::Workspace
    }

    async fn read(&self, cx: &ReadCx<'_>) -> Result<Self::Live, EngineError> {
        let address = workspace_address(&cx.desired.name);
        // A description rendered from secrets: the deployed one (from the last run's
        // secrets) is learned before the diff shows it, the wanted one goes in the record.
        if let Some(live) = cx.live {
            cx.deployed_field(&address, "description", &live.description);
        }
        cx.rendered_field(&address, "description", &cx.desired.description);
        Ok(cx.live.cloned())
    }

    fn diff(
        &self,
        desired: &DesiredWorkspace,
        live: &Self::Live,
        cx: &DiffCx,
    ) -> Diff<WorkspaceOp> {
        let target = format!("workspace {}", desired.name);
        let change = match live {
            None => Some(Planned {
                action: Action::Create,
                key: desired.name.clone(),
                target,
                detail: None,
                needs: vec![],
                op: WorkspaceOp::Create {
                    description: desired.description.clone(),
                    capacity_id: cx.capacity_id.clone(),
                },
            }),
            Some(l) if l.description != desired.description => Some(Planned {
                action: Action::Update,
                key: desired.name.clone(),
                target,
                detail: Some(format!(
                    "description: {:?} → {:?}",
                    l.description, desired.description
                )),
                needs: vec![],
                op: WorkspaceOp::Update {
                    description: desired.description.clone(),
                    previous: l.description.clone(),
                },
            }),
            Some(_) => None,
        };
        Diff {
            changes: change.into_iter().collect(),
            unmanaged: vec![],
        }
    }

    async fn apply(&self, op: &WorkspaceOp, cx: &ApplyCx<'_>) -> Result<Outcome, EngineError> {
        let name = cx.workspace;
        match op {
            WorkspaceOp::Create {
                description,
                capacity_id,
            } => {
                let req = CreateWorkspaceRequest {
                    display_name: name.to_string(),
                    description: Some(description.clone()),
                    capacity_id: capacity_id.clone(),
                    domain_id: None,
                };
                let (outcome, ws) = cx
                    .create(
                        Intent::create(ResourceKind::Workspace, None, name),
                        &format!("creating workspace {name}"),
                        cx.client.get_or_create_workspace(&req),
                        |ws| {
                            (
                                ResourceRef::workspace(&ws.id, name),
                                WorkspaceUndo::Delete {
                                    workspace_id: ws.id.clone(),
                                }
                                .record(),
                            )
                        },
                    )
                    .await?;
                cx.set_id(NAME, name, &ws.id);
                Ok(outcome)
            }
            WorkspaceOp::Update {
                description,
                previous,
            } => {
                let id = cx.workspace_id()?;
                cx.track(
                    ResourceRef::workspace(&id, name),
                    WorkspaceUndo::Restore {
                        workspace_id: id.clone(),
                        display_name: name.to_string(),
                        description: previous.clone(),
                    }
                    .record(),
                )
                .await?;
                let req = UpdateWorkspaceRequest {
                    display_name: None,
                    description: Some(description.clone()),
                };
                cx.client
                    .update_workspace(&id, &req)
                    .await
                    .map_err(cx.fabric(&format!("updating workspace {name}")))?;
                Ok(Outcome::Updated)
            }
        }
    }

    async fn undo(&self, undo: &Undo, cx: &UndoCx<'_>) -> Result<UndoOutcome, UndoError> {
        let c = cx.client;
        let result = match undo.payload_as::<WorkspaceUndo>()? {
            WorkspaceUndo::Delete { workspace_id } => c.delete_workspace(&workspace_id).await,
            WorkspaceUndo::Restore {
                workspace_id,
                display_name,
                description,
            } => {
                let req = UpdateWorkspaceRequest {
                    display_name: Some(display_name),
                    description: Some(description),
                };
                c.update_workspace(&workspace_id, &req).await.map(drop)
            }
        };
        settle(result, &[])
    }

    async fn recover(
        &self,
        intent: &Intent,
        cx: &UndoCx<'_>,
    ) -> Result<Option<(ResourceRef, Undo)>, UndoError> {
        let all: Vec<_> = cx
            .client
            .list_workspaces()
            .try_collect()
            .await
            .map_err(failed)?;
        let named = all
            .iter()
            .filter(|w| w.display_name.eq_ignore_ascii_case(&intent.display_name))
            .collect();
        Ok(pick(intent, named, |w| &w.id)?.map(|w| {
            (
                ResourceRef::workspace(&w.id, &w.display_name),
                WorkspaceUndo::Delete {
                    workspace_id: w.id.clone(),
                }
                .record(),
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::kinds::tests::desired;

    fn live(description: &str) -> Option<LiveWorkspace> {
        Some(LiveWorkspace {
            id: "w1".into(),
            name: "p-a-dev".into(),
            description: description.into(),
            capacity_id: None,
        })
    }

    #[test]
    fn missing_is_created_with_its_capacity_and_drift_is_updated() {
        let d = desired();
        let cx = DiffCx {
            capacity_id: Some("c1".into()),
            ..DiffCx::default()
        };
        let created = WorkspaceKind.diff(&d, &None, &cx).changes;
        assert_eq!(created.len(), 1);
        assert_eq!(
            created[0].op,
            WorkspaceOp::Create {
                description: "d".into(),
                capacity_id: Some("c1".into())
            }
        );
        assert!(WorkspaceKind.diff(&d, &live("d"), &cx).changes.is_empty());
        let updated = WorkspaceKind.diff(&d, &live("old"), &cx).changes;
        assert_eq!(
            updated[0].detail.as_deref(),
            Some("description: \"old\" → \"d\"")
        );
        assert_eq!(
            updated[0].op,
            WorkspaceOp::Update {
                description: "d".into(),
                previous: "old".into()
            }
        );
    }
}
