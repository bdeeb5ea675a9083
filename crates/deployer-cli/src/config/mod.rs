//! Configuration: read fabrik.yaml and its principals and notebook files, validate everything
//! before any request is sent, and produce the desired state for one environment.
//!
//! Every problem is collected (not just the first) with file:line:column and a caret snippet.

pub mod locate;
pub mod model;
pub mod naming;
pub mod principals;
pub mod section;
pub mod standards;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use locate::{Locations, Pos};
use model::Config;
pub use section::{Finding, Section};

/// The JSON Schema of the configuration file with the workspace keys of `sections` (the
/// built-in kinds' sections: `docs/fabrik.schema.json`).
pub fn json_schema(sections: &[Section]) -> String {
    let mut generator = schemars::SchemaGenerator::default();
    let fragments: Vec<(&str, serde_json::Value)> = sections
        .iter()
        .map(|s| (s.key(), s.schema(&mut generator).to_value()))
        .collect();
    let mut schema = generator.into_root_schema_for::<Config>().to_value();
    if let Some(ws) = schema
        .pointer_mut("/$defs/Workspace")
        .and_then(serde_json::Value::as_object_mut)
    {
        if let Some(props) = ws
            .get_mut("properties")
            .and_then(serde_json::Value::as_object_mut)
        {
            props.extend(fragments.into_iter().map(|(k, v)| (k.to_string(), v)));
        }
        // The keys are the model's and the sections': nothing else is read.
        ws.insert("additionalProperties".into(), false.into());
    }
    let mut text = serde_json::to_string_pretty(&sorted(schema)).unwrap_or_default();
    text.push('\n');
    text
}

/// Keys in order at every level, so the shipped file is the same whether or not a build
/// turned on serde_json's `preserve_order`.
fn sorted(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(o) => {
            let mut entries: Vec<_> = o.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(sorted).collect())
        }
        other => other,
    }
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
    /// Reads the repositories workspaces publish (`repository:`); without one, a
    /// configuration that names a repository is refused at that key.
    pub repositories: Option<Arc<dyn RepositoryReader>>,
    /// The workspace keys resource kinds own (`Registry::sections` of the kinds that will
    /// plan); any other key than the model's and these is an error.
    pub sections: Vec<Section>,
}

/// What a workspace's `repository:` holds, as publishing read it.
#[derive(Debug, Clone, Default)]
pub struct RepositoryContents {
    /// `(type, display name)` of the items it publishes.
    pub items: Vec<(String, String)>,
    /// Its folders (`a/b`).
    pub folders: Vec<String>,
    /// Findings that do not stop the run.
    pub warnings: Vec<Problem>,
    /// The repository as read, handed on to publishing so a run reads it once.
    pub loaded: Option<Loaded>,
}

/// A repository as publishing read it: opaque here (configuration knows nothing of
/// fabric-cicd's formats), taken back by publishing when it plans.
#[derive(Clone)]
pub struct Loaded(pub Arc<dyn std::any::Any + Send + Sync>);

impl fmt::Debug for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Loaded(..)")
    }
}

/// Equal always: a cache of what the source's other fields describe.
impl PartialEq for Loaded {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Loaded {}

/// Reads the repository of a workspace's `repository:`. Implemented by publishing and handed
/// to [`load`] in [`LoadOptions::repositories`], so this module depends on no format.
pub trait RepositoryReader: fmt::Debug + Send + Sync {
    /// The repository at `root` with `parameter` and the item types in scope (all when
    /// empty), rendered for `environment`, or every problem found.
    fn read(
        &self,
        root: &Path,
        parameter: Option<&Path>,
        item_types: &[String],
        environment: &str,
    ) -> Result<RepositoryContents, Vec<Problem>>;
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
    /// The repository whose items this workspace publishes, if any.
    pub publish: Option<PublishSource>,
    /// The values of the keys kinds own ([`Section`]s), by key, checked when loaded; each
    /// kind reads its own with [`DesiredWorkspace::section`].
    pub sections: BTreeMap<String, serde_json::Value>,
}

impl DesiredWorkspace {
    /// The value of the key `key` as its kind's type, `None` when the workspace does not set
    /// it; an error (naming the workspace, the key and the value) when it is not a `T`.
    pub fn section<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, String> {
        self.sections
            .get(key)
            .map(|v| {
                section::read::<T>(v)
                    .map_err(|f| format!("workspace {}: {key}{}: {}", self.name, f.path, f.message))
            })
            .transpose()
    }
}

/// A repository a workspace publishes, checked when the config was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishSource {
    /// The repository folder.
    pub repository: std::path::PathBuf,
    /// The parameter file, if any.
    pub parameter: Option<std::path::PathBuf>,
    /// Item types in scope (`None`: all).
    pub item_types: Option<Vec<String>>,
    /// `(type, name)` of the items it publishes: the item kinds leave them to the publisher.
    pub items: Vec<(String, String)>,
    /// The repository as read when the config was loaded (see [`Loaded`]).
    pub loaded: Option<Loaded>,
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
    load_named(path, opts).map(|n| (n.desired, n.problems))
}

/// What [`load_named`] gives: the desired state, each workspace's configured `name:` (its
/// `${env:…}` resolved) in the order of `desired.workspaces`, and the warnings.
#[derive(Debug)]
pub struct Named {
    /// The desired state.
    pub desired: Desired,
    /// `workspaces[i].name` of the file, for `desired.workspaces[i]`.
    pub names: Vec<String>,
    /// Warnings.
    pub problems: Vec<Problem>,
}

/// [`load`], with the workspaces' configured names (what `--workspace` may name).
pub fn load_named(path: &Path, opts: &LoadOptions) -> Result<Named, Vec<Problem>> {
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
    load_str_named(path, &text, base, opts)
}

/// [`load`] on text already read; files it names are resolved against `base`.
pub fn load_str(
    path: &Path,
    text: &str,
    base: &Path,
    opts: &LoadOptions,
) -> Result<(Desired, Vec<Problem>), Vec<Problem>> {
    load_str_named(path, text, base, opts).map(|n| (n.desired, n.problems))
}

fn load_str_named(
    path: &Path,
    text: &str,
    base: &Path,
    opts: &LoadOptions,
) -> Result<Named, Vec<Problem>> {
    // Syntax and duplicate keys first, at their own positions: serde_norway reports the first
    // as an unrelated error and the second at the document's start.
    let structural = Locations::structural_problems(text);
    if !structural.is_empty() {
        return Err(structural
            .into_iter()
            .map(|(pos, msg)| Problem::at(path, text, Some(pos), msg, None))
            .collect());
    }
    // Structure next: serde_norway reports the position of a type error or unknown field.
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
    let desired = validate::validate(path, text, base, &locs, &config, opts, &mut problems);
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
        // `validate` makes one workspace per entry of the file, in its order.
        let names = config.workspaces.iter().map(|w| w.name.clone()).collect();
        Ok(Named {
            desired: d,
            names,
            problems,
        })
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

#[cfg(test)]
mod tests;
