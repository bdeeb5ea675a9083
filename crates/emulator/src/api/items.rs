//! Items: the generic `/items` endpoints and the typed ones (`/lakehouses`, `/notebooks`,
//! `/variableLibraries`, … — one per entry of [`crate::types::TYPES`]), which share these
//! handlers (the route layer says which [`Kind`] it is).

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{S, json, ok_empty, start_operation, ws, ws_mut};
use crate::CreateMode;
use crate::error::ApiError;
use crate::server::{Ctx, Shared};
use crate::store::{Definition, ITEM_TYPES, Item, ItemExtra, Part, Workspace};
use crate::types::{self, TypeInfo};
use crate::util::{PageRequest, parse_body, parse_id, parse_opt_body, parse_opt_uuid, query_bool};

/// Which endpoint family a request came through: `/items` (`None`, any type) or one
/// type's typed collection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kind(pub(crate) Option<&'static TypeInfo>);

impl Kind {
    /// `/items`.
    pub(crate) const GENERIC: Kind = Kind(None);

    pub(crate) fn fixed_type(self) -> Option<&'static str> {
        self.0.map(|t| t.name)
    }
    fn segment(self) -> &'static str {
        self.0.map_or("items", |t| t.segment)
    }
}

type Q = Query<HashMap<String, String>>;

pub(crate) fn check_type(t: &str) -> Result<&'static str, ApiError> {
    ITEM_TYPES
        .iter()
        .find(|x| x.eq_ignore_ascii_case(t))
        .copied()
        .ok_or_else(|| {
            ApiError::bad_request("InvalidItemType", format!("Item type '{t}' is invalid"))
        })
}

/// Display-name rules: at most 256 characters; on the typed `/lakehouses` endpoints also
/// the documented lakehouse rule. The generic `/items` endpoint does not apply it, because the
/// spec's own examples create a Lakehouse named "Item 1" there.
pub(crate) fn check_item_name(kind: Kind, name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::bad_body("The display name must not be empty"));
    }
    if kind.fixed_type() == Some("Lakehouse") {
        let mut chars = name.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && name.len() <= 123;
        if !ok {
            return Err(ApiError::invalid_input(
                "InvalidDisplayName",
                format!(
                    "Lakehouse name '{name}' is invalid: it must begin with a letter, contain only letters, digits and underscores, and be at most 123 characters"
                ),
            ));
        }
    }
    let len = name.chars().count();
    if len > 256 {
        return Err(ApiError::bad_body(format!(
            "The display name cannot contain more than 256 characters (got {len})"
        )));
    }
    Ok(())
}

pub(crate) fn check_item_description(d: &str) -> Result<(), ApiError> {
    let len = d.chars().count();
    if len > 256 {
        return Err(ApiError::bad_body(format!(
            "The description cannot contain more than 256 characters (got {len})"
        )));
    }
    Ok(())
}

