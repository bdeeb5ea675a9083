//! `fabrik export` round trip: the fixture published into one workspace, exported, the export
//! published into an empty workspace and exported again gives the same tree, ids aside.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use fabrik_cli::publish::export::{self, ExportOptions};
use fabrik_cli::publish::inputs::Unpublish;
use fabrik_cli::publish::pipeline::Parameterization;
use fabrik_cli::publish::repo::{DiscoverOptions, Repository};
use fabrik_cli::publish::snapshot;
use fabrik_client::FabricClient;
use fabrik_client::models::CreateWorkspaceRequest;

async fn publish(client: &FabricClient, opts: &fabrik_cli::run::RunOptions, root: &Path, ws: &str) {
    let repo = Arc::new(Repository::discover(root, &DiscoverOptions::default()).unwrap());
    let (desired, plan) = fabrik_cli::publish::publisher::plan(
        client,
        repo,
        Parameterization::none("test"),
        ws,
        Unpublish::default(),
        8,
    )
    .await
    .unwrap();
    let report = fabrik_cli::run::apply(
        client,
        &fabrik_flags::Flags::defaults(),
        &desired,
        &plan,
        opts,
    )
    .await
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

async fn export_to(client: &FabricClient, ws: &str, dir: &Path) {
    let items = snapshot::read_workspace(client, ws, 8).await.unwrap();
    let opts = ExportOptions {
        workspace_id: Some(ws.to_string()),
        pools: snapshot::read_pools(client, ws, &items).await.unwrap(),
    };
    export::export(dir, &items, &opts).unwrap();
}

/// Every file under `dir` by relative path, each item's logicalId replaced by `Type:Name`.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(
                    rel,
                    String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into(),
                );
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    let mut names = Vec::new();
    for (path, text) in &files {
        if path.ends_with(".platform") {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            names.push((
                v["config"]["logicalId"].as_str().unwrap().to_string(),
                format!(
                    "<{}:{}>",
                    v["metadata"]["type"].as_str().unwrap(),
                    v["metadata"]["displayName"].as_str().unwrap()
                ),
            ));
        }
    }
    files
        .into_iter()
        .map(|(p, mut t)| {
            for (id, name) in &names {
                t = t.replace(id, name);
            }
            (p, t)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_an_export_into_an_empty_workspace_and_exporting_again_gives_the_same_tree() {
    let (emu, client, opts, _state) = crate::start().await;
    let mut ids = Vec::new();
    for name in ["source", "copy"] {
        let ws = client
            .create_workspace(&CreateWorkspaceRequest {
                display_name: name.into(),
                description: None,
                capacity_id: None,
                domain_id: None,
            })
            .await
            .unwrap();
        ids.push(ws.id);
    }
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/git-format-repo");
    publish(&client, &opts, &fixture, &ids[0]).await;
    let out = tempfile::tempdir().unwrap();
    let (first, second) = (out.path().join("first"), out.path().join("second"));
    export_to(&client, &ids[0], &first).await;
    let exported = Repository::discover(&first, &DiscoverOptions::default()).unwrap();
    let fixture_repo = Repository::discover(&fixture, &DiscoverOptions::default()).unwrap();
    assert_eq!(exported.items.len(), fixture_repo.items.len());
    assert_eq!(exported.folders, fixture_repo.folders);
    // The export's logicalIds are the source workspace's item ids; its own id is the zero GUID.
    let first_tree = tree(&first);
    assert!(
        !first_tree.values().any(|t| t.contains(&ids[0])),
        "the source workspace id is written as the zero GUID"
    );

    publish(&client, &opts, &first, &ids[1]).await;
    export_to(&client, &ids[1], &second).await;
    let second_tree = tree(&second);
    assert_eq!(
        first_tree.keys().collect::<Vec<_>>(),
        second_tree.keys().collect::<Vec<_>>()
    );
    for (path, text) in &first_tree {
        assert_eq!(&second_tree[path], text, "{path}");
    }
    emu.shutdown().await.unwrap();
}
