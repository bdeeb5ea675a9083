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
