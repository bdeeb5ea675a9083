//! The live deployment transaction: track what a run creates and changes, then commit or
//! roll back.
//!
//! Every step is journaled and fsync'd before `track` returns (write-ahead), so a crash at any
//! point leaves a journal that [`Journal::recover`](crate::Journal::recover) can roll back.
//!
//! Dropping a transaction that is still active cannot run async undos, so `Drop` journals an
//! `end` record with status `abandoned` (blocking for at most one fsync) and releases the
//! run's lock; [`Journal::find_incomplete`](crate::Journal::find_incomplete) then lists the
//! run and [`Journal::recover`](crate::Journal::recover) undoes it. If the process dies
//! instead, the run has no `end` record and is listed as interrupted.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use fabrik_core::resource::{ResourceRef, Undo, Undoer};
use fabrik_core::{Clock, Flag, FlagSource, JournalStore, SystemClock};
use serde::Serialize;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::fs::{DEFAULT_STATE_DIR, LocalDirStore};
use crate::record::{
    ENCRYPTED_FORMAT_VERSION, EndStatus, FORMAT_VERSION, Header, Intent, Record, redact,
};
use crate::rollback::{
    Exec, IntentResolver, RollbackReport, Steps, TrackedResource, UndoEntry, execute,
};
use crate::seal::Keyring;
use crate::writer::{JournalWriter, Pending};
use crate::{JournalError, TxnError};

/// How to run a transaction.
#[derive(Debug, Clone)]
pub struct TxnOptions {
    /// Where journals live (default [`DEFAULT_STATE_DIR`]); created if missing.
    pub state_dir: PathBuf,
    /// Hash of the configuration being deployed, recorded in the header. Never the config
    /// itself: it may hold secrets.
    pub config_hash: String,
    /// Only pretend: rollback logs each undo instead of performing it.
    pub dry_run: bool,
    /// Whether a rollback undoes anything (the seed's `enable_rollback`); when off, a rollback
    /// marks the run failed and leaves everything in place. See [`TxnOptions::with_flags`].
    pub rollback_enabled: bool,
    /// Time source for timestamps and durations.
    pub clock: Arc<dyn Clock>,
    /// Where journals go instead of `state_dir` (a shared store such as fabrik-state-azure's);
    /// `None` is the local directory.
    pub store: Option<Arc<dyn JournalStore>>,
    /// The run id to use (see [`new_run_id`]), so a caller can take locks in its name before
    /// the run begins; `None` makes a fresh one.
    pub run_id: Option<String>,
    /// The state key: with a current passphrase, the journal is encrypted at rest (see
    /// [`crate::seal`]); without, it is written in clear.
    pub keys: Keyring,
}

impl Default for TxnOptions {
    fn default() -> Self {
        Self::new(DEFAULT_STATE_DIR)
    }
}

impl TxnOptions {
    /// Journals in `state_dir`, real run, rollback enabled, system clock, empty config hash.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            config_hash: String::new(),
            dry_run: false,
            rollback_enabled: true,
            clock: Arc::new(SystemClock),
            store: None,
            run_id: None,
            keys: Keyring::none(),
        }
    }

    /// Encrypts the journal with `keys`' current passphrase (if it has one).
    pub fn with_keys(mut self, keys: Keyring) -> Self {
        self.keys = keys;
        self
    }

    /// Journals in `store` instead of the local directory.
    pub fn with_store(mut self, store: Arc<dyn JournalStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Seed parity: rollback is effective only when the `rollback` flag
    /// (`FEATURE_USE_ROLLBACK`) is on as well as [`rollback_enabled`](Self::rollback_enabled).
    pub fn with_flags(mut self, flags: &dyn FlagSource) -> Self {
        self.rollback_enabled &= flags.is_enabled(Flag::Rollback);
        self
    }
}

/// Where a live transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TxnStatus {
    /// Accepting steps.
    Active,
    /// A rollback is running.
    RollingBack,
    /// Committed.
    Committed,
    /// Rolled back (see the report for failures).
    RolledBack,
    /// Rolled back with rollback disabled: nothing undone.
    Failed,
    /// Dropped while active; the journal says so and recovery will undo it.
    Abandoned,
}

