"""fabric-cicd 1.4.0's entry points, each run by the ``fabrik`` binary, and what fabrik adds:
``plan`` and ``rollback``.

Each publish writes the workspace's settings and the call's arguments as a fabric-cicd
``config.yml`` (JSON, which YAML reads) to a temporary file and runs ``fabrik publish
--cicd-config FILE --env ENV``, so the binary reads every option the way
``deploy_with_config`` would.
"""

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Optional

from fabrik_cicd import _runner, constants
from fabrik_cicd._deployment_result import DeploymentResult, DeploymentStatus
from fabrik_cicd._exceptions import ConfigValidationError, InputError
from fabrik_cicd.fabric_workspace import FabricWorkspace

logger = logging.getLogger("fabrik_cicd")

# fabric-cicd arguments that need their experimental flag, and the flag.
_EXPERIMENTAL = {
    "items_to_include": "enable_items_to_include",
    "folder_path_exclude_regex": "enable_exclude_folder",
    "folder_path_to_include": "enable_include_folder",
    "shortcut_exclude_regex": "enable_shortcut_exclude",
}


def _require_flags(name, value):
    if value is None:
        return
    flag = _EXPERIMENTAL[name]
    if "enable_experimental_features" not in constants.FEATURE_FLAG or flag not in constants.FEATURE_FLAG:
        raise InputError(f"Feature flags 'enable_experimental_features' and '{flag}' must be set.", logger)


def _check_workspace(ws):
    if not isinstance(ws, FabricWorkspace):
        raise InputError("fabric_workspace_obj must be a fabrik_cicd FabricWorkspace.", logger)
    return ws


def _drop_empty(d):
    return {k: v for k, v in d.items() if v not in (None, "", [], {})}


def _features():
    return sorted(constants.FEATURE_FLAG)


