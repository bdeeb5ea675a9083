//! Publishing the shared git-format fixture into a workspace of the emulator: every selected
//! item created (in its folder, after the items it references), logicalIds of deployed items
//! replaced by their ids, and a second publish of the unchanged repository plans nothing.

use std::path::Path;
use std::sync::Arc;

use fabrik_cli::publish::inputs::Unpublish;
use fabrik_cli::publish::pipeline::Parameterization;
use fabrik_cli::publish::repo::{DiscoverOptions, Repository};

fn fixture() -> Arc<Repository> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/git-format-repo");
    Arc::new(
        Repository::discover(&root, &DiscoverOptions::default()).expect("the fixture is valid"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_publishes_in_reference_order_and_a_second_publish_plans_nothing() {
    let (emu, client, opts, _state) = crate::start().await;
    let ws = crate::workspace(&client, "publish-target").await;
    let repo = fixture();
    let selected: Vec<_> = repo.selected().collect();
    let (desired, plan) = fabrik_cli::publish::publisher::plan(
        &client,
        Arc::clone(&repo),
        Parameterization::none("test"),
        &ws.id,
        Unpublish::default(),
        8,
    )
    .await
    .unwrap();
    assert_eq!(
        plan.change_count(),
        // Folders, items, and each variable library's active value set.
        repo.folders.len()
            + selected.len()
            + selected
                .iter()
                .filter(|r| r.item_type.as_str() == "VariableLibrary")
                .count(),
        "{}",
        fabrik_cli::render::text(&plan)
    );
    // An item that mentions another's logicalId waits for it.
    let changes: Vec<_> = plan.changes().map(|(_, c)| c).collect();
    let mut ordered = 0;
    for (i, c) in changes.iter().enumerate() {
        let Some(item) = selected
            .iter()
            .find(|r| c.address.key == format!("{}:{}", r.item_type.as_str(), r.display_name))
        else {
            continue;
        };
        for other in &selected {
            let mentions = item
                .parts
                .iter()
                .filter_map(|p| p.text())
                .any(|t| t.contains(&other.logical_id));
            if other.logical_id != item.logical_id && mentions {
                let dep = changes
                    .iter()
                    .position(|d| {
                        d.address.key
                            == format!("{}:{}", other.item_type.as_str(), other.display_name)
                    })
                    .unwrap();
                assert!(
                    plan.graph.deps(i).contains(&dep),
                    "{} must wait for {}",
                    c.target,
                    changes[dep].target
                );
                ordered += 1;
            }
        }
    }
    assert!(ordered > 0, "the fixture has cross-item references");
    // Ties go in fabric-cicd's type order: the items' changes are planned in it.
    let type_order: Vec<usize> = changes
        .iter()
        .filter(|c| c.address.kind == "published" && !c.address.key.contains('#'))
        .map(|c| {
            let t = c.address.key.split(':').next().unwrap();
            fabrik_cli::publish::parameter::ITEM_TYPES
                .iter()
                .position(|x| *x == t)
                .unwrap()
        })
        .collect();
    assert!(type_order.len() >= 10);
    assert!(
        type_order.windows(2).all(|w| w[0] <= w[1]),
        "{type_order:?}"
    );

    let flags = fabrik_flags::Flags::defaults();
    let report = fabrik_cli::run::apply(&client, &flags, &desired, &plan, &opts)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let items: Vec<fabrik_client::models::Item> = futures::TryStreamExt::try_collect(
        client.list_items(&ws.id, &fabrik_client::ItemFilter::default()),
    )
    .await
    .unwrap();
    for r in &selected {
        let deployed = items
            .iter()
            .find(|i| i.kind.as_str() == r.item_type.as_str() && i.display_name == r.display_name)
            .unwrap_or_else(|| {
                panic!(
                    "{} {} was not published",
                    r.item_type.as_str(),
                    r.display_name
                )
            });
        if r.item_type.is_shell() {
            continue;
        }
        let d = client
            .get_item_definition(&ws.id, &deployed.id, r.definition_format())
            .await
            .unwrap();
        for p in &r.parts {
            assert!(
                d.parts.iter().any(|x| x.path == p.path),
                "{}: part {} missing",
                r.display_name,
                p.path
            );
        }
        // No logicalId of a deployed item is left in what was sent.
        for x in d.parts.iter().filter(|x| x.path != ".platform") {
            use base64::Engine as _;
            let text = String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(&x.payload)
                    .unwrap(),
            )
            .unwrap_or_default();
            for other in selected.iter().filter(|o| o.logical_id != r.logical_id) {
                assert!(
                    !text.contains(&other.logical_id),
                    "{} {} still names {}'s logicalId",
                    r.display_name,
                    x.path,
                    other.display_name
                );
            }
        }
    }
    let (_, again) = fabrik_cli::publish::publisher::plan(
        &client,
        Arc::clone(&repo),
        Parameterization::none("test"),
        &ws.id,
        Unpublish::default(),
        8,
    )
    .await
    .unwrap();
    assert_eq!(
        again.change_count(),
        0,
        "{}",
        fabrik_cli::render::text(&again)
    );
    // The deployed definitions came from one bulk export, none read one by one.
    let reads = fabrik_cli::publish::publisher::DefinitionReads::of_plan(&again.workspaces[0])
        .expect("the plan says how definitions were read");
    assert_eq!(reads.bulk_exports, 1, "{reads:?}");
    assert!(
        reads.exported > 0 && reads.one_by_one.is_empty(),
        "{reads:?}"
    );
    emu.shutdown().await.unwrap();
}

async fn folder_of(
    client: &fabrik_client::FabricClient,
    ws: &str,
    name: &str,
) -> (String, Option<String>) {
    let items: Vec<fabrik_client::models::Item> = futures::TryStreamExt::try_collect(
        client.list_items(ws, &fabrik_client::ItemFilter::default()),
    )
    .await
    .unwrap();
    let i = items.into_iter().find(|i| i.display_name == name).unwrap();
    (i.id, i.folder_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_in_another_folder_is_moved_not_recreated_and_a_failed_run_moves_it_back() {
    let (emu, client, opts, _state) = crate::start().await;
    let ws = crate::workspace(&client, "moves").await;
    let repo = fixture();
    let flags = fabrik_flags::Flags::defaults();
    let plan = || {
        fabrik_cli::publish::publisher::plan(
            &client,
            Arc::clone(&repo),
            Parameterization::none("test"),
            &ws.id,
            Unpublish::default(),
            8,
        )
    };
    let (desired, first) = plan().await.unwrap();
    let report = fabrik_cli::run::apply(&client, &flags, &desired, &first, &opts)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let (utils, shared) = folder_of(&client, &ws.id, "Utils").await;
    assert!(shared.is_some());

    // Someone moved it to the root by hand: the plan moves it back, keeping the item.
    client.move_item(&ws.id, &utils, None).await.unwrap();
    let (desired, moved) = plan().await.unwrap();
    let changes: Vec<_> = moved.changes().map(|(_, c)| c).collect();
    assert_eq!(changes.len(), 1, "{}", fabrik_cli::render::text(&moved));
    assert_eq!(changes[0].address.key, "Notebook:Utils");
    assert_eq!(
        changes[0].detail.as_deref(),
        Some("moved from the workspace root to /notebooks/shared")
    );
    let report = fabrik_cli::run::apply(&client, &flags, &desired, &moved, &opts)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        folder_of(&client, &ws.id, "Utils").await,
        (utils.clone(), shared.clone())
    );
    assert_eq!(plan().await.unwrap().1.change_count(), 0);

    // A run that moves it and then fails moves it back.
    client.move_item(&ws.id, &utils, None).await.unwrap();
    let (daily, _) = folder_of(&client, &ws.id, "Daily Load").await;
    let def = client
        .get_item_definition(&ws.id, &daily, None)
        .await
        .unwrap();
    let mut changed = def.clone();
    changed.parts.retain(|p| p.path != ".schedules");
    client
        .update_item_definition(&ws.id, &daily, &changed, false)
        .await
        .unwrap();
    emu.set_faults(
        "POST /v1/workspaces/*/items/*/updateDefinition#1=403"
            .parse()
            .unwrap(),
    );
    let (desired, both) = plan().await.unwrap();
    assert_eq!(
        both.change_count(),
        2,
        "{}",
        fabrik_cli::render::text(&both)
    );
    let one_at_a_time = fabrik_cli::run::RunOptions {
        concurrency: 1,
        ..opts.clone()
    };
    let report = fabrik_cli::run::apply(&client, &flags, &desired, &both, &one_at_a_time)
        .await
        .unwrap();
    assert!(!report.errors.is_empty());
    assert!(
        report.rolled_back.iter().any(|r| r.contains("Utils")),
        "the move ran before the refusal and was undone: {:?}",
        report.rolled_back
    );
    assert_eq!(folder_of(&client, &ws.id, "Utils").await, (utils, None));
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublish_deletes_orphans_and_the_folders_they_leave_empty_but_keeps_guarded_ones() {
    use fabrik_client::models::{CreateFolderRequest, CreateItemRequest, ItemType};
    let (emu, client, opts, _state) = crate::start().await;
    let ws = crate::workspace(&client, "orphans").await;
    let repo = fixture();
    let flags = fabrik_flags::Flags::defaults();
    let plan = |unpublish: Unpublish| {
        fabrik_cli::publish::publisher::plan(
            &client,
            Arc::clone(&repo),
            Parameterization::none("test"),
            &ws.id,
            unpublish,
            8,
        )
    };
    let (desired, first) = plan(Unpublish::default()).await.unwrap();
    let report = fabrik_cli::run::apply(&client, &flags, &desired, &first, &opts)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    // Made by hand: a notebook two folders deep, one the exclude regex keeps, and a lakehouse
    // (data-bearing: deleted only with its flag).
    let old = client
        .create_folder(
            &ws.id,
            &CreateFolderRequest {
                display_name: "old".into(),
                parent_folder_id: None,
            },
        )
        .await
        .unwrap();
    let deeper = client
        .create_folder(
            &ws.id,
            &CreateFolderRequest {
                display_name: "deeper".into(),
                parent_folder_id: Some(old.id.clone()),
            },
        )
        .await
        .unwrap();
    let mut stale = CreateItemRequest::new("Stale", ItemType::from("Notebook"));
    stale.folder_id = Some(deeper.id.clone());
    client.create_item(&ws.id, &stale).await.unwrap();
    let keep = CreateItemRequest::new("KEEP_me", ItemType::from("Notebook"));
    client.create_item(&ws.id, &keep).await.unwrap();
    let scratch = CreateItemRequest::new("Scratch", ItemType::from("Lakehouse"));
    client.create_item(&ws.id, &scratch).await.unwrap();

    let unpublish = Unpublish {
        enabled: true,
        exclude_regex: Some(regex::Regex::new("^KEEP_").unwrap()),
        ..Unpublish::default()
    };
    let (desired, orphans) = plan(unpublish.clone()).await.unwrap();
    let mut deletes: Vec<String> = orphans
        .changes()
        .map(|(_, c)| c.address.key.clone())
        .collect();
    deletes.sort();
    assert_eq!(
        deletes,
        ["Notebook:Stale", "folder:old", "folder:old/deeper"],
        "{}",
        fabrik_cli::render::text(&orphans)
    );
    let report = fabrik_cli::run::apply(&client, &flags, &desired, &orphans, &opts)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let items: Vec<fabrik_client::models::Item> = futures::TryStreamExt::try_collect(
        client.list_items(&ws.id, &fabrik_client::ItemFilter::default()),
    )
    .await
    .unwrap();
    let names: Vec<&str> = items.iter().map(|i| i.display_name.as_str()).collect();
    assert!(!names.contains(&"Stale") && names.contains(&"KEEP_me") && names.contains(&"Scratch"));
    let folders: Vec<fabrik_client::models::Folder> =
        futures::TryStreamExt::try_collect(client.list_folders(&ws.id))
            .await
            .unwrap();
    assert_eq!(folders.len(), repo.folders.len(), "{folders:?}");

    // With its flag, the lakehouse goes too.
    let with_flag = Unpublish {
        features: vec!["enable_lakehouse_unpublish".into()],
        ..unpublish
    };
    let (_, more) = plan(with_flag).await.unwrap();
    let keys: Vec<String> = more.changes().map(|(_, c)| c.address.key.clone()).collect();
    assert_eq!(keys, ["Lakehouse:Scratch"]);
    emu.shutdown().await.unwrap();
}

/// Copies a directory tree (the test changes the copy, never the shared fixture).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_item_is_renamed_in_place_not_recreated() {
    let (emu, client, opts, _state) = crate::start().await;
    let ws = crate::workspace(&client, "renames").await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/git-format-repo"),
        &root,
    );
    let flags = fabrik_flags::Flags::defaults();
    let publish = |unpublish: Unpublish| {
        let repo = Arc::new(Repository::discover(&root, &DiscoverOptions::default()).unwrap());
        fabrik_cli::publish::publisher::plan(
            &client,
            repo,
            Parameterization::none("test"),
            &ws.id,
            unpublish,
            8,
        )
    };
    let (desired, first) = publish(Unpublish::default()).await.unwrap();
    let report = fabrik_cli::run::apply(&client, &flags, &desired, &first, &opts)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let (utils, folder) = folder_of(&client, &ws.id, "Utils").await;

    // The repository renames Utils to Helpers (its .platform displayName); nothing else.
    let platform = root.join("notebooks/shared/Utils.Notebook/.platform");
    let text = std::fs::read_to_string(&platform).unwrap();
    std::fs::write(&platform, text.replace("\"Utils\"", "\"Helpers\"")).unwrap();
    let unpublish = Unpublish {
        enabled: true,
        ..Unpublish::default()
    };
    let (desired, renamed) = publish(unpublish.clone()).await.unwrap();
    let changes: Vec<_> = renamed.changes().map(|(_, c)| c).collect();
    assert_eq!(changes.len(), 1, "{}", fabrik_cli::render::text(&renamed));
    assert_eq!(changes[0].address.key, "Notebook:Helpers");
    assert!(
        changes[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("renamed from Utils")),
        "{:?}",
        changes[0].detail
    );
    let report = fabrik_cli::run::apply(&client, &flags, &desired, &renamed, &opts)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(folder_of(&client, &ws.id, "Helpers").await, (utils, folder));
    assert_eq!(publish(unpublish).await.unwrap().1.change_count(), 0);
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kql_querysets_and_dashboards_get_their_databases_cluster_uri() {
    let (emu, client, opts, _state) = crate::start().await;
    let ws = crate::workspace(&client, "kql").await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let lid = |n: u8| format!("5c2e8a1d-7b3f-4e6a-9d0c-1f2e3d4c5b{n:02}");
    let put = |rel: &str, text: String| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let platform = |t: &str, name: &str, l: String| {
        serde_json::json!({"metadata": {"type": t, "displayName": name},
            "config": {"version": "2.0", "logicalId": l}})
        .to_string()
    };
    put(
        "EH.Eventhouse/.platform",
        platform("Eventhouse", "EH", lid(1)),
    );
    put("EH.Eventhouse/EventhouseProperties.json", "{}".into());
    put(
        "EH.Eventhouse/.children/Sales.KQLDatabase/.platform",
        platform("KQLDatabase", "Sales", lid(2)),
    );
    put(
        "EH.Eventhouse/.children/Sales.KQLDatabase/DatabaseProperties.json",
        serde_json::json!({"databaseType": "ReadWrite", "parentEventhouseItemId": lid(1)})
            .to_string(),
    );
    put(
        "Q.KQLQueryset/.platform",
        platform("KQLQueryset", "Q", lid(3)),
    );
    put(
        "Q.KQLQueryset/RealTimeQueryset.json",
        serde_json::json!({"queryset": {"dataSources": [
            {"clusterUri": "", "databaseItemId": lid(2), "databaseItemName": "Sales"}]}})
        .to_string(),
    );
    put(
        "D.KQLDashboard/.platform",
        platform("KQLDashboard", "D", lid(4)),
    );
    put(
        "D.KQLDashboard/RealTimeDashboard.json",
        serde_json::json!({"dataSources": [{"clusterUri": "", "name": "Sales", "database": "x"}]})
            .to_string(),
    );
    let repo = Arc::new(Repository::discover(root, &DiscoverOptions::default()).unwrap());
    let plan = || {
        fabrik_cli::publish::publisher::plan(
            &client,
            Arc::clone(&repo),
            Parameterization::none("test"),
            &ws.id,
            Unpublish::default(),
            8,
        )
    };
    let (desired, first) = plan().await.unwrap();
    let report = fabrik_cli::run::apply(
        &client,
        &fabrik_flags::Flags::defaults(),
        &desired,
        &first,
        &opts,
    )
    .await
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let (db, _) = folder_of(&client, &ws.id, "Sales").await;
    let uri = client
        .item_properties(&ws.id, "kqlDatabases", &db)
        .await
        .unwrap()
        .unwrap()["queryServiceUri"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!uri.is_empty());
    let read = |name: &'static str, path: &'static str| {
        let client = client.clone();
        let ws = ws.id.clone();
        async move {
            let (id, _) = folder_of(&client, &ws, name).await;
            let d = client.get_item_definition(&ws, &id, None).await.unwrap();
            let p = d.parts.into_iter().find(|p| p.path == path).unwrap();
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(p.payload)
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        }
    };
    let q = read("Q", "RealTimeQueryset.json").await;
    assert_eq!(q["queryset"]["dataSources"][0]["clusterUri"], uri.as_str());
    assert_eq!(
        q["queryset"]["dataSources"][0]["databaseItemId"],
        db.as_str()
    );
    let d = read("D", "RealTimeDashboard.json").await;
    assert_eq!(d["dataSources"][0]["clusterUri"], uri.as_str());
    assert_eq!(plan().await.unwrap().1.change_count(), 0);
    emu.shutdown().await.unwrap();
}
