//! Spark custom pools of a workspace (`spark_pools:` in `fabrik.yaml`), by name: created,
//! updated to the described settings, and with `--prune` the workspace's other pools deleted
//! (only in a workspace that describes its pools; one that says nothing of them leaves them
//! alone). The capacity's pools, listed alongside, are never touched.

use async_trait::async_trait;
use fabrik_client::models::{
    AutoScale, CreateCustomPoolRequest, CustomPool, DynamicExecutorAllocation, PoolSettings,
    UpdateCustomPoolRequest,
};
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo, UndoError, UndoOutcome};
use fabrik_txn::Intent;
use futures::TryStreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{DesiredWorkspace, Finding, Section};
use crate::engine::recovery::{listed, pick};
use crate::engine::{
    Address, ApplyCx, Diff, DiffCx, EngineError, Kind, Need, Outcome, Planned, ReadCx, UndoCx, ctx,
    settle, workspace_address,
};
use crate::plan::Action;

/// The kind's name in addresses and journals.
pub const NAME: &str = "spark_pool";
/// The workspace key of `fabrik.yaml` the kind owns.
pub const KEY: &str = "spark_pools";
/// The journal's and the metrics' kind (`spark_pool`).
const KIND: ResourceKind = ResourceKind::new("SparkPool");

/// A Spark custom pool of the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Pool name: 1-64 letters, digits, dashes, underscores and spaces; unique in the
    /// workspace (without regard to case); not `Starter Pool`.
    pub name: String,
    /// Node family; default `MemoryOptimized`.
    #[serde(default)]
    pub node_family: NodeFamily,
    /// Node size.
    pub node_size: NodeSize,
    /// Autoscale of the nodes.
    pub auto_scale: AutoScaleConfig,
    /// Dynamic allocation of executors.
    pub dynamic_executor_allocation: ExecutorsConfig,
}

/// Node family, as the service names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum NodeFamily {
    /// Memory optimized.
    #[default]
    MemoryOptimized,
}

/// Node size, as the service names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum NodeSize {
    /// 4 vCores, 32 GB.
    Small,
    /// 8 vCores, 64 GB.
    Medium,
    /// 16 vCores, 128 GB.
    Large,
    /// 32 vCores, 256 GB.
    XLarge,
    /// 64 vCores, 512 GB.
    XXLarge,
}

/// Autoscale of a pool's nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoScaleConfig {
    /// Whether the node count scales; default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// At least 1.
    #[schemars(range(min = 1))]
    pub min_node_count: u32,
    /// At least `min_node_count`.
    #[schemars(range(min = 1))]
    pub max_node_count: u32,
}

/// Dynamic allocation of a pool's executors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutorsConfig {
    /// Whether executors are allocated dynamically; default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// At least 1.
    #[schemars(range(min = 1))]
    pub min_executors: u32,
    /// At least `min_executors`.
    #[schemars(range(min = 1))]
    pub max_executors: u32,
}

fn yes() -> bool {
    true
}

impl PoolConfig {
    /// The settings create and update send.
    pub fn settings(&self) -> PoolSettings {
        PoolSettings {
            node_family: format!("{:?}", self.node_family),
            node_size: format!("{:?}", self.node_size),
            auto_scale: AutoScale {
                enabled: self.auto_scale.enabled,
                min_node_count: self.auto_scale.min_node_count,
                max_node_count: self.auto_scale.max_node_count,
            },
            dynamic_executor_allocation: DynamicExecutorAllocation {
                enabled: self.dynamic_executor_allocation.enabled,
                min_executors: self.dynamic_executor_allocation.min_executors,
                max_executors: self.dynamic_executor_allocation.max_executors,
            },
        }
    }
}

