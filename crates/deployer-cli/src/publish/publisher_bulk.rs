//! Bulk mode (`--bulk`, fabric-cicd's `enable_bulk_publish`): the creates and updates of the
//! plan that `bulkImportDefinitions` accepts are written by bulk imports instead of one
//! request (or two) per item.
//!
//! The plan keeps every item's create or update at its address, so the plan, the references
//! of value sets, shortcuts and bindings, and the summary are those of the standard path; each
//! such change waits for a `bulk-import-N` change that sends its batch. An item goes in a later
//! batch than every item whose id its rendered parts need (fabrik renders logicalIds and
//! `$items` itself, as in the standard path, so the ids must exist first), and a batch holds at
//! most [`MAX_BATCH`] items. Types the API refuses (Warehouse, DataBuildToolJob), shell items
//! (no definition to import), renames and moves stay one by one.
//!
//! Journal, per batch and before it is sent: each update's previous definition (and an
//! Environment's publish) as in the standard path, and an intent per create, completed with
//! the item's delete once the import says its id.

use std::collections::{BTreeMap, BTreeSet};

use fabrik_client::models::{BulkImportOptions, BulkImportRequest, ImportItemDefinitionsDetails};
use fabrik_core::resource::{DefinitionPart as JournaledPart, ResourceKind, ResourceRef};
use fabrik_txn::Intent;
use serde::Serialize;

use super::{ItemType, NAME, PublishKind, PublishOp, definition};
use crate::engine::kinds::folder;
use crate::engine::kinds::item::{GENERIC, ItemUndo};
use crate::engine::{Address, ApplyCx, Diff, EngineError, Need, Outcome};
use crate::plan::Action;

/// Items per `bulkImportDefinitions` request, as fabric-cicd 1.4.0 sends at most.
pub(super) const MAX_BATCH: usize = 1000;

/// An update's deployed parts, `(path, base64 payload)`.
type Previous = Vec<(String, String)>;

/// One item of a batch.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkMember {
    /// `Type:Name`.
    pub item: String,
    /// Index into the repository's items.
    #[serde(skip)]
    pub index: usize,
    /// Its folder (`a/b`), for the part paths.
    #[serde(skip)]
    pub folder: Option<String>,
    /// For an update: the deployed id and the deployed parts (base64), journaled for the undo.
    #[serde(skip)]
    pub update: Option<(String, Previous)>,
}

/// The address key of batch `n`.
fn batch_key(n: usize) -> String {
    format!("#bulk-import-{n}")
}

impl PublishKind {
    /// Whether a planned change goes by bulk import: a create of an item with a definition, or
    /// an update of parts only, of a type the API accepts.
    fn bulk_member(&self, op: &PublishOp) -> Option<BulkMember> {
        let (item, index, folder, update) = match op {
            PublishOp::Create {
                item,
                folder,
                index,
            } => (item, *index, folder.clone(), None),
            PublishOp::Update {
                item,
                differs,
                moved: None,
                renamed_from: None,
                id,
                index,
                previous,
            } if !differs.is_empty() => {
                let folder = self.repo.items[*index]
                    .folder
                    .as_deref()
                    .map(|f| f.trim_start_matches('/').to_string());
                (item, *index, folder, Some((id.clone(), previous.clone())))
            }
            _ => return None,
        };
        let t = self.repo.items[index].item_type;
        (!t.is_shell() && !t.facts().bulk_unsupported).then(|| BulkMember {
            item: item.clone(),
            index,
            folder,
            update,
        })
    }

