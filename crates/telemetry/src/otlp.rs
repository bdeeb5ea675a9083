//! OTLP/HTTP export of spans: a small `tracing` layer records each span, our bounded queue
//! carries it, and `opentelemetry-otlp`'s async reqwest exporter sends it, on the current tokio
//! runtime.
//!
//! Why our own layer rather than tracing-opentelemetry: that crate builds a full OpenTelemetry
//! span (SDK builder, `KeyValue`s, a boxed context) on the calling thread for every `tracing`
//! span, and the SDK converts it to `SpanData` when it ends — 2 to 4 µs a call here, against a
//! bar of 1 µs (docs/benchmarks/telemetry.md). This layer keeps only what OTLP needs (ids,
//! times, the static name, raw field values) and builds `SpanData` on the export worker, off
//! the calling thread. It follows tracing-opentelemetry's conventions: `otel.name`,
//! `otel.kind`, `otel.status_code` and `otel.status_message` fields; events become span
//! events, and an `ERROR` event marks its span as failed.
//!
//! The SDK's batch processor is not used either: it runs on a thread of its own, where the
//! async reqwest client has no runtime, and its drops are not visible as a metric. Our
//! [`Queue`] counts drops under `fabrik_telemetry_dropped_total{exporter="otlp"}` and flushes
//! with a deadline, like the Application Insights exporter.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use smallvec::SmallVec;
use smol_str::{SmolStr, format_smolstr};
use tracing::field::{Field, Visit};
use tracing::instrument::WithSubscriber as _;
use tracing::span::{Attributes, Id, Record};
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::config::{ConfigError, OtlpConfig, OtlpProtocol};
use crate::context::RunContext;
use crate::handle::{RUN_SPAN, error_chain, is_sensitive};
use crate::queue::{Queue, QueueConfig, Sink};

/// OpenTelemetry's default span limits: more attributes or events are dropped and counted.
const MAX_ATTRIBUTES: usize = 128;
const MAX_EVENTS: usize = 128;

/// A span's fields, the first one inline. With short strings inline too (`SmolStr`), a
/// typical span allocates nothing that the export worker frees: freeing on another thread
/// sends glibc's allocator down its slow path on the caller's next allocations, which
/// measured as much as recording the rest of the span.
type Attrs = SmallVec<[(&'static str, Attr); 1]>;

/// Builds the exporter and starts its worker; returns the queue (for flush and shutdown) and
/// the tracing layer that feeds it.
pub(crate) fn start(
    config: &OtlpConfig,
    run: RunContext,
    service: &str,
    environment: Option<&str>,
) -> Result<(Queue<SpanRecord>, OtlpLayer), ConfigError> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(&config.traces_endpoint)
        .with_protocol(match config.protocol {
            OtlpProtocol::HttpProtobuf => Protocol::HttpBinary,
            OtlpProtocol::HttpJson => Protocol::HttpJson,
        })
        .with_timeout(config.timeout)
        .with_headers(config.headers.iter().cloned().collect())
        .build()
        .map_err(|e| ConfigError(format!("OTLP exporter: {e}")))?;
    exporter.set_resource(&resource(service, environment));
    let sink = Otlp {
        exporter,
        trace_id: opentelemetry::trace::TraceId::from(run.trace_id.to_u128()),
        scope: InstrumentationScope::builder("fabrik")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    };
    let queue = Queue::start(
        "otlp",
        sink,
        QueueConfig {
            capacity: config.queue_capacity,
            max_batch: config.max_batch,
            flush_interval: config.flush_interval,
        },
    );
    let layer = OtlpLayer {
        queue: queue.clone(),
        root_span_id: run.root_span_id.to_u64(),
        root_taken: AtomicBool::new(false),
    };
    Ok((queue, layer))
}

/// What OTLP spans and metrics say about their source. The standard detectors honour
/// `OTEL_RESOURCE_ATTRIBUTES`; the service name is ours.
pub(crate) fn resource(service: &str, environment: Option<&str>) -> Resource {
    let mut resource = Resource::builder().with_service_name(service.to_owned());
    if let Some(env) = environment {
        resource =
            resource.with_attribute(KeyValue::new("deployment.environment.name", env.to_owned()));
    }
    resource.build()
}

/// A span as the calling thread records it; the export worker turns it into `SpanData`.
///
/// Kept small (two cache lines with its queue slot): the worker reads every record on the
/// other core, so each line written here is a cache-line transfer, which measured as the
/// largest single cost of queuing a span. What few spans have is boxed in [`Extra`].
#[derive(Debug)]
pub(crate) struct SpanRecord {
    span_id: u64,
    /// 0 for a root span.
    parent_span_id: u64,
    /// Nanoseconds since the Unix epoch.
    start: u64,
    end: u64,
    metadata: &'static Metadata<'static>,
    kind: SpanKind,
    attributes: Attrs,
    extra: Option<Box<Extra>>,
}

/// The parts of a span most spans do not have.
#[derive(Debug, Default)]
struct Extra {
    /// From an `otel.name` field.
    name: Option<String>,
    dropped_attributes: u32,
    events: Vec<EventRecord>,
    dropped_events: u32,
    status: SpanStatus,
}

impl SpanRecord {
    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_default()
    }
}

