//! Publishing the shared fixture with its own `parameter.yml` for the environments it names
//! (test and prod): every substitution the fixture notes list is in the deployed definitions,
//! and a second publish plans nothing (rendering at plan time and at apply time agree).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fabrik_cli::publish::inputs::{self, PublishArgs};
use fabrik_cli::publish::pipeline::EnvVars;
use fabrik_client::FabricClient;
use fabrik_client::models::CreateWorkspaceRequest;
use fabrik_emulator::EmulatorConfig;
use futures::TryStreamExt;

fn fixture_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/git-format-repo")
}

/// The deployed part `path` of the item `name` of type `item_type`, as text.
async fn part(client: &FabricClient, ws: &str, item_type: &str, name: &str, path: &str) -> String {
    let items: Vec<_> = client
        .list_items(ws, &fabrik_client::ItemFilter::default())
        .try_collect()
        .await
        .unwrap();
    let item = items
        .iter()
        .find(|i| i.kind.as_str() == item_type && i.display_name == name)
        .unwrap_or_else(|| panic!("{item_type} {name} is deployed"));
    let d = client
        .get_item_definition(ws, &item.id, None)
        .await
        .unwrap();
    let p = d
        .parts
        .iter()
        .find(|p| p.path == path)
        .unwrap_or_else(|| panic!("{item_type} {name} has part {path}"));
    use base64::Engine as _;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&p.payload)
            .unwrap(),
    )
    .unwrap()
}

