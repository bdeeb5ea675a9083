//! OTLP/HTTP export of the metrics recorded through the `metrics` facade, and [`Recorder`],
//! the recorder that feeds both Prometheus and OTLP.
//!
//! Recording stays as cheap as Prometheus's: a counter is an atomic add and a histogram
//! sample a lock-free push (metrics-util's atomic registry). Only our export task, every
//! interval and at flush and shutdown, moves the values into OpenTelemetry instruments and
//! has the SDK's manual reader aggregate them for opentelemetry-otlp's async exporter. (The
//! SDK's own instruments cost a label lookup on every call, and its periodic reader exports
//! from a thread of its own, where the async HTTP client has no runtime.)

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder as MetricsRecorder, SharedString,
    Unit,
};
use metrics_exporter_prometheus::PrometheusRecorder;
use metrics_util::layers::{Fanout, FanoutBuilder};
use metrics_util::registry::{AtomicStorage, Registry};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter as _;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;
use tracing::instrument::WithSubscriber as _;

use fabrik_core::metric_names::TELEMETRY_DROPPED;

use crate::config::{ConfigError, OtlpMetricsConfig, OtlpProtocol};
use crate::handle::BUCKETS;
use crate::queue::{Control, ask};

/// The metrics recorder telemetry installs: Prometheus, OTLP, or both.
pub enum Recorder {
    /// Only the Prometheus registry.
    Prometheus(PrometheusRecorder),
    /// Only OTLP export.
    Otlp(OtlpRecorder),
    /// Both, each handle feeding the two.
    Both(Fanout),
}

impl Recorder {
    pub(crate) fn new(
        prometheus: Option<PrometheusRecorder>,
        otlp: Option<OtlpRecorder>,
    ) -> Option<Self> {
        match (prometheus, otlp) {
            (Some(p), None) => Some(Recorder::Prometheus(p)),
            (None, Some(o)) => Some(Recorder::Otlp(o)),
            (Some(p), Some(o)) => Some(Recorder::Both(
                FanoutBuilder::default()
                    .add_recorder(p)
                    .add_recorder(o)
                    .build(),
            )),
            (None, None) => None,
        }
    }

    fn inner(&self) -> &dyn MetricsRecorder {
        match self {
            Recorder::Prometheus(r) => r,
            Recorder::Otlp(r) => r,
            Recorder::Both(r) => r,
        }
    }
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Recorder::Prometheus(_) => "Recorder(prometheus)",
            Recorder::Otlp(_) => "Recorder(otlp)",
            Recorder::Both(_) => "Recorder(prometheus, otlp)",
        })
    }
}

impl MetricsRecorder for Recorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner().describe_counter(key, unit, description);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner().describe_gauge(key, unit, description);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner().describe_histogram(key, unit, description);
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.inner().register_counter(key, metadata)
    }
    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.inner().register_gauge(key, metadata)
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.inner().register_histogram(key, metadata)
    }
}

/// The OTLP side of [`Recorder`]: keeps values in atomics until the export task reads them.
#[derive(Clone)]
pub struct OtlpRecorder {
    shared: Arc<Shared>,
}

impl fmt::Debug for OtlpRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpRecorder").finish_non_exhaustive()
    }
}

struct Shared {
    registry: Registry<Key, AtomicStorage>,
    /// Unit and description by metric name, from `describe_*`.
    descriptions: Mutex<HashMap<String, (Option<Unit>, SharedString)>>,
}

impl OtlpRecorder {
    fn describe(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if let Ok(mut d) = self.shared.descriptions.lock() {
            d.insert(key.as_str().to_owned(), (unit, description));
        }
    }
}

impl MetricsRecorder for OtlpRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let registry = &self.shared.registry;
        registry.get_or_create_counter(key, |c| Counter::from_arc(c.clone()))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let registry = &self.shared.registry;
        registry.get_or_create_gauge(key, |g| Gauge::from_arc(g.clone()))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let registry = &self.shared.registry;
        registry.get_or_create_histogram(key, |h| Histogram::from_arc(h.clone()))
    }
}

