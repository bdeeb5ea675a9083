//! A policy that wraps every attempt of a call: the hook resilience plugs into.
//!
//! Exists so the Fabric client can run every request through retry, circuit breaking, rate
//! limiting and timeouts without depending on `fabrik-resilience`, and so the CLI can choose
//! the pipeline at run time from flags. Implemented by `fabrik-resilience`; consumed by
//! `fabrik-client` through [`call_with`], which also runs calls with no policy (one attempt).
//!
//! The trait is object-safe, so the value type and error type of the call are erased:
//! an [`Attempt`] keeps its own result and reports only what a policy needs to decide —
//! the failure's [`ErrorClass`] and the server's retry hint.

use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{BoxFuture, Classify, ErrorClass};

/// What a policy knows about a call.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// What breakers and rate limiters key on (a host, an endpoint, a workspace).
    pub key: String,
    /// The operation, as a route template with ids elided (`GET /v1/workspaces/{id}`).
    pub operation: String,
    /// Whether repeating the call is safe. A policy may refuse to retry non-idempotent calls
    /// after an ambiguous failure; the client marks creates idempotent when it makes them so.
    pub idempotent: bool,
    /// When the whole call, all attempts included, must be done.
    pub deadline: Option<Instant>,
}

impl CallContext {
    /// A context for `operation` keyed on `key`, idempotent, with no deadline.
    pub fn new(key: impl Into<String>, operation: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            operation: operation.into(),
            idempotent: true,
            deadline: None,
        }
    }

    /// Sets the deadline.
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }
}

/// What a failed attempt tells the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptError {
    /// The class of the failure.
    pub class: ErrorClass,
    /// The server's wait hint, a floor for the next attempt.
    pub retry_after: Option<Duration>,
    /// A one-line summary for logs (never a secret).
    pub summary: String,
}

impl AttemptError {
    /// Summarizes a classified error.
    pub fn from_error<E: Classify + fmt::Display>(e: &E) -> Self {
        Self {
            class: e.class(),
            retry_after: e.retry_after(),
            summary: e.to_string(),
        }
    }
}

/// One attempt of a call. Called once per attempt, numbered from 1.
pub trait Attempt: Send + Sync {
    /// Makes attempt number `n`; on success the attempt keeps its own value.
    fn attempt(&self, n: u32) -> BoxFuture<'_, Result<(), AttemptError>>;
}

/// Why a policy refused to make (another) attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The circuit for `key` is open.
    #[error("circuit '{key}' is open; next probe allowed in {retry_in:?}")]
    CircuitOpen {
        /// The breaker's key.
        key: String,
        /// When a probe will be allowed.
        retry_in: Duration,
    },
    /// The circuit for `key` was isolated by hand; it stays open until someone resets it.
    #[error("circuit '{key}' is isolated until it is reset")]
    CircuitIsolated {
        /// The breaker's key.
        key: String,
    },
    /// The retry budget is spent: too many retries across all callers.
    #[error("retry budget for '{key}' exhausted")]
    BudgetExhausted {
        /// The budget's key.
        key: String,
    },
    /// The call's deadline passed.
    #[error("deadline exceeded after {attempts} attempt(s)")]
    DeadlineExceeded {
        /// Attempts made.
        attempts: u32,
    },
    /// The server asked to wait longer than the deadline leaves.
    #[error(
        "server asked to retry after {hint:?}, but only {remaining:?} remain before the deadline"
    )]
    HintBeyondDeadline {
        /// The server's hint.
        hint: Duration,
        /// Time left.
        remaining: Duration,
    },
    /// The last attempt ran out of time.
    #[error("attempt {attempt} timed out after {after:?}")]
    AttemptTimedOut {
        /// Which attempt.
        attempt: u32,
        /// Its timeout.
        after: Duration,
    },
    /// The concurrency limit is reached and the queue is full.
    #[error("concurrency limit for '{key}' reached")]
    Bulkhead {
        /// The limiter's key.
        key: String,
    },
}

