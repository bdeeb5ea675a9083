//! Each built-in kind carries out the undo records it journals, through the registry, against
//! the emulator: what is already gone is success, and a transient failure keeps its class so
//! the journal retries it.

use fabrik_cli::engine::kinds::capacity::CapacityUndo;
use fabrik_cli::engine::kinds::folder::FolderUndo;
use fabrik_cli::engine::kinds::git::GitUndo;
use fabrik_cli::engine::kinds::item::ItemUndo;
use fabrik_cli::engine::kinds::role::RoleUndo;
use fabrik_cli::engine::kinds::workspace::WorkspaceUndo;
use fabrik_cli::engine::{Recovery, Registry};
use fabrik_client::models::{
    AddRoleAssignmentRequest, CreateFolderRequest, CreateItemRequest, DefinitionPart,
    ItemDefinition, ItemType, Principal, PrincipalType, WorkspaceRole,
};
use fabrik_core::ErrorClass;
use fabrik_core::resource::{Undo, UndoOutcome, Undoer};

const OTHER: &str = "a1b2c3d4-0000-4000-8000-0000000000b2";

fn notebook(code: &str) -> ItemDefinition {
    ItemDefinition {
        format: None,
        parts: vec![DefinitionPart::from_bytes(
            "notebook-content.py",
            code.as_bytes(),
        )],
    }
}

/// Carries `undo` out twice: done, then already gone.
async fn twice(undoer: &Recovery, undo: &Undo) {
    assert_eq!(
        undoer.undo(undo).await.unwrap(),
        UndoOutcome::Done,
        "{undo:?}"
    );
    assert_eq!(
        undoer.undo(undo).await.unwrap(),
        UndoOutcome::AlreadyGone,
        "{undo:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_builtin_kind_undoes_its_own_records_and_treats_gone_as_done() {
    let (emu, c, _opts, _state) = crate::start().await;
    let undoer = Recovery::new(Registry::builtin(), c.clone());
    let ws = crate::workspace(&c, "Undo").await;
    let w = || ws.id.clone();
    let item = c
        .create_item(&ws.id, &CreateItemRequest::new("Tmp", ItemType::Notebook))
        .await
        .unwrap();
    twice(&undoer, &ItemUndo::delete(&ws.id, &item.id)).await;

    let principal = Principal::new(OTHER, PrincipalType::User);
    let req = AddRoleAssignmentRequest {
        principal,
        role: WorkspaceRole::Member,
    };
    c.add_role_assignment(&ws.id, &req).await.unwrap();
    let restore = RoleUndo::Restore {
        workspace_id: w(),
        assignment_id: OTHER.into(),
        role: "Viewer".into(),
    };
    assert_eq!(
        undoer.undo(&restore.record()).await.unwrap(),
        UndoOutcome::Done
    );
    let role = c.get_role_assignment(&ws.id, OTHER).await.unwrap().role;
    assert_eq!(role, WorkspaceRole::Viewer);
    let remove = RoleUndo::Remove {
        workspace_id: w(),
        assignment_id: OTHER.into(),
    };
    twice(&undoer, &remove.record()).await;

    let rename = WorkspaceUndo::Restore {
        workspace_id: w(),
        display_name: "Undo-old".into(),
        description: "before".into(),
    };
    assert_eq!(
        undoer.undo(&rename.record()).await.unwrap(),
        UndoOutcome::Done
    );
    let name = c.get_workspace(&ws.id).await.unwrap().display_name;
    assert_eq!(name, "Undo-old");

    items_folders_and_capacity(&undoer, &c, &ws.id).await;

    // Nothing connected: disconnecting is already done.
    let disconnect = Undo::new("git", &GitUndo::Disconnect { workspace_id: w() });
    assert_eq!(
        undoer.undo(&disconnect).await.unwrap(),
        UndoOutcome::AlreadyGone
    );
    twice(
        &undoer,
        &WorkspaceUndo::Delete { workspace_id: w() }.record(),
    )
    .await;

    // A transient failure is an error with its class, so the journal can retry it (a client
    // without a retry policy, so the 503 reaches the kind).
    let token = emu.mint_token_as(
        "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "ServicePrincipal",
        std::time::Duration::from_secs(3600),
    );
    let bare = fabrik_client::FabricClient::builder(format!("{}/v1", emu.base_url()))
        .token_provider(std::sync::Arc::new(
            fabrik_client::StaticTokenProvider::never_expiring(token.into()),
        ))
        .build()
        .unwrap();
    let once = Recovery::new(Registry::builtin(), bare);
    crate::put_faults(&emu, "DELETE /v1/workspaces/*#1=503").await;
    let ws2 = crate::workspace(&c, "Undo2").await;
    let drop2 = WorkspaceUndo::Delete {
        workspace_id: ws2.id.clone(),
    };
    let err = once.undo(&drop2.record()).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Transient);

    // A record of a kind this fabrik does not have fails, naming it; so does a payload its
    // kind cannot read.
    let alien = Undo::new("sparkPool", &serde_json::json!({"op": "delete"}));
    let err = undoer.undo(&alien).await.unwrap_err();
    assert!(err.message.contains("'sparkPool'"), "{}", err.message);
    assert_eq!(err.class, ErrorClass::Permanent);
    let garbled = Undo::new("folder", &serde_json::json!({"op": "explode"}));
    let err = undoer.undo(&garbled).await.unwrap_err();
    assert!(err.message.contains("kind 'folder'"), "{}", err.message);
    emu.shutdown().await.unwrap();
}

