//! `fabrik`: deploy Microsoft Fabric workspaces from configuration.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports to the terminal"
)]

use std::io::IsTerminal;
use std::path::PathBuf;

// Everything this command prints passes through the secret redactor: a value read through
// `${secret:NAME}` never reaches the terminal, even inside a plan or an error message.
macro_rules! println {
    ($($t:tt)*) => { std::println!("{}", fabrik_cli::secrets::redact(&format!($($t)*))) };
}
macro_rules! print {
    ($($t:tt)*) => { std::print!("{}", fabrik_cli::secrets::redact(&format!($($t)*))) };
}
macro_rules! eprintln {
    ($($t:tt)*) => { std::eprintln!("{}", fabrik_cli::secrets::redact(&format!($($t)*))) };
}
macro_rules! eprint {
    ($($t:tt)*) => { std::eprint!("{}", fabrik_cli::secrets::redact(&format!($($t)*))) };
}
use std::process::ExitCode;

use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use fabrik_cli::config;
use fabrik_cli::plan::Plan;
use fabrik_cli::run::{self, RunOptions};
use fabrik_client::FabricClient;
use tracing::Instrument as _;

/// Deploy Microsoft Fabric workspaces from configuration — planned, idempotent, transactional.
#[derive(Debug, Parser)]
#[command(name = "fabrik", version, about)]
struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        default_value = "fabrik.yaml",
        env = "FABRIK_CONFIG"
    )]
    config: PathBuf,
    /// The environment to deploy.
    #[arg(long = "env", global = true, default_value = "dev", env = "FABRIK_ENV")]
    environment: String,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Feature flag overrides, KEY=VALUE (e.g. retry_logic=off); repeatable.
    #[arg(long = "feature", global = true)]
    features: Vec<String>,
    /// Accept bad principals-file lines with warnings, as the seed did.
    #[arg(long, global = true)]
    lenient: bool,
    /// The Fabric API root.
    #[arg(long, global = true, env = "FABRIC_API_BASE_URL", default_value = fabrik_client::DEFAULT_BASE_URL)]
    base_url: String,
    /// Where run journals are kept.
    #[arg(
        long,
        global = true,
        default_value = ".fabrik/runs",
        env = "FABRIK_STATE_DIR"
    )]
    state_dir: PathBuf,
    /// Shared state: an Azure Blob container URL for journals and deployment locks
    /// (https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX], SAS in the query or in
    /// FABRIK_STATE_SAS), or a local directory. Default: `state.url` in the config, else
    /// --state-dir.
    #[arg(
        long = "state",
        global = true,
        env = "FABRIK_STATE",
        hide_env_values = true
    )]
    state_url: Option<String>,
    /// How long to wait for the environment's deployment lock, in seconds (0: fail at once
    /// with exit code 3).
    #[arg(long, global = true, default_value_t = 0)]
    lock_timeout: u64,
    /// Changes applied (and workspaces read) at once, across and within workspaces. 16 keeps
    /// a 50 ms long-running operation from setting the pace (docs/BENCHMARKS.md).
    #[arg(long, global = true, default_value_t = fabrik_cli::run::DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// Deadline for one long-running operation, in seconds.
    #[arg(long, global = true, default_value_t = fabrik_cli::run::DEFAULT_LRO_TIMEOUT_SECS)]
    lro_timeout: u64,
    /// Time limit of one API call in seconds, all its attempts (retries and their waits)
    /// included; each attempt is also cut off after 30 s.
    #[arg(long, global = true, default_value_t = fabrik_cli::run::DEFAULT_CALL_TIMEOUT_SECS)]
    call_timeout: u64,
    /// Deadline of a whole apply, in seconds; past it the run stops and rolls back.
    #[arg(long, global = true)]
    run_timeout: Option<u64>,
    /// How to authenticate: client-secret, workload-identity, azure-pipelines,
    /// managed-identity, azure-cli or auto (default: FABRIC_TOKEN if set, else FABRIK_AUTH,
    /// else the automatic chain).
    #[arg(long, global = true)]
    auth: Option<String>,
    /// An extra CA certificate (PEM) to trust for Entra ID, Key Vault and Fabric.
    #[arg(long, global = true, env = "FABRIK_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Plan (and apply) the deletion of items in managed workspaces that the configuration does
    /// not describe. Deletes run last and cannot be rolled back.
    #[arg(long, global = true)]
    prune: bool,
    /// Pace requests to at most this many per second per host (client-side GCRA).
    #[arg(long, global = true, env = "FABRIK_RATE_LIMIT")]
    rate_limit: Option<u32>,
    /// Write a JSON report of the apply to this file.
    #[arg(long, global = true)]
    report: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The emulator's options, parsed apart from fabrik's so its `--config` stays its own.
