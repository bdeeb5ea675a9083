//! The one writer of a journal: a dedicated thread that commits records in groups.
//!
//! Tasks hand serialized records to the thread over a channel and await an acknowledgement
//! that comes only after the record is durable. The thread takes everything queued since its
//! last write and hands it to the store's [`JournalAppender`] as one append (locally one
//! `write_all` and one `fsync`; remotely one acknowledged request), so N concurrent steps cost
//! one fsync or round trip, not N. A plain thread rather than a tokio task because fsync
//! blocks, and so the journal works under any runtime (a remote store runs its own I/O).
//!
//! After a failed append the journal's contents are unknown (a retried fsync can report
//! success for data that was lost; a timed-out request may have landed), so the writer
//! refuses everything after the first failure.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use fabrik_core::JournalAppender;
use tokio::sync::oneshot;

use crate::seal::SharedSealer;
use crate::{JournalError, Record};

type Ack = oneshot::Sender<Result<(), JournalError>>;

struct Msg {
    line: Vec<u8>,
    ack: Ack,
}

/// Counters of what the writer did, to observe group commit.
#[derive(Debug, Default)]
pub(crate) struct WriterCounters {
    pub(crate) records: AtomicU64,
    pub(crate) fsyncs: AtomicU64,
}

/// Appends records to one journal file; the only thing that writes it.
#[derive(Debug)]
pub(crate) struct JournalWriter {
    path: PathBuf,
    state: Mutex<WriterState>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<WriterCounters>,
    /// The journal's key when it is encrypted: records are sealed before they are queued.
    sealer: Option<SharedSealer>,
}

#[derive(Debug)]
struct WriterState {
    next_seq: u64,
    tx: Option<mpsc::Sender<Msg>>,
}

/// A record handed to the writer; await [`Pending::durable`] to know it is on disk.
#[derive(Debug)]
#[must_use = "a record is not durable until `durable()` resolves"]
pub(crate) struct Pending {
    rx: oneshot::Receiver<Result<(), JournalError>>,
    path: PathBuf,
}

impl Pending {
    pub(crate) async fn durable(self) -> Result<(), JournalError> {
        self.rx.await.unwrap_or_else(|_| {
            Err(JournalError::WriterFailed {
                path: self.path,
                reason: "the writer thread ended".into(),
            })
        })
    }
}

impl JournalWriter {
    /// Starts the writer thread on `appender` (which holds the run's lock until the thread
    /// closes it). The next record gets sequence number `next_seq`. With `sealer`, records
    /// that hold values are sealed before they leave this process's memory.
    pub(crate) fn start(
        path: PathBuf,
        appender: Box<dyn JournalAppender>,
        next_seq: u64,
        sealer: Option<SharedSealer>,
    ) -> Result<Self, JournalError> {
        let (tx, rx) = mpsc::channel();
        let counters = Arc::new(WriterCounters::default());
        let thread = {
            let thread_path = path.clone();
            let counters = counters.clone();
            std::thread::Builder::new()
                .name("fabrik-journal".into())
                .spawn(move || {
                    let mut appender = appender;
                    run(rx, appender.as_mut(), &thread_path, &counters);
                    if let Err(e) = futures::executor::block_on(appender.close()) {
                        tracing::warn!(journal = %thread_path.display(), error = %e, "releasing the run's lock failed");
                    }
                })
                .map_err(|e| JournalError::io(&path, "start writer thread", e))?
        };
        Ok(Self {
            path,
            state: Mutex::new(WriterState {
                next_seq,
                tx: Some(tx),
            }),
            thread: Mutex::new(Some(thread)),
            counters,
            sealer,
        })
    }

    /// Queues the record `make(seq)` with the next sequence number and returns it. Sequence
    /// numbers follow queue order, so the file is always in `seq` order.
    pub(crate) fn append(
        &self,
        make: impl FnOnce(u64) -> Record,
    ) -> Result<(Record, Pending), JournalError> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = st.tx.as_ref() else {
            return Err(self.stopped("the journal is closed"));
        };
        let seq = st.next_seq;
        let record = make(seq);
        let line = crate::seal::encode(&record, self.sealer.as_deref()).map_err(|e| {
            JournalError::io(&self.path, "serialize record", std::io::Error::other(e))
        })?;
        let (ack, rx) = oneshot::channel();
        tx.send(Msg { line, ack })
            .map_err(|_| self.stopped("the writer thread ended"))?;
        st.next_seq += 1;
        Ok((
            record,
            Pending {
                rx,
                path: self.path.clone(),
            },
        ))
    }

    /// Writes what is queued, stops the thread and releases the run's lock. Idempotent.
    /// Blocks for at most one group commit.
    pub(crate) fn close(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).tx = None;
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            // The thread only panics on a bug; its acks then report "writer thread ended".
            let _ = h.join();
        }
    }

    pub(crate) fn counters(&self) -> &WriterCounters {
        &self.counters
    }

    fn stopped(&self, reason: &str) -> JournalError {
        JournalError::WriterFailed {
            path: self.path.clone(),
            reason: reason.to_owned(),
        }
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        self.close();
    }
}

