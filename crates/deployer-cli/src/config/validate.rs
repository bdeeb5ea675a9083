//! Validation of the parsed configuration for one environment, one part per function (the
//! environment and naming, then per workspace its folders, lakehouses, notebooks, principals
//! and git connection). Every problem is collected with the position of the value it is about.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use base64::Engine as _;

use super::locate::Locations;
use super::model::{self, Config};
use super::{
    CapacityRef, DesiredItem, DesiredPrincipal, DesiredWorkspace, LoadOptions, Problem, naming,
    principals, standards,
};

/// Where problems go: the file, its text and positions, for `file:line:column` and a caret.
struct Check<'a> {
    path: &'a Path,
    text: &'a str,
    locs: &'a Locations,
    problems: Vec<Problem>,
}

impl Check<'_> {
    fn err(&mut self, at: &str, message: String, hint: Option<String>) {
        self.problems.push(Problem::at(
            self.path,
            self.text,
            self.locs.find(at),
            message,
            hint,
        ));
    }
}

/// What every workspace of the environment shares.
struct Shared<'a> {
    config: &'a Config,
    environment: model::Environment,
    env_name: &'a str,
    base: &'a Path,
    lenient: bool,
    standards: Option<standards::Standards>,
    repositories: Option<&'a dyn super::RepositoryReader>,
    sections: &'a [super::Section],
}

#[allow(
    clippy::too_many_arguments,
    reason = "the parsed file and where it came from"
)]
pub(super) fn validate(
    path: &Path,
    text: &str,
    base: &Path,
    locs: &Locations,
    config: &Config,
    opts: &LoadOptions,
    problems: &mut Vec<Problem>,
) -> Option<Vec<DesiredWorkspace>> {
    let mut c = Check {
        path,
        text,
        locs,
        problems: Vec::new(),
    };
    let out = validate_all(&mut c, base, config, opts);
    problems.append(&mut c.problems);
    out
}

fn validate_all(
    c: &mut Check<'_>,
    base: &Path,
    config: &Config,
    opts: &LoadOptions,
) -> Option<Vec<DesiredWorkspace>> {
    let env_name = opts.environment.as_str();
    let environment = match config.environments.get(env_name) {
        Some(e) => e.clone(),
        None if config.environments.is_empty() => Default::default(),
        None => {
            let known: Vec<&str> = config.environments.keys().map(String::as_str).collect();
            c.err(
                "environments",
                format!("environment '{env_name}' is not defined"),
                Some(format!("one of: {}", known.join(", "))),
            );
            return None;
        }
    };
    for bad in naming::unknown_placeholders(&config.naming.workspace) {
        c.err(
            "naming.workspace",
            format!("unknown placeholder {{{bad}}} in naming.workspace"),
            Some(format!("placeholders: {}", naming::PLACEHOLDERS.join(", "))),
        );
    }
    let shared = Shared {
        config,
        environment,
        env_name,
        base,
        lenient: opts.lenient,
        standards: naming_standards(c, base, config),
        repositories: opts.repositories.as_deref(),
        sections: &opts.sections,
    };
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    // Problems in principals files carry their own file and position; each file is read once
    // however many workspaces use it, so each of its problems is reported once.
    let mut files = PrincipalFiles::default();
    for (wi, ws) in config.workspaces.iter().enumerate() {
        out.push(workspace(c, &shared, &mut files, &mut names, wi, ws));
    }
    c.problems.extend(files.problems);
    Some(out)
}

fn naming_standards(
    c: &mut Check<'_>,
    base: &Path,
    config: &Config,
) -> Option<standards::Standards> {
    match config.naming.standards.as_deref() {
        None => None,
        Some("seed") => standards::Standards::new(standards::StandardsFile::default()).ok(),
        Some(file) => {
            let p = base.join(file);
            let parsed = std::fs::read_to_string(&p)
                .map_err(|e| format!("cannot read naming standards '{}': {e}", p.display()))
                .and_then(|t| {
                    serde_norway::from_str::<standards::StandardsFile>(&t)
                        .map_err(|e| format!("{}: {e}", p.display()))
                })
                .and_then(standards::Standards::new);
            match parsed {
                Ok(s) => Some(s),
                Err(e) => {
                    c.err("naming.standards", e, None);
                    None
                }
            }
        }
    }
}

