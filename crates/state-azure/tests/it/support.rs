//! Shared helpers: a store on a fresh container of a running Azurite, and a recording undoer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fabrik_core::resource::{Undo, UndoError, UndoOutcome, Undoer};
use fabrik_core::time::ManualClock;
use fabrik_core::{Clock, Sleeper};
use fabrik_state_azure::azurite::Azurite;
use fabrik_state_azure::{AzureBlobStore, AzureStateOptions, StateUrl};

/// A fresh container name, so tests sharing one Azurite never see each other's state.
pub(crate) fn container() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..20])
}

/// Options with no SDK retries (failures come back at once) and the given time source.
pub(crate) fn options(clock: Arc<dyn Clock>, sleeper: Arc<dyn Sleeper>) -> AzureStateOptions {
    let mut o = AzureStateOptions::default().with_time(clock, sleeper);
    o.max_retries = 0;
    o.lease.duration_secs = 15;
    o.lease.renew_every = Duration::from_secs(5);
    o
}

/// A store on `container` of `azurite` with a SAS, time from `clock` (renewals wait on it).
pub(crate) fn store_on(
    azurite: &Azurite,
    container: &str,
    clock: &Arc<ManualClock>,
) -> AzureBlobStore {
    let url = StateUrl::parse(&azurite.url_with_sas(container)).unwrap();
    AzureBlobStore::new(url, options(clock.clone(), clock.clone())).unwrap()
}

/// Records every undo it is asked to do.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub(crate) done: Mutex<Vec<Undo>>,
}

#[async_trait]
impl Undoer for Recorder {
    async fn undo(&self, undo: &Undo) -> Result<UndoOutcome, UndoError> {
        self.done.lock().unwrap().push(undo.clone());
        Ok(UndoOutcome::Done)
    }
}

/// Waits (polling a real clock, at most 30 s) until `f` holds: for background renewals that
/// run on the store's own runtime after the manual clock was advanced.
pub(crate) async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
