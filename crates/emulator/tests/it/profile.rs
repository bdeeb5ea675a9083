//! `--profile fabric`, `--time-scale` and `--quota` over HTTP: latency drawn per endpoint
//! class from the trace's table, operations that run and ask for `Retry-After` as in the
//! trace, and the per-identity quota answered with Fabric's 429. The manual clock records
//! every injected wait; nothing sleeps in real time.

use std::time::Duration;

use fabrik_emulator::{CreateMode, ProfileName};
use serde_json::{Value, json};

use crate::common::{Env, Resp};
use crate::conformance::conforms;

/// The profile table the emulator compiles in, as the derivation script wrote it.
fn table() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/profile/fabric.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// (p0, p100) of a distribution in the table, in seconds.
fn range(d: &Value) -> (f64, f64) {
    (
        d["ms"]["p0"].as_f64().unwrap() / 1000.0,
        d["ms"]["p100"].as_f64().unwrap() / 1000.0,
    )
}

async fn fabric(time_scale: f64) -> Env {
    Env::with(|c| {
        c.profile = Some(ProfileName::Fabric);
        c.time_scale = time_scale;
        c.create_mode = CreateMode::Lro202;
    })
    .await
}

#[tokio::test]
async fn each_request_waits_a_latency_of_its_endpoint_class_scaled() {
    let t = table();
    for scale in [1.0, 10.0] {
        let env = fabric(scale).await;
        let ws = env.workspace("Latency", false).await;
        let before = env.clock.sleeps().len();
        for _ in 0..20 {
            env.get(&format!("/v1/workspaces/{ws}/items"))
                .await
                .expect(200);
        }
        let sleeps = env.clock.sleeps()[before..].to_vec();
        assert_eq!(sleeps.len(), 20, "one wait per request");
        let (lo, hi) = range(&t["latency"]["list"]);
        for s in &sleeps {
            let s = s.as_secs_f64() * scale;
            assert!(
                s >= lo - 1e-3 && s <= hi + 1e-3,
                "list latency {s} s at scale {scale}"
            );
        }
        // Draws differ: a distribution, not a constant.
        assert!(sleeps.iter().any(|s| *s != sleeps[0]));
        let before = env.clock.sleeps().len();
        env.get(&format!("/v1/workspaces/{ws}")).await.expect(200);
        let read = env.clock.sleeps()[before].as_secs_f64() * scale;
        let (lo, hi) = range(&t["latency"]["read"]);
        assert!(
            read >= lo - 1e-3 && read <= hi + 1e-3,
            "read latency {read} s"
        );
    }
}

/// Polls an operation to its end by its `Retry-After`s; returns them and how long it took.
async fn run(env: &Env, accepted: &Resp) -> (Vec<u64>, Duration) {
    let started = env.clock.elapsed();
    let location = accepted.header("location").unwrap().to_string();
    let mut waits = vec![accepted.header("retry-after").unwrap().parse().unwrap()];
    for _ in 0..1000 {
        env.clock
            .advance(Duration::from_secs(*waits.last().unwrap()));
        let state = env.get(&location).await.expect(200);
        if state.body["status"] == "Succeeded" {
            return (waits, env.clock.elapsed() - started);
        }
        waits.push(state.header("retry-after").unwrap().parse().unwrap());
    }
    panic!("the operation never finished");
}

#[tokio::test]
async fn operations_ask_for_the_traces_retry_after_and_take_its_durations() {
    let t = table();
    for (scale, item_wait, publish_wait) in [(1.0, 20, 120), (4.0, 5, 30)] {
        let env = fabric(scale).await;
        let ws = env.workspace("Lro", false).await;
        let accepted = env
            .post(
                &format!("/v1/workspaces/{ws}/items"),
                json!({"displayName": "Env", "type": "Environment"}),
            )
            .await
            .expect(202);
        let (waits, took) = run(&env, &accepted).await;
        assert!(
            waits.iter().all(|w| *w == item_wait),
            "{waits:?} at {scale}"
        );
        // Done within one poll interval (plus the polls' own latency) of its drawn duration.
        let (_, hi) = range(&t["operation"]["duration"]);
        let poll_max = range(&t["latency"]["poll"]).1;
        let bound = (hi + item_wait as f64 * scale + 2.0 * poll_max) / scale;
        assert!(
            took.as_secs_f64() <= bound,
            "{took:?} > {bound} s at {scale}"
        );

        let id = env.get(&format!("/v1/workspaces/{ws}/items")).await.body["value"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let publish = format!("/v1/workspaces/{ws}/environments/{id}/staging/publish");
        let accepted = env.post_empty(&publish).await.expect(202);
        assert_eq!(
            accepted.header("retry-after"),
            Some(publish_wait.to_string().as_str())
        );
        let (waits, took) = run(&env, &accepted).await;
        assert!(waits.iter().all(|w| *w == publish_wait), "{waits:?}");
        // The trace's one publish took its time; so does this one, scaled.
        let (lo, _) = range(&t["environment_publish"]["duration"]);
        assert!(took.as_secs_f64() >= lo / scale, "{took:?} at {scale}");
    }
}

#[tokio::test]
async fn the_quota_is_per_identity_and_answered_with_fabrics_429() {
    for (scale, wait) in [(1.0, 20), (2.0, 10)] {
        let env = Env::with(|c| {
            c.quota = Some(3);
            c.time_scale = scale;
        })
        .await;
        let other = env.emu.mint_token(
            "a1b2c3d4-0000-4000-8000-0000000000b2",
            Duration::from_secs(3600),
        );
        for _ in 0..3 {
            env.get("/v1/workspaces").await.expect(200);
        }
        let r = env.get("/v1/workspaces").await.expect(429);
        assert_eq!(r.error_code(), "RequestBlocked");
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("blocked by the upstream service until")
        );
        // A minute's three calls: one comes back every 20 s (10 s at double speed).
        assert_eq!(r.header("retry-after"), Some(wait.to_string().as_str()));
        conforms("Workspaces_ListWorkspaces", &r);
        // Another identity has its own quota.
        for _ in 0..3 {
            let r = env
                .send(reqwest::Method::GET, "/v1/workspaces", None, Some(&other))
                .await;
            r.expect(200);
        }
        env.clock.advance(Duration::from_secs(wait - 1));
        env.get("/v1/workspaces").await.expect(429);
        env.clock.advance(Duration::from_secs(1));
        env.get("/v1/workspaces").await.expect(200);
    }
}
