//! `bulk_import_definitions` against the emulator: a long-running import of workspace-absolute
//! parts creates items in the folders their paths name, and a second import updates them.

use std::time::Duration;

use fabrik_client::models::*;

use crate::emulator::Env;

fn part(path: &str, text: &str) -> DefinitionPart {
    DefinitionPart::from_bytes(path, text.as_bytes())
}

fn notebook(code: &str) -> BulkImportRequest {
    let platform = r#"{"metadata":{"type":"Notebook","displayName":"Loader"},"config":{"version":"2.0","logicalId":"7a1e2c44-0d6b-4a59-9a57-1f3c2a6b8e01"}}"#;
    BulkImportRequest {
        definition_parts: vec![
            part("/etl/Loader.Notebook/.platform", platform),
            part("/etl/Loader.Notebook/notebook-content.py", code),
        ],
        options: Some(BulkImportOptions {
            allow_pairing_by_name: Some(true),
        }),
    }
}

#[tokio::test]
async fn bulk_import_polls_the_operation_creates_then_updates() {
    let env = Env::with(|c| c.lro_delay = Duration::from_secs(30)).await;
    let c = &env.client;
    let ws = env.workspace("Import").await;

    let created = c
        .bulk_import_definitions(&ws.id, &notebook("print(1)\n"))
        .await
        .unwrap();
    let [d] = created.import_item_definitions_details.as_slice() else {
        panic!("{created:?}");
    };
    assert_eq!(d.item_display_name, "Loader");
    assert_eq!(d.item_type, "Notebook");
    assert_eq!(d.operation_type, Some(ItemDefinitionOperationType::Create));
    assert_eq!(
        d.operation_status,
        Some(ImportItemDefinitionOperationStatus::Succeeded)
    );
    let item = c.get_item(&ws.id, &d.item_id).await.unwrap();
    let folder = c
        .get_folder(&ws.id, item.folder_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(folder.display_name, "etl");
    // Long-running: a 202, polled after the server's Retry-After, on the manual clock.
    let log = env.requests().await;
    assert!(
        log.iter()
            .any(|l| l.contains("/items/bulkImportDefinitions ") && l.ends_with(" 202")),
        "{log:?}"
    );
    assert!(env.clock.sleeps().contains(&Duration::from_secs(30)));

    let updated = c
        .bulk_import_definitions(&ws.id, &notebook("print(2)\n"))
        .await
        .unwrap();
    let d2 = &updated.import_item_definitions_details[0];
    assert_eq!(d2.item_id, d.item_id);
    assert_eq!(d2.operation_type, Some(ItemDefinitionOperationType::Update));
    let def = c
        .get_item_definition(&ws.id, &d.item_id, None)
        .await
        .unwrap();
    let code = def
        .parts
        .iter()
        .find(|p| p.path == "notebook-content.py")
        .unwrap();
    assert_eq!(code.decode().unwrap(), b"print(2)\n");
}
