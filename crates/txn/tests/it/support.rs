//! A fake service that undos act on, recording every call, with injectable failures.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo, UndoError, UndoOutcome, Undoer};
use fabrik_core::time::ManualClock;
use fabrik_core::{ErrorClass, Flag, FlagSource};
use fabrik_txn::{Intent, IntentResolver, TxnOptions};

/// The undo records these tests journal: the txn crate carries any kind's payload, so the
/// tests bring a small vocabulary of their own (kind `test`), carried out by [`Fake`] and, in
/// the emulator tests, against Fabric by `ClientUndoer`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub(crate) enum TestUndo {
    DeleteWorkspace {
        workspace_id: String,
    },
    RestoreWorkspace {
        workspace_id: String,
        display_name: String,
        description: String,
    },
    DeleteItem {
        workspace_id: String,
        item_id: String,
    },
    RestoreItem {
        workspace_id: String,
        item_id: String,
        display_name: String,
        description: String,
    },
    RestoreDefinition {
        workspace_id: String,
        item_id: String,
        parts: Vec<fabrik_core::resource::DefinitionPart>,
    },
    DeleteFolder {
        workspace_id: String,
        folder_id: String,
    },
    RemoveRoleAssignment {
        workspace_id: String,
        assignment_id: String,
    },
    RestoreRole {
        workspace_id: String,
        assignment_id: String,
        role: String,
    },
}

impl From<TestUndo> for Undo {
    fn from(u: TestUndo) -> Undo {
        Undo::new("test", &u)
    }
}

/// The test record `undo` holds.
pub(crate) fn test_undo(undo: &Undo) -> TestUndo {
    assert_eq!(undo.kind, "test", "{undo:?}");
    undo.payload_as().unwrap()
}

/// Resources by id → value (a name, or a role for assignments).
#[derive(Debug, Default)]
pub(crate) struct Fake {
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    resources: BTreeMap<String, String>,
    calls: Vec<Undo>,
    failures: HashMap<String, (u32, ErrorClass)>,
}

impl Fake {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, String> {
        self.state.lock().unwrap().resources.clone()
    }

    /// Creates `id` with `value` (what a deploy step does).
    pub(crate) fn put(&self, id: &str, value: &str) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .resources
            .insert(id.to_owned(), value.to_owned())
    }

    pub(crate) fn calls(&self) -> Vec<Undo> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Ids undone, in call order.
    pub(crate) fn undone_ids(&self) -> Vec<String> {
        self.calls().iter().map(target).collect()
    }

    /// The next `times` undos of `id` fail with `class`.
    pub(crate) fn fail(&self, id: &str, times: u32, class: ErrorClass) {
        self.state
            .lock()
            .unwrap()
            .failures
            .insert(id.to_owned(), (times, class));
    }
}

pub(crate) fn target(undo: &Undo) -> String {
    match test_undo(undo) {
        TestUndo::DeleteWorkspace { workspace_id } => workspace_id,
        TestUndo::DeleteItem { item_id, .. } | TestUndo::RestoreItem { item_id, .. } => item_id,
        TestUndo::DeleteFolder { folder_id, .. } => folder_id,
        TestUndo::RemoveRoleAssignment { assignment_id, .. }
        | TestUndo::RestoreRole { assignment_id, .. } => assignment_id,
        other => panic!("the fake does not handle {other:?}"),
    }
}

#[async_trait]
impl Undoer for Fake {
    async fn undo(&self, undo: &Undo) -> Result<UndoOutcome, UndoError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(undo.clone());
        let id = target(undo);
        if let Some((n, class)) = s.failures.get_mut(&id)
            && *n > 0
        {
            *n -= 1;
            return Err(UndoError {
                message: format!("injected failure undoing {id}"),
                class: *class,
            });
        }
        let restore = match test_undo(undo) {
            TestUndo::RestoreItem { display_name, .. } => Some(display_name),
            TestUndo::RestoreRole { role, .. } => Some(role),
            _ => None,
        };
        Ok(match restore {
            Some(v) if s.resources.get(&id) == Some(&v) => UndoOutcome::AlreadyGone,
            Some(v) => {
                s.resources.insert(id, v);
                UndoOutcome::Done
            }
            None if s.resources.remove(&id).is_some() => UndoOutcome::Done,
            None => UndoOutcome::AlreadyGone,
        })
    }
}

/// Finds items by display name in the fake (values are names).
#[async_trait]
impl IntentResolver for Fake {
    async fn resolve(&self, intent: &Intent) -> Result<Option<(ResourceRef, Undo)>, UndoError> {
        let s = self.state.lock().unwrap();
        Ok(s.resources
            .iter()
            .find(|(_, v)| **v == intent.display_name)
            .map(|(id, name)| {
                let ws = intent.workspace_id.clone().unwrap_or_default();
                (
                    ResourceRef::in_workspace(
                        intent.kind,
                        ws.clone(),
                        id.clone(),
                        Some(name.clone()),
                    ),
                    TestUndo::DeleteItem {
                        workspace_id: ws,
                        item_id: id.clone(),
                    }
                    .into(),
                )
            }))
    }
}

/// An item `id` in workspace `w`, and its delete.
pub(crate) fn item(id: &str) -> (ResourceRef, Undo) {
    (
        ResourceRef::in_workspace(ResourceKind::Lakehouse, "w", id, Some(format!("name-{id}"))),
        TestUndo::DeleteItem {
            workspace_id: "w".into(),
            item_id: id.into(),
        }
        .into(),
    )
}

/// Options on a temp dir with a manual clock.
pub(crate) fn options(dir: &std::path::Path) -> (TxnOptions, ManualClock) {
    let clock = ManualClock::new();
    let mut o = TxnOptions::new(dir);
    o.clock = Arc::new(clock.clone());
    o.config_hash = "sha256:abc".into();
    (o, clock)
}

#[derive(Debug)]
pub(crate) struct Flags(pub Vec<Flag>);

impl FlagSource for Flags {
    fn is_enabled(&self, flag: Flag) -> bool {
        self.0.contains(&flag)
    }
}

/// Copies a run's journal (only the file: no lock, no memory) into a fresh state dir, as a
/// crash leaves it for the next start.
pub(crate) fn crash_copy(journal: &std::path::Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(journal, dir.path().join(journal.file_name().unwrap())).unwrap();
    dir
}
