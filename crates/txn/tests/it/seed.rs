//! Counterparts of the seed's test_transaction_manager.py, one test per case.

use std::time::Duration;

use fabrik_core::resource::{ResourceKind, ResourceRef, Undo};
use fabrik_core::{Clock, ErrorClass, Flag};
use fabrik_txn::{
    Journal, JournalError, RunStatus, ScopeError, Step, Transaction, TxnError, TxnStatus,
    UndoResult,
};

use crate::support::{Fake, Flags, TestUndo, item, options};

/// Tracks `ids` as created items (creating them in the fake first).
async fn track_items(txn: &Transaction, fake: &Fake, ids: &[&str]) {
    for id in ids {
        let (r, u) = item(id);
        fake.put(id, r.display_name.as_deref().unwrap());
        txn.track(r, u).await.unwrap();
    }
}

#[test]
fn rollback_is_on_with_the_shipped_flag_defaults() {
    // The seed defaulted FEATURE_USE_ROLLBACK off; fabrik defaults it on. The real defaults,
    // as `fabrik` resolves them with nothing set, not a stand-in flag source.
    let dir = tempfile::tempdir().unwrap();
    let defaults = fabrik_flags::Flags::resolve(&fabrik_flags::Inputs::default()).unwrap();
    assert!(options(dir.path()).0.with_flags(&defaults).rollback_enabled);
}

#[tokio::test]
async fn rollback_flag_off_leaves_everything_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    // FEATURE_USE_ROLLBACK off (the seed's default, not fabrik's): rollback is not effective.
    let (o, _) = options(dir.path());
    let txn = Transaction::begin("deploy", o.with_flags(&Flags(vec![]))).unwrap();
    track_items(&txn, &fake, &["a", "b"]).await;
    let before = fake.snapshot();
    let report = txn.rollback("boom", fake.as_ref()).await.unwrap();
    assert!(!report.rollback_enabled);
    assert!(fake.calls().is_empty());
    assert_eq!(fake.snapshot(), before);
    assert!(
        report
            .entries
            .iter()
            .all(|e| e.result == UndoResult::LeftInPlace)
    );
    assert_eq!(txn.status(), TxnStatus::Failed);
    assert!(!report.is_complete());
    let runs = Journal::list_runs(dir.path()).unwrap().runs;
    assert_eq!(runs[0].status, RunStatus::Failed);
    // A deliberate "leave it" is not something to recover on the next start…
    assert!(
        Journal::find_incomplete(dir.path())
            .unwrap()
            .runs
            .is_empty()
    );
    // …but an explicit `fabrik rollback RUN_ID` still undoes it.
    let report = Journal::recover(dir.path(), txn.run_id(), fake.as_ref())
        .await
        .unwrap();
    assert!(report.is_complete());
    assert!(fake.snapshot().is_empty());
}

#[tokio::test]
async fn enabled_with_flag() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let (o, _) = options(dir.path());
    let txn = Transaction::begin("deploy", o.with_flags(&Flags(vec![Flag::Rollback]))).unwrap();
    track_items(&txn, &fake, &["a"]).await;
    let report = txn.rollback("boom", fake.as_ref()).await.unwrap();
    assert!(report.rollback_enabled);
    assert_eq!(report.entries[0].result, UndoResult::Done);
    assert!(fake.snapshot().is_empty());
    assert_eq!(txn.status(), TxnStatus::RolledBack);
    assert!(report.is_complete());
}

#[tokio::test]
async fn reverse_order() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    track_items(&txn, &fake, &["first", "second", "third"]).await;
    let report = txn.rollback("boom", fake.as_ref()).await.unwrap();
    assert_eq!(fake.undone_ids(), ["third", "second", "first"]);
    let ids: Vec<_> = report
        .entries
        .iter()
        .map(|e| e.resource.id.as_str())
        .collect();
    assert_eq!(ids, ["third", "second", "first"]);
}

