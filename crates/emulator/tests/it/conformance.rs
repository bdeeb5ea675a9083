//! Conformance to the official spec and the recorded real traffic.
//!
//! The swagger files under `../shared/fabric-rest-api-specs` are turned into one JSON Schema
//! document (every `$ref` rewritten to a local definition) and each response is validated
//! against the schema its operation declares for its status. Two adjustments, both to match
//! the real service: optional properties may be `null` (the trace has `"error": null`,
//! `"percentComplete": null`, `"connectionString": null`), and `format` is not checked (the
//! real timestamps, `2026-06-25T11:15:43.5469603`, are not RFC 3339).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value, json};

use crate::common::{Env, Resp};

pub(crate) fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

struct Spec {
    defs: Map<String, Value>,
    /// operationId → (swagger path, operation object, spec dir of its swagger).
    ops: HashMap<String, (String, Value, PathBuf)>,
    /// (METHOD, path template with every `{param}` as `{}` and no query) → operationId.
    routes: HashMap<(String, String), String>,
    validators: Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

fn key(rel: &str) -> String {
    rel.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// `dir/../x.json` → `x.json`, lower-cased (one upstream ref spells `Common`).
fn normalize(dir: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/").to_lowercase()
}

fn rewrite(v: &mut Value, file: &str) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                let (path, frag) = r.split_once('#').unwrap_or((r.as_str(), ""));
                let target = if path.is_empty() {
                    file.to_string()
                } else {
                    let dir = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    normalize(dir, path)
                };
                let name = frag.trim_start_matches("/definitions/");
                let new = format!("#/definitions/{}__{}", key(&target), name);
                // Draft 4 ignores every sibling of `$ref`; upstream puts invalid ones there
                // (`"type": "OneLake"` in kqlDatabase's `Target`), so drop them as the draft does.
                m.clear();
                m.insert("$ref".into(), Value::String(new));
                return;
            }
            for (k, x) in m.iter_mut() {
                if k != "x-ms-examples" {
                    rewrite(x, file);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite(x, file)),
        _ => {}
    }
}

/// Optional properties may be null, as the real service sends them.
fn nullable(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let required: Vec<String> = m
                .get("required")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(Value::Object(props)) = m.get_mut("properties") {
                for (name, p) in props.iter_mut() {
                    nullable(p);
                    if !required.contains(name) {
                        *p = json!({"anyOf": [p.clone(), {"type": "null"}]});
                    }
                }
            }
            for (k, x) in m.iter_mut() {
                if k != "properties" {
                    nullable(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(nullable),
        _ => {}
    }
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) {
    for e in std::fs::read_dir(dir).expect("spec dir readable").flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "examples") {
                walk(&p, root, out);
            }
        } else if p.extension().is_some_and(|x| x == "json") {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
                .to_lowercase();
            out.push((rel, p));
        }
    }
}

fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let root = shared_dir().join("fabric-rest-api-specs");
        let mut files = Vec::new();
        walk(&root, &root, &mut files);
        let mut defs = Map::new();
        let mut ops = HashMap::new();
        let mut routes = HashMap::new();
        for (rel, path) in files {
            let Ok(mut doc) = serde_json::from_slice::<Value>(&std::fs::read(&path).unwrap())
            else {
                continue;
            };
            rewrite(&mut doc, &rel);
            if let Some(Value::Object(d)) = doc.get("definitions") {
                for (name, schema) in d {
                    defs.insert(format!("{}__{}", key(&rel), name), schema.clone());
                }
            }
            if let Some(Value::Object(paths)) = doc.get("paths") {
                for (p, item) in paths {
                    for (method, op) in item.as_object().unwrap() {
                        if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                            routes
                                .entry((method.to_uppercase(), template(p)))
                                .or_insert_with(|| id.to_string());
                            ops.entry(id.to_string()).or_insert((
                                p.clone(),
                                op.clone(),
                                path.parent().unwrap().to_path_buf(),
                            ));
                        }
                    }
                }
            }
        }
        for (_, d) in defs.iter_mut() {
            nullable(d);
        }
        Spec {
            defs,
            ops,
            routes,
            validators: Mutex::new(HashMap::new()),
        }
    })
}

