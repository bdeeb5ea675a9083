//! Planning a publish: per repository item its create or update (rename, move, parts), its
//! value set, shortcuts and bindings; then orphans.

use base64::Engine as _;

use super::{
    Address, FolderMove, ItemType, Live, LiveItem, NAME, PublishKind, PublishOp, SHORTCUTS_FILE,
    differing, folder, key, shortcut_changes, shortcut_id, show_folder, value_set_for,
    value_set_key, workspace,
};
use crate::engine::{Diff, Need, Planned};
use crate::plan::Action;
use crate::publish::repo::RepoItem;

/// One selected repository item being planned.
pub(super) struct Slot<'a> {
    pub(super) ws: &'a str,
    pub(super) index: usize,
    pub(super) item: &'a RepoItem,
    /// `Type:Name`.
    pub(super) k: String,
    /// `type name`, for people.
    pub(super) target: String,
    /// Its workspace folder (`a/b`).
    pub(super) folder: Option<String>,
}

impl PublishKind {
    /// A VariableLibrary's active value set, when it is not the environment's already.
    pub(super) fn plan_value_set(
        &self,
        s: &Slot<'_>,
        deployed: Option<&LiveItem>,
        d: &mut Diff<PublishOp>,
    ) {
        if s.item.item_type != ItemType::VariableLibrary {
            return;
        }
        {
            let to = value_set_for(s.item, &self.how.environment);
            let from = deployed.and_then(|l| l.value_set.clone());
            if from.as_deref() != Some(to.as_str()) {
                d.changes.push(Planned {
                    action: Action::Update,
                    key: value_set_key(&s.k),
                    target: format!("active value set of {}", s.target),
                    detail: Some(match &from {
                        Some(f) => format!("{f} → {to}"),
                        None => format!("→ {to}"),
                    }),
                    needs: vec![Need::At(Address::new(s.ws, NAME, &s.k))],
                    op: PublishOp::ValueSet {
                        item: s.k.clone(),
                        from,
                        to,
                    },
                });
            }
        }
    }

    /// A lakehouse's shortcuts, when they differ from its `shortcuts.metadata.json`.
    pub(super) fn plan_shortcuts(&self, s: &Slot<'_>, live: &Live, d: &mut Diff<PublishOp>) {
        if !self.publishes_shortcuts(s.item) {
            return;
        }
        {
            let planned = match live.shortcuts.get(&s.index) {
                Some((want, have)) => {
                    let (puts, deletes) = shortcut_changes(want, have);
                    let name = |v: &&serde_json::Value| {
                        let (p, n) = shortcut_id(v);
                        format!("{p}/{n}")
                    };
                    let mut detail = Vec::new();
                    if !puts.is_empty() {
                        let names: Vec<String> = puts.iter().map(name).collect();
                        detail.push(format!("put {}", names.join(", ")));
                    }
                    if !deletes.is_empty() {
                        let names: Vec<String> = deletes.iter().map(name).collect();
                        detail.push(format!("delete {}", names.join(", ")));
                    }
                    (!detail.is_empty()).then(|| (detail.join("; "), have.clone()))
                }
                // A lakehouse this run creates gets every shortcut of its file.
                None => {
                    let listed = s
                        .item
                        .part(SHORTCUTS_FILE)
                        .and_then(|p| {
                            serde_json::from_slice::<Vec<serde_json::Value>>(&p.bytes).ok()
                        })
                        .map_or(1, |l| l.len());
                    (listed > 0).then(|| (format!("from {SHORTCUTS_FILE}"), Vec::new()))
                }
            };
            if let Some((detail, previous)) = planned {
                let mut needs = vec![Need::At(Address::new(s.ws, NAME, &s.k))];
                needs.extend(self.needs(s.ws, s.index));
                d.changes.push(Planned {
                    action: Action::Update,
                    key: format!("{}#shortcuts", s.k),
                    target: format!("shortcuts of {}", s.target),
                    detail: Some(detail),
                    needs,
                    op: PublishOp::Shortcuts {
                        item: s.k.clone(),
                        index: s.index,
                        previous,
                    },
                });
            }
        }
    }

