//! Reading journals back: listing runs, finding the ones a crash left behind, recovering them.
//!
//! Reading tolerates a torn last line (a crash in the middle of a write): it is reported as a
//! [`TornTail`] and cut off before recovery appends anything. A last line that is complete
//! JSON but lacks its newline is kept: it names something that may really exist. Anything
//! unreadable before the last line is corruption, reported with its line number.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use fabrik_core::resource::Undoer;
use fabrik_core::{Clock, JournalAppender, JournalStore, SystemClock};
use serde::Serialize;

use crate::JournalError;
use crate::fs::{LocalDirStore, validate_run_id};
use crate::record::{ENCRYPTED_FORMAT_VERSION, EndStatus, Header, Record};
use crate::rollback::{Exec, IntentResolver, RollbackReport, Steps, TrackedResource, execute};
use crate::seal::{DecodeError, Decoded, Keyring, OpenError, SharedSealer, decode};
use crate::writer::JournalWriter;

/// A partial last line: the process died while writing it, so it was never acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TornTail {
    /// Its 1-based line number.
    pub line: usize,
    /// Its byte offset in the file.
    pub offset: u64,
    /// How many bytes it has.
    pub len: usize,
}

/// Where a run stands, as its journal (and its lock) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum RunStatus {
    /// No end yet and a live process holds its lock.
    Active,
    /// No end and nobody holds its lock: the process died.
    Interrupted,
    /// Dropped without commit or rollback.
    Abandoned,
    /// Committed.
    Committed,
    /// Rolled back with nothing left behind.
    RolledBack,
    /// Rolled back, but some undos failed or some create intents are unresolved.
    RollbackIncomplete,
    /// Failed with rollback disabled: resources deliberately left in place.
    Failed,
}

/// One run, summarized from its journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// The run's id.
    pub run_id: String,
    /// The transaction's name.
    pub name: String,
    /// The configuration hash it deployed.
    pub config_hash: String,
    /// The tool version that wrote it.
    pub tool_version: String,
    /// When it began.
    #[serde(with = "crate::record::rfc3339")]
    pub started_at: SystemTime,
    /// When its last record was written.
    #[serde(with = "crate::record::rfc3339")]
    pub last_record_at: SystemTime,
    /// Where it stands.
    pub status: RunStatus,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// Whether rollback was enabled.
    pub rollback_enabled: bool,
    /// Resources tracked.
    pub resources: usize,
    /// Undos not done yet.
    pub pending_undos: usize,
    /// Create intents without a recorded outcome.
    pub unresolved_intents: usize,
    /// A partial last line, if the journal has one.
    pub torn_tail: Option<TornTail>,
    /// Whether the journal is encrypted at rest (a rollback needs its key).
    pub encrypted: bool,
    /// The journal file (for a remote store, the journal's URL without credentials).
    pub path: PathBuf,
}

impl RunSummary {
    /// Whether the run ended without commit (crash, drop, failed undos) and left something
    /// behind that a rollback should undo or look for. Dry runs never do.
    pub fn needs_recovery(&self) -> bool {
        !self.dry_run
            && matches!(
                self.status,
                RunStatus::Interrupted | RunStatus::Abandoned | RunStatus::RollbackIncomplete
            )
            && (self.pending_undos > 0 || self.unresolved_intents > 0)
    }
}

/// The runs of a state directory, oldest first, and the journals that could not be read.
#[derive(Debug, Clone, Default)]
pub struct RunListing {
    /// Readable runs, by start time.
    pub runs: Vec<RunSummary>,
    /// Journals that could not be read (each error names its file).
    pub unreadable: Vec<JournalError>,
}

/// A journal read into memory.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub(crate) header: Header,
    pub(crate) records: Vec<Record>,
    pub(crate) steps: Steps,
    pub(crate) end: Option<EndStatus>,
    pub(crate) torn: Option<TornTail>,
    /// Length of the file up to the end of the last good line.
    valid_len: u64,
    /// Whether the last good line lacks its newline.
    missing_newline: bool,
    /// The journal's key, when it is encrypted and was opened with one.
    sealer: Option<SharedSealer>,
}

impl Parsed {
    fn next_seq(&self) -> u64 {
        self.records.last().map_or(1, |r| r.seq() + 1)
    }

