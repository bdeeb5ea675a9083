//! The plan: every change the kinds found, in a graph whose edges are the references between
//! resources. Made by [`engine::plan`](crate::engine::plan), shown by [`render`](crate::render),
//! walked by [`engine::apply`](crate::engine::apply).

use std::sync::Arc;

use fabrik_core::ResourceKind;
use serde::Serialize;
use serde::ser::SerializeStruct;

use crate::config::DesiredWorkspace;
use crate::engine::{Address, DynOp, Graph, Need};

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Make something new.
    Create,
    /// Change something that exists.
    Update,
    /// Remove something: what the configuration does not describe (`--prune`), a repository
    /// no longer holds (`publish --unpublish`), or what `destroy` removes.
    Delete,
}

impl Action {
    /// `+`, `~`, `-`.
    pub fn sign(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
        }
    }
}

/// One planned change.
#[derive(Debug, Clone)]
pub struct Change {
    /// Create, update or delete.
    pub action: Action,
    /// What it is about, for humans: `lakehouse BRONZE_Sales`.
    pub target: String,
    /// What will change: `description: "a" → "b"`.
    pub detail: Option<String>,
    /// Where the resource lives in the plan.
    pub address: Address,
    /// What must be done first.
    pub needs: Vec<Need>,
    /// The change, bound to its kind.
    pub op: Arc<dyn DynOp>,
}

impl Change {
    /// The journal's and metrics' kind.
    pub fn resource_kind(&self) -> ResourceKind {
        self.op.resource_kind()
    }

    /// Whether carrying the change out destroys stored data, and why: a delete of an item of a
    /// [data-bearing type](data_bearing) (pruned, unpublished or destroyed), or a destroy's
    /// delete of a whole workspace that holds such items.
    pub fn data_loss(&self) -> Option<DataLoss> {
        if self.action != Action::Delete {
            return None;
        }
        if let Some(op) = self.op.as_any().downcast_ref::<crate::destroy::DestroyOp>() {
            return op.data_loss();
        }
        // Every item delete's target is `<type, lowercased> <name>` (the item kinds' prune,
        // publish's unpublish).
        let (item_type, name) = self.target.split_once(' ')?;
        let item_type = data_bearing(item_type)?;
        // fabric-cicd's flag consents to its type's orphan deletes; a prune has no such flag.
        let cicd_flag = (self.op.kind() == crate::publish::publisher::NAME)
            .then(|| cicd_unpublish_flag(item_type))
            .flatten();
        Some(DataLoss {
            reason: format!("deletes {item_type} {name} and the data stored in it"),
            cicd_flag,
        })
    }
}

/// A change that destroys stored data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLoss {
    /// Why, for people: `deletes Lakehouse BRONZE and the data stored in it`.
    pub reason: String,
    /// The fabric-cicd flag (`enable_lakehouse_unpublish`) that consents to it, where fabric-cicd's
    /// rules apply: a publish's orphan delete, a destroy's delete of a repository's item.
    pub cicd_flag: Option<&'static str>,
}

/// Item types whose deletion drops stored data, beyond those fabric-cicd guards with an
/// `enable_<type>_unpublish` flag: a mirrored database holds the replicated tables in OneLake.
const MORE_DATA_BEARING: &[&str] = &["MirroredDatabase"];

/// The canonical name of `item_type` (any case) when deleting an item of it drops stored data:
/// the types fabric-cicd unpublishes only with their `enable_<type>_unpublish` flag (Lakehouse,
/// Warehouse, SQLDatabase, Eventhouse, KQLDatabase, CosmosDBDatabase, GraphModel) and
/// [`MORE_DATA_BEARING`].
pub fn data_bearing(item_type: &str) -> Option<&'static str> {
    crate::publish::item_type::ALL
        .iter()
        .filter(|f| f.unpublish_flag.is_some())
        .map(|f| f.item_type.as_str())
        .chain(MORE_DATA_BEARING.iter().copied())
        .find(|t| t.eq_ignore_ascii_case(item_type))
}

/// fabric-cicd's `enable_<type>_unpublish` flag of `item_type`, if it has one.
pub fn cicd_unpublish_flag(item_type: &str) -> Option<&'static str> {
    crate::publish::item_type::ALL
        .iter()
        .find(|f| f.item_type.as_str().eq_ignore_ascii_case(item_type))
        .and_then(|f| f.unpublish_flag)
}

/// What lets a plan that destroys data be carried out: `--allow-data-loss`, or for a change
/// fabric-cicd guards, its `enable_<type>_unpublish` flag.
#[derive(Debug, Clone, Default)]
pub struct Consent {
    /// `--allow-data-loss`: every change.
    pub allow_data_loss: bool,
    /// fabric-cicd feature flags given (`--cicd-feature`, `config.yml`'s `features`).
    pub cicd_features: Vec<String>,
}

