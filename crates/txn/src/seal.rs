//! Journal encryption at rest: what a run changed, sealed with a key derived from a passphrase.
//!
//! A journal holds the previous definitions of everything a run changed, which can embed
//! connection strings or keys someone put there. With a [`Keyring`] that has a current
//! passphrase, [`Transaction::begin`](crate::Transaction::begin) derives a 256-bit key with
//! Argon2id from the passphrase and a fresh random 16-byte salt, writes the salt, the KDF's
//! parameters and a key check into the header (`"encryption"`, journal format 2), and seals
//! every record that holds a value with XChaCha20-Poly1305 under a fresh random 24-byte nonce
//! before it reaches the [`JournalStore`](fabrik_core::JournalStore). Every store therefore
//! only ever sees ciphertext.
//!
//! What stays readable, so `status` and run listings work without the key: the header, each
//! record's `type`, `seq` and `at`, intents (kind, workspace, display name, item type, folder,
//! ids of same-named resources: names and ids, which rollback's resolver and the listing
//! need), a tracked resource's reference (kind, id, workspace, display name), whether it has
//! an undo (`"hasUndo":true`), step numbers and undo outcomes. What is sealed: undo records
//! (they carry previous definitions and settings), tracked resources' metadata, and every
//! free-text reason or error message (service errors can echo what was sent).
//!
//! ```text
//! {"type":"header","format":2,…,"encryption":{"cipher":"xchacha20poly1305","kdf":"argon2id",
//!   "salt":"…","mCost":19456,"tCost":2,"pCost":1,"check":"…"}}
//! {"type":"track","seq":2,"at":"…","resource":{…},"hasUndo":true,"sealed":"<base64>"}
//! ```
//!
//! `sealed` is base64 of nonce ‖ ciphertext ‖ tag, and the plaintext is the *whole* record as
//! it would be journaled without encryption. The associated data binds it to its journal and
//! line (`fabrik-journal\0RUN_ID\0SEQ`), so a record cannot be moved to another run or
//! position. On reading with the key, the record is the decrypted one, and its readable part
//! must equal the line's: altering either is reported as corruption, never read as data.
//! `check` seals the empty message with associated data `fabrik-journal-key\0RUN_ID`: a key
//! that cannot open it is a wrong key, told apart from a damaged record.
//!
//! Rotation: a journal stays under the key it was written with (it is append-only; a
//! rollback appends under the key that opened it). Keep a retired passphrase among the
//! keyring's old keys for as long as journals written with it may need a rollback.

use std::fmt;
use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, Generate, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::record::Record;

/// The AEAD named in headers.
pub const CIPHER: &str = "xchacha20poly1305";
/// The KDF named in headers.
pub const KDF: &str = "argon2id";
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
/// A header asking for more than this (KiB, passes, lanes) is refused rather than obeyed:
/// reading a journal must not be a way to make fabrik allocate gigabytes.
const MAX_KDF: (u32, u32, u32) = (1 << 20, 16, 16);

/// Argon2id's cost parameters, recorded in each encrypted journal's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory, KiB.
    pub m_cost: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// OWASP's recommended Argon2id configuration: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        Self {
            m_cost: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

/// How an encrypted journal was sealed: the header's `encryption` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Encryption {
    /// The AEAD ([`CIPHER`]).
    pub cipher: String,
    /// The key derivation ([`KDF`]).
    pub kdf: String,
    /// The journal's random salt, base64.
    pub salt: String,
    /// Argon2id memory, KiB.
    pub m_cost: u32,
    /// Argon2id passes.
    pub t_cost: u32,
    /// Argon2id lanes.
    pub p_cost: u32,
    /// The empty message sealed under the journal's key, base64: tells a wrong key apart.
    pub check: String,
}

/// The passphrases journals are sealed and opened with: the current one (new journals are
/// sealed with it) and old ones, tried after it when opening. Never printed: its `Debug`
/// says only how many keys it holds.
#[derive(Clone, Default)]
pub struct Keyring {
    current: Option<SecretString>,
    old: Vec<SecretString>,
    kdf: KdfParams,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.as_ref().map(|_| "<redacted>"))
            .field("old", &self.old.len())
            .field("kdf", &self.kdf)
            .finish()
    }
}

