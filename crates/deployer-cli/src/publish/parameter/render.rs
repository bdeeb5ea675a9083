//! Rendering one part's text for one environment, step by step as fabric-cicd's text pipeline
//! (`FabricWorkspace._publish_item`) does.

use std::fmt;

use super::json::Ordered;
use super::{Filters, FindValue, ItemAttr, Origin, Parameters, Replacement, Token, ZERO_GUID};

/// The deployment target.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The environment name (`test`, `prod`), matched exactly against `replace_value` keys.
    pub environment: &'a str,
    /// The target workspace id.
    pub workspace_id: &'a str,
    /// The target workspace name.
    pub workspace_name: &'a str,
}

/// One part of one item.
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    /// The item's type (`Notebook`).
    pub item_type: &'a str,
    /// The item's display name.
    pub item_name: &'a str,
    /// The part's path relative to the repository root, `/`-separated
    /// (`notebooks/Ingest.Notebook/notebook-content.py`); `file_path` filters match it.
    pub path: &'a str,
}

/// A deployed item's attributes, as `$items` variables name them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemAttrs {
    /// The item id.
    pub id: String,
    /// SQL endpoint connection string (Lakehouse, Warehouse, …).
    pub sql_endpoint: Option<String>,
    /// SQL endpoint id.
    pub sql_endpoint_id: Option<String>,
    /// Query service URI (Eventhouse).
    pub query_service_uri: Option<String>,
}

/// What rendering needs from the outside world, answered from one listing (not per token).
pub trait Lookup {
    /// The id of another workspace, by name.
    fn workspace_id(&self, name: &str) -> Option<String>;
    /// A deployed item by type and name, in the target workspace (`workspace` `None`) or in
    /// the named workspace.
    fn item(&self, workspace: Option<&str>, item_type: &str, name: &str) -> Option<ItemAttrs>;
    /// An environment variable, for `$ENV:NAME`.
    fn env(&self, var: &str) -> Option<String>;
}

/// A repository item's logicalId and, once deployed, its id.
#[derive(Debug, Clone, Copy)]
pub struct LogicalId<'a> {
    /// The logicalId from `.platform`.
    pub logical_id: &'a str,
    /// The deployed id, if the item exists in the target workspace.
    pub deployed_id: Option<&'a str>,
}

/// Why a part could not be rendered. Never contains an `$ENV:` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    /// The part's repository path.
    pub part: String,
    /// What went wrong.
    pub message: String,
    /// The `parameter.yml` entry involved, if any.
    pub origin: Option<Origin>,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.part, self.message)?;
        if let Some(o) = &self.origin {
            write!(f, " (parameter entry at {o})")?;
        }
        Ok(())
    }
}

impl std::error::Error for RenderError {}

/// The whole text pipeline after the type-specific step: logicalIds, then parameters, then
/// zero workspace ids; a VariableLibrary gets only the parameters, and `.platform` nothing.
pub fn render_part(
    params: Option<&Parameters>,
    target: &Target<'_>,
    part: &Part<'_>,
    text: &str,
    logical_ids: &[LogicalId<'_>],
    lookup: &dyn Lookup,
) -> Result<String, RenderError> {
    if part.path == ".platform" || part.path.ends_with("/.platform") {
        return Ok(text.to_string());
    }
    let full = part.item_type != "VariableLibrary";
    let mut out = if full {
        replace_logical_ids(part.path, text, logical_ids)?
    } else {
        text.to_string()
    };
    if let Some(p) = params {
        out = apply_parameters(p, target, part, &out, lookup)?;
    }
    if full {
        out = replace_zero_workspace_ids(&out, part.item_type, target.workspace_id);
    }
    Ok(out)
}

/// Step 2: every repository logicalId (other than the zero GUID) found in `text` becomes the
/// item's deployed id; one that is not deployed yet is an error, as in fabric-cicd.
pub fn replace_logical_ids(
    part_path: &str,
    text: &str,
    logical_ids: &[LogicalId<'_>],
) -> Result<String, RenderError> {
    let mut out = text.to_string();
    for l in logical_ids {
        if l.logical_id == ZERO_GUID || l.logical_id.is_empty() || !out.contains(l.logical_id) {
            continue;
        }
        match l.deployed_id {
            Some(id) => out = out.replace(l.logical_id, id),
            None => {
                return Err(RenderError {
                    part: part_path.to_string(),
                    message: format!(
                        "cannot replace logical ID '{}' as the referenced item is not yet deployed",
                        l.logical_id
                    ),
                    origin: None,
                });
            }
        }
    }
    Ok(out)
}

/// Step 4: a `workspaceId`, `workspace` or `default_lakehouse_workspace_id` whose value is
/// the zero GUID gets the target workspace id; in a Reflex, also the escaped
/// `{\"name\":\"workspaceId\",\"type\":\"string\",\"value\":\"<zero>\"}` of its actions.
pub fn replace_zero_workspace_ids(text: &str, item_type: &str, workspace_id: &str) -> String {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r#""?(default_lakehouse_workspace_id|workspaceId|workspace)"?\s*[:=]\s*"(.*?)""#,
        )
        .expect("the workspace id pattern is valid")
    });
    static REFLEX: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        let pattern = format!(
            r#"(\\"name\\":\\"workspaceId\\",\\"type\\":\\"string\\",\\"value\\":\\"){}(\\")"#,
            regex::escape(ZERO_GUID)
        );
        regex::Regex::new(&pattern).expect("the Reflex workspace id pattern is valid")
    });
    // fabric-cicd replaces the zero GUID anywhere in a match whose value is the zero GUID.
    let out = RE.replace_all(text, |c: &regex::Captures<'_>| {
        let whole = c.get(0).map_or("", |m| m.as_str());
        match c.get(2) {
            Some(v) if v.as_str() == ZERO_GUID => whole.replace(ZERO_GUID, workspace_id),
            _ => whole.to_string(),
        }
    });
    if item_type != "Reflex" {
        return out.into_owned();
    }
    REFLEX
        .replace_all(&out, |c: &regex::Captures<'_>| {
            format!("{}{workspace_id}{}", &c[1], &c[2])
        })
        .into_owned()
}

