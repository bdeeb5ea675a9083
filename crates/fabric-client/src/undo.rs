//! The real [`Undoer`]: carries out rollback records against Fabric. Undoing what is already
//! gone (404, `*NotFound`, not connected to Git) is success: [`UndoOutcome::AlreadyGone`].

use async_trait::async_trait;
use fabrik_core::Classify;
use fabrik_core::resource::{Undo, UndoError, UndoOutcome, Undoer};

use crate::client::FabricClient;
use crate::error::FabricError;
use crate::models::{
    DefinitionPart, ItemDefinition, PayloadType, UpdateItemRequest, UpdateWorkspaceRequest,
    WorkspaceRole,
};

/// Executes [`Undo`] records with a [`FabricClient`].
#[derive(Debug, Clone)]
pub struct FabricUndoer {
    client: FabricClient,
}

impl FabricUndoer {
    /// An undoer calling through `client` (and so through its policy).
    pub fn new(client: FabricClient) -> Self {
        Self { client }
    }
}

fn gone(e: &FabricError) -> bool {
    e.is_not_found()
        || matches!(
            e.error_code(),
            Some("WorkspaceNotConnectedToGit" | "WorkspaceHasNoCapacityAssigned")
        )
}

/// Why an undo record was not carried out.
enum Failure {
    /// The record cannot be carried out as journaled (malformed, or unknown to this client).
    Record(UndoError),
    /// Fabric's answer to the call that undoes it.
    Call(FabricError),
}

fn permanent(message: String) -> Failure {
    Failure::Record(UndoError {
        message,
        class: fabrik_core::ErrorClass::Permanent,
    })
}

#[async_trait]
impl Undoer for FabricUndoer {
    async fn undo(&self, undo: &Undo) -> Result<UndoOutcome, UndoError> {
        match self.workspace_undo(undo).await {
            Ok(()) => Ok(UndoOutcome::Done),
            Err(Failure::Call(e)) if gone(&e) => Ok(UndoOutcome::AlreadyGone),
            Err(Failure::Call(e)) => Err(UndoError {
                message: e.to_string(),
                class: e.class(),
            }),
            Err(Failure::Record(e)) => Err(e),
        }
    }
}

impl FabricUndoer {
    /// Records about a workspace and what hangs on it directly (roles, Git, capacity,
    /// folders); item records go on to [`item_undo`](Self::item_undo).
    async fn workspace_undo(&self, undo: &Undo) -> Result<(), Failure> {
        let c = &self.client;
        let result = match undo {
            Undo::DeleteWorkspace { workspace_id } => c.delete_workspace(workspace_id).await,
            Undo::DeleteFolder {
                workspace_id,
                folder_id,
            } => c.delete_folder(workspace_id, folder_id).await,
            Undo::RemoveRoleAssignment {
                workspace_id,
                assignment_id,
            } => c.delete_role_assignment(workspace_id, assignment_id).await,
            Undo::RestoreRole {
                workspace_id,
                assignment_id,
                role,
            } => c
                .update_role_assignment(
                    workspace_id,
                    assignment_id,
                    WorkspaceRole::from(role.as_str()),
                )
                .await
                .map(drop),
            Undo::DisconnectGit { workspace_id } => c.git_disconnect(workspace_id).await,
            Undo::RestoreWorkspace {
                workspace_id,
                display_name,
                description,
            } => {
                let req = UpdateWorkspaceRequest {
                    display_name: Some(display_name.clone()),
                    description: Some(description.clone()),
                };
                c.update_workspace(workspace_id, &req).await.map(drop)
            }
            Undo::UnassignCapacity { workspace_id } => c.unassign_from_capacity(workspace_id).await,
            Undo::AssignCapacity {
                workspace_id,
                capacity_id,
            } => c.assign_to_capacity(workspace_id, capacity_id).await,
            other => return self.item_undo(other).await,
        };
        result.map_err(Failure::Call)
    }

    /// Records about one item: its existence, properties, definition, place, shortcuts and
    /// bindings.
    async fn item_undo(&self, undo: &Undo) -> Result<(), Failure> {
        let c = &self.client;
        let result = match undo {
            Undo::DeleteItem {
                workspace_id,
                item_id,
            } => c.delete_item(workspace_id, item_id).await,
            Undo::RestoreItem {
                workspace_id,
                item_id,
                display_name,
                description,
            } => {
                let req = UpdateItemRequest {
                    display_name: Some(display_name.clone()),
                    description: Some(description.clone()),
                };
                c.update_item(workspace_id, item_id, &req).await.map(drop)
            }
            Undo::RestoreDefinition {
                workspace_id,
                item_id,
                parts,
                format,
            } => {
                let definition = ItemDefinition {
                    format: format.clone(),
                    parts: parts
                        .iter()
                        .map(|p| DefinitionPart {
                            path: p.path.clone(),
                            payload: p.payload.clone(),
                            payload_type: PayloadType::InlineBase64,
                        })
                        .collect(),
                };
                c.update_item_definition(workspace_id, item_id, &definition, false)
                    .await
            }
            Undo::MoveItem {
                workspace_id,
                item_id,
                folder_id,
            } => {
                c.move_item(workspace_id, item_id, folder_id.as_deref())
                    .await
            }
            Undo::RestoreActiveValueSet {
                workspace_id,
                item_id,
                value_set,
            } => {
                c.set_active_value_set(workspace_id, item_id, value_set)
                    .await
            }
            Undo::RestoreShortcut {
                workspace_id,
                item_id,
                path,
                name,
                previous,
            } => match previous {
                Some(json) => {
                    let v = serde_json::from_str(json).map_err(|e| {
                        permanent(format!(
                            "the journaled shortcut {path}/{name} is not JSON: {e}"
                        ))
                    })?;
                    c.put_shortcut(workspace_id, item_id, &v).await
                }
                None => c.delete_shortcut(workspace_id, item_id, path, name).await,
            },
            Undo::RestoreBinding {
                workspace_id,
                item_id,
                details,
                connection,
            } => {
                let parse = |text: &str| {
                    serde_json::from_str::<serde_json::Value>(text)
                        .map_err(|e| permanent(format!("a journaled binding is not JSON: {e}")))
                };
                let details = parse(details)?;
                let connection = connection.as_deref().map(parse).transpose()?;
                c.bind_connection(workspace_id, item_id, &details, connection.as_ref())
                    .await
            }
            Undo::PublishEnvironment {
                workspace_id,
                item_id,
            } => c.publish_environment(workspace_id, item_id).await,
            other => {
                return Err(permanent(format!("this client cannot carry out {other:?}")));
            }
        };
        result.map_err(Failure::Call)
    }
}
