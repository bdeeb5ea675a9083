//! Rollback: the steps of a run, undone last-in-first-out, and the report of what happened.
//!
//! One implementation serves both a live [`Transaction`](crate::Transaction) and recovery
//! from a journal: both build [`Steps`] by applying the same [`Record`]s, so what a crashed
//! run's journal says and what the live run knew cannot drift apart.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use fabrik_core::Clock;
use fabrik_core::resource::{ResourceRef, Undo, UndoError, UndoOutcome, Undoer};
use serde::Serialize;

use crate::record::FailureClass;
use crate::writer::{JournalWriter, Pending};
use crate::{Intent, JournalError, Record, TornTail};

/// A resource recorded in a run, with how to undo it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackedResource {
    /// The step id (the seq of the step's first record).
    pub step: u64,
    /// The resource.
    pub resource: ResourceRef,
    /// How to undo it; none means it is skipped with a warning.
    pub undo: Option<Undo>,
    /// Caller notes, redacted.
    pub metadata: BTreeMap<String, String>,
    /// When it was tracked.
    #[serde(with = "crate::record::rfc3339")]
    pub tracked_at: SystemTime,
}

/// Finds what an unresolved create intent made, by name: the bridge for a crash between the
/// server applying a create and the journal learning its id. The CLI implements it over the
/// Fabric client (list workspaces or items, match the display name).
#[async_trait]
pub trait IntentResolver: Send + Sync + fmt::Debug {
    /// The resource the intent created and how to undo it, or `None` if it does not exist.
    async fn resolve(&self, intent: &Intent) -> Result<Option<(ResourceRef, Undo)>, UndoError>;
}

#[derive(Debug, Clone, Default)]
struct StepState {
    intent: Option<Intent>,
    intent_failed: bool,
    tracked: Option<TrackedResource>,
    undone: bool,
    /// Read without its key: the track has an undo that is sealed.
    hidden_undo: bool,
}

/// Every step of a run, keyed by step id; built by applying records in file order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Steps {
    steps: BTreeMap<u64, StepState>,
}

impl Steps {
    /// Applies one record. Errors name what is inconsistent (a journal that refers to a step
    /// it never recorded was edited or damaged).
    pub(crate) fn apply(&mut self, record: &Record) -> Result<(), String> {
        match record {
            Record::Header(_) | Record::RollbackStarted { .. } | Record::End { .. } => {}
            Record::Intent { seq, intent, .. } => {
                self.steps.insert(
                    *seq,
                    StepState {
                        intent: Some(intent.clone()),
                        ..StepState::default()
                    },
                );
            }
            Record::Track {
                seq,
                at,
                intent,
                resource,
                undo,
                metadata,
            } => {
                let step = intent.unwrap_or(*seq);
                let state = match intent {
                    Some(i) => self
                        .steps
                        .get_mut(i)
                        .filter(|s| s.intent.is_some() && s.tracked.is_none())
                        .ok_or_else(|| {
                            format!("track {seq} names unknown or resolved intent {i}")
                        })?,
                    None => self.steps.entry(*seq).or_default(),
                };
                state.tracked = Some(TrackedResource {
                    step,
                    resource: resource.clone(),
                    undo: undo.clone(),
                    metadata: metadata.clone(),
                    tracked_at: *at,
                });
            }
            Record::IntentFailed { seq, intent, .. } => {
                self.steps
                    .get_mut(intent)
                    .filter(|s| s.intent.is_some())
                    .ok_or_else(|| format!("intentFailed {seq} names unknown intent {intent}"))?
                    .intent_failed = true;
            }
            Record::Undone { seq, step, .. } => {
                self.steps
                    .get_mut(step)
                    .ok_or_else(|| format!("undone {seq} names unknown step {step}"))?
                    .undone = true;
            }
            Record::UndoFailed { .. } => {}
        }
        Ok(())
    }

    /// Marks `step`'s undo as present but sealed (an encrypted journal read without its key).
    pub(crate) fn hide_undo(&mut self, step: u64) {
        if let Some(s) = self.steps.get_mut(&step) {
            s.hidden_undo = true;
        }
    }

    /// Whether `intent` is a recorded intent with no outcome yet.
    pub(crate) fn is_open_intent(&self, intent: u64) -> bool {
        self.steps
            .get(&intent)
            .is_some_and(|s| s.intent.is_some() && s.tracked.is_none() && !s.intent_failed)
    }

    /// Tracked resources in the order they were recorded.
    pub(crate) fn resources(&self) -> impl Iterator<Item = &TrackedResource> {
        self.steps.values().filter_map(|s| s.tracked.as_ref())
    }

