//! A fake service that undos act on, recording every call, with injectable failures.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo, UndoError, UndoOutcome, Undoer};
use fabrik_core::time::ManualClock;
use fabrik_core::{ErrorClass, Flag, FlagSource};
use fabrik_txn::{Intent, IntentResolver, TxnOptions};

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
        self.calls().iter().map(|u| target(u).to_owned()).collect()
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

pub(crate) fn target(undo: &Undo) -> &str {
    match undo {
        Undo::DeleteWorkspace { workspace_id } => workspace_id,
        Undo::DeleteItem { item_id, .. } | Undo::RestoreItem { item_id, .. } => item_id,
        Undo::DeleteFolder { folder_id, .. } => folder_id,
        Undo::RemoveRoleAssignment { assignment_id, .. }
        | Undo::RestoreRole { assignment_id, .. } => assignment_id,
        other => panic!("the fake does not handle {other:?}"),
    }
}

#[async_trait]
impl Undoer for Fake {
    async fn undo(&self, undo: &Undo) -> Result<UndoOutcome, UndoError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(undo.clone());
        let id = target(undo).to_owned();
        if let Some((n, class)) = s.failures.get_mut(&id)
            && *n > 0
        {
            *n -= 1;
            return Err(UndoError {
                message: format!("injected failure undoing {id}"),
                class: *class,
            });
        }
        let restore = match undo {
            Undo::RestoreItem { display_name, .. } => Some(display_name.clone()),
            Undo::RestoreRole { role, .. } => Some(role.clone()),
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
                    Undo::DeleteItem {
                        workspace_id: ws,
                        item_id: id.clone(),
                    },
                )
            }))
    }
}

/// An item `id` in workspace `w`, and its delete.
pub(crate) fn item(id: &str) -> (ResourceRef, Undo) {
    (
        ResourceRef::in_workspace(ResourceKind::Lakehouse, "w", id, Some(format!("name-{id}"))),
        Undo::DeleteItem {
            workspace_id: "w".into(),
            item_id: id.into(),
        },
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