/// `/workspaces/{workspaceId}/x/{xId}?beta=false` → `/workspaces/{}/x/{}`.
fn template(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "{}" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// The operationId of `METHOD /v1{path}` (ids and names in the path are replaced by `{}` by
/// the caller: pass the template, e.g. `/workspaces/{}/warehouses/{}`).
#[track_caller]
pub(crate) fn op_id(method: &str, path_template: &str) -> String {
    spec()
        .routes
        .get(&(method.to_string(), path_template.to_string()))
        .unwrap_or_else(|| panic!("no operation {method} {path_template} in the spec"))
        .clone()
}

/// Validates `resp` against what `op` declares for its status (or `default` for errors).
#[track_caller]
pub(crate) fn conforms(op: &str, resp: &Resp) {
    conforms_body(op, resp.status, &resp.body);
}

#[track_caller]
pub(crate) fn conforms_body(op: &str, status: u16, body: &Value) {
    let spec = spec();
    let (_, operation, _) = spec
        .ops
        .get(op)
        .unwrap_or_else(|| panic!("no operation {op} in the spec"));
    let responses = &operation["responses"];
    let declared = responses
        .get(status.to_string())
        .or_else(|| (status >= 400).then(|| &responses["default"]));
    let declared = declared.unwrap_or_else(|| panic!("{op} declares no {status} response"));
    let Some(schema) = declared.get("schema") else {
        assert!(
            body.is_null() || body == &json!({}),
            "{op} {status} declares no body but got {body}"
        );
        return;
    };
    let cache_key = format!("{op}/{status}");
    let validator = {
        let mut cache = spec.validators.lock().unwrap();
        cache
            .entry(cache_key)
            .or_insert_with(|| {
                let mut full = json!({"allOf": [schema.clone()], "definitions": spec.defs.clone()});
                nullable(&mut full["allOf"]);
                std::sync::Arc::new(
                    jsonschema::options()
                        .with_draft(jsonschema::Draft::Draft4)
                        .should_validate_formats(false)
                        .build(&full)
                        .unwrap_or_else(|e| panic!("schema for {op}: {e}")),
                )
            })
            .clone()
    };
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{op} {status} does not conform: {errors:?}\nbody: {body}"
    );
}

