//! The deployment engine: resource kinds, planned into one dependency graph, applied by a walk
//! of that graph with every change journaled so a failed or crashed run can be rolled back.
//!
//! - [`Kind`] (kind.rs): one kind of resource — read, diff, references, apply with its undo.
//! - [`Registry`]: the kinds a run plans, in the order a sequential apply runs them.
//! - [`plan`]: reads every described workspace and asks each kind for its changes.
//! - [`Graph`] and [`walk`] (graph.rs): edges from references; apply in dependency order.
//! - [`apply`]: walks the plan's graph, at most `concurrency` changes in flight.
//! - [`Recovery`] (recovery.rs): rollback and crash recovery, each record handed to the kind
//!   that journaled it.

mod graph;
mod kind;
pub mod kinds;
pub mod recovery;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use fabrik_client::{FabricClient, FabricError};
use fabrik_core::metric_names::RESOURCES;
use fabrik_txn::Transaction;
use futures::{StreamExt, TryStreamExt};
use tracing::Instrument as _;

pub use graph::{Cycle, Graph, NodeSpec, Walked, walk};
pub use kind::{
    Address, ApplyCx, Deferred, Diff, DiffCx, DynKind, DynOp, Ids, Kind, LiveWorkspace, Need,
    Outcome, Planned, ReadCx, UndoCx, ctx, folder_path, permanent, settle, workspace_address,
};
pub use recovery::Recovery;

use crate::config::{CapacityRef, Desired};
use crate::plan::{self, Action, Change, Plan, WorkspacePlan};
use kind::Erased;

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The service refused or failed.
    #[error("{context}: {source}")]
    Fabric {
        /// What fabrik was doing.
        context: String,
        /// The service's error.
        #[source]
        source: FabricError,
    },
    /// A capacity named in the config does not exist.
    #[error("capacity '{0}' not found (by id or display name)")]
    UnknownCapacity(String),
    /// The configuration, checked by the kinds, cannot be planned.
    #[error("{0}")]
    Invalid(String),
    /// Changes reference each other in a cycle.
    #[error(transparent)]
    Cycle(#[from] Cycle),
    /// A change needs a resource whose id nothing produced (a kind's reference is missing).
    #[error("{target}: {missing} is neither deployed nor planned")]
    Unresolved {
        /// The change.
        target: String,
        /// What it needs.
        missing: String,
    },
    /// The run was told to stop (its deadline passed) before this change started.
    #[error("stopped before {0}: the run's deadline passed")]
    Halted(String),
    /// The whole run took longer than its deadline.
    #[error("the run did not finish within its deadline of {0:?}")]
    RunDeadline(std::time::Duration),
    /// The deployment lock (a shared state backend's lease) was lost mid-run.
    #[error("the deployment lock was lost, so the run stopped: {0}")]
    LockLost(String),
    /// The journal failed: stop before doing anything we could not undo.
    #[error("journal: {0}")]
    Journal(String),
}

/// The kinds a run plans. Their order is the order of each workspace's changes in the plan
/// (and of a `--concurrency 1` apply).
#[derive(Clone)]
pub struct Registry {
    kinds: Vec<Arc<dyn DynKind>>,
    claimed_item_types: Vec<&'static str>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.kinds.iter().map(|k| k.name()))
            .finish()
    }
}

impl Registry {
    /// No kinds.
    pub fn empty() -> Self {
        Self {
            kinds: Vec::new(),
            claimed_item_types: Vec::new(),
        }
    }

    /// The built-in kinds.
    pub fn builtin() -> Self {
        Self::empty()
            .with(kinds::workspace::WorkspaceKind)
            .with(kinds::capacity::CapacityKind)
            .with(kinds::folder::FolderKind)
            .with(kinds::spark_pool::SparkPoolKind)
            .with(kinds::spark_settings::SparkSettingsKind)
            .with(kinds::item::ItemKind::lakehouse())
            .with(kinds::item::ItemKind::notebook())
            .with(kinds::item::ItemKind::generic())
            .with(kinds::role::RoleKind)
            .with(kinds::git::GitKind)
    }

    /// Adds `kind` after the ones already registered.
    pub fn with<K: Kind>(mut self, kind: K) -> Self {
        if let Some(t) = kind.claims_item_type() {
            self.claimed_item_types.push(t);
        }
        self.kinds.push(Arc::new(Erased(Arc::new(kind))));
        self
    }

    /// The kind registered as `name`: the one that carries out its undo records and recovers
    /// its intents.
    pub(crate) fn kind_named(&self, name: &str) -> Option<&Arc<dyn DynKind>> {
        self.kinds.iter().find(|k| k.name() == name)
    }

