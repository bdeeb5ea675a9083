//! Durability, crash recovery, torn lines, locks and the intent protocol.

use std::io::Write;
use std::sync::Arc;

use fabrik_core::ErrorClass;
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo};
use fabrik_txn::{
    Intent, IntentResult, Journal, JournalError, Record, RunStatus, Transaction, TxnError,
    UndoResult,
};

use crate::support::{Fake, TestUndo, crash_copy, item, options};

/// A run that created `ids` in the fake and then "crashed": only a copy of its journal is
/// left, in a fresh state dir. Returns (state dir, run id).
async fn crashed_run(fake: &Fake, ids: &[&str]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    for id in ids {
        let (r, u) = item(id);
        fake.put(id, "x");
        txn.track(r, u).await.unwrap();
    }
    let copy = crash_copy(txn.journal_path());
    let run_id = txn.run_id().to_owned();
    txn.commit().await.unwrap();
    (copy, run_id)
}

#[tokio::test]
async fn a_tracked_step_is_on_disk_when_track_returns() {
    let dir = tempfile::tempdir().unwrap();
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    let (r, u) = item("a");
    let step = txn.track(r.clone(), u.clone()).await.unwrap();
    // Read by a separate reader of the file while the transaction is live.
    let run = &Journal::list_runs(dir.path()).unwrap().runs[0];
    assert_eq!(
        (run.status, run.resources, run.pending_undos),
        (RunStatus::Active, 1, 1)
    );
    let text = std::fs::read_to_string(txn.journal_path()).unwrap();
    let last: Record = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert!(
        matches!(&last, Record::Track { seq, resource, undo: Some(undo), .. } if *seq == step && *resource == r && *undo == u),
        "{last:?}"
    );
}

#[tokio::test]
async fn header_names_the_run_config_and_tool() {
    let dir = tempfile::tempdir().unwrap();
    let txn = Transaction::begin("deploy dev", options(dir.path()).0).unwrap();
    let text = std::fs::read_to_string(txn.journal_path()).unwrap();
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(header["type"], "header");
    assert_eq!(header["runId"], txn.run_id());
    assert_eq!(header["name"], "deploy dev");
    assert_eq!(header["configHash"], "sha256:abc");
    assert_eq!(header["toolVersion"], env!("CARGO_PKG_VERSION"));
    assert_eq!(header["startedAt"], "2026-01-01T00:00:00Z");
    assert_eq!(header["format"], 1);
    txn.commit().await.unwrap();
}