impl Keyring {
    /// No keys: journals are written in clear, and encrypted ones cannot be rolled back.
    pub fn none() -> Self {
        Self::default()
    }

    /// New journals are sealed with `passphrase`.
    pub fn new(passphrase: SecretString) -> Self {
        Self {
            current: Some(passphrase),
            ..Self::default()
        }
    }

    /// Adds retired passphrases, tried (after the current one) when opening a journal.
    pub fn with_old(mut self, old: impl IntoIterator<Item = SecretString>) -> Self {
        self.old.extend(old);
        self
    }

    /// Argon2id costs for journals sealed from now on (tests lower them; opening always uses
    /// the costs the journal's header records).
    pub fn with_kdf(mut self, kdf: KdfParams) -> Self {
        self.kdf = kdf;
        self
    }

    /// Whether new journals are sealed.
    pub fn encrypts(&self) -> bool {
        self.current.is_some()
    }

    /// How many passphrases it holds.
    pub fn len(&self) -> usize {
        usize::from(self.current.is_some()) + self.old.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A fresh salt and key for a new journal of run `run_id`; `None` without a current key.
    pub(crate) fn seal_new(&self, run_id: &str) -> Result<Option<(Encryption, Sealer)>, String> {
        let Some(pass) = &self.current else {
            return Ok(None);
        };
        let salt = <[u8; SALT_LEN]>::try_generate()
            .map_err(|e| format!("no random salt from the operating system: {e}"))?;
        let kdf = self.kdf;
        let sealer = Sealer::derive(pass, &salt, kdf, run_id)?;
        let check = sealer.seal_with(&[], check_aad(run_id).as_bytes())?;
        let enc = Encryption {
            cipher: CIPHER.into(),
            kdf: KDF.into(),
            salt: B64.encode(salt),
            m_cost: kdf.m_cost,
            t_cost: kdf.t_cost,
            p_cost: kdf.p_cost,
            check,
        };
        Ok(Some((enc, sealer)))
    }

    /// The key that opens journal `run_id` sealed as `enc`: the current passphrase, else each
    /// old one in order.
    pub(crate) fn open(&self, enc: &Encryption, run_id: &str) -> Result<Sealer, OpenError> {
        if enc.cipher != CIPHER || enc.kdf != KDF {
            return Err(OpenError::Unsupported(format!(
                "cipher {:?} with kdf {:?} (this tool knows {CIPHER} with {KDF})",
                enc.cipher, enc.kdf
            )));
        }
        let (m, t, p) = MAX_KDF;
        if enc.m_cost > m || enc.t_cost > t || enc.p_cost > p {
            return Err(OpenError::Unsupported(format!(
                "KDF costs {}/{}/{} exceed the limit {m}/{t}/{p}",
                enc.m_cost, enc.t_cost, enc.p_cost
            )));
        }
        let salt = B64
            .decode(&enc.salt)
            .map_err(|_| OpenError::Unsupported("the salt is not base64".into()))?;
        let kdf = KdfParams {
            m_cost: enc.m_cost,
            t_cost: enc.t_cost,
            p_cost: enc.p_cost,
        };
        if self.is_empty() {
            return Err(OpenError::NoKey);
        }
        for pass in self.current.iter().chain(&self.old) {
            let sealer =
                Sealer::derive(pass, &salt, kdf, run_id).map_err(OpenError::Unsupported)?;
            if sealer
                .open_with(&enc.check, check_aad(run_id).as_bytes())
                .is_ok()
            {
                return Ok(sealer);
            }
        }
        Err(OpenError::WrongKey { tried: self.len() })
    }
}

/// Why a keyring could not open a journal.
#[derive(Debug)]
pub(crate) enum OpenError {
    NoKey,
    WrongKey { tried: usize },
    Unsupported(String),
}

fn check_aad(run_id: &str) -> String {
    format!("fabrik-journal-key\0{run_id}")
}

fn record_aad(run_id: &str, seq: u64) -> String {
    format!("fabrik-journal\0{run_id}\0{seq}")
}

/// One journal's key: seals and opens its records.
pub(crate) struct Sealer {
    cipher: XChaCha20Poly1305,
    run_id: String,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    fn derive(
        pass: &SecretString,
        salt: &[u8],
        kdf: KdfParams,
        run_id: &str,
    ) -> Result<Self, String> {
        let params = Params::new(kdf.m_cost, kdf.t_cost, kdf.p_cost, Some(32))
            .map_err(|e| format!("invalid KDF parameters: {e}"))?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(pass.expose_secret().as_bytes(), salt, key.as_mut())
            .map_err(|e| format!("key derivation failed: {e}"))?;
        let cipher = XChaCha20Poly1305::new_from_slice(key.as_ref())
            .map_err(|_| "key derivation gave a key of the wrong length".to_owned())?;
        Ok(Self {
            cipher,
            run_id: run_id.to_owned(),
        })
    }

