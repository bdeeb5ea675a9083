//! The metrics a run records (docs/METRICS.md): resources created and rolled back, and the
//! run's duration by outcome.

use fabrik_cli::config::{Desired, DesiredItem, DesiredWorkspace};
use fabrik_cli::run;
use fabrik_telemetry::{RunContext, Telemetry, TelemetryConfig};
use tracing_subscriber::fmt::writer::BoxMakeWriter;

fn workspaces(names: &[&str]) -> Desired {
    Desired {
        environment: "dev".into(),
        workspaces: names
            .iter()
            .map(|n| DesiredWorkspace {
                name: (*n).into(),
                description: String::new(),
                capacity: None,
                folders: vec![],
                items: vec![DesiredItem {
                    name: format!("LH_{n}"),
                    item_type: "Lakehouse".into(),
                    description: String::new(),
                    folder: None,
                    definition: None,
                }],
                principals: vec![],
                git: None,
                publish: None,
                sections: Default::default(),
            })
            .collect(),
        features: Default::default(),
        hash: "x".into(),
    }
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

// A current-thread runtime: every task of the run, the emulator's included, records on this
// thread, so the recorder installed for this thread alone sees them all.
#[tokio::test]
async fn a_run_counts_what_it_created_and_rolled_back_and_its_outcome() {
    let config = TelemetryConfig {
        console: None,
        ..TelemetryConfig::default()
    };
    let parts = Telemetry::build_with(
        &config,
        RunContext::new(),
        BoxMakeWriter::new(std::io::sink),
    )
    .unwrap();
    let _recorder = metrics::set_default_local_recorder(parts.recorder.as_ref().unwrap());
    let prometheus = parts.telemetry.prometheus().unwrap();
    let (emu, client, mut opts, _state) = crate::start().await;
    opts.concurrency = 1;
    let flags = fabrik_flags::Flags::defaults();

    // The third workspace is refused: the two before it and their lakehouses are undone.
    emu.set_faults("POST /v1/workspaces#3=403".parse().unwrap());
    let desired = workspaces(&["m-a", "m-b", "m-c"]);
    let plan = fabrik_cli::run::plan(&client, &desired, 1).await.unwrap();
    let report = run::apply(&client, &flags, &desired, &plan, &opts)
        .await
        .unwrap();
    assert_eq!(report.outcome(), "rolled_back", "{report:?}");
    let text = prometheus.render();
    for kind in ["workspace", "lakehouse"] {
        for action in ["created", "rolled_back"] {
            let series = format!(r#"fabrik_resources_total{{kind="{kind}",action="{action}"}}"#);
            assert_eq!(value(&text, &series), 2.0, "{series}");
        }
    }
    let runs = r#"fabrik_run_duration_seconds_count{outcome="rolled_back"}"#;
    assert_eq!(value(&text, runs), 1.0);

    // Without the fault, all three are created and the run succeeds.
    emu.set_faults(Default::default());
    let plan = fabrik_cli::run::plan(&client, &desired, 1).await.unwrap();
    let report = run::apply(&client, &flags, &desired, &plan, &opts)
        .await
        .unwrap();
    assert_eq!(report.outcome(), "succeeded", "{report:?}");
    let text = prometheus.render();
    let created = r#"fabrik_resources_total{kind="workspace",action="created"}"#;
    assert_eq!(value(&text, created), 5.0);
    let runs = r#"fabrik_run_duration_seconds_count{outcome="succeeded"}"#;
    assert_eq!(value(&text, runs), 1.0);
    emu.shutdown().await.unwrap();
}

// One apply of a config whose workspace publishes a repository reads that repository once:
// when the config is loaded; the publishing kind plans and applies what was read then.
#[tokio::test]
async fn an_apply_reads_the_repository_it_publishes_once() {
    use futures::TryStreamExt as _;
    let parts = Telemetry::build_with(
        &TelemetryConfig {
            console: None,
            ..TelemetryConfig::default()
        },
        RunContext::new(),
        BoxMakeWriter::new(std::io::sink),
    )
    .unwrap();
    let _recorder = metrics::set_default_local_recorder(parts.recorder.as_ref().unwrap());
    let prometheus = parts.telemetry.prometheus().unwrap();
    let (emu, client, opts, _state) = crate::start_with(fabrik_emulator::EmulatorConfig {
        capacity_pools: vec!["ProdCapacityPool".into()],
        ..Default::default()
    })
    .await;
    let capacities: Vec<_> = client.list_capacities().try_collect().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fabrik.yaml");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/git-format-repo");
    std::fs::write(
        &config,
        format!(
            "project: {{name: Sales, prefix: sales}}\nworkspaces:\n  - name: once\n    capacity: {}\n    repository:\n      path: {}\n",
            capacities[0].id,
            repo.display()
        ),
    )
    .unwrap();
    let (desired, _) = fabrik_cli::config::load(
        &config,
        &fabrik_cli::config::LoadOptions {
            environment: "prod".into(),
            repositories: Some(fabrik_cli::publish::reader::RepoReader::shared()),
            sections: fabrik_cli::engine::Registry::builtin().sections(),
            ..Default::default()
        },
    )
    .expect("the config and its repository are valid");
    let plan = run::plan(&client, &desired, 8).await.unwrap();
    assert!(
        plan.change_count() > 10,
        "the repository's items are planned"
    );
    let report = run::apply(
        &client,
        &fabrik_flags::Flags::defaults(),
        &desired,
        &plan,
        &opts,
    )
    .await
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let reads = value(&prometheus.render(), "fabrik_repository_reads_total");
    assert_eq!(reads, 1.0, "the repository was read {reads} times");
    emu.shutdown().await.unwrap();
}
