//! Journals in blobs: durable appends, one writer at a time, recovery from another machine,
//! and an outage in the middle of a run.

use std::sync::{Arc, OnceLock};

use fabrik_core::resource::{ResourceRef, Undo};
use fabrik_core::time::ManualClock;
use fabrik_core::{DeploymentLocks, JournalStore, StateError};
use fabrik_state_azure::azurite::Azurite;
use fabrik_state_azure::{AzureBlobStore, StateUrl};
use fabrik_txn::{Journal, JournalError, RunStatus, Transaction, TxnError, TxnOptions};

use crate::support::{Recorder, container, options, store_on};

/// One in-memory Azurite for the tests that do not stop it.
pub(crate) fn shared() -> &'static Azurite {
    static AZURITE: OnceLock<Azurite> = OnceLock::new();
    AZURITE.get_or_init(Azurite::start)
}

/// The SAS's signature appears in `s` in no form (as sent, percent-decoded, or in a query
/// the SDK re-encoded); a `sig=` the SDK's own logging redacted is fine.
pub(crate) fn assert_no_sas(s: &str) {
    let sas = Azurite::sas();
    let sent = sas.split("sig=").nth(1).unwrap();
    let decoded = sent
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    for form in [sent, decoded.as_str(), &decoded[..decoded.len().min(16)]] {
        assert!(!s.contains(form), "the SAS signature leaked: {s}");
    }
}

fn ws(i: u32) -> (ResourceRef, Undo) {
    (
        ResourceRef::workspace(format!("ws-{i}"), format!("sales-{i}")),
        Undo::new(
            "workspace",
            &serde_json::json!({"workspaceId": format!("ws-{i}")}),
        ),
    )
}

