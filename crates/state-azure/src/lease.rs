//! Blob leases kept alive in the background, and the news that one was lost.
//!
//! A lease lasts `duration` (15–60 s in Azure) unless renewed, so a runner that dies frees
//! its lock by itself. The keeper renews every `renew_every` on the injected clock and
//! sleeper. A renewal the service refuses (the lease was broken, changed or expired and
//! taken) loses the lease at once; renewals that fail to reach the service lose it once the
//! last successful renewal is `duration` old, since the service may have let it go by then.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_storage_blob::BlobClient;
use fabrik_core::{Clock, Sleeper};
use tokio::sync::{oneshot, watch};

use crate::error::{describe, is_refusal};

/// How leases are timed.
#[derive(Debug, Clone)]
pub struct LeaseTiming {
    /// The lease's duration in seconds (Azure accepts 15–60).
    pub duration_secs: i32,
    /// How often to renew; well under the duration.
    pub renew_every: Duration,
    /// Time source for deciding when a lease that cannot be renewed must count as lost.
    pub clock: Arc<dyn Clock>,
    /// What the renewal loop waits with.
    pub sleeper: Arc<dyn Sleeper>,
}

/// A lease this process holds, renewed until stopped or lost.
#[derive(Debug)]
pub(crate) struct Keeper {
    pub(crate) id: String,
    lost: watch::Receiver<Option<String>>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl Keeper {
    /// Starts renewing lease `id` on `blob` (named `what` in messages) on `handle`.
    pub(crate) fn start(
        handle: &tokio::runtime::Handle,
        blob: BlobClient,
        id: String,
        what: String,
        timing: &LeaseTiming,
        redact: impl Fn(&str) -> String + Send + 'static,
    ) -> Self {
        let (lost_tx, lost) = watch::channel(None);
        let (stop, mut stopped) = oneshot::channel();
        let timing = timing.clone();
        let lease_id = id.clone();
        handle.spawn(async move {
            let duration = Duration::from_secs(timing.duration_secs.max(1) as u64);
            let mut last_ok = timing.clock.now();
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    () = timing.sleeper.sleep(timing.renew_every) => {}
                }
                let result = tokio::select! {
                    _ = &mut stopped => return,
                    r = blob.renew_lease(lease_id.clone(), None) => r,
                };
                match result {
                    Ok(_) => last_ok = timing.clock.now(),
                    Err(e) if is_refusal(&e) => {
                        let why = format!(
                            "the lease on {what} was lost: the service refused to renew it ({}); \
                             another process broke or took it",
                            redact(&describe(&e))
                        );
                        tracing::error!(lease = %what, "{why}");
                        let _ = lost_tx.send(Some(why));
                        return;
                    }
                    Err(e) => {
                        let since = timing.clock.now().saturating_duration_since(last_ok);
                        let detail = redact(&describe(&e));
                        if since >= duration {
                            let why = format!(
                                "the lease on {what} was lost: it could not be renewed for {}s \
                                 ({detail})",
                                since.as_secs()
                            );
                            tracing::error!(lease = %what, "{why}");
                            let _ = lost_tx.send(Some(why));
                            return;
                        }
                        tracing::warn!(lease = %what, error = %detail, "lease renewal failed; retrying");
                    }
                }
            }
        });
        Self {
            id,
            lost,
            stop: Mutex::new(Some(stop)),
        }
    }

    /// Why the lease was lost, if it was.
    pub(crate) fn lost(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    /// Resolves with why once the lease is lost; pending forever if it never is.
    pub(crate) async fn wait_lost(&self) -> String {
        let mut rx = self.lost.clone();
        let why = rx
            .wait_for(Option::is_some)
            .await
            .map(|v| v.clone().unwrap_or_default());
        match why {
            Ok(why) => why,
            // The renewal task ended without losing the lease: it was stopped (released).
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops renewing (the lease itself is released, or left to expire, by the caller).
    pub(crate) fn stop(&self) {
        if let Some(tx) = self.stop.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.stop();
    }
}