/// The spec's rule for pool names.
fn name_problem(name: &str) -> Option<String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ' '));
    if name.is_empty() || name.chars().count() > 64 || !ok_chars {
        Some(format!(
            "spark pool name '{name}' must be 1-64 letters, digits, dashes, underscores and spaces"
        ))
    } else if name.trim() != name {
        Some(format!(
            "spark pool name '{name}' starts or ends with a space"
        ))
    } else if name.eq_ignore_ascii_case("Starter Pool") {
        Some("'Starter Pool' is the name of the built-in pool; choose another".into())
    } else {
        None
    }
}

/// Checks beyond the type, each at the value it is about.
fn check(pools: &[PoolConfig]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, p) in pools.iter().enumerate() {
        if let Some(m) = name_problem(&p.name) {
            out.push(Finding::at(format!("[{i}].name"), m));
        }
        if pools[..i]
            .iter()
            .any(|q| q.name.eq_ignore_ascii_case(&p.name))
        {
            out.push(Finding::at(
                format!("[{i}].name"),
                format!(
                    "spark pool '{}' is described twice (names ignore case)",
                    p.name
                ),
            ));
        }
        let counts = [
            (
                "auto_scale",
                ("min_node_count", p.auto_scale.min_node_count),
                ("max_node_count", p.auto_scale.max_node_count),
            ),
            (
                "dynamic_executor_allocation",
                ("min_executors", p.dynamic_executor_allocation.min_executors),
                ("max_executors", p.dynamic_executor_allocation.max_executors),
            ),
        ];
        for (group, (min_key, min), (max_key, max)) in counts {
            for (k, n) in [(min_key, min), (max_key, max)] {
                if n == 0 {
                    out.push(Finding::at(
                        format!("[{i}].{group}.{k}"),
                        format!("spark pool '{}': {k} must be at least 1", p.name),
                    ));
                }
            }
            if min > max {
                out.push(
                    Finding::at(
                        format!("[{i}].{group}.{min_key}"),
                        format!(
                            "spark pool '{}': {min_key} ({min}) is greater than {max_key} ({max})",
                            p.name
                        ),
                    )
                    .hint(format!("at most {max}")),
                );
            }
        }
    }
    out
}

/// The pools a workspace describes; `None` when it says nothing of its pools.
fn described(desired: &DesiredWorkspace) -> Result<Option<Vec<PoolConfig>>, String> {
    desired.section(KEY)
}

/// A pool's address key: its name without case, as the service compares names.
fn key(name: &str) -> String {
    name.to_lowercase()
}

/// The address of pool `name` in `workspace`, for kinds whose resources name a pool.
pub fn address(workspace: &str, name: &str) -> Address {
    Address::new(workspace, NAME, key(name))
}

/// Spark custom pools.
#[derive(Debug, Clone, Copy)]
pub struct SparkPoolKind;

/// A pool change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum PoolOp {
    /// Create a pool.
    Create {
        /// Name.
        name: String,
        /// Settings.
        settings: PoolSettings,
    },
    /// Change a pool's settings (and the case of its name).
    Update {
        /// Pool id.
        id: String,
        /// Name as described.
        name: String,
        /// New settings.
        settings: PoolSettings,
        /// Name before.
        previous_name: String,
        /// Settings before.
        previous: PoolSettings,
    },
    /// Delete a pool: one the configuration does not describe (`--prune`, undone by
    /// recreating it), or a described one (`destroy`, not undone).
    Delete {
        /// Pool id.
        id: String,
        /// Name.
        name: String,
        /// Its settings, to recreate it.
        previous: PoolSettings,
        /// Whether a rollback recreates it.
        undoable: bool,
    },
}

/// How a pool change is undone (the kind's journaled payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum PoolUndo {
    /// Delete the pool that was created.
    Delete {
        /// Its workspace.
        workspace_id: String,
        /// The pool.
        pool_id: String,
    },
    /// Put back a changed pool's name and settings.
    Restore {
        /// Its workspace.
        workspace_id: String,
        /// The pool.
        pool_id: String,
        /// Its name before.
        name: String,
        /// Its settings before.
        settings: PoolSettings,
    },
    /// Create again a pool that was deleted (it gets a new id).
    Recreate {
        /// Its workspace.
        workspace_id: String,
        /// Its name.
        name: String,
        /// Its settings.
        settings: PoolSettings,
    },
}

