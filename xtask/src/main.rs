//! Project automation: `cargo xtask ci | tidy | deny | test | docs | bench`.
//!
//! `cargo xtask ci` is the README's test command and what `.ci/run` calls.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports to the terminal"
)]

mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs a step, printing its name and duration; fails the task on a non-zero exit.
fn step(name: &str, mut cmd: Command) -> Result<(), String> {
    println!("==> {name}");
    let t = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{name}: could not start: {e}"))?;
    println!(
        "<== {name}: {} in {:.1}s",
        if status.success() { "ok" } else { "FAILED" },
        t.elapsed().as_secs_f64()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed ({status})"))
    }
}

fn tidy() -> Result<(), String> {
    println!("==> tidy");
    let problems = tidy::run_all(&root())?;
    if problems.is_empty() {
        println!("<== tidy: ok");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("tidy: {p}");
        }
        Err(format!("tidy found {} problem(s)", problems.len()))
    }
}

fn ci(args: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    step("fmt --check", fmt)?;
    tidy()?;
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    step("clippy -D warnings", clippy)?;
    test(&[])?;
    if args.iter().any(|a| a == "--deny") {
        deny()?;
    }
    println!(
        "ci: all steps passed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn test(args: &[String]) -> Result<(), String> {
    let mut t = cargo();
    t.args(["test", "--workspace", "--locked"]);
    if args.iter().any(|a| a == "--e2e") {
        t.args(["-p", "fabrik-tests"]);
    }
    step("test", t)
}

fn docs() -> Result<(), String> {
    let mut d = cargo();
    d.args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings");
    step("rustdoc -D warnings", d)
}

/// cargo-deny: bans, licenses and sources as configured, and advisories offline against the
/// snapshot in ../shared/rustsec-advisory-db (the machine cannot reach GitHub).
fn deny() -> Result<(), String> {
    let have = Command::new("cargo")
        .args(["deny", "--version"])
        .output()
        .map(|o| o.status.success());
    if !matches!(have, Ok(true)) {
        let mut install = Command::new("cargo");
        install.args(["install", "cargo-deny", "--locked"]);
        step("install cargo-deny", install)?;
    }
    let snapshot = root().join("../shared/rustsec-advisory-db");
    if !snapshot.is_dir() {
        return Err(format!(
            "advisory snapshot not found at {}",
            snapshot.display()
        ));
    }
    let tmp = std::env::temp_dir().join(format!("fabrik-advisory-{}", std::process::id()));
    let db = tmp.join("advisory-db-3157b0e258782691");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&db).map_err(|e| e.to_string())?;
    let mut cp = Command::new("cp");
    cp.arg("-r").arg(snapshot.join(".")).arg(&db);
    step("copy advisory snapshot", cp)?;
    for args in [
        vec!["init", "-q"],
        vec!["add", "-A"],
        vec![
            "-c",
            "user.name=xtask",
            "-c",
            "user.email=xtask@localhost",
            "commit",
            "-qm",
            "snapshot",
        ],
    ] {
        let ok = Command::new("git")
            .args(&args)
            .current_dir(&db)
            .status()
            .map_err(|e| e.to_string())?;
        if !ok.success() {
            return Err(format!("git {args:?} failed in {}", db.display()));
        }
    }
    let config = std::fs::read_to_string(root().join("deny.toml")).map_err(|e| e.to_string())?;
    let config = config.replace(
        "[advisories]\n",
        &format!("[advisories]\ndb-path = \"{}\"\n", tmp.display()),
    );
    let cfg_path = tmp.join("deny.toml");
    std::fs::write(&cfg_path, config).map_err(|e| e.to_string())?;
    let mut check = cargo();
    check
        .args(["deny", "--offline", "check", "--config"])
        .arg(&cfg_path)
        .args(["advisories", "bans", "licenses", "sources"]);
    let result = step("cargo deny (offline)", check);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = args
        .split_first()
        .map(|(c, r)| (c.as_str(), r))
        .unwrap_or(("help", &[]));
    let result = match cmd {
        "ci" => ci(rest),
        "tidy" => tidy(),
        "test" => test(rest),
        "deny" => deny(),
        "docs" => docs(),
        _ => {
            println!("usage: cargo xtask <ci [--deny] | tidy | test [--e2e] | deny | docs>");
            return if cmd == "help" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}
