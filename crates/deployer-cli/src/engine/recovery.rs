//! Rollback and crash recovery through the registry: every undo record and every unsettled
//! create intent is handed to the kind that journaled it, which alone knows its payload and
//! how to recognise what it created.
//!
//! Recovery deletes what it finds, so a kind must never take for the run's result something
//! the run did not make. An intent records what recognises its result (kind, item type, name,
//! folder) and the ids of same-named resources that existed when it was journaled; [`pick`]
//! takes a match only when exactly one fits and did not exist before, and [`unsure`] is the
//! answer when a kind cannot tell: the resource is left in place, reported, and the rollback
//! ends non-zero.

use async_trait::async_trait;
use fabrik_client::{FabricClient, FabricError};
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo, UndoError, UndoOutcome, Undoer};
use fabrik_core::{Classify, ErrorClass};
use fabrik_txn::{Intent, IntentResolver};
use futures::TryStreamExt;

use super::Registry;
use super::kind::{UndoCx, permanent};

/// The registry's kinds carrying out a journal's records through `client`.
#[derive(Debug, Clone)]
pub struct Recovery {
    registry: Registry,
    client: FabricClient,
}

impl Recovery {
    /// Undo and recovery by `registry`'s kinds, calling through `client`.
    pub fn new(registry: Registry, client: FabricClient) -> Self {
        Self { registry, client }
    }

    fn unknown(&self, what: &str, name: &str) -> UndoError {
        permanent(format!(
            "the journal's {what} names kind '{name}', which this fabrik does not have (it has: {}); run the rollback with the fabrik that wrote the journal",
            self.registry.names().join(", ")
        ))
    }
}

/// The kind that recovers an intent journaled before intents named their owner: workspaces
/// and folders had kinds of their own, everything else was an item.
fn owner_of(intent: &Intent) -> &str {
    match intent.owner.as_deref() {
        Some(owner) => owner,
        None if intent.kind == ResourceKind::Workspace => super::kinds::workspace::NAME,
        None if intent.kind == ResourceKind::Folder => super::kinds::folder::NAME,
        None => super::kinds::item::GENERIC,
    }
}

/// A record of a journal written before records named their kind (`{"op": "deleteItem", …}`,
/// see [`Undo`]) as the built-in kind that now carries it out: the fields are as they were,
/// only the operations were renamed. This table is of those old names only; no kind added
/// since appears in it.
pub fn upgrade(undo: &Undo) -> Result<Undo, UndoError> {
    use super::kinds::{capacity, folder, git, item, role, workspace};
    let old = undo
        .payload
        .get("op")
        .and_then(|o| o.as_str())
        .unwrap_or("");
    let (kind, op) = match old {
        "deleteWorkspace" => (workspace::NAME, "delete"),
        "restoreWorkspace" => (workspace::NAME, "restore"),
        "deleteFolder" => (folder::NAME, "delete"),
        "removeRoleAssignment" => (role::NAME, "remove"),
        "restoreRole" => (role::NAME, "restore"),
        "disconnectGit" => (git::NAME, "disconnect"),
        "unassignCapacity" => (capacity::NAME, "unassign"),
        "assignCapacity" => (capacity::NAME, "assign"),
        "deleteItem" => (item::GENERIC, "delete"),
        "restoreItem" => (item::GENERIC, "restore"),
        "moveItem" => (item::GENERIC, "move"),
        "restoreDefinition"
        | "restoreActiveValueSet"
        | "restoreShortcut"
        | "restoreBinding"
        | "publishEnvironment" => (item::GENERIC, old),
        _ => {
            return Err(permanent(format!(
                "the journal holds an undo record this fabrik cannot read: {}",
                undo.payload
            )));
        }
    };
    let mut payload = undo.payload.clone();
    payload["op"] = serde_json::Value::String(op.to_string());
    Ok(Undo {
        kind: kind.to_string(),
        payload,
    })
}

#[async_trait]
impl Undoer for Recovery {
    async fn undo(&self, undo: &Undo) -> Result<UndoOutcome, UndoError> {
        let upgraded;
        let undo = if undo.kind.is_empty() {
            upgraded = upgrade(undo)?;
            &upgraded
        } else {
            undo
        };
        let kind = self
            .registry
            .kind_named(&undo.kind)
            .ok_or_else(|| self.unknown("undo record", &undo.kind))?;
        kind.undo(
            undo,
            &UndoCx {
                client: &self.client,
            },
        )
        .await
    }
}

#[async_trait]
impl IntentResolver for Recovery {
    async fn resolve(&self, intent: &Intent) -> Result<Option<(ResourceRef, Undo)>, UndoError> {
        let owner = owner_of(intent);
        let kind = self
            .registry
            .kind_named(owner)
            .ok_or_else(|| self.unknown("create intent", owner))?;
        kind.recover(
            intent,
            &UndoCx {
                client: &self.client,
            },
        )
        .await
    }
}

/// A service error met while recovering.
pub fn failed(e: FabricError) -> UndoError {
    UndoError {
        message: e.to_string(),
        class: e.class(),
    }
}

/// A workspace's contents, or `None` when the workspace itself is gone (then nothing a
/// create made in it is left).
pub async fn listed<T>(
    list: impl futures::Stream<Item = Result<T, FabricError>>,
) -> Result<Option<Vec<T>>, UndoError> {
    match list.try_collect().await {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(failed(e)),
    }
}

/// Recovery could not tell whether what `intent` names was made by the run: it is left alone.
pub fn unsure(intent: &Intent, why: impl std::fmt::Display) -> UndoError {
    UndoError {
        message: format!(
            "left in place: cannot tell whether {} '{}' was created by this run ({why}); check it and delete it by hand if it was",
            intent
                .item_type
                .clone()
                .unwrap_or_else(|| intent.kind.to_string()),
            intent.display_name
        ),
        class: ErrorClass::Permanent,
    }
}

/// Of `candidates` (resources that fit the intent), the one the intent made: none, exactly
/// one that did not exist before, or "cannot tell".
pub fn pick<'a, T>(
    intent: &Intent,
    candidates: Vec<&'a T>,
    id: impl Fn(&T) -> &str,
) -> Result<Option<&'a T>, UndoError> {
    let new: Vec<&T> = candidates
        .into_iter()
        .filter(|c| !intent.existing.iter().any(|e| e == id(c)))
        .collect();
    match new.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        many => Err(unsure(intent, format!("{} candidates", many.len()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::kinds::item::ItemUndo;
    use crate::engine::kinds::role::RoleUndo;

    #[test]
    fn records_of_older_journals_read_as_the_kinds_records_of_today() {
        let older: Undo =
            serde_json::from_str(r#"{"op":"deleteItem","workspaceId":"w","itemId":"i"}"#).unwrap();
        assert_eq!(upgrade(&older).unwrap(), ItemUndo::delete("w", "i"));
        let role: Undo = serde_json::from_str(
            r#"{"op":"restoreRole","workspaceId":"w","assignmentId":"p","role":"Viewer"}"#,
        )
        .unwrap();
        let expected = RoleUndo::Restore {
            workspace_id: "w".into(),
            assignment_id: "p".into(),
            role: "Viewer".into(),
        };
        assert_eq!(upgrade(&role).unwrap(), expected.record());
        let unknown: Undo = serde_json::from_str(r#"{"op":"launchRocket"}"#).unwrap();
        assert!(
            upgrade(&unknown)
                .unwrap_err()
                .message
                .contains("launchRocket")
        );
    }
}
