//! What `fabrik publish` is asked to do, from its flags and fabric-cicd's `config.yml`:
//! checked in full (repository, `config.yml`, `parameter.yml`, item types) before any request.

use std::path::PathBuf;

use futures::TryStreamExt;
use regex::Regex;

use super::cicd_config::{CicdConfig, WorkspaceRef};
use super::item_type::{FEATURE_FLAGS, ItemType};
use super::pipeline::{EnvVars, Parameterization};
use super::repo::Repository;
use crate::config::Problem;

/// The flags of `fabrik publish` (beside the global ones).
#[derive(Debug, Clone, Default)]
pub struct PublishArgs {
    /// `--repository`.
    pub repository: Option<PathBuf>,
    /// `--workspace-id`.
    pub workspace_id: Option<String>,
    /// `--cicd-config`.
    pub cicd_config: Option<PathBuf>,
    /// `--parameter`.
    pub parameter: Option<PathBuf>,
    /// `--item-types`.
    pub item_types: Vec<String>,
    /// `--cicd-feature`.
    pub features: Vec<String>,
    /// `--unpublish`.
    pub unpublish: bool,
}

/// Which orphans `--unpublish` deletes.
#[derive(Debug, Clone, Default)]
pub struct Unpublish {
    /// Delete orphans at all.
    pub enabled: bool,
    /// fabric-cicd's `unpublish.exclude_regex`: orphans whose name matches from the start stay.
    pub exclude_regex: Option<Regex>,
    /// `unpublish.items_to_include`: only these `Name.Type` orphans go.
    pub items_to_include: Option<Vec<String>>,
    /// Feature flags given (`enable_lakehouse_unpublish` lets lakehouse orphans go, …).
    pub features: Vec<String>,
}

impl Unpublish {
    /// Whether the orphan `name` of type `item_type` may be deleted.
    pub fn allows(&self, item_type: ItemType, name: &str) -> bool {
        let kept = self
            .exclude_regex
            .as_ref()
            .is_some_and(|re| re.find(name).is_some_and(|m| m.start() == 0));
        let listed = self.items_to_include.as_ref().is_none_or(|list| {
            let me = format!("{name}.{item_type}").to_lowercase();
            list.iter().any(|i| i.to_lowercase() == me)
        });
        let guarded = item_type
            .facts()
            .unpublish_flag
            .is_some_and(|flag| !self.features.iter().any(|f| f == flag));
        self.enabled && !kept && listed && !guarded
    }
}

/// Where to publish.
#[derive(Debug, Clone)]
pub struct Target {
    /// The workspace, by id or by name.
    pub workspace: WorkspaceRef,
    /// What to unpublish.
    pub unpublish: Unpublish,
}

impl Target {
    /// The workspace id (a name is looked up).
    pub async fn resolve(&self, client: &fabrik_client::FabricClient) -> Result<String, String> {
        match &self.workspace {
            WorkspaceRef::Id(id) => Ok(id.clone()),
            WorkspaceRef::Name(name) => {
                let all: Vec<_> = client
                    .list_workspaces()
                    .try_collect()
                    .await
                    .map_err(|e| format!("listing workspaces to find `{name}`: {e}"))?;
                all.into_iter()
                    .find(|w| &w.display_name == name)
                    .map(|w| w.id)
                    .ok_or_else(|| format!("no workspace named `{name}`"))
            }
        }
    }
}

/// fabric-cicd feature flags fabrik acts on; the others it knows are accepted with a warning.
const HONOURED: &[&str] = &[
    "enable_shortcut_publish",
    "continue_on_shortcut_failure",
    "enable_shortcut_exclude",
    "enable_environment_variable_replacement",
    "disable_workspace_folder_publish",
    "enable_lakehouse_unpublish",
    "enable_warehouse_unpublish",
    "enable_sqldatabase_unpublish",
    "enable_eventhouse_unpublish",
    "enable_kqldatabase_unpublish",
    "enable_cosmosdbdatabase_unpublish",
    "enable_graphmodel_unpublish",
];

/// Unknown fabric-cicd features are errors; known ones fabrik does not act on, warnings.
fn check_features(features: &[String], problems: &mut Vec<Problem>) {
    for f in features {
        if !FEATURE_FLAGS.contains(&f.as_str()) {
            problems.push(problem(
                PathBuf::from("--cicd-feature"),
                format!(
                    "unknown fabric-cicd feature `{f}` (known: {})",
                    FEATURE_FLAGS.join(", ")
                ),
            ));
        } else if !HONOURED.contains(&f.as_str()) {
            problems.push(Problem {
                warning: true,
                ..problem(
                    PathBuf::from("--cicd-feature"),
                    format!(
                        "fabric-cicd feature `{f}` is not applied by fabrik yet (docs/PUBLISHING.md)"
                    ),
                )
            });
        }
    }
}