impl fmt::Display for TxnStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TxnStatus::Active => "active",
            TxnStatus::RollingBack => "rolling back",
            TxnStatus::Committed => "committed",
            TxnStatus::RolledBack => "rolled back",
            TxnStatus::Failed => "failed",
            TxnStatus::Abandoned => "abandoned",
        })
    }
}

/// One step to track: a resource, how to undo it, and notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The resource.
    pub resource: ResourceRef,
    /// How to undo it; `None` means rollback skips it with a warning.
    pub undo: Option<Undo>,
    /// Notes for humans (secret-looking keys are redacted before journaling).
    pub metadata: BTreeMap<String, String>,
}

impl Step {
    /// A resource with its undo.
    pub fn new(resource: ResourceRef, undo: Undo) -> Self {
        Self {
            resource,
            undo: Some(undo),
            metadata: BTreeMap::new(),
        }
    }

    /// A resource that cannot be undone (recorded for the report, skipped by rollback).
    pub fn without_undo(resource: ResourceRef) -> Self {
        Self {
            resource,
            undo: None,
            metadata: BTreeMap::new(),
        }
    }

    /// Adds a note.
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// Names an intent recorded by [`Transaction::intend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct IntentId(pub u64);

/// A transaction's statistics (the seed's `get_stats()`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TxnStats {
    /// The run id.
    pub run_id: String,
    /// The name.
    pub name: String,
    /// Where it stands.
    pub status: TxnStatus,
    /// Whether it is a dry run.
    pub dry_run: bool,
    /// Whether rollback is enabled.
    pub rollback_enabled: bool,
    /// When it began.
    #[serde(with = "crate::record::rfc3339")]
    pub started_at: SystemTime,
    /// When it was committed, rolled back or abandoned.
    #[serde(with = "crate::record::rfc3339_opt")]
    pub ended_at: Option<SystemTime>,
    /// How long it ran (so far, if still active).
    pub duration: Duration,
    /// Tracked resources, in the order tracked.
    pub resources: Vec<TrackedResource>,
    /// Why it was rolled back.
    pub rollback_reason: Option<String>,
    /// The undos that failed in its rollback.
    pub rollback_errors: Vec<UndoEntry>,
    /// The journal.
    pub journal_path: PathBuf,
    /// Records made durable (header excluded).
    pub journal_records: u64,
    /// fsyncs that made them durable: fewer than records when group commit batched them.
    pub journal_fsyncs: u64,
}

#[derive(Debug)]
struct Inner {
    status: TxnStatus,
    steps: Steps,
    ended: Option<(Instant, SystemTime)>,
    rollback_reason: Option<String>,
    rollback_errors: Vec<UndoEntry>,
}

/// A deployment transaction backed by a write-ahead journal. Share it across tasks by
/// reference or `Arc`: every method takes `&self`.
#[derive(Debug)]
pub struct Transaction {
    run_id: String,
    name: String,
    path: PathBuf,
    dry_run: bool,
    rollback_enabled: bool,
    clock: Arc<dyn Clock>,
    started: (Instant, SystemTime),
    writer: JournalWriter,
    inner: Mutex<Inner>,
}

impl Transaction {
    /// Starts a run called `name`: takes a new run id, locks it, and writes the journal's
    /// header durably before returning. Blocks for one file create and fsync (or, with a
    /// remote [`TxnOptions::store`], for its acknowledged create; that store runs its own I/O,
    /// so blocking here cannot starve it).
    pub fn begin(name: impl Into<String>, options: TxnOptions) -> Result<Self, TxnError> {
        futures::executor::block_on(Self::begin_async(name, options))
    }