    /// A semantic model's bindings `semantic_model_binding` asks for and it lacks.
    pub(super) fn plan_bind(&self, s: &Slot<'_>, live: &Live, d: &mut Diff<PublishOp>) {
        let Some(wanted) = self.bindings.get(&s.index) else {
            return;
        };
        {
            let previous = live.bound.get(&s.index).cloned().unwrap_or_default();
            let missing: Vec<serde_json::Value> = wanted
                .iter()
                .filter(|id| {
                    !previous
                        .iter()
                        .any(|c| c["id"].as_str() == Some(id.as_str()))
                })
                .filter_map(|id| {
                    live.connections
                        .iter()
                        .find(|c| c["id"].as_str() == Some(id.as_str()))
                        .cloned()
                })
                .collect();
            if !missing.is_empty() {
                d.changes.push(Planned {
                    action: Action::Update,
                    key: format!("{}#connections", s.k),
                    target: format!("connections of {}", s.target),
                    detail: Some(format!("bind {}", wanted.join(", "))),
                    needs: vec![Need::At(Address::new(s.ws, NAME, &s.k))],
                    op: PublishOp::Bind {
                        item: s.k.clone(),
                        connections: missing,
                        previous,
                    },
                });
            }
        }
    }

    /// The item's create, or the update (rename, move, parts) of what is deployed as it.
    pub(super) fn plan_item(
        &self,
        s: Slot<'_>,
        found: Option<&LiveItem>,
        live: &Live,
        d: &mut Diff<PublishOp>,
    ) {
        let Slot {
            ws,
            index,
            item,
            k,
            target,
            folder,
        } = s;
        match found {
            None => {
                let mut needs = vec![Need::At(Address::new(ws, workspace::NAME, ws))];
                if let Some(f) = &folder {
                    needs.push(Need::At(folder::address(ws, f)));
                }
                needs.extend(self.needs(ws, index));
                d.changes.push(Planned {
                    action: Action::Create,
                    key: k.clone(),
                    target,
                    detail: folder.as_ref().map(|f| format!("in folder {f}")),
                    needs,
                    op: PublishOp::Create {
                        item: k,
                        folder,
                        index,
                    },
                });
            }
            Some(l) => {
                let differs = match (&l.parts, live.rendered.get(&index)) {
                    (Some(have), Some(want)) => differing(want, have),
                    _ => Vec::new(),
                };
                let deployed_folder = l.folder.as_ref().map(|(p, _)| p.clone());
                let moved = (deployed_folder != folder).then(|| FolderMove {
                    from: deployed_folder,
                    to: folder.clone(),
                    from_id: l.folder.as_ref().map(|(_, id)| id.clone()),
                });
                if differs.is_empty() && moved.is_none() {
                    return;
                }
                let mut needs: Vec<Need> = self.needs(ws, index).collect();
                let mut detail = Vec::new();
                let renamed_from =
                    (l.name != item.display_name).then(|| (l.name.clone(), l.description.clone()));
                if let Some((old, _)) = &renamed_from {
                    detail.push(format!("renamed from {old}"));
                }
                if let Some(m) = &moved {
                    if let Some(f) = &m.to {
                        needs.push(Need::At(folder::address(ws, f)));
                    }
                    detail.push(format!(
                        "moved from {} to {}",
                        show_folder(&m.from),
                        show_folder(&m.to)
                    ));
                }
                if !differs.is_empty() {
                    detail.push(format!("parts differ: {}", differs.join(", ")));
                }
                let previous = match &l.parts {
                    Some(have) if !differs.is_empty() => have
                        .iter()
                        .map(|(p, b)| {
                            (
                                p.clone(),
                                base64::engine::general_purpose::STANDARD.encode(b),
                            )
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                d.changes.push(Planned {
                    action: Action::Update,
                    key: k.clone(),
                    target,
                    detail: Some(detail.join("; ")),
                    needs,
                    op: PublishOp::Update {
                        item: k,
                        differs,
                        moved,
                        renamed_from,
                        id: l.id.clone(),
                        index,
                        previous,
                    },
                });
            }
        }
    }

    /// Deployed items of the repository's types it does not hold: deleted with `--unpublish`
    /// (when allowed), else reported as unmanaged.
    pub(super) fn plan_orphans(&self, live: &Live, d: &mut Diff<PublishOp>) {
        // Orphans: deployed items of types the repository holds, that it does not hold.
        for (li, l) in live.items.iter().enumerate() {
            let in_repo = self.repo.items.iter().any(|r| r.item_type == l.item_type);
            let renamed = live.renames.values().any(|&x| x == li);
            if !in_repo || renamed || self.repo.find(l.item_type, &l.name).is_some() {
                continue;
            }
            let target = format!("{} {}", l.item_type.as_str().to_lowercase(), l.name);
            if self.unpublish.allows(l.item_type, &l.name) {
                d.changes.push(Planned {
                    action: Action::Delete,
                    key: key(l.item_type, &l.name),
                    target,
                    detail: Some("not in the repository".into()),
                    needs: vec![],
                    op: PublishOp::Delete {
                        item: key(l.item_type, &l.name),
                        id: l.id.clone(),
                    },
                });
            } else {
                d.unmanaged.push(target);
            }
        }
    }
}
