//! Application Insights export: envelopes, a bounded queue, batching, and flush with a deadline.
//!
//! Written here rather than taken from `opentelemetry-application-insights`: that crate goes
//! through the OpenTelemetry SDK's batch processor, whose drops are not visible as a metric,
//! and has no direct custom event / metric / exception API tied to our run's operation id.
//! This is one worker task and one `reqwest` client (the workspace's single HTTP stack).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use fabrik_core::metric_names::TELEMETRY_DROPPED;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::config::AppInsightsConfig;
use crate::context::RunContext;

/// One telemetry item, as queued (serialized on the worker, not the caller's thread).
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) time: SystemTime,
    pub(crate) kind: ItemKind,
    pub(crate) properties: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub(crate) enum ItemKind {
    Event { name: String },
    Metric { name: String, value: f64 },
    Exception { type_name: String, message: String },
    Dependency(crate::Dependency),
}

/// Counts of what the exporter did.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) accepted: AtomicU64,
    pub(crate) dropped: AtomicU64,
}

/// What a flush or shutdown achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushReport {
    /// Items accepted by the endpoint so far, in total.
    pub accepted: u64,
    /// Items dropped so far, in total (queue full, endpoint down, or rejected).
    pub dropped: u64,
    /// Whether the deadline passed before the queue was empty.
    pub timed_out: bool,
}

enum Control {
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// The sending half, held by the telemetry handle.
#[derive(Debug)]
pub(crate) struct Exporter {
    items: mpsc::Sender<Item>,
    control: mpsc::UnboundedSender<Control>,
    pub(crate) stats: Arc<Stats>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Control::Flush(_) => "Flush",
            Control::Shutdown(_) => "Shutdown",
        })
    }
}

fn count_dropped(n: u64, reason: &'static str, stats: &Stats) {
    if n == 0 {
        return;
    }
    stats.dropped.fetch_add(n, Ordering::Relaxed);
    metrics::counter!(TELEMETRY_DROPPED, "exporter" => "app_insights", "reason" => reason)
        .increment(n);
}

impl Exporter {
    /// Starts the worker on the current tokio runtime.
    pub(crate) fn start(
        config: &AppInsightsConfig,
        run: RunContext,
        role: &str,
        environment: Option<&str>,
    ) -> Self {
        let (items, rx) = mpsc::channel(config.queue_capacity.max(1));
        let (control, ctl_rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        let worker = Worker {
            url: format!("{}/v2.1/track", config.ingestion_endpoint),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            envelope: EnvelopeBase::new(&config.instrumentation_key, run, role, environment),
            max_batch: config.max_batch.max(1),
            flush_interval: config.flush_interval,
            stats: stats.clone(),
        };
        tokio::spawn(worker.run(rx, ctl_rx));
        Self {
            items,
            control,
            stats,
        }
    }

    /// Queues an item without waiting; a full queue drops it and counts the drop.
    pub(crate) fn submit(&self, item: Item) {
        if self.items.try_send(item).is_err() {
            count_dropped(1, "queue_full", &self.stats);
        }
    }

    fn report(&self, timed_out: bool) -> FlushReport {
        FlushReport {
            accepted: self.stats.accepted.load(Ordering::Relaxed),
            dropped: self.stats.dropped.load(Ordering::Relaxed),
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
        let (tx, rx) = oneshot::channel();
        if self.control.send(make(tx)).is_err() {
            return self.report(false); // already shut down
        }
        let timed_out = tokio::time::timeout(deadline, rx).await.is_err();
        self.report(timed_out)
    }
}

struct Worker {
    url: String,
    http: reqwest::Client,
    envelope: EnvelopeBase,
    max_batch: usize,
    flush_interval: Duration,
    stats: Arc<Stats>,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Item>, mut ctl: mpsc::UnboundedReceiver<Control>) {
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

    async fn send(&self, batch: &mut Vec<Item>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let body: Vec<Value> = batch
            .drain(..)
            .map(|i| self.envelope.envelope(&i))
            .collect();
        let response = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .json(&body)
            .send()
            .await;
        let accepted = match response {
            Ok(r) if r.status().is_success() => match r.json::<TrackResponse>().await {
                Ok(t) => t.items_accepted.min(n),
                Err(_) => n, // a 2xx without the usual body: the endpoint took them
            },
            Ok(r) => {
                tracing::debug!(
                    status = r.status().as_u16(),
                    items = n,
                    "Application Insights refused a batch"
                );
                0
            }
            Err(e) => {
                tracing::debug!(error = %e.without_url(), items = n, "Application Insights unreachable");
                0
            }
        };
        self.stats.accepted.fetch_add(accepted, Ordering::Relaxed);
        count_dropped(
            n - accepted,
            if accepted == 0 {
                "send_failed"
            } else {
                "rejected"
            },
            &self.stats,
        );
    }
}

/// The ingestion endpoint's answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrackResponse {
    #[allow(dead_code)] // part of the protocol; acceptance is what we count
    items_received: u64,
    items_accepted: u64,
}

/// What every envelope of this run shares.
#[derive(Debug)]
struct EnvelopeBase {
    ikey: String,
    tags: Value,
    environment: Option<String>,
}

impl EnvelopeBase {
    fn new(ikey: &str, run: RunContext, role: &str, environment: Option<&str>) -> Self {
        Self {
            ikey: ikey.to_owned(),
            tags: json!({
                "ai.operation.id": run.trace_id.to_string(),
                "ai.operation.parentId": run.root_span_id.to_string(),
                "ai.cloud.role": role,
                "ai.internal.sdkVersion": concat!("rust:fabrik-telemetry-", env!("CARGO_PKG_VERSION")),
            }),
            environment: environment.map(str::to_owned),
        }
    }

    fn envelope(&self, item: &Item) -> Value {
        let mut props: BTreeMap<&str, &str> = item
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some(env) = &self.environment {
            props.entry("environment").or_insert(env);
        }
        let (kind, base) = match &item.kind {
            ItemKind::Event { name } => (
                "Event",
                json!({"ver": 2, "name": name, "properties": props}),
            ),
            ItemKind::Metric { name, value } => (
                "Metric",
                json!({"ver": 2, "metrics": [{"name": name, "value": value, "count": 1}], "properties": props}),
            ),
            ItemKind::Exception { type_name, message } => (
                "Exception",
                json!({
                    "ver": 2,
                    "exceptions": [{"typeName": type_name, "message": message, "hasFullStack": false}],
                    "severityLevel": 3,
                    "properties": props,
                }),
            ),
            ItemKind::Dependency(d) => (
                "RemoteDependency",
                json!({
                    "ver": 2,
                    "id": crate::context::SpanId::random().to_string(),
                    "name": d.name,
                    "type": d.kind,
                    "target": d.target,
                    "data": d.data,
                    "duration": ai_duration(d.duration),
                    "resultCode": d.result_code,
                    "success": d.success,
                    "properties": props,
                }),
            ),
        };
        json!({
            "name": format!("Microsoft.ApplicationInsights.{kind}"),
            "time": rfc3339(item.time),
            "iKey": self.ikey,
            "tags": self.tags,
            "data": {"baseType": format!("{kind}Data"), "baseData": base},
        })
    }
}

/// Application Insights' duration format: `d.hh:mm:ss.fffffff`.
pub(crate) fn ai_duration(d: Duration) -> String {
    let s = d.as_secs();
    format!(
        "{}.{:02}:{:02}:{:02}.{:07}",
        s / 86_400,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60,
        d.subsec_nanos() / 100
    )
}

fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
