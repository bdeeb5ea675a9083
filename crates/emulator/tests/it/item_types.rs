//! Every item type fabric-cicd publishes, on its typed endpoints: CRUD, definitions and
//! their errors, typed properties — each response checked against the spec's schemas, and
//! every example request of those operations accepted.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::{Env, Resp};
use crate::conformance::{conforms, conforms_body, op_id, ops_where};

/// (type, typed segment), eventhouse before its KQL database.
pub(crate) const TYPES: &[(&str, &str)] = &[
    ("VariableLibrary", "variableLibraries"),
    ("Warehouse", "warehouses"),
    ("MirroredDatabase", "mirroredDatabases"),
    ("Lakehouse", "lakehouses"),
    ("SQLDatabase", "sqlDatabases"),
    ("CosmosDBDatabase", "cosmosDbDatabases"),
    ("Environment", "environments"),
    ("UserDataFunction", "userDataFunctions"),
    ("Eventhouse", "eventhouses"),
    ("SparkJobDefinition", "sparkJobDefinitions"),
    ("Notebook", "notebooks"),
    ("SemanticModel", "semanticModels"),
    ("Report", "reports"),
    ("PaginatedReport", "paginatedReports"),
    ("CopyJob", "copyJobs"),
    ("DataBuildToolJob", "dataBuildToolJobs"),
    ("KQLDatabase", "kqlDatabases"),
    ("KQLQueryset", "kqlQuerysets"),
    ("Dataflow", "dataflows"),
    ("DataPipeline", "dataPipelines"),
    ("Reflex", "reflexes"),
    ("Eventstream", "eventstreams"),
    ("KQLDashboard", "kqlDashboards"),
    ("GraphQLApi", "graphQLApis"),
    ("ApacheAirflowJob", "apacheAirflowJobs"),
    ("MountedDataFactory", "mountedDataFactories"),
    ("Ontology", "ontologies"),
    ("DataAgent", "dataAgents"),
    ("MLExperiment", "mlExperiments"),
    ("Map", "maps"),
    ("GraphModel", "graphModels"),
];

/// Types without a public definition.
const SHELLS: &[&str] = &["Warehouse", "MLExperiment"];

pub(crate) fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A part's payload decoded as JSON.
pub(crate) fn decode(payload: &Value) -> Value {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.as_str().expect("payload"))
        .expect("base64");
    serde_json::from_slice(&bytes).expect("JSON")
}

pub(crate) fn part(path: &str, content: &str) -> Value {
    json!({"path": path, "payload": b64(content), "payloadType": "InlineBase64"})
}

/// A definition with the parts the type requires (`eventhouse`: a KQL database's parent).
pub(crate) fn minimal_definition(t: &str, eventhouse: &str) -> Value {
    let parts = match t {
        "Notebook" => vec![part("notebook-content.py", "# Fabric notebook source\n")],
        "Report" => vec![part("definition.pbir", "{\"version\":\"1.0\"}")],
        "SemanticModel" => vec![part("definition.pbism", "{\"version\":\"4.0\"}")],
        "VariableLibrary" => vec![part("variables.json", "{\"variables\":[]}")],
        "SparkJobDefinition" => vec![part("SparkJobDefinitionV1.json", "{}")],
        "KQLDatabase" => vec![part(
            "DatabaseProperties.json",
            &json!({"databaseType": "ReadWrite", "parentEventhouseItemId": eventhouse}).to_string(),
        )],
        "Eventhouse" => vec![part("EventhouseProperties.json", "{}")],
        "MirroredDatabase" => vec![part("mirroring.json", "{}")],
        "Dataflow" => vec![
            part("queryMetadata.json", "{}"),
            part("mashup.pq", "section Section1;"),
        ],
        "DataPipeline" => vec![part("pipeline-content.json", "{}")],
        "PaginatedReport" => vec![part("Sales.rdl", "<Report/>")],
        _ => vec![part("definition.json", "{}")],
    };
    json!({"parts": parts})
}

