//! The one command path: every command goes flags → secrets → configuration → client →
//! state and lock → plan → apply → report through the helpers here, so they plan, lock,
//! journal and report the same way. `write` holds the commands that change Fabric, `read`
//! those that only look.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports to the terminal"
)]

// Everything a command prints passes through the secret redactor: a value read through
// `${secret:NAME}` never reaches the terminal, even inside a plan or an error message.
macro_rules! println {
    ($($t:tt)*) => { std::println!("{}", crate::secrets::redact(&format!($($t)*))) };
}
macro_rules! print {
    ($($t:tt)*) => { std::print!("{}", crate::secrets::redact(&format!($($t)*))) };
}
macro_rules! eprintln {
    ($($t:tt)*) => { std::eprintln!("{}", crate::secrets::redact(&format!($($t)*))) };
}
macro_rules! eprint {
    ($($t:tt)*) => { std::eprint!("{}", crate::secrets::redact(&format!($($t)*))) };
}

mod read;
mod write;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{AuthCommand, Cli, Command, EmulatorCli, INVALID_INPUT, Output};
use crate::config;
use crate::plan::Plan;
use crate::run::{self, RunOptions};
use fabrik_client::FabricClient;

pub use read::flags;
use read::*;
use write::*;

/// The console log filter when FABRIK_LOG is not set (`serve` aside, which logs `info`):
/// warnings, but not the libraries' warnings about what the command reports in its own words —
/// a rollback (fabrik-txn) and a token that could not be had (fabrik-secrets).
pub const DEFAULT_LOG_FILTER: &str = "warn,fabrik_txn=error,fabrik_secrets::token=error";

/// Runs the parsed command.
pub async fn run(cli: &Cli) -> ExitCode {
    match &cli.command {
        Command::Plan {
            detailed_exitcode, ..
        } => plan(cli, *detailed_exitcode).await,
        Command::Apply {
            no_rollback,
            allow_data_loss,
            ..
        } => apply(cli, *no_rollback, allow_data_loss.allow_data_loss).await,
        Command::Rollback { run_id } => rollback(cli, run_id).await,
        Command::Status => status(cli).await,
        Command::Unlock { run_id, all, yes } => unlock(cli, run_id.as_deref(), *all, *yes).await,
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
            allow_data_loss,
            bulk,
            ..
        } => {
            let args = crate::publish::inputs::PublishArgs {
                repository: repository.clone(),
                workspace_id: workspace_id.clone(),
                cicd_config: cicd_config.clone(),
                parameter: parameter.clone(),
                item_types: item_types.clone(),
                features: cicd_feature.clone(),
                unpublish: *unpublish,
                bulk: *bulk,
            };
            let how = PublishHow {
                only_plan: *plan,
                detailed_exitcode: *detailed_exitcode,
                allow_data_loss: allow_data_loss.allow_data_loss,
            };
            publish(cli, args, how).await
        }
        Command::Export { workspace_id, out } => export(cli, workspace_id, out).await,
        Command::Emulator { args } => emulator(args).await,
        Command::Demo { example } => demo(cli, example).await,
        Command::Auth {
            what: AuthCommand::Check,
        } => auth_check(cli).await,
        Command::Serve {
            interval, listen, ..
        } => crate::serve::serve(&serve_options(cli, *interval, listen)).await,
        Command::Destroy {
            yes,
            cicd_feature,
            allow_data_loss,
            ..
        } => {
            let consent = crate::plan::Consent {
                allow_data_loss: allow_data_loss.allow_data_loss,
                cicd_features: cicd_feature.clone(),
            };
            destroy(cli, *yes, consent).await
        }
        Command::Validate { .. } => validate(cli).await,
        Command::Flags | Command::Schema => ExitCode::SUCCESS,
    }
}

/// The configuration, the flags and a client: what every command that talks to Fabric needs.
async fn prepare(
    cli: &Cli,
) -> Result<(config::Desired, fabrik_flags::Flags, FabricClient), ExitCode> {
    let desired = load(cli).await?;
    let flags = resolve_flags(cli).ok_or(ExitCode::from(INVALID_INPUT))?;
    let client = live_client(cli, &flags).map_err(|e| fail(&e))?;
    Ok((desired, flags, client))
}

