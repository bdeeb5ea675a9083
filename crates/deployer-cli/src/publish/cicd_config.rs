//! fabric-cicd 1.4.0's `config.yml` (`deploy_with_config`), read for one environment.
//!
//! Any value can be a mapping `{environment: value}`. A required field (`workspace_id`,
//! `workspace`, `repository_directory`) without the environment is an error; an optional one
//! is left unset with a warning, where fabric-cicd only logs. Paths are relative to the config
//! file's directory. Every problem is reported at once with file:line:column.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde_norway::Value;

use super::item_type::{FEATURE_FLAGS, ItemType};
use super::repo::DiscoverOptions;
use crate::config::Problem;
use crate::config::locate::Locations;

/// The target workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkspaceRef {
    /// `core.workspace_id` (wins over a name).
    Id(String),
    /// `core.workspace`, a display name.
    Name(String),
}

/// The `publish:` section for the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishSection {
    /// Items whose name matches from the start are not published.
    pub exclude_regex: Option<String>,
    /// Items under a folder matching it are not published.
    pub folder_exclude_regex: Option<String>,
    /// Only items directly in these folders are published.
    pub folder_path_to_include: Option<Vec<String>>,
    /// Only these `Name.Type` items are published.
    pub items_to_include: Option<Vec<String>>,
    /// Shortcuts whose name matches are not published.
    pub shortcut_exclude_regex: Option<String>,
    /// Skip publishing in this environment.
    pub skip: bool,
}

/// The `unpublish:` section for the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpublishSection {
    /// Orphans whose name matches from the start are kept.
    pub exclude_regex: Option<String>,
    /// Only these `Name.Type` orphans are deleted.
    pub items_to_include: Option<Vec<String>>,
    /// Skip unpublishing in this environment.
    pub skip: bool,
}

/// A `config.yml`, resolved for one environment.
#[derive(Debug, Clone, PartialEq)]
pub struct CicdConfig {
    /// The file read.
    pub path: PathBuf,
    /// The environment it was resolved for.
    pub environment: String,
    /// The target workspace.
    pub workspace: WorkspaceRef,
    /// The repository root, resolved against the config file's directory.
    pub repository_directory: PathBuf,
    /// Types to publish; `None` means all 31.
    pub item_types_in_scope: Option<Vec<ItemType>>,
    /// The `parameter.yml`, resolved; `None` means no parameterization (nothing is looked for).
    pub parameter: Option<PathBuf>,
    /// `publish:`.
    pub publish: PublishSection,
    /// `unpublish:`.
    pub unpublish: UnpublishSection,
    /// `features:` for the environment.
    pub features: Vec<String>,
    /// `constants:` for the environment (fabric-cicd constant overrides), as written.
    pub constants: BTreeMap<String, String>,
    /// The API root `constants.DEFAULT_API_ROOT_URL` sets (every request goes there, as in
    /// fabric-cicd), without a trailing `/`; `None` when the config does not set it.
    pub api_root: Option<String>,
    /// Findings that do not stop the run.
    pub warnings: Vec<Problem>,
}

const TOP_KEYS: &[&str] = &["core", "publish", "unpublish", "features", "constants"];
const CORE_KEYS: &[&str] = &[
    "workspace_id",
    "workspace",
    "repository_directory",
    "item_types_in_scope",
    "parameter",
];
const PUBLISH_KEYS: &[&str] = &[
    "exclude_regex",
    "folder_exclude_regex",
    "folder_path_to_include",
    "items_to_include",
    "shortcut_exclude_regex",
    "skip",
];
const UNPUBLISH_KEYS: &[&str] = &["exclude_regex", "items_to_include", "skip"];

/// The reader: the text, its positions, the environment, and the problems so far.
struct Reader<'a> {
    path: &'a Path,
    text: &'a str,
    locs: Locations,
    env: &'a str,
    problems: Vec<Problem>,
}

/// What a field holds once the environment is chosen.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    List,
    Bool,
}

