//! Throttling and fault injection: seeded, scripted, changeable at run time.

use std::time::Duration;

use fabrik_emulator::ThrottleConfig;
use reqwest::Method;
use serde_json::json;

use crate::common::{Env, ME};

#[tokio::test]
async fn throttle_per_principal_with_numeric_retry_after() {
    let env = Env::with(|c| {
        c.throttle = Some(ThrottleConfig {
            rate_per_sec: 0.5,
            burst: 2,
        })
    })
    .await;
    env.get("/v1/workspaces").await.expect(200);
    env.get("/v1/workspaces").await.expect(200);
    let r = env.get("/v1/workspaces").await.expect(429);
    assert_eq!(r.error_code(), "RequestBlocked");
    assert_eq!(r.header("retry-after"), Some("2"));
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .starts_with("Request is blocked by the upstream service until: ")
    );
    assert_eq!(r.body["isRetriable"], true);
    // Another principal has its own bucket.
    let other = env.emu.mint_token("someone-else", Duration::from_secs(600));
    env.send(Method::GET, "/v1/workspaces", None, Some(&other))
        .await
        .expect(200);
    env.clock.advance(Duration::from_secs(2));
    env.get("/v1/workspaces").await.expect(200);
    env.get("/v1/workspaces").await.expect(429);
    let log = env.get("/_emulator/requests").await;
    // The log reads are not under /v1, so they are neither throttled nor logged.
    let statuses: Vec<u64> = log.body["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![200, 200, 429, 200, 200, 429]);
}

#[tokio::test]
async fn scripted_third_post_to_items_fails_with_503() {
    let env = Env::with(|c| c.faults = "POST /v1/workspaces/*/items#3=503".parse().unwrap()).await;
    let ws = env.workspace("F", true).await;
    let items = format!("/v1/workspaces/{ws}/items");
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(
            env.post(
                &items,
                json!({"displayName": format!("n{i}"), "type": "Notebook"}),
            )
            .await
            .status,
        );
    }
    assert_eq!(statuses, vec![201, 201, 503, 201, 201]);
    // The failed request changed nothing.
    let names: Vec<String> = env.get(&items).await.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["displayName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 4);
    assert!(!names.contains(&"n2".to_string()));
}

#[tokio::test]
async fn apply_then_fail_writes_but_reports_failure() {
    let env =
        Env::with(|c| c.faults = "POST /v1/workspaces#1=apply-then-500".parse().unwrap()).await;
    let r = env
        .post("/v1/workspaces", json!({"displayName": "Dup"}))
        .await
        .expect(500);
    assert_eq!(r.error_code(), "UnknownError");
    assert_eq!(r.body["isRetriable"], true);
    // The naive retry now conflicts: the first write happened.
    let retry = env
        .post("/v1/workspaces", json!({"displayName": "Dup"}))
        .await
        .expect(409);
    assert_eq!(retry.error_code(), "WorkspaceNameAlreadyExists");
    let log = env.get("/_emulator/requests").await.body;
    assert_eq!(log["requests"][0]["fault"], "apply-then-500");
}

#[tokio::test]
async fn reset_drops_the_connection_and_apply_then_reset_still_writes() {
    let env = Env::with(|c| {
        c.faults = "GET /v1/workspaces#1=reset,POST /v1/workspaces#1=apply-then-reset"
            .parse()
            .unwrap()
    })
    .await;
    let err = env
        .http
        .get(env.url("/v1/workspaces"))
        .bearer_auth(&env.token)
        .send()
        .await;
    assert!(err.is_err(), "the connection was dropped: {err:?}");
    env.get("/v1/workspaces").await.expect(200);
    let err = env
        .http
        .post(env.url("/v1/workspaces"))
        .bearer_auth(&env.token)
        .json(&json!({"displayName": "Written"}))
        .send()
        .await;
    assert!(err.is_err());
    let state = env.get("/_emulator/state").await.body;
    assert_eq!(state["workspaces"][0]["displayName"], "Written");
    let log = env.get("/_emulator/requests").await.body;
    assert_eq!(log["requests"][0]["fault"], "reset");
    assert_eq!(log["requests"][0]["status"], 0);
}

