//! Reading a git-format repository as fabric-cicd 1.4.0 does (`_refresh_repository_items`,
//! `_refresh_repository_folders`, `Item.collect_item_files`).
//!
//! - An item is any directory holding a `.platform` file; its folder name is ignored.
//! - Its parts are every file under it, recursively, hidden files and `.platform` included,
//!   minus the type's excluded paths (`.pbi/`, `.children/`).
//! - The repository folders that are strict ancestors of an item directory become workspace
//!   folders (item directories and `.children` excluded).
//!
//! Unlike fabric-cicd, which stops at the first bad `.platform` and silently keeps only the
//! last of two items with the same type and name, every problem is collected, with
//! file:line:column, before anything is returned.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use regex::Regex;
use serde_json::Value;

use super::item_type::{ItemType, ShellPayload};
use crate::config::Problem;
use crate::config::locate::{Locations, Pos};

/// The logicalId fabric-cicd allows on several items: Fabric's export API writes it as a
/// placeholder.
pub const ZERO_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// Characters fabric-cicd refuses in a folder name (`INVALID_FOLDER_CHAR_REGEX`).
const INVALID_FOLDER_CHARS: &[char] = &[
    '~', '"', '#', '.', '%', '&', '*', ':', '<', '>', '?', '/', '\\', '{', '|', '}',
];

/// What to read.
#[derive(Debug, Clone)]
pub struct DiscoverOptions {
    /// Types to publish; `None` means all 31 (fabric-cicd's default). Items of other types are
    /// still read, because their logicalIds are rewritten in the items that mention them.
    pub item_types_in_scope: Option<Vec<ItemType>>,
    /// fabric-cicd's `item_name_exclude_regex`: an item whose displayName matches it from the
    /// start (Python's `re.match`) is not selected.
    pub exclude_regex: Option<Regex>,
    /// `false` is fabric-cicd's `disable_workspace_folder_publish`: every item at the root.
    pub folders: bool,
    /// `folder_exclude_regex`: an item in a folder (or under a folder) the regex finds a match
    /// in is not selected; root items are never excluded this way.
    pub folder_exclude_regex: Option<Regex>,
    /// `folder_path_to_include`: an item in a folder that is not exactly one of these is not
    /// selected (subfolders are not included); root items always are.
    pub folder_path_to_include: Option<Vec<String>>,
    /// `items_to_include`: only these `Name.Type` items (compared case-insensitively).
    pub items_to_include: Option<Vec<String>>,
}

impl DiscoverOptions {
    /// Whether `item` is to be published, applying the filters in fabric-cicd's order.
    pub fn selects(&self, item: &RepoItem) -> bool {
        let in_scope = self
            .item_types_in_scope
            .as_ref()
            .is_none_or(|s| s.contains(&item.item_type));
        let included = self.items_to_include.as_ref().is_none_or(|list| {
            let me = format!("{}.{}", item.display_name, item.item_type).to_lowercase();
            list.iter().any(|i| i.to_lowercase() == me)
        });
        // Python's re.match: a match that starts at the beginning.
        let excluded_by_name = self
            .exclude_regex
            .as_ref()
            .is_some_and(|re| re.find(&item.display_name).is_some_and(|m| m.start() == 0));
        let folder = item.folder.as_deref().unwrap_or("");
        let excluded_by_folder = !folder.is_empty()
            && self.folder_exclude_regex.as_ref().is_some_and(|re| {
                let mut path = folder;
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
        let not_included_folder = !folder.is_empty()
            && self
                .folder_path_to_include
                .as_ref()
                .is_some_and(|list| !list.iter().any(|f| f == folder));
        in_scope && included && !excluded_by_name && !excluded_by_folder && !not_included_folder
    }
}

impl Default for DiscoverOptions {
    fn default() -> Self {
        Self {
            item_types_in_scope: None,
            exclude_regex: None,
            folders: true,
            folder_exclude_regex: None,
            folder_path_to_include: None,
            items_to_include: None,
        }
    }
}

/// Whether a part is sent as text (which the text pipeline rewrites) or as bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// UTF-8 text, newlines normalised to `\n` as Python's text mode reads them.
    Text,
    /// Sent byte for byte.
    Binary,
}

/// One file of an item's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Path relative to the item directory, with `/` separators.
    pub path: String,
    /// The content (for text, after newline normalisation).
    pub bytes: Vec<u8>,
    /// Text or binary.
    pub kind: PartKind,
}

