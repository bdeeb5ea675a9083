//! Putting a run together: flags, the resilience pipeline, the client, the transaction.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fabrik_client::{FabricClient, StaticTokenProvider};
use fabrik_core::metric_names::RESOURCES;
use fabrik_core::{Clock, EventSink, Flag, Sleeper, TokenProvider};
use fabrik_flags::Flags;
use fabrik_resilience::{Pipeline, ResilienceConfig};
use fabrik_txn::{Transaction, TxnOptions, UndoResult};

pub use crate::auth::azure_tokens;
use crate::config::Desired;
use crate::engine::{self, Applied, EngineError};
use crate::plan::Plan;

/// How to run against Fabric.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The API root, e.g. `https://api.fabric.microsoft.com/v1`.
    pub base_url: String,
    /// Workspaces applied in parallel.
    pub concurrency: usize,
    /// Where run journals live.
    pub state_dir: PathBuf,
    /// Roll back on failure (also needs the rollback flag).
    pub rollback: bool,
    /// Deadline for one long-running operation.
    pub lro_deadline: Duration,
    /// Deadline of one call, all its attempts and waits included.
    pub call_timeout: Option<Duration>,
    /// Deadline of the whole apply; past it, work in flight stops and the run rolls back.
    pub run_timeout: Option<Duration>,
    /// Client-side pace, requests per second per host.
    pub rate_limit: Option<u32>,
    /// Told of each applied change.
    pub progress: Option<engine::Progress>,
    /// An extra CA certificate (PEM) the Fabric client trusts besides the system roots.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// What times the run deadline (tokio's timer when `None`; tests pass a manual clock).
    pub run_sleeper: Option<Arc<dyn Sleeper>>,
    /// The command the run is made by (`apply`, `publish`, `destroy`, `serve`): its journal's
    /// name, as `fabrik status` lists it.
    pub command: &'static str,
}

/// Calls on the wire at once by default (`--concurrency`; the engine keeps
/// [`engine::CHANGES_PER_CALL`] times as many changes in progress): enough that a 50 ms
/// long-running operation does not set the pace (docs/BENCHMARKS.md), few enough to stay
/// polite.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Default deadline of one long-running operation, in seconds (`--lro-timeout`).
pub const DEFAULT_LRO_TIMEOUT_SECS: u64 = 600;
/// Default deadline of one call, all its attempts and waits included, in seconds
/// (`--call-timeout`): room for the waits of the default 10 attempts (1–60 s each, growing)
/// and a hung attempt cut off at 30 s, while a call that cannot succeed still ends.
pub const DEFAULT_CALL_TIMEOUT_SECS: u64 = 300;

impl RunOptions {
    /// The options `fabrik apply` runs with when no flag changes them: the shipped defaults,
    /// against `base_url`, journaling to `state_dir`.
    pub fn defaults(base_url: impl Into<String>, state_dir: impl Into<PathBuf>) -> Self {
        Self {
            base_url: base_url.into(),
            concurrency: DEFAULT_CONCURRENCY,
            state_dir: state_dir.into(),
            rollback: true,
            lro_deadline: Duration::from_secs(DEFAULT_LRO_TIMEOUT_SECS),
            call_timeout: Some(Duration::from_secs(DEFAULT_CALL_TIMEOUT_SECS)),
            run_timeout: None,
            rate_limit: None,
            progress: None,
            extra_ca_pem: None,
            run_sleeper: None,
            command: "apply",
        }
    }
}

/// The resilience configuration from the seed's variables (`RETRY_*`, `CIRCUIT_BREAKER_*`),
/// with stages switched by the flags.
pub fn resilience_config(flags: &Flags) -> Result<ResilienceConfig, String> {
    Ok(ResilienceConfig::from_process_env()
        .map_err(|e| e.to_string())?
        .with_flags(
            flags.is_on(Flag::RetryLogic),
            flags.is_on(Flag::CircuitBreaker),
        ))
}

/// Injected time for the client and its pipeline (tests pass a manual clock).
#[derive(Debug, Clone)]
pub struct Timing {
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The sleeper.
    pub sleeper: Arc<dyn Sleeper>,
}

/// The client and the resilience pipeline it runs every call through (health reads the
/// pipeline's breakers).
#[derive(Debug, Clone)]
pub struct Stack {
    /// The Fabric client.
    pub client: FabricClient,
    /// Its pipeline.
    pub pipeline: Arc<Pipeline>,
}

