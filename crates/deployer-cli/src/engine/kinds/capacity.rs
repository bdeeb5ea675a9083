//! A workspace's capacity assignment (a new workspace gets its capacity when it is created).

use async_trait::async_trait;
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo, UndoError, UndoOutcome};
use serde::{Deserialize, Serialize};

use super::workspace;
use crate::config::DesiredWorkspace;
use crate::engine::{
    Address, ApplyCx, Diff, DiffCx, EngineError, Kind, Need, Outcome, Planned, ReadCx, UndoCx,
    settle,
};
use crate::plan::Action;

/// Capacity assignments.
#[derive(Debug, Clone, Copy)]
pub struct CapacityKind;

/// The kind's name in addresses and journals.
pub const NAME: &str = "capacity";

/// How a capacity assignment is undone (the kind's journaled payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum CapacityUndo {
    /// Unassign the capacity that was assigned.
    Unassign {
        /// The workspace.
        workspace_id: String,
    },
    /// Put back the capacity it had.
    Assign {
        /// The workspace.
        workspace_id: String,
        /// The previous capacity.
        capacity_id: String,
    },
}

/// Assign the workspace to a capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignCapacity {
    /// Capacity id.
    pub capacity_id: String,
    /// Previous capacity id.
    pub previous: Option<String>,
}

#[async_trait]
impl Kind for CapacityKind {
    /// The live workspace's capacity: `None` when the workspace does not exist.
    type Live = Option<Option<String>>;
    type Op = AssignCapacity;

    fn name(&self) -> &'static str {
        NAME
    }

    fn resource_kind(&self) -> ResourceKind {
        ResourceKind::CapacityAssignment
    }

    async fn read(&self, cx: &ReadCx<'_>) -> Result<Self::Live, EngineError> {
        Ok(cx.live.map(|w| w.capacity_id.clone()))
    }

    fn diff(
        &self,
        desired: &DesiredWorkspace,
        live: &Self::Live,
        cx: &DiffCx,
    ) -> Diff<AssignCapacity> {
        let mut d = Diff::default();
        if let (Some(current), Some(c)) = (live, &cx.capacity_id)
            && current.as_deref() != Some(c.as_str())
        {
            d.changes.push(Planned {
                action: Action::Update,
                key: desired.name.clone(),
                target: format!("workspace {}", desired.name),
                detail: Some(format!(
                    "capacity: {} → {c}",
                    current.as_deref().unwrap_or("none")
                )),
                needs: vec![Need::At(Address::new(
                    &desired.name,
                    workspace::NAME,
                    &desired.name,
                ))],
                op: AssignCapacity {
                    capacity_id: c.clone(),
                    previous: current.clone(),
                },
            });
        }
        d
    }

    async fn apply(&self, op: &AssignCapacity, cx: &ApplyCx<'_>) -> Result<Outcome, EngineError> {
        let ws = cx.workspace_id()?;
        let undo = match &op.previous {
            Some(p) => CapacityUndo::Assign {
                workspace_id: ws.clone(),
                capacity_id: p.clone(),
            },
            None => CapacityUndo::Unassign {
                workspace_id: ws.clone(),
            },
        };
        let undo = Undo::new(NAME, &undo);
        cx.track(
            ResourceRef::in_workspace(ResourceKind::CapacityAssignment, &ws, &ws, None),
            undo,
        )
        .await?;
        cx.client
            .assign_to_capacity(&ws, &op.capacity_id)
            .await
            .map_err(cx.fabric(&format!("assigning to capacity {}", op.capacity_id)))?;
        Ok(Outcome::Updated)
    }

    async fn undo(&self, undo: &Undo, cx: &UndoCx<'_>) -> Result<UndoOutcome, UndoError> {
        let c = cx.client;
        let result = match undo.payload_as::<CapacityUndo>()? {
            CapacityUndo::Unassign { workspace_id } => {
                c.unassign_from_capacity(&workspace_id).await
            }
            CapacityUndo::Assign {
                workspace_id,
                capacity_id,
            } => c.assign_to_capacity(&workspace_id, &capacity_id).await,
        };
        settle(result, &["WorkspaceHasNoCapacityAssigned"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::kinds::tests::desired;

    #[test]
    fn only_an_existing_workspace_on_another_capacity_is_reassigned() {
        let d = desired();
        let cx = DiffCx {
            capacity_id: Some("c2".into()),
            ..DiffCx::default()
        };
        assert!(
            CapacityKind.diff(&d, &None, &cx).changes.is_empty(),
            "created with it"
        );
        assert!(
            CapacityKind
                .diff(&d, &Some(Some("c2".into())), &cx)
                .changes
                .is_empty()
        );
        let c = CapacityKind.diff(&d, &Some(Some("c1".into())), &cx).changes;
        assert_eq!(c[0].detail.as_deref(), Some("capacity: c1 → c2"));
        assert_eq!(c[0].op.previous.as_deref(), Some("c1"));
        let none = DiffCx::default();
        assert!(
            CapacityKind
                .diff(&d, &Some(Some("c1".into())), &none)
                .changes
                .is_empty()
        );
    }
}