    /// [`begin`](Self::begin) without blocking the calling thread.
    pub async fn begin_async(
        name: impl Into<String>,
        options: TxnOptions,
    ) -> Result<Self, TxnError> {
        let name = name.into();
        if name.trim().is_empty() {
            return Err(TxnError::InvalidInput(
                "a transaction needs a non-empty name".into(),
            ));
        }
        let TxnOptions {
            state_dir,
            config_hash,
            dry_run,
            rollback_enabled,
            clock,
            store,
            run_id,
            keys,
        } = options;
        let store = store.unwrap_or_else(|| Arc::new(LocalDirStore::new(state_dir)));
        let started = (clock.now(), clock.system_now());
        let run_id = run_id.unwrap_or_else(|| new_run_id(started.1));
        crate::fs::validate_run_id(&run_id)?;
        let path = PathBuf::from(store.journal_location(&run_id));
        let sealed = keys
            .seal_new(&run_id)
            .map_err(|reason| JournalError::Encryption {
                run_id: run_id.clone(),
                reason,
            })?;
        let (encryption, sealer) =
            sealed.map_or((None, None), |(e, s)| (Some(e), Some(Arc::new(s))));
        let header = Record::Header(Header {
            format: if encryption.is_some() {
                ENCRYPTED_FORMAT_VERSION
            } else {
                FORMAT_VERSION
            },
            run_id: run_id.clone(),
            name: name.clone(),
            config_hash,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: started.1,
            dry_run,
            rollback_enabled,
            pid: std::process::id(),
            encryption,
        });
        let mut line = serde_json::to_vec(&header)
            .map_err(|e| JournalError::io(&path, "serialize header", e.into()))?;
        line.push(b'\n');
        let appender = store
            .create(&run_id, &line)
            .await
            .map_err(JournalError::from)?;
        let encrypted = sealer.is_some();
        let writer = JournalWriter::start(path.clone(), appender, 1, sealer)?;
        tracing::info!(run_id = %run_id, name = %name, journal = %path.display(), encrypted, "transaction started");
        Ok(Self {
            run_id,
            name,
            path,
            dry_run,
            rollback_enabled,
            clock,
            started,
            writer,
            inner: Mutex::new(Inner {
                status: TxnStatus::Active,
                steps: Steps::default(),
                ended: None,
                rollback_reason: None,
                rollback_errors: Vec::new(),
            }),
        })
    }

    /// The run id (the journal's file stem).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The name given to [`begin`](Self::begin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The journal file.
    pub fn journal_path(&self) -> &std::path::Path {
        &self.path
    }

    /// Where it stands.
    pub fn status(&self) -> TxnStatus {
        self.lock().status
    }

    /// Records `resource` with how to undo it; returns its step id once the record is durable.
    /// For a create, call after the create succeeded (or use [`intend`](Self::intend) first
    /// when the id is not known in advance); for an update, call *before* sending it.
    pub async fn track(&self, resource: ResourceRef, undo: Undo) -> Result<u64, TxnError> {
        self.track_step(Step::new(resource, undo)).await
    }

    /// Records a [`Step`]; returns its step id once the record is durable.
    pub async fn track_step(&self, step: Step) -> Result<u64, TxnError> {
        let metadata = redact(step.metadata);
        let (seq, pending) = self.append(None, |seq, at| Record::Track {
            seq,
            at,
            intent: None,
            resource: step.resource,
            undo: step.undo,
            metadata,
        })?;
        pending.durable().await?;
        Ok(seq)
    }

    /// Records that a create is about to be sent; returns once durable. Follow with
    /// [`complete_intent`](Self::complete_intent) when the create returns the new id, or
    /// [`fail_intent`](Self::fail_intent) when it definitely did not happen. Left open, the
    /// intent is reported by rollback (or resolved by an [`IntentResolver`]).
    pub async fn intend(&self, intent: Intent) -> Result<IntentId, TxnError> {
        let (seq, pending) = self.append(None, |seq, at| Record::Intent { seq, at, intent })?;
        pending.durable().await?;
        Ok(IntentId(seq))
    }

    /// Records the resource an intent created, with its undo; returns once durable.
    pub async fn complete_intent(
        &self,
        intent: IntentId,
        resource: ResourceRef,
        undo: Undo,
    ) -> Result<(), TxnError> {
        let (_, pending) = self.append(Some(intent), |seq, at| Record::Track {
            seq,
            at,
            intent: Some(intent.0),
            resource,
            undo: Some(undo),
            metadata: BTreeMap::new(),
        })?;
        pending.durable().await?;
        Ok(())
    }

    /// Records that an intent's create definitely did not happen (the server refused it).
    pub async fn fail_intent(&self, intent: IntentId, reason: &str) -> Result<(), TxnError> {
        let (_, pending) = self.append(Some(intent), |seq, at| Record::IntentFailed {
            seq,
            at,
            intent: intent.0,
            reason: reason.to_owned(),
        })?;
        pending.durable().await?;
        Ok(())
    }

