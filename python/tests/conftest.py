"""Fixtures for the fabrik_cicd tests (run by `cargo xtask pytest`, which builds the wheel,
installs it with fabric-cicd 1.4.0 and pytest into target/py/test-venv, and sets):

- FABRIK_EMULATOR_BIN: the fabrik-emulator binary, started once per session;
- FABRIK_CICD_DRIVERS: the directory holding xtask's cicd_common.py and cicd_crosscheck.py,
  whose snapshot and comparison these tests reuse;
- FABRIK_WHEEL: the wheel, for the fresh-virtualenv test.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FIXTURE = (HERE / "../../../shared/fixtures/git-format-repo").resolve()


def _need(var):
    value = os.environ.get(var)
    if not value:
        pytest.exit(f"{var} is not set: run the tests with `cargo xtask pytest`", returncode=2)
    return value


@pytest.fixture(scope="session")
def drivers():
    """cicd_common and cicd_crosscheck from xtask (the cross-check's snapshot and comparison)."""
    path = Path(_need("FABRIK_CICD_DRIVERS"))
    sys.path.insert(0, str(path))
    import cicd_common

    # cicd_crosscheck reads its command line when imported; give it the fixture's.
    saved = sys.argv
    sys.argv = ["cicd_crosscheck.py", "http://unused", str(FIXTURE), "fabrik", "/tmp", "/tmp/unused"]
    try:
        spec = importlib.util.spec_from_file_location("cicd_crosscheck", path / "cicd_crosscheck.py")
        crosscheck = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(crosscheck)
    finally:
        sys.argv = saved
    return cicd_common, crosscheck


@pytest.fixture(scope="session")
def emulator():
    """The emulator's base URL (any token accepted, one capacity as the fixture needs)."""
    binary = _need("FABRIK_EMULATOR_BIN")
    proc = subprocess.Popen(
        [binary, "--port", "0", "--accept-any-token", "--capacity-pool", "ProdCapacityPool"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    line = proc.stdout.readline().strip()
    assert line.startswith("listening on "), line
    yield line.removeprefix("listening on ").rstrip("/")
    proc.kill()
    proc.wait()


@pytest.fixture()
def api(emulator, drivers):
    cicd_common, _ = drivers
    return cicd_common.Api(emulator)


class Tools:
    """Runs one script through fabric-cicd and through fabrik_cicd (only its imports
    changed), and compares what each left in its workspace."""

    def __init__(self, url, api, drivers, tmp_path):
        self.url, self.api, self.tmp = url, api, tmp_path
        self.common, self.crosscheck = drivers
        self.capacity = api.capacity()
        self.count = 0

    def workspace(self, name, env="test"):
        self.count += 1
        return self.api.new_workspace(f"{name}-{self.count}", self.capacity, env == "test")

    def run(self, module, script, *args, expect_ok=True):
        """Runs `script` (written for fabric_cicd) with `module` as the package imported."""
        text = textwrap.dedent(script)
        if module == "fabrik_cicd":
            text = text.replace("fabric_cicd", "fabrik_cicd")
        self.count += 1
        path = self.tmp / f"script-{self.count}-{module}.py"
        path.write_text(text)
        env = dict(os.environ, NO_COLOR="1", FABRIC_CICD_RETRY_DELAY_OVERRIDE_SECONDS="0.1",
                   PYTHONPATH=str(Path(os.environ["FABRIK_CICD_DRIVERS"])))
        env.pop("FABRIC_TOKEN", None)
        p = subprocess.run([sys.executable, str(path), self.url, *map(str, args)], env=env,
                           capture_output=True, text=True, cwd=self.tmp, timeout=300)
        if expect_ok:
            assert p.returncode == 0, f"{module} script failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
        return p

    def snapshot(self, ws):
        return self.crosscheck.snapshot(self.api, ws)

    def compare(self, env, ws_cicd, ws_fabrik):
        """The differences between the two workspaces that the cross-check does not expect."""
        diffs = self.crosscheck.differences(env, self.snapshot(ws_cicd), self.snapshot(ws_fabrik))
        return [d for d in diffs if self.crosscheck.allowed(d) is None]

    def both(self, script, env, *args, repo=FIXTURE, name="ws"):
        """Runs `script URL WORKSPACE REPO ENV ARGS...` with each tool into its own workspace;
        returns the two workspace ids after asserting they ended the same."""
        ws_cicd = self.workspace(f"{name}-cicd", env)
        ws_fabrik = self.workspace(f"{name}-fabrik", env)
        self.run("fabric_cicd", script, ws_cicd, repo, env, *args)
        self.run("fabrik_cicd", script, ws_fabrik, repo, env, *args)
        unexpected = self.compare(env, ws_cicd, ws_fabrik)
        assert not unexpected, json.dumps(unexpected, indent=1, default=repr)[:4000]
        return ws_cicd, ws_fabrik

    def items(self, ws):
        return sorted(f"{i['displayName']}.{i['type']}" for i in self.api.list(f"/workspaces/{ws}/items"))


@pytest.fixture()
def tools(emulator, api, drivers, tmp_path):
    return Tools(emulator, api, drivers, tmp_path)


@pytest.fixture()
def repo_copy(tmp_path):
    """A writable copy of the shared fixture repository."""
    dst = tmp_path / "repo"
    shutil.copytree(FIXTURE, dst)
    return dst
