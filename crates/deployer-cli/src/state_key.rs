//! The state key: journals encrypted at rest with a passphrase from the environment or a
//! secret store.
//!
//! `FABRIK_STATE_KEY` is the passphrase new run journals are encrypted with (fabrik-txn
//! derives the key with Argon2id and a per-journal salt; see `fabrik_txn::seal`).
//! `FABRIK_STATE_OLD_KEYS` lists retired passphrases, separated by commas or newlines, tried
//! after the current one when a journal is opened for rollback, so keys can rotate. Without a
//! key, journals are written in clear and the first run of the process says so once.
//!
//! Either variable (or one entry of the old keys) may be a reference `${secret:NAME}` instead
//! of the passphrase: [`resolve`] reads it through the secret providers the configuration's
//! secrets use (Key Vault when its flag is on, then the environment, then `.env`) before any
//! run starts, and registers the value for redaction.
//!
//! The passphrases are secrets from the environment to the KDF: they are never printed, and
//! no error names one (only the variable it came from, and a reference's secret name).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use fabrik_txn::{JournalError, Keyring};
use secrecy::SecretString;

use crate::config::SecretValue;

/// The passphrase new journals are encrypted with.
pub const KEY_VAR: &str = "FABRIK_STATE_KEY";
/// Retired passphrases, comma- or newline-separated, that still open older journals.
pub const OLD_KEYS_VAR: &str = "FABRIK_STATE_OLD_KEYS";
/// The shortest passphrase accepted as `FABRIK_STATE_KEY` (as OpenTofu asks of its
/// passphrases): Argon2id slows guessing, it does not make a short passphrase strong.
pub const MIN_PASSPHRASE_CHARS: usize = 16;

/// What the first unencrypted run of a process warns.
pub const UNENCRYPTED_WARNING: &str = "run journals are not encrypted: they keep the previous \
     definitions of what a run changes, which may hold connection strings or keys; set \
     FABRIK_STATE_KEY to a passphrase to encrypt them (docs/CLI.md)";

/// The values of the `${secret:NAME}` references [`resolve`] read, by name.
static RESOLVED: RwLock<BTreeMap<String, SecretString>> = RwLock::new(BTreeMap::new());

/// The secret name when `value` is a reference `${secret:NAME}` as a whole.
fn reference(value: &str) -> Option<&str> {
    value
        .trim()
        .strip_prefix("${secret:")
        .and_then(|r| r.strip_suffix('}'))
        .filter(|n| !n.is_empty())
}

/// The entries of the two variables, each with the variable it came from.
fn entries(get: &impl Fn(&str) -> Option<String>) -> Vec<(&'static str, String)> {
    let old = get(OLD_KEYS_VAR).unwrap_or_default();
    let old = old
        .split([',', '\n'])
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| (OLD_KEYS_VAR, k.to_owned()));
    get(KEY_VAR)
        .map(|k| (KEY_VAR, k))
        .into_iter()
        .chain(old)
        .collect()
}

/// Reads the `${secret:NAME}` references among `FABRIK_STATE_KEY` and `FABRIK_STATE_OLD_KEYS`
/// through the configuration's secret providers (`config` locates `.env`; `flags` turns Key
/// Vault on; `auth` and `ca_cert` are the command's), then checks the keyring they make. A
/// command that writes or opens a journal calls it before its run starts: a reference that
/// cannot be read is an error naming the variable and the secret, never a value.
pub async fn resolve(
    config: &Path,
    flags: &fabrik_flags::Flags,
    auth: Option<&str>,
    ca_cert: Option<&Path>,
) -> Result<(), String> {
    let get = |k: &str| std::env::var(k).ok();
    let refs: Vec<(&str, String)> = entries(&get)
        .into_iter()
        .filter_map(|(var, v)| reference(&v).map(|n| (var, n.to_owned())))
        .collect();
    if !refs.is_empty() {
        let mut names: Vec<String> = refs.iter().map(|(_, n)| n.clone()).collect();
        names.sort();
        names.dedup();
        let values = crate::secrets::resolve_names(names, config, flags, auth, ca_cert).await;
        let mut resolved = RESOLVED.write().unwrap_or_else(|p| p.into_inner());
        for (var, name) in refs {
            match values.get(&name) {
                Some(SecretValue::Value(v)) => {
                    resolved.insert(name, SecretString::from(v.clone()));
                }
                Some(SecretValue::Missing(why)) => {
                    return Err(format!("{var}: ${{secret:{name}}} cannot be read: {why}"));
                }
                None => return Err(format!("{var}: ${{secret:{name}}} was not resolved")),
            }
        }
    }
    from_env().map(|_| ())
}

/// The keyring from the process environment, references replaced by what [`resolve`] read.
pub fn from_env() -> Result<Keyring, String> {
    keyring_from(|k| std::env::var(k).ok())
}

/// The keyring `get` describes (`FABRIK_STATE_KEY`, `FABRIK_STATE_OLD_KEYS`), references
/// replaced by what [`resolve`] read. A set but empty or short key is an error rather than a
/// silent fallback to clear journals; so is a reference this process has not resolved.
pub fn keyring_from(get: impl Fn(&str) -> Option<String>) -> Result<Keyring, String> {
    let resolved = RESOLVED.read().unwrap_or_else(|p| p.into_inner());
    keyring_with(get, |name| resolved.get(name).cloned())
}

