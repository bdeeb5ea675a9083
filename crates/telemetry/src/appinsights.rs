//! Application Insights export: envelopes, a bounded queue, batching, and flush with a deadline.
//!
//! Written here rather than taken from `opentelemetry-application-insights`: that crate goes
//! through the OpenTelemetry SDK's batch processor, whose drops are not visible as a metric,
//! and has no direct custom event / metric / exception API tied to our run's operation id.
//! This is one worker task and one `reqwest` client (the workspace's single HTTP stack).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::AppInsightsConfig;
use crate::context::RunContext;
use crate::queue::{Queue, QueueConfig, Sink};

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

/// Starts the Application Insights worker on the current tokio runtime.
pub(crate) fn start(
    config: &AppInsightsConfig,
    run: RunContext,
    role: &str,
    environment: Option<&str>,
) -> Queue<Item> {
    let sink = Ingestion {
        url: format!("{}/v2.1/track", config.ingestion_endpoint),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default(),
        envelope: EnvelopeBase::new(&config.instrumentation_key, run, role, environment),
    };
    let queue = QueueConfig {
        capacity: config.queue_capacity,
        max_batch: config.max_batch,
        flush_interval: config.flush_interval,
    };
    Queue::start("app_insights", sink, queue)
}

/// The ingestion endpoint, as a batch sink.
struct Ingestion {
    url: String,
    http: reqwest::Client,
    envelope: EnvelopeBase,
}

impl Sink for Ingestion {
    type Item = Item;

    async fn send(&mut self, batch: Vec<Item>) -> Option<u64> {
        let n = batch.len() as u64;
        let body: Vec<Value> = batch.iter().map(|i| self.envelope.envelope(i)).collect();
        let response = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .json(&body)
            .send()
            .await;
        match response {
            // 200, 206 (some refused) and 400 (all refused) say how many were accepted.
            Ok(r) if r.status().is_success() || r.status().as_u16() == 400 => {
                let ok = r.status().is_success();
                match r.json::<TrackResponse>().await {
                    Ok(t) => Some(t.items_accepted),
                    Err(_) if ok => Some(n), // a 2xx without the usual body: the endpoint took them
                    Err(_) => None,
                }
            }
            Ok(r) => {
                tracing::debug!(
                    status = r.status().as_u16(),
                    items = n,
                    "Application Insights refused a batch"
                );
                None
            }
            Err(e) => {
                tracing::debug!(error = %e.without_url(), items = n, "Application Insights unreachable");
                None
            }
        }
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