#[tokio::test]
async fn commit_prevents_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    track_items(&txn, &fake, &["a"]).await;
    txn.commit().await.unwrap();
    let err = txn.rollback("late", fake.as_ref()).await.unwrap_err();
    assert!(
        matches!(
            err,
            TxnError::NotActive {
                status: TxnStatus::Committed,
                ..
            }
        ),
        "{err}"
    );
    assert!(fake.calls().is_empty());
    assert_eq!(fake.snapshot().len(), 1);
    // Nor can recovery undo a committed run.
    let err = Journal::recover(dir.path(), txn.run_id(), fake.as_ref())
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::Committed { .. }), "{err}");
    assert!(fake.calls().is_empty());
    // Committing twice is refused too (the seed warned and did nothing).
    assert!(matches!(
        txn.commit().await,
        Err(TxnError::NotActive { .. })
    ));
}

#[tokio::test]
async fn ctx_success() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    let run_id = txn.run_id().to_owned();
    let value = txn
        .scope(fake.as_ref(), async |t| {
            track_items(t, &fake, &["a"]).await;
            Ok::<_, std::io::Error>(42)
        })
        .await
        .unwrap();
    assert_eq!(value, 42);
    assert_eq!(fake.snapshot().len(), 1);
    assert!(fake.calls().is_empty());
    let runs = Journal::list_runs(dir.path()).unwrap().runs;
    assert_eq!(
        (runs[0].run_id.as_str(), runs[0].status),
        (run_id.as_str(), RunStatus::Committed)
    );
}

#[tokio::test]
async fn ctx_rollback_on_exception() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    let err = txn
        .scope(fake.as_ref(), async |t| {
            track_items(t, &fake, &["a", "b"]).await;
            Err::<(), _>(std::io::Error::other("lakehouse create failed"))
        })
        .await
        .unwrap_err();
    let ScopeError::Failed { error, rollback } = err else {
        panic!("expected a rollback");
    };
    // The error is handed back unchanged (the seed re-raised it).
    assert_eq!(error.to_string(), "lakehouse create failed");
    let report = rollback.unwrap();
    assert_eq!(report.reason, "lakehouse create failed");
    assert_eq!(fake.undone_ids(), ["b", "a"]);
    assert!(fake.snapshot().is_empty());
    let runs = Journal::list_runs(dir.path()).unwrap().runs;
    assert_eq!(runs[0].status, RunStatus::RolledBack);
}

#[tokio::test]
async fn cleanup_with_kwargs() {
    // The seed passed args/kwargs to a cleanup function; here the undo record carries its
    // arguments, and the undoer receives exactly them, also after a trip through the journal.
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    fake.put("principal-1", "Admin");
    let restore: Undo = TestUndo::RestoreRole {
        workspace_id: "w".into(),
        assignment_id: "principal-1".into(),
        role: "Viewer".into(),
    }
    .into();
    let rename: Undo = TestUndo::RestoreItem {
        workspace_id: "w".into(),
        item_id: "nb".into(),
        display_name: "old name".into(),
        description: "old description".into(),
    }
    .into();
    fake.put("nb", "new name");
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    let role = ResourceRef::in_workspace(ResourceKind::RoleAssignment, "w", "principal-1", None);
    let nb = ResourceRef::in_workspace(ResourceKind::Notebook, "w", "nb", None);
    txn.track(role.clone(), restore.clone()).await.unwrap();
    txn.track(nb.clone(), rename.clone()).await.unwrap();
    txn.rollback("boom", fake.as_ref()).await.unwrap();
    assert_eq!(fake.calls(), [rename.clone(), restore.clone()]);
    assert_eq!(fake.snapshot()["principal-1"], "Viewer");
    assert_eq!(fake.snapshot()["nb"], "old name");

    // Through the journal: a second run, crashed, recovered by another "process".
    let fake2 = Fake::new();
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    txn.track(role, restore.clone()).await.unwrap();
    txn.track(nb, rename.clone()).await.unwrap();
    let copy = crate::support::crash_copy(txn.journal_path());
    Journal::recover(copy.path(), txn.run_id(), fake2.as_ref())
        .await
        .unwrap();
    assert_eq!(fake2.calls(), [rename, restore]);
    txn.commit().await.unwrap();
}

