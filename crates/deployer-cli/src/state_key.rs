//! The state key: journals encrypted at rest with a passphrase from the environment.
//!
//! `FABRIK_STATE_KEY` is the passphrase new run journals are encrypted with (fabrik-txn
//! derives the key with Argon2id and a per-journal salt; see `fabrik_txn::seal`).
//! `FABRIK_STATE_OLD_KEYS` lists retired passphrases, separated by commas or newlines, tried
//! after the current one when a journal is opened for rollback, so keys can rotate. Without a
//! key, journals are written in clear and the first run of the process says so once.
//!
//! The passphrases are secrets from the environment to the KDF: they are never printed, and
//! no error names one (only the variable it came from).

use std::sync::atomic::{AtomicBool, Ordering};

use fabrik_txn::{JournalError, Keyring};
use secrecy::SecretString;

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

/// The keyring from the process environment.
pub fn from_env() -> Result<Keyring, String> {
    keyring_from(|k| std::env::var(k).ok())
}

/// The keyring `get` describes (`FABRIK_STATE_KEY`, `FABRIK_STATE_OLD_KEYS`). A set but
/// empty or short key is an error rather than a silent fallback to clear journals.
pub fn keyring_from(get: impl Fn(&str) -> Option<String>) -> Result<Keyring, String> {
    let current = match get(KEY_VAR) {
        None => None,
        Some(k) if k.trim().is_empty() => {
            return Err(format!(
                "{KEY_VAR} is set but empty; unset it to journal in clear"
            ));
        }
        Some(k) if k.chars().count() < MIN_PASSPHRASE_CHARS => {
            return Err(format!(
                "{KEY_VAR} is too short: a state passphrase needs at least \
                 {MIN_PASSPHRASE_CHARS} characters"
            ));
        }
        Some(k) => Some(SecretString::from(k)),
    };
    let old: Vec<SecretString> = get(OLD_KEYS_VAR)
        .unwrap_or_default()
        .split([',', '\n'])
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| SecretString::from(k.to_owned()))
        .collect();
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
