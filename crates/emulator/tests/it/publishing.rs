//! What a publishing tool (fabric-cicd, fabrik) relies on beyond CRUD: definition rules,
//! creation payloads, typed properties that move with the clock, spark pools, environment
//! publish, connections and bindings, shortcuts — and that all of it shows in the admin
//! state and survives the state file.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::Env;
use crate::conformance::{conforms, op_id};
use crate::item_types::{minimal_definition, part};

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

fn platform(t: &str, name: &str, description: &str) -> Value {
    part(
        ".platform",
        &json!({"metadata": {"type": t, "displayName": name, "description": description}, "config": {"version": "2.0", "logicalId": "3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c99"}}).to_string(),
    )
}

#[tokio::test]
async fn definitions_follow_each_types_rules() {
    let env = Env::start().await;
    let ws = env.workspace("Defs", true).await;
    let items = format!("/v1/workspaces/{ws}/items");
    // A required part missing: refused on create and on update.
    let r = env
        .post(&items, json!({"displayName": "P", "type": "DataPipeline", "definition": {"parts": [part("other.json", "{}")]}}))
        .await
        .expect(400);
    assert_eq!(r.error_code(), "InvalidInput");
    assert_eq!(
        r.body["moreDetails"][0]["errorCode"],
        "MissingDefinitionPart"
    );
    assert!(r.raw.contains("pipeline-content.json"), "{}", r.raw);
    conforms("Items_CreateItem", &r);
    // A definition for a type without one.
    let r = env
        .post(&items, json!({"displayName": "W", "type": "Warehouse", "definition": minimal_definition("Other", "")}))
        .await
        .expect(400);
    assert_eq!(r.error_code(), "OperationNotSupportedForItem");
    // An unknown format for a type that has formats.
    let r = env
        .post(&items, json!({"displayName": "S", "type": "SparkJobDefinition", "definition": {"format": "SparkJobDefinitionV9", "parts": [part("SparkJobDefinitionV1.json", "{}")]}}))
        .await
        .expect(400);
    assert_eq!(
        r.body["moreDetails"][0]["errorCode"],
        "InvalidDefinitionFormat"
    );

    // Created with a definition and `.platform`: the logical id is kept, the parts stored.
    let sjd = env
        .post(&items, json!({"displayName": "S", "type": "SparkJobDefinition", "definition": {"format": "SparkJobDefinitionV2", "parts": [part("SparkJobDefinitionV1.json", "{\"a\":1}"), part("Main/main.py", "print(1)"), platform("SparkJobDefinition", "S", "")]}}))
        .await
        .expect(201);
    let sid = id(&sjd.body);
    let (_, got) = env
        .finish(
            env.post_empty(&format!(
                "{items}/{sid}/getDefinition?format=SparkJobDefinitionV2"
            ))
            .await,
        )
        .await;
    let got = got.unwrap();
    assert_eq!(got["definition"]["format"], "SparkJobDefinitionV2");
    let parts = got["definition"]["parts"].as_array().unwrap();
    assert_eq!(parts[1], part("Main/main.py", "print(1)"));
    let plat = crate::item_types::decode(&parts[2]["payload"]);
    assert_eq!(
        plat["config"]["logicalId"],
        "3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c99"
    );
    let r = env
        .post_empty(&format!("{items}/{sid}/getDefinition?format=ipynb"))
        .await
        .expect(400);
    assert_eq!(
        r.body["moreDetails"][0]["errorCode"],
        "InvalidDefinitionFormat"
    );

    // updateDefinition: without updateMetadata the name stays; with it `.platform` renames.
    let nb = env
        .post(
            &format!("/v1/workspaces/{ws}/notebooks"),
            json!({"displayName": "Nb"}),
        )
        .await
        .expect(201);
    let nid = id(&nb.body);
    let def = |name: &str| json!({"definition": {"format": "ipynb", "parts": [part("notebook-content.ipynb", "{\"cells\":[]}"), platform("Notebook", name, "from platform")]}});
    env.finish(
        env.post(&format!("{items}/{nid}/updateDefinition"), def("Renamed"))
            .await,
    )
    .await;
    assert_eq!(
        env.get(&format!("{items}/{nid}")).await.body["displayName"],
        "Nb"
    );
    env.finish(
        env.post(
            &format!("{items}/{nid}/updateDefinition?updateMetadata=True"),
            def("Renamed"),
        )
        .await,
    )
    .await;
    let after = env.get(&format!("{items}/{nid}")).await.body;
    assert_eq!(after["displayName"], "Renamed");
    assert_eq!(after["description"], "from platform");
    let (_, got) = env
        .finish(
            env.post_empty(&format!("{items}/{nid}/getDefinition?format=ipynb"))
                .await,
        )
        .await;
    assert_eq!(
        got.unwrap()["definition"]["parts"][0],
        part("notebook-content.ipynb", "{\"cells\":[]}")
    );
}

