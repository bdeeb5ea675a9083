//! The telemetry handle: building and installing exporters, the track_* API, timing.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use fabrik_core::metric_names::RUN_DURATION;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use rustc_hash::FxHashMap;
use tracing::{Dispatch, Instrument, Span};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::appinsights::{Item, ItemKind};
use crate::config::{ConfigError, ConsoleFormat, TelemetryConfig};
use crate::context::{RunContext, TraceId};
use crate::json_fields::JsonFields;
use crate::otlp::SpanRecord;
use crate::otlp_metrics::{MetricsExport, Recorder};
use crate::queue::{FlushReport, Queue};
use crate::sink::MetricsEventSink;

/// Counter: calls timed by [`Telemetry::timed`] / [`Telemetry::timed_result`], labels `name`,
/// `outcome` (`ok`, `error`).
pub const CALLS: &str = "fabrik_calls_total";
/// Histogram (seconds): duration of timed calls, label `name`.
pub const CALL_DURATION: &str = "fabrik_call_duration_seconds";

/// The name of the run's root span ([`Telemetry::run_span`]).
pub(crate) const RUN_SPAN: &str = "fabrik.run";

/// Histogram buckets (seconds) for every fabrik histogram: from 5 ms calls to 30 min runs.
pub(crate) const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0,
];

/// A layer's filter. A bare level (the default `info`) needs no per-span bookkeeping;
/// EnvFilter takes a lock on every span enter, so it is used only for directives that need it.
enum LogFilter {
    Level(LevelFilter),
    Env(Box<EnvFilter>),
}

impl LogFilter {
    fn parse(filter: &str) -> Result<Self, ConfigError> {
        match filter.trim().parse::<LevelFilter>() {
            Ok(level) => Ok(LogFilter::Level(level)),
            Err(_) => EnvFilter::try_new(filter)
                .map(|f| LogFilter::Env(Box::new(f)))
                .map_err(|e| ConfigError(format!("log filter '{filter}': {e}"))),
        }
    }

    /// `layer`, behind `filter` when it has one of its own.
    fn apply<L: Layer<Base> + Send + Sync>(
        filter: Option<Self>,
        layer: L,
    ) -> Box<dyn Layer<Base> + Send + Sync> {
        match filter {
            None => layer.boxed(),
            Some(LogFilter::Level(f)) => layer.with_filter(f).boxed(),
            Some(LogFilter::Env(f)) => layer.with_filter(*f).boxed(),
        }
    }
}

/// The subscriber every layer sits on: the registry behind one global filter.
type Base = tracing_subscriber::layer::Layered<Box<dyn Layer<Registry> + Send + Sync>, Registry>;

/// Why telemetry could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The configuration is unusable.
    Config(ConfigError),
    /// A global subscriber, recorder or telemetry handle is already installed.
    AlreadyInstalled(&'static str),
    /// An exporter needs a tokio runtime and none is running.
    NoRuntime,
}

impl fmt::Display for TelemetryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TelemetryError::Config(e) => e.fmt(f),
            TelemetryError::AlreadyInstalled(what) => {
                write!(f, "a global {what} is already installed")
            }
            TelemetryError::NoRuntime => {
                f.write_str("telemetry exporters must start inside a tokio runtime")
            }
        }
    }
}

impl std::error::Error for TelemetryError {}

impl From<ConfigError> for TelemetryError {
    fn from(e: ConfigError) -> Self {
        TelemetryError::Config(e)
    }
}

/// A remote call, for [`Telemetry::track_dependency`].
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    /// The kind (`HTTP`, `Azure Key Vault`, …).
    pub kind: String,
    /// The host or service called.
    pub target: String,
    /// The operation, e.g. a route template `POST /v1/workspaces`.
    pub name: String,
    /// The command or URL; a URL's query string is removed (it may hold a SAS signature).
    pub data: String,
    /// How long it took.
    pub duration: Duration,
    /// Whether it succeeded.
    pub success: bool,
    /// The status code or error kind.
    pub result_code: String,
}

