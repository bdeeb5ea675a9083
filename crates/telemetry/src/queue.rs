//! The export queue every exporter shares: callers never wait (a full queue drops the item and
//! counts it), one worker task sends batches, and flush / shutdown wait at most a deadline.
//!
//! Callers push into a lock-free bounded array and wake the worker only when a full batch is
//! waiting; otherwise the worker drains on its flush tick. Waking it for every item (as a
//! channel send does) costs the calling thread a futex call whenever the worker is parked —
//! more than the whole span it reports.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use fabrik_core::metric_names::TELEMETRY_DROPPED;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::MissedTickBehavior;

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
    /// A partial batch is sent at most this long after it was queued.
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

/// What callers and the worker share.
struct Shared<T> {
    items: ArrayQueue<T>,
    max_batch: usize,
    /// Set by the caller that wakes the worker for a full batch, cleared by the worker when it
    /// drains, so a burst wakes it once.
    woken: AtomicBool,
    wake: Notify,
    /// Set at shutdown: later items are dropped as `closed`.
    closed: AtomicBool,
    stats: Stats,
}

/// What flush and shutdown ask of an export task; it answers on the sender when done.
pub(crate) enum Control {
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// Sends `make`'s request to the task behind `control` and waits at most `deadline` for its
/// answer: `Some(timed_out)`, or `None` when the task has already stopped.
pub(crate) async fn ask(
    control: &mpsc::UnboundedSender<Control>,
    make: fn(oneshot::Sender<()>) -> Control,
    deadline: Duration,
) -> Option<bool> {
    let (tx, rx) = oneshot::channel();
    control.send(make(tx)).ok()?;
    Some(tokio::time::timeout(deadline, rx).await.is_err())
}

/// The sending half of one exporter's queue. Clones share the queue; when the last is
/// dropped, the worker sends what is left and stops.
pub(crate) struct Queue<T> {
    shared: Arc<Shared<T>>,
    control: mpsc::UnboundedSender<Control>,
    exporter: &'static str,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            control: self.control.clone(),
            exporter: self.exporter,
        }
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("exporter", &self.exporter)
            .field("queued", &self.shared.items.len())
            .field("stats", &self.shared.stats)
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
        let max_batch = config.max_batch.max(1);
        let shared = Arc::new(Shared {
            items: ArrayQueue::new(config.capacity.max(1)),
            max_batch,
            woken: AtomicBool::new(false),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            stats: Stats::default(),
        });
        let (control, ctl_rx) = mpsc::unbounded_channel();
        let worker = Worker {
            sink,
            shared: shared.clone(),
            flush_interval: config.flush_interval.max(Duration::from_millis(1)),
            exporter,
        };
        tokio::spawn(worker.run(ctl_rx));
        Self {
            shared,
            control,
            exporter,
        }
    }

    /// Queues an item without waiting; a full (or shut down) queue drops it and counts it.
    pub(crate) fn submit(&self, item: T) {
        let shared = &*self.shared;
        let (counter, reason) = if shared.closed.load(Ordering::Relaxed) {
            (&shared.stats.closed, "closed")
        } else if shared.items.push(item).is_ok() {
            if shared.items.len() >= shared.max_batch
                && !shared.woken.load(Ordering::Relaxed)
                && !shared.woken.swap(true, Ordering::AcqRel)
            {
                shared.wake.notify_one();
            }
            return;
        } else {
            (&shared.stats.queue_full, "queue_full")
        };
        shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
        counter
            .get_or_init(|| {
                metrics::counter!(TELEMETRY_DROPPED, "exporter" => self.exporter, "reason" => reason)
            })
            .increment(1);
    }

    fn report(&self, timed_out: bool) -> FlushReport {
        FlushReport {
            accepted: self.shared.stats.accepted.load(Ordering::Relaxed),
            dropped: self.shared.stats.dropped.load(Ordering::Relaxed),
            timed_out,
        }
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
        let timed_out = ask(&self.control, make, deadline).await;
        self.report(timed_out.unwrap_or(false))
    }
}

struct Worker<S: Sink> {
    sink: S,
    shared: Arc<Shared<S::Item>>,
    flush_interval: Duration,
    exporter: &'static str,
}

impl<S: Sink> Worker<S> {
    async fn run(mut self, mut ctl: mpsc::UnboundedReceiver<Control>) {
        let mut tick = tokio::time::interval(self.flush_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                biased;
                c = ctl.recv() => match c {
                    Some(Control::Flush(done)) => {
                        self.drain().await;
                        let _ = done.send(());
                    }
                    Some(Control::Shutdown(done)) => {
                        self.shared.closed.store(true, Ordering::Relaxed);
                        self.drain().await;
                        let _ = done.send(());
                        return;
                    }
                    None => break, // every handle is gone
                },
                () = self.shared.wake.notified() => self.drain().await,
                _ = tick.tick() => self.drain().await,
            }
        }
        self.shared.closed.store(true, Ordering::Relaxed);
        self.drain().await;
    }

    /// Sends what is queued now, in batches of at most `max_batch`. Items queued meanwhile
    /// wait for the next round, so a fast producer cannot keep a flush or shutdown waiting.
    async fn drain(&mut self) {
        self.shared.woken.store(false, Ordering::Release);
        let max_batch = self.shared.max_batch;
        let queued = self.shared.items.len();
        let mut batch = Vec::with_capacity(max_batch.min(queued));
        let shared = self.shared.clone();
        for item in std::iter::from_fn(|| shared.items.pop()).take(queued) {
            batch.push(item);
            if batch.len() >= max_batch {
                self.send(std::mem::take(&mut batch)).await;
            }
        }
        self.send(batch).await;
    }

    async fn send(&mut self, batch: Vec<S::Item>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let (accepted, reason) = match self.sink.send(batch).await {
            Some(accepted) => (accepted.min(n), "rejected"),
            None => (0, "send_failed"),
        };
        let stats = &self.shared.stats;
        stats.accepted.fetch_add(accepted, Ordering::Relaxed);
        count_dropped(n - accepted, self.exporter, reason, stats);
    }
}