impl Reader<'_> {
    fn push(&mut self, at: &str, message: String, hint: Option<String>, warning: bool) {
        let p = self
            .locs
            .find(at)
            .unwrap_or(crate::config::locate::Pos { line: 1, col: 1 });
        self.problems.push(Problem::at_line(
            self.path, self.text, p.line, p.col, message, hint, warning,
        ));
    }

    fn error(&mut self, at: &str, message: String) {
        self.push(at, message, None, false);
    }

    /// Like [`Self::push`], but at the key of `path` (`core.workspace_id`) where it is written
    /// in block style, rather than at its value.
    fn push_at_key(&mut self, path: &str, message: String, hint: Option<String>, warning: bool) {
        match key_pos(self.text, path) {
            Some((line, col)) => self.problems.push(Problem::at_line(
                self.path, self.text, line, col, message, hint, warning,
            )),
            None => self.push(path, message, hint, warning),
        }
    }

    /// The value of `section.key` for the environment, with its path; `None` when absent.
    fn field<'v>(
        &mut self,
        section: Option<&'v Value>,
        path: &str,
        kind: Kind,
        required: bool,
    ) -> Option<(&'v Value, String)> {
        let key = path.rsplit('.').next().unwrap_or(path);
        let v = section?.get(key)?;
        // A mapping is an environment mapping (no field here is itself a mapping).
        let Value::Mapping(m) = v else {
            return self
                .check_kind(v, path, kind)
                .then(|| (v, path.to_string()));
        };
        if m.is_empty() {
            self.push_at_key(
                path,
                format!("`{path}` is an empty environment mapping"),
                None,
                false,
            );
            return None;
        }
        match m.get(self.env) {
            Some(chosen) => {
                let at = format!("{path}.{}", self.env);
                self.check_kind(chosen, &at, kind).then_some((chosen, at))
            }
            None => {
                let envs: Vec<String> = m
                    .keys()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect();
                let msg = format!(
                    "`{path}` has no value for environment `{}` (it has: {})",
                    self.env,
                    envs.join(", ")
                );
                if required {
                    self.push_at_key(path, msg, None, false);
                } else {
                    self.push_at_key(path, format!("{msg}; left unset"), None, true);
                }
                None
            }
        }
    }

    fn check_kind(&mut self, v: &Value, at: &str, kind: Kind) -> bool {
        let ok = match kind {
            Kind::Str => v.as_str().is_some_and(|s| !s.trim().is_empty()),
            Kind::List => v.as_sequence().is_some_and(|s| !s.is_empty()),
            Kind::Bool => v.is_bool(),
        };
        if !ok {
            let want = match kind {
                Kind::Str => "a non-empty string",
                Kind::List => "a non-empty list",
                Kind::Bool => "true or false",
            };
            self.error(at, format!("`{at}` must be {want}, not `{}`", show(v)));
        }
        ok
    }

    fn string(
        &mut self,
        section: Option<&Value>,
        path: &str,
        required: bool,
    ) -> Option<(String, String)> {
        self.field(section, path, Kind::Str, required)
            .and_then(|(v, at)| v.as_str().map(|s| (s.to_string(), at)))
    }

    /// A list of non-empty strings, each checked by `check` (an error message or none).
    fn strings(
        &mut self,
        section: Option<&Value>,
        path: &str,
        check: impl Fn(&str) -> Option<String>,
    ) -> Option<Vec<String>> {
        let (v, at) = self.field(section, path, Kind::List, false)?;
        let mut out = Vec::new();
        for (i, e) in v.as_sequence()?.iter().enumerate() {
            let here = format!("{at}[{i}]");
            match e.as_str().filter(|s| !s.trim().is_empty()) {
                Some(s) => match check(s) {
                    Some(msg) => self.error(&here, msg),
                    None => out.push(s.to_string()),
                },
                None => self.error(
                    &here,
                    format!("`{here}` must be a non-empty string, not `{}`", show(e)),
                ),
            }
        }
        Some(out)
    }

    fn regex(&mut self, section: Option<&Value>, path: &str) -> Option<String> {
        let (s, at) = self.string(section, path, false)?;
        if let Err(e) = Regex::new(&s) {
            self.push(
                &at,
                format!("`{at}` is not a valid regular expression: {e}"),
                Some("fabrik uses Rust regex syntax: no look-around or backreferences".into()),
                false,
            );
        }
        Some(s)
    }

    fn bool(&mut self, section: Option<&Value>, path: &str) -> bool {
        self.field(section, path, Kind::Bool, false)
            .and_then(|(v, _)| v.as_bool())
            .unwrap_or(false)
    }

    /// A path relative to the config file's directory that must exist as a directory or file.
    fn path(
        &mut self,
        section: Option<&Value>,
        path: &str,
        required: bool,
        dir: bool,
    ) -> Option<PathBuf> {
        let (s, at) = self.string(section, path, required)?;
        let base = self.path.parent().unwrap_or(Path::new("."));
        let resolved = base.join(&s);
        let ok = if dir {
            resolved.is_dir()
        } else {
            resolved.is_file()
        };
        if !ok {
            let what = if dir { "directory" } else { "file" };
            self.error(
                &at,
                format!(
                    "`{at}` is `{s}`, but {} is not a {what}",
                    resolved.display()
                ),
            );
        }
        Some(resolved)
    }

    fn unknown_keys(&mut self, section: Option<&Value>, prefix: &str, known: &[&str]) {
        let Some(Value::Mapping(m)) = section else {
            return;
        };
        for k in m.keys() {
            let name = k.as_str().unwrap_or_default();
            if !known.contains(&name) {
                let at = if prefix.is_empty() {
                    name.to_string()
                } else {
                    format!("{prefix}.{name}")
                };
                self.push_at_key(
                    &at,
                    format!("unknown key `{at}`, ignored"),
                    Some(format!("expected one of: {}", known.join(", "))),
                    true,
                );
            }
        }
    }
}