impl Classify for Rejection {
    fn class(&self) -> ErrorClass {
        match self {
            Rejection::AttemptTimedOut { .. } => ErrorClass::Timeout,
            // An open circuit is a temporary state with a known end: a caller outside the
            // pipeline (a recovery run, a reconciler) may try again after `retry_in`.
            Rejection::CircuitOpen { .. } => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Rejection::CircuitOpen { retry_in, .. } => Some(*retry_in),
            _ => None,
        }
    }
}

/// How a policy-run call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// The last attempt failed and the policy gave up (permanent, or attempts exhausted).
    Failed {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's failure.
        last: AttemptError,
    },
    /// The policy refused to make (another) attempt.
    Rejected(Rejection),
}

/// A policy that runs the attempts of a call.
pub trait CallPolicy: Send + Sync + fmt::Debug {
    /// Runs `op` until it succeeds or the policy gives up.
    fn execute<'a>(
        &'a self,
        ctx: &'a CallContext,
        op: &'a dyn Attempt,
    ) -> BoxFuture<'a, Result<(), PolicyError>>;
}

/// How a call run by [`call_with`] failed: with the operation's own error, or a rejection.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    /// The operation's last error.
    #[error(transparent)]
    Failed(E),
    /// The policy refused (another) attempt. The last attempt's own error, when that attempt
    /// ended with one (not when it timed out or none was made), is kept as the source: a
    /// budget or deadline refusal alone does not say what kept failing.
    #[error("{rejection}")]
    Rejected {
        /// Why the policy refused.
        rejection: Rejection,
        /// The last attempt's error.
        #[source]
        last: Option<E>,
    },
}

impl<E: Classify> Classify for CallError<E> {
    fn class(&self) -> ErrorClass {
        match self {
            CallError::Failed(e) => e.class(),
            CallError::Rejected { rejection, .. } => rejection.class(),
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Failed(e) => e.retry_after(),
            CallError::Rejected { rejection, .. } => rejection.retry_after(),
        }
    }
}

/// Runs `f` under `policy` (or once, with no policy), returning its value or its own error.
/// This is where the erased [`Attempt`] gets its types back.
pub async fn call_with<T, E, F, Fut>(
    policy: Option<&dyn CallPolicy>,
    ctx: &CallContext,
    f: F,
) -> Result<T, CallError<E>>
where
    T: Send,
    E: Classify + fmt::Display + Send,
    F: Fn(u32) -> Fut + Send + Sync,
    Fut: Future<Output = Result<T, E>> + Send,
{
    let Some(policy) = policy else {
        return f(1).await.map_err(CallError::Failed);
    };
    let op = Erased {
        f,
        value: Mutex::new(None),
        error: Mutex::new(None),
    };
    let outcome = policy.execute(ctx, &op).await;
    let value = op.value.into_inner().unwrap_or_else(|p| p.into_inner());
    let error = op.error.into_inner().unwrap_or_else(|p| p.into_inner());
    match (outcome, value, error) {
        (Ok(()), Some(v), _) => Ok(v),
        (Err(PolicyError::Failed { .. }), _, Some(e)) => Err(CallError::Failed(e)),
        (Err(PolicyError::Rejected(rejection)), _, last) => {
            Err(CallError::Rejected { rejection, last })
        }
        // A policy that reports success without a successful attempt, or failure without a
        // failed one, breaks the contract; report it rather than panic.
        (Ok(()), None, _) | (Err(PolicyError::Failed { .. }), _, None) => {
            Err(CallError::Rejected {
                rejection: Rejection::DeadlineExceeded { attempts: 0 },
                last: None,
            })
        }
    }
}

struct Erased<T, E, F> {
    f: F,
    value: Mutex<Option<T>>,
    error: Mutex<Option<E>>,
}

