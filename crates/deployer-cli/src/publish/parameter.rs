//! `parameter.yml`: fabric-cicd 1.4.0's per-environment parameterization of item parts.
//!
//! [`load`] reads the file and its `extend` templates into typed rules and reports every
//! problem at once, each at its file:line:column. [`render_part`] then renders one part's text
//! exactly as fabric-cicd's text pipeline does (its §2.3 order: the type step is the caller's,
//! then logicalId → deployed id, then `key_value_replace` and `find_replace`, then zero
//! workspace id → target); each step is also its own function. [`references`] lists the items a
//! part refers to, so the publisher can order items by reference rather than by type.
//!
//! # Errors and warnings
//! Errors stop the run before any request; warnings are reported and the run goes on.
//!
//! Errors (fabric-cicd fails validation on these too): YAML syntax; a key given twice in one
//! mapping, compared case-insensitively (`PROD` beside `prod`); an unknown top-level key; a
//! top-level value that is not a list (`semantic_model_binding` may be a mapping); a missing or
//! empty required field (`find_value`, `replace_value`, `find_key`, `instance_pool_id`,
//! `connection_id`, `semantic_model_name`); a field of the wrong type (a filter that is not a
//! string or list of strings, `is_regex`/`ignore_case` not given as strings, a `find_replace`
//! `replace_value` that is not a string); `_ALL_` beside another environment key; a regex that
//! does not compile or has other than exactly one capture group; `$items` in `find_value`;
//! `$workspace` in a regex `find_value`; a malformed `$workspace`/`$items` variable or an
//! unknown item attribute; a value starting with `$ENV:` without
//! `enable_environment_variable_replacement`, or an unset one ([`Parameters::check_env`]); a
//! `find_key` that is not a JSONPath starting with `$`; `key_value_replace` values of different
//! types across environments; a spark pool `type` other than `Capacity`/`Workspace`; a
//! connection id that is not a GUID; templates giving one environment's default connection
//! twice.
//!
//! Errors where fabric-cicd only logs and goes on (fabrik is stricter): a `file_path` with
//! `..` or a glob that does not parse; a nested `extend`, a missing `extend` file, an `extend`
//! that is not a list; mixing the legacy and the new `semantic_model_binding` formats.
//!
//! Warnings (fabric-cicd logs these and skips the entry, or ignores them): an entry with no
//! value for the target environment; a filter (`item_type`, `item_name`, `file_path`) that
//! matches no item or file of the repository ([`Parameters::filter_warnings`]); an unknown
//! `item_type`; an unknown key inside an entry; `is_regex`/`ignore_case` strings other than
//! `true`/`false`; an empty filter (an empty `file_path` is ignored, an empty `item_type` or
//! `item_name` matches nothing, as in fabric-cicd); an `extend` file named twice; the deprecated
//! `gateway_binding`.
//!
//! `$ENV:` values may be secrets: no message ever contains a resolved value.

mod json;
mod load;
mod pyyaml;
mod refs;
mod render;
#[cfg(test)]
mod tests;
mod yaml;

use std::fmt;
use std::path::PathBuf;

pub use load::{LoadOptions, load, load_str};
pub use refs::{References, RepoItem, references};
pub use render::{
    ItemAttrs, KqlSources, LogicalId, Lookup, Part, RenderError, Target, apply_parameters,
    fill_cluster_uris, instance_pool_id, kql_databases_needed, render_part, render_sparkcompute,
    replace_logical_ids, replace_zero_workspace_ids,
};

use crate::config::Problem;

