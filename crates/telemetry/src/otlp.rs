//! OTLP/HTTP export of spans: `tracing` spans become OpenTelemetry spans (tracing-opentelemetry)
//! carrying the run's trace id, and go through our bounded queue to `opentelemetry-otlp`'s
//! async reqwest exporter on the current tokio runtime.
//!
//! The SDK's own batch processor is not used: its default runs on a thread of its own, where
//! the async reqwest client has no runtime, and its drops are not visible as a metric. Our
//! [`Queue`] counts drops under `fabrik_telemetry_dropped_total{exporter="otlp"}` and flushes
//! with a deadline, like the Application Insights exporter.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider, Span, SpanData,
    SpanExporter as _, SpanProcessor,
};
use tracing::instrument::WithSubscriber as _;

use crate::config::{ConfigError, OtlpConfig, OtlpProtocol};
use crate::context::RunContext;
use crate::queue::{Queue, QueueConfig, Sink};

/// Builds the exporter and starts its worker; returns the queue (for flush and shutdown) and
/// the tracer for the tracing layer.
pub(crate) fn start(
    config: &OtlpConfig,
    run: RunContext,
    service: &str,
    environment: Option<&str>,
) -> Result<(Queue<SpanData>, SdkTracer), ConfigError> {
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
    // The standard detectors honour OTEL_RESOURCE_ATTRIBUTES; the service name is ours.
    let mut resource = Resource::builder().with_service_name(service.to_owned());
    if let Some(env) = environment {
        resource =
            resource.with_attribute(KeyValue::new("deployment.environment.name", env.to_owned()));
    }
    let resource = resource.build();
    exporter.set_resource(&resource);
    let queue = Queue::start(
        "otlp",
        Otlp(exporter),
        QueueConfig {
            capacity: config.queue_capacity,
            max_batch: config.max_batch,
            flush_interval: config.flush_interval,
        },
    );
    let provider = SdkTracerProvider::builder()
        .with_id_generator(RunIds {
            trace_id: opentelemetry::trace::TraceId::from(run.trace_id.to_u128()),
            spans: RandomIdGenerator::default(),
        })
        .with_span_processor(QueueProcessor(queue.clone()))
        .with_resource(resource)
        .build();
    Ok((queue, provider.tracer("fabrik")))
}

/// Every root span starts the run's trace, so all spans of the run share one trace id even
/// when they are not under `Telemetry::run_span`.
#[derive(Debug)]
struct RunIds {
    trace_id: opentelemetry::trace::TraceId,
    spans: RandomIdGenerator,
}

impl IdGenerator for RunIds {
    fn new_trace_id(&self) -> opentelemetry::trace::TraceId {
        self.trace_id
    }
    fn new_span_id(&self) -> opentelemetry::trace::SpanId {
        self.spans.new_span_id()
    }
}

/// Hands ended spans to the queue without blocking.
#[derive(Debug)]
struct QueueProcessor(Queue<SpanData>);

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.0.submit(span);
        }
    }

    /// Starts a flush without waiting: blocking here could stall a runtime thread the worker
    /// needs. `Telemetry::flush` waits for it.
    fn force_flush(&self) -> OTelSdkResult {
        self.0.request_flush();
        Ok(())
    }

    /// `Telemetry::shutdown` drains the queue, with its deadline.
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// The OTLP exporter as a batch sink.
struct Otlp(opentelemetry_otlp::SpanExporter);

impl Sink for Otlp {
    type Item = SpanData;

    async fn send(&mut self, batch: Vec<SpanData>) -> Option<u64> {
        let n = batch.len() as u64;
        // No subscriber while exporting: spans of the HTTP stack would be exported in turn.
        let sent = opentelemetry_sdk::trace::SpanExporter::export(&self.0, batch)
            .with_subscriber(tracing::subscriber::NoSubscriber::default())
            .await;
        sent.ok().map(|()| n)
    }
}