fn serve_options(cli: &Cli, interval: u64, listen: &str) -> crate::serve::ServeOptions {
    crate::serve::ServeOptions {
        config: cli.config.clone(),
        environment: cli.environment.clone(),
        lenient: cli.lenient(),
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
    live_client_at(cli, flags, cli.base_url.clone())
}

/// [`live_client`] sending to `base_url` (a `config.yml`'s API root).
fn live_client_at(
    cli: &Cli,
    flags: &fabrik_flags::Flags,
    base_url: String,
) -> Result<fabrik_client::FabricClient, String> {
    if let Some(p) = &cli.ca_cert
        && let Err(e) = std::fs::read(p)
    {
        return Err(format!(
            "cannot read the CA certificate {}: {e}",
            p.display()
        ));
    }
    let opts = run_options(cli, base_url);
    tokens(cli).and_then(|t| run::client(&opts, flags, t))
}

/// The token provider every command uses ([`run::token_provider`]), whose failures say what to
/// set.
fn tokens(cli: &Cli) -> Result<Arc<dyn fabrik_core::TokenProvider>, String> {
    let tokens = run::token_provider(cli.auth.as_deref(), cli.ca_cert.as_deref())?;
    Ok(Arc::new(Hinted(tokens)))
}

/// What to do when no token could be had, after what the credential chain tried.
pub const CREDENTIAL_HINT: &str = "set FABRIC_TOKEN to a bearer token for the Fabric API \
     (`az account get-access-token --resource https://api.fabric.microsoft.com`), or \
     AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET for a service principal, or pick \
     a credential with --auth; `fabrik auth check` tries it";

/// A token provider whose errors end with [`CREDENTIAL_HINT`]: the chain's own message names
/// what it tried, not what the user can set.
#[derive(Debug)]
struct Hinted(Arc<dyn fabrik_core::TokenProvider>);

#[async_trait::async_trait]
impl fabrik_core::TokenProvider for Hinted {
    async fn token(
        &self,
        scopes: &[&str],
    ) -> Result<fabrik_core::AccessToken, fabrik_core::AuthError> {
        use fabrik_core::AuthError as E;
        self.0.token(scopes).await.map_err(|e| {
            let hinted = |m: String| format!("{m}\nto fix it: {CREDENTIAL_HINT}");
            match e {
                E::Unavailable(m) => E::Unavailable(hinted(m)),
                E::Rejected(m) => E::Rejected(hinted(m)),
                E::Transport(m) => E::Transport(hinted(m)),
                other => E::Unavailable(hinted(other.to_string())),
            }
        })
    }
    fn invalidate(&self, scopes: &[&str]) {
        self.0.invalidate(scopes);
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

fn state_args(cli: &Cli) -> crate::state::StateArgs {
    crate::state::StateArgs {
        state: cli.state_url.clone(),
        state_dir: cli.state_dir.clone(),
        config: cli.config.clone(),
        environment: cli.environment.clone(),
        lock_timeout: Duration::from_secs(cli.lock_timeout),
    }
}

async fn state_backend(cli: &Cli) -> Result<crate::state::Backend, String> {
    crate::state::Backend::resolve(&state_args(cli), || {
        crate::state::entra_tokens(cli.auth.as_deref(), cli.ca_cert.as_deref())
    })
    .await
}

/// Which deployment locks a writing command takes.
enum Locks<'a> {
    /// Those of these workspaces (display names).
    Workspaces(Vec<String>),
    /// That of the workspace with this id, named as `apply` names it (read only with shared
    /// state, which is when a lock is taken).
    WorkspaceId(&'a FabricClient, &'a str),
    /// Those run `.0` was made under, for its rollback.
    OfRun(&'a str),
}

/// Takes the deployment locks of the workspaces `command` writes (shared state only); a held
/// lock exits with code 3, naming its holder. A rollback takes the locks its run was made
/// under, or, where its journal recorded none, every workspace lock of the environment.
async fn lock(
    cli: &Cli,
    command: &str,
    locks: Locks<'_>,
) -> Result<(crate::state::Backend, crate::state::Session), ExitCode> {
    use crate::state::{Backend, Session, SessionError};
    let backend = state_backend(cli).await.map_err(|e| fail(&e))?;
    let args = state_args(cli);
    let (keys, run_id) = match (&backend, locks) {
        (Backend::Local(_), Locks::OfRun(id)) => (Vec::new(), Some(id)),
        (Backend::Local(_), _) => (Vec::new(), None),
        (Backend::Azure(_), Locks::Workspaces(names)) => (
            crate::state::lock_keys(&args, names.iter().map(String::as_str))
                .map_err(|e| fail(&e))?,
            None,
        ),
        (Backend::Azure(_), Locks::WorkspaceId(client, id)) => {
            let name = client
                .get_workspace(id)
                .await
                .map_err(|e| fail(&format!("reading workspace {id} to lock it: {e}")))?
                .display_name;
            (
                crate::state::lock_keys(&args, [name.as_str()]).map_err(|e| fail(&e))?,
                None,
            )
        }
        (Backend::Azure(store), Locks::OfRun(id)) => {
            let recorded = crate::state::rollback_keys(&backend, id)
                .await
                .map_err(|e| fail(&e))?;
            let keys = match recorded {
                Some(keys) => keys,
                None => {
                    let env = crate::state::env_key(&args).map_err(|e| fail(&e))?;
                    store
                        .lock_keys_under(&format!("{env}."))
                        .await
                        .map_err(|e| fail(&e.to_string()))?
                }
            };
            (keys, Some(id))
        }
    };
    match Session::begin(&backend, &args, command, run_id, &keys).await {
        Ok(s) => Ok((backend, s)),
        Err(SessionError::Locked(msg)) => {
            eprintln!("error: {msg}");
            Err(ExitCode::from(crate::state::EXIT_LOCKED))
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
fn plan_failed(e: &crate::engine::EngineError) -> ExitCode {
    use crate::engine::EngineError;
    match e {
        EngineError::Invalid(_) | EngineError::Cycle(_) | EngineError::UnknownCapacity(_) => {
            eprintln!("error: {e}");
            ExitCode::from(INVALID_INPUT)
        }
        _ => fail(&e.to_string()),
    }
}

/// `--workspace-id` must be a workspace's id, a GUID: a name would only meet a 404 later.
fn workspace_guid(id: &str) -> Result<(), String> {
    let b = id.as_bytes();
    let guid = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if guid {
        Ok(())
    } else {
        Err(format!(
            "--workspace-id `{id}` is not a workspace id: it expects a GUID such as \
             7d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a (`fabrik apply` prints its workspaces' ids); \
             to name a workspace instead, give `core.workspace: NAME` in a fabric-cicd \
             config.yml with --cicd-config"
        ))
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}

/// The flags, resolved once per process (warnings and errors print once, whichever command
/// asks first), the same way for every command; `None` when they are invalid (the errors
/// are printed).
pub fn resolve_flags(cli: &Cli) -> Option<fabrik_flags::Flags> {
    static FLAGS: std::sync::OnceLock<Option<fabrik_flags::Flags>> = std::sync::OnceLock::new();
    FLAGS
        .get_or_init(|| {
            let env: Vec<(String, String)> = std::env::vars().collect();
            match crate::flags::resolve(&cli.config, &env, &cli.features) {
                Ok(f) => {
                    for w in f.warnings() {
                        eprintln!("warning: {w}");
                    }
                    Some(f)
                }
                Err(errors) => {
                    for e in errors {
                        eprintln!("error: {e}");
                    }
                    None
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
        Output::Markdown => print!("{}", crate::render::markdown(plan)),
        Output::Text => print!("{}", crate::render::text(plan)),
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
    let plan = match crate::run::plan_with(client, desired, opts.concurrency, cli.prune()).await {
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
    // `apply` says which workspaces it made or used: a publish into them needs their ids.
    let says_ids = opts.command == "apply";
    if plan.change_count() == 0 {
        if let Err(code) = keep_records(cli, plan, opts).await {
            return code;
        }
        println!("no changes: the deployment matches the configuration");
        if says_ids {
            print!(
                "{}",
                crate::render::workspace_ids(&workspace_ids(client, plan).await)
            );
        }
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
    if let Some(path) = cli.report() {
        let json = serde_json::json!({"environment": desired.environment, "configHash": desired.hash, "plan": plan, "result": &report});
        let written = serde_json::to_string_pretty(&json)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                std::fs::write(path, crate::secrets::redact(&text)).map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            eprintln!("error: cannot write the report {}: {e}", path.display());
        }
    }
    let ids = if says_ids && report.errors.is_empty() {
        workspace_ids(client, plan).await
    } else {
        Vec::new()
    };
    print_report(cli, &report, &ids);
    if !report.errors.is_empty() {
        return ExitCode::FAILURE;
    }
    match keep_records(cli, plan, &opts).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

/// After a run that left the deployment as planned: each workspace's deployed record
/// (`crate::deployed`) replaced by what this run rendered from secrets, so the next run
/// treats those values as secret. `apply` and `publish` keep them; a failure is the run's
/// (exit 1): without the record, the next run could show what this one deployed.
async fn keep_records(cli: &Cli, plan: &Plan, opts: &RunOptions) -> Result<(), ExitCode> {
    if !matches!(opts.command, "apply" | "publish") {
        return Ok(());
    }
    let backend = state_backend(cli).await.map_err(|e| fail(&e))?;
    backend
        .write_records(&state_args(cli), plan)
        .await
        .map_err(|e| {
            fail(&format!(
                "{e}; the deployment itself was applied, but a later run may show values \
                 it rendered from secrets"
            ))
        })
}

/// The result of an apply: JSON (the report, and `workspaces: [{name, id}]` when `ids` has
/// them), or the summary for people.
fn print_report(cli: &Cli, report: &run::ApplyReport, ids: &[(String, String)]) {
    if cli.output == Output::Json {
        let json = serde_json::to_value(report).map(|mut v| {
            if !ids.is_empty() {
                v["workspaces"] = ids
                    .iter()
                    .map(|(name, id)| serde_json::json!({"name": name, "id": id}))
                    .collect();
            }
            v
        });
        match json.and_then(|v| serde_json::to_string_pretty(&v)) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("error: cannot write the result as JSON: {e}"),
        }
    } else {
        let (out, err) =
            crate::render::apply_report(report, &fabrik_telemetry::global().trace_id().to_string());
        print!("{out}");
        print!("{}", crate::render::workspace_ids(ids));
        eprint!("{err}");
    }
}

/// The plan's workspaces with their ids, those the apply created included (read back by
/// name); `(name, id)` in plan order.
async fn workspace_ids(client: &FabricClient, plan: &Plan) -> Vec<(String, String)> {
    let live: Vec<fabrik_client::models::Workspace> =
        if plan.workspaces.iter().all(|w| w.id.is_some()) {
            Vec::new()
        } else {
            futures::TryStreamExt::try_collect(client.list_workspaces())
                .await
                .unwrap_or_default()
        };
    plan.workspaces
        .iter()
        .filter_map(|w| {
            let id = w.id.clone().or_else(|| {
                live.iter()
                    .find(|l| l.display_name.eq_ignore_ascii_case(&w.name))
                    .map(|l| l.id.clone())
            })?;
            Some((w.name.clone(), id))
        })
        .collect()
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
        opts.progress = Some(crate::engine::Progress(Arc::new(move |a| {
            let line =
                crate::secrets::redact(&format!("{} {} ({})", a.outcome, a.target, a.workspace));
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

/// The configuration for `--env`, narrowed to the workspaces `--workspace`/`--shard`
/// select (exit code 4 for a name that matches none).
async fn load(cli: &Cli) -> Result<config::Desired, ExitCode> {
    let Some(flags) = resolve_flags(cli) else {
        return Err(ExitCode::from(INVALID_INPUT));
    };
    let secrets = crate::secrets::resolve(
        &cli.config,
        &flags,
        cli.auth.as_deref(),
        cli.ca_cert.as_deref(),
    )
    .await;
    let opts = config::LoadOptions {
        environment: cli.environment.clone(),
        lenient: cli.lenient(),
        env: std::env::vars().collect(),
        secrets,
        repositories: Some(crate::publish::reader::RepoReader::shared()),
        sections: crate::engine::Registry::builtin().sections(),
    };
    let loaded = match config::load_named(&cli.config, &opts) {
        Ok(loaded) => loaded,
        Err(problems) => {
            for p in &problems {
                eprint!("{p}");
            }
            let n = problems.iter().filter(|p| p.is_error()).count();
            eprintln!("{n} problem(s) found; nothing was deployed");
            return Err(ExitCode::from(INVALID_INPUT));
        }
    };
    for w in &loaded.problems {
        eprint!("{w}");
    }
    let selection = cli.selection();
    let desired =
        crate::select::select(&loaded.desired, &loaded.names, &selection).map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(INVALID_INPUT)
        })?;
    if !selection.is_all() {
        let names: Vec<&str> = desired.workspaces.iter().map(|w| w.name.as_str()).collect();
        eprintln!(
            "selected {} of {} workspace(s){}",
            names.len(),
            loaded.desired.workspaces.len(),
            if names.is_empty() {
                String::new()
            } else {
                format!(": {}", names.join(", "))
            }
        );
    }
    Ok(desired)
}
