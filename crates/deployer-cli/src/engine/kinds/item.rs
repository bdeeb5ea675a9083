//! Items: lakehouses, notebooks, and a generic kind for every other item type. One type serves
//! all three; each registered instance owns its item types.

use async_trait::async_trait;
use fabrik_client::models::{
    CreateItemRequest, DefinitionPart, ItemDefinition, ItemType, PayloadType, UpdateItemRequest,
};
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo, UndoError, UndoOutcome};
use fabrik_txn::Intent;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

pub use super::item_undo::{GENERIC, ItemUndo};
use super::{folder, workspace};
use crate::config::{DesiredItem, DesiredWorkspace};
use crate::engine::{
    Address, ApplyCx, Diff, DiffCx, EngineError, Kind, Need, Outcome, Planned, ReadCx, UndoCx, ctx,
};
use crate::plan::Action;

/// Items of one type (or, for the generic kind, of every type no other kind claims).
#[derive(Debug, Clone, Copy)]
pub struct ItemKind {
    name: &'static str,
    /// `None`: the generic kind.
    item_type: Option<&'static str>,
    resource_kind: ResourceKind,
}

impl ItemKind {
    /// Lakehouses.
    pub fn lakehouse() -> Self {
        Self {
            name: "lakehouse",
            item_type: Some("Lakehouse"),
            resource_kind: ResourceKind::Lakehouse,
        }
    }

    /// Notebooks.
    pub fn notebook() -> Self {
        Self {
            name: "notebook",
            item_type: Some("Notebook"),
            resource_kind: ResourceKind::Notebook,
        }
    }

    /// Every item type no other registered kind claims.
    pub fn generic() -> Self {
        Self {
            name: GENERIC,
            item_type: None,
            resource_kind: ResourceKind::Item,
        }
    }

    fn owns(&self, item_type: &str, claimed: &[&'static str]) -> bool {
        match self.item_type {
            Some(t) => t == item_type,
            None => !claimed.contains(&item_type),
        }
    }
}

/// An item as it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveItem {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Item type.
    pub item_type: String,
    /// Description.
    pub description: String,
    /// Folder path.
    pub folder: Option<String>,
    /// Definition parts (path, base64), read only for items whose definition is managed.
    pub definition: Option<Vec<(String, String)>>,
}

/// An item change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum ItemOp {
    /// Create it (with its definition, if any).
    #[serde(rename_all = "camelCase")]
    Create {
        /// The item.
        #[serde(skip)]
        item: DesiredItem,
        /// Its type.
        item_type: String,
        /// Its folder.
        folder: Option<String>,
    },
    /// Change its description.
    #[serde(rename_all = "camelCase")]
    UpdateDescription {
        /// Item id.
        id: String,
        /// Display name.
        name: String,
        /// New description.
        description: String,
        /// Previous description.
        previous: String,
    },
    /// Replace its definition.
    #[serde(rename_all = "camelCase")]
    UpdateDefinition {
        /// Item id.
        id: String,
        /// Paths of the parts that differ.
        differs: Vec<String>,
        /// New parts.
        #[serde(skip)]
        parts: Vec<(String, String)>,
        /// Previous parts.
        #[serde(skip)]
        previous: Vec<(String, String)>,
    },
    /// Delete an item the configuration does not describe (`--prune`). Irreversible: runs after
    /// every other change succeeded.
    #[serde(rename_all = "camelCase")]
    Delete {
        /// Item id.
        id: String,
        /// Display name.
        name: String,
    },
}

/// The definition format parts imply: notebooks given as `.ipynb` are `ipynb`; `.py` is the default.
fn definition_format(parts: &[(String, String)]) -> Option<String> {
    parts
        .iter()
        .any(|(path, _)| path.ends_with(".ipynb"))
        .then(|| "ipynb".to_string())
}

fn definition(p: &[(String, String)]) -> ItemDefinition {
    ItemDefinition {
        format: definition_format(p),
        parts: p
            .iter()
            .map(|(path, payload)| DefinitionPart {
                path: path.clone(),
                payload: payload.clone(),
                payload_type: PayloadType::InlineBase64,
            })
            .collect(),
    }
}

/// Parts fabrik manages that differ from the deployed ones; parts the service adds
/// (`.platform`) are not compared.
fn differing_parts(want: &[(String, String)], have: &[(String, String)]) -> Vec<String> {
    want.iter()
        .filter(|(path, payload)| !have.iter().any(|(p, v)| p == path && v == payload))
        .map(|(p, _)| p.clone())
        .collect()
}

#[async_trait]
impl Kind for ItemKind {
    type Live = Vec<LiveItem>;
    type Op = ItemOp;