impl Consent {
    /// Whether `loss` may happen.
    pub fn covers(&self, loss: &DataLoss) -> bool {
        self.allow_data_loss
            || loss
                .cicd_flag
                .is_some_and(|f| self.cicd_features.iter().any(|g| g == f))
    }
}

/// The plan for one workspace.
#[derive(Debug, Clone)]
pub struct WorkspacePlan {
    /// The workspace's display name.
    pub name: String,
    /// Its id, when it exists.
    pub id: Option<String>,
    /// Changes in the order a sequential apply runs them; deletes last.
    pub changes: Vec<Change>,
    /// Resources in the workspace that the config does not describe (left alone).
    pub unmanaged: Vec<String>,
    /// Ids of existing resources that changes reference (folders, the workspace).
    pub known_ids: Vec<(Address, String)>,
    /// The items the plan saw in the workspace, `(display name, id)`: a create's intent
    /// records those of its name, which recovery must never take for the create's result.
    pub seen_items: Vec<(String, String)>,
    /// The desired state.
    pub desired: DesiredWorkspace,
    /// The kinds' accounts of how they read the workspace (`definitionReads`), shown with
    /// the plan.
    pub reads: std::collections::BTreeMap<String, serde_json::Value>,
    /// What this run renders from secret references, and the digests of the definitions it
    /// renders: the deployed record it leaves once it succeeds (never shown), with
    /// [`deployed`](Self::deployed)'s digests; `None`: none to write.
    pub rendered: Option<crate::deployed::Record>,
    /// Whether [`rendered`](Self::rendered) is the record the workspace already has.
    pub record_unchanged: bool,
    /// Digests of the definitions the apply sent, by resource address: they go into the
    /// record, where the plan could not tell (a definition mentioning an item the run
    /// created).
    pub deployed: Arc<crate::deployed::Sent>,
}

impl WorkspacePlan {
    /// The deployed record to write after a successful run, if it changed.
    pub fn record_to_write(&self) -> Option<crate::deployed::Record> {
        let sent = self.deployed.take();
        let mut record = match &self.rendered {
            Some(r) => r.clone(),
            None if !sent.is_empty() => crate::deployed::Record::new(&self.name),
            None => return None,
        };
        let mut changed = !self.record_unchanged;
        for (address, digest) in sent {
            let slot = &mut record.resources.entry(address).or_default().digest;
            if slot.as_deref() != Some(digest.as_str()) {
                *slot = Some(digest);
                changed = true;
            }
        }
        changed.then_some(record)
    }
}

/// The whole plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Per workspace.
    pub workspaces: Vec<WorkspacePlan>,
    /// The changes' dependency graph (validated acyclic).
    pub graph: Graph,
}

impl Plan {
    /// How many changes in all.
    pub fn change_count(&self) -> usize {
        self.workspaces.iter().map(|w| w.changes.len()).sum()
    }

    /// Every change in plan order (the graph's node order).
    pub fn changes(&self) -> impl Iterator<Item = (&WorkspacePlan, &Change)> {
        self.workspaces
            .iter()
            .flat_map(|w| w.changes.iter().map(move |c| (w, c)))
    }

    /// How many changes do `action`.
    pub fn count(&self, action: Action) -> usize {
        self.changes().filter(|(_, c)| c.action == action).count()
    }

    /// Every change that destroys data, in plan order.
    pub fn data_loss(&self) -> Vec<(&WorkspacePlan, &Change, DataLoss)> {
        self.changes()
            .filter_map(|(w, c)| c.data_loss().map(|l| (w, c, l)))
            .collect()
    }

    /// The changes that destroy data without `consent`, one line each
    /// (`workspace W: - lakehouse L: deletes …`); empty when the plan may be carried out.
    pub fn refused_data_loss(&self, consent: &Consent) -> Vec<String> {
        self.data_loss()
            .into_iter()
            .filter(|(_, _, l)| !consent.covers(l))
            .map(|(w, c, l)| {
                let flag = l
                    .cicd_flag
                    .map(|f| format!(" (or --cicd-feature {f})"))
                    .unwrap_or_default();
                format!("workspace {}: - {}: {}{flag}", w.name, c.target, l.reason)
            })
            .collect()
    }
}