/// The line and column of the key at the dotted `path` written in block style: each key is
/// looked for below its parent's line, more indented than it. `None` for flow style.
fn key_pos(text: &str, path: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let (mut from, mut min_indent) = (0usize, 0usize);
    let mut found = None;
    for (depth, key) in path.split('.').enumerate() {
        let hit = lines.iter().enumerate().skip(from).find_map(|(i, l)| {
            let indent = l.len() - l.trim_start().len();
            let t = l.trim_start();
            let is_key = [key.to_string(), format!("\"{key}\""), format!("'{key}'")]
                .iter()
                .any(|k| {
                    t.strip_prefix(k.as_str())
                        .is_some_and(|rest| rest.trim_start().starts_with(':'))
                });
            (is_key && (depth == 0 && indent == 0 || depth > 0 && indent >= min_indent))
                .then_some((i, indent))
        })?;
        found = Some((hit.0 + 1, hit.1 + 1));
        from = hit.0 + 1;
        min_indent = hit.1 + 1;
    }
    found
}

fn show(v: &Value) -> String {
    serde_norway::to_string(v)
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

impl CicdConfig {
    /// Reads `path` for `environment`. Returns every problem (errors and warnings) when there
    /// is at least one error.
    pub fn load(path: &Path, environment: &str) -> Result<Self, Vec<Problem>> {
        Self::load_with(path, environment, &[])
    }

    /// Like [`Self::load`], with `more_features` (`--cicd-feature`) given beside the file's
    /// `features:`: they count for the experimental gates of the publish filters.
    pub fn load_with(
        path: &Path,
        environment: &str,
        more_features: &[String],
    ) -> Result<Self, Vec<Problem>> {
        let text = fs::read_to_string(path).map_err(|e| {
            vec![Problem {
                file: path.to_path_buf(),
                pos: None,
                source_line: None,
                message: format!("cannot read the config file: {e}"),
                hint: None,
                warning: false,
            }]
        })?;
        Self::load_str_with(path, &text, environment, more_features)
    }

    /// Reads `text` as if it were the file at `path` (paths resolve against its directory).
    pub fn load_str(path: &Path, text: &str, environment: &str) -> Result<Self, Vec<Problem>> {
        Self::load_str_with(path, text, environment, &[])
    }

    /// [`Self::load_str`] with `more_features`, as [`Self::load_with`].
    pub fn load_str_with(
        path: &Path,
        text: &str,
        environment: &str,
        more_features: &[String],
    ) -> Result<Self, Vec<Problem>> {
        let structural = Locations::structural_problems(text);
        if !structural.is_empty() {
            return Err(structural
                .into_iter()
                .map(|(p, m)| Problem::at_line(path, text, p.line, p.col, m, None, false))
                .collect());
        }
        let mut r = Reader {
            path,
            text,
            locs: Locations::of(text),
            env: environment,
            problems: Vec::new(),
        };
        let doc: Value = serde_norway::from_str(text).unwrap_or(Value::Null);
        if !doc.is_mapping() {
            r.error(
                "",
                "the config file must be a mapping with a `core` section".into(),
            );
            return Err(r.problems);
        }
        let config = read_sections(&mut r, &doc).map(|mut c| {
            gate_filters(&mut r, &mut c, more_features);
            gate_bulk(&mut r, &doc, &c, more_features);
            c
        });
        match config {
            Some(c) if !r.problems.iter().any(Problem::is_error) => Ok(Self {
                warnings: r.problems,
                ..c
            }),
            _ => Err(r.problems),
        }
    }
}

impl CicdConfig {
    /// The discovery options this config asks for (scope, publish filters, and
    /// `disable_workspace_folder_publish`). Its regexes compiled when it was loaded.
    pub fn discover_options(&self) -> DiscoverOptions {
        // `load` refused any regex that does not compile, so `ok()` drops nothing here.
        let re = |s: &Option<String>| s.as_deref().and_then(|s| Regex::new(s).ok());
        DiscoverOptions {
            item_types_in_scope: self.item_types_in_scope.clone(),
            exclude_regex: re(&self.publish.exclude_regex),
            folders: !self
                .features
                .iter()
                .any(|f| f == "disable_workspace_folder_publish"),
            folder_exclude_regex: re(&self.publish.folder_exclude_regex),
            folder_path_to_include: self.publish.folder_path_to_include.clone(),
            items_to_include: self.publish.items_to_include.clone(),
        }
    }
}

fn read_sections(r: &mut Reader<'_>, doc: &Value) -> Option<CicdConfig> {
    r.unknown_keys(Some(doc), "", TOP_KEYS);
    let core = doc.get("core").filter(|c| c.is_mapping());
    if core.is_none() {
        r.push_at_key(
            "core",
            "`core` must be a mapping with the workspace and the repository_directory".into(),
            None,
            false,
        );
    }
    r.unknown_keys(core, "core", CORE_KEYS);
    let id = r.string(core, "core.workspace_id", true);
    if let Some((s, at)) = &id
        && !is_guid(s)
    {
        r.error(at, format!("`{at}` is `{s}`, which is not a GUID"));
    }
    let name = r.string(core, "core.workspace", true);
    let workspace = match (id, name) {
        (Some((s, _)), _) => Some(WorkspaceRef::Id(s)),
        (None, Some((s, _))) => Some(WorkspaceRef::Name(s)),
        (None, None) => {
            if core.is_some_and(|c| c.get("workspace_id").is_none() && c.get("workspace").is_none())
            {
                r.push_at_key(
                    "core",
                    "`core` needs `workspace_id` or `workspace`".into(),
                    None,
                    false,
                );
            }
            None
        }
    };
    if core.is_some_and(|c| c.get("repository_directory").is_none()) {
        r.push_at_key(
            "core",
            "`core.repository_directory` is missing".into(),
            None,
            false,
        );
    }
    let repository_directory = r.path(core, "core.repository_directory", true, true);
    let item_types_in_scope = r
        .strings(core, "core.item_types_in_scope", |s| {
            s.parse::<ItemType>().err().map(|e| e.to_string())
        })
        .map(|v| v.iter().filter_map(|s| s.parse().ok()).collect());
    let parameter = r.path(core, "core.parameter", false, false);
    let publish = read_publish(r, doc.get("publish"));
    let unpublish = read_unpublish(r, doc.get("unpublish"));
    let features = read_features(r, doc);
    let (constants, api_root) = read_constants(r, doc.get("constants"));
    Some(CicdConfig {
        path: r.path.to_path_buf(),
        environment: r.env.to_string(),
        workspace: workspace?,
        repository_directory: repository_directory?,
        item_types_in_scope,
        parameter,
        publish,
        unpublish,
        features,
        constants,
        api_root,
        warnings: Vec::new(),
    })
}

fn section<'v>(
    r: &mut Reader<'_>,
    v: Option<&'v Value>,
    name: &str,
    keys: &[&str],
) -> Option<&'v Value> {
    let v = v.filter(|v| !v.is_null())?;
    if !v.is_mapping() {
        r.error(
            name,
            format!("`{name}` must be a mapping, not `{}`", show(v)),
        );
        return None;
    }
    r.unknown_keys(Some(v), name, keys);
    Some(v)
}