fn workspace(
    c: &mut Check<'_>,
    shared: &Shared<'_>,
    files: &mut PrincipalFiles,
    names: &mut BTreeSet<String>,
    wi: usize,
    ws: &model::Workspace,
) -> DesiredWorkspace {
    let config = shared.config;
    let at = |f: &str| format!("workspaces[{wi}].{f}");
    let cx = naming::NameContext {
        prefix: &config.project.prefix,
        environment: shared.env_name,
        organization: config.project.organization.as_deref().unwrap_or(""),
    };
    let name = naming::workspace_name(&config.naming.workspace, &ws.name, &cx);
    if let Some(p) = naming::workspace_name_problem(&name) {
        c.err(&at("name"), p, None);
    }
    if !names.insert(name.to_lowercase()) {
        c.err(
            &at("name"),
            format!("workspace '{name}' is defined twice"),
            None,
        );
    }
    let description = ws.description.clone().unwrap_or_default();
    if description.chars().count() > 4000 {
        c.err(
            &at("description"),
            "workspace description is longer than 4000 characters".into(),
            None,
        );
    }
    let capacity = ws
        .capacity
        .clone()
        .or(shared.environment.capacity.clone())
        .map(|c| {
            if principals::is_guid(&c) {
                CapacityRef::Id(c)
            } else {
                CapacityRef::Name(c)
            }
        });
    let mut folders = folders(c, wi, ws);
    let mut items = Vec::new();
    let mut item_names = BTreeSet::new();
    lakehouses(c, shared, wi, ws, &folders, &mut item_names, &mut items);
    notebooks(c, shared, wi, ws, &folders, &mut item_names, &mut items);
    let publish = ws
        .repository
        .as_ref()
        .and_then(|r| repository(c, shared, &at("repository"), r, &items, &mut folders));
    let principals = workspace_principals(c, shared, files, wi, ws);
    if let Some(g) = &ws.git {
        git(c, &at("git"), g);
    }
    sections(c, shared, wi, ws);
    DesiredWorkspace {
        name,
        description,
        capacity,
        folders,
        items,
        principals,
        git: ws.git.clone(),
        publish,
        sections: ws.sections.clone(),
    }
}

/// The workspace's keys owned by kinds: each checked by its owner, at the value it is about;
/// a key nothing owns is an error at that key, naming every key there is.
fn sections(c: &mut Check<'_>, shared: &Shared<'_>, wi: usize, ws: &model::Workspace) {
    for (key, value) in &ws.sections {
        let at = format!("workspaces[{wi}].{key}");
        let Some(section) = shared.sections.iter().find(|s| s.key() == key) else {
            let mut known = workspace_keys();
            known.extend(shared.sections.iter().map(|s| s.key().to_string()));
            known.sort();
            let known: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
            // As serde words it for the model's own fields, at the key.
            let pos = c.locs.key(&at).or_else(|| c.locs.find(&at));
            c.problems.push(Problem::at(
                c.path,
                c.text,
                pos,
                format!(
                    "workspaces[{wi}]: unknown field `{key}`, expected one of {}",
                    known.join(", ")
                ),
                None,
            ));
            continue;
        };
        for f in section.check(value) {
            c.err(
                &format!("{at}{}", f.path),
                format!("{key}{}: {}", f.path, f.message),
                f.hint,
            );
        }
    }
}

