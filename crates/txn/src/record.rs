//! The journal's record types: one JSON object per line, tagged by `"type"`.
//!
//! A journal is a header line followed by records, each with a sequence number (`seq`, unique
//! and increasing within the run; the header is 0) and a wall-clock timestamp (`at`, RFC 3339).
//! A *step* is identified by the `seq` of its first record: the `intent` for a create whose id
//! is not known yet, otherwise the `track`. Rollback undoes steps in decreasing step order.
//!
//! ```text
//! {"type":"header","format":1,"runId":"20260101T000000Z-1a2b3c4d","name":"deploy dev",...}
//! {"type":"intent","seq":1,"at":"…","intent":{"kind":"Workspace","displayName":"sales-dev"}}
//! {"type":"track","seq":2,"at":"…","intent":1,"resource":{…},"undo":{"op":"deleteWorkspace",…}}
//! {"type":"track","seq":3,"at":"…","resource":{…},"undo":{"op":"restoreRole",…}}
//! {"type":"rollbackStarted","seq":4,"at":"…","reason":"lakehouse create failed"}
//! {"type":"undone","seq":5,"at":"…","step":3,"outcome":"Done"}
//! {"type":"undoFailed","seq":6,"at":"…","step":1,"error":"503 …","class":"transient"}
//! {"type":"end","seq":7,"at":"…","status":"rolledBack","reason":"lakehouse create failed"}
//! ```
//!
//! Creates are journaled in two halves so a crash between the server applying a create and us
//! learning its id still leaves a trace: an `intent` ("create workspace named X") is made
//! durable before the request is sent, then a `track` naming the intent records the id and
//! the undo. An intent whose create definitely did not happen is closed by `intentFailed`.
//! An intent with neither is *unresolved*: rollback reports it, or asks an
//! [`IntentResolver`](crate::IntentResolver) to find the resource by name.
//!
//! Updates need no intent: track the undo (with the previous value) *before* sending the
//! update, since restoring a value that was never changed is harmless.
//!
//! Encryption at rest: with a state key, undo records, metadata and messages are sealed (see
//! [`crate::seal`] for the format and what stays readable).
//!
//! Secrets: records carry ids, names, undo data and caller metadata only; no record type has
//! a field for a credential or a configuration value (the header keeps only the config's
//! hash). Metadata values under secret-looking keys are replaced by `"***"` before they are
//! stored (see [`redact`]). `RestoreDefinition` undos carry an item's previous definition
//! verbatim, as the service returned it: definitions must not embed secrets in the first place.

use std::collections::BTreeMap;
use std::time::SystemTime;

use fabrik_core::ErrorClass;
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo, UndoOutcome};
use serde::{Deserialize, Serialize};

/// The journal format of a journal in clear (the newest format this crate reads is
/// [`ENCRYPTED_FORMAT_VERSION`]).
pub const FORMAT_VERSION: u32 = 1;

/// The format of an encrypted journal: format 1 plus the header's `encryption` and sealed
/// records (see [`crate::seal`]). A tool that reads only format 1 refuses it rather than
/// taking a sealed undo for a missing one.
pub const ENCRYPTED_FORMAT_VERSION: u32 = 2;

/// The first line of every journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    /// Journal format ([`FORMAT_VERSION`]).
    pub format: u32,
    /// The run's id, also the journal's file stem.
    pub run_id: String,
    /// The transaction's name.
    pub name: String,
    /// Hash of the configuration deployed, to tell runs of different configs apart.
    pub config_hash: String,
    /// Version of the tool that wrote the journal.
    pub tool_version: String,
    /// When the run began.
    #[serde(with = "rfc3339")]
    pub started_at: SystemTime,
    /// Whether the run only pretended (nothing real to undo).
    pub dry_run: bool,
    /// Whether the run was allowed to roll back.
    pub rollback_enabled: bool,
    /// The process that began the run, for humans looking at a stale run.
    pub pid: u32,
    /// How the journal's records are sealed; `None` for a journal in clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<crate::seal::Encryption>,
}