impl Part {
    /// The text, for a text part.
    pub fn text(&self) -> Option<&str> {
        match self.kind {
            PartKind::Text => std::str::from_utf8(&self.bytes).ok(),
            PartKind::Binary => None,
        }
    }

    /// The `InlineBase64` payload of the part as it is (before any rewriting).
    pub fn payload_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.bytes)
    }
}

/// One item of the repository.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoItem {
    /// `metadata.type`.
    pub item_type: ItemType,
    /// `metadata.displayName`.
    pub display_name: String,
    /// `metadata.description`, `""` when absent.
    pub description: String,
    /// `config.logicalId`.
    pub logical_id: String,
    /// `metadata.creationPayload`, when present.
    pub platform_creation_payload: Option<Value>,
    /// The item directory, relative to the repository root, `/`-separated.
    pub dir: String,
    /// The workspace folder (`/a/b`), `None` at the root.
    pub folder: Option<String>,
    /// The definition parts, `.platform` included, sorted by path.
    pub parts: Vec<Part>,
    /// In scope and not excluded by name: this item is to be published.
    pub selected: bool,
}

impl RepoItem {
    /// The part at `path`.
    pub fn part(&self, path: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.path == path)
    }

    /// For a shell item, the `creationPayload` to create it with (`None` when none is sent).
    /// For other types, `None`.
    pub fn creation_payload(&self) -> Option<Value> {
        match self.item_type.facts().shell? {
            ShellPayload::None => None,
            ShellPayload::PlatformCreationPayload => self.platform_creation_payload.clone(),
            ShellPayload::LakehouseSchemas => self
                .part("lakehouse.metadata.json")
                .and_then(Part::text)
                .filter(|t| t.contains("defaultSchema"))
                .map(|_| serde_json::json!({"enableSchemas": true})),
        }
    }

    /// The definition's `format` field, if the type sends one.
    pub fn definition_format(&self) -> Option<&'static str> {
        self.item_type
            .definition_format(self.parts.iter().map(|p| p.path.as_str()))
    }
}

/// A discovered repository.
#[derive(Debug, Clone, PartialEq)]
pub struct Repository {
    /// The root directory.
    pub root: PathBuf,
    /// Every item of a known type, sorted by directory.
    pub items: Vec<RepoItem>,
    /// The workspace folders, shallowest first, then by path.
    pub folders: Vec<String>,
    /// Findings that do not stop the run.
    pub warnings: Vec<Problem>,
}

impl Repository {
    /// Reads the repository under `root`. Returns every problem (errors and warnings) when
    /// there is at least one error.
    pub fn discover(root: &Path, opts: &DiscoverOptions) -> Result<Self, Vec<Problem>> {
        // Counted so a test can hold a run to reading each repository once.
        metrics::counter!(fabrik_core::metric_names::REPOSITORY_READS).increment(1);
        let mut platform_dirs = Vec::new();
        walk_for_platform(root, root, &mut platform_dirs)
            .map_err(|e| vec![plain(root, format!("cannot read the repository: {e}"))])?;
        platform_dirs.sort();

        let mut problems = Vec::new();
        let folders = repository_folders(&platform_dirs);
        if opts.folders {
            check_folder_names(root, &folders, &mut problems);
        }
        let mut items = Vec::new();
        for dir in &platform_dirs {
            if let Some(item) = read_item(root, dir, &folders, &mut problems) {
                items.push(item);
            }
        }
        check_duplicates(root, &items, &mut problems);
        for item in &mut items {
            item.selected = opts.selects(item);
            if !opts.folders {
                item.folder = None;
            }
        }
        if problems.iter().any(Problem::is_error) {
            return Err(problems);
        }
        let mut folders: Vec<String> = if opts.folders {
            folders.into_iter().collect()
        } else {
            Vec::new()
        };
        folders.sort_by(|a, b| depth(a).cmp(&depth(b)).then_with(|| a.cmp(b)));
        Ok(Self {
            root: root.to_path_buf(),
            items,
            folders,
            warnings: problems,
        })
    }