    fn name(&self) -> &'static str {
        self.name
    }

    fn resource_kind(&self) -> ResourceKind {
        self.resource_kind
    }

    fn claims_item_type(&self) -> Option<&'static str> {
        self.item_type
    }

    async fn read(&self, cx: &ReadCx<'_>) -> Result<Self::Live, EngineError> {
        for d in &cx.desired.items {
            if self.owns(&d.item_type, &cx.claimed_item_types) {
                let at = Address::new(&cx.desired.name, self.name, &d.name);
                cx.rendered_field(&at, "description", &d.description);
            }
        }
        if cx.workspace_id().is_none() {
            return Ok(vec![]);
        }
        let mut live = Vec::new();
        for it in cx.items().await? {
            let item_type = it.kind.as_str();
            if !self.owns(item_type, &cx.claimed_item_types) {
                continue;
            }
            // The workspace's repository publishes it: the publisher owns it.
            if cx.desired.publish.as_ref().is_some_and(|p| {
                p.items
                    .iter()
                    .any(|(t, n)| t == item_type && n == &it.display_name)
            }) {
                continue;
            }
            cx.know(
                Address::new(&cx.desired.name, self.name, &it.display_name),
                it.id.clone(),
            );
            // A description the last run rendered from secrets is learned (deployed record).
            if let Some(d) =
                cx.desired.items.iter().find(|d| {
                    d.item_type == item_type && d.name.eq_ignore_ascii_case(&it.display_name)
                })
            {
                let at = Address::new(&cx.desired.name, self.name, &d.name);
                cx.deployed_field(&at, "description", &it.description);
            }
            live.push(LiveItem {
                id: it.id.clone(),
                name: it.display_name.clone(),
                item_type: item_type.to_string(),
                description: it.description.clone(),
                folder: cx.path_of(it.folder_id.as_deref()).await?,
                definition: None,
            });
        }
        // Definitions only of items whose definition the configuration manages, read in the
        // format the configuration gives (so parts compare like for like), several at a time.
        let wanted: Vec<(usize, Option<String>)> =
            live.iter()
                .enumerate()
                .filter_map(|(i, l)| {
                    let d = cx.desired.items.iter().find(|d| {
                        d.item_type == l.item_type && d.name.eq_ignore_ascii_case(&l.name)
                    })?;
                    Some((i, definition_format(d.definition.as_deref()?)))
                })
                .collect();
        let read: Vec<(usize, Vec<(String, String)>)> = futures::stream::iter(wanted)
            .map(|(i, format)| {
                let l = &live[i];
                async move {
                    let d = cx
                        .definition(&l.item_type, &l.name, &l.id, format.as_deref())
                        .await?;
                    Ok::<_, EngineError>((
                        i,
                        d.parts.into_iter().map(|p| (p.path, p.payload)).collect(),
                    ))
                }
            })
            .buffer_unordered(cx.concurrency)
            .try_collect()
            .await?;
        for (i, parts) in read {
            live[i].definition = Some(parts);
        }
        Ok(live)
    }

    fn diff(&self, desired: &DesiredWorkspace, live: &Vec<LiveItem>, cx: &DiffCx) -> Diff<ItemOp> {
        let ws = &desired.name;
        let mut d = Diff::default();
        for item in desired
            .items
            .iter()
            .filter(|i| self.owns(&i.item_type, &cx.claimed_item_types))
        {
            let found = live
                .iter()
                .find(|l| l.item_type == item.item_type && l.name.eq_ignore_ascii_case(&item.name));
            let target = format!("{} {}", item.item_type.to_lowercase(), item.name);
            let Some(l) = found else {
                let mut needs = vec![Need::At(Address::new(ws, workspace::NAME, ws))];
                if let Some(f) = &item.folder {
                    needs.push(Need::At(folder::address(ws, f)));
                }
                d.changes.push(Planned {
                    action: Action::Create,
                    key: item.name.clone(),
                    target,
                    detail: item.folder.as_ref().map(|f| format!("in folder {f}")),
                    needs,
                    op: ItemOp::Create {
                        item: item.clone(),
                        item_type: item.item_type.clone(),
                        folder: item.folder.clone(),
                    },
                });
                continue;
            };
            if l.description != item.description {
                d.changes.push(Planned {
                    action: Action::Update,
                    key: item.name.clone(),
                    target: target.clone(),
                    detail: Some(format!(
                        "description: {:?} → {:?}",
                        l.description, item.description
                    )),
                    needs: vec![],
                    op: ItemOp::UpdateDescription {
                        id: l.id.clone(),
                        name: l.name.clone(),
                        description: item.description.clone(),
                        previous: l.description.clone(),
                    },
                });
            }
            if let Some(parts) = &item.definition {
                let have = l.definition.as_deref().unwrap_or(&[]);
                let differs = differing_parts(parts, have);
                if !differs.is_empty() {
                    d.changes.push(Planned {
                        action: Action::Update,
                        key: item.name.clone(),
                        target,
                        detail: Some("definition changed".into()),
                        needs: vec![],
                        op: ItemOp::UpdateDefinition {
                            id: l.id.clone(),
                            differs,
                            parts: parts.clone(),
                            previous: have.to_vec(),
                        },
                    });
                }
            }
        }
        for l in live {
            let described = desired
                .items
                .iter()
                .any(|d| d.item_type == l.item_type && d.name.eq_ignore_ascii_case(&l.name));
            if described {
                continue;
            }
            let target = format!("{} {}", l.item_type.to_lowercase(), l.name);
            if cx.prune {
                d.changes.push(Planned {
                    action: Action::Delete,
                    key: l.name.clone(),
                    target,
                    detail: Some("not in the configuration".into()),
                    needs: vec![],
                    op: ItemOp::Delete {
                        id: l.id.clone(),
                        name: l.name.clone(),
                    },
                });
            } else {
                d.unmanaged.push(target);
            }
        }
        d
    }

    async fn apply(&self, op: &ItemOp, cx: &ApplyCx<'_>) -> Result<Outcome, EngineError> {
        let ws = cx.workspace_id()?;
        let kind = self.resource_kind;
        match op {
            ItemOp::Create {
                item, item_type, ..
            } => {
                let mut req =
                    CreateItemRequest::new(item.name.clone(), ItemType::from(item_type.as_str()));
                req.description = Some(item.description.clone());
                req.folder_id =
                    match &item.folder {
                        Some(f) => Some(cx.id_of(folder::NAME, f).ok_or_else(|| {
                            EngineError::Unresolved {
                                target: cx.target.to_string(),
                                missing: format!("folder {f}"),
                            }
                        })?),
                        None => None,
                    };
                req.definition = item.definition.as_deref().map(definition);
                let (outcome, created) = cx
                    .create(
                        Intent::create(kind, Some(ws.clone()), item.name.clone())
                            .of_type(item_type.as_str())
                            .in_folder(req.folder_id.clone()),
                        &format!("creating {}", cx.target),
                        cx.client.get_or_create_item(&ws, &req),
                        |it| {
                            (
                                ResourceRef::in_workspace(
                                    kind,
                                    &ws,
                                    &it.id,
                                    Some(item.name.clone()),
                                ),
                                ItemUndo::delete(&ws, &it.id),
                            )
                        },
                    )
                    .await?;
                cx.set_id(self.name, &item.name, &created.id);
                Ok(outcome)
            }
            ItemOp::UpdateDescription {
                id,
                name,
                description,
                previous,
            } => {
                cx.track(
                    ResourceRef::in_workspace(kind, &ws, id, Some(name.clone())),
                    ItemUndo::Restore {
                        workspace_id: ws.clone(),
                        item_id: id.clone(),
                        display_name: name.clone(),
                        description: previous.clone(),
                    }
                    .record(),
                )
                .await?;
                let req = UpdateItemRequest {
                    display_name: None,
                    description: Some(description.clone()),
                };
                cx.client
                    .update_item(&ws, id, &req)
                    .await
                    .map_err(cx.fabric(&format!("updating {}", cx.target)))?;
                Ok(Outcome::Updated)
            }
            ItemOp::UpdateDefinition {
                id,
                parts,
                previous,
                ..
            } => {
                cx.track(
                    ResourceRef::in_workspace(kind, &ws, id, None),
                    ItemUndo::restore_definition(&ws, id, previous, definition_format(parts)),
                )
                .await?;
                cx.client
                    .update_item_definition(&ws, id, &definition(parts), false)
                    .await
                    .map_err(cx.fabric(&format!("updating the definition of {}", cx.target)))?;
                Ok(Outcome::Updated)
            }
            ItemOp::Delete { id, name } => {
                // Journaled without an undo: a deleted item cannot be put back as it was.
                cx.track_without_undo(ResourceRef::in_workspace(kind, &ws, id, Some(name.clone())))
                    .await?;
                match cx.client.delete_item(&ws, id).await {
                    Ok(()) => Ok(Outcome::Deleted),
                    Err(e) if e.is_not_found() => Ok(Outcome::Deleted),
                    Err(e) => Err(ctx(format!("deleting {} in {}", cx.target, cx.workspace))(
                        e,
                    )),
                }
            }
        }
    }

    async fn undo(&self, undo: &Undo, cx: &UndoCx<'_>) -> Result<UndoOutcome, UndoError> {
        super::item_undo::undo(undo, cx).await
    }

    async fn recover(
        &self,
        intent: &Intent,
        cx: &UndoCx<'_>,
    ) -> Result<Option<(ResourceRef, Undo)>, UndoError> {
        super::item_undo::recover(intent, cx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::kinds::tests::desired;

    fn live_of(d: &DesiredWorkspace) -> Vec<LiveItem> {
        d.items
            .iter()
            .enumerate()
            .map(|(i, it)| LiveItem {
                id: format!("i{i}"),
                name: it.name.clone(),
                item_type: it.item_type.clone(),
                description: it.description.clone(),
                folder: it.folder.clone(),
                definition: it.definition.clone().map(|mut p| {
                    p.push((".platform".into(), "e30=".into()));
                    p
                }),
            })
            .collect()
    }

    fn claimed() -> DiffCx {
        DiffCx {
            claimed_item_types: vec!["Lakehouse", "Notebook"],
            ..DiffCx::default()
        }
    }

    #[test]
    fn a_state_against_itself_plans_nothing() {
        let d = desired();
        for k in [
            ItemKind::lakehouse(),
            ItemKind::notebook(),
            ItemKind::generic(),
        ] {
            let live: Vec<LiveItem> = live_of(&d)
                .into_iter()
                .filter(|l| k.owns(&l.item_type, &claimed().claimed_item_types))
                .collect();
            let diff = k.diff(&d, &live, &claimed());
            assert!(
                diff.changes.is_empty() && diff.unmanaged.is_empty(),
                "{diff:?}"
            );
        }
    }

    #[test]
    fn each_kind_plans_only_its_own_types() {
        let d = desired();
        let lh = ItemKind::lakehouse().diff(&d, &vec![], &claimed()).changes;
        assert_eq!(lh.len(), 1);
        assert_eq!(lh[0].target, "lakehouse BRONZE_L");
        let nb = ItemKind::notebook().diff(&d, &vec![], &claimed()).changes;
        assert_eq!(nb[0].detail.as_deref(), Some("in folder raw"));
        assert!(
            nb[0]
                .needs
                .contains(&Need::At(folder::address("p-a-dev", "raw")))
        );
        assert!(
            ItemKind::generic()
                .diff(&d, &vec![], &claimed())
                .changes
                .is_empty()
        );
    }

    #[test]
    fn changed_notebook_content_updates_the_definition() {
        let d = desired();
        let mut live: Vec<LiveItem> = live_of(&d)
            .into_iter()
            .filter(|l| l.item_type == "Notebook")
            .collect();
        live[0].definition = Some(vec![("notebook-content.py".into(), "b2xk".into())]);
        let c = ItemKind::notebook().diff(&d, &live, &claimed()).changes;
        assert_eq!(c.len(), 1);
        assert!(
            matches!(&c[0].op, ItemOp::UpdateDefinition { previous, differs, .. } if previous[0].1 == "b2xk" && differs == &["notebook-content.py"])
        );
    }

    #[test]
    fn unmanaged_items_are_reported_or_with_prune_deleted() {
        let d = desired();
        let other = LiveItem {
            id: "x".into(),
            name: "Other".into(),
            item_type: "Report".into(),
            description: String::new(),
            folder: None,
            definition: None,
        };
        let kept = ItemKind::generic().diff(&d, &vec![other.clone()], &claimed());
        assert!(kept.changes.is_empty());
        assert_eq!(kept.unmanaged, vec!["report Other"]);
        let pruning = DiffCx {
            prune: true,
            ..claimed()
        };
        let pruned = ItemKind::generic().diff(&d, &vec![other], &pruning);
        assert!(pruned.unmanaged.is_empty());
        assert_eq!(pruned.changes[0].action, Action::Delete);
        assert_eq!(
            pruned.changes[0].op,
            ItemOp::Delete {
                id: "x".into(),
                name: "Other".into()
            }
        );
    }

    #[test]
    fn drift_in_a_description_is_an_update() {
        let d = desired();
        let mut live: Vec<LiveItem> = live_of(&d)
            .into_iter()
            .filter(|l| l.item_type == "Lakehouse")
            .collect();
        live[0].description = "changed by hand".into();
        let c = ItemKind::lakehouse().diff(&d, &live, &claimed()).changes;
        assert_eq!(
            c[0].detail.as_deref(),
            Some("description: \"changed by hand\" → \"\"")
        );
    }
}
