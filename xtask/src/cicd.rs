//! `cargo xtask cicd-check [--repo PATH]`: Microsoft's fabric-cicd 1.4.0 publishes the shared
//! git-format fixture to fabrik-emulator, for environments test and prod, with every item
//! type in scope and `enable_shortcut_publish`; then republishes a copy with two items
//! removed and unpublishes the orphans; then checks every definition read back equals what
//! fabric-cicd sent. The emulator and fabric-cicd check each other: a call the emulator
//! does not serve, or answers in a shape fabric-cicd cannot read, fails the run.
//!
//! fabric-cicd comes from PyPI into a virtualenv under `target/cicd/venv` (created and
//! installed on first use, never by `cargo xtask ci`). The driver is `cicd_check.py` beside
//! this file; its JSON summary is printed and the full log kept in `target/cicd/check.log`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::{cargo, root, step};

const FABRIC_CICD: &str = "fabric-cicd==1.4.0";
const DRIVER: &str = include_str!("cicd_check.py");
const COMMON: &str = include_str!("cicd_common.py");
const CROSSCHECK: &str = include_str!("cicd_crosscheck.py");

/// Kills the emulator this task started when the task ends, however it ends.
pub(crate) struct Emulator(Child);

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

/// Creates the virtualenv and installs fabric-cicd 1.4.0 unless it is already there.
pub(crate) fn ensure_venv(venv: &Path) -> Result<PathBuf, String> {
    let python = venv_python(venv);
    if !python.exists() {
        let mut c = Command::new("python3");
        c.args(["-m", "venv"]).arg(venv);
        step("python3 -m venv target/cicd/venv", c)?;
    }
    let installed = Command::new(&python)
        .args([
            "-c",
            "import importlib.metadata as m; assert m.version('fabric-cicd') == '1.4.0'",
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        let mut c = Command::new(&python);
        c.args(["-m", "pip", "install", "--quiet", FABRIC_CICD]);
        step(&format!("pip install {FABRIC_CICD}"), c)?;
    }
    Ok(python)
}

/// Starts the emulator binary on a free port with `args` (besides `--port 0`) and returns
/// it with its base URL.
pub(crate) fn start_emulator(bin: &Path, args: &[&str]) -> Result<(Emulator, String), String> {
    let mut child = Command::new(bin)
        .args(["--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no emulator stdout")?;
    let emulator = Emulator(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("reading the emulator's first line: {e}"))?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected emulator output: {line:?}"))?
        .to_string();
    Ok((emulator, url))
}

/// Writes the Python drivers beside each other in `dir` (they import `cicd_common`).
pub(crate) fn write_drivers(dir: &Path) -> Result<(), String> {
    for (name, text) in [
        ("cicd_common.py", COMMON),
        ("cicd_check.py", DRIVER),
        ("cicd_crosscheck.py", CROSSCHECK),
        ("publish_bench.py", crate::publish_bench::DRIVER),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// The shared fixture, or the repository given with `--repo PATH`.
fn repo_arg(args: &[String], task: &str) -> Result<PathBuf, String> {
    let repo = match args {
        [flag, path] if flag == "--repo" => PathBuf::from(path),
        [] => root().join("../shared/fixtures/git-format-repo"),
        _ => return Err(format!("usage: cargo xtask {task} [--repo PATH]")),
    };
    repo.canonicalize()
        .map_err(|e| format!("fixture repository {}: {e}", repo.display()))
}

/// The task.
pub(crate) fn check(args: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let root = root();
    let repo = repo_arg(args, "cicd-check")?;
    let dir = root.join("target/cicd");
    let work = dir.join("work");
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let python = ensure_venv(&dir.join("venv"))?;

    let mut build = cargo();
    build.args(["build", "-p", "fabrik-emulator", "--bin", "fabrik-emulator"]);
    step("build fabrik-emulator", build)?;
    let (_emulator, url) = start_emulator(
        &root.join("target/debug/fabrik-emulator"),
        &[
            "--accept-any-token",
            "--capacity-pool",
            "ProdCapacityPool",
            // Long enough that fabric-cicd polls operations, SQL endpoints and the
            // environment publish at least once.
            "--lro-delay",
            "300",
        ],
    )?;

    write_drivers(&dir)?;
    let driver = dir.join("cicd_check.py");
    let log_path = dir.join("check.log");
    println!("==> fabric-cicd 1.4.0 against {url} ({})", repo.display());
    let out = Command::new(&python)
        .arg(&driver)
        .arg(&url)
        .arg(&repo)
        .arg(&work)
        // fabric-cicd's own knob for the pause between polls (1 s by default).
        .env("FABRIC_CICD_RETRY_DELAY_OVERRIDE_SECONDS", "0.1")
        .env("NO_COLOR", "1")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let mut log = out.stdout.clone();
    log.extend_from_slice(&out.stderr);
    std::fs::write(&log_path, &log).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout.lines().last().unwrap_or_default();
    if !out.status.success() {
        let text = String::from_utf8_lossy(&log);
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        return Err(format!(
            "fabric-cicd run failed (full log: {}):\n{}",
            log_path.display(),
            tail
        ));
    }
    println!("{summary}");
    println!(
        "<== cicd-check: ok in {:.1}s (log: {})",
        started.elapsed().as_secs_f64(),
        log_path.display()
    );
    Ok(())
}

/// `cargo xtask cicd-crosscheck [--repo PATH]`: fabric-cicd 1.4.0 and fabrik publish the same
/// repository (the shared fixture by default) for environments test and prod into two
/// workspaces of one emulator each; the deployed folders, items, definitions and item state
/// are compared with every id replaced by the name it stands for (`cicd_crosscheck.py`, whose
/// `EXPECTED` lists the known differences: fabric-cicd's post-steps fabrik does not do yet),
/// then once per feature-flag scenario (`SCENARIOS`: the experimental publish filters and
/// `disable_workspace_folder_publish`, fabrik reading them from a config.yml).
/// Fails on any other difference, printing them all.
pub(crate) fn crosscheck(args: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let root = root();
    let repo = repo_arg(args, "cicd-crosscheck")?;
    let dir = root.join("target/cicd");
    let work = dir.join("crosscheck");
    // Fresh state directories for fabrik's runs.
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let python = ensure_venv(&dir.join("venv"))?;

    let mut build = cargo();
    build.args([
        "build",
        "-p",
        "fabrik-cli",
        "-p",
        "fabrik-emulator",
        "--bin",
        "fabrik",
        "--bin",
        "fabrik-emulator",
    ]);
    step("build fabrik and fabrik-emulator", build)?;
    let (_emulator, url) = start_emulator(
        &root.join("target/debug/fabrik-emulator"),
        &["--accept-any-token", "--capacity-pool", "ProdCapacityPool"],
    )?;

    write_drivers(&dir)?;
    let log_path = dir.join("crosscheck.log");
    let report = work.join("report.txt");
    println!(
        "==> fabric-cicd 1.4.0 and fabrik publish {} against {url}",
        repo.display()
    );
    let out = Command::new(&python)
        .arg(dir.join("cicd_crosscheck.py"))
        .arg(&url)
        .arg(&repo)
        .arg(root.join("target/debug/fabrik"))
        .arg(&work)
        .arg(&report)
        // What is compared is what was deployed, not how fast: poll every 0.1 s.
        .env("FABRIC_CICD_RETRY_DELAY_OVERRIDE_SECONDS", "0.1")
        .env("NO_COLOR", "1")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let mut log = out.stdout.clone();
    log.extend_from_slice(&out.stderr);
    std::fs::write(&log_path, &log).map_err(|e| format!("{}: {e}", log_path.display()))?;
    match std::fs::read_to_string(&report) {
        Ok(text) => print!("{text}"),
        Err(_) => {
            let text = String::from_utf8_lossy(&log);
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            return Err(format!(
                "the cross-check did not finish (full log: {}):\n{tail}",
                log_path.display()
            ));
        }
    }
    if !out.status.success() {
        return Err(format!(
            "fabric-cicd and fabrik deployed differently (above; full log: {})",
            log_path.display()
        ));
    }
    println!(
        "<== cicd-crosscheck: ok in {:.1}s (log: {})",
        started.elapsed().as_secs_f64(),
        log_path.display()
    );
    Ok(())
}