/// The zero GUID that git exports write for "this workspace" and placeholder logicalIds.
pub const ZERO_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// Every item type fabric-cicd 1.4.0 publishes, in its publish order.
pub const ITEM_TYPES: [&str; 31] = [
    "VariableLibrary",
    "Warehouse",
    "MirroredDatabase",
    "Lakehouse",
    "SQLDatabase",
    "CosmosDBDatabase",
    "Environment",
    "UserDataFunction",
    "Eventhouse",
    "SparkJobDefinition",
    "Notebook",
    "SemanticModel",
    "Report",
    "PaginatedReport",
    "CopyJob",
    "DataBuildToolJob",
    "KQLDatabase",
    "KQLQueryset",
    "Dataflow",
    "DataPipeline",
    "Reflex",
    "Eventstream",
    "KQLDashboard",
    "GraphQLApi",
    "ApacheAirflowJob",
    "MountedDataFactory",
    "Ontology",
    "DataAgent",
    "MLExperiment",
    "Map",
    "GraphModel",
];

/// Where something was written: file, 1-based line and column, and that line's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file (`parameter.yml` or an `extend` template).
    pub file: PathBuf,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
    /// The source line, for the caret snippet.
    pub source_line: String,
}

impl Origin {
    /// A problem at this place.
    pub fn problem(&self, message: String, hint: Option<String>, warning: bool) -> Problem {
        Problem {
            file: self.file.clone(),
            pos: Some(crate::config::locate::Pos {
                line: self.line,
                col: self.col,
            }),
            source_line: Some(self.source_line.clone()),
            message,
            hint,
            warning,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// Every rule of a `parameter.yml` and its templates, in file order (templates after it).
#[derive(Debug, Clone, Default)]
pub struct Parameters {
    /// `find_replace` entries.
    pub find_replace: Vec<FindReplace>,
    /// `key_value_replace` entries.
    pub key_value_replace: Vec<KeyValueReplace>,
    /// `spark_pool` entries.
    pub spark_pool: Vec<SparkPool>,
    /// `semantic_model_binding` (and the deprecated `gateway_binding`).
    pub semantic_model_binding: Option<SemanticModelBinding>,
    env_refs: Vec<EnvRef>,
}

/// A `$ENV:NAME` reference and the `replace_value` key it is under (`None` in a `find_value`).
#[derive(Debug, Clone)]
struct EnvRef {
    environment: Option<String>,
    var: String,
    origin: Origin,
}

/// Values per environment: `_ALL_` (any case) for every environment, or one per name.
#[derive(Debug, Clone, PartialEq)]
pub struct ByEnv<T> {
    /// The `_ALL_` value; when set it is the only one.
    pub all: Option<T>,
    /// Values by environment name (matched exactly, as fabric-cicd does).
    pub envs: Vec<(String, T)>,
}

impl<T> ByEnv<T> {
    /// The value for `environment`, if any.
    pub fn get(&self, environment: &str) -> Option<&T> {
        self.all.as_ref().or_else(|| {
            self.envs
                .iter()
                .find(|(k, _)| k == environment)
                .map(|(_, v)| v)
        })
    }
}

/// A replacement string, or a dynamic variable resolved at render time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replacement {
    /// Literal text.
    Text(String),
    /// Text with `$ENV:NAME` references, expanded from the environment at render time.
    WithEnv(String),
    /// A `$workspace.*` or `$items.*` variable.
    Token(Token),
}

/// A dynamic variable of `parameter.yml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// `$workspace.$id` (or legacy `$workspace.id`): the target workspace id.
    WorkspaceId,
    /// `$workspace.$name`: the target workspace name.
    WorkspaceName,
    /// `$workspace.$name_encoded`: the target workspace name, URL-encoded.
    WorkspaceNameEncoded,
    /// `$workspace.<Name>` or `$workspace.<Name>.$id`: another workspace's id.
    OtherWorkspaceId(String),
    /// `$items.<Type>.<Name>.$<attr>`, optionally after `$workspace.<Name>.`.
    Item {
        /// Another workspace by name; `None` is the target workspace.
        workspace: Option<String>,
        /// Item type, case-sensitive.
        item_type: String,
        /// Item display name, case-sensitive.
        name: String,
        /// The attribute.
        attr: ItemAttr,
    },
}

/// An attribute of a deployed item that `$items` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemAttr {
    /// `$id`.
    Id,
    /// `$sqlendpoint`: the SQL endpoint connection string.
    SqlEndpoint,
    /// `$sqlendpointid`: the SQL endpoint's id.
    SqlEndpointId,
    /// `$queryserviceuri`: an Eventhouse's query service URI.
    QueryServiceUri,
}