#[tokio::test]
async fn rollback_continues_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    track_items(&txn, &fake, &["a", "b", "c", "d"]).await;
    fake.fail("c", 1, ErrorClass::Transient);
    fake.fail("a", 1, ErrorClass::Permanent);
    let report = txn.rollback("boom", fake.as_ref()).await.unwrap();
    // Every undo was attempted, in order, despite the failures.
    assert_eq!(fake.undone_ids(), ["d", "c", "b", "a"]);
    let failed: Vec<_> = report.failures().map(|e| e.resource.id.as_str()).collect();
    assert_eq!(failed, ["c", "a"]);
    assert!(matches!(
        &report.entries[1].result,
        UndoResult::Failed { message, class: fabrik_txn::FailureClass::Transient } if message.contains("undoing c")
    ));
    assert!(!report.is_complete());
    let stats = txn.stats();
    assert_eq!(stats.status, TxnStatus::RolledBack);
    assert_eq!(stats.rollback_errors.len(), 2);
    // What failed is still pending: the next start finds it and a re-run finishes the job.
    let incomplete = Journal::find_incomplete(dir.path()).unwrap().runs;
    assert_eq!(incomplete.len(), 1);
    assert_eq!(incomplete[0].status, RunStatus::RollbackIncomplete);
    assert_eq!(incomplete[0].pending_undos, 2);
    let again = Journal::recover(dir.path(), txn.run_id(), fake.as_ref())
        .await
        .unwrap();
    assert!(again.is_complete());
    assert!(fake.snapshot().is_empty());
    assert_eq!(fake.undone_ids()[4..], ["c", "a"]);
}

#[tokio::test]
async fn dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let (mut o, _) = options(dir.path());
    o.dry_run = true;
    let txn = Transaction::begin("plan", o).unwrap();
    track_items(&txn, &fake, &["a", "b"]).await;
    let report = txn.rollback("just looking", fake.as_ref()).await.unwrap();
    assert!(report.dry_run);
    assert!(
        report
            .entries
            .iter()
            .all(|e| e.result == UndoResult::DryRun)
    );
    assert_eq!(report.entries.len(), 2);
    assert!(fake.calls().is_empty());
    assert_eq!(fake.snapshot().len(), 2);
    // A dry run never needs recovery, and recovering it only logs.
    assert!(
        Journal::find_incomplete(dir.path())
            .unwrap()
            .runs
            .is_empty()
    );
    let r = Journal::recover(dir.path(), txn.run_id(), fake.as_ref())
        .await
        .unwrap();
    assert!(r.entries.iter().all(|e| e.result == UndoResult::DryRun));
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn no_cleanup_function() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    track_items(&txn, &fake, &["a"]).await;
    let git = ResourceRef::in_workspace(ResourceKind::GitConnection, "w", "w", None);
    txn.track_step(Step::without_undo(git.clone()))
        .await
        .unwrap();
    track_items(&txn, &fake, &["b"]).await;
    let report = txn.rollback("boom", fake.as_ref()).await.unwrap();
    let results: Vec<_> = report
        .entries
        .iter()
        .map(|e| (e.resource.id.as_str(), e.result.clone()))
        .collect();
    assert_eq!(
        results,
        [
            ("b", UndoResult::Done),
            ("w", UndoResult::NoUndo),
            ("a", UndoResult::Done)
        ]
    );
    assert_eq!(fake.undone_ids(), ["b", "a"]);
    assert!(report.is_complete());
}

#[tokio::test]
async fn get_stats() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let (o, clock) = options(dir.path());
    let txn = Transaction::begin("deploy dev", o).unwrap();
    let t0 = clock.system_now();
    track_items(&txn, &fake, &["a"]).await;
    clock.advance(Duration::from_secs(3));
    track_items(&txn, &fake, &["b"]).await;
    let active = txn.stats();
    assert_eq!(active.name, "deploy dev");
    assert_eq!(active.status, TxnStatus::Active);
    assert_eq!(active.duration, Duration::from_secs(3));
    assert_eq!(active.ended_at, None);
    assert_eq!(active.resources.len(), 2);
    assert_eq!(active.resources[1].tracked_at, t0 + Duration::from_secs(3));
    assert_eq!(active.journal_records, 2);
    clock.advance(Duration::from_secs(2));
    fake.fail("a", 1, ErrorClass::Permanent);
    txn.rollback("boom", fake.as_ref()).await.unwrap();
    clock.advance(Duration::from_secs(60));
    let done = txn.stats();
    assert_eq!(done.status, TxnStatus::RolledBack);
    assert_eq!(done.started_at, t0);
    assert_eq!(done.ended_at, Some(t0 + Duration::from_secs(5)));
    // Frozen at the end, not still counting.
    assert_eq!(done.duration, Duration::from_secs(5));
    assert_eq!(done.rollback_reason.as_deref(), Some("boom"));
    assert_eq!(done.rollback_errors.len(), 1);
    assert_eq!(done.rollback_errors[0].resource.id, "a");
    assert_eq!(done.run_id, txn.run_id());
    assert!(
        done.run_id.starts_with("20260101T000000Z-"),
        "{}",
        done.run_id
    );
    // rollbackStarted + undone(b) + undoFailed(a) + end
    assert_eq!(done.journal_records, 6);
    assert!(done.journal_fsyncs >= 1 && done.journal_fsyncs <= done.journal_records);
    let json = serde_json::to_value(&done).unwrap();
    assert_eq!(json["startedAt"], "2026-01-01T00:00:00Z");
    assert_eq!(json["status"], "rolled_back");
}

