//! Which exporters to run, from configuration or the environment.

use std::fmt;
use std::time::Duration;

/// How the console shows logs and spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object a line, with the span list (and so the run's `trace_id`).
    Json,
}

/// Where Application Insights lives, parsed from a connection string.
#[derive(Clone, PartialEq, Eq)]
pub struct AppInsightsConfig {
    /// The resource's instrumentation key (sent in every envelope's `iKey`).
    pub instrumentation_key: String,
    /// The ingestion endpoint, without a trailing slash (`https://<region>.in.applicationinsights.azure.com`).
    pub ingestion_endpoint: String,
    /// Items queued at most; more are dropped and counted (default 8,192).
    pub queue_capacity: usize,
    /// Items sent per request at most (default 500).
    pub max_batch: usize,
    /// How long a partial batch waits before it is sent (default 5 s).
    pub flush_interval: Duration,
}

// The instrumentation key is not a credential, but nobody needs it in logs either.
impl fmt::Debug for AppInsightsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppInsightsConfig")
            .field("instrumentation_key", &"[redacted]")
            .field("ingestion_endpoint", &self.ingestion_endpoint)
            .field("queue_capacity", &self.queue_capacity)
            .field("max_batch", &self.max_batch)
            .field("flush_interval", &self.flush_interval)
            .finish()
    }
}

/// The endpoint Application Insights uses when a connection string names none.
pub const DEFAULT_INGESTION_ENDPOINT: &str = "https://dc.services.visualstudio.com";

/// A connection string could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "telemetry configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl AppInsightsConfig {
    /// Parses `InstrumentationKey=…;IngestionEndpoint=https://…/;…` (keys case-insensitive;
    /// without `IngestionEndpoint`, `EndpointSuffix` gives `https://dc.<suffix>`, else the
    /// global default). Errors never quote the string.
    pub fn from_connection_string(s: &str) -> Result<Self, ConfigError> {
        let (mut ikey, mut endpoint, mut suffix) = (None, None, None);
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                return Err(ConfigError(
                    "connection string has a part without '='".into(),
                ));
            };
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "instrumentationkey" => ikey = Some(v.to_owned()),
                "ingestionendpoint" => endpoint = Some(v.trim_end_matches('/').to_owned()),
                "endpointsuffix" => suffix = Some(v.trim_matches('.').to_owned()),
                _ => {}
            }
        }
        let instrumentation_key = ikey
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ConfigError("connection string has no InstrumentationKey".into()))?;
        let ingestion_endpoint = endpoint
            .or_else(|| suffix.map(|s| format!("https://dc.{s}")))
            .unwrap_or_else(|| DEFAULT_INGESTION_ENDPOINT.to_owned());
        if !(ingestion_endpoint.starts_with("https://")
            || ingestion_endpoint.starts_with("http://"))
        {
            return Err(ConfigError(
                "IngestionEndpoint is not an http(s) URL".into(),
            ));
        }
        Ok(Self::new(instrumentation_key, ingestion_endpoint))
    }

    /// An explicit key and endpoint with the default queue and batching.
    pub fn new(
        instrumentation_key: impl Into<String>,
        ingestion_endpoint: impl Into<String>,
    ) -> Self {
        Self {
            instrumentation_key: instrumentation_key.into(),
            ingestion_endpoint: ingestion_endpoint.into().trim_end_matches('/').to_owned(),
            queue_capacity: 8192,
            max_batch: 500,
            flush_interval: Duration::from_secs(5),
        }
    }
}

/// The OTLP/HTTP encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtlpProtocol {
    /// `http/protobuf` (the OTLP default).
    #[default]
    HttpProtobuf,
    /// `http/json`.
    HttpJson,
}

/// Where and how traces are exported over OTLP/HTTP.
#[derive(Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The full URL spans are POSTed to (`http://localhost:4318/v1/traces`).
    pub traces_endpoint: String,
    /// The encoding.
    pub protocol: OtlpProtocol,
    /// Extra request headers, e.g. a backend's API key (values are not shown by `Debug`).
    /// `OTEL_EXPORTER_OTLP_HEADERS` is also read by the exporter itself.
    pub headers: Vec<(String, String)>,
    /// How long one export may take, retries included (default 10 s).
    pub timeout: Duration,
    /// Spans queued at most; more are dropped and counted (default 2,048).
    pub queue_capacity: usize,
    /// Spans sent per request at most (default 512).
    pub max_batch: usize,
    /// How long a partial batch waits before it is sent (default 5 s).
    pub flush_interval: Duration,
}

impl fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("OtlpConfig")
            .field("traces_endpoint", &self.traces_endpoint)
            .field("protocol", &self.protocol)
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .field("queue_capacity", &self.queue_capacity)
            .field("max_batch", &self.max_batch)
            .field("flush_interval", &self.flush_interval)
            .finish()
    }
}

