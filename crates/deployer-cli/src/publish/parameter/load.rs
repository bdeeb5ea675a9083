//! Reading `parameter.yml` and its `extend` templates into [`Parameters`], collecting every
//! problem with its position (see the parent module for which are errors and which warnings).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::json::Ordered;
use super::yaml::{self, Entry, Kind, Node, Scalar};
use super::{
    ByEnv, EnvRef, Filter, Filters, FindReplace, FindValue, ITEM_TYPES, ItemAttr, KeyValueReplace,
    LegacyBinding, ModelBinding, Origin, Parameters, PathPattern, PoolRef, PoolType, Replacement,
    SemanticModelBinding, SparkPool, Token,
};
use crate::config::Problem;
use crate::config::locate::Pos;

/// How to read a parameter file.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions<'a> {
    /// The repository root: absolute `file_path` values are made relative to it.
    pub repository: &'a Path,
    /// The target environment; entries without a value for it are warned about.
    pub environment: Option<&'a str>,
    /// fabric-cicd's `enable_environment_variable_replacement`: allows `$ENV:NAME`.
    pub env_vars_enabled: bool,
}

/// Reads `path` and the templates it extends. Returns the rules and the warnings, or every
/// problem (errors and warnings) when there is an error.
pub fn load(
    path: &Path,
    opts: &LoadOptions<'_>,
) -> Result<(Parameters, Vec<Problem>), Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem {
            file: path.to_path_buf(),
            pos: None,
            source_line: None,
            message: format!("cannot read the parameter file: {e}"),
            hint: None,
            warning: false,
        }]
    })?;
    load_str(path, &text, opts)
}