    /// These kinds and every other kind that planned a change of `plan` (a kind added for one
    /// run), so a rollback reaches each record's kind.
    pub fn with_kinds_of(mut self, plan: &Plan) -> Self {
        for (_, c) in plan.changes() {
            if let Some(k) = c.op.planned_by()
                && self.kind_named(k.name()).is_none()
            {
                self.kinds.push(k);
            }
        }
        self
    }

    /// Every kind's own deletes in one existing workspace, for `fabrik destroy` (see
    /// [`Kind::destroy`]), and the ids of the resources they delete (those the kinds recorded
    /// with [`ReadCx::know`] at the deletes' addresses).
    pub async fn plan_destroys(
        &self,
        client: &FabricClient,
        desired: &crate::config::DesiredWorkspace,
        live: &LiveWorkspace,
    ) -> Result<(Vec<Change>, Vec<String>), EngineError> {
        let mut cx = ReadCx::new(client, desired, Some(live), 1);
        cx.claimed_item_types = self.claimed_item_types.clone();
        let mut changes = Vec::new();
        for k in &self.kinds {
            for p in k.plan_destroy(&cx).await?.changes {
                changes.push(Change {
                    action: p.action,
                    target: p.target,
                    detail: p.detail,
                    address: Address::new(&desired.name, k.name(), p.key),
                    needs: p.needs,
                    op: p.op,
                });
            }
        }
        let (known, _) = cx.into_known();
        let ids = changes
            .iter()
            .filter_map(|c| known.get(&c.address).cloned())
            .collect();
        Ok((changes, ids))
    }

    /// The workspace keys of `fabrik.yaml` the kinds own (see [`Kind::section`]), for
    /// [`LoadOptions::sections`](crate::config::LoadOptions::sections) and the JSON Schema.
    pub fn sections(&self) -> Vec<crate::config::Section> {
        self.kinds.iter().filter_map(|k| k.section()).collect()
    }

    /// The kinds of this registry configured by a key `desired` sets (see
    /// [`Kind::section`]): such a kind knows what it deployed there, so `fabrik destroy`
    /// asks it for its own deletes.
    pub fn configured_in(&self, desired: &crate::config::DesiredWorkspace) -> Self {
        let kinds = self
            .kinds
            .iter()
            .filter(|k| {
                k.section()
                    .is_some_and(|s| desired.sections.contains_key(s.key()))
            })
            .cloned()
            .collect();
        Self {
            kinds,
            claimed_item_types: self.claimed_item_types.clone(),
        }
    }

    /// These kinds, then those of `other` that are not among them.
    pub fn and(mut self, other: &Registry) -> Self {
        for k in &other.kinds {
            if self.kind_named(k.name()).is_none() {
                self.kinds.push(Arc::clone(k));
            }
        }
        for t in &other.claimed_item_types {
            if !self.claimed_item_types.contains(t) {
                self.claimed_item_types.push(t);
            }
        }
        self
    }

    /// Every registered kind's name, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|k| k.name()).collect()
    }

    /// Every problem the kinds find in the desired state, before anything is read.
    pub fn validate(&self, desired: &Desired) -> Vec<String> {
        desired
            .workspaces
            .iter()
            .flat_map(|w| self.kinds.iter().flat_map(move |k| k.validate(w)))
            .collect()
    }
}

/// Resolves capacities named by display name to ids.
async fn capacity_ids(
    client: &FabricClient,
    desired: &Desired,
) -> Result<BTreeMap<String, String>, EngineError> {
    let mut out = BTreeMap::new();
    let wanted: Vec<&CapacityRef> = desired
        .workspaces
        .iter()
        .filter_map(|w| w.capacity.as_ref())
        .collect();
    if wanted.is_empty() {
        return Ok(out);
    }
    let caps: Vec<_> = client
        .list_capacities()
        .try_collect()
        .await
        .map_err(ctx("listing capacities"))?;
    for c in wanted {
        let (key, found) = match c {
            CapacityRef::Id(id) => (id, caps.iter().find(|x| x.id.eq_ignore_ascii_case(id))),
            CapacityRef::Name(n) => (
                n,
                caps.iter().find(|x| x.display_name.eq_ignore_ascii_case(n)),
            ),
        };
        let cap = found.ok_or_else(|| EngineError::UnknownCapacity(key.clone()))?;
        out.insert(key.clone(), cap.id.clone());
    }
    Ok(out)
}

fn capacity_key(c: &CapacityRef) -> &String {
    match c {
        CapacityRef::Id(s) | CapacityRef::Name(s) => s,
    }
}