/// The time now, as OTLP counts it.
fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A field value, kept raw until export.
#[derive(Debug, Clone, PartialEq)]
enum Attr {
    Str(SmolStr),
    I64(i64),
    F64(f64),
    Bool(bool),
}

#[derive(Debug, Default, Clone, PartialEq)]
enum SpanStatus {
    #[default]
    Unset,
    Ok,
    Error(String),
}

#[derive(Debug)]
struct EventRecord {
    name: String,
    time: SystemTime,
    level: Level,
    target: &'static str,
    attributes: Attrs,
}

/// The `tracing` layer that records spans for OTLP. Every span of the subscriber belongs to
/// the run's trace; the first root span named `fabrik.run` takes the run's root span id, the
/// parent id that Application Insights items and outgoing `traceparent` headers carry.
#[derive(Debug)]
pub(crate) struct OtlpLayer {
    queue: Queue<SpanRecord>,
    root_span_id: u64,
    root_taken: AtomicBool,
}

impl<S> Layer<S> for OtlpLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent_span_id = span
            .parent()
            .and_then(|p| p.extensions().get::<SpanRecord>().map(|r| r.span_id))
            .unwrap_or(0);
        let metadata = span.metadata();
        let span_id = if parent_span_id == 0
            && metadata.name() == RUN_SPAN
            && !self.root_taken.swap(true, Ordering::Relaxed)
        {
            self.root_span_id
        } else {
            new_span_id()
        };
        let mut record = SpanRecord {
            span_id,
            parent_span_id,
            start: now_nanos(),
            end: 0,
            metadata,
            kind: SpanKind::Internal,
            attributes: Attrs::new(),
            extra: None,
        };
        attrs.record(&mut Fields(SpanFields {
            span: &mut record,
            replace: false,
        }));
        span.extensions_mut().insert(record);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(record) = span.extensions_mut().get_mut::<SpanRecord>() {
            values.record(&mut Fields(SpanFields {
                span: record,
                replace: true,
            }));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        let Some(record) = extensions.get_mut::<SpanRecord>() else {
            return;
        };
        let extra = record.extra();
        if extra.events.len() >= MAX_EVENTS {
            extra.dropped_events += 1;
            return;
        }
        let metadata = event.metadata();
        let mut fields = Fields(EventFields::default());
        event.record(&mut fields);
        let fields = fields.0;
        let name = fields.message.unwrap_or_else(|| metadata.name().to_owned());
        if *metadata.level() == Level::ERROR && extra.status == SpanStatus::Unset {
            extra.status = SpanStatus::Error(name.clone());
        }
        extra.events.push(EventRecord {
            name,
            time: SystemTime::now(),
            level: *metadata.level(),
            target: metadata.target(),
            attributes: fields.attributes,
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let record = span.extensions_mut().remove::<SpanRecord>();
        if let Some(mut record) = record {
            record.end = now_nanos();
            self.queue.submit(record);
        }
    }
}

/// A random non-zero span id. rand's thread-local generator costs a few nanoseconds.
fn new_span_id() -> u64 {
    rand::random::<u64>().max(1)
}

/// Records span fields, honouring the `otel.*` conventions.
struct SpanFields<'a> {
    span: &'a mut SpanRecord,
    /// Whether a field may already be present (`Span::record`), so its value is replaced.
    replace: bool,
}