    fn seal_with(&self, msg: &[u8], aad: &[u8]) -> Result<String, String> {
        let nonce = XNonce::try_generate()
            .map_err(|e| format!("no random nonce from the operating system: {e}"))?;
        let ct = self
            .cipher
            .encrypt(&nonce, Payload { msg, aad })
            .map_err(|_| "encryption failed".to_owned())?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(B64.encode(out))
    }

    fn open_with(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, String> {
        let bytes = B64
            .decode(sealed)
            .map_err(|_| "the sealed payload is not base64".to_owned())?;
        if bytes.len() < NONCE_LEN {
            return Err("the sealed payload is too short".into());
        }
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| "bad nonce".to_owned())?;
        self.cipher
            .decrypt(&nonce, Payload { msg: ct, aad })
            .map_err(|_| {
                "authentication failed: the record was altered, or belongs to another journal or line"
                    .to_owned()
            })
    }
}

/// The fields of each record type that may hold values, sealed in an encrypted journal.
fn sealed_fields(record: &Record) -> &'static [&'static str] {
    match record {
        Record::Track { .. } => &["undo", "metadata"],
        Record::IntentFailed { .. } | Record::RollbackStarted { .. } | Record::End { .. } => {
            &["reason"]
        }
        Record::UndoFailed { .. } => &["error"],
        Record::Header(_) | Record::Intent { .. } | Record::Undone { .. } => &[],
    }
}

/// What placeholder a sealed field gets when the journal is read without its key.
fn placeholder(field: &str) -> Option<Value> {
    match field {
        "reason" | "error" => Some(Value::String("(encrypted)".into())),
        _ => None,
    }
}

/// The readable part of `record` as journaled: its JSON object without the sealed fields,
/// with `hasUndo` for a track that has one. `None` when nothing needs sealing.
fn clear_part(record: &Record) -> Result<Option<Map<String, Value>>, String> {
    let Value::Object(mut obj) = serde_json::to_value(record).map_err(|e| e.to_string())? else {
        return Err("a record is not a JSON object".into());
    };
    let mut removed = false;
    for f in sealed_fields(record) {
        removed |= obj.remove(*f).is_some();
    }
    if let Record::Track { undo: Some(_), .. } = record {
        obj.insert("hasUndo".into(), Value::Bool(true));
    }
    Ok(removed.then_some(obj))
}

/// One journal line for `record`, newline included: sealed when `sealer` is given and the
/// record holds something to seal, plain otherwise.
pub(crate) fn encode(record: &Record, sealer: Option<&Sealer>) -> Result<Vec<u8>, String> {
    let plain = serde_json::to_vec(record).map_err(|e| e.to_string())?;
    let mut line = match (sealer, clear_part(record)?) {
        (Some(s), Some(mut clear)) => {
            let aad = record_aad(&s.run_id, record.seq());
            clear.insert(
                "sealed".into(),
                Value::String(s.seal_with(&plain, aad.as_bytes())?),
            );
            serde_json::to_vec(&clear).map_err(|e| e.to_string())?
        }
        _ => plain,
    };
    line.push(b'\n');
    Ok(line)
}

