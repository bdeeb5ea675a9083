"""What fabrik_cicd does beyond fabric-cicd's API, and how it fails: tokens that expire
mid-run, plan as data, run ids, rollback, errors that carry fabrik's message and run id."""

import subprocess
import sys
import textwrap
import threading
import time

import pytest
import requests

import fabrik_cicd
from fabrik_cicd import FabricWorkspace, constants, plan, publish_all_items, rollback
from fabrik_cicd._common._exceptions import BaseCustomError, InputError

from conftest import FIXTURE

PRINCIPAL = "0f0f0f0f-1111-4222-8333-444444444444"


class ShortLivedCredential:
    """An azure-identity-like credential whose tokens the emulator itself issues with a short
    lifetime: a token used after it expires gets 401 TokenExpired."""

    def __init__(self, url, lifetime):
        self.url, self.lifetime = url, lifetime
        self.calls = []
        self.lock = threading.Lock()

    def get_token(self, *scopes, **kwargs):
        r = requests.post(f"{self.url}/_emulator/token",
                          json={"principalId": PRINCIPAL, "lifetimeSeconds": self.lifetime})
        r.raise_for_status()
        with self.lock:
            self.calls.append((time.time(), scopes))

        class Token:
            token = r.json()["accessToken"]
            expires_on = int(time.time()) + self.lifetime

        return Token()


class StaticCredential:
    def get_token(self, *scopes, **kwargs):
        class Token:
            token = "pytest-token"
            expires_on = int(time.time()) + 3600

        return Token()


@pytest.fixture()
def pointed(emulator):
    """fabrik_cicd's constants pointed at the emulator (as a script would), restored after."""
    saved = (constants.DEFAULT_API_ROOT_URL, constants.FABRIC_API_ROOT_URL, set(constants.FEATURE_FLAG))
    constants.DEFAULT_API_ROOT_URL = emulator
    constants.FABRIC_API_ROOT_URL = emulator
    yield emulator
    constants.DEFAULT_API_ROOT_URL, constants.FABRIC_API_ROOT_URL = saved[:2]
    constants.FEATURE_FLAG.clear()
    constants.FEATURE_FLAG.update(saved[2])


def test_a_token_that_expires_mid_run_is_replaced_by_asking_the_credential_again(tools, api, pointed, tmp_path):
    """Tokens live 2 s; every request is slowed so the publish takes several token lifetimes.
    fabrik asks the parent for a new token over its pipe before each expires (and would after
    a 401), so the publish succeeds; FABRIC_TOKEN is never set."""
    ws = tools.workspace("token-expiry")
    credential = ShortLivedCredential(pointed, lifetime=2)
    workspace = FabricWorkspace(workspace_id=ws, repository_directory=str(FIXTURE), environment="test",
                                token_credential=credential, state_dir=str(tmp_path / "runs"))
    requests.put(f"{pointed}/_emulator/faults", json={"spec": "latency=400ms"}).raise_for_status()
    try:
        started = time.time()
        publish_all_items(workspace)
        elapsed = time.time() - started
    finally:
        requests.put(f"{pointed}/_emulator/faults", json={"spec": ""}).raise_for_status()
    assert elapsed > 2 * credential.lifetime, f"the run took {elapsed:.1f}s: too short to test expiry"
    assert len(credential.calls) >= 2, credential.calls
    assert all(s == ("https://api.fabric.microsoft.com/.default",) for _, s in credential.calls)
    assert workspace.last_run_id
    assert len(tools.items(ws)) >= 10


