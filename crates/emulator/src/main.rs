//! `fabrik-emulator`: runs the Fabric REST API emulator until Ctrl-C (or SIGTERM), then saves
//! the state file if one was given.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use clap::Parser;
use fabrik_emulator::{Emulator, EmulatorArgs, config_from_args};

/// A local Microsoft Fabric REST API emulator.
#[derive(Debug, Parser)]
#[command(name = "fabrik-emulator", version, about)]
struct Cli {
    #[command(flatten)]
    args: EmulatorArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match config_from_args(&cli.args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let ca_out = config.tls.as_ref().and_then(|t| t.ca_out.clone());
    let emulator = match Emulator::start(config).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("listening on {}", emulator.base_url());
    // Extra lines are best effort: a reader that only wanted the first one may be gone.
    let say = |line: String| {
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), "{line}");
    };
    if let Some(url) = emulator.tls_base_url() {
        say(format!("listening on {url}"));
        match &ca_out {
            Some(path) => say(format!("CA certificate written to {}", path.display())),
            None => say(format!(
                "CA certificate (trust it to use HTTPS):\n{}",
                emulator.ca_pem().unwrap_or_default()
            )),
        }
    }
    say(format!(
        "Application Insights connection string: {}",
        emulator.app_insights_connection_string()
    ));
    fabrik_emulator::shutdown_signal().await;
    match emulator.shutdown().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