    fn last_at(&self) -> SystemTime {
        self.records
            .last()
            .map_or(self.header.started_at, Record::at)
    }

    fn summary(&self, path: PathBuf, locked: bool) -> RunSummary {
        let pending_undos = self.steps.pending_undos();
        let unresolved_intents = self.steps.unresolved_intents();
        let status = match self.end {
            Some(EndStatus::Committed) => RunStatus::Committed,
            Some(EndStatus::Failed) => RunStatus::Failed,
            Some(EndStatus::Abandoned) => RunStatus::Abandoned,
            Some(EndStatus::RolledBack)
                if !self.header.dry_run && (pending_undos > 0 || unresolved_intents > 0) =>
            {
                RunStatus::RollbackIncomplete
            }
            Some(EndStatus::RolledBack) => RunStatus::RolledBack,
            None if locked => RunStatus::Active,
            None => RunStatus::Interrupted,
        };
        RunSummary {
            run_id: self.header.run_id.clone(),
            name: self.header.name.clone(),
            config_hash: self.header.config_hash.clone(),
            tool_version: self.header.tool_version.clone(),
            started_at: self.header.started_at,
            last_record_at: self.last_at(),
            status,
            dry_run: self.header.dry_run,
            rollback_enabled: self.header.rollback_enabled,
            resources: self.steps.resources().count(),
            pending_undos,
            unresolved_intents,
            torn_tail: self.torn,
            encrypted: self.header.encryption.is_some(),
            path,
        }
    }
}

/// A journal being read, line by line.
struct Reader<'a> {
    path: &'a Path,
    keys: Option<&'a Keyring>,
    records: Vec<Record>,
    steps: Steps,
    end: Option<EndStatus>,
    sealer: Option<SharedSealer>,
    encrypted: bool,
}

impl Reader<'_> {
    fn corrupt(&self, line: usize, reason: String) -> JournalError {
        JournalError::Corrupt {
            path: self.path.to_owned(),
            line,
            reason,
        }
    }

    /// Checks a decoded line against the ones before it and applies it.
    fn take(&mut self, line_no: usize, decoded: Decoded) -> Result<(), JournalError> {
        let Decoded {
            record,
            hidden_undo,
            sealed,
        } = decoded;
        match (&record, self.records.last()) {
            (Record::Header(h), None) => self.header(line_no, h)?,
            (_, None) => {
                return Err(self.corrupt(line_no, "the first line is not a header".into()));
            }
            (Record::Header(_), Some(_)) => {
                return Err(self.corrupt(line_no, "a second header".into()));
            }
            (r, Some(prev)) if r.seq() <= prev.seq() => {
                let reason = format!("seq {} does not follow {}", r.seq(), prev.seq());
                return Err(self.corrupt(line_no, reason));
            }
            _ => {}
        }
        if sealed && !self.encrypted {
            let reason = "a sealed record in a journal whose header declares no encryption";
            return Err(self.corrupt(line_no, reason.into()));
        }
        self.steps
            .apply(&record)
            .map_err(|reason| self.corrupt(line_no, reason))?;
        if let Record::Track { seq, intent, .. } = &record
            && hidden_undo
        {
            self.steps.hide_undo(intent.unwrap_or(*seq));
        }
        if let Record::End { status, .. } = &record {
            self.end = Some(*status);
        }
        self.records.push(record);
        Ok(())
    }

    /// Checks the header's format and, if the journal is encrypted and keys were given,
    /// finds the key that opens it.
    fn header(&mut self, line_no: usize, h: &Header) -> Result<(), JournalError> {
        if h.format > ENCRYPTED_FORMAT_VERSION {
            let reason = format!(
                "journal format {} is newer than this tool understands ({ENCRYPTED_FORMAT_VERSION})",
                h.format
            );
            return Err(self.corrupt(line_no, reason));
        }
        self.encrypted = h.encryption.is_some();
        if self.encrypted != (h.format == ENCRYPTED_FORMAT_VERSION) {
            let reason = format!(
                "journal format {} does not match its header's encryption",
                h.format
            );
            return Err(self.corrupt(line_no, reason));
        }
        if let (Some(enc), Some(keys)) = (&h.encryption, self.keys) {
            let run_id = h.run_id.clone();
            let sealer = keys.open(enc, &h.run_id).map_err(|e| match e {
                OpenError::NoKey => JournalError::KeyRequired { run_id },
                OpenError::WrongKey { tried } => JournalError::WrongKey { run_id, tried },
                OpenError::Unsupported(reason) => JournalError::Encryption { run_id, reason },
            })?;
            self.sealer = Some(Arc::new(sealer));
        }
        Ok(())
    }
}

