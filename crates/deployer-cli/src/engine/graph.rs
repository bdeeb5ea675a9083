//! The plan's dependency graph and the walk that applies it.
//!
//! Nodes are changes in plan order; an edge `a → b` says `a` must be done before `b` starts.
//! Edges come from the kinds' references ([`Need`]), plus two rules of the engine: changes at
//! one address run in plan order, and deletes (irreversible) run only after every other change
//! succeeded. The walk starts every change whose dependencies are done, up to a bound, lowest
//! plan position first, so `--concurrency 1` applies in exactly the plan's order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::future::Future;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::{Address, Need};
use crate::plan::Action;

/// What the graph needs to know of one change.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Where it lives.
    pub address: Address,
    /// Create, update or delete.
    pub action: Action,
    /// What it references.
    pub needs: Vec<Need>,
}

/// The dependency graph of a plan.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    deps: Vec<Vec<usize>>,
    dependents: Vec<Vec<usize>>,
    deletes: Vec<bool>,
    /// Changes a walk starts before others ready with them ([`Graph::start_early`]).
    early: Vec<bool>,
}

/// A cycle among changes: each waits for the next, the last for the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("these changes depend on each other in a cycle: {}", .0.join(" → "))]
pub struct Cycle(pub Vec<String>);

impl Graph {
    /// Builds the graph and checks it has no cycle.
    pub fn build(nodes: &[NodeSpec]) -> Result<Self, Cycle> {
        let mut at: HashMap<&Address, Vec<usize>> = HashMap::new();
        // Deletes are found only by other deletes (a folder's waits for its items'): every
        // other change runs before any delete anyway.
        let mut deletes_at: HashMap<&Address, Vec<usize>> = HashMap::new();
        let mut in_ws: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, n) in nodes.iter().enumerate() {
            if n.action != Action::Delete {
                at.entry(&n.address).or_default().push(i);
                in_ws.entry(&n.address.workspace).or_default().push(i);
            } else {
                deletes_at.entry(&n.address).or_default().push(i);
            }
        }
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            let d = &mut deps[i];
            // Earlier changes at the same address first (a description, then a definition).
            if let Some(same) = at.get(&n.address) {
                d.extend(same.iter().copied().filter(|&j| j < i));
            }
            for need in &n.needs {
                match need {
                    Need::At(a) => {
                        if let Some(js) = at.get(a) {
                            d.extend(js.iter().copied().filter(|&j| j != i));
                        }
                        if n.action == Action::Delete
                            && let Some(js) = deletes_at.get(a)
                        {
                            d.extend(js.iter().copied().filter(|&j| j != i));
                        }
                    }
                    Need::EverythingIn(ws) => {
                        if let Some(js) = in_ws.get(ws.as_str()) {
                            d.extend(
                                js.iter()
                                    .copied()
                                    .filter(|&j| j != i && nodes[j].address.kind != n.address.kind),
                            );
                        }
                    }
                }
            }
            d.sort_unstable();
            d.dedup();
        }
        let mut dependents = vec![Vec::new(); nodes.len()];
        for (i, d) in deps.iter().enumerate() {
            for &j in d {
                dependents[j].push(i);
            }
        }
        let g = Self {
            deps,
            dependents,
            deletes: nodes.iter().map(|n| n.action == Action::Delete).collect(),
            early: vec![false; nodes.len()],
        };
        g.check_acyclic(nodes)?;
        Ok(g)
    }

    /// How many changes.
    pub fn len(&self) -> usize {
        self.deps.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.deps.is_empty()
    }

    /// What change `i` waits for (plan positions).
    pub fn deps(&self, i: usize) -> &[usize] {
        self.deps.get(i).map_or(&[], Vec::as_slice)
    }

    /// Every edge `(before, after)`.
    pub fn edges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.deps
            .iter()
            .enumerate()
            .flat_map(|(i, d)| d.iter().map(move |&j| (j, i)))
    }

    /// Marks the changes a walk starts before the others ready with them (`early[i]`): those
    /// that start the longest waits (an Environment's publish), so the waits overlap the
    /// rest of the run instead of ending it; what they wait for is marked too. While one runs,
    /// no other change starts.
    pub fn start_early(mut self, early: impl IntoIterator<Item = bool>) -> Self {
        let mut stack: Vec<usize> = Vec::new();
        for (i, e) in early.into_iter().enumerate() {
            if e && i < self.early.len() {
                stack.push(i);
            }
        }
        // What an early change waits for is early too: its wait starts no sooner.
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut self.early[i], true) {
                continue;
            }
            stack.extend(self.deps[i].iter().copied());
        }
        self
    }

    /// Whether change `i` is marked early.
    pub fn is_early(&self, i: usize) -> bool {
        self.early.get(i).copied().unwrap_or(false)
    }

    /// The walk's order among ready changes: early ones first, then by plan position.
    fn rank(&self, i: usize) -> Reverse<(bool, usize)> {
        Reverse((!self.is_early(i), i))
    }

    /// Whether change `i` is a delete (runs after every other change).
    pub fn is_delete(&self, i: usize) -> bool {
        self.deletes.get(i).copied().unwrap_or(false)
    }

    /// Kahn's algorithm; what it cannot order lies on or behind a cycle, which a walk along
    /// dependencies from any such node finds.
    fn check_acyclic(&self, nodes: &[NodeSpec]) -> Result<(), Cycle> {
        let mut indegree: Vec<usize> = self.deps.iter().map(Vec::len).collect();
        let mut ready: Vec<usize> = (0..self.len()).filter(|&i| indegree[i] == 0).collect();
        let mut ordered = 0;
        while let Some(i) = ready.pop() {
            ordered += 1;
            for &k in &self.dependents[i] {
                indegree[k] -= 1;
                if indegree[k] == 0 {
                    ready.push(k);
                }
            }
        }
        if ordered == self.len() {
            return Ok(());
        }
        // Every unordered node waits for another unordered node; follow those until one repeats.
        let Some(start) = (0..self.len()).find(|&i| indegree[i] > 0) else {
            return Ok(());
        };
        let mut seen: HashMap<usize, usize> = HashMap::new();
        let mut path = Vec::new();
        let mut cur = start;
        loop {
            if let Some(&pos) = seen.get(&cur) {
                // path[pos..] waits, each on the next; show it in the order things must happen.
                let mut members: Vec<String> = path[pos..]
                    .iter()
                    .map(|&i: &usize| nodes[i].address.to_string())
                    .collect();
                members.reverse();
                members.push(members[0].clone());
                return Err(Cycle(members));
            }
            seen.insert(cur, path.len());
            path.push(cur);
            cur = match self.deps[cur].iter().copied().find(|&j| indegree[j] > 0) {
                Some(j) => j,
                None => return Err(Cycle(vec![nodes[cur].address.to_string()])),
            };
        }
    }
}