/// [`load`] on text already read from `path`; `extend` templates are read relative to it.
pub fn load_str(
    path: &Path,
    text: &str,
    opts: &LoadOptions<'_>,
) -> Result<(Parameters, Vec<Problem>), Vec<Problem>> {
    let mut problems = Vec::new();
    let mut params = Parameters::default();
    let extends = {
        let mut cx = Cx::new(path, text, opts, &mut problems);
        cx.file(&mut params, true)
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut seen: HashSet<PathBuf> = HashSet::new();
    seen.insert(normalize(path));
    for (rel, origin) in extends {
        let full = base.join(&rel);
        if !seen.insert(normalize(&full)) {
            problems.push(origin.problem(
                format!("`extend` names `{rel}` again; it is read once"),
                None,
                true,
            ));
            continue;
        }
        let Ok(t) = std::fs::read_to_string(&full) else {
            problems.push(origin.problem(
                format!("`extend` file `{rel}` cannot be read ({})", full.display()),
                Some("paths are relative to the parameter file's folder".into()),
                false,
            ));
            continue;
        };
        let mut part = Parameters::default();
        Cx::new(&full, &t, opts, &mut problems).file(&mut part, false);
        merge(&mut params, part, &origin, &mut problems);
    }
    if problems.iter().any(Problem::is_error) {
        Err(problems)
    } else {
        Ok((params, problems))
    }
}

fn normalize(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// Appends a template's rules: lists are appended, `semantic_model_binding` combined.
fn merge(into: &mut Parameters, from: Parameters, origin: &Origin, problems: &mut Vec<Problem>) {
    into.find_replace.extend(from.find_replace);
    into.key_value_replace.extend(from.key_value_replace);
    into.spark_pool.extend(from.spark_pool);
    into.env_refs.extend(from.env_refs);
    let Some(b) = from.semantic_model_binding else {
        return;
    };
    into.semantic_model_binding = match (into.semantic_model_binding.take(), b) {
        (None, b) => Some(b),
        (Some(SemanticModelBinding::Legacy(mut a)), SemanticModelBinding::Legacy(b)) => {
            a.extend(b);
            Some(SemanticModelBinding::Legacy(a))
        }
        (
            Some(SemanticModelBinding::ByEnv {
                default: d1,
                models: mut m1,
            }),
            SemanticModelBinding::ByEnv {
                default: d2,
                models: m2,
            },
        ) => {
            m1.extend(m2);
            let default = match (d1, d2) {
                (Some(a), Some(b)) => merge_by_env(a, b, origin, problems),
                (a, b) => a.or(b),
            };
            Some(SemanticModelBinding::ByEnv {
                default,
                models: m1,
            })
        }
        (Some(a), _) => {
            problems.push(origin.problem(
                "this template's `semantic_model_binding` uses the other format (list vs mapping)"
                    .into(),
                Some("use one format in all files".into()),
                false,
            ));
            Some(a)
        }
    };
}

/// Environments of `default.connection_id` from two files are combined, as fabric-cicd merges
/// the mappings; the same environment in both is an error, as it is there.
fn merge_by_env<T>(
    mut a: ByEnv<T>,
    b: ByEnv<T>,
    origin: &Origin,
    problems: &mut Vec<Problem>,
) -> Option<ByEnv<T>> {
    let clash = (a.all.is_some() && (b.all.is_some() || !b.envs.is_empty()))
        || (b.all.is_some() && !a.envs.is_empty())
        || b.envs
            .iter()
            .any(|(k, _)| a.envs.iter().any(|(j, _)| j.eq_ignore_ascii_case(k)));
    if clash {
        problems.push(origin.problem(
            "`semantic_model_binding.default.connection_id` gives the same environment here and in this template".into(),
            None,
            false,
        ));
        return Some(a);
    }
    a.all = a.all.or(b.all);
    a.envs.extend(b.envs);
    Some(a)
}

/// Reading one file: its path, text and where problems go.
struct Cx<'a> {
    file: &'a Path,
    text: &'a str,
    opts: &'a LoadOptions<'a>,
    problems: &'a mut Vec<Problem>,
    /// The `replace_value` key being read, for `$ENV:` references.
    env_key: Option<String>,
    env_refs: Vec<EnvRef>,
}

/// The characters that make a `file_path` a glob rather than an exact path.
const GLOB_SYNTAX: [char; 4] = ['*', '?', '[', '{'];

const TOP_KEYS: [&str; 6] = [
    "find_replace",
    "key_value_replace",
    "spark_pool",
    "semantic_model_binding",
    "gateway_binding",
    "extend",
];

impl<'a> Cx<'a> {
    fn new(
        file: &'a Path,
        text: &'a str,
        opts: &'a LoadOptions<'a>,
        problems: &'a mut Vec<Problem>,
    ) -> Self {
        Cx {
            file,
            text,
            opts,
            problems,
            env_key: None,
            env_refs: Vec::new(),
        }
    }

    fn origin(&self, pos: Pos) -> Origin {
        Origin {
            file: self.file.to_path_buf(),
            line: pos.line,
            col: pos.col,
            source_line: self
                .text
                .lines()
                .nth(pos.line.saturating_sub(1))
                .unwrap_or_default()
                .to_string(),
        }
    }

    fn error(&mut self, pos: Pos, message: String, hint: Option<&str>) {
        let p = self
            .origin(pos)
            .problem(message, hint.map(str::to_string), false);
        self.problems.push(p);
    }

    fn warn(&mut self, pos: Pos, message: String) {
        let p = self.origin(pos).problem(message, None, true);
        self.problems.push(p);
    }

    /// Reads the whole file into `out`; returns the `extend` paths (main file only).
    fn file(&mut self, out: &mut Parameters, allow_extend: bool) -> Vec<(String, Origin)> {
        let root = match yaml::parse(self.text) {
            Ok(Some(root)) => root,
            Ok(None) => return Vec::new(),
            Err((pos, msg)) => {
                self.error(pos, msg, None);
                return Vec::new();
            }
        };
        self.duplicates(&root, "");
        let Some(entries) = root.as_map() else {
            let t = root.type_name();
            self.error(
                root.pos,
                format!("the parameter file must be a mapping, not {t}"),
                None,
            );
            return Vec::new();
        };
        let mut extends = Vec::new();
        let mut gateway = None;
        for e in entries {
            let v = &e.value;
            match e.key.as_str() {
                "find_replace" => out.find_replace = self.list(v, &e.key, Self::find_replace),
                "key_value_replace" => {
                    out.key_value_replace = self.list(v, &e.key, Self::key_value_replace)
                }
                "spark_pool" => out.spark_pool = self.list(v, &e.key, Self::spark_pool),
                "semantic_model_binding" => out.semantic_model_binding = self.binding(v),
                "gateway_binding" => {
                    self.warn(e.key_pos, "`gateway_binding` is deprecated; it is read as the legacy `semantic_model_binding`".into());
                    gateway = Some(self.list(v, &e.key, Self::gateway));
                }
                "extend" if !allow_extend => self.error(
                    e.key_pos,
                    "a template cannot `extend` other files (nested extend)".into(),
                    Some("list every template in the main parameter file"),
                ),
                "extend" => {
                    extends = self.list(v, "extend", |cx, n| {
                        let s = cx.string(n, "an `extend` path")?;
                        Some((s.to_string(), cx.origin(n.pos)))
                    })
                }
                other => self.error(
                    e.key_pos,
                    format!("unknown parameter `{other}`"),
                    Some(&format!("expected one of: {}", TOP_KEYS.join(", "))),
                ),
            }
        }
        out.env_refs = std::mem::take(&mut self.env_refs);
        if let Some(g) = gateway {
            match &mut out.semantic_model_binding {
                None => out.semantic_model_binding = Some(SemanticModelBinding::Legacy(g)),
                Some(SemanticModelBinding::Legacy(l)) => l.extend(g),
                Some(SemanticModelBinding::ByEnv { .. }) => {
                    let pos = entries
                        .iter()
                        .find(|e| e.key == "gateway_binding")
                        .map(|e| e.key_pos);
                    self.error(
                        pos.unwrap_or(root.pos),
                        "`gateway_binding` cannot be combined with the mapping format of `semantic_model_binding`".into(),
                        None,
                    );
                }
            }
        }
        extends
    }

    /// Keys repeated in one mapping, compared case-insensitively (fabric-cicd's loader).
    fn duplicates(&mut self, node: &Node, path: &str) {
        match &node.kind {
            Kind::Map(entries) => {
                for (i, e) in entries.iter().enumerate() {
                    let whole = if path.is_empty() {
                        e.key.clone()
                    } else {
                        format!("{path}.{}", e.key)
                    };
                    if let Some(first) = entries[..i]
                        .iter()
                        .find(|f| f.key.eq_ignore_ascii_case(&e.key))
                    {
                        let msg = format!(
                            "duplicate key `{whole}` (`{}` is on line {}; keys are compared ignoring case)",
                            first.key, first.key_pos.line
                        );
                        self.error(e.key_pos, msg, None);
                    }
                    self.duplicates(&e.value, &whole);
                }
            }
            Kind::Seq(items) => {
                for (i, n) in items.iter().enumerate() {
                    self.duplicates(n, &format!("{path}[{i}]"));
                }
            }
            Kind::Scalar { .. } => {}
        }
    }

    fn list<T>(
        &mut self,
        node: &Node,
        what: &str,
        mut f: impl FnMut(&mut Self, &Node) -> Option<T>,
    ) -> Vec<T> {
        let Some(items) = node.as_seq() else {
            let t = node.type_name();
            self.error(node.pos, format!("`{what}` must be a list, not {t}"), None);
            return Vec::new();
        };
        items.iter().filter_map(|n| f(self, n)).collect()
    }

    fn string<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n str> {
        match node.as_str() {
            Some("") => {
                self.error(node.pos, format!("{what} must not be empty"), None);
                None
            }
            Some(s) => Some(s),
            None => {
                let t = node.type_name();
                self.error(
                    node.pos,
                    format!("{what} must be a string, not {t}"),
                    Some("quote it"),
                );
                None
            }
        }
    }

    /// The entry's mapping, warning about keys outside `allowed`.
    fn entry<'n>(&mut self, node: &'n Node, what: &str, allowed: &[&str]) -> Option<&'n [Entry]> {
        let Some(entries) = node.as_map() else {
            let t = node.type_name();
            self.error(
                node.pos,
                format!("a `{what}` entry must be a mapping, not {t}"),
                None,
            );
            return None;
        };
        let mut ok = true;
        for e in entries {
            if !allowed.contains(&e.key.as_str()) {
                let msg = format!("unknown key `{}` in a `{what}` entry", e.key);
                let hint = format!("expected one of: {}", allowed.join(", "));
                self.error(e.key_pos, msg, Some(&hint));
                ok = false;
            }
        }
        ok.then_some(entries)
    }

    fn required<'n>(
        &mut self,
        entries: &'n [Entry],
        at: &Node,
        key: &str,
        what: &str,
    ) -> Option<&'n Node> {
        let found = field(entries, key);
        if found.is_none() {
            self.error(at.pos, format!("`{what}` entry has no `{key}`"), None);
        }
        found
    }

    fn find_replace(&mut self, node: &Node) -> Option<FindReplace> {
        const KEYS: [&str; 7] = [
            "find_value",
            "replace_value",
            "is_regex",
            "ignore_case",
            "item_type",
            "item_name",
            "file_path",
        ];
        let entries = self.entry(node, "find_replace", &KEYS)?;
        let is_regex = self.flag(optional(entries, "is_regex"), "is_regex");
        let ignore_case = self.flag(optional(entries, "ignore_case"), "ignore_case");
        let filters = self.filters(entries);
        let find_node = self.required(entries, node, "find_value", "find_replace");
        let replace_node = self.required(entries, node, "replace_value", "find_replace");
        let find = find_node.and_then(|n| self.find_value(n, is_regex, ignore_case));
        let replace = replace_node.and_then(|n| {
            self.by_env(n, |cx, v| {
                let s = cx.string(v, "a `replace_value`")?;
                cx.replacement(s, v.pos)
            })
        });
        Some(FindReplace {
            find: find?,
            replace: replace?,
            ignore_case,
            filters: filters?,
            origin: self.origin(node.pos),
        })
    }

    fn find_value(&mut self, n: &Node, is_regex: bool, ignore_case: bool) -> Option<FindValue> {
        let s = self.string(n, "`find_value`")?;
        if s.starts_with("$items.") {
            self.error(n.pos, format!("`find_value` `{s}` uses a `$items` variable, which is only allowed in `replace_value`"), None);
            return None;
        }
        if is_regex && s.starts_with("$workspace.") {
            self.error(
                n.pos,
                "a `$workspace` variable cannot be used in a regex `find_value`".into(),
                None,
            );
            return None;
        }
        if !is_regex {
            if s.starts_with('$') && !s.starts_with("$ENV:") {
                return self.replacement(s, n.pos).map(FindValue::Literal);
            }
            // `$ENV:` in a find_value is expanded when the feature is on; literal otherwise.
            self.env_key = None;
            return self.replacement(s, n.pos).map(FindValue::Literal);
        }
        let re = match regex::RegexBuilder::new(s)
            .case_insensitive(ignore_case)
            .build()
        {
            Ok(re) => re,
            Err(e) => {
                let first = e.to_string().lines().last().unwrap_or_default().to_string();
                self.error(
                    n.pos,
                    format!("`find_value` is not a valid regex: {first}"),
                    Some("fabrik's regex engine has no look-around or backreferences"),
                );
                return None;
            }
        };
        let groups = re.captures_len() - 1;
        if groups != 1 {
            self.error(n.pos, format!("a regex `find_value` must have exactly one capture group, this one has {groups}"), Some("only group 1 is replaced; use (?:...) for other groups"));
            return None;
        }
        Some(FindValue::Regex(re))
    }

    /// `is_regex` / `ignore_case`: fabric-cicd requires the string `"true"`.
    fn flag(&mut self, node: Option<&Node>, key: &str) -> bool {
        let Some(n) = node else { return false };
        match n.as_str() {
            Some(s) if s.eq_ignore_ascii_case("true") => true,
            Some(s) if s.eq_ignore_ascii_case("false") => false,
            Some(s) => {
                self.warn(
                    n.pos,
                    format!("`{key}` is `{s}`, which means false; write \"true\" or \"false\""),
                );
                false
            }
            None => {
                let t = n.type_name();
                self.error(
                    n.pos,
                    format!("`{key}` must be the string \"true\" or \"false\", not {t}"),
                    Some("quote it: \"true\""),
                );
                false
            }
        }
    }

    /// Values per environment; `None` after reporting when the shape is wrong.
    fn by_env<T>(
        &mut self,
        node: &Node,
        mut f: impl FnMut(&mut Self, &Node) -> Option<T>,
    ) -> Option<ByEnv<T>> {
        let Some(entries) = node.as_map() else {
            let t = node.type_name();
            self.error(
                node.pos,
                format!("`replace_value` must map environments to values, not be {t}"),
                Some("e.g. `replace_value: {test: ..., prod: ...}` or `_ALL_: ...`"),
            );
            return None;
        };
        if entries.is_empty() {
            self.error(node.pos, "`replace_value` has no environment".into(), None);
            return None;
        }
        let mut out = ByEnv {
            all: None,
            envs: Vec::new(),
        };
        let mut ok = true;
        let all_key = entries.iter().find(|e| e.key.eq_ignore_ascii_case("_ALL_"));
        if let Some(all) = all_key
            && entries.len() > 1
        {
            let other = entries
                .iter()
                .find(|e| !e.key.eq_ignore_ascii_case("_ALL_"))
                .map_or(all.key_pos, |e| e.key_pos);
            self.error(
                other,
                format!(
                    "`{}` applies to every environment and must be the only key of `replace_value`",
                    all.key
                ),
                None,
            );
            ok = false;
        }
        for e in entries {
            self.env_key = Some(e.key.clone());
            let parsed = f(self, &e.value);
            self.env_key = None;
            match parsed {
                Some(v) if e.key.eq_ignore_ascii_case("_ALL_") => out.all = Some(v),
                Some(v) => out.envs.push((e.key.clone(), v)),
                None => ok = false,
            }
        }
        if let Some(env) = self.opts.environment
            && ok
            && out.get(env).is_none()
        {
            let keys: Vec<&str> = out.envs.iter().map(|(k, _)| k.as_str()).collect();
            let near = keys.iter().find(|k| k.eq_ignore_ascii_case(env));
            let msg = match near {
                Some(k) => format!(
                    "no value for environment `{env}` (there is `{k}`: names are case-sensitive); this entry is skipped"
                ),
                None => format!(
                    "no value for environment `{env}` (has: {}); this entry is skipped",
                    keys.join(", ")
                ),
            };
            self.warn(node.pos, msg);
        }
        ok.then_some(out)
    }

    /// A replacement string: a `$workspace`/`$items` variable, `$ENV:` text, or literal text.
    fn replacement(&mut self, s: &str, pos: Pos) -> Option<Replacement> {
        // Every `$`-prefixed value except `$ENV:` text is a variable (fabric-cicd's rule).
        if s.starts_with('$') && !s.starts_with("$ENV:") {
            return match parse_token(s) {
                Ok(t) => Some(Replacement::Token(t)),
                Err(why) => {
                    self.error(pos, format!("invalid variable `{s}`: {why}"), Some("forms: $workspace.$id, $workspace.$name, $workspace.<Name>[.$id], [$workspace.<Name>.]$items.<Type>.<Name>.$id|$sqlendpoint|$sqlendpointid|$queryserviceuri"));
                    None
                }
            };
        }
        if !self.opts.env_vars_enabled {
            // fabric-cicd rejects a value that starts with `$ENV:`; elsewhere it is plain text.
            if s.starts_with("$ENV:") && self.env_key.is_some() {
                self.error(
                    pos,
                    "`$ENV:` needs the `enable_environment_variable_replacement` feature".into(),
                    None,
                );
                return None;
            }
            return Some(Replacement::Text(s.to_string()));
        }
        if !s.contains("$ENV:") {
            return Some(Replacement::Text(s.to_string()));
        }
        for var in env_vars(s) {
            let origin = self.origin(pos);
            let environment = self.env_key.clone();
            self.env_refs.push(EnvRef {
                environment,
                var,
                origin,
            });
        }
        Some(Replacement::WithEnv(s.to_string()))
    }

    fn filters(&mut self, entries: &[Entry]) -> Option<Filters> {
        let mut ok = true;
        let mut strings = |cx: &mut Self, key: &str| -> Option<Filter<String>> {
            let n = optional(entries, key)?;
            let r = cx.string_list(n, key);
            if r.is_none() {
                ok = false;
            }
            r
        };
        let item_type = strings(self, "item_type");
        let item_name = strings(self, "item_name");
        let file_path = strings(self, "file_path");
        if let Some(t) = &item_type {
            for v in &t.values {
                if !v.is_empty() && !ITEM_TYPES.contains(&v.as_str()) {
                    let msg = format!(
                        "`item_type` `{v}` is not an item type fabric-cicd publishes; the filter will match nothing"
                    );
                    self.warn(
                        Pos {
                            line: t.origin.line,
                            col: t.origin.col,
                        },
                        msg,
                    );
                }
            }
        }
        let file_path = match file_path {
            Some(f) if f.values.is_empty() => None,
            Some(f) => Some(self.path_patterns(f)?),
            None => None,
        };
        ok.then_some(Filters {
            item_type,
            item_name,
            file_path,
        })
    }

    /// A string or a list of strings; `None` after reporting otherwise. An empty one is
    /// treated as absent, as fabric-cicd does, with a warning.
    fn string_list(&mut self, n: &Node, key: &str) -> Option<Filter<String>> {
        let origin = self.origin(n.pos);
        let values: Vec<String> = match &n.kind {
            Kind::Seq(items) => {
                let mut v = Vec::new();
                for i in items {
                    match i.as_str() {
                        Some(s) => v.push(s.to_string()),
                        None => {
                            let t = i.type_name();
                            self.error(
                                i.pos,
                                format!("`{key}` values must be strings, not {t}"),
                                None,
                            );
                            return None;
                        }
                    }
                }
                v
            }
            _ => match n.as_str() {
                Some(s) => vec![s.to_string()],
                None => {
                    let t = n.type_name();
                    self.error(
                        n.pos,
                        format!("`{key}` must be a string or a list of strings, not {t}"),
                        None,
                    );
                    return None;
                }
            },
        };
        // fabric-cicd ignores an empty `file_path` (and spark pool `item_name`), but an empty
        // `item_type` or `item_name` filter matches no item.
        let ignored = matches!(key, "file_path" | "spark_pool item_name");
        if values.iter().all(String::is_empty) {
            let msg = if ignored {
                format!("`{key}` is empty, so it does not filter anything")
            } else {
                format!("`{key}` is empty, so the entry applies to nothing")
            };
            self.warn(n.pos, msg);
            if ignored {
                return Some(Filter {
                    values: Vec::new(),
                    origin,
                });
            }
        }
        Some(Filter { values, origin })
    }

    fn path_patterns(&mut self, f: Filter<String>) -> Option<Filter<PathPattern>> {
        let pos = Pos {
            line: f.origin.line,
            col: f.origin.col,
        };
        let repo = self.opts.repository.to_string_lossy().replace('\\', "/");
        let mut out = Vec::new();
        for raw in &f.values {
            out.push(self.path_pattern(raw, &repo, pos)?);
        }
        Some(Filter {
            values: out,
            origin: f.origin,
        })
    }

    /// One `file_path` value, made relative to the repository (`repo`, `/`-separated): a glob
    /// when it has glob syntax, else an exact path.
    fn path_pattern(&mut self, raw: &str, repo: &str, pos: Pos) -> Option<PathPattern> {
        let p = raw.replace('\\', "/");
        let rel = match p.strip_prefix(repo.trim_end_matches('/')) {
            Some(rest) if !repo.is_empty() && rest.starts_with('/') => rest,
            _ => p.as_str(),
        };
        let rel = rel.trim_start_matches('/').to_string();
        if rel.split('/').any(|seg| seg == "..") {
            self.error(
                pos,
                format!("`file_path` `{raw}` leaves the repository (`..`)"),
                None,
            );
            return None;
        }
        if !rel.contains(GLOB_SYNTAX) {
            return Some(PathPattern::Exact(rel.trim_start_matches("./").to_string()));
        }
        match globset::GlobBuilder::new(&rel)
            .literal_separator(true)
            .build()
        {
            Ok(g) => Some(PathPattern::Glob(raw.to_string(), g.compile_matcher())),
            Err(e) => {
                self.error(
                    pos,
                    format!("`file_path` `{raw}` is not a valid glob: {}", e.kind()),
                    None,
                );
                None
            }
        }
    }

    fn key_value_replace(&mut self, node: &Node) -> Option<KeyValueReplace> {
        const KEYS: [&str; 5] = [
            "find_key",
            "replace_value",
            "item_type",
            "item_name",
            "file_path",
        ];
        let entries = self.entry(node, "key_value_replace", &KEYS)?;
        let filters = self.filters(entries);
        let key_node = self.required(entries, node, "find_key", "key_value_replace");
        let path = key_node.and_then(|n| {
            let s = self.string(n, "`find_key`")?;
            if !s.starts_with('$') {
                self.error(
                    n.pos,
                    format!("`find_key` `{s}` must be a JSONPath starting with `$`"),
                    None,
                );
                return None;
            }
            match serde_json_path::JsonPath::parse(s) {
                Ok(p) => Some((s.to_string(), p)),
                Err(e) => {
                    self.error(
                        n.pos,
                        format!("`find_key` `{s}` is not a valid JSONPath: {e}"),
                        Some("RFC 9535 syntax, e.g. $.items[?(@.name==\"x\")].value"),
                    );
                    None
                }
            }
        });
        let replace = self
            .required(entries, node, "replace_value", "key_value_replace")
            .and_then(|n| {
                let r = self.by_env(n, |cx, v| {
                    let o = to_ordered(v);
                    match &o {
                        Ordered::String(s) => {
                            cx.replacement(s, v.pos)?;
                        }
                        Ordered::Null => {
                            cx.error(v.pos, "a `replace_value` must not be null".into(), None);
                            return None;
                        }
                        _ => {}
                    }
                    Some((o, v.pos))
                })?;
                self.same_types(&r)
            });
        let (find_key, path) = path?;
        Some(KeyValueReplace {
            find_key,
            path,
            replace: replace?,
            filters: filters?,
            origin: self.origin(node.pos),
        })
    }

    /// fabric-cicd requires one value type across environments.
    fn same_types(&mut self, r: &ByEnv<(Ordered, Pos)>) -> Option<ByEnv<Ordered>> {
        // Python's type(): int and float differ, so do the two kinds of number.
        let kind = |o: &Ordered| match o {
            Ordered::Number(n) => (std::mem::discriminant(o), n.is_f64()),
            other => (std::mem::discriminant(other), false),
        };
        let mut ok = true;
        if let Some(((_, (first, _)), rest)) = r.envs.split_first() {
            for (env, (v, pos)) in rest {
                if kind(v) != kind(first) {
                    self.error(*pos, format!("the value for `{env}` is of a different type than the first environment's; `replace_value` must have one type"), None);
                    ok = false;
                }
            }
        }
        ok.then(|| ByEnv {
            all: r.all.as_ref().map(|(o, _)| o.clone()),
            envs: r
                .envs
                .iter()
                .map(|(k, (o, _))| (k.clone(), o.clone()))
                .collect(),
        })
    }

    fn spark_pool(&mut self, node: &Node) -> Option<SparkPool> {
        let entries = self.entry(
            node,
            "spark_pool",
            &["instance_pool_id", "replace_value", "item_name"],
        )?;
        let id = self
            .required(entries, node, "instance_pool_id", "spark_pool")
            .and_then(|n| self.string(n, "`instance_pool_id`").map(str::to_string));
        let item_name = match optional(entries, "item_name") {
            Some(n) => {
                Some(self.string_list(n, "spark_pool item_name")?).filter(|f| !f.values.is_empty())
            }
            None => None,
        };
        let replace = self
            .required(entries, node, "replace_value", "spark_pool")
            .and_then(|n| {
                self.by_env(n, |cx, v| {
                    let m = cx.entry(v, "spark_pool replace_value", &["type", "name"])?;
                    let t = cx.required(m, v, "type", "spark_pool replace_value")?;
                    let pool_type = match t.as_str() {
                        Some("Capacity") => PoolType::Capacity,
                        Some("Workspace") => PoolType::Workspace,
                        _ => {
                            cx.error(
                                t.pos,
                                "spark pool `type` must be \"Capacity\" or \"Workspace\"".into(),
                                None,
                            );
                            return None;
                        }
                    };
                    let name = cx.required(m, v, "name", "spark_pool replace_value")?;
                    let name = cx.string(name, "spark pool `name`")?.to_string();
                    Some(PoolRef { pool_type, name })
                })
            });
        Some(SparkPool {
            instance_pool_id: id?,
            replace: replace?,
            item_name,
            origin: self.origin(node.pos),
        })
    }

    fn binding(&mut self, node: &Node) -> Option<SemanticModelBinding> {
        if node.as_seq().is_some() {
            let list = self.list(node, "semantic_model_binding", |cx, n| {
                let m = cx.entry(
                    n,
                    "semantic_model_binding",
                    &["connection_id", "semantic_model_name"],
                )?;
                let id = cx.required(m, n, "connection_id", "semantic_model_binding")?;
                let connection_id = cx.guid(id)?;
                let names = cx.required(m, n, "semantic_model_name", "semantic_model_binding")?;
                let models = cx.string_list(names, "semantic_model_name")?.values;
                Some(LegacyBinding {
                    connection_id,
                    models,
                })
            });
            return Some(SemanticModelBinding::Legacy(list));
        }
        let entries = self.entry(node, "semantic_model_binding", &["default", "models"])?;
        if entries.is_empty() {
            self.error(
                node.pos,
                "`semantic_model_binding` needs `default` or `models`".into(),
                None,
            );
            return None;
        }
        let default = match field(entries, "default") {
            Some(d) => {
                let m = self.entry(d, "semantic_model_binding.default", &["connection_id"])?;
                let c = self.required(m, d, "connection_id", "semantic_model_binding.default")?;
                Some(self.by_env(c, Self::guids)?)
            }
            None => None,
        };
        let models = match field(entries, "models") {
            Some(n) if n.as_seq().is_some_and(<[Node]>::is_empty) => {
                self.error(n.pos, "`models` must not be empty".into(), None);
                return None;
            }
            Some(n) => self.list(n, "models", |cx, n| {
                let m = cx.entry(n, "models", &["semantic_model_name", "connection_id"])?;
                let names = cx.required(m, n, "semantic_model_name", "models")?;
                let models = cx.string_list(names, "semantic_model_name")?.values;
                let c = cx.required(m, n, "connection_id", "models")?;
                let connection_id = cx.by_env(c, Self::guids)?;
                Some(ModelBinding {
                    models,
                    connection_id,
                })
            }),
            None => Vec::new(),
        };
        Some(SemanticModelBinding::ByEnv { default, models })
    }

    fn gateway(&mut self, n: &Node) -> Option<LegacyBinding> {
        let m = self.entry(n, "gateway_binding", &["gateway_id", "dataset_name"])?;
        let id = self.required(m, n, "gateway_id", "gateway_binding")?;
        let connection_id = self.guid(id)?;
        let names = self.required(m, n, "dataset_name", "gateway_binding")?;
        let models = self.string_list(names, "dataset_name")?.values;
        Some(LegacyBinding {
            connection_id,
            models,
        })
    }

    fn guid(&mut self, n: &Node) -> Option<String> {
        let s = self.string(n, "a connection id")?;
        if is_guid(s) {
            Some(s.to_string())
        } else {
            self.error(n.pos, format!("connection id `{s}` is not a GUID"), None);
            None
        }
    }

    fn guids(&mut self, n: &Node) -> Option<Vec<String>> {
        match n.as_seq() {
            Some([]) => {
                self.error(
                    n.pos,
                    "the list of connection ids must not be empty".into(),
                    None,
                );
                None
            }
            Some(items) => items.iter().map(|i| self.guid(i)).collect(),
            None => self.guid(n).map(|g| vec![g]),
        }
    }
}