/// One line read back.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) record: Record,
    /// Read without its key: the record's undo exists but is not in `record`.
    pub(crate) hidden_undo: bool,
    /// Read without its key: sealed fields are missing or placeholders.
    pub(crate) sealed: bool,
}

/// Why a line could not be read.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// Not JSON, or not a record (a torn last line, or corruption).
    Json(String),
    /// A sealed record that does not open, or whose readable part was changed.
    Tampered(String),
}

/// Reads one line. A sealed line is opened with `sealer`, or, without it, read as its
/// readable part with placeholders for what is sealed.
pub(crate) fn decode(segment: &[u8], sealer: Option<&Sealer>) -> Result<Decoded, DecodeError> {
    let json = |e: serde_json::Error| DecodeError::Json(e.to_string());
    let value: Value = serde_json::from_slice(segment).map_err(json)?;
    let Value::Object(mut clear) = value else {
        return Err(DecodeError::Json("the line is not a JSON object".into()));
    };
    let Some(sealed) = clear.remove("sealed") else {
        let record = serde_json::from_value(Value::Object(clear)).map_err(json)?;
        return Ok(Decoded {
            record,
            hidden_undo: false,
            sealed: false,
        });
    };
    let Value::String(sealed) = sealed else {
        return Err(DecodeError::Tampered("\"sealed\" is not a string".into()));
    };
    match sealer {
        Some(s) => open_line(s, &sealed, &clear).map(|record| Decoded {
            record,
            hidden_undo: false,
            sealed: false,
        }),
        None => {
            let hidden_undo = clear.remove("hasUndo") == Some(Value::Bool(true));
            if clear.get("type").and_then(Value::as_str) != Some("track") {
                for f in ["reason", "error"] {
                    if let Some(p) = placeholder(f) {
                        clear.entry(f).or_insert(p);
                    }
                }
            }
            let record = serde_json::from_value(Value::Object(clear)).map_err(json)?;
            Ok(Decoded {
                record,
                hidden_undo,
                sealed: true,
            })
        }
    }
}

fn open_line(s: &Sealer, sealed: &str, clear: &Map<String, Value>) -> Result<Record, DecodeError> {
    let seq = clear.get("seq").and_then(Value::as_u64).unwrap_or(0);
    let plain = s
        .open_with(sealed, record_aad(&s.run_id, seq).as_bytes())
        .map_err(DecodeError::Tampered)?;
    let record: Record = serde_json::from_slice(&plain)
        .map_err(|e| DecodeError::Tampered(format!("the sealed record does not read: {e}")))?;
    let expected = clear_part(&record).map_err(DecodeError::Tampered)?;
    if expected.as_ref() != Some(clear) {
        return Err(DecodeError::Tampered(
            "the readable fields disagree with the sealed record: the line was altered".into(),
        ));
    }
    Ok(record)
}

/// Shared, so the writer thread and the journal can both hold it.
pub(crate) type SharedSealer = Arc<Sealer>;

#[cfg(test)]
mod tests {
    use super::*;
    use fabrik_core::resource::{ResourceRef, Undo};
    use std::collections::BTreeMap;
    use std::time::SystemTime;

    pub(crate) fn cheap() -> KdfParams {
        KdfParams {
            m_cost: 8,
            t_cost: 1,
            p_cost: 1,
        }
    }

    fn keyring(pass: &str) -> Keyring {
        Keyring::new(SecretString::from(pass.to_owned())).with_kdf(cheap())
    }

    fn track(seq: u64) -> Record {
        Record::Track {
            seq,
            at: SystemTime::UNIX_EPOCH,
            intent: None,
            resource: ResourceRef::workspace("w1", "sales-dev"),
            undo: Some(Undo::new(
                "workspace",
                &serde_json::json!({"workspaceId": "Password=hunter2"}),
            )),
            metadata: BTreeMap::from([("note".to_owned(), "AccountKey=abc".to_owned())]),
        }
    }