/// Plans the kinds of `registry`.
pub async fn plan_kinds(
    client: &FabricClient,
    desired: &Desired,
    registry: &Registry,
    concurrency: usize,
    prune: bool,
) -> Result<Plan, EngineError> {
    let span = tracing::info_span!(
        "fabrik.plan",
        environment = %desired.environment,
        workspaces = desired.workspaces.len(),
    );
    read_and_diff(client, desired, registry, concurrency, prune)
        .instrument(span)
        .await
}

async fn read_and_diff(
    client: &FabricClient,
    desired: &Desired,
    registry: &Registry,
    concurrency: usize,
    prune: bool,
) -> Result<Plan, EngineError> {
    let problems = registry.validate(desired);
    if !problems.is_empty() {
        return Err(EngineError::Invalid(problems.join("; ")));
    }
    let caps = capacity_ids(client, desired).await?;
    let all: Vec<LiveWorkspace> = client
        .list_workspaces()
        .map_ok(|w| LiveWorkspace {
            id: w.id,
            name: w.display_name,
            description: w.description,
            capacity_id: w.capacity_id,
        })
        .try_collect()
        .await
        .map_err(ctx("listing workspaces"))?;
    let reads = desired.workspaces.iter().map(|d| {
        let live = all.iter().find(|w| w.name.eq_ignore_ascii_case(&d.name));
        let diff = DiffCx {
            capacity_id: d
                .capacity
                .as_ref()
                .and_then(|c| caps.get(capacity_key(c)).cloned()),
            prune,
            claimed_item_types: registry.claimed_item_types.clone(),
        };
        async move {
            let mut cx = ReadCx::new(client, d, live, concurrency);
            cx.claimed_item_types = registry.claimed_item_types.clone();
            let mut changes = Vec::new();
            let mut deletes = Vec::new();
            let mut unmanaged = Vec::new();
            for k in &registry.kinds {
                let planned = k.plan(&cx, &diff).await?;
                unmanaged.extend(planned.unmanaged);
                for p in planned.changes {
                    let change = Change {
                        action: p.action,
                        target: p.target,
                        detail: p.detail,
                        address: Address::new(&d.name, k.name(), p.key),
                        needs: p.needs,
                        op: p.op,
                    };
                    if change.action == Action::Delete {
                        deletes.push(change);
                    } else {
                        changes.push(change);
                    }
                }
            }
            // Deletes are irreversible: they run last, after everything else succeeded; what
            // they delete is no longer "unmanaged and left alone".
            unmanaged.retain(|u| !deletes.iter().any(|c: &Change| &c.target == u));
            changes.extend(deletes);
            let reads = cx.take_reads();
            let rendered = cx.take_rendered(&registry.names());
            let record_unchanged = cx.is_previous(rendered.as_ref());
            let (known, seen_items) = cx.into_known();
            let mut known_ids: Vec<(Address, String)> = known.into_iter().collect();
            if let Some(w) = live {
                known_ids.push((workspace_address(&d.name), w.id.clone()));
            }
            Ok::<_, EngineError>(WorkspacePlan {
                name: d.name.clone(),
                id: live.map(|w| w.id.clone()),
                changes,
                unmanaged,
                known_ids,
                seen_items,
                desired: d.clone(),
                reads,
                rendered,
                record_unchanged,
                deployed: Default::default(),
            })
        }
    });
    let workspaces: Vec<WorkspacePlan> = futures::stream::iter(reads)
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    let nodes: Vec<NodeSpec> = workspaces
        .iter()
        .flat_map(|w| &w.changes)
        .map(|c| NodeSpec {
            address: c.address.clone(),
            action: c.action,
            needs: c.needs.clone(),
        })
        .collect();
    let early = workspaces
        .iter()
        .flat_map(|w| &w.changes)
        .map(|c| c.op.starts_early());
    let graph = Graph::build(&nodes)?.start_early(early);
    Ok(Plan { workspaces, graph })
}

/// Called after each change is applied and journaled (progress bars, log lines).
#[derive(Clone)]
pub struct Progress(pub Arc<dyn Fn(&Applied) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// What apply did to one resource.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    /// Workspace name.
    pub workspace: String,
    /// What.
    pub target: String,
    /// `created`, `updated`, `deleted`, `existed`.
    pub outcome: &'static str,
}

/// Changes in progress per call on the wire (`--concurrency` bounds the calls, through the
/// client): most of a change's time is waiting for its long-running operation, which holds
/// no call.
pub const CHANGES_PER_CALL: usize = 4;

/// Changes in progress at once for `--concurrency` `calls`: [`CHANGES_PER_CALL`] per call,
/// except that `--concurrency 1` applies one change at a time, in the plan's order.
pub fn changes_in_flight(calls: usize) -> usize {
    if calls <= 1 {
        1
    } else {
        calls.saturating_mul(CHANGES_PER_CALL)
    }
}