/// Checks a whole journal, read from `path`, that should be run `run_id`'s. With `keys`, an
/// encrypted journal is opened (or refused: no key, wrong key); without, its sealed fields
/// are left out (see [`crate::seal`]).
pub(crate) fn parse_journal(
    bytes: &[u8],
    path: &Path,
    run_id: &str,
    keys: Option<&Keyring>,
) -> Result<Parsed, JournalError> {
    let mut reader = Reader {
        path,
        keys,
        records: Vec::new(),
        steps: Steps::default(),
        end: None,
        sealer: None,
        encrypted: false,
    };
    let mut torn = None;
    let mut valid_len = 0u64;
    let mut missing_newline = false;
    let mut offset = 0u64;
    for (i, segment) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        let line_no = i + 1;
        let complete = segment.ends_with(b"\n");
        let start = offset;
        offset += segment.len() as u64;
        if segment.iter().all(u8::is_ascii_whitespace) {
            if complete {
                valid_len = offset;
            }
            continue;
        }
        let decoded = match decode(segment, reader.sealer.as_deref()) {
            Ok(d) => d,
            // Only the last line can be torn: earlier lines were acknowledged as durable.
            Err(DecodeError::Json(_)) if !complete => {
                torn = Some(TornTail {
                    line: line_no,
                    offset: start,
                    len: segment.len(),
                });
                break;
            }
            Err(DecodeError::Json(e) | DecodeError::Tampered(e)) => {
                return Err(reader.corrupt(line_no, e));
            }
        };
        reader.take(line_no, decoded)?;
        valid_len = offset;
        missing_newline = !complete;
    }
    let header = match reader.records.first() {
        Some(Record::Header(h)) => h.clone(),
        _ => {
            return Err(reader.corrupt(
                1,
                "no complete header: the run died while starting and tracked nothing; \
                 the file can be deleted"
                    .into(),
            ));
        }
    };
    if header.run_id != run_id {
        let reason = format!(
            "the header names run {} but the file is {run_id}",
            header.run_id
        );
        return Err(reader.corrupt(1, reason));
    }
    Ok(Parsed {
        header,
        records: reader.records,
        steps: reader.steps,
        end: reader.end,
        torn,
        valid_len,
        missing_newline,
        sealer: reader.sealer,
    })
}

/// One run's journal, opened under the run's lock for inspection and recovery.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    path: PathBuf,
    appender: Box<dyn JournalAppender>,
    parsed: Parsed,
    clock: Arc<dyn Clock>,
    /// The journal as read, to read it again with keys.
    bytes: Vec<u8>,
}

impl Journal {
    /// Opens run `run_id` in `state_dir`, taking its lock: fails with
    /// [`JournalError::Locked`] while a transaction or another recovery has it.
    pub fn open(state_dir: impl AsRef<Path>, run_id: &str) -> Result<Self, JournalError> {
        let store = LocalDirStore::new(state_dir.as_ref());
        futures::executor::block_on(Self::open_in(&store, run_id))
    }

    /// [`open`](Self::open) in any [`JournalStore`] (a remote store's I/O runs on its own
    /// runtime, so this can be awaited under any executor).
    pub async fn open_in(store: &dyn JournalStore, run_id: &str) -> Result<Self, JournalError> {
        validate_run_id(run_id)?;
        let path = PathBuf::from(store.journal_location(run_id));
        let (bytes, appender) = store.open(run_id).await?;
        let parsed = parse_journal(&bytes, &path, run_id, None)?;
        Ok(Self {
            dir: PathBuf::from(store.location()),
            path,
            appender,
            parsed,
            clock: Arc::new(SystemClock),
            bytes,
        })
    }