/// A create about to be sent, journaled before its id is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    /// What kind of resource will be created.
    pub kind: ResourceKind,
    /// The workspace it will live in (none for a workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// The display name it is created with: what a resolver searches for.
    pub display_name: String,
    /// The item type (`Notebook`, `DataPipeline`, …) for an item: names are unique only per
    /// type, so recovery must never take an item of another type for the one intended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_type: Option<String>,
    /// The folder it is created in (none: the workspace's root or not a foldered resource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder_id: Option<String>,
    /// Ids of resources of this name that existed when the intent was journaled: never the
    /// result of this create, whatever else matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub existing: Vec<String>,
    /// The kind that journaled it and recognises its result after a crash (its registered
    /// name); absent in journals written before kinds recovered their own intents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl Intent {
    /// An intent to create a `kind` named `display_name`, in `workspace_id` unless a workspace.
    pub fn create(
        kind: ResourceKind,
        workspace_id: Option<String>,
        display_name: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            workspace_id,
            display_name: display_name.into(),
            item_type: None,
            folder_id: None,
            existing: Vec::new(),
            owner: None,
        }
    }

    /// The same intent, recovered by the kind registered as `owner`.
    pub fn owned_by(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// The same intent for an item of `item_type`.
    pub fn of_type(mut self, item_type: impl Into<String>) -> Self {
        self.item_type = Some(item_type.into());
        self
    }

    /// The same intent, created in `folder_id`.
    pub fn in_folder(mut self, folder_id: Option<String>) -> Self {
        self.folder_id = folder_id;
        self
    }

    /// The same intent, with the ids of same-named resources that exist before the create.
    pub fn existing(mut self, ids: Vec<String>) -> Self {
        self.existing = ids;
        self
    }
}

/// How a run ended, as recorded by its `end` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EndStatus {
    /// Committed: keep everything.
    Committed,
    /// A rollback ran to the end (some undos may have failed; see `undoFailed`).
    RolledBack,
    /// Failed with rollback disabled: everything was deliberately left in place.
    Failed,
    /// Dropped without commit or rollback: needs recovery.
    Abandoned,
}

/// A failure class as journaled (core's [`ErrorClass`] is not serializable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FailureClass {
    /// Might succeed if tried again.
    Transient,
    /// The server was throttling.
    Throttled,
    /// Ran out of time.
    Timeout,
    /// Will not succeed if tried again.
    Permanent,
    /// A class this version does not know.
    Unknown,
}

impl From<ErrorClass> for FailureClass {
    fn from(c: ErrorClass) -> Self {
        match c {
            ErrorClass::Transient => FailureClass::Transient,
            ErrorClass::Throttled => FailureClass::Throttled,
            ErrorClass::Timeout => FailureClass::Timeout,
            ErrorClass::Permanent => FailureClass::Permanent,
            _ => FailureClass::Unknown,
        }
    }
}

/// One line of a journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum Record {
    /// The first line.
    Header(Header),
    /// A create is about to be sent.
    #[serde(rename_all = "camelCase")]
    Intent {
        /// Sequence number; also the step id.
        seq: u64,
        /// When.
        #[serde(with = "rfc3339")]
        at: SystemTime,
        /// What will be created.
        intent: Intent,
    },
    /// A resource was created or is about to be changed, with how to undo it.
    #[serde(rename_all = "camelCase")]
    Track {
        /// Sequence number; the step id unless `intent` is set.
        seq: u64,
        /// When.
        #[serde(with = "rfc3339")]
        at: SystemTime,
        /// The intent this is the outcome of (then the intent's seq is the step id).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        intent: Option<u64>,
        /// The resource.
        resource: ResourceRef,
        /// How to undo it; none means rollback skips it with a warning.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        undo: Option<Undo>,
        /// Caller notes, redacted.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        metadata: BTreeMap<String, String>,
    },
    /// The create of an intent definitely did not happen.
    #[serde(rename_all = "camelCase")]
    IntentFailed {
        /// Sequence number.
        seq: u64,
        /// When.
        #[serde(with = "rfc3339")]
        at: SystemTime,
        /// The intent's seq.
        intent: u64,
        /// Why.
        reason: String,
    },
    /// A rollback (live or recovery) began.
    #[serde(rename_all = "camelCase")]
    RollbackStarted {
        /// Sequence number.
        seq: u64,
        /// When.
        #[serde(with = "rfc3339")]
        at: SystemTime,
        /// Why.
        reason: String,
    },
    /// A step was undone; a later rollback skips it.
    #[serde(rename_all = "camelCase")]
    Undone {
        /// Sequence number.
        seq: u64,
        /// When.
        #[serde(with = "rfc3339")]
        at: SystemTime,
        /// The step.
        step: u64,
        /// What the undo found.
        outcome: UndoOutcome,
    },
    /// Undoing a step failed; a later rollback tries again.
    #[serde(rename_all = "camelCase")]
    UndoFailed {
        /// Sequence number.
        seq: u64,
        /// When.
        #[serde(with = "rfc3339")]
        at: SystemTime,
        /// The step.
        step: u64,
        /// The error message.
        error: String,
        /// Whether trying again may help.
        class: FailureClass,
    },
    /// The run ended (a later `end` supersedes an earlier one).
    #[serde(rename_all = "camelCase")]
    End {
        /// Sequence number.
        seq: u64,
        /// When.
        #[serde(with = "rfc3339")]
        at: SystemTime,
        /// How.
        status: EndStatus,
        /// Why, for rollbacks and failures.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl Record {
    /// The record's sequence number (0 for the header).
    pub fn seq(&self) -> u64 {
        match self {
            Record::Header(_) => 0,
            Record::Intent { seq, .. }
            | Record::Track { seq, .. }
            | Record::IntentFailed { seq, .. }
            | Record::RollbackStarted { seq, .. }
            | Record::Undone { seq, .. }
            | Record::UndoFailed { seq, .. }
            | Record::End { seq, .. } => *seq,
        }
    }

    /// When the record was written (for the header, when the run began).
    pub fn at(&self) -> SystemTime {
        match self {
            Record::Header(h) => h.started_at,
            Record::Intent { at, .. }
            | Record::Track { at, .. }
            | Record::IntentFailed { at, .. }
            | Record::RollbackStarted { at, .. }
            | Record::Undone { at, .. }
            | Record::UndoFailed { at, .. }
            | Record::End { at, .. } => *at,
        }
    }
}

