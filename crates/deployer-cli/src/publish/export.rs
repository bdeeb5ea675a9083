//! Writing a workspace's items as a git-format repository: `<folder>/<Name>.<Type>/` with a
//! `.platform` (type, displayName, description, logicalId) and the definition parts, so that
//! [`Repository::discover`](super::repo::Repository::discover) reads back the same items,
//! folders and parts. A KQL database is written under its eventhouse's `.children/`.
//!
//! The caller fetches the items, folders, definitions (getDefinition) and Spark pools; this
//! module only writes files. An Environment on one of the workspace's Spark pools gets a
//! `parameter.yml` `spark_pool` entry naming the pool, since its id means nothing elsewhere.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::item_type::ItemType;
use super::repo::{Part, PartKind, RepoItem, ZERO_GUID};

/// The `$schema` Fabric Git integration writes in `.platform`.
pub const PLATFORM_SCHEMA: &str = "https://developer.microsoft.com/json-schemas/fabric/gitIntegration/platformProperties/2.0.0/schema.json";

/// One workspace item to write.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportItem {
    /// The deployed id.
    pub id: String,
    /// The type.
    pub item_type: ItemType,
    /// The displayName.
    pub display_name: String,
    /// The description.
    pub description: String,
    /// The workspace folder path (`/a/b`), `None` at the root.
    pub folder: Option<String>,
    /// The logicalId to write; `None` uses the deployed id, which is unique and stable, and
    /// which the publish pipeline's logicalId pass then maps to the target's ids.
    pub logical_id: Option<String>,
    /// Written as `.platform` `metadata.creationPayload` (Warehouse `defaultCollation`).
    pub creation_payload: Option<Value>,
    /// The definition parts; a `.platform` among them is replaced by the one written here.
    pub parts: Vec<Part>,
}

impl ExportItem {
    /// The item as discovered, with `id` as its deployed id (for round trips and tests).
    pub fn from_repo(item: &RepoItem, id: &str) -> Self {
        Self {
            id: id.to_string(),
            item_type: item.item_type,
            display_name: item.display_name.clone(),
            description: item.description.clone(),
            folder: item.folder.clone(),
            logical_id: Some(item.logical_id.clone()),
            creation_payload: item.platform_creation_payload.clone(),
            parts: item.parts.clone(),
        }
    }

    fn logical_id(&self) -> &str {
        self.logical_id.as_deref().unwrap_or(&self.id)
    }
}

/// How to write.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// The exported workspace's id: in text parts it becomes the zero GUID, as Git sync
    /// writes same-workspace references, so publishing points them at the target workspace.
    pub workspace_id: Option<String>,
    /// The exported workspace's Spark pools (`GET /spark/pools`). An Environment whose
    /// `Sparkcompute.yml` names one of them gets a `parameter.yml` `spark_pool` entry that
    /// maps the id to the pool's name and type, so a publish elsewhere uses that workspace's
    /// pool of the same name instead of this workspace's id (see [`spark_pool_parameters`]).
    pub pools: Vec<fabrik_client::models::SparkPool>,
}

/// Why nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The output directory exists and is not empty.
    #[error("{0} is not empty; export writes into a new or empty directory")]
    NotEmpty(PathBuf),
    /// A name or path from the workspace cannot be a repository path.
    #[error("{item}: {message}")]
    BadPath {
        /// `Name.Type` of the item.
        item: String,
        /// What is wrong.
        message: String,
    },
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

#[derive(Serialize)]
struct PlatformOut<'a> {
    #[serde(rename = "$schema")]
    schema: &'a str,
    metadata: MetadataOut<'a>,
    config: ConfigOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetadataOut<'a> {
    #[serde(rename = "type")]
    item_type: &'a str,
    display_name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    creation_payload: Option<&'a Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigOut<'a> {
    version: &'a str,
    logical_id: &'a str,
}

/// The `.platform` Git integration writes (2-space JSON, `$schema`, `metadata`, `config`).
pub fn platform_json(item: &ExportItem) -> String {
    let out = PlatformOut {
        schema: PLATFORM_SCHEMA,
        metadata: MetadataOut {
            item_type: item.item_type.as_str(),
            display_name: &item.display_name,
            description: &item.description,
            creation_payload: item.creation_payload.as_ref(),
        },
        config: ConfigOut {
            version: "2.0",
            logical_id: item.logical_id(),
        },
    };
    let mut text = serde_json::to_string_pretty(&out).unwrap_or_default();
    text.push('\n');
    text
}

fn bad(item: &ExportItem, message: String) -> ExportError {
    ExportError::BadPath {
        item: format!("{}.{}", item.display_name, item.item_type),
        message,
    }
}

/// A path segment that stays inside its parent: not empty, `.` or `..`, no separator or NUL.
fn safe_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0'])
}

/// `Name.Type` with path separators replaced, made unique among `taken` (case-insensitively,
/// for case-insensitive file systems) with ` (2)`, ` (3)`, …; discovery ignores the name.
fn item_dir_name(item: &ExportItem, parent: &str, taken: &mut BTreeSet<String>) -> String {
    let name: String = item
        .display_name
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | '\0') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut n = 1;
    loop {
        let suffix = if n == 1 {
            String::new()
        } else {
            format!(" ({n})")
        };
        let candidate = format!("{name}{suffix}.{}", item.item_type);
        let full = format!("{parent}/{candidate}").to_lowercase();
        if taken.insert(full) {
            return candidate;
        }
        n += 1;
    }
}