    /// Tracked resources whose undo has not been done yet, in the order recorded.
    pub(crate) fn pending_resources(&self) -> impl Iterator<Item = &TrackedResource> {
        self.steps
            .values()
            .filter(|s| !s.undone)
            .filter_map(|s| s.tracked.as_ref())
    }

    /// Steps with an undo that has not been done yet.
    pub(crate) fn pending_undos(&self) -> usize {
        self.steps
            .values()
            .filter(|s| {
                !s.undone
                    && s.tracked
                        .as_ref()
                        .is_some_and(|t| t.undo.is_some() || s.hidden_undo)
            })
            .count()
    }

    /// Intents with neither an outcome nor a recorded failure.
    pub(crate) fn unresolved_intents(&self) -> usize {
        self.steps
            .values()
            .filter(|s| s.intent.is_some() && s.tracked.is_none() && !s.intent_failed)
            .count()
    }
}

/// What happened to one step in a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "camelCase")]
#[non_exhaustive]
pub enum UndoResult {
    /// Undone now.
    Done,
    /// Already gone or already in its previous state (success).
    AlreadyGone,
    /// Undone by an earlier rollback of the same run.
    AlreadyUndone,
    /// Dry run: only logged.
    DryRun,
    /// Tracked without an undo: skipped with a warning.
    NoUndo,
    /// Rollback is disabled: deliberately left in place.
    LeftInPlace,
    /// The undo failed; running the rollback again will retry it.
    Failed {
        /// The undoer's message.
        message: String,
        /// Whether trying again may help.
        class: FailureClass,
    },
}

/// One step of a rollback report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UndoEntry {
    /// The step id.
    pub step: u64,
    /// The resource.
    pub resource: ResourceRef,
    /// The undo performed (or that would have been).
    pub undo: Option<Undo>,
    /// What happened.
    pub result: UndoResult,
}

/// What became of a create intent that had no recorded outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "camelCase")]
#[non_exhaustive]
pub enum IntentResult {
    /// No resolver was given: the resource may exist; look for it by name.
    Unresolved,
    /// The resolver found nothing: the create never happened.
    NotFound,
    /// The resolver failed, or could not tell whether what it found was made by this run
    /// (then it left it in place, and its message says why); running the rollback again will
    /// ask again.
    ResolveFailed {
        /// The resolver's message.
        message: String,
    },
}

/// One unresolved intent in a rollback report (a resolved one appears as an [`UndoEntry`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntentEntry {
    /// The step id.
    pub step: u64,
    /// The create that was about to be sent.
    pub intent: Intent,
    /// What became of it.
    pub result: IntentResult,
}

/// Everything a rollback did, including every failure: it never stops at the first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackReport {
    /// The run.
    pub run_id: String,
    /// Why it was rolled back.
    pub reason: String,
    /// Whether undos were only logged.
    pub dry_run: bool,
    /// Whether rollback was enabled (if not, everything was left in place).
    pub rollback_enabled: bool,
    /// Each step, in the order handled (last tracked first).
    pub entries: Vec<UndoEntry>,
    /// Create intents with no recorded resource.
    pub intents: Vec<IntentEntry>,
    /// A partial last line found in the journal (recovery only).
    pub torn_tail: Option<TornTail>,
    /// The first failure to journal progress; undos still ran, but a re-run may repeat some.
    pub journal_error: Option<String>,
}

impl RollbackReport {
    /// The steps whose undo failed.
    pub fn failures(&self) -> impl Iterator<Item = &UndoEntry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.result, UndoResult::Failed { .. }))
    }

    /// Whether nothing is left behind: rollback was enabled, every undo succeeded and every
    /// intent is known not to have created anything. A dry run is never complete.
    pub fn is_complete(&self) -> bool {
        self.rollback_enabled
            && !self.dry_run
            && self.failures().next().is_none()
            && self
                .intents
                .iter()
                .all(|i| i.result == IntentResult::NotFound)
    }

    /// Create intents whose result is not known to be gone: left in place, to be looked at.
    pub fn unsettled(&self) -> impl Iterator<Item = &IntentEntry> {
        self.intents
            .iter()
            .filter(|i| i.result != IntentResult::NotFound)
    }
}

/// What a rollback needs besides the steps.
pub(crate) struct Exec<'a> {
    pub(crate) writer: &'a JournalWriter,
    pub(crate) clock: &'a Arc<dyn Clock>,
    pub(crate) undoer: &'a dyn Undoer,
    pub(crate) resolver: Option<&'a dyn IntentResolver>,
    pub(crate) dry_run: bool,
    pub(crate) rollback_enabled: bool,
}

/// Collects journal appends without waiting on each: undos are idempotent, so losing an
/// `undone` record to a crash only means a re-run repeats that undo.
struct Progress<'a> {
    writer: &'a JournalWriter,
    pending: Vec<Pending>,
    error: Option<String>,
}

