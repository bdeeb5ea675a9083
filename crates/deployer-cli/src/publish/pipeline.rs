//! One item's parts as fabric-cicd 1.4.0 sends them for one environment: the type step (a
//! Report's `byPath` → `byConnection`, an Environment's Spark pool), then the text pipeline of
//! [`parameter::render_part`] (logicalIds → deployed ids, `parameter.yml`, zero workspace id →
//! target). Pure: what it needs from the service comes in a [`World`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use fabrik_client::models::SparkPool;

use super::item_type::ItemType;
use super::parameter::{
    self, ItemAttrs, LogicalId, Lookup, Parameters, PoolType, Target, ZERO_GUID,
};
use super::repo::{RepoItem, Repository};
use super::rewrite;

/// Environment variables for `$ENV:` values (the process's, or a fixed set in tests).
#[derive(Clone)]
pub struct EnvVars(Arc<EnvFn>);

type EnvFn = dyn Fn(&str) -> Option<String> + Send + Sync;

impl EnvVars {
    /// The process environment.
    pub fn process() -> Self {
        Self(Arc::new(|k| std::env::var(k).ok()))
    }

    /// A fixed set of variables.
    pub fn fixed(vars: BTreeMap<String, String>) -> Self {
        Self(Arc::new(move |k| vars.get(k).cloned()))
    }

    /// The variable's value.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }
}

impl std::fmt::Debug for EnvVars {
    // Values may be secrets: never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvVars(..)")
    }
}

/// How items are rendered for the target: the environment and its `parameter.yml`.
#[derive(Debug, Clone)]
pub struct Parameterization {
    /// The environment (`test`, `prod`), matched against `replace_value` keys.
    pub environment: String,
    /// The rules, when the repository has a `parameter.yml`.
    pub parameters: Option<Arc<Parameters>>,
    /// `$ENV:` values.
    pub env: EnvVars,
    /// Publish lakehouse shortcuts (`enable_shortcut_publish`).
    pub shortcuts: Option<ShortcutPublish>,
    /// Write creates and updates with `bulkImportDefinitions` (`--bulk`, `enable_bulk_publish`).
    pub bulk: bool,
}

impl Parameterization {
    /// Reads `parameter` (if given) for `environment` and checks it against `repo`: every
    /// error at its file:line:column, before any request. Returns the warnings with it (a
    /// filter that matches nothing, an entry without this environment).
    pub fn load(
        repo: &Repository,
        parameter: Option<&std::path::Path>,
        environment: &str,
        env_vars_enabled: bool,
        env: EnvVars,
    ) -> Result<(Self, Vec<crate::config::Problem>), Vec<crate::config::Problem>> {
        let Some(path) = parameter else {
            return Ok((
                Self {
                    environment: environment.to_string(),
                    parameters: None,
                    env,
                    shortcuts: None,
                    bulk: false,
                },
                Vec::new(),
            ));
        };
        let opts = parameter::LoadOptions {
            repository: &repo.root,
            environment: Some(environment),
            env_vars_enabled,
        };
        let (params, mut warnings) = parameter::load(path, &opts)?;
        let paths: Vec<Vec<String>> = repo
            .items
            .iter()
            .map(|i| i.parts.iter().map(|p| repo_path(i, &p.path)).collect())
            .collect();
        let items: Vec<parameter::RepoItem<'_>> = repo
            .items
            .iter()
            .zip(&paths)
            .map(|(i, paths)| parameter::RepoItem {
                item_type: i.item_type.as_str(),
                name: &i.display_name,
                paths,
            })
            .collect();
        warnings.extend(params.filter_warnings(&items));
        let how = Self {
            environment: environment.to_string(),
            parameters: Some(Arc::new(params)),
            env,
            shortcuts: None,
            bulk: false,
        };
        let (no_attrs, no_workspaces) = (BTreeMap::new(), BTreeMap::new());
        let look = Look {
            world: &World {
                workspace_id: "",
                workspace_name: "",
                ids: &|_, _| None,
                attrs: &no_attrs,
                pools: &[],
                workspaces: &no_workspaces,
                kql_uris: &BTreeMap::new(),
                other: &BTreeMap::new(),
                planning: false,
            },
            env: &how.env,
        };
        let missing = how
            .parameters
            .as_deref()
            .map(|p| p.check_env(environment, &look))
            .unwrap_or_default();
        if !missing.is_empty() {
            warnings.extend(missing);
            return Err(warnings);
        }
        // `$ENV:` values are often secrets: redacted from output, and journaled as references
        // (`env:VAR`) that a rollback resolves from the environment again.
        for var in how.parameters.iter().flat_map(|p| p.env_vars()) {
            if let Some(value) = how.env.get(var) {
                crate::secrets::register(&format!("env:{var}"), &value);
            }
        }
        Ok((how, warnings))
    }

