//! Application Insights export against the emulator's ingestion endpoint, which validates
//! every envelope as the service does and keeps the accepted ones.

use std::time::Duration;

use crate::build;
use fabrik_emulator::{DEFAULT_INSTRUMENTATION_KEY, Emulator, EmulatorConfig};
use fabrik_telemetry::{AppInsightsConfig, Dependency, TelemetryConfig};
use serde_json::Value;

const SECRET: &str = "p4ss-w0rd-that-must-never-leave";

async fn emulator() -> Emulator {
    // Without TLS the connection string names the plain-http port.
    Emulator::start(EmulatorConfig::default()).await.unwrap()
}

/// Telemetry configured from the environment, as the CLI does, with the emulator's
/// connection string; `tweak` adjusts the queue.
fn config(emu: &Emulator, tweak: impl FnOnce(&mut AppInsightsConfig)) -> TelemetryConfig {
    let cs = emu.app_insights_connection_string();
    let mut c = TelemetryConfig::from_env(|k| match k {
        "APPLICATIONINSIGHTS_CONNECTION_STRING" => Some(cs.clone()),
        "ENVIRONMENT" => Some("test".into()),
        "FABRIK_LOG_FORMAT" => Some("off".into()),
        _ => None,
    })
    .unwrap();
    tweak(c.app_insights.as_mut().unwrap());
    c
}

fn at(key: &str, endpoint: &str) -> TelemetryConfig {
    TelemetryConfig {
        console: None,
        app_insights: Some(AppInsightsConfig::new(key, endpoint)),
        ..TelemetryConfig::default()
    }
}

fn base_data(e: &Value) -> &Value {
    &e["data"]["baseData"]
}