fn items_to_include(s: &str) -> Option<String> {
    match s.rsplit_once('.') {
        Some((name, t)) if !name.is_empty() && t.parse::<ItemType>().is_ok() => None,
        _ => Some(format!(
            "`{s}` is not `Name.Type` with one of the 31 item types"
        )),
    }
}

fn read_publish(r: &mut Reader<'_>, v: Option<&Value>) -> PublishSection {
    let Some(s) = section(r, v, "publish", PUBLISH_KEYS) else {
        return PublishSection::default();
    };
    let out = PublishSection {
        exclude_regex: r.regex(Some(s), "publish.exclude_regex"),
        folder_exclude_regex: r.regex(Some(s), "publish.folder_exclude_regex"),
        folder_path_to_include: r.strings(Some(s), "publish.folder_path_to_include", |f| {
            (!f.starts_with('/')).then(|| format!("`{f}` must be a folder path starting with `/`"))
        }),
        items_to_include: r.strings(Some(s), "publish.items_to_include", items_to_include),
        shortcut_exclude_regex: r.regex(Some(s), "publish.shortcut_exclude_regex"),
        skip: r.bool(Some(s), "publish.skip"),
    };
    if out.folder_exclude_regex.is_some() && out.folder_path_to_include.is_some() {
        r.error(
            "publish.folder_path_to_include",
            "`publish.folder_exclude_regex` and `publish.folder_path_to_include` cannot be used together".into(),
        );
    }
    out
}

