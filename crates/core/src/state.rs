//! Where run journals and deployment locks live: a local directory or a shared store.
//!
//! fabrik-txn writes journals through [`JournalStore`] and knows nothing else about where
//! they go; the local directory (fabrik-txn's `LocalDirStore`) and Azure Blob Storage
//! (fabrik-state-azure) implement it. [`DeploymentLocks`] is the per-environment lock that
//! keeps two runners from deploying the same environment at once.
//!
//! Durability contract: [`JournalAppender::append`] returns `Ok` only once the bytes would
//! survive the process (fsync'd, or acknowledged by the service), and never lets two writers
//! interleave one journal. Locations and messages never contain credentials.

use std::fmt::{self, Debug};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Clock, Sleeper};

/// Why a state backend operation failed. Every variant names where (a directory or a URL
/// without its query string), never a credential.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A local file operation failed.
    #[error("journal {location}: {op} failed: {source}")]
    Io {
        /// The file or directory.
        location: String,
        /// What was being done.
        op: &'static str,
        /// The cause.
        source: Arc<std::io::Error>,
    },
    /// Another process holds the run (it is being written or recovered).
    #[error("run {run_id} is in use by another process ({location})")]
    Locked {
        /// The run.
        run_id: String,
        /// Its lock (file or blob).
        location: String,
    },
    /// There is no journal for this run.
    #[error("no run {run_id} in {location}")]
    NotFound {
        /// The run asked for.
        run_id: String,
        /// Where it was looked for.
        location: String,
    },
    /// A journal for this run id exists already.
    #[error("run {run_id} already exists in {location}")]
    AlreadyExists {
        /// The run.
        run_id: String,
        /// Where.
        location: String,
    },
    /// Someone else wrote the journal or broke our lease: our writes are no longer ours.
    #[error("{location}: {reason}")]
    Lost {
        /// The journal or lock.
        location: String,
        /// What happened.
        reason: String,
    },
    /// The remote store failed or could not be reached.
    #[error("state store {location}: {op} failed: {message}")]
    Backend {
        /// The blob or container.
        location: String,
        /// What was being done ("append", "acquire lease", …).
        op: &'static str,
        /// The cause, credential-free.
        message: String,
    },
    /// The caller passed something unusable (named in the message).
    #[error("{0}")]
    Invalid(String),
}

/// Run journals, one append-only byte stream per run id.
#[async_trait]
pub trait JournalStore: Send + Sync + Debug {
    /// Where the journals are, for messages (a directory, or a URL without its query string).
    fn location(&self) -> String;

    /// Where run `run_id`'s journal is, for messages.
    fn journal_location(&self, run_id: &str) -> String;

    /// Creates run `run_id`'s journal holding `header`, durably, and takes the run's lock.
    /// Fails with [`StateError::AlreadyExists`] if the run exists.
    async fn create(
        &self,
        run_id: &str,
        header: &[u8],
    ) -> Result<Box<dyn JournalAppender>, StateError>;

    /// Takes run `run_id`'s lock ([`StateError::Locked`] while a writer has it) and returns
    /// the journal's bytes with an appender positioned at their end.
    async fn open(&self, run_id: &str) -> Result<(Vec<u8>, Box<dyn JournalAppender>), StateError>;

    /// The journal's bytes, without taking its lock.
    async fn read(&self, run_id: &str) -> Result<Vec<u8>, StateError>;

    /// The run ids that have a journal, in no particular order.
    async fn list(&self) -> Result<Vec<String>, StateError>;

    /// Whether a live process holds the run's lock now.
    async fn is_locked(&self, run_id: &str) -> Result<bool, StateError>;

    /// The record kept under `key` beside the journals (what the last successful run of a
    /// workspace deployed from secret references), `None` when there is none. Keys are lock
    /// keys: letters, digits, `-`, `_` and `.`.
    async fn read_record(&self, key: &str) -> Result<Option<Vec<u8>>, StateError>;