/// Which items and files an entry applies to; all given filters must match (exact,
/// case-sensitive).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Item types.
    pub item_type: Option<Filter<String>>,
    /// Item display names.
    pub item_name: Option<Filter<String>>,
    /// Repository-relative paths or globs.
    pub file_path: Option<Filter<PathPattern>>,
}

/// One filter's accepted values and where the filter was written.
#[derive(Debug, Clone)]
pub struct Filter<T> {
    /// Accepted values (any one matches).
    pub values: Vec<T>,
    /// Where the filter is.
    pub origin: Origin,
}

/// A `file_path` value: a repository-relative path, or a glob over repository paths.
#[derive(Debug, Clone)]
pub enum PathPattern {
    /// A path relative to the repository root (leading `/` removed, `/` separators).
    Exact(String),
    /// A glob (`*`, `**/`, `?`, `[..]`, `{a,b}`), as written.
    Glob(String, globset::GlobMatcher),
}

impl PathPattern {
    /// Whether the repository-relative `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Exact(p) => p == path,
            PathPattern::Glob(_, m) => m.is_match(path),
        }
    }
}

/// What `find_value` looks for.
#[derive(Debug, Clone)]
pub enum FindValue {
    /// A literal string, or a `$workspace` variable resolved first.
    Literal(Replacement),
    /// A regex with exactly one capture group (compiled case-insensitively with
    /// `ignore_case`): its first match's group 1 is the text replaced.
    Regex(regex::Regex),
}

/// A `find_replace` entry.
#[derive(Debug, Clone)]
pub struct FindReplace {
    /// What to look for.
    pub find: FindValue,
    /// What to put instead, per environment.
    pub replace: ByEnv<Replacement>,
    /// `ignore_case: "true"`.
    pub ignore_case: bool,
    /// Filters.
    pub filters: Filters,
    /// Where the entry is.
    pub origin: Origin,
}

/// A `key_value_replace` entry.
#[derive(Debug, Clone)]
pub struct KeyValueReplace {
    /// The JSONPath as written.
    pub find_key: String,
    path: serde_json_path::JsonPath,
    replace: ByEnv<json::Ordered>,
    /// Filters.
    pub filters: Filters,
    /// Where the entry is.
    pub origin: Origin,
}

/// A `spark_pool` entry.
#[derive(Debug, Clone)]
pub struct SparkPool {
    /// The pool id written in `Sparkcompute.yml` (a dev id) that this entry rewrites.
    pub instance_pool_id: String,
    /// The pool to use instead, per environment.
    pub replace: ByEnv<PoolRef>,
    /// Environment item names this applies to; `None` for all.
    pub item_name: Option<Filter<String>>,
    /// Where the entry is.
    pub origin: Origin,
}

/// A Spark pool by type and name, looked up in `GET /spark/pools` by the publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRef {
    /// Workspace or capacity pool.
    pub pool_type: PoolType,
    /// The pool's name.
    pub name: String,
}

/// A Spark pool's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolType {
    /// `Capacity`.
    Capacity,
    /// `Workspace`.
    Workspace,
}

/// `semantic_model_binding` in either format.
#[derive(Debug, Clone, PartialEq)]
pub enum SemanticModelBinding {
    /// `[{connection_id, semantic_model_name}]`, the same in every environment (also what
    /// `gateway_binding` becomes).
    Legacy(Vec<LegacyBinding>),
    /// `{default: {connection_id}, models: [{semantic_model_name, connection_id}]}`.
    ByEnv {
        /// Connections for every model not listed in `models`.
        default: Option<ByEnv<Vec<String>>>,
        /// Per-model connections.
        models: Vec<ModelBinding>,
    },
}

