"""``FabricWorkspace``: what to publish where, as fabric-cicd 1.4.0 takes it. Nothing is
called at construction; each publish runs the ``fabrik`` binary."""

import logging
import re
from pathlib import Path
from typing import Optional

from fabrik_cicd import constants
from fabrik_cicd._exceptions import InputError

logger = logging.getLogger("fabrik_cicd")


class FabricWorkspace:
    """A workspace and the repository to publish into it (fabric-cicd's signature).

    fabrik additions: ``run_ids`` (every publish's run id, oldest first), ``last_run_id``,
    ``last_report`` (fabrik's JSON report of the last publish), and the keyword ``state_dir``
    (where fabrik keeps run journals; default ``.fabrik/runs`` under the working directory).
    """

    def __init__(
        self,
        *,
        repository_directory: str,
        token_credential=None,
        item_type_in_scope: Optional[list] = None,
        environment: str = "N/A",
        workspace_id: Optional[str] = None,
        workspace_name: Optional[str] = None,
        **kwargs: object,
    ) -> None:
        if token_credential is None or not callable(getattr(token_credential, "get_token", None)):
            msg = "token_credential is required: an object with get_token(scope), such as azure.identity's credentials"
            raise InputError(msg, logger)
        if "base_api_url" in kwargs:
            msg = (
                "Setting base_api_url is no longer supported. Please use the following instead:\n"
                ">>> import fabrik_cicd.constants\n"
                ">>> constants.DEFAULT_API_ROOT_URL = '<your_base_api_url>'"
            )
            raise InputError(msg, logger)
        self.token_credential = token_credential
        if workspace_id:
            if not re.match(constants.VALID_GUID_REGEX, str(workspace_id)):
                raise InputError(f"The provided workspace_id '{workspace_id}' is not a valid GUID.", logger)
            self.workspace_id = str(workspace_id)
            self.workspace_name = None
        elif workspace_name:
            # fabrik looks the name up when it publishes.
            self.workspace_id = None
            self.workspace_name = str(workspace_name)
        else:
            raise InputError("Either workspace_name or workspace_id must be specified.", logger)
        repo = Path(repository_directory)
        if not repo.is_dir():
            raise InputError(f"Repository directory '{repository_directory}' does not exist.", logger)
        self.repository_directory = repo.resolve()
        if item_type_in_scope is None:
            self.item_type_in_scope = list(constants.ACCEPTED_ITEM_TYPES)
        else:
            if not isinstance(item_type_in_scope, list):
                raise InputError("item_type_in_scope must be a list of item types.", logger)
            for t in item_type_in_scope:
                if t not in constants.ACCEPTED_ITEM_TYPES:
                    raise InputError(f"Invalid or unsupported item type: '{t}'. Must be one of {', '.join(constants.ACCEPTED_ITEM_TYPES)}.", logger)
            self.item_type_in_scope = list(item_type_in_scope)
        if not isinstance(environment, str) or not environment:
            raise InputError("environment must be a non-empty string.", logger)
        self.environment = environment
        parameter = kwargs.get("parameter_file_path")
        if parameter:
            p = Path(str(parameter))
            self.parameter_file_path = str(p if p.is_absolute() else (self.repository_directory / p).resolve())
        else:
            own = self.repository_directory / constants.PARAMETER_FILE_NAME
            self.parameter_file_path = str(own) if own.is_file() else None
        self.state_dir = kwargs.get("state_dir")
        self.run_ids = []
        self.last_report = None
        # What the last publish_all_items was asked to leave out: an unpublish after it
        # brings the workspace to the same selection.
        self._publish_filters = {}
        self.responses = None
        self.unpublish_responses = None

    @property
    def last_run_id(self):
        """The run id of the last publish that changed something, or None."""
        return self.run_ids[-1] if self.run_ids else None

    def _core(self):
        core = {"repository_directory": str(self.repository_directory)}
        if self.workspace_id:
            core["workspace_id"] = self.workspace_id
        else:
            core["workspace"] = self.workspace_name
        core["item_types_in_scope"] = list(self.item_type_in_scope)
        if self.parameter_file_path:
            core["parameter"] = self.parameter_file_path
        return core

    def __repr__(self):
        where = self.workspace_id or f"name={self.workspace_name!r}"
        return f"FabricWorkspace({where}, {str(self.repository_directory)!r}, environment={self.environment!r})"
