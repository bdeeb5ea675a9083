//! Which other items a part refers to, so the publisher orders items by reference (any type)
//! instead of by fabric-cicd's fixed type list; and which filters match nothing at all.

use super::render::{Part, filters_match, parse_document};
use super::{Filters, FindValue, Parameters, Replacement, Token};
use crate::config::Problem;

/// The items one part refers to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    /// Repository logicalIds found in the text (step 2 replaces them), in the order given.
    pub logical_ids: Vec<String>,
    /// `(type, name)` of target-workspace items whose `$items` variable this part's
    /// parameters would insert; the item itself is left out.
    pub items: Vec<(String, String)>,
    /// `(workspace, type, name)` of items of other workspaces (`$workspace.<name>.$items…`)
    /// whose variables this part's parameters would insert.
    pub other_workspace_items: Vec<(String, String, String)>,
}

/// The references of one part's text (after the type step) in `environment`.
/// `repo_logical_ids` are the logicalIds of every repository item; the zero GUID is ignored.
pub fn references(
    params: Option<&Parameters>,
    environment: &str,
    part: &Part<'_>,
    text: &str,
    repo_logical_ids: &[&str],
) -> References {
    let mut out = References::default();
    if part.path == ".platform" || part.path.ends_with("/.platform") {
        return out;
    }
    if part.item_type != "VariableLibrary" {
        for id in repo_logical_ids {
            if *id != super::ZERO_GUID
                && !id.is_empty()
                && text.contains(id)
                && !out.logical_ids.iter().any(|l| l == id)
            {
                out.logical_ids.push((*id).to_string());
            }
        }
    }
    let Some(params) = params else { return out };
    let mut add = |t: &Token| match t {
        Token::Item {
            workspace: None,
            item_type,
            name,
            ..
        } => {
            let key = (item_type.clone(), name.clone());
            let is_self = item_type == part.item_type && name == part.item_name;
            if !is_self && !out.items.contains(&key) {
                out.items.push(key);
            }
        }
        Token::Item {
            workspace: Some(w),
            item_type,
            name,
            ..
        } => {
            let key = (w.clone(), item_type.clone(), name.clone());
            if !out.other_workspace_items.contains(&key) {
                out.other_workspace_items.push(key);
            }
        }
        _ => {}
    };
    for fr in &params.find_replace {
        let Some(Replacement::Token(t)) = fr.replace.get(environment) else {
            continue;
        };
        if !filters_match(&fr.filters, part) {
            continue;
        }
        let found = match &fr.find {
            FindValue::Literal(Replacement::Text(s)) if fr.ignore_case => {
                text.to_lowercase().contains(&s.to_lowercase())
            }
            FindValue::Literal(Replacement::Text(s)) => text.contains(s.as_str()),
            // Values known only at render time: assume the reference, which only adds an edge.
            FindValue::Literal(_) => true,
            FindValue::Regex(re) => re
                .captures(text)
                .and_then(|c| c.get(1))
                .is_some_and(|m| !m.is_empty()),
        };
        if found {
            add(t);
        }
    }
    for kv in &params.key_value_replace {
        let Some(super::json::Ordered::String(s)) = kv.replace.get(environment) else {
            continue;
        };
        let Replacement::Token(t) = super::load::parse_replacement_text(s) else {
            continue;
        };
        if !filters_match(&kv.filters, part) {
            continue;
        }
        if let Some((doc, _)) = parse_document(text)
            && !kv.path.query(&doc.to_value()).is_empty()
        {
            add(&t);
        }
    }
    out
}

/// A repository item, as [`Parameters::filter_warnings`] needs it.
#[derive(Debug, Clone, Copy)]
pub struct RepoItem<'a> {
    /// Item type.
    pub item_type: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Repository-relative paths of its parts.
    pub paths: &'a [String],
}

impl Parameters {
    /// Warnings for filters that match nothing in the repository: an `item_type` no item has,
    /// an `item_name` no item has, a `file_path` no part has, or filters that each match
    /// something but together match no part. fabric-cicd logs these and skips the entry.
    pub fn filter_warnings(&self, items: &[RepoItem<'_>]) -> Vec<Problem> {
        let mut out = Vec::new();
        let entries = self
            .find_replace
            .iter()
            .map(|f| (&f.filters, &f.origin, "find_replace"))
            .chain(
                self.key_value_replace
                    .iter()
                    .map(|k| (&k.filters, &k.origin, "key_value_replace")),
            );
        for (filters, origin, kind) in entries {
            if !filter_values_exist(filters, items, &mut out) {
                continue;
            }
            let any = items.iter().any(|i| {
                i.paths.iter().any(|p| {
                    let part = Part {
                        item_type: i.item_type,
                        item_name: i.name,
                        path: p,
                    };
                    filters_match(filters, &part)
                })
            });
            if !any {
                out.push(origin.problem(format!("this `{kind}` entry's filters together match no file of the repository; it does nothing"), None, true));
            }
        }
        for sp in &self.spark_pool {
            for name in sp.item_name.iter().flat_map(|f| f.values.iter()) {
                if !items
                    .iter()
                    .any(|i| i.item_type == "Environment" && i.name == name)
                {
                    let o = sp.item_name.as_ref().map_or(&sp.origin, |f| &f.origin);
                    out.push(o.problem(
                        format!(
                            "`item_name` `{name}`: no Environment of that name in the repository"
                        ),
                        None,
                        true,
                    ));
                }
            }
        }
        out
    }
}

/// Warns about each filter value absent from the repository; `true` when all are present.
fn filter_values_exist(f: &Filters, items: &[RepoItem<'_>], out: &mut Vec<Problem>) -> bool {
    let before = out.len();
    if let Some(t) = &f.item_type {
        for v in &t.values {
            if !items.iter().any(|i| i.item_type == v) {
                out.push(t.origin.problem(
                    format!("`item_type` `{v}`: no item of that type in the repository"),
                    None,
                    true,
                ));
            }
        }
    }
    if let Some(n) = &f.item_name {
        for v in &n.values {
            if !items.iter().any(|i| i.name == v) {
                out.push(n.origin.problem(
                    format!("`item_name` `{v}`: no item of that name in the repository"),
                    None,
                    true,
                ));
            }
        }
    }
    if let Some(fp) = &f.file_path {
        for p in &fp.values {
            if !items.iter().any(|i| i.paths.iter().any(|x| p.matches(x))) {
                let shown = match p {
                    super::PathPattern::Exact(s) | super::PathPattern::Glob(s, _) => s,
                };
                out.push(fp.origin.problem(
                    format!("`file_path` `{shown}` matches no file of any item"),
                    None,
                    true,
                ));
            }
        }
    }
    out.len() == before
}