#[derive(Debug, Parser)]
#[command(name = "fabrik emulator", about = "Run the local Fabric emulator")]
struct EmulatorCli {
    #[command(flatten)]
    args: fabrik_emulator::EmulatorArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
    /// A summary table, the changes per workspace and a Mermaid graph, for a PR comment.
    Markdown,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the configuration, principals and names; send no request. Exit 4 on problems.
    Validate,
    /// Show the effective feature flags and where each value came from.
    Flags,
    /// Print the JSON Schema of the configuration file.
    Schema,
    /// Show what apply would change. Exit 0; with --detailed-exitcode 2 when changes are pending.
    Plan {
        /// 0: no changes, 2: changes pending, 1: error (as Terraform does).
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Publish the items of a git-format repository (Fabric Git integration's layout, as
    /// fabric-cicd publishes it) into a workspace: plan, skip what did not change, roll back on
    /// failure. Parts are rendered for `--env` as fabric-cicd renders them (logicalIds,
    /// `parameter.yml`, the zero workspace id).
    Publish {
        /// The repository folder (or `core.repository_directory` of --cicd-config).
        #[arg(long, required_unless_present = "cicd_config")]
        repository: Option<PathBuf>,
        /// The target workspace's id (or `core.workspace_id`/`core.workspace` of --cicd-config).
        #[arg(long, required_unless_present = "cicd_config")]
        workspace_id: Option<String>,
        /// fabric-cicd's `config.yml`, resolved for --env: workspace, repository, item types,
        /// parameter file, publish/unpublish filters and skips, features. Flags given beside it
        /// win.
        #[arg(long)]
        cicd_config: Option<PathBuf>,
        /// The `parameter.yml` (default: the repository's, when it has one).
        #[arg(long)]
        parameter: Option<PathBuf>,
        /// Only these item types, comma-separated (default: all 31 fabric-cicd publishes).
        #[arg(long, value_delimiter = ',')]
        item_types: Vec<String>,
        /// A fabric-cicd feature flag (`enable_environment_variable_replacement`,
        /// `disable_workspace_folder_publish`); repeatable.
        #[arg(long)]
        cicd_feature: Vec<String>,
        /// Only show the plan.
        #[arg(long)]
        plan: bool,
        /// Delete deployed items of the repository's types that it no longer holds
        /// (data-bearing types are never deleted).
        #[arg(long)]
        unpublish: bool,
        /// With --plan: 0 no changes, 2 changes pending.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Write a workspace's items as a git-format repository (folders as directories,
    /// `.platform` with the deployed ids as logicalIds, definition parts, the workspace's own
    /// id as the zero GUID), ready for `fabrik publish` into another workspace.
    Export {
        /// The workspace to export.
        #[arg(long)]
        workspace_id: String,
        /// A new or empty directory to write into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Force-release the deployment locks held by a run that is dead (shared state only).
    Unlock {
        /// The run whose locks to release.
        run_id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Apply the configuration; roll back what this run created if it fails.
    Apply {
        /// Leave what was done in place on failure.
        #[arg(long)]
        no_rollback: bool,
    },
    /// Keep the deployment reconciled: apply on an interval and when the config file changes;
    /// serve /health/live, /health/ready and /metrics; stop on SIGTERM after the run in flight.
    Serve {
        /// Seconds between reconciliations.
        #[arg(long, default_value_t = 300)]
        interval: u64,
        /// Address for the health and metrics endpoints.
        #[arg(long, default_value = "127.0.0.1:9464")]
        listen: String,
    },
    /// Remove what the configuration describes (asks first unless --yes): a plan of deletes,
    /// journaled like every run. Data-bearing items published from a workspace's
    /// `repository:` are kept unless their fabric-cicd `enable_<type>_unpublish` flag is given.
    Destroy {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// A fabric-cicd feature flag (`enable_lakehouse_unpublish`, …); repeatable.
        #[arg(long)]
        cicd_feature: Vec<String>,
    },
    /// Undo a failed or crashed run from its journal.
    Rollback {
        /// The run id (see `fabrik status`).
        run_id: String,
    },
    /// List runs and their state.
    Status,
    /// Run the local Fabric emulator (`fabrik emulator --help` lists its options).
    #[command(disable_help_flag = true)]
    Emulator {
        /// The emulator's own options, passed through (its `--config` is its own config file).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Check the credentials: get a token for the Fabric API the way every command does, and
    /// make one read with it. Exit 0 when both work.
    Auth {
        #[command(subcommand)]
        what: AuthCommand,
    },
    /// Start the emulator in-process, apply examples/ to it, and show that a second plan is empty.
    Demo {
        /// The example configuration.
        #[arg(long, default_value = "examples/fabrik.yaml")]
        example: PathBuf,
    },
}

/// Exit codes (docs/CLI.md): 0 success; 1 an error while running; 2 changes pending (only
/// `plan --detailed-exitcode`); 3 locked by another run; 4 invalid input (command line,
/// configuration, principals or flags; nothing was sent). Invalid input has its own code so a
/// CI gate on `plan --detailed-exitcode` never reads a typo as "changes pending".
const INVALID_INPUT: u8 = 4;

#[derive(Debug, Subcommand)]
enum AuthCommand {
    /// Get a token (FABRIC_TOKEN, --auth / FABRIK_AUTH, or the automatic chain) and list the
    /// workspaces it can see; print which credential answered, never the token.
    Check,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(INVALID_INPUT)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match &cli.command {
        Command::Flags => flags(&cli),
        Command::Schema => {
            print!("{}", config::json_schema());
            ExitCode::SUCCESS
        }
        _ => {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            rt.block_on(async_main(&cli))
        }
    }
}

fn serve_options(cli: &Cli, interval: u64, listen: &str) -> fabrik_cli::serve::ServeOptions {
    fabrik_cli::serve::ServeOptions {
        config: cli.config.clone(),
        environment: cli.environment.clone(),
        lenient: cli.lenient,
        features: cli.features.clone(),
        run: RunOptions {
            command: "serve",
            ..run_options(cli, cli.base_url.clone())
        },
        interval: Duration::from_secs(interval),
        listen: listen.to_string(),
        auth: cli.auth.clone(),
        ca_cert: cli.ca_cert.clone(),
        state: state_args(cli),
    }
}

fn run_options(cli: &Cli, base_url: String) -> RunOptions {
    RunOptions {
        base_url,
        concurrency: cli.concurrency,
        state_dir: cli.state_dir.clone(),
        rollback: true,
        lro_deadline: Duration::from_secs(cli.lro_timeout),
        call_timeout: Some(Duration::from_secs(cli.call_timeout)),
        run_timeout: cli.run_timeout.map(Duration::from_secs),
        rate_limit: cli.rate_limit,
        progress: None,
        // Read once here; `live_client` reports a file that cannot be read.
        extra_ca_pem: cli.ca_cert.as_ref().and_then(|p| std::fs::read(p).ok()),
        run_sleeper: None,
        command: "apply",
    }
}

fn live_client(
    cli: &Cli,
    flags: &fabrik_flags::Flags,
) -> Result<fabrik_client::FabricClient, String> {
    if let Some(p) = &cli.ca_cert
        && let Err(e) = std::fs::read(p)
    {
        return Err(format!(
            "cannot read the CA certificate {}: {e}",
            p.display()
        ));
    }
    let opts = run_options(cli, cli.base_url.clone());
    run::token_provider(cli.auth.as_deref(), cli.ca_cert.as_deref())
        .and_then(|t| run::client(&opts, flags, t))
}

async fn async_main(cli: &Cli) -> ExitCode {
    // Telemetry: console logs (FABRIK_LOG filter, FABRIK_LOG_FORMAT), Prometheus metrics,
    // Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set, and OTLP spans
    // and metrics when OTEL_EXPORTER_OTLP_ENDPOINT is.
    let telemetry = match fabrik_telemetry::TelemetryConfig::from_env(|k| std::env::var(k).ok()) {
        Ok(mut c) => {
            c.filter = std::env::var("FABRIK_LOG").unwrap_or_else(|_| {
                if matches!(cli.command, Command::Serve { .. }) {
                    "info".into()
                } else {
                    "warn".into()
                }
            });
            // FEATURE_USE_TELEMETRY=off keeps everything local: no export to Application
            // Insights or over OTLP. Invalid flags stop every command but `flags`, which
            // reports them.
            let telemetry_on = match resolve_flags(cli) {
                Ok(f) => f.is_on(fabrik_core::Flag::Telemetry),
                Err(()) if matches!(cli.command, Command::Flags) => false,
                Err(()) => return ExitCode::from(INVALID_INPUT),
            };
            if !telemetry_on {
                c.app_insights = None;
                c.otlp = None;
                c.otlp_metrics = None;
            }
            match fabrik_telemetry::Telemetry::init(&c) {
                Ok(t) => Some(t),
                Err(e) => {
                    eprintln!("warning: telemetry is off: {e}");
                    None
                }
            }
        }
        Err(e) => return fail(&e.to_string()),
    };
    // Every span of the command is a child of the run's root span, under the run's trace id
    // (`serve` makes a root span per reconciliation instead).
    let code = match &telemetry {
        Some(t) if !matches!(cli.command, Command::Serve { .. }) => {
            commands(cli).instrument(t.run_span()).await
        }
        _ => commands(cli).await,
    };
    if let Some(t) = telemetry {
        let _ = t.shutdown(Duration::from_secs(5)).await;
    }
    code
}

async fn commands(cli: &Cli) -> ExitCode {
    match &cli.command {
        Command::Plan { detailed_exitcode } => plan(cli, *detailed_exitcode).await,
        Command::Apply { no_rollback } => apply(cli, *no_rollback).await,
        Command::Rollback { run_id } => rollback(cli, run_id).await,
        Command::Status => status(cli).await,
        Command::Unlock { run_id, yes } => unlock(cli, run_id, *yes).await,
        Command::Publish {
            repository,
            workspace_id,
            cicd_config,
            parameter,
            item_types,
            cicd_feature,
            plan,
            unpublish,
            detailed_exitcode,
        } => {
            let args = fabrik_cli::publish::inputs::PublishArgs {
                repository: repository.clone(),
                workspace_id: workspace_id.clone(),
                cicd_config: cicd_config.clone(),
                parameter: parameter.clone(),
                item_types: item_types.clone(),
                features: cicd_feature.clone(),
                unpublish: *unpublish,
            };
            publish(cli, args, *plan, *detailed_exitcode).await
        }
        Command::Export { workspace_id, out } => export(cli, workspace_id, out).await,
        Command::Emulator { args } => emulator(args).await,
        Command::Demo { example } => demo(cli, example).await,
        Command::Auth {
            what: AuthCommand::Check,
        } => auth_check(cli).await,
        Command::Serve { interval, listen } => {
            fabrik_cli::serve::serve(&serve_options(cli, *interval, listen)).await
        }
        Command::Destroy { yes, cicd_feature } => destroy(cli, *yes, cicd_feature).await,
        Command::Validate => validate(cli).await,
        Command::Flags | Command::Schema => ExitCode::SUCCESS,
    }
}

/// The configuration, the flags and a client: what every command that talks to Fabric needs.
async fn prepare(
    cli: &Cli,
) -> Result<(config::Desired, fabrik_flags::Flags, FabricClient), ExitCode> {
    let desired = load(cli).await?;
    let flags = resolve_flags(cli).map_err(|()| ExitCode::from(INVALID_INPUT))?;
    let client = live_client(cli, &flags).map_err(|e| fail(&e))?;
    Ok((desired, flags, client))
}

async fn plan(cli: &Cli, detailed_exitcode: bool) -> ExitCode {
    let (desired, _, client) = match prepare(cli).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    match fabrik_cli::engine::plan_with(&client, &desired, cli.concurrency, cli.prune).await {
        Ok(plan) => {
            print_plan(cli, &plan);
            if detailed_exitcode && plan.change_count() > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => plan_failed(&e),
    }
}

async fn apply(cli: &Cli, no_rollback: bool) -> ExitCode {
    let (desired, flags, client) = match prepare(cli).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut opts = run_options(cli, cli.base_url.clone());
    opts.rollback = !no_rollback;
    let (backend, session) = match lock(cli, "apply", None).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    drop(backend);
    let code = session
        .scope(deploy(cli, &client, &flags, &desired, &opts))
        .await;
    session.finish().await;
    code
}

async fn publish(
    cli: &Cli,
    args: fabrik_cli::publish::inputs::PublishArgs,
    only_plan: bool,
    detailed_exitcode: bool,
) -> ExitCode {
    use fabrik_cli::publish::{inputs, pipeline::EnvVars};
    let (target, repo, how) = match inputs::resolve(&args, &cli.environment, EnvVars::process()) {
        Ok(Some(r)) => {
            for w in &r.warnings {
                eprint!("{w}");
            }
            (r.target, r.repo, r.how)
        }
        Ok(None) => {
            println!(
                "config.yml skips publishing in environment {}",
                cli.environment
            );
            return ExitCode::SUCCESS;
        }
        Err(problems) => {
            let errors = problems.iter().filter(|p| p.is_error()).count();
            for p in &problems {
                eprint!("{p}");
            }
            eprintln!("{errors} problem(s) found; nothing was published");
            return ExitCode::from(INVALID_INPUT);
        }
    };
    let Ok(flags) = resolve_flags(cli) else {
        return ExitCode::from(INVALID_INPUT);
    };
    let client = match live_client(cli, &flags) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let workspace_id = match target.resolve(&client).await {
        Ok(id) => id,
        Err(e) => return fail(&e),
    };
    // A writing publish takes the lock before it plans: a publish that waited for another
    // plans against what that one left, and journals the definitions it really replaces.
    let session = if only_plan {
        fabrik_cli::state::Session::local()
    } else {
        match lock(cli, "publish", None).await {
            Ok((_, s)) => s,
            Err(code) => return code,
        }
    };
    let planned = fabrik_cli::publish::publisher::plan(
        &client,
        Arc::new(repo),
        how,
        &workspace_id,
        target.unpublish.clone(),
        cli.concurrency,
    )
    .await;
    let (desired, plan) = match planned {
        Ok(p) => p,
        Err(e) => {
            session.finish().await;
            return plan_failed(&e);
        }
    };
    if only_plan {
        print_plan(cli, &plan);
        return if detailed_exitcode && plan.change_count() > 0 {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let mut opts = run_options(cli, cli.base_url.clone());
    opts.command = "publish";
    let code = session
        .scope(apply_planned(cli, &client, &flags, &desired, &plan, &opts))
        .await;
    session.finish().await;
    code
}

async fn export(cli: &Cli, workspace_id: &str, out: &std::path::Path) -> ExitCode {
    use fabrik_cli::publish::{export, snapshot};
    let Ok(flags) = resolve_flags(cli) else {
        return ExitCode::from(INVALID_INPUT);
    };
    let client = match live_client(cli, &flags) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let items = match snapshot::read_workspace(&client, workspace_id, cli.concurrency).await {
        Ok(i) => i,
        Err(e) => return fail(&e),
    };
    let opts = export::ExportOptions {
        workspace_id: Some(workspace_id.to_string()),
    };
    match export::export(out, &items, &opts) {
        Ok(dirs) => {
            println!("exported {} item(s) to {}", dirs.len(), out.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

async fn unlock(cli: &Cli, run_id: &str, yes: bool) -> ExitCode {
    let backend = match state_backend(cli).await {
        Ok(b) => b,
        Err(e) => return fail(&e),
    };
    match fabrik_cli::state::unlock(&backend, run_id, |q| yes || confirm(q)).await {
        Ok(released) if released.is_empty() => {
            println!("run {run_id} held no deployment lock; its journal lease (if any) was broken");
            ExitCode::SUCCESS
        }
        Ok(released) => {
            for (key, holder) in released {
                println!("released {key} (held by {holder})");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

async fn auth_check(cli: &Cli) -> ExitCode {
    let Ok(flags) = resolve_flags(cli) else {
        return ExitCode::from(INVALID_INPUT);
    };
    let tokens = match run::token_provider(cli.auth.as_deref(), cli.ca_cert.as_deref()) {
        Ok(t) => t,
        Err(e) => return fail(&format!("no credential: {e}")),
    };
    let token = match tokens.token(&[fabrik_client::FABRIC_SCOPE]).await {
        Ok(t) => t,
        Err(e) => return fail(&format!("cannot get a token for the Fabric API: {e}")),
    };
    let source = if std::env::var_os("FABRIC_TOKEN").is_some() && cli.auth.is_none() {
        "FABRIC_TOKEN".to_string()
    } else {
        cli.auth
            .clone()
            .or_else(|| std::env::var("FABRIK_AUTH").ok())
            .unwrap_or_else(|| "the automatic credential chain".into())
    };
    let expires = token
        .expires_at
        .duration_since(std::time::SystemTime::now())
        .map(|d| format!("in {} min", d.as_secs() / 60))
        .unwrap_or_else(|_| "already".into());
    println!("token: from {source}, expires {expires}");
    let opts = run_options(cli, cli.base_url.clone());
    let client = match run::client(&opts, &flags, tokens) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    match futures::TryStreamExt::try_collect::<Vec<_>>(client.list_workspaces()).await {
        Ok(ws) => {
            println!(
                "Fabric API {}: the identity sees {} workspace(s)",
                cli.base_url,
                ws.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("the Fabric API refused the token: {e}")),
    }
}

async fn rollback(cli: &Cli, run_id: &str) -> ExitCode {
    let Ok(flags) = resolve_flags(cli) else {
        return ExitCode::from(INVALID_INPUT);
    };
    // Undo records keep `${secret:NAME}` where a secret was; resolve the project's secrets so
    // they can be restored (one that cannot be resolved fails its undo, naming it).
    if cli.config.is_file() {
        fabrik_cli::secrets::resolve(
            &cli.config,
            &flags,
            cli.auth.as_deref(),
            cli.ca_cert.as_deref(),
        )
        .await;
    }
    let client = match live_client(cli, &flags) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let (_, session) = match lock(cli, "rollback", Some(run_id)).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let result = session
        .scope(run::rollback(&client, &cli.state_dir, run_id))
        .await;
    session.finish().await;
    match result {
        Ok(r) => {
            let failed = r.failures().count();
            for e in &r.entries {
                println!("  {:?}  {}", e.result, e.resource);
            }
            // Creates whose result recovery could not settle are left in place, and said.
            let unsettled: Vec<_> = r.unsettled().collect();
            for i in &unsettled {
                let why = match &i.result {
                    fabrik_txn::IntentResult::ResolveFailed { message } => message.clone(),
                    other => format!("{other:?}"),
                };
                eprintln!(
                    "  create of {} '{}' not settled: {why}",
                    i.intent
                        .item_type
                        .clone()
                        .unwrap_or_else(|| i.intent.kind.to_string()),
                    i.intent.display_name
                );
            }
            println!(
                "rollback of {run_id}: {} step(s), {failed} failed, {} create(s) not settled",
                r.entries.len(),
                unsettled.len()
            );
            if failed == 0 && unsettled.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => fail(&e),
    }
}

async fn status(cli: &Cli) -> ExitCode {
    let backend = match state_backend(cli).await {
        Ok(b) => b,
        Err(e) => return fail(&e),
    };
    match backend.list_runs().await {
        Ok(listing) => {
            for r in &listing.runs {
                println!("{}  {:?}  {}", r.run_id, r.status, r.name);
            }
            if listing.runs.is_empty() {
                println!("no runs in {}", backend.location());
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

async fn emulator(args: &[String]) -> ExitCode {
    let parsed = match EmulatorCli::try_parse_from(
        std::iter::once("fabrik emulator".to_string()).chain(args.iter().cloned()),
    ) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(INVALID_INPUT)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let config = match fabrik_emulator::config_from_args(&parsed.args) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let emu = match fabrik_emulator::Emulator::start(config).await {
        Ok(e) => e,
        Err(e) => return fail(&e.to_string()),
    };
    println!("listening on {}", emu.base_url());
    let _ = tokio::signal::ctrl_c().await;
    match emu.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

async fn destroy(cli: &Cli, yes: bool, cicd_features: &[String]) -> ExitCode {
    let Ok(desired) = load(cli).await else {
        return ExitCode::from(INVALID_INPUT);
    };
    if !yes
        && !confirm(&format!(
            "Remove {} workspace(s) described by {} for '{}'?",
            desired.workspaces.len(),
            cli.config.display(),
            desired.environment
        ))
    {
        return fail("not confirmed; pass --yes to destroy without asking");
    }
    let Ok(flags) = resolve_flags(cli) else {
        return ExitCode::from(INVALID_INPUT);
    };
    let client = match live_client(cli, &flags) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let (_, session) = match lock(cli, "destroy", None).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let options = fabrik_cli::destroy::DestroyOptions {
        cicd_features: cicd_features.to_vec(),
    };
    let plan = match fabrik_cli::destroy::destroy_plan(&client, &desired, &options).await {
        Ok(p) => p,
        Err(e) => {
            session.finish().await;
            return plan_failed(&e);
        }
    };
    let mut opts = run_options(cli, cli.base_url.clone());
    opts.command = "destroy";
    let code = session
        .scope(apply_planned(cli, &client, &flags, &desired, &plan, &opts))
        .await;
    session.finish().await;
    code
}

fn state_args(cli: &Cli) -> fabrik_cli::state::StateArgs {
    fabrik_cli::state::StateArgs {
        state: cli.state_url.clone(),
        state_dir: cli.state_dir.clone(),
        config: cli.config.clone(),
        environment: cli.environment.clone(),
        lock_timeout: Duration::from_secs(cli.lock_timeout),
    }
}

async fn state_backend(cli: &Cli) -> Result<fabrik_cli::state::Backend, String> {
    fabrik_cli::state::Backend::resolve(&state_args(cli), || {
        fabrik_cli::state::entra_tokens(cli.auth.as_deref(), cli.ca_cert.as_deref())
    })
    .await
}

/// Takes the environment's deployment lock for `command` (shared state only); a held lock
/// exits with code 3, naming its holder. A rollback takes the lock its run was made under.
async fn lock(
    cli: &Cli,
    command: &str,
    run_id: Option<&str>,
) -> Result<(fabrik_cli::state::Backend, fabrik_cli::state::Session), ExitCode> {
    use fabrik_cli::state::{Session, SessionError};
    let backend = state_backend(cli).await.map_err(|e| fail(&e))?;
    let key = match run_id {
        Some(id) => fabrik_cli::state::rollback_key(&backend, id)
            .await
            .map_err(|e| fail(&e))?,
        None => None,
    };
    match Session::begin(&backend, &state_args(cli), command, run_id, key).await {
        Ok(s) => Ok((backend, s)),
        Err(SessionError::Locked(msg)) => {
            eprintln!("error: {msg}");
            Err(ExitCode::from(fabrik_cli::state::EXIT_LOCKED))
        }
        Err(SessionError::Failed(msg)) => Err(fail(&msg)),
    }
}

/// Asks on the terminal; anything but y/yes (or no terminal) is a no.
fn confirm(question: &str) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// A plan that cannot be made: invalid input (4) when the configuration is at fault — a kind's
/// validation, a reference cycle — else a failure (1).
fn plan_failed(e: &fabrik_cli::engine::EngineError) -> ExitCode {
    use fabrik_cli::engine::EngineError;
    match e {
        EngineError::Invalid(_) | EngineError::Cycle(_) | EngineError::UnknownCapacity(_) => {
            eprintln!("error: {e}");
            ExitCode::from(INVALID_INPUT)
        }
        _ => fail(&e.to_string()),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}

/// The flags, resolved once per process (warnings and errors print once, whichever command
/// asks first), the same way for every command.
fn resolve_flags(cli: &Cli) -> Result<fabrik_flags::Flags, ()> {
    static FLAGS: std::sync::OnceLock<Result<fabrik_flags::Flags, ()>> = std::sync::OnceLock::new();
    FLAGS
        .get_or_init(|| {
            let env: Vec<(String, String)> = std::env::vars().collect();
            match fabrik_cli::flags::resolve(&cli.config, &env, &cli.features) {
                Ok(f) => {
                    for w in f.warnings() {
                        eprintln!("warning: {w}");
                    }
                    Ok(f)
                }
                Err(errors) => {
                    for e in errors {
                        eprintln!("error: {e}");
                    }
                    Err(())
                }
            }
        })
        .clone()
}

fn print_plan(cli: &Cli, plan: &Plan) {
    match cli.output {
        Output::Json => match serde_json::to_string_pretty(plan) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("error: cannot write the plan as JSON: {e}"),
        },
        Output::Markdown => print!("{}", fabrik_cli::render::markdown(plan)),
        Output::Text => print!("{}", fabrik_cli::render::text(plan)),
    }
}

/// The one apply path of the binary: plan, show it, apply through [`run::apply`] with progress,
/// and report.
async fn deploy(
    cli: &Cli,
    client: &FabricClient,
    flags: &fabrik_flags::Flags,
    desired: &config::Desired,
    opts: &RunOptions,
) -> ExitCode {
    let plan =
        match fabrik_cli::engine::plan_with(client, desired, opts.concurrency, cli.prune).await {
            Ok(p) => p,
            Err(e) => return plan_failed(&e),
        };
    apply_planned(cli, client, flags, desired, &plan, opts).await
}

/// Shows `plan` and applies it through [`run::apply`] with progress, then reports.
async fn apply_planned(
    cli: &Cli,
    client: &FabricClient,
    flags: &fabrik_flags::Flags,
    desired: &config::Desired,
    plan: &Plan,
    opts: &RunOptions,
) -> ExitCode {
    if plan.change_count() == 0 {
        println!("no changes: the deployment matches the configuration");
        return ExitCode::SUCCESS;
    }
    print_plan(cli, plan);
    let mut opts = opts.clone();
    let bar = progress(cli, plan, &mut opts);
    let report = match run::apply(client, flags, desired, plan, &opts).await {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let run_id = report.run_id.clone().unwrap_or_default();
    let changes = report.applied.len().to_string();
    fabrik_telemetry::global().track_event(
        "fabrik.apply",
        &[
            ("environment", &desired.environment),
            ("outcome", report.outcome()),
            ("runId", &run_id),
            ("changes", &changes),
        ],
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let Some(path) = &cli.report {
        let json = serde_json::json!({"environment": desired.environment, "configHash": desired.hash, "plan": plan, "result": &report});
        let written = serde_json::to_string_pretty(&json)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                std::fs::write(path, fabrik_cli::secrets::redact(&text)).map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            eprintln!("error: cannot write the report {}: {e}", path.display());
        }
    }
    if cli.output == Output::Json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("error: cannot write the result as JSON: {e}"),
        }
    } else {
        let (out, err) = fabrik_cli::render::apply_report(
            &report,
            &fabrik_telemetry::global().trace_id().to_string(),
        );
        print!("{out}");
        eprint!("{err}");
    }
    if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Progress: a bar on a terminal, a line per change otherwise (CI logs), nothing for JSON.
fn progress(cli: &Cli, plan: &Plan, opts: &mut RunOptions) -> Option<indicatif::ProgressBar> {
    let bar = (cli.output == Output::Text && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(plan.change_count() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    if cli.output == Output::Text {
        let bar = bar.clone();
        opts.progress = Some(fabrik_cli::engine::Progress(Arc::new(move |a| {
            let line = fabrik_cli::secrets::redact(&format!(
                "{} {} ({})",
                a.outcome, a.target, a.workspace
            ));
            match &bar {
                Some(b) => {
                    b.set_message(line);
                    b.inc(1);
                }
                None => std::eprintln!("  {line}"),
            }
        })));
    }
    bar
}

async fn demo(cli: &Cli, example: &std::path::Path) -> ExitCode {
    let example = if example.is_file() {
        example.to_path_buf()
    } else {
        // Run from anywhere in the repository: fall back to the examples shipped beside the crate.
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fabrik.yaml")
    };
    // The emulator with its Entra ID stand-in over HTTPS: the demo signs in as a service
    // principal with a client secret, exactly as a CI pipeline would, trusting only the
    // emulator's generated CA.
    let config = fabrik_emulator::EmulatorConfig {
        tls: Some(fabrik_emulator::TlsConfig {
            port: 0,
            ca_out: None,
        }),
        ..Default::default()
    };
    let emu = match fabrik_emulator::Emulator::start(config).await {
        Ok(e) => e,
        Err(e) => return fail(&e.to_string()),
    };
    let (Some(authority), Some(ca)) = (emu.tls_base_url(), emu.ca_pem()) else {
        return fail("the emulator did not start its HTTPS endpoint");
    };
    println!(
        "emulator listening on {} (Entra ID on {authority})",
        emu.base_url()
    );
    let env = fabrik_secrets::MapEnv::new()
        .with("AZURE_TENANT_ID", fabrik_emulator::DEFAULT_TENANT_ID)
        .with("AZURE_CLIENT_ID", fabrik_emulator::DEFAULT_CLIENT_ID)
        .with(
            "AZURE_CLIENT_SECRET",
            fabrik_emulator::DEFAULT_CLIENT_SECRET,
        )
        .with("AZURE_AUTHORITY_HOST", authority);
    let mut azure = fabrik_secrets::AzureOptions::new();
    azure.authority_host = Some(authority.to_string());
    azure.extra_ca_pem = Some(ca.as_bytes().to_vec());
    let provider =
        match run::azure_tokens(Some(fabrik_secrets::AuthMethod::ClientSecret), &env, &azure) {
            Ok(p) => p,
            Err(e) => return fail(&e),
        };
    match provider.token(&[fabrik_client::FABRIC_SCOPE]).await {
        Ok(_) => println!(
            "signed in as service principal {} (client secret, over TLS)",
            fabrik_emulator::DEFAULT_CLIENT_ID
        ),
        Err(e) => return fail(&format!("sign-in failed: {e}")),
    }
    let opts = config::LoadOptions {
        environment: cli.environment.clone(),
        lenient: false,
        env: std::env::vars().collect(),
        secrets: Default::default(),
    };
    let desired = match config::load(&example, &opts) {
        Ok((d, _)) => d,
        Err(problems) => {
            for p in &problems {
                eprint!("{p}");
            }
            return ExitCode::from(INVALID_INPUT);
        }
    };
    let Ok(flags) = resolve_flags(cli) else {
        return ExitCode::from(INVALID_INPUT);
    };
    let state = std::env::temp_dir().join(format!("fabrik-demo-{}", std::process::id()));
    let mut ropts = run_options(cli, format!("{}/v1", emu.base_url()));
    ropts.state_dir = state.clone();
    let client = match run::client(&ropts, &flags, Arc::clone(&provider)) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    println!(
        "applying {} (environment {}) …",
        example.display(),
        desired.environment
    );
    let code = deploy(cli, &client, &flags, &desired, &ropts).await;
    let code = if code != ExitCode::SUCCESS {
        code
    } else {
        println!("planning again …");
        match fabrik_cli::engine::plan(&client, &desired, ropts.concurrency).await {
            Ok(plan) => {
                print_plan(cli, &plan);
                if plan.change_count() == 0 {
                    println!("second plan is empty: the deployment is idempotent");
                    ExitCode::SUCCESS
                } else {
                    fail("second plan is not empty")
                }
            }
            Err(e) => fail(&e.to_string()),
        }
    };
    let _ = std::fs::remove_dir_all(&state);
    let _ = emu.shutdown().await;
    code
}

async fn load(cli: &Cli) -> Result<config::Desired, ExitCode> {
    let Ok(flags) = resolve_flags(cli) else {
        return Err(ExitCode::from(INVALID_INPUT));
    };
    let secrets = fabrik_cli::secrets::resolve(
        &cli.config,
        &flags,
        cli.auth.as_deref(),
        cli.ca_cert.as_deref(),
    )
    .await;
    let opts = config::LoadOptions {
        environment: cli.environment.clone(),
        lenient: cli.lenient,
        env: std::env::vars().collect(),
        secrets,
    };
    match config::load(&cli.config, &opts) {
        Ok((desired, warnings)) => {
            for w in warnings {
                eprint!("{w}");
            }
            Ok(desired)
        }
        Err(problems) => {
            for p in &problems {
                eprint!("{p}");
            }
            let n = problems.iter().filter(|p| p.is_error()).count();
            eprintln!("{n} problem(s) found; nothing was deployed");
            Err(ExitCode::from(INVALID_INPUT))
        }
    }
}

async fn validate(cli: &Cli) -> ExitCode {
    match load(cli).await {
        Ok(d) => {
            let items: usize = d.workspaces.iter().map(|w| w.items.len()).sum();
            let principals: usize = d.workspaces.iter().map(|w| w.principals.len()).sum();
            if cli.output == Output::Json {
                println!(
                    "{}",
                    serde_json::json!({"valid": true, "environment": d.environment, "workspaces": d.workspaces.len(), "items": items, "principals": principals, "configHash": d.hash})
                );
            } else {
                println!(
                    "{}: valid for '{}': {} workspace(s), {} item(s), {} role assignment(s)",
                    cli.config.display(),
                    d.environment,
                    d.workspaces.len(),
                    items,
                    principals
                );
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn flags(cli: &Cli) -> ExitCode {
    match resolve_flags(cli) {
        Ok(flags) => {
            if cli.output == Output::Json {
                let rows: Vec<serde_json::Value> = flags
                    .report()
                    .into_iter()
                    .map(|r| serde_json::json!({"flag": r.flag.key(), "variable": r.flag.env_var(), "enabled": r.enabled, "source": r.source.to_string()}))
                    .collect();
                let ready = flags.readiness();
                println!(
                    "{}",
                    serde_json::json!({"flags": rows, "productionReady": ready.ready, "missing": ready.missing.iter().map(|f| f.key()).collect::<Vec<_>>()})
                );
            } else {
                print!("{flags}");
                let ready = flags.readiness();
                if ready.ready {
                    println!("production ready: yes");
                } else {
                    let missing: Vec<&str> = ready.missing.iter().map(|f| f.env_var()).collect();
                    println!("production ready: no (off: {})", missing.join(", "));
                }
            }
            ExitCode::SUCCESS
        }
        Err(()) => ExitCode::from(INVALID_INPUT),
    }
}
