//! What `fabrik publish` is asked to do, from its flags and fabric-cicd's `config.yml`:
//! checked in full (repository, `config.yml`, `parameter.yml`, item types) before any request.

use std::path::PathBuf;

use futures::TryStreamExt;
use regex::Regex;

use super::cicd_config::{CicdConfig, WorkspaceRef, feature_refusal};
use super::item_type::ItemType;
use super::parameter::{Replacement, Token};
use super::pipeline::{EnvVars, Parameterization};
use super::repo::{DiscoverOptions, Repository};
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
    /// `--bulk`.
    pub bulk: bool,
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
    /// Whether the orphan `name` of type `item_type` may be deleted. As fabric-cicd's
    /// `get_orphaned_items`: `items_to_include` (exact `Name.Type`, case-sensitive) replaces
    /// the exclude regex.
    pub fn allows(&self, item_type: ItemType, name: &str) -> bool {
        let (kept, listed) = match &self.items_to_include {
            Some(list) => {
                let me = format!("{name}.{item_type}");
                (false, list.contains(&me))
            }
            None => (
                self.exclude_regex
                    .as_ref()
                    .is_some_and(|re| re.find(name).is_some_and(|m| m.start() == 0)),
                true,
            ),
        };
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
    /// The API root `config.yml`'s `constants.DEFAULT_API_ROOT_URL` sets: the client must send
    /// every request there (`None`: the command's `--base-url`).
    pub api_root: Option<String>,
}