/// How a walk ended.
#[derive(Debug)]
pub struct Walked<T, E> {
    /// Results of the changes that ran, in completion order.
    pub done: Vec<(usize, T)>,
    /// Failures, in completion order.
    pub errors: Vec<(usize, E)>,
    /// Whether the walk stopped early because `halted` said so.
    pub halted: bool,
    /// Changes never started.
    pub not_started: usize,
}

/// Walks `graph`: starts every change whose dependencies succeeded, at most `limit` at a time,
/// lowest plan position first; deletes only once everything else succeeded. After the first
/// failure, or once `halted()` is true, nothing new starts and the changes in flight finish.
pub async fn walk<T, E, F, Fut>(
    graph: &Graph,
    limit: usize,
    halted: impl Fn() -> bool,
    mut run: F,
) -> Walked<T, E>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let n = graph.len();
    let mut waiting: Vec<usize> = graph.deps.iter().map(Vec::len).collect();
    let mut ready: BinaryHeap<Reverse<(bool, usize)>> = (0..n)
        .filter(|&i| waiting[i] == 0 && !graph.is_delete(i))
        .map(|i| graph.rank(i))
        .collect();
    let mut others_left = (0..n).filter(|&i| !graph.is_delete(i)).count();
    let mut deletes_released = false;
    let mut in_flight = FuturesUnordered::new();
    let mut out = Walked {
        done: Vec::new(),
        errors: Vec::new(),
        halted: false,
        not_started: 0,
    };
    let mut started = 0;
    let mut early_in_flight = 0usize;
    loop {
        if !deletes_released && others_left == 0 {
            deletes_released = true;
            ready.extend(
                (0..n)
                    .filter(|&i| graph.is_delete(i) && waiting[i] == 0)
                    .map(|i| graph.rank(i)),
            );
        }
        while out.errors.is_empty() && !out.halted && in_flight.len() < limit.max(1) {
            // While an early change runs, later ones wait: the calls that start its long
            // wait do not queue behind theirs.
            let Some(&Reverse((late, i))) = ready.peek() else {
                break;
            };
            if late && early_in_flight > 0 {
                break;
            }
            ready.pop();
            if halted() {
                out.halted = true;
                break;
            }
            started += 1;
            early_in_flight += usize::from(!late);
            let fut = run(i);
            in_flight.push(async move { (i, fut.await) });
        }
        let Some((i, result)) = in_flight.next().await else {
            break;
        };
        early_in_flight -= usize::from(graph.is_early(i));
        match result {
            Ok(v) => {
                out.done.push((i, v));
                if !graph.is_delete(i) {
                    others_left -= 1;
                }
                for &k in &graph.dependents[i] {
                    waiting[k] -= 1;
                    if waiting[k] == 0 && (!graph.is_delete(k) || deletes_released) {
                        ready.push(graph.rank(k));
                    }
                }
            }
            Err(e) => out.errors.push((i, e)),
        }
    }
    out.not_started = n - started;
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::Mutex;

    use super::*;

    fn node(ws: &str, kind: &'static str, key: &str, needs: Vec<Need>) -> NodeSpec {
        NodeSpec {
            address: Address::new(ws, kind, key),
            action: Action::Create,
            needs,
        }
    }

    fn at(ws: &str, kind: &'static str, key: &str) -> Need {
        Need::At(Address::new(ws, kind, key))
    }

    /// w1: workspace ← folder a ← folder a/b ← item x (in a/b); role; git after everything.
    /// w2: workspace ← item y. Two workspaces share nothing.
    fn sample() -> Vec<NodeSpec> {
        vec![
            node("w1", "workspace", "w1", vec![]),
            node("w1", "folder", "a", vec![at("w1", "workspace", "w1")]),
            node(
                "w1",
                "folder",
                "a/b",
                vec![at("w1", "workspace", "w1"), at("w1", "folder", "a")],
            ),
            node(
                "w1",
                "item",
                "x",
                vec![at("w1", "workspace", "w1"), at("w1", "folder", "a/b")],
            ),
            node("w1", "role", "p", vec![at("w1", "workspace", "w1")]),
            node("w1", "git", "w1", vec![Need::EverythingIn("w1".into())]),
            node("w2", "workspace", "w2", vec![]),
            node("w2", "item", "y", vec![at("w2", "workspace", "w2")]),
        ]
    }

    #[test]
    fn edges_follow_the_references() {
        let g = Graph::build(&sample()).unwrap();
        assert_eq!(g.deps(0), &[] as &[usize]);
        assert_eq!(g.deps(2), &[0, 1]);
        assert_eq!(g.deps(3), &[0, 2]);
        assert_eq!(
            g.deps(5),
            &[0, 1, 2, 3, 4],
            "git waits for its whole workspace"
        );
        assert_eq!(g.deps(7), &[6]);
        assert_eq!(g.deps(6), &[] as &[usize], "workspaces are independent");
    }

    #[tokio::test]
    async fn every_change_starts_after_all_it_depends_on() {
        let nodes = sample();
        let g = Graph::build(&nodes).unwrap();
        for limit in [1, 2, 3, 8] {
            let order = Arc::new(Mutex::new(Vec::new()));
            let w = walk(
                &g,
                limit,
                || false,
                |i| {
                    let order = Arc::clone(&order);
                    async move {
                        // Yield so changes in flight interleave.
                        tokio::task::yield_now().await;
                        order.lock().unwrap().push(i);
                        Ok::<_, ()>(i)
                    }
                },
            )
            .await;
            assert_eq!(w.done.len(), nodes.len());
            let order = order.lock().unwrap().clone();
            let pos = |i: usize| order.iter().position(|&x| x == i).unwrap();
            for (before, after) in g.edges() {
                assert!(
                    pos(before) < pos(after),
                    "limit {limit}: {before} before {after} in {order:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn concurrency_one_keeps_the_plan_order() {
        let g = Graph::build(&sample()).unwrap();
        let w = walk(&g, 1, || false, |i| async move { Ok::<_, ()>(i) }).await;
        let order: Vec<usize> = w.done.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4, 5, 6, 7]);
    }

    /// A change marked early (an Environment's, whose publish is the longest wait) starts
    /// before the changes ready with it, and what it waits for before them too; the others
    /// keep the plan's order.
    #[tokio::test]
    async fn an_early_change_starts_before_the_others_ready_with_it() {
        let early = [false, false, false, false, true, false, false, true];
        let g = Graph::build(&sample()).unwrap().start_early(early);
        let w = walk(&g, 1, || false, |i| async move { Ok::<_, ()>(i) }).await;
        let order: Vec<usize> = w.done.iter().map(|(i, _)| *i).collect();
        // 4 (w1's role) waits for 0, 7 (w2's item) for 6 (w2's workspace), which is early
        // with it.
        assert_eq!(order, vec![0, 4, 6, 7, 1, 2, 3, 5]);

        // With room for many, nothing else starts while an early change runs.
        let events = Mutex::new(Vec::new());
        let g = Graph::build(&sample()).unwrap().start_early(early);
        let w = walk(
            &g,
            8,
            || false,
            |i| {
                let events = &events;
                async move {
                    events.lock().unwrap().push(format!("start {i}"));
                    for _ in 0..3 {
                        tokio::task::yield_now().await;
                    }
                    events.lock().unwrap().push(format!("end {i}"));
                    Ok::<_, ()>(i)
                }
            },
        )
        .await;
        assert_eq!(w.done.len(), 8);
        let events = events.into_inner().unwrap();
        let at = |e: &str| events.iter().position(|x| x == e).unwrap();
        // 1 is ready once 0 is done, with 4; it starts only once 4 and 7 are done.
        assert!(at("end 0") < at("start 4"), "{events:?}");
        assert!(at("end 4") < at("start 1"), "{events:?}");
        assert!(at("end 7") < at("start 1"), "{events:?}");
    }

    /// The two workspaces' creates are independent: with room for two, both are in flight at
    /// once, which a two-party barrier proves (it opens only when both wait on it).
    #[tokio::test(start_paused = true)]
    async fn independent_changes_run_at_the_same_time() {
        let g = Graph::build(&sample()).unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let w = tokio::time::timeout(
            std::time::Duration::from_secs(3600),
            walk(
                &g,
                2,
                || false,
                |i| {
                    let barrier = Arc::clone(&barrier);
                    async move {
                        if i == 0 || i == 6 {
                            barrier.wait().await;
                        }
                        Ok::<_, ()>(i)
                    }
                },
            ),
        )
        .await
        .expect("both workspace creates were in flight together");
        assert_eq!(w.done.len(), 8);
        // With room for one, the barrier would never open: the walk does not start the second
        // create until the first is done.
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let one_at_a_time = tokio::time::timeout(
            std::time::Duration::from_secs(3600),
            walk(
                &g,
                1,
                || false,
                |i| {
                    let barrier = Arc::clone(&barrier);
                    async move {
                        if i == 0 || i == 6 {
                            barrier.wait().await;
                        }
                        Ok::<_, ()>(i)
                    }
                },
            ),
        )
        .await;
        assert!(one_at_a_time.is_err(), "limit 1 must not run two at once");
    }

    /// Folder `a` fails while w2's workspace create is in flight: that create finishes, the
    /// failed folder's dependents never start, and nothing new starts after the failure.
    #[tokio::test]
    async fn a_failure_stops_dependents_and_lets_work_in_flight_finish() {
        let g = Graph::build(&sample()).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let rx = Arc::new(Mutex::new(Some(rx)));
        let w = walk(
            &g,
            2,
            || false,
            |i| {
                let rx = Arc::clone(&rx);
                async move {
                    match i {
                        // w2's create waits until folder `a` has failed.
                        6 => {
                            let r = rx.lock().unwrap().take().unwrap();
                            let _ = r.await;
                            Ok(i)
                        }
                        1 => Err("folder a refused".to_string()),
                        _ => Ok(i),
                    }
                }
            },
        );
        let failing = async {
            tokio::task::yield_now().await;
            let _ = tx.send(());
        };
        let (w, ()) = tokio::join!(w, failing);
        let done: Vec<usize> = w.done.iter().map(|(i, _)| *i).collect();
        assert!(done.contains(&0) && done.contains(&6), "{done:?}");
        assert_eq!(w.errors.len(), 1);
        assert_eq!(w.errors[0].0, 1);
        for dependent in [2, 3, 5] {
            assert!(
                !done.contains(&dependent),
                "{dependent} depends on the failed folder"
            );
        }
        assert!(
            !done.contains(&7),
            "nothing new starts after a failure: {done:?}"
        );
    }

    #[tokio::test]
    async fn a_delete_that_needs_other_deletes_waits_for_them() {
        let delete = |key: &str, needs: Vec<Need>| NodeSpec {
            address: Address::new("w", "published", key),
            action: Action::Delete,
            needs,
        };
        let at = |key: &str| Need::At(Address::new("w", "published", key));
        // The parent folder first in plan order, so only the edges can hold it back.
        let nodes = vec![
            delete("folder:a", vec![at("folder:a/b")]),
            delete("folder:a/b", vec![at("Notebook:n")]),
            delete("Notebook:n", vec![]),
        ];
        let g = Graph::build(&nodes).unwrap();
        assert_eq!(g.deps(0), &[1]);
        let w = walk(&g, 8, || false, |i| async move { Ok::<_, ()>(i) }).await;
        let order: Vec<usize> = w.done.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, [2, 1, 0]);
    }

    #[tokio::test]
    async fn deletes_run_only_after_everything_else_succeeded() {
        let mut nodes = sample();
        nodes.insert(
            0,
            NodeSpec {
                address: Address::new("w2", "item", "old"),
                action: Action::Delete,
                needs: vec![],
            },
        );
        let g = Graph::build(&nodes).unwrap();
        let w = walk(&g, 8, || false, |i| async move { Ok::<_, ()>(i) }).await;
        assert_eq!(w.done.last().unwrap().0, 0, "the delete ran last");
        let failed = walk(
            &g,
            8,
            || false,
            |i| async move { if i == 8 { Err(()) } else { Ok(i) } },
        )
        .await;
        assert!(
            failed.done.iter().all(|(i, _)| *i != 0),
            "no delete after a failure"
        );
    }

    #[tokio::test]
    async fn a_halt_starts_nothing_new() {
        let g = Graph::build(&sample()).unwrap();
        let started = std::sync::atomic::AtomicUsize::new(0);
        let w = walk(
            &g,
            1,
            || started.load(std::sync::atomic::Ordering::SeqCst) >= 3,
            |i| {
                started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move { Ok::<_, ()>(i) }
            },
        )
        .await;
        assert!(w.halted);
        assert_eq!(w.done.len(), 3);
        assert_eq!(w.not_started, 5);
    }

    #[test]
    fn a_cycle_is_reported_with_its_members() {
        let nodes = vec![
            node("w", "workspace", "w", vec![]),
            node("w", "item", "a", vec![at("w", "item", "c")]),
            node("w", "item", "b", vec![at("w", "item", "a")]),
            node("w", "item", "c", vec![at("w", "item", "b")]),
            node("w", "item", "d", vec![at("w", "item", "c")]),
        ];
        let err = Graph::build(&nodes).unwrap_err();
        let mut members = err.0.clone();
        assert_eq!(members.first(), members.last(), "{err}");
        members.pop();
        members.sort();
        assert_eq!(members, vec!["w/item/a", "w/item/b", "w/item/c"], "{err}");
        assert!(err.to_string().contains("w/item/a"), "{err}");
    }

    /// Each change journals an undo record when it is done; after a failure the transaction
    /// undoes them last-first, which is the reverse of completion order and so undoes every
    /// change before anything it depends on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rollback_undoes_in_reverse_and_respects_every_edge() {
        use fabrik_core::resource::{ResourceKind, ResourceRef, Undo, UndoError, UndoOutcome};

        #[derive(Debug, Default)]
        struct Recorder(Mutex<Vec<String>>);
        #[async_trait::async_trait]
        impl fabrik_core::Undoer for Recorder {
            async fn undo(&self, undo: &Undo) -> Result<UndoOutcome, UndoError> {
                let id = undo.payload["item"].as_str().unwrap().to_string();
                self.0.lock().unwrap().push(id);
                Ok(UndoOutcome::Done)
            }
        }

        let dir = tempfile::tempdir().unwrap();
        let txn = fabrik_txn::Transaction::begin("graph", fabrik_txn::TxnOptions::new(dir.path()))
            .unwrap();
        let g = Graph::build(&sample()).unwrap();
        let completed = Mutex::new(Vec::new());
        let w = walk(
            &g,
            3,
            || false,
            |i| {
                let (txn, completed) = (&txn, &completed);
                async move {
                    tokio::task::yield_now().await;
                    if i == 7 {
                        return Err("the last item is refused");
                    }
                    txn.track(
                        ResourceRef::in_workspace(ResourceKind::Item, "w", i.to_string(), None),
                        Undo::new("test", &serde_json::json!({ "item": i.to_string() })),
                    )
                    .await
                    .unwrap();
                    completed.lock().unwrap().push(i);
                    Ok(i)
                }
            },
        )
        .await;
        assert_eq!(w.errors.len(), 1);
        let recorder = Recorder::default();
        txn.rollback("failed", &recorder).await.unwrap();
        let undone: Vec<usize> = recorder
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let mut expected = completed.lock().unwrap().clone();
        expected.reverse();
        assert_eq!(undone, expected, "last done, first undone");
        let pos = |i: usize| undone.iter().position(|&x| x == i);
        for (before, after) in g.edges() {
            if let (Some(b), Some(a)) = (pos(before), pos(after)) {
                assert!(
                    a < b,
                    "{after} (depends on {before}) must be undone first: {undone:?}"
                );
            }
        }
    }
}