    /// Replaces the record under `key` with `bytes`, whole or not at all, durably.
    async fn write_record(&self, key: &str, bytes: &[u8]) -> Result<(), StateError>;
}

/// Checks a record key ([`JournalStore::read_record`]): a lock key, which never names a path
/// outside the store.
pub fn validate_record_key(key: &str) -> Result<(), StateError> {
    let ok = !key.is_empty()
        && key.len() <= 200
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(StateError::Invalid(format!(
            "invalid record key {key:?}: expected letters, digits, '-', '_' and '.' only"
        )))
    }
}

/// The one writer of one journal, holding the run's lock until closed or dropped.
#[async_trait]
pub trait JournalAppender: Send + Sync + Debug {
    /// Appends `bytes`; returns only once they are durable. After an error the journal's
    /// state is unknown and the caller must not append again.
    async fn append(&mut self, bytes: &[u8]) -> Result<(), StateError>;

    /// Cuts the journal to its first `len` bytes: a torn tail that was never acknowledged.
    async fn truncate(&mut self, len: u64) -> Result<(), StateError>;

    /// Releases the run's lock (dropping does too, as best it can).
    async fn close(&mut self) -> Result<(), StateError>;
}

/// Who holds a deployment lock: what `fabrik` prints when a second run is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockHolder {
    /// The holder's run id.
    pub run_id: String,
    /// The machine it runs on.
    pub host: String,
    /// The user it runs as.
    pub user: String,
    /// When it took the lock, RFC 3339.
    pub since: String,
    /// The command (`apply`, `destroy`, `rollback`, …).
    pub command: String,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "run {} ({}) by {}@{} since {}",
            self.run_id, self.command, self.user, self.host, self.since
        )
    }
}

/// Per-environment deployment locks.
#[async_trait]
pub trait DeploymentLocks: Send + Sync + Debug {
    /// Tries once to take lock `key` for `holder`: the held lock, or who holds it instead.
    async fn try_acquire(
        &self,
        key: &str,
        holder: &LockHolder,
    ) -> Result<Result<Arc<dyn HeldLock>, LockHolder>, StateError>;

    /// Who holds lock `key` now, if anyone.
    async fn holder(&self, key: &str) -> Result<Option<LockHolder>, StateError>;

    /// Force-releases every lock held by run `run_id` (and the run's journal lock), whoever
    /// holds it; returns the locks released with their holders.
    async fn force_unlock(&self, run_id: &str) -> Result<Vec<(String, LockHolder)>, StateError>;
}

/// A deployment lock held by this process (kept alive in the background where it expires).
#[async_trait]
pub trait HeldLock: Send + Sync + Debug {
    /// The lock's key.
    fn key(&self) -> &str;

    /// Why the lock was lost, if it was (broken by someone else, or not renewed in time).
    fn lost(&self) -> Option<String>;

    /// Resolves when the lock is lost, with why; never resolves while it is held.
    async fn wait_lost(&self) -> String;

    /// Releases the lock.
    async fn release(&self) -> Result<(), StateError>;
}

/// Why [`acquire_lock`] did not get the lock.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Someone else held it for the whole wait.
    #[error("the deployment lock {key} is held by {holder}; waited {waited:?}")]
    Held {
        /// The lock.
        key: String,
        /// Who holds it.
        holder: LockHolder,
        /// How long we waited.
        waited: Duration,
    },
    /// The store failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Takes lock `key`, retrying every `poll` until `timeout` has passed (zero: try once).
pub async fn acquire_lock(
    locks: &dyn DeploymentLocks,
    key: &str,
    holder: &LockHolder,
    timeout: Duration,
    poll: Duration,
    clock: &dyn Clock,
    sleeper: &dyn Sleeper,
) -> Result<Arc<dyn HeldLock>, LockError> {
    let start = clock.now();
    loop {
        let other = match locks.try_acquire(key, holder).await? {
            Ok(lock) => return Ok(lock),
            Err(other) => other,
        };
        let waited = clock.now().saturating_duration_since(start);
        if waited >= timeout {
            return Err(LockError::Held {
                key: key.to_owned(),
                holder: other,
                waited,
            });
        }
        sleeper.sleep(poll.min(timeout - waited)).await;
    }
}

