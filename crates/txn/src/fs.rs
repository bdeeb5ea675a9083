//! The local state directory: paths, run ids, the per-run lock file, and [`LocalDirStore`],
//! the [`JournalStore`] that keeps journals there.
//!
//! Each run has `<run_id>.jsonl` (the journal) and `<run_id>.lock`. The lock is a separate
//! file, not a lock on the journal, because on Windows a locked range cannot be read by other
//! handles, and listing runs must read journals that are in use. Lock files are left behind
//! on purpose: deleting one while another process has it open would let two holders in.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use fabrik_core::{JournalAppender, JournalStore, StateError};

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

/// Journals as files in a local directory: `<run_id>.jsonl`, locked by `<run_id>.lock`, each
/// append written and fsync'd before it is acknowledged. What fabrik has always done.
#[derive(Debug, Clone)]
pub struct LocalDirStore {
    dir: PathBuf,
}

impl LocalDirStore {
    /// Journals in `dir` (created when the first run begins).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn io_err(path: &Path, op: &'static str, e: std::io::Error) -> StateError {
    StateError::Io {
        location: path.display().to_string(),
        op,
        source: Arc::new(e),
    }
}

fn state_err(e: JournalError) -> StateError {
    match e {
        JournalError::Io { path, op, source } => StateError::Io {
            location: path.display().to_string(),
            op,
            source,
        },
        JournalError::Locked { run_id, path } => StateError::Locked {
            run_id,
            location: path.display().to_string(),
        },
        JournalError::InvalidRunId(id) => {
            StateError::Invalid(JournalError::InvalidRunId(id).to_string())
        }
        other => StateError::Invalid(other.to_string()),
    }
}

#[async_trait]
impl JournalStore for LocalDirStore {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn journal_location(&self, run_id: &str) -> String {
        journal_path(&self.dir, run_id).display().to_string()
    }

    async fn create(
        &self,
        run_id: &str,
        header: &[u8],
    ) -> Result<Box<dyn JournalAppender>, StateError> {
        validate_run_id(run_id).map_err(state_err)?;
        fs::create_dir_all(&self.dir)
            .map_err(|e| io_err(&self.dir, "create state directory", e))?;
        let lock = RunLock::acquire(&self.dir, run_id).map_err(state_err)?;
        let path = journal_path(&self.dir, run_id);
        // create_new: a run id collision must fail loudly, never append to another run.
        let mut file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_err(&path, "create", e))?;
        file.write_all(header)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_err(&path, "write header", e))?;
        sync_dir(&self.dir).map_err(state_err)?;
        Ok(Box::new(LocalAppender {
            path,
            file: Some((file, lock)),
        }))
    }

    async fn open(&self, run_id: &str) -> Result<(Vec<u8>, Box<dyn JournalAppender>), StateError> {
        validate_run_id(run_id).map_err(state_err)?;
        let path = journal_path(&self.dir, run_id);
        if !path.is_file() {
            return Err(StateError::NotFound {
                run_id: run_id.to_owned(),
                location: self.location(),
            });
        }
        let lock = RunLock::acquire(&self.dir, run_id).map_err(state_err)?;
        let bytes = fs::read(&path).map_err(|e| io_err(&path, "read", e))?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| io_err(&path, "open for append", e))?;
        Ok((
            bytes,
            Box::new(LocalAppender {
                path,
                file: Some((file, lock)),
            }),
        ))
    }

    async fn read(&self, run_id: &str) -> Result<Vec<u8>, StateError> {
        validate_run_id(run_id).map_err(state_err)?;
        let path = journal_path(&self.dir, run_id);
        fs::read(&path).map_err(|e| io_err(&path, "read", e))
    }

    async fn list(&self) -> Result<Vec<String>, StateError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir, "list", e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| io_err(&self.dir, "list", e))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some(JOURNAL_EXT) {
                continue;
            }
            if let Some(id) = path.file_stem().and_then(|s| s.to_str())
                && validate_run_id(id).is_ok()
            {
                ids.push(id.to_owned());
            }
        }
        Ok(ids)
    }

    async fn is_locked(&self, run_id: &str) -> Result<bool, StateError> {
        Ok(RunLock::is_held(&self.dir, run_id))
    }

    async fn read_record(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        fabrik_core::state::validate_record_key(key)?;
        let path = record_path(&self.dir, key);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path, "read record", e)),
        }
    }

    async fn write_record(&self, key: &str, bytes: &[u8]) -> Result<(), StateError> {
        fabrik_core::state::validate_record_key(key)?;
        let dir = self.dir.join(RECORD_DIR);
        fs::create_dir_all(&dir).map_err(|e| io_err(&dir, "create record directory", e))?;
        let path = record_path(&self.dir, key);
        // Written beside, then renamed over: a reader sees the old record or the new, whole.
        let tmp = dir.join(format!("{key}.json.tmp"));
        let mut file = File::create(&tmp).map_err(|e| io_err(&tmp, "create record", e))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_err(&tmp, "write record", e))?;
        fs::rename(&tmp, &path).map_err(|e| io_err(&path, "replace record", e))?;
        sync_dir(&dir).map_err(state_err)
    }
}

/// Where records live in the state directory (no `.jsonl` there, so never listed as runs).
const RECORD_DIR: &str = "deployed";

fn record_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(RECORD_DIR).join(format!("{key}.json"))
}

/// Appends to a journal file with `write_all` + `sync_data`, holding the run's lock file.
#[derive(Debug)]
pub(crate) struct LocalAppender {
    path: PathBuf,
    file: Option<(File, RunLock)>,
}

impl LocalAppender {
    #[cfg(test)]
    pub(crate) fn new(path: PathBuf, file: File, lock: RunLock) -> Self {
        Self {
            path,
            file: Some((file, lock)),
        }
    }

    fn file(&mut self) -> Result<&mut File, StateError> {
        match &mut self.file {
            Some((f, _)) => Ok(f),
            None => Err(io_err(
                &self.path,
                "append",
                std::io::Error::other("the journal is closed"),
            )),
        }
    }
}

#[async_trait]
impl JournalAppender for LocalAppender {
    async fn append(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let path = self.path.clone();
        let file = self.file()?;
        file.write_all(bytes)
            .and_then(|()| file.sync_data())
            .map_err(|e| io_err(&path, "append", e))
    }

    async fn truncate(&mut self, len: u64) -> Result<(), StateError> {
        let path = self.path.clone();
        let file = self.file()?;
        file.set_len(len)
            .and_then(|()| file.sync_data())
            .map_err(|e| io_err(&path, "truncate torn tail", e))
    }

    async fn close(&mut self) -> Result<(), StateError> {
        self.file = None;
        Ok(())
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