fn read_unpublish(r: &mut Reader<'_>, v: Option<&Value>) -> UnpublishSection {
    let Some(s) = section(r, v, "unpublish", UNPUBLISH_KEYS) else {
        return UnpublishSection::default();
    };
    UnpublishSection {
        exclude_regex: r.regex(Some(s), "unpublish.exclude_regex"),
        items_to_include: r.strings(Some(s), "unpublish.items_to_include", items_to_include),
        skip: r.bool(Some(s), "unpublish.skip"),
    }
}

/// Why fabrik refuses the fabric-cicd feature flag `f` (message, what to do), or `None` when it
/// acts on it as fabric-cicd does. An unknown name is refused too.
pub(crate) fn feature_refusal(f: &str) -> Option<(String, String)> {
    let (message, hint) = match f {
        "enable_hard_delete" => (
            "fabrik does not support `enable_hard_delete`: an item deleted permanently could not be restored",
            "remove it: fabrik deletes orphans as fabric-cicd does without it (into the workspace's recycle bin)",
        ),
        "enable_response_collection" => (
            "fabrik does not support `enable_response_collection`: fabric-cicd returns the API responses to its Python caller, and a command line has no such caller",
            "remove it: `fabrik publish --plan --output json` lists each change, and the run's journal (`--state-dir`) records each one made",
        ),
        _ if FEATURE_FLAGS.contains(&f) => return None,
        _ => {
            return Some((
                format!("`{f}` is not a feature flag fabric-cicd 1.4.0 knows"),
                format!("known: {}", FEATURE_FLAGS.join(", ")),
            ));
        }
    };
    Some((message.to_string(), hint.to_string()))
}

