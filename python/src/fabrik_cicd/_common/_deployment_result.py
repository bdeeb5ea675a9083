"""fabric-cicd's import path of the deployment result types."""

from fabrik_cicd._deployment_result import DeploymentResult, DeploymentStatus  # noqa: F401