/// What [`Telemetry::build`] makes, for callers who install the pieces themselves (or tests,
/// which scope them with `tracing::dispatcher::set_default` and `metrics::set_default_local_recorder`).
#[derive(Debug)]
pub struct TelemetryParts {
    /// The handle.
    pub telemetry: Telemetry,
    /// The tracing subscriber with the configured console (and export) layers.
    pub dispatch: Dispatch,
    /// The metrics recorder (Prometheus, OTLP or both), when either is configured; the
    /// Prometheus handle is in [`Telemetry::prometheus`].
    pub recorder: Option<Recorder>,
}

/// The telemetry of one run. Cheap to clone; every call is fire-and-forget.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    run: RunContext,
    app_insights: Option<Queue<Item>>,
    otlp: Option<Queue<SpanRecord>>,
    metrics_export: Option<MetricsExport>,
    prometheus: Option<PrometheusHandle>,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("trace_id", &self.inner.run.trace_id)
            .field("app_insights", &self.inner.app_insights.is_some())
            .field("otlp", &self.inner.otlp.is_some())
            .field("otlp_metrics", &self.inner.metrics_export.is_some())
            .field("prometheus", &self.inner.prometheus.is_some())
            .finish()
    }
}

static GLOBAL: OnceLock<Telemetry> = OnceLock::new();
static DISABLED: LazyLock<Telemetry> = LazyLock::new(Telemetry::disabled);

/// The handle [`Telemetry::init`] installed, or a disabled one (logs only) before that.
pub fn global() -> &'static Telemetry {
    GLOBAL.get().unwrap_or(&DISABLED)
}

impl Telemetry {
    /// A handle that exports nothing: track_* calls only log through `tracing`.
    pub fn disabled() -> Self {
        Self {
            inner: Arc::new(Inner {
                run: RunContext::new(),
                app_insights: None,
                otlp: None,
                metrics_export: None,
                prometheus: None,
            }),
        }
    }

    /// Builds the configured pieces for a new run, writing console output to stderr, in
    /// colour only when stderr is a terminal and [`TelemetryConfig::color`] allows it.
    pub fn build(config: &TelemetryConfig) -> Result<TelemetryParts, TelemetryError> {
        use std::io::IsTerminal;
        let ansi = config.color && std::io::stderr().is_terminal();
        Self::build_inner(
            config,
            RunContext::new(),
            BoxMakeWriter::new(std::io::stderr),
            ansi,
        )
    }

    /// Builds the configured pieces for the run `run`, writing console output to `writer`,
    /// which is taken for a file or pipe: no colour. Exporters start on the current tokio
    /// runtime.
    pub fn build_with(
        config: &TelemetryConfig,
        run: RunContext,
        writer: BoxMakeWriter,
    ) -> Result<TelemetryParts, TelemetryError> {
        Self::build_inner(config, run, writer, false)
    }

