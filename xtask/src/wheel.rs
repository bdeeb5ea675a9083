//! `cargo xtask wheel [--dev]`: the Python wheel `fabrik-deploy` (python/pyproject.toml): the
//! `fabrik` binary (maturin `bindings = "bin"`, so `pip install` puts it on PATH) and the
//! pure-Python package `fabrik_cicd` (fabric-cicd 1.4.0's API run by the binary), built into
//! `target/wheels/` with `target/wheels/SHA256SUMS` listing every wheel there. Its name,
//! version, license, authors and repository come from Cargo.toml (docs/PYTHON.md).
//! `--dev` builds with the dev profile into `target/wheels/dev/` (what the tests install).
//!
//! `cargo xtask pytest`: the dev wheel and fabrik-emulator, then pytest (python/tests) in a
//! virtualenv holding fabric-cicd 1.4.0, pytest and the wheel: fabric-cicd's usage patterns
//! through both packages compared against the emulator, fabrik_cicd's additions, and the
//! wheel installed into a fresh virtualenv without Rust on PATH.
//!
//! maturin comes from PyPI into `target/py/venv`, the test virtualenv is `target/py/test-venv`;
//! both are created on first use by these tasks, never assumed installed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{cargo, root, step};

const MATURIN: &str = "maturin==1.16.0";
const FABRIC_CICD: &str = "fabric-cicd==1.4.0";
const PYTEST: &str = "pytest==8.3.5";
/// The distribution name in pyproject.toml, as wheel file names spell it.
const WHEEL_PREFIX: &str = "fabrik_deploy-";

/// Where cargo (and so maturin) builds: `CARGO_TARGET_DIR`, else `target/`.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

fn venv_bin(venv: &Path, tool: &str) -> PathBuf {
    venv.join("bin").join(tool)
}

/// Creates the virtualenv `venv` unless it exists, and pip-installs `packages` when `present`
/// (a Python expression) is false in it. Returns its python.
fn ensure_venv(venv: &Path, present: &str, packages: &[&str]) -> Result<PathBuf, String> {
    let python = venv_bin(venv, "python");
    if !python.exists() {
        let mut c = Command::new("python3");
        c.args(["-m", "venv"]).arg(venv);
        step(&format!("python3 -m venv {}", venv.display()), c)?;
    }
    let ok = Command::new(&python)
        .args([
            "-c",
            &format!("import sys; sys.exit(0 if ({present}) else 1)"),
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let mut c = Command::new(&python);
        c.args(["-m", "pip", "install", "--quiet"]).args(packages);
        step(&format!("pip install {}", packages.join(" ")), c)?;
    }
    Ok(python)
}

fn has_version(dist: &str, version: &str) -> String {
    format!("__import__('importlib.metadata').metadata.version('{dist}') == '{version}'")
}

/// Builds the wheel into `out` (release profile unless `dev`), removing earlier wheels there
/// first, and returns its path.
pub(crate) fn build(dev: bool, out: &Path) -> Result<PathBuf, String> {
    let root = root();
    let python = ensure_venv(
        &root.join("target/py/venv"),
        &has_version("maturin", "1.16.0"),
        &[MATURIN],
    )?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    for old in wheels_in(out)? {
        std::fs::remove_file(&old).map_err(|e| format!("{}: {e}", old.display()))?;
    }
    let maturin = python.with_file_name("maturin");
    let mut c = Command::new(maturin);
    c.current_dir(root.join("python"))
        .args(["build", "--locked", "--out"])
        .arg(out)
        .env("CARGO_TARGET_DIR", target_dir());
    if dev {
        c.args(["--profile", "dev"]);
    } else {
        c.arg("--release");
    }
    step("maturin build (python/pyproject.toml)", c)?;
    match wheels_in(out)?.as_slice() {
        [one] => Ok(one.clone()),
        other => Err(format!(
            "expected one {WHEEL_PREFIX}*.whl in {}, found {}",
            out.display(),
            other.len()
        )),
    }
}

/// The `fabrik-deploy` wheels in `dir`, sorted.
fn wheels_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(WHEEL_PREFIX) && n.ends_with(".whl"))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// `SHA256SUMS` in the format `sha256sum -c` reads: `HEX  NAME` per line, sorted by name.
pub(crate) fn checksums_text(entries: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted
        .iter()
        .map(|(name, hex)| format!("{hex}  {name}\n"))
        .collect()
}

/// SHA-256 of `file`, by the maturin virtualenv's Python (hashlib; xtask has no hash crate).
fn sha256(python: &Path, file: &Path) -> Result<String, String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())",
        ])
        .arg(file)
        .output()
        .map_err(|e| format!("sha256 of {}: {e}", file.display()))?;
    let hex = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || hex.len() != 64 {
        return Err(format!("sha256 of {} failed", file.display()));
    }
    Ok(hex)
}

/// Writes `dir/SHA256SUMS` for every wheel in `dir`.
fn write_checksums(dir: &Path) -> Result<PathBuf, String> {
    let python = venv_bin(&root().join("target/py/venv"), "python");
    let mut entries = Vec::new();
    for w in wheels_in(dir)? {
        let name = w
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        entries.push((name, sha256(&python, &w)?));
    }
    let path = dir.join("SHA256SUMS");
    std::fs::write(&path, checksums_text(&entries))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// The task `cargo xtask wheel [--dev]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let dev = match args {
        [] => false,
        [flag] if flag == "--dev" => true,
        _ => return Err("usage: cargo xtask wheel [--dev]".into()),
    };
    let out = root().join(if dev {
        "target/wheels/dev"
    } else {
        "target/wheels"
    });
    let wheel = build(dev, &out)?;
    let sums = write_checksums(&out)?;
    println!("wheel: {}", wheel.display());
    println!("checksums: {}", sums.display());
    Ok(())
}

