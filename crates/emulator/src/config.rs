//! Configuration: the [`EmulatorConfig`] the library takes, and the command line / config
//! file that produce it ([`EmulatorArgs`], shared with `fabrik emulator`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fabrik_core::{Clock, Sleeper, SystemClock};
use serde::Deserialize;

use crate::EmulatorError;
use crate::faults::FaultConfig;
use crate::identity::{Application, DEFAULT_INSTRUMENTATION_KEY, IdentityConfig, ManagedIdentity};
use crate::profile::ProfileName;

/// HTTPS next to the plain HTTP port: a CA and a leaf certificate for 127.0.0.1 / localhost
/// are generated at start (a separate leaf, because webpki refuses a CA certificate as a
/// server certificate). The Azure SDK only talks to Entra ID and Key Vault over HTTPS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// Port to bind for HTTPS; 0 picks a free one.
    pub port: u16,
    /// Where to write the CA certificate (PEM) clients should trust.
    pub ca_out: Option<PathBuf>,
}

/// Whether item creates finish at once or run as long-running operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
pub enum CreateMode {
    /// `201 Created` with the item in the body.
    #[default]
    #[value(name = "201")]
    #[serde(rename = "201", alias = "Immediate201")]
    Immediate201,
    /// `202 Accepted` with `Location`, `x-ms-operation-id` and `Retry-After`; the item is the
    /// operation's result.
    #[value(name = "202")]
    #[serde(rename = "202", alias = "Lro202")]
    Lro202,
}

/// A token bucket per principal: `rate_per_sec` tokens refill each second, up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleConfig {
    /// Sustained requests per second per principal.
    pub rate_per_sec: f64,
    /// Requests a principal may send at once after being idle.
    pub burst: u32,
}

impl std::str::FromStr for ThrottleConfig {
    type Err = String;
    /// `RATE` or `RATE/BURST` (burst defaults to the rate, at least 1).
    fn from_str(s: &str) -> Result<Self, String> {
        let (rate, burst) = match s.split_once('/') {
            Some((r, b)) => (r, Some(b)),
            None => (s, None),
        };
        let rate: f64 = rate
            .trim()
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && *r > 0.0)
            .ok_or_else(|| {
                format!("invalid throttle rate '{rate}' in '{s}': expected a positive number")
            })?;
        let burst = match burst {
            Some(b) => b
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|b| *b > 0)
                .ok_or_else(|| {
                    format!("invalid throttle burst '{b}' in '{s}': expected a positive integer")
                })?,
            None => (rate.ceil() as u32).max(1),
        };
        Ok(Self {
            rate_per_sec: rate,
            burst,
        })
    }
}

/// A workspace Spark pool the emulator gives a workspace when it is created:
/// `WORKSPACE:POOL` (`--spark-pool`), `*` for every workspace. Creating the pool this way
/// needs no `POST /spark/pools` call, which a fixture that only publishes cannot make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspacePool {
    /// The workspace's display name (compared without case), or `*` for every workspace.
    pub workspace: String,
    /// The pool's name.
    pub pool: String,
}

impl WorkspacePool {
    /// Whether a workspace named `display_name` gets this pool.
    pub fn applies_to(&self, display_name: &str) -> bool {
        self.workspace == "*" || self.workspace.eq_ignore_ascii_case(display_name)
    }
}

impl std::str::FromStr for WorkspacePool {
    type Err = String;
    /// `WORKSPACE:POOL`, split at the last `:` (pool names have none).
    fn from_str(s: &str) -> Result<Self, String> {
        let Some((workspace, pool)) = s.rsplit_once(':') else {
            return Err(format!(
                "invalid Spark pool '{s}': expected WORKSPACE:POOL (WORKSPACE `*` for every workspace)"
            ));
        };
        let (workspace, pool) = (workspace.trim(), pool.trim());
        if workspace.is_empty() {
            return Err(format!(
                "invalid Spark pool '{s}': the workspace name is empty"
            ));
        }
        if !crate::api::spark::valid_pool_name(pool) {
            return Err(format!(
                "invalid Spark pool '{s}': pool name '{pool}' must be 1-64 letters, digits, '-', '_' or spaces, starting with a letter or digit, and not 'Starter Pool'"
            ));
        }
        Ok(Self {
            workspace: workspace.to_string(),
            pool: pool.to_string(),
        })
    }
}