/// `since` for a [`LockHolder`]: RFC 3339 in UTC, to the second.
pub fn rfc3339_utc(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Civil-from-days (Howard Hinnant), so core needs no date library.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339_utc(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_761_599);
        assert_eq!(rfc3339_utc(t), "2026-12-31T23:59:59Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339_utc(leap), "2000-02-29T00:00:00Z");
    }

    #[derive(Debug)]
    struct Busy {
        free_after: usize,
        tries: Mutex<usize>,
    }

    #[derive(Debug)]
    struct Held;

    #[async_trait]
    impl HeldLock for Held {
        fn key(&self) -> &str {
            "k"
        }
        fn lost(&self) -> Option<String> {
            None
        }
        async fn wait_lost(&self) -> String {
            std::future::pending().await
        }
        async fn release(&self) -> Result<(), StateError> {
            Ok(())
        }
    }

    fn holder() -> LockHolder {
        LockHolder {
            run_id: "r1".into(),
            host: "h".into(),
            user: "u".into(),
            since: "2026-01-01T00:00:00Z".into(),
            command: "apply".into(),
        }
    }

    #[async_trait]
    impl DeploymentLocks for Busy {
        async fn try_acquire(
            &self,
            _: &str,
            _: &LockHolder,
        ) -> Result<Result<Arc<dyn HeldLock>, LockHolder>, StateError> {
            let mut t = self.tries.lock().unwrap();
            *t += 1;
            Ok(if *t > self.free_after {
                Ok(Arc::new(Held))
            } else {
                Err(holder())
            })
        }
        async fn holder(&self, _: &str) -> Result<Option<LockHolder>, StateError> {
            Ok(None)
        }
        async fn force_unlock(&self, _: &str) -> Result<Vec<(String, LockHolder)>, StateError> {
            Ok(vec![])
        }
    }

    #[cfg(feature = "test-util")]
    #[tokio::test]
    async fn acquire_waits_on_the_injected_clock_and_gives_up_with_the_holder() {
        let clock = crate::time::ManualClock::auto_advance();
        let busy = Busy {
            free_after: 100,
            tries: Mutex::new(0),
        };
        let err = acquire_lock(
            &busy,
            "k",
            &holder(),
            Duration::from_secs(10),
            Duration::from_secs(3),
            &clock,
            &clock,
        )
        .await
        .err()
        .unwrap();
        // Tries at 0, 3, 6, 9 and 10 seconds, then gives up naming the holder.
        assert_eq!(*busy.tries.lock().unwrap(), 5);
        assert!(err.to_string().contains("run r1 (apply) by u@h"), "{err}");
        let free = Busy {
            free_after: 2,
            tries: Mutex::new(0),
        };
        acquire_lock(
            &free,
            "k",
            &holder(),
            Duration::from_secs(10),
            Duration::from_secs(3),
            &clock,
            &clock,
        )
        .await
        .unwrap();
        assert_eq!(*free.tries.lock().unwrap(), 3);
    }

    #[tokio::test]
    async fn a_zero_timeout_tries_once() {
        let busy = Busy {
            free_after: 1,
            tries: Mutex::new(0),
        };
        let err = acquire_lock(
            &busy,
            "k",
            &holder(),
            Duration::ZERO,
            Duration::from_secs(1),
            &crate::SystemClock,
            &NeverSleep,
        )
        .await
        .err()
        .unwrap();
        assert!(matches!(err, LockError::Held { .. }));
        assert_eq!(*busy.tries.lock().unwrap(), 1);
    }

    #[derive(Debug)]
    struct NeverSleep;
    impl Sleeper for NeverSleep {
        fn sleep(&self, _: Duration) -> crate::BoxFuture<'static, ()> {
            panic!("a zero timeout must not sleep")
        }
    }
}