/// The variable names of the `$ENV:NAME` references in `s`.
pub(crate) fn env_vars(s: &str) -> Vec<String> {
    s.match_indices("$ENV:")
        .map(|(i, _)| {
            let after = &s[i + 5..];
            let len = after
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            after[..len].to_string()
        })
        .collect()
}

fn field<'n>(entries: &'n [Entry], key: &str) -> Option<&'n Node> {
    entries.iter().find(|e| e.key == key).map(|e| &e.value)
}

/// An optional key's value. One left empty (`item_name:` with no value, YAML null, as
/// fabric-cicd's templates write the optional keys) is absent: fabric-cicd reads it with
/// `param_dict.get(key)`, which gives `None`, the same as no key.
fn optional<'n>(entries: &'n [Entry], key: &str) -> Option<&'n Node> {
    field(entries, key).filter(|n| !n.is_null())
}

/// Whether `s` is a GUID in the 8-4-4-4-12 form.
pub(crate) fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A YAML value as JSON, keeping key order.
pub(crate) fn to_ordered(n: &Node) -> Ordered {
    match &n.kind {
        Kind::Seq(items) => Ordered::Array(items.iter().map(to_ordered).collect()),
        Kind::Map(entries) => Ordered::Object(
            entries
                .iter()
                .map(|e| (e.key.clone(), to_ordered(&e.value)))
                .collect(),
        ),
        Kind::Scalar { text, plain } => match yaml::resolve(text, *plain) {
            Scalar::Null => Ordered::Null,
            Scalar::Bool(b) => Ordered::Bool(b),
            Scalar::Int(i) => Ordered::Number(i.into()),
            Scalar::Float(f) => {
                serde_json::Number::from_f64(f).map_or(Ordered::Null, Ordered::Number)
            }
            Scalar::Str(s) => Ordered::String(s),
        },
    }
}

