//! `fabrik`: deploy Microsoft Fabric workspaces from configuration. Parses the command line
//! and dispatches; the commands live in [`fabrik_cli::command`].

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports to the terminal"
)]

use std::process::ExitCode;
use std::time::Duration;

use fabrik_cli::cli::{Cli, Command, INVALID_INPUT};
use fabrik_cli::command;
use tracing::Instrument as _;

fn main() -> ExitCode {
    let cli = match Cli::try_parse_args(std::env::args_os()) {
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
        Command::Flags => command::flags(&cli),
        Command::Schema => {
            print!(
                "{}",
                fabrik_cli::config::json_schema(
                    &fabrik_cli::engine::Registry::builtin().sections()
                )
            );
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
                    command::DEFAULT_LOG_FILTER.into()
                }
            });
            // FEATURE_USE_TELEMETRY=off keeps everything local: no export to Application
            // Insights or over OTLP. Invalid flags stop every command but `flags`, which
            // reports them.
            let telemetry_on = match command::resolve_flags(cli) {
                Some(f) => f.is_on(fabrik_core::Flag::Telemetry),
                None if matches!(cli.command, Command::Flags) => false,
                None => return ExitCode::from(INVALID_INPUT),
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
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Every span of the command is a child of the run's root span, under the run's trace id
    // (`serve` makes a root span per reconciliation instead).
    let code = match &telemetry {
        Some(t) if !matches!(cli.command, Command::Serve { .. }) => {
            command::run(cli).instrument(t.run_span()).await
        }
        _ => command::run(cli).await,
    };
    if let Some(t) = telemetry {
        let _ = t.shutdown(Duration::from_secs(5)).await;
    }
    code
}