/// Everything the emulator can be told at start.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Address to bind (default `127.0.0.1`).
    pub host: String,
    /// Port to bind; 0 picks a free one (default).
    pub port: u16,
    /// Seed of every random choice: ids, faults, commit hashes.
    pub seed: u64,
    /// How long a long-running operation takes on the emulator's clock (default 0).
    pub lro_delay: Duration,
    /// Entries per page of every list (default 100).
    pub page_size: usize,
    /// Per-principal rate limit; `None` never throttles.
    pub throttle: Option<ThrottleConfig>,
    /// Injected faults (see the crate docs for the SPEC string).
    pub faults: FaultConfig,
    /// Accept any bearer token (the principal is read from a JWT's `oid`/`sub` when present).
    pub accept_any_token: bool,
    /// Load state from here at start and save it on shutdown.
    pub state_file: Option<PathBuf>,
    /// Whether item creates answer 201 at once or 202 with an operation.
    pub create_mode: CreateMode,
    /// Number of capacities that exist from the start (default 1).
    pub capacities: usize,
    /// Spark pools every seeded capacity has (names; listed with `type: Capacity` by
    /// `GET /v1/workspaces/{id}/spark/pools` of the workspaces on it). Default none.
    pub capacity_pools: Vec<String>,
    /// Workspace Spark pools given to workspaces as they are created (listed with
    /// `type: Workspace`, deletable like any). Default none.
    pub workspace_pools: Vec<WorkspacePool>,
    /// Most entries kept in the request log; older ones are dropped (default 10,000).
    pub request_log_limit: usize,
    /// Largest request body accepted (default 32 MiB).
    pub max_body_bytes: usize,
    /// The clock of LRO progress, token expiry, throttling and timestamps.
    pub clock: Arc<dyn Clock>,
    /// Waits for injected latency (tests pass a `ManualClock`).
    pub sleeper: Arc<dyn Sleeper>,
    /// Serve HTTPS too (`None`: plain HTTP only).
    pub tls: Option<TlsConfig>,
    /// Applications, managed identity and token lifetime of the Entra ID stand-in.
    pub identity: IdentityConfig,
    /// Instrumentation keys Application Insights ingestion accepts (compared without case).
    pub instrumentation_keys: Vec<String>,
    /// Timings to imitate: per-endpoint latency and operation durations (`None`: answer at
    /// once, operations take `lro_delay`).
    pub profile: Option<ProfileName>,
    /// Divides every duration of the profile and multiplies the quota (default 1).
    pub time_scale: f64,
    /// Calls per minute each caller identity may make before it is answered 429.
    pub quota: Option<u32>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 0,
            seed: 0,
            lro_delay: Duration::ZERO,
            page_size: 100,
            throttle: None,
            faults: FaultConfig::default(),
            accept_any_token: false,
            state_file: None,
            create_mode: CreateMode::default(),
            capacities: 1,
            capacity_pools: Vec::new(),
            workspace_pools: Vec::new(),
            request_log_limit: 10_000,
            max_body_bytes: 32 << 20,
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(fabrik_core::time::TokioSleeper),
            tls: None,
            identity: IdentityConfig::default(),
            instrumentation_keys: vec![DEFAULT_INSTRUMENTATION_KEY.into()],
            profile: None,
            time_scale: 1.0,
            quota: None,
        }
    }
}

impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("seed", &self.seed)
            .field("lro_delay", &self.lro_delay)
            .field("page_size", &self.page_size)
            .field("throttle", &self.throttle)
            .field("faults", &self.faults)
            .field("accept_any_token", &self.accept_any_token)
            .field("state_file", &self.state_file)
            .field("create_mode", &self.create_mode)
            .field("capacities", &self.capacities)
            .field("capacity_pools", &self.capacity_pools)
            .field("workspace_pools", &self.workspace_pools)
            .field("request_log_limit", &self.request_log_limit)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("clock", &self.clock)
            .field("sleeper", &self.sleeper)
            .field("tls", &self.tls)
            .field("identity", &self.identity)
            .field("instrumentation_keys", &self.instrumentation_keys)
            .field("profile", &self.profile)
            .field("time_scale", &self.time_scale)
            .field("quota", &self.quota)
            .finish()
    }
}

/// The emulator's command-line options, for the `fabrik-emulator` binary and `fabrik emulator`.
/// Every option can also come from a TOML or YAML file given with `--config` (same names, in
/// snake_case or kebab-case); a flag on the command line wins over the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EmulatorArgs {
    /// Config file (TOML, or YAML when it ends in .yaml/.yml) with any of these options.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to bind [default: 127.0.0.1].
    #[arg(long)]
    pub host: Option<String>,
    /// Port to bind; 0 picks a free port [default: 0].
    #[arg(long)]
    pub port: Option<u16>,
    /// Seed for all randomness (ids, faults), so runs are reproducible [default: 0].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Duration of long-running operations in milliseconds [default: 0].
    #[arg(long, value_name = "MS")]
    pub lro_delay: Option<u64>,
    /// Entries per page of every list [default: 100].
    #[arg(long, value_name = "N")]
    pub page_size: Option<usize>,
    /// Rate limit per principal: RATE per second, optionally /BURST (e.g. 10/20).
    #[arg(long, value_name = "RATE[/BURST]")]
    pub throttle: Option<String>,
    /// Faults to inject (see the crate docs), e.g. "items:503=0.1,POST /v1/workspaces/*/items#3=503".
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<String>,
    /// Accept any bearer token.
    #[arg(long)]
    pub accept_any_token: bool,
    /// State file: loaded at start, saved on shutdown.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Number of capacities that exist from the start [default: 1].
    #[arg(long, value_name = "N")]
    pub capacities: Option<usize>,
    /// A Spark pool every seeded capacity has (repeatable), e.g. `--capacity-pool Large`.
    #[arg(long = "capacity-pool", value_name = "NAME")]
    pub capacity_pools: Vec<String>,
    /// A workspace Spark pool every workspace named WORKSPACE gets when it is created
    /// (repeatable; WORKSPACE `*` is every workspace), e.g. `--spark-pool Dev:SmallPool`.
    #[arg(long = "spark-pool", value_name = "WORKSPACE:POOL")]
    pub spark_pools: Vec<String>,
    /// Whether item creates answer 201 at once or 202 with a long-running operation [default: 201].
    #[arg(long, value_enum, value_name = "201|202")]
    pub create_mode: Option<CreateMode>,
    /// Also serve HTTPS on this port (0 picks a free one), with a generated CA.
    #[arg(long, value_name = "PORT")]
    pub tls_port: Option<u16>,
    /// Write the generated CA certificate (PEM) here; implies HTTPS (on a free port unless
    /// --tls-port is given).
    #[arg(long, value_name = "FILE")]
    pub ca_out: Option<PathBuf>,
    /// Tenant of the applications given with --app [default: the built-in tenant].
    #[arg(long, value_name = "TENANT_ID")]
    pub tenant: Option<String>,
    /// An application that may sign in: `CLIENT_ID:SECRET[:OBJECT_ID]` (repeatable). Replaces
    /// the built-in application.
    #[arg(long = "app", value_name = "CLIENT_ID:SECRET[:OBJECT_ID]")]
    pub apps: Vec<String>,
    /// Lifetime of issued Entra ID tokens in seconds [default: 3599].
    #[arg(long, value_name = "SECS")]
    pub token_lifetime: Option<u64>,
    /// An instrumentation key Application Insights ingestion accepts (repeatable). Replaces
    /// the built-in key.
    #[arg(long = "instrumentation-key", value_name = "KEY")]
    pub instrumentation_keys: Vec<String>,
    /// Imitate the real service's timings: per-endpoint latency, operation durations and
    /// `Retry-After` from the recorded trace (see docs/EMULATOR.md). Makes item creates
    /// long-running unless --create-mode says otherwise.
    #[arg(long, value_enum, value_name = "NAME")]
    pub profile: Option<ProfileName>,
    /// Run K times faster: divides the profile's durations and multiplies the quota [default: 1].
    #[arg(long, value_name = "K")]
    pub time_scale: Option<f64>,
    /// Calls per minute per caller identity before 429 (multiplied by --time-scale).
    #[arg(long, value_name = "CALLS_PER_MINUTE")]
    pub quota: Option<u32>,
}