    #[test]
    fn a_sealed_track_round_trips_and_hides_its_values() {
        let (enc, sealer) = keyring("correct horse battery")
            .seal_new("r1")
            .unwrap()
            .unwrap();
        let line = encode(&track(3), Some(&sealer)).unwrap();
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("AccountKey"),
            "{text}"
        );
        assert!(
            text.contains(r#""hasUndo":true"#) && text.contains("sales-dev"),
            "{text}"
        );
        let opened = keyring("correct horse battery").open(&enc, "r1").unwrap();
        let back = decode(&line, Some(&opened)).unwrap();
        assert_eq!(back.record, track(3));
        let blind = decode(&line, None).unwrap();
        assert!(blind.hidden_undo && blind.sealed);
        assert!(matches!(blind.record, Record::Track { undo: None, .. }));
    }

    #[test]
    fn tampering_with_ciphertext_clear_fields_or_position_is_detected() {
        let (_, s) = keyring("correct horse battery")
            .seal_new("r1")
            .unwrap()
            .unwrap();
        let line = String::from_utf8(encode(&track(3), Some(&s)).unwrap()).unwrap();
        let mut v: Value = serde_json::from_str(&line).unwrap();
        let sealed = v["sealed"].as_str().unwrap().to_owned();
        let mut bytes = B64.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        v["sealed"] = Value::String(B64.encode(&bytes));
        let flipped = serde_json::to_vec(&v).unwrap();
        assert!(matches!(
            decode(&flipped, Some(&s)),
            Err(DecodeError::Tampered(_))
        ));
        // The readable resource changed: the sealed copy disagrees.
        let renamed = line.replace("sales-dev", "sales-prd");
        assert!(matches!(
            decode(renamed.as_bytes(), Some(&s)),
            Err(DecodeError::Tampered(_))
        ));
        // Moved to another seq: the associated data no longer matches.
        let moved = line.replace(r#""seq":3"#, r#""seq":4"#);
        assert!(matches!(
            decode(moved.as_bytes(), Some(&s)),
            Err(DecodeError::Tampered(_))
        ));
    }

    #[test]
    fn the_right_key_is_found_among_old_ones_and_a_wrong_key_is_named_as_such() {
        let (enc, _) = keyring("the old passphrase")
            .seal_new("r1")
            .unwrap()
            .unwrap();
        let rotated = keyring("the new passphrase")
            .with_old([SecretString::from("the old passphrase".to_owned())]);
        assert!(rotated.open(&enc, "r1").is_ok());
        let wrong = keyring("another passphrase");
        assert!(matches!(
            wrong.open(&enc, "r1"),
            Err(OpenError::WrongKey { tried: 1 })
        ));
        assert!(matches!(
            Keyring::none().open(&enc, "r1"),
            Err(OpenError::NoKey)
        ));
        // The check is bound to the run: the same key does not open it as another run's.
        assert!(matches!(
            keyring("the old passphrase").open(&enc, "r2"),
            Err(OpenError::WrongKey { .. })
        ));
    }

    #[test]
    fn records_without_values_stay_plain_and_debug_never_shows_a_key() {
        let (_, s) = keyring("correct horse battery")
            .seal_new("r1")
            .unwrap()
            .unwrap();
        let undone = Record::Undone {
            seq: 5,
            at: SystemTime::UNIX_EPOCH,
            step: 3,
            outcome: fabrik_core::resource::UndoOutcome::Done,
        };
        let line = encode(&undone, Some(&s)).unwrap();
        assert!(!String::from_utf8(line).unwrap().contains("sealed"));
        let k =
            keyring("correct horse battery").with_old([SecretString::from("old one".to_owned())]);
        let dbg = format!("{k:?} {s:?}");
        assert!(
            !dbg.contains("correct horse") && !dbg.contains("old one"),
            "{dbg}"
        );
    }
}