/// The `instance_pool_id` of a `Sparkcompute.yml` text, if it has one.
pub fn instance_pool_id(text: &str) -> Option<String> {
    match sparkcompute(text)? {
        Ordered::Object(o) => o
            .into_iter()
            .find(|(k, _)| k == "instance_pool_id")
            .map(|(_, v)| match v {
                Ordered::String(s) => s,
                other => other.python_dumps(),
            }),
        _ => None,
    }
}

/// The Environment type step for `Setting/Sparkcompute.yml`, as fabric-cicd sends it: a text
/// that mentions `instance_pool_id` and parses as a mapping is re-dumped by PyYAML (key order
/// kept), with `instance_pool_id` set to `pool_id` when a `spark_pool` entry matched (see
/// [`Parameters::spark_pool_for`]); any other text is sent as it is.
pub fn render_sparkcompute(text: &str, pool_id: Option<&str>) -> String {
    let Some(Ordered::Object(mut o)) = sparkcompute(text) else {
        return text.to_string();
    };
    if let Some(id) = pool_id
        && let Some(slot) = o.iter_mut().find(|(k, _)| k == "instance_pool_id")
    {
        slot.1 = Ordered::String(id.to_string());
    }
    let opts = super::pyyaml::Dump {
        sort_keys: false,
        allow_unicode: false,
    };
    super::pyyaml::dump(&Ordered::Object(o), opts)
}

fn sparkcompute(text: &str) -> Option<Ordered> {
    if !text.contains("instance_pool_id") {
        return None;
    }
    let node = super::yaml::parse(text).ok()??;
    Some(super::load::to_ordered(&node))
}

/// Step 3: `key_value_replace`, then `find_replace`, for the entries whose filters match.
pub fn apply_parameters(
    params: &Parameters,
    target: &Target<'_>,
    part: &Part<'_>,
    text: &str,
    lookup: &dyn Lookup,
) -> Result<String, RenderError> {
    let mut out = text.to_string();
    // fabric-cicd rewrites every file the filters match, found or not, in any environment.
    for kv in &params.key_value_replace {
        if !filters_match(&kv.filters, part) {
            continue;
        }
        let Some((mut doc, is_json)) = parse_document(&out) else {
            continue;
        };
        if let Some(value) = kv.replace.get(target.environment) {
            let value = match value {
                Ordered::String(s) => {
                    let r = super::load::parse_replacement_text(s);
                    let v = resolve(&r, target, lookup).map_err(|m| err(part, m, &kv.origin))?;
                    Ordered::String(v)
                }
                other => other.clone(),
            };
            doc.update_all(&kv.path, &value);
        }
        out = if is_json {
            doc.python_dumps()
        } else {
            // fabric-cicd: yaml.dump(data, default_flow_style=False, allow_unicode=True).
            let opts = super::pyyaml::Dump {
                sort_keys: true,
                allow_unicode: true,
            };
            super::pyyaml::dump(&doc, opts)
        };
    }
    for fr in &params.find_replace {
        let Some(replacement) = fr.replace.get(target.environment) else {
            continue;
        };
        if !filters_match(&fr.filters, part) {
            continue;
        }
        out = find_replace(fr, replacement, &out, target, part, lookup)?;
    }
    Ok(out)
}

