//! Publishing the shared git-format fixture into a workspace of the emulator: every selected
//! item created (in its folder, after the items it references), logicalIds of deployed items
//! replaced by their ids, and a second publish of the unchanged repository plans nothing.

use std::path::Path;
use std::sync::Arc;

use fabrik_cli::publish::inputs::Unpublish;
use fabrik_cli::publish::pipeline::Parameterization;
use fabrik_cli::publish::repo::{DiscoverOptions, Repository};
use fabrik_client::models::CreateWorkspaceRequest;

fn fixture() -> Arc<Repository> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/git-format-repo");
    Arc::new(
        Repository::discover(&root, &DiscoverOptions::default()).expect("the fixture is valid"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_publishes_in_reference_order_and_a_second_publish_plans_nothing() {
    let (emu, client, opts, _state) = crate::start().await;
    let ws = client
        .create_workspace(&CreateWorkspaceRequest {
            display_name: "publish-target".into(),
            description: None,
            capacity_id: None,
            domain_id: None,
        })
        .await
        .unwrap();
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
        repo.folders.len() + selected.len(),
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
    emu.shutdown().await.unwrap();
}