fn id_of(r: &Resp) -> String {
    r.body["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn every_typed_endpoint_conforms_to_its_swagger() {
    let env = Env::start().await;
    let ws = env.workspace("Typed", true).await;
    let mut eventhouse = String::new();
    for (n, (t, seg)) in TYPES.iter().enumerate() {
        let coll = format!("/v1/workspaces/{ws}/{seg}");
        let tpl = format!("/workspaces/{{}}/{seg}");
        let mut body = json!({"displayName": format!("T_{n}"), "description": "d"});
        if *t == "KQLDatabase" {
            body["creationPayload"] =
                json!({"databaseType": "ReadWrite", "parentEventhouseItemId": eventhouse});
        }
        if *t == "SemanticModel" {
            body["definition"] = minimal_definition(t, "");
        }
        let created = env.post(&coll, body).await.expect(201);
        conforms(&op_id("POST", &tpl), &created);
        let id = id_of(&created);
        if *t == "Eventhouse" {
            eventhouse = id.clone();
        }
        assert_eq!(created.body["type"], *t);
        conforms(&op_id("GET", &tpl), &env.get(&coll).await.expect(200));
        let one = format!("{coll}/{id}");
        let got = env.get(&one).await.expect(200);
        conforms(&op_id("GET", &format!("{tpl}/{{}}")), &got);
        conforms(
            &op_id("PATCH", &format!("{tpl}/{{}}")),
            &env.patch(&one, json!({"description": "e"}))
                .await
                .expect(200),
        );
        if SHELLS.contains(t) {
            // No definition: the service refuses both directions.
            let r = env
                .post_empty(&format!("{one}/getDefinition"))
                .await
                .expect(400);
            assert_eq!(r.error_code(), "OperationNotSupportedForItem", "{t}");
            let r = env
                .post(
                    &format!("/v1/workspaces/{ws}/items/{id}/updateDefinition"),
                    json!({"definition": minimal_definition("Other", "")}),
                )
                .await
                .expect(400);
            assert_eq!(r.error_code(), "OperationNotSupportedForItem", "{t}");
        } else {
            let def = minimal_definition(t, &eventhouse);
            let upd = env
                .post(
                    &format!("{one}/updateDefinition"),
                    json!({"definition": def}),
                )
                .await;
            conforms(
                &op_id("POST", &format!("{tpl}/{{}}/updateDefinition")),
                &upd,
            );
            env.finish(upd).await;
            let (_, got) = env
                .finish(env.post_empty(&format!("{one}/getDefinition")).await)
                .await;
            let got = got.unwrap();
            conforms_body(
                &op_id("POST", &format!("{tpl}/{{}}/getDefinition")),
                200,
                &got,
            );
            // The stored parts come back, then `.platform`.
            let parts = got["definition"]["parts"].as_array().unwrap();
            assert_eq!(
                &parts[..parts.len() - 1],
                def["parts"].as_array().unwrap().as_slice(),
                "{t}"
            );
            assert_eq!(parts.last().unwrap()["path"], ".platform");
        }
        let r = env.delete(&one).await.expect(200);
        conforms(&op_id("DELETE", &format!("{tpl}/{{}}")), &r);
        if *t == "Eventhouse" {
            // Recreate it: the KQL database below needs a live parent.
            let again = env
                .post(&coll, json!({"displayName": "EH_parent"}))
                .await
                .expect(201);
            eventhouse = id_of(&again);
        }
    }
}

/// One live item of every type, plus what the examples of the new operations refer to.
struct Fixture {
    ws: String,
    /// Item ids by type.
    items: std::collections::HashMap<&'static str, String>,
    folder: String,
    connection: String,
}

async fn fixture(env: &Env) -> Fixture {
    let ws = env.workspace("Examples", true).await;
    let mut items = std::collections::HashMap::new();
    for (n, (t, seg)) in TYPES.iter().enumerate() {
        let mut body = json!({"displayName": format!("fixture_{n}")});
        if *t == "KQLDatabase" {
            body["creationPayload"] =
                json!({"databaseType": "ReadWrite", "parentEventhouseItemId": items["Eventhouse"]});
        }
        if *t == "SemanticModel" {
            body["definition"] = minimal_definition(t, "");
        }
        let r = env
            .post(&format!("/v1/workspaces/{ws}/{seg}"), body)
            .await
            .expect(201);
        items.insert(*t, id_of(&r));
    }
    // A variable library whose value sets the examples name.
    let vl = &items["VariableLibrary"];
    let sets = ["SomeValueSetName", "Test", "Prod"];
    let mut parts = vec![part("variables.json", "{\"variables\":[]}")];
    for s in sets {
        parts.push(part(
            &format!("valueSets/{s}.json"),
            &json!({"name": s}).to_string(),
        ));
    }
    env.finish(
        env.post(
            &format!("/v1/workspaces/{ws}/variableLibraries/{vl}/updateDefinition"),
            json!({"definition": {"parts": parts}}),
        )
        .await,
    )
    .await;
    let folder = id_of(
        &env.post(
            &format!("/v1/workspaces/{ws}/folders"),
            json!({"displayName": "fixture"}),
        )
        .await
        .expect(201),
    );
    let connection = id_of(&env.post("/v1/connections", json!({"connectivityType": "ShareableCloud", "displayName": "fixture sql", "connectionDetails": {"type": "SQL", "creationMethod": "SQL", "parameters": [{"dataType": "Text", "name": "server", "value": "contoso.database.windows.net"}, {"dataType": "Text", "name": "database", "value": "sales"}]}})).await.expect(201));
    Fixture {
        ws,
        items,
        folder,
        connection,
    }
}

/// Maps the example tenant's ids onto the fixture's.
fn adapt(v: &mut Value, fx: &Fixture, within_binding: bool) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match (k.as_str(), x.is_string()) {
                    ("workspaceId", true) => *x = json!(fx.ws),
                    ("folderId", true) => *x = json!(fx.folder),
                    ("parentEventhouseItemId", true) => *x = json!(fx.items["Eventhouse"]),
                    ("itemId", true) => *x = json!(fx.items["Lakehouse"]),
                    ("id", true) if within_binding => *x = json!(fx.connection),
                    ("logicalId", _) => {}
                    _ => adapt(x, fx, within_binding || k == "connectionBinding"),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| adapt(x, fx, within_binding)),
        _ => {}
    }
}

