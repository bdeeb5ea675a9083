"""fabric-cicd 1.4.0's public API, run by fabrik.

Switch a script by changing ``fabric_cicd`` to ``fabrik_cicd`` in its imports::

    from fabrik_cicd import FabricWorkspace, publish_all_items, unpublish_all_orphan_items

Every publish runs the ``fabrik`` binary installed with this package (docs/PYTHON.md says
what differs). fabrik's own additions: :func:`plan`, :func:`rollback`, and the run id of each
publish (``FabricWorkspace.last_run_id``, ``DeploymentResult.run_id``, ``e.run_id``).
"""

import logging
import subprocess

import fabrik_cicd.constants as constants
from fabrik_cicd import _runner
from fabrik_cicd._deployment_result import DeploymentResult, DeploymentStatus
from fabrik_cicd.constants import FeatureFlag, ItemType
from fabrik_cicd.fabric_workspace import FabricWorkspace
from fabrik_cicd.publish import (
    deploy_with_config,
    plan,
    publish_all_items,
    rollback,
    unpublish_all_orphan_items,
)

logger = logging.getLogger("fabrik_cicd")
if not logger.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("[%(levelname)s] %(asctime)s - %(message)s", "%H:%M:%S"))
    logger.addHandler(_handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def append_feature_flag(feature: str) -> None:
    """Adds a fabric-cicd feature flag (passed to fabrik as ``features``)."""
    constants.FEATURE_FLAG.add(feature)


def remove_feature_flag(feature: str) -> None:
    """Removes a feature flag."""
    constants.FEATURE_FLAG.discard(feature)


def get_supported_feature_flags() -> list:
    """fabric-cicd's feature flags, sorted."""
    return sorted(flag.value for flag in FeatureFlag)


def change_log_level(level: str = "DEBUG") -> None:
    """DEBUG: this package logs every command it runs and fabrik logs at debug level to its
    stderr (``FABRIK_LOG=debug``), which this package shows."""
    if level.upper() == "DEBUG":
        logger.setLevel(logging.DEBUG)
        for h in logger.handlers:
            h.setLevel(logging.DEBUG)
        logger.info("Changed log level to DEBUG")
    else:
        logger.warning(f"Log level '{level}' not supported.  Only DEBUG is supported at this time. No changes made.")


def disable_file_logging() -> None:
    """fabrik_cicd writes no log file; kept so scripts that call it run unchanged."""


def binary() -> str:
    """The path of the ``fabrik`` binary this package runs."""
    return _runner.binary()


def fabrik_version() -> str:
    """``fabrik --version``."""
    return subprocess.run([binary(), "--version"], capture_output=True, text=True, check=True).stdout.strip()


__all__ = [
    "DeploymentResult",
    "DeploymentStatus",
    "FabricWorkspace",
    "FeatureFlag",
    "ItemType",
    "append_feature_flag",
    "binary",
    "change_log_level",
    "constants",
    "deploy_with_config",
    "disable_file_logging",
    "fabrik_version",
    "get_supported_feature_flags",
    "plan",
    "publish_all_items",
    "remove_feature_flag",
    "rollback",
    "unpublish_all_orphan_items",
]