/// The repository-relative directory of each item (KQL databases under their eventhouse).
fn layout(items: &[ExportItem]) -> Result<Vec<String>, ExportError> {
    let mut taken = BTreeSet::new();
    let mut dirs = vec![String::new(); items.len()];
    // Eventhouses and other non-KQL items first, so a database can find its parent's dir.
    let order = (0..items.len())
        .filter(|&i| items[i].item_type != ItemType::KQLDatabase)
        .chain((0..items.len()).filter(|&i| items[i].item_type == ItemType::KQLDatabase));
    for i in order {
        let item = &items[i];
        let parent = match kql_parent(items, item) {
            Some(eh) => format!("{}/.children", dirs[eh]),
            None => folder_dir(item)?,
        };
        let name = item_dir_name(item, &parent, &mut taken);
        dirs[i] = if parent.is_empty() {
            name
        } else {
            format!("{parent}/{name}")
        };
    }
    Ok(dirs)
}

fn folder_dir(item: &ExportItem) -> Result<String, ExportError> {
    let Some(folder) = &item.folder else {
        return Ok(String::new());
    };
    let segs: Vec<&str> = folder.trim_start_matches('/').split('/').collect();
    if segs.iter().any(|s| !safe_segment(s)) {
        return Err(bad(
            item,
            format!("folder `{folder}` is not a path of folder names"),
        ));
    }
    Ok(segs.join("/"))
}

/// The index of the Eventhouse a KQL database names in `DatabaseProperties.json`.
fn kql_parent(items: &[ExportItem], item: &ExportItem) -> Option<usize> {
    if item.item_type != ItemType::KQLDatabase {
        return None;
    }
    let props = item
        .parts
        .iter()
        .find(|p| p.path == "DatabaseProperties.json")?;
    let v: Value = serde_json::from_slice(&props.bytes).ok()?;
    let parent = v.get("parentEventhouseItemId")?.as_str()?;
    items.iter().position(|e| {
        e.item_type == ItemType::Eventhouse && (e.id == parent || e.logical_id() == parent)
    })
}

/// Writes `items` as a git-format repository under `dir` (created if missing, and required
/// to be empty). Returns each item's directory, relative to `dir`, in the order given.
pub fn export(
    dir: &Path,
    items: &[ExportItem],
    opts: &ExportOptions,
) -> Result<Vec<String>, ExportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Io { path, source }
    };
    if dir.exists() && fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
        return Err(ExportError::NotEmpty(dir.to_path_buf()));
    }
    for item in items {
        for part in &item.parts {
            if part.path.split('/').any(|s| !safe_segment(s)) {
                return Err(bad(
                    item,
                    format!("part path `{}` leaves the item directory", part.path),
                ));
            }
        }
    }
    let dirs = layout(items)?;
    if let Some(text) = spark_pool_parameters(items, &opts.pools) {
        let path = dir.join("parameter.yml");
        fs::create_dir_all(dir).map_err(io(dir))?;
        fs::write(&path, text).map_err(io(&path))?;
    }
    for (item, rel) in items.iter().zip(&dirs) {
        let item_dir = dir.join(rel);
        fs::create_dir_all(&item_dir).map_err(io(&item_dir))?;
        let platform = item_dir.join(".platform");
        fs::write(&platform, platform_json(item)).map_err(io(&platform))?;
        for part in item.parts.iter().filter(|p| p.path != ".platform") {
            let path = item_dir.join(&part.path);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(io(parent))?;
            }
            fs::write(&path, part_bytes(part, opts)).map_err(io(&path))?;
        }
    }
    Ok(dirs)
}

/// fabric-cicd's `parameter.yml` with one `spark_pool` entry per pool of `pools` that an
/// Environment's `Setting/Sparkcompute.yml` names by `instance_pool_id`: for every
/// environment (`_ALL_`), the pool of that name and type in the target workspace. `None` when
/// no Environment names one of them (a starter pool, or an id the workspace does not list,
/// is left as it is).
pub fn spark_pool_parameters(
    items: &[ExportItem],
    pools: &[fabrik_client::models::SparkPool],
) -> Option<String> {
    let named: BTreeSet<String> = items
        .iter()
        .filter(|i| i.item_type == ItemType::Environment)
        .filter_map(|i| {
            i.parts
                .iter()
                .find(|p| p.path == "Setting/Sparkcompute.yml")
        })
        .filter_map(|p| super::parameter::instance_pool_id(p.text()?))
        .collect();
    let used: Vec<_> = pools.iter().filter(|p| named.contains(&p.id)).collect();
    if used.is_empty() {
        return None;
    }
    // JSON strings are YAML double-quoted scalars, so any name is written safely.
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let mut out = String::from(
        "# Written by `fabrik export`: the Spark pools the exported Environments use, by name,\n\
         # so a publish uses the target workspace's pool of the same name and type.\n\
         spark_pool:\n",
    );
    for p in used {
        out.push_str(&format!(
            "  - instance_pool_id: {}\n    replace_value:\n      _ALL_:\n        type: {}\n        name: {}\n",
            q(&p.id),
            q(&p.kind),
            q(&p.name)
        ));
    }
    Some(out)
}

fn part_bytes(part: &Part, opts: &ExportOptions) -> Vec<u8> {
    match (&opts.workspace_id, part.kind, part.text()) {
        (Some(ws), PartKind::Text, Some(text)) if !ws.is_empty() => {
            text.replace(ws.as_str(), ZERO_GUID).into_bytes()
        }
        _ => part.bytes.clone(),
    }
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