/// The task `cargo xtask pytest`.
pub(crate) fn pytest(args: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let root = root();
    let wheel = build(true, &root.join("target/wheels/dev"))?;
    let mut emulator = cargo();
    // With fabrik-cli selected too, features unify as in the wheel's build: nothing rebuilds.
    emulator.args([
        "build",
        "-p",
        "fabrik-cli",
        "-p",
        "fabrik-emulator",
        "--bin",
        "fabrik-emulator",
    ]);
    step("build fabrik-emulator", emulator)?;
    let python = ensure_venv(
        &root.join("target/py/test-venv"),
        &format!(
            "{} and {}",
            has_version("fabric-cicd", "1.4.0"),
            has_version("pytest", "8.3.5")
        ),
        &[FABRIC_CICD, PYTEST],
    )?;
    let mut install = Command::new(&python);
    install
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--force-reinstall",
            "--no-deps",
        ])
        .arg(&wheel);
    step("pip install the wheel into target/py/test-venv", install)?;
    let drivers = root.join("target/py/drivers");
    std::fs::create_dir_all(&drivers).map_err(|e| format!("{}: {e}", drivers.display()))?;
    crate::cicd::write_drivers(&drivers)?;
    let mut t = Command::new(&python);
    t.current_dir(root.join("python"))
        .args(["-m", "pytest", "tests", "-p", "no:cacheprovider"])
        .args(args)
        .env(
            "FABRIK_EMULATOR_BIN",
            target_dir().join("debug/fabrik-emulator"),
        )
        .env("FABRIK_CICD_DRIVERS", &drivers)
        .env("FABRIK_WHEEL", &wheel)
        .env_remove("FABRIK_BIN")
        .env_remove("FABRIC_TOKEN");
    println!("==> pytest python/tests");
    let status = t.status().map_err(|e| format!("cannot run pytest: {e}"))?;
    pytest_outcome(status.code())?;
    println!(
        "<== pytest: ok in {:.1}s (wheel, emulator and tests)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// pytest's exit code as the task's result: only 0 passes; 5 ("no tests collected") is a
/// failure, so a suite that stopped finding its tests cannot pass silently.
pub(crate) fn pytest_outcome(code: Option<i32>) -> Result<(), String> {
    match code {
        Some(0) => Ok(()),
        Some(5) => Err("pytest collected no tests (exit 5): the suite must not be empty".into()),
        Some(1) => Err("pytest: some tests failed (above)".into()),
        Some(c) => Err(format!("pytest stopped with exit code {c} (above)")),
        None => Err("pytest was killed by a signal".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_sorted_in_sha256sum_format() {
        let text = checksums_text(&[
            ("b.whl".into(), "2".repeat(64)),
            ("a.whl".into(), "1".repeat(64)),
        ]);
        assert_eq!(
            text,
            format!("{}  a.whl\n{}  b.whl\n", "1".repeat(64), "2".repeat(64))
        );
    }

    #[test]
    fn only_a_zero_exit_of_pytest_passes_and_no_tests_is_a_failure() {
        assert!(pytest_outcome(Some(0)).is_ok());
        let empty = pytest_outcome(Some(5)).unwrap_err();
        assert!(empty.contains("no tests"), "{empty}");
        assert!(pytest_outcome(Some(1)).is_err());
        assert!(pytest_outcome(Some(2)).is_err());
        assert!(pytest_outcome(None).is_err());
    }

    #[test]
    fn the_pyproject_builds_the_fabrik_binary_with_the_workspace_metadata() {
        let root = root();
        let py: toml::Table = std::fs::read_to_string(root.join("python/pyproject.toml"))
            .unwrap()
            .parse()
            .unwrap();
        let maturin = &py["tool"]["maturin"];
        assert_eq!(maturin["bindings"].as_str(), Some("bin"));
        assert_eq!(maturin["module-name"].as_str(), Some("fabrik_cicd"));
        let manifest = root
            .join("python")
            .join(maturin["manifest-path"].as_str().unwrap());
        let cli: toml::Table = std::fs::read_to_string(&manifest).unwrap().parse().unwrap();
        assert_eq!(cli["package"]["name"].as_str(), Some("fabrik-cli"));
        assert_eq!(cli["bin"][0]["name"].as_str(), Some("fabrik"));
        // Version, license and repository are not restated: maturin takes them from Cargo.toml.
        let project = &py["project"];
        assert_eq!(
            project["name"].as_str().map(|n| n.replace('-', "_") + "-"),
            Some(WHEEL_PREFIX.to_string())
        );
        let dynamic: Vec<&str> = project["dynamic"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        for field in ["version", "license", "urls"] {
            assert!(dynamic.contains(&field), "{field} is not dynamic");
            assert!(project.get(field).is_none(), "{field} is restated");
        }
        assert!(root.join("python/src/fabrik_cicd/__init__.py").is_file());
    }
}