    /// The items to publish (in scope, not excluded).
    pub fn selected(&self) -> impl Iterator<Item = &RepoItem> {
        self.items.iter().filter(|i| i.selected)
    }

    /// The item of this type and displayName.
    pub fn find(&self, item_type: ItemType, name: &str) -> Option<&RepoItem> {
        self.items
            .iter()
            .find(|i| i.item_type == item_type && i.display_name == name)
    }

    /// The item whose directory is `dir` (relative, `/`-separated).
    pub fn at_dir(&self, dir: &str) -> Option<&RepoItem> {
        self.items.iter().find(|i| i.dir == dir)
    }

    /// The item with this logicalId (never the zero GUID, which several items may share).
    pub fn by_logical_id(&self, logical_id: &str) -> Option<&RepoItem> {
        (logical_id != ZERO_GUID)
            .then(|| self.items.iter().find(|i| i.logical_id == logical_id))
            .flatten()
    }
}

impl Repository {
    /// Warnings for same-workspace references that name no item of the repository: Git sync
    /// writes such a reference as a logicalId beside a zero `workspaceId` (a notebook's
    /// environment, a pipeline's notebook or pipeline), and fabric-cicd sends one whose item is
    /// gone as it is, so it points nowhere once deployed. Each is reported at its file and line.
    pub fn dangling_logical_ids(&self) -> Vec<Problem> {
        static OBJECT: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
            Regex::new(r"\{[^{}]*\}").expect("the object pattern is valid")
        });
        static ZERO_WS: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
            Regex::new(r#""workspaceId"\s*:\s*"00000000-0000-0000-0000-000000000000""#)
                .expect("the zero workspace pattern is valid")
        });
        static GUID: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
            Regex::new(
                r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
            )
            .expect("the GUID pattern is valid")
        });
        let known: BTreeSet<String> = self
            .items
            .iter()
            .map(|i| i.logical_id.to_lowercase())
            .collect();
        let mut out = Vec::new();
        for item in self.items.iter().filter(|i| i.selected) {
            for part in item.parts.iter().filter(|p| p.path != ".platform") {
                let Some(text) = part.text() else { continue };
                for obj in OBJECT
                    .find_iter(text)
                    .filter(|m| ZERO_WS.is_match(m.as_str()))
                {
                    for g in GUID.find_iter(obj.as_str()) {
                        let id = g.as_str().to_lowercase();
                        if id == ZERO_GUID || known.contains(&id) {
                            continue;
                        }
                        let at = obj.start() + g.start();
                        let line = text[..at].matches('\n').count() + 1;
                        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                        let source_line = text[line_start..].lines().next().unwrap_or("");
                        let file = self.root.join(&item.dir).join(&part.path);
                        out.push(Problem {
                            file,
                            pos: Some(Pos {
                                line,
                                col: text[line_start..at].chars().count() + 1,
                            }),
                            source_line: Some(source_line.to_string()),
                            message: format!(
                                "`{}` beside a zero workspaceId is a same-workspace reference, but no item of the repository has that logicalId; it is sent as it is and points nowhere",
                                g.as_str()
                            ),
                            hint: Some("was the item it names removed or renamed?".into()),
                            warning: true,
                        });
                    }
                }
            }
        }
        out
    }
}

fn depth(folder: &str) -> usize {
    folder.matches('/').count()
}

fn plain(file: &Path, message: String) -> Problem {
    Problem {
        file: file.to_path_buf(),
        pos: None,
        source_line: None,
        message,
        hint: None,
        warning: false,
    }
}

/// Every directory under `dir` holding a `.platform` file, relative to `root`. Like Python's
/// `os.walk`, symlinked directories are not entered; `.git` is skipped (it never holds items).
fn walk_for_platform(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    let mut subdirs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        let name = entry.file_name();
        if ft.is_dir() {
            if name != ".git" {
                subdirs.push(entry.path());
            }
        } else if name == ".platform" && entry.path().is_file() {
            out.push(rel(root, dir));
        }
    }
    for sub in subdirs {
        walk_for_platform(root, &sub, out)?;
    }
    Ok(())
}

