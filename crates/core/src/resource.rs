//! What a deployment created or changed, and how to undo it — as data.
//!
//! Exists so a rollback can be written to a journal by one process and carried out by another
//! (after a crash). `fabrik-txn` records [`ResourceRef`]s with their [`Undo`] and drives an
//! [`Undoer`]; `fabrik-client` provides the real undoer that calls Fabric.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The kinds of resource fabrik deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ResourceKind {
    /// A workspace.
    Workspace,
    /// A lakehouse item.
    Lakehouse,
    /// A notebook item.
    Notebook,
    /// Any other item type.
    Item,
    /// A workspace folder.
    Folder,
    /// A workspace role assignment (the seed's missing `USER_ASSIGNMENT`).
    RoleAssignment,
    /// A workspace's git connection.
    GitConnection,
    /// A workspace's capacity assignment.
    CapacityAssignment,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Identity of one resource: its kind, id and the ids of what it lives in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    /// What kind of resource.
    pub kind: ResourceKind,
    /// Its id (for role assignments, the principal id; for git connections, the workspace id).
    pub id: String,
    /// The workspace it lives in, for everything but workspaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// Its display name, for humans reading plans and journals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl ResourceRef {
    /// A workspace.
    pub fn workspace(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind: ResourceKind::Workspace,
            id: id.into(),
            workspace_id: None,
            display_name: Some(name.into()),
        }
    }

    /// Something inside a workspace.
    pub fn in_workspace(
        kind: ResourceKind,
        workspace_id: impl Into<String>,
        id: impl Into<String>,
        name: Option<String>,
    ) -> Self {
        Self {
            kind,
            id: id.into(),
            workspace_id: Some(workspace_id.into()),
            display_name: name,
        }
    }
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.display_name {
            Some(n) => write!(f, "{} '{}' ({})", self.kind, n, self.id),
            None => write!(f, "{} {}", self.kind, self.id),
        }
    }
}

/// One part of an item definition, for restoring a definition that was overwritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionPart {
    /// Path of the part inside the definition (`notebook-content.py`, `.platform`).
    pub path: String,
    /// The payload, base64 as the service sends it.
    pub payload: String,
}

