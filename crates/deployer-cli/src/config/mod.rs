//! Configuration: read fabrik.yaml and its principals and notebook files, validate everything
//! before any request is sent, and produce the desired state for one environment.
//!
//! Every problem is collected (not just the first) with file:line:column and a caret snippet.

pub mod locate;
pub mod model;
pub mod naming;
pub mod principals;
pub mod standards;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use locate::{Locations, Pos};
use model::Config;

/// The JSON Schema of the configuration file, as shipped in `docs/fabrik.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Config);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// One finding about the input, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// Line and column (1-based), when known.
    pub pos: Option<Pos>,
    /// The source line, for the caret snippet.
    pub source_line: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// Errors stop the run; warnings do not.
    pub warning: bool,
}

impl Problem {
    /// A problem at `line`:`col` of `text` (read from `file`).
    pub fn at_line(
        file: &Path,
        text: &str,
        line: usize,
        col: usize,
        message: String,
        hint: Option<String>,
        warning: bool,
    ) -> Self {
        Self {
            file: file.to_path_buf(),
            pos: Some(Pos { line, col }),
            source_line: text.lines().nth(line.saturating_sub(1)).map(str::to_string),
            message,
            hint,
            warning,
        }
    }

    fn at(
        file: &Path,
        text: &str,
        pos: Option<Pos>,
        message: String,
        hint: Option<String>,
    ) -> Self {
        match pos {
            Some(p) => Self::at_line(file, text, p.line, p.col, message, hint, false),
            None => Self {
                file: file.to_path_buf(),
                pos: None,
                source_line: None,
                message,
                hint,
                warning: false,
            },
        }
    }

    /// Whether this stops the run.
    pub fn is_error(&self) -> bool {
        !self.warning
    }

    /// `file:line:col: message`.
    pub fn headline(&self) -> String {
        match self.pos {
            Some(p) => format!(
                "{}:{}:{}: {}",
                self.file.display(),
                p.line,
                p.col,
                self.message
            ),
            None => format!("{}: {}", self.file.display(), self.message),
        }
    }
}

impl fmt::Display for Problem {
    /// The headline, then the source line with a caret under the column, then the hint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = if self.warning { "warning" } else { "error" };
        writeln!(f, "{level}: {}", self.headline())?;
        if let (Some(p), Some(src)) = (self.pos, &self.source_line) {
            let gutter = p.line.to_string().len();
            writeln!(f, "{:gutter$} |", "")?;
            writeln!(f, "{} | {src}", p.line)?;
            write!(f, "{:gutter$} | {:>col$}", "", "^", col = p.col)?;
            if let Some(h) = &self.hint {
                write!(f, " {h}")?;
            }
            writeln!(f)?;
        } else if let Some(h) = &self.hint {
            writeln!(f, "  hint: {h}")?;
        }
        Ok(())
    }
}

/// Options for loading.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The environment to deploy (`dev`, `test`, `prod`, …).
    pub environment: String,
    /// Principals files: warn and use the seed's defaults instead of failing on bad lines.
    pub lenient: bool,
    /// Environment variables for `${env:VAR}` references.
    pub env: BTreeMap<String, String>,
    /// Values for `${secret:NAME}` references, resolved beforehand through the secret
    /// providers (see [`secret_references`]); a name missing here is an error at the reference.
    pub secrets: BTreeMap<String, SecretValue>,
}

/// A secret's value, or why it could not be read. Debug never shows the value.
#[derive(Clone)]
pub enum SecretValue {
    /// The value.
    Value(String),
    /// Why it could not be read (names every place looked; never a value).
    Missing(String),
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretValue::Value(_) => f.write_str("Value([redacted])"),
            SecretValue::Missing(why) => write!(f, "Missing({why:?})"),
        }
    }
}

/// The names of every `${secret:NAME}` in a config text, to resolve before [`load`].
pub fn secret_references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${secret:") {
        let after = &rest[i + 9..];
        let Some(end) = after.find('}') else { break };
        let name = after[..end].trim().to_string();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
        rest = &after[end..];
    }
    out
}

