//! The client against fabrik-emulator in-process, over loopback: every endpoint, LRO through
//! 201 and 202, pagination, idempotent creates, the undoer, token expiry and refresh.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use fabrik_client::models::*;
use fabrik_client::{FabricClient, FabricError, ItemFilter, Origin, StaticTokenProvider};
use fabrik_core::time::{Clock, ManualClock};
use fabrik_core::{AccessToken, AuthError, Classify, ErrorClass, TokenProvider};
use fabrik_emulator::{CreateMode, Emulator, EmulatorConfig};
use futures::TryStreamExt;
use serde_json::Value;

pub(crate) const ME: &str = "a1b2c3d4-0000-4000-8000-000000000001";
const OTHER: &str = "a1b2c3d4-0000-4000-8000-0000000000b2";

pub(crate) struct Env {
    pub(crate) emu: Emulator,
    pub(crate) client: FabricClient,
    pub(crate) clock: ManualClock,
}

impl Env {
    pub(crate) async fn start() -> Env {
        Self::with(|_| {}).await
    }

    /// An emulator and a client sharing one auto-advancing manual clock: every wait the
    /// client makes moves both, so LRO delays and Retry-After cost no real time.
    pub(crate) async fn with(f: impl FnOnce(&mut EmulatorConfig)) -> Env {
        let clock = ManualClock::auto_advance();
        let mut config = EmulatorConfig {
            clock: Arc::new(clock.clone()),
            sleeper: Arc::new(clock.clone()),
            ..EmulatorConfig::default()
        };
        f(&mut config);
        let emu = Emulator::start(config).await.expect("emulator starts");
        let token = emu.mint_token(ME, Duration::from_secs(24 * 3600));
        let client = builder(&emu, &clock)
            .token_provider(Arc::new(StaticTokenProvider::never_expiring(token.into())))
            .build()
            .expect("client");
        Env { emu, client, clock }
    }

    /// The emulator's request log as `METHOD path status` lines.
    pub(crate) async fn requests(&self) -> Vec<String> {
        let log: Value = reqwest::get(format!("{}/_emulator/requests", self.emu.base_url()))
            .await
            .expect("log")
            .json()
            .await
            .expect("log json");
        log["requests"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}",
                    e["method"].as_str().unwrap_or(""),
                    e["path"].as_str().unwrap_or(""),
                    e["status"]
                )
            })
            .collect()
    }

    pub(crate) async fn set_faults(&self, spec: &str) {
        let r = reqwest::Client::new()
            .put(format!("{}/_emulator/faults", self.emu.base_url()))
            .json(&serde_json::json!({ "spec": spec }))
            .send()
            .await
            .expect("faults");
        assert!(r.status().is_success(), "faults '{spec}' refused");
    }

    pub(crate) async fn workspace(&self, name: &str) -> Workspace {
        self.client
            .create_workspace(&CreateWorkspaceRequest {
                display_name: name.into(),
                ..Default::default()
            })
            .await
            .expect("workspace")
    }
}

/// A client builder on the shared clock; no per-call timeout, since an auto-advancing sleeper
/// would fire it at once.
pub(crate) fn builder(emu: &Emulator, clock: &ManualClock) -> fabrik_client::FabricClientBuilder {
    FabricClient::builder(emu.base_url())
        .clock(Arc::new(clock.clone()))
        .sleeper(Arc::new(clock.clone()))
        .call_timeout(None)
}

fn count(log: &[String], prefix: &str) -> usize {
    log.iter().filter(|l| l.starts_with(prefix)).count()
}