/// Builds the client and its pipeline: resilience configuration, optional injected time, and
/// an optional sink that counts resilience events.
pub fn stack(
    opts: &RunOptions,
    token: Arc<dyn TokenProvider>,
    resilience: ResilienceConfig,
    timing: Option<Timing>,
    events: Option<Arc<dyn EventSink>>,
) -> Result<Stack, String> {
    let mut pipeline = Pipeline::builder(resilience);
    let mut builder = FabricClient::builder(opts.base_url.clone())
        .token_provider(token)
        .lro_deadline(opts.lro_deadline)
        .call_timeout(opts.call_timeout)
        // `--concurrency` is the calls on the wire; the engine keeps more changes in
        // progress, most of them waiting for their operations.
        .max_in_flight(opts.concurrency);
    if let Some(pem) = &opts.extra_ca_pem {
        builder = builder.extra_root_certificate_pem(pem.clone());
    }
    if let Some(t) = timing {
        pipeline = pipeline
            .clock(Arc::clone(&t.clock))
            .sleeper(Arc::clone(&t.sleeper));
        builder = builder.clock(t.clock).sleeper(t.sleeper);
    }
    if let Some(sink) = events {
        pipeline = pipeline.events(sink);
    }
    let pipeline = Arc::new(pipeline.build().map_err(|e| e.to_string())?);
    let client = builder
        .policy(Some(
            Arc::clone(&pipeline) as Arc<dyn fabrik_core::CallPolicy>
        ))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Stack { client, pipeline })
}

/// Builds the client with the given resilience configuration and, optionally, injected time.
pub fn client_with(
    opts: &RunOptions,
    token: Arc<dyn TokenProvider>,
    resilience: ResilienceConfig,
    timing: Option<Timing>,
) -> Result<FabricClient, String> {
    stack(opts, token, resilience, timing, None).map(|s| s.client)
}

/// The resilience configuration for a run: environment, flags, and the client-side pace.
pub fn run_resilience(opts: &RunOptions, flags: &Flags) -> Result<ResilienceConfig, String> {
    let mut config = resilience_config(flags)?;
    if let Some(rps) = opts.rate_limit {
        // Near-even pacing: a burst up to the quota invites 429s (the server's bucket is shared
        // with whatever else the principal does), while a burst of a few absorbs timer
        // overshoot, which would otherwise lose a slot on every wait.
        let mut limit = fabrik_resilience::RateLimitConfig::per_second(rps);
        limit.burst = (rps / 20).max(2);
        config = config.with_rate_limit(Some(limit));
    }
    Ok(config)
}

/// Builds the client with the resilience pipeline the flags and environment ask for.
pub fn client(
    opts: &RunOptions,
    flags: &Flags,
    token: Arc<dyn TokenProvider>,
) -> Result<FabricClient, String> {
    client_with(opts, token, run_resilience(opts, flags)?, None)
}

/// The identity fabrik calls Fabric as: tokens asked of the parent process over
/// `FABRIK_TOKEN_PIPE` (the Python package), a bearer token in `FABRIC_TOKEN` (e.g. from
/// `az account get-access-token --resource https://api.fabric.microsoft.com`), or an Azure
/// credential chosen by `auth` (`--auth`), `FABRIK_AUTH`, or the automatic chain (client
/// secret, workload identity, Azure Pipelines, managed identity, Azure CLI), trusting the
/// extra CA in `ca_cert` (`--ca-cert` / `FABRIK_CA_CERT`) besides the system roots.
pub fn token_provider(
    auth: Option<&str>,
    ca_cert: Option<&Path>,
) -> Result<Arc<dyn TokenProvider>, String> {
    if auth.is_none()
        && let Some(pipe) = crate::token_pipe::PipeTokenProvider::from_env()
    {
        return pipe.map(|p| Arc::new(p) as Arc<dyn TokenProvider>);
    }
    if std::env::var_os("FABRIC_TOKEN").is_some() && auth.is_none() {
        return StaticTokenProvider::from_env("FABRIC_TOKEN")
            .map(|t| Arc::new(t) as Arc<dyn TokenProvider>)
            .map_err(|e| e.to_string());
    }
    let env = fabrik_secrets::ProcessEnv;
    let method = match auth {
        Some(a) => fabrik_secrets::credential::parse_method(a).map_err(|e| e.to_string())?,
        None => None,
    };
    let mut options = fabrik_secrets::AzureOptions::from_env(&env).map_err(|e| e.to_string())?;
    if let Some(ca) = ca_cert {
        options = options.with_extra_ca_file(ca).map_err(|e| e.to_string())?;
    }
    crate::auth::azure_tokens(method, &env, &options)
        .map_err(|e| format!("{e}; or set FABRIC_TOKEN to a bearer token for the Fabric API"))
}