/// `dir` relative to `root`, `/`-separated (`""` for the root itself).
fn rel(root: &Path, dir: &Path) -> String {
    let r = dir.strip_prefix(root).unwrap_or(dir);
    r.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// fabric-cicd's folder set: every strict ancestor of an item directory under the root,
/// except item directories and `.children` containers.
fn repository_folders(item_dirs: &[String]) -> BTreeSet<String> {
    let items: BTreeSet<&str> = item_dirs.iter().map(String::as_str).collect();
    let mut folders = BTreeSet::new();
    for dir in item_dirs {
        let mut cut = dir.as_str();
        while let Some(i) = cut.rfind('/') {
            cut = &cut[..i];
            let name = cut.rsplit('/').next().unwrap_or(cut);
            if items.contains(cut) || name == ".children" {
                continue;
            }
            folders.insert(format!("/{cut}"));
        }
    }
    folders
}

/// A folder name with characters Fabric refuses is an error, as in fabric-cicd.
fn check_folder_names(root: &Path, folders: &BTreeSet<String>, problems: &mut Vec<Problem>) {
    for f in folders {
        let name = f.rsplit('/').next().unwrap_or(f);
        if let Some(c) = name.chars().find(|c| INVALID_FOLDER_CHARS.contains(c)) {
            let mut p = plain(
                &root.join(&f[1..]),
                format!(
                    "folder name `{name}` contains `{c}`, which Fabric does not allow in a workspace folder name"
                ),
            );
            p.hint = Some(
                "rename the directory (none of ~\"#.%&*:<>?/\\{|} allowed), or set disable_workspace_folder_publish"
                    .into(),
            );
            problems.push(p);
        }
    }
}

/// The workspace folder of the item in `dir`, as fabric-cicd computes it.
fn item_folder(dir: &str, item_type: ItemType, folders: &BTreeSet<String>) -> Option<String> {
    let path = format!("/{dir}");
    let parent = if item_type == ItemType::KQLDatabase {
        // KQL_DATABASE_FOLDER_PATH_REGEX: the folder holding the parent Eventhouse.
        let re = Regex::new(r"(?i)^(.*)/[^/]+\.Eventhouse/\.children(?:/.*)?$").ok()?;
        re.captures(&path)?.get(1)?.as_str().to_string()
    } else {
        path.rsplit_once('/').map(|(p, _)| p.to_string())?
    };
    folders.contains(&parent).then_some(parent)
}

/// The `.platform` fields fabric-cicd reads, each problem at its position.
struct Platform {
    item_type: Option<ItemType>,
    display_name: String,
    description: String,
    logical_id: String,
    creation_payload: Option<Value>,
}

struct PlatformFile<'a> {
    path: PathBuf,
    text: &'a str,
    locs: Locations,
}

impl PlatformFile<'_> {
    fn pos(&self, at: &str) -> Pos {
        self.locs.find(at).unwrap_or(Pos { line: 1, col: 1 })
    }

    fn problem(&self, at: &str, message: String, warning: bool) -> Problem {
        let p = self.pos(at);
        Problem::at_line(&self.path, self.text, p.line, p.col, message, None, warning)
    }

    /// A required, non-empty string at `path` (`metadata.type`).
    fn string(&self, v: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<String> {
        let (section, key) = path.split_once('.').unwrap_or(("", path));
        match v.get(section).and_then(|s| s.get(key)) {
            None => {
                problems.push(self.problem(
                    section,
                    format!("`{path}` is missing (fabric-cicd requires it)"),
                    false,
                ));
                None
            }
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::String(_)) => {
                problems.push(self.problem(path, format!("`{path}` is empty"), false));
                None
            }
            Some(other) => {
                problems.push(self.problem(
                    path,
                    format!("`{path}` must be a string, not `{other}`"),
                    false,
                ));
                None
            }
        }
    }
}

