//! Project automation: `cargo xtask ci | tidy | deny | test | docs | coverage | bench |
//! bench-publish | live-test [--allow-skip] | release | semver-checks | cicd-check |
//! cicd-crosscheck | wheel | pytest`.
//!
//! `cargo xtask ci` is the README's test command and what `.ci/run` calls. `cargo xtask
//! release` is described in `release.rs`.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports to the terminal"
)]

mod bench_docs;
mod changelog;
mod cicd;
mod publish_bench;
mod release;
mod tidy;
mod wheel;

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

/// Whether `cargo <tool>` (a cargo subcommand such as `deny` or `llvm-cov`) is installed.
fn has_cargo_tool(tool: &str) -> bool {
    cargo()
        .args([tool, "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
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

/// The smoke suite against a real Fabric tenant (tests/e2e/live.rs), when the user gives one:
/// credentials (`FABRIC_TOKEN`, or the `AZURE_*` variables of the credential chain) and a
/// capacity (`FABRIK_LIVE_CAPACITY`, by name or id; `FABRIK_LIVE_BASE_URL` and
/// `FABRIK_LIVE_PRINCIPAL` optional). Without them it fails saying what is missing, or with
/// `--allow-skip` says so and succeeds; CI runs the same suite against the emulator as part
/// of the tests.
fn live_test(args: &[String]) -> Result<(), String> {
    if let Some(other) = args.iter().find(|a| *a != "--allow-skip") {
        return Err(format!(
            "unknown argument {other:?} (expected --allow-skip)"
        ));
    }
    let allow_skip = !args.is_empty();
    if let LivePlan::Skip(why) = live_plan(|k| std::env::var(k).ok(), allow_skip)? {
        println!("{why}");
        return Ok(());
    }
    let mut t = cargo();
    t.args([
        "test",
        "-p",
        "fabrik-tests",
        "--test",
        "e2e",
        "live::",
        "--",
        "--nocapture",
    ])
    .env("FABRIK_LIVE", "1");
    step("live smoke suite against the tenant", t)
}

/// What `live-test` does in the environment it finds.
#[derive(Debug, PartialEq, Eq)]
enum LivePlan {
    /// A tenant is configured: run the suite against it.
    Run,
    /// None is and `--allow-skip` was given: print this and succeed.
    Skip(String),
}

/// Decides from the variables (`var` looks one up) and `--allow-skip`. A missing tenant
/// without the flag is an error: a job meant to test against Fabric must not pass by testing
/// nothing.
fn live_plan(var: impl Fn(&str) -> Option<String>, allow_skip: bool) -> Result<LivePlan, String> {
    let has = |k: &str| var(k).is_some_and(|v| !v.trim().is_empty());
    let mut missing = Vec::new();
    if !(has("FABRIC_TOKEN") || (has("AZURE_TENANT_ID") && has("AZURE_CLIENT_ID"))) {
        missing.push(
            "credentials (FABRIC_TOKEN, or AZURE_TENANT_ID + AZURE_CLIENT_ID with a secret or federated token)",
        );
    }
    if !has("FABRIK_LIVE_CAPACITY") {
        missing.push("FABRIK_LIVE_CAPACITY (a capacity name or id)");
    }
    if missing.is_empty() {
        return Ok(LivePlan::Run);
    }
    let missing = missing.join(" and ");
    if allow_skip {
        Ok(LivePlan::Skip(format!(
            "live-test: skipped (--allow-skip): no tenant given; set {missing} to run the smoke suite against real Fabric. `cargo xtask test` runs it against the emulator."
        )))
    } else {
        Err(format!(
            "cannot run: no tenant given; set {missing} to run the smoke suite against real Fabric (`cargo xtask test` runs it against the emulator; --allow-skip makes a missing tenant a skip)"
        ))
    }
}

/// Benchmarks: the deployment benchmark (release `fabrik` against the emulator process, which
/// rewrites docs/benchmarks/deploy.md and deploy-state.md) and the crates' benchmarks (each
/// writes its document, see `bench_docs`); then docs/benchmarks/00-summary.md and
/// docs/BENCHMARKS.md are regenerated. `--deploy-only` or `--crates-only` runs one half. With
/// `--publish`, also the publish benchmark against fabric-cicd (`cargo xtask bench-publish`,
/// several minutes and a Python virtualenv, so not run by default). Fails when a run fails or
/// a bar is missed, after writing the figures.
fn bench(args: &[String]) -> Result<(), String> {
    let only = |flag: &str| args.iter().any(|a| a == flag);
    if let Some(unknown) = args
        .iter()
        .find(|a| !["--deploy-only", "--crates-only", "--publish"].contains(&a.as_str()))
    {
        return Err(format!(
            "bench: unknown option {unknown}; usage: cargo xtask bench [--deploy-only | --crates-only] [--publish]"
        ));
    }
    let mut failures = Vec::new();
    if !only("--crates-only") {
        let mut build = cargo();
        build.args([
            "build",
            "--release",
            "-p",
            "fabrik-cli",
            "-p",
            "fabrik-tests",
            "--bins",
        ]);
        step("build release binaries", build)?;
        let mut deploy = Command::new(bench_docs::target_dir().join("release/deploy-bench"));
        deploy.current_dir(root());
        if let Err(e) = step("deployment benchmark", deploy) {
            failures.push(e);
        }
    }
    if !only("--deploy-only")
        && let Err(e) = bench_docs::run_crate_benches()
    {
        failures.push(e);
    }
    if only("--publish")
        && let Err(e) = publish_bench::run(&[])
    {
        failures.push(e);
    }
    write_benchmarks_index()?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// docs/benchmarks/00-summary.md from the documents' bars, then docs/BENCHMARKS.md from all.
fn write_benchmarks_index() -> Result<(), String> {
    bench_docs::write_summary()?;
    let parts = bench_docs::documents(&root().join("docs/benchmarks"))?;
    let mut out = String::from(
        "# Benchmarks\n\nGenerated by `cargo xtask bench` from the files in docs/benchmarks/, each with the command that reproduces it. Figures come from this project's 2-core machine.\n",
    );
    for p in parts {
        let text = std::fs::read_to_string(&p).map_err(|e| e.to_string())?;
        // Demote each file's headings one level under this page's title.
        for line in text.lines() {
            if line.starts_with('#') {
                out.push('#');
            }
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    }
    std::fs::write(root().join("docs/BENCHMARKS.md"), out).map_err(|e| e.to_string())?;
    println!("wrote docs/BENCHMARKS.md");
    Ok(())
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
    if !has_cargo_tool("deny") {
        let mut install = Command::new("cargo");
        install.args(["install", "cargo-deny", "--locked"]);
        step("install cargo-deny", install)?;
    }
    // cargo-deny reads `cargo metadata` for every target platform offline: the crates only
    // other platforms use must be in the local registry first (a build fetches only this one's).
    let mut fetch = cargo();
    fetch.args(["fetch", "--locked"]);
    step("cargo fetch (every platform's crates)", fetch)?;
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
        .args(["deny", "--offline", "--config"])
        .arg(&cfg_path)
        .args(["check", "advisories", "bans", "licenses", "sources"]);
    let result = step("cargo deny (offline)", check);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// Test coverage with cargo-llvm-cov: a summary on the terminal and an HTML report.
fn coverage() -> Result<(), String> {
    if !has_cargo_tool("llvm-cov") {
        return Err("cargo-llvm-cov is not installed, so no coverage was measured. Install it with `cargo install cargo-llvm-cov --locked` and `rustup component add llvm-tools-preview`, then run `cargo xtask coverage` again".into());
    }
    let mut run = cargo();
    run.args(["llvm-cov", "--workspace", "--locked"]);
    step("tests under llvm-cov", run)?;
    let mut html = cargo();
    html.args(["llvm-cov", "report", "--html"]);
    step("HTML report", html)?;
    println!("coverage report: target/llvm-cov/html/index.html");
    Ok(())
}

fn release(args: &[String]) -> Result<(), String> {
    let opts = release::parse_args(args)?;
    let today = time::OffsetDateTime::now_utc().date().to_string();
    release::release(&root(), &opts, &today, &mut release::RealExec)
}

/// cargo-semver-checks against the previous release tag; says so and succeeds when there is
/// none. `--install` installs the tool when it is missing (it takes minutes to build).
fn semver_checks(args: &[String]) -> Result<(), String> {
    let Some(baseline) = release::last_tag(&root())? else {
        println!(
            "semver-checks: skipped: there is no previous release tag (v*) to compare against"
        );
        return Ok(());
    };
    if args.iter().any(|a| a == "--install") && !has_cargo_tool("semver-checks") {
        let mut install = cargo();
        install.args(["install", "cargo-semver-checks", "--locked"]);
        step("install cargo-semver-checks", install)?;
    }
    release::semver_checks(&root(), &baseline, None, &mut release::RealExec)
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
        "bench" => bench(rest),
        "bench-index" => write_benchmarks_index(),
        "bench-publish" => publish_bench::run(rest),
        "coverage" => coverage(),
        "release" => release(rest),
        "semver-checks" => semver_checks(rest),
        "live-test" => live_test(rest),
        "cicd-check" => cicd::check(rest),
        "cicd-crosscheck" => cicd::crosscheck(rest),
        "wheel" => wheel::run(rest),
        "pytest" => wheel::pytest(rest),
        _ => {
            println!(
                "usage: cargo xtask <ci [--deny] | tidy | test [--e2e] | deny | docs | coverage | bench [--deploy-only | --crates-only] [--publish] | bench-index | bench-publish [--debug] | live-test [--allow-skip] | {} | semver-checks [--install] | cicd-check [--repo PATH] | cicd-crosscheck [--repo PATH] | wheel [--dev] | pytest [PYTEST ARGS]>",
                release::USAGE
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn live_test_without_a_tenant_fails_unless_skipping_is_allowed() {
        let e = live_plan(env(&[]), false).unwrap_err();
        assert!(e.contains("cannot run"), "{e}");
        assert!(
            e.contains("FABRIK_LIVE_CAPACITY") && e.contains("FABRIC_TOKEN"),
            "{e}"
        );
        assert!(e.contains("--allow-skip"), "{e}");
        let Ok(LivePlan::Skip(why)) = live_plan(env(&[]), true) else {
            panic!("--allow-skip skips")
        };
        assert!(
            why.contains("skipped") && why.contains("FABRIK_LIVE_CAPACITY"),
            "{why}"
        );
    }

    #[test]
    fn live_test_names_only_what_is_missing() {
        // Credentials without a capacity; a blank capacity counts as none.
        let e = live_plan(
            env(&[("FABRIC_TOKEN", "t"), ("FABRIK_LIVE_CAPACITY", " ")]),
            false,
        )
        .unwrap_err();
        assert!(
            e.contains("FABRIK_LIVE_CAPACITY") && !e.contains("credentials"),
            "{e}"
        );
        // A tenant id alone is not credentials.
        let e = live_plan(
            env(&[("AZURE_TENANT_ID", "t"), ("FABRIK_LIVE_CAPACITY", "c")]),
            false,
        )
        .unwrap_err();
        assert!(
            e.contains("credentials") && !e.contains("a capacity name"),
            "{e}"
        );
    }

    #[test]
    fn live_test_runs_when_a_tenant_is_given_whatever_the_flag() {
        for allow_skip in [false, true] {
            for vars in [
                &[("FABRIC_TOKEN", "t"), ("FABRIK_LIVE_CAPACITY", "c")][..],
                &[
                    ("AZURE_TENANT_ID", "t"),
                    ("AZURE_CLIENT_ID", "a"),
                    ("FABRIK_LIVE_CAPACITY", "c"),
                ][..],
            ] {
                assert_eq!(live_plan(env(vars), allow_skip), Ok(LivePlan::Run));
            }
        }
    }

    #[test]
    fn live_test_refuses_unknown_arguments() {
        let e = live_test(&["--allow-skipp".to_owned()]).unwrap_err();
        assert!(e.contains("--allow-skipp"), "{e}");
    }
}