/// One legacy binding.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyBinding {
    /// The connection.
    pub connection_id: String,
    /// The models bound to it.
    pub models: Vec<String>,
}

/// One `models` entry of the new format.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelBinding {
    /// The models.
    pub models: Vec<String>,
    /// Connections per environment.
    pub connection_id: ByEnv<Vec<String>>,
}

/// A spark pool rewrite the publisher performs on an Environment's `Setting/Sparkcompute.yml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparkPoolRewrite {
    /// The pool to look up in `GET /spark/pools` (by name and type); its id replaces
    /// `instance_pool_id` (see [`render_sparkcompute`]).
    pub pool: PoolRef,
    /// The entry that asked for it.
    pub origin: Origin,
}

impl Parameters {
    /// The environment variables `$ENV:` values name (for `environment`, or any).
    pub fn env_vars(&self) -> impl Iterator<Item = &str> {
        self.env_refs.iter().map(|r| r.var.as_str())
    }

    /// Errors for every `$ENV:` variable used in `environment` that `lookup` does not know,
    /// so a missing secret stops the run before any request (values are never shown).
    pub fn check_env(&self, environment: &str, lookup: &dyn Lookup) -> Vec<Problem> {
        self.env_refs
            .iter()
            .filter(|r| {
                r.environment
                    .as_deref()
                    .is_none_or(|e| e == environment || e.eq_ignore_ascii_case("_ALL_"))
            })
            .filter(|r| lookup.env(&r.var).is_none())
            .map(|r| {
                let msg = format!(
                    "environment variable `{}` (from `$ENV:{}`) is not set",
                    r.var, r.var
                );
                r.origin.problem(msg, None, false)
            })
            .collect()
    }

    /// The spark pool rewrite for Environment `item_name`'s `Sparkcompute.yml` whose
    /// `instance_pool_id` (see [`instance_pool_id`]) is `pool_id`, in `environment`. The first
    /// entry with that pool id and a matching `item_name` decides, as in fabric-cicd; `None`
    /// when there is none or it has no value for the environment.
    pub fn spark_pool_for(
        &self,
        environment: &str,
        item_name: &str,
        pool_id: &str,
    ) -> Option<SparkPoolRewrite> {
        let p = self.spark_pool.iter().find(|p| {
            p.instance_pool_id == pool_id
                && p.item_name
                    .as_ref()
                    .is_none_or(|f| f.values.is_empty() || f.values.iter().any(|n| n == item_name))
        })?;
        p.replace.get(environment).map(|pool| SparkPoolRewrite {
            pool: pool.clone(),
            origin: p.origin.clone(),
        })
    }

    /// The connection ids to bind each of `models` to in `environment`, as fabric-cicd's
    /// semantic model binding would (models with none are left out).
    pub fn semantic_model_bindings(
        &self,
        environment: &str,
        models: &[&str],
    ) -> Vec<(String, Vec<String>)> {
        let Some(binding) = &self.semantic_model_binding else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for &model in models {
            let ids: Vec<String> = match binding {
                SemanticModelBinding::Legacy(list) => list
                    .iter()
                    .filter(|b| b.models.iter().any(|m| m == model))
                    .map(|b| b.connection_id.clone())
                    .collect(),
                SemanticModelBinding::ByEnv {
                    default,
                    models: listed,
                } => {
                    let explicit = listed.iter().find(|b| b.models.iter().any(|m| m == model));
                    match explicit {
                        Some(b) => b
                            .connection_id
                            .get(environment)
                            .cloned()
                            .unwrap_or_default(),
                        None => default
                            .as_ref()
                            .and_then(|d| d.get(environment).cloned())
                            .unwrap_or_default(),
                    }
                }
            };
            if !ids.is_empty() {
                out.push((model.to_string(), ids));
            }
        }
        out
    }
}
