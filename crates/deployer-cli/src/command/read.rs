//! The commands that only look: status, validation, flags, auth, export, the emulator and
//! the demo.

use super::*;
use clap::Parser as _;

pub(super) async fn export(cli: &Cli, workspace_id: &str, out: &std::path::Path) -> ExitCode {
    use crate::publish::{export, snapshot};
    if let Err(e) = workspace_guid(workspace_id) {
        eprintln!("error: {e}");
        return ExitCode::from(INVALID_INPUT);
    }
    let Some(flags) = resolve_flags(cli) else {
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
    let pools = match snapshot::read_pools(&client, workspace_id, &items).await {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let opts = export::ExportOptions {
        workspace_id: Some(workspace_id.to_string()),
        pools,
    };
    match export::export(out, &items, &opts) {
        Ok(dirs) => {
            println!("exported {} item(s) to {}", dirs.len(), out.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

pub(super) async fn auth_check(cli: &Cli) -> ExitCode {
    let Some(flags) = resolve_flags(cli) else {
        return ExitCode::from(INVALID_INPUT);
    };
    let tokens = match tokens(cli) {
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

pub(super) async fn status(cli: &Cli) -> ExitCode {
    let backend = match state_backend(cli).await {
        Ok(b) => b,
        Err(e) => return fail(&e),
    };
    match backend.list_runs().await {
        Ok(listing) if cli.output == Output::Json => {
            // Each run as the journal summarizes it: id, name (`<command> <env>`), status,
            // times, resources, pending undos, the journal's place.
            let unreadable: Vec<String> =
                listing.unreadable.iter().map(|e| e.to_string()).collect();
            let json = serde_json::json!({
                "location": backend.location(),
                "runs": listing.runs,
                "unreadable": unreadable,
            });
            match serde_json::to_string_pretty(&json) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("cannot write the runs as JSON: {e}")),
            }
        }
        Ok(listing) => {
            for r in &listing.runs {
                println!("{}  {:?}  {}", r.run_id, r.status, r.name);
            }
            for e in &listing.unreadable {
                eprintln!("warning: {e}");
            }
            if listing.runs.is_empty() {
                println!("no runs in {}", backend.location());
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

pub(super) async fn emulator(args: &[String]) -> ExitCode {
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
    // SIGTERM (a service manager, a CI job's end) as well as Ctrl-C: `--state FILE` is saved
    // on either.
    fabrik_emulator::shutdown_signal().await;
    match emu.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

pub(super) async fn demo(cli: &Cli, example: &std::path::Path) -> ExitCode {
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
        repositories: Some(crate::publish::reader::RepoReader::shared()),
        sections: crate::engine::Registry::builtin().sections(),
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
    let Some(flags) = resolve_flags(cli) else {
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
        match crate::run::plan(&client, &desired, ropts.concurrency).await {
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

pub(super) async fn validate(cli: &Cli) -> ExitCode {
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

/// `fabrik flags`: the effective feature flags and where each came from.
pub fn flags(cli: &Cli) -> ExitCode {
    match resolve_flags(cli) {
        Some(flags) => {
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
        None => ExitCode::from(INVALID_INPUT),
    }
}