    /// Turns the plan's bulk-importable creates and updates into members of `bulk-import-N`
    /// changes (see the module's comment).
    pub(super) fn batch(&self, ws: &str, d: &mut Diff<PublishOp>) {
        let members: BTreeMap<usize, BulkMember> = d
            .changes
            .iter()
            .enumerate()
            .filter_map(|(at, c)| self.bulk_member(&c.op).map(|m| (at, m)))
            .collect();
        if members.is_empty() {
            return;
        }
        let by_index: BTreeMap<usize, usize> =
            members.iter().map(|(&at, m)| (m.index, at)).collect();
        let changed: BTreeSet<usize> = d.changes.iter().filter_map(|c| op_index(&c.op)).collect();
        // Batches that must be done before an item (memoized over the acyclic references).
        let mut level: BTreeMap<usize, usize> = BTreeMap::new();
        for &i in by_index.keys() {
            self.level_of(i, &by_index, &changed, &mut level);
        }
        let mut batches: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (&at, m) in &members {
            batches.entry(level[&m.index]).or_default().push(at);
        }
        let mut n = 0;
        let mut new_changes = Vec::new();
        for ats in batches.into_values() {
            for chunk in ats.chunks(MAX_BATCH) {
                n += 1;
                new_changes.push(self.batch_change(ws, n, chunk, &members, d));
            }
        }
        // Batches go first: they are ordered by their needs anyway, and plan order is the
        // walk's tie-break.
        new_changes.append(&mut d.changes);
        d.changes = new_changes;
    }

    /// Batches that must be done before item `i` can be written: one more than a referenced
    /// member's, as many as a referenced one-by-one item's.
    fn level_of(
        &self,
        i: usize,
        members: &BTreeMap<usize, usize>,
        changed: &BTreeSet<usize>,
        level: &mut BTreeMap<usize, usize>,
    ) -> usize {
        if let Some(&l) = level.get(&i) {
            return l;
        }
        let mut l = 0;
        for &r in &self.refs[i] {
            if !changed.contains(&r) {
                continue;
            }
            let lr = self.level_of(r, members, changed, level);
            l = l.max(if members.contains_key(&r) { lr + 1 } else { lr });
        }
        level.insert(i, l);
        l
    }

    /// The change that imports the members planned at `ats`; each member's own change now
    /// waits for it.
    fn batch_change(
        &self,
        ws: &str,
        n: usize,
        ats: &[usize],
        members: &BTreeMap<usize, BulkMember>,
        d: &mut Diff<PublishOp>,
    ) -> crate::engine::Planned<PublishOp> {
        let key = batch_key(n);
        let mut needs: Vec<Need> = Vec::new();
        let mut created = Vec::new();
        let mut updated = Vec::new();
        let mut batch = Vec::new();
        for &at in ats {
            let c = &mut d.changes[at];
            for need in c.needs.drain(..) {
                if !needs.contains(&need) {
                    needs.push(need);
                }
            }
            c.needs = vec![Need::At(Address::new(ws, NAME, &key))];
            let m = members[&at].clone();
            let by = format!("by bulk import {n}");
            c.detail = Some(match c.detail.take() {
                Some(d) => format!("{d}; {by}"),
                None => by,
            });
            if m.update.is_some() {
                updated.push(m.item.clone());
            } else {
                created.push(m.item.clone());
            }
            c.op = PublishOp::Imported {
                item: m.item.clone(),
                created: m.update.is_none(),
            };
            batch.push(m);
        }
        let mut detail = vec![format!("{} item(s)", batch.len())];
        if !created.is_empty() {
            detail.push(format!("create {}", created.join(", ")));
        }
        if !updated.is_empty() {
            detail.push(format!("update {}", updated.join(", ")));
        }
        crate::engine::Planned {
            action: if updated.is_empty() {
                Action::Create
            } else {
                Action::Update
            },
            key,
            target: format!("bulk import {n} (bulkImportDefinitions)"),
            detail: Some(detail.join("; ")),
            needs,
            op: PublishOp::BulkImport {
                batch: n,
                items: batch,
            },
        }
    }

