//! Encryption at rest: what a journal file holds with a state key, what reads without it, and
//! what a rollback needs.

use std::sync::Mutex;

use crate::support::TestUndo;
use async_trait::async_trait;
use base64::Engine as _;
use fabrik_core::resource::{
    DefinitionPart, ResourceKind, ResourceRef, Undo, UndoError, UndoOutcome, Undoer,
};
use fabrik_txn::{
    Intent, Journal, JournalError, KdfParams, Keyring, Record, RunStatus, Step, Transaction,
    TxnOptions,
};
use secrecy::SecretString;

const PLANTED: &str = "Server=tcp:db;User ID=admin;Password=Sup3rS3cretValue!";
const OLD_PASS: &str = "the passphrase before rotation";
const NEW_PASS: &str = "the passphrase after rotation";

fn cheap() -> KdfParams {
    KdfParams {
        m_cost: 8,
        t_cost: 1,
        p_cost: 1,
    }
}

fn key(pass: &str) -> Keyring {
    Keyring::new(SecretString::from(pass.to_owned())).with_kdf(cheap())
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn planted_undo() -> Undo {
    TestUndo::RestoreDefinition {
        workspace_id: "ws-1".into(),
        item_id: "nb-1".into(),
        parts: vec![DefinitionPart {
            path: "notebook-content.py".into(),
            payload: base64::engine::general_purpose::STANDARD.encode(PLANTED),
        }],
    }
    .into()
}

/// Records every undo it is asked to do.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Undo>>);

#[async_trait]
impl Undoer for Recorder {
    async fn undo(&self, undo: &Undo) -> Result<UndoOutcome, UndoError> {
        self.0.lock().unwrap().push(undo.clone());
        Ok(UndoOutcome::Done)
    }
}

/// A run that changed a notebook holding a connection string, created a workspace, and died
/// (dropped) before commit, journaled with `keys`. Returns its run id.
async fn abandoned_run(dir: &std::path::Path, keys: Keyring) -> String {
    let txn = Transaction::begin("deploy dev", TxnOptions::new(dir).with_keys(keys)).unwrap();
    let intent = txn
        .intend(Intent::create(ResourceKind::Workspace, None, "sales-dev"))
        .await
        .unwrap();
    txn.complete_intent(
        intent,
        ResourceRef::workspace("ws-1", "sales-dev"),
        TestUndo::DeleteWorkspace {
            workspace_id: "ws-1".into(),
        }
        .into(),
    )
    .await
    .unwrap();
    let notebook =
        ResourceRef::in_workspace(ResourceKind::Item, "ws-1", "nb-1", Some("etl".into()));
    txn.track_step(Step::new(notebook, planted_undo()).meta("origin", PLANTED))
        .await
        .unwrap();
    let run_id = txn.run_id().to_owned();
    drop(txn);
    run_id
}

fn journal_text(dir: &std::path::Path, run_id: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{run_id}.jsonl"))).unwrap()
}

#[tokio::test]
async fn a_keyed_journal_holds_no_plaintext_of_a_definition_value() {
    let dir = tempfile::tempdir().unwrap();
    let run_id = abandoned_run(dir.path(), key(OLD_PASS)).await;
    let text = journal_text(dir.path(), &run_id);
    let b64 = base64::engine::general_purpose::STANDARD.encode(PLANTED);
    for needle in [
        PLANTED,
        "Sup3rS3cretValue",
        b64.as_str(),
        "restoreDefinition",
        OLD_PASS,
    ] {
        assert!(
            !text.contains(needle),
            "{needle:?} is in the journal:\n{text}"
        );
    }
    assert!(
        text.contains(r#""encryption":{"cipher":"xchacha20poly1305""#),
        "{text}"
    );
    assert!(text.contains(r#""format":2"#), "{text}");
    // The same run without a key journals the value in clear: the test would notice if the
    // planted value were not journaled at all.
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = abandoned_run(plain_dir.path(), Keyring::none()).await;
    assert!(journal_text(plain_dir.path(), &plain).contains(&b64));
}

#[tokio::test]
async fn status_lists_an_encrypted_run_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let run_id = abandoned_run(dir.path(), key(OLD_PASS)).await;
    let listing = Journal::list_runs(dir.path()).unwrap();
    assert!(listing.unreadable.is_empty(), "{:?}", listing.unreadable);
    let run = &listing.runs[0];
    assert_eq!(run.run_id, run_id);
    assert_eq!(run.name, "deploy dev");
    assert_eq!(run.status, RunStatus::Abandoned);
    assert_eq!((run.resources, run.pending_undos), (2, 2));
    assert!(run.needs_recovery() && run.encrypted);
    // Opened without keys: names and ids read, sealed values do not.
    let journal = Journal::open(dir.path(), &run_id).unwrap();
    assert!(journal.is_encrypted() && !journal.is_readable());
    let names: Vec<_> = journal
        .resources()
        .iter()
        .map(|r| (r.resource.id.clone(), r.undo.is_none()))
        .collect();
    assert_eq!(
        names,
        [("ws-1".to_owned(), true), ("nb-1".to_owned(), true)]
    );
}

#[tokio::test]
async fn rollback_without_the_key_or_with_a_wrong_one_fails_naming_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let run_id = abandoned_run(dir.path(), key(OLD_PASS)).await;
    let undoer = Recorder::default();
    let err = Journal::open(dir.path(), &run_id)
        .unwrap()
        .rollback("recovery", &undoer, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, JournalError::KeyRequired { run_id: r } if *r == run_id),
        "{err}"
    );
    assert!(err.to_string().contains(&run_id), "{err}");
    let err = Journal::open(dir.path(), &run_id)
        .unwrap()
        .with_keys(&Keyring::none())
        .unwrap_err();
    assert!(matches!(err, JournalError::KeyRequired { .. }), "{err}");
    let err = Journal::open(dir.path(), &run_id)
        .unwrap()
        .with_keys(&key("a different passphrase"))
        .unwrap_err();
    assert!(
        matches!(&err, JournalError::WrongKey { tried: 1, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&run_id) && !msg.contains("different passphrase"),
        "{msg}"
    );
    assert!(
        undoer.0.lock().unwrap().is_empty(),
        "nothing may be undone without the key"
    );
    // Nothing was appended by the refused attempts: the run still needs recovery.
    let listing = Journal::list_runs(dir.path()).unwrap();
    assert!(listing.runs[0].needs_recovery());
}

#[tokio::test]
async fn after_rotation_the_old_key_listed_as_old_rolls_the_run_back() {
    let dir = tempfile::tempdir().unwrap();
    let run_id = abandoned_run(dir.path(), key(OLD_PASS)).await;
    let rotated = key(NEW_PASS).with_old([secret("unrelated old key"), secret(OLD_PASS)]);
    let undoer = Recorder::default();
    let journal = Journal::open(dir.path(), &run_id)
        .unwrap()
        .with_keys(&rotated)
        .unwrap();
    assert!(journal.is_readable());
    let report = journal
        .rollback("recovery after Hunter2 leak", &undoer, None)
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    // Last in, first out, with the definition exactly as journaled.
    let done = undoer.0.lock().unwrap().clone();
    assert_eq!(
        done,
        [
            planted_undo(),
            TestUndo::DeleteWorkspace {
                workspace_id: "ws-1".into()
            }
            .into()
        ]
    );
    // What the rollback appended is sealed under the journal's key too.
    let text = journal_text(dir.path(), &run_id);
    assert!(!text.contains("Hunter2"), "{text}");
    let listing = Journal::list_runs(dir.path()).unwrap();
    assert_eq!(listing.runs[0].status, RunStatus::RolledBack);
    let reopened = Journal::open(dir.path(), &run_id)
        .unwrap()
        .with_keys(&key(OLD_PASS))
        .unwrap();
    let reasons: Vec<_> = reopened
        .records()
        .iter()
        .filter_map(|r| match r {
            Record::End { reason, .. } => reason.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.last().unwrap(), "recovery after Hunter2 leak");
}

#[tokio::test]
async fn a_tampered_ciphertext_is_an_error_not_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let run_id = abandoned_run(dir.path(), key(OLD_PASS)).await;
    let path = dir.path().join(format!("{run_id}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let n = lines.iter().position(|l| l.contains("nb-1")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&lines[n]).unwrap();
    let sealed = v["sealed"].as_str().unwrap().to_owned();
    // Flip one base64 character in the middle of the ciphertext.
    let mid = sealed.len() / 2;
    let flipped = if &sealed[mid..=mid] == "A" { "B" } else { "A" };
    v["sealed"] = format!("{}{flipped}{}", &sealed[..mid], &sealed[mid + 1..]).into();
    lines[n] = v.to_string();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let err = Journal::open(dir.path(), &run_id)
        .unwrap()
        .with_keys(&key(OLD_PASS))
        .unwrap_err();
    match &err {
        JournalError::Corrupt { line, reason, .. } => {
            assert_eq!(*line, n + 1);
            assert!(reason.contains("authentication failed"), "{reason}");
        }
        other => panic!("expected corruption, got {other}"),
    }
}

#[tokio::test]
async fn a_live_rollback_of_an_encrypted_run_undoes_and_seals_what_it_appends() {
    let dir = tempfile::tempdir().unwrap();
    let txn = Transaction::begin(
        "deploy dev",
        TxnOptions::new(dir.path()).with_keys(key(NEW_PASS)),
    )
    .unwrap();
    let notebook =
        ResourceRef::in_workspace(ResourceKind::Item, "ws-1", "nb-1", Some("etl".into()));
    txn.track(notebook, planted_undo()).await.unwrap();
    let undoer = Recorder::default();
    let report = txn
        .rollback("create failed: Password=Hunter2", &undoer)
        .await
        .unwrap();
    assert!(report.is_complete());
    assert_eq!(undoer.0.lock().unwrap().as_slice(), [planted_undo()]);
    let text = journal_text(dir.path(), txn.run_id());
    assert!(
        !text.contains("Hunter2") && !text.contains("Sup3rS3cret"),
        "{text}"
    );
}