    fn build_inner(
        config: &TelemetryConfig,
        run: RunContext,
        writer: BoxMakeWriter,
        ansi: bool,
    ) -> Result<TelemetryParts, TelemetryError> {
        let console_filter = LogFilter::parse(&config.filter)?;
        let needs_runtime = config.app_insights.is_some()
            || config.otlp.is_some()
            || config.otlp_metrics.is_some()
            || config.prometheus;
        if needs_runtime && tokio::runtime::Handle::try_current().is_err() {
            return Err(TelemetryError::NoRuntime);
        }
        let environment = config.environment.as_deref();
        let otlp = config
            .otlp
            .as_ref()
            .map(|c| crate::otlp::start(c, run, &config.service_name, environment))
            .transpose()?;
        // The console shows what `filter` asks for (often only warnings); OTLP gets every span
        // at `info` and above, whatever the console shows. One filter in front of both when
        // they agree: a filter per layer costs every span some bookkeeping.
        let otlp_level = otlp.is_some().then_some(LevelFilter::INFO);
        let (global, console_filter, otlp_filter): (Box<dyn Layer<Registry> + Send + Sync>, _, _) =
            match (console_filter, otlp_level) {
                (LogFilter::Level(console), otlp) => {
                    let global = console.max(otlp.unwrap_or(LevelFilter::OFF));
                    let own =
                        |level: LevelFilter| (level < global).then_some(LogFilter::Level(level));
                    (Box::new(global), own(console), otlp.and_then(own))
                }
                (LogFilter::Env(env), None) => (env, None, None),
                (env, Some(otlp)) => (
                    Box::new(LevelFilter::TRACE),
                    Some(env),
                    Some(LogFilter::Level(otlp)),
                ),
            };
        let mut layers: Vec<Box<dyn Layer<Base> + Send + Sync>> = Vec::new();
        let (otlp, otlp_layer) = otlp.unzip();
        layers.extend(otlp_layer.map(|l| LogFilter::apply(otlp_filter, l)));
        layers.extend(config.console.map(|format| {
            match format {
                ConsoleFormat::Human => LogFilter::apply(
                    console_filter,
                    tracing_subscriber::fmt::layer()
                        .with_ansi(ansi)
                        .with_writer(writer),
                ),
                ConsoleFormat::Json => LogFilter::apply(
                    console_filter,
                    tracing_subscriber::fmt::layer()
                        .json()
                        .with_current_span(false)
                        .with_span_list(true)
                        .fmt_fields(JsonFields)
                        .with_writer(writer),
                ),
            }
        }));
        let subscriber = Registry::default().with(global).with(layers);

        let prometheus_recorder = config.prometheus.then(|| {
            let builder = PrometheusBuilder::new();
            // set_buckets fails only on an empty slice.
            builder
                .set_buckets(BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new())
                .build_recorder()
        });
        let prometheus = prometheus_recorder.as_ref().map(PrometheusRecorder::handle);
        let (otlp_recorder, metrics_export) = config
            .otlp_metrics
            .as_ref()
            .map(|c| {
                let resource = crate::otlp::resource(&config.service_name, environment);
                crate::otlp_metrics::start(c, resource)
            })
            .transpose()?
            .unzip();
        let recorder = Recorder::new(prometheus_recorder, otlp_recorder);
        if let Some(handle) = prometheus.clone() {
            // Drains histogram samples into buckets even if nobody scrapes.
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(10));
                loop {
                    tick.tick().await;
                    handle.run_upkeep();
                }
            });
        }
        let app_insights = config
            .app_insights
            .as_ref()
            .map(|ai| crate::appinsights::start(ai, run, &config.service_name, environment));
        let telemetry = Self {
            inner: Arc::new(Inner {
                run,
                app_insights,
                otlp,
                metrics_export,
                prometheus,
            }),
        };
        Ok(TelemetryParts {
            telemetry,
            dispatch: Dispatch::new(subscriber),
            recorder,
        })
    }

    /// Builds from `config` and installs globally: the tracing subscriber, the metrics
    /// recorder, and the handle [`global`] returns. Call once, inside the tokio runtime.
    pub fn init(config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
        Self::install(Self::build(config)?)
    }

    /// Installs what [`Telemetry::build_with`] made as the process's tracing subscriber,
    /// metrics recorder and [`global`] handle. Call once.
    pub fn install(parts: TelemetryParts) -> Result<Telemetry, TelemetryError> {
        tracing::dispatcher::set_global_default(parts.dispatch)
            .map_err(|_| TelemetryError::AlreadyInstalled("tracing subscriber"))?;
        if let Some(recorder) = parts.recorder {
            metrics::set_global_recorder(recorder)
                .map_err(|_| TelemetryError::AlreadyInstalled("metrics recorder"))?;
            // Read on a new thread, where no local recorder can hide the global one.
            let global = std::thread::scope(|s| s.spawn(current_recorder).join().ok());
            if let Some(address) = global {
                let _ = GLOBAL_RECORDER.set(address);
            }
        }
        GLOBAL
            .set(parts.telemetry.clone())
            .map_err(|_| TelemetryError::AlreadyInstalled("telemetry handle"))?;
        Ok(parts.telemetry)
    }

    /// The run's trace id, for the run summary ("find this run with operation id …").
    pub fn trace_id(&self) -> TraceId {
        self.inner.run.trace_id
    }

    /// The run's trace context.
    pub fn run_context(&self) -> RunContext {
        self.inner.run
    }

    /// The W3C `traceparent` value to send on outgoing calls.
    pub fn traceparent(&self) -> String {
        self.inner.run.traceparent()
    }

    /// The run's root span, carrying `trace_id`: instrument the whole run with it.
    pub fn run_span(&self) -> Span {
        tracing::info_span!(RUN_SPAN, trace_id = %self.inner.run.trace_id)
    }

    /// The Prometheus handle, when configured; give `move || handle.render()` to the health router.
    pub fn prometheus(&self) -> Option<PrometheusHandle> {
        self.inner.prometheus.clone()
    }

    /// An [`fabrik_core::EventSink`] counting resilience events into fabrik's metrics.
    pub fn event_sink(&self) -> MetricsEventSink {
        MetricsEventSink
    }

    fn submit(&self, kind: ItemKind, properties: &[(&str, &str)]) {
        if let Some(exporter) = &self.inner.app_insights {
            exporter.submit(Item {
                time: SystemTime::now(),
                kind,
                properties: properties
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), redact(k, v)))
                    .collect(),
            });
        }
    }

    /// A named business event (`deployment_started`, …) with string properties.
    pub fn track_event(&self, name: &str, properties: &[(&str, &str)]) {
        tracing::info!(target: "fabrik::telemetry", event = name, properties = %Props(properties), "event");
        self.submit(
            ItemKind::Event {
                name: name.to_owned(),
            },
            properties,
        );
    }

    /// A named measurement.
    pub fn track_metric(&self, name: &str, value: f64, properties: &[(&str, &str)]) {
        tracing::info!(target: "fabrik::telemetry", metric = name, value, properties = %Props(properties), "metric");
        self.submit(
            ItemKind::Metric {
                name: name.to_owned(),
                value,
            },
            properties,
        );
    }

    /// An error, with its source chain in the message.
    pub fn track_exception(
        &self,
        error: &(dyn std::error::Error + 'static),
        properties: &[(&str, &str)],
    ) {
        let message = error_chain(error);
        tracing::error!(target: "fabrik::telemetry", error = %message, properties = %Props(properties), "exception");
        let type_name = type_name_of(error);
        self.submit(ItemKind::Exception { type_name, message }, properties);
    }

    /// A call to another service.
    pub fn track_dependency(&self, dependency: Dependency, properties: &[(&str, &str)]) {
        let dependency = Dependency {
            data: strip_query(&dependency.data).to_owned(),
            ..dependency
        };
        tracing::info!(
            target: "fabrik::telemetry",
            dependency = %dependency.name,
            target_host = %dependency.target,
            duration_ms = dependency.duration.as_secs_f64() * 1000.0,
            success = dependency.success,
            result = %dependency.result_code,
            "dependency"
        );
        self.submit(ItemKind::Dependency(dependency), properties);
    }

    /// Records the whole run's duration under `outcome` (`succeeded`, `failed`, `rolled_back`).
    pub fn record_run(&self, outcome: &'static str, duration: Duration) {
        metrics::histogram!(RUN_DURATION, "outcome" => outcome).record(duration.as_secs_f64());
    }

    /// Runs `fut` in a span named after `name`, counting it and recording its duration.
    pub fn timed<F: Future>(
        &self,
        name: &'static str,
        fut: F,
    ) -> impl Future<Output = F::Output> + use<F> {
        timed(name, fut)
    }

    /// Like [`timed`](Self::timed) for a fallible future: the outcome is a label, and an error
    /// is also tracked as an exception.
    pub fn timed_result<T, E, F>(
        &self,
        name: &'static str,
        fut: F,
    ) -> impl Future<Output = Result<T, E>> + use<T, E, F>
    where
        F: Future<Output = Result<T, E>>,
        E: std::error::Error + 'static,
    {
        let this = self.clone();
        let span = tracing::info_span!("call", operation = name);
        async move {
            let start = Instant::now();
            let out = fut.await;
            record_call(
                name,
                if out.is_ok() { "ok" } else { "error" },
                start.elapsed(),
            );
            if let Err(e) = &out {
                this.track_exception(e, &[("operation", name)]);
            }
            out
        }
        .instrument(span)
    }

    /// Sends what every exporter has queued, and the metrics, waiting at most `deadline`.
    /// The report sums the queued items (Application Insights items and OTLP spans).
    pub async fn flush(&self, deadline: Duration) -> FlushReport {
        self.each(
            |q| q.flush(deadline),
            |q| q.flush(deadline),
            |m| m.flush(deadline),
        )
        .await
    }

    /// Flushes and stops the exporters, waiting at most `deadline`; call at the end of a run.
    pub async fn shutdown(&self, deadline: Duration) -> FlushReport {
        self.each(
            |q| q.shutdown(deadline),
            |q| q.shutdown(deadline),
            |m| m.shutdown(deadline),
        )
        .await
    }

    /// Runs `ai`, `otlp` and `metrics` on the configured exporters at the same time.
    async fn each<'a, A, B, C>(
        &'a self,
        ai: impl FnOnce(&'a Queue<Item>) -> A,
        otlp: impl FnOnce(&'a Queue<SpanRecord>) -> B,
        metrics: impl FnOnce(&'a MetricsExport) -> C,
    ) -> FlushReport
    where
        A: Future<Output = FlushReport>,
        B: Future<Output = FlushReport>,
        C: Future<Output = bool>,
    {
        let a = async {
            match &self.inner.app_insights {
                Some(q) => ai(q).await,
                None => FlushReport::default(),
            }
        };
        let b = async {
            match &self.inner.otlp {
                Some(q) => otlp(q).await,
                None => FlushReport::default(),
            }
        };
        let c = async {
            match &self.inner.metrics_export {
                Some(m) => metrics(m).await,
                None => false,
            }
        };
        let (a, b, timed_out) = tokio::join!(a, b, c);
        let mut report = a.merge(b);
        report.timed_out |= timed_out;
        report
    }
}

/// Runs `fut` in a span named after `name`, counting it ([`CALLS`]) and recording its
/// duration ([`CALL_DURATION`]). Needs no handle: it records through the facades.
pub fn timed<F: Future>(name: &'static str, fut: F) -> impl Future<Output = F::Output> {
    let span = tracing::info_span!("call", operation = name);
    async move {
        let start = Instant::now();
        let out = fut.await;
        record_call(name, "ok", start.elapsed());
        out
    }
    .instrument(span)
}

/// Runs `f` in a span named after `name`, counting it ([`CALLS`]) and recording its duration
/// ([`CALL_DURATION`]): [`timed`] for a plain function.
pub fn timed_fn<T>(name: &'static str, f: impl FnOnce() -> T) -> T {
    let _span = tracing::info_span!("call", operation = name).entered();
    let start = Instant::now();
    let out = f();
    record_call(name, "ok", start.elapsed());
    out
}

/// A timing wrapper with its metric handles registered once, for hot paths: each call costs
/// a span, an atomic increment and a histogram sample, with no label lookup.
#[derive(Debug, Clone)]
pub struct CallTimer {
    name: &'static str,
    ok: metrics::Counter,
    duration: metrics::Histogram,
}

impl CallTimer {
    /// Registers [`CALLS`] (`outcome="ok"`) and [`CALL_DURATION`] for `name` with the current
    /// recorder.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            ok: metrics::counter!(CALLS, "name" => name, "outcome" => "ok"),
            duration: metrics::histogram!(CALL_DURATION, "name" => name),
        }
    }

    /// Runs `f` in a `call` span, counting it and recording its duration.
    pub fn time_fn<T>(&self, f: impl FnOnce() -> T) -> T {
        let _span = tracing::info_span!("call", operation = self.name).entered();
        let start = Instant::now();
        let out = f();
        self.ok.increment(1);
        self.duration.record(start.elapsed().as_secs_f64());
        out
    }

    /// Runs `fut` in a `call` span, counting it and recording its duration.
    pub fn time<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> + use<'_, F> {
        let span = tracing::info_span!("call", operation = self.name);
        async move {
            let start = Instant::now();
            let out = fut.await;
            self.ok.increment(1);
            self.duration.record(start.elapsed().as_secs_f64());
            out
        }
        .instrument(span)
    }
}

