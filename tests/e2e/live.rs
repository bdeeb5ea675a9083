//! The smoke suite that runs against any Fabric endpoint: against the in-process emulator in
//! CI, and against a real tenant through `cargo xtask live-test` when `FABRIK_LIVE_BASE_URL`
//! (or the default API), credentials (`FABRIC_TOKEN` or the `AZURE_*` chain) and
//! `FABRIK_LIVE_CAPACITY` are set. It creates uniquely named resources (a workspace with a
//! folder, a lakehouse, a notebook and a role assignment), checks that a second plan is empty,
//! destroys them, and cleans up even when a step fails.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fabrik_cli::config::{CapacityRef, Desired, DesiredItem, DesiredPrincipal, DesiredWorkspace};
use fabrik_cli::run::{self, RunOptions};

/// Where the suite runs.
struct Target {
    client: fabrik_client::FabricClient,
    opts: RunOptions,
    capacity: Option<CapacityRef>,
    principal: String,
    _emulator: Option<fabrik_emulator::Emulator>,
    _state: tempfile::TempDir,
}

async fn target() -> Target {
    let state = tempfile::tempdir().unwrap();
    let live = std::env::var("FABRIK_LIVE").is_ok_and(|v| v == "1");
    let (base_url, emulator, token) = if live {
        let base = std::env::var("FABRIK_LIVE_BASE_URL")
            .unwrap_or_else(|_| fabrik_client::DEFAULT_BASE_URL.to_string());
        let token = run::token_provider(None, None).expect("credentials for the live tenant");
        (format!("{}/v1", base.trim_end_matches("/v1")), None, token)
    } else {
        let emu = fabrik_emulator::Emulator::start(fabrik_emulator::EmulatorConfig::default())
            .await
            .unwrap();
        let token = emu.mint_token_as(
            "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
            "ServicePrincipal",
            Duration::from_secs(3600),
        );
        (
            format!("{}/v1", emu.base_url()),
            Some(emu),
            run::static_token(token, SystemTime::now() + Duration::from_secs(3600)),
        )
    };
    let opts = RunOptions {
        base_url,
        concurrency: 4,
        state_dir: state.path().to_path_buf(),
        rollback: true,
        lro_deadline: Duration::from_secs(600),
        call_timeout: Some(Duration::from_secs(120)),
        run_timeout: None,
        rate_limit: None,
        progress: None,
        extra_ca_pem: None,
        run_sleeper: None,
        command: "apply",
    };
    let client = run::client(&opts, &fabrik_flags::Flags::defaults(), Arc::clone(&token)).unwrap();
    Target {
        client,
        opts,
        capacity: std::env::var("FABRIK_LIVE_CAPACITY")
            .ok()
            .map(CapacityRef::Name),
        principal: std::env::var("FABRIK_LIVE_PRINCIPAL")
            .unwrap_or_else(|_| "9117cbfa-f0a7-43b7-846f-96ba66a3c1c0".into()),
        _emulator: emulator,
        _state: state,
    }
}

fn desired(t: &Target, run: &str) -> Desired {
    let notebook = "# Fabric notebook source\nprint('fabrik smoke')\n";
    Desired {
        environment: "smoke".into(),
        workspaces: vec![DesiredWorkspace {
            name: format!("fabrik-smoke-{run}"),
            description: "fabrik live smoke test; safe to delete".into(),
            capacity: t.capacity.clone(),
            folders: vec!["smoke".into()],
            items: vec![
                DesiredItem {
                    name: format!("LH_smoke_{run}"),
                    item_type: "Lakehouse".into(),
                    description: String::new(),
                    folder: Some("smoke".into()),
                    definition: None,
                },
                DesiredItem {
                    name: format!("NB_smoke_{run}"),
                    item_type: "Notebook".into(),
                    description: String::new(),
                    folder: Some("smoke".into()),
                    definition: Some(vec![(
                        "notebook-content.py".into(),
                        base64_encode(notebook.as_bytes()),
                    )]),
                },
            ],
            principals: vec![DesiredPrincipal {
                id: t.principal.clone(),
                kind: "Group".into(),
                role: "Viewer".into(),
            }],
            git: None,
            publish: None,
            sections: Default::default(),
        }],
        features: Default::default(),
        hash: run.into(),
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_create_plan_clean_destroy_and_always_clean_up() {
    let t = target().await;
    let run_id = format!(
        "{:08x}",
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let d = desired(&t, &run_id);
    let flags = fabrik_flags::Flags::defaults();
    // A failing step unwinds to here, so the cleanup below still runs.
    let steps = {
        let (client, opts, d) = (t.client.clone(), t.opts.clone(), d.clone());
        futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async move {
            let plan = fabrik_cli::run::plan(&client, &d, 4).await.unwrap();
            assert_eq!(
                plan.change_count(),
                5,
                "workspace, folder, lakehouse, notebook, role"
            );
            let report = run::apply(&client, &flags, &d, &plan, &opts).await.unwrap();
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            let again = fabrik_cli::run::plan(&client, &d, 4).await.unwrap();
            assert_eq!(
                again.change_count(),
                0,
                "{}",
                fabrik_cli::render::text(&again)
            );
            let gone = fabrik_cli::destroy::destroy_plan(&client, &d, &Default::default())
                .await
                .unwrap();
            assert_eq!(
                gone.change_count(),
                1,
                "{}",
                fabrik_cli::render::text(&gone)
            );
            let report = run::apply(&client, &flags, &d, &gone, &opts).await.unwrap();
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            let after = fabrik_cli::run::plan(&client, &d, 4).await.unwrap();
            assert_eq!(after.workspaces[0].id, None, "the workspace is gone");
        }))
    };
    let outcome = steps.await;
    // Cleanup whatever happened: the workspace (and everything in it) by its unique name.
    if let Ok(Some(ws)) = t.client.find_workspace(&d.workspaces[0].name).await {
        let _ = t.client.delete_workspace(&ws.id).await;
    }
    assert!(
        t.client
            .find_workspace(&d.workspaces[0].name)
            .await
            .unwrap()
            .is_none(),
        "cleanup left the smoke workspace behind"
    );
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
