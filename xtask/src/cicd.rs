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

/// Kills the emulator this task started when the task ends, however it ends.
struct Emulator(Child);

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
fn ensure_venv(venv: &Path) -> Result<PathBuf, String> {
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

/// Starts the emulator binary on a free port and returns it with its base URL.
fn start_emulator(bin: &Path) -> Result<(Emulator, String), String> {
    let mut child = Command::new(bin)
        .args([
            "--port",
            "0",
            "--accept-any-token",
            "--capacity-pool",
            "ProdCapacityPool",
            // Long enough that fabric-cicd polls operations, SQL endpoints and the
            // environment publish at least once.
            "--lro-delay",
            "300",
        ])
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

/// The task.
pub(crate) fn check(args: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let root = root();
    let repo = match args {
        [flag, path] if flag == "--repo" => PathBuf::from(path),
        [] => root.join("../shared/fixtures/git-format-repo"),
        _ => return Err("usage: cargo xtask cicd-check [--repo PATH]".into()),
    };
    let repo = repo
        .canonicalize()
        .map_err(|e| format!("fixture repository {}: {e}", repo.display()))?;
    let dir = root.join("target/cicd");
    let work = dir.join("work");
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let python = ensure_venv(&dir.join("venv"))?;

    let mut build = cargo();
    build.args(["build", "-p", "fabrik-emulator", "--bin", "fabrik-emulator"]);
    step("build fabrik-emulator", build)?;
    let (_emulator, url) = start_emulator(&root.join("target/debug/fabrik-emulator"))?;

    let driver = dir.join("cicd_check.py");
    std::fs::write(&driver, DRIVER).map_err(|e| format!("{}: {e}", driver.display()))?;
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