async fn items_folders_and_capacity(undoer: &Recovery, c: &fabrik_client::FabricClient, ws: &str) {
    let mut req = CreateItemRequest::new("Kept", ItemType::Notebook);
    req.definition = Some(notebook("v = 1\n"));
    let nb = c.create_item(ws, &req).await.unwrap();
    let before = c.get_item_definition(ws, &nb.id, None).await.unwrap();
    c.update_item_definition(ws, &nb.id, &notebook("v = 2\n"), false)
        .await
        .unwrap();
    let restore_def = ItemUndo::RestoreDefinition {
        workspace_id: ws.into(),
        item_id: nb.id.clone(),
        parts: before
            .parts
            .iter()
            .map(|p| fabrik_core::resource::DefinitionPart {
                path: p.path.clone(),
                payload: p.payload.clone(),
            })
            .collect(),
        format: None,
    };
    let done = undoer.undo(&restore_def.record()).await.unwrap();
    assert_eq!(done, UndoOutcome::Done);
    let after = c.get_item_definition(ws, &nb.id, None).await.unwrap();
    let code = after
        .parts
        .iter()
        .find(|p| p.path == "notebook-content.py")
        .unwrap();
    assert_eq!(code.decode().unwrap(), b"v = 1\n");
    let restore_item = ItemUndo::Restore {
        workspace_id: ws.into(),
        item_id: nb.id.clone(),
        display_name: "Kept-old".into(),
        description: "old".into(),
    };
    let done = undoer.undo(&restore_item.record()).await.unwrap();
    assert_eq!(done, UndoOutcome::Done);
    assert_eq!(
        c.get_item(ws, &nb.id).await.unwrap().display_name,
        "Kept-old"
    );

    let folder_req = CreateFolderRequest {
        display_name: "tmp".into(),
        parent_folder_id: None,
    };
    let folder = c.create_folder(ws, &folder_req).await.unwrap();
    let del_folder = FolderUndo::Delete {
        workspace_id: ws.into(),
        folder_id: folder.id.clone(),
    };
    twice(undoer, &del_folder.record()).await;

    let cap = c.list_capacities().collect_all().await.unwrap().remove(0);
    let assign = CapacityUndo::Assign {
        workspace_id: ws.into(),
        capacity_id: cap.id.clone(),
    };
    let done = undoer.undo(&Undo::new("capacity", &assign)).await.unwrap();
    assert_eq!(done, UndoOutcome::Done);
    assert_eq!(c.get_workspace(ws).await.unwrap().capacity_id, Some(cap.id));
    let unassign = CapacityUndo::Unassign {
        workspace_id: ws.into(),
    };
    let done = undoer
        .undo(&Undo::new("capacity", &unassign))
        .await
        .unwrap();
    assert_eq!(done, UndoOutcome::Done);
    assert_eq!(c.get_workspace(ws).await.unwrap().capacity_id, None);
}