/// A capacity as the config names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapacityRef {
    /// By id (a GUID).
    Id(String),
    /// By display name.
    Name(String),
}

/// An item to deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredItem {
    /// Display name.
    pub name: String,
    /// Fabric item type (`Lakehouse`, `Notebook`).
    pub item_type: String,
    /// Description.
    pub description: String,
    /// Folder path, if any.
    pub folder: Option<String>,
    /// Definition parts (path, base64 payload), for notebooks.
    pub definition: Option<Vec<(String, String)>>,
}

/// A role assignment to deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredPrincipal {
    /// Object id.
    pub id: String,
    /// Principal type.
    pub kind: String,
    /// Role.
    pub role: String,
}

/// One workspace to deploy, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredWorkspace {
    /// Final display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Capacity, if any.
    pub capacity: Option<CapacityRef>,
    /// Folder paths, parents before children.
    pub folders: Vec<String>,
    /// Items (lakehouses, then notebooks).
    pub items: Vec<DesiredItem>,
    /// Role assignments, by principal id.
    pub principals: Vec<DesiredPrincipal>,
    /// Git connection.
    pub git: Option<model::Git>,
}

/// What one environment of the config asks for.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The environment.
    pub environment: String,
    /// The workspaces.
    pub workspaces: Vec<DesiredWorkspace>,
    /// Feature flag settings from the file.
    pub features: BTreeMap<String, model::FlagValue>,
    /// A stable hash of the inputs, recorded in journals.
    pub hash: String,
}

/// Loads and validates `path` for one environment. Returns the desired state and warnings,
/// or every error found.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<(Desired, Vec<Problem>), Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem::at(
            path,
            "",
            None,
            format!("cannot read config: {e}"),
            None,
        )]
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    load_str(path, &text, base, opts)
}

/// [`load`] on text already read; files it names are resolved against `base`.
pub fn load_str(
    path: &Path,
    text: &str,
    base: &Path,
    opts: &LoadOptions,
) -> Result<(Desired, Vec<Problem>), Vec<Problem>> {
    // Structure first: serde_norway reports the position of a type error or unknown field.
    let config: Config = match serde_norway::from_str(text) {
        Ok(c) => c,
        Err(e) => {
            let pos = e.location().map(|l| Pos {
                line: l.line(),
                col: l.column(),
            });
            let msg = e.to_string();
            // serde_norway appends " at line N column M"; the headline already says where.
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            return Err(vec![Problem::at(path, text, pos, msg, None)]);
        }
    };
    let locs = Locations::of(text);
    let mut problems = Vec::new();
    let config = substitute_env(path, text, config, opts, &mut problems);
    let desired = validate(path, text, base, &locs, &config, opts, &mut problems);
    problems.sort_by_key(|p| (p.file.clone(), p.pos.map(|p| (p.line, p.col))));
    if problems.iter().any(Problem::is_error) {
        Err(problems)
    } else {
        let mut hasher = Fnv::default();
        hasher.write(text.as_bytes());
        hasher.write(opts.environment.as_bytes());
        let workspaces = desired.unwrap_or_default();
        for w in &workspaces {
            hasher.write(format!("{w:?}").as_bytes());
        }
        let d = Desired {
            environment: opts.environment.clone(),
            workspaces,
            features: config.features.clone(),
            hash: format!("{:016x}", hasher.0),
        };
        Ok((d, problems))
    }
}