#[tokio::test]
async fn a_crashed_run_is_found_and_recovered_idempotently() {
    let fake = Fake::new();
    let (dir, run_id) = crashed_run(&fake, &["a", "b", "c"]).await;
    let incomplete = Journal::find_incomplete(dir.path()).unwrap().runs;
    assert_eq!(incomplete.len(), 1);
    assert_eq!(incomplete[0].run_id, run_id);
    assert_eq!(incomplete[0].status, RunStatus::Interrupted);
    assert_eq!(incomplete[0].pending_undos, 3);

    let report = Journal::recover(dir.path(), &run_id, fake.as_ref())
        .await
        .unwrap();
    assert!(report.is_complete());
    assert_eq!(fake.undone_ids(), ["c", "b", "a"]);
    assert!(fake.snapshot().is_empty());
    assert!(
        Journal::find_incomplete(dir.path())
            .unwrap()
            .runs
            .is_empty()
    );

    // Running it again does nothing and says so.
    let again = Journal::recover(dir.path(), &run_id, fake.as_ref())
        .await
        .unwrap();
    assert!(
        again
            .entries
            .iter()
            .all(|e| e.result == UndoResult::AlreadyUndone)
    );
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn undoing_what_is_already_gone_is_success() {
    let fake = Fake::new();
    let (dir, run_id) = crashed_run(&fake, &["a", "b"]).await;
    // Someone deleted "b" by hand in the meantime.
    let before = fake.snapshot();
    assert_eq!(before.len(), 2);
    fabrik_core::resource::Undoer::undo(fake.as_ref(), &item("b").1)
        .await
        .unwrap();
    let report = Journal::recover(dir.path(), &run_id, fake.as_ref())
        .await
        .unwrap();
    assert_eq!(report.entries[0].result, UndoResult::AlreadyGone);
    assert_eq!(report.entries[1].result, UndoResult::Done);
    assert!(report.is_complete());
}

#[tokio::test]
async fn a_torn_last_line_is_reported_cut_off_and_recovery_proceeds() {
    let fake = Fake::new();
    let (dir, run_id) = crashed_run(&fake, &["a", "b"]).await;
    let path = dir.path().join(format!("{run_id}.jsonl"));
    let good_len = std::fs::metadata(&path).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(br#"{"type":"track","seq":3,"at":"2026-01-01T00:0"#)
        .unwrap();
    drop(f);

    let run = &Journal::list_runs(dir.path()).unwrap().runs[0];
    let torn = run.torn_tail.expect("torn tail reported");
    assert_eq!((torn.line, torn.offset), (4, good_len));
    assert_eq!(run.pending_undos, 2);

    let report = Journal::recover(dir.path(), &run_id, fake.as_ref())
        .await
        .unwrap();
    assert_eq!(report.torn_tail, Some(torn));
    assert!(report.is_complete());
    assert!(fake.snapshot().is_empty());
    // The tail was cut before appending: the file reads cleanly now.
    let after = &Journal::list_runs(dir.path()).unwrap().runs[0];
    assert_eq!(after.torn_tail, None);
    assert_eq!(after.status, RunStatus::RolledBack);
}

#[tokio::test]
async fn a_complete_last_record_without_its_newline_is_kept() {
    let fake = Fake::new();
    let (dir, run_id) = crashed_run(&fake, &["a"]).await;
    let path = dir.path().join(format!("{run_id}.jsonl"));
    fake.put("z", "x");
    let (r, u) = item("z");
    let rec = Record::Track {
        seq: 50,
        at: std::time::SystemTime::UNIX_EPOCH,
        intent: None,
        resource: r,
        undo: Some(u),
        metadata: Default::default(),
    };
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&serde_json::to_vec(&rec).unwrap()).unwrap();
    drop(f);
    let report = Journal::recover(dir.path(), &run_id, fake.as_ref())
        .await
        .unwrap();
    assert_eq!(report.torn_tail, None);
    assert_eq!(fake.undone_ids(), ["z", "a"]);
    // Recovery's records went on lines of their own.
    let j = Journal::open(dir.path(), &run_id).unwrap();
    assert!(matches!(j.records().last(), Some(Record::End { .. })));
}

#[tokio::test]
async fn a_damaged_line_before_the_last_is_corruption_with_its_line_number() {
    let fake = Fake::new();
    let (dir, run_id) = crashed_run(&fake, &["a", "b"]).await;
    let path = dir.path().join(format!("{run_id}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1] = "{\"type\":\"track\",garbage}";
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let err = Journal::open(dir.path(), &run_id).unwrap_err();
    assert!(
        matches!(err, JournalError::Corrupt { line: 2, .. }),
        "{err}"
    );
    let listing = Journal::list_runs(dir.path()).unwrap();
    assert!(listing.runs.is_empty());
    assert_eq!(listing.unreadable.len(), 1);
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn a_dropped_transaction_is_journaled_abandoned_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let run_id = {
        let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
        for id in ["a", "b"] {
            let (r, u) = item(id);
            fake.put(id, "x");
            txn.track(r, u).await.unwrap();
        }
        txn.run_id().to_owned()
        // Dropped here: no commit, no rollback (an early return or a panic in the caller).
    };
    let incomplete = Journal::find_incomplete(dir.path()).unwrap().runs;
    assert_eq!(incomplete.len(), 1);
    assert_eq!(incomplete[0].status, RunStatus::Abandoned);
    Journal::recover(dir.path(), &run_id, fake.as_ref())
        .await
        .unwrap();
    assert!(fake.snapshot().is_empty());
    assert_eq!(
        Journal::list_runs(dir.path()).unwrap().runs[0].status,
        RunStatus::RolledBack
    );
}

#[tokio::test]
async fn one_writer_per_journal() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    // A second "process" cannot open or recover a live run.
    let err = Journal::open(dir.path(), txn.run_id()).unwrap_err();
    assert!(matches!(err, JournalError::Locked { .. }), "{err}");
    let err = Journal::recover(dir.path(), txn.run_id(), fake.as_ref())
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::Locked { .. }), "{err}");
    let run_id = txn.run_id().to_owned();
    drop(txn);
    // Two recoveries of one crashed run: the second is refused while the first holds it.
    let first = Journal::open(dir.path(), &run_id).unwrap();
    let second = Journal::open(dir.path(), &run_id).unwrap_err();
    assert!(matches!(second, JournalError::Locked { .. }), "{second}");
    first
        .rollback("recovery", fake.as_ref(), None)
        .await
        .unwrap();
    // Released when the first finished.
    Journal::open(dir.path(), &run_id).unwrap();
}

#[tokio::test]
async fn bad_input_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let err = Journal::recover(dir.path(), "../../etc/passwd", fake.as_ref())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid run id"), "{err}");
    let err = Journal::open(dir.path(), "20260101T000000Z-deadbeef").unwrap_err();
    assert!(matches!(err, JournalError::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("no run 20260101T000000Z-deadbeef"),
        "{err}"
    );
    let err = Transaction::begin("  ", options(dir.path()).0).unwrap_err();
    assert!(matches!(err, TxnError::InvalidInput(_)), "{err}");
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    let (r, u) = item("a");
    let err = txn
        .complete_intent(fabrik_txn::IntentId(99), r, u)
        .await
        .unwrap_err();
    assert!(matches!(err, TxnError::UnknownIntent(99)), "{err}");
    // A missing state directory simply has no runs.
    let listing = Journal::list_runs(dir.path().join("nope")).unwrap();
    assert!(listing.runs.is_empty() && listing.unreadable.is_empty());
    txn.commit().await.unwrap();
}

fn lakehouse_intent(name: &str) -> Intent {
    Intent::create(ResourceKind::Lakehouse, Some("w".into()), name)
}

#[tokio::test]
async fn an_intent_is_undone_in_its_place_once_its_outcome_is_known() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    // Intent for "lh" first, then another resource tracked while the create was in flight.
    let intent = txn
        .intend(lakehouse_intent("BRONZE_x_Lakehouse"))
        .await
        .unwrap();
    let (r, u) = item("other");
    fake.put("other", "x");
    txn.track(r, u).await.unwrap();
    fake.put("lh", "BRONZE_x_Lakehouse");
    let (lr, lu) = item("lh");
    txn.complete_intent(intent, lr.clone(), lu.clone())
        .await
        .unwrap();
    // An outcome can be recorded once only.
    let err = txn.complete_intent(intent, lr, lu).await.unwrap_err();
    assert!(matches!(err, TxnError::UnknownIntent(_)), "{err}");
    // A refused create closes its intent: nothing to report.
    let refused = txn.intend(lakehouse_intent("refused")).await.unwrap();
    txn.fail_intent(refused, "400 InvalidName").await.unwrap();
    let report = txn.rollback("boom", fake.as_ref()).await.unwrap();
    // LIFO by when each step began: the intent came before "other".
    assert_eq!(fake.undone_ids(), ["other", "lh"]);
    assert!(report.intents.is_empty());
    assert!(report.is_complete());
}

