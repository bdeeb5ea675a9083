//! Test harness: an emulator on 127.0.0.1:0 with a manual clock, a client and a token.

use std::sync::Arc;
use std::time::Duration;

use fabrik_core::time::ManualClock;
use fabrik_emulator::{Emulator, EmulatorConfig};
use reqwest::Method;
use serde_json::Value;

pub(crate) const ME: &str = "a1b2c3d4-0000-4000-8000-000000000001";

pub(crate) struct Env {
    pub(crate) emu: Emulator,
    pub(crate) http: reqwest::Client,
    pub(crate) token: String,
    pub(crate) clock: ManualClock,
}

#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
    pub(crate) raw: String,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts the status, printing the body when it is not.
    #[track_caller]
    pub(crate) fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.raw);
        self
    }
    /// Asserts the real error shape and returns the error code.
    #[track_caller]
    pub(crate) fn error_code(&self) -> &str {
        let code = self.body["errorCode"]
            .as_str()
            .unwrap_or_else(|| panic!("no errorCode in {}", self.raw));
        assert!(self.body["message"].is_string(), "{}", self.raw);
        assert!(self.body["isRetriable"].is_boolean(), "{}", self.raw);
        let rid = self.body["requestId"].as_str().expect("requestId");
        assert_eq!(
            Some(rid),
            self.header("RequestId"),
            "body and header request ids differ"
        );
        assert_eq!(self.header("x-ms-public-api-error-code"), Some(code));
        assert!(
            self.header("content-type")
                .unwrap_or_default()
                .starts_with("application/json")
        );
        code
    }
}

impl Env {
    pub(crate) async fn start() -> Env {
        Self::with(|_| {}).await
    }

    pub(crate) async fn with(f: impl FnOnce(&mut EmulatorConfig)) -> Env {
        let clock = ManualClock::auto_advance();
        let mut config = EmulatorConfig {
            clock: Arc::new(clock.clone()),
            sleeper: Arc::new(clock.clone()),
            ..EmulatorConfig::default()
        };
        f(&mut config);
        let emu = Emulator::start(config).await.expect("emulator starts");
        let token = emu.mint_token(ME, Duration::from_secs(3600));
        Env {
            emu,
            http: reqwest::Client::new(),
            token,
            clock,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.emu.base_url(), path)
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Resp {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            self.url(path)
        };
        let mut req = self.http.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = req.send().await.expect("request sent");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let raw = r.text().await.expect("body read");
        let body = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&raw).unwrap_or(Value::Null)
        };
        Resp {
            status,
            headers,
            body,
            raw,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None, Some(&self.token)).await
    }
    pub(crate) async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(&body), Some(&self.token))
            .await
    }
    pub(crate) async fn post_empty(&self, path: &str) -> Resp {
        self.send(Method::POST, path, None, Some(&self.token)).await
    }
    pub(crate) async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(&body), Some(&self.token))
            .await
    }
    pub(crate) async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None, Some(&self.token))
            .await
    }

    /// Creates a workspace (on the default capacity when `on_capacity`) and returns its id.
    pub(crate) async fn workspace(&self, name: &str, on_capacity: bool) -> String {
        let mut body = serde_json::json!({"displayName": name});
        if on_capacity {
            let caps = self.get("/v1/capacities").await.expect(200);
            body["capacityId"] = caps.body["value"][0]["id"].clone();
        }
        self.post("/v1/workspaces", body).await.expect(201).body["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Follows a 202 to the operation's end and returns the final state and, if any, result.
    pub(crate) async fn finish(&self, accepted: Resp) -> (Value, Option<Value>) {
        let accepted = accepted.expect(202);
        assert_eq!(
            accepted.raw, "null",
            "a 202's body is JSON null, as the service's"
        );
        let location = accepted.header("location").expect("Location").to_string();
        let op_id = accepted
            .header("x-ms-operation-id")
            .expect("x-ms-operation-id")
            .to_string();
        assert!(
            accepted
                .header("retry-after")
                .unwrap()
                .parse::<u64>()
                .is_ok()
        );
        assert_eq!(location, self.url(&format!("/v1/operations/{op_id}")));
        let mut state = self.get(&location).await.expect(200);
        for _ in 0..100 {
            if matches!(state.body["status"].as_str(), Some("Succeeded" | "Failed")) {
                break;
            }
            let wait = state.header("retry-after").unwrap().parse::<u64>().unwrap();
            self.clock.advance(Duration::from_secs(wait.max(1)));
            state = self.get(&location).await.expect(200);
        }
        let result = match state.header("location") {
            Some(l) => {
                assert_eq!(l, self.url(&format!("/v1/operations/{op_id}/result")));
                Some(self.get(l).await.expect(200).body)
            }
            None => None,
        };
        (state.body, result)
    }
}