/// FNV-1a: a stable hash for the config fingerprint (std's hasher is randomized per process).
#[derive(Debug)]
struct Fnv(u64);
impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}
impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Replaces `${env:VAR}` in every string of the config; an unset variable is an error at the
/// reference's position. `${secret:NAME}` is refused for now: secrets must not be resolved
/// into a structure that plans and journals print.
fn substitute_env(
    path: &Path,
    text: &str,
    config: Config,
    opts: &LoadOptions,
    problems: &mut Vec<Problem>,
) -> Config {
    let env = &opts.env;
    let mut value = match serde_json::to_value(&config) {
        Ok(v) => v,
        Err(_) => return config,
    };
    fn walk(v: &mut serde_json::Value, f: &mut dyn FnMut(&mut String)) {
        match v {
            serde_json::Value::String(s) => f(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, f)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|x| walk(x, f)),
            _ => {}
        }
    }
    let mut report = |reference: &str, message: String, hint: Option<String>| {
        let pos = text.lines().enumerate().find_map(|(i, l)| {
            l.find(reference).map(|c| Pos {
                line: i + 1,
                col: c + 1,
            })
        });
        problems.push(Problem::at(path, text, pos, message, hint));
    };
    walk(&mut value, &mut |s: &mut String| {
        let mut out = String::new();
        let mut rest = s.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find('}') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let reference = &rest[start..start + len + 1];
            let inner = &reference[2..reference.len() - 1];
            match inner.split_once(':') {
                Some(("env", var)) => match env.get(var) {
                    Some(v) => out.push_str(v),
                    None => report(
                        reference,
                        format!("environment variable {var} is not set"),
                        Some(format!("set {var} or remove {reference}")),
                    ),
                },
                Some(("secret", name)) => match opts.secrets.get(name.trim()) {
                    Some(SecretValue::Value(v)) => out.push_str(v),
                    Some(SecretValue::Missing(why)) => report(reference, why.clone(), None),
                    None => report(
                        reference,
                        format!("secret '{name}' was not resolved"),
                        Some("secrets are read through the environment, .env and Key Vault".into()),
                    ),
                },
                _ => report(
                    reference,
                    format!("unknown reference '{reference}'"),
                    Some("use ${env:VAR} or ${secret:NAME}".into()),
                ),
            }
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        *s = out;
    });
    serde_json::from_value(value).unwrap_or(config)
}