impl PoolUndo {
    /// The journal's record of it.
    pub fn record(&self) -> Undo {
        Undo::new(NAME, self)
    }
}

/// What differs between `live` and `desired` settings, for the plan (`node_size: Small → Medium`).
fn changes(live: &PoolSettings, desired: &PoolSettings) -> Vec<String> {
    let a = (&live.auto_scale, &desired.auto_scale);
    let e = (
        &live.dynamic_executor_allocation,
        &desired.dynamic_executor_allocation,
    );
    let fields = [
        (
            "node_family",
            live.node_family.clone(),
            desired.node_family.clone(),
        ),
        (
            "node_size",
            live.node_size.clone(),
            desired.node_size.clone(),
        ),
        (
            "auto_scale.enabled",
            a.0.enabled.to_string(),
            a.1.enabled.to_string(),
        ),
        (
            "auto_scale.min_node_count",
            a.0.min_node_count.to_string(),
            a.1.min_node_count.to_string(),
        ),
        (
            "auto_scale.max_node_count",
            a.0.max_node_count.to_string(),
            a.1.max_node_count.to_string(),
        ),
        (
            "dynamic_executor_allocation.enabled",
            e.0.enabled.to_string(),
            e.1.enabled.to_string(),
        ),
        (
            "dynamic_executor_allocation.min_executors",
            e.0.min_executors.to_string(),
            e.1.min_executors.to_string(),
        ),
        (
            "dynamic_executor_allocation.max_executors",
            e.0.max_executors.to_string(),
            e.1.max_executors.to_string(),
        ),
    ];
    fields
        .into_iter()
        .filter(|(_, l, d)| l != d)
        .map(|(k, l, d)| format!("{k}: {l} → {d}"))
        .collect()
}

fn delete(p: &CustomPool, detail: Option<String>, undoable: bool) -> Planned<PoolOp> {
    Planned {
        action: Action::Delete,
        key: key(&p.name),
        target: format!("spark pool {}", p.name),
        detail,
        needs: vec![],
        op: PoolOp::Delete {
            id: p.id.clone(),
            name: p.name.clone(),
            previous: p.settings.clone(),
            undoable,
        },
    }
}

#[async_trait]
impl Kind for SparkPoolKind {
    /// The workspace's own pools (not its capacity's).
    type Live = Vec<CustomPool>;
    type Op = PoolOp;

