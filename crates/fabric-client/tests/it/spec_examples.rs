//! Every example in the official spec for the operations this client supports reads into the
//! typed models: response bodies, error bodies and request bodies.

use std::collections::BTreeMap;
use std::path::Path;

use fabrik_client::models::*;
use serde_json::Value;

use crate::fixtures::{reads_losslessly, shared};

type Check = fn(&Value) -> Result<(), String>;

/// (operationId, success body model, request body model).
fn supported() -> BTreeMap<&'static str, (Option<Check>, Option<Check>)> {
    let item: Check = reads_losslessly::<Item>;
    let lakehouse: Check = reads_losslessly::<Lakehouse>;
    let definition: Check = reads_losslessly::<ItemDefinitionResponse>;
    let create_item: Check = reads_losslessly::<CreateItemRequest>;
    let update_item: Check = reads_losslessly::<UpdateItemRequest>;
    let update_def: Check = reads_losslessly::<UpdateDefinitionRequest>;
    let ws: Check = reads_losslessly::<Workspace>;
    let role: Check = reads_losslessly::<RoleAssignment>;
    let folder: Check = reads_losslessly::<Folder>;
    BTreeMap::from([
        (
            "Workspaces_CreateWorkspace",
            (
                Some(ws),
                Some(reads_losslessly::<CreateWorkspaceRequest> as Check),
            ),
        ),
        (
            "Workspaces_ListWorkspaces",
            (Some(reads_losslessly::<Page<Workspace>> as Check), None),
        ),
        ("Workspaces_GetWorkspace", (Some(ws), None)),
        (
            "Workspaces_UpdateWorkspace",
            (
                Some(ws),
                Some(reads_losslessly::<UpdateWorkspaceRequest> as Check),
            ),
        ),
        ("Workspaces_DeleteWorkspace", (None, None)),
        (
            "Workspaces_AssignToCapacity",
            (
                None,
                Some(reads_losslessly::<AssignToCapacityRequest> as Check),
            ),
        ),
        ("Workspaces_UnassignFromCapacity", (None, None)),
        (
            "Workspaces_AddWorkspaceRoleAssignment",
            (
                Some(role),
                Some(reads_losslessly::<AddRoleAssignmentRequest> as Check),
            ),
        ),
        (
            "Workspaces_ListWorkspaceRoleAssignments",
            (
                Some(reads_losslessly::<Page<RoleAssignment>> as Check),
                None,
            ),
        ),
        ("Workspaces_GetWorkspaceRoleAssignment", (Some(role), None)),
        (
            "Workspaces_UpdateWorkspaceRoleAssignment",
            (
                Some(role),
                Some(reads_losslessly::<UpdateRoleAssignmentRequest> as Check),
            ),
        ),
        ("Workspaces_DeleteWorkspaceRoleAssignment", (None, None)),
        (
            "Capacities_ListCapacities",
            (Some(reads_losslessly::<Page<Capacity>> as Check), None),
        ),
        (
            "Capacities_GetCapacity",
            (Some(reads_losslessly::<Capacity> as Check), None),
        ),
        (
            "LongRunningOperations_GetOperationState",
            (Some(reads_losslessly::<OperationState> as Check), None),
        ),
        (
            "LongRunningOperations_GetOperationResult",
            (Some(item), None),
        ),
        (
            "Items_ListItems",
            (Some(reads_losslessly::<Page<Item>> as Check), None),
        ),
        ("Items_CreateItem", (Some(item), Some(create_item))),
        ("Items_GetItem", (Some(item), None)),
        ("Items_UpdateItem", (Some(item), Some(update_item))),
        ("Items_DeleteItem", (None, None)),
        ("Items_GetItemDefinition", (Some(definition), None)),
        ("Items_UpdateItemDefinition", (None, Some(update_def))),
        (
            "Items_Bulk_Export_Item_Definitions_(beta)",
            (
                Some(reads_losslessly::<BulkExportResponse> as Check),
                Some(reads_losslessly::<BulkExportRequest> as Check),
            ),
        ),
        (
            "Items_Bulk_Import_Item_Definitions_(beta)",
            (
                Some(reads_losslessly::<BulkImportResponse> as Check),
                Some(reads_losslessly::<BulkImportRequest> as Check),
            ),
        ),
        (
            "Items_ListLakehouses",
            (Some(reads_losslessly::<Page<Lakehouse>> as Check), None),
        ),
        (
            "Items_CreateLakehouse",
            (Some(lakehouse), Some(create_item)),
        ),
        ("Items_GetLakehouse", (Some(lakehouse), None)),
        (
            "Items_UpdateLakehouse",
            (Some(lakehouse), Some(update_item)),
        ),
        ("Items_DeleteLakehouse", (None, None)),
        ("Items_GetLakehouseDefinition", (Some(definition), None)),
        ("Items_UpdateLakehouseDefinition", (None, Some(update_def))),
        (
            "Items_ListNotebooks",
            (Some(reads_losslessly::<Page<Notebook>> as Check), None),
        ),
        ("Items_CreateNotebook", (Some(item), Some(create_item))),
        ("Items_GetNotebook", (Some(item), None)),
        ("Items_UpdateNotebook", (Some(item), Some(update_item))),
        ("Items_DeleteNotebook", (None, None)),
        ("Items_GetNotebookDefinition", (Some(definition), None)),
        ("Items_UpdateNotebookDefinition", (None, Some(update_def))),
        (
            "Folders_ListFolders",
            (Some(reads_losslessly::<Page<Folder>> as Check), None),
        ),
        (
            "Folders_CreateFolder",
            (
                Some(folder),
                Some(reads_losslessly::<CreateFolderRequest> as Check),
            ),
        ),
        ("Folders_GetFolder", (Some(folder), None)),
        (
            "Folders_UpdateFolder",
            (
                Some(folder),
                Some(reads_losslessly::<UpdateFolderRequest> as Check),
            ),
        ),
        (
            "Folders_MoveFolder",
            (
                Some(folder),
                Some(reads_losslessly::<MoveFolderRequest> as Check),
            ),
        ),
        ("Folders_DeleteFolder", (None, None)),
        (
            "Git_Connect",
            (None, Some(reads_losslessly::<GitConnectRequest> as Check)),
        ),
        ("Git_Disconnect", (None, None)),
        (
            "Git_GetConnection",
            (Some(reads_losslessly::<GitConnection> as Check), None),
        ),
        (
            "Git_InitializeConnection",
            (
                Some(reads_losslessly::<InitializeGitConnectionResponse> as Check),
                Some(reads_losslessly::<InitializeGitConnectionRequest> as Check),
            ),
        ),
        (
            "Git_GetStatus",
            (Some(reads_losslessly::<GitStatusResponse> as Check), None),
        ),
        (
            "Git_CommitToGit",
            (None, Some(reads_losslessly::<CommitToGitRequest> as Check)),
        ),
        (
            "Git_UpdateFromGit",
            (
                None,
                Some(reads_losslessly::<UpdateFromGitRequest> as Check),
            ),
        ),
    ])
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_spec_example_of_a_supported_operation_deserializes() {
    let root = shared().join("fabric-rest-api-specs");
    let table = supported();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut bodies_checked = 0;
    for spec in ["platform", "lakehouse", "notebook"] {
        let dir = root.join(spec);
        let swagger = load(&dir.join("swagger.json"));
        let paths = swagger["paths"].as_object().expect("paths");
        for ops in paths.values() {
            for op in ops.as_object().expect("path item").values() {
                let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                    continue;
                };
                let Some((response_check, request_check)) = table.get(id) else {
                    continue;
                };
                let body_param = op["parameters"].as_array().and_then(|ps| {
                    ps.iter()
                        .find(|p| p["in"] == "body")
                        .and_then(|p| p["name"].as_str())
                });
                let examples = op["x-ms-examples"].as_object().cloned().unwrap_or_default();
                for (name, ex) in examples {
                    let file = dir.join(ex["$ref"].as_str().expect("$ref"));
                    let example = load(&file);
                    *seen.entry(id.to_owned()).or_insert(0) += 1;
                    let mut run = |what: &str, check: &Check, body: &Value| {
                        bodies_checked += 1;
                        if let Err(e) = check(body) {
                            failures.push(format!("{id} / {name} / {what}: {e}"));
                        }
                    };
                    if let (Some(check), Some(param)) = (request_check, body_param)
                        && let Some(body) = example["parameters"].get(param)
                    {
                        run("request", check, body);
                    }
                    for (code, resp) in example["responses"].as_object().expect("responses") {
                        let Some(body) = resp.get("body").filter(|b| !b.is_null()) else {
                            continue;
                        };
                        if code.starts_with('2') {
                            if let Some(check) = response_check {
                                run(code, check, body);
                            }
                        } else {
                            run(code, &(reads_losslessly::<ErrorResponse> as Check), body);
                        }
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let unseen: Vec<_> = table.keys().filter(|k| !seen.contains_key(**k)).collect();
    assert!(
        unseen.is_empty(),
        "operations without examples in the spec: {unseen:?}"
    );
    assert!(bodies_checked >= 95, "only {bodies_checked} bodies checked");
}
