"""fabric-cicd's import path of its exception types."""

from fabrik_cicd._exceptions import *  # noqa: F401,F403
from fabrik_cicd._exceptions import (  # noqa: F401
    BaseCustomError,
    ConfigValidationError,
    FailedPublishedItemStatusError,
    FileTypeError,
    InputError,
    InvokeError,
    ItemDependencyError,
    ParameterFileError,
    ParsingError,
    PublishError,
    TokenError,
)