/// Every supported operation's responses validate against the swagger.
#[tokio::test]
async fn responses_validate_against_the_swagger_schemas() {
    let env = Env::start().await;
    let caps = env.get("/v1/capacities").await.expect(200);
    conforms("Capacities_ListCapacities", &caps);
    let cap = caps.body["value"][0]["id"].as_str().unwrap().to_string();
    conforms(
        "Capacities_GetCapacity",
        &env.get(&format!("/v1/capacities/{cap}")).await.expect(200),
    );

    let created = env
        .post(
            "/v1/workspaces",
            json!({"displayName": "Conf", "description": "d", "capacityId": cap}),
        )
        .await
        .expect(201);
    conforms("Workspaces_CreateWorkspace", &created);
    let ws = created.body["id"].as_str().unwrap().to_string();
    conforms(
        "Workspaces_ListWorkspaces",
        &env.get("/v1/workspaces").await.expect(200),
    );
    conforms(
        "Workspaces_GetWorkspace",
        &env.get(&format!("/v1/workspaces/{ws}")).await.expect(200),
    );
    conforms(
        "Workspaces_UpdateWorkspace",
        &env.patch(&format!("/v1/workspaces/{ws}"), json!({"description": "e"}))
            .await
            .expect(200),
    );
    conforms(
        "Workspaces_AssignToCapacity",
        &env.post(
            &format!("/v1/workspaces/{ws}/assignToCapacity"),
            json!({"capacityId": cap}),
        )
        .await
        .expect(202),
    );

    let ra = format!("/v1/workspaces/{ws}/roleAssignments");
    let principal = "11111111-1111-4111-8111-111111111111";
    conforms(
        "Workspaces_AddWorkspaceRoleAssignment",
        &env.post(
            &ra,
            json!({"principal": {"id": principal, "type": "Group"}, "role": "Viewer"}),
        )
        .await
        .expect(201),
    );
    conforms(
        "Workspaces_ListWorkspaceRoleAssignments",
        &env.get(&ra).await.expect(200),
    );
    conforms(
        "Workspaces_GetWorkspaceRoleAssignment",
        &env.get(&format!("{ra}/{principal}")).await.expect(200),
    );
    conforms(
        "Workspaces_UpdateWorkspaceRoleAssignment",
        &env.patch(&format!("{ra}/{principal}"), json!({"role": "Member"}))
            .await
            .expect(200),
    );
    conforms(
        "Workspaces_DeleteWorkspaceRoleAssignment",
        &env.delete(&format!("{ra}/{principal}")).await.expect(200),
    );

    let folder = env
        .post(
            &format!("/v1/workspaces/{ws}/folders"),
            json!({"displayName": "F"}),
        )
        .await
        .expect(201);
    conforms("Folders_CreateFolder", &folder);
    let fid = folder.body["id"].as_str().unwrap().to_string();
    let sub = env
        .post(
            &format!("/v1/workspaces/{ws}/folders"),
            json!({"displayName": "G", "parentFolderId": fid}),
        )
        .await
        .expect(201);
    conforms("Folders_CreateFolder", &sub);
    conforms(
        "Folders_ListFolders",
        &env.get(&format!("/v1/workspaces/{ws}/folders"))
            .await
            .expect(200),
    );
    conforms(
        "Folders_GetFolder",
        &env.get(&format!("/v1/workspaces/{ws}/folders/{fid}"))
            .await
            .expect(200),
    );
    conforms(
        "Folders_UpdateFolder",
        &env.patch(
            &format!("/v1/workspaces/{ws}/folders/{fid}"),
            json!({"displayName": "F2"}),
        )
        .await
        .expect(200),
    );
    let gid = sub.body["id"].as_str().unwrap();
    conforms(
        "Folders_MoveFolder",
        &env.post(
            &format!("/v1/workspaces/{ws}/folders/{gid}/move"),
            json!({}),
        )
        .await
        .expect(200),
    );

    let items = format!("/v1/workspaces/{ws}/items");
    let item = env
        .post(
            &items,
            json!({"displayName": "Report 1", "type": "Report", "folderId": fid}),
        )
        .await
        .expect(201);
    conforms("Items_CreateItem", &item);
    let iid = item.body["id"].as_str().unwrap().to_string();
    conforms("Items_ListItems", &env.get(&items).await.expect(200));
    conforms(
        "Items_GetItem",
        &env.get(&format!("{items}/{iid}")).await.expect(200),
    );
    conforms(
        "Items_UpdateItem",
        &env.patch(&format!("{items}/{iid}"), json!({"description": "x"}))
            .await
            .expect(200),
    );
    conforms(
        "Items_MoveItem",
        &env.post(
            &format!("{items}/{iid}/move"),
            json!({"targetFolderId": gid}),
        )
        .await
        .expect(200),
    );
    let accepted = env
        .post_empty(&format!("{items}/{iid}/getDefinition"))
        .await;
    conforms("Items_GetItemDefinition", &accepted);
    let op_url = accepted.header("location").unwrap().to_string();
    conforms(
        "LongRunningOperations_GetOperationState",
        &env.get(&op_url).await.expect(200),
    );
    let (_, def) = env.finish(accepted).await;
    conforms_body("Items_GetItemDefinition", 200, &def.unwrap());
    conforms("Items_UpdateItemDefinition", &env.post(&format!("{items}/{iid}/updateDefinition"), json!({"definition": {"parts": [{"path": "report.json", "payload": "e30=", "payloadType": "InlineBase64"}, {"path": "definition.pbir", "payload": "e30=", "payloadType": "InlineBase64"}]}})).await.expect(202));

    let lh = format!("/v1/workspaces/{ws}/lakehouses");
    let lake = env
        .post(
            &lh,
            json!({"displayName": "LH_1", "creationPayload": {"enableSchemas": true}}),
        )
        .await
        .expect(201);
    conforms("Items_CreateLakehouse", &lake);
    let lid = lake.body["id"].as_str().unwrap().to_string();
    conforms("Items_ListLakehouses", &env.get(&lh).await.expect(200));
    conforms(
        "Items_GetLakehouse",
        &env.get(&format!("{lh}/{lid}")).await.expect(200),
    );
    conforms(
        "Items_UpdateLakehouse",
        &env.patch(&format!("{lh}/{lid}"), json!({"displayName": "LH_2"}))
            .await
            .expect(200),
    );
    let (_, def) = env
        .finish(env.post_empty(&format!("{lh}/{lid}/getDefinition")).await)
        .await;
    conforms_body("Items_GetLakehouseDefinition", 200, &def.unwrap());

    let nb = format!("/v1/workspaces/{ws}/notebooks");
    let note = env
        .post(&nb, json!({"displayName": "Nb 1"}))
        .await
        .expect(201);
    conforms("Items_CreateNotebook", &note);
    let nid = note.body["id"].as_str().unwrap().to_string();
    conforms("Items_ListNotebooks", &env.get(&nb).await.expect(200));
    conforms(
        "Items_GetNotebook",
        &env.get(&format!("{nb}/{nid}")).await.expect(200),
    );
    conforms(
        "Items_UpdateNotebook",
        &env.patch(&format!("{nb}/{nid}"), json!({"description": "n"}))
            .await
            .expect(200),
    );
    let (_, def) = env
        .finish(
            env.post_empty(&format!("{nb}/{nid}/getDefinition?format=ipynb"))
                .await,
        )
        .await;
    conforms_body("Items_GetNotebookDefinition", 200, &def.unwrap());

    let git = format!("/v1/workspaces/{ws}/git");
    conforms(
        "Git_GetConnection",
        &env.get(&format!("{git}/connection")).await.expect(200),
    );
    conforms("Git_Connect", &env.post(&format!("{git}/connect"), json!({"gitProviderDetails": {"gitProviderType": "AzureDevOps", "organizationName": "o", "projectName": "p", "repositoryName": "r", "branchName": "main", "directoryName": "/"}})).await.expect(200));
    conforms(
        "Git_GetConnection",
        &env.get(&format!("{git}/connection")).await.expect(200),
    );
    let (_, init) = env
        .finish(
            env.post(
                &format!("{git}/initializeConnection"),
                json!({"initializationStrategy": "PreferWorkspace"}),
            )
            .await,
        )
        .await;
    conforms_body("Git_InitializeConnection", 200, &init.unwrap());
    let (_, status) = env.finish(env.get(&format!("{git}/status")).await).await;
    let status = status.unwrap();
    conforms_body("Git_GetStatus", 200, &status);
    conforms(
        "Git_CommitToGit",
        &env.post(
            &format!("{git}/commitToGit"),
            json!({"mode": "All", "workspaceHead": status["workspaceHead"]}),
        )
        .await
        .expect(202),
    );
    conforms(
        "Git_GetConnection",
        &env.get(&format!("{git}/connection")).await.expect(200),
    );
    conforms(
        "Git_GetMyGitCredentials",
        &env.get(&format!("{git}/myGitCredentials"))
            .await
            .expect(200),
    );
    conforms(
        "Git_UpdateMyGitCredentials",
        &env.patch(
            &format!("{git}/myGitCredentials"),
            json!({"source": "None"}),
        )
        .await
        .expect(200),
    );
    conforms(
        "Git_Disconnect",
        &env.post_empty(&format!("{git}/disconnect"))
            .await
            .expect(200),
    );

    // Errors conform to each operation's default response.
    conforms(
        "Workspaces_GetWorkspace",
        &env.get("/v1/workspaces/00000000-0000-4000-8000-000000000000")
            .await
            .expect(404),
    );
    conforms(
        "Items_CreateItem",
        &env.post(&items, json!({"displayName": 5}))
            .await
            .expect(400),
    );
    conforms(
        "Items_DeleteItem",
        &env.delete(&format!("{items}/{iid}")).await.expect(200),
    );
    conforms(
        "Workspaces_DeleteWorkspace",
        &env.delete(&format!("/v1/workspaces/{ws}"))
            .await
            .expect(200),
    );
}

