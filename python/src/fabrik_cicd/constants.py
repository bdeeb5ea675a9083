"""The module attributes of fabric-cicd 1.4.0's ``constants`` that scripts set or read.

``DEFAULT_API_ROOT_URL`` (or ``FABRIC_API_ROOT_URL``) is where the API is: fabrik is given
``{root}/v1`` as ``--base-url`` when either differs from its default, as tests do to point
at an emulator. ``FEATURE_FLAG`` is the set ``append_feature_flag`` adds to.
"""

import os
from enum import Enum

VERSION = "1.4.0"
DEFAULT_GUID = "00000000-0000-0000-0000-000000000000"
FEATURE_FLAG = set()
VALID_ENABLE_FLAGS = ["1", "true", "yes"]

_POWERBI_ROOT = "https://api.powerbi.com"
_FABRIC_ROOT = "https://api.fabric.microsoft.com"
DEFAULT_API_ROOT_URL = os.environ.get("DEFAULT_API_ROOT_URL", _POWERBI_ROOT)
FABRIC_API_ROOT_URL = os.environ.get("FABRIC_API_ROOT_URL", _FABRIC_ROOT)


class ItemType(str, Enum):
    """The item types fabric-cicd 1.4.0 publishes."""

    APACHE_AIRFLOW_JOB = "ApacheAirflowJob"
    COPY_JOB = "CopyJob"
    COSMOS_DB_DATABASE = "CosmosDBDatabase"
    DATA_AGENT = "DataAgent"
    DATA_BUILD_TOOL_JOB = "DataBuildToolJob"
    DATA_PIPELINE = "DataPipeline"
    DATAFLOW = "Dataflow"
    ENVIRONMENT = "Environment"
    EVENTHOUSE = "Eventhouse"
    EVENTSTREAM = "Eventstream"
    GRAPH_MODEL = "GraphModel"
    GRAPHQL_API = "GraphQLApi"
    KQL_DASHBOARD = "KQLDashboard"
    KQL_DATABASE = "KQLDatabase"
    KQL_QUERYSET = "KQLQueryset"
    LAKEHOUSE = "Lakehouse"
    MAP = "Map"
    MIRRORED_DATABASE = "MirroredDatabase"
    ML_EXPERIMENT = "MLExperiment"
    MOUNTED_DATA_FACTORY = "MountedDataFactory"
    NOTEBOOK = "Notebook"
    ONTOLOGY = "Ontology"
    PAGINATED_REPORT = "PaginatedReport"
    REFLEX = "Reflex"
    REPORT = "Report"
    SEMANTIC_MODEL = "SemanticModel"
    SPARK_JOB_DEFINITION = "SparkJobDefinition"
    SQL_DATABASE = "SQLDatabase"
    USER_DATA_FUNCTION = "UserDataFunction"
    VARIABLE_LIBRARY = "VariableLibrary"
    WAREHOUSE = "Warehouse"


class FeatureFlag(str, Enum):
    """fabric-cicd 1.4.0's feature flags (fabrik acts on some; docs/PYTHON.md says which)."""

    ENABLE_LAKEHOUSE_UNPUBLISH = "enable_lakehouse_unpublish"
    ENABLE_WAREHOUSE_UNPUBLISH = "enable_warehouse_unpublish"
    ENABLE_SQLDATABASE_UNPUBLISH = "enable_sqldatabase_unpublish"
    ENABLE_EVENTHOUSE_UNPUBLISH = "enable_eventhouse_unpublish"
    ENABLE_KQLDATABASE_UNPUBLISH = "enable_kqldatabase_unpublish"
    ENABLE_COSMOSDBDATABASE_UNPUBLISH = "enable_cosmosdbdatabase_unpublish"
    ENABLE_GRAPHMODEL_UNPUBLISH = "enable_graphmodel_unpublish"
    ENABLE_SHORTCUT_PUBLISH = "enable_shortcut_publish"
    DISABLE_WORKSPACE_FOLDER_PUBLISH = "disable_workspace_folder_publish"
    CONTINUE_ON_SHORTCUT_FAILURE = "continue_on_shortcut_failure"
    ENABLE_ENVIRONMENT_VARIABLE_REPLACEMENT = "enable_environment_variable_replacement"
    ENABLE_EXPERIMENTAL_FEATURES = "enable_experimental_features"
    ENABLE_ITEMS_TO_INCLUDE = "enable_items_to_include"
    ENABLE_EXCLUDE_FOLDER = "enable_exclude_folder"
    ENABLE_INCLUDE_FOLDER = "enable_include_folder"
    ENABLE_SHORTCUT_EXCLUDE = "enable_shortcut_exclude"
    ENABLE_RESPONSE_COLLECTION = "enable_response_collection"
    ENABLE_HARD_DELETE = "enable_hard_delete"
    ENABLE_BULK_PUBLISH = "enable_bulk_publish"


class OperationType(str, Enum):
    PUBLISH = "deployment"
    UNPUBLISH = "unpublish"


ACCEPTED_ITEM_TYPES = tuple(t.value for t in ItemType)
PARAMETER_FILE_NAME = "parameter.yml"
VALID_GUID_REGEX = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def base_url():
    """fabrik's ``--base-url`` for the roots set here, or None for fabrik's default."""
    for root, default in ((FABRIC_API_ROOT_URL, _FABRIC_ROOT), (DEFAULT_API_ROOT_URL, _POWERBI_ROOT)):
        if root and root.rstrip("/") != default:
            return root.rstrip("/") + "/v1"
    return None
