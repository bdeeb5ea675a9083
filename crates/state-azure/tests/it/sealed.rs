//! Encryption happens before the store: an Azure Blob journal (on Azurite) holds ciphertext,
//! lists without the key, and rolls back with it.

use std::sync::Arc;

use fabrik_core::JournalStore;
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo};
use fabrik_state_azure::azurite::Azurite;
use fabrik_state_azure::{AzureBlobStore, AzureStateOptions, StateUrl};
use fabrik_txn::{Journal, JournalError, KdfParams, Keyring, Step, Transaction, TxnOptions};
use secrecy::SecretString;

const PLANTED: &str = "AccountKey=PlantedAzureSecret==";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_azure_blob_journal_holds_only_ciphertext_and_rolls_back_with_the_key() {
    let azurite = Azurite::start();
    let container = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
    let url = StateUrl::parse(&azurite.url_with_sas(&container)).unwrap();
    let store: Arc<dyn JournalStore> =
        Arc::new(AzureBlobStore::new(url, AzureStateOptions::default()).unwrap());
    let keys = Keyring::new(SecretString::from("an azure state passphrase".to_owned())).with_kdf(
        KdfParams {
            m_cost: 8,
            t_cost: 1,
            p_cost: 1,
        },
    );
    let opts = TxnOptions::new("unused")
        .with_store(store.clone())
        .with_keys(keys.clone());
    let txn = Transaction::begin_async("deploy dev", opts).await.unwrap();
    let item = ResourceRef::in_workspace(ResourceKind::Item, "ws-1", "it-1", None);
    let undo = Undo::new(
        "item",
        &serde_json::json!({
            "workspaceId": "ws-1",
            "itemId": "it-1",
            "displayName": "etl",
            "description": PLANTED,
        }),
    );
    txn.track_step(Step::new(item, undo.clone())).await.unwrap();
    let run_id = txn.run_id().to_owned();
    drop(txn);

    let blob = String::from_utf8(store.read(&run_id).await.unwrap()).unwrap();
    assert!(!blob.contains("PlantedAzureSecret"), "{blob}");
    assert!(blob.contains("\"sealed\""), "{blob}");
    let listing = Journal::list_runs_in(store.as_ref()).await.unwrap();
    assert_eq!(listing.runs[0].pending_undos, 1);

    let refused = Journal::open_in(store.as_ref(), &run_id)
        .await
        .unwrap()
        .rollback("recovery", &Recorder::default(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, JournalError::KeyRequired { .. }),
        "{refused}"
    );
    let recorder = Recorder::default();
    Journal::open_in(store.as_ref(), &run_id)
        .await
        .unwrap()
        .with_keys(&keys)
        .unwrap()
        .rollback("recovery", &recorder, None)
        .await
        .unwrap();
    assert_eq!(recorder.0.lock().unwrap().as_slice(), [undo]);
}

/// Records every undo it is asked to do.
#[derive(Debug, Default)]
struct Recorder(std::sync::Mutex<Vec<Undo>>);

#[async_trait::async_trait]
impl fabrik_core::resource::Undoer for Recorder {
    async fn undo(
        &self,
        undo: &Undo,
    ) -> Result<fabrik_core::resource::UndoOutcome, fabrik_core::resource::UndoError> {
        self.0.lock().unwrap().push(undo.clone());
        Ok(fabrik_core::resource::UndoOutcome::Done)
    }
}
