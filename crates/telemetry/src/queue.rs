//! The export queue every exporter shares: callers never wait (a full queue drops the item and
//! counts it), one worker task sends batches, and flush / shutdown wait at most a deadline.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use fabrik_core::metric_names::TELEMETRY_DROPPED;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

/// Where a worker sends its batches.
pub(crate) trait Sink: Send + 'static {
    /// What is queued.
    type Item: Send + 'static;
    /// Sends one batch; returns how many of its items the endpoint accepted (the rest it
    /// rejected), or `None` if the batch was not delivered.
    fn send(&mut self, batch: Vec<Self::Item>) -> impl Future<Output = Option<u64>> + Send;
}

/// Queue size and batching.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueConfig {
    pub(crate) capacity: usize,
    pub(crate) max_batch: usize,
    pub(crate) flush_interval: Duration,
}

/// What a flush or shutdown achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushReport {
    /// Items accepted by the endpoints so far, in total.
    pub accepted: u64,
    /// Items dropped so far, in total (queue full, endpoint down, or rejected).
    pub dropped: u64,
    /// Whether the deadline passed before the queues were empty.
    pub timed_out: bool,
}

impl FlushReport {
    /// Both exporters' totals; timed out if either did.
    pub(crate) fn merge(self, other: FlushReport) -> FlushReport {
        FlushReport {
            accepted: self.accepted + other.accepted,
            dropped: self.dropped + other.dropped,
            timed_out: self.timed_out || other.timed_out,
        }
    }
}

#[derive(Debug, Default)]
struct Stats {
    accepted: AtomicU64,
    dropped: AtomicU64,
    /// The caller's drop counters, registered at the first drop: a full queue drops on every
    /// call, and a label lookup each time would slow the caller further.
    queue_full: OnceLock<metrics::Counter>,
    closed: OnceLock<metrics::Counter>,
}

enum Control {
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// The sending half of one exporter's queue. Clones share the queue.
pub(crate) struct Queue<T> {
    items: mpsc::Sender<T>,
    control: mpsc::UnboundedSender<Control>,
    stats: Arc<Stats>,
    exporter: &'static str,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Self {
            items: self.items.clone(),
            control: self.control.clone(),
            stats: self.stats.clone(),
            exporter: self.exporter,
        }
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("exporter", &self.exporter)
            .field("stats", &self.stats)
            .finish()
    }
}

fn count_dropped(n: u64, exporter: &'static str, reason: &'static str, stats: &Stats) {
    if n == 0 {
        return;
    }
    stats.dropped.fetch_add(n, Ordering::Relaxed);
    metrics::counter!(TELEMETRY_DROPPED, "exporter" => exporter, "reason" => reason).increment(n);
}

impl<T: Send + 'static> Queue<T> {
    /// Starts the worker for `sink` on the current tokio runtime; `exporter` labels its drops.
    pub(crate) fn start<S: Sink<Item = T>>(
        exporter: &'static str,
        sink: S,
        config: QueueConfig,
    ) -> Self {
        let (items, rx) = mpsc::channel(config.capacity.max(1));
        let (control, ctl_rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        let worker = Worker {
            sink,
            max_batch: config.max_batch.max(1),
            flush_interval: config.flush_interval,
            stats: stats.clone(),
            exporter,
        };
        tokio::spawn(worker.run(rx, ctl_rx));
        Self {
            items,
            control,
            stats,
            exporter,
        }
    }

    /// Queues an item without waiting; a full (or shut down) queue drops it and counts it.
    pub(crate) fn submit(&self, item: T) {
        let (counter, reason) = match self.items.try_send(item) {
            Ok(()) => return,
            Err(TrySendError::Full(_)) => (&self.stats.queue_full, "queue_full"),
            Err(TrySendError::Closed(_)) => (&self.stats.closed, "closed"),
        };
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        counter
            .get_or_init(|| {
                metrics::counter!(TELEMETRY_DROPPED, "exporter" => self.exporter, "reason" => reason)
            })
            .increment(1);
    }

    fn report(&self, timed_out: bool) -> FlushReport {
        FlushReport {
            accepted: self.stats.accepted.load(Ordering::Relaxed),
            dropped: self.stats.dropped.load(Ordering::Relaxed),
            timed_out,
        }
    }

    /// Asks the worker to send what is queued now, without waiting for it.
    pub(crate) fn request_flush(&self) {
        let (tx, _) = oneshot::channel();
        let _ = self.control.send(Control::Flush(tx));
    }

    /// Sends everything queued, waiting at most `deadline`.
    pub(crate) async fn flush(&self, deadline: Duration) -> FlushReport {
        self.ask(Control::Flush, deadline).await
    }

    /// Flushes and stops the worker, waiting at most `deadline`.
    pub(crate) async fn shutdown(&self, deadline: Duration) -> FlushReport {
        self.ask(Control::Shutdown, deadline).await
    }

    async fn ask(
        &self,
        make: fn(oneshot::Sender<()>) -> Control,
        deadline: Duration,
    ) -> FlushReport {
        let (tx, rx) = oneshot::channel();
        if self.control.send(make(tx)).is_err() {
            return self.report(false); // already shut down
        }
        let timed_out = tokio::time::timeout(deadline, rx).await.is_err();
        self.report(timed_out)
    }
}

struct Worker<S> {
    sink: S,
    max_batch: usize,
    flush_interval: Duration,
    stats: Arc<Stats>,
    exporter: &'static str,
}

impl<S: Sink> Worker<S> {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<S::Item>,
        mut ctl: mpsc::UnboundedReceiver<Control>,
    ) {
        let mut batch = Vec::with_capacity(self.max_batch);
        let mut due = tokio::time::Instant::now() + self.flush_interval;
        loop {
            tokio::select! {
                biased;
                c = ctl.recv() => {
                    let Some(c) = c else { break };
                    while let Ok(item) = rx.try_recv() {
                        batch.push(item);
                        if batch.len() >= self.max_batch {
                            self.send(&mut batch).await;
                        }
                    }
                    self.send(&mut batch).await;
                    match c {
                        Control::Flush(done) => { let _ = done.send(()); }
                        Control::Shutdown(done) => { let _ = done.send(()); break; }
                    }
                }
                item = rx.recv() => {
                    let Some(item) = item else { break };
                    if batch.is_empty() {
                        due = tokio::time::Instant::now() + self.flush_interval;
                    }
                    batch.push(item);
                    if batch.len() >= self.max_batch {
                        self.send(&mut batch).await;
                    }
                }
                () = tokio::time::sleep_until(due), if !batch.is_empty() => {
                    self.send(&mut batch).await;
                }
            }
        }
        self.send(&mut batch).await;
    }

    async fn send(&mut self, batch: &mut Vec<S::Item>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let full = std::mem::replace(batch, Vec::with_capacity(self.max_batch));
        let (accepted, reason) = match self.sink.send(full).await {
            Some(accepted) => (accepted.min(n), "rejected"),
            None => (0, "send_failed"),
        };
        self.stats.accepted.fetch_add(accepted, Ordering::Relaxed);
        count_dropped(n - accepted, self.exporter, reason, &self.stats);
    }
}
