//! Applying a publish change: the calls, each journaled first with its undo.

use fabrik_client::models::{CreateItemRequest, ItemType as ApiType};
use fabrik_core::resource::{ResourceKind, ResourceRef};
use fabrik_txn::Intent;

use super::{DEFAULT_VALUE_SET, FolderMove, ItemType, NAME, Outcome, PublishKind, definition};
use crate::engine::kinds::folder;
use crate::engine::kinds::item::{GENERIC, ItemUndo};
use crate::engine::{ApplyCx, EngineError};

/// An update of a deployed item, as planned.
pub(super) struct UpdateChange<'a> {
    pub(super) id: &'a String,
    pub(super) index: usize,
    pub(super) previous: &'a [(String, String)],
    pub(super) differs: &'a [String],
    pub(super) moved: Option<&'a FolderMove>,
    pub(super) renamed_from: Option<&'a (String, String)>,
}

impl PublishKind {
    /// The id of an item this run knows (deployed, or created by an earlier change).
    pub(super) fn id_in_run(&self, cx: &ApplyCx<'_>, item: &str) -> Result<String, EngineError> {
        cx.id_of(NAME, item).ok_or_else(|| EngineError::Unresolved {
            target: cx.target.to_string(),
            missing: item.to_string(),
        })
    }

    /// Creates an item (with its rendered definition, or its creation payload for a shell).
    pub(super) async fn apply_create(
        &self,
        cx: &ApplyCx<'_>,
        ws: &str,
        item: &str,
        folder: &Option<String>,
        index: usize,
    ) -> Result<Outcome, EngineError> {
        let r = &self.repo.items[index];
        let mut req =
            CreateItemRequest::new(r.display_name.clone(), ApiType::from(r.item_type.as_str()));
        req.description = Some(r.description.clone());
        req.folder_id = match folder {
            Some(f) => Some(
                cx.id_of(folder::NAME, f)
                    .ok_or_else(|| EngineError::Unresolved {
                        target: cx.target.to_string(),
                        missing: format!("folder {f}"),
                    })?,
            ),
            None => None,
        };
        if r.item_type.is_shell() {
            req.creation_payload = r.creation_payload();
        } else {
            req.definition = Some(definition(r, &self.render_now(r, cx, ws).await?));
        }
        let (outcome, created) = cx
            .create(
                Intent::create(
                    ResourceKind::Item,
                    Some(ws.to_string()),
                    r.display_name.clone(),
                )
                .of_type(r.item_type.as_str())
                .in_folder(req.folder_id.clone())
                .owned_by(GENERIC),
                &format!("publishing {}", cx.target),
                cx.client.get_or_create_item(ws, &req),
                |it| {
                    (
                        ResourceRef::in_workspace(
                            ResourceKind::Item,
                            ws,
                            &it.id,
                            Some(r.display_name.clone()),
                        ),
                        ItemUndo::Delete {
                            workspace_id: ws.to_string(),
                            item_id: it.id.clone(),
                        }
                        .record(),
                    )
                },
            )
            .await?;
        cx.set_id(NAME, item, &created.id);
        self.after_definition(cx, ws, r, &created.id).await?;
        Ok(outcome)
    }

    /// Updates a deployed item: its name (a rename), its folder (a move), its definition.
    pub(super) async fn apply_update(
        &self,
        cx: &ApplyCx<'_>,
        ws: &str,
        change: UpdateChange<'_>,
    ) -> Result<Outcome, EngineError> {
        let UpdateChange {
            id,
            index,
            previous,
            differs,
            moved,
            renamed_from,
        } = change;
        let r = &self.repo.items[index];
        if let Some((name, description)) = renamed_from {
            cx.track(
                ResourceRef::in_workspace(ResourceKind::Item, ws, id, Some(name.clone())),
                ItemUndo::Restore {
                    workspace_id: ws.to_string(),
                    item_id: id.clone(),
                    display_name: name.clone(),
                    description: description.clone(),
                }
                .record(),
            )
            .await?;
        }
        if let Some(m) = moved {
            self.move_item(cx, ws, id, &r.display_name, m).await?;
        }
        if differs.is_empty() {
            return Ok(Outcome::Updated);
        }
        if r.item_type == ItemType::Environment {
            // Journaled before the definition's undo, so rollback (newest first) puts
            // the previous definition back and then publishes it.
            cx.track(
                ResourceRef::in_workspace(ResourceKind::Item, ws, id, Some(r.display_name.clone())),
                ItemUndo::PublishEnvironment {
                    workspace_id: ws.to_string(),
                    item_id: id.clone(),
                }
                .record(),
            )
            .await?;
        }
        cx.track(
            ResourceRef::in_workspace(ResourceKind::Item, ws, id, Some(r.display_name.clone())),
            ItemUndo::restore_definition(
                ws,
                id,
                previous,
                r.definition_format().map(str::to_string),
            ),
        )
        .await?;
        let parts = self.render_now(r, cx, ws).await?;
        cx.client
            .update_item_definition(ws, id, &definition(r, &parts), true)
            .await
            .map_err(cx.fabric(&format!("publishing {}", cx.target)))?;
        self.after_definition(cx, ws, r, id).await?;
        Ok(Outcome::Updated)
    }

    /// Activates a VariableLibrary's value set.
    pub(super) async fn apply_value_set(
        &self,
        cx: &ApplyCx<'_>,
        ws: &str,
        item: &str,
        from: &Option<String>,
        to: &str,
    ) -> Result<Outcome, EngineError> {
        let id = self.id_in_run(cx, item)?;
        cx.track(
            ResourceRef::in_workspace(ResourceKind::Item, ws, &id, Some(item.to_string())),
            ItemUndo::RestoreActiveValueSet {
                workspace_id: ws.to_string(),
                item_id: id.clone(),
                value_set: from.clone().unwrap_or_else(|| DEFAULT_VALUE_SET.into()),
            }
            .record(),
        )
        .await?;
        cx.client
            .set_active_value_set(ws, &id, to)
            .await
            .map_err(cx.fabric(&format!("activating value set {to} of {item}")))?;
        Ok(Outcome::Updated)
    }

    /// Binds a semantic model's data sources to connections.
    pub(super) async fn apply_bind(
        &self,
        cx: &ApplyCx<'_>,
        ws: &str,
        item: &str,
        connections: &[serde_json::Value],
        previous: &[serde_json::Value],
    ) -> Result<Outcome, EngineError> {
        let id = self.id_in_run(cx, item)?;
        for c in connections {
            let details = serde_json::json!({
                "type": c["connectionDetails"]["type"],
                "path": c["connectionDetails"]["path"],
            });
            let before = previous.iter().find(|p| {
                p["connectionDetails"]["type"] == details["type"]
                    && p["connectionDetails"]["path"] == details["path"]
            });
            cx.track(
                ResourceRef::in_workspace(ResourceKind::Item, ws, &id, Some(item.to_string())),
                ItemUndo::RestoreBinding {
                    workspace_id: ws.to_string(),
                    item_id: id.clone(),
                    details: details.to_string(),
                    connection: before.map(|b| b.to_string()),
                }
                .record(),
            )
            .await?;
            let cid = c["id"].as_str().unwrap_or_default();
            cx.client
                .bind_connection(ws, &id, &details, Some(c))
                .await
                .map_err(cx.fabric(&format!("binding {item} to connection {cid}")))?;
        }
        Ok(Outcome::Updated)
    }
}