fn name_conflict(name: &str) -> ApiError {
    ApiError::conflict(
        "ItemDisplayNameAlreadyInUse",
        format!("Item display name '{name}' is already used"),
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PartIn {
    pub(crate) path: String,
    pub(crate) payload: String,
    pub(crate) payload_type: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DefinitionIn {
    pub(crate) format: Option<String>,
    pub(crate) parts: Vec<PartIn>,
}

/// What a `.platform` part says about the item.
#[derive(Debug, Default)]
pub(crate) struct PlatformMeta {
    pub(crate) display_name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) logical_id: Option<Uuid>,
}

/// Base64 with or without padding (the spec's examples have both).
const PADDING_INDIFFERENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// 400 `OperationNotSupportedForItem`: the type has no public definition.
pub(crate) fn no_definition(item_type: &str) -> ApiError {
    ApiError::bad_request(
        "OperationNotSupportedForItem",
        format!("Operation not supported for requested item: a {item_type} has no definition"),
    )
}

/// Checks `format` against what the type knows (types that know none accept any).
fn check_format(item_type: &str, format: Option<&str>) -> Result<(), ApiError> {
    let known = types::formats(item_type);
    match format {
        Some(f) if !known.is_empty() && !known.contains(&f) => Err(ApiError::invalid_input(
            "InvalidDefinitionFormat",
            format!(
                "Definition format '{f}' is not supported for {item_type} (supported: {})",
                known.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

/// Validates a definition for `item_type`: the type has definitions, the format is one it
/// knows, every part is inline base64 and the required parts are there; `.platform` is split
/// off (it is derived).
pub(crate) fn check_definition(
    item_type: &str,
    d: DefinitionIn,
) -> Result<(Definition, PlatformMeta), ApiError> {
    if !types::has_definition(item_type) {
        return Err(no_definition(item_type));
    }
    check_format(item_type, d.format.as_deref())?;
    let mut parts = Vec::with_capacity(d.parts.len());
    let mut meta = PlatformMeta::default();
    for p in d.parts {
        if p.path.trim().is_empty() {
            return Err(ApiError::bad_body("A definition part has an empty 'path'"));
        }
        if p.payload_type != "InlineBase64" {
            return Err(ApiError::bad_body(format!(
                "Part '{}' has payloadType '{}'; only 'InlineBase64' is supported",
                p.path, p.payload_type
            )));
        }
        // Payloads stay opaque: the spec's own examples carry elided ones
        // ("IyBGYWJyaWMgbm90ZWJv...", "dotPlatformBase64String"), and every example body must
        // be accepted. A `.platform` that decodes to JSON is read for its metadata.
        if p.path == ".platform" {
            if let Some(v) = decode_json(&p.payload) {
                let s = |ptr: &str| v.pointer(ptr).and_then(|x| x.as_str()).map(str::to_string);
                meta = PlatformMeta {
                    display_name: s("/metadata/displayName"),
                    description: s("/metadata/description"),
                    logical_id: s("/config/logicalId").and_then(|l| Uuid::parse_str(&l).ok()),
                };
            }
            continue;
        }
        parts.push(Part {
            path: p.path,
            payload: p.payload,
            payload_type: p.payload_type,
        });
    }
    if let Some(alts) =
        types::missing_parts(item_type, parts.iter().map(|p| p.path.as_str())).first()
    {
        return Err(ApiError::invalid_input(
            "MissingDefinitionPart",
            format!(
                "The {item_type} definition lacks its required part '{}'",
                alts.join("' or '")
            ),
        ));
    }
    Ok((
        Definition {
            format: d.format,
            parts,
        },
        meta,
    ))
}

/// A base64 payload that decodes to UTF-8 text.
pub(crate) fn decode_text(payload: &str) -> Option<String> {
    PADDING_INDIFFERENT
        .decode(payload.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// A base64 payload that decodes to JSON.
pub(crate) fn decode_json(payload: &str) -> Option<Value> {
    PADDING_INDIFFERENT
        .decode(payload.trim())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// What a KQL database's `DatabaseProperties.json` part says: parent eventhouse and type.
fn kql_properties(d: &Definition) -> (Option<Uuid>, Option<String>) {
    let v = d
        .parts
        .iter()
        .find(|p| p.path == "DatabaseProperties.json")
        .and_then(|p| decode_json(&p.payload));
    let s = |k: &str| {
        v.as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    (
        s("parentEventhouseItemId").and_then(|p| Uuid::parse_str(&p).ok()),
        s("databaseType"),
    )
}

/// The value sets a variable library's definition holds (`valueSets/*.json`, by their
/// `name`, else the file name).
fn value_sets(i: &Item) -> Vec<String> {
    i.definition
        .iter()
        .flat_map(|d| d.parts.iter())
        .filter_map(|p| {
            let file = p.path.strip_prefix("valueSets/")?.strip_suffix(".json")?;
            let named = decode_json(&p.payload)
                .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_string));
            Some(named.unwrap_or_else(|| file.to_string()))
        })
        .collect()
}

/// Reads `creationPayload` for the type into the new item's state.
fn apply_creation_payload(
    item_type: &str,
    payload: &Value,
    enable_schemas: &mut bool,
    extra: &mut ItemExtra,
) -> Result<(), ApiError> {
    let field = |k: &str| payload.get(k);
    let string = |k: &str| -> Result<Option<String>, ApiError> {
        match field(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(ApiError::bad_body(format!(
                "'creationPayload.{k}' must be a string, got {other}"
            ))),
        }
    };
    match item_type {
        "Lakehouse" => match field("enableSchemas") {
            None => {}
            Some(Value::Bool(b)) => *enable_schemas = *b,
            Some(other) => {
                return Err(ApiError::bad_body(format!(
                    "'creationPayload.enableSchemas' must be a boolean, got {other}"
                )));
            }
        },
        "Warehouse" => {
            // The spec names it `collationType`; fabric-cicd sends the `.platform`
            // `creationPayload` as is, which git writes as `defaultCollation`.
            let c = match string("collationType")? {
                Some(c) => Some(c),
                None => string("defaultCollation")?,
            };
            if let Some(c) = c {
                if !super::props::COLLATIONS.contains(&c.as_str()) {
                    return Err(ApiError::invalid_input(
                        "InvalidCollationType",
                        format!(
                            "Collation '{c}' is not supported (supported: {})",
                            super::props::COLLATIONS.join(", ")
                        ),
                    ));
                }
                extra.collation = Some(c);
            }
        }
        "KQLDatabase" => {
            extra.parent_eventhouse = string("parentEventhouseItemId")?
                .map(|p| parse_id(&p, "InvalidInput", "eventhouse"))
                .transpose()?;
            if let Some(t) = string("databaseType")? {
                if t != "ReadWrite" && t != "Shortcut" {
                    return Err(ApiError::bad_body(format!(
                        "'creationPayload.databaseType' must be ReadWrite or Shortcut, got '{t}'"
                    )));
                }
                extra.database_type = Some(t);
            }
        }
        _ => {}
    }
    Ok(())
}

/// A KQL database's parent must be an eventhouse of the workspace.
fn check_parent_eventhouse(w: &Workspace, parent: Option<Uuid>) -> Result<(), ApiError> {
    match parent {
        Some(p) if w.items.get(&p).is_some_and(|e| e.item_type == "Eventhouse") => Ok(()),
        Some(p) => Err(ApiError::invalid_input(
            "InvalidParentEventhouseItemId",
            format!("Parent eventhouse '{p}' was not found in the workspace"),
        )),
        None => Err(ApiError::invalid_input(
            "InvalidParentEventhouseItemId",
            "A KQL database needs 'parentEventhouseItemId' (creation payload or DatabaseProperties.json)",
        )),
    }
}

/// The item's JSON as this endpoint family returns it: typed endpoints add `properties`.
pub(crate) fn render(s: &Shared, kind: Kind, w: &Workspace, i: &Item) -> Value {
    let mut v = i.to_json(&w.id);
    if let Some(p) = kind
        .0
        .and_then(|t| super::props::properties(s, t.props, w, i))
    {
        v["properties"] = p;
    }
    v
}

fn item_not_found(raw: &str) -> ApiError {
    ApiError::not_found("ItemNotFound", "item", raw)
}

/// The item `raw` names, if it is of this endpoint's type.
fn find<'a>(w: &'a Workspace, kind: Kind, raw: &str) -> Result<&'a Item, ApiError> {
    let id = parse_id(raw, "ItemNotFound", "item")?;
    w.items
        .get(&id)
        .filter(|i| kind.fixed_type().is_none_or(|t| t == i.item_type))
        .ok_or_else(|| item_not_found(raw))
}

pub(crate) fn folder_ref(
    w: &Workspace,
    raw: Option<&str>,
    field: &str,
) -> Result<Option<Uuid>, ApiError> {
    match parse_opt_uuid(field, raw)? {
        None => Ok(None),
        Some(f) if w.folders.contains_key(&f) => Ok(Some(f)),
        Some(f) => Err(ApiError::not_found(
            "FolderNotFound",
            "folder",
            &f.to_string(),
        )),
    }
}

/// `recursive` / `rootFolderId` filtering shared by item and folder listings.
pub(crate) fn scope(
    w: &Workspace,
    q: &HashMap<String, String>,
) -> Result<(Option<Uuid>, bool), ApiError> {
    let recursive = query_bool(q, "recursive")?.unwrap_or(true);
    let root = folder_ref(w, q.get("rootFolderId").map(String::as_str), "rootFolderId")?;
    Ok((root, recursive))
}

pub(crate) fn in_scope(
    w: &Workspace,
    folder: Option<Uuid>,
    root: Option<Uuid>,
    recursive: bool,
) -> bool {
    match (root, recursive) {
        (None, true) => true,
        (None, false) => folder.is_none(),
        (Some(r), true) => w.folder_within(folder, r),
        (Some(r), false) => folder == Some(r),
    }
}

pub(crate) async fn list(
    State(s): S,
    Extension(kind): Extension<Kind>,
    Extension(ctx): Extension<Ctx>,
    Path(wsid): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let type_filter = match (kind.fixed_type(), q.get("type")) {
        (Some(t), _) => Some(t),
        (None, Some(t)) => Some(check_type(t)?),
        (None, None) => None,
    };
    let store = s.read();
    let w = ws(&store, &wsid)?;
    let (root, recursive) = scope(w, &q)?;
    let page = PageRequest::new(
        &ctx.origin,
        &format!("/v1/workspaces/{}/{}", w.id, kind.segment()),
        &q,
        s.config.page_size,
    )?;
    let body = page.page(
        "value",
        w.items
            .iter()
            .filter(|(_, i)| type_filter.is_none_or(|t| t == i.item_type))
            .filter(|(_, i)| in_scope(w, i.folder_id, root, recursive))
            .map(|(id, i)| (id, render(&s, kind, w, i))),
    );
    Ok(json(StatusCode::OK, &body))
}

pub(crate) async fn create(
    State(s): S,
    Extension(kind): Extension<Kind>,
    Extension(ctx): Extension<Ctx>,
    Path(wsid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Req {
        display_name: String,
        description: Option<String>,
        #[serde(rename = "type")]
        item_type: Option<String>,
        folder_id: Option<String>,
        definition: Option<DefinitionIn>,
        creation_payload: Option<Value>,
    }
    let req: Req = parse_body(&body)?;
    let item_type = match (kind.fixed_type(), &req.item_type) {
        (Some(t), _) => t,
        (None, Some(t)) => check_type(t)?,
        (None, None) => return Err(ApiError::bad_body("The field 'type' is required")),
    };
    check_item_name(kind, &req.display_name)?;
    let description = req.description.unwrap_or_default();
    check_item_description(&description)?;
    if req.definition.is_some() && req.creation_payload.is_some() {
        return Err(ApiError::bad_body(
            "Use either 'definition' or 'creationPayload', not both",
        ));
    }
    let mut enable_schemas = false;
    let mut extra = ItemExtra::default();
    if let Some(p) = &req.creation_payload {
        apply_creation_payload(item_type, p, &mut enable_schemas, &mut extra)?;
    }
    let (definition, meta) = match req.definition {
        Some(d) => {
            let (d, m) = check_definition(item_type, d)?;
            (Some(d), m)
        }
        None if types::requires_definition(item_type) => {
            // The spec's create operation for the type says "This API requires a definition".
            return Err(ApiError::bad_request(
                "InvalidInput",
                format!(
                    "This API requires a definition: a {item_type} cannot be created without one"
                ),
            ));
        }
        None => (None, PlatformMeta::default()),
    };
    if let (Some(d), "KQLDatabase") = (&definition, item_type) {
        let (parent, db_type) = kql_properties(d);
        extra.parent_eventhouse = parent;
        extra.database_type = db_type;
    }
    let id = s.new_id();
    let logical_id = meta.logical_id.unwrap_or_else(|| s.new_id());
    let now = s.now();
    let mut store = s.write();
    if let Some(d) = &definition {
        super::spark::check_environment_pool(&store, ws(&store, &wsid)?, item_type, d)?;
    }
    let w = ws_mut(&mut store, &wsid)?;
    let folder_id = folder_ref(w, req.folder_id.as_deref(), "folderId")?;
    if item_type == "KQLDatabase" {
        check_parent_eventhouse(w, extra.parent_eventhouse)?;
    }
    if w.name_taken(item_type, &req.display_name, None) {
        return Err(name_conflict(&req.display_name));
    }
    let has_extra = extra.collation.is_some()
        || extra.parent_eventhouse.is_some()
        || extra.database_type.is_some();
    let item = Item {
        id,
        item_type,
        display_name: req.display_name,
        description,
        folder_id,
        definition: definition.map(Box::new),
        logical_id,
        created_at: now,
        enable_schemas,
        extra: has_extra.then(|| Box::new(extra)),
    };
    let body = item.to_json(&w.id);
    w.items.insert(id, item);
    match s.config.create_mode {
        CreateMode::Immediate201 => Ok(json(StatusCode::CREATED, &body)),
        CreateMode::Lro202 => Ok(start_operation(&s, &mut store, &ctx, Some(body))),
    }
}

pub(crate) async fn get(
    State(s): S,
    Extension(kind): Extension<Kind>,
    Path((wsid, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let store = s.read();
    let w = ws(&store, &wsid)?;
    let i = find(w, kind, &id)?;
    Ok(json(StatusCode::OK, &render(&s, kind, w, i)))
}

pub(crate) async fn update(
    State(s): S,
    Extension(kind): Extension<Kind>,
    Path((wsid, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Props {
        active_value_set_name: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Req {
        display_name: Option<String>,
        description: Option<String>,
        /// VariableLibrary (typed endpoint): `activeValueSetName`.
        properties: Option<Props>,
    }
    let req: Req = parse_body(&body)?;
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    let (iid, item_type) = {
        let i = find(w, kind, &id)?;
        (i.id, i.item_type)
    };
    if let Some(n) = &req.display_name {
        check_item_name(kind, n)?;
        if w.name_taken(item_type, n, Some(iid)) {
            return Err(name_conflict(n));
        }
    }
    if let Some(d) = &req.description {
        check_item_description(d)?;
    }
    // Only the typed endpoint knows `properties`; `/items` ignores it as an unknown field.
    let active = match (kind.fixed_type(), req.properties) {
        (Some("VariableLibrary"), Some(p)) => p.active_value_set_name,
        _ => None,
    };
    if let Some(a) = &active {
        let sets = value_sets(&w.items[&iid]);
        if a != super::props::DEFAULT_VALUE_SET && !sets.contains(a) {
            return Err(ApiError::invalid_input(
                "InvalidActiveValueSetName",
                format!(
                    "Value set '{a}' does not exist (the library has '{}' and {:?})",
                    super::props::DEFAULT_VALUE_SET,
                    sets
                ),
            ));
        }
    }
    let i = w.items.get_mut(&iid).ok_or_else(|| item_not_found(&id))?;
    if let Some(n) = req.display_name {
        i.display_name = n;
    }
    if let Some(d) = req.description {
        i.description = d;
    }
    if let Some(a) = active {
        i.extra_mut().active_value_set = Some(a);
    }
    let w = &*w;
    Ok(json(StatusCode::OK, &render(&s, kind, w, &w.items[&iid])))
}

pub(crate) async fn delete(
    State(s): S,
    Extension(kind): Extension<Kind>,
    Path((wsid, id)): Path<(String, String)>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let hard = query_bool(&q, "hardDelete")?.unwrap_or(false);
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    let iid = find(w, kind, &id)?.id;
    // An eventhouse takes its KQL databases with it.
    let children: Vec<Uuid> = w
        .items
        .values()
        .filter(|d| d.extra.as_ref().and_then(|x| x.parent_eventhouse) == Some(iid))
        .map(|d| d.id)
        .collect();
    for gone in std::iter::once(iid).chain(children) {
        if let Some(item) = w.items.remove(&gone)
            && !hard
        {
            w.deleted_items.insert(gone, item);
        }
    }
    Ok(ok_empty())
}

pub(crate) async fn get_definition(
    State(s): S,
    Extension(kind): Extension<Kind>,
    Extension(ctx): Extension<Ctx>,
    Path((wsid, id)): Path<(String, String)>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let format = q.get("format").map(String::as_str);
    let mut store = s.write();
    let w = ws(&store, &wsid)?;
    let i = find(w, kind, &id)?;
    if !types::has_definition(i.item_type) {
        return Err(no_definition(i.item_type));
    }
    check_format(i.item_type, format)?;
    let def = i.definition_json(format);
    Ok(start_operation(&s, &mut store, &ctx, Some(def)))
}

pub(crate) async fn update_definition(
    State(s): S,
    Extension(kind): Extension<Kind>,
    Extension(ctx): Extension<Ctx>,
    Path((wsid, id)): Path<(String, String)>,
    Query(q): Q,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    struct Req {
        definition: DefinitionIn,
    }
    let update_metadata = query_bool(&q, "updateMetadata")?.unwrap_or(false);
    let req: Req = parse_body(&body)?;
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    let (iid, item_type) = {
        let i = find(w, kind, &id)?;
        (i.id, i.item_type)
    };
    let (definition, meta) = check_definition(item_type, req.definition)?;
    super::spark::check_environment_pool(&store, ws(&store, &wsid)?, item_type, &definition)?;
    let w = ws_mut(&mut store, &wsid)?;
    let kql = (item_type == "KQLDatabase").then(|| kql_properties(&definition));
    if let Some((parent, _)) = kql
        && parent.is_some()
    {
        check_parent_eventhouse(w, parent)?;
    }
    if update_metadata {
        if let Some(n) = &meta.display_name {
            check_item_name(kind, n)?;
            if w.name_taken(item_type, n, Some(iid)) {
                return Err(name_conflict(n));
            }
        }
        if let Some(d) = &meta.description {
            check_item_description(d)?;
        }
    }
    let i = w.items.get_mut(&iid).ok_or_else(|| item_not_found(&id))?;
    i.definition = Some(Box::new(definition));
    if let Some((parent, db_type)) = kql {
        let x = i.extra_mut();
        x.parent_eventhouse = parent.or(x.parent_eventhouse);
        x.database_type = db_type.or(x.database_type.take());
    }
    if update_metadata {
        if let Some(n) = meta.display_name {
            i.display_name = n;
        }
        if let Some(d) = meta.description {
            i.description = d;
        }
    }
    Ok(start_operation(&s, &mut store, &ctx, None))
}

pub(crate) async fn move_item(
    State(s): S,
    Path((wsid, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Req {
        target_folder_id: Option<String>,
    }
    let req: Req = parse_opt_body(&body)?;
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    let iid = find(w, Kind::GENERIC, &id)?.id;
    let target = folder_ref(w, req.target_folder_id.as_deref(), "targetFolderId")?;
    let i = w.items.get_mut(&iid).ok_or_else(|| item_not_found(&id))?;
    i.folder_id = target;
    let body = json!({"value": [w.items[&iid].to_json(&w.id)]});
    Ok(json(StatusCode::OK, &body))
}