#[tokio::test]
async fn a_create_whose_id_was_never_recorded_is_reported_then_resolved_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    let (r, u) = item("a");
    fake.put("a", "x");
    txn.track(r, u).await.unwrap();
    txn.intend(lakehouse_intent("SILVER_y_Lakehouse"))
        .await
        .unwrap();
    // The server applied the create, then we crashed before learning its id.
    fake.put("orphan-id", "SILVER_y_Lakehouse");
    let copy = crash_copy(txn.journal_path());
    let run_id = txn.run_id().to_owned();
    txn.commit().await.unwrap();

    let run = &Journal::find_incomplete(copy.path()).unwrap().runs[0];
    assert_eq!(run.unresolved_intents, 1);
    // Without a resolver: what is known is undone, the intent is reported, and the run
    // stays on the list of things to look at.
    let report = Journal::recover(copy.path(), &run_id, fake.as_ref())
        .await
        .unwrap();
    assert_eq!(report.intents.len(), 1);
    assert_eq!(report.intents[0].result, IntentResult::Unresolved);
    assert_eq!(report.intents[0].intent.display_name, "SILVER_y_Lakehouse");
    assert!(!report.is_complete());
    let run = &Journal::find_incomplete(copy.path()).unwrap().runs[0];
    assert_eq!(run.status, RunStatus::RollbackIncomplete);
    // With a resolver, it is found by name, journaled and undone.
    let report = Journal::open(copy.path(), &run_id)
        .unwrap()
        .rollback("recovery", fake.as_ref(), Some(fake.as_ref()))
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.entries[0].resource.id, "orphan-id");
    assert_eq!(report.entries[0].result, UndoResult::Done);
    assert!(fake.snapshot().is_empty());
    assert!(
        Journal::find_incomplete(copy.path())
            .unwrap()
            .runs
            .is_empty()
    );
    let j = Journal::open(copy.path(), &run_id).unwrap();
    assert!(j.records().iter().any(|r| matches!(
        r,
        Record::Track {
            intent: Some(_),
            ..
        }
    )));
}

