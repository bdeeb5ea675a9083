//! How every item change is undone and how a crashed item create is recognised: the item
//! kinds' journaled payload ([`ItemUndo`]), carried out by [`undo`], and [`recover`]. Items
//! written in `fabrik.yaml` and items published from a repository journal the same records,
//! under the generic item kind's name, so a rollback needs no knowledge of where they came from.

use fabrik_client::ItemFilter;
use fabrik_client::models::{
    BulkImportOptions, BulkImportRequest, DefinitionPart, Item, ItemDefinition, PayloadType,
    UpdateItemRequest,
};
use fabrik_core::resource::{
    DefinitionPart as JournaledPart, ResourceKind, ResourceRef, Undo, UndoError, UndoOutcome,
};
use fabrik_txn::Intent;
use serde::{Deserialize, Serialize};

use crate::engine::recovery::{listed, pick, unsure};
use crate::engine::{UndoCx, permanent, settle};

/// The name item records are journaled under: the generic item kind's.
pub const GENERIC: &str = "item";

/// How an item change is undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ItemUndo {
    /// Delete an item that was created.
    Delete {
        /// Its workspace.
        workspace_id: String,
        /// The item.
        item_id: String,
    },
    /// Put back its previous name and description.
    Restore {
        /// Its workspace.
        workspace_id: String,
        /// The item.
        item_id: String,
        /// Previous display name.
        display_name: String,
        /// Previous description.
        description: String,
    },
    /// Put back its previous definition (the parts' payloads are journaled with secret values
    /// as references).
    RestoreDefinition {
        /// Its workspace.
        workspace_id: String,
        /// The item.
        item_id: String,
        /// The previous parts.
        parts: Vec<JournaledPart>,
        /// The definition's format (`ipynb` for notebooks read as ipynb), when not the default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<String>,
    },
    /// Put back the previous definitions of several items in one `bulkImportDefinitions`
    /// (a bulk publish's updates). The parts are the import's: workspace-absolute paths
    /// (`/<folders>/<Name>.<Type>/<file>`), each item with its `.platform`, so the service
    /// pairs them with the items again; journaled with secret values as references.
    RestoreByImport {
        /// Their workspace.
        workspace_id: String,
        /// Every part of every item.
        parts: Vec<JournaledPart>,
    },
    /// Move it back to the folder it was in (`None`: the workspace root).
    Move {
        /// Its workspace.
        workspace_id: String,
        /// The item.
        item_id: String,
        /// The previous folder.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        folder_id: Option<String>,
    },
    /// Put back a VariableLibrary's previous active value set.
    RestoreActiveValueSet {
        /// Its workspace.
        workspace_id: String,
        /// The library.
        item_id: String,
        /// The previous value set.
        value_set: String,
    },
    /// Put back one OneLake shortcut as it was: the previous one (its JSON), or none (delete).
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
    PublishEnvironment {
        /// Its workspace.
        workspace_id: String,
        /// The Environment.
        item_id: String,
    },
}

impl ItemUndo {
    /// The journal's record of it.
    pub fn record(&self) -> Undo {
        Undo::new(GENERIC, self)
    }

    /// Put back the definition `previous` (`(path, base64 payload)` parts, as read) of item
    /// `item_id`, in `format` when not the default.
    pub fn restore_definition(
        workspace_id: &str,
        item_id: &str,
        previous: &[(String, String)],
        format: Option<String>,
    ) -> Undo {
        Self::RestoreDefinition {
            workspace_id: workspace_id.to_string(),
            item_id: item_id.to_string(),
            parts: previous
                .iter()
                .map(|(path, payload)| JournaledPart {
                    path: path.clone(),
                    payload: payload.clone(),
                })
                .collect(),
            format,
        }
        .record()
    }

    /// Delete item `item_id` of `workspace_id`.
    pub fn delete(workspace_id: &str, item_id: &str) -> Undo {
        Self::Delete {
            workspace_id: workspace_id.to_string(),
            item_id: item_id.to_string(),
        }
        .record()
    }
}

fn json(text: &str, what: &str) -> Result<serde_json::Value, UndoError> {
    serde_json::from_str(text)
        .map_err(|e| permanent(format!("the journaled {what} is not JSON: {e}")))
}