    fn name(&self) -> &'static str {
        NAME
    }

    fn resource_kind(&self) -> ResourceKind {
        KIND
    }

    fn section(&self) -> Option<Section> {
        Some(Section::new::<Vec<PoolConfig>>(KEY, |p| check(p)))
    }

    fn validate(&self, desired: &DesiredWorkspace) -> Vec<String> {
        match described(desired) {
            Ok(Some(pools)) => check(&pools)
                .into_iter()
                .map(|f| format!("workspace {}: {KEY}{}: {}", desired.name, f.path, f.message))
                .collect(),
            Ok(None) => vec![],
            Err(e) => vec![e],
        }
    }

    async fn read(&self, cx: &ReadCx<'_>) -> Result<Self::Live, EngineError> {
        let Some(id) = cx.workspace_id() else {
            return Ok(vec![]);
        };
        // A workspace that describes no pools has none managed: no call (one per workspace
        // would be the whole cost of a no-op plan of a large estate that uses no pools).
        if !cx.desired.sections.contains_key(KEY) {
            return Ok(vec![]);
        }
        let pools: Vec<CustomPool> = cx
            .client
            .list_custom_pools(id)
            .try_collect()
            .await
            .map_err(ctx(format!("listing spark pools of {}", cx.desired.name)))?;
        let own: Vec<CustomPool> = pools
            .into_iter()
            .filter(|p| p.kind == "Workspace")
            .collect();
        for p in &own {
            cx.know(address(&cx.desired.name, &p.name), p.id.clone());
        }
        Ok(own)
    }

    fn diff(
        &self,
        desired: &DesiredWorkspace,
        live: &Vec<CustomPool>,
        cx: &DiffCx,
    ) -> Diff<PoolOp> {
        let mut d = Diff::default();
        // An unreadable value never gets here: `validate`, which the engine runs before any
        // diff, refuses it. A workspace that says nothing of its pools leaves them alone.
        let Ok(Some(pools)) = described(desired) else {
            return d;
        };
        let ws = &desired.name;
        let needs = || vec![Need::At(workspace_address(ws))];
        for p in &pools {
            let settings = p.settings();
            match live.iter().find(|l| l.name.eq_ignore_ascii_case(&p.name)) {
                None => d.changes.push(Planned {
                    action: Action::Create,
                    key: key(&p.name),
                    target: format!("spark pool {}", p.name),
                    detail: None,
                    needs: needs(),
                    op: PoolOp::Create {
                        name: p.name.clone(),
                        settings,
                    },
                }),
                Some(l) if l.settings != settings || l.name != p.name => {
                    let mut detail = changes(&l.settings, &settings);
                    if l.name != p.name {
                        detail.insert(0, format!("name: {} → {}", l.name, p.name));
                    }
                    d.changes.push(Planned {
                        action: Action::Update,
                        key: key(&p.name),
                        target: format!("spark pool {}", p.name),
                        detail: Some(detail.join(", ")),
                        needs: needs(),
                        op: PoolOp::Update {
                            id: l.id.clone(),
                            name: p.name.clone(),
                            settings,
                            previous_name: l.name.clone(),
                            previous: l.settings.clone(),
                        },
                    });
                }
                Some(_) => {}
            }
        }
        for l in live {
            if pools.iter().any(|p| p.name.eq_ignore_ascii_case(&l.name)) {
                continue;
            }
            if cx.prune {
                d.changes
                    .push(delete(l, Some("not in the configuration".into()), true));
            } else {
                d.unmanaged.push(format!("spark pool {}", l.name));
            }
        }
        d
    }

    fn destroy(&self, desired: &DesiredWorkspace, live: &Vec<CustomPool>) -> Diff<PoolOp> {
        let mut d = Diff::default();
        let Ok(Some(pools)) = described(desired) else {
            return d;
        };
        for l in live {
            if pools.iter().any(|p| p.name.eq_ignore_ascii_case(&l.name)) {
                d.changes.push(delete(l, None, false));
            }
        }
        d
    }

    async fn apply(&self, op: &PoolOp, cx: &ApplyCx<'_>) -> Result<Outcome, EngineError> {
        let ws = cx.workspace_id()?;
        match op {
            PoolOp::Create { name, settings } => create(cx, &ws, name, settings).await,
            PoolOp::Update {
                id,
                name,
                settings,
                previous_name,
                previous,
            } => {
                cx.track(
                    ResourceRef::in_workspace(KIND, &ws, id, Some(name.clone())),
                    PoolUndo::Restore {
                        workspace_id: ws.clone(),
                        pool_id: id.clone(),
                        name: previous_name.clone(),
                        settings: previous.clone(),
                    }
                    .record(),
                )
                .await?;
                let req = UpdateCustomPoolRequest {
                    name: (name != previous_name).then(|| name.clone()),
                    settings: settings.clone(),
                };
                cx.client
                    .update_custom_pool(&ws, id, &req)
                    .await
                    .map_err(cx.fabric(&format!("updating {}", cx.target)))?;
                Ok(Outcome::Updated)
            }
            PoolOp::Delete {
                id,
                name,
                previous,
                undoable,
            } => {
                let resource = ResourceRef::in_workspace(KIND, &ws, id, Some(name.clone()));
                if *undoable {
                    let undo = PoolUndo::Recreate {
                        workspace_id: ws.clone(),
                        name: name.clone(),
                        settings: previous.clone(),
                    };
                    cx.track(resource, undo.record()).await?;
                } else {
                    cx.track_without_undo(resource).await?;
                }
                match cx.client.delete_custom_pool(&ws, id).await {
                    Ok(()) => Ok(Outcome::Deleted),
                    Err(e) if e.is_not_found() => Ok(Outcome::Deleted),
                    Err(e) => Err(cx.fabric(&format!("deleting {}", cx.target))(e)),
                }
            }
        }
    }

    async fn undo(&self, undo: &Undo, cx: &UndoCx<'_>) -> Result<UndoOutcome, UndoError> {
        let c = cx.client;
        let result = match undo.payload_as::<PoolUndo>()? {
            PoolUndo::Delete {
                workspace_id,
                pool_id,
            } => c.delete_custom_pool(&workspace_id, &pool_id).await,
            PoolUndo::Restore {
                workspace_id,
                pool_id,
                name,
                settings,
            } => {
                let req = UpdateCustomPoolRequest {
                    name: Some(name),
                    settings,
                };
                c.update_custom_pool(&workspace_id, &pool_id, &req)
                    .await
                    .map(drop)
            }
            PoolUndo::Recreate {
                workspace_id,
                name,
                settings,
            } => {
                let req = CreateCustomPoolRequest { name, settings };
                c.get_or_create_custom_pool(&workspace_id, &req)
                    .await
                    .map(drop)
            }
        };
        settle(result, &[])
    }

    /// A pool is recognised by name among the workspace's own pools: the create looked for
    /// that name just before its intent and found none, so one found now is the run's.
    async fn recover(
        &self,
        intent: &Intent,
        cx: &UndoCx<'_>,
    ) -> Result<Option<(ResourceRef, Undo)>, UndoError> {
        let Some(ws) = intent.workspace_id.as_deref() else {
            return Ok(None);
        };
        let Some(pools) = listed::<CustomPool>(cx.client.list_custom_pools(ws)).await? else {
            return Ok(None);
        };
        let named = pools
            .iter()
            .filter(|p| p.kind == "Workspace" && p.name.eq_ignore_ascii_case(&intent.display_name))
            .collect();
        Ok(pick(intent, named, |p| &p.id)?.map(|p| {
            (
                ResourceRef::in_workspace(KIND, ws, &p.id, Some(p.name.clone())),
                PoolUndo::Delete {
                    workspace_id: ws.to_string(),
                    pool_id: p.id.clone(),
                }
                .record(),
            )
        }))
    }
}