/// [`keyring_from`] with the references' values from `lookup`.
fn keyring_with(
    get: impl Fn(&str) -> Option<String>,
    lookup: impl Fn(&str) -> Option<SecretString>,
) -> Result<Keyring, String> {
    use secrecy::ExposeSecret;
    let value = |var: &str, v: String| match reference(&v) {
        None => Ok(SecretString::from(v)),
        Some(name) => lookup(name)
            .ok_or_else(|| format!("{var}: ${{secret:{name}}} was not resolved by this command")),
    };
    let mut current = None;
    let mut old = Vec::new();
    for (var, v) in entries(&get) {
        let secret = value(var, v)?;
        if var == OLD_KEYS_VAR {
            old.push(secret);
            continue;
        }
        let k = secret.expose_secret();
        if k.trim().is_empty() {
            return Err(format!(
                "{KEY_VAR} is set but empty; unset it to journal in clear"
            ));
        }
        if k.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(format!(
                "{KEY_VAR} is too short: a state passphrase needs at least \
                 {MIN_PASSPHRASE_CHARS} characters"
            ));
        }
        current = Some(secret);
    }
    let keys = current.map_or_else(Keyring::none, Keyring::new);
    Ok(keys.with_old(old))
}

static WARNED: AtomicBool = AtomicBool::new(false);

/// Warns, once per process, that `keys` leaves the run's journal in clear. Returns whether it
/// warned now.
pub fn warn_if_unencrypted(keys: &Keyring) -> bool {
    if keys.encrypts() || WARNED.swap(true, Ordering::Relaxed) {
        return false;
    }
    // fabrik's own line on stderr, like its other warnings, not a raw log line (the console
    // log filter keeps library warnings out of a user's terminal).
    #[allow(
        clippy::print_stderr,
        reason = "a warning for the person running fabrik"
    )]
    {
        eprintln!("warning: {UNENCRYPTED_WARNING}");
    }
    true
}

/// `e`, with what to do about a missing or wrong key (naming the variables, never a value).
pub fn explain(e: &JournalError) -> String {
    match e {
        JournalError::KeyRequired { .. } => format!(
            "{e}; set {KEY_VAR} (or list it in {OLD_KEYS_VAR}) to the passphrase the run was \
             written with"
        ),
        JournalError::WrongKey { .. } => format!(
            "{e}; if the key was rotated, list the passphrase the run was written with in \
             {OLD_KEYS_VAR}"
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_key_and_old_keys_are_read_and_split_on_commas_and_newlines() {
        let keys = keyring_from(env(&[
            (KEY_VAR, "a passphrase of some length"),
            (
                OLD_KEYS_VAR,
                "first old key, second old key\nthird old key,,\n",
            ),
        ]))
        .unwrap();
        assert!(keys.encrypts());
        assert_eq!(keys.len(), 4);
        let old_only = keyring_from(env(&[(OLD_KEYS_VAR, "only an old key")])).unwrap();
        assert!(!old_only.encrypts());
        assert_eq!(old_only.len(), 1);
        assert!(keyring_from(env(&[])).unwrap().is_empty());
    }

    #[test]
    fn references_take_the_resolved_value_and_an_unresolved_one_is_named() {
        let lookup = |name: &str| {
            (name == "state-pass").then(|| SecretString::from("a resolved passphrase".to_owned()))
        };
        let keys = keyring_with(
            env(&[
                (KEY_VAR, " ${secret:state-pass} "),
                (OLD_KEYS_VAR, "an old literal key,${secret:state-pass}"),
            ]),
            lookup,
        )
        .unwrap();
        assert!(keys.encrypts());
        assert_eq!(keys.len(), 3);
        let e = keyring_with(env(&[(OLD_KEYS_VAR, "${secret:gone}")]), lookup).unwrap_err();
        assert!(
            e.contains(OLD_KEYS_VAR) && e.contains("${secret:gone}"),
            "{e}"
        );
        // A short resolved value is refused like a short literal one, without echoing it.
        let short = |_: &str| Some(SecretString::from("tiny-Pass".to_owned()));
        let e = keyring_with(env(&[(KEY_VAR, "${secret:s}")]), short).unwrap_err();
        assert!(e.contains("at least 16") && !e.contains("tiny-Pass"), "{e}");
    }

    #[test]
    fn an_empty_or_short_key_is_refused_without_echoing_it() {
        let e = keyring_from(env(&[(KEY_VAR, "  ")])).unwrap_err();
        assert!(e.contains("empty"), "{e}");
        let e = keyring_from(env(&[(KEY_VAR, "tiny-Pass")])).unwrap_err();
        assert!(e.contains("at least 16") && !e.contains("tiny-Pass"), "{e}");
    }

    #[test]
    fn the_unencrypted_warning_is_given_once_per_process_and_never_with_a_key() {
        let with_key = keyring_from(env(&[(KEY_VAR, "a passphrase of some length")])).unwrap();
        assert!(!warn_if_unencrypted(&with_key));
        let first = warn_if_unencrypted(&Keyring::none());
        let second = warn_if_unencrypted(&Keyring::none());
        // Another test of this process may have warned first; never twice.
        assert!(!second);
        assert!(first || WARNED.load(Ordering::Relaxed));
    }

    #[test]
    fn key_errors_say_which_variable_to_set() {
        let e = explain(&JournalError::KeyRequired {
            run_id: "20260101T000000Z-1a2b3c4d".into(),
        });
        assert!(
            e.contains("20260101T000000Z-1a2b3c4d") && e.contains(KEY_VAR),
            "{e}"
        );
        let e = explain(&JournalError::WrongKey {
            run_id: "r".into(),
            tried: 2,
        });
        assert!(e.contains(OLD_KEYS_VAR) && e.contains("2 state key"), "{e}");
    }
}
