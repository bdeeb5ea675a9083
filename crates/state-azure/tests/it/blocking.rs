//! The sync journal API over this store, called from inside a tokio task.

use std::sync::Arc;

use fabrik_core::JournalStore;
use fabrik_core::time::ManualClock;

/// txn's sync API (`Transaction::begin`, `Journal::open`, the writer's appends) drives the
/// store's futures with `futures::executor::block_on`. On a tokio thread that once ran into
/// tokio's cooperative budget after ~128 calls and spun forever; 300 calls must just work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_calls_from_a_tokio_task_do_not_spin() {
    let clock = Arc::new(ManualClock::new());
    let store = crate::support::store_on(
        crate::journal::shared(),
        &crate::support::container(),
        &clock,
    );
    let mut app = futures::executor::block_on(store.create("r1", b"{}\n")).unwrap();
    for _ in 0..300 {
        futures::executor::block_on(app.append(b"{\"x\":1}\n")).unwrap();
    }
    let bytes = futures::executor::block_on(store.read("r1")).unwrap();
    assert_eq!(bytes.len(), 3 + 300 * 8);
}