impl PutField for SpanFields<'_> {
    fn put(&mut self, field: &Field, value: Attr) {
        let key = field.name();
        if let Attr::Str(s) = &value {
            match key {
                "otel.name" => return self.span.extra().name = Some(s.to_string()),
                "otel.kind" => return self.span.kind = parse_kind(s),
                "otel.status_code" => {
                    self.span.extra().status = match s.to_ascii_lowercase().as_str() {
                        "ok" => SpanStatus::Ok,
                        "error" => SpanStatus::Error(String::new()),
                        _ => SpanStatus::Unset,
                    };
                    return;
                }
                "otel.status_message" | "otel.status_description" => {
                    if let SpanStatus::Error(message) = &mut self.span.extra().status {
                        *message = s.to_string();
                    }
                    return;
                }
                _ => {}
            }
        }
        let attributes = &mut self.span.attributes;
        if self.replace
            && let Some(slot) = attributes.iter_mut().find(|(k, _)| *k == key)
        {
            slot.1 = value;
        } else if attributes.len() < MAX_ATTRIBUTES {
            attributes.push((key, value));
        } else {
            self.span.extra().dropped_attributes += 1;
        }
    }
}

/// An event's message and other fields.
#[derive(Default)]
struct EventFields {
    message: Option<String>,
    attributes: Attrs,
}

impl PutField for EventFields {
    fn put(&mut self, field: &Field, value: Attr) {
        if field.name() == "message" {
            if let Attr::Str(message) = value {
                self.message = Some(message.to_string());
            }
        } else if self.attributes.len() < MAX_ATTRIBUTES {
            self.attributes.push((field.name(), value));
        }
    }
}

/// Where [`Fields`] puts each value.
trait PutField {
    fn put(&mut self, field: &Field, value: Attr);
}

/// Turns each field into an [`Attr`] for `P`.
struct Fields<P>(P);