fn read_features(r: &mut Reader<'_>, doc: &Value) -> Vec<String> {
    let features = r
        .strings(Some(doc), "features", |_| None)
        .unwrap_or_default();
    let at = match doc.get("features") {
        Some(Value::Mapping(_)) => format!("features.{}", r.env),
        _ => "features".to_string(),
    };
    for (i, f) in features.iter().enumerate() {
        if let Some((message, hint)) = feature_refusal(f) {
            r.push(&format!("{at}[{i}]"), message, Some(hint), false);
        }
    }
    features
}

/// fabric-cicd's bulk mode needs `enable_experimental_features` beside `enable_bulk_publish`
/// (fabric-cicd refuses it otherwise): an error at the flag's line.
fn gate_bulk(r: &mut Reader<'_>, doc: &Value, c: &CicdConfig, more_features: &[String]) {
    let has = |f: &str| c.features.iter().chain(more_features).any(|g| g == f);
    let Some(i) = c.features.iter().position(|f| f == "enable_bulk_publish") else {
        return;
    };
    if has("enable_experimental_features") || c.publish.skip {
        return;
    }
    let at = match doc.get("features") {
        Some(Value::Mapping(_)) => format!("features.{}", r.env),
        _ => "features".to_string(),
    };
    r.push(
        &format!("{at}[{i}]"),
        "`enable_bulk_publish` is experimental in fabric-cicd 1.4.0, which refuses it without `enable_experimental_features`".into(),
        Some("add `enable_experimental_features` to `features:` (or give `--cicd-feature`), or give `--bulk`".into()),
        false,
    );
}

/// The experimental publish filters and the feature flags fabric-cicd 1.4.0 needs for each
/// (`_validate_input.validate_experimental_param`: without both it raises `InputError`).
const GATED: &[(&str, &str)] = &[
    ("publish.items_to_include", "enable_items_to_include"),
    ("publish.folder_exclude_regex", "enable_exclude_folder"),
    ("publish.folder_path_to_include", "enable_include_folder"),
    ("publish.shortcut_exclude_regex", "enable_shortcut_exclude"),
    ("unpublish.items_to_include", "enable_items_to_include"),
];

/// fabric-cicd's gates: a filter its flags do not enable is an error (fabric-cicd refuses it
/// when the operation runs, so a skipped operation's filters are not checked). With
/// `disable_workspace_folder_publish` fabric-cicd neither checks nor applies the folder
/// filters: they are dropped, with a warning.
fn gate_filters(r: &mut Reader<'_>, c: &mut CicdConfig, more_features: &[String]) {
    let has = |f: &str| c.features.iter().chain(more_features).any(|g| g == f);
    let no_folders = has("disable_workspace_folder_publish");
    let p = &c.publish;
    let set = [
        !p.skip && p.items_to_include.is_some(),
        !p.skip && !no_folders && p.folder_exclude_regex.is_some(),
        !p.skip && !no_folders && p.folder_path_to_include.is_some(),
        !p.skip && p.shortcut_exclude_regex.is_some(),
        !c.unpublish.skip && c.unpublish.items_to_include.is_some(),
    ];
    let mut errors = Vec::new();
    for ((key, flag), set) in GATED.iter().zip(set) {
        let missing: Vec<&str> = ["enable_experimental_features", flag]
            .into_iter()
            .filter(|f| !has(f))
            .collect();
        if set && !missing.is_empty() {
            errors.push((*key, *flag, missing));
        }
    }
    for (key, flag, missing) in errors {
        let missing: Vec<String> = missing.iter().map(|f| format!("`{f}`")).collect();
        r.push_at_key(
            key,
            format!(
                "`{key}` is experimental in fabric-cicd 1.4.0, which refuses it without the feature flags `enable_experimental_features` and `{flag}` (missing: {})",
                missing.join(", ")
            ),
            Some(format!(
                "add them to `features:` (or give `--cicd-feature`), or remove `{key}`"
            )),
            false,
        );
    }
    if no_folders {
        for key in ["folder_exclude_regex", "folder_path_to_include"] {
            let given = match key {
                "folder_exclude_regex" => c.publish.folder_exclude_regex.take().is_some(),
                _ => c.publish.folder_path_to_include.take().is_some(),
            };
            if given && !c.publish.skip {
                r.push_at_key(
                    &format!("publish.{key}"),
                    format!("`publish.{key}` is not applied: with `disable_workspace_folder_publish` fabric-cicd 1.4.0 ignores the folder filters"),
                    None,
                    true,
                );
            }
        }
    }
}

