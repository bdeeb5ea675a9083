//! Long-running operations: one generic poller for every LRO endpoint.
//!
//! A 200/201 answer is the result. A 202 carries `Location` (absolute, possibly on another
//! host), `x-ms-operation-id` and `Retry-After`; the poller waits the hint on the injected
//! sleeper, polls until `Succeeded` or `Failed`, then fetches `/result` when the caller wants
//! one. The caller's deadline bounds the whole operation.

use fabrik_core::classify::retry_hint;
use fabrik_core::metric_names;
use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::client::{Call, FabricClient, Response};
use crate::error::FabricError;
use crate::models::{OperationState, OperationStatus};

const STATE_ROUTE: &str = "/operations/{operationId}";
const RESULT_ROUTE: &str = "/operations/{operationId}/result";

impl FabricClient {
    /// Runs an LRO-capable call to completion and decodes its result (from the first answer,
    /// or from `/result`).
    pub(crate) async fn lro_result<T: DeserializeOwned>(
        &self,
        call: Call,
    ) -> Result<T, FabricError> {
        self.run_lro(call, true).await?.json()
    }

    /// Runs an LRO-capable call that has no result to completion.
    pub(crate) async fn lro_done(&self, call: Call) -> Result<(), FabricError> {
        self.run_lro(call, false).await.map(drop)
    }

    /// Runs the operation; returns the answer holding the result when `want_result`, else the
    /// last answer seen.
    async fn run_lro(&self, call: Call, want_result: bool) -> Result<Response, FabricError> {
        match self.lro_start(call).await? {
            Started::Done(answer) => Ok(answer),
            Started::Running(op) => self.lro_wait(op, want_result).await,
        }
    }

    /// Sends an LRO-capable call: its answer when it is one (200/201), else the operation it
    /// started, to wait for with [`wait_operation`](Self::wait_operation).
    pub(crate) async fn lro_start(&self, call: Call) -> Result<Started, FabricError> {
        let started = self.inner.clock.now();
        let first = self.execute(&call).await?;
        if first.status != 202 {
            return Ok(Started::Done(first));
        }
        let operation = first.operation.clone();
        let location = first.header("location").map(str::to_owned);
        let operation_id = first
            .header("x-ms-operation-id")
            .map(str::to_owned)
            .or_else(|| location.as_deref().and_then(last_segment))
            .unwrap_or_default();
        let state_url = match (&location, operation_id.is_empty()) {
            (Some(loc), _) => self.call_url(Method::GET, STATE_ROUTE, loc, &call.url)?.url,
            (None, false) => self.call(Method::GET, STATE_ROUTE, &[&operation_id]).url,
            (None, true) => {
                return Err(FabricError::Decode {
                    operation,
                    status: 202,
                    message: "202 Accepted without Location or x-ms-operation-id".into(),
                });
            }
        };
        Ok(Started::Running(Operation {
            operation,
            route: call.route,
            operation_id,
            state_url,
            // When the first poll is due: a caller that waits later (a run waiting for every
            // Environment publish at its end) polls then, not a whole wait after it begins.
            first_poll: self.inner.clock.now() + self.poll_wait(&first),
            deadline: started + self.lro_deadline,
            started,
        }))
    }

    /// Waits for an operation [`lro_start`](Self::lro_start) (or a call such as
    /// [`start_environment_publish`](Self::start_environment_publish)) started, within the
    /// deadline it started with; a failed operation is an error.
    pub async fn wait_operation(&self, op: Operation) -> Result<(), FabricError> {
        self.lro_wait(op, false).await.map(drop)
    }

    async fn lro_wait(&self, op: Operation, want_result: bool) -> Result<Response, FabricError> {
        let clock = &self.inner.clock;
        let Operation {
            operation,
            route,
            operation_id,
            mut state_url,
            first_poll,
            deadline,
            started,
        } = op;
        let mut wait = first_poll.saturating_duration_since(clock.now());
        let mut status = OperationStatus::NotStarted;
        loop {
            let now = clock.now();
            if now + wait > deadline {
                return Err(FabricError::OperationTimedOut {
                    operation,
                    operation_id,
                    status: status.to_string(),
                    deadline: self.lro_deadline,
                });
            }
            self.inner.sleeper.sleep(wait).await;
            let poll = Call {
                method: Method::GET,
                route: STATE_ROUTE,
                url: state_url.clone(),
                body: None,
                idempotent: true,
            };
            let resp = self.execute(&poll).await?;
            metrics::counter!(metric_names::LRO_POLLS, "route" => route).increment(1);
            let state: OperationState = resp.json()?;
            status = state.status;
            match status {
                OperationStatus::Succeeded => {
                    metrics::histogram!(metric_names::LRO_DURATION, "route" => route)
                        .record(clock.now().saturating_duration_since(started).as_secs_f64());
                    if !want_result {
                        return Ok(resp);
                    }
                    // Once done, Location points at the result; otherwise it is state + /result.
                    let target = match resp.header("location") {
                        Some(loc) if loc.trim_end_matches('/').ends_with("/result") => {
                            loc.to_owned()
                        }
                        _ => format!("{}/result", state_url.as_str().trim_end_matches('/')),
                    };
                    let get = self.call_url(Method::GET, RESULT_ROUTE, &target, &state_url)?;
                    return self.execute(&get).await;
                }
                OperationStatus::Failed => {
                    return Err(FabricError::OperationFailed {
                        operation,
                        operation_id,
                        error: state.error.map(Box::new),
                    });
                }
                _ => {
                    wait = self.poll_wait(&resp);
                    if let Some(loc) = resp.header("location")
                        && !loc.trim_end_matches('/').ends_with("/result")
                    {
                        state_url = self
                            .call_url(Method::GET, STATE_ROUTE, loc, &state_url)?
                            .url;
                    }
                }
            }
        }
    }

    fn poll_wait(&self, resp: &Response) -> std::time::Duration {
        retry_hint(|n| resp.header(n), self.inner.clock.system_now())
            .unwrap_or(self.inner.lro_poll_interval)
    }
}

/// What an LRO-capable call gave: its answer, or the operation it started.
#[derive(Debug)]
pub(crate) enum Started {
    /// 200/201: the answer.
    Done(Response),
    /// 202: the operation, running.
    Running(Operation),
}

/// A long-running operation the service is running, to wait for with
/// [`FabricClient::wait_operation`]; it keeps the deadline it started with.
#[derive(Debug, Clone)]
pub struct Operation {
    operation: String,
    route: &'static str,
    operation_id: String,
    state_url: url::Url,
    first_poll: std::time::Instant,
    deadline: std::time::Instant,
    started: std::time::Instant,
}

fn last_segment(url: &str) -> Option<String> {
    url.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}