    /// No `parameter.yml`: only logicalIds and the zero workspace id are rewritten.
    pub fn none(environment: &str) -> Self {
        Self {
            environment: environment.to_string(),
            parameters: None,
            env: EnvVars::process(),
            shortcuts: None,
            bulk: false,
        }
    }
}

/// How lakehouse shortcuts are published.
#[derive(Debug, Clone, Default)]
pub struct ShortcutPublish {
    /// Shortcuts whose name this matches are left out (`shortcut_exclude_regex`).
    pub exclude: Option<regex::Regex>,
    /// A shortcut the service refuses is reported and the run goes on
    /// (`continue_on_shortcut_failure`); otherwise it fails the run.
    pub continue_on_failure: bool,
}

/// How a plan's placeholder for the id of an item the run creates ends
/// (`<id of Notebook N, created by this publish>`).
pub const CREATED_BY_THIS_RUN: &str = ", created by this publish>";
/// How a plan's placeholder for a property of an item the run creates ends.
pub const ONCE_CREATED: &str = ", once created>";

/// What rendering needs to know about the target workspace.
pub struct World<'a> {
    /// The target workspace id.
    pub workspace_id: &'a str,
    /// Its display name.
    pub workspace_name: &'a str,
    /// Deployed id of an item by `(type, name)` (in plans, a placeholder for one this run
    /// creates).
    pub ids: &'a (dyn Fn(&str, &str) -> Option<String> + Sync),
    /// Properties `$items` variables read, for the items that have them, by `(type, name)`.
    pub attrs: &'a BTreeMap<(String, String), ItemAttrs>,
    /// Spark pools the workspace sees (only listed when an Environment needs one).
    pub pools: &'a [SparkPool],
    /// Other workspaces by name (only listed when `$workspace.<name>` is used).
    pub workspaces: &'a BTreeMap<String, String>,
    /// KQL databases' query URIs by database name, for the KQL items' empty `clusterUri`s.
    pub kql_uris: &'a BTreeMap<String, String>,
    /// Items of other workspaces by `(workspace, type, name)`, for `$workspace.<name>.$items`.
    pub other: &'a BTreeMap<(String, String, String), ItemAttrs>,
    /// Planning: an item with no properties read yet is one this run creates, and its
    /// properties are placeholders like its id.
    pub planning: bool,
}

impl std::fmt::Debug for World<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("workspace_id", &self.workspace_id)
            .field("workspace_name", &self.workspace_name)
            .finish_non_exhaustive()
    }
}

struct Look<'a> {
    world: &'a World<'a>,
    env: &'a EnvVars,
}

impl Lookup for Look<'_> {
    fn workspace_id(&self, name: &str) -> Option<String> {
        self.world.workspaces.get(name).cloned()
    }

    fn item(&self, workspace: Option<&str>, item_type: &str, name: &str) -> Option<ItemAttrs> {
        if let Some(w) = workspace {
            let key = (w.to_string(), item_type.to_string(), name.to_string());
            return self.world.other.get(&key).cloned();
        }
        let key = (item_type.to_string(), name.to_string());
        let id = (self.world.ids)(item_type, name)?;
        let later = |attr: &str| Some(format!("<{attr} of {item_type} {name}{ONCE_CREATED}"));
        Some(match self.world.attrs.get(&key) {
            Some(a) => ItemAttrs { id, ..a.clone() },
            None if self.world.planning => ItemAttrs {
                id,
                sql_endpoint: later("$sqlendpoint"),
                sql_endpoint_id: later("$sqlendpointid"),
                query_service_uri: later("$queryserviceuri"),
            },
            None => ItemAttrs {
                id,
                ..ItemAttrs::default()
            },
        })
    }

    fn env(&self, var: &str) -> Option<String> {
        self.env.get(var)
    }
}

/// An item's repository-relative part path, as `file_path` filters see it.
fn repo_path(item: &RepoItem, part: &str) -> String {
    if item.dir.is_empty() {
        part.to_string()
    } else {
        format!("{}/{part}", item.dir)
    }
}