/// Parses a `$workspace.…` or `$items.…` variable.
pub(crate) fn parse_token(s: &str) -> Result<Token, String> {
    if let Some(rest) = s.strip_prefix("$items.") {
        return parse_item(None, rest);
    }
    let rest = s
        .strip_prefix("$workspace.")
        .ok_or("a value starting with `$` must be a `$workspace` or `$items` variable")?;
    match rest {
        "$id" | "id" => return Ok(Token::WorkspaceId),
        "$name" => return Ok(Token::WorkspaceName),
        "$name_encoded" => return Ok(Token::WorkspaceNameEncoded),
        "" => return Err("no workspace attribute or name".into()),
        _ => {}
    }
    if let Some((ws, item)) = rest.split_once(".$items.") {
        if ws.is_empty() {
            return Err("no workspace name before `$items`".into());
        }
        return parse_item(Some(ws.to_string()), item);
    }
    if rest.starts_with('$') {
        return Err(format!(
            "unknown attribute `{rest}` (expected $id, $name or $name_encoded)"
        ));
    }
    let ws = rest.strip_suffix(".$id").unwrap_or(rest).trim();
    if let Some((_, attr)) = ws.rsplit_once(".$") {
        return Err(format!("unknown workspace attribute `${attr}` (only $id)"));
    }
    if ws.is_empty() {
        return Err("no workspace name".into());
    }
    Ok(Token::OtherWorkspaceId(ws.to_string()))
}