/// The fabric-cicd 1.4.0 constants (`fabric_cicd.constants`) fabrik does not let `config.yml`
/// override; fabric-cicd's `hasattr` accepts any of them.
const OTHER_CONSTANTS: &[&str] = &[
    "ACCEPTED_ITEM_TYPES",
    "API_FORMAT_MAPPING",
    "ASYNC_PROVISIONED_ATTRIBUTES",
    "BULK_ACCEPTED_ITEM_TYPES",
    "BULK_ITEM_COUNT_LIMIT",
    "BULK_UNSUPPORTED_ITEM_TYPES",
    "CONFIG_SECTIONS",
    "CONFIG_VALIDATION_MSGS",
    "CROSS_WORKSPACE_ITEM_SEPARATOR",
    "DATAFLOW_SOURCE_REGEX",
    "DATA_PIPELINE_CONTENT_FILE_JSON",
    "DEFAULT_GUID",
    "DYNAMIC_VARIABLES_REGEX",
    "DYNAMIC_VARIABLE_MSGS",
    "ENVIRONMENT_VARIABLE_PREFIX",
    "EXCLUDE_PATH_REGEX_MAPPING",
    "FEATURE_FLAG",
    "INDENT",
    "INVALID_FOLDER_CHAR_REGEX",
    "INVALID_REPLACE_VALUE_SPARK_POOL",
    "ITEM_ATTR_LOOKUP",
    "ITEM_TYPE_TO_FILE",
    "ITEM_VARIABLE_PREFIX",
    "KQL_DATABASE_FOLDER_PATH_REGEX",
    "NO_ASSIGNED_CAPACITY_REQUIRED",
    "PARALLEL_MAX_WORKERS",
    "PARAMETER_FILE_FILTERS",
    "PARAMETER_FILE_NAME",
    "PARAMETER_MSGS",
    "PARAM_NAMES",
    "PROPERTY_PATH_ATTR_MAPPING",
    "REFLEX_WORKSPACE_ID_REFERENCE_REGEX",
    "RETRY_AFTER_SECONDS",
    "RETRY_API_MAX_DURATION_SECONDS",
    "RETRY_BASE_DELAY_SECONDS",
    "RETRY_MAX_DURATION_SECONDS",
    "SENSITIVE_REQUEST_HEADERS",
    "SENSITIVE_RESPONSE_HEADERS",
    "SERIAL_ITEM_PUBLISH_ORDER",
    "SHELL_ONLY_PUBLISH",
    "UNPUBLISH_FLAG_MAPPING",
    "VALID_ENABLE_FLAGS",
    "VALID_GUID_REGEX",
    "VERSION",
    "WILDCARD_PATH_VALIDATIONS",
    "WORKSPACE_ID_REFERENCE_REGEX",
    "WORKSPACE_VARIABLES_FIXED",
    "WORKSPACE_VARIABLE_ATTRIBUTES",
    "WORKSPACE_VARIABLE_PREFIX",
];