/// The parts of `item` as they are sent, or why they cannot be rendered (names the item and
/// part, never an `$ENV:` value).
pub fn render(
    repo: &Repository,
    item: &RepoItem,
    how: &Parameterization,
    world: &World<'_>,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let look = Look {
        world,
        env: &how.env,
    };
    let logical_ids: Vec<(String, Option<String>)> = repo
        .items
        .iter()
        .filter(|o| o.logical_id != ZERO_GUID)
        .map(|o| {
            (
                o.logical_id.clone(),
                (world.ids)(o.item_type.as_str(), &o.display_name),
            )
        })
        .collect();
    let logical_ids: Vec<LogicalId<'_>> = logical_ids
        .iter()
        .map(|(l, d)| LogicalId {
            logical_id: l,
            deployed_id: d.as_deref(),
        })
        .collect();
    let target = Target {
        environment: &how.environment,
        workspace_id: world.workspace_id,
        workspace_name: world.workspace_name,
    };
    let mut out = Vec::with_capacity(item.parts.len());
    for p in &item.parts {
        let Some(text) = p.text() else {
            out.push((p.path.clone(), p.bytes.clone()));
            continue;
        };
        let text = type_step(repo, item, &p.path, text, how, world)?;
        let path = repo_path(item, &p.path);
        let part = parameter::Part {
            item_type: item.item_type.as_str(),
            item_name: &item.display_name,
            path: &path,
        };
        let rendered = parameter::render_part(
            how.parameters.as_deref(),
            &target,
            &part,
            &text,
            &logical_ids,
            &look,
        )
        .map_err(|e| e.to_string())?;
        out.push((p.path.clone(), rendered.into_bytes()));
    }
    Ok(out)
}

/// fabric-cicd's per-type step before the text pipeline.
fn type_step(
    repo: &Repository,
    item: &RepoItem,
    path: &str,
    text: &str,
    how: &Parameterization,
    world: &World<'_>,
) -> Result<String, String> {
    if path == ".platform" {
        return Ok(text.to_string());
    }
    match (item.item_type, path) {
        (ItemType::KQLQueryset | ItemType::KQLDashboard, _) => {
            let (kind, by) = kql_kind(item.item_type);
            let uri_of = |db: &str| {
                let name = match kind {
                    parameter::KqlSources::Queryset => repo
                        .by_logical_id(db)
                        .filter(|d| d.item_type == ItemType::KQLDatabase)
                        .map(|d| d.display_name.clone())
                        .ok_or_else(|| {
                            format!("no KQL database of the repository has the logicalId {db}")
                        })?,
                    parameter::KqlSources::Dashboard => db.to_string(),
                };
                world.kql_uris.get(&name).cloned().ok_or_else(|| {
                    format!("the cluster URI of KQL database `{name}` ({by}) is not known: is it deployed?")
                })
            };
            parameter::fill_cluster_uris(text, kind, &uri_of)
                .map_err(|e| format!("{}/{path}: {e}", item.dir))
        }
        (ItemType::Report, "definition.pbir") => {
            let Some(model) = repo
                .report_semantic_model(item)
                .map_err(|e| e.to_string())?
            else {
                return Ok(text.to_string());
            };
            let id =
                (world.ids)(model.item_type.as_str(), &model.display_name).ok_or_else(|| {
                    format!(
                        "{}/definition.pbir: its semantic model `{}` is not deployed",
                        item.dir, model.display_name
                    )
                })?;
            match rewrite::rewrite_report_pbir(text, &id) {
                Ok(Some(t)) => Ok(t),
                Ok(None) => Ok(text.to_string()),
                Err(e) => Err(format!("{}/definition.pbir: {e}", item.dir)),
            }
        }
        (ItemType::Environment, "Setting/Sparkcompute.yml") => {
            let pool = spark_pool(item, text, how)
                .map(|(name, kind)| {
                    world
                        .pools
                        .iter()
                        .find(|p| p.name == name && p.kind == kind)
                        .map(|p| p.id.clone())
                        .ok_or_else(|| {
                            format!(
                                "{}/Setting/Sparkcompute.yml: no {kind} Spark pool named `{name}` in the target workspace",
                                item.dir
                            )
                        })
                })
                .transpose()?;
            Ok(parameter::render_sparkcompute(text, pool.as_deref()))
        }
        _ => Ok(text.to_string()),
    }
}

fn kql_kind(t: ItemType) -> (parameter::KqlSources, &'static str) {
    if t == ItemType::KQLQueryset {
        (parameter::KqlSources::Queryset, "by databaseItemId")
    } else {
        (parameter::KqlSources::Dashboard, "by name")
    }
}