/// Creates pool `name`: an intent, then a get-or-create, so a crash in between is recovered by
/// name. A pool of that name found just before the intent (made since the plan) is left as
/// found, with no undo.
async fn create(
    cx: &ApplyCx<'_>,
    ws: &str,
    name: &str,
    settings: &PoolSettings,
) -> Result<Outcome, EngineError> {
    let what = format!("creating {}", cx.target);
    if let Some(p) = cx
        .client
        .find_custom_pool(ws, name)
        .await
        .map_err(cx.fabric(&what))?
    {
        cx.set_id(NAME, &key(name), &p.id);
        return Ok(Outcome::Existed);
    }
    let req = CreateCustomPoolRequest {
        name: name.to_string(),
        settings: settings.clone(),
    };
    let mut intent = Intent::create(KIND, Some(ws.to_string()), name.to_string());
    intent.item_type = Some("spark pool".into());
    let (outcome, pool) = cx
        .create(
            intent,
            &what,
            cx.client.get_or_create_custom_pool(ws, &req),
            |p| {
                (
                    ResourceRef::in_workspace(KIND, ws, &p.id, Some(name.to_string())),
                    PoolUndo::Delete {
                        workspace_id: ws.to_string(),
                        pool_id: p.id.clone(),
                    }
                    .record(),
                )
            },
        )
        .await?;
    cx.set_id(NAME, &key(name), &pool.id);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::kinds::tests::desired;

    fn pool(name: &str, size: &str, max: u32) -> CustomPool {
        CustomPool {
            id: format!("id-{name}"),
            name: name.into(),
            kind: "Workspace".into(),
            settings: PoolSettings {
                node_family: "MemoryOptimized".into(),
                node_size: size.into(),
                auto_scale: AutoScale {
                    enabled: true,
                    min_node_count: 1,
                    max_node_count: max,
                },
                dynamic_executor_allocation: DynamicExecutorAllocation {
                    enabled: true,
                    min_executors: 1,
                    max_executors: 2,
                },
            },
        }
    }

    fn with_pools(pools: serde_json::Value) -> DesiredWorkspace {
        let mut d = desired();
        d.sections.insert(KEY.into(), pools);
        d
    }

    fn etl() -> DesiredWorkspace {
        with_pools(serde_json::json!([{
            "name": "etl",
            "node_size": "Medium",
            "auto_scale": {"min_node_count": 1, "max_node_count": 4},
            "dynamic_executor_allocation": {"min_executors": 1, "max_executors": 2},
        }]))
    }

    #[test]
    fn a_missing_pool_is_created_after_its_workspace() {
        let c = SparkPoolKind
            .diff(&etl(), &vec![], &DiffCx::default())
            .changes;
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].action, Action::Create);
        assert_eq!(c[0].needs, vec![Need::At(workspace_address("p-a-dev"))]);
        let PoolOp::Create { name, settings } = &c[0].op else {
            panic!("{:?}", c[0].op)
        };
        assert_eq!(name, "etl");
        assert_eq!(settings, &pool("etl", "Medium", 4).settings);
    }

    #[test]
    fn a_pool_as_described_is_left_alone_and_a_changed_one_updated() {
        let same = vec![pool("ETL", "Medium", 4)];
        let c = SparkPoolKind
            .diff(&etl(), &same, &DiffCx::default())
            .changes;
        assert_eq!(c.len(), 1, "the name's case differs");
        let exact = vec![pool("etl", "Medium", 4)];
        assert!(
            SparkPoolKind
                .diff(&etl(), &exact, &DiffCx::default())
                .changes
                .is_empty()
        );
        let small = vec![pool("etl", "Small", 2)];
        let c = SparkPoolKind
            .diff(&etl(), &small, &DiffCx::default())
            .changes;
        assert_eq!(c[0].action, Action::Update);
        assert_eq!(
            c[0].detail.as_deref(),
            Some("node_size: Small → Medium, auto_scale.max_node_count: 2 → 4")
        );
        let PoolOp::Update { previous, .. } = &c[0].op else {
            panic!("{:?}", c[0].op)
        };
        assert_eq!(previous, &small[0].settings);
    }

    #[test]
    fn other_pools_are_reported_or_with_prune_deleted_but_only_where_pools_are_described() {
        let live = vec![pool("etl", "Medium", 4), pool("adhoc", "Small", 2)];
        let kept = SparkPoolKind.diff(&etl(), &live, &DiffCx::default());
        assert!(kept.changes.is_empty());
        assert_eq!(kept.unmanaged, vec!["spark pool adhoc"]);
        let prune = DiffCx {
            prune: true,
            ..DiffCx::default()
        };
        let pruned = SparkPoolKind.diff(&etl(), &live, &prune);
        assert_eq!(pruned.changes.len(), 1);
        assert_eq!(pruned.changes[0].action, Action::Delete);
        assert!(matches!(
            &pruned.changes[0].op,
            PoolOp::Delete { name, undoable: true, .. } if name == "adhoc"
        ));
        let silent = SparkPoolKind.diff(&desired(), &live, &prune);
        assert!(silent.changes.is_empty() && silent.unmanaged.is_empty());
        // Destroy deletes the described pools only, with no undo.
        let gone = SparkPoolKind.destroy(&etl(), &live).changes;
        assert_eq!(gone.len(), 1);
        assert!(matches!(
            &gone[0].op,
            PoolOp::Delete { name, undoable: false, .. } if name == "etl"
        ));
    }

    #[test]
    fn bad_values_in_fabrik_yaml_are_errors_at_their_line() {
        let text = "project: {name: x, prefix: p}\nworkspaces:\n  - name: a\n    spark_pools:\n      - name: etl\n        node_size: Medium\n        auto_scale: {min_node_count: 5, max_node_count: 2}\n        dynamic_executor_allocation: {min_executors: 1, max_executors: 1}\n";
        let opts = crate::config::LoadOptions {
            environment: "dev".into(),
            sections: SparkPoolKind.section().into_iter().collect(),
            ..Default::default()
        };
        let path = std::path::Path::new("fabrik.yaml");
        let load = |t: &str| crate::config::load_str(path, t, std::path::Path::new("."), &opts);
        let errs = load(text).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            errs[0].headline(),
            "fabrik.yaml:7:38: spark_pools[0].auto_scale.min_node_count: spark pool 'etl': min_node_count (5) is greater than max_node_count (2)"
        );
        let huge = text.replace("node_size: Medium", "node_size: Huge");
        let errs = load(&huge).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].headline().starts_with(
                "fabrik.yaml:6:20: spark_pools[0].node_size: unknown variant `Huge`, expected one of `Small`"
            ),
            "{}",
            errs[0].headline()
        );
        let fine = text.replace("min_node_count: 5", "min_node_count: 2");
        let (d, _) = load(&fine).expect("loads");
        let pools: Vec<PoolConfig> = d.workspaces[0].section(KEY).unwrap().unwrap();
        assert_eq!(pools[0].node_family, NodeFamily::MemoryOptimized);
        assert!(pools[0].auto_scale.enabled && pools[0].dynamic_executor_allocation.enabled);
    }

    #[test]
    fn the_schema_names_the_pools_key_and_its_values() {
        let text = crate::config::json_schema(&crate::engine::Registry::builtin().sections());
        let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
        let ws = &schema["$defs"]["Workspace"];
        assert_eq!(ws["properties"][KEY]["items"]["$ref"], "#/$defs/PoolConfig");
        let sizes = &schema["$defs"]["NodeSize"];
        assert_eq!(sizes["oneOf"].as_array().map(Vec::len), Some(5), "{sizes}");
        assert_eq!(sizes["oneOf"][4]["const"], "XXLarge");
        assert_eq!(
            schema["$defs"]["AutoScaleConfig"]["properties"]["min_node_count"]["minimum"],
            1
        );
    }

    #[test]
    fn bad_pools_are_found_at_their_values() {
        let bad: Vec<PoolConfig> = serde_json::from_value(serde_json::json!([
            {"name": "Starter Pool", "node_size": "Small",
             "auto_scale": {"min_node_count": 5, "max_node_count": 2},
             "dynamic_executor_allocation": {"min_executors": 0, "max_executors": 1}},
            {"name": "starter pool", "node_size": "Small",
             "auto_scale": {"min_node_count": 1, "max_node_count": 2},
             "dynamic_executor_allocation": {"min_executors": 1, "max_executors": 1}},
            {"name": "no/slash", "node_size": "Small",
             "auto_scale": {"min_node_count": 1, "max_node_count": 2},
             "dynamic_executor_allocation": {"min_executors": 1, "max_executors": 1}},
        ]))
        .unwrap();
        let paths: Vec<String> = check(&bad).into_iter().map(|f| f.path).collect();
        assert_eq!(
            paths,
            vec![
                "[0].name",
                "[0].auto_scale.min_node_count",
                "[0].dynamic_executor_allocation.min_executors",
                "[1].name",
                "[1].name",
                "[2].name",
            ]
        );
        let d = with_pools(serde_json::json!([{"name": "x"}]));
        let problems = SparkPoolKind.validate(&d);
        assert!(
            problems[0].contains("missing field `node_size`"),
            "{problems:?}"
        );
    }
}