impl<P: PutField> Visit for Fields<P> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.put(field, Attr::Str(SmolStr::new(value)));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.put(field, Attr::Str(format_smolstr!("{value:?}")));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.put(field, Attr::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.put(field, attr_u64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.put(field, Attr::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.put(field, Attr::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.put(field, Attr::Str(error_chain(value).into()));
    }
}

/// OTLP integers are signed 64-bit; larger values keep their digits as a string.
fn attr_u64(value: u64) -> Attr {
    i64::try_from(value).map_or_else(|_| Attr::Str(format_smolstr!("{value}")), Attr::I64)
}

fn parse_kind(s: &str) -> SpanKind {
    match s.to_ascii_lowercase().as_str() {
        "client" => SpanKind::Client,
        "server" => SpanKind::Server,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        _ => SpanKind::Internal,
    }
}

/// The OTLP exporter as a batch sink; builds `SpanData` here, on the worker.
struct Otlp {
    exporter: opentelemetry_otlp::SpanExporter,
    trace_id: opentelemetry::trace::TraceId,
    scope: InstrumentationScope,
}

impl Otlp {
    fn span_data(&self, r: SpanRecord) -> SpanData {
        let extra = r.extra.map(|e| *e).unwrap_or_default();
        let mut events = SpanEvents::default();
        events.dropped_count = extra.dropped_events;
        events.events = extra
            .events
            .into_iter()
            .map(|e| {
                let mut attributes = Vec::with_capacity(e.attributes.len() + 2);
                attributes.push(KeyValue::new("level", e.level.as_str()));
                attributes.push(KeyValue::new("target", e.target));
                attributes.extend(e.attributes.into_iter().map(key_value));
                opentelemetry::trace::Event::new(e.name, e.time, attributes, 0)
            })
            .collect();
        let time = |nanos: u64| SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos);
        SpanData {
            span_context: SpanContext::new(
                self.trace_id,
                r.span_id.into(),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: r.parent_span_id.into(),
            parent_span_is_remote: false,
            span_kind: r.kind,
            name: extra
                .name
                .map_or(Cow::Borrowed(r.metadata.name()), Cow::Owned),
            start_time: time(r.start),
            end_time: time(r.end),
            attributes: r.attributes.into_iter().map(key_value).collect(),
            dropped_attributes_count: extra.dropped_attributes,
            events,
            links: SpanLinks::default(),
            status: match extra.status {
                SpanStatus::Unset => Status::Unset,
                SpanStatus::Ok => Status::Ok,
                SpanStatus::Error(message) => Status::error(message),
            },
            instrumentation_scope: self.scope.clone(),
        }
    }
}

/// A field as an OpenTelemetry attribute; values under secret-looking keys never leave.
fn key_value((key, value): (&'static str, Attr)) -> KeyValue {
    if is_sensitive(key) {
        return KeyValue::new(key, "[redacted]");
    }
    match value {
        Attr::Str(s) => KeyValue::new(key, s.to_string()),
        Attr::I64(v) => KeyValue::new(key, v),
        Attr::F64(v) => KeyValue::new(key, v),
        Attr::Bool(v) => KeyValue::new(key, v),
    }
}

impl Sink for Otlp {
    type Item = SpanRecord;

    async fn send(&mut self, batch: Vec<SpanRecord>) -> Option<u64> {
        let n = batch.len() as u64;
        let batch = batch.into_iter().map(|r| self.span_data(r)).collect();
        // No subscriber while exporting: spans of the HTTP stack would be exported in turn.
        let sent = opentelemetry_sdk::trace::SpanExporter::export(&self.exporter, batch)
            .with_subscriber(tracing::subscriber::NoSubscriber::default())
            .await;
        sent.ok().map(|()| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_and_its_queue_slot_fit_two_cache_lines() {
        assert!(
            std::mem::size_of::<SpanRecord>() + 8 <= 128,
            "{}",
            std::mem::size_of::<SpanRecord>()
        );
    }

    #[test]
    fn large_unsigned_values_keep_their_digits() {
        assert_eq!(attr_u64(7), Attr::I64(7));
        assert_eq!(attr_u64(u64::MAX), Attr::Str(u64::MAX.to_string().into()));
    }

    #[test]
    fn span_kinds_follow_the_otel_convention() {
        assert_eq!(parse_kind("CLIENT"), SpanKind::Client);
        assert_eq!(parse_kind("server"), SpanKind::Server);
        assert_eq!(parse_kind("nonsense"), SpanKind::Internal);
    }

    #[test]
    fn secret_looking_keys_are_redacted_whatever_the_type() {
        let kv = key_value(("client_secret", Attr::Str("s3cr3t".into())));
        assert_eq!(kv.value.as_str(), "[redacted]");
        let kv = key_value(("api_key", Attr::I64(1234)));
        assert_eq!(kv.value.as_str(), "[redacted]");
        let kv = key_value(("route", Attr::Str("/v1/workspaces".into())));
        assert_eq!(kv.value.as_str(), "/v1/workspaces");
    }
}