    /// Commits: the resources stay. Fails with [`TxnError::NotActive`] unless active (after
    /// a commit, rollback is refused). Releases the run's lock.
    pub async fn commit(&self) -> Result<(), TxnError> {
        let pending = {
            let mut inner = self.lock();
            self.check_active(&inner)?;
            inner.status = TxnStatus::Committed;
            inner.ended = Some((self.clock.now(), self.clock.system_now()));
            self.end_record(EndStatus::Committed, None)
        };
        let result = match pending {
            Ok(p) => p.durable().await,
            Err(e) => Err(e),
        };
        self.writer.close();
        tracing::info!(run_id = %self.run_id, "transaction committed");
        result.map_err(TxnError::from)
    }

    /// Rolls back: undoes every tracked step last-in-first-out, continuing past failures, and
    /// reports each. With rollback disabled, marks the run failed and leaves everything. In a
    /// dry run, only logs. Fails with [`TxnError::NotActive`] unless active. Await every task
    /// that tracks into this transaction first: steps tracked after the rollback starts are
    /// refused. Releases the run's lock.
    pub async fn rollback(
        &self,
        reason: &str,
        undoer: &dyn Undoer,
    ) -> Result<RollbackReport, TxnError> {
        self.rollback_with(reason, undoer, None).await
    }

    /// [`rollback`](Self::rollback), asking `resolver` about create intents with no outcome.
    pub async fn rollback_with(
        &self,
        reason: &str,
        undoer: &dyn Undoer,
        resolver: Option<&dyn IntentResolver>,
    ) -> Result<RollbackReport, TxnError> {
        let (steps, started) = {
            let mut inner = self.lock();
            self.check_active(&inner)?;
            inner.status = TxnStatus::RollingBack;
            let at = self.clock.system_now();
            let started = self.writer.append(|seq| Record::RollbackStarted {
                seq,
                at,
                reason: reason.to_owned(),
            });
            (inner.steps.clone(), started)
        };
        tracing::warn!(run_id = %self.run_id, reason, enabled = self.rollback_enabled, "rolling back");
        let mut journal_error = started.err().map(|e| e.to_string());
        let (entries, intents, exec_error) = execute(
            &steps,
            Exec {
                writer: &self.writer,
                clock: &self.clock,
                undoer,
                resolver,
                dry_run: self.dry_run,
                rollback_enabled: self.rollback_enabled,
            },
        )
        .await;
        journal_error = journal_error.or(exec_error);
        let (status, end) = if self.rollback_enabled {
            (TxnStatus::RolledBack, EndStatus::RolledBack)
        } else {
            (TxnStatus::Failed, EndStatus::Failed)
        };
        let ended = self.end_record(end, Some(reason.to_owned()));
        let ended = match ended {
            Ok(p) => p.durable().await,
            Err(e) => Err(e),
        };
        if let Err(e) = ended {
            journal_error.get_or_insert(e.to_string());
        }
        self.writer.close();
        let report = RollbackReport {
            run_id: self.run_id.clone(),
            reason: reason.to_owned(),
            dry_run: self.dry_run,
            rollback_enabled: self.rollback_enabled,
            entries,
            intents,
            torn_tail: None,
            journal_error,
        };
        let mut inner = self.lock();
        inner.status = status;
        inner.ended = Some((self.clock.now(), self.clock.system_now()));
        inner.rollback_reason = Some(reason.to_owned());
        inner.rollback_errors = report.failures().cloned().collect();
        Ok(report)
    }

    /// Runs `body` and commits if it succeeds; if it fails, rolls back and returns its error
    /// with the rollback report (the seed's context manager).
    pub async fn scope<T, E: fmt::Display>(
        self,
        undoer: &dyn Undoer,
        body: impl AsyncFnOnce(&Transaction) -> Result<T, E>,
    ) -> Result<T, ScopeError<E>> {
        match body(&self).await {
            Ok(value) => {
                self.commit().await.map_err(ScopeError::Commit)?;
                Ok(value)
            }
            Err(error) => {
                let rollback = self.rollback(&error.to_string(), undoer).await;
                Err(ScopeError::Failed { error, rollback })
            }
        }
    }