def test_plan_is_data_and_each_publish_has_a_run_id_that_rollback_undoes(tools, pointed, tmp_path):
    ws = tools.workspace("plan-rollback")
    runs = str(tmp_path / "runs")
    workspace = FabricWorkspace(workspace_id=ws, repository_directory=str(FIXTURE), environment="test",
                                item_type_in_scope=["Notebook", "VariableLibrary", "Lakehouse", "Environment"],
                                token_credential=StaticCredential(), state_dir=runs)
    before = plan(workspace)
    assert isinstance(before, dict)
    assert sum(len(w["changes"]) for w in before["workspaces"]) >= 6, before
    text = str(before)
    assert "Ingest" in text and "Utils" in text, text[:2000]
    assert tools.items(ws) == [], "plan changed nothing"

    publish_all_items(workspace)
    first = workspace.last_run_id
    assert first and workspace.run_ids == [first]
    assert "Ingest.Notebook" in tools.items(ws)
    assert workspace.last_report["result"]["run_id"] == first

    # Nothing left to do: the plan is empty, a second publish applies nothing and records no run.
    again = plan(workspace)
    assert sum(len(w["changes"]) for w in again["workspaces"]) == 0, again
    publish_all_items(workspace)
    assert workspace.run_ids == [first]

    # fabrik rolls back failed or interrupted runs (a failed publish rolls itself back); a
    # committed one is refused, with fabrik's message.
    with pytest.raises(BaseCustomError) as e:
        rollback(first, StaticCredential(), state_dir=runs)
    assert "committed" in str(e.value), str(e.value)
    assert "Ingest.Notebook" in tools.items(ws)


def test_an_invalid_parameter_file_raises_input_error_with_file_and_line(pointed, tools, repo_copy, tmp_path):
    (repo_copy / "parameter.yml").write_text("find_replace:\n  - find_value: 1\n    replace_value: [oops\n")
    ws = tools.workspace("bad-parameter")
    workspace = FabricWorkspace(workspace_id=ws, repository_directory=str(repo_copy), environment="test",
                                token_credential=StaticCredential(), state_dir=str(tmp_path / "runs"))
    with pytest.raises(InputError) as e:
        publish_all_items(workspace)
    assert "parameter.yml:" in str(e.value), str(e.value)
    assert e.value.exit_code == 4
    assert e.value.run_id is None
    assert tools.items(ws) == []


def test_a_failed_publish_raises_with_fabriks_message_and_run_id_printed_once(tools, emulator, pointed, tmp_path):
    """A write the service refuses mid-run: the script's exception is a fabric-cicd type with
    fabrik's message and the run id, and fabrik's message appears once in all the output."""
    ws = tools.workspace("failing")
    requests.put(f"{emulator}/_emulator/faults",
                 json={"spec": "POST /v1/workspaces/*/notebooks#1=400,POST /v1/workspaces/*/items#3=400"}).raise_for_status()
    script = tmp_path / "failing.py"
    script.write_text(textwrap.dedent(f"""
        import time
        from fabrik_cicd import FabricWorkspace, constants, publish_all_items
        from fabrik_cicd._common._exceptions import BaseCustomError

        class Credential:
            def get_token(self, *scopes, **kwargs):
                class T:
                    token = "pytest-token"
                    expires_on = int(time.time()) + 3600
                return T()

        constants.DEFAULT_API_ROOT_URL = {emulator!r}
        ws = FabricWorkspace(workspace_id={ws!r}, repository_directory={str(FIXTURE)!r},
                             environment="test", token_credential=Credential(),
                             state_dir={str(tmp_path / "runs")!r})
        try:
            publish_all_items(ws)
        except BaseCustomError as e:
            print("RUN_ID", e.run_id)
            print("TYPE", type(e).__name__)
            print("MESSAGE", str(e))
            raise SystemExit(1)
        print("NO ERROR")
    """))
    try:
        p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    finally:
        requests.put(f"{emulator}/_emulator/faults", json={"spec": ""}).raise_for_status()
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    run_id = next(l.split(" ", 1)[1] for l in p.stdout.splitlines() if l.startswith("RUN_ID"))
    assert run_id and run_id != "None", out
    assert "TYPE PublishError" in p.stdout or "TYPE FailedPublishedItemStatusError" in p.stdout, out
    # fabrik's own error line, once in everything the script printed.
    message = next(l for l in p.stdout.splitlines() if l.startswith("MESSAGE"))
    assert "400" in out or "InvalidInput" in out or "refused" in out, out
    first_error = message.split("MESSAGE ", 1)[1].splitlines()[0]
    assert out.count(first_error) == 1, out
    # The failed run rolled itself back; rollback(run_id) is safe to repeat.
    assert "Ingest.Notebook" not in tools.items(ws)
    rollback(run_id, StaticCredential(), state_dir=str(tmp_path / "runs"))


def test_the_binary_is_found_and_reports_its_version():
    assert fabrik_cicd.binary().endswith("fabrik")
    assert fabrik_cicd.fabrik_version().startswith("fabrik ")
