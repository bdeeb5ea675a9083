//! Type-specific rewrites fabric-cicd 1.4.0 applies before the generic text pipeline, and
//! the references between items they rely on:
//!
//! - Report: a `definition.pbir` that points at its semantic model `byPath` is rewritten to
//!   `byConnection` with the model's deployed id (`_report.func_process_file`).
//! - KQLDatabase: `DatabaseProperties.json` `parentEventhouseItemId` names its Eventhouse by
//!   logicalId.

use serde_json::{Value, json};

use super::item_type::ItemType;
use super::repo::{RepoItem, Repository};

/// The `$schema` fabric-cicd sets on a rewritten `definition.pbir`.
pub const PBIR_SCHEMA: &str = "https://developer.microsoft.com/json-schemas/fabric/item/report/definitionProperties/1.0.0/schema.json";

/// Why a rewrite or reference lookup failed; the message names the item and file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{item_dir}/{file}: {message}")]
pub struct RewriteError {
    /// The item directory, relative to the repository root.
    pub item_dir: String,
    /// The file in it.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

fn error(item: &RepoItem, file: &str, message: String) -> RewriteError {
    RewriteError {
        item_dir: item.dir.clone(),
        file: file.to_string(),
        message,
    }
}

fn json_part(item: &RepoItem, file: &str) -> Result<Option<Value>, RewriteError> {
    let Some(part) = item.part(file) else {
        return Ok(None);
    };
    let text = part
        .text()
        .ok_or_else(|| error(item, file, "is not text".into()))?;
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| error(item, file, format!("is not valid JSON: {e}")))
}

/// The `datasetReference.byPath.path` of a report's `definition.pbir`, if it has one.
pub fn report_by_path(report: &RepoItem) -> Result<Option<String>, RewriteError> {
    let Some(v) = json_part(report, "definition.pbir")? else {
        return Ok(None);
    };
    match v.pointer("/datasetReference/byPath") {
        None | Some(Value::Null) => Ok(None),
        Some(by_path) => match by_path.get("path") {
            Some(Value::String(p)) => Ok(Some(p.clone())),
            _ => Err(error(
                report,
                "definition.pbir",
                format!("`datasetReference.byPath` has no string `path`: {by_path}"),
            )),
        },
    }
}

