//! Settles create intents whose outcome never reached the journal (the process died between
//! the server applying a create and the journal learning its id).
//!
//! Recovery deletes what it finds, so it must never take for the run's result something the
//! run did not make. An intent records what recognises its result — kind, item type, name,
//! folder — and the ids of same-named resources that existed when it was journaled. A match
//! is taken only when exactly one resource fits all of that and did not exist before; when
//! recovery cannot tell (an intent from an older journal without an item type, several
//! candidates, a folder that differs), it leaves the resource in place and reports it, and
//! the rollback ends non-zero.

use async_trait::async_trait;
use fabrik_client::models::{Folder, Item};
use fabrik_client::{FabricClient, FabricError, ItemFilter};
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo, UndoError};
use fabrik_core::{Classify, ErrorClass};
use fabrik_txn::{Intent, IntentResolver};
use futures::TryStreamExt;

/// Resolves intents through the Fabric client by what they record.
#[derive(Debug, Clone)]
pub struct ByName(pub FabricClient);

fn err(e: FabricError) -> UndoError {
    UndoError {
        message: e.to_string(),
        class: e.class(),
    }
}

/// A workspace's contents, or `None` when the workspace itself is gone (then nothing a
/// create made in it is left).
async fn listed<T>(
    list: impl futures::Stream<Item = Result<T, FabricError>>,
) -> Result<Option<Vec<T>>, UndoError> {
    match list.try_collect().await {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(err(e)),
    }
}

/// Recovery could not tell whether `what` was made by the run: it is left alone.
fn unsure(intent: &Intent, why: impl std::fmt::Display) -> UndoError {
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

/// The item type a kind's intents imply when the intent does not say (journals written before
/// intents recorded it).
fn implied_type(kind: ResourceKind) -> Option<&'static str> {
    match kind {
        ResourceKind::Lakehouse => Some("Lakehouse"),
        ResourceKind::Notebook => Some("Notebook"),
        _ => None,
    }
}

/// Of `candidates`, the one the intent made: none, exactly one that did not exist before, or
/// "cannot tell".
fn pick<'a, T>(
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

#[async_trait]
impl IntentResolver for ByName {
    async fn resolve(&self, intent: &Intent) -> Result<Option<(ResourceRef, Undo)>, UndoError> {
        match (intent.kind, intent.workspace_id.as_deref()) {
            (ResourceKind::Workspace, _) => self.workspace(intent).await,
            (ResourceKind::Folder, Some(ws)) => self.folder(intent, ws).await,
            (kind, Some(ws)) => self.item(intent, kind, ws).await,
            (_, None) => Ok(None),
        }
    }
}

impl ByName {
    async fn workspace(&self, intent: &Intent) -> Result<Option<(ResourceRef, Undo)>, UndoError> {
        let all: Vec<_> = self.0.list_workspaces().try_collect().await.map_err(err)?;
        let named = all
            .iter()
            .filter(|w| w.display_name.eq_ignore_ascii_case(&intent.display_name))
            .collect();
        Ok(pick(intent, named, |w| &w.id)?.map(|w| {
            (
                ResourceRef::workspace(&w.id, &w.display_name),
                Undo::DeleteWorkspace {
                    workspace_id: w.id.clone(),
                },
            )
        }))
    }

    /// Folder intents carry the folder's path; walk it from the root.
    async fn folder(
        &self,
        intent: &Intent,
        ws: &str,
    ) -> Result<Option<(ResourceRef, Undo)>, UndoError> {
        let Some(folders) = listed::<Folder>(self.0.list_folders(ws)).await? else {
            return Ok(None);
        };
        let mut parent: Option<String> = None;
        let mut found = None;
        for part in intent.display_name.split('/') {
            found = folders
                .iter()
                .find(|f| f.display_name == part && f.parent_folder_id == parent);
            match found {
                Some(f) => parent = Some(f.id.clone()),
                None => return Ok(None),
            }
        }
        let found = found.into_iter().collect();
        Ok(pick(intent, found, |f| &f.id)?.map(|f| {
            (
                ResourceRef::in_workspace(
                    ResourceKind::Folder,
                    ws,
                    &f.id,
                    Some(intent.display_name.clone()),
                ),
                Undo::DeleteFolder {
                    workspace_id: ws.to_string(),
                    folder_id: f.id.clone(),
                },
            )
        }))
    }

    async fn item(
        &self,
        intent: &Intent,
        kind: ResourceKind,
        ws: &str,
    ) -> Result<Option<(ResourceRef, Undo)>, UndoError> {
        let Some(item_type) = intent.item_type.as_deref().or(implied_type(kind)) else {
            // Without a type a name may belong to an item of any type, made by anyone.
            return self.untyped(intent, ws).await;
        };
        let Some(items) = listed::<Item>(self.0.list_items(ws, &ItemFilter::default())).await?
        else {
            return Ok(None);
        };
        let named = items
            .iter()
            .filter(|i| {
                i.display_name.eq_ignore_ascii_case(&intent.display_name)
                    && i.kind.as_str().eq_ignore_ascii_case(item_type)
            })
            .collect();
        let Some(i) = pick(intent, named, |i| &i.id)? else {
            return Ok(None);
        };
        if intent.folder_id.is_some() && i.folder_id != intent.folder_id {
            return Err(unsure(
                intent,
                "it is in another folder than the one intended",
            ));
        }
        Ok(Some((
            ResourceRef::in_workspace(kind, ws, &i.id, Some(i.display_name.clone())),
            Undo::DeleteItem {
                workspace_id: ws.to_string(),
                item_id: i.id.clone(),
            },
        )))
    }

    /// An item intent of an older journal, with no type: nothing found is settled; anything
    /// found of that name is left in place and reported.
    async fn untyped(
        &self,
        intent: &Intent,
        ws: &str,
    ) -> Result<Option<(ResourceRef, Undo)>, UndoError> {
        let Some(items) = listed::<Item>(self.0.list_items(ws, &ItemFilter::default())).await?
        else {
            return Ok(None);
        };
        let named: Vec<&Item> = items
            .iter()
            .filter(|i| i.display_name.eq_ignore_ascii_case(&intent.display_name))
            .filter(|i| !intent.existing.contains(&i.id))
            .collect();
        if named.is_empty() {
            return Ok(None);
        }
        let kinds: Vec<&str> = named.iter().map(|i| i.kind.as_str()).collect();
        Err(unsure(
            intent,
            format!(
                "the journal does not record its item type; found: {}",
                kinds.join(", ")
            ),
        ))
    }
}