/// The same options as they appear in a config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    host: Option<String>,
    port: Option<u16>,
    seed: Option<u64>,
    #[serde(alias = "lro-delay")]
    lro_delay: Option<u64>,
    #[serde(alias = "page-size")]
    page_size: Option<usize>,
    throttle: Option<String>,
    faults: Option<String>,
    #[serde(alias = "accept-any-token")]
    accept_any_token: Option<bool>,
    state: Option<PathBuf>,
    capacities: Option<usize>,
    #[serde(alias = "capacity-pools")]
    capacity_pools: Option<Vec<String>>,
    #[serde(alias = "spark-pools")]
    spark_pools: Option<Vec<String>>,
    #[serde(alias = "create-mode")]
    create_mode: Option<CreateMode>,
    #[serde(alias = "tls-port")]
    tls_port: Option<u16>,
    #[serde(alias = "ca-out")]
    ca_out: Option<PathBuf>,
    tenant: Option<String>,
    applications: Option<Vec<Application>>,
    #[serde(alias = "managed-identity")]
    managed_identity: Option<ManagedIdentity>,
    #[serde(alias = "token-lifetime")]
    token_lifetime: Option<u64>,
    #[serde(alias = "instrumentation-keys")]
    instrumentation_keys: Option<Vec<String>>,
    profile: Option<ProfileName>,
    #[serde(alias = "time-scale")]
    time_scale: Option<f64>,
    quota: Option<u32>,
}

fn read_file(path: &std::path::Path) -> Result<FileConfig, EmulatorError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        EmulatorError::Config(format!("cannot read config file {}: {e}", path.display()))
    })?;
    let yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    if yaml {
        serde_norway::from_str(&text)
            .map_err(|e| EmulatorError::Config(format!("{}: {e}", path.display())))
    } else {
        toml::from_str(&text).map_err(|e| EmulatorError::Config(format!("{}: {e}", path.display())))
    }
}

/// A time scale must be a positive, finite factor.
pub(crate) fn check_time_scale(k: f64) -> Result<f64, EmulatorError> {
    if k.is_finite() && k > 0.0 {
        Ok(k)
    } else {
        Err(EmulatorError::Config(format!(
            "time scale must be a positive number, got {k}"
        )))
    }
}

/// The quota as a token bucket: `calls` per minute, times the time scale, up to `calls` at
/// once (a minute's allowance).
pub(crate) fn quota_bucket(calls: u32, time_scale: f64) -> ThrottleConfig {
    ThrottleConfig {
        rate_per_sec: f64::from(calls) * time_scale / 60.0,
        burst: calls,
    }
}

/// `--spark-pool` values, else the file's `spark_pools`; flags replace the file's list.
fn workspace_pools(
    flags: &[String],
    file: Option<Vec<String>>,
) -> Result<Vec<WorkspacePool>, EmulatorError> {
    let specs = if flags.is_empty() {
        file.unwrap_or_default()
    } else {
        flags.to_vec()
    };
    specs
        .iter()
        .map(|s| s.parse().map_err(EmulatorError::Config))
        .collect()
}