fn parse_item(workspace: Option<String>, rest: &str) -> Result<Token, String> {
    // `<Type>.<Name>.$<attr>`, or legacy `<Type>.<Name>.<attr>`; a name may contain dots.
    let bad = || "expected <Type>.<Name>.$<attribute>".to_string();
    let (info, attr) = match rest.rsplit_once(".$") {
        Some(split) => split,
        None => rest.rsplit_once('.').ok_or_else(bad)?,
    };
    let (item_type, name) = info.split_once('.').ok_or_else(bad)?;
    let (item_type, name) = (item_type.trim(), name.trim());
    if item_type.is_empty() || name.is_empty() {
        return Err(bad());
    }
    if !ITEM_TYPES.contains(&item_type) {
        return Err(format!(
            "`{item_type}` is not an item type fabric-cicd publishes"
        ));
    }
    let attr = match attr.trim().to_ascii_lowercase().as_str() {
        "id" => ItemAttr::Id,
        "sqlendpoint" => ItemAttr::SqlEndpoint,
        "sqlendpointid" => ItemAttr::SqlEndpointId,
        "queryserviceuri" => ItemAttr::QueryServiceUri,
        _ => {
            return Err(format!(
                "unknown attribute `{attr}` (expected $id, $sqlendpoint, $sqlendpointid or $queryserviceuri)"
            ));
        }
    };
    Ok(Token::Item {
        workspace,
        item_type: item_type.to_string(),
        name: name.to_string(),
        attr,
    })
}

/// A replacement string already validated by [`load`], as [`Replacement`].
pub(crate) fn parse_replacement_text(s: &str) -> Replacement {
    if s.starts_with('$')
        && !s.starts_with("$ENV:")
        && let Ok(t) = parse_token(s)
    {
        return Replacement::Token(t);
    }
    if s.contains("$ENV:") {
        return Replacement::WithEnv(s.to_string());
    }
    Replacement::Text(s.to_string())
}
