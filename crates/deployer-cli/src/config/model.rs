//! The configuration file's shape (fabrik.yaml). The JSON Schema shipped in
//! `docs/fabrik.schema.json` is generated from these types (`fabrik schema`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The project: name, prefix, description, organization.
    pub project: Project,
    /// Name patterns with placeholders.
    #[serde(default)]
    pub naming: Naming,
    /// Environments (dev, test, prod, …) with per-environment overrides.
    #[serde(default)]
    pub environments: BTreeMap<String, Environment>,
    /// Feature flags (keys like `retry_logic`, values true/false/yes/no/on/off).
    #[serde(default)]
    pub features: BTreeMap<String, FlagValue>,
    /// The workspaces to deploy.
    #[serde(default)]
    pub workspaces: Vec<Workspace>,
    /// Shared state for many runners: where run journals and deployment locks live
    /// (default: the local `--state-dir`; `--state` / `FABRIK_STATE` override it).
    #[serde(default)]
    pub state: Option<StateConfig>,
}

/// Shared state in an Azure Blob container.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// `https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]` (or the path-style
    /// `http(s)://HOST:PORT/ACCOUNT/CONTAINER[/PREFIX]` of emulators). Keep the SAS out of
    /// the file: give it in `FABRIK_STATE_SAS` (a value or `${secret:NAME}`), or sign in
    /// with Entra ID.
    pub url: String,
}

/// A flag value as YAML lets users write it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum FlagValue {
    /// `true` / `false`.
    Bool(bool),
    /// `"yes"`, `"off"`, ….
    Text(String),
}

/// The project.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// Project name.
    pub name: String,
    /// Prefix for generated names (`{prefix}`), e.g. `usf2-fabric`.
    pub prefix: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Organization (`{organization}`).
    #[serde(default)]
    pub organization: Option<String>,
}

/// Name patterns. Placeholders: `{prefix}`, `{prefix_upper}`, `{prefix_clean}`, `{name}`,
/// `{environment}`, `{environment_title}`, `{organization}`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Naming {
    /// Workspace names; default `{prefix}-{name}-{environment}`.
    #[serde(default = "default_workspace_pattern")]
    pub workspace: String,
    /// Item naming standards: `seed` for the seed's rules, or a standards file (YAML,
    /// relative to the config file). None: only the service's own rules are checked.
    #[serde(default)]
    pub standards: Option<String>,
}

fn default_workspace_pattern() -> String {
    "{prefix}-{name}-{environment}".into()
}

impl Default for Naming {
    fn default() -> Self {
        Self {
            workspace: default_workspace_pattern(),
            standards: None,
        }
    }
}

/// One environment's overrides.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Capacity for every workspace of this environment, by id or display name.
    #[serde(default)]
    pub capacity: Option<String>,
    /// A principals file applied to every workspace of this environment (relative to the config file).
    #[serde(default)]
    pub principals_file: Option<String>,
}

/// One workspace.
// Keys besides these belong to resource kinds (`sections`), so no `deny_unknown_fields`:
// loading refuses a key no kind owns, and the schema lists the kinds' keys and closes the
// object.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct Workspace {
    /// Short name; the full name comes from `naming.workspace`.
    pub name: String,
    /// Description (at most 4000 characters).
    #[serde(default)]
    pub description: Option<String>,
    /// Capacity by id or display name; overrides the environment's.
    #[serde(default)]
    pub capacity: Option<String>,
    /// Folders, nested with `/` (`raw/sales`).
    #[serde(default)]
    pub folders: Vec<String>,
    /// Lakehouses.
    #[serde(default)]
    pub lakehouses: Vec<Lakehouse>,
    /// Notebooks.
    #[serde(default)]
    pub notebooks: Vec<Notebook>,
    /// Principals listed inline.
    #[serde(default)]
    pub principals: Vec<Principal>,
    /// A principals file (relative to the config file; `{environment}` is replaced).
    #[serde(default)]
    pub principals_file: Option<String>,
    /// Git connection.
    #[serde(default)]
    pub git: Option<Git>,
    /// A git-format repository folder whose items this workspace publishes (as
    /// `fabrik publish` does), after creating the workspace and its folders.
    #[serde(default)]
    pub repository: Option<RepositorySource>,
    /// Every other key, by name: the parts of the workspace resource kinds own
    /// (`spark_pools:`), each read and checked by its kind through a
    /// [`Section`](super::section::Section); a key no kind owns is an error at that key.
    #[serde(flatten)]
    #[schemars(skip)]
    pub sections: BTreeMap<String, serde_json::Value>,
}

/// Items a workspace publishes from a git-format repository folder.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepositorySource {
    /// The repository folder (relative to the config file).
    pub path: String,
    /// Its `parameter.yml` (relative to the config file); default: the repository's own, when
    /// it has one.
    #[serde(default)]
    pub parameter: Option<String>,
    /// Only these item types (default: all 31 fabric-cicd publishes).
    #[serde(default)]
    pub item_types: Option<Vec<String>>,
}

/// A lakehouse.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lakehouse {
    /// Display name: a letter first, then letters, digits and underscores; at most 123.
    pub name: String,
    /// Description (at most 256 characters).
    #[serde(default)]
    pub description: Option<String>,
    /// Folder path, one of the workspace's `folders`.
    #[serde(default)]
    pub folder: Option<String>,
}

/// A notebook, from a `.ipynb` or `.py` file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notebook {
    /// Display name.
    pub name: String,
    /// The notebook's source file (relative to the config file).
    pub file: String,
    /// Description (at most 256 characters).
    #[serde(default)]
    pub description: Option<String>,
    /// Folder path, one of the workspace's `folders`.
    #[serde(default)]
    pub folder: Option<String>,
}

/// A principal and its workspace role.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// Entra object id (a GUID, not an email).
    pub id: String,
    /// Admin, Member, Contributor or Viewer.
    pub role: String,
    /// User, Group, ServicePrincipal or ServicePrincipalProfile; default User.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// A git connection.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Git {
    /// GitHub or AzureDevOps.
    pub provider: String,
    /// GitHub owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// Azure DevOps organization.
    #[serde(default)]
    pub organization: Option<String>,
    /// Azure DevOps project.
    #[serde(default)]
    pub project: Option<String>,
    /// Repository name.
    pub repository: String,
    /// Branch.
    pub branch: String,
    /// Directory in the repository.
    #[serde(default = "default_directory")]
    pub directory: String,
    /// The Fabric connection holding the git credentials (required for GitHub).
    #[serde(default)]
    pub connection_id: Option<String>,
}

fn default_directory() -> String {
    "/".into()
}