/// A token that is valid until `expires_at`.
pub fn static_token(token: String, expires_at: SystemTime) -> Arc<dyn TokenProvider> {
    Arc::new(StaticTokenProvider::new(token.into(), expires_at))
}

/// What an apply did.
#[derive(Debug, serde::Serialize)]
pub struct ApplyReport {
    /// The run id (journal name).
    pub run_id: Option<String>,
    /// Changes applied.
    pub applied: Vec<Applied>,
    /// Errors that stopped the run.
    pub errors: Vec<String>,
    /// What rollback undid (target descriptions).
    pub rolled_back: Vec<String>,
    /// Rollback failures.
    pub rollback_errors: Vec<String>,
    /// What was deliberately left in place (rollback disabled or `--no-rollback`).
    pub left_in_place: Vec<String>,
}

impl ApplyReport {
    /// `succeeded`; `rolled_back` when it failed and everything it changed was undone;
    /// otherwise `failed` (the `outcome` label of `fabrik_run_duration_seconds`).
    pub fn outcome(&self) -> &'static str {
        if self.errors.is_empty() {
            "succeeded"
        } else if self.rollback_errors.is_empty() && self.left_in_place.is_empty() {
            "rolled_back"
        } else {
            "failed"
        }
    }
}

/// Reads live state and plans every built-in kind, and the repositories the configuration's
/// workspaces publish. `concurrency` bounds parallel reads.
pub async fn plan(
    client: &FabricClient,
    desired: &Desired,
    concurrency: usize,
) -> Result<Plan, EngineError> {
    plan_with(client, desired, concurrency, false).await
}

/// [`plan`], and with `prune` items the configuration does not describe are planned for
/// deletion. The engine knows no kind by name: the registry is composed here, where the
/// publishing kind joins the built-in ones.
pub async fn plan_with(
    client: &FabricClient,
    desired: &Desired,
    concurrency: usize,
    prune: bool,
) -> Result<Plan, EngineError> {
    let mut registry = engine::Registry::builtin();
    if let Some(content) = crate::publish::publisher::ContentKind::for_desired(desired)? {
        registry = registry.with(content);
    }
    engine::plan_kinds(client, desired, &registry, concurrency, prune).await
}

/// Applies `plan`: journals every change, and rolls back on failure when asked to. Records
/// the run's duration and outcome, and what it changed and undid (docs/METRICS.md).
pub async fn apply(
    client: &FabricClient,
    flags: &Flags,
    desired: &Desired,
    plan: &Plan,
    opts: &RunOptions,
) -> Result<ApplyReport, String> {
    let started = std::time::Instant::now();
    let report = apply_and_report(client, flags, desired, plan, opts).await;
    let outcome = report.as_ref().map_or("failed", ApplyReport::outcome);
    fabrik_telemetry::global().record_run(outcome, started.elapsed());
    report
}

