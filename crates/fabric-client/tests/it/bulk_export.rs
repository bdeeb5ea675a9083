//! `bulk_export_definitions` against the emulator: the long-running export through 202 and
//! polling, the git layout of its result, and the refusal a caller falls back from.

use std::time::Duration;

use fabrik_client::models::*;

use crate::emulator::Env;

fn notebook(code: &str) -> CreateItemRequest {
    let mut req = CreateItemRequest::new("Loader", ItemType::Notebook);
    req.definition = Some(ItemDefinition {
        format: None,
        parts: vec![DefinitionPart::from_bytes(
            "notebook-content.py",
            code.as_bytes(),
        )],
    });
    req
}

#[tokio::test]
async fn bulk_export_polls_the_operation_and_returns_the_git_layout() {
    let env = Env::with(|c| c.lro_delay = Duration::from_secs(30)).await;
    let c = &env.client;
    let ws = env.workspace("Export").await;
    let folder = c
        .create_folder(
            &ws.id,
            &CreateFolderRequest {
                display_name: "etl".into(),
                parent_folder_id: None,
            },
        )
        .await
        .unwrap();
    let mut req = notebook("print('bulk')\n");
    req.folder_id = Some(folder.id.clone());
    let nb = c.create_item(&ws.id, &req).await.unwrap();
    let wh = c
        .create_item(&ws.id, &CreateItemRequest::new("Gold", ItemType::Warehouse))
        .await
        .unwrap();

    let all = c
        .bulk_export_definitions(&ws.id, &BulkExportRequest::all())
        .await
        .unwrap();
    // The warehouse has no definition: `All` leaves it out.
    assert_eq!(
        all.item_definitions_index,
        vec![ItemDefinitionIndexEntry {
            id: nb.id.clone(),
            root_path: "/etl/Loader.Notebook".into(),
        }]
    );
    let parts = all.parts_of(&nb.id);
    let code = parts
        .iter()
        .find(|p| p.path == "notebook-content.py")
        .unwrap();
    assert_eq!(code.decode().unwrap(), b"print('bulk')\n");
    assert!(parts.iter().any(|p| p.path == ".platform"));
    // The same parts getDefinition gives, item by item.
    let single = c.get_item_definition(&ws.id, &nb.id, None).await.unwrap();
    let mut a: Vec<_> = parts.iter().map(|p| (&p.path, &p.payload)).collect();
    let mut b: Vec<_> = single.parts.iter().map(|p| (&p.path, &p.payload)).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // Long-running: a 202, polled after the server's Retry-After (30 s), on the manual clock.
    let log = env.requests().await;
    assert!(
        log.iter()
            .any(|l| l.contains("/items/bulkExportDefinitions ") && l.ends_with(" 202")),
        "{log:?}"
    );
    assert!(env.clock.sleeps().contains(&Duration::from_secs(30)));

    let selected = c
        .bulk_export_definitions(&ws.id, &BulkExportRequest::selective([nb.id.as_str()]))
        .await
        .unwrap();
    assert_eq!(selected.item_definitions_index.len(), 1);

    // A type the service cannot export: a 4xx the caller detects to fall back.
    let err = c
        .bulk_export_definitions(&ws.id, &BulkExportRequest::selective([wh.id.as_str()]))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.is_not_supported(), "{err}");
    assert_eq!(err.error_code(), Some("OperationNotSupportedForItem"));
    // A missing item is not a reason to fall back.
    let gone = c
        .bulk_export_definitions(
            &ws.id,
            &BulkExportRequest::selective(["00000000-0000-0000-0000-0000000000aa"]),
        )
        .await
        .unwrap_err();
    assert!(gone.is_not_found() && !gone.is_not_supported(), "{gone}");
}

#[tokio::test]
async fn throttling_is_not_a_refusal_to_fall_back_from() {
    let env = Env::with(|c| c.quota = Some(1)).await;
    let c = &env.client;
    // The quota's one call of the minute creates the workspace; the export is throttled.
    let ws = env.workspace("Busy").await;
    let err = c
        .bulk_export_definitions(&ws.id, &BulkExportRequest::all())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(429), "{err}");
    assert!(!err.is_not_supported());
}