/// Parses `.platform`, collecting its problems; `None` when it is unusable.
fn parse_platform(path: PathBuf, text: &str, problems: &mut Vec<Problem>) -> Option<Platform> {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            problems.push(Problem::at_line(
                &path,
                text,
                e.line().max(1),
                e.column().max(1),
                format!("`.platform` is not valid JSON: {e}"),
                None,
                false,
            ));
            return None;
        }
    };
    let f = PlatformFile {
        path,
        text,
        locs: Locations::of(text),
    };
    let before = problems.len();
    for section in ["metadata", "config"] {
        if !v.get(section).is_some_and(Value::is_object) {
            problems.push(f.problem(
                section,
                format!("`{section}` must be an object (fabric-cicd requires it)"),
                false,
            ));
        }
    }
    if problems.len() > before {
        return None;
    }
    let type_name = f.string(&v, "metadata.type", problems);
    let display_name = f.string(&v, "metadata.displayName", problems);
    let logical_id = f.string(&v, "config.logicalId", problems);
    let description = match v["metadata"].get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            problems.push(f.problem(
                "metadata.description",
                format!("`metadata.description` must be a string, not `{other}`"),
                false,
            ));
            String::new()
        }
    };
    let creation_payload = v["metadata"].get("creationPayload").cloned();
    if let Some(cp) = &creation_payload
        && !cp.is_object()
    {
        problems.push(f.problem(
            "metadata.creationPayload",
            format!("`metadata.creationPayload` must be an object, not `{cp}`"),
            false,
        ));
    }
    let (type_name, display_name, logical_id) = (type_name?, display_name?, logical_id?);
    let item_type = match type_name.parse::<ItemType>() {
        Ok(t) => Some(t),
        Err(e) => {
            let mut p = f.problem(
                "metadata.type",
                format!("{e}; the item is not published"),
                true,
            );
            p.hint = Some(
                "fabric-cicd ignores it too; check the spelling (type names are case-sensitive)"
                    .into(),
            );
            problems.push(p);
            None
        }
    };
    (problems.len() == before || problems[before..].iter().all(|p| p.warning)).then_some(Platform {
        item_type,
        display_name,
        description,
        logical_id,
        creation_payload,
    })
}

/// Reads the item in `dir`: its `.platform` and parts.
fn read_item(
    root: &Path,
    dir: &str,
    folders: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
) -> Option<RepoItem> {
    let abs = root.join(dir);
    let platform_path = abs.join(".platform");
    let text = match fs::read(&platform_path) {
        Ok(b) => match String::from_utf8(b) {
            Ok(t) => t,
            Err(e) => {
                problems.push(plain(
                    &platform_path,
                    format!("`.platform` is not UTF-8: {e}"),
                ));
                return None;
            }
        },
        Err(e) => {
            problems.push(plain(
                &platform_path,
                format!("cannot read `.platform`: {e}"),
            ));
            return None;
        }
    };
    let platform = parse_platform(platform_path.clone(), &text, problems)?;
    let item_type = platform.item_type?;
    let facts = item_type.facts();
    let exclude = facts
        .exclude_path
        .and_then(|re| Regex::new(&format!("^(?:{re})")).ok());
    let mut parts = Vec::new();
    if let Err(e) = collect_parts(&abs, &abs, exclude.as_ref(), &mut parts, problems) {
        problems.push(plain(&abs, format!("cannot read the item's files: {e}")));
        return None;
    }
    parts.sort_by(|a, b| a.path.cmp(&b.path));
    let locs = PlatformFile {
        path: platform_path.clone(),
        text: &text,
        locs: Locations::of(&text),
    };
    for any_of in facts.required_parts {
        if !parts.iter().any(|p| any_of.contains(&p.path.as_str())) {
            let mut p = locs.problem(
                "metadata.type",
                format!(
                    "{item_type} `{}` has no part `{}`",
                    platform.display_name,
                    any_of.join("` or `")
                ),
                false,
            );
            p.hint = Some(format!(
                "add it under {dir}/ (Fabric refuses a {item_type} definition without it)"
            ));
            problems.push(p);
        }
    }
    Some(RepoItem {
        item_type,
        display_name: platform.display_name,
        description: platform.description,
        logical_id: platform.logical_id,
        platform_creation_payload: platform.creation_payload,
        dir: dir.to_string(),
        folder: item_folder(dir, item_type, folders),
        parts,
        selected: true,
    })
}