#[tokio::test]
async fn typed_properties_follow_creation_payloads_and_the_clock() {
    let env = Env::with(|c| c.lro_delay = Duration::from_secs(60)).await;
    let ws = env.workspace("Props", true).await;
    let base = format!("/v1/workspaces/{ws}");
    // Lakehouse and mirrored database: the SQL endpoint provisions, then succeeds.
    let lh = env
        .post(&format!("{base}/items"), json!({"displayName": "Silver", "type": "Lakehouse", "creationPayload": {"enableSchemas": true}}))
        .await
        .expect(201);
    let md = env
        .post(&format!("{base}/mirroredDatabases"), json!({"displayName": "Mirror", "definition": {"parts": [part("mirroring.json", "{}")]}}))
        .await
        .expect(201);
    let lh_url = format!("{base}/lakehouses/{}", id(&lh.body));
    let md_url = format!("{base}/mirroredDatabases/{}", id(&md.body));
    for url in [&lh_url, &md_url] {
        let p = env.get(url).await.expect(200).body["properties"].clone();
        assert_eq!(
            p["sqlEndpointProperties"]["provisioningStatus"],
            "InProgress"
        );
        assert_eq!(p["sqlEndpointProperties"]["id"], Value::Null);
    }
    assert_eq!(
        env.get(&lh_url).await.body["properties"]["defaultSchema"],
        "dbo"
    );
    env.clock.advance(Duration::from_secs(61));
    for url in [&lh_url, &md_url] {
        let p = env.get(url).await.expect(200).body["properties"].clone();
        assert_eq!(p["sqlEndpointProperties"]["provisioningStatus"], "Success");
        assert!(p["sqlEndpointProperties"]["id"].is_string());
        assert!(
            p["sqlEndpointProperties"]["connectionString"]
                .as_str()
                .unwrap()
                .ends_with(".datawarehouse.fabric.microsoft.com")
        );
    }
    // Warehouse: the collation of the creation payload, in either spelling.
    let wh = env
        .post(&format!("{base}/items"), json!({"displayName": "Gold", "type": "Warehouse", "creationPayload": {"defaultCollation": "Latin1_General_100_CI_AS_KS_WS_SC_UTF8"}}))
        .await
        .expect(201);
    let p = env
        .get(&format!("{base}/warehouses/{}", id(&wh.body)))
        .await
        .body["properties"]
        .clone();
    assert_eq!(p["collationType"], "Latin1_General_100_CI_AS_KS_WS_SC_UTF8");
    assert!(
        p["connectionString"]
            .as_str()
            .unwrap()
            .contains("datawarehouse")
    );
    let r = env
        .post(
            &format!("{base}/warehouses"),
            json!({"displayName": "Bad", "creationPayload": {"collationType": "Klingon"}}),
        )
        .await
        .expect(400);
    assert_eq!(
        r.body["moreDetails"][0]["errorCode"],
        "InvalidCollationType"
    );
    // SQL database.
    let db = env
        .post(
            &format!("{base}/sqlDatabases"),
            json!({"displayName": "Ops"}),
        )
        .await
        .expect(201);
    let p = env
        .get(&format!("{base}/sqlDatabases/{}", id(&db.body)))
        .await
        .body["properties"]
        .clone();
    assert!(
        p["connectionString"]
            .as_str()
            .unwrap()
            .contains(p["databaseName"].as_str().unwrap())
    );
    // Eventhouse and its KQL database: one cluster, the parent lists its child.
    let eh = env
        .post(&format!("{base}/eventhouses"), json!({"displayName": "EH"}))
        .await
        .expect(201);
    let ehid = id(&eh.body);
    let kql = env
        .post(&format!("{base}/items"), json!({"displayName": "DB", "type": "KQLDatabase", "definition": minimal_definition("KQLDatabase", &ehid)}))
        .await
        .expect(201);
    let kid = id(&kql.body);
    let ehp = env.get(&format!("{base}/eventhouses/{ehid}")).await.body["properties"].clone();
    let kp = env.get(&format!("{base}/kqlDatabases/{kid}")).await.body["properties"].clone();
    assert!(
        ehp["queryServiceUri"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    assert_eq!(kp["queryServiceUri"], ehp["queryServiceUri"]);
    assert_eq!(kp["parentEventhouseItemId"], ehid);
    assert_eq!(kp["databaseType"], "ReadWrite");
    assert_eq!(ehp["databasesItemIds"], json!([kid]));
    let r = env
        .post(&format!("{base}/kqlDatabases"), json!({"displayName": "Orphan", "creationPayload": {"databaseType": "ReadWrite", "parentEventhouseItemId": lh.body["id"]}}))
        .await
        .expect(400);
    assert_eq!(
        r.body["moreDetails"][0]["errorCode"],
        "InvalidParentEventhouseItemId"
    );
    // Deleting the eventhouse takes the database with it.
    env.delete(&format!("{base}/eventhouses/{ehid}"))
        .await
        .expect(200);
    env.get(&format!("{base}/kqlDatabases/{kid}"))
        .await
        .expect(404);

    // Variable library: PATCH (as fabric-cicd spells the path) then GET.
    let mut parts = vec![part("variables.json", "{\"variables\":[]}")];
    parts.push(part("valueSets/test.json", "{\"name\":\"test\"}"));
    let vl = env
        .post(&format!("{base}/items"), json!({"displayName": "Config", "type": "VariableLibrary", "definition": {"parts": parts}}))
        .await
        .expect(201);
    let vurl = format!("{base}/variableLibraries/{}", id(&vl.body));
    assert_eq!(
        env.get(&vurl).await.body["properties"]["activeValueSetName"],
        "Default value set"
    );
    let r = env
        .patch(
            &format!("{base}/VariableLibraries/{}", id(&vl.body)),
            json!({"properties": {"activeValueSetName": "test"}}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["properties"]["activeValueSetName"], "test");
    assert_eq!(
        env.get(&vurl).await.body["properties"]["activeValueSetName"],
        "test"
    );
    let r = env
        .patch(&vurl, json!({"properties": {"activeValueSetName": "prod"}}))
        .await
        .expect(400);
    assert_eq!(
        r.body["moreDetails"][0]["errorCode"],
        "InvalidActiveValueSetName"
    );
}

/// `GET/PATCH …/spark/settings` answer the spec's shape; a PATCH takes the spec example's
/// body and changes only the fields it gives; `defaultPool` resolves to a pool of the
/// workspace by name, and a pool it does not see is refused.
#[tokio::test]
async fn spark_settings_read_and_update_as_the_spec_says() {
    let env = Env::start().await;
    let ws = env.workspace("SparkSettings", true).await;
    let url = format!("/v1/workspaces/{ws}/spark/settings");
    let first = env.get(&url).await.expect(200);
    conforms("WorkspaceSettings_GetSparkSettings", &first);
    let file = crate::conformance::shared_dir()
        .join("fabric-rest-api-specs/spark/examples/UpdateWorkspaceSparkSettings.json");
    let example: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let body = example["parameters"]["updateWorkspaceSettingsRequest"].clone();
    let r = env.patch(&url, body.clone()).await.expect(200);
    conforms("WorkspaceSettings_UpdateSparkSettings", &r);
    assert_eq!(r.body["pool"]["starterPool"], body["pool"]["starterPool"]);
    assert_eq!(r.body["automaticLog"]["enabled"], false);
    assert_eq!(env.get(&url).await.expect(200).body, r.body);
    // Only the fields given change.
    let r = env
        .patch(&url, json!({"job": {"sessionTimeoutInMinutes": 45}}))
        .await
        .expect(200);
    assert_eq!(r.body["job"]["sessionTimeoutInMinutes"], 45);
    assert_eq!(r.body["automaticLog"]["enabled"], false);
    // The default pool by name, with the pool's id.
    let pools = format!("/v1/workspaces/{ws}/spark/pools");
    let pool = json!({"name": "etl", "nodeFamily": "MemoryOptimized", "nodeSize": "Small", "autoScale": {"enabled": true, "minNodeCount": 1, "maxNodeCount": 2}, "dynamicExecutorAllocation": {"enabled": true, "minExecutors": 1, "maxExecutors": 1}});
    let pid = id(&env.post(&pools, pool).await.expect(201).body);
    let r = env
        .patch(
            &url,
            json!({"pool": {"defaultPool": {"name": "ETL", "type": "Workspace"}}}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["pool"]["defaultPool"]["id"], json!(pid));
    for bad in [
        json!({"pool": {"defaultPool": {"name": "nowhere", "type": "Workspace"}}}),
        json!({"job": {"sessionTimeoutInMinutes": "long"}}),
        json!({"job": {"unknown": 1}}),
        json!({"pool": {"starterPool": {"maxNodeCount": 0}}}),
    ] {
        let r = env.patch(&url, bad).await.expect(400);
        conforms("WorkspaceSettings_UpdateSparkSettings", &r);
    }
}

/// `PATCH …/spark/pools/{id}` takes the spec example's body, answers with the pool, keeps
/// names unique and valid as `UpdateCustomPoolRequest` says, and checks the merged result.
#[tokio::test]
async fn spark_pools_update_as_the_spec_says() {
    let env = Env::start().await;
    let ws = env.workspace("SparkUpdate", true).await;
    let pools = format!("/v1/workspaces/{ws}/spark/pools");
    let body = |name: &str| json!({"name": name, "nodeFamily": "MemoryOptimized", "nodeSize": "Medium", "autoScale": {"enabled": true, "minNodeCount": 1, "maxNodeCount": 3}, "dynamicExecutorAllocation": {"enabled": true, "minExecutors": 1, "maxExecutors": 2}});
    let pid = id(&env.post(&pools, body("etl pool")).await.expect(201).body);
    env.post(&pools, body("other")).await.expect(201);
    let file = crate::conformance::shared_dir()
        .join("fabric-rest-api-specs/spark/examples/UpdateCustomPool.json");
    let example: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let url = format!("{pools}/{pid}");
    let r = env
        .patch(
            &url,
            example["parameters"]["updateCustomPoolRequest"].clone(),
        )
        .await
        .expect(200);
    conforms("CustomPools_UpdateWorkspaceCustomPool", &r);
    let mut expected = example["responses"]["200"]["body"].clone();
    expected["id"] = json!(pid);
    assert_eq!(r.body, expected);
    // A partial update keeps the rest; the result must still be a valid pool.
    let r = env
        .patch(&url, json!({"autoScale": {"maxNodeCount": 5}}))
        .await
        .expect(200);
    assert_eq!(
        r.body["autoScale"],
        json!({"enabled": true, "minNodeCount": 1, "maxNodeCount": 5})
    );
    assert_eq!(r.body["nodeSize"], "Small");
    env.patch(&url, json!({"autoScale": {"minNodeCount": 9}}))
        .await
        .expect(400);
    env.patch(&url, json!({"nodeSize": "Huge"}))
        .await
        .expect(400);
    let taken = env.patch(&url, json!({"name": "OTHER"})).await.expect(409);
    assert_eq!(taken.error_code(), "PoolNameAlreadyExists");
    for bad in ["Starter Pool", "no/slash", ""] {
        let r = env.patch(&url, json!({"name": bad})).await.expect(400);
        conforms("CustomPools_UpdateWorkspaceCustomPool", &r);
    }
    assert_eq!(
        env.patch(&url, json!({"name": "renamed pool"}))
            .await
            .expect(200)
            .body["name"],
        "renamed pool"
    );
    let missing = env
        .patch(
            &format!("{pools}/{}", uuid_like()),
            json!({"nodeSize": "Small"}),
        )
        .await
        .expect(404);
    assert_eq!(missing.error_code(), "PoolNotFound");
}

fn uuid_like() -> &'static str {
    "00000000-0000-4000-8000-000000000123"
}

#[tokio::test]
async fn spark_pools_list_workspace_and_capacity_pools() {
    let env = Env::with(|c| {
        c.capacity_pools = vec!["ProdCapacityPool".into()];
        c.page_size = 1;
    })
    .await;
    let ws = env.workspace("Spark", true).await;
    let pools = format!("/v1/workspaces/{ws}/spark/pools");
    let body = json!({"name": "SmallPool", "nodeFamily": "MemoryOptimized", "nodeSize": "Small", "autoScale": {"enabled": true, "minNodeCount": 1, "maxNodeCount": 3}, "dynamicExecutorAllocation": {"enabled": false, "minExecutors": 1, "maxExecutors": 2}});
    let created = env.post(&pools, body.clone()).await.expect(201);
    conforms("CustomPools_CreateWorkspaceCustomPool", &created);
    assert_eq!(created.body["type"], "Workspace");
    assert_eq!(
        env.post(&pools, body).await.expect(409).error_code(),
        "PoolNameAlreadyExists"
    );
    let bad = json!({"name": "x", "nodeFamily": "MemoryOptimized", "nodeSize": "Small", "autoScale": {"enabled": true, "minNodeCount": 3, "maxNodeCount": 1}, "dynamicExecutorAllocation": {"enabled": false, "minExecutors": 1, "maxExecutors": 2}});
    env.post(&pools, bad).await.expect(400);
    // Paged one at a time: the workspace pool, then the capacity's.
    let first = env.get(&pools).await.expect(200);
    conforms("CustomPools_ListWorkspaceCustomPools", &first);
    assert_eq!(first.body["value"][0]["name"], "SmallPool");
    let next = env
        .get(first.body["continuationUri"].as_str().unwrap())
        .await
        .expect(200);
    assert_eq!(next.body["value"][0]["name"], "ProdCapacityPool");
    assert_eq!(next.body["value"][0]["type"], "Capacity");
    let pid = id(&created.body);
    conforms(
        "CustomPools_GetWorkspaceCustomPool",
        &env.get(&format!("{pools}/{pid}")).await.expect(200),
    );
    conforms(
        "CustomPools_DeleteWorkspaceCustomPool",
        &env.delete(&format!("{pools}/{pid}")).await.expect(200),
    );
    let gone = env.delete(&format!("{pools}/{pid}")).await.expect(404);
    conforms("CustomPools_DeleteWorkspaceCustomPool", &gone);
    // A capacity pool is seen but not deletable from the workspace.
    let cap_pool = id(&next.body["value"][0]);
    env.get(&format!("{pools}/{cap_pool}")).await.expect(200);
    env.delete(&format!("{pools}/{cap_pool}")).await.expect(404);
    // A workspace without capacity sees only its own pools.
    let bare = env.workspace("NoCap", false).await;
    let r = env
        .get(&format!("/v1/workspaces/{bare}/spark/pools"))
        .await
        .expect(200);
    assert_eq!(r.body["value"], json!([]));
}

#[tokio::test]
async fn spark_pool_options_give_new_workspaces_their_pools() {
    use fabrik_emulator::WorkspacePool;
    let env = Env::with(|c| {
        c.workspace_pools = ["test:SmallPool", "*:Shared", "TEST:smallpool"]
            .iter()
            .map(|s| s.parse::<WorkspacePool>().unwrap())
            .collect();
    })
    .await;
    let names = |ws: String| {
        let env = &env;
        async move {
            let r = env
                .get(&format!("/v1/workspaces/{ws}/spark/pools"))
                .await
                .expect(200);
            conforms("CustomPools_ListWorkspaceCustomPools", &r);
            r.body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    format!(
                        "{}:{}",
                        p["type"].as_str().unwrap(),
                        p["name"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let test = env.workspace("Test", true).await;
    let mut got = names(test.clone()).await;
    got.sort();
    // Names match without case, and a pool named twice is made once.
    assert_eq!(got, ["Workspace:Shared", "Workspace:SmallPool"]);
    assert_eq!(
        names(env.workspace("prod", false).await).await,
        ["Workspace:Shared"]
    );
    // They are ordinary workspace pools: an environment may name one, and it can be deleted.
    let listed = env.get(&format!("/v1/workspaces/{test}/spark/pools")).await;
    let small = listed.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "SmallPool")
        .map(id)
        .unwrap();
    let compute = format!("instance_pool_id: {small}\n");
    env.post(
        &format!("/v1/workspaces/{test}/environments"),
        json!({"displayName": "Spark", "definition": {"parts": [part("Setting/Sparkcompute.yml", &compute)]}}),
    )
    .await
    .expect(201);
    env.delete(&format!("/v1/workspaces/{test}/spark/pools/{small}"))
        .await
        .expect(200);
}

#[tokio::test]
async fn an_environment_may_name_only_its_own_workspaces_or_capacitys_pools() {
    let env = Env::with(|c| c.capacity_pools = vec!["ProdCapacityPool".into()]).await;
    let pool = json!({"name": "SmallPool", "nodeFamily": "MemoryOptimized", "nodeSize": "Small", "autoScale": {"enabled": true, "minNodeCount": 1, "maxNodeCount": 3}, "dynamicExecutorAllocation": {"enabled": false, "minExecutors": 1, "maxExecutors": 2}});
    let mut own = Vec::new();
    for name in ["A", "B"] {
        let ws = env.workspace(name, true).await;
        let p = env
            .post(&format!("/v1/workspaces/{ws}/spark/pools"), pool.clone())
            .await
            .expect(201);
        own.push((ws, id(&p.body)));
    }
    let (a, a_pool) = &own[0];
    let (b, b_pool) = &own[1];
    let listed = env.get(&format!("/v1/workspaces/{a}/spark/pools")).await;
    let cap_pool = id(&listed.body["value"][1]);
    let compute = |pool: &str| json!({"parts": [part("Setting/Sparkcompute.yml", &format!("driver_cores: 4\ninstance_pool_id: {pool}\n"))]});
    let envs = format!("/v1/workspaces/{a}/environments");
    // B's pool, at create and at updateDefinition: refused, naming the pool.
    let refused = env
        .post(
            &envs,
            json!({"displayName": "Spark", "definition": compute(b_pool)}),
        )
        .await
        .expect(400);
    assert_eq!(refused.error_code(), "EnvironmentSparkPoolNotFound");
    assert!(refused.raw.contains(b_pool.as_str()), "{}", refused.raw);
    // Its own pool, its capacity's pool, a quoted id, and none at all are accepted.
    let e = env
        .post(
            &envs,
            json!({"displayName": "Spark", "definition": compute(a_pool)}),
        )
        .await
        .expect(201);
    let update = format!("{envs}/{}/updateDefinition", id(&e.body));
    for ok in [cap_pool.clone(), format!("'{a_pool}'")] {
        let (op, _) = env
            .finish(env.post(&update, json!({"definition": compute(&ok)})).await)
            .await;
        assert_eq!(op["status"], "Succeeded", "{ok}");
    }
    env.post(&envs, json!({"displayName": "NoPool", "definition": {"parts": [part("Setting/Sparkcompute.yml", "driver_cores: 4\n")]}}))
        .await
        .expect(201);
    let r = env
        .post(
            &update,
            json!({"definition": compute(&format!("\"{b_pool}\""))}),
        )
        .await
        .expect(400);
    assert_eq!(r.error_code(), "EnvironmentSparkPoolNotFound");
    // B, on the same capacity, may use the capacity's pool.
    env.post(
        &format!("/v1/workspaces/{b}/environments"),
        json!({"displayName": "Spark", "definition": compute(&cap_pool)}),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn environment_publish_runs_then_succeeds_or_fails_under_a_fault() {
    let env = Env::with(|c| c.lro_delay = Duration::from_secs(30)).await;
    let ws = env.workspace("Envs", true).await;
    let base = format!("/v1/workspaces/{ws}/environments");
    let e = env
        .post(&base, json!({"displayName": "Spark", "definition": {"parts": [part("Setting/Sparkcompute.yml", "driver_cores: 4\n")]}}))
        .await
        .expect(201);
    let eid = id(&e.body);
    let state = |v: &Value| v["properties"]["publishDetails"]["state"].clone();
    let publish = format!("{base}/{eid}/staging/publish?beta=False");
    let r = env.post_empty(&publish).await.expect(202);
    conforms("Items_PublishEnvironment", &r);
    // fabric-cicd polls the list, with a trailing slash.
    let listed = env.get(&format!("{base}/")).await.expect(200);
    conforms(&op_id("GET", "/workspaces/{}/environments"), &listed);
    assert_eq!(state(&listed.body["value"][0]), "Running");
    let again = env.post_empty(&publish).await.expect(400);
    assert_eq!(
        again.error_code(),
        "EnvironmentAnotherOngoingPublishProcess"
    );
    env.clock.advance(Duration::from_secs(31));
    let got = env.get(&format!("{base}/{eid}")).await.expect(200);
    conforms("Items_GetEnvironment", &got);
    assert_eq!(state(&got.body), "Success");
    assert!(got.body["properties"]["publishDetails"]["endTime"].is_string());

    // An injected lro-fail: the publish is accepted, runs, and ends Failed.
    env.emu.set_faults(
        "POST /v1/workspaces/*/environments/*/staging/publish#1=lro-fail"
            .parse()
            .unwrap(),
    );
    let (op, _) = env.finish(env.post_empty(&publish).await).await;
    assert_eq!(op["status"], "Failed");
    assert_eq!(
        state(&env.get(&format!("{base}/{eid}")).await.body),
        "Failed"
    );
    let log = env.get("/_emulator/requests").await.body;
    assert!(
        log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["fault"] == "lro-fail")
    );
}

#[tokio::test]
async fn connections_and_semantic_model_bindings() {
    let env = Env::start().await;
    let ws = env.workspace("Conn", true).await;
    let body = |name: &str| json!({"connectivityType": "ShareableCloud", "displayName": name, "connectionDetails": {"type": "SQL", "creationMethod": "SQL", "parameters": [{"dataType": "Text", "name": "server", "value": "contoso.database.windows.net"}, {"dataType": "Text", "name": "database", "value": "sales"}]}, "credentialDetails": {"singleSignOnType": "None", "connectionEncryption": "NotEncrypted", "skipTestConnection": false, "credentials": {"credentialType": "Basic", "username": "u", "password": "secret"}}});
    let c = env.post("/v1/connections", body("Sales")).await.expect(201);
    conforms("Connections_CreateConnection", &c);
    assert_eq!(
        c.body["connectionDetails"]["path"],
        "contoso.database.windows.net;sales"
    );
    assert!(!c.raw.contains("secret"), "credentials are never echoed");
    assert_eq!(
        env.post("/v1/connections", body("sales"))
            .await
            .expect(409)
            .error_code(),
        "DuplicateConnectionName"
    );
    let cid = id(&c.body);
    conforms(
        "Connections_ListConnections",
        &env.get("/v1/connections").await.expect(200),
    );
    conforms(
        "Connections_GetConnection",
        &env.get(&format!("/v1/connections/{cid}")).await.expect(200),
    );
    let sm = env
        .post(
            &format!("/v1/workspaces/{ws}/semanticModels"),
            json!({"displayName": "Sales", "definition": minimal_definition("SemanticModel", "")}),
        )
        .await
        .expect(201);
    let sid = id(&sm.body);
    let conns = format!("/v1/workspaces/{ws}/items/{sid}/connections");
    assert_eq!(env.get(&conns).await.expect(200).body["value"], json!([]));
    let bind = format!("/v1/workspaces/{ws}/semanticModels/{sid}/bindConnection");
    let binding = |id: &str| json!({"connectionBinding": {"id": id, "connectivityType": "ShareableCloud", "connectionDetails": {"type": "SQL", "path": "contoso.database.windows.net;sales"}}});
    conforms(
        "Items_BindSemanticModelConnection",
        &env.post(&bind, binding(&cid)).await.expect(200),
    );
    let listed = env.get(&conns).await.expect(200);
    conforms("Items_ListItemConnections", &listed);
    assert_eq!(listed.body["value"][0]["id"], cid);
    let missing = env
        .post(&bind, binding("00000000-0000-4000-8000-000000000001"))
        .await
        .expect(404);
    assert_eq!(missing.error_code(), "ConnectionNotFound");
    conforms(
        "Connections_DeleteConnection",
        &env.delete(&format!("/v1/connections/{cid}"))
            .await
            .expect(200),
    );
    assert_eq!(env.get(&conns).await.body["value"], json!([]));
    env.get(&format!("/v1/connections/{cid}")).await.expect(404);
}

#[tokio::test]
async fn shortcuts_honour_the_conflict_policy_and_page() {
    let env = Env::with(|c| c.page_size = 2).await;
    let ws = env.workspace("Shortcuts", true).await;
    let items = format!("/v1/workspaces/{ws}/items");
    let bronze = id(&env
        .post(
            &items,
            json!({"displayName": "Bronze", "type": "Lakehouse"}),
        )
        .await
        .expect(201)
        .body);
    let silver = id(&env
        .post(
            &items,
            json!({"displayName": "Silver", "type": "Lakehouse"}),
        )
        .await
        .expect(201)
        .body);
    let sc = format!("{items}/{silver}/shortcuts");
    let body = |name: &str, target: &str| json!({"name": name, "path": "/Tables/dbo", "target": {"type": "OneLake", "oneLake": {"path": "Tables/sales_raw", "itemId": target, "workspaceId": ws, "artifactType": "Lakehouse"}}});
    let r = env.post(&sc, body("sales_raw", &bronze)).await.expect(201);
    conforms("OneLakeShortcuts_CreateShortcut", &r);
    assert_eq!(r.body["path"], "Tables/dbo");
    assert_eq!(r.body["target"]["type"], "OneLake");
    assert!(
        r.header("location")
            .unwrap()
            .ends_with("/shortcuts/Tables/dbo/sales_raw")
    );
    assert_eq!(
        env.post(&sc, body("sales_raw", &bronze))
            .await
            .expect(409)
            .error_code(),
        "ShortcutAlreadyExists"
    );
    let r = env
        .post(
            &format!("{sc}?shortcutConflictPolicy=CreateOrOverwrite"),
            body("sales_raw", &bronze),
        )
        .await
        .expect(200);
    conforms("OneLakeShortcuts_CreateShortcut", &r);
    let r = env
        .post(
            &format!("{sc}?shortcutConflictPolicy=GenerateUniqueName"),
            body("sales_raw", &bronze),
        )
        .await
        .expect(201);
    assert_eq!(r.body["name"], "sales_raw_1");
    env.post(&sc, body("other", &bronze)).await.expect(201);
    // A OneLake target must exist.
    let r = env
        .post(
            &sc,
            body("dangling", "00000000-0000-4000-8000-000000000002"),
        )
        .await
        .expect(400);
    assert_eq!(r.error_code(), "ShortcutTargetNotFound");
    // Three shortcuts, pages of two.
    let first = env.get(&sc).await.expect(200);
    conforms("OneLakeShortcuts_ListShortcuts", &first);
    assert_eq!(first.body["value"].as_array().unwrap().len(), 2);
    let next = env
        .get(first.body["continuationUri"].as_str().unwrap())
        .await
        .expect(200);
    assert_eq!(next.body["value"].as_array().unwrap().len(), 1);
    let one = env
        .get(&format!("{sc}/Tables/dbo/sales_raw"))
        .await
        .expect(200);
    conforms("OneLakeShortcuts_GetShortcut", &one);
    conforms(
        "OneLakeShortcuts_DeleteShortcut",
        &env.delete(&format!("{sc}/Tables/dbo/sales_raw"))
            .await
            .expect(200),
    );
    env.get(&format!("{sc}/Tables/dbo/sales_raw"))
        .await
        .expect(404);
    // Only items that hold shortcuts have them.
    let nb = id(&env
        .post(&items, json!({"displayName": "N", "type": "Notebook"}))
        .await
        .expect(201)
        .body);
    env.get(&format!("{items}/{nb}/shortcuts"))
        .await
        .expect(404);
}

#[tokio::test]
async fn new_state_shows_in_the_admin_view_and_survives_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    let env = Env::with(|c| {
        c.state_file = Some(file.clone());
        c.capacity_pools = vec!["CapPool".into()];
    })
    .await;
    let ws = env.workspace("Kept", true).await;
    let items = format!("/v1/workspaces/{ws}/items");
    let lh = id(&env
        .post(&items, json!({"displayName": "L", "type": "Lakehouse"}))
        .await
        .expect(201)
        .body);
    env.post(&format!("{items}/{lh}/shortcuts"), json!({"name": "s", "path": "Files", "target": {"oneLake": {"path": "Files/x", "itemId": lh, "workspaceId": ws}}}))
        .await
        .expect(201);
    env.post(&format!("/v1/workspaces/{ws}/spark/pools"), json!({"name": "P", "nodeFamily": "MemoryOptimized", "nodeSize": "Small", "autoScale": {"enabled": true, "minNodeCount": 1, "maxNodeCount": 1}, "dynamicExecutorAllocation": {"enabled": false, "minExecutors": 1, "maxExecutors": 1}}))
        .await
        .expect(201);
    env.post("/v1/connections", json!({"connectivityType": "ShareableCloud", "displayName": "C", "connectionDetails": {"type": "Web", "parameters": [{"dataType": "Text", "name": "url", "value": "https://x"}]}}))
        .await
        .expect(201);
    let before = env.get("/_emulator/state").await.body;
    let text = before.to_string();
    for needle in [
        "\"shortcuts\"",
        "\"sparkPools\"",
        "\"CapPool\"",
        "\"connections\"",
        "https://x",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from the admin state"
        );
    }
    let clock = std::sync::Arc::new(env.clock.clone());
    env.emu.shutdown().await.unwrap();
    let emu = fabrik_emulator::Emulator::start(fabrik_emulator::EmulatorConfig {
        state_file: Some(file),
        clock,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(emu.state(), before);
    emu.shutdown().await.unwrap();
}

/// The shared git-format fixture as `bulkImportDefinitions` parts: every file of every item
/// directory, with workspace-absolute paths (`skip`: item directories left out).
fn fixture_parts(skip: &[&str]) -> Vec<Value> {
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((format!("/{rel}"), std::fs::read(&p).unwrap()));
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/git-format-repo");
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    let item_dirs: Vec<String> = files
        .iter()
        .filter_map(|(p, _)| p.strip_suffix("/.platform").map(str::to_string))
        .collect();
    files
        .into_iter()
        .filter(|(p, _)| {
            item_dirs.iter().any(|d| p.starts_with(&format!("{d}/")))
                && !skip.iter().any(|s| p.contains(&format!("/{s}/")))
        })
        .map(|(p, bytes)| {
            json!({"path": p, "payload": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes), "payloadType": "InlineBase64"})
        })
        .collect()
}

#[tokio::test]
async fn bulk_import_publishes_a_git_tree_with_folders_and_resolved_logical_ids() {
    let env = Env::start().await;
    let ws = env.workspace("Bulk", true).await;
    let url = format!("/v1/workspaces/{ws}/items/bulkImportDefinitions?beta=true");
    // A beta API: without `beta=true` the service refuses it (the spec makes it required).
    let no_beta = url.trim_end_matches("?beta=true");
    let r = env
        .post(
            no_beta,
            json!({"definitionParts": fixture_parts(&["Gold.Warehouse"])}),
        )
        .await
        .expect(400);
    assert_eq!(r.error_code(), "InvalidParameter");
    // A warehouse has no definition: the whole request is refused, nothing changes.
    let r = env
        .post(&url, json!({"definitionParts": fixture_parts(&[])}))
        .await
        .expect(400);
    assert_eq!(r.error_code(), "OperationNotSupportedForItem");
    assert_eq!(
        env.get(&format!("/v1/workspaces/{ws}/items")).await.body["value"],
        json!([])
    );

    let body = json!({"definitionParts": fixture_parts(&["Gold.Warehouse"]), "options": {"allowPairingByName": true}});
    let accepted = env.post(&url, body.clone()).await;
    conforms("Items_Bulk_Import_Item_Definitions_(beta)", &accepted);
    let (_, result) = env.finish(accepted).await;
    let result = result.unwrap();
    conforms_body_ok(&result);
    let details = result["importItemDefinitionsDetails"].as_array().unwrap();
    assert_eq!(details.len(), 10);
    assert!(
        details
            .iter()
            .all(|d| d["operationType"] == "Create" && d["operationStatus"] == "Succeeded")
    );
    // Folders from the paths, items in them.
    let folders = env.get(&format!("/v1/workspaces/{ws}/folders")).await.body["value"].clone();
    let names: Vec<&str> = folders
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["displayName"].as_str().unwrap())
        .collect();
    for n in ["notebooks", "shared", "pipelines", "reporting"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let item = |name: &str| {
        details
            .iter()
            .find(|d| d["itemDisplayName"] == name)
            .unwrap()["itemId"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let utils = env
        .get(&format!("/v1/workspaces/{ws}/items/{}", item("Utils")))
        .await
        .body;
    let shared = folders
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["displayName"] == "shared")
        .unwrap();
    assert_eq!(utils["folderId"], shared["id"]);
    // The pipeline's reference to the notebook's logical id now names the notebook.
    let (_, def) = env
        .finish(
            env.post_empty(&format!(
                "/v1/workspaces/{ws}/items/{}/getDefinition",
                item("Daily Load")
            ))
            .await,
        )
        .await;
    let def = def.unwrap();
    let content = def["definition"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == "pipeline-content.json")
        .unwrap()["payload"]
        .clone();
    let text = String::from_utf8(
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            content.as_str().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(text.contains(&item("Ingest")), "{text}");
    assert!(
        !text.contains("3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c06"),
        "{text}"
    );
    // The same tree again pairs with what is there.
    let (_, again) = env.finish(env.post(&url, body).await).await;
    let again = again.unwrap();
    assert!(
        again["importItemDefinitionsDetails"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["operationType"] == "Update")
    );
    assert_eq!(
        env.get(&format!("/v1/workspaces/{ws}/items")).await.body["value"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
}

fn conforms_body_ok(v: &Value) {
    crate::conformance::conforms_body("Items_Bulk_Import_Item_Definitions_(beta)", 200, v);
}

#[tokio::test]
async fn the_new_routes_are_throttled_faulted_and_logged_like_every_v1_route() {
    let env = Env::with(|c| c.throttle = Some("1/2".parse().unwrap())).await;
    let ws = env.workspace("Gate", true).await;
    let pools = format!("/v1/workspaces/{ws}/spark/pools");
    let r = env.get(&pools).await.expect(429);
    conforms("CustomPools_ListWorkspaceCustomPools", &r);
    env.clock.advance(Duration::from_secs(5));
    env.emu
        .set_faults("GET /v1/workspaces/*/spark/pools#1=503".parse().unwrap());
    assert_eq!(
        env.get(&pools).await.expect(503).error_code(),
        "ServiceUnavailable"
    );
    let log = env.get("/_emulator/requests").await.body;
    let last = log["requests"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["path"], pools);
    assert_eq!(last["status"], 503);
}

#[tokio::test]
async fn notebook_definitions_convert_between_git_source_and_ipynb() {
    let env = Env::start().await;
    let ws = env.workspace("Formats", true).await;
    let nbs = format!("/v1/workspaces/{ws}/notebooks");
    let py = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../../shared/fixtures/git-format-repo/notebooks/Ingest.Notebook/notebook-content.py",
    ))
    .unwrap();
    let nb = env
        .post(&nbs, json!({"displayName": "Ingest", "definition": {"parts": [part("notebook-content.py", &py)]}}))
        .await
        .expect(201);
    let nid = id(&nb.body);
    let get = |q: &'static str| {
        let url = format!("{nbs}/{nid}/getDefinition{q}");
        let env = &env;
        async move { env.finish(env.post_empty(&url).await).await.1.unwrap() }
    };
    let ipynb = get("?format=ipynb").await;
    crate::conformance::conforms_body("Items_GetNotebookDefinition", 200, &ipynb);
    assert_eq!(ipynb["definition"]["format"], "ipynb");
    let content = &ipynb["definition"]["parts"][0];
    assert_eq!(content["path"], "notebook-content.ipynb");
    let doc = crate::item_types::decode(&content["payload"]);
    assert_eq!(doc["nbformat"], 4);
    assert_eq!(
        doc["metadata"]["dependencies"]["lakehouse"]["default_lakehouse_name"],
        "Bronze"
    );
    let cells = doc["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 1);
    assert_eq!(cells[0]["cell_type"], "code");
    assert_eq!(cells[0]["metadata"]["language"], "python");
    assert!(
        cells[0]["source"][0]
            .as_str()
            .unwrap()
            .starts_with("df = spark.read")
    );
    // Without a format: as stored. As git source: the same text back.
    assert_eq!(
        get("").await["definition"]["parts"][0],
        part("notebook-content.py", &py)
    );
    assert_eq!(
        get("?format=fabricGitSource").await["definition"]["parts"][0],
        part("notebook-content.py", &py)
    );
    // Stored as ipynb, read as git source.
    let other = env
        .post(&nbs, json!({"displayName": "Back", "definition": {"format": "ipynb", "parts": [content.clone()]}}))
        .await
        .expect(201);
    let back = env
        .finish(
            env.post_empty(&format!(
                "{nbs}/{}/getDefinition?format=fabricGitSource",
                id(&other.body)
            ))
            .await,
        )
        .await
        .1
        .unwrap();
    let back_part = back["definition"]["parts"][0].clone();
    assert_eq!(back_part["path"], "notebook-content.py");
    let back_py = String::from_utf8(
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            back_part["payload"].as_str().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(back_py.starts_with("# Fabric notebook source\n"));
    assert!(back_py.contains("df.write.mode(\"overwrite\").saveAsTable(\"sales_raw\")"));
    // The same notebook: the git source made from the ipynb converts to the same ipynb
    // (metadata keys may come back in another order, as JSON allows).
    let again = env
        .post(
            &nbs,
            json!({"displayName": "Again", "definition": {"parts": [back_part]}}),
        )
        .await
        .expect(201);
    let again = env
        .finish(
            env.post_empty(&format!(
                "{nbs}/{}/getDefinition?format=ipynb",
                id(&again.body)
            ))
            .await,
        )
        .await
        .1
        .unwrap();
    assert_eq!(
        crate::item_types::decode(&again["definition"]["parts"][0]["payload"]),
        doc
    );
}

/// Bulk export gives back what bulk import took: exporting a published git tree and
/// importing the export into another workspace recreates the same items in the same folders.
#[tokio::test]
async fn bulk_export_round_trips_through_bulk_import_and_refuses_what_it_cannot_export() {
    let env = Env::start().await;
    let ws = env.workspace("Source", true).await;
    let import = |ws: &str, parts: Vec<Value>| {
        let url = format!("/v1/workspaces/{ws}/items/bulkImportDefinitions?beta=true");
        let env = &env;
        async move {
            env.finish(env.post(&url, json!({"definitionParts": parts})).await)
                .await
        }
    };
    let (_, imported) = import(&ws, fixture_parts(&["Gold.Warehouse"])).await;
    let imported = imported.unwrap()["importItemDefinitionsDetails"].clone();
    // A warehouse has no definition: `All` leaves it out, `Selective` refuses it.
    let warehouse = env
        .post(
            &format!("/v1/workspaces/{ws}/items"),
            json!({"displayName": "Gold", "type": "Warehouse"}),
        )
        .await
        .expect(201)
        .body["id"]
        .clone();
    let export = format!("/v1/workspaces/{ws}/items/bulkExportDefinitions?beta=true");
    let (_, all) = env
        .finish(env.post(&export, json!({"mode": "All"})).await)
        .await;
    let all = all.unwrap();
    let index = all["itemDefinitionsIndex"].as_array().unwrap();
    assert_eq!(index.len(), imported.as_array().unwrap().len());
    assert!(index.iter().all(|e| e["id"] != warehouse));

    let refused = env
        .post(
            &export,
            json!({"mode": "Selective", "items": [{"id": warehouse}]}),
        )
        .await
        .expect(400);
    assert_eq!(refused.error_code(), "OperationNotSupportedForItem");
    let op = "Items_Bulk_Export_Item_Definitions_(beta)";
    conforms(op, &refused);
    let one = &index[0]["id"];
    let twice = env
        .post(
            &export,
            json!({"mode": "Selective", "items": [{"id": one}, {"id": one}]}),
        )
        .await
        .expect(400);
    assert_eq!(twice.error_code(), "ItemReferencedMoreThanOnce");
    conforms(op, &twice);
    let missing =
        json!({"mode": "Selective", "items": [{"id": "00000000-0000-0000-0000-000000000001"}]});
    env.post(&export, missing).await.expect(404);
    env.post(&export, json!({"mode": "Selective"}))
        .await
        .expect(400);
    let no_beta = format!("/v1/workspaces/{ws}/items/bulkExportDefinitions");
    env.post(&no_beta, json!({"mode": "All"})).await.expect(400);

    // Import the export elsewhere: same names, types and folders.
    let target = env.workspace("Target", true).await;
    let parts = all["definitionParts"].as_array().unwrap().clone();
    let (state, _) = import(&target, parts).await;
    assert_eq!(state["status"], "Succeeded");
    let (_, again) = env
        .finish(
            env.post(
                &format!("/v1/workspaces/{target}/items/bulkExportDefinitions?beta=true"),
                json!({"mode": "All"}),
            )
            .await,
        )
        .await;
    let roots = |v: &Value| {
        let mut r: Vec<String> = v["itemDefinitionsIndex"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["rootPath"].as_str().unwrap().to_string())
            .collect();
        r.sort();
        r
    };
    assert_eq!(roots(&again.unwrap()), roots(&all));
}
