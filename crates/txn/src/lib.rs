//! Deployment transactions with a durable write-ahead journal that roll back, even after a crash.
//!
//! A [`Transaction`] records every resource a run creates or changes, with how to undo it
//! (core's [`Undo`](fabrik_core::resource::Undo): a kind's name and its payload, data rather than a closure), in a journal
//! file that is fsync'd before each step is reported done. On failure, [`Transaction::rollback`]
//! undoes the steps last-in-first-out through an [`Undoer`](fabrik_core::resource::Undoer),
//! continuing past failures and reporting all of them. If the process dies instead, the next
//! start finds the run with [`Journal::find_incomplete`] and undoes it with
//! [`Journal::recover`], idempotently and re-runnably.
//!
//! With a state key ([`TxnOptions::with_keys`]), what a journal records of values (undo
//! records, metadata, messages) is encrypted before it reaches the store; run listings work
//! without the key and rollback needs it ([`Journal::with_keys`]). See [`seal`].
//!
//! ```text
//! .fabrik/runs/20260101T000000Z-1a2b3c4d.jsonl   journal: header line + JSON-lines records
//! .fabrik/runs/20260101T000000Z-1a2b3c4d.lock    lock: one writer per journal
//! ```
//!
//! The record types and the intent/outcome protocol for creates are described in [`record`].
//!
//! ```
//! # use fabrik_core::resource::*;
//! # use fabrik_txn::*;
//! # #[derive(Debug)] struct Client;
//! # #[async_trait::async_trait] impl Undoer for Client {
//! #     async fn undo(&self, _: &Undo) -> Result<UndoOutcome, UndoError> { Ok(UndoOutcome::Done) }
//! # }
//! # async fn create_workspace(_: &str) -> Result<String, std::io::Error> { Ok("ws-1".into()) }
//! # async fn create_lakehouse(_: &str) -> Result<String, std::io::Error> { Err(std::io::Error::other("409")) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir()?;
//! let client = Client; // the composer's undoer (in the CLI, the kind registry's)
//! // On start: roll back whatever a crashed run left behind.
//! for run in Journal::find_incomplete(dir.path())?.runs {
//!     Journal::recover(dir.path(), &run.run_id, &client).await?;
//! }
//! let txn = Transaction::begin("deploy dev", TxnOptions::new(dir.path()))?;
//! // A create: journal the intent, send it, journal the outcome with its undo.
//! let intent = txn.intend(Intent::create(ResourceKind::Workspace, None, "sales-dev")).await?;
//! let ws = create_workspace("sales-dev").await?;
//! txn.complete_intent(intent, ResourceRef::workspace(&ws, "sales-dev"),
//!     Undo::new("workspace", &serde_json::json!({"op": "delete", "workspaceId": ws}))).await?;
//! match create_lakehouse("BRONZE_Sales_Lakehouse").await {
//!     Ok(_) => txn.commit().await?,
//!     Err(e) => {
//!         let report = txn.rollback(&e.to_string(), &client).await?;
//!         assert!(report.is_complete()); // the workspace was deleted
//!     }
//! }
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

// The README's examples compile and run as doctests, so the crate's front page cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod error;
mod fs;
mod journal;
pub mod record;
mod rollback;
pub mod seal;
mod txn;
mod writer;

pub use error::{JournalError, TxnError};
pub use fs::{DEFAULT_STATE_DIR, LocalDirStore};
pub use journal::{Journal, RunListing, RunStatus, RunSummary, TornTail};
pub use record::{EndStatus, FailureClass, Header, Intent, Record};
pub use rollback::{
    IntentEntry, IntentResolver, IntentResult, RollbackReport, TrackedResource, UndoEntry,
    UndoResult,
};
pub use seal::{Encryption, KdfParams, Keyring};
pub use txn::{
    IntentId, ScopeError, Step, Transaction, TxnOptions, TxnStats, TxnStatus, new_run_id,
};