/// The keys of a workspace the model itself reads.
fn workspace_keys() -> Vec<String> {
    let schema = schemars::schema_for!(model::Workspace);
    schema
        .get("properties")
        .and_then(serde_json::Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// Reads a workspace's `repository:` and its parameter file as `fabrik publish` would, so
/// their problems are reported with the config's; adds the repository's folders.
fn repository(
    c: &mut Check<'_>,
    shared: &Shared<'_>,
    at: &str,
    r: &model::RepositorySource,
    items: &[DesiredItem],
    folders: &mut Vec<String>,
) -> Option<super::PublishSource> {
    let root = shared.base.join(&r.path);
    if !root.is_dir() {
        c.err(
            &format!("{at}.path"),
            format!("repository folder {} does not exist", root.display()),
            None,
        );
        return None;
    }
    let Some(reader) = shared.repositories else {
        c.err(
            at,
            "repositories are not read here (this loader was given no repository reader)".into(),
            None,
        );
        return None;
    };
    let parameter = r.parameter.as_ref().map(|p| shared.base.join(p));
    let item_types = r.item_types.clone().unwrap_or_default();
    // `$ENV:` needs fabric-cicd's feature flag, which a config does not give: the reader checks
    // values against no variables, so a file using them is refused.
    let read = match reader.read(&root, parameter.as_deref(), &item_types, shared.env_name) {
        Ok(r) => r,
        Err(problems) => {
            c.problems.extend(problems);
            return None;
        }
    };
    c.problems
        .extend(read.warnings.into_iter().filter(|p| !p.is_error()));
    let mut published = Vec::new();
    for (t, name) in read.items {
        if items
            .iter()
            .any(|i| i.item_type == t && i.name.eq_ignore_ascii_case(&name))
        {
            c.err(
                at,
                format!(
                    "{t} '{name}' is both in this workspace's config and in its repository {}",
                    root.display()
                ),
                Some("keep one of them".into()),
            );
        }
        published.push((t, name));
    }
    for f in read.folders {
        let f = f.trim_start_matches('/').to_string();
        if !folders.contains(&f) {
            folders.push(f);
        }
    }
    // Parents before children, as the folder kind expects.
    folders.sort_by_key(|f| f.matches('/').count());
    Some(super::PublishSource {
        repository: root,
        parameter,
        item_types: r.item_types.clone(),
        items: published,
        loaded: read.loaded,
    })
}

/// Every parent of a nested path is a folder too, listed before its children.
fn folders(c: &mut Check<'_>, wi: usize, ws: &model::Workspace) -> Vec<String> {
    let mut folders: Vec<String> = Vec::new();
    for (fi, f) in ws.folders.iter().enumerate() {
        let parts: Vec<&str> = f.split('/').collect();
        if parts.iter().any(|p| p.trim().is_empty() || p.trim() != *p) || parts.len() > 10 {
            c.err(
                &format!("workspaces[{wi}].folders[{fi}]"),
                format!(
                    "folder path '{f}' is invalid: empty or padded segments, or deeper than 10"
                ),
                None,
            );
            continue;
        }
        for depth in 1..=parts.len() {
            let p = parts[..depth].join("/");
            if !folders.contains(&p) {
                folders.push(p);
            }
        }
    }
    folders
}

fn check_folder(c: &mut Check<'_>, field: &str, folder: &Option<String>, folders: &[String]) {
    if let Some(f) = folder
        && !folders.contains(f)
    {
        c.err(
            field,
            format!("folder '{f}' is not one of this workspace's folders"),
            Some("add it under folders".into()),
        );
    }
}

/// The naming standards' verdict on an item name, and the duplicate check.
fn item_name(
    c: &mut Check<'_>,
    shared: &Shared<'_>,
    field: &str,
    item_type: &'static str,
    name: &str,
    item_names: &mut BTreeSet<(&'static str, String)>,
) {
    if let Some(v) = shared
        .standards
        .as_ref()
        .and_then(|s| s.check(item_type, name))
    {
        c.err(field, v.message, v.suggestion.map(|f| format!("try '{f}'")));
    }
    if !item_names.insert((item_type, name.to_lowercase())) {
        c.err(
            field,
            format!(
                "{} '{name}' is defined twice in this workspace",
                item_type.to_lowercase()
            ),
            None,
        );
    }
}

fn lakehouses(
    c: &mut Check<'_>,
    shared: &Shared<'_>,
    wi: usize,
    ws: &model::Workspace,
    folders: &[String],
    item_names: &mut BTreeSet<(&'static str, String)>,
    items: &mut Vec<DesiredItem>,
) {
    for (li, lh) in ws.lakehouses.iter().enumerate() {
        let field = format!("workspaces[{wi}].lakehouses[{li}]");
        if let Some((msg, fix)) = naming::lakehouse_name_problem(&lh.name) {
            c.err(&format!("{field}.name"), msg, Some(fix));
        }
        item_name(
            c,
            shared,
            &format!("{field}.name"),
            "Lakehouse",
            &lh.name,
            item_names,
        );
        check_folder(c, &format!("{field}.folder"), &lh.folder, folders);
        items.push(DesiredItem {
            name: lh.name.clone(),
            item_type: "Lakehouse".into(),
            description: lh.description.clone().unwrap_or_default(),
            folder: lh.folder.clone(),
            definition: None,
        });
    }
}

fn notebooks(
    c: &mut Check<'_>,
    shared: &Shared<'_>,
    wi: usize,
    ws: &model::Workspace,
    folders: &[String],
    item_names: &mut BTreeSet<(&'static str, String)>,
    items: &mut Vec<DesiredItem>,
) {
    for (ni, nb) in ws.notebooks.iter().enumerate() {
        let field = format!("workspaces[{wi}].notebooks[{ni}]");
        if nb.name.trim().is_empty() || nb.name.chars().count() > 256 {
            c.err(
                &format!("{field}.name"),
                "notebook name must be 1 to 256 characters".into(),
                None,
            );
        }
        item_name(
            c,
            shared,
            &format!("{field}.name"),
            "Notebook",
            &nb.name,
            item_names,
        );
        check_folder(c, &format!("{field}.folder"), &nb.folder, folders);
        let file = shared.base.join(&nb.file);
        let part = match Path::new(&nb.file).extension().and_then(|e| e.to_str()) {
            Some("py") => "notebook-content.py",
            Some("ipynb") => "notebook-content.ipynb",
            _ => {
                c.err(
                    &format!("{field}.file"),
                    format!("notebook file '{}' must be a .py or .ipynb file", nb.file),
                    None,
                );
                continue;
            }
        };
        match std::fs::read(&file) {
            Ok(bytes) => {
                if part.ends_with(".ipynb")
                    && serde_json::from_slice::<serde_json::Value>(&bytes).is_err()
                {
                    c.err(
                        &format!("{field}.file"),
                        format!("notebook file '{}' is not valid JSON", file.display()),
                        None,
                    );
                }
                let payload = base64::engine::general_purpose::STANDARD.encode(&bytes);
                items.push(DesiredItem {
                    name: nb.name.clone(),
                    item_type: "Notebook".into(),
                    description: nb.description.clone().unwrap_or_default(),
                    folder: nb.folder.clone(),
                    definition: Some(vec![(part.to_string(), payload)]),
                });
            }
            Err(e) => c.err(
                &format!("{field}.file"),
                format!("cannot read notebook file '{}': {e}", file.display()),
                None,
            ),
        }
    }
}

/// Principals files, each parsed once for all the workspaces that use it.
#[derive(Default)]
struct PrincipalFiles {
    parsed: BTreeMap<std::path::PathBuf, Vec<principals::PrincipalLine>>,
    problems: Vec<Problem>,
}

/// The environment's principals file, the workspace's, then inline principals (last wins).
fn workspace_principals(
    c: &mut Check<'_>,
    shared: &Shared<'_>,
    files: &mut PrincipalFiles,
    wi: usize,
    ws: &model::Workspace,
) -> Vec<DesiredPrincipal> {
    let env_name = shared.env_name;
    let mut by_id: BTreeMap<String, DesiredPrincipal> = BTreeMap::new();
    let sources = [
        shared.environment.principals_file.as_ref().map(|f| {
            (
                f.clone(),
                format!("environments.{env_name}.principals_file"),
            )
        }),
        ws.principals_file.as_ref().map(|f| {
            (
                f.replace("{environment}", env_name),
                format!("workspaces[{wi}].principals_file"),
            )
        }),
    ];
    for (file, field) in sources.into_iter().flatten() {
        let p = shared.base.join(&file);
        let lines = match files.parsed.get(&p) {
            Some(lines) => lines.clone(),
            None => match std::fs::read_to_string(&p) {
                Ok(t) => {
                    let (lines, found) = principals::parse(&p, &t, shared.lenient);
                    files.problems.extend(found);
                    files.parsed.insert(p.clone(), lines.clone());
                    lines
                }
                Err(e) => {
                    c.err(
                        &field,
                        format!("cannot read principals file '{}': {e}", p.display()),
                        None,
                    );
                    continue;
                }
            },
        };
        for l in lines {
            by_id.insert(
                l.id.clone(),
                DesiredPrincipal {
                    id: l.id,
                    kind: l.kind,
                    role: l.role,
                },
            );
        }
    }
    for (pi, p) in ws.principals.iter().enumerate() {
        if let Some(d) = inline_principal(c, &format!("workspaces[{wi}].principals[{pi}]"), p) {
            by_id.insert(p.id.clone(), d);
        }
    }
    by_id.into_values().collect()
}

fn inline_principal(
    c: &mut Check<'_>,
    field: &str,
    p: &model::Principal,
) -> Option<DesiredPrincipal> {
    if !principals::is_guid(&p.id) {
        c.err(
            &format!("{field}.id"),
            format!("principal id '{}' is not an Entra object id (GUID)", p.id),
            None,
        );
        return None;
    }
    let Some(role) = principals::canonical(&p.role, &principals::ROLES) else {
        c.err(
            &format!("{field}.role"),
            format!("unknown role '{}'", p.role),
            Some(format!("one of {}", principals::ROLES.join(", "))),
        );
        return None;
    };
    let kind = match p.kind.as_deref() {
        None => "User",
        Some(k) => match principals::canonical(k, &principals::TYPES) {
            Some(k) => k,
            None => {
                c.err(
                    &format!("{field}.type"),
                    format!("unknown principal type '{k}'"),
                    Some(format!("one of {}", principals::TYPES.join(", "))),
                );
                return None;
            }
        },
    };
    Some(DesiredPrincipal {
        id: p.id.clone(),
        kind: kind.into(),
        role: role.into(),
    })
}

fn git(c: &mut Check<'_>, field: &str, g: &model::Git) {
    match g.provider.as_str() {
        "GitHub" if g.connection_id.as_deref().is_none_or(|c| !principals::is_guid(c)) => c.err(
            &format!("{field}.connection_id"),
            "a GitHub connection needs connection_id: the id (GUID) of a Fabric connection holding the credentials".into(),
            None,
        ),
        "GitHub" if g.owner.is_none() => c.err(
            &format!("{field}.provider"),
            "a GitHub connection needs owner".into(),
            None,
        ),
        "AzureDevOps" if g.organization.is_none() || g.project.is_none() => c.err(
            &format!("{field}.provider"),
            "an AzureDevOps connection needs organization and project".into(),
            None,
        ),
        "GitHub" | "AzureDevOps" => {}
        other => c.err(
            &format!("{field}.provider"),
            format!("unknown git provider '{other}'"),
            Some("GitHub or AzureDevOps".into()),
        ),
    }
    if g.repository.len() > 128 || g.branch.len() > 250 || g.directory.len() > 256 {
        c.err(
            field,
            "git repository (128), branch (250) or directory (256) is too long".into(),
            None,
        );
    }
}