impl OtlpConfig {
    /// Exports to `traces_endpoint` (the full URL, path included) with the defaults.
    pub fn new(traces_endpoint: impl Into<String>) -> Self {
        Self {
            traces_endpoint: traces_endpoint.into(),
            protocol: OtlpProtocol::HttpProtobuf,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            queue_capacity: 2048,
            max_batch: 512,
            flush_interval: Duration::from_secs(5),
        }
    }

    /// Reads the standard variables through `get`: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used
    /// as is) or `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` appended),
    /// `OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL` (`http/protobuf` or `http/json`) and
    /// `OTEL_EXPORTER_OTLP[_TRACES]_TIMEOUT` (milliseconds). `None` without an endpoint, or
    /// when `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        Ok(Signal::from_env(&get, "TRACES", "traces")?.map(|s| {
            let mut c = Self::new(s.endpoint);
            c.protocol = s.protocol;
            c.timeout = s.timeout.unwrap_or(c.timeout);
            c
        }))
    }
}

/// Where and how metrics are exported over OTLP/HTTP. Metrics recorded through the `metrics`
/// facade are sent every `interval` and at flush and shutdown, with cumulative temporality,
/// under the same names and labels as on `GET /metrics`.
#[derive(Clone, PartialEq, Eq)]
pub struct OtlpMetricsConfig {
    /// The full URL metrics are POSTed to (`http://localhost:4318/v1/metrics`).
    pub endpoint: String,
    /// The encoding.
    pub protocol: OtlpProtocol,
    /// Extra request headers (values are not shown by `Debug`).
    pub headers: Vec<(String, String)>,
    /// How long one export may take, retries included (default 10 s).
    pub timeout: Duration,
    /// How often metrics are sent (default 60 s).
    pub interval: Duration,
}

impl fmt::Debug for OtlpMetricsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("OtlpMetricsConfig")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .field("interval", &self.interval)
            .finish()
    }
}

impl OtlpMetricsConfig {
    /// Exports to `endpoint` (the full URL, path included) with the defaults.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            protocol: OtlpProtocol::HttpProtobuf,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            interval: Duration::from_secs(60),
        }
    }

    /// Reads the standard variables through `get`: `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (used
    /// as is) or `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/metrics` appended),
    /// `OTEL_EXPORTER_OTLP[_METRICS]_PROTOCOL`, `OTEL_EXPORTER_OTLP[_METRICS]_TIMEOUT` and
    /// `OTEL_METRIC_EXPORT_INTERVAL` (milliseconds). `None` without an endpoint, or when
    /// `OTEL_SDK_DISABLED=true` or `OTEL_METRICS_EXPORTER=none`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let Some(s) = Signal::from_env(&get, "METRICS", "metrics")? else {
            return Ok(None);
        };
        let mut c = Self::new(s.endpoint);
        c.protocol = s.protocol;
        c.timeout = s.timeout.unwrap_or(c.timeout);
        if let Some(ms) = trimmed(&get, "OTEL_METRIC_EXPORT_INTERVAL") {
            c.interval = Duration::from_millis(parse_ms("OTEL_METRIC_EXPORT_INTERVAL", &ms)?);
            if c.interval.is_zero() {
                return Err(ConfigError(
                    "OTEL_METRIC_EXPORT_INTERVAL must be more than 0 milliseconds".into(),
                ));
            }
        }
        Ok(Some(c))
    }
}

/// The settings every OTLP signal reads the same way.
struct Signal {
    endpoint: String,
    protocol: OtlpProtocol,
    timeout: Option<Duration>,
}