impl<T, E, F, Fut> Attempt for Erased<T, E, F>
where
    T: Send,
    E: Classify + fmt::Display + Send,
    F: Fn(u32) -> Fut + Send + Sync,
    Fut: Future<Output = Result<T, E>> + Send,
{
    fn attempt(&self, n: u32) -> BoxFuture<'_, Result<(), AttemptError>> {
        Box::pin(async move {
            // Cleared first: an attempt cut short by a timeout leaves no stale error behind.
            *self.error.lock().unwrap_or_else(|p| p.into_inner()) = None;
            match (self.f)(n).await {
                Ok(v) => {
                    *self.value.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
                    Ok(())
                }
                Err(e) => {
                    let summary = AttemptError::from_error(&e);
                    *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    Err(summary)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug, thiserror::Error)]
    #[error("boom {0}")]
    struct Boom(u16);
    impl Classify for Boom {
        fn class(&self) -> ErrorClass {
            ErrorClass::from_status(self.0)
        }
    }

    /// Retries every retryable failure up to three attempts: enough to exercise the erasure.
    #[derive(Debug)]
    struct ThreeTries;
    impl CallPolicy for ThreeTries {
        fn execute<'a>(
            &'a self,
            _ctx: &'a CallContext,
            op: &'a dyn Attempt,
        ) -> BoxFuture<'a, Result<(), PolicyError>> {
            Box::pin(async move {
                let mut n = 0;
                loop {
                    n += 1;
                    match op.attempt(n).await {
                        Ok(()) => return Ok(()),
                        Err(e) if e.class.is_retryable() && n < 3 => continue,
                        Err(last) => return Err(PolicyError::Failed { attempts: n, last }),
                    }
                }
            })
        }
    }

    /// Makes one attempt and then refuses, as a spent retry budget does.
    #[derive(Debug)]
    struct OneTryThenBudget;
    impl CallPolicy for OneTryThenBudget {
        fn execute<'a>(
            &'a self,
            _ctx: &'a CallContext,
            op: &'a dyn Attempt,
        ) -> BoxFuture<'a, Result<(), PolicyError>> {
            Box::pin(async move {
                op.attempt(1).await.ok();
                Err(PolicyError::Rejected(Rejection::BudgetExhausted {
                    key: "k".into(),
                }))
            })
        }
    }

    #[tokio::test]
    async fn a_rejection_keeps_the_last_attempts_error_as_its_source() {
        use std::error::Error as _;
        let ctx = CallContext::new("k", "GET /x");
        let r: Result<u32, _> = call_with(Some(&OneTryThenBudget), &ctx, |_| async {
            Err::<u32, _>(Boom(503))
        })
        .await;
        let err = r.unwrap_err();
        assert!(
            matches!(
                &err,
                CallError::Rejected {
                    rejection: Rejection::BudgetExhausted { .. },
                    last: Some(Boom(503)),
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "retry budget for 'k' exhausted");
        assert_eq!(
            err.source().map(|s| s.to_string()).as_deref(),
            Some("boom 503")
        );
    }

    #[tokio::test]
    async fn values_and_errors_come_back_typed() {
        let ctx = CallContext::new("k", "GET /x");
        let calls = AtomicU32::new(0);
        let r: Result<u32, CallError<Boom>> = call_with(Some(&ThreeTries), &ctx, |n| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move { if n < 3 { Err(Boom(503)) } else { Ok(n * 10) } }
        })
        .await;
        assert_eq!(r.unwrap(), 30);
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let r: Result<u32, _> = call_with(Some(&ThreeTries), &ctx, |_| async {
            Err::<u32, _>(Boom(404))
        })
        .await;
        assert!(matches!(r, Err(CallError::Failed(Boom(404)))));

        // Without a policy: exactly one attempt.
        let calls = AtomicU32::new(0);
        let r: Result<u32, _> = call_with(None, &ctx, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<u32, _>(Boom(503)) }
        })
        .await;
        assert!(matches!(r, Err(CallError::Failed(Boom(503)))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