/// Joins `rel` (with `..` and `.`, either separator) onto the repository-relative `dir`.
fn join_lexically(dir: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    for seg in rel.split(['/', '\\']) {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

impl Repository {
    /// The semantic model a report's `definition.pbir` points at `byPath`: `Ok(None)` for a
    /// report bound `byConnection` (left alone, as fabric-cicd does), an error when the path
    /// names no SemanticModel of the repository (fabric-cicd's `ItemDependencyError`).
    pub fn report_semantic_model(
        &self,
        report: &RepoItem,
    ) -> Result<Option<&RepoItem>, RewriteError> {
        let Some(path) = report_by_path(report)? else {
            return Ok(None);
        };
        let target = join_lexically(&report.dir, &path);
        target
            .as_deref()
            .and_then(|d| self.at_dir(d))
            .filter(|i| i.item_type == ItemType::SemanticModel)
            .map(Some)
            .ok_or_else(|| {
                error(
                    report,
                    "definition.pbir",
                    format!(
                        "`datasetReference.byPath.path` is `{path}`, which is no semantic model of the repository; a report bound by path needs its model published with it"
                    ),
                )
            })
    }

    /// The Eventhouse a KQL database belongs to, by `DatabaseProperties.json`
    /// `parentEventhouseItemId` (a logicalId). `Ok(None)` when the file names no repository
    /// item (then it must be a deployed id, which the text pipeline leaves alone).
    pub fn kql_parent_eventhouse(
        &self,
        database: &RepoItem,
    ) -> Result<Option<&RepoItem>, RewriteError> {
        let Some(id) = kql_parent_eventhouse_id(database)? else {
            return Ok(None);
        };
        match self.by_logical_id(&id) {
            Some(e) if e.item_type == ItemType::Eventhouse => Ok(Some(e)),
            Some(other) => Err(error(
                database,
                "DatabaseProperties.json",
                format!(
                    "`parentEventhouseItemId` `{id}` is the logicalId of {} `{}`, not of an Eventhouse",
                    other.item_type, other.display_name
                ),
            )),
            None => Ok(None),
        }
    }
}

/// `parentEventhouseItemId` of a KQL database's `DatabaseProperties.json`.
pub fn kql_parent_eventhouse_id(database: &RepoItem) -> Result<Option<String>, RewriteError> {
    let Some(v) = json_part(database, "DatabaseProperties.json")? else {
        return Ok(None);
    };
    match v.get("parentEventhouseItemId") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(error(
            database,
            "DatabaseProperties.json",
            format!("`parentEventhouseItemId` must be a string, not `{other}`"),
        )),
    }
}

/// fabric-cicd's rewrite of a `definition.pbir` bound `byPath` to one bound `byConnection`
/// to `model_id` (the deployed id of the model; fabric-cicd writes the logicalId and lets its
/// logicalId pass replace it, which gives the same text). `Ok(None)` when the file has no
/// `byPath` and is sent as it is.
///
/// Output is `json.dumps(indent=4)` (4-space indent, non-ASCII escaped as `\uXXXX`); keys come
/// out sorted where Python keeps the file's order, which is the same JSON.
pub fn rewrite_report_pbir(text: &str, model_id: &str) -> Result<Option<String>, String> {
    let mut v: Value = serde_json::from_str(text)
        .map_err(|e| format!("definition.pbir is not valid JSON: {e}"))?;
    let has_by_path = v
        .pointer("/datasetReference/byPath")
        .is_some_and(|b| !b.is_null());
    if !has_by_path {
        return Ok(None);
    }
    let Some(obj) = v.as_object_mut() else {
        return Ok(None);
    };
    obj.insert("$schema".into(), Value::String(PBIR_SCHEMA.into()));
    obj.insert(
        "datasetReference".into(),
        json!({"byConnection": {
            "connectionString": null,
            "pbiServiceModelId": null,
            "pbiModelVirtualServerName": "sobe_wowvirtualserver",
            "pbiModelDatabaseName": model_id,
            "name": "EntityDataSource",
            "connectionType": "pbiServiceXmlaStyleLive",
        }}),
    );
    Ok(Some(python_json_dumps_indent4(&v)))
}

/// `json.dumps(v, indent=4)` as Python writes it.
fn python_json_dumps_indent4(v: &Value) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    // Serializing a Value into memory cannot fail.
    let _ = v.serialize(&mut ser);
    let text = String::from_utf8(out).unwrap_or_default();
    let mut ascii = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    ascii
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::repo::tests::fixture;
    use crate::publish::repo::{DiscoverOptions, Part, PartKind};

    #[test]
    fn fixture_report_resolves_its_model_and_is_rewritten_by_connection() {
        let repo = Repository::discover(&fixture(), &DiscoverOptions::default()).unwrap();
        let report = repo.find(ItemType::Report, "Sales").unwrap();
        let model = repo.report_semantic_model(report).unwrap().unwrap();
        assert_eq!(model.dir, "reporting/Sales.SemanticModel");
        let text = report.part("definition.pbir").unwrap().text().unwrap();
        let out = rewrite_report_pbir(text, "dddddddd-0000-4000-8000-00000000000a")
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            json!({
                "$schema": PBIR_SCHEMA,
                "version": "4.0",
                "datasetReference": {"byConnection": {
                    "connectionString": null,
                    "pbiServiceModelId": null,
                    "pbiModelVirtualServerName": "sobe_wowvirtualserver",
                    "pbiModelDatabaseName": "dddddddd-0000-4000-8000-00000000000a",
                    "name": "EntityDataSource",
                    "connectionType": "pbiServiceXmlaStyleLive"
                }}
            })
        );
        assert!(
            out.contains("\n    \"datasetReference\": {\n        \"byConnection\": {"),
            "{out}"
        );
        // A byConnection report is left alone.
        assert_eq!(rewrite_report_pbir(&out, "x"), Ok(None));
        assert_eq!(
            rewrite_report_pbir(
                "{\"a\": \"é\", \"datasetReference\": {\"byPath\": {\"path\": \"../M\"}}}",
                "m"
            )
            .unwrap()
            .unwrap()
            .lines()
            .nth(2),
            Some("    \"a\": \"\\u00e9\",")
        );
    }

    fn item(t: ItemType, dir: &str, lid: &str, parts: &[(&str, &str)]) -> RepoItem {
        RepoItem {
            item_type: t,
            display_name: dir.rsplit('/').next().unwrap().into(),
            description: String::new(),
            logical_id: lid.into(),
            platform_creation_payload: None,
            dir: dir.into(),
            folder: None,
            parts: parts
                .iter()
                .map(|(p, t)| Part {
                    path: p.to_string(),
                    bytes: t.as_bytes().to_vec(),
                    kind: PartKind::Text,
                })
                .collect(),
            selected: true,
        }
    }

    #[test]
    fn dangling_by_path_and_kql_parent() {
        let report = item(
            ItemType::Report,
            "r/R.Report",
            "l1",
            &[(
                "definition.pbir",
                r#"{"datasetReference": {"byPath": {"path": "..\\Gone.SemanticModel"}}}"#,
            )],
        );
        let eh = item(ItemType::Eventhouse, "E.Eventhouse", "l2", &[]);
        let db = item(
            ItemType::KQLDatabase,
            "E.Eventhouse/.children/D.KQLDatabase",
            "l3",
            &[(
                "DatabaseProperties.json",
                r#"{"parentEventhouseItemId": "l2", "databaseType": "ReadWrite"}"#,
            )],
        );
        let wrong = item(
            ItemType::KQLDatabase,
            "W.KQLDatabase",
            "l4",
            &[(
                "DatabaseProperties.json",
                r#"{"parentEventhouseItemId": "l1"}"#,
            )],
        );
        let repo = Repository {
            root: "/r".into(),
            items: vec![report.clone(), eh, db.clone(), wrong.clone()],
            folders: vec![],
            warnings: vec![],
        };
        let err = repo.report_semantic_model(&report).unwrap_err();
        assert_eq!(err.item_dir, "r/R.Report");
        assert!(err.message.contains("`..\\Gone.SemanticModel`"), "{err}");
        assert_eq!(
            repo.kql_parent_eventhouse(&db).unwrap().unwrap().logical_id,
            "l2"
        );
        assert!(
            repo.kql_parent_eventhouse(&wrong)
                .unwrap_err()
                .message
                .contains("not of an Eventhouse")
        );
        assert_eq!(
            join_lexically("a/b/R.Report", "../M.SemanticModel").as_deref(),
            Some("a/b/M.SemanticModel")
        );
        assert_eq!(join_lexically("R.Report", "../../x"), None);
    }
}