/// How to undo one step. Serializable, so it survives the process that recorded it.
/// Every variant is idempotent when executed: undoing what is already gone is success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
#[non_exhaustive]
pub enum Undo {
    /// Delete a workspace that was created.
    #[serde(rename_all = "camelCase")]
    DeleteWorkspace {
        /// The workspace.
        workspace_id: String,
    },
    /// Delete an item (lakehouse, notebook, any type) that was created.
    #[serde(rename_all = "camelCase")]
    DeleteItem {
        /// Its workspace.
        workspace_id: String,
        /// The item.
        item_id: String,
    },
    /// Delete a folder that was created.
    #[serde(rename_all = "camelCase")]
    DeleteFolder {
        /// Its workspace.
        workspace_id: String,
        /// The folder.
        folder_id: String,
    },
    /// Remove a role assignment that was added.
    #[serde(rename_all = "camelCase")]
    RemoveRoleAssignment {
        /// Its workspace.
        workspace_id: String,
        /// The assignment (equal to the principal id).
        assignment_id: String,
    },
    /// Put back the role an assignment had before it was changed.
    #[serde(rename_all = "camelCase")]
    RestoreRole {
        /// Its workspace.
        workspace_id: String,
        /// The assignment.
        assignment_id: String,
        /// The previous role.
        role: String,
    },
    /// Disconnect a git connection that was made.
    #[serde(rename_all = "camelCase")]
    DisconnectGit {
        /// The workspace.
        workspace_id: String,
    },
    /// Put back a workspace's previous name and description.
    #[serde(rename_all = "camelCase")]
    RestoreWorkspace {
        /// The workspace.
        workspace_id: String,
        /// Previous display name.
        display_name: String,
        /// Previous description.
        description: String,
    },
    /// Put back an item's previous name and description.
    #[serde(rename_all = "camelCase")]
    RestoreItem {
        /// Its workspace.
        workspace_id: String,
        /// The item.
        item_id: String,
        /// Previous display name.
        display_name: String,
        /// Previous description.
        description: String,
    },
    /// Put back an item's previous definition.
    #[serde(rename_all = "camelCase")]
    RestoreDefinition {
        /// Its workspace.
        workspace_id: String,
        /// The item.
        item_id: String,
        /// The previous parts.
        parts: Vec<DefinitionPart>,
        /// The definition's format (`ipynb` for notebooks read as ipynb), when not the default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<String>,
    },
    /// Move an item back to the folder it was in.
    #[serde(rename_all = "camelCase")]
    MoveItem {
        /// Its workspace.
        workspace_id: String,
        /// The item.
        item_id: String,
        /// The previous folder; `None` is the workspace root.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        folder_id: Option<String>,
    },
    /// Put back a VariableLibrary's previous active value set.
    #[serde(rename_all = "camelCase")]
    RestoreActiveValueSet {
        /// Its workspace.
        workspace_id: String,
        /// The library.
        item_id: String,
        /// The previous value set.
        value_set: String,
    },
    /// Put back one OneLake shortcut of an item as it was: the previous shortcut (its JSON),
    /// or none (delete it).
    #[serde(rename_all = "camelCase")]
    RestoreShortcut {
        /// Its workspace.
        workspace_id: String,
        /// The item holding the shortcut.
        item_id: String,
        /// The shortcut's path (`Tables/dbo`).
        path: String,
        /// Its name.
        name: String,
        /// The previous shortcut as JSON; `None` when there was none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<String>,
    },
    /// Put back a semantic model's binding for one data source: to the connection it had (its
    /// JSON as listed), or unbound.
    #[serde(rename_all = "camelCase")]
    RestoreBinding {
        /// Its workspace.
        workspace_id: String,
        /// The semantic model.
        item_id: String,
        /// The data source, `{"type", "path"}` as JSON.
        details: String,
        /// The connection it was bound to, as JSON; `None` when it was not bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connection: Option<String>,
    },
    /// Publish an Environment's staged definition again (after its previous definition was
    /// put back) and wait for the publish.
    #[serde(rename_all = "camelCase")]
    PublishEnvironment {
        /// Its workspace.
        workspace_id: String,
        /// The Environment.
        item_id: String,
    },
    /// Unassign a capacity that was assigned.
    #[serde(rename_all = "camelCase")]
    UnassignCapacity {
        /// The workspace.
        workspace_id: String,
    },
    /// Put back the capacity a workspace had before.
    #[serde(rename_all = "camelCase")]
    AssignCapacity {
        /// The workspace.
        workspace_id: String,
        /// The previous capacity.
        capacity_id: String,
    },
}

/// What executing an [`Undo`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UndoOutcome {
    /// The undo was carried out.
    Done,
    /// There was nothing to undo (already deleted, or already in the previous state).
    AlreadyGone,
}

/// Why an undo failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct UndoError {
    /// What went wrong.
    pub message: String,
    /// Whether trying again may help.
    pub class: crate::ErrorClass,
}

impl crate::Classify for UndoError {
    fn class(&self) -> crate::ErrorClass {
        self.class
    }
}

/// Executes undo records against the real service.
#[async_trait]
pub trait Undoer: Send + Sync + fmt::Debug {
    /// Carries out `undo`. Must be idempotent.
    async fn undo(&self, undo: &Undo) -> Result<UndoOutcome, UndoError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_records_round_trip_through_json() {
        let u = Undo::RestoreRole {
            workspace_id: "w".into(),
            assignment_id: "p".into(),
            role: "Viewer".into(),
        };
        let s = serde_json::to_string(&u).unwrap();
        assert_eq!(
            s,
            r#"{"op":"restoreRole","workspaceId":"w","assignmentId":"p","role":"Viewer"}"#
        );
        assert_eq!(serde_json::from_str::<Undo>(&s).unwrap(), u);
        let r = ResourceRef::in_workspace(ResourceKind::Lakehouse, "w", "l", Some("BRONZE".into()));
        assert_eq!(r.to_string(), "Lakehouse 'BRONZE' (l)");
        let back: ResourceRef = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