/// The example's own definition parts may carry the example tenant's ids (a KQL database's
/// parent): those are rewritten to the fixture's too.
fn adapt_parts(v: &mut Value, fx: &Fixture) {
    let Some(parts) = v
        .pointer_mut("/definition/parts")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for p in parts {
        let decoded = p["payload"]
            .as_str()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        if let Some(mut d) = decoded
            && d.get("parentEventhouseItemId").is_some()
        {
            adapt(&mut d, fx, false);
            p["payload"] = json!(b64(&d.to_string()));
        }
    }
}

/// Every x-ms-examples request of the typed create/update/updateDefinition operations of the
/// 31 types, and of the spark pool, environment publish, connection, bindConnection,
/// shortcut and bulk import operations, is accepted and answered as the spec declares.
#[tokio::test]
async fn typed_spec_example_request_bodies_are_accepted() {
    let segments: Vec<&str> = TYPES.iter().map(|(_, s)| *s).collect();
    let extra = [
        "CustomPools_CreateWorkspaceCustomPool",
        "Items_PublishEnvironment",
        "Connections_CreateConnection",
        "Items_BindSemanticModelConnection",
        "OneLakeShortcuts_CreateShortcut",
        "Items_Bulk_Import_Item_Definitions_(beta)",
    ];
    let ops = ops_where(|m, t| {
        let segs: Vec<&str> = t.split('/').collect();
        let typed = matches!(
            segs.as_slice(),
            ["", "workspaces", "{}", seg, ..] if segments.contains(seg)
        );
        let shape = matches!(
            segs.as_slice(),
            [_, _, _, _] | [_, _, _, _, "{}"] | [_, _, _, _, "{}", "updateDefinition"]
        );
        typed && shape && (m == "POST" || m == "PATCH")
    });
    let mut ops: Vec<_> = ops.into_iter().collect();
    ops.extend(
        ops_where(|_, _| true)
            .into_iter()
            .filter(|o| extra.contains(&o.id.as_str())),
    );
    let mut tried = 0;
    let mut covered = std::collections::BTreeSet::new();
    for op in &ops {
        for (name, example) in &op.examples {
            let env = Env::start().await;
            let fx = fixture(&env).await;
            let params = &example["parameters"];
            let mut body = op
                .body_param
                .as_ref()
                .map(|b| params[b].clone())
                .unwrap_or(Value::Null);
            adapt(&mut body, &fx, false);
            adapt_parts(&mut body, &fx);
            // Path: the workspace, then the item of the segment's type.
            let seg_type = |seg: &str| TYPES.iter().find(|(_, s)| *s == seg).map(|(t, _)| *t);
            let mut url = String::from("/v1");
            let segs: Vec<&str> = op.path.split('?').next().unwrap().split('/').collect();
            for (n, s) in segs.iter().enumerate().skip(1) {
                url.push('/');
                url.push_str(match *s {
                    "{workspaceId}" => &fx.ws,
                    "{itemId}" => &fx.items["Lakehouse"],
                    s if s.starts_with('{') => {
                        let t = seg_type(segs[n - 1]).expect("typed segment");
                        &fx.items[t]
                    }
                    s => s,
                });
            }
            let query: Vec<String> = ["updateMetadata", "shortcutConflictPolicy", "beta"]
                .iter()
                .filter_map(|k| {
                    params
                        .get(*k)
                        .map(|v| format!("{k}={}", v.to_string().trim_matches('"')))
                })
                .collect();
            if !query.is_empty() {
                url = format!("{url}?{}", query.join("&"));
            }
            let r = env
                .send(
                    op.method.clone(),
                    &url,
                    (!body.is_null()).then_some(&body),
                    Some(&env.token),
                )
                .await;
            assert!(
                (200..300).contains(&r.status),
                "{} example '{name}' was refused: {} {}\nbody sent: {body}",
                op.id,
                r.status,
                r.raw
            );
            conforms(&op.id, &r);
            covered.insert(op.id.clone());
            tried += 1;
        }
    }
    // Every type's create and updateDefinition (where it has one) has at least one example.
    assert!(tried >= 90, "only {tried} examples tried");
    for id in extra {
        assert!(covered.contains(id), "no example of {id} ran");
    }
}

/// The spec's semantic model create "requires a definition": without one it is refused, on
/// the generic and the typed endpoint, and nothing is created.
#[tokio::test]
async fn a_semantic_model_without_a_definition_is_refused() {
    let env = Env::start().await;
    let ws = env.workspace("Models", true).await;
    for (url, body) in [
        (
            format!("/v1/workspaces/{ws}/items"),
            json!({"displayName": "Sales", "type": "SemanticModel"}),
        ),
        (
            format!("/v1/workspaces/{ws}/semanticModels"),
            json!({"displayName": "Sales"}),
        ),
    ] {
        let r = env.post(&url, body.clone()).await.expect(400);
        assert_eq!(r.error_code(), "InvalidInput");
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("This API requires a definition"),
            "{}",
            r.raw
        );
        conforms(&op_id("POST", "/workspaces/{}/semanticModels"), &r);
    }
    assert_eq!(
        env.get(&format!("/v1/workspaces/{ws}/items")).await.body["value"],
        json!([])
    );
    let mut body = json!({"displayName": "Sales", "type": "SemanticModel"});
    body["definition"] = minimal_definition("SemanticModel", "");
    env.post(&format!("/v1/workspaces/{ws}/items"), body)
        .await
        .expect(201);
}