/// The writer loop: block for one record, take all others queued, append durably, acknowledge.
fn run(
    rx: mpsc::Receiver<Msg>,
    appender: &mut dyn JournalAppender,
    path: &Path,
    counters: &WriterCounters,
) {
    let mut failed: Option<String> = None;
    let mut buf = Vec::new();
    let mut acks = Vec::new();
    while let Ok(first) = rx.recv() {
        buf.clear();
        for msg in std::iter::once(first).chain(rx.try_iter()) {
            buf.extend_from_slice(&msg.line);
            acks.push(msg.ack);
        }
        let result = match &failed {
            Some(reason) => Err(JournalError::WriterFailed {
                path: path.to_owned(),
                reason: reason.clone(),
            }),
            // The local appender completes at once; a remote one runs its I/O on its own runtime.
            None => match futures::executor::block_on(appender.append(&buf)) {
                Ok(()) => {
                    counters.fsyncs.fetch_add(1, Ordering::Relaxed);
                    counters
                        .records
                        .fetch_add(acks.len() as u64, Ordering::Relaxed);
                    Ok(())
                }
                Err(e) => {
                    tracing::error!(journal = %path.display(), error = %e, "journal write failed; refusing further records");
                    failed = Some(e.to_string());
                    Err(JournalError::from(e))
                }
            },
        };
        for ack in acks.drain(..) {
            // A task that stopped waiting does not care about the answer.
            let _ = ack.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabrik_core::JournalStore;
    use std::time::SystemTime;

    fn appender(dir: &Path) -> Box<dyn JournalAppender> {
        futures::executor::block_on(crate::LocalDirStore::new(dir).create("j", b"")).unwrap()
    }

    fn rollback_started(seq: u64) -> Vec<u8> {
        let mut v = serde_json::to_vec(&Record::RollbackStarted {
            seq,
            at: SystemTime::UNIX_EPOCH,
            reason: "r".into(),
        })
        .unwrap();
        v.push(b'\n');
        v
    }

    #[test]
    fn everything_queued_meanwhile_is_committed_with_one_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut file = appender(dir.path());
        let (tx, rx) = mpsc::channel();
        let mut acks = Vec::new();
        for seq in 1..=50 {
            let (ack, ack_rx) = oneshot::channel();
            tx.send(Msg {
                line: rollback_started(seq),
                ack,
            })
            .unwrap();
            acks.push(ack_rx);
        }
        drop(tx);
        let counters = WriterCounters::default();
        run(rx, file.as_mut(), &path, &counters);
        assert_eq!(counters.fsyncs.load(Ordering::Relaxed), 1);
        assert_eq!(counters.records.load(Ordering::Relaxed), 50);
        for mut a in acks {
            assert!(a.try_recv().unwrap().is_ok());
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let seqs: Vec<u64> = text
            .lines()
            .map(|l| serde_json::from_str::<Record>(l).unwrap().seq())
            .collect();
        assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    }

    #[test]
    fn after_a_failed_write_every_later_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(&path, b"").unwrap();
        // Read-only: the first write fails, as a full disk would.
        let lock = crate::fs::RunLock::acquire(dir.path(), "j").unwrap();
        let mut file: Box<dyn JournalAppender> = Box::new(crate::fs::LocalAppender::new(
            path.clone(),
            std::fs::File::open(&path).unwrap(),
            lock,
        ));
        let (tx, rx) = mpsc::channel();
        let counters = WriterCounters::default();
        let (a1, mut r1) = oneshot::channel();
        tx.send(Msg {
            line: rollback_started(1),
            ack: a1,
        })
        .unwrap();
        let handle = std::thread::spawn(move || run(rx, file.as_mut(), &path, &counters));
        // Wait for the first group to be answered, so the second is its own group.
        let first = loop {
            match r1.try_recv() {
                Ok(r) => break r,
                Err(oneshot::error::TryRecvError::Empty) => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        assert!(matches!(first, Err(JournalError::Io { op: "append", .. })));
        let (a2, r2) = oneshot::channel();
        tx.send(Msg {
            line: rollback_started(2),
            ack: a2,
        })
        .unwrap();
        drop(tx);
        handle.join().unwrap();
        let second = r2.blocking_recv().unwrap();
        assert!(
            matches!(second, Err(JournalError::WriterFailed { .. })),
            "{second:?}"
        );
    }
}