    /// Sends one batch: journals every member's undo (or create intent), imports, and
    /// records what the import made.
    pub(super) async fn apply_bulk(
        &self,
        cx: &ApplyCx<'_>,
        ws: &str,
        items: &[BulkMember],
    ) -> Result<Outcome, EngineError> {
        let mut parts = Vec::new();
        let mut intents = BTreeMap::new();
        self.journal_updates(cx, ws, items).await?;
        for m in items {
            let r = &self.repo.items[m.index];
            match &m.update {
                Some(_) => {}
                None => {
                    let folder_id = match &m.folder {
                        Some(f) => Some(cx.id_of(folder::NAME, f).ok_or_else(|| {
                            EngineError::Unresolved {
                                target: cx.target.to_string(),
                                missing: format!("folder {f}"),
                            }
                        })?),
                        None => None,
                    };
                    let mut intent = Intent::create(
                        ResourceKind::Item,
                        Some(ws.to_string()),
                        r.display_name.clone(),
                    )
                    .of_type(r.item_type.as_str())
                    .in_folder(folder_id)
                    .owned_by(GENERIC);
                    intent.existing = cx
                        .seen_items
                        .iter()
                        .filter(|(name, _)| name.eq_ignore_ascii_case(&r.display_name))
                        .map(|(_, id)| id.clone())
                        .collect();
                    let id = cx.txn.intend(intent).await.map_err(journal)?;
                    intents.insert(m.index, id);
                }
            }
            let dir = bulk_dir(m.folder.as_deref(), &r.display_name, r.item_type);
            let rendered = self.render_now(r, cx, ws).await?;
            parts.extend(definition(r, &rendered).parts.into_iter().map(|mut p| {
                p.path = format!("{dir}/{}", p.path);
                p
            }));
        }
        let request = BulkImportRequest {
            definition_parts: parts,
            options: Some(BulkImportOptions {
                allow_pairing_by_name: Some(true),
            }),
        };
        let what = format!("publishing {}", cx.target);
        let done = match cx.client.bulk_import_definitions(ws, &request).await {
            Ok(done) => done,
            Err(e) => {
                let why = crate::secrets::redact(&e.to_string());
                for id in intents.into_values() {
                    cx.txn.fail_intent(id, &why).await.map_err(journal)?;
                }
                return Err(cx.fabric(&what)(e));
            }
        };
        self.record_imported(
            cx,
            ws,
            items,
            &done.import_item_definitions_details,
            intents,
        )
        .await?;
        Ok(if items.iter().all(|m| m.update.is_none()) {
            Outcome::Created
        } else {
            Outcome::Updated
        })
    }

    /// The updates' undo records, before the batch is sent: each Environment's publish (so
    /// rollback, newest first, publishes it after restoring it), then the previous
    /// definitions — of the items whose previous parts hold a `.platform` and need no
    /// `format`, in one record that restores them by one bulk import; of the others, one
    /// record each, as the standard path journals them.
    async fn journal_updates(
        &self,
        cx: &ApplyCx<'_>,
        ws: &str,
        items: &[BulkMember],
    ) -> Result<(), EngineError> {
        let at = |m: &BulkMember, id: &str| {
            let name = self.repo.items[m.index].display_name.clone();
            ResourceRef::in_workspace(ResourceKind::Item, ws, id, Some(name))
        };
        let updates: Vec<(&BulkMember, &String, &Previous)> = items
            .iter()
            .filter_map(|m| m.update.as_ref().map(|(id, prev)| (m, id, prev)))
            .collect();
        for &(m, id, _) in &updates {
            if self.repo.items[m.index].item_type == ItemType::Environment {
                let undo = ItemUndo::PublishEnvironment {
                    workspace_id: ws.to_string(),
                    item_id: id.to_string(),
                };
                cx.track(at(m, id), undo.record()).await?;
            }
        }
        let mut by_import = Vec::new();
        let mut first = None;
        for &(m, id, previous) in &updates {
            let r = &self.repo.items[m.index];
            let format = r.definition_format().map(str::to_string);
            if format.is_none() && previous.iter().any(|(p, _)| p == ".platform") {
                let dir = bulk_dir(m.folder.as_deref(), &r.display_name, r.item_type);
                by_import.extend(previous.iter().map(|(p, payload)| JournaledPart {
                    path: format!("{dir}/{p}"),
                    payload: payload.clone(),
                }));
                first.get_or_insert((m, id));
            } else {
                let undo = ItemUndo::restore_definition(ws, id, previous, format);
                cx.track(at(m, id), undo).await?;
            }
        }
        if let Some((m, id)) = first {
            let undo = ItemUndo::RestoreByImport {
                workspace_id: ws.to_string(),
                parts: by_import,
            };
            cx.track(at(m, id), undo.record()).await?;
        }
        Ok(())
    }