/// Key fragments (compared case-insensitively, ignoring `-` and `_`) whose values are never
/// journaled: a caller attaching a token as metadata must not leak it into a file on disk.
const SECRET_KEY_FRAGMENTS: &[&str] = &[
    "secret",
    "password",
    "passwd",
    "token",
    "credential",
    "apikey",
    "connectionstring",
    "privatekey",
    "accountkey",
];

/// Replaces values under secret-looking keys (`client_secret`, `apiKey`, `sasToken`, …) with
/// `"***"`. Applied to all metadata before it is journaled or kept in memory.
pub fn redact(metadata: BTreeMap<String, String>) -> BTreeMap<String, String> {
    metadata
        .into_iter()
        .map(|(k, v)| {
            let norm: String = k
                .chars()
                .filter(|c| *c != '_' && *c != '-')
                .flat_map(char::to_lowercase)
                .collect();
            if SECRET_KEY_FRAGMENTS.iter().any(|f| norm.contains(f)) {
                (k, "***".to_owned())
            } else {
                (k, v)
            }
        })
        .collect()
}

/// RFC 3339 timestamps for `SystemTime`, through the `time` crate.
pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _, ser::Error as _};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let text = OffsetDateTime::from(*t)
            .format(&Rfc3339)
            .map_err(S::Error::custom)?;
        s.serialize_str(&text)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339)
            .map(SystemTime::from)
            .map_err(D::Error::custom)
    }
}

/// [`rfc3339`] for an optional timestamp (`null` when absent).
pub(crate) mod rfc3339_opt {
    use std::time::SystemTime;

    use serde::Serializer;

    pub(crate) fn serialize<S: Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn records_round_trip_with_documented_shape() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_767_225_600_250);
        let r = Record::Track {
            seq: 2,
            at,
            intent: Some(1),
            resource: ResourceRef::workspace("w1", "sales-dev"),
            undo: Some(Undo::new(
                "workspace",
                &serde_json::json!({"op": "delete", "workspaceId": "w1"}),
            )),
            metadata: BTreeMap::new(),
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"type":"track","seq":2,"at":"2026-01-01T00:00:00.25Z","intent":1,"resource":{"kind":"Workspace","id":"w1","displayName":"sales-dev"},"undo":{"kind":"workspace","payload":{"op":"delete","workspaceId":"w1"}}}"#
        );
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), r);
        let e = Record::End {
            seq: 9,
            at,
            status: EndStatus::RolledBack,
            reason: None,
        };
        let line = serde_json::to_string(&e).unwrap();
        assert!(line.contains(r#""status":"rolledBack""#), "{line}");
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap().seq(), 9);
    }

    #[test]
    fn secret_looking_metadata_is_redacted() {
        let m: BTreeMap<String, String> = [
            ("client_secret", "s3cr3t"),
            ("apiKey", "k"),
            ("SAS-Token", "sig"),
            ("owner", "team-a"),
            ("capacity", "F64"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let r = redact(m);
        assert_eq!(r["client_secret"], "***");
        assert_eq!(r["apiKey"], "***");
        assert_eq!(r["SAS-Token"], "***");
        assert_eq!(r["owner"], "team-a");
        assert_eq!(r["capacity"], "F64");
    }
}