/// Applies the plan: walks its graph with at most [`changes_in_flight`]`(concurrency)`
/// changes in flight and `concurrency` calls on the wire (the client's bound), across and
/// within workspaces. Stops starting changes at the first failure or once `halt` is set; the
/// changes in flight finish, so the journal is complete before any rollback. Returns what was
/// done and what failed.
pub async fn apply(
    client: &FabricClient,
    txn: &Arc<Transaction>,
    plan: &Plan,
    concurrency: usize,
    progress: Option<&Progress>,
    halt: &AtomicBool,
) -> (Vec<Applied>, Vec<EngineError>) {
    let changes: Vec<(&WorkspacePlan, &Change)> = plan.changes().collect();
    let deferred = Deferred::default();
    let ids = Ids::new(
        plan.workspaces
            .iter()
            .flat_map(|w| w.known_ids.iter().cloned()),
    );
    // One span per workspace, open while its changes run; each change's span is its child.
    let mut left: BTreeMap<&str, usize> = BTreeMap::new();
    for (w, _) in &changes {
        *left.entry(w.name.as_str()).or_default() += 1;
    }
    let spans = std::sync::Mutex::new(BTreeMap::<String, (tracing::Span, usize)>::new());
    let current = tracing::Span::current();
    let walked = walk(
        &plan.graph,
        changes_in_flight(concurrency),
        || halt.load(Ordering::SeqCst),
        |i| {
            let (w, change) = changes[i];
            let ws_span = {
                let mut s = spans.lock().unwrap_or_else(|p| p.into_inner());
                s.entry(w.name.clone())
                    .or_insert_with(|| {
                        let span = tracing::info_span!(parent: &current, "fabrik.workspace", workspace = %w.name);
                        (span, left.get(w.name.as_str()).copied().unwrap_or(0))
                    })
                    .0
                    .clone()
            };
            let ids = &ids;
            let spans = &spans;
            let deferred = &deferred;
            async move {
                let r = apply_one(client, txn, w, change, (ids, deferred), &ws_span).await;
                // Close the workspace's span once its last change is done.
                let mut s = spans.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((_, n)) = s.get_mut(&w.name) {
                    *n -= 1;
                    if *n == 0 {
                        s.remove(&w.name);
                    }
                }
                drop(s);
                if let (Ok(a), Some(p)) = (&r, progress) {
                    (p.0)(a);
                }
                r
            }
        },
    )
    .await;
    let mut errors: Vec<EngineError> = walked.errors.into_iter().map(|(_, e)| e).collect();
    // The operations changes left running: waited for together, each failure the run's.
    let waits = deferred
        .take()
        .into_iter()
        .map(|(what, op)| async move { client.wait_operation(op).await.map_err(ctx(what)) });
    errors.extend(
        futures::future::join_all(waits)
            .await
            .into_iter()
            .filter_map(Result::err),
    );
    if walked.halted {
        errors.push(EngineError::Halted(format!(
            "{} change(s) not started",
            walked.not_started
        )));
    }
    (walked.done.into_iter().map(|(_, a)| a).collect(), errors)
}

async fn apply_one(
    client: &FabricClient,
    txn: &Transaction,
    w: &WorkspacePlan,
    change: &Change,
    (ids, deferred): (&Ids, &Deferred),
    ws_span: &tracing::Span,
) -> Result<Applied, EngineError> {
    // One span per deployment step: the step's HTTP calls are its children.
    let span = tracing::info_span!(
        parent: ws_span,
        "fabrik.change",
        workspace = %w.name,
        action = ?change.action,
        target = %change.target,
        outcome = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
    );
    let cx = ApplyCx {
        kind: change.op.kind(),
        client,
        txn,
        workspace: &w.name,
        target: &change.target,
        ids,
        seen_items: &w.seen_items,
        sent: &w.deployed,
        deferred,
    };
    let outcome = change
        .op
        .apply(&cx)
        .instrument(span.clone())
        .await
        .inspect_err(|e| {
            span.record("otel.status_code", "error");
            span.record("otel.status_message", e.to_string());
        })?;
    span.record("outcome", outcome.as_str());
    if outcome != Outcome::Existed {
        metrics::counter!(
            RESOURCES,
            "kind" => plan::kind_label(change.resource_kind()),
            "action" => outcome.as_str(),
        )
        .increment(1);
    }
    Ok(Applied {
        workspace: w.name.clone(),
        target: change.target.clone(),
        outcome: outcome.as_str(),
    })
}