/// The handle on the export task, for flush and shutdown.
#[derive(Debug, Clone)]
pub(crate) struct MetricsExport {
    control: mpsc::UnboundedSender<Control>,
}

impl MetricsExport {
    /// Exports now, waiting at most `deadline`; returns whether the deadline passed.
    pub(crate) async fn flush(&self, deadline: Duration) -> bool {
        self.ask(Control::Flush, deadline).await
    }

    /// Exports a last time and stops, waiting at most `deadline`.
    pub(crate) async fn shutdown(&self, deadline: Duration) -> bool {
        self.ask(Control::Shutdown, deadline).await
    }

    async fn ask(&self, make: fn(oneshot::Sender<()>) -> Control, deadline: Duration) -> bool {
        ask(&self.control, make, deadline).await.unwrap_or(false)
    }
}

/// Builds the exporter and starts the export task on the current tokio runtime.
pub(crate) fn start(
    config: &OtlpMetricsConfig,
    resource: Resource,
) -> Result<(OtlpRecorder, MetricsExport), ConfigError> {
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_endpoint(&config.endpoint)
        .with_protocol(match config.protocol {
            OtlpProtocol::HttpProtobuf => Protocol::HttpBinary,
            OtlpProtocol::HttpJson => Protocol::HttpJson,
        })
        .with_timeout(config.timeout)
        .with_headers(config.headers.iter().cloned().collect())
        .with_temporality(Temporality::Cumulative)
        .build()
        .map_err(|e| ConfigError(format!("OTLP metrics exporter: {e}")))?;
    let reader = SharedReader(Arc::new(ManualReader::builder().build()));
    let provider = SdkMeterProvider::builder()
        .with_reader(reader.clone())
        .with_resource(resource)
        .build();
    let shared = Arc::new(Shared {
        registry: Registry::atomic(),
        descriptions: Mutex::new(HashMap::new()),
    });
    let (control, rx) = mpsc::unbounded_channel();
    let task = Task {
        shared: shared.clone(),
        meter: provider.meter("fabrik"),
        _provider: provider,
        reader,
        exporter,
        counters: HashMap::new(),
        gauges: HashMap::new(),
        histograms: HashMap::new(),
        last: HashMap::new(),
    };
    tokio::spawn(task.run(rx, config.interval));
    Ok((OtlpRecorder { shared }, MetricsExport { control }))
}

/// The manual reader, shared between the meter provider and our task.
#[derive(Debug, Clone)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

struct Task {
    shared: Arc<Shared>,
    meter: Meter,
    /// Keeps the pipeline the reader collects from alive.
    _provider: SdkMeterProvider,
    reader: SharedReader,
    exporter: opentelemetry_otlp::MetricExporter,
    counters: HashMap<String, opentelemetry::metrics::Counter<u64>>,
    gauges: HashMap<String, opentelemetry::metrics::Gauge<f64>>,
    histograms: HashMap<String, opentelemetry::metrics::Histogram<f64>>,
    /// Each counter's value at the last export: OpenTelemetry counters take increments.
    last: HashMap<Key, u64>,
}