/// Every file under `dir` as a part, unless its item-relative path matches `exclude`.
fn collect_parts(
    item_dir: &Path,
    dir: &Path,
    exclude: Option<&Regex>,
    out: &mut Vec<Part>,
    problems: &mut Vec<Problem>,
) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let ft = entry.file_type()?;
        if ft.is_dir() {
            collect_parts(item_dir, &path, exclude, out, problems)?;
            continue;
        }
        // Like os.walk, a symlinked directory is listed but not entered: it holds no parts.
        if ft.is_symlink() && path.is_dir() {
            continue;
        }
        let rel_path = rel(item_dir, &path);
        if exclude.is_some_and(|re| re.is_match(&rel_path)) {
            continue;
        }
        let bytes = fs::read(&path)?;
        out.push(classify(&path, rel_path, bytes, problems));
    }
    Ok(())
}

impl Part {
    /// A part read from a file: text or binary as fabric-cicd decides (a magic-byte match on
    /// an `application/*` or `image/*` type is binary, anything else is text), and text
    /// newlines normalised as Python's text mode does. Bytes that are neither a known binary
    /// format nor UTF-8 are kept as binary (fabric-cicd would send such a file empty).
    pub fn from_file_bytes(path: String, bytes: Vec<u8>) -> Self {
        let sniffed_binary = infer::get(&bytes).is_some_and(|k| {
            k.mime_type().starts_with("application/") || k.mime_type().starts_with("image/")
        });
        if sniffed_binary {
            return Part {
                path,
                bytes,
                kind: PartKind::Binary,
            };
        }
        match String::from_utf8(bytes) {
            Ok(text) => Part {
                path,
                bytes: normalise_newlines(text).into_bytes(),
                kind: PartKind::Text,
            },
            Err(e) => Part {
                path,
                bytes: e.into_bytes(),
                kind: PartKind::Binary,
            },
        }
    }
}

/// [`Part::from_file_bytes`], warning about a file that is neither text nor a known binary.
fn classify(path: &Path, rel_path: String, bytes: Vec<u8>, problems: &mut Vec<Problem>) -> Part {
    let part = Part::from_file_bytes(rel_path, bytes);
    if part.kind == PartKind::Binary && infer::get(&part.bytes).is_none() {
        let mut p = plain(
            path,
            "not UTF-8 text and not a recognised binary format; sent as binary".into(),
        );
        p.warning = true;
        problems.push(p);
    }
    part
}

/// Python's text mode (universal newlines): `\r\n` and lone `\r` become `\n`.
fn normalise_newlines(text: String) -> String {
    if !text.contains('\r') {
        return text;
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Two items with one logicalId (fabric-cicd: an error) or one type and displayName
/// (fabric-cicd: the last one silently wins; fabrik: an error).
fn check_duplicates(root: &Path, items: &[RepoItem], problems: &mut Vec<Problem>) {
    let mut by_lid: BTreeMap<&str, &RepoItem> = BTreeMap::new();
    let mut by_name: BTreeMap<(ItemType, &str), &RepoItem> = BTreeMap::new();
    for item in items {
        let file = root.join(&item.dir).join(".platform");
        let text = fs::read_to_string(&file).unwrap_or_default();
        let f = PlatformFile {
            path: file,
            text: &text,
            locs: Locations::of(&text),
        };
        if item.logical_id != ZERO_GUID {
            if let Some(first) = by_lid.get(item.logical_id.as_str()) {
                problems.push(f.problem(
                    "config.logicalId",
                    format!(
                        "duplicate logicalId `{}`: {}/.platform has it too",
                        item.logical_id, first.dir
                    ),
                    false,
                ));
            } else {
                by_lid.insert(&item.logical_id, item);
            }
        }
        let key = (item.item_type, item.display_name.as_str());
        if let Some(first) = by_name.get(&key) {
            let mut p = f.problem(
                "metadata.displayName",
                format!(
                    "two {} items are named `{}`: {}/ and {}/",
                    item.item_type, item.display_name, first.dir, item.dir
                ),
                false,
            );
            p.hint = Some("fabric-cicd would silently publish only one of them; rename one".into());
            problems.push(p);
        } else {
            by_name.insert(key, item);
        }
    }
}

#[cfg(test)]
#[path = "repo_tests.rs"]
pub(crate) mod tests;
