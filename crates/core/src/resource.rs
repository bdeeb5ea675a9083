//! What a deployment created or changed, and how to undo it — as data.
//!
//! Exists so a rollback can be written to a journal by one process and carried out by another
//! (after a crash). `fabrik-txn` records [`ResourceRef`]s with their [`Undo`] and drives an
//! [`Undoer`]; the deployer's kind registry provides the real one, each kind carrying out its own.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The kind of a resource, as journals, plans and metrics name it (`Workspace`, `Lakehouse`).
///
/// Open: a kind added outside this crate names its own (`ResourceKind::new("SparkPool")`), so
/// no list here has to grow with the kinds. Serialized as its name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKind(&'static str);

#[allow(non_upper_case_globals)] // named as the enum they replace, so `ResourceKind::Workspace` reads as before
impl ResourceKind {
    /// A workspace.
    pub const Workspace: Self = Self("Workspace");
    /// A lakehouse item.
    pub const Lakehouse: Self = Self("Lakehouse");
    /// A notebook item.
    pub const Notebook: Self = Self("Notebook");
    /// Any other item type.
    pub const Item: Self = Self("Item");
    /// A workspace folder.
    pub const Folder: Self = Self("Folder");
    /// A workspace role assignment.
    pub const RoleAssignment: Self = Self("RoleAssignment");
    /// A workspace's git connection.
    pub const GitConnection: Self = Self("GitConnection");
    /// A workspace's capacity assignment.
    pub const CapacityAssignment: Self = Self("CapacityAssignment");

    /// A kind named `name`.
    pub const fn new(name: &'static str) -> Self {
        Self(name)
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// The kind named `name` as read back from a journal: the names are few (one per kind),
    /// so each distinct one is interned once for the process.
    fn intern(name: &str) -> Self {
        use std::collections::HashSet;
        use std::sync::{Mutex, OnceLock};
        static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
        let mut names = NAMES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match names.get(name) {
            Some(n) => Self(n),
            None => {
                let n: &'static str = Box::leak(name.to_owned().into_boxed_str());
                names.insert(n);
                Self(n)
            }
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for ResourceKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for ResourceKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        if name.is_empty() {
            return Err(serde::de::Error::custom("a resource kind cannot be empty"));
        }
        Ok(Self::intern(&name))
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

/// How to undo one step: the name of the kind that journaled it, and that kind's own payload.
/// Serializable, so it survives the process that recorded it; the kind that wrote the payload
/// is the one that reads it back and carries it out (so no list of every kind's undo lives
/// here). Carrying one out must be idempotent: undoing what is already gone is success.
///
/// By convention a payload's `parts` array, when present, holds definition parts
/// (`{"path", "payload"}`, base64): secret values inside them are journaled as references.
///
/// A record journaled before records named their kind (`{"op": "deleteItem", …}`) reads back
/// with an empty `kind` and its whole body as `payload`, for the deployer to map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "UndoWire")]
pub struct Undo {
    /// The kind that carries it out (its registered name: `workspace`, `item`); empty for a
    /// record of an older journal.
    pub kind: String,
    /// The kind's own description of what to do.
    pub payload: serde_json::Value,
}

/// An undo record as journals hold it: current, or of an older journal.
#[derive(Deserialize)]
#[serde(untagged)]
enum UndoWire {
    Current {
        kind: String,
        payload: serde_json::Value,
    },
    Older(serde_json::Value),
}

impl From<UndoWire> for Undo {
    fn from(w: UndoWire) -> Self {
        match w {
            UndoWire::Current { kind, payload } => Self { kind, payload },
            UndoWire::Older(payload) => Self {
                kind: String::new(),
                payload,
            },
        }
    }
}

impl Undo {
    /// An undo record of `kind` with `payload`.
    pub fn new(kind: impl Into<String>, payload: &impl Serialize) -> Self {
        Self {
            kind: kind.into(),
            // A payload that cannot be JSON is a bug in its kind, caught by that kind's tests;
            // it journals as null and its undo then fails naming the kind.
            payload: serde_json::to_value(payload).unwrap_or(serde_json::Value::Null),
        }
    }

    /// The payload as the kind's own type; an error names the kind and what did not fit.
    pub fn payload_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, UndoError> {
        serde_json::from_value(self.payload.clone()).map_err(|e| UndoError {
            message: format!(
                "the journaled undo record of kind '{}' cannot be read: {e}",
                self.kind
            ),
            class: crate::ErrorClass::Permanent,
        })
    }
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
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct RestoreRole {
            workspace_id: String,
            role: String,
        }
        let payload = RestoreRole {
            workspace_id: "w".into(),
            role: "Viewer".into(),
        };
        let u = Undo::new("role", &payload);
        let s = serde_json::to_string(&u).unwrap();
        assert_eq!(
            s,
            r#"{"kind":"role","payload":{"role":"Viewer","workspaceId":"w"}}"#
        );
        let back = serde_json::from_str::<Undo>(&s).unwrap();
        assert_eq!(back, u);
        assert_eq!(back.payload_as::<RestoreRole>().unwrap(), payload);
        let wrong = Undo::new("role", &"text");
        let e = wrong.payload_as::<RestoreRole>().unwrap_err();
        assert!(e.message.contains("kind 'role'"), "{e}");
        let r = ResourceRef::in_workspace(ResourceKind::Lakehouse, "w", "l", Some("BRONZE".into()));
        assert_eq!(r.to_string(), "Lakehouse 'BRONZE' (l)");
        let back: ResourceRef = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn resource_kinds_are_open_and_read_back_by_name() {
        const POOL: ResourceKind = ResourceKind::new("SparkPool");
        let back: ResourceKind = serde_json::from_str(r#""SparkPool""#).unwrap();
        assert_eq!(back, POOL);
        assert_eq!(
            serde_json::from_str::<ResourceKind>(r#""Workspace""#).unwrap(),
            ResourceKind::Workspace
        );
        assert!(matches!(back, POOL));
        assert!(serde_json::from_str::<ResourceKind>(r#""""#).is_err());
        let older: Undo =
            serde_json::from_str(r#"{"op":"deleteWorkspace","workspaceId":"w"}"#).unwrap();
        assert_eq!(older.kind, "");
        assert_eq!(older.payload["op"], "deleteWorkspace");
        assert_eq!(POOL.to_string(), "SparkPool");
    }
}