/// The `kind` label of `fabrik_resources_total` (docs/METRICS.md): the resource kind's name
/// in snake case (`RoleAssignment` → `role_assignment`), so a kind added anywhere labels its
/// metrics without a table here.
pub fn kind_label(kind: ResourceKind) -> String {
    let mut out = String::new();
    for (i, c) in kind.as_str().chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod label_tests {
    use super::*;

    #[test]
    fn metric_labels_are_the_kinds_names_in_snake_case() {
        assert_eq!(kind_label(ResourceKind::RoleAssignment), "role_assignment");
        assert_eq!(kind_label(ResourceKind::Workspace), "workspace");
        assert_eq!(kind_label(ResourceKind::Item), "item");
        assert_eq!(kind_label(ResourceKind::new("SparkPool")), "spark_pool");
    }
}

/// `{"id": 3, "address": "…", "kind": "…", "action": "…", "target": "…", "detail": …,
/// "dataLoss": false, "dataLossReason": null, "dependsOn": [0], "op": {…}}`; ids are
/// positions in plan order.
struct ChangeJson<'a> {
    id: usize,
    change: &'a Change,
    depends_on: &'a [usize],
}

impl Serialize for ChangeJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.change;
        let loss = c.data_loss();
        let mut st = s.serialize_struct("Change", 10)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("address", &c.address)?;
        st.serialize_field("kind", c.op.kind())?;
        st.serialize_field("action", &c.action)?;
        st.serialize_field("target", &c.target)?;
        st.serialize_field("detail", &c.detail)?;
        st.serialize_field("dataLoss", &loss.is_some())?;
        st.serialize_field("dataLossReason", &loss.map(|l| l.reason))?;
        st.serialize_field("dependsOn", self.depends_on)?;
        st.serialize_field("op", &c.op.to_json())?;
        st.end()
    }
}

impl Serialize for Plan {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Ws<'a> {
            name: &'a str,
            id: &'a Option<String>,
            changes: Vec<ChangeJson<'a>>,
            unmanaged: &'a [String],
            /// How a publish read the deployed definitions (bulk export, one by one and why).
            #[serde(rename = "definitionReads", skip_serializing_if = "Option::is_none")]
            definition_reads: Option<crate::publish::publisher::DefinitionReads>,
        }
        #[derive(Serialize)]
        struct Edge {
            from: usize,
            to: usize,
        }
        let mut next = 0;
        let workspaces: Vec<Ws<'_>> = self
            .workspaces
            .iter()
            .map(|w| Ws {
                name: &w.name,
                id: &w.id,
                changes: w
                    .changes
                    .iter()
                    .map(|c| {
                        let id = next;
                        next += 1;
                        ChangeJson {
                            id,
                            change: c,
                            depends_on: self.graph.deps(id),
                        }
                    })
                    .collect(),
                unmanaged: &w.unmanaged,
                definition_reads: crate::publish::publisher::DefinitionReads::of_plan(w),
            })
            .collect();
        let edges: Vec<Edge> = self
            .graph
            .edges()
            .map(|(from, to)| Edge { from, to })
            .collect();
        let mut st = s.serialize_struct("Plan", 3)?;
        st.serialize_field("workspaces", &workspaces)?;
        // `from` must be done before `to`; deletes run after every other change besides.
        st.serialize_field("edges", &edges)?;
        st.serialize_field(
            "summary",
            &serde_json::json!({
                "create": self.count(Action::Create),
                "update": self.count(Action::Update),
                "delete": self.count(Action::Delete),
                "dataLoss": self.data_loss().len(),
            }),
        )?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_bearing_types_and_consent() {
        assert_eq!(data_bearing("lakehouse"), Some("Lakehouse"));
        assert_eq!(data_bearing("KQLDatabase"), Some("KQLDatabase"));
        assert_eq!(data_bearing("mirroreddatabase"), Some("MirroredDatabase"));
        assert_eq!(data_bearing("Notebook"), None);
        assert_eq!(
            cicd_unpublish_flag("Lakehouse"),
            Some("enable_lakehouse_unpublish")
        );
        assert_eq!(cicd_unpublish_flag("MirroredDatabase"), None);
        let guarded = DataLoss {
            reason: "r".into(),
            cicd_flag: Some("enable_lakehouse_unpublish"),
        };
        let unguarded = DataLoss {
            reason: "r".into(),
            cicd_flag: None,
        };
        let none = Consent::default();
        let flag = Consent {
            allow_data_loss: false,
            cicd_features: vec!["enable_lakehouse_unpublish".into()],
        };
        let all = Consent {
            allow_data_loss: true,
            cicd_features: vec![],
        };
        assert!(!none.covers(&guarded) && !none.covers(&unguarded));
        assert!(flag.covers(&guarded) && !flag.covers(&unguarded));
        assert!(all.covers(&guarded) && all.covers(&unguarded));
    }
}
