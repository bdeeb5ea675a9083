//! Paths, run ids and the per-run lock file of the state directory.
//!
//! Each run has `<run_id>.jsonl` (the journal) and `<run_id>.lock`. The lock is a separate
//! file, not a lock on the journal, because on Windows a locked range cannot be read by other
//! handles, and listing runs must read journals that are in use. Lock files are left behind
//! on purpose: deleting one while another process has it open would let two holders in.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::JournalError;

/// The state directory fabrik uses unless told otherwise, relative to the working directory.
pub const DEFAULT_STATE_DIR: &str = ".fabrik/runs";

pub(crate) const JOURNAL_EXT: &str = "jsonl";

/// Rejects run ids that fabrik could not have made, so a path like `../x` cannot escape.
pub(crate) fn validate_run_id(run_id: &str) -> Result<(), JournalError> {
    let ok = !run_id.is_empty()
        && run_id.len() <= 128
        && run_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(JournalError::InvalidRunId(run_id.to_owned()))
    }
}

pub(crate) fn journal_path(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(format!("{run_id}.{JOURNAL_EXT}"))
}

pub(crate) fn lock_path(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(format!("{run_id}.lock"))
}

/// An exclusive lock on one run, held for as long as this value lives.
#[derive(Debug)]
pub(crate) struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the run's lock without waiting: a second holder is an error, not a queue.
    pub(crate) fn acquire(dir: &Path, run_id: &str) -> Result<Self, JournalError> {
        let path = lock_path(dir, run_id);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| JournalError::io(&path, "open lock file", e))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(JournalError::Locked {
                run_id: run_id.to_owned(),
                path,
            }),
            Err(TryLockError::Error(e)) => Err(JournalError::io(&path, "lock", e)),
        }
    }

    /// Whether some process holds the run's lock now (probing takes it for an instant).
    pub(crate) fn is_held(dir: &Path, run_id: &str) -> bool {
        let path = lock_path(dir, run_id);
        match OpenOptions::new().write(true).open(&path) {
            Ok(f) => matches!(f.try_lock(), Err(TryLockError::WouldBlock)),
            Err(_) => false,
        }
    }
}

/// Makes a new directory entry durable (a new journal file survives a power cut only then).
pub(crate) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| JournalError::io(dir, "fsync directory", e))
    }
    #[cfg(not(unix))]
    {
        // Windows has no portable directory fsync; NTFS journals metadata itself.
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_that_could_escape_the_directory_are_rejected() {
        for bad in ["", "../etc", "a/b", "a b", "x.jsonl", &"a".repeat(129)] {
            assert!(
                matches!(validate_run_id(bad), Err(JournalError::InvalidRunId(_))),
                "{bad:?}"
            );
        }
        validate_run_id("20260101T000000Z-1a2b3c4d").unwrap();
    }

    #[test]
    fn a_second_lock_on_the_same_run_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path(), "r1").unwrap();
        assert!(RunLock::is_held(dir.path(), "r1"));
        let err = RunLock::acquire(dir.path(), "r1").unwrap_err();
        assert!(matches!(err, JournalError::Locked { .. }), "{err}");
        drop(first);
        assert!(!RunLock::is_held(dir.path(), "r1"));
        RunLock::acquire(dir.path(), "r1").unwrap();
    }
}
