//! Errors of transactions and journals.
//!
//! I/O errors are wrapped in `Arc` so one failed fsync can be reported to every task whose
//! record was in the failed group commit.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::TxnStatus;

/// Why a journal could not be read, written or locked.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// A file operation failed.
    #[error("journal {}: {op} failed: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("create", "append", "fsync", …).
        op: &'static str,
        /// The cause.
        source: Arc<io::Error>,
    },
    /// Another transaction or recovery (in this or another process) holds the run's lock.
    #[error("run {run_id} is in use by another process (lock file {})", path.display())]
    Locked {
        /// The run.
        run_id: String,
        /// Its lock file.
        path: PathBuf,
    },
    /// A line other than the last could not be read: the file was damaged or edited.
    #[error("journal {} line {line}: {reason}", path.display())]
    Corrupt {
        /// The journal.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// There is no journal for this run.
    #[error("no run {run_id} in {}", dir.display())]
    NotFound {
        /// The run asked for.
        run_id: String,
        /// The state directory looked in.
        dir: PathBuf,
    },
    /// A run id that could not have been made by fabrik (and might escape the state directory).
    #[error("invalid run id {0:?}: expected letters, digits, '-' and '_' only")]
    InvalidRunId(String),
    /// The run was committed: its resources are the deployment, not debris.
    #[error("run {run_id} was committed; refusing to roll it back")]
    Committed {
        /// The run.
        run_id: String,
    },
    /// The state store failed or refused (a remote store's errors; never a credential).
    #[error(transparent)]
    Store(fabrik_core::StateError),
    /// The run's journal is encrypted and no state key was given: what it changed, and how
    /// to undo it, cannot be read.
    #[error(
        "run {run_id}'s journal is encrypted: rolling it back needs the state key it was written with"
    )]
    KeyRequired {
        /// The run.
        run_id: String,
    },
    /// None of the state keys given opens the run's journal.
    #[error(
        "run {run_id}'s journal is encrypted with another key: none of the {tried} state key(s) given opens it"
    )]
    WrongKey {
        /// The run.
        run_id: String,
        /// How many keys were tried.
        tried: usize,
    },
    /// The journal's encryption could not be used (an unknown cipher, absurd KDF costs, no
    /// randomness from the operating system).
    #[error("run {run_id}'s journal encryption: {reason}")]
    Encryption {
        /// The run.
        run_id: String,
        /// What is wrong (never a key).
        reason: String,
    },
    /// The journal writer stopped after an earlier failure (its file state is unknown).
    #[error("journal writer for {} stopped after an earlier failure: {reason}", path.display())]
    WriterFailed {
        /// The journal.
        path: PathBuf,
        /// The first failure.
        reason: String,
    },
}

impl From<fabrik_core::StateError> for JournalError {
    fn from(e: fabrik_core::StateError) -> Self {
        use fabrik_core::StateError as S;
        match e {
            S::Io {
                location,
                op,
                source,
            } => JournalError::Io {
                path: location.into(),
                op,
                source,
            },
            S::Locked { run_id, location } => JournalError::Locked {
                run_id,
                path: location.into(),
            },
            S::NotFound { run_id, location } => JournalError::NotFound {
                run_id,
                dir: location.into(),
            },
            other => JournalError::Store(other),
        }
    }
}

impl JournalError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        JournalError::Io {
            path: path.into(),
            op,
            source: Arc::new(source),
        }
    }
}

/// Why a transaction operation was refused or failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TxnError {
    /// The transaction was already committed, rolled back or is rolling back.
    #[error("transaction '{name}' is {status}, not active")]
    NotActive {
        /// The transaction's name.
        name: String,
        /// Its status.
        status: TxnStatus,
    },
    /// The intent was never recorded in this transaction, or already has an outcome.
    #[error("intent {0} is unknown or already resolved")]
    UnknownIntent(u64),
    /// The caller passed something unusable.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The journal failed; the step is not durable.
    #[error(transparent)]
    Journal(#[from] JournalError),
}