impl Target {
    /// The workspace id (a name is looked up). Refuses, before any request, a client that
    /// does not send to [`Self::api_root`].
    pub async fn resolve(&self, client: &fabrik_client::FabricClient) -> Result<String, String> {
        if let Some(root) = &self.api_root {
            check_api_root(root, client.base_url().as_str())?;
        }
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

/// `config.yml`'s API root against the client's base URL (`…/v1`).
fn check_api_root(root: &str, base: &str) -> Result<(), String> {
    let base = base.trim_end_matches('/');
    let want = format!("{}/v1", root.trim_end_matches('/'));
    if base.eq_ignore_ascii_case(&want) {
        Ok(())
    } else {
        Err(format!(
            "config.yml's constants.DEFAULT_API_ROOT_URL is {root}, but requests would go to {base}; nothing was sent"
        ))
    }
}

/// `--cicd-feature` flags: one fabrik refuses (an unknown one included) is an error. The
/// file's `features:` are checked where they are written, by [`CicdConfig::load_with`].
fn check_features(features: &[String], problems: &mut Vec<Problem>) {
    for f in features {
        if let Some((message, hint)) = feature_refusal(f) {
            problems.push(Problem {
                hint: Some(hint),
                ..problem(PathBuf::from("--cicd-feature"), message)
            });
        }
    }
}

/// fabric-cicd's `_publish_folders`: a folder the exclude regex finds in its path or in an
/// ancestor's is not created; with an include list, only the listed folders and their
/// ancestors are. (`items_to_include` creates every folder, as fabric-cicd does.)
fn retain_published_folders(folders: &mut Vec<String>, opts: &DiscoverOptions) {
    folders.retain(|f| {
        let excluded = opts.folder_exclude_regex.as_ref().is_some_and(|re| {
            let mut path = f.as_str();
            loop {
                if re.is_match(path) {
                    return true;
                }
                match path.rsplit_once('/') {
                    Some((parent, _)) if !parent.is_empty() => path = parent,
                    _ => return false,
                }
            }
        });
        let included = opts.folder_path_to_include.as_ref().is_none_or(|list| {
            list.iter()
                .any(|i| i == f || i.starts_with(&format!("{f}/")))
        });
        !excluded && included
    });
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

/// fabric-cicd's `enable_bulk_publish`: bulk mode only beside `enable_experimental_features`
/// (an error otherwise, as fabric-cicd refuses it), and, as fabric-cicd does, standard mode
/// with a warning when a Warehouse or DataBuildToolJob is published or a `$items`
/// `find_replace` value applies to every item (no filter). `--bulk` has neither fallback: it
/// publishes what bulk import refuses one by one.
fn bulk_from_features(
    features: &[String],
    repo: &Repository,
    how: &Parameterization,
    at: PathBuf,
    problems: &mut Vec<Problem>,
) -> bool {
    if !features.iter().any(|f| f == "enable_bulk_publish") {
        return false;
    }
    if !features.iter().any(|f| f == "enable_experimental_features") {
        problems.push(Problem {
            hint: Some("add `enable_experimental_features` to `features:` (or --cicd-feature), or give `--bulk`".into()),
            ..problem(
                at,
                "`enable_bulk_publish` is experimental in fabric-cicd 1.4.0, which refuses it without `enable_experimental_features`".into(),
            )
        });
        return false;
    }
    let refused: Vec<String> = repo
        .selected()
        .filter(|i| i.item_type.facts().bulk_unsupported)
        .map(|i| format!("{}.{}", i.display_name, i.item_type.as_str()))
        .collect();
    let unfiltered = how.parameters.as_ref().and_then(|p| {
        p.find_replace.iter().find(|e| {
            let items = matches!(
                e.replace.get(&how.environment),
                Some(Replacement::Token(Token::Item { .. }))
            );
            let f = &e.filters;
            items && f.item_type.is_none() && f.item_name.is_none() && f.file_path.is_none()
        })
    });
    let why = if !refused.is_empty() {
        format!("bulk import refuses {}", refused.join(", "))
    } else if let Some(e) = unfiltered {
        format!(
            "the `$items` find_replace at {}:{} has no filter",
            e.origin.file.display(),
            e.origin.line
        )
    } else {
        return true;
    };
    problems.push(Problem {
        warning: true,
        hint: Some("give `--bulk` to import the rest in bulk and publish those one by one".into()),
        ..problem(
            at,
            format!("`enable_bulk_publish`: publishing item by item, as fabric-cicd 1.4.0 falls back to its standard mode when {why}"),
        )
    });
    false
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
        Some(path) => Some(CicdConfig::load_with(path, environment, &args.features)?),
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
    check_features(&args.features, &mut problems);
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
        Ok(mut r) => {
            retain_published_folders(&mut r.folders, &opts);
            r
        }
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
    let bulk_at = match &args.cicd_config {
        Some(path) if !args.features.iter().any(|f| f == "enable_bulk_publish") => path.clone(),
        _ => PathBuf::from("--cicd-feature"),
    };
    how.bulk = args.bulk || bulk_from_features(&features, &repo, &how, bulk_at, &mut problems);
    if problems.iter().any(Problem::is_error) {
        return Err(problems);
    }
    Ok(Some(Resolved {
        target: Target {
            workspace,
            unpublish: unpublish_of(args, cicd.as_ref(), features),
            api_root: cicd.as_ref().and_then(|c| c.api_root.clone()),
        },
        repo,
        how,
        warnings: problems,
    }))
}

/// What unpublishing does: as fabric-cicd's `deploy_with_config`, a config unpublishes unless
/// it skips it; without one, `--unpublish` asks.
fn unpublish_of(args: &PublishArgs, cicd: Option<&CicdConfig>, features: Vec<String>) -> Unpublish {
    Unpublish {
        enabled: match cicd {
            Some(c) => !c.unpublish.skip,
            None => args.unpublish,
        },
        exclude_regex: cicd
            .and_then(|c| c.unpublish.exclude_regex.as_ref())
            .and_then(|s| Regex::new(s).ok()),
        items_to_include: cicd.and_then(|c| c.unpublish.items_to_include.clone()),
        features,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::publish::repo::tests::fixture;

    /// A `config.yml` in `dir` publishing the shared fixture, with `rest` appended.
    fn config(dir: &Path, rest: &str) -> PathBuf {
        let path = dir.join("config.yml");
        let text = format!(
            "core:\n  workspace_id: 11111111-2222-4333-8444-555555555555\n  repository_directory: \"{}\"\n{rest}",
            fixture().display()
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn run(args: &PublishArgs) -> Result<Option<Resolved>, Vec<Problem>> {
        resolve(args, "test", EnvVars::fixed(BTreeMap::new()))
    }

    #[test]
    fn unpublish_items_to_include_replaces_the_regex_and_is_exact() {
        let u = Unpublish {
            enabled: true,
            exclude_regex: Some(Regex::new("^KEEP").unwrap()),
            items_to_include: Some(vec!["KEEP_me.Notebook".into()]),
            features: Vec::new(),
        };
        assert!(
            u.allows(ItemType::Notebook, "KEEP_me"),
            "the list wins over the regex"
        );
        assert!(
            !u.allows(ItemType::Notebook, "keep_me"),
            "compared as written"
        );
        assert!(!u.allows(ItemType::Notebook, "Other"));
        let regex_only = Unpublish {
            items_to_include: None,
            ..u
        };
        assert!(!regex_only.allows(ItemType::Notebook, "KEEP_me"));
        assert!(regex_only.allows(ItemType::Notebook, "Other"));
    }

    #[test]
    fn the_client_must_send_to_the_configs_api_root() {
        let root = "https://0a1b.z0a.w.api.fabric.microsoft.com";
        assert!(check_api_root(root, &format!("{root}/v1")).is_ok());
        assert!(check_api_root(&format!("{root}/"), &format!("{root}/v1/")).is_ok());
        let e = check_api_root(root, "https://api.fabric.microsoft.com/v1").unwrap_err();
        assert!(
            e.contains("DEFAULT_API_ROOT_URL") && e.contains(root),
            "{e}"
        );
    }

    #[test]
    fn the_resolved_target_carries_the_configs_api_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = "https://0a1b.z0a.w.api.fabric.microsoft.com";
        let args = PublishArgs {
            cicd_config: Some(config(
                dir.path(),
                &format!("constants:\n  DEFAULT_API_ROOT_URL: {root}\n"),
            )),
            ..PublishArgs::default()
        };
        let r = run(&args).unwrap().unwrap();
        assert_eq!(r.target.api_root.as_deref(), Some(root));
        let plain = PublishArgs {
            cicd_config: Some(config(dir.path(), "")),
            ..PublishArgs::default()
        };
        assert_eq!(run(&plain).unwrap().unwrap().target.api_root, None);
    }

    #[test]
    fn feature_problems_are_blamed_on_where_the_flag_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let args = PublishArgs {
            cicd_config: Some(config(dir.path(), "features:\n  - enable_everything\n")),
            ..PublishArgs::default()
        };
        let errs = run(&args).unwrap_err();
        let errs: Vec<_> = errs.iter().filter(|p| p.is_error()).collect();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].file, dir.path().join("config.yml"));
        assert_eq!(errs[0].pos.map(|p| p.line), Some(5));
        assert!(errs[0].message.contains("enable_everything"));

        for (flag, word) in [
            ("enable_hard_delete", "does not support"),
            ("enable_response_collection", "does not support"),
            ("enable_nothing", "not a feature flag"),
        ] {
            let args = PublishArgs {
                repository: Some(fixture()),
                workspace_id: Some("11111111-2222-4333-8444-555555555555".into()),
                features: vec![flag.into()],
                ..PublishArgs::default()
            };
            let errs = run(&args).unwrap_err();
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert_eq!(errs[0].file, Path::new("--cicd-feature"));
            assert!(
                errs[0].message.contains(word),
                "{flag}: {}",
                errs[0].message
            );
            assert!(errs[0].hint.is_some(), "{flag}: says what to do");
        }
    }

    #[test]
    fn folder_filters_also_skip_the_folders_as_fabric_cicd_does() {
        let all = || -> Vec<String> {
            ["/a", "/a/b", "/a/b/c", "/d", "/d/a"]
                .map(String::from)
                .to_vec()
        };
        let mut f = all();
        let opts = DiscoverOptions {
            folder_exclude_regex: Some(Regex::new("^/a").unwrap()),
            ..DiscoverOptions::default()
        };
        retain_published_folders(&mut f, &opts);
        assert_eq!(f, ["/d", "/d/a"], "an excluded folder's subfolders go too");
        let mut f = all();
        let opts = DiscoverOptions {
            folder_path_to_include: Some(vec!["/a/b".into()]),
            ..DiscoverOptions::default()
        };
        retain_published_folders(&mut f, &opts);
        assert_eq!(f, ["/a", "/a/b"], "the listed folder and its ancestors");
        let mut f = all();
        let opts = DiscoverOptions {
            items_to_include: Some(vec!["X.Notebook".into()]),
            ..DiscoverOptions::default()
        };
        retain_published_folders(&mut f, &opts);
        assert_eq!(f, all(), "items_to_include creates every folder");
    }

    #[test]
    fn publish_filters_apply_only_with_their_flags_from_file_or_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(
            dir.path(),
            "publish:\n  items_to_include: [Ingest.Notebook]\nfeatures: [enable_experimental_features]\n",
        );
        let mut args = PublishArgs {
            cicd_config: Some(path),
            ..PublishArgs::default()
        };
        let errs = run(&args).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].pos.map(|p| p.line), Some(5));
        assert!(errs[0].message.contains("`enable_items_to_include`"));
        args.features = vec!["enable_items_to_include".into()];
        let r = run(&args).unwrap().unwrap();
        let selected: Vec<_> = r.repo.selected().map(|i| i.display_name.as_str()).collect();
        assert_eq!(selected, ["Ingest"]);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }
}