async fn apply_and_report(
    client: &FabricClient,
    flags: &Flags,
    desired: &Desired,
    plan: &Plan,
    opts: &RunOptions,
) -> Result<ApplyReport, String> {
    let mut report = ApplyReport {
        run_id: None,
        applied: vec![],
        errors: vec![],
        rolled_back: vec![],
        rollback_errors: vec![],
        left_in_place: vec![],
    };
    if plan.change_count() == 0 {
        return Ok(report);
    }
    // FABRIK_STATE_KEY encrypts the journal at rest; without it, warn once per process.
    let keys =
        crate::state_key::from_env().map_err(|e| format!("cannot start the run journal: {e}"))?;
    crate::state_key::warn_if_unencrypted(&keys);
    let mut topts = TxnOptions::new(&opts.state_dir)
        .with_flags(flags)
        .with_keys(keys);
    topts.config_hash = desired.hash.clone();
    topts.rollback_enabled &= opts.rollback;
    // A shared state backend (--state URL) journals to its container, under its lock.
    crate::state::attach(&mut topts);
    let txn = Arc::new(
        Transaction::begin(format!("{} {}", opts.command, desired.environment), topts)
            .map_err(|e| format!("cannot start the run journal: {e}"))?,
    );
    report.run_id = Some(txn.run_id().to_string());
    let halt = std::sync::atomic::AtomicBool::new(false);
    let work = engine::apply(
        client,
        &txn,
        plan,
        opts.concurrency,
        opts.progress.as_ref(),
        &halt,
    );
    let sleeper: Arc<dyn Sleeper> = opts
        .run_sleeper
        .clone()
        .unwrap_or_else(|| Arc::new(fabrik_core::time::TokioSleeper));
    let deadline = async {
        match opts.run_timeout {
            Some(limit) => sleeper.sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(work);
    // Past the deadline, or once the deployment lock is lost, no new change starts; the calls
    // in flight finish (each bounded by the call timeout), so nothing the server applied goes
    // unrecorded, and then the run rolls back.
    let stopped = tokio::select! {
        r = &mut work => Err(r),
        () = deadline => Ok(EngineError::RunDeadline(opts.run_timeout.unwrap_or_default())),
        why = crate::state::lock_lost() => Ok(EngineError::LockLost(why)),
    };
    let (applied, errors) = match stopped {
        Err(done) => done,
        Ok(cause) => {
            halt.store(true, std::sync::atomic::Ordering::SeqCst);
            let (applied, mut errors) = work.await;
            errors.retain(|e| !matches!(e, EngineError::Halted(_)));
            errors.insert(0, cause);
            (applied, errors)
        }
    };
    report.applied = applied;
    if errors.is_empty() {
        txn.commit().await.map_err(|e| format!("commit: {e}"))?;
        return Ok(report);
    }
    report.errors = errors
        .iter()
        .map(|e| crate::secrets::redact(&e.to_string()))
        .collect();
    let recovery = engine::Recovery::new(
        engine::Registry::builtin().with_kinds_of(plan),
        client.clone(),
    );
    let undoer = crate::secrets::ResolvingUndoer(recovery.clone());
    match txn
        .rollback_with(&report.errors[0], &undoer, Some(&recovery))
        .await
    {
        Ok(r) => {
            count_undone(&r);
            for e in &r.entries {
                match &e.result {
                    UndoResult::Done | UndoResult::AlreadyGone | UndoResult::AlreadyUndone => {
                        report.rolled_back.push(e.resource.to_string())
                    }
                    UndoResult::Failed { message, .. } => report
                        .rollback_errors
                        .push(format!("{}: {message}", e.resource)),
                    UndoResult::LeftInPlace => report.left_in_place.push(e.resource.to_string()),
                    _ => {}
                }
            }
        }
        Err(e) => report.rollback_errors.push(e.to_string()),
    }
    Ok(report)
}

/// Undoes run `run_id` from its journal, each record by the built-in kind that journaled it.
pub async fn rollback(
    client: &FabricClient,
    state_dir: &Path,
    run_id: &str,
) -> Result<fabrik_txn::RollbackReport, String> {
    rollback_with(&engine::Registry::builtin(), client, state_dir, run_id).await
}

/// Undoes run `run_id` from its journal, each record by the kind of `registry` that
/// journaled it (a program that adds kinds registers them here too).
pub async fn rollback_with(
    registry: &engine::Registry,
    client: &FabricClient,
    state_dir: &Path,
    run_id: &str,
) -> Result<fabrik_txn::RollbackReport, String> {
    let recovery = engine::Recovery::new(registry.clone(), client.clone());
    let undoer = crate::secrets::ResolvingUndoer(recovery.clone());
    let resolver = recovery;
    let keys = crate::state_key::from_env()?;
    let journal = crate::state::open_journal(state_dir, run_id)
        .await
        .map_err(|e| e.to_string())?
        .with_keys(&keys)
        .map_err(|e| crate::state_key::explain(&e))?;
    // Undo records keep references where secrets were (a value deployed from `${secret:A}`
    // is journaled as that reference): every one is resolved before anything is undone.
    // (A committed run is refused by the rollback itself, which says so.)
    if journal.summary().status != fabrik_txn::RunStatus::Committed {
        let pending: Vec<(String, fabrik_core::Undo)> = journal
            .pending_resources()
            .into_iter()
            .filter_map(|r| r.undo.map(|u| (r.resource.to_string(), u)))
            .collect();
        crate::secrets::resolve_for_undo(&pending).await?;
    }
    let report = journal
        .rollback("fabrik rollback", &undoer, Some(&resolver))
        .await
        .map_err(|e| e.to_string())?;
    count_undone(&report);
    Ok(report)
}

/// Counts what a rollback undid under `fabrik_resources_total{action="rolled_back"}`.
fn count_undone(report: &fabrik_txn::RollbackReport) {
    for e in report
        .entries
        .iter()
        .filter(|e| e.result == UndoResult::Done)
    {
        metrics::counter!(
            RESOURCES,
            "kind" => crate::plan::kind_label(e.resource.kind),
            "action" => "rolled_back",
        )
        .increment(1);
    }
}