def _run_config(config, environment, credential, *, plan_only=False, state_dir=None):
    """Runs ``fabrik publish`` on ``config`` (a dict in config.yml's shape)."""
    config = dict(config)
    features = config.pop("features", None) or _features()
    if features:
        config["features"] = features
    fd, path = tempfile.mkstemp(prefix="fabrik-cicd-config-", suffix=".yml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2)
        return _run_file(path, environment, credential, plan_only=plan_only, state_dir=state_dir)
    finally:
        os.unlink(path)


def _run_file(path, environment, credential, *, plan_only=False, state_dir=None, features=()):
    args = ["publish", "--cicd-config", str(path), "--env", environment, "--output", "json"]
    for f in features:
        args += ["--cicd-feature", f]
    if state_dir:
        args += ["--state-dir", str(state_dir)]
    if plan_only:
        args.append("--plan")
    return _runner.run(args, credential, report=not plan_only)


def _record(ws, result, what):
    """Raises on failure; on success logs one line and remembers the run id."""
    _runner.check(result, what)
    report = result.report
    if ws is not None:
        ws.last_report = report
    run_id = result.run_id
    if run_id:
        if ws is not None:
            ws.run_ids.append(run_id)
        applied = len((report.get("result") or {}).get("applied") or [])
        logger.info(f"{what}: {applied} change(s) applied (fabrik run id {run_id})")
    else:
        logger.info(f"{what}: no changes")
    return run_id


def _publish_section(ws, item_name_exclude_regex, folder_path_exclude_regex, folder_path_to_include,
                     items_to_include, shortcut_exclude_regex):
    if folder_path_exclude_regex is not None and folder_path_to_include is not None:
        msg = "Cannot use both 'folder_path_exclude_regex' and 'folder_path_to_include' simultaneously. Choose one filtering strategy."
        raise InputError(msg, logger)
    for name, value in (("items_to_include", items_to_include),
                        ("folder_path_exclude_regex", folder_path_exclude_regex),
                        ("folder_path_to_include", folder_path_to_include),
                        ("shortcut_exclude_regex", shortcut_exclude_regex)):
        _require_flags(name, value)
    if item_name_exclude_regex:
        logger.warning("Using item_name_exclude_regex is risky as it can prevent needed dependencies from being deployed.  Use at your own risk.")
    return _drop_empty({
        "exclude_regex": item_name_exclude_regex,
        "folder_exclude_regex": folder_path_exclude_regex,
        "folder_path_to_include": folder_path_to_include,
        "items_to_include": items_to_include,
        "shortcut_exclude_regex": shortcut_exclude_regex,
    })


def publish_all_items(
    fabric_workspace_obj: FabricWorkspace,
    item_name_exclude_regex: Optional[str] = None,
    folder_path_exclude_regex: Optional[str] = None,
    folder_path_to_include: Optional[list] = None,
    items_to_include: Optional[list] = None,
    shortcut_exclude_regex: Optional[str] = None,
) -> Optional[dict]:
    """Publishes the repository's items of the workspace's types (``fabrik publish``).

    Returns None, as fabric-cicd does without ``enable_response_collection`` (fabrik collects
    no API responses). The run id is ``fabric_workspace_obj.last_run_id``.
    """
    ws = _check_workspace(fabric_workspace_obj)
    section = _publish_section(ws, item_name_exclude_regex, folder_path_exclude_regex,
                               folder_path_to_include, items_to_include, shortcut_exclude_regex)
    if "enable_response_collection" in constants.FEATURE_FLAG:
        logger.warning("enable_response_collection: fabrik collects no API responses; None is returned")
    ws._publish_filters = section
    config = {"core": ws._core(), "publish": section, "unpublish": {"skip": True}}
    result = _run_config(config, ws.environment, ws.token_credential, state_dir=ws.state_dir)
    _record(ws, result, "publish_all_items")
    return None


def unpublish_all_orphan_items(
    fabric_workspace_obj: FabricWorkspace,
    item_name_exclude_regex: str = "^$",
    items_to_include: Optional[list] = None,
) -> Optional[dict]:
    """Deletes deployed items of the workspace's types that the repository no longer holds,
    except those whose name matches ``item_name_exclude_regex`` (``fabrik publish --unpublish``).

    fabrik unpublishes as part of a publish: the repository's items are brought up to date in
    the same run (with the filters of the last ``publish_all_items`` on this object), which
    writes nothing when that publish just ran.
    """
    ws = _check_workspace(fabric_workspace_obj)
    _require_flags("items_to_include", items_to_include)
    unpublish = _drop_empty({
        # fabric-cicd ignores the regex when a list is given.
        "exclude_regex": None if items_to_include is not None or item_name_exclude_regex == "^$" else item_name_exclude_regex,
        "items_to_include": items_to_include,
    })
    unpublish["skip"] = False
    config = {"core": ws._core(), "publish": dict(ws._publish_filters), "unpublish": unpublish}
    result = _run_config(config, ws.environment, ws.token_credential, state_dir=ws.state_dir)
    _record(ws, result, "unpublish_all_orphan_items")
    return None


def plan(fabric_workspace_obj: FabricWorkspace, unpublish: bool = False, **publish_filters) -> dict:
    """fabrik's plan for publishing the workspace, as data (``fabrik publish --plan --output
    json``): nothing is changed. ``publish_filters`` are ``publish_all_items``'s arguments;
    ``unpublish=True`` plans the orphans' deletion too."""
    ws = _check_workspace(fabric_workspace_obj)
    section = _publish_section(ws, publish_filters.get("item_name_exclude_regex"),
                               publish_filters.get("folder_path_exclude_regex"),
                               publish_filters.get("folder_path_to_include"),
                               publish_filters.get("items_to_include"),
                               publish_filters.get("shortcut_exclude_regex"))
    config = {"core": ws._core(), "publish": section, "unpublish": {"skip": not unpublish}}
    result = _run_config(config, ws.environment, ws.token_credential, plan_only=True, state_dir=ws.state_dir)
    _runner.check(result, "plan")
    docs = _runner.json_documents(result.stdout)
    if not docs:
        raise InputError(f"fabrik printed no plan:\n{result.stdout}", logger)
    return docs[0]


def rollback(run_id: str, token_credential=None, state_dir: Optional[str] = None) -> None:
    """Undoes what the publish with ``run_id`` changed (``fabrik rollback RUN_ID``), from the
    run's journal in ``state_dir`` (default: fabrik's, ``.fabrik/runs``)."""
    args = ["rollback", run_id]
    if state_dir:
        args += ["--state-dir", str(state_dir)]
    result = _runner.run(args, token_credential)
    _runner.check(result, f"rollback {run_id}")
    out = result.stdout.strip()
    if out:
        logger.info(out)


def _load_with_override(config_file_path, config_override):
    """The config.yml with fabric-cicd's override rules applied, its relative paths made
    absolute (they are relative to the file)."""
    try:
        import yaml
    except ImportError as e:  # pragma: no cover - fabric-cicd users have PyYAML
        raise ConfigValidationError("config_override needs PyYAML (pip install 'fabrik-deploy[yaml]')", logger) from e
    path = Path(config_file_path)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigValidationError(f"{config_file_path}: {e}", logger) from e
    for section, value in config_override.items():
        if section in ("features", "constants"):
            config[section] = value
            continue
        if section not in ("core", "publish", "unpublish") or not isinstance(value, dict):
            raise ConfigValidationError(f"config_override: unsupported section '{section}'", logger)
        target = config.setdefault(section, {})
        for key, v in value.items():
            if isinstance(v, dict) and isinstance(target.get(key), dict):
                target[key].update(v)
            else:
                target[key] = v
    base = path.resolve().parent
    core = config.get("core") or {}
    for key in ("repository_directory", "parameter"):
        v = core.get(key)
        if isinstance(v, str):
            core[key] = str((base / v).resolve())
        elif isinstance(v, dict):
            core[key] = {e: str((base / p).resolve()) if isinstance(p, str) else p for e, p in v.items()}
    return config


def deploy_with_config(
    config_file_path: str,
    *,
    token_credential,
    environment: str = "N/A",
    config_override: Optional[dict] = None,
    **kwargs,
) -> DeploymentResult:
    """Publishes and unpublishes as ``config_file_path`` (fabric-cicd's config.yml) says for
    ``environment``, in one ``fabrik publish --cicd-config`` run. The result's ``run_id`` is
    fabrik's; on failure the exception carries ``deployment_result`` as fabric-cicd's does."""
    run_id = None
    try:
        if token_credential is None or not callable(getattr(token_credential, "get_token", None)):
            raise InputError("token_credential is required: an object with get_token(scope)", logger)
        if not Path(config_file_path).is_file():
            raise ConfigValidationError(f"Configuration file not found: {config_file_path}", logger)
        if config_override:
            config = _load_with_override(config_file_path, config_override)
            extra = [f for f in _features() if f not in (config.get("features") or [])]
            if extra:
                config["features"] = list(config.get("features") or []) + extra
            result = _run_config(config, environment, token_credential, state_dir=kwargs.get("state_dir"))
        else:
            result = _run_file(config_file_path, environment, token_credential,
                               state_dir=kwargs.get("state_dir"), features=_features())
        run_id = _record(None, result, "deploy_with_config")
    except Exception as e:
        e.deployment_result = DeploymentResult(status=DeploymentStatus.FAILED, message=str(e),
                                               run_id=getattr(e, "run_id", None))
        raise
    return DeploymentResult(status=DeploymentStatus.COMPLETED, message="Deployment completed successfully",
                            run_id=run_id)