#[test]
fn the_validator_rejects_what_the_schema_forbids() {
    let bad = std::panic::catch_unwind(|| {
        conforms_body("Workspaces_ListWorkspaces", 200, &json!({"value": 5}))
    });
    assert!(bad.is_err());
    let bad = std::panic::catch_unwind(|| {
        conforms_body("Workspaces_GetWorkspace", 200, &json!({"id": "x"}))
    });
    assert!(bad.is_err(), "displayName is required");
    conforms_body(
        "Workspaces_GetWorkspace",
        200,
        &json!({"id": "x", "displayName": "d", "description": ""}),
    );
}

#[tokio::test]
async fn throttled_responses_conform_to_the_429_schema() {
    let env = Env::with(|c| c.throttle = Some("1/1".parse().unwrap())).await;
    env.get("/v1/workspaces").await.expect(200);
    let r = env.get("/v1/workspaces").await.expect(429);
    conforms("Workspaces_ListWorkspaces", &r);
    assert!(r.header("retry-after").unwrap().parse::<u64>().is_ok());
}

/// The ids, hashes and names of the spec's examples belong to the example's tenant: map them
/// onto the live fixture before sending.
fn adapt(v: &mut Value, fx: &Fixture) {
    if let Value::Object(m) = v {
        m.remove("domainId");
        m.remove("logicalId");
        for (k, x) in m.iter_mut() {
            match k.as_str() {
                "capacityId" => *x = json!(fx.capacity),
                "folderId" | "parentFolderId" | "targetFolderId" => *x = json!(fx.folder2),
                "objectId" => *x = json!(fx.notebook),
                "workspaceHead" => *x = fx.head.clone(),
                "remoteCommitHash" => *x = fx.remote.clone(),
                _ => adapt(x, fx),
            }
        }
    } else if let Value::Array(a) = v {
        a.iter_mut().for_each(|x| adapt(x, fx));
    }
}

