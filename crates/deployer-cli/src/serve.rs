//! `fabrik serve`: a long-running reconciler. It applies the configuration on an interval and
//! whenever the file changes, serves liveness, readiness and Prometheus metrics, and on SIGTERM
//! finishes (or rolls back) the run in flight before it exits.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fabrik_core::{BreakerStateSource, Flag};
use fabrik_health::{BreakerCheck, HealthRegistry, TokenCheck};
use tracing::Instrument as _;

use crate::config::{self, LoadOptions};
use crate::run::{self, RunOptions};

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The configuration file.
    pub config: PathBuf,
    /// The environment.
    pub environment: String,
    /// Principals-file leniency.
    pub lenient: bool,
    /// Flag overrides from the command line.
    pub features: Vec<String>,
    /// How to run against Fabric.
    pub run: RunOptions,
    /// Time between reconciliations.
    pub interval: Duration,
    /// Address for /health/* and /metrics.
    pub listen: String,
    /// Authentication method (`--auth`).
    pub auth: Option<String>,
    /// Extra CA certificate.
    pub ca_cert: Option<PathBuf>,
    /// Where journals and the deployment lock live, as for `apply`.
    pub state: crate::state::StateArgs,
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Runs until SIGTERM or Ctrl-C. Exit 0 on a clean stop.
pub async fn serve(opts: &ServeOptions) -> ExitCode {
    // From here on a SIGTERM waits for the cycle in flight.
    let stop = shutdown_signal();
    let env: Vec<(String, String)> = std::env::vars().collect();
    let flags = match crate::flags::resolve(&opts.config, &env, &opts.features) {
        Ok(f) => f,
        Err(errors) => {
            for e in errors {
                tracing::error!("{e}");
            }
            return ExitCode::from(4);
        }
    };
    let token = match run::token_provider(opts.auth.as_deref(), opts.ca_cert.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let resilience = match run::run_resilience(&opts.run, &flags) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let backend = match state(opts, &flags).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let sink = Arc::new(fabrik_telemetry::MetricsEventSink) as Arc<dyn fabrik_core::EventSink>;
    let stack = match run::stack(&opts.run, Arc::clone(&token), resilience, None, Some(sink)) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };

    let health = match health_checks(&flags, &token, &stack) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let metrics = fabrik_telemetry::global()
        .prometheus()
        .map(|h| Arc::new(move || h.render()) as fabrik_health::MetricsRender);
    let listener = match tokio::net::TcpListener::bind(&opts.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen on {}: {e}", opts.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    // stdout, so scripts and tests can find the port when --listen asks for port 0.
    #[allow(clippy::print_stdout, reason = "the address is the command's output")]
    {
        println!("serving health and metrics on http://{addr}");
    }
    let server = tokio::spawn(async move {
        // The endpoints failing must not go unnoticed: probes would then time out for no
        // stated reason.
        if let Err(e) = axum::serve(listener, fabrik_health::router(health, metrics)).await {
            tracing::error!("the health and metrics endpoints stopped: {e}");
        }
    });

    tokio::pin!(stop);
    let mut last_seen = None;
    let mut next = tokio::time::Instant::now();
    loop {
        // A SIGTERM that came while no cycle ran (at start-up) stops before the next one.
        if futures::FutureExt::now_or_never(&mut stop).is_some() {
            break;
        }
        let changed = modified(&opts.config);
        if tokio::time::Instant::now() >= next || changed != last_seen {
            last_seen = changed;
            next = tokio::time::Instant::now() + opts.interval;
            // The run is not raced against the stop signal: a run in flight finishes, or
            // rolls back, before the process stops.
            // Each cycle is a root span of its own, exported when it ends: a span for the
            // whole process would reach the backend only when the process stops.
            reconcile(opts, &flags, &stack.client, &backend)
                .instrument(tracing::info_span!("fabrik.reconcile"))
                .await;
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    server.abort();
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// The state backend, resolved once: every cycle journals where `apply` does and holds the
/// locks of the configuration's workspaces while it plans and applies. The state key's
/// references are read once too: rotating the key means restarting serve.
async fn state(
    opts: &ServeOptions,
    flags: &fabrik_flags::Flags,
) -> Result<crate::state::Backend, String> {
    let (auth, ca) = (opts.auth.as_deref(), opts.ca_cert.as_deref());
    let backend =
        crate::state::Backend::resolve(&opts.state, || crate::state::entra_tokens(auth, ca))
            .await?;
    crate::state_key::resolve(&opts.config, flags, auth, ca).await?;
    Ok(backend)
}

/// `/health/ready`'s checks: the token, and the circuit breakers when the pipeline has them.
fn health_checks(
    flags: &fabrik_flags::Flags,
    token: &Arc<dyn fabrik_core::TokenProvider>,
    stack: &run::Stack,
) -> Result<HealthRegistry, String> {
    let mut health = HealthRegistry::builder()
        .enabled(flags.is_on(Flag::HealthChecks))
        .check(Arc::new(TokenCheck::new(
            Arc::clone(token),
            vec![fabrik_client::FABRIC_SCOPE.to_string()],
        )));
    if let Some(breakers) = stack.pipeline.breakers() {
        health = health.check(Arc::new(BreakerCheck::new(
            Arc::clone(breakers) as Arc<dyn BreakerStateSource>
        )));
    }
    health.build().map_err(|e| e.to_string())
}

async fn reconcile(
    opts: &ServeOptions,
    flags: &fabrik_flags::Flags,
    client: &fabrik_client::FabricClient,
    backend: &crate::state::Backend,
) {
    use crate::state::{Session, SessionError};
    // The configuration is read first: it says which workspaces' locks to take.
    let Some(desired) = load(opts, flags).await else {
        return;
    };
    let keys = match crate::state::lock_keys(
        &opts.state,
        desired.workspaces.iter().map(|w| w.name.as_str()),
    ) {
        Ok(k) => k,
        Err(e) => {
            tracing::error!("skipping this reconciliation: {e}");
            return;
        }
    };
    // The locks are taken before the plan, as `apply` takes them; a cycle that cannot have
    // them is skipped (the next one tries again), never run beside another writer.
    let session = match Session::begin(backend, &opts.state, "serve", None, &keys).await {
        Ok(s) => s,
        Err(SessionError::Locked(msg) | SessionError::Failed(msg)) => {
            tracing::error!("skipping this reconciliation: {msg}");
            return;
        }
    };
    session
        .scope(reconcile_locked(opts, flags, client, backend, &desired))
        .await;
    session.finish().await;
}

/// The configuration for this cycle; `None` (the problems logged) when it is not valid.
async fn load(opts: &ServeOptions, flags: &fabrik_flags::Flags) -> Option<config::Desired> {
    // Secrets are resolved every cycle, as apply resolves them: a rotated secret is picked up.
    let secrets = crate::secrets::resolve(
        &opts.config,
        flags,
        opts.auth.as_deref(),
        opts.ca_cert.as_deref(),
    )
    .await;
    let load = LoadOptions {
        environment: opts.environment.clone(),
        lenient: opts.lenient,
        env: std::env::vars().collect(),
        secrets,
        repositories: Some(crate::publish::reader::RepoReader::shared()),
        sections: crate::engine::Registry::builtin().sections(),
    };
    match config::load(&opts.config, &load) {
        Ok((d, _)) => Some(d),
        Err(problems) => {
            for p in problems {
                tracing::error!("{}", p.headline());
            }
            None
        }
    }
}

async fn reconcile_locked(
    opts: &ServeOptions,
    flags: &fabrik_flags::Flags,
    client: &fabrik_client::FabricClient,
    backend: &crate::state::Backend,
    desired: &config::Desired,
) {
    let started = std::time::Instant::now();
    let names: Vec<String> = desired.workspaces.iter().map(|w| w.name.clone()).collect();
    // What the previous runs rendered from secrets (deployed records), read under the locks.
    let planned = match backend.read_records(&opts.state, &names).await {
        Ok(previous) => {
            let plan = crate::run::plan(client, desired, opts.run.concurrency);
            crate::deployed::with_previous(previous, crate::deployed::Refresh::Read, plan)
                .await
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e),
    };
    let keep = |plan: crate::plan::Plan| async move {
        if let Err(e) = backend.write_records(&opts.state, &plan).await {
            tracing::error!("{e}; a later cycle may show values this one rendered from secrets");
        }
    };
    // `run::apply` records the run's duration and outcome; a cycle that never reaches it
    // is recorded here.
    match planned {
        Ok(plan) if plan.change_count() == 0 => {
            fabrik_telemetry::global().record_run("succeeded", started.elapsed());
            keep(plan).await;
        }
        Ok(plan) => match run::apply(client, flags, desired, &plan, &opts.run).await {
            Ok(r) if r.errors.is_empty() => {
                tracing::info!(
                    changes = r.applied.len(),
                    run_id = r.run_id.as_deref().unwrap_or("-"),
                    "applied"
                );
                keep(plan).await;
            }
            Ok(r) => {
                tracing::error!(errors = ?r.errors, rolled_back = r.rolled_back.len(), "apply failed");
            }
            Err(e) => tracing::error!("{e}"),
        },
        Err(e) => {
            tracing::error!("{e}");
            fabrik_telemetry::global().record_run("failed", started.elapsed());
        }
    }
}

/// SIGTERM (Kubernetes, systemd) or Ctrl-C. The handlers are installed when this is called,
/// not when the future is first polled: the first cycle runs before the loop polls it, and a
/// SIGTERM then must wait for the cycle, not kill the process mid-run.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                // No handler could be installed: Ctrl-C as the runtime offers it.
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