    /// Statistics: name, status, timings, resources, rollback errors, journal counters.
    pub fn stats(&self) -> TxnStats {
        let inner = self.lock();
        let (end_instant, ended_at) = match inner.ended {
            Some((i, s)) => (i, Some(s)),
            None => (self.clock.now(), None),
        };
        let counters = self.writer.counters();
        TxnStats {
            run_id: self.run_id.clone(),
            name: self.name.clone(),
            status: inner.status,
            dry_run: self.dry_run,
            rollback_enabled: self.rollback_enabled,
            started_at: self.started.1,
            ended_at,
            duration: end_instant.saturating_duration_since(self.started.0),
            resources: inner.steps.resources().cloned().collect(),
            rollback_reason: inner.rollback_reason.clone(),
            rollback_errors: inner.rollback_errors.clone(),
            journal_path: self.path.clone(),
            journal_records: counters.records.load(std::sync::atomic::Ordering::Relaxed),
            journal_fsyncs: counters.fsyncs.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Inner holds no invariant a panicking holder could break half-way.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_active(&self, inner: &Inner) -> Result<(), TxnError> {
        if inner.status == TxnStatus::Active {
            Ok(())
        } else {
            tracing::warn!(name = %self.name, status = %inner.status, "transaction is not active");
            Err(TxnError::NotActive {
                name: self.name.clone(),
                status: inner.status,
            })
        }
    }

    /// Appends a step record under the state lock, so a rollback's snapshot of the steps and
    /// the journal agree; `intent` must name an open intent.
    fn append(
        &self,
        intent: Option<IntentId>,
        make: impl FnOnce(u64, SystemTime) -> Record,
    ) -> Result<(u64, Pending), TxnError> {
        let mut inner = self.lock();
        self.check_active(&inner)?;
        if let Some(IntentId(i)) = intent
            && !inner.steps.is_open_intent(i)
        {
            return Err(TxnError::UnknownIntent(i));
        }
        let at = self.clock.system_now();
        let (record, pending) = self.writer.append(|seq| make(seq, at))?;
        // Cannot fail: the intent was checked above and seqs are fresh.
        inner.steps.apply(&record).map_err(TxnError::InvalidInput)?;
        Ok((record.seq(), pending))
    }

    fn end_record(
        &self,
        status: EndStatus,
        reason: Option<String>,
    ) -> Result<Pending, JournalError> {
        let at = self.clock.system_now();
        self.writer
            .append(|seq| Record::End {
                seq,
                at,
                status,
                reason,
            })
            .map(|(_, p)| p)
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        if inner.status == TxnStatus::Active {
            inner.status = TxnStatus::Abandoned;
            tracing::warn!(run_id = %self.run_id, name = %self.name,
                "transaction dropped without commit or rollback; journaled as abandoned for recovery");
            let at = self.clock.system_now();
            // If this fails the run has no end record and is found as interrupted instead.
            let _ = self.writer.append(|seq| Record::End {
                seq,
                at,
                status: EndStatus::Abandoned,
                reason: Some("dropped without commit or rollback".into()),
            });
        }
        self.writer.close();
    }
}

/// Why [`Transaction::scope`] did not return a value.
#[derive(Debug)]
pub enum ScopeError<E> {
    /// The body failed and the transaction was rolled back.
    Failed {
        /// The body's error.
        error: E,
        /// The rollback's report.
        rollback: Result<RollbackReport, TxnError>,
    },
    /// The body succeeded but the commit could not be journaled.
    Commit(TxnError),
}

impl<E: fmt::Display> fmt::Display for ScopeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeError::Failed { error, .. } => write!(f, "{error} (rolled back)"),
            ScopeError::Commit(e) => write!(f, "commit failed: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ScopeError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ScopeError::Failed { error, .. } => Some(error),
            ScopeError::Commit(e) => Some(e),
        }
    }
}

/// A fresh run id, `20260101T000000Z-1a2b3c4d`: sorts by start time, unique by its random
/// suffix.
pub fn new_run_id(at: SystemTime) -> String {
    let stamp = OffsetDateTime::from(at)
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| "00000000T000000Z".to_owned());
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{stamp}-{}", &id[..8])
}