    /// Completes each create's intent with its delete, publishes the ids, and runs the
    /// post-steps of each item; an item the result leaves out or reports failed fails the
    /// change (after everything the import did is journaled).
    async fn record_imported(
        &self,
        cx: &ApplyCx<'_>,
        ws: &str,
        items: &[BulkMember],
        details: &[ImportItemDefinitionsDetails],
        mut intents: BTreeMap<usize, fabrik_txn::IntentId>,
    ) -> Result<(), EngineError> {
        let mut missing = Vec::new();
        for m in items {
            let r = &self.repo.items[m.index];
            let found = details.iter().find(|d| {
                d.item_type == r.item_type.as_str() && d.item_display_name == r.display_name
            });
            let ok = found.is_some_and(|d| {
                !d.item_id.is_empty()
                    && d.operation_status
                        .as_ref()
                        .is_none_or(|s| s.as_str() != "Failed")
            });
            let intent = intents.remove(&m.index);
            let (Some(d), true) = (found, ok) else {
                if let Some(i) = intent {
                    let why = "the bulk import did not report it created";
                    cx.txn.fail_intent(i, why).await.map_err(journal)?;
                }
                missing.push(m.item.clone());
                continue;
            };
            if let Some(i) = intent {
                let at = ResourceRef::in_workspace(
                    ResourceKind::Item,
                    ws,
                    &d.item_id,
                    Some(r.display_name.clone()),
                );
                let undo = ItemUndo::Delete {
                    workspace_id: ws.to_string(),
                    item_id: d.item_id.clone(),
                }
                .record();
                cx.txn.complete_intent(i, at, undo).await.map_err(journal)?;
            }
            cx.set_id(NAME, &m.item, &d.item_id);
        }
        if !missing.is_empty() {
            return Err(EngineError::Invalid(format!(
                "bulk import into {}: the service did not import {}",
                cx.workspace,
                missing.join(", ")
            )));
        }
        for m in items {
            let id = self.id_in_run(cx, &m.item)?;
            self.after_definition(cx, ws, &self.repo.items[m.index], &id)
                .await?;
        }
        Ok(())
    }
}

/// The index of the repository item a change creates or updates.
fn op_index(op: &PublishOp) -> Option<usize> {
    match op {
        PublishOp::Create { index, .. } | PublishOp::Update { index, .. } => Some(*index),
        _ => None,
    }
}

/// An item's directory in the import, workspace-absolute: `/<folders>/<Name>.<Type>` (the
/// service reads type and name from `.platform`; the directory only has to be unique).
fn bulk_dir(folder: Option<&str>, name: &str, t: ItemType) -> String {
    let dir = format!("{}.{}", name.replace(['/', '\\'], "_"), t.as_str());
    match folder {
        Some(f) => format!("/{f}/{dir}"),
        None => format!("/{dir}"),
    }
}

