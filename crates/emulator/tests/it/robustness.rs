//! Bad input — malformed JSON, wrong types, missing fields, oversize names, unknown ids,
//! random paths and methods — gets a 4xx in the real error shape, never a 500 or a panic.

use std::sync::OnceLock;

use proptest::prelude::*;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::Env;

/// One emulator for every case (starting one per case would dominate the run time); each
/// case gets its own state through [`fresh`], holding `one_case` so that the three tests,
/// which run in parallel, do not reset each other's state.
struct Fixture {
    rt: tokio::runtime::Runtime,
    env: Env,
    one_case: std::sync::Mutex<()>,
}

impl Fixture {
    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // A failed case poisons the lock; the next case resets the state anyway.
        self.one_case.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let env = rt.block_on(Env::start());
        Fixture {
            rt,
            env,
            one_case: std::sync::Mutex::new(()),
        }
    })
}

/// The resources a case's paths name, created for that case.
struct Ids {
    ws: String,
    item: String,
    folder: String,
}

/// Forgets what earlier cases did (a fuzzed `DELETE /v1/workspaces/{ws}` would otherwise
/// leave every later case on the 404 path) and creates the case's workspace, item and folder.
async fn fresh(env: &Env) -> Ids {
    env.send(Method::POST, "/_emulator/reset", None, None)
        .await
        .expect(200);
    let ws = env.workspace("Fuzz", true).await;
    let create = async |kind: &str| {
        env.post(
            &format!("/v1/workspaces/{ws}/{kind}"),
            json!({"displayName": "x"}),
        )
        .await
        .expect(201)
        .body["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let item = create("notebooks").await;
    let folder = create("folders").await;
    Ids { ws, item, folder }
}

impl Ids {
    /// `path` with its `{ws}`, `{item}` and `{folder}` placeholders filled in. Strategies
    /// produce placeholders, not ids, so a persisted failure replays against new state.
    fn fill(&self, path: &str) -> String {
        path.replace("{ws}", &self.ws)
            .replace("{item}", &self.item)
            .replace("{folder}", &self.folder)
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,300}".prop_map(Value::String),
        Just(json!("00000000-0000-4000-8000-000000000000")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("displayName".to_string()),
                    Just("description".to_string()),
                    Just("type".to_string()),
                    Just("capacityId".to_string()),
                    Just("folderId".to_string()),
                    Just("definition".to_string()),
                    Just("parts".to_string()),
                    Just("principal".to_string()),
                    Just("role".to_string()),
                    Just("id".to_string()),
                    Just("gitProviderDetails".to_string()),
                    Just("mode".to_string()),
                    Just("targetFolderId".to_string()),
                    Just("parentFolderId".to_string()),
                    "[a-zA-Z]{1,8}",
                ],
                inner,
                0..5,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn route() -> impl Strategy<Value = (Method, String)> {
    let paths: Vec<String> = [
        "/v1/workspaces",
        "/v1/workspaces/{ws}",
        "/v1/workspaces/{ws}/assignToCapacity",
        "/v1/workspaces/{ws}/roleAssignments",
        "/v1/workspaces/{ws}/roleAssignments/{item}",
        "/v1/workspaces/{ws}/items",
        "/v1/workspaces/{ws}/items/{item}",
        "/v1/workspaces/{ws}/items/{item}/updateDefinition",
        "/v1/workspaces/{ws}/items/{item}/move",
        "/v1/workspaces/{ws}/lakehouses",
        "/v1/workspaces/{ws}/notebooks/{item}",
        "/v1/workspaces/{ws}/folders",
        "/v1/workspaces/{ws}/folders/{folder}",
        "/v1/workspaces/{ws}/folders/{folder}/move",
        "/v1/workspaces/{ws}/git/connect",
        "/v1/workspaces/{ws}/git/commitToGit",
        "/v1/workspaces/{ws}/git/updateFromGit",
        "/v1/workspaces/{ws}/git/myGitCredentials",
        "/v1/operations/zzz",
    ]
    .map(String::from)
    .into();
    (
        prop_oneof![
            Just(Method::POST),
            Just(Method::PATCH),
            Just(Method::PUT),
            Just(Method::GET),
            Just(Method::DELETE)
        ],
        prop::sample::select(paths),
    )
}

/// What a response must look like whatever the input.
fn check(
    status: u16,
    raw: &str,
    headers: &reqwest::header::HeaderMap,
) -> Result<(), TestCaseError> {
    prop_assert!(status < 500, "server error {status}: {raw}");
    prop_assert!(headers.get("content-type").is_some());
    prop_assert!(headers.get("RequestId").is_some());
    if status >= 400 {
        let v: Value =
            serde_json::from_str(raw).map_err(|e| TestCaseError::fail(format!("{e}: {raw}")))?;
        prop_assert!(
            v["errorCode"].is_string() && v["message"].is_string(),
            "{raw}"
        );
        prop_assert_eq!(
            headers
                .get("x-ms-public-api-error-code")
                .and_then(|h| h.to_str().ok()),
            v["errorCode"].as_str()
        );
    }
    Ok(())
}

proptest! {
    // Failures persist (proptest-regressions/) and replay first: the cases hold placeholders.
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_json_bodies_never_cause_a_server_error((method, path) in route(), body in json_value()) {
        let f = fixture();
        let _case = f.lock();
        let (status, raw, headers) = f.rt.block_on(async {
            let ids = fresh(&f.env).await;
            // The case starts with its workspace in place, whatever earlier cases deleted.
            f.env.get(&ids.fill("/v1/workspaces/{ws}")).await.expect(200);
            let r = f.env.http.request(method, f.env.url(&ids.fill(&path))).bearer_auth(&f.env.token)
                .header("content-type", "application/json").body(body.to_string()).send().await.unwrap();
            let (s, h) = (r.status().as_u16(), r.headers().clone());
            (s, r.text().await.unwrap(), h)
        });
        check(status, &raw, &headers)?;
    }

    #[test]
    fn raw_bytes_and_odd_paths_never_cause_a_server_error(
        body in prop::collection::vec(any::<u8>(), 0..200),
        segment in "[a-zA-Z0-9%._~-]{0,40}",
        (method, path) in route(),
    ) {
        let f = fixture();
        let _case = f.lock();
        let odd = format!("{path}/{segment}");
        for p in [path.as_str(), odd.as_str()] {
            let (status, raw, headers) = f.rt.block_on(async {
                let p = &fresh(&f.env).await.fill(p);
                let r = f.env.http.request(method.clone(), f.env.url(p)).bearer_auth(&f.env.token).body(body.clone()).send().await.unwrap();
                let (s, h) = (r.status().as_u16(), r.headers().clone());
                (s, r.text().await.unwrap(), h)
            });
            check(status, &raw, &headers)?;
        }
    }

    #[test]
    fn oversize_and_wrongly_typed_names_are_4xx(name in ".{257,400}", n in any::<i64>()) {
        let f = fixture();
        let _case = f.lock();
        f.rt.block_on(async {
            let ws = fresh(&f.env).await.ws;
            let r = f.env.post("/v1/workspaces", json!({"displayName": name})).await;
            assert_eq!(r.status, 400, "{}", r.raw);
            assert_eq!(r.error_code(), "InvalidInput");
            let r = f.env.post(&format!("/v1/workspaces/{ws}/items"), json!({"displayName": n, "type": "Notebook"})).await;
            assert_eq!(r.status, 400, "{}", r.raw);
            let r = f.env.post(&format!("/v1/workspaces/{ws}/folders"), json!({"displayName": name})).await;
            assert_eq!(r.status, 400, "{}", r.raw);
        });
    }
}

#[tokio::test]
async fn malformed_and_missing_bodies_name_the_problem() {
    let env = Env::start().await;
    let r = env
        .http
        .post(env.url("/v1/workspaces"))
        .bearer_auth(&env.token)
        .body("{\"displayName\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errorCode"], "InvalidInput");
    assert!(
        v["moreDetails"][0]["message"]
            .as_str()
            .unwrap()
            .contains("EOF"),
        "{v}"
    );
    let r = env
        .post("/v1/workspaces", json!({"description": "no name"}))
        .await
        .expect(400);
    assert!(
        r.body["moreDetails"][0]["message"]
            .as_str()
            .unwrap()
            .contains("displayName"),
        "{}",
        r.raw
    );
    let r = env
        .post("/v1/workspaces", json!({"displayName": ["x"]}))
        .await
        .expect(400);
    assert!(r.raw.contains("invalid type"), "{}", r.raw);
    let r = env
        .send(Method::POST, "/v1/workspaces", None, Some(&env.token))
        .await
        .expect(400);
    assert!(r.raw.contains("missing"), "{}", r.raw);
    let ws = env.workspace("W", false).await;
    let r = env
        .post(
            &format!("/v1/workspaces/{ws}/items"),
            json!({"displayName": "x", "type": "Notebook", "folderId": "not-a-guid"}),
        )
        .await
        .expect(400);
    assert!(r.raw.contains("not-a-guid"), "{}", r.raw);
    let r = env
        .delete(&format!(
            "/v1/workspaces/{ws}/items/00000000-0000-4000-8000-000000000000?hardDelete=maybe"
        ))
        .await
        .expect(400);
    assert!(r.raw.contains("maybe"), "{}", r.raw);
    // Extreme values saturate instead of overflowing.
    let t = env
        .post(
            "/_emulator/token",
            json!({"principalId": "p", "lifetimeSeconds": u64::MAX}),
        )
        .await
        .expect(200);
    env.send(
        Method::GET,
        "/v1/workspaces",
        None,
        t.body["accessToken"].as_str(),
    )
    .await
    .expect(200);
    let r = env
        .send(
            Method::PUT,
            "/_emulator/faults",
            Some(&json!({"spec": "latency=1e300s"})),
            None,
        )
        .await
        .expect(400);
    assert!(r.raw.contains("1e300s"), "{}", r.raw);
}

#[tokio::test]
async fn a_huge_lro_delay_keeps_operations_running_without_overflow() {
    let env = Env::with(|c| {
        c.lro_delay = std::time::Duration::MAX;
        c.create_mode = fabrik_emulator::CreateMode::Lro202;
    })
    .await;
    let ws = env.workspace("Slow", true).await;
    let r = env
        .post(
            &format!("/v1/workspaces/{ws}/items"),
            json!({"displayName": "n", "type": "Notebook"}),
        )
        .await
        .expect(202);
    let state = env.get(r.header("location").unwrap()).await.expect(200);
    assert_eq!(state.body["status"], "NotStarted");
    let info = env.get(&format!("/v1/workspaces/{ws}")).await.expect(200);
    assert_eq!(info.body["capacityAssignmentProgress"], "InProgress");
}