struct Fixture {
    capacity: String,
    ws: String,
    folder1: String,
    folder2: String,
    notebook: String,
    lakehouse: String,
    report: String,
    principal: String,
    head: Value,
    remote: Value,
}

async fn fixture(env: &Env, op: &str) -> Fixture {
    let capacity = env.get("/v1/capacities").await.body["value"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ws = env.workspace("Example", true).await;
    let folder = |name: &'static str| {
        let ws = ws.clone();
        async move {
            env.post(
                &format!("/v1/workspaces/{ws}/folders"),
                json!({"displayName": name}),
            )
            .await
            .expect(201)
            .body["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let folder1 = folder("one").await;
    let folder2 = folder("two").await;
    let notebook = env
        .post(
            &format!("/v1/workspaces/{ws}/notebooks"),
            json!({"displayName": "fixture nb"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let lakehouse = env
        .post(
            &format!("/v1/workspaces/{ws}/lakehouses"),
            json!({"displayName": "fixture_lh"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let report = env
        .post(
            &format!("/v1/workspaces/{ws}/items"),
            json!({"displayName": "fixture report", "type": "Report"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let principal = "99999999-9999-4999-8999-999999999999".to_string();
    env.post(
        &format!("/v1/workspaces/{ws}/roleAssignments"),
        json!({"principal": {"id": principal, "type": "User"}, "role": "Viewer"}),
    )
    .await
    .expect(201);
    let git = format!("/v1/workspaces/{ws}/git");
    let (mut head, mut remote) = (Value::Null, Value::Null);
    if op.starts_with("Git_") && op != "Git_Connect" {
        env.post(&format!("{git}/connect"), json!({"gitProviderDetails": {"gitProviderType": "GitHub", "ownerName": "o", "repositoryName": format!("r{ws}"), "branchName": "main", "directoryName": "/"}, "myGitCredentials": {"source": "Automatic"}})).await.expect(200);
        if op == "Git_CommitToGit" || op == "Git_UpdateFromGit" {
            let (_, init) = env
                .finish(
                    env.post(&format!("{git}/initializeConnection"), json!({}))
                        .await,
                )
                .await;
            let init = init.unwrap();
            head = init["workspaceHead"].clone();
            remote = init["remoteCommitHash"].clone();
            if op == "Git_UpdateFromGit" {
                env.finish(
                    env.post(&format!("{git}/commitToGit"), json!({"mode": "All"}))
                        .await,
                )
                .await;
                let (_, st) = env.finish(env.get(&format!("{git}/status")).await).await;
                let st = st.unwrap();
                head = st["workspaceHead"].clone();
                remote = st["remoteCommitHash"].clone();
            }
        }
    }
    Fixture {
        capacity,
        ws,
        folder1,
        folder2,
        notebook,
        lakehouse,
        report,
        principal,
        head,
        remote,
    }
}

/// Every x-ms-examples request body of the supported write operations is accepted.
#[tokio::test]
async fn spec_example_request_bodies_are_accepted() {
    let ops = [
        "Workspaces_CreateWorkspace",
        "Workspaces_UpdateWorkspace",
        "Workspaces_AssignToCapacity",
        "Workspaces_AddWorkspaceRoleAssignment",
        "Workspaces_UpdateWorkspaceRoleAssignment",
        "Items_CreateItem",
        "Items_UpdateItem",
        "Items_UpdateItemDefinition",
        "Items_MoveItem",
        "Folders_CreateFolder",
        "Folders_UpdateFolder",
        "Folders_MoveFolder",
        "Git_Connect",
        "Git_InitializeConnection",
        "Git_CommitToGit",
        "Git_UpdateFromGit",
        "Git_UpdateMyGitCredentials",
        "Items_CreateLakehouse",
        "Items_UpdateLakehouse",
        "Items_UpdateLakehouseDefinition",
        "Items_CreateNotebook",
        "Items_UpdateNotebook",
        "Items_UpdateNotebookDefinition",
    ];
    let spec = spec();
    let mut tried = 0;
    for op in ops {
        let (path, operation, dir) = &spec.ops[op];
        let method = operation_method(op);
        let body_param = operation["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["in"] == "body")
            .map(|p| p["name"].as_str().unwrap().to_string());
        for (name, ex) in operation["x-ms-examples"].as_object().unwrap() {
            let file = dir.join(ex["$ref"].as_str().unwrap());
            let example: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            let env = Env::start().await;
            let fx = fixture(&env, op).await;
            let mut body = body_param
                .as_ref()
                .map(|b| example["parameters"][b].clone())
                .unwrap_or(Value::Null);
            adapt(&mut body, &fx);
            // The generic definition example is a report's.
            let item = if op == "Items_UpdateItemDefinition" {
                &fx.report
            } else {
                &fx.notebook
            };
            let url = path
                .replace("{workspaceId}", &fx.ws)
                .replace("{itemId}", item)
                .replace("{notebookId}", &fx.notebook)
                .replace("{lakehouseId}", &fx.lakehouse)
                .replace("{folderId}", &fx.folder1)
                .replace("{workspaceRoleAssignmentId}", &fx.principal);
            let query = example["parameters"]
                .get("updateMetadata")
                .map(|_| "?updateMetadata=true")
                .unwrap_or("");
            let r = env
                .send(
                    method.clone(),
                    &format!("/v1{url}{query}"),
                    (!body.is_null()).then_some(&body),
                    Some(&env.token),
                )
                .await;
            assert!(
                (200..300).contains(&r.status),
                "{op} example '{name}' ({}) was refused: {} {}",
                file.display(),
                r.status,
                r.raw
            );
            conforms(op, &r);
            tried += 1;
        }
    }
    assert!(tried >= 30, "only {tried} examples tried");
}

fn operation_method(op: &str) -> reqwest::Method {
    let spec = spec();
    let (path, _, dir) = &spec.ops[op];
    let file = ["swagger.json"].iter().map(|f| dir.join(f)).next().unwrap();
    let doc: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let item = &doc["paths"][path.as_str()];
    for m in ["get", "post", "patch", "put", "delete"] {
        if item[m]["operationId"] == op {
            return m.to_uppercase().parse().unwrap();
        }
    }
    panic!("no method for {op}");
}

/// Shapes seen in the recorded real traffic: field names, nulls, timestamps, absolute URLs.
#[tokio::test]
async fn responses_match_the_recorded_real_shapes() {
    let trace: Value = {
        let gz = std::fs::read(shared_dir().join("fabric-real-trace/http_trace.json.gz")).unwrap();
        let mut s = String::new();
        use std::io::Read;
        flate2_decode(&gz).read_to_string(&mut s).unwrap();
        serde_json::from_str(&s).unwrap()
    };
    let traces = trace["traces"].as_array().unwrap();
    let find = |pred: &dyn Fn(&Value) -> bool| -> Value {
        traces
            .iter()
            .find(|t| t["response"].is_object() && pred(t))
            .cloned()
            .expect("trace entry")
    };
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };

    let env = Env::with(|c| c.create_mode = fabrik_emulator::CreateMode::Lro202).await;
    let ws = env.workspace("Trace", true).await;

    // Workspace GET.
    let real =
        find(&|t| t["request"]["method"] == "GET" && t["response"]["body"]["type"] == "Workspace");
    let ours = env.get(&format!("/v1/workspaces/{ws}")).await;
    assert_eq!(keys(&ours.body), keys(&real["response"]["body"]));
    assert!(
        real["response"]["headers"]["RequestId"].is_string() && ours.header("RequestId").is_some()
    );

    // Item create 202 → operation state → result.
    let real_202 = find(&|t| {
        t["response"]["status_code"] == 202
            && t["request"]["url"].as_str().unwrap().ends_with("/items")
    });
    let r = env.post(&format!("/v1/workspaces/{ws}/items"), json!({"displayName": "Vars", "type": "VariableLibrary", "description": "", "folderId": ""})).await.expect(202);
    // A JSON content type and a non-empty body (gzip of `null`) on the real 202.
    assert!(
        real_202["response"]["headers"]["Content-Type"]
            .as_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_ne!(real_202["response"]["headers"]["Content-Length"], "0");
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(r.raw, "null");
    for h in ["Location", "Retry-After", "x-ms-operation-id"] {
        assert!(real_202["response"]["headers"][h].is_string());
        assert!(r.header(h).is_some(), "{h}");
    }
    assert!(
        r.header("location").unwrap().starts_with("http://"),
        "absolute Location"
    );
    let op = r.header("location").unwrap().to_string();
    let real_state = find(&|t| t["response"]["body"]["status"] == "Succeeded");
    let ours_state = env.get(&op).await.expect(200);
    assert_eq!(
        keys(&ours_state.body),
        keys(&real_state["response"]["body"])
    );
    assert_eq!(ours_state.body["error"], Value::Null);
    let ts = ours_state.body["createdTimeUtc"].as_str().unwrap();
    let real_ts = real_state["response"]["body"]["createdTimeUtc"]
        .as_str()
        .unwrap();
    assert_eq!(ts.len(), real_ts.len(), "{ts} vs {real_ts}");
    assert!(!ts.ends_with('Z'));
    let real_result = find(&|t| {
        t["request"]["url"].as_str().unwrap().ends_with("/result")
            && t["response"]["body"]["type"] == "VariableLibrary"
    });
    let result = env.get(&format!("{op}/result")).await.expect(200);
    assert_eq!(keys(&result.body), keys(&real_result["response"]["body"]));

    // Lakehouse GET while the SQL endpoint provisions: explicit nulls.
    let env2 = Env::with(|c| c.lro_delay = std::time::Duration::from_secs(60)).await;
    let ws2 = env2.workspace("Trace2", true).await;
    let lh = env2
        .post(
            &format!("/v1/workspaces/{ws2}/lakehouses"),
            json!({"displayName": "WithoutSchema"}),
        )
        .await
        .expect(201);
    let ours_lh = env2
        .get(&format!(
            "/v1/workspaces/{ws2}/lakehouses/{}",
            lh.body["id"].as_str().unwrap()
        ))
        .await
        .body;
    let real_lh = find(&|t| {
        t["response"]["body"]["properties"]["sqlEndpointProperties"]["provisioningStatus"]
            == "InProgress"
    });
    let real_props = &real_lh["response"]["body"]["properties"];
    assert_eq!(keys(&ours_lh["properties"]), keys(real_props));
    assert_eq!(
        ours_lh["properties"]["sqlEndpointProperties"],
        real_props["sqlEndpointProperties"]
    );

    // Error shape.
    let real_err = find(&|t| t["response"]["status_code"] == 400);
    let ours_err = env
        .post(
            &format!("/v1/workspaces/{ws}/items"),
            json!({"displayName": 1}),
        )
        .await
        .expect(400);
    assert_eq!(keys(&ours_err.body), keys(&real_err["response"]["body"]));
    assert_eq!(
        ours_err.body["moreDetails"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["errorCode", "message"]
    );
    assert!(real_err["response"]["headers"]["x-ms-public-api-error-code"].is_string());
    assert_eq!(
        ours_err.header("x-ms-public-api-error-code"),
        Some("InvalidInput")
    );

    // Folder create: Location and the same fields.
    let real_folder = find(&|t| {
        t["request"]["method"] == "POST"
            && t["response"]["status_code"] == 201
            && t["request"]["url"].as_str().unwrap().ends_with("/folders")
    });
    let f = env
        .post(
            &format!("/v1/workspaces/{ws}/folders"),
            json!({"displayName": "subfolder"}),
        )
        .await
        .expect(201);
    assert_eq!(keys(&f.body), keys(&real_folder["response"]["body"]));
    assert!(
        f.header("location")
            .unwrap()
            .ends_with(&format!("/folders/{}", f.body["id"].as_str().unwrap()))
    );
}

fn flate2_decode(bytes: &[u8]) -> impl std::io::Read + '_ {
    flate2::read::GzDecoder::new(bytes)
}

/// One operation of the spec: id, method, path (as in the swagger) and its examples.
pub(crate) struct OpInfo {
    pub(crate) id: String,
    pub(crate) method: reqwest::Method,
    pub(crate) path: String,
    /// `(example name, example file content)`.
    pub(crate) examples: Vec<(String, Value)>,
    /// The name of the body parameter, if the operation takes one.
    pub(crate) body_param: Option<String>,
}

/// Every operation of the spec whose path template (see [`op_id`]) satisfies `pred`.
pub(crate) fn ops_where(pred: impl Fn(&str, &str) -> bool) -> Vec<OpInfo> {
    let spec = spec();
    let mut out: Vec<OpInfo> = spec
        .routes
        .iter()
        .filter(|((m, t), _)| pred(m, t))
        .map(|(_, id)| {
            let (path, operation, dir) = &spec.ops[id];
            let examples = operation["x-ms-examples"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(name, ex)| {
                    let file = dir.join(ex["$ref"].as_str()?);
                    let v = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
                    Some((name.clone(), v))
                })
                .collect();
            let body_param = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["in"] == "body")
                .and_then(|p| p["name"].as_str().map(str::to_string));
            OpInfo {
                id: id.clone(),
                method: operation_method(id),
                path: path.clone(),
                examples,
                body_param,
            }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Bulk export answers the spec's two examples (selective and all) with what their 200
/// bodies show: the same index, in the git layout, and conforming bodies.
#[tokio::test]
async fn bulk_export_answers_the_spec_examples() {
    let op = "Items_Bulk_Export_Item_Definitions_(beta)";
    let env = Env::start().await;
    let ws = env.workspace("Export", true).await;
    let folder = |name: &str, parent: Option<String>| {
        let mut body = json!({"displayName": name});
        if let Some(p) = parent {
            body["parentFolderId"] = json!(p);
        }
        let env = &env;
        let url = format!("/v1/workspaces/{ws}/folders");
        async move { env.post(&url, body).await.expect(201).body["id"].clone() }
    };
    let folder1 = folder("Folder1", None).await;
    let folder2 = folder("Folder2", folder1.as_str().map(str::to_string)).await;
    let item = |name: &str, t: &str, folder: &Value| {
        let body = json!({
            "displayName": name,
            "type": t,
            "folderId": folder,
            "definition": crate::item_types::minimal_definition(t, ""),
        });
        let env = &env;
        let url = format!("/v1/workspaces/{ws}/items");
        async move {
            env.post(&url, body).await.expect(201).body["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let dataset = item("MyDataset", "SemanticModel", &folder1).await;
    let report = item("MyReport", "Report", &folder2).await;
    let ours = |id: &str| match id {
        "2bddf79a-fbc2-4aa5-ab88-a0d18e551fa1" => dataset.clone(),
        "69358294-7b93-4f5b-bb26-780239eaa5e3" => report.clone(),
        other => panic!("unexpected example id {other}"),
    };
    let info = ops_where(|m, t| m == "POST" && t == "/workspaces/{}/items/bulkExportDefinitions");
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].id, op);
    assert_eq!(info[0].examples.len(), 2);
    for (name, example) in &info[0].examples {
        let mut body = example["parameters"]["bulkExportItemDefinitionsRequest"].clone();
        for i in body["items"].as_array_mut().into_iter().flatten() {
            i["id"] = json!(ours(i["id"].as_str().unwrap()));
        }
        let url = format!("/v1/workspaces/{ws}/items/bulkExportDefinitions?beta=true");
        let accepted = env.post(&url, body).await;
        conforms(op, &accepted);
        let (state, result) = env.finish(accepted).await;
        assert_eq!(state["status"], "Succeeded", "{name}");
        let result = result.unwrap();
        conforms_body(op, 200, &result);
        let index = |v: &Value, map: &dyn Fn(&str) -> String| {
            let mut entries: Vec<(String, String)> = v["itemDefinitionsIndex"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        map(e["id"].as_str().unwrap()),
                        e["rootPath"].as_str().unwrap().into(),
                    )
                })
                .collect();
            entries.sort();
            entries
        };
        assert_eq!(
            index(&result, &|id| id.to_string()),
            index(&example["responses"]["200"]["body"], &ours),
            "{name}"
        );
        // Every part sits under its item's root path; each item has its .platform.
        let parts = result["definitionParts"].as_array().unwrap();
        for root in [
            "/Folder1/MyDataset.SemanticModel",
            "/Folder1/Folder2/MyReport.Report",
        ] {
            assert!(
                parts
                    .iter()
                    .any(|p| p["path"] == format!("{root}/.platform")),
                "{name}"
            );
        }
        assert!(
            parts
                .iter()
                .all(|p| p["path"].as_str().unwrap().starts_with("/Folder1/"))
        );
    }
}