async fn id_of(client: &FabricClient, ws: &str, item_type: &str, name: &str) -> String {
    let items: Vec<_> = client
        .list_items(ws, &fabrik_client::ItemFilter::default())
        .try_collect()
        .await
        .unwrap();
    items
        .into_iter()
        .find(|i| i.kind.as_str() == item_type && i.display_name == name)
        .map(|i| i.id)
        .unwrap_or_else(|| panic!("{item_type} {name} is deployed"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_publishes_with_its_parameter_file_in_test_and_prod() {
    let (emu, client, opts, _state) = crate::start_with(EmulatorConfig {
        capacity_pools: vec!["ProdCapacityPool".into()],
        ..EmulatorConfig::default()
    })
    .await;
    let capacities: Vec<_> = client.list_capacities().try_collect().await.unwrap();
    let token = emu.mint_token_as(
        "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "ServicePrincipal",
        Duration::from_secs(3600),
    );
    for env in ["test", "prod"] {
        let ws = client
            .create_workspace(&CreateWorkspaceRequest {
                display_name: format!("publish-{env}"),
                description: None,
                capacity_id: Some(capacities[0].id.clone()),
                domain_id: None,
            })
            .await
            .unwrap();
        // The test environment's pool is a workspace pool (created here); prod's is the
        // capacity's (seeded by the emulator).
        let small: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/v1/workspaces/{}/spark/pools", emu.base_url(), ws.id))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "name": "SmallPool",
                "nodeFamily": "MemoryOptimized",
                "nodeSize": "Small",
                "autoScale": {"enabled": true, "minNodeCount": 1, "maxNodeCount": 2},
                "dynamicExecutorAllocation": {"enabled": false, "minExecutors": 1, "maxExecutors": 1},
            }))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        let pools: Vec<_> = client.list_spark_pools(&ws.id).try_collect().await.unwrap();
        let expected_pool = match env {
            "test" => small["id"].as_str().unwrap().to_string(),
            _ => pools
                .iter()
                .find(|p| p.name == "ProdCapacityPool" && p.kind == "Capacity")
                .map(|p| p.id.clone())
                .expect("the capacity pool is listed"),
        };

        let args = PublishArgs {
            repository: Some(fixture_root()),
            workspace_id: Some(ws.id.clone()),
            features: vec!["enable_shortcut_publish".into()],
            ..PublishArgs::default()
        };
        let r = inputs::resolve(&args, env, EnvVars::fixed(BTreeMap::new()))
            .expect("the fixture and its parameter.yml are valid")
            .expect("nothing is skipped");
        assert!(
            r.how.parameters.is_some(),
            "the repository's parameter.yml is used"
        );
        let repo = Arc::new(r.repo);
        let (desired, plan) = fabrik_cli::publish::publisher::plan(
            &client,
            Arc::clone(&repo),
            r.how.clone(),
            &ws.id,
            r.target.unpublish.clone(),
            8,
        )
        .await
        .unwrap();
        let report = fabrik_cli::run::apply(
            &client,
            &fabrik_flags::Flags::defaults(),
            &desired,
            &plan,
            &opts,
        )
        .await
        .unwrap();
        assert!(report.errors.is_empty(), "{env}: {:?}", report.errors);

        // Every item carries the parts the fixture notes (§2) list: the repository's, with
        // `.pbi/` left out of the semantic model (discovery's tests pin those lists).
        let deployed = definitions(&client, &ws.id).await;
        for item in repo.selected() {
            let key = format!("{}:{}", item.item_type.as_str(), item.display_name);
            let got: Vec<&String> = deployed[&key].keys().collect();
            let want: Vec<&String> = if item.item_type.is_shell() {
                Vec::new()
            } else {
                item.parts
                    .iter()
                    .map(|p| &p.path)
                    .filter(|p| *p != ".platform")
                    .collect()
            };
            assert_eq!(got, want, "{env}: {key}");
        }
        let bronze = id_of(&client, &ws.id, "Lakehouse", "Bronze").await;
        let spark = id_of(&client, &ws.id, "Environment", "Spark").await;
        let nb = part(&client, &ws.id, "Notebook", "Ingest", "notebook-content.py").await;
        assert!(
            nb.contains(&format!("\"default_lakehouse\": \"{bronze}\"")),
            "{env}: {nb}"
        );
        assert!(nb.contains(&format!("\"id\": \"{bronze}\"")), "{env}: {nb}");
        assert!(!nb.contains("bbbbbbbb-1111-4222-8333-555555555555"));
        assert!(
            nb.contains(&format!(
                "\"default_lakehouse_workspace_id\": \"{}\"",
                ws.id
            )),
            "{env}: {nb}"
        );
        assert!(nb.contains(&format!("\"environmentId\": \"{spark}\"")));
        assert!(nb.contains(&format!("\"workspaceId\": \"{}\"", ws.id)));
        assert!(nb.contains(&format!("@stdata{env}.dfs")) && !nb.contains("stdatadev"));

        let schedules = part(&client, &ws.id, "DataPipeline", "Daily Load", ".schedules").await;
        let schedules: serde_json::Value = serde_json::from_str(&schedules).unwrap();
        assert_eq!(schedules["schedules"][0]["enabled"], env == "prod", "{env}");

        let vars = part(
            &client,
            &ws.id,
            "VariableLibrary",
            "Config",
            "variables.json",
        )
        .await;
        let vars: serde_json::Value = serde_json::from_str(&vars).unwrap();
        assert_eq!(vars["variables"][0]["value"], format!("stdata{env}"));

        // Silver's shortcut points at the deployed Bronze in this workspace.
        let silver = id_of(&client, &ws.id, "Lakehouse", "Silver").await;
        let shortcuts: Vec<serde_json::Value> = client
            .list_shortcuts(&ws.id, &silver)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(shortcuts.len(), 1, "{shortcuts:?}");
        assert_eq!(shortcuts[0]["name"], "sales_raw");
        assert_eq!(shortcuts[0]["target"]["oneLake"]["itemId"], bronze.as_str());
        assert_eq!(
            shortcuts[0]["target"]["oneLake"]["workspaceId"],
            ws.id.as_str()
        );

        // The environment's staged definition was published, once.
        let log: serde_json::Value = reqwest::get(format!("{}/_emulator/requests", emu.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let publishes = log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == "POST")
            .filter(|r| {
                r["path"]
                    .as_str()
                    .is_some_and(|p| p.contains(&ws.id) && p.ends_with("/staging/publish"))
            })
            .count();
        assert_eq!(publishes, 1, "{env}");

        let config = id_of(&client, &ws.id, "VariableLibrary", "Config").await;
        assert_eq!(
            client
                .active_value_set(&ws.id, &config)
                .await
                .unwrap()
                .as_deref(),
            Some(env),
            "the environment's value set is active"
        );

        let compute = part(
            &client,
            &ws.id,
            "Environment",
            "Spark",
            "Setting/Sparkcompute.yml",
        )
        .await;
        assert!(
            compute.contains(&format!("instance_pool_id: {expected_pool}")),
            "{env}: {compute}"
        );

        let model = id_of(&client, &ws.id, "SemanticModel", "Sales").await;
        let pbir = part(&client, &ws.id, "Report", "Sales", "definition.pbir").await;
        let pbir: serde_json::Value = serde_json::from_str(&pbir).unwrap();
        let by = &pbir["datasetReference"]["byConnection"];
        assert_eq!(by["pbiModelDatabaseName"], model.as_str(), "{pbir}");
        assert!(pbir["datasetReference"].get("byPath").is_none());

        // Rendering at plan time (placeholders, then deployed ids) and at apply time agree.
        let (_, again) = fabrik_cli::publish::publisher::plan(
            &client,
            Arc::clone(&repo),
            r.how.clone(),
            &ws.id,
            r.target.unpublish.clone(),
            8,
        )
        .await
        .unwrap();
        assert_eq!(
            again.change_count(),
            0,
            "{env}: {}",
            fabrik_cli::render::text(&again)
        );
    }
    // Reads do not grow with the items written: workspaces are listed once per publish, and a
    // lakehouse whose `$items` properties a part uses is read once per item that uses it.
    let log: serde_json::Value = reqwest::get(format!("{}/_emulator/requests", emu.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let gets = |pred: &dyn Fn(&str) -> bool| {
        log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == "GET" && r["path"].as_str().is_some_and(pred))
            .count()
    };
    // Two environments, each a publish and a second plan, each listing workspaces twice: the
    // engine finding its workspace, and the parameters' `$workspace.<name>` lookup.
    let lists = gets(&|p| p == "/v1/workspaces");
    assert!(lists <= 8, "{lists} workspace listings");
    let lakehouse_reads = gets(&|p| p.contains("/lakehouses/"));
    assert!(lakehouse_reads <= 4, "{lakehouse_reads} lakehouse reads");
    emu.shutdown().await.unwrap();
}

/// Every deployed item's definition by `Type:Name` (shell items by name only).
async fn definitions(
    client: &FabricClient,
    ws: &str,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let items: Vec<_> = client
        .list_items(ws, &fabrik_client::ItemFilter::default())
        .try_collect()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for i in items {
        let key = format!("{}:{}", i.kind.as_str(), i.display_name);
        let mut parts = BTreeMap::new();
        if !matches!(i.kind.as_str(), "Lakehouse" | "Warehouse") {
            let d = client.get_item_definition(ws, &i.id, None).await.unwrap();
            for p in d.parts.into_iter().filter(|p| p.path != ".platform") {
                parts.insert(p.path, p.payload);
            }
        }
        out.insert(key, parts);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_refused_midway_restores_every_previous_definition_and_deletes_what_it_created() {
    let (emu, client, opts, _state) = crate::start_with(EmulatorConfig {
        capacity_pools: vec!["SmallPool".into(), "ProdCapacityPool".into()],
        ..EmulatorConfig::default()
    })
    .await;
    let capacities: Vec<_> = client.list_capacities().try_collect().await.unwrap();
    let ws = client
        .create_workspace(&CreateWorkspaceRequest {
            display_name: "publish-rollback".into(),
            description: None,
            capacity_id: Some(capacities[0].id.clone()),
            domain_id: None,
        })
        .await
        .unwrap();
    // One change at a time, so the refusal comes after the variable library's and the
    // environment's updates (plan order) and before the notebook's.
    let opts = fabrik_cli::run::RunOptions {
        concurrency: 1,
        ..opts
    };
    let publish = |env: &'static str, item_types: Vec<String>| {
        let client = client.clone();
        let opts = opts.clone();
        let ws = ws.id.clone();
        async move {
            let args = PublishArgs {
                repository: Some(fixture_root()),
                workspace_id: Some(ws.clone()),
                item_types,
                ..PublishArgs::default()
            };
            let r = inputs::resolve(&args, env, EnvVars::fixed(BTreeMap::new()))
                .unwrap()
                .unwrap();
            let (desired, plan) = fabrik_cli::publish::publisher::plan(
                &client,
                Arc::new(r.repo),
                r.how,
                &ws,
                r.target.unpublish,
                8,
            )
            .await
            .unwrap();
            fabrik_cli::run::apply(
                &client,
                &fabrik_flags::Flags::defaults(),
                &desired,
                &plan,
                &opts,
            )
            .await
            .unwrap()
        }
    };
    // First publish: everything but the pipelines and the report, for prod.
    let some: Vec<String> = [
        "VariableLibrary",
        "Lakehouse",
        "Warehouse",
        "Environment",
        "Notebook",
        "SemanticModel",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let first = publish("prod", some).await;
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    let before = definitions(&client, &ws.id).await;

    // Then all of it for an environment parameter.yml has no values for (only its `_ALL_`
    // entries apply): updates (variable library, environment, notebook) and creates
    // (pipelines, report); the third definition update, the notebook's, is refused.
    let published_environment = || {
        let state = emu.state();
        let w = state["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == ws.id.as_str())
            .unwrap()
            .clone();
        w["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["type"] == "Environment")
            .unwrap()["extra"]["published"]
            .clone()
    };
    let published_before = published_environment();
    assert!(
        !published_before.is_null(),
        "the first publish published it"
    );
    emu.set_faults(
        "POST /v1/workspaces/*/items/*/updateDefinition#3=403"
            .parse()
            .unwrap(),
    );
    let failed = publish("test-as-prod", Vec::new()).await;
    assert!(
        !failed.errors.is_empty(),
        "the refused update fails the run"
    );
    assert!(
        failed
            .errors
            .iter()
            .any(|e| e.contains("403") || e.contains("orbidden")),
        "{:?}",
        failed.errors
    );
    assert!(
        failed.rolled_back.len() >= 2,
        "an update and the creates before the refusal were undone: {:?}",
        failed.rolled_back
    );
    let stats = emu.fault_stats();
    assert_eq!(stats.faulted, 1, "exactly one write was refused");
    emu.set_faults(fabrik_emulator::FaultConfig::default());
    let after = definitions(&client, &ws.id).await;
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "what the failed publish created is gone"
    );
    for (k, parts) in &before {
        assert_eq!(&after[k], parts, "{k} has its previous definition back");
    }
    assert_eq!(
        published_environment(),
        published_before,
        "the environment's previous definition is published again"
    );
    let config = id_of(&client, &ws.id, "VariableLibrary", "Config").await;
    assert_eq!(
        client
            .active_value_set(&ws.id, &config)
            .await
            .unwrap()
            .as_deref(),
        Some("prod")
    );
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_apply_creates_a_workspace_and_publishes_the_repository_it_names() {
    let (emu, client, opts, _state) = crate::start_with(EmulatorConfig {
        capacity_pools: vec!["ProdCapacityPool".into()],
        ..EmulatorConfig::default()
    })
    .await;
    let capacities: Vec<_> = client.list_capacities().try_collect().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fabrik.yaml");
    std::fs::write(
        &config,
        format!(
            "project: {{name: Sales, prefix: sales}}\nworkspaces:\n  - name: content\n    capacity: {}\n    folders: [extra]\n    lakehouses:\n      - name: Scratch\n    repository:\n      path: {}\n",
            capacities[0].id,
            fixture_root().display()
        ),
    )
    .unwrap();
    let load = |env: &str| {
        fabrik_cli::config::load(
            &config,
            &fabrik_cli::config::LoadOptions {
                environment: env.into(),
                repositories: Some(fabrik_cli::publish::reader::RepoReader::shared()),
                sections: fabrik_cli::engine::Registry::builtin().sections(),
                ..Default::default()
            },
        )
        .expect("the config and its repository are valid")
        .0
    };
    let desired = load("prod");
    let ws = &desired.workspaces[0];
    assert!(ws.publish.is_some());
    for f in [
        "extra",
        "notebooks",
        "notebooks/shared",
        "pipelines",
        "reporting",
    ] {
        assert!(
            ws.folders.contains(&f.to_string()),
            "{f} in {:?}",
            ws.folders
        );
    }
    let plan = fabrik_cli::run::plan(&client, &desired, 8).await.unwrap();
    let report = fabrik_cli::run::apply(
        &client,
        &fabrik_flags::Flags::defaults(),
        &desired,
        &plan,
        &opts,
    )
    .await
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let workspaces: Vec<_> = client.list_workspaces().try_collect().await.unwrap();
    let target = workspaces
        .iter()
        .find(|w| w.display_name == ws.name)
        .expect("the workspace was created");
    let nb = part(
        &client,
        &target.id,
        "Notebook",
        "Ingest",
        "notebook-content.py",
    )
    .await;
    assert!(nb.contains("@stdataprod.dfs"), "{nb}");
    assert!(nb.contains(&format!("\"workspaceId\": \"{}\"", target.id)));
    id_of(&client, &target.id, "Lakehouse", "Scratch").await;

    // The published items are the publisher's: a pruning plan leaves them (and the config's
    // own lakehouse) alone, and plans nothing.
    let again = fabrik_cli::run::plan_with(&client, &desired, 8, true)
        .await
        .unwrap();
    assert_eq!(
        again.change_count(),
        0,
        "{}",
        fabrik_cli::render::text(&again)
    );

    // A mistake in the repository's parameter file is a config problem, found before any
    // request, at its place.
    let bad = dir.path().join("bad-parameter.yml");
    std::fs::write(&bad, "find_replace:\n  - find_value: '(a)(b)'\n    is_regex: \"true\"\n    replace_value:\n      prod: x\n").unwrap();
    std::fs::write(
        &config,
        format!(
            "project: {{name: Sales, prefix: sales}}\nworkspaces:\n  - name: content\n    repository:\n      path: {}\n      parameter: bad-parameter.yml\n",
            fixture_root().display()
        ),
    )
    .unwrap();
    let problems = fabrik_cli::config::load(
        &config,
        &fabrik_cli::config::LoadOptions {
            environment: "prod".into(),
            repositories: Some(fabrik_cli::publish::reader::RepoReader::shared()),
            sections: fabrik_cli::engine::Registry::builtin().sections(),
            ..Default::default()
        },
    )
    .expect_err("the parameter file is refused");
    let text: String = problems.iter().map(|p| p.to_string()).collect();
    assert!(text.contains("bad-parameter.yml:2:"), "{text}");
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semantic_model_binding_binds_the_model_and_a_failed_bind_is_rolled_back() {
    let (emu, client, opts, _state) = crate::start().await;
    let token = emu.mint_token_as(
        "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "ServicePrincipal",
        Duration::from_secs(3600),
    );
    let connection: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/v1/connections", emu.base_url()))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "connectivityType": "ShareableCloud",
            "displayName": "sales-sql",
            "connectionDetails": {"type": "SQL", "creationMethod": "SQL",
                "parameters": [{"dataType": "Text", "name": "server", "value": "sql.contoso.net"},
                               {"dataType": "Text", "name": "database", "value": "sales"}]},
        }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let cid = connection["id"].as_str().unwrap().to_string();
    let ws = crate::workspace(&client, "binding").await;
    let dir = tempfile::tempdir().unwrap();
    let params = dir.path().join("parameter.yml");
    std::fs::write(
        &params,
        format!(
            "semantic_model_binding:\n  models:\n    - semantic_model_name: Sales\n      connection_id:\n        staging: {cid}\n"
        ),
    )
    .unwrap();
    let publish = |env: &'static str| {
        let args = PublishArgs {
            repository: Some(fixture_root()),
            workspace_id: Some(ws.id.clone()),
            parameter: Some(params.clone()),
            item_types: vec!["SemanticModel".into()],
            ..PublishArgs::default()
        };
        let r = inputs::resolve(&args, env, EnvVars::fixed(BTreeMap::new()))
            .unwrap()
            .unwrap();
        let (client, opts, ws) = (client.clone(), opts.clone(), ws.id.clone());
        async move {
            let (desired, plan) = fabrik_cli::publish::publisher::plan(
                &client,
                Arc::new(r.repo),
                r.how,
                &ws,
                r.target.unpublish,
                8,
            )
            .await
            .unwrap();
            let report = fabrik_cli::run::apply(
                &client,
                &fabrik_flags::Flags::defaults(),
                &desired,
                &plan,
                &opts,
            )
            .await
            .unwrap();
            (plan, report)
        }
    };
    let bound = |ws: String| {
        let client = client.clone();
        async move {
            let model = id_of(&client, &ws, "SemanticModel", "Sales").await;
            let now: Vec<serde_json::Value> = client
                .item_connections(&ws, &model)
                .try_collect()
                .await
                .unwrap();
            now.iter()
                .filter_map(|c| c["id"].as_str().map(str::to_string))
                .collect::<Vec<_>>()
        }
    };

    // The model, published for an environment the file binds nothing in.
    let (_, first) = publish("other").await;
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert_eq!(bound(ws.id.clone()).await, Vec::<String>::new());

    // A bind the service carries out and then refuses fails the run; rollback unbinds.
    emu.set_faults(
        "POST /v1/workspaces/*/semanticModels/*/bindConnection#1=apply-then-403"
            .parse()
            .unwrap(),
    );
    let (_, failed) = publish("staging").await;
    emu.set_faults(fabrik_emulator::FaultConfig::default());
    assert!(!failed.errors.is_empty(), "the refused bind fails the run");
    assert_eq!(
        bound(ws.id.clone()).await,
        Vec::<String>::new(),
        "rolled back"
    );

    let (plan, report) = publish("staging").await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(
        plan.changes()
            .any(|(_, c)| c.address.key == "SemanticModel:Sales#connections"),
        "{}",
        fabrik_cli::render::text(&plan)
    );
    assert_eq!(bound(ws.id.clone()).await, [cid]);
    let (again, _) = publish("staging").await;
    assert_eq!(
        again.change_count(),
        0,
        "{}",
        fabrik_cli::render::text(&again)
    );
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_variables_read_sql_endpoints_as_fabric_cicd_does() {
    let (emu, client, opts, _state) = crate::start().await;
    let ws = crate::workspace(&client, "endpoints").await;
    // Another workspace's warehouse, named through `$workspace.Shared.$items…`.
    let shared = crate::workspace(&client, "Shared").await;
    let central = client
        .create_item(
            &shared.id,
            &fabrik_client::models::CreateItemRequest::new(
                "Central",
                fabrik_client::models::ItemType::from("Warehouse"),
            ),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let params = dir.path().join("parameter.yml");
    std::fs::write(
        &params,
        "find_replace:\n  - find_value: \"stdatadev\"\n    replace_value:\n      staging: \"$items.Lakehouse.Bronze.$sqlendpoint\"\n    item_name: Ingest\n  - find_value: \"sales_raw\"\n    replace_value:\n      staging: \"$items.Warehouse.Gold.$sqlendpoint\"\n    item_name: Ingest\n  - find_value: \"overwrite\"\n    replace_value:\n      staging: \"$workspace.Shared.$items.Warehouse.Central.$sqlendpoint\"\n    item_name: Ingest\n",
    )
    .unwrap();
    let args = PublishArgs {
        repository: Some(fixture_root()),
        workspace_id: Some(ws.id.clone()),
        parameter: Some(params),
        item_types: ["Lakehouse", "Warehouse", "Notebook", "Environment"]
            .map(String::from)
            .to_vec(),
        ..PublishArgs::default()
    };
    let r = inputs::resolve(&args, "staging", EnvVars::fixed(BTreeMap::new()))
        .unwrap()
        .unwrap();
    let (desired, plan) = fabrik_cli::publish::publisher::plan(
        &client,
        Arc::new(r.repo),
        r.how,
        &ws.id,
        r.target.unpublish,
        8,
    )
    .await
    .unwrap();
    let report = fabrik_cli::run::apply(
        &client,
        &fabrik_flags::Flags::defaults(),
        &desired,
        &plan,
        &opts,
    )
    .await
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let bronze = id_of(&client, &ws.id, "Lakehouse", "Bronze").await;
    let gold = id_of(&client, &ws.id, "Warehouse", "Gold").await;
    let lakehouse = client
        .item_properties(&ws.id, "lakehouses", &bronze)
        .await
        .unwrap()
        .unwrap();
    let warehouse = client
        .item_properties(&ws.id, "warehouses", &gold)
        .await
        .unwrap()
        .unwrap();
    let lakehouse_sql = lakehouse["sqlEndpointProperties"]["connectionString"]
        .as_str()
        .unwrap();
    let warehouse_sql = warehouse["connectionString"].as_str().unwrap();
    let nb = part(&client, &ws.id, "Notebook", "Ingest", "notebook-content.py").await;
    assert!(
        nb.contains(&format!("abfss://raw@{lakehouse_sql}.dfs")),
        "{nb}"
    );
    assert!(
        nb.contains(&format!("saveAsTable(\"{warehouse_sql}\")")),
        "{nb}"
    );
    let central_sql = client
        .item_properties(&shared.id, "warehouses", &central.id)
        .await
        .unwrap()
        .unwrap()["connectionString"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        nb.contains(&format!("write.mode(\"{central_sql}\")")),
        "{nb}"
    );
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_shortcut_fails_the_run_unless_continue_on_shortcut_failure() {
    let (emu, client, opts, _state) = crate::start().await;
    for keep_going in [false, true] {
        let ws = crate::workspace(&client, &format!("shortcuts-{keep_going}")).await;
        let mut features = vec!["enable_shortcut_publish".to_string()];
        if keep_going {
            features.push("continue_on_shortcut_failure".into());
        }
        let args = PublishArgs {
            repository: Some(fixture_root()),
            workspace_id: Some(ws.id.clone()),
            item_types: vec!["Lakehouse".into()],
            features,
            ..PublishArgs::default()
        };
        let r = inputs::resolve(&args, "prod", EnvVars::fixed(BTreeMap::new()))
            .unwrap()
            .unwrap();
        let (desired, plan) = fabrik_cli::publish::publisher::plan(
            &client,
            Arc::new(r.repo),
            r.how,
            &ws.id,
            r.target.unpublish,
            8,
        )
        .await
        .unwrap();
        emu.set_faults(
            "POST /v1/workspaces/*/items/*/shortcuts#1=400"
                .parse()
                .unwrap(),
        );
        let report = fabrik_cli::run::apply(
            &client,
            &fabrik_flags::Flags::defaults(),
            &desired,
            &plan,
            &opts,
        )
        .await
        .unwrap();
        emu.set_faults(fabrik_emulator::FaultConfig::default());
        if keep_going {
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            let silver = id_of(&client, &ws.id, "Lakehouse", "Silver").await;
            let shortcuts: Vec<serde_json::Value> = client
                .list_shortcuts(&ws.id, &silver)
                .try_collect()
                .await
                .unwrap();
            assert!(shortcuts.is_empty(), "the refused shortcut is not there");
        } else {
            assert!(
                report.errors.iter().any(|e| e.contains("shortcut")),
                "{:?}",
                report.errors
            );
        }
    }
    emu.shutdown().await.unwrap();
}

/// Every string in every file under `dir`, and what base64 strings decode to.
fn journal_texts(dir: &std::path::Path) -> String {
    use base64::Engine as _;
    fn walk(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::String(s) => {
                out.push_str(s);
                out.push('\n');
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(s) {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                    out.push('\n');
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            out.push_str(&text);
            for line in text.lines() {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                    walk(&v, &mut out);
                }
            }
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                walk(&v, &mut out);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_env_value_rendered_into_a_definition_never_reaches_the_journal() {
    let (emu, client, opts, state) = crate::start().await;
    let ws = crate::workspace(&client, "env-secrets").await;
    let dir = tempfile::tempdir().unwrap();
    let params = dir.path().join("parameter.yml");
    std::fs::write(
        &params,
        "find_replace:\n  - find_value: \"stdatadev\"\n    replace_value:\n      staging: \"$ENV:FABRIK_E2E_STORAGE_KEY\"\n    item_name: Ingest\n",
    )
    .unwrap();
    let publish = |value: &'static str| {
        let args = PublishArgs {
            repository: Some(fixture_root()),
            workspace_id: Some(ws.id.clone()),
            parameter: Some(params.clone()),
            item_types: vec!["Notebook".into(), "Lakehouse".into(), "Environment".into()],
            features: vec!["enable_environment_variable_replacement".into()],
            ..PublishArgs::default()
        };
        let env = EnvVars::fixed(BTreeMap::from([(
            "FABRIK_E2E_STORAGE_KEY".to_string(),
            value.to_string(),
        )]));
        let r = inputs::resolve(&args, "staging", env).unwrap().unwrap();
        let (client, opts, ws) = (client.clone(), opts.clone(), ws.id.clone());
        async move {
            let (desired, plan) = fabrik_cli::publish::publisher::plan(
                &client,
                Arc::new(r.repo),
                r.how,
                &ws,
                r.target.unpublish,
                8,
            )
            .await
            .unwrap();
            fabrik_cli::run::apply(
                &client,
                &fabrik_flags::Flags::defaults(),
                &desired,
                &plan,
                &opts,
            )
            .await
            .unwrap()
        }
    };
    let first = publish("sk-storage-7Hq2mW").await;
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    let nb = part(&client, &ws.id, "Notebook", "Ingest", "notebook-content.py").await;
    assert!(nb.contains("sk-storage-7Hq2mW"), "the value was rendered");
    // The rotated value updates the notebook; the update journals the previous definition.
    let second = publish("sk-storage-9Rt4vX").await;
    assert!(second.errors.is_empty(), "{:?}", second.errors);
    assert!(
        !second.applied.is_empty(),
        "the notebook was updated: {:?}",
        second.applied
    );
    let journals = journal_texts(state.path());
    assert!(
        journals.contains("fabrik-secret:env:FABRIK_E2E_STORAGE_KEY"),
        "{journals}"
    );
    assert!(!journals.contains("sk-storage-7Hq2mW"), "{journals}");
    emu.shutdown().await.unwrap();
}