impl Task {
    async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                biased;
                c = control.recv() => match c {
                    Some(Control::Flush(done)) => {
                        self.export().await;
                        let _ = done.send(());
                    }
                    Some(Control::Shutdown(done)) => {
                        self.export().await;
                        let _ = done.send(());
                        return;
                    }
                    None => break, // the telemetry handle is gone
                },
                _ = tick.tick() => self.export().await,
            }
        }
        self.export().await;
    }

    async fn export(&mut self) {
        self.transfer();
        let mut rm = ResourceMetrics::default();
        if self.reader.collect(&mut rm).is_err() || rm.scope_metrics().next().is_none() {
            return;
        }
        // No subscriber while exporting: spans of the HTTP stack would be exported in turn.
        let sent = self
            .exporter
            .export(&rm)
            .with_subscriber(tracing::subscriber::NoSubscriber::default())
            .await;
        if sent.is_err() {
            // Cumulative values: the next export carries what this one failed to deliver.
            metrics::counter!(TELEMETRY_DROPPED, "exporter" => "otlp_metrics", "reason" => "send_failed")
                .increment(1);
        }
    }

    /// Moves what was recorded since the last export into the OpenTelemetry instruments.
    fn transfer(&mut self) {
        let shared = self.shared.clone();
        let descriptions = shared
            .descriptions
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        let describe = |name: &str| descriptions.get(name).cloned();
        shared.registry.visit_counters(|key, counter| {
            let now = counter.load(Ordering::Relaxed);
            let last = self.last.entry(key.clone()).or_insert(0);
            let delta = now.saturating_sub(*last);
            *last = now;
            let meter = &self.meter;
            self.counters
                .entry(key.name().to_owned())
                .or_insert_with(|| {
                    described!(
                        meter.u64_counter(key.name().to_owned()),
                        describe(key.name())
                    )
                    .build()
                })
                .add(delta, &attributes(key));
        });
        shared.registry.visit_gauges(|key, gauge| {
            let value = f64::from_bits(gauge.load(Ordering::Relaxed));
            let meter = &self.meter;
            self.gauges
                .entry(key.name().to_owned())
                .or_insert_with(|| {
                    described!(meter.f64_gauge(key.name().to_owned()), describe(key.name())).build()
                })
                .record(value, &attributes(key));
        });
        shared.registry.visit_histograms(|key, bucket| {
            let meter = &self.meter;
            let histogram = self
                .histograms
                .entry(key.name().to_owned())
                .or_insert_with(|| {
                    let b = meter
                        .f64_histogram(key.name().to_owned())
                        .with_boundaries(BUCKETS.to_vec());
                    // fabrik's histograms are in seconds, as their names say.
                    let b = if key.name().ends_with("_seconds") {
                        b.with_unit("s")
                    } else {
                        b
                    };
                    described!(b, describe(key.name())).build()
                });
            let attributes = attributes(key);
            bucket.clear_with(|samples| {
                for &v in samples {
                    histogram.record(v, &attributes);
                }
            });
        });
    }
}

/// Applies the unit and description given to `describe_*` to an instrument builder.
macro_rules! described {
    ($builder:expr, $described:expr) => {{
        let mut b = $builder;
        if let Some((unit, description)) = $described {
            b = b.with_description(description.into_owned());
            if let Some(u) = unit {
                b = b.with_unit(ucum(u));
            }
        }
        b
    }};
}
use described;

fn attributes(key: &Key) -> Vec<KeyValue> {
    key.labels()
        .map(|l| KeyValue::new(l.key().to_owned(), l.value().to_owned()))
        .collect()
}

/// The UCUM unit OpenTelemetry expects for a `metrics` unit.
fn ucum(unit: Unit) -> &'static str {
    match unit {
        Unit::Count => "1",
        Unit::Percent => "%",
        Unit::Seconds => "s",
        Unit::Milliseconds => "ms",
        Unit::Microseconds => "us",
        Unit::Nanoseconds => "ns",
        Unit::Tebibytes => "TiBy",
        Unit::Gibibytes => "GiBy",
        Unit::Mebibytes => "MiBy",
        Unit::Kibibytes => "KiBy",
        Unit::Bytes => "By",
        Unit::TerabitsPerSecond => "Tbit/s",
        Unit::GigabitsPerSecond => "Gbit/s",
        Unit::MegabitsPerSecond => "Mbit/s",
        Unit::KilobitsPerSecond => "kbit/s",
        Unit::BitsPerSecond => "bit/s",
        Unit::CountPerSecond => "1/s",
    }
}