#[tokio::test]
async fn workspaces_and_capacities_round_trip() {
    let env = Env::start().await;
    let c = &env.client;
    let ws = c
        .create_workspace(&CreateWorkspaceRequest {
            display_name: "Sales".into(),
            description: Some("sales data".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ws.display_name, "Sales");
    assert_eq!(ws.description, "sales data");

    let got = c.get_workspace(&ws.id).await.unwrap();
    assert_eq!(got.id, ws.id);
    let all = c.list_workspaces().collect_all().await.unwrap();
    assert!(all.iter().any(|w| w.id == ws.id));

    let updated = c
        .update_workspace(
            &ws.id,
            &UpdateWorkspaceRequest {
                display_name: Some("Sales EU".into()),
                description: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.display_name, "Sales EU");
    assert_eq!(updated.description, "sales data");

    let caps = c.list_capacities().collect_all().await.unwrap();
    assert!(!caps.is_empty());
    let cap = c.get_capacity(&caps[0].id).await.unwrap();
    assert_eq!(cap.id, caps[0].id);
    c.assign_to_capacity(&ws.id, &cap.id).await.unwrap();
    let assigned = c.get_workspace(&ws.id).await.unwrap();
    assert_eq!(assigned.capacity_id.as_deref(), Some(cap.id.as_str()));
    c.unassign_from_capacity(&ws.id).await.unwrap();
    assert_eq!(c.get_workspace(&ws.id).await.unwrap().capacity_id, None);

    c.delete_workspace(&ws.id).await.unwrap();
    let err = c.get_workspace(&ws.id).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.error_code(), Some("WorkspaceNotFound"));
    assert_eq!(err.class(), ErrorClass::Permanent);
    // Correlation: the service's request id and ours are both on the error.
    let api = err.api().unwrap();
    assert!(api.request_id.as_deref().is_some_and(|r| !r.is_empty()));
    assert!(api.client_request_id.is_some());
    assert_eq!(api.operation, "GET /v1/workspaces/{workspaceId}");
}

#[tokio::test]
async fn role_assignments_round_trip() {
    let env = Env::start().await;
    let c = &env.client;
    let ws = env.workspace("Roles").await;
    let added = c
        .add_role_assignment(
            &ws.id,
            &AddRoleAssignmentRequest {
                principal: Principal::new(OTHER, PrincipalType::User),
                role: WorkspaceRole::Viewer,
            },
        )
        .await
        .unwrap();
    assert_eq!(added.id, OTHER);
    assert_eq!(added.role, WorkspaceRole::Viewer);
    let got = c.get_role_assignment(&ws.id, OTHER).await.unwrap();
    assert_eq!(got.principal.kind, PrincipalType::User);
    let all = c.list_role_assignments(&ws.id).collect_all().await.unwrap();
    assert!(all.iter().any(|r| r.id == OTHER));
    // The creator is Admin, as in the real service.
    assert!(
        all.iter()
            .any(|r| r.id == ME && r.role == WorkspaceRole::Admin)
    );
    let up = c
        .update_role_assignment(&ws.id, OTHER, WorkspaceRole::Contributor)
        .await
        .unwrap();
    assert_eq!(up.role, WorkspaceRole::Contributor);
    let again = c
        .add_role_assignment(
            &ws.id,
            &AddRoleAssignmentRequest {
                principal: Principal::new(OTHER, PrincipalType::User),
                role: WorkspaceRole::Viewer,
            },
        )
        .await
        .unwrap_err();
    assert!(again.is_name_conflict(), "{again}");
    c.delete_role_assignment(&ws.id, OTHER).await.unwrap();
    assert!(
        c.get_role_assignment(&ws.id, OTHER)
            .await
            .unwrap_err()
            .is_not_found()
    );

    // ensure_role_assignment: created, then found; and after apply-then-500, recovered.
    let req = AddRoleAssignmentRequest {
        principal: Principal::new(OTHER, PrincipalType::User),
        role: WorkspaceRole::Member,
    };
    let first = c.ensure_role_assignment(&ws.id, &req).await.unwrap();
    assert_eq!(first.origin, Origin::Created);
    let second = c.ensure_role_assignment(&ws.id, &req).await.unwrap();
    assert_eq!(second.origin, Origin::AlreadyExisted);
    assert_eq!(second.value.role, WorkspaceRole::Member);
    c.delete_role_assignment(&ws.id, OTHER).await.unwrap();
    env.set_faults(&format!(
        "POST /v1/workspaces/{}/roleAssignments#1=apply-then-500",
        ws.id
    ))
    .await;
    let third = c.ensure_role_assignment(&ws.id, &req).await.unwrap();
    assert_eq!(third.origin, Origin::Recovered);
    assert_eq!(third.value.id, OTHER);
}

fn notebook_definition(code: &str) -> ItemDefinition {
    ItemDefinition {
        format: None,
        parts: vec![DefinitionPart::from_bytes(
            "notebook-content.py",
            code.as_bytes(),
        )],
    }
}

#[tokio::test]
async fn generic_items_round_trip_with_definitions() {
    let env = Env::start().await;
    let c = &env.client;
    let ws = env.workspace("Items").await;
    let mut req = CreateItemRequest::new("Hello", ItemType::Notebook);
    req.description = Some("first".into());
    req.definition = Some(notebook_definition("print(1)\n"));
    let nb = c.create_item(&ws.id, &req).await.unwrap();
    assert_eq!(nb.kind, ItemType::Notebook);
    assert_eq!(nb.workspace_id, ws.id);
    let lh = c
        .create_item(
            &ws.id,
            &CreateItemRequest::new("Bronze", ItemType::Lakehouse),
        )
        .await
        .unwrap();

    assert_eq!(
        c.get_item(&ws.id, &nb.id).await.unwrap().display_name,
        "Hello"
    );
    let all = c
        .list_items(&ws.id, &ItemFilter::default())
        .collect_all()
        .await
        .unwrap();
    assert!(all.iter().any(|i| i.id == nb.id) && all.iter().any(|i| i.id == lh.id));
    let only_lh = c
        .list_items(&ws.id, &ItemFilter::of_type(ItemType::Lakehouse))
        .collect_all()
        .await
        .unwrap();
    assert!(only_lh.iter().all(|i| i.kind == ItemType::Lakehouse));
    assert!(only_lh.iter().any(|i| i.id == lh.id));

    let up = c
        .update_item(
            &ws.id,
            &nb.id,
            &UpdateItemRequest {
                display_name: Some("Hello2".into()),
                description: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(up.display_name, "Hello2");

    let def = c.get_item_definition(&ws.id, &nb.id, None).await.unwrap();
    let part = def
        .parts
        .iter()
        .find(|p| p.path == "notebook-content.py")
        .unwrap();
    assert_eq!(part.decode().unwrap(), b"print(1)\n");
    c.update_item_definition(&ws.id, &nb.id, &notebook_definition("print(2)\n"), false)
        .await
        .unwrap();
    let def = c.get_item_definition(&ws.id, &nb.id, None).await.unwrap();
    let part = def
        .parts
        .iter()
        .find(|p| p.path == "notebook-content.py")
        .unwrap();
    assert_eq!(part.decode().unwrap(), b"print(2)\n");

    c.delete_item(&ws.id, &nb.id).await.unwrap();
    assert!(c.get_item(&ws.id, &nb.id).await.unwrap_err().is_not_found());
    let err = c
        .create_item(
            &ws.id,
            &CreateItemRequest::new("Bronze", ItemType::Lakehouse),
        )
        .await
        .unwrap_err();
    assert!(err.is_name_conflict(), "{err}");
}

#[tokio::test]
async fn lakehouses_and_notebooks_on_their_typed_endpoints() {
    let env = Env::start().await;
    let c = &env.client;
    let ws = env.workspace("Typed").await;
    let mut req = CreateItemRequest::new("Silver", ItemType::Lakehouse);
    req.creation_payload = Some(serde_json::json!({"enableSchemas": true}));
    let lh = c.create_lakehouse(&ws.id, &req).await.unwrap();
    assert_eq!(lh.kind, ItemType::Lakehouse);
    let got = c.get_lakehouse(&ws.id, &lh.id).await.unwrap();
    let props = got.properties.expect("lakehouse properties");
    assert!(props.one_lake_tables_path.is_some());
    assert_eq!(
        c.list_lakehouses(&ws.id).collect_all().await.unwrap().len(),
        1
    );
    let up = c
        .update_lakehouse(
            &ws.id,
            &lh.id,
            &UpdateItemRequest {
                description: Some("d".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(up.description, "d");
    let def = c.get_lakehouse_definition(&ws.id, &lh.id).await.unwrap();
    c.update_lakehouse_definition(&ws.id, &lh.id, &def, false)
        .await
        .unwrap();
    c.delete_lakehouse(&ws.id, &lh.id).await.unwrap();
    assert!(
        c.get_lakehouse(&ws.id, &lh.id)
            .await
            .unwrap_err()
            .is_not_found()
    );

    let mut req = CreateItemRequest::new("Explore", ItemType::Notebook);
    req.definition = Some(notebook_definition("x = 1\n"));
    let nb = c.create_notebook(&ws.id, &req).await.unwrap();
    assert_eq!(
        c.get_notebook(&ws.id, &nb.id).await.unwrap().kind,
        ItemType::Notebook
    );
    assert_eq!(
        c.list_notebooks(&ws.id).collect_all().await.unwrap().len(),
        1
    );
    c.update_notebook(
        &ws.id,
        &nb.id,
        &UpdateItemRequest {
            display_name: Some("Explore2".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    c.update_notebook_definition(&ws.id, &nb.id, &notebook_definition("x = 2\n"), false)
        .await
        .unwrap();
    let def = c
        .get_notebook_definition(&ws.id, &nb.id, None)
        .await
        .unwrap();
    let part = def
        .parts
        .iter()
        .find(|p| p.path.starts_with("notebook-content"))
        .unwrap();
    assert_eq!(part.decode().unwrap(), b"x = 2\n");
    c.delete_notebook(&ws.id, &nb.id).await.unwrap();
    assert!(
        c.get_notebook(&ws.id, &nb.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn creates_answered_201_need_no_polling() {
    let env = Env::with(|c| c.create_mode = CreateMode::Immediate201).await;
    let ws = env.workspace("Sync").await;
    env.client
        .create_item(
            &ws.id,
            &CreateItemRequest::new("Bronze", ItemType::Lakehouse),
        )
        .await
        .unwrap();
    let log = env.requests().await;
    assert_eq!(count(&log, "POST /v1/workspaces/"), 1, "{log:?}");
    assert!(
        log.iter()
            .any(|l| l.starts_with("POST /v1/workspaces/") && l.ends_with(" 201")),
        "{log:?}"
    );
    assert_eq!(count(&log, "GET /v1/operations/"), 0, "{log:?}");
    assert!(env.clock.sleeps().is_empty());
}

#[tokio::test]
async fn creates_answered_202_poll_with_retry_after_and_fetch_the_result() {
    let env = Env::with(|c| {
        c.create_mode = CreateMode::Lro202;
        c.lro_delay = Duration::from_secs(45);
    })
    .await;
    let ws = env.workspace("Async").await;
    let item = env
        .client
        .create_item(
            &ws.id,
            &CreateItemRequest::new("Bronze", ItemType::Lakehouse),
        )
        .await
        .unwrap();
    assert_eq!(item.display_name, "Bronze");
    assert_eq!(item.kind, ItemType::Lakehouse);
    // It exists on the server, once.
    let listed = env
        .client
        .list_lakehouses(&ws.id)
        .collect_all()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, item.id);
    let log = env.requests().await;
    assert!(
        log.iter()
            .any(|l| l.starts_with("POST /v1/workspaces/") && l.ends_with(" 202")),
        "{log:?}"
    );
    assert!(count(&log, "GET /v1/operations/") >= 2, "{log:?}");
    assert!(
        log.iter()
            .any(|l| l.starts_with("GET /v1/operations/") && l.contains("/result ")),
        "{log:?}"
    );
    // Every wait honoured the server's Retry-After (45 s), on the injected clock only.
    let sleeps = env.clock.sleeps();
    assert!(!sleeps.is_empty());
    assert!(
        sleeps.iter().all(|s| *s == Duration::from_secs(45)),
        "{sleeps:?}"
    );
}

#[tokio::test]
async fn a_long_running_operation_stops_at_the_callers_deadline() {
    let env = Env::with(|c| {
        c.create_mode = CreateMode::Lro202;
        c.lro_delay = Duration::from_secs(600);
    })
    .await;
    let ws = env.workspace("Slow").await;
    let err = env
        .client
        .with_lro_deadline(Duration::from_secs(300))
        .create_item(
            &ws.id,
            &CreateItemRequest::new("Bronze", ItemType::Lakehouse),
        )
        .await
        .unwrap_err();
    match &err {
        FabricError::OperationTimedOut {
            deadline, status, ..
        } => {
            assert_eq!(*deadline, Duration::from_secs(300));
            assert_eq!(status, "NotStarted");
        }
        other => panic!("expected OperationTimedOut, got {other}"),
    }
    assert_eq!(err.class(), ErrorClass::Timeout);
    // It gave up without sleeping past the deadline.
    assert!(env.clock.elapsed() <= Duration::from_secs(300));
    // A longer deadline on the same client finishes it.
    let ok = env
        .client
        .with_lro_deadline(Duration::from_secs(3600))
        .create_item(
            &ws.id,
            &CreateItemRequest::new("Silver", ItemType::Lakehouse),
        )
        .await;
    assert!(ok.is_ok(), "{ok:?}");
}

#[tokio::test]
async fn lists_follow_continuation_across_pages() {
    let env = Env::with(|c| c.page_size = 2).await;
    let ws = env.workspace("Paged").await;
    for i in 0..5 {
        env.client
            .create_item(
                &ws.id,
                &CreateItemRequest::new(format!("LH_{i}"), ItemType::Lakehouse),
            )
            .await
            .unwrap();
    }
    env.client
        .create_item(&ws.id, &CreateItemRequest::new("NB", ItemType::Notebook))
        .await
        .unwrap();
    let lakehouses = env
        .client
        .list_items(&ws.id, &ItemFilter::of_type(ItemType::Lakehouse))
        .collect_all()
        .await
        .unwrap();
    let mut names: Vec<_> = lakehouses.iter().map(|i| i.display_name.clone()).collect();
    names.sort();
    assert_eq!(names, ["LH_0", "LH_1", "LH_2", "LH_3", "LH_4"]);
    let log = env.requests().await;
    assert_eq!(
        count(&log, &format!("GET /v1/workspaces/{}/items", ws.id)),
        3,
        "{log:?}"
    );

    // The stream is lazy: taking two items reads one page.
    let before = env.requests().await.len();
    let first_two: Vec<Item> =
        futures::StreamExt::take(env.client.list_items(&ws.id, &ItemFilter::default()), 2)
            .try_collect()
            .await
            .unwrap();
    assert_eq!(first_two.len(), 2);
    assert_eq!(env.requests().await.len(), before + 1);
}

#[tokio::test]
async fn folders_round_trip() {
    let env = Env::start().await;
    let c = &env.client;
    let ws = env.workspace("Folders").await;
    let top = c
        .create_folder(
            &ws.id,
            &CreateFolderRequest {
                display_name: "raw".into(),
                parent_folder_id: None,
            },
        )
        .await
        .unwrap();
    let sub = c
        .create_folder(
            &ws.id,
            &CreateFolderRequest {
                display_name: "daily".into(),
                parent_folder_id: Some(top.id.clone()),
            },
        )
        .await
        .unwrap();
    assert_eq!(sub.parent_folder_id.as_deref(), Some(top.id.as_str()));
    assert_eq!(
        c.get_folder(&ws.id, &sub.id).await.unwrap().display_name,
        "daily"
    );
    assert_eq!(c.list_folders(&ws.id).collect_all().await.unwrap().len(), 2);
    assert_eq!(
        c.update_folder(&ws.id, &sub.id, "hourly")
            .await
            .unwrap()
            .display_name,
        "hourly"
    );
    let moved = c.move_folder(&ws.id, &sub.id, None).await.unwrap();
    assert_eq!(moved.parent_folder_id, None);
    let mut req = CreateItemRequest::new("InFolder", ItemType::Notebook);
    req.folder_id = Some(top.id.clone());
    let nb = c.create_item(&ws.id, &req).await.unwrap();
    assert_eq!(nb.folder_id.as_deref(), Some(top.id.as_str()));
    let in_top = c
        .list_items(
            &ws.id,
            &ItemFilter {
                root_folder_id: Some(top.id.clone()),
                ..Default::default()
            },
        )
        .collect_all()
        .await
        .unwrap();
    assert_eq!(in_top.len(), 1);
    c.delete_folder(&ws.id, &sub.id).await.unwrap();
    assert!(
        c.get_folder(&ws.id, &sub.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn git_connect_initialize_status_commit_update_disconnect() {
    let env = Env::with(|c| {
        c.create_mode = CreateMode::Lro202;
        c.lro_delay = Duration::from_secs(5);
    })
    .await;
    let c = &env.client;
    let ws = env.workspace("Git").await;
    let cap = c.list_capacities().collect_all().await.unwrap().remove(0);
    c.assign_to_capacity(&ws.id, &cap.id).await.unwrap();
    let before = c.git_connection(&ws.id).await.unwrap();
    assert_eq!(
        before.git_connection_state,
        Some(GitConnectionState::NotConnected)
    );
    let details = GitProviderDetails {
        git_provider_type: GitProviderType::AzureDevOps,
        repository_name: "repo".into(),
        branch_name: "main".into(),
        directory_name: "/fabric".into(),
        organization_name: Some("org".into()),
        project_name: Some("proj".into()),
        owner_name: None,
        custom_domain_name: None,
    };
    c.git_connect(
        &ws.id,
        &GitConnectRequest {
            git_provider_details: details.clone(),
            my_git_credentials: None,
        },
    )
    .await
    .unwrap();
    let conn = c.git_connection(&ws.id).await.unwrap();
    assert_eq!(
        conn.git_connection_state,
        Some(GitConnectionState::Connected)
    );
    assert_eq!(
        conn.git_provider_details
            .as_ref()
            .map(|d| d.branch_name.as_str()),
        Some("main")
    );

    let init = c
        .git_initialize(
            &ws.id,
            &InitializeGitConnectionRequest {
                initialization_strategy: Some(InitializationStrategy::PreferWorkspace),
            },
        )
        .await
        .unwrap();
    assert!(init.required_action.is_some());
    c.create_item(
        &ws.id,
        &CreateItemRequest::new("Tracked", ItemType::Notebook),
    )
    .await
    .unwrap();
    let status = c.git_status(&ws.id).await.unwrap();
    assert!(
        status
            .changes
            .iter()
            .any(|ch| ch.item_metadata.display_name == "Tracked"),
        "{status:?}"
    );
    c.git_commit(
        &ws.id,
        &CommitToGitRequest {
            mode: CommitMode::All,
            workspace_head: status.workspace_head.clone(),
            comment: Some("fabrik".into()),
            items: vec![],
        },
    )
    .await
    .unwrap();
    let after = c.git_status(&ws.id).await.unwrap();
    assert!(after.changes.is_empty(), "{after:?}");
    if let Some(remote) = after.remote_commit_hash.clone() {
        c.git_update(
            &ws.id,
            &UpdateFromGitRequest {
                workspace_head: after.workspace_head.clone(),
                remote_commit_hash: remote,
                conflict_resolution: Some(ConflictResolution {
                    conflict_resolution_type: ConflictResolutionType::Workspace,
                    conflict_resolution_policy: ConflictResolutionPolicy::PreferRemote,
                }),
                options: Some(UpdateOptions {
                    allow_override_items: Some(true),
                }),
            },
        )
        .await
        .unwrap();
    }
    c.git_disconnect(&ws.id).await.unwrap();
    let gone = c.git_connection(&ws.id).await.unwrap();
    assert_eq!(
        gone.git_connection_state,
        Some(GitConnectionState::NotConnected)
    );
}

#[tokio::test]
async fn get_or_create_resolves_conflicts_and_apply_then_fail() {
    let env = Env::start().await;
    let c = &env.client;
    let req = CreateWorkspaceRequest {
        display_name: "Idem".into(),
        ..Default::default()
    };
    let first = c.get_or_create_workspace(&req).await.unwrap();
    assert_eq!(first.origin, Origin::Created);
    let second = c.get_or_create_workspace(&req).await.unwrap();
    assert_eq!(second.origin, Origin::AlreadyExisted);
    assert_eq!(second.value.id, first.value.id);
    assert!(!second.created_here());

    // The server applies the create, then answers 500: the workspace is found, not duplicated.
    env.set_faults("POST /v1/workspaces#1=apply-then-500").await;
    let req2 = CreateWorkspaceRequest {
        display_name: "Applied".into(),
        ..Default::default()
    };
    let rec = c.get_or_create_workspace(&req2).await.unwrap();
    assert_eq!(rec.origin, Origin::Recovered);
    assert!(rec.created_here());
    env.set_faults("").await;
    let named: Vec<_> = c
        .list_workspaces()
        .collect_all()
        .await
        .unwrap()
        .into_iter()
        .filter(|w| w.display_name == "Applied")
        .collect();
    assert_eq!(named.len(), 1);

    // Items: a dropped connection after the create was applied.
    let ws = first.value;
    env.set_faults(&format!(
        "POST /v1/workspaces/{}/items#1=apply-then-reset",
        ws.id
    ))
    .await;
    let item_req = CreateItemRequest::new("Gold", ItemType::Lakehouse);
    let item = c.get_or_create_item(&ws.id, &item_req).await.unwrap();
    assert_eq!(item.origin, Origin::Recovered);
    env.set_faults("").await;
    let again = c.get_or_create_item(&ws.id, &item_req).await.unwrap();
    assert_eq!(again.origin, Origin::AlreadyExisted);
    assert_eq!(again.value.id, item.value.id);
    assert_eq!(
        c.list_lakehouses(&ws.id).collect_all().await.unwrap().len(),
        1
    );

    // A same-named item of another type is not "the existing one".
    let nb = c
        .get_or_create_item(&ws.id, &CreateItemRequest::new("Gold", ItemType::Notebook))
        .await;
    match nb {
        Ok(e) => assert_eq!(e.value.kind, ItemType::Notebook),
        Err(e) => assert!(e.is_name_conflict(), "{e}"),
    }

    // A plain failure (not a conflict, not ambiguous) is reported as it is.
    env.set_faults(&format!("POST /v1/workspaces/{}/items#1=400", ws.id))
        .await;
    let err = c
        .get_or_create_item(
            &ws.id,
            &CreateItemRequest::new("Platinum", ItemType::Lakehouse),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));

    let folder_req = CreateFolderRequest {
        display_name: "f".into(),
        parent_folder_id: None,
    };
    env.set_faults("").await;
    let f1 = c.get_or_create_folder(&ws.id, &folder_req).await.unwrap();
    let f2 = c.get_or_create_folder(&ws.id, &folder_req).await.unwrap();
    assert_eq!(
        (f1.origin, f2.origin),
        (Origin::Created, Origin::AlreadyExisted)
    );
    assert_eq!(f1.value.id, f2.value.id);
}

/// Mints emulator tokens on demand, counting how often it is asked, and claims each lives
/// `claimed` (which may be longer than the emulator will honour).
#[derive(Debug)]
struct Minting {
    emu: Arc<Emulator>,
    clock: ManualClock,
    lifetime: Duration,
    claimed: Duration,
    calls: AtomicU32,
}

#[async_trait]
impl TokenProvider for Minting {
    async fn token(&self, _scopes: &[&str]) -> Result<AccessToken, AuthError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let t = self.emu.mint_token(ME, self.lifetime);
        Ok(AccessToken {
            token: t.into(),
            expires_at: self.clock.system_now() + self.claimed,
        })
    }
    fn describe(&self) -> String {
        "minting test provider".into()
    }
}

#[tokio::test]
async fn tokens_are_cached_refreshed_before_expiry_and_once_on_token_expired() {
    let clock = ManualClock::new();
    let emu = Arc::new(
        Emulator::start(EmulatorConfig {
            clock: Arc::new(clock.clone()),
            sleeper: Arc::new(clock.clone()),
            ..EmulatorConfig::default()
        })
        .await
        .unwrap(),
    );
    let honest = Arc::new(Minting {
        emu: emu.clone(),
        clock: clock.clone(),
        lifetime: Duration::from_secs(600),
        claimed: Duration::from_secs(600),
        calls: AtomicU32::new(0),
    });
    let client = builder(&emu, &clock)
        .token_provider(honest.clone())
        .token_refresh_before(Duration::from_secs(120))
        .build()
        .unwrap();
    for _ in 0..3 {
        client.list_capacities().collect_all().await.unwrap();
    }
    assert_eq!(
        honest.calls.load(Ordering::SeqCst),
        1,
        "cached across calls"
    );
    clock.advance(Duration::from_secs(7 * 60));
    client.list_capacities().collect_all().await.unwrap();
    assert_eq!(
        honest.calls.load(Ordering::SeqCst),
        1,
        "still 3 minutes left"
    );
    clock.advance(Duration::from_secs(90));
    client.list_capacities().collect_all().await.unwrap();
    assert_eq!(
        honest.calls.load(Ordering::SeqCst),
        2,
        "refreshed inside the 2-minute margin"
    );

    // A token that dies before its claimed expiry: 401 TokenExpired, refresh once, repeat.
    let liar = Arc::new(Minting {
        emu: emu.clone(),
        clock: clock.clone(),
        lifetime: Duration::from_secs(60),
        claimed: Duration::from_secs(3600),
        calls: AtomicU32::new(0),
    });
    let client = builder(&emu, &clock)
        .token_provider(liar.clone())
        .build()
        .unwrap();
    client.list_capacities().collect_all().await.unwrap();
    clock.advance(Duration::from_secs(120));
    let caps = client.list_capacities().collect_all().await;
    assert!(caps.is_ok(), "{caps:?}");
    assert_eq!(liar.calls.load(Ordering::SeqCst), 2);
    let log: Value = reqwest::get(format!("{}/_emulator/requests", emu.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<u64> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    assert_eq!(&statuses[statuses.len() - 2..], &[401, 200]);

    // A token that can't be refreshed: the 401 surfaces after one refresh, not a loop.
    let fixed = emu.mint_token(ME, Duration::from_secs(60));
    let stuck = builder(&emu, &clock)
        .token_provider(Arc::new(StaticTokenProvider::new(
            fixed.into(),
            SystemTime::now() + Duration::from_secs(100 * 24 * 3600),
        )))
        .build()
        .unwrap();
    clock.advance(Duration::from_secs(120));
    let err = stuck.list_capacities().collect_all().await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.error_code(), Some("TokenExpired"));
}

#[tokio::test]
async fn without_a_policy_each_request_is_one_attempt_and_faults_map_to_classes() {
    let env = Env::start().await;
    env.set_faults("GET /v1/capacities#1=503,GET /v1/capacities#2=reset,GET /v1/capacities#3=429")
        .await;
    let e1 = env
        .client
        .list_capacities()
        .collect_all()
        .await
        .unwrap_err();
    assert_eq!(e1.status(), Some(503));
    assert_eq!(e1.class(), ErrorClass::Transient);
    let e2 = env
        .client
        .list_capacities()
        .collect_all()
        .await
        .unwrap_err();
    assert!(matches!(e2, FabricError::Transport { .. }), "{e2}");
    assert_eq!(e2.class(), ErrorClass::Transient);
    let e3 = env
        .client
        .list_capacities()
        .collect_all()
        .await
        .unwrap_err();
    assert_eq!(e3.class(), ErrorClass::Throttled);
    assert!(e3.retry_after().is_some(), "429 carries Retry-After");
    assert!(env.client.list_capacities().collect_all().await.is_ok());
    assert_eq!(count(&env.requests().await, "GET /v1/capacities"), 4);
}

#[tokio::test]
async fn a_hung_request_ends_at_the_call_timeout_on_the_injected_clock() {
    let clock = ManualClock::new();
    let emu = Emulator::start(EmulatorConfig {
        clock: Arc::new(clock.clone()),
        sleeper: Arc::new(clock.clone()),
        faults: "GET /v1/capacities#1=hang".parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let token = emu.mint_token(ME, Duration::from_secs(3600));
    let client = FabricClient::builder(emu.base_url())
        .token_provider(Arc::new(StaticTokenProvider::never_expiring(token.into())))
        .clock(Arc::new(clock.clone()))
        .sleeper(Arc::new(clock.clone()))
        .call_timeout(Some(Duration::from_secs(30)))
        .build()
        .unwrap();
    let list = tokio::spawn(async move { client.list_capacities().collect_all().await });
    // Wait (in real time, briefly) until the hung request's timer is armed, then move time.
    while clock.waiting() == 0 {
        tokio::task::yield_now().await;
    }
    clock.advance(Duration::from_secs(31));
    let err = list.await.unwrap().unwrap_err();
    assert!(matches!(err, FabricError::Timeout { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Timeout);
    drop(emu);
}
