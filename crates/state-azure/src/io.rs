//! The store's own I/O runtime.
//!
//! fabrik-txn's journal writer is a plain thread that blocks on each append, and its
//! `begin`/`open` are synchronous; the CLI may also block a runtime worker while a
//! transaction is dropped. If the store's HTTP requests and lease renewals ran on the
//! caller's runtime, a blocked worker could starve them (a current-thread runtime would
//! deadlock). So every request runs on a small runtime the store owns, and callers just await
//! its join handle, which works from any executor or from `futures::executor::block_on`.

use std::future::Future;
use std::sync::Arc;

use fabrik_core::StateError;
use tokio::runtime::{Builder, Handle, Runtime};

/// A handle to the store's runtime; the runtime stops when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Io(Arc<Owned>);

#[derive(Debug)]
struct Owned(Option<Runtime>);

impl Drop for Owned {
    fn drop(&mut self) {
        // Dropping a runtime may happen inside another runtime's task; never block there.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Io {
    pub(crate) fn new() -> Result<Self, StateError> {
        let rt = Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fabrik-state-io")
            .enable_all()
            .build()
            .map_err(|e| {
                StateError::Invalid(format!("cannot start the state store's runtime: {e}"))
            })?;
        Ok(Self(Arc::new(Owned(Some(rt)))))
    }

    pub(crate) fn handle(&self) -> &Handle {
        // Present until `Owned` is dropped, which needs every `Io` gone.
        self.0
            .0
            .as_ref()
            .map(Runtime::handle)
            .unwrap_or_else(|| unreachable!())
    }

    /// Runs `fut` on the store's runtime and waits for it from whatever executor calls.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StateError>> + Send + 'static,
    ) -> Result<T, StateError> {
        // Unconstrained: under `futures::executor::block_on` on a tokio thread (txn's sync
        // API called from a task), tokio's cooperative budget would otherwise run out and
        // wake the join handle at once, forever — a busy loop.
        tokio::task::unconstrained(self.handle().spawn(fut))
            .await
            .unwrap_or_else(|e| Err(StateError::Invalid(format!("state store task failed: {e}"))))
    }
}