fn begin(store: &AzureBlobStore) -> Transaction {
    let opts = TxnOptions::new("unused-local-dir").with_store(Arc::new(store.clone()));
    Transaction::begin("deploy dev", opts).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_journaled_in_the_container_and_listed_with_its_status() {
    let clock = Arc::new(ManualClock::new());
    let name = container();
    let store = store_on(shared(), &name, &clock);
    let txn = begin(&store);
    for i in 0..3 {
        let (r, u) = ws(i);
        txn.track(r, u).await.unwrap();
    }
    // Durable means in the service: a second client (another machine) reads every record.
    let other = store_on(shared(), &name, &clock);
    let text = String::from_utf8(other.read(txn.run_id()).await.unwrap()).unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.lines().next().unwrap().contains("\"type\":\"header\""));
    let runs = Journal::list_runs_in(&other).await.unwrap().runs;
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].status,
        RunStatus::Active,
        "the writer holds the journal's lease"
    );
    assert_eq!(runs[0].resources, 3);
    assert!(
        runs[0]
            .path
            .to_str()
            .unwrap()
            .ends_with(&format!("/runs/{}.jsonl", txn.run_id())),
        "{:?}",
        runs[0].path
    );
    txn.commit().await.unwrap();
    let runs = Journal::list_runs_in(&other).await.unwrap().runs;
    assert_eq!(runs[0].status, RunStatus::Committed);
    // The lease was released with the commit: a committed run opens (and refuses rollback).
    let j = Journal::open_in(&other, txn.run_id()).await.unwrap();
    let err = j
        .rollback("no", &Recorder::default(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::Committed { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_cannot_be_opened_by_another_process() {
    let clock = Arc::new(ManualClock::new());
    let name = container();
    let store = store_on(shared(), &name, &clock);
    let txn = begin(&store);
    let other = store_on(shared(), &name, &clock);
    let err = Journal::open_in(&other, txn.run_id()).await.unwrap_err();
    assert!(matches!(err, JournalError::Locked { .. }), "{err}");
    let err = Journal::open_in(&other, "no-such-run").await.unwrap_err();
    assert!(matches!(err, JournalError::NotFound { .. }), "{err}");
    txn.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_whose_lease_was_broken_cannot_append_after_the_new_writer() {
    let clock = Arc::new(ManualClock::new());
    let name = container();
    let a_store = store_on(shared(), &name, &clock);
    let a = begin(&a_store);
    let (r, u) = ws(1);
    a.track(r, u).await.unwrap();
    // Another machine declares A dead (`fabrik unlock`) and takes the journal over.
    let b_store = store_on(shared(), &name, &clock);
    b_store.force_unlock(a.run_id()).await.unwrap();
    let b = Journal::open_in(&b_store, a.run_id()).await.unwrap();
    let undoer = Recorder::default();
    let report = b.rollback("taken over", &undoer, None).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    // A is still running: its next step must fail, not land after B's records.
    let (r, u) = ws(2);
    let err = a.track(r, u).await.unwrap_err();
    let TxnError::Journal(JournalError::Store(StateError::Lost { reason, .. })) = &err else {
        panic!("expected a lost journal, got {err:?}");
    };
    assert!(reason.contains("lease"), "{reason}");
    let text = String::from_utf8(b_store.read(a.run_id()).await.unwrap()).unwrap();
    assert!(!text.contains("ws-2"), "A's step landed after B's: {text}");
    assert!(
        text.trim_end()
            .ends_with("\"status\":\"rolledBack\",\"reason\":\"taken over\"}"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_died_is_rolled_back_from_another_machine_with_only_the_url() {
    let clock = Arc::new(ManualClock::new());
    let name = container();
    let url = shared().url_with_sas(&name);
    let run_id = {
        let first = AzureBlobStore::new(
            StateUrl::parse(&url).unwrap(),
            options(clock.clone(), clock.clone()),
        )
        .unwrap();
        let txn = begin(&first);
        for i in 0..3 {
            let (r, u) = ws(i);
            txn.track(r, u).await.unwrap();
        }
        let id = txn.run_id().to_owned();
        // The machine dies: no end record, no release; its lease would expire on its own.
        std::mem::forget(txn);
        id
    };
    let second = AzureBlobStore::new(
        StateUrl::parse(&url).unwrap(),
        options(clock.clone(), clock.clone()),
    )
    .unwrap();
    second.force_unlock(&run_id).await.unwrap();
    let incomplete = Journal::find_incomplete_in(&second).await.unwrap().runs;
    assert_eq!(incomplete.len(), 1);
    assert_eq!(incomplete[0].status, RunStatus::Interrupted);
    let undoer = Recorder::default();
    let report = Journal::open_in(&second, &run_id)
        .await
        .unwrap()
        .rollback("recovery", &undoer, None)
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    let undone: Vec<_> = undoer.done.lock().unwrap().clone();
    assert_eq!(undone.len(), 3);
    assert_eq!(
        undone[0],
        Undo::new("workspace", &serde_json::json!({"workspaceId": "ws-2"})),
        "last in, first out"
    );
    let runs = Journal::list_runs_in(&second).await.unwrap().runs;
    assert_eq!(runs[0].status, RunStatus::RolledBack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_stops_the_run_and_rollback_completes_once_the_service_is_back() {
    let mut azurite = Azurite::start_persistent();
    let clock = Arc::new(ManualClock::new());
    let name = container();
    let store = store_on(&azurite, &name, &clock);
    let txn = begin(&store);
    let (r, u) = ws(1);
    txn.track(r, u).await.unwrap();
    azurite.stop();
    let (r, u) = ws(2);
    let err = txn.track(r, u).await.unwrap_err().to_string();
    assert!(err.contains("append failed"), "{err}");
    assert_no_sas(&err);
    // The run stops: nothing more is accepted, even once the service is back.
    azurite.restart();
    let (r, u) = ws(3);
    let err = txn.track(r, u).await.unwrap_err().to_string();
    assert!(err.contains("stopped after an earlier failure"), "{err}");
    let report = txn
        .rollback("journal unavailable", &Recorder::default())
        .await
        .unwrap();
    assert!(report.journal_error.is_some());
    drop(txn);
    // Another process finishes the job from the journal in the container.
    let later = store_on(&azurite, &name, &clock);
    let all = Journal::list_runs_in(&later).await.unwrap();
    let runs = Journal::find_incomplete_in(&later).await.unwrap().runs;
    assert_eq!(runs.len(), 1, "{all:?}");
    let undoer = Recorder::default();
    let report = Journal::open_in(&later, &runs[0].run_id)
        .await
        .unwrap()
        .rollback("recovery", &undoer, None)
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(
        undoer.done.lock().unwrap().len(),
        1,
        "only ws-1 was journaled"
    );
    let text = String::from_utf8(later.read(&runs[0].run_id).await.unwrap()).unwrap();
    assert_no_sas(&text);
}