#[tokio::test]
async fn an_intent_the_resolver_cannot_find_never_happened() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    txn.intend(lakehouse_intent("never_created")).await.unwrap();
    let report = txn
        .rollback_with("boom", fake.as_ref(), Some(fake.as_ref()))
        .await
        .unwrap();
    assert_eq!(report.intents[0].result, IntentResult::NotFound);
    assert!(report.is_complete());
    assert_eq!(
        Journal::list_runs(dir.path()).unwrap().runs[0].status,
        RunStatus::RolledBack
    );
}

/// An undoer that stops forever on its `stop_at`-th call, to kill a recovery mid-way.
#[derive(Debug)]
struct Stalls {
    inner: Arc<Fake>,
    calls: std::sync::atomic::AtomicUsize,
    stop_at: usize,
    reached: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl fabrik_core::resource::Undoer for Stalls {
    async fn undo(
        &self,
        undo: &Undo,
    ) -> Result<fabrik_core::resource::UndoOutcome, fabrik_core::resource::UndoError> {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if n == self.stop_at {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.undo(undo).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_killed_mid_way_resumes_where_it_stopped() {
    let fake = Fake::new();
    let ids: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (dir, run_id) = crashed_run(&fake, &refs).await;
    let stalls = Arc::new(Stalls {
        inner: fake.clone(),
        calls: Default::default(),
        stop_at: 5,
        reached: Default::default(),
    });
    let task = {
        let (dir, run_id, stalls) = (dir.path().to_owned(), run_id.clone(), stalls.clone());
        tokio::spawn(async move { Journal::recover(&dir, &run_id, stalls.as_ref()).await })
    };
    stalls.reached.notified().await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    // Four undone and journaled; the fifth was in flight.
    assert_eq!(fake.snapshot().len(), 6);
    let run = &Journal::find_incomplete(dir.path()).unwrap().runs[0];
    assert_eq!((run.status, run.pending_undos), (RunStatus::Interrupted, 6));

    let report = Journal::recover(dir.path(), &run_id, fake.as_ref())
        .await
        .unwrap();
    let already = report
        .entries
        .iter()
        .filter(|e| e.result == UndoResult::AlreadyUndone)
        .count();
    assert_eq!(already, 4);
    assert!(report.is_complete());
    assert!(fake.snapshot().is_empty());
    // Each resource was undone exactly once.
    assert_eq!(
        fake.undone_ids(),
        ids.iter().rev().cloned().collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn secrets_in_metadata_never_reach_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    let r = ResourceRef::workspace("w", "sales");
    txn.track_step(
        fabrik_txn::Step::new(
            r,
            TestUndo::DeleteWorkspace {
                workspace_id: "w".into(),
            }
            .into(),
        )
        .meta("sasToken", "sv=2024&sig=TOPSECRET")
        .meta("Password", "TOPSECRET")
        .meta("apiKey", "TOPSECRET"),
    )
    .await
    .unwrap();
    txn.commit().await.unwrap();
    let text = std::fs::read_to_string(txn.journal_path()).unwrap();
    assert!(!text.contains("TOPSECRET"), "{text}");
    assert_eq!(text.matches("\"***\"").count(), 3);
}

#[tokio::test]
async fn a_transient_failure_is_retried_by_the_next_recovery() {
    let fake = Fake::new();
    let (dir, run_id) = crashed_run(&fake, &["a"]).await;
    fake.fail("a", 1, ErrorClass::Throttled);
    let r1 = Journal::recover(dir.path(), &run_id, fake.as_ref())
        .await
        .unwrap();
    assert!(matches!(r1.entries[0].result, UndoResult::Failed { .. }));
    let r2 = Journal::recover(dir.path(), &run_id, fake.as_ref())
        .await
        .unwrap();
    assert_eq!(r2.entries[0].result, UndoResult::Done);
    assert!(fake.snapshot().is_empty());
}

#[tokio::test]
async fn a_crashed_run_that_tracked_nothing_needs_no_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let txn = Transaction::begin("deploy", options(dir.path()).0).unwrap();
    let copy = crash_copy(txn.journal_path());
    txn.commit().await.unwrap();
    let runs = Journal::list_runs(copy.path()).unwrap().runs;
    assert_eq!(runs[0].status, RunStatus::Interrupted);
    assert!(!runs[0].needs_recovery());
    assert!(
        Journal::find_incomplete(copy.path())
            .unwrap()
            .runs
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_rollback_cancelled_mid_way_is_found_and_finished_by_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let txn = Arc::new(Transaction::begin("deploy", options(dir.path()).0).unwrap());
    for i in 0..6 {
        let id = format!("r{i}");
        let (r, u) = item(&id);
        fake.put(&id, "x");
        txn.track(r, u).await.unwrap();
    }
    let stalls = Arc::new(Stalls {
        inner: fake.clone(),
        calls: Default::default(),
        stop_at: 3,
        reached: Default::default(),
    });
    let task = {
        let (txn, stalls) = (txn.clone(), stalls.clone());
        tokio::spawn(async move { txn.rollback("boom", stalls.as_ref()).await })
    };
    stalls.reached.notified().await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let run_id = txn.run_id().to_owned();
    // The last handle goes away mid-rollback: no end record is written.
    drop(Arc::into_inner(txn).expect("the aborted task released its handle"));
    let run = &Journal::find_incomplete(dir.path()).unwrap().runs[0];
    assert_eq!((run.status, run.pending_undos), (RunStatus::Interrupted, 4));
    let report = Journal::recover(dir.path(), &run_id, fake.as_ref())
        .await
        .unwrap();
    assert!(report.is_complete());
    assert!(fake.snapshot().is_empty());
    assert_eq!(fake.undone_ids(), ["r5", "r4", "r3", "r2", "r1", "r0"]);
}
