"""fabric-cicd 1.4.0's exception types (``fabric_cicd._common._exceptions``), so that
``except InputError`` and friends keep working after the switch.

Each error fabrik reports carries what fabrik said (``str(e)``, with file:line where fabrik
has one), the run id of the publish (``e.run_id``, ``None`` when nothing was applied) and
fabrik's exit code (``e.exit_code``).
"""

from logging import Logger
from typing import Optional


class BaseCustomError(Exception):
    def __init__(
        self,
        message: str,
        logger: Optional[Logger] = None,
        additional_info: Optional[str] = None,
        *,
        run_id: Optional[str] = None,
        exit_code: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.logger = logger
        self.additional_info = additional_info
        self.run_id = run_id
        self.exit_code = exit_code


class ParsingError(BaseCustomError):
    pass


class InputError(BaseCustomError):
    pass


class TokenError(BaseCustomError):
    pass


class InvokeError(BaseCustomError):
    pass


class ItemDependencyError(BaseCustomError):
    pass


class FileTypeError(BaseCustomError):
    pass


class ParameterFileError(BaseCustomError):
    pass


class FailedPublishedItemStatusError(BaseCustomError):
    pass


class PublishError(BaseCustomError):
    """One or more items failed to publish. ``errors`` lists ``(item, message)`` pairs."""

    def __init__(self, errors, logger: Optional[Logger] = None, *, run_id=None, exit_code=None, message=None) -> None:
        self.errors = errors
        names = [name for name, _ in errors]
        text = message or f"Failed to publish {len(errors)} item(s): {names}"
        info = "\n".join(f"\n--- {name} ---\n{exc!s}" for name, exc in errors) or None
        super().__init__(text, logger, info, run_id=run_id, exit_code=exit_code)


class ConfigValidationError(BaseCustomError):
    """A config.yml that cannot be read (``deploy_with_config``)."""