fn journal(e: fabrik_txn::TxnError) -> EngineError {
    EngineError::Journal(e.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::engine::Planned;
    use crate::publish::inputs::Unpublish;
    use crate::publish::pipeline::{EnvVars, Parameterization};
    use crate::publish::repo::{DiscoverOptions, Repository};

    fn notebook(root: &Path, name: &str, logical_id: &str, code: &str) {
        let dir = root.join(format!("{name}.Notebook"));
        std::fs::create_dir_all(&dir).unwrap();
        let platform = serde_json::json!({
            "metadata": {"type": "Notebook", "displayName": name},
            "config": {"version": "2.0", "logicalId": logical_id},
        });
        std::fs::write(dir.join(".platform"), platform.to_string()).unwrap();
        std::fs::write(dir.join("notebook-content.py"), code).unwrap();
    }

    /// 1001 independent notebooks and one that mentions the first's logicalId, all created:
    /// two batches for the independent ones (1000 + 1) and a third, after the one holding
    /// the first, for the one that needs its id.
    #[test]
    fn batches_hold_at_most_1000_items_and_follow_references() {
        let dir = tempfile::tempdir().unwrap();
        let lid = |i: usize| format!("3b1f2c4d-5e6f-4a7b-8c9d-{i:012}");
        for i in 0..1001 {
            notebook(dir.path(), &format!("NB{i}"), &lid(i), "print(1)\n");
        }
        notebook(dir.path(), "Ref", &lid(5000), &format!("# {}\n", lid(0)));
        let repo = Repository::discover(dir.path(), &DiscoverOptions::default()).unwrap();
        let env = EnvVars::fixed(Default::default());
        let (mut how, _) = Parameterization::load(&repo, None, "prod", false, env).unwrap();
        how.bulk = true;
        let kind = PublishKind::new(Arc::new(repo), how, Unpublish::default()).unwrap();
        let mut d: Diff<PublishOp> = Diff::default();
        for (index, item) in kind.repo.items.iter().enumerate() {
            let k = format!("Notebook:{}", item.display_name);
            d.changes.push(Planned {
                action: Action::Create,
                key: k.clone(),
                target: k.clone(),
                detail: None,
                needs: kind.needs("ws", index).collect(),
                op: PublishOp::Create {
                    item: k,
                    folder: None,
                    index,
                },
            });
        }
        kind.batch("ws", &mut d);

        let batches: Vec<(&String, &Vec<BulkMember>, &Vec<Need>)> = d
            .changes
            .iter()
            .filter_map(|c| match &c.op {
                PublishOp::BulkImport { items, .. } => Some((&c.key, items, &c.needs)),
                _ => None,
            })
            .collect();
        let sizes: Vec<usize> = batches.iter().map(|b| b.1.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 1002);
        assert!(sizes.iter().all(|&n| n <= MAX_BATCH), "{sizes:?}");
        assert_eq!(sizes.len(), 3, "{sizes:?}");
        let holding = |name: &str| {
            batches
                .iter()
                .find(|b| b.1.iter().any(|m| m.item == name))
                .unwrap()
        };
        let (ref_batch, _, ref_needs) = holding("Notebook:Ref");
        assert_ne!(*ref_batch, holding("Notebook:NB0").0);
        assert!(ref_needs.contains(&Need::At(Address::new("ws", NAME, "Notebook:NB0"))));
        // Every item's own change now waits for its batch, and says so.
        for c in d
            .changes
            .iter()
            .filter(|c| matches!(c.op, PublishOp::Imported { .. }))
        {
            let batch = holding(&c.key).0;
            assert_eq!(c.needs, vec![Need::At(Address::new("ws", NAME, batch))]);
            assert!(c.detail.as_deref().unwrap().contains("by bulk import"));
        }
    }

    /// The record that restores a batch's updates by one import journals secret values as
    /// references, as an item's own restore does (its parts are the payload's `parts`).
    #[test]
    fn a_secret_in_a_batch_restore_is_journaled_as_a_reference() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        crate::secrets::register("env:FABRIK_TEST_BULK_PW", "pw-Bk71qa");
        let undo = ItemUndo::RestoreByImport {
            workspace_id: "w".into(),
            parts: vec![JournaledPart {
                path: "/etl/Load.Notebook/notebook-content.py".into(),
                payload: b64.encode("conn = 'pw-Bk71qa'"),
            }],
        }
        .record();
        let journaled = crate::secrets::undo_to_references(&undo);
        let json = serde_json::to_string(&journaled).unwrap();
        assert!(!json.contains("pw-Bk71qa") && !json.contains(&b64.encode("pw-Bk71qa")));
        assert!(json.contains(&b64.encode("conn = '${fabrik-secret:env:FABRIK_TEST_BULK_PW}'")));
        assert_eq!(
            crate::secrets::undo_from_references(&journaled).unwrap(),
            undo
        );
    }
}
