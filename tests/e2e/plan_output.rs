//! Plans as CI posts them: JSON with the dependency edges, Markdown with a summary table, the
//! changes per workspace and a Mermaid graph.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_shows_the_edges_and_markdown_the_table_changes_and_graph() {
    let (emu, client, _opts, _state) = crate::start().await;
    let desired = crate::examples("dev");
    let plan = fabrik_cli::run::plan(&client, &desired, 4).await.unwrap();

    let json = serde_json::to_value(&plan).unwrap();
    let changes: Vec<&serde_json::Value> = json["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["changes"].as_array().unwrap())
        .collect();
    assert_eq!(changes.len(), plan.change_count());
    let by_id = |id: u64| changes.iter().find(|c| c["id"] == id).unwrap();
    // Every item in a folder depends on its workspace's create and its folder's create.
    let mut checked = 0;
    for c in &changes {
        if c["kind"] == "notebook" && c["op"]["folder"].is_string() {
            let deps: Vec<&str> = c["dependsOn"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| by_id(d.as_u64().unwrap())["kind"].as_str().unwrap())
                .collect();
            assert!(
                deps.contains(&"workspace") && deps.contains(&"folder"),
                "{c}: {deps:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "the examples put notebooks in folders");
    let edges = json["edges"].as_array().unwrap();
    assert_eq!(edges.len(), plan.graph.edges().count());
    for e in edges {
        let (from, to) = (e["from"].as_u64().unwrap(), e["to"].as_u64().unwrap());
        assert!(
            by_id(to)["dependsOn"]
                .as_array()
                .unwrap()
                .contains(&from.into())
        );
    }
    // Everything is new but the curated workspace's Spark settings, which it has from birth.
    assert_eq!(json["summary"]["update"], 1);
    assert_eq!(json["summary"]["create"], plan.change_count() - 1);

    let md = fabrik_cli::render::markdown(&plan);
    assert!(
        md.contains("| workspace | create | update | delete | left alone |"),
        "{md}"
    );
    for w in &desired.workspaces {
        assert!(md.contains(&format!("### {}", w.name)), "{md}");
    }
    assert!(md.contains("```mermaid\nflowchart LR\n"), "{md}");
    let arrows = md.lines().filter(|l| l.contains(" --> ")).count();
    assert_eq!(arrows, plan.graph.edges().count());
    assert!(md.contains("+ lakehouse BRONZE_Sales_Lakehouse"), "{md}");
    emu.shutdown().await.unwrap();
}