impl Progress<'_> {
    fn append(&mut self, make: impl FnOnce(u64) -> Record) {
        match self.writer.append(make) {
            Ok((_, p)) => self.pending.push(p),
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, e: JournalError) {
        tracing::error!(error = %e, "could not journal rollback progress");
        self.error.get_or_insert_with(|| e.to_string());
    }

    async fn finish(mut self) -> Option<String> {
        for p in std::mem::take(&mut self.pending) {
            if let Err(e) = p.durable().await {
                self.fail(e);
            }
        }
        self.error
    }
}

/// Undoes `steps` last-in-first-out, journaling each outcome; continues past failures.
/// Returns the entries, the intents and the first journal error.
pub(crate) async fn execute(
    steps: &Steps,
    exec: Exec<'_>,
) -> (Vec<UndoEntry>, Vec<IntentEntry>, Option<String>) {
    let mut progress = Progress {
        writer: exec.writer,
        pending: Vec::new(),
        error: None,
    };
    let mut entries = Vec::new();
    let mut intents = Vec::new();
    for (&id, state) in steps.steps.iter().rev() {
        let tracked = match (&state.tracked, &state.intent) {
            (Some(t), _) => t.clone(),
            (None, Some(_)) if state.intent_failed => continue,
            (None, Some(intent)) => {
                let result = match (exec.resolver, exec.rollback_enabled && !exec.dry_run) {
                    (Some(r), true) => r.resolve(intent).await,
                    _ => {
                        tracing::warn!(step = id, kind = %intent.kind, name = %intent.display_name,
                            "create intent has no recorded outcome; the resource may exist");
                        intents.push(IntentEntry {
                            step: id,
                            intent: intent.clone(),
                            result: IntentResult::Unresolved,
                        });
                        continue;
                    }
                };
                match result {
                    Ok(Some((resource, undo))) => {
                        let at = exec.clock.system_now();
                        progress.append(|seq| Record::Track {
                            seq,
                            at,
                            intent: Some(id),
                            resource: resource.clone(),
                            undo: Some(undo.clone()),
                            metadata: BTreeMap::new(),
                        });
                        TrackedResource {
                            step: id,
                            resource,
                            undo: Some(undo),
                            metadata: BTreeMap::new(),
                            tracked_at: at,
                        }
                    }
                    Ok(None) => {
                        let at = exec.clock.system_now();
                        progress.append(|seq| Record::IntentFailed {
                            seq,
                            at,
                            intent: id,
                            reason: "not found by resolver".into(),
                        });
                        intents.push(IntentEntry {
                            step: id,
                            intent: intent.clone(),
                            result: IntentResult::NotFound,
                        });
                        continue;
                    }
                    Err(e) => {
                        intents.push(IntentEntry {
                            step: id,
                            intent: intent.clone(),
                            result: IntentResult::ResolveFailed { message: e.message },
                        });
                        continue;
                    }
                }
            }
            (None, None) => continue,
        };
        let result = undo_one(id, &tracked, state.undone, &exec, &mut progress).await;
        entries.push(UndoEntry {
            step: id,
            resource: tracked.resource,
            undo: tracked.undo,
            result,
        });
    }
    let journal_error = progress.finish().await;
    (entries, intents, journal_error)
}

async fn undo_one(
    id: u64,
    tracked: &TrackedResource,
    already_undone: bool,
    exec: &Exec<'_>,
    progress: &mut Progress<'_>,
) -> UndoResult {
    let Some(undo) = &tracked.undo else {
        tracing::warn!(step = id, resource = %tracked.resource, "no undo recorded; skipping");
        return UndoResult::NoUndo;
    };
    if already_undone {
        return UndoResult::AlreadyUndone;
    }
    if !exec.rollback_enabled {
        return UndoResult::LeftInPlace;
    }
    if exec.dry_run {
        tracing::info!(step = id, resource = %tracked.resource, ?undo, "dry run: would undo");
        return UndoResult::DryRun;
    }
    match exec.undoer.undo(undo).await {
        Ok(outcome) => {
            let at = exec.clock.system_now();
            progress.append(|seq| Record::Undone {
                seq,
                at,
                step: id,
                outcome,
            });
            match outcome {
                UndoOutcome::Done => UndoResult::Done,
                UndoOutcome::AlreadyGone => UndoResult::AlreadyGone,
            }
        }
        Err(e) => {
            tracing::warn!(step = id, resource = %tracked.resource, error = %e, "undo failed; continuing");
            let class = FailureClass::from(fabrik_core::Classify::class(&e));
            let at = exec.clock.system_now();
            let message = e.message;
            progress.append(|seq| Record::UndoFailed {
                seq,
                at,
                step: id,
                error: message.clone(),
                class,
            });
            UndoResult::Failed { message, class }
        }
    }
}