/// One `find_replace` entry on `text`: a regex replaces group 1 of every match, a literal
/// every occurrence (ignoring case with `ignore_case`).
fn find_replace(
    fr: &super::FindReplace,
    replacement: &Replacement,
    text: &str,
    target: &Target<'_>,
    part: &Part<'_>,
    lookup: &dyn Lookup,
) -> Result<String, RenderError> {
    let fail = |m: String| err(part, m, &fr.origin);
    match &fr.find {
        FindValue::Regex(re) => {
            let Some(first) = re.captures(text) else {
                return Ok(text.to_string());
            };
            if first.get(1).is_none_or(|g| g.is_empty()) {
                return Err(fail(format!(
                    "regex `{}` captured an empty value",
                    re.as_str()
                )));
            }
            let with = resolve(replacement, target, lookup).map_err(fail)?;
            if with.is_empty() {
                return Ok(text.to_string());
            }
            let out = re.replace_all(text, |c: &regex::Captures<'_>| {
                let whole = c.get(0).map_or("", |m| m.as_str());
                let at = c.get(0).map_or(0, |m| m.start());
                match c.get(1) {
                    Some(g) => format!(
                        "{}{with}{}",
                        &whole[..g.start() - at],
                        &whole[g.end() - at..]
                    ),
                    None => whole.to_string(),
                }
            });
            Ok(out.into_owned())
        }
        FindValue::Literal(r) => {
            let find = resolve(r, target, lookup).map_err(fail)?;
            if find.is_empty() {
                return Ok(text.to_string());
            }
            let present = if fr.ignore_case {
                text.to_lowercase().contains(&find.to_lowercase())
            } else {
                text.contains(&find)
            };
            if !present {
                return Ok(text.to_string());
            }
            let with = resolve(replacement, target, lookup).map_err(fail)?;
            if with.is_empty() {
                return Ok(text.to_string());
            }
            if !fr.ignore_case {
                return Ok(text.replace(&find, &with));
            }
            let re = regex::RegexBuilder::new(&regex::escape(&find))
                .case_insensitive(true)
                .build()
                .map_err(|e| fail(format!("cannot search ignoring case: {e}")))?;
            Ok(re.replace_all(text, regex::NoExpand(&with)).into_owned())
        }
    }
}

fn err(part: &Part<'_>, message: String, origin: &Origin) -> RenderError {
    RenderError {
        part: part.path.to_string(),
        message,
        origin: Some(origin.clone()),
    }
}

/// Whether every given filter accepts this part (an empty filter accepts everything).
pub(crate) fn filters_match(f: &Filters, part: &Part<'_>) -> bool {
    let ok = |values: Option<&Vec<String>>, v: &str| {
        values.is_none_or(|vals| vals.iter().any(|x| x == v))
    };
    ok(f.item_type.as_ref().map(|f| &f.values), part.item_type)
        && ok(f.item_name.as_ref().map(|f| &f.values), part.item_name)
        && f.file_path
            .as_ref()
            .is_none_or(|fp| fp.values.iter().any(|p| p.matches(part.path)))
}

/// The text as JSON, or else as a YAML mapping or list; `true` when it was JSON.
pub(crate) fn parse_document(text: &str) -> Option<(Ordered, bool)> {
    if let Ok(doc) = serde_json::from_str::<Ordered>(text) {
        return Some((doc, true));
    }
    // YAML as PyYAML's safe_load reads it (YAML 1.1 booleans and numbers).
    let node = super::yaml::parse(text).ok()??;
    match super::load::to_ordered(&node) {
        doc @ (Ordered::Object(_) | Ordered::Array(_)) => Some((doc, false)),
        _ => None,
    }
}

/// A replacement's final text. Messages name variables, never an environment value.
pub(crate) fn resolve(
    r: &Replacement,
    target: &Target<'_>,
    lookup: &dyn Lookup,
) -> Result<String, String> {
    match r {
        Replacement::Text(s) => Ok(s.clone()),
        Replacement::WithEnv(s) => expand_env(s, lookup),
        Replacement::Token(t) => resolve_token(t, target, lookup),
    }
}