/// Names of the KQL databases whose query URI `item` (a KQL queryset or dashboard) needs for
/// its empty `clusterUri`s.
pub fn kql_databases(repo: &Repository, item: &RepoItem) -> Vec<String> {
    if !matches!(
        item.item_type,
        ItemType::KQLQueryset | ItemType::KQLDashboard
    ) {
        return Vec::new();
    }
    let (kind, _) = kql_kind(item.item_type);
    let mut out = Vec::new();
    for text in item
        .parts
        .iter()
        .filter(|p| p.path != ".platform")
        .filter_map(|p| p.text())
    {
        for db in parameter::kql_databases_needed(text, kind) {
            let name = match kind {
                parameter::KqlSources::Queryset => match repo.by_logical_id(&db) {
                    Some(d) => d.display_name.clone(),
                    None => continue,
                },
                parameter::KqlSources::Dashboard => db,
            };
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// The pool (name, `Workspace`|`Capacity`) a `spark_pool` entry puts in this Environment's
/// `Sparkcompute.yml`, if one applies.
fn spark_pool(item: &RepoItem, text: &str, how: &Parameterization) -> Option<(String, String)> {
    let params = how.parameters.as_deref()?;
    let id = parameter::instance_pool_id(text)?;
    let r = params.spark_pool_for(&how.environment, &item.display_name, &id)?;
    let kind = match r.pool.pool_type {
        PoolType::Workspace => "Workspace",
        PoolType::Capacity => "Capacity",
    };
    Some((r.pool.name, kind.to_string()))
}

/// Whether rendering `repo`'s selected items needs the workspace's Spark pools.
pub fn needs_pools(repo: &Repository, how: &Parameterization) -> bool {
    repo.selected().any(|i| {
        i.item_type == ItemType::Environment
            && i.part("Setting/Sparkcompute.yml")
                .and_then(|p| p.text())
                .is_some_and(|t| spark_pool(i, t, how).is_some())
    })
}

/// The repository items `item` must wait for: those whose logicalId its text mentions, those
/// its `$items` variables name, and a bound-by-path report's semantic model. Items outside the
/// repository (deployed already) are not edges.
pub fn references<'r>(
    repo: &'r Repository,
    item: &RepoItem,
    how: &Parameterization,
) -> Result<Vec<&'r RepoItem>, String> {
    let lids: Vec<&str> = repo.items.iter().map(|o| o.logical_id.as_str()).collect();
    let mut out: Vec<&RepoItem> = Vec::new();
    let mut add = |o: &'r RepoItem| {
        let itself = o.item_type == item.item_type && o.display_name == item.display_name;
        if !itself && !out.iter().any(|x| std::ptr::eq(*x, o)) {
            out.push(o);
        }
    };
    for p in &item.parts {
        let Some(text) = p.text() else { continue };
        let path = repo_path(item, &p.path);
        let part = parameter::Part {
            item_type: item.item_type.as_str(),
            item_name: &item.display_name,
            path: &path,
        };
        let r = parameter::references(
            how.parameters.as_deref(),
            &how.environment,
            &part,
            text,
            &lids,
        );
        for l in &r.logical_ids {
            if let Some(o) = repo.by_logical_id(l) {
                add(o);
            }
        }
        for (t, n) in &r.items {
            if let Some(o) = t.parse::<ItemType>().ok().and_then(|t| repo.find(t, n)) {
                add(o);
            }
        }
    }
    if item.item_type == ItemType::Report
        && let Some(model) = repo
            .report_semantic_model(item)
            .map_err(|e| e.to_string())?
    {
        add(model);
    }
    for name in kql_databases(repo, item) {
        if let Some(db) = repo.find(ItemType::KQLDatabase, &name) {
            add(db);
        }
    }
    Ok(out)
}

/// `(type, name)` of every item whose `$items` properties some selected item's parameters read
/// (their SQL endpoint and query URI are fetched; ids come from listings).
pub fn items_read_by_parameters(
    repo: &Repository,
    how: &Parameterization,
) -> BTreeSet<(String, String)> {
    repo.selected()
        .flat_map(|item| items_read_by(item, how))
        .collect()
}

/// `(type, name)` of the items whose `$items` variables `item`'s parameters insert.
pub fn items_read_by(item: &RepoItem, how: &Parameterization) -> BTreeSet<(String, String)> {
    references_of(item, how)
        .into_iter()
        .flat_map(|r| r.items)
        .collect()
}

/// `(workspace, type, name)` of the items of other workspaces whose `$items` variables
/// `item`'s parameters insert.
pub fn other_workspace_items(
    item: &RepoItem,
    how: &Parameterization,
) -> BTreeSet<(String, String, String)> {
    references_of(item, how)
        .into_iter()
        .flat_map(|r| r.other_workspace_items)
        .collect()
}

/// The parameter references of each text part of `item`.
fn references_of(item: &RepoItem, how: &Parameterization) -> Vec<parameter::References> {
    let mut out = Vec::new();
    if how.parameters.is_none() {
        return out;
    }
    for p in &item.parts {
        let Some(text) = p.text() else { continue };
        let path = repo_path(item, &p.path);
        let part = parameter::Part {
            item_type: item.item_type.as_str(),
            item_name: &item.display_name,
            path: &path,
        };
        out.push(parameter::references(
            how.parameters.as_deref(),
            &how.environment,
            &part,
            text,
            &[],
        ));
    }
    out
}