#[tokio::test]
async fn hang_never_answers_until_shutdown() {
    let env = Env::with(|c| c.faults = "GET /v1/capacities#1=hang".parse().unwrap()).await;
    let hung = env
        .http
        .get(env.url("/v1/capacities"))
        .bearer_auth(&env.token)
        .send();
    tokio::pin!(hung);
    // Other requests are served while the first one hangs.
    tokio::select! {
        _ = &mut hung => panic!("the hung request must not complete"),
        r = env.get("/v1/workspaces") => assert_eq!(r.status, 200),
    }
    let Env { emu, .. } = env;
    let (r, shut) = tokio::join!(hung, emu.shutdown());
    shut.unwrap();
    // Shutdown ends the hang; the client sees an answer-less close or a 503, never a result.
    if let Ok(resp) = r {
        assert_eq!(resp.status().as_u16(), 503);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_request_the_client_gave_up_on_blocks_nothing() {
    let env = Env::with(|c| c.faults = "GET /v1/capacities#1=hang".parse().unwrap()).await;
    let mut hung = Box::pin(
        env.http
            .get(env.url("/v1/capacities"))
            .bearer_auth(&env.token)
            .send(),
    );
    tokio::select! {
        _ = &mut hung => panic!("the hung request must not complete"),
        r = env.get("/v1/workspaces") => assert_eq!(r.status, 200),
    }
    // The client gives up: its connection closes with the request unanswered.
    drop(hung);
    // Fresh connections are served, from a new client too, and shutdown is prompt. (The
    // timeouts only keep a regression from hanging the suite.)
    let limit = Duration::from_secs(30);
    for _ in 0..3 {
        let fresh = reqwest::Client::new()
            .get(env.url("/v1/workspaces"))
            .bearer_auth(&env.token)
            .send();
        let r = tokio::time::timeout(limit, fresh).await.expect("served");
        assert_eq!(r.unwrap().status().as_u16(), 200);
    }
    let Env { emu, .. } = env;
    tokio::time::timeout(limit, emu.shutdown())
        .await
        .expect("shutdown completes")
        .unwrap();
}

#[tokio::test]
async fn latency_waits_on_the_injected_sleeper() {
    let env = Env::with(|c| c.faults = "workspaces:latency=250ms".parse().unwrap()).await;
    let before = env.clock.elapsed();
    env.get("/v1/workspaces").await.expect(200);
    assert_eq!(env.clock.elapsed() - before, Duration::from_millis(250));
    env.get("/v1/capacities").await.expect(200);
    assert_eq!(env.clock.sleeps(), vec![Duration::from_millis(250)]);
}

#[tokio::test]
async fn random_faults_are_reproducible_and_change_at_run_time() {
    async fn run(seed: u64) -> Vec<u16> {
        let env = Env::with(|c| {
            c.seed = seed;
            c.faults = "workspaces:503=0.3,capacities:429=0.3".parse().unwrap();
        })
        .await;
        let mut out = Vec::new();
        for i in 0..40 {
            let path = if i % 2 == 0 {
                "/v1/workspaces"
            } else {
                "/v1/capacities"
            };
            out.push(env.get(path).await.status);
        }
        out
    }
    let a = run(5).await;
    assert_eq!(a, run(5).await);
    assert!(
        a.contains(&503) && a.contains(&429) && a.contains(&200),
        "{a:?}"
    );
    assert_ne!(a, run(6).await);

    let env = Env::start().await;
    assert_eq!(env.get("/_emulator/faults").await.body["spec"], "");
    let put = env
        .send(
            Method::PUT,
            "/_emulator/faults",
            Some(&json!({"spec": "reads:502=1"})),
            None,
        )
        .await
        .expect(200);
    assert_eq!(put.body["spec"], "reads:502=1");
    let r = env.get("/v1/workspaces").await.expect(502);
    assert_eq!(r.error_code(), "BadGateway");
    env.post("/v1/workspaces", json!({"displayName": "w"}))
        .await
        .expect(201);
    // The realized rate: one read failed, one write did not.
    let seen = env.get("/_emulator/faults").await.expect(200);
    assert_eq!(
        (
            &seen.body["requests"],
            &seen.body["faulted"],
            &seen.body["rate"]
        ),
        (&json!(2), &json!(1), &json!(0.5))
    );
    assert_eq!(env.emu.fault_stats().faulted, 1);
    let bad = env
        .send(
            Method::PUT,
            "/_emulator/faults",
            Some(&json!({"spec": "reads:502=7"})),
            None,
        )
        .await
        .expect(400);
    assert!(bad.raw.contains("'7'"), "{}", bad.raw);
    // A plain-text SPEC works too; empty clears.
    let r = env
        .http
        .put(env.url("/_emulator/faults"))
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    env.get("/v1/workspaces").await.expect(200);
    let _ = ME;
}

#[tokio::test]
async fn lro_fail_accepts_then_fails_the_operation_without_changing_state() {
    let env = Env::with(|c| {
        c.faults = "POST /v1/workspaces/*/items#1=lro-fail".parse().unwrap();
        c.lro_delay = Duration::from_secs(4);
    })
    .await;
    let ws = env.workspace("Lro", true).await;
    let r = env
        .post(
            &format!("/v1/workspaces/{ws}/items"),
            json!({"displayName": "n", "type": "Notebook"}),
        )
        .await;
    let (state, result) = env.finish(r).await;
    assert_eq!(state["status"], "Failed");
    assert_eq!(state["error"]["errorCode"], "UnknownError");
    assert!(result.is_none());
    assert_eq!(
        env.get(&format!("/v1/workspaces/{ws}/items")).await.body["value"],
        json!([])
    );
    // The retry goes through.
    env.post(
        &format!("/v1/workspaces/{ws}/items"),
        json!({"displayName": "n", "type": "Notebook"}),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn faults_and_state_are_reachable_in_process() {
    let env = Env::start().await;
    env.emu
        .set_faults("POST /v1/workspaces#1=503".parse().unwrap());
    env.post("/v1/workspaces", json!({"displayName": "x"}))
        .await
        .expect(503);
    env.post("/v1/workspaces", json!({"displayName": "x"}))
        .await
        .expect(201);
    assert_eq!(env.emu.state(), env.get("/_emulator/state").await.body);
    assert_eq!(env.emu.state()["workspaces"][0]["displayName"], "x");
}
