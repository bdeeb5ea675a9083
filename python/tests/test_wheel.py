"""The wheel installs into a fresh virtualenv on a PATH without any Rust toolchain, and the
`fabrik` binary it puts on PATH runs (no compiler is involved at install time)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def test_the_wheel_installs_and_runs_without_a_rust_toolchain(tmp_path):
    wheel = os.environ.get("FABRIK_WHEEL")
    if not wheel:
        pytest.fail("FABRIK_WHEEL is not set: run the tests with `cargo xtask pytest`")
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    # Only the virtualenv and the system's own directories: no ~/.cargo/bin, no rustup.
    path = os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"])
    for tool in ("cargo", "rustc", "rustup"):
        assert shutil.which(tool, path=path) is None, f"{tool} is on the test PATH"
    env = {"PATH": path, "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    install = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--no-index", "--no-deps", "--quiet", wheel],
        env=env, capture_output=True, text=True,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert shutil.which("fabrik", path=path) == str(bin_dir / "fabrik")
    version = subprocess.run(["fabrik", "--version"], env=env, capture_output=True, text=True)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("fabrik "), version.stdout
    found = subprocess.run(
        [str(bin_dir / "python"), "-c", "import fabrik_cicd; print(fabrik_cicd.binary()); print(fabrik_cicd.fabrik_version())"],
        env=env, capture_output=True, text=True, cwd=tmp_path,
    )
    assert found.returncode == 0, found.stderr
    where, said = found.stdout.splitlines()
    assert Path(where) == bin_dir / "fabrik"
    assert said == version.stdout.strip()
