"""fabrik_cicd's helpers, without the emulator: how fabrik's output is read and how the API
root becomes --base-url."""

import pytest

from fabrik_cicd import _runner, constants
from fabrik_cicd._exceptions import FailedPublishedItemStatusError, InputError, PublishError


def test_every_json_document_in_the_output_is_read():
    text = 'no changes\n{\n "a": 1\n}\n[1, 2]\n{"b": {"c": []}}\n'
    assert _runner.json_documents(text) == [{"a": 1}, [1, 2], {"b": {"c": []}}]
    assert _runner.json_documents("nothing here") == []


def test_stderr_splits_into_warnings_errors_and_log_lines():
    stderr = (
        "warning: --cicd-feature: fabric-cicd feature `enable_bulk_publish` is not applied\n"
        "2026-12-07T15:02:10.019771Z  WARN fabrik_txn::txn: rolling back run_id=x\n"
        "error: /repo/parameter.yml:4:1: YAML syntax error\n"
        "  |\n"
        "4 | \n"
        "1 problem(s) found; nothing was published\n"
    )
    warnings, errors, logs = _runner._split_stderr(stderr)
    assert warnings.startswith("warning: --cicd-feature") and "\n" not in warnings
    assert logs.startswith("2026-12-07T") and "rolling back" in logs
    assert errors.startswith("error: /repo/parameter.yml:4:1:")
    assert "nothing was published" in errors and "rolling back" not in errors


def _result(code, stderr="", report=None):
    return _runner.Result(["fabrik"], code, "", stderr, report)


def test_exit_codes_become_fabric_cicd_exception_types_with_the_run_id():
    _runner.check(_result(0), "publish")
    with pytest.raises(InputError) as e:
        _runner.check(_result(4, "error: config.yml:3:5: bad\n"), "publish")
    assert "config.yml:3:5" in str(e.value) and e.value.run_id is None
    report = {"result": {"run_id": "R1", "errors": ["publishing notebook X: HTTP 400"],
                         "rolled_back": ["a", "b"]}}
    with pytest.raises(PublishError) as e:
        _runner.check(_result(1, "", report), "publish_all_items")
    assert e.value.run_id == "R1"
    assert "HTTP 400" in str(e.value) and "rolled back 2 change(s)" in str(e.value)
    assert "R1" in str(e.value)
    with pytest.raises(FailedPublishedItemStatusError) as e:
        _runner.check(_result(3, "error: the environment is locked by run R0\n"), "publish")
    assert "locked" in str(e.value) and e.value.exit_code == 3


def test_the_api_root_becomes_base_url_only_when_changed(monkeypatch):
    monkeypatch.setattr(constants, "DEFAULT_API_ROOT_URL", "https://api.powerbi.com")
    monkeypatch.setattr(constants, "FABRIC_API_ROOT_URL", "https://api.fabric.microsoft.com")
    assert constants.base_url() is None
    monkeypatch.setattr(constants, "DEFAULT_API_ROOT_URL", "http://127.0.0.1:9/")
    assert constants.base_url() == "http://127.0.0.1:9/v1"
    monkeypatch.setattr(constants, "FABRIC_API_ROOT_URL", "http://127.0.0.1:8")
    assert constants.base_url() == "http://127.0.0.1:8/v1"