/// `--item-types`, each a type fabric-cicd publishes.
fn item_types(names: &[String], problems: &mut Vec<Problem>) -> Vec<ItemType> {
    let mut types = Vec::new();
    for t in names {
        match t.trim().parse::<ItemType>() {
            Ok(t) => types.push(t),
            Err(_) => problems.push(problem(
                PathBuf::from("--item-types"),
                format!("`{t}` is not an item type fabric-cicd publishes"),
            )),
        }
    }
    types
}

fn problem(file: PathBuf, message: String) -> Problem {
    Problem {
        file,
        pos: None,
        source_line: None,
        message,
        hint: None,
        warning: false,
    }
}

/// A resolved publish: where, what, how, and the warnings found on the way.
#[derive(Debug)]
pub struct Resolved {
    /// Where to publish.
    pub target: Target,
    /// The repository.
    pub repo: Repository,
    /// How its parts are rendered.
    pub how: Parameterization,
    /// Findings that do not stop the run.
    pub warnings: Vec<Problem>,
}

/// The target, the repository and how to render it for `environment`, or every problem found.
/// `Ok(None)`: `config.yml` says to skip publishing in this environment.
pub fn resolve(
    args: &PublishArgs,
    environment: &str,
    env: EnvVars,
) -> Result<Option<Resolved>, Vec<Problem>> {
    let cicd = match &args.cicd_config {
        Some(path) => Some(CicdConfig::load(path, environment)?),
        None => None,
    };
    if cicd.as_ref().is_some_and(|c| c.publish.skip) {
        return Ok(None);
    }
    let mut problems = cicd
        .as_ref()
        .map(|c| c.warnings.clone())
        .unwrap_or_default();
    let mut opts = cicd
        .as_ref()
        .map(CicdConfig::discover_options)
        .unwrap_or_default();
    if !args.item_types.is_empty() {
        opts.item_types_in_scope = Some(item_types(&args.item_types, &mut problems));
    }
    let mut features: Vec<String> = cicd
        .as_ref()
        .map(|c| c.features.clone())
        .unwrap_or_default();
    features.extend(args.features.iter().cloned());
    check_features(&features, &mut problems);
    if features
        .iter()
        .any(|f| f == "disable_workspace_folder_publish")
    {
        opts.folders = false;
    }
    let workspace = match (&args.workspace_id, &cicd) {
        (Some(id), _) => Some(WorkspaceRef::Id(id.clone())),
        (None, Some(c)) => Some(c.workspace.clone()),
        (None, None) => None,
    };
    let root = args
        .repository
        .clone()
        .or_else(|| cicd.as_ref().map(|c| c.repository_directory.clone()));
    let (Some(workspace), Some(root)) = (workspace, root) else {
        problems.push(problem(
            PathBuf::from("fabrik publish"),
            "give --repository and --workspace-id, or --cicd-config".into(),
        ));
        return Err(problems);
    };
    let repo = match Repository::discover(&root, &opts) {
        Ok(r) => r,
        Err(p) => {
            problems.extend(p);
            return Err(problems);
        }
    };
    problems.extend(repo.warnings.iter().cloned());
    problems.extend(repo.dangling_logical_ids());
    // fabric-cicd's default: the repository's own parameter.yml, when it has one.
    let parameter = args
        .parameter
        .clone()
        .or_else(|| cicd.as_ref().and_then(|c| c.parameter.clone()))
        .or_else(|| Some(root.join("parameter.yml")).filter(|p| p.is_file()));
    let env_enabled = features
        .iter()
        .any(|f| f == "enable_environment_variable_replacement");
    let mut how =
        match Parameterization::load(&repo, parameter.as_deref(), environment, env_enabled, env) {
            Ok((how, warnings)) => {
                problems.extend(warnings);
                how
            }
            Err(p) => {
                problems.extend(p);
                return Err(problems);
            }
        };
    if problems.iter().any(Problem::is_error) {
        return Err(problems);
    }
    let re = |s: Option<&String>| s.and_then(|s| Regex::new(s).ok());
    if features.iter().any(|f| f == "enable_shortcut_publish") {
        how.shortcuts = Some(super::pipeline::ShortcutPublish {
            exclude: re(cicd
                .as_ref()
                .and_then(|c| c.publish.shortcut_exclude_regex.as_ref())),
            continue_on_failure: features.iter().any(|f| f == "continue_on_shortcut_failure"),
        });
    }
    let unpublish = Unpublish {
        // As fabric-cicd's `deploy_with_config`: a config unpublishes unless it skips it.
        enabled: match &cicd {
            Some(c) => !c.unpublish.skip,
            None => args.unpublish,
        },
        exclude_regex: re(cicd
            .as_ref()
            .and_then(|c| c.unpublish.exclude_regex.as_ref())),
        items_to_include: cicd
            .as_ref()
            .and_then(|c| c.unpublish.items_to_include.clone()),
        features: features.clone(),
    };
    Ok(Some(Resolved {
        target: Target {
            workspace,
            unpublish,
        },
        repo,
        how,
        warnings: problems,
    }))
}
