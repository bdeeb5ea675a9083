//! The commands that change Fabric: each takes the lock before it plans and journals to the
//! state backend.

use super::*;

pub(super) async fn plan(cli: &Cli, detailed_exitcode: bool) -> ExitCode {
    let (desired, _, client) = match prepare(cli).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    let planned = async {
        let previous = previous_records(cli, &workspace_names(&desired)).await?;
        let plan = crate::run::plan_with(&client, &desired, cli.concurrency, cli.prune());
        crate::deployed::with_previous(previous, cli.refresh(), plan).await
    };
    match planned.await {
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

/// How `publish` runs: `--plan`, `--detailed-exitcode`, `--allow-data-loss`.
pub(super) struct PublishHow {
    pub only_plan: bool,
    pub detailed_exitcode: bool,
    pub allow_data_loss: bool,
}

/// The path every writing command shares once its inputs are read and its client built:
/// the locks of the workspaces it writes (before the plan, so a run that waited plans what
/// the previous one left), the plan, the data-loss guard, then apply, journal and report
/// under the locks.
async fn locked<F>(
    cli: &Cli,
    client: &FabricClient,
    flags: &fabrik_flags::Flags,
    (opts, locks): (RunOptions, Locks<'_>),
    consent: &crate::plan::Consent,
    make_plan: F,
) -> ExitCode
where
    F: std::future::Future<Output = Result<(config::Desired, Plan), crate::engine::EngineError>>,
{
    if let Err(e) = state_key(cli, flags).await {
        return fail(&e);
    }
    let (_, session) = match lock(cli, opts.command, locks).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let code = match make_plan.await {
        Ok((_, plan)) if !plan.refused_data_loss(consent).is_empty() => {
            refuse_data_loss(cli, &plan, consent)
        }
        Ok((desired, plan)) => {
            session
                .scope(apply_planned(cli, client, flags, &desired, &plan, &opts))
                .await
        }
        Err(e) => plan_failed(&e),
    };
    session.finish().await;
    code
}

/// A plan that destroys data without consent: shown, then refused with exit code 4 and the
/// changes listed, before anything is sent that writes.
fn refuse_data_loss(cli: &Cli, plan: &Plan, consent: &crate::plan::Consent) -> ExitCode {
    print_plan(cli, plan);
    let refused = plan.refused_data_loss(consent);
    eprintln!(
        "error: {} change(s) of this plan destroy stored data, and --allow-data-loss was not given:",
        refused.len()
    );
    for line in &refused {
        eprintln!("  {line}");
    }
    eprintln!("nothing was changed; pass --allow-data-loss to carry the plan out");
    ExitCode::from(INVALID_INPUT)
}

pub(super) async fn apply(cli: &Cli, no_rollback: bool, allow_data_loss: bool) -> ExitCode {
    let (desired, flags, client) = match prepare(cli).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut opts = run_options(cli, cli.base_url.clone());
    opts.rollback = !no_rollback;
    let plan = async {
        // Read under the locks: the record the previous run left, not one it is replacing.
        let previous = previous_records(cli, &workspace_names(&desired)).await?;
        let plan = crate::run::plan_with(&client, &desired, cli.concurrency, cli.prune());
        let plan = crate::deployed::with_previous(previous, cli.refresh(), plan).await?;
        Ok((desired.clone(), plan))
    };
    let consent = crate::plan::Consent {
        allow_data_loss,
        cicd_features: Vec::new(),
    };
    let writes = Locks::Workspaces(workspace_names(&desired));
    locked(cli, &client, &flags, (opts, writes), &consent, plan).await
}

pub(super) async fn publish(
    cli: &Cli,
    args: crate::publish::inputs::PublishArgs,
    publish_how: PublishHow,
) -> ExitCode {
    let PublishHow {
        only_plan,
        detailed_exitcode,
        allow_data_loss,
    } = publish_how;
    use crate::publish::{inputs, pipeline::EnvVars};
    if let Some(id) = &args.workspace_id
        && let Err(e) = workspace_guid(id)
    {
        eprintln!("error: {e}");
        return ExitCode::from(INVALID_INPUT);
    }
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
    let Some(flags) = resolve_flags(cli) else {
        return ExitCode::from(INVALID_INPUT);
    };
    let base_url = publish_base_url(target.api_root.as_deref(), &cli.base_url);
    let client = match live_client_at(cli, &flags, base_url.clone()) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let workspace_id = match target.resolve(&client).await {
        Ok(id) => id,
        Err(e) => return fail(&e),
    };
    // fabric-cicd's `enable_<type>_unpublish` flags consent to their types' orphan deletes,
    // which publish plans only when the flag is given.
    let consent = crate::plan::Consent {
        allow_data_loss,
        cicd_features: target.unpublish.features.clone(),
    };
    let plan = crate::publish::publisher::plan(
        &client,
        Arc::new(repo),
        how,
        &workspace_id,
        target.unpublish.clone(),
        cli.concurrency,
    );
    let plan = async {
        let name = client
            .get_workspace(&workspace_id)
            .await
            .map_err(crate::engine::ctx(format!(
                "reading workspace {workspace_id}"
            )))?
            .display_name;
        let previous = previous_records(cli, &[name]).await?;
        crate::deployed::with_previous(previous, cli.refresh(), plan).await
    };
    if only_plan {
        return match plan.await {
            Ok((_, plan)) => {
                print_plan(cli, &plan);
                if detailed_exitcode && plan.change_count() > 0 {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(e) => plan_failed(&e),
        };
    }
    let mut opts = run_options(cli, base_url);
    opts.command = "publish";
    let target = Locks::WorkspaceId(&client, &workspace_id);
    locked(cli, &client, &flags, (opts, target), &consent, plan).await
}

pub(super) async fn destroy(cli: &Cli, yes: bool, consent: crate::plan::Consent) -> ExitCode {
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
    let Some(flags) = resolve_flags(cli) else {
        return ExitCode::from(INVALID_INPUT);
    };
    let client = match live_client(cli, &flags) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let options = crate::destroy::DestroyOptions {
        cicd_features: consent.cicd_features.clone(),
        kinds: None,
    };
    let mut opts = run_options(cli, cli.base_url.clone());
    opts.command = "destroy";
    let plan = async {
        let plan = crate::destroy::destroy_plan(&client, &desired, &options).await?;
        Ok((desired.clone(), plan))
    };
    let writes = Locks::Workspaces(workspace_names(&desired));
    locked(cli, &client, &flags, (opts, writes), &consent, plan).await
}

pub(super) async fn rollback(cli: &Cli, run_id: &str) -> ExitCode {
    let Some(flags) = resolve_flags(cli) else {
        return ExitCode::from(INVALID_INPUT);
    };
    // Undo records keep `${secret:NAME}` where a secret was; resolve the project's secrets so
    // they can be restored (one that cannot be resolved fails its undo, naming it).
    if cli.config.is_file() {
        crate::secrets::resolve(
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
    if let Err(e) = state_key(cli, &flags).await {
        return fail(&e);
    }
    let (_, session) = match lock(cli, "rollback", Locks::OfRun(run_id)).await {
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

/// The deployed records of `workspaces` (display names) in the state backend: what their
/// last successful runs rendered from secrets.
async fn previous_records(
    cli: &Cli,
    workspaces: &[String],
) -> Result<crate::deployed::Previous, crate::engine::EngineError> {
    let backend = state_backend(cli)
        .await
        .map_err(crate::engine::EngineError::Invalid)?;
    backend
        .read_records(&state_args(cli), workspaces)
        .await
        .map_err(crate::engine::EngineError::Invalid)
}

/// Reads the state key's `${secret:NAME}` references (`FABRIK_STATE_KEY`,
/// `FABRIK_STATE_OLD_KEYS`) before a run starts or a journal is opened.
async fn state_key(cli: &Cli, flags: &fabrik_flags::Flags) -> Result<(), String> {
    crate::state_key::resolve(
        &cli.config,
        flags,
        cli.auth.as_deref(),
        cli.ca_cert.as_deref(),
    )
    .await
}

/// The display names of the workspaces a run of `desired` writes: the ones it locks.
fn workspace_names(desired: &config::Desired) -> Vec<String> {
    desired.workspaces.iter().map(|w| w.name.clone()).collect()
}

/// `fabrik unlock RUN_ID` releases the run's locks; `fabrik unlock --all` every lock of the
/// environment (`--env`), whoever holds it.
pub(super) async fn unlock(cli: &Cli, run_id: Option<&str>, all: bool, yes: bool) -> ExitCode {
    use crate::state::UnlockWhat;
    let what = match (run_id, all) {
        (Some(id), false) => UnlockWhat::Run(id.to_owned()),
        (None, true) => match crate::state::env_key(&state_args(cli)) {
            Ok(env) => UnlockWhat::Environment(env),
            Err(e) => return fail(&e),
        },
        _ => {
            eprintln!("error: give either a RUN_ID or --all");
            return ExitCode::from(INVALID_INPUT);
        }
    };
    let backend = match state_backend(cli).await {
        Ok(b) => b,
        Err(e) => return fail(&e),
    };
    match crate::state::unlock(&backend, &what, |q| yes || confirm(q)).await {
        Ok(released) if released.is_empty() => {
            match what {
                UnlockWhat::Run(id) => println!(
                    "run {id} held no deployment lock; its journal lease (if any) was broken"
                ),
                UnlockWhat::Environment(env) => {
                    println!("no deployment lock of {env} was held")
                }
            }
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

/// Where a publish sends: `config.yml`'s `constants.DEFAULT_API_ROOT_URL` (its `/v1`), unless
/// `--base-url` (or `FABRIC_API_BASE_URL`) names another root beside it — flags win, and
/// `Target::resolve` then refuses the mismatch before any request.
fn publish_base_url(api_root: Option<&str>, cli_base: &str) -> String {
    match api_root {
        Some(root) if cli_base == fabrik_client::DEFAULT_BASE_URL => {
            format!("{}/v1", root.trim_end_matches('/'))
        }
        _ => cli_base.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::publish_base_url;

    #[test]
    fn a_config_yml_api_root_sets_where_a_publish_sends_unless_a_flag_names_another() {
        let default = fabrik_client::DEFAULT_BASE_URL;
        assert_eq!(
            publish_base_url(Some("https://api.powerbi.com/"), default),
            "https://api.powerbi.com/v1"
        );
        assert_eq!(publish_base_url(None, default), default);
        assert_eq!(
            publish_base_url(Some("https://api.powerbi.com"), "http://127.0.0.1:9/v1"),
            "http://127.0.0.1:9/v1"
        );
    }
}