    /// Opens an encrypted journal's sealed records with `keys` (the current passphrase, then
    /// each old one), which [`rollback`](Self::rollback) needs. Fails with
    /// [`JournalError::KeyRequired`] when `keys` is empty, [`JournalError::WrongKey`] when
    /// none opens it, and [`JournalError::Corrupt`] when a sealed record was altered. A
    /// journal in clear is returned as it is.
    pub fn with_keys(mut self, keys: &Keyring) -> Result<Self, JournalError> {
        if self.parsed.header.encryption.is_some() {
            let run_id = self.parsed.header.run_id.clone();
            self.parsed = parse_journal(&self.bytes, &self.path, &run_id, Some(keys))?;
        }
        Ok(self)
    }

    /// Whether the journal is encrypted at rest.
    pub fn is_encrypted(&self) -> bool {
        self.parsed.header.encryption.is_some()
    }

    /// Whether everything the journal holds can be read: it is in clear, or was opened with
    /// [`with_keys`](Self::with_keys).
    pub fn is_readable(&self) -> bool {
        !self.is_encrypted() || self.parsed.sealer.is_some()
    }

    /// Uses `clock` for the timestamps of records written by [`rollback`](Self::rollback).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The run's header.
    pub fn header(&self) -> &Header {
        &self.parsed.header
    }

    /// Every record, header first, torn tail excluded. Until an encrypted journal is opened
    /// with [`with_keys`](Self::with_keys), sealed fields read as absent (undos, metadata) or
    /// `"(encrypted)"` (messages).
    pub fn records(&self) -> &[Record] {
        &self.parsed.records
    }

    /// Resources tracked by the run, in the order tracked (without undos or metadata until an
    /// encrypted journal is opened with [`with_keys`](Self::with_keys)).
    pub fn resources(&self) -> Vec<TrackedResource> {
        self.parsed.steps.resources().cloned().collect()
    }

    /// Resources tracked by the run whose undo a rollback has not done yet: what a rollback
    /// would undo, to check beforehand that it can.
    pub fn pending_resources(&self) -> Vec<TrackedResource> {
        self.parsed.steps.pending_resources().cloned().collect()
    }

    /// The run's summary (its status is never [`RunStatus::Active`]: we hold its lock).
    pub fn summary(&self) -> RunSummary {
        self.parsed.summary(self.path.clone(), false)
    }

    /// Undoes what the journal lists that is not undone yet, last first, journaling each undo
    /// as it is done, and continuing past failures. Idempotent and safe to interrupt: a re-run
    /// skips what was journaled as undone and repeats at most the undo in flight (undos are
    /// idempotent). An encrypted journal must have been opened with
    /// [`with_keys`](Self::with_keys) ([`JournalError::KeyRequired`] otherwise); what the
    /// rollback appends is sealed with the same key. With a `resolver`, create intents without an outcome are looked up by name
    /// and undone too. A dry run's journal is only logged. A committed run is refused.
    pub async fn rollback(
        self,
        reason: &str,
        undoer: &dyn Undoer,
        resolver: Option<&dyn IntentResolver>,
    ) -> Result<RollbackReport, JournalError> {
        let Journal {
            dir: _,
            path,
            mut appender,
            parsed,
            clock,
            bytes: _,
        } = self;
        let run_id = parsed.header.run_id.clone();
        if parsed.end == Some(EndStatus::Committed) {
            return Err(JournalError::Committed { run_id });
        }
        // Sealed undos read as absent: rolling back without the key would skip them silently.
        if parsed.header.encryption.is_some() && parsed.sealer.is_none() {
            return Err(JournalError::KeyRequired { run_id });
        }
        prepare_for_append(appender.as_mut(), &path, &parsed).await?;
        let sealer = parsed.sealer.clone();
        let writer = JournalWriter::start(path, appender, parsed.next_seq(), sealer)?;
        let mut journal_error = None;
        let at = clock.system_now();
        let started = writer.append(|seq| Record::RollbackStarted {
            seq,
            at,
            reason: reason.to_owned(),
        });
        if let Err(e) = started {
            journal_error = Some(e.to_string());
        }
        let (entries, intents, exec_error) = execute(
            &parsed.steps,
            Exec {
                writer: &writer,
                clock: &clock,
                undoer,
                resolver,
                dry_run: parsed.header.dry_run,
                // Asking for recovery is asking for rollback, even of a run that had it off.
                rollback_enabled: true,
            },
        )
        .await;
        journal_error = journal_error.or(exec_error);
        let at = clock.system_now();
        match writer.append(|seq| Record::End {
            seq,
            at,
            status: EndStatus::RolledBack,
            reason: Some(reason.to_owned()),
        }) {
            Ok((_, p)) => {
                if let Err(e) = p.durable().await {
                    journal_error.get_or_insert(e.to_string());
                }
            }
            Err(e) => {
                journal_error.get_or_insert(e.to_string());
            }
        }
        writer.close();
        Ok(RollbackReport {
            run_id,
            reason: reason.to_owned(),
            dry_run: parsed.header.dry_run,
            rollback_enabled: true,
            entries,
            intents,
            torn_tail: parsed.torn,
            journal_error,
        })
    }