/// Requests the emulator received on its ingestion route.
async fn track_requests(emu: &Emulator) -> Vec<Value> {
    let log: Value = reqwest::get(format!("{}/_emulator/requests", emu.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == "/v2.1/track")
        .cloned()
        .collect()
}

#[derive(Debug, thiserror::Error)]
#[error("deployment of '{0}' failed")]
struct DeployError(&'static str, #[source] std::io::Error);

#[tokio::test]
async fn envelopes_arrive_with_names_properties_and_the_run_operation_id() {
    // seed: enabled, track_event / track_metric / track_exception / track_dependency, deployment_event.
    let emu = emulator().await;
    let parts = build(&config(&emu, |_| {}));
    let t = parts.telemetry;
    t.track_event(
        "deployment_started",
        &[("workspace", "sales-dev"), ("items", "4")],
    );
    t.track_metric("items_planned", 4.0, &[("workspace", "sales-dev")]);
    let err = DeployError("lakehouse", std::io::Error::other("quota exceeded"));
    t.track_exception(&err, &[("step", "create")]);
    t.track_dependency(
        Dependency {
            kind: "HTTP".into(),
            target: "api.fabric.microsoft.com".into(),
            name: "POST /v1/workspaces".into(),
            data: "https://api.fabric.microsoft.com/v1/workspaces?x=1".into(),
            duration: Duration::from_millis(1234),
            success: false,
            result_code: "409".into(),
        },
        &[],
    );
    let report = t.flush(Duration::from_secs(10)).await;
    assert_eq!(
        (report.accepted, report.dropped, report.timed_out),
        (4, 0, false)
    );

    let envs = emu.telemetry();
    let names: Vec<&str> = envs.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "Microsoft.ApplicationInsights.Event",
            "Microsoft.ApplicationInsights.Metric",
            "Microsoft.ApplicationInsights.Exception",
            "Microsoft.ApplicationInsights.RemoteDependency",
        ]
    );
    let trace = t.trace_id().to_string();
    for e in &envs {
        assert_eq!(e["iKey"], DEFAULT_INSTRUMENTATION_KEY);
        assert_eq!(e["tags"]["ai.operation.id"], trace.as_str());
        assert_eq!(
            e["tags"]["ai.operation.parentId"],
            t.run_context().root_span_id.to_string()
        );
        assert_eq!(e["tags"]["ai.cloud.role"], "fabrik");
        assert_eq!(base_data(e)["properties"]["environment"], "test");
        assert!(e["time"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(envs[0]["data"]["baseType"], "EventData");
    assert_eq!(base_data(&envs[0])["name"], "deployment_started");
    assert_eq!(base_data(&envs[0])["properties"]["workspace"], "sales-dev");
    assert_eq!(base_data(&envs[0])["properties"]["items"], "4");
    assert_eq!(base_data(&envs[1])["metrics"][0]["name"], "items_planned");
    assert_eq!(base_data(&envs[1])["metrics"][0]["value"], 4.0);
    let ex = &base_data(&envs[2])["exceptions"][0];
    assert_eq!(ex["typeName"], "DeployError");
    assert_eq!(
        ex["message"],
        "deployment of 'lakehouse' failed: quota exceeded"
    );
    assert_eq!(base_data(&envs[2])["properties"]["step"], "create");
    let dep = base_data(&envs[3]);
    assert_eq!(dep["duration"], "0.00:00:01.2340000");
    assert_eq!(dep["success"], false);
    assert_eq!(dep["resultCode"], "409");
    assert_eq!(
        dep["data"],
        "https://api.fabric.microsoft.com/v1/workspaces"
    );
}

#[tokio::test]
async fn timed_result_tracks_failures_as_exceptions() {
    // seed: track_operation success + failure, track_performance with exception.
    let emu = emulator().await;
    let parts = build(&config(&emu, |_| {}));
    let _m = metrics::set_default_local_recorder(parts.recorder.as_ref().unwrap());
    let t = parts.telemetry;
    let ok: Result<u32, std::io::Error> = t.timed_result("create_workspace", async { Ok(7) }).await;
    assert_eq!(ok.unwrap(), 7);
    let err: Result<u32, std::io::Error> = t
        .timed_result("create_workspace", async {
            Err(std::io::Error::other("boom"))
        })
        .await;
    assert!(err.is_err());
    t.flush(Duration::from_secs(10)).await;
    let envs = emu.telemetry();
    assert_eq!(envs.len(), 1, "only the failure is exported");
    assert_eq!(base_data(&envs[0])["exceptions"][0]["message"], "boom");
    assert_eq!(
        base_data(&envs[0])["properties"]["operation"],
        "create_workspace"
    );
    let text = t.prometheus().unwrap().render();
    assert!(
        text.contains(r#"fabrik_calls_total{name="create_workspace",outcome="ok"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"fabrik_calls_total{name="create_workspace",outcome="error"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"fabrik_call_duration_seconds_count{name="create_workspace"} 2"#),
        "{text}"
    );
}

#[tokio::test]
async fn endpoint_down_the_run_goes_on_and_drops_are_counted() {
    let emu = emulator().await;
    let config = config(&emu, |_| {});
    emu.shutdown().await.unwrap(); // nothing listens on its port any more
    let parts = build(&config);
    let _m = metrics::set_default_local_recorder(parts.recorder.as_ref().unwrap());
    let t = parts.telemetry;
    // The "run": steps go on and return their results although nothing is exported.
    let mut done = 0;
    for i in 0..3 {
        done += t
            .timed("step", async {
                t.track_event("step_done", &[("step", &i.to_string())]);
                1
            })
            .await;
    }
    assert_eq!(done, 3);
    let report = t.shutdown(Duration::from_secs(10)).await;
    assert_eq!(
        (report.accepted, report.dropped, report.timed_out),
        (0, 3, false)
    );
    let text = t.prometheus().unwrap().render();
    assert!(
        text.contains(
            r#"fabrik_telemetry_dropped_total{exporter="app_insights",reason="send_failed"} 3"#
        ),
        "{text}"
    );
    // After shutdown, tracking still never fails or blocks; the item is counted.
    t.track_event("late", &[]);
    let text = t.prometheus().unwrap().render();
    assert!(
        text.contains(
            r#"fabrik_telemetry_dropped_total{exporter="app_insights",reason="closed"} 1"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_instead_of_blocking_or_growing() {
    let emu = emulator().await;
    let parts = build(&config(&emu, |ai| ai.queue_capacity = 2));
    let _m = metrics::set_default_local_recorder(parts.recorder.as_ref().unwrap());
    let t = parts.telemetry;
    // On the current-thread runtime the worker cannot drain between these calls.
    for _ in 0..5 {
        t.track_event("burst", &[]);
    }
    let report = t.flush(Duration::from_secs(10)).await;
    assert_eq!((report.accepted, report.dropped), (2, 3));
    assert_eq!(emu.telemetry().len(), 2);
    let text = t.prometheus().unwrap().render();
    assert!(
        text.contains(
            r#"fabrik_telemetry_dropped_total{exporter="app_insights",reason="queue_full"} 3"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn items_are_sent_in_batches_of_at_most_max_batch() {
    let emu = emulator().await;
    let t = build(&config(&emu, |ai| ai.max_batch = 2)).telemetry;
    for _ in 0..5 {
        t.track_event("e", &[]);
    }
    t.flush(Duration::from_secs(10)).await;
    // 5 items in batches of at most 2: three requests (one, if batches were unbounded).
    assert_eq!(track_requests(&emu).await.len(), 3);
    assert_eq!(emu.telemetry().len(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_partial_batch_is_sent_after_the_flush_interval() {
    let emu = emulator().await;
    let t = build(&config(&emu, |ai| {
        ai.flush_interval = Duration::from_secs(5)
    }))
    .telemetry;
    t.track_event("e", &[]);
    tokio::time::sleep(Duration::from_millis(4900)).await;
    assert!(emu.telemetry().is_empty(), "sent before the interval");
    // Paused time jumps ahead whenever the runtime is idle, so waiting is instant.
    while emu.telemetry().is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(emu.telemetry().len(), 1);
    assert_eq!(track_requests(&emu).await.len(), 1);
}

#[tokio::test]
async fn items_the_endpoint_rejects_are_counted_as_dropped() {
    let emu = emulator().await;
    let parts = build(&config(&emu, |_| {}));
    let _m = metrics::set_default_local_recorder(parts.recorder.as_ref().unwrap());
    let t = parts.telemetry;
    t.track_event("e", &[]);
    t.track_event("", &[]); // ingestion requires an event name: refused, with 206
    t.track_event("e", &[]);
    let report = t.flush(Duration::from_secs(10)).await;
    assert_eq!((report.accepted, report.dropped), (2, 1));
    assert_eq!(emu.telemetry().len(), 2);
    let statuses: Vec<Value> = track_requests(&emu)
        .await
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(statuses, [206]);
    let text = t.prometheus().unwrap().render();
    assert!(
        text.contains(
            r#"fabrik_telemetry_dropped_total{exporter="app_insights",reason="rejected"} 1"#
        ),
        "{text}"
    );

    // An instrumentation key the resource does not have: all refused (400), all counted.
    let parts = build(&at("not-a-known-key", emu.base_url()));
    let _m = metrics::set_default_local_recorder(parts.recorder.as_ref().unwrap());
    let t = parts.telemetry;
    t.track_event("e", &[]);
    t.track_event("e", &[]);
    let report = t.flush(Duration::from_secs(10)).await;
    assert_eq!((report.accepted, report.dropped), (0, 2));
    assert_eq!(emu.telemetry().len(), 2, "nothing more stored");
    let text = t.prometheus().unwrap().render();
    assert!(
        text.contains(
            r#"fabrik_telemetry_dropped_total{exporter="app_insights",reason="rejected"} 2"#
        ),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_gives_up_at_its_deadline_when_the_endpoint_hangs() {
    // A listener nobody accepts from: the kernel completes the handshake, no answer comes.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", hung.local_addr().unwrap());
    let t = build(&at(DEFAULT_INSTRUMENTATION_KEY, &endpoint)).telemetry;
    t.track_event("e", &[]);
    let start = tokio::time::Instant::now();
    let report = t.shutdown(Duration::from_secs(3)).await;
    assert!(report.timed_out);
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test]
async fn no_secret_value_appears_in_any_envelope() {
    let emu = emulator().await;
    let t = build(&config(&emu, |_| {})).telemetry;
    t.track_event(
        "login",
        &[
            ("client_secret", SECRET),
            ("Authorization", SECRET),
            ("user", "ci"),
        ],
    );
    t.track_metric("m", 1.0, &[("sas_token", SECRET)]);
    t.track_dependency(
        Dependency {
            kind: "HTTP".into(),
            target: "vault.azure.net".into(),
            name: "GET /secrets/{name}".into(),
            data: format!("https://kv.vault.azure.net/secrets/x?sig={SECRET}"),
            duration: Duration::from_millis(5),
            success: true,
            result_code: "200".into(),
        },
        &[("password", SECRET)],
    );
    let err = DeployError("vault", std::io::Error::other("denied"));
    t.track_exception(&err, &[("api_key", SECRET)]);
    let report = t.flush(Duration::from_secs(10)).await;
    assert_eq!((report.accepted, report.dropped), (4, 0));
    let envs = emu.telemetry();
    assert_eq!(envs.len(), 4);
    let raw = serde_json::to_string(&envs).unwrap();
    assert!(!raw.contains(SECRET), "{raw}");
    assert_eq!(
        base_data(&envs[0])["properties"]["client_secret"],
        "[redacted]"
    );
    assert_eq!(base_data(&envs[0])["properties"]["user"], "ci");
    assert_eq!(base_data(&envs[3])["properties"]["api_key"], "[redacted]");
}
