//! `fabrik`: deploy Microsoft Fabric workspaces from configuration.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports to the terminal"
)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use fabrik_cli::config;

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the configuration, principals and names; send no request. Exit 2 on problems.
    Validate,
    /// Show the effective feature flags and where each value came from.
    Flags,
    /// Print the JSON Schema of the configuration file.
    Schema,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate => validate(&cli),
        Command::Flags => flags(&cli),
        Command::Schema => {
            let schema = schemars::schema_for!(config::model::Config);
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
    }
}

fn load(cli: &Cli) -> Result<config::Desired, ExitCode> {
    let opts = config::LoadOptions {
        environment: cli.environment.clone(),
        lenient: cli.lenient,
        env: std::env::vars().collect(),
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
            Err(ExitCode::from(2))
        }
    }
}

fn validate(cli: &Cli) -> ExitCode {
    match load(cli) {
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
    let env: Vec<(String, String)> = std::env::vars().collect();
    let file = std::fs::read_to_string(&cli.config).ok().and_then(|t| {
        let v: serde_norway::Value = serde_norway::from_str(&t).ok()?;
        let section: fabrik_flags::FileSection =
            serde_norway::from_value(v.get("features")?.clone()).ok()?;
        Some((cli.config.clone(), section))
    });
    match fabrik_flags::Flags::resolve(&fabrik_flags::Inputs {
        env: &env,
        file,
        cli: &cli.features,
    }) {
        Ok(flags) => {
            for w in flags.warnings() {
                eprintln!("warning: {w}");
            }
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
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            ExitCode::from(2)
        }
    }
}