/// The address of the global recorder our `install` set. It lives as long as the process,
/// so no other recorder can ever have this address: seeing it means the global is current.
static GLOBAL_RECORDER: OnceLock<usize> = OnceLock::new();

fn current_recorder() -> usize {
    metrics::with_recorder(|r| std::ptr::from_ref(r).cast::<()>() as usize)
}

/// A counter and a histogram by call name and outcome. (Fx: SipHash would cost more than
/// the rest of the lookup for these short keys, and they are not attacker-chosen.)
type CallHandles = FxHashMap<(&'static str, &'static str), (metrics::Counter, metrics::Histogram)>;

thread_local! {
    /// `timed`'s handles for the global recorder, by name and outcome: looking labelled
    /// metrics up costs more than the rest of the call. Only for the global recorder — a
    /// local one (tests) may be dropped and another made at the same address.
    static CALL_HANDLES: RefCell<CallHandles> = RefCell::new(CallHandles::default());
}

fn record_call(name: &'static str, outcome: &'static str, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    if GLOBAL_RECORDER.get() == Some(&current_recorder()) {
        let cached = CALL_HANDLES.with(|handles| {
            let Ok(mut handles) = handles.try_borrow_mut() else {
                return false;
            };
            let (calls, duration) = handles.entry((name, outcome)).or_insert_with(|| {
                (
                    metrics::counter!(CALLS, "name" => name, "outcome" => outcome),
                    metrics::histogram!(CALL_DURATION, "name" => name),
                )
            });
            calls.increment(1);
            duration.record(seconds);
            true
        });
        if cached {
            return;
        }
    }
    metrics::counter!(CALLS, "name" => name, "outcome" => outcome).increment(1);
    metrics::histogram!(CALL_DURATION, "name" => name).record(seconds);
}

/// Property keys whose values are never exported or logged.
const SENSITIVE: &[&str] = &[
    "secret",
    "password",
    "passwd",
    "token",
    "authorization",
    "credential",
    "connectionstring",
    "connection_string",
    "apikey",
    "api_key",
    "signature",
    "private_key",
    "privatekey",
    "sas",
];

/// Whether values under `key` must be redacted.
pub(crate) fn is_sensitive(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SENSITIVE.iter().any(|s| key.contains(s))
}

pub(crate) fn redact(key: &str, value: &str) -> String {
    if is_sensitive(key) {
        "[redacted]".to_owned()
    } else {
        value.to_owned()
    }
}

/// An error's message followed by its sources', separated by `: `.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

fn strip_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

fn type_name_of(error: &(dyn std::error::Error + 'static)) -> String {
    // Debug of an error usually starts with its type or variant name; keep just that word.
    let debug = format!("{error:?}");
    let end = debug
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(debug.len());
    if end == 0 {
        "Error".to_owned()
    } else {
        debug[..end].to_owned()
    }
}

struct Props<'a>(&'a [(&'a str, &'a str)]);

impl fmt::Display for Props<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}={}", redact(k, v))?;
        }
        Ok(())
    }
}