/// Builds the configuration from parsed arguments (and the `--config` file they name).
pub fn config_from_args(args: &EmulatorArgs) -> Result<EmulatorConfig, EmulatorError> {
    let file = match &args.config {
        Some(p) => read_file(p)?,
        None => FileConfig::default(),
    };
    let mut c = EmulatorConfig::default();
    if let Some(h) = args.host.clone().or(file.host) {
        c.host = h;
    }
    if let Some(p) = args.port.or(file.port) {
        c.port = p;
    }
    if let Some(s) = args.seed.or(file.seed) {
        c.seed = s;
    }
    if let Some(ms) = args.lro_delay.or(file.lro_delay) {
        c.lro_delay = Duration::from_millis(ms);
    }
    if let Some(n) = args.page_size.or(file.page_size) {
        if n == 0 {
            return Err(EmulatorError::Config(
                "page size must be at least 1, got 0".into(),
            ));
        }
        c.page_size = n;
    }
    if let Some(t) = args.throttle.clone().or(file.throttle) {
        c.throttle = Some(t.parse().map_err(EmulatorError::Config)?);
    }
    if let Some(f) = args.faults.clone().or(file.faults) {
        c.faults = f.parse().map_err(EmulatorError::Config)?;
    }
    c.accept_any_token = args.accept_any_token || file.accept_any_token.unwrap_or(false);
    c.state_file = args.state.clone().or(file.state);
    if let Some(n) = args.capacities.or(file.capacities) {
        c.capacities = n;
    }
    c.capacity_pools = if args.capacity_pools.is_empty() {
        file.capacity_pools.unwrap_or_default()
    } else {
        args.capacity_pools.clone()
    };
    c.workspace_pools = workspace_pools(&args.spark_pools, file.spark_pools)?;
    c.profile = args.profile.or(file.profile);
    if let Some(m) = args.create_mode.or(file.create_mode) {
        c.create_mode = m;
    } else if c.profile.is_some() {
        // Most creates in the trace are long-running (15 of 25); see docs/EMULATOR.md.
        c.create_mode = CreateMode::Lro202;
    }
    if let Some(k) = args.time_scale.or(file.time_scale) {
        c.time_scale = check_time_scale(k)?;
    }
    if let Some(q) = args.quota.or(file.quota) {
        if q == 0 {
            return Err(EmulatorError::Config(
                "quota must be at least 1 call per minute, got 0".into(),
            ));
        }
        c.quota = Some(q);
    }
    let ca_out = args.ca_out.clone().or(file.ca_out);
    if let Some(port) = args.tls_port.or(file.tls_port) {
        c.tls = Some(TlsConfig { port, ca_out });
    } else if ca_out.is_some() {
        c.tls = Some(TlsConfig { port: 0, ca_out });
    }
    let tenant = args
        .tenant
        .clone()
        .or(file.tenant)
        .unwrap_or_else(|| crate::identity::DEFAULT_TENANT_ID.to_string());
    if !args.apps.is_empty() {
        c.identity.applications = args
            .apps
            .iter()
            .map(|a| crate::identity::parse_app(a, &tenant))
            .collect::<Result<_, _>>()
            .map_err(EmulatorError::Config)?;
    } else if let Some(apps) = file.applications {
        c.identity.applications = apps;
    } else {
        for app in &mut c.identity.applications {
            app.tenant_id.clone_from(&tenant);
        }
    }
    if let Some(mi) = file.managed_identity {
        c.identity.managed_identity = Some(mi);
    }
    if let Some(secs) = args.token_lifetime.or(file.token_lifetime) {
        if secs == 0 {
            return Err(EmulatorError::Config(
                "token lifetime must be at least 1 second, got 0".into(),
            ));
        }
        c.identity.token_lifetime = Duration::from_secs(secs);
    }
    if !args.instrumentation_keys.is_empty() {
        c.instrumentation_keys = args.instrumentation_keys.clone();
    } else if let Some(keys) = file.instrumentation_keys {
        c.instrumentation_keys = keys;
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: EmulatorArgs,
    }

    #[test]
    fn throttle_parses_rate_and_burst_and_names_bad_values() {
        let t: ThrottleConfig = "10/20".parse().unwrap();
        assert_eq!((t.rate_per_sec, t.burst), (10.0, 20));
        let t: ThrottleConfig = "0.5".parse().unwrap();
        assert_eq!(t.burst, 1);
        assert!("x/2".parse::<ThrottleConfig>().unwrap_err().contains("'x'"));
        assert!("3/0".parse::<ThrottleConfig>().unwrap_err().contains("'0'"));
    }

    #[test]
    fn spark_pools_come_from_flags_or_the_file_and_bad_ones_are_named() {
        let cli = Cli::parse_from([
            "x",
            "--spark-pool",
            "Dev: Team:SmallPool",
            "--spark-pool",
            "*:Shared",
        ]);
        let c = config_from_args(&cli.args).unwrap();
        let pool = |w: &str, p: &str| WorkspacePool {
            workspace: w.into(),
            pool: p.into(),
        };
        assert_eq!(
            c.workspace_pools,
            [pool("Dev: Team", "SmallPool"), pool("*", "Shared")]
        );
        assert!(c.workspace_pools[0].applies_to("dev: team"));
        assert!(!c.workspace_pools[0].applies_to("Prod"));
        assert!(c.workspace_pools[1].applies_to("Prod"));

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("emu.yaml");
        std::fs::write(&f, "spark-pools: [\"test:SmallPool\"]\n").unwrap();
        let from_file = Cli::parse_from(["x", "--config", f.to_str().unwrap()]);
        assert_eq!(
            config_from_args(&from_file.args).unwrap().workspace_pools,
            [pool("test", "SmallPool")]
        );
        // Flags replace the file's pools.
        let both = Cli::parse_from(["x", "--config", f.to_str().unwrap(), "--spark-pool", "a:B"]);
        assert_eq!(
            config_from_args(&both.args).unwrap().workspace_pools,
            [pool("a", "B")]
        );
        for (bad, says) in [
            ("SmallPool", "expected WORKSPACE:POOL"),
            (":SmallPool", "workspace name is empty"),
            ("Dev:Starter Pool", "pool name 'Starter Pool'"),
            ("Dev:no/slash", "pool name 'no/slash'"),
        ] {
            let cli = Cli::parse_from(["x", "--spark-pool", bad]);
            let e = config_from_args(&cli.args).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn flags_override_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("emu.yaml");
        std::fs::write(
            &f,
            "port: 7000\nseed: 9\nlro-delay: 250\ncreate_mode: \"202\"\nthrottle: 5/10\n",
        )
        .unwrap();
        let cli = Cli::parse_from([
            "x",
            "--config",
            f.to_str().unwrap(),
            "--port",
            "7001",
            "--accept-any-token",
        ]);
        let c = config_from_args(&cli.args).unwrap();
        assert_eq!(c.port, 7001);
        assert_eq!(c.seed, 9);
        assert_eq!(c.lro_delay, Duration::from_millis(250));
        assert_eq!(c.create_mode, CreateMode::Lro202);
        assert_eq!(c.throttle.unwrap().burst, 10);
        assert!(c.accept_any_token);

        let t = dir.path().join("emu.toml");
        std::fs::write(
            &t,
            "page_size = 7\nfaults = \"503=0.5\"\ncapacity_pools = [\"A\", \"B\"]\n",
        )
        .unwrap();
        let cli = Cli::parse_from(["x", "--config", t.to_str().unwrap()]);
        let c = config_from_args(&cli.args).unwrap();
        assert_eq!(c.page_size, 7);
        assert_eq!(c.faults.rules.len(), 1);
        assert_eq!(c.capacity_pools, ["A", "B"]);
        // Flags replace the file's pools.
        let cli = Cli::parse_from(["x", "--config", t.to_str().unwrap(), "--capacity-pool", "C"]);
        assert_eq!(config_from_args(&cli.args).unwrap().capacity_pools, ["C"]);
    }

    #[test]
    fn tls_and_identity_come_from_flags_or_the_file_and_secrets_stay_out_of_debug() {
        let cli = Cli::parse_from([
            "x",
            "--ca-out",
            "/tmp/ca.pem",
            "--tenant",
            "t-1",
            "--app",
            "app-1:s3cret",
            "--app",
            "app-2:other:obj-2",
            "--token-lifetime",
            "90",
            "--instrumentation-key",
            "k-1",
        ]);
        let c = config_from_args(&cli.args).unwrap();
        let tls = c.tls.clone().unwrap();
        assert_eq!(
            (tls.port, tls.ca_out),
            (0, Some(PathBuf::from("/tmp/ca.pem")))
        );
        let apps = &c.identity.applications;
        assert_eq!(apps.len(), 2);
        assert_eq!(
            (apps[0].tenant_id.as_str(), apps[0].client_secret.as_deref()),
            ("t-1", Some("s3cret"))
        );
        assert_eq!(apps[1].object_id, "obj-2");
        assert_eq!(c.identity.token_lifetime, Duration::from_secs(90));
        assert_eq!(c.instrumentation_keys, ["k-1"]);
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "secrets stay out of Debug"
        );
        let bad = Cli::parse_from(["x", "--app", "only-an-id"]);
        assert!(
            config_from_args(&bad.args)
                .unwrap_err()
                .to_string()
                .contains("CLIENT_ID:SECRET")
        );

        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("emu.toml");
        std::fs::write(
            &t,
            "tls_port = 0\ntoken-lifetime = 120\n[[applications]]\ntenant_id = \"t\"\nclient_id = \"c\"\nobject_id = \"o\"\nfederated_credentials = [{ issuer = \"i\", subject = \"s\" }]\n",
        )
        .unwrap();
        let cli = Cli::parse_from(["x", "--config", t.to_str().unwrap()]);
        let c = config_from_args(&cli.args).unwrap();
        assert_eq!(c.tls.unwrap().port, 0);
        let fed = &c.identity.applications[0].federated_credentials[0];
        assert_eq!(fed.audience, crate::identity::FEDERATED_AUDIENCE);
    }

    #[test]
    fn the_profile_makes_creates_long_running_and_scale_and_quota_must_be_positive() {
        let cli = Cli::parse_from([
            "x",
            "--profile",
            "fabric",
            "--time-scale",
            "4",
            "--quota",
            "600",
        ]);
        let c = config_from_args(&cli.args).unwrap();
        assert_eq!(c.profile, Some(ProfileName::Fabric));
        assert_eq!((c.time_scale, c.quota), (4.0, Some(600)));
        assert_eq!(
            c.create_mode,
            CreateMode::Lro202,
            "the profile's creates are LROs"
        );
        let cli = Cli::parse_from(["x", "--profile", "fabric", "--create-mode", "201"]);
        let c = config_from_args(&cli.args).unwrap();
        assert_eq!(
            c.create_mode,
            CreateMode::Immediate201,
            "unless asked otherwise"
        );
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("emu.toml");
        std::fs::write(&t, "profile = \"fabric\"\ntime-scale = 2.5\nquota = 30\n").unwrap();
        let cli = Cli::parse_from(["x", "--config", t.to_str().unwrap()]);
        let c = config_from_args(&cli.args).unwrap();
        assert_eq!(
            (c.profile, c.time_scale, c.quota),
            (Some(ProfileName::Fabric), 2.5, Some(30))
        );
        for bad in [
            "--time-scale=0",
            "--time-scale=-1",
            "--time-scale=NaN",
            "--quota=0",
        ] {
            let cli = Cli::parse_from(["x", bad]);
            assert!(config_from_args(&cli.args).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_unknown_key_in_the_config_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("emu.toml");
        std::fs::write(&t, "bogus = 1\n").unwrap();
        let cli = Cli::parse_from(["x", "--config", t.to_str().unwrap()]);
        let err = config_from_args(&cli.args).unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
    }
}