/// Carries out an item record.
pub async fn undo(undo: &Undo, cx: &UndoCx<'_>) -> Result<UndoOutcome, UndoError> {
    let c = cx.client;
    let result = match undo.payload_as::<ItemUndo>()? {
        ItemUndo::Delete {
            workspace_id,
            item_id,
        } => c.delete_item(&workspace_id, &item_id).await,
        ItemUndo::Restore {
            workspace_id,
            item_id,
            display_name,
            description,
        } => {
            let req = UpdateItemRequest {
                display_name: Some(display_name),
                description: Some(description),
            };
            c.update_item(&workspace_id, &item_id, &req).await.map(drop)
        }
        ItemUndo::RestoreDefinition {
            workspace_id,
            item_id,
            parts,
            format,
        } => {
            let definition = ItemDefinition {
                format,
                parts: parts
                    .into_iter()
                    .map(|p| DefinitionPart {
                        path: p.path,
                        payload: p.payload,
                        payload_type: PayloadType::InlineBase64,
                    })
                    .collect(),
            };
            c.update_item_definition(&workspace_id, &item_id, &definition, false)
                .await
        }
        ItemUndo::RestoreByImport {
            workspace_id,
            parts,
        } => {
            let request = BulkImportRequest {
                definition_parts: parts
                    .into_iter()
                    .map(|p| DefinitionPart {
                        path: p.path,
                        payload: p.payload,
                        payload_type: PayloadType::InlineBase64,
                    })
                    .collect(),
                options: Some(BulkImportOptions {
                    allow_pairing_by_name: Some(true),
                }),
            };
            c.bulk_import_definitions(&workspace_id, &request)
                .await
                .map(drop)
        }
        ItemUndo::Move {
            workspace_id,
            item_id,
            folder_id,
        } => {
            c.move_item(&workspace_id, &item_id, folder_id.as_deref())
                .await
        }
        ItemUndo::RestoreActiveValueSet {
            workspace_id,
            item_id,
            value_set,
        } => {
            c.set_active_value_set(&workspace_id, &item_id, &value_set)
                .await
        }
        ItemUndo::RestoreShortcut {
            workspace_id,
            item_id,
            path,
            name,
            previous,
        } => match previous {
            Some(text) => {
                let v = json(&text, &format!("shortcut {path}/{name}"))?;
                c.put_shortcut(&workspace_id, &item_id, &v).await
            }
            None => {
                c.delete_shortcut(&workspace_id, &item_id, &path, &name)
                    .await
            }
        },
        ItemUndo::RestoreBinding {
            workspace_id,
            item_id,
            details,
            connection,
        } => {
            let details = json(&details, "binding")?;
            let connection = connection
                .as_deref()
                .map(|c| json(c, "binding"))
                .transpose()?;
            c.bind_connection(&workspace_id, &item_id, &details, connection.as_ref())
                .await
        }
        ItemUndo::PublishEnvironment {
            workspace_id,
            item_id,
        } => c.publish_environment(&workspace_id, &item_id).await,
    };
    settle(result, &[])
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

/// Finds the item a crashed create made: of the intent's type and name, in its folder, and not
/// one of those that existed when it was journaled.
pub async fn recover(
    intent: &Intent,
    cx: &UndoCx<'_>,
) -> Result<Option<(ResourceRef, Undo)>, UndoError> {
    let Some(ws) = intent.workspace_id.as_deref() else {
        return Ok(None);
    };
    let Some(items) = listed::<Item>(cx.client.list_items(ws, &ItemFilter::default())).await?
    else {
        return Ok(None);
    };
    let Some(item_type) = intent.item_type.as_deref().or(implied_type(intent.kind)) else {
        // Without a type a name may belong to an item of any type, made by anyone.
        return untyped(intent, &items);
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
        ResourceRef::in_workspace(intent.kind, ws, &i.id, Some(i.display_name.clone())),
        ItemUndo::delete(ws, &i.id),
    )))
}

/// An item intent of an older journal, with no type: nothing found is settled; anything found
/// of that name is left in place and reported.
fn untyped(intent: &Intent, items: &[Item]) -> Result<Option<(ResourceRef, Undo)>, UndoError> {
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