fn trimmed(get: &impl Fn(&str) -> Option<String>, key: &str) -> Option<String> {
    get(key)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn parse_ms(key: &str, value: &str) -> Result<u64, ConfigError> {
    value
        .parse()
        .map_err(|_| ConfigError(format!("{key} must be milliseconds, not '{value}'")))
}

impl Signal {
    /// `signal` is `TRACES` or `METRICS`; `path` the last segment of its URL path.
    fn from_env(
        get: &impl Fn(&str) -> Option<String>,
        signal: &str,
        path: &str,
    ) -> Result<Option<Self>, ConfigError> {
        let get = |k: &str| trimmed(get, k);
        let specific = |name: &str| format!("OTEL_EXPORTER_OTLP_{signal}_{name}");
        let either = |name: &str| {
            let key = specific(name);
            match get(&key) {
                Some(v) => Some((key, v)),
                None => get(&format!("OTEL_EXPORTER_OTLP_{name}"))
                    .map(|v| (format!("OTEL_EXPORTER_OTLP_{name}"), v)),
            }
        };
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || get(&format!("OTEL_{signal}_EXPORTER"))
                .is_some_and(|v| v.eq_ignore_ascii_case("none"))
        {
            return Ok(None);
        }
        let endpoint = match get(&specific("ENDPOINT")) {
            Some(e) => e,
            None => match get("OTEL_EXPORTER_OTLP_ENDPOINT") {
                Some(base) => format!("{}/v1/{path}", base.trim_end_matches('/')),
                None => return Ok(None),
            },
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(ConfigError(format!(
                "the OTLP {path} endpoint is not an http(s) URL"
            )));
        }
        let protocol = match either("PROTOCOL") {
            None => OtlpProtocol::HttpProtobuf,
            Some((_, p)) if p == "http/protobuf" => OtlpProtocol::HttpProtobuf,
            Some((_, p)) if p == "http/json" => OtlpProtocol::HttpJson,
            Some((key, other)) => {
                return Err(ConfigError(format!(
                    "{key} must be http/protobuf or http/json, not '{other}'"
                )));
            }
        };
        let timeout = match either("TIMEOUT") {
            Some((key, ms)) => Some(Duration::from_millis(parse_ms(&key, &ms)?)),
            None => None,
        };
        Ok(Some(Self {
            endpoint,
            protocol,
            timeout,
        }))
    }
}

/// Everything telemetry needs to start.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// The service name (`ai.cloud.role` in Application Insights).
    pub service_name: String,
    /// The deployment environment, attached to every Application Insights item.
    pub environment: Option<String>,
    /// Console output, or none.
    pub console: Option<ConsoleFormat>,
    /// Colour the human console output when it goes to a terminal (never to a file or pipe,
    /// where escape codes are noise). Off when `NO_COLOR` is set (<https://no-color.org>).
    pub color: bool,
    /// Which logs and spans to keep, in `RUST_LOG` syntax (default `info`).
    pub filter: String,
    /// Keep metrics in a Prometheus registry (for `GET /metrics`).
    pub prometheus: bool,
    /// Export items to Application Insights.
    pub app_insights: Option<AppInsightsConfig>,
    /// Export spans over OTLP/HTTP.
    pub otlp: Option<OtlpConfig>,
    /// Export metrics over OTLP/HTTP.
    pub otlp_metrics: Option<OtlpMetricsConfig>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            service_name: "fabrik".into(),
            environment: None,
            console: Some(ConsoleFormat::Human),
            color: true,
            filter: "info".into(),
            prometheus: true,
            app_insights: None,
            otlp: None,
            otlp_metrics: None,
        }
    }
}

impl TelemetryConfig {
    /// Reads the environment through `get` (pass `|k| std::env::var(k).ok()`), so tests and the
    /// CLI's own config layering can supply it:
    /// `APPLICATIONINSIGHTS_CONNECTION_STRING` (or the seed's `APPINSIGHTS_INSTRUMENTATION_KEY`),
    /// the OTLP variables of [`OtlpConfig::from_env`] and [`OtlpMetricsConfig::from_env`],
    /// `OTEL_SERVICE_NAME`, `ENVIRONMENT`,
    /// `RUST_LOG`, `FABRIK_LOG_FORMAT` (`human`, `json` or `off`) and `NO_COLOR` (any
    /// non-empty value turns colour off).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let mut c = Self::default();
        if let Some(s) = get("APPLICATIONINSIGHTS_CONNECTION_STRING") {
            c.app_insights = Some(AppInsightsConfig::from_connection_string(&s)?);
        } else if let Some(k) = get("APPINSIGHTS_INSTRUMENTATION_KEY") {
            c.app_insights = Some(AppInsightsConfig::new(k.trim(), DEFAULT_INGESTION_ENDPOINT));
        }
        c.otlp = OtlpConfig::from_env(get)?;
        c.otlp_metrics = OtlpMetricsConfig::from_env(get)?;
        if let Some(n) = get("OTEL_SERVICE_NAME") {
            c.service_name = n;
        }
        c.environment = get("ENVIRONMENT");
        if let Some(f) = get("RUST_LOG") {
            c.filter = f;
        }
        // `get` already treats an empty value as unset, as no-color.org asks.
        c.color = get("NO_COLOR").is_none();
        c.console = match get("FABRIK_LOG_FORMAT")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("human") => Some(ConsoleFormat::Human),
            Some("json") => Some(ConsoleFormat::Json),
            Some("off") => None,
            Some(other) => {
                return Err(ConfigError(format!(
                    "FABRIK_LOG_FORMAT must be human, json or off, not '{other}'"
                )));
            }
        };
        Ok(c)
    }
}
