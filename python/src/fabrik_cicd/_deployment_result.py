"""fabric-cicd 1.4.0's ``DeploymentResult`` and ``DeploymentStatus``, plus fabrik's run id."""

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional


class DeploymentStatus(str, Enum):
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass
class DeploymentResult:
    """What ``deploy_with_config`` did. ``responses`` stays None (fabrik collects no API
    responses); ``run_id`` is fabrik's run id (None when nothing changed)."""

    status: DeploymentStatus
    message: str
    responses: Optional[dict] = field(default=None)
    run_id: Optional[str] = field(default=None)
