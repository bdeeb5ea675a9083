//! Many tasks tracking into one transaction.

use std::sync::Arc;

use fabrik_txn::{Journal, Record, Transaction};

use crate::support::{Fake, item, options};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_track_into_one_transaction_and_roll_back_in_reverse_journal_order() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let txn = Arc::new(Transaction::begin("deploy", options(dir.path()).0).unwrap());
    let mut tasks = Vec::new();
    for t in 0..50 {
        let (txn, fake) = (txn.clone(), fake.clone());
        tasks.push(tokio::spawn(async move {
            let mut steps = Vec::new();
            for i in 0..8 {
                let id = format!("t{t}-{i}");
                let (r, u) = item(&id);
                fake.put(&id, "x");
                steps.push(txn.track(r, u).await.unwrap());
            }
            steps
        }));
    }
    let mut steps = Vec::new();
    for t in tasks {
        let mine = t.await.unwrap();
        // Each task sees its own steps in the order it tracked them.
        assert!(mine.windows(2).all(|w| w[0] < w[1]));
        steps.extend(mine);
    }
    steps.sort_unstable();
    steps.dedup();
    assert_eq!(steps.len(), 400);
    let stats = txn.stats();
    assert_eq!(stats.resources.len(), 400);
    assert_eq!(stats.journal_records, 400);
    assert!(stats.journal_fsyncs >= 1 && stats.journal_fsyncs <= 400);

    // The file holds every step once, in strictly increasing seq order.
    let journal_order: Vec<String> = std::fs::read_to_string(txn.journal_path())
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| match serde_json::from_str::<Record>(l).unwrap() {
            Record::Track { resource, .. } => resource.id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(journal_order.len(), 400);

    let report = txn.rollback("boom", fake.as_ref()).await.unwrap();
    assert!(report.is_complete());
    let mut expected = journal_order;
    expected.reverse();
    assert_eq!(fake.undone_ids(), expected);
    assert!(fake.snapshot().is_empty());
    assert_eq!(
        Journal::list_runs(dir.path()).unwrap().runs[0].status,
        fabrik_txn::RunStatus::RolledBack
    );
}