fn expand_env(s: &str, lookup: &dyn Lookup) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("$ENV:") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 5..];
        let len = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..len];
        match lookup.env(name) {
            Some(v) if !name.is_empty() => out.push_str(&v),
            _ => {
                return Err(format!(
                    "environment variable `{name}` (from `$ENV:{name}`) is not set"
                ));
            }
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve_token(t: &Token, target: &Target<'_>, lookup: &dyn Lookup) -> Result<String, String> {
    match t {
        Token::WorkspaceId => Ok(target.workspace_id.to_string()),
        Token::WorkspaceName => Ok(target.workspace_name.to_string()),
        Token::WorkspaceNameEncoded => Ok(url_encode(target.workspace_name)),
        Token::OtherWorkspaceId(name) => lookup
            .workspace_id(name)
            .ok_or_else(|| format!("workspace `{name}` not found")),
        Token::Item {
            workspace,
            item_type,
            name,
            attr,
        } => {
            let where_ = workspace
                .as_deref()
                .map_or(String::new(), |w| format!(" in workspace `{w}`"));
            let item = lookup
                .item(workspace.as_deref(), item_type, name)
                .ok_or_else(|| format!("no deployed {item_type} named `{name}`{where_}"))?;
            let (value, label) = match attr {
                ItemAttr::Id => (Some(item.id), "$id"),
                ItemAttr::SqlEndpoint => (item.sql_endpoint, "$sqlendpoint"),
                ItemAttr::SqlEndpointId => (item.sql_endpoint_id, "$sqlendpointid"),
                ItemAttr::QueryServiceUri => (item.query_service_uri, "$queryserviceuri"),
            };
            value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{item_type} `{name}`{where_} has no {label}"))
        }
    }
}

/// Python's `urllib.parse.quote(name, safe="")`: only unreserved characters stay.
fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where a KQL item keeps its data sources: a KQLQueryset's `queryset.dataSources`, a
/// KQLDashboard's `dataSources`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KqlSources {
    /// KQLQueryset: a source names its database by `databaseItemId` (a logicalId).
    Queryset,
    /// KQLDashboard: a source names its database by `name`.
    Dashboard,
}

fn field_mut<'a>(o: &'a mut Ordered, key: &str) -> Option<&'a mut Ordered> {
    match o {
        Ordered::Object(m) => m.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

fn kql_sources(doc: &mut Ordered, kind: KqlSources) -> Option<&mut Vec<Ordered>> {
    let holder = match kind {
        KqlSources::Queryset => field_mut(doc, "queryset")?,
        KqlSources::Dashboard => doc,
    };
    match field_mut(holder, "dataSources")? {
        Ordered::Array(a) => Some(a),
        _ => None,
    }
}

fn empty_cluster_source(source: &mut Ordered, kind: KqlSources) -> Option<String> {
    let empty = matches!(field_mut(source, "clusterUri"), Some(Ordered::String(s)) if s.is_empty());
    if !empty {
        return None;
    }
    let key = match kind {
        KqlSources::Queryset => "databaseItemId",
        KqlSources::Dashboard => "name",
    };
    match field_mut(source, key) {
        Some(Ordered::String(s)) => Some(s.clone()),
        _ => Some(String::new()),
    }
}

/// The databases a KQL item's text needs a cluster URI for: its sources with an empty
/// `clusterUri` (by `databaseItemId`, a logicalId, in a queryset; by `name` in a dashboard).
pub fn kql_databases_needed(text: &str, kind: KqlSources) -> Vec<String> {
    let Ok(mut doc) = serde_json::from_str::<Ordered>(text) else {
        return Vec::new();
    };
    let Some(sources) = kql_sources(&mut doc, kind) else {
        return Vec::new();
    };
    sources
        .iter_mut()
        .filter_map(|s| empty_cluster_source(s, kind))
        .collect()
}

/// fabric-cicd's KQLQueryset and KQLDashboard type step: every data source with an empty
/// `clusterUri` gets `uri_of(its database)`, and the document is written back as Python's
/// `json.dumps(indent=2)`; a text without data sources is sent as it is.
pub fn fill_cluster_uris(
    text: &str,
    kind: KqlSources,
    uri_of: &dyn Fn(&str) -> Result<String, String>,
) -> Result<String, String> {
    let mut doc: Ordered = serde_json::from_str(text)
        .map_err(|e| format!("not JSON, as a KQL item's must be: {e}"))?;
    let Some(sources) = kql_sources(&mut doc, kind) else {
        return Ok(text.to_string());
    };
    if sources.is_empty() && kind == KqlSources::Queryset {
        return Ok(text.to_string());
    }
    for source in sources.iter_mut() {
        if let Some(db) = empty_cluster_source(source, kind) {
            let uri = uri_of(&db)?;
            if let Some(slot) = field_mut(source, "clusterUri") {
                *slot = Ordered::String(uri);
            }
        }
    }
    Ok(doc.python_dumps_indent(2))
}