#[tokio::test]
async fn track_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    let (r, u) = item("a");
    fake.put("a", "x");
    txn.track_step(
        Step::new(r, u)
            .meta("layer", "bronze")
            .meta("client_secret", "hunter2-very-secret"),
    )
    .await
    .unwrap();
    let stats = txn.stats();
    assert_eq!(stats.resources[0].metadata["layer"], "bronze");
    assert_eq!(stats.resources[0].metadata["client_secret"], "***");
    // Read back from disk by another reader: kept, and the secret never reached the file.
    let text = std::fs::read_to_string(txn.journal_path()).unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    txn.commit().await.unwrap();
    let journal = Journal::open(dir.path(), txn.run_id()).unwrap();
    assert_eq!(journal.resources()[0].metadata["layer"], "bronze");
}

#[tokio::test]
async fn explicit_enable_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let (mut o, _) = options(dir.path());
    // Flag on, but the transaction itself asked for no rollback: the explicit choice wins.
    o.rollback_enabled = false;
    let txn = Transaction::begin("deploy", o.with_flags(&Flags(vec![Flag::Rollback]))).unwrap();
    track_items(&txn, &fake, &["a"]).await;
    let report = txn.rollback("boom", fake.as_ref()).await.unwrap();
    assert!(!report.rollback_enabled);
    assert!(fake.calls().is_empty());
    assert_eq!(txn.status(), TxnStatus::Failed);
    // And explicitly enabled with the flag on, it rolls back.
    let (mut o, _) = options(dir.path());
    o.rollback_enabled = true;
    let txn = Transaction::begin("deploy", o.with_flags(&Flags(vec![Flag::Rollback]))).unwrap();
    track_items(&txn, &fake, &["b"]).await;
    txn.rollback("boom", fake.as_ref()).await.unwrap();
    assert_eq!(fake.undone_ids(), ["b"]);
}

#[tokio::test]
async fn registry() {
    // The seed kept a module-level registry of active transactions; here the state directory
    // is the registry, visible across processes.
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let (o1, clock) = options(dir.path());
    let t1 = Transaction::begin("first", o1).unwrap();
    clock.advance(Duration::from_secs(1));
    let mut o2 = fabrik_txn::TxnOptions::new(dir.path());
    o2.clock = std::sync::Arc::new(clock.clone());
    let t2 = Transaction::begin("second", o2).unwrap();
    track_items(&t2, &fake, &["a"]).await;
    let runs = Journal::list_runs(dir.path()).unwrap().runs;
    let seen: Vec<_> = runs
        .iter()
        .map(|r| (r.name.as_str(), r.status, r.resources))
        .collect();
    assert_eq!(
        seen,
        [
            ("first", RunStatus::Active, 0),
            ("second", RunStatus::Active, 1)
        ]
    );
    // Active runs belong to a live process: not something to recover.
    assert!(
        Journal::find_incomplete(dir.path())
            .unwrap()
            .runs
            .is_empty()
    );
    t1.commit().await.unwrap();
    t2.rollback("boom", fake.as_ref()).await.unwrap();
    let statuses: Vec<_> = Journal::list_runs(dir.path())
        .unwrap()
        .runs
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [RunStatus::Committed, RunStatus::RolledBack]);
}