    /// Opens run `run_id` and rolls back what it left behind (see [`rollback`](Self::rollback)),
    /// without resolving create intents. An encrypted journal needs its key: open it, call
    /// [`with_keys`](Self::with_keys), then [`rollback`](Self::rollback).
    pub async fn recover(
        state_dir: impl AsRef<Path>,
        run_id: &str,
        undoer: &dyn Undoer,
    ) -> Result<RollbackReport, JournalError> {
        Journal::open(state_dir, run_id)?
            .rollback("recovery", undoer, None)
            .await
    }

    /// Every run in `state_dir`, oldest first. A missing directory has no runs. Telling
    /// [`RunStatus::Active`] from [`RunStatus::Interrupted`] probes each run's lock, which
    /// holds it for an instant.
    pub fn list_runs(state_dir: impl AsRef<Path>) -> Result<RunListing, JournalError> {
        let store = LocalDirStore::new(state_dir.as_ref());
        futures::executor::block_on(Self::list_runs_in(&store))
    }

    /// [`list_runs`](Self::list_runs) of any [`JournalStore`].
    pub async fn list_runs_in(store: &dyn JournalStore) -> Result<RunListing, JournalError> {
        let mut listing = RunListing::default();
        for run_id in store.list().await? {
            let path = PathBuf::from(store.journal_location(&run_id));
            let parsed = match store.read(&run_id).await {
                Ok(bytes) => parse_journal(&bytes, &path, &run_id, None),
                Err(e) => Err(e.into()),
            };
            match parsed {
                Ok(parsed) => {
                    let locked = parsed.end.is_none() && store.is_locked(&run_id).await?;
                    listing.runs.push(parsed.summary(path, locked));
                }
                Err(e) => listing.unreadable.push(e),
            }
        }
        listing
            .runs
            .sort_by(|a, b| (a.started_at, &a.run_id).cmp(&(b.started_at, &b.run_id)));
        Ok(listing)
    }

    /// The runs that left something behind ([`RunSummary::needs_recovery`]), oldest first,
    /// and the journals that could not be read.
    pub fn find_incomplete(state_dir: impl AsRef<Path>) -> Result<RunListing, JournalError> {
        let mut listing = Self::list_runs(state_dir)?;
        listing.runs.retain(RunSummary::needs_recovery);
        Ok(listing)
    }

    /// [`find_incomplete`](Self::find_incomplete) of any [`JournalStore`].
    pub async fn find_incomplete_in(store: &dyn JournalStore) -> Result<RunListing, JournalError> {
        let mut listing = Self::list_runs_in(store).await?;
        listing.runs.retain(RunSummary::needs_recovery);
        Ok(listing)
    }

    /// The state directory this journal lives in.
    pub fn state_dir(&self) -> &Path {
        &self.dir
    }
}

/// Cuts a torn tail off (it was never acknowledged) and ends a newline-less last line, so
/// appended records start on a line of their own.
async fn prepare_for_append(
    appender: &mut dyn JournalAppender,
    path: &Path,
    parsed: &Parsed,
) -> Result<(), JournalError> {
    if parsed.torn.is_some() {
        tracing::warn!(journal = %path.display(), torn = ?parsed.torn, "cutting off a torn last line");
        appender.truncate(parsed.valid_len).await?;
    }
    if parsed.missing_newline {
        appender.append(b"\n").await?;
    }
    Ok(())
}