fn validate(
    path: &Path,
    text: &str,
    base: &Path,
    locs: &Locations,
    config: &Config,
    opts: &LoadOptions,
    problems: &mut Vec<Problem>,
) -> Option<Vec<DesiredWorkspace>> {
    let mut err = |at: &str, message: String, hint: Option<String>| {
        problems.push(Problem::at(path, text, locs.find(at), message, hint));
    };
    let env_name = opts.environment.as_str();
    let environment = match config.environments.get(env_name) {
        Some(e) => Some(e.clone()),
        None if config.environments.is_empty() => Some(Default::default()),
        None => {
            let known: Vec<&str> = config.environments.keys().map(String::as_str).collect();
            err(
                "environments",
                format!("environment '{env_name}' is not defined"),
                Some(format!("one of: {}", known.join(", "))),
            );
            None
        }
    };
    let environment = environment?;
    for bad in naming::unknown_placeholders(&config.naming.workspace) {
        err(
            "naming.workspace",
            format!("unknown placeholder {{{bad}}} in naming.workspace"),
            Some(format!("placeholders: {}", naming::PLACEHOLDERS.join(", "))),
        );
    }
    let standards = match config.naming.standards.as_deref() {
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
                    err("naming.standards", e, None);
                    None
                }
            }
        }
    };
    let cx = naming::NameContext {
        prefix: &config.project.prefix,
        environment: env_name,
        organization: config.project.organization.as_deref().unwrap_or(""),
    };
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    // Problems in principals files carry their own file and position.
    let mut other_files = Vec::new();
    for (wi, ws) in config.workspaces.iter().enumerate() {
        let at = |f: &str| format!("workspaces[{wi}].{f}");
        let name = naming::workspace_name(&config.naming.workspace, &ws.name, &cx);
        if let Some(p) = naming::workspace_name_problem(&name) {
            err(&at("name"), p, None);
        }
        if !names.insert(name.to_lowercase()) {
            err(
                &at("name"),
                format!("workspace '{name}' is defined twice"),
                None,
            );
        }
        let description = ws.description.clone().unwrap_or_default();
        if description.chars().count() > 4000 {
            err(
                &at("description"),
                "workspace description is longer than 4000 characters".into(),
                None,
            );
        }
        let capacity = ws
            .capacity
            .clone()
            .or(environment.capacity.clone())
            .map(|c| {
                if principals::is_guid(&c) {
                    CapacityRef::Id(c)
                } else {
                    CapacityRef::Name(c)
                }
            });

        // Folders: every parent of a nested path is created too, parents first.
        let mut folders: Vec<String> = Vec::new();
        for (fi, f) in ws.folders.iter().enumerate() {
            let parts: Vec<&str> = f.split('/').collect();
            if parts.iter().any(|p| p.trim().is_empty() || p.trim() != *p) || parts.len() > 10 {
                err(
                    &at(&format!("folders[{fi}]")),
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
        let check_folder =
            |field: String,
             folder: &Option<String>,
             problems_err: &mut dyn FnMut(&str, String, Option<String>)| {
                if let Some(f) = folder
                    && !folders.contains(f)
                {
                    problems_err(
                        &field,
                        format!("folder '{f}' is not one of this workspace's folders"),
                        Some("add it under folders".into()),
                    );
                }
            };

        let mut items = Vec::new();
        let mut item_names = BTreeSet::new();
        for (li, lh) in ws.lakehouses.iter().enumerate() {
            if let Some((msg, fix)) = naming::lakehouse_name_problem(&lh.name) {
                err(&at(&format!("lakehouses[{li}].name")), msg, Some(fix));
            }
            if let Some(v) = standards
                .as_ref()
                .and_then(|s| s.check("Lakehouse", &lh.name))
            {
                err(
                    &at(&format!("lakehouses[{li}].name")),
                    v.message,
                    v.suggestion.map(|f| format!("try '{f}'")),
                );
            }
            if !item_names.insert(("Lakehouse", lh.name.to_lowercase())) {
                err(
                    &at(&format!("lakehouses[{li}].name")),
                    format!("lakehouse '{}' is defined twice in this workspace", lh.name),
                    None,
                );
            }
            check_folder(
                at(&format!("lakehouses[{li}].folder")),
                &lh.folder,
                &mut err,
            );
            items.push(DesiredItem {
                name: lh.name.clone(),
                item_type: "Lakehouse".into(),
                description: lh.description.clone().unwrap_or_default(),
                folder: lh.folder.clone(),
                definition: None,
            });
        }
        for (ni, nb) in ws.notebooks.iter().enumerate() {
            let field = at(&format!("notebooks[{ni}]"));
            if nb.name.trim().is_empty() || nb.name.chars().count() > 256 {
                err(
                    &format!("{field}.name"),
                    "notebook name must be 1 to 256 characters".into(),
                    None,
                );
            }
            if let Some(v) = standards
                .as_ref()
                .and_then(|s| s.check("Notebook", &nb.name))
            {
                err(
                    &format!("{field}.name"),
                    v.message,
                    v.suggestion.map(|f| format!("try '{f}'")),
                );
            }
            if !item_names.insert(("Notebook", nb.name.to_lowercase())) {
                err(
                    &format!("{field}.name"),
                    format!("notebook '{}' is defined twice in this workspace", nb.name),
                    None,
                );
            }
            check_folder(format!("{field}.folder"), &nb.folder, &mut err);
            let file = base.join(&nb.file);
            let part = match Path::new(&nb.file).extension().and_then(|e| e.to_str()) {
                Some("py") => Some("notebook-content.py"),
                Some("ipynb") => Some("notebook-content.ipynb"),
                _ => None,
            };
            let Some(part) = part else {
                err(
                    &format!("{field}.file"),
                    format!("notebook file '{}' must be a .py or .ipynb file", nb.file),
                    None,
                );
                continue;
            };
            match std::fs::read(&file) {
                Ok(bytes) => {
                    if part.ends_with(".ipynb")
                        && serde_json::from_slice::<serde_json::Value>(&bytes).is_err()
                    {
                        err(
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
                Err(e) => err(
                    &format!("{field}.file"),
                    format!("cannot read notebook file '{}': {e}", file.display()),
                    None,
                ),
            }
        }

        // Principals: the environment's file, the workspace's file, then inline (last wins).
        let mut by_id: BTreeMap<String, DesiredPrincipal> = BTreeMap::new();
        let files = [
            environment.principals_file.as_ref().map(|f| {
                (
                    f.clone(),
                    format!("environments.{env_name}.principals_file"),
                )
            }),
            ws.principals_file
                .as_ref()
                .map(|f| (f.replace("{environment}", env_name), at("principals_file"))),
        ];
        for (file, field) in files.into_iter().flatten() {
            let p = base.join(&file);
            match std::fs::read_to_string(&p) {
                Ok(t) => {
                    let (lines, found) = principals::parse(&p, &t, opts.lenient);
                    // A file shared by many workspaces reports each of its problems once.
                    for f in found {
                        if !other_files.contains(&f) {
                            other_files.push(f);
                        }
                    }
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
                Err(e) => err(
                    &field,
                    format!("cannot read principals file '{}': {e}", p.display()),
                    None,
                ),
            }
        }
        for (pi, p) in ws.principals.iter().enumerate() {
            let field = at(&format!("principals[{pi}]"));
            if !principals::is_guid(&p.id) {
                err(
                    &format!("{field}.id"),
                    format!("principal id '{}' is not an Entra object id (GUID)", p.id),
                    None,
                );
                continue;
            }
            let Some(role) = principals::canonical(&p.role, &principals::ROLES) else {
                err(
                    &format!("{field}.role"),
                    format!("unknown role '{}'", p.role),
                    Some(format!("one of {}", principals::ROLES.join(", "))),
                );
                continue;
            };
            let kind = match p.kind.as_deref() {
                None => "User",
                Some(k) => match principals::canonical(k, &principals::TYPES) {
                    Some(k) => k,
                    None => {
                        err(
                            &format!("{field}.type"),
                            format!("unknown principal type '{k}'"),
                            Some(format!("one of {}", principals::TYPES.join(", "))),
                        );
                        continue;
                    }
                },
            };
            by_id.insert(
                p.id.clone(),
                DesiredPrincipal {
                    id: p.id.clone(),
                    kind: kind.into(),
                    role: role.into(),
                },
            );
        }

        if let Some(g) = &ws.git {
            let field = at("git");
            match g.provider.as_str() {
                "GitHub" if g.connection_id.as_deref().is_none_or(|c| !principals::is_guid(c)) => err(
                    &format!("{field}.connection_id"),
                    "a GitHub connection needs connection_id: the id (GUID) of a Fabric connection holding the credentials".into(),
                    None,
                ),
                "GitHub" if g.owner.is_none() => err(
                    &format!("{field}.provider"),
                    "a GitHub connection needs owner".into(),
                    None,
                ),
                "AzureDevOps" if g.organization.is_none() || g.project.is_none() => err(
                    &format!("{field}.provider"),
                    "an AzureDevOps connection needs organization and project".into(),
                    None,
                ),
                "GitHub" | "AzureDevOps" => {}
                other => err(
                    &format!("{field}.provider"),
                    format!("unknown git provider '{other}'"),
                    Some("GitHub or AzureDevOps".into()),
                ),
            }
            if g.repository.len() > 128 || g.branch.len() > 250 || g.directory.len() > 256 {
                err(
                    &field,
                    "git repository (128), branch (250) or directory (256) is too long".into(),
                    None,
                );
            }
        }

        out.push(DesiredWorkspace {
            name,
            description,
            capacity,
            folders,
            items,
            principals: by_id.into_values().collect(),
            git: ws.git.clone(),
        });
    }
    problems.extend(other_files);
    Some(out)
}

#[cfg(test)]
mod tests;