/// What fabrik offers instead of overriding the fabric-cicd constant `name`.
fn constant_hint(name: &str) -> String {
    let instead = match name {
        "PARALLEL_MAX_WORKERS" => "fabrik's `--concurrency`",
        n if n.starts_with("RETRY_") => "fabrik's `--call-timeout` and `--lro-timeout`",
        _ => "nothing: fabrik follows fabric-cicd's value",
    };
    format!(
        "remove it; instead: {instead}. Only DEFAULT_API_ROOT_URL and FABRIC_API_ROOT_URL can be set"
    )
}

/// fabric-cicd's `validate_api_url`: https, a host under `api.fabric.microsoft.com` or
/// `api.powerbi.com`, no path. The problem, or `None`.
fn api_url_problem(url: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("https://") else {
        return Some(format!("`{url}` must use the https scheme"));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    let host_ok = ["api.fabric.microsoft.com", "api.powerbi.com"]
        .iter()
        .any(|suffix| {
            host.strip_suffix(suffix).is_some_and(|pre| {
                pre.chars()
                    .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '-' || ch == '.')
                    && !pre.starts_with('.')
                    && !pre.contains("..")
            })
        });
    if !host_ok {
        return Some(format!(
            "`{url}` has the host `{host}`, not one under api.fabric.microsoft.com or api.powerbi.com"
        ));
    }
    if !matches!(tail, "" | "/") {
        return Some(format!(
            "`{url}` must be a root URL, without a path, query or fragment"
        ));
    }
    None
}

/// `constants:`, and the API root it sets. `DEFAULT_API_ROOT_URL` is honoured (checked as
/// fabric-cicd checks it); `FABRIC_API_ROOT_URL` only at the same URL (fabrik sends every
/// request to one API root); any other constant is an error.
fn read_constants(
    r: &mut Reader<'_>,
    v: Option<&Value>,
) -> (BTreeMap<String, String>, Option<String>) {
    let mut out = BTreeMap::new();
    let Some(Value::Mapping(m)) = v.filter(|v| !v.is_null()) else {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            r.error(
                "constants",
                format!("`constants` must be a mapping, not `{}`", show(v)),
            );
        }
        return (out, None);
    };
    for k in m.keys() {
        let Some(name) = k.as_str() else { continue };
        let path = format!("constants.{name}");
        if !matches!(name, "DEFAULT_API_ROOT_URL" | "FABRIC_API_ROOT_URL") {
            let message = if OTHER_CONSTANTS.contains(&name) {
                format!("fabrik does not support overriding the fabric-cicd constant `{name}`")
            } else {
                format!("`{name}` is not a fabric-cicd 1.4.0 constant")
            };
            r.push_at_key(&path, message, Some(constant_hint(name)), false);
            continue;
        }
        if let Some((value, at)) = r.string(v, &path, false) {
            match api_url_problem(&value) {
                Some(why) => r.error(&at, format!("`{at}`: {why}")),
                None => {
                    out.insert(name.to_string(), value.trim_end_matches('/').to_string());
                }
            }
        }
    }
    let api_root = out.get("DEFAULT_API_ROOT_URL").cloned();
    if let Some(fabric) = out.get("FABRIC_API_ROOT_URL")
        && api_root.as_ref() != Some(fabric)
    {
        r.push_at_key(
            "constants.FABRIC_API_ROOT_URL",
            "`constants.FABRIC_API_ROOT_URL` differs from `constants.DEFAULT_API_ROOT_URL`: fabric-cicd sends connection requests to one and the rest to the other, fabrik sends every request to one API root".into(),
            Some("give both the same URL (as fabric-cicd's `configure_fabric_fqdn` does), or remove FABRIC_API_ROOT_URL".into()),
            false,
        );
    }
    (out, api_root)
}

#[cfg(test)]
#[path = "cicd_config_tests.rs"]
mod tests;
