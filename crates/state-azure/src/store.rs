//! [`AzureBlobStore`]: journals as append blobs, deployment locks as blob leases.
//!
//! ```text
//! <container>/<prefix>runs/<run_id>.jsonl   append blob: the journal; leased by its writer
//! <container>/<prefix>locks/<key>.lock      empty blob: its lease is the lock, its metadata the holder
//! ```
//!
//! Two writers can never interleave one journal: every append carries the writer's lease id
//! (the service refuses appends without it) and the offset it expects to append at
//! (`x-ms-blob-condition-appendpos`), so even a writer whose lease was broken and taken over
//! cannot add a block after someone else's. An append returns only once the service
//! acknowledged it. Blocks hold whole lines only, so a journal blob never has a torn tail.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken as AzureToken, TokenCredential, TokenRequestOptions};
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RequestContent, RetryOptions};
use azure_storage_blob::models::{
    AppendBlobClientAppendBlockOptions, AppendBlobClientCreateOptions,
    BlobClientAcquireLeaseOptions, BlobClientBreakLeaseOptions,
    BlobClientGetPropertiesResultHeaders, BlobClientReleaseLeaseOptions,
    BlobClientSetMetadataOptions, BlobContainerClientListBlobsOptions, LeaseState,
};
use azure_storage_blob::{BlobClient, BlobContainerClient, BlobContainerClientOptions};
use fabrik_core::{
    Clock, DeploymentLocks, HeldLock, JournalAppender, JournalStore, LockHolder, Sleeper,
    StateError, SystemClock, TokenProvider,
};
use futures::TryStreamExt;
use secrecy::ExposeSecret;

use crate::error::{describe, has_code, is_not_found, is_refusal, status_code};
use crate::io::Io;
use crate::lease::{Keeper, LeaseTiming};
use crate::url::StateUrl;

/// Azure accepts append blocks of at most 4 MiB (older service versions) in one request.
const MAX_BLOCK: usize = 4 * 1024 * 1024;

/// How to reach the container and keep leases.
#[derive(Debug, Clone)]
pub struct AzureStateOptions {
    /// Lease duration and renewal (default: 60 s leases renewed every 20 s, system time).
    pub lease: LeaseTiming,
    /// Entra token source, used when the URL has no SAS (https only).
    pub tokens: Option<Arc<dyn TokenProvider>>,
    /// Retries of a failed request inside the SDK (0: none, as tests want).
    pub max_retries: u32,
}

impl Default for AzureStateOptions {
    fn default() -> Self {
        Self {
            lease: LeaseTiming {
                duration_secs: 60,
                renew_every: Duration::from_secs(20),
                clock: Arc::new(SystemClock),
                sleeper: Arc::new(fabrik_core::time::TokioSleeper),
            },
            tokens: None,
            max_retries: 3,
        }
    }
}

impl AzureStateOptions {
    /// Uses `clock` and `sleeper` for lease renewal.
    pub fn with_time(mut self, clock: Arc<dyn Clock>, sleeper: Arc<dyn Sleeper>) -> Self {
        self.lease.clock = clock;
        self.lease.sleeper = sleeper;
        self
    }
}

/// Run journals and deployment locks in one Azure Blob container (under an optional prefix).
/// Cheap to clone; all clones share one connection pool and one I/O runtime.
#[derive(Debug, Clone)]
pub struct AzureBlobStore {
    io: Io,
    inner: Arc<Inner>,
}

struct Inner {
    url: StateUrl,
    /// The deployment locks this store's runs are made under, recorded on each new journal.
    lock_keys: Vec<String>,
    container: Arc<BlobContainerClient>,
    timing: LeaseTiming,
    container_ready: tokio::sync::OnceCell<()>,
}

impl std::fmt::Debug for Inner {
    // The SDK's client has no Debug; the URL (without SAS) says which container this is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Lets the SDK ask fabrik's credential chain for storage tokens.
#[derive(Debug)]
struct TokenBridge(Arc<dyn TokenProvider>);

#[async_trait]
impl TokenCredential for TokenBridge {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AzureToken> {
        let t = self.0.token(scopes).await.map_err(|e| {
            azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, e.to_string())
        })?;
        Ok(AzureToken::new(
            t.token.expose_secret().to_owned(),
            time::OffsetDateTime::from(t.expires_at),
        ))
    }
}

impl AzureBlobStore {
    /// A store for `url`. Without a SAS, `options.tokens` must be set and the URL must use
    /// https (the SDK sends tokens over TLS only). No request is made yet.
    pub fn new(url: StateUrl, options: AzureStateOptions) -> Result<Self, StateError> {
        if !(15..=60).contains(&options.lease.duration_secs) {
            return Err(StateError::Invalid(format!(
                "lease duration {}s: Azure accepts 15 to 60 seconds",
                options.lease.duration_secs
            )));
        }
        // Again here: a SAS given apart from the URL (`with_sas`) was not checked by `parse`.
        url.check_sas_transport().map_err(StateError::Invalid)?;
        let credential: Option<Arc<dyn TokenCredential>> = if url.has_sas() {
            None
        } else {
            let Some(tokens) = options.tokens.clone() else {
                return Err(StateError::Invalid(format!(
                    "state {url}: no SAS token (in the URL or FABRIK_STATE_SAS) and no Entra credential"
                )));
            };
            if !url.is_https() {
                return Err(StateError::Invalid(format!(
                    "state {url}: Entra tokens are only sent over https; use https or a SAS token"
                )));
            }
            Some(Arc::new(TokenBridge(tokens)))
        };
        let retry = if options.max_retries == 0 {
            RetryOptions::none()
        } else {
            RetryOptions::exponential(ExponentialRetryOptions {
                initial_delay: azure_core::time::Duration::milliseconds(200),
                max_retries: options.max_retries,
                max_total_elapsed: azure_core::time::Duration::seconds(20),
                max_delay: azure_core::time::Duration::seconds(5),
            })
        };
        let client_options = ClientOptions {
            retry,
            ..ClientOptions::default()
        };
        let container = BlobContainerClient::new(
            url.container_url_with_sas(),
            credential,
            Some(BlobContainerClientOptions {
                client_options,
                ..Default::default()
            }),
        )
        .map_err(|e| StateError::Invalid(format!("state {url}: {}", url.redact(&describe(&e)))))?;
        Ok(Self {
            io: Io::new()?,
            inner: Arc::new(Inner {
                url,
                lock_keys: Vec::new(),
                container: Arc::new(container),
                timing: options.lease,
                container_ready: tokio::sync::OnceCell::new(),
            }),
        })
    }

    /// The state URL (without credentials).
    pub fn url(&self) -> &StateUrl {
        &self.inner.url
    }

    /// A store whose new journals record `keys`, the deployment locks their runs hold, so a
    /// rollback from another machine knows which locks to take ([`run_lock_keys`]).
    ///
    /// [`run_lock_keys`]: Self::run_lock_keys
    pub fn for_locks(&self, keys: &[String]) -> Result<Self, StateError> {
        for key in keys {
            validate_key(key)?;
        }
        let i = &self.inner;
        Ok(Self {
            io: self.io.clone(),
            inner: Arc::new(Inner {
                url: i.url.clone(),
                lock_keys: keys.to_vec(),
                container: i.container.clone(),
                timing: i.timing.clone(),
                container_ready: tokio::sync::OnceCell::new(),
            }),
        })
    }

    /// [`for_locks`](Self::for_locks) with one lock.
    pub fn for_lock(&self, key: &str) -> Result<Self, StateError> {
        self.for_locks(&[key.to_owned()])
    }

    /// The deployment locks run `run_id` was made under, if its journal recorded any. A run
    /// whose keys were too many to record names their common prefix instead; that is read
    /// back as every lock under it that exists now.
    pub async fn run_lock_keys(&self, run_id: &str) -> Result<Option<Vec<String>>, StateError> {
        validate_run_id(run_id)?;
        let inner = self.inner.clone();
        let name = Inner::journal_name(run_id);
        let run = run_id.to_owned();
        self.io
            .run(async move {
                let meta = match inner.blob(&name).get_properties(None).await {
                    Ok(p) => p.metadata().unwrap_or_default(),
                    Err(e) if is_not_found(&e) => {
                        return Err(StateError::NotFound {
                            run_id: run,
                            location: inner.url.to_string(),
                        });
                    }
                    Err(e) => return Err(inner.backend(&name, "read journal metadata", &e)),
                };
                if let Some(keys) = meta.get(META_LOCK_KEY) {
                    return Ok(Some(keys.split(',').map(str::to_owned).collect()));
                }
                match meta.get(META_LOCK_PREFIX) {
                    Some(prefix) => inner.lock_keys_under(prefix).await.map(Some),
                    None => Ok(None),
                }
            })
            .await
    }

    /// The keys of every lock blob whose key starts with `prefix` (held or not), sorted.
    pub async fn lock_keys_under(&self, prefix: &str) -> Result<Vec<String>, StateError> {
        let inner = self.inner.clone();
        let prefix = prefix.to_owned();
        self.io
            .run(async move { inner.lock_keys_under(&prefix).await })
            .await
    }

    /// Force-releases every held lock whose key starts with `prefix`, whoever holds it, and
    /// the journal leases of the runs that held them (`fabrik unlock --all`); returns the
    /// locks released with their holders.
    pub async fn force_unlock_under(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, LockHolder)>, StateError> {
        let inner = self.inner.clone();
        let prefix = prefix.to_owned();
        self.io
            .run(async move {
                let mut released = Vec::new();
                for key in inner.lock_keys_under(&prefix).await? {
                    let name = Inner::lock_name(&key);
                    let Some(holder) = inner.read_holder(&name).await? else {
                        continue;
                    };
                    break_lease(&inner, &name).await?;
                    released.push((key, holder));
                }
                let mut runs: Vec<&str> = released.iter().map(|(_, h)| h.run_id.as_str()).collect();
                runs.sort_unstable();
                runs.dedup();
                for run in runs.into_iter().filter(|r| validate_run_id(r).is_ok()) {
                    break_lease(&inner, &Inner::journal_name(run)).await?;
                }
                Ok(released)
            })
            .await
    }

    /// Breaks lock `key` now, whoever holds it (an operator's last resort; `force_unlock`
    /// by run id is the usual way). Returns who held it.
    pub async fn break_lock(&self, key: &str) -> Result<Option<LockHolder>, StateError> {
        validate_key(key)?;
        let inner = self.inner.clone();
        let name = Inner::lock_name(key);
        self.io
            .run(async move {
                let holder = inner.read_holder(&name).await?;
                break_lease(&inner, &name).await?;
                Ok(holder)
            })
            .await
    }

    /// Checks that the container can be reached with the credentials given, creating it if
    /// it is missing; fails with what the service said.
    pub async fn check(&self) -> Result<(), StateError> {
        let inner = self.inner.clone();
        self.io
            .run(async move { inner.ensure_container().await })
            .await
    }
}

impl Inner {
    fn blob(&self, name: &str) -> BlobClient {
        // The prefix may hold '/', which the SDK escapes inside one path segment; the service
        // decodes it back, so `a%2Fb` and `a/b` name the same blob.
        self.container
            .blob_client(&format!("{}{name}", self.url.prefix()))
    }

    fn journal_name(run_id: &str) -> String {
        format!("runs/{run_id}.jsonl")
    }

    fn lock_name(key: &str) -> String {
        format!("locks/{key}.lock")
    }

    fn record_name(key: &str) -> String {
        format!("deployed/{key}.json")
    }

    fn location(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    fn backend(&self, name: &str, op: &'static str, e: &azure_core::Error) -> StateError {
        StateError::Backend {
            location: self.location(name),
            op,
            message: self.url.redact(&describe(e)),
        }
    }

    async fn ensure_container(&self) -> Result<(), StateError> {
        self.container_ready
            .get_or_try_init(|| async {
                match self.container.create(None).await {
                    Ok(_) => Ok(()),
                    // Exists already; or the SAS may not create containers (then the first
                    // real request says what is wrong).
                    Err(e) if has_code(&e, "ContainerAlreadyExists") => Ok(()),
                    Err(e) if status_code(&e).is_some_and(|(s, _)| s == 403) => Ok(()),
                    Err(e) => Err(StateError::Backend {
                        location: self.url.to_string(),
                        op: "create container",
                        message: self.url.redact(&describe(&e)),
                    }),
                }
            })
            .await
            .map(|_| ())
    }

    async fn acquire(&self, blob: &BlobClient) -> Result<String, azure_core::Error> {
        let proposed = uuid::Uuid::new_v4().to_string();
        let r = blob
            .acquire_lease(
                self.timing.duration_secs,
                Some(BlobClientAcquireLeaseOptions {
                    proposed_lease_id: Some(proposed.clone()),
                    ..Default::default()
                }),
            )
            .await?;
        use azure_storage_blob::models::BlobClientAcquireLeaseResultHeaders;
        Ok(r.lease_id().ok().flatten().unwrap_or(proposed))
    }

    async fn download(&self, name: &str, run_id: &str) -> Result<Vec<u8>, StateError> {
        match self.blob(name).download(None).await {
            Ok(r) => r
                .body
                .collect()
                .await
                .map(|b| b.to_vec())
                .map_err(|e| self.backend(name, "read", &e)),
            Err(e) if is_not_found(&e) => Err(StateError::NotFound {
                run_id: run_id.to_owned(),
                location: self.url.to_string(),
            }),
            Err(e) => Err(self.backend(name, "read", &e)),
        }
    }

    /// Whether blob `name`'s lease is held, from the lease state its properties carry. A
    /// state that is missing or unreadable is an error: taken as "free", it would report a
    /// held lock or journal as unlocked.
    fn leased(
        &self,
        name: &str,
        state: azure_core::Result<Option<LeaseState>>,
    ) -> Result<bool, StateError> {
        match state {
            Ok(Some(s)) => Ok(matches!(s, LeaseState::Leased | LeaseState::Breaking)),
            Ok(None) => Err(StateError::Backend {
                location: self.location(name),
                op: "read lease state",
                message: "the service sent no lease state (x-ms-lease-state)".into(),
            }),
            Err(e) => Err(self.backend(name, "read lease state", &e)),
        }
    }

    fn keeper(self: &Arc<Self>, io: &Io, name: &str, id: String) -> Arc<Keeper> {
        let url = self.url.clone();
        Arc::new(Keeper::start(
            io.handle(),
            self.blob(name),
            id,
            self.location(name),
            &self.timing,
            move |s| url.redact(s),
        ))
    }
}

fn validate_run_id(run_id: &str) -> Result<(), StateError> {
    let ok = !run_id.is_empty()
        && run_id.len() <= 128
        && run_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StateError::Invalid(format!(
            "invalid run id {run_id:?}: expected letters, digits, '-' and '_' only"
        )))
    }
}

/// Lock keys become blob names: letters, digits, `-`, `_` and `.` only.
fn validate_key(key: &str) -> Result<(), StateError> {
    let ok = !key.is_empty()
        && key.len() <= 200
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(StateError::Invalid(format!(
            "invalid lock key {key:?}: expected letters, digits, '-', '_' and '.' only"
        )))
    }
}

#[async_trait]
impl JournalStore for AzureBlobStore {
    fn location(&self) -> String {
        self.inner.url.to_string()
    }

    fn journal_location(&self, run_id: &str) -> String {
        self.inner.location(&Inner::journal_name(run_id))
    }

    async fn create(
        &self,
        run_id: &str,
        header: &[u8],
    ) -> Result<Box<dyn JournalAppender>, StateError> {
        validate_run_id(run_id)?;
        let inner = self.inner.clone();
        let io = self.io.clone();
        let run = run_id.to_owned();
        let header = header.to_vec();
        self.io
            .run(async move {
                inner.ensure_container().await?;
                let name = Inner::journal_name(&run);
                let blob = inner.blob(&name);
                let mut create = AppendBlobClientCreateOptions::default().if_not_exists();
                if !inner.lock_keys.is_empty() {
                    create.metadata = Some(lock_keys_metadata(&inner.lock_keys));
                }
                let created = blob.append_blob_client().create(Some(create)).await;
                match created {
                    Ok(_) => {}
                    Err(e) if status_code(&e).is_some_and(|(s, _)| s == 409 || s == 412) => {
                        return Err(StateError::AlreadyExists {
                            run_id: run,
                            location: inner.url.to_string(),
                        });
                    }
                    Err(e) => return Err(inner.backend(&name, "create journal", &e)),
                }
                let lease = inner
                    .acquire(&blob)
                    .await
                    .map_err(|e| inner.backend(&name, "lease journal", &e))?;
                let keeper = inner.keeper(&io, &name, lease);
                let mut appender = AzureAppender {
                    io: io.clone(),
                    inner: inner.clone(),
                    name,
                    keeper,
                    offset: 0,
                    closed: false,
                };
                appender.append_now(&header).await?;
                Ok(Box::new(appender) as Box<dyn JournalAppender>)
            })
            .await
    }

    async fn open(&self, run_id: &str) -> Result<(Vec<u8>, Box<dyn JournalAppender>), StateError> {
        validate_run_id(run_id)?;
        let inner = self.inner.clone();
        let io = self.io.clone();
        let run = run_id.to_owned();
        self.io
            .run(async move {
                let name = Inner::journal_name(&run);
                let blob = inner.blob(&name);
                let lease = match inner.acquire(&blob).await {
                    Ok(id) => id,
                    Err(e) if is_not_found(&e) => {
                        return Err(StateError::NotFound {
                            run_id: run,
                            location: inner.url.to_string(),
                        });
                    }
                    Err(e) if has_code(&e, "LeaseAlreadyPresent") => {
                        return Err(StateError::Locked {
                            run_id: run,
                            location: inner.location(&name),
                        });
                    }
                    Err(e) => return Err(inner.backend(&name, "lease journal", &e)),
                };
                let keeper = inner.keeper(&io, &name, lease);
                let mut appender = AzureAppender {
                    io: io.clone(),
                    inner: inner.clone(),
                    name: name.clone(),
                    keeper,
                    offset: 0,
                    closed: false,
                };
                // Read under our lease: nobody can append meanwhile, so the length is final.
                let bytes = match inner.download(&name, &run).await {
                    Ok(b) => b,
                    Err(e) => {
                        appender.release().await;
                        return Err(e);
                    }
                };
                appender.offset = bytes.len() as u64;
                Ok((bytes, Box::new(appender) as Box<dyn JournalAppender>))
            })
            .await
    }

    async fn read(&self, run_id: &str) -> Result<Vec<u8>, StateError> {
        validate_run_id(run_id)?;
        let inner = self.inner.clone();
        let run = run_id.to_owned();
        self.io
            .run(async move { inner.download(&Inner::journal_name(&run), &run).await })
            .await
    }

    async fn list(&self) -> Result<Vec<String>, StateError> {
        let inner = self.inner.clone();
        self.io
            .run(async move {
                let prefix = format!("{}runs/", inner.url.prefix());
                let mut pager =
                    match inner
                        .container
                        .list_blobs(Some(BlobContainerClientListBlobsOptions {
                            prefix: Some(prefix.clone()),
                            ..Default::default()
                        })) {
                        Ok(p) => p,
                        Err(e) => return Err(inner.backend("runs/", "list", &e)),
                    };
                let mut ids = Vec::new();
                loop {
                    match pager.try_next().await {
                        Ok(Some(item)) => {
                            let id = item
                                .name
                                .as_deref()
                                .and_then(|n| n.strip_prefix(&prefix))
                                .and_then(|n| n.strip_suffix(".jsonl"));
                            if let Some(id) = id
                                && validate_run_id(id).is_ok()
                            {
                                ids.push(id.to_owned());
                            }
                        }
                        Ok(None) => return Ok(ids),
                        // A container that does not exist yet holds no runs.
                        Err(e) if has_code(&e, "ContainerNotFound") => return Ok(ids),
                        Err(e) => return Err(inner.backend("runs/", "list", &e)),
                    }
                }
            })
            .await
    }

    async fn is_locked(&self, run_id: &str) -> Result<bool, StateError> {
        validate_run_id(run_id)?;
        let inner = self.inner.clone();
        let run = run_id.to_owned();
        self.io
            .run(async move {
                let name = Inner::journal_name(&run);
                match inner.blob(&name).get_properties(None).await {
                    Ok(p) => inner.leased(&name, p.lease_state()),
                    Err(e) if is_not_found(&e) => Ok(false),
                    Err(e) => Err(inner.backend(&name, "read lease state", &e)),
                }
            })
            .await
    }

    async fn read_record(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        fabrik_core::state::validate_record_key(key)?;
        let inner = self.inner.clone();
        let name = Inner::record_name(key);
        self.io
            .run(async move {
                match inner.blob(&name).download(None).await {
                    Ok(r) => r
                        .body
                        .collect()
                        .await
                        .map(|b| Some(b.to_vec()))
                        .map_err(|e| inner.backend(&name, "read record", &e)),
                    Err(e) if is_not_found(&e) => Ok(None),
                    Err(e) => Err(inner.backend(&name, "read record", &e)),
                }
            })
            .await
    }

    async fn write_record(&self, key: &str, bytes: &[u8]) -> Result<(), StateError> {
        fabrik_core::state::validate_record_key(key)?;
        let inner = self.inner.clone();
        let name = Inner::record_name(key);
        let bytes = bytes.to_vec();
        self.io
            .run(async move {
                inner.ensure_container().await?;
                // One Put Blob: the service replaces the block blob whole or not at all.
                inner
                    .blob(&name)
                    .upload(RequestContent::from(bytes), None)
                    .await
                    .map(drop)
                    .map_err(|e| inner.backend(&name, "write record", &e))
            })
            .await
    }
}

/// The writer of one journal blob, holding its lease.
#[derive(Debug)]
struct AzureAppender {
    io: Io,
    inner: Arc<Inner>,
    name: String,
    keeper: Arc<Keeper>,
    offset: u64,
    closed: bool,
}

/// What one append needs, owned, so it can run on the store's runtime.
#[derive(Debug)]
struct AppendJob {
    inner: Arc<Inner>,
    name: String,
    keeper: Arc<Keeper>,
    offset: u64,
}

impl AzureAppender {
    fn job(&self) -> AppendJob {
        AppendJob {
            inner: self.inner.clone(),
            name: self.name.clone(),
            keeper: self.keeper.clone(),
            offset: self.offset,
        }
    }

    /// Appends on the current runtime (the store's).
    async fn append_now(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let mut job = self.job();
        let r = job.run(bytes).await;
        self.offset = job.offset;
        r
    }
}

impl AppendJob {
    async fn run(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        if let Some(why) = self.keeper.lost() {
            return Err(StateError::Lost {
                location: self.inner.location(&self.name),
                reason: why,
            });
        }
        let blob = self.inner.blob(&self.name).append_blob_client();
        for chunk in line_chunks(bytes, MAX_BLOCK) {
            let len = chunk.len() as u64;
            let result = blob
                .append_block(
                    RequestContent::from(chunk.to_vec()),
                    len,
                    Some(AppendBlobClientAppendBlockOptions {
                        lease_id: Some(self.keeper.id.clone()),
                        append_position: Some(self.offset as i64),
                        ..Default::default()
                    }),
                )
                .await;
            match result {
                Ok(_) => self.offset += len,
                Err(e) => return Err(self.append_error(&e)),
            }
        }
        Ok(())
    }

    fn append_error(&self, e: &azure_core::Error) -> StateError {
        let location = self.inner.location(&self.name);
        match status_code(e) {
            Some((412, code)) if code == "AppendPositionConditionNotMet" => StateError::Lost {
                location,
                reason: "another writer appended to this journal; refusing to interleave".into(),
            },
            Some((409 | 412, code)) if code.starts_with("Lease") => StateError::Lost {
                location,
                reason: format!("the run's lease on its journal was lost ({code})"),
            },
            _ => self.inner.backend(&self.name, "append", e),
        }
    }
}

impl AzureAppender {
    /// Stops renewing and releases the lease (best effort: if it is gone, it is gone).
    async fn release(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.keeper.stop();
        release_lease(&self.inner, &self.name, self.keeper.id.clone()).await;
    }
}

async fn release_lease(inner: &Inner, name: &str, id: String) {
    let r = inner
        .blob(name)
        .release_lease(id, None::<BlobClientReleaseLeaseOptions<'_>>)
        .await;
    if let Err(e) = r
        && !is_refusal(&e)
    {
        tracing::warn!(blob = %inner.location(name), error = %inner.url.redact(&describe(&e)), "releasing a lease failed; it expires by itself");
    }
}

/// Splits `bytes` into pieces of at most `max` bytes that end at line ends, so each block
/// holds whole lines (a longer line is one piece; the service then refuses it whole).
fn line_chunks(bytes: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() > max {
        let cut = rest[..max]
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|i| i + 1)
            .or_else(|| rest.iter().position(|b| *b == b'\n').map(|i| i + 1))
            .unwrap_or(rest.len());
        let (head, tail) = rest.split_at(cut);
        out.push(head);
        rest = tail;
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

#[async_trait]
impl JournalAppender for AzureAppender {
    async fn append(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        // Run on the store's runtime; the new offset comes back with the result.
        let mut job = self.job();
        let bytes = bytes.to_vec();
        let (offset, result) = self
            .io
            .run(async move {
                let r = job.run(&bytes).await;
                Ok((job.offset, r))
            })
            .await?;
        self.offset = offset;
        result
    }

    async fn truncate(&mut self, len: u64) -> Result<(), StateError> {
        if len == self.offset {
            Ok(())
        } else {
            // Cannot happen for journals this crate wrote: blocks hold whole lines.
            Err(StateError::Invalid(format!(
                "{}: an append blob cannot be cut from {} to {len} bytes",
                self.inner.location(&self.name),
                self.offset
            )))
        }
    }

    async fn close(&mut self) -> Result<(), StateError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.keeper.stop();
        let inner = self.inner.clone();
        let name = self.name.clone();
        let id = self.keeper.id.clone();
        self.io
            .run(async move {
                release_lease(&inner, &name, id).await;
                Ok(())
            })
            .await
    }
}

impl Drop for AzureAppender {
    fn drop(&mut self) {
        if !self.closed {
            self.keeper.stop();
            let inner = self.inner.clone();
            let name = self.name.clone();
            let id = self.keeper.id.clone();
            // Cannot await here; the lease would expire by itself anyway.
            self.io
                .handle()
                .spawn(async move { release_lease(&inner, &name, id).await });
        }
    }
}

const META_RUN: &str = "fabrikrunid";
const META_HOST: &str = "fabrikhost";
const META_USER: &str = "fabrikuser";
const META_SINCE: &str = "fabriksince";
const META_COMMAND: &str = "fabrikcommand";
const META_LOCK_KEY: &str = "fabriklockkey";
const META_LOCK_PREFIX: &str = "fabriklockprefix";

/// Azure allows 8 KiB of metadata per blob; lock keys past this much are recorded by their
/// common prefix instead.
const MAX_LOCK_KEYS_META: usize = 6 * 1024;

/// The journal metadata naming a run's locks: the keys, comma-separated (a key has no
/// comma), or, when they would not fit, their longest common prefix ending at a `.`.
fn lock_keys_metadata(keys: &[String]) -> HashMap<String, String> {
    let joined = keys.join(",");
    if joined.len() <= MAX_LOCK_KEYS_META {
        return HashMap::from([(META_LOCK_KEY.to_owned(), joined)]);
    }
    let first = keys.first().map(String::as_str).unwrap_or_default();
    let mut common = first.len();
    for k in keys {
        common = common.min(
            first
                .bytes()
                .zip(k.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    let prefix = first[..common].rfind('.').map_or("", |dot| &first[..=dot]);
    HashMap::from([(META_LOCK_PREFIX.to_owned(), prefix.to_owned())])
}

/// Metadata travels in HTTP headers: visible ASCII only.
fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn holder_metadata(h: &LockHolder) -> HashMap<String, String> {
    [
        (META_RUN, &h.run_id),
        (META_HOST, &h.host),
        (META_USER, &h.user),
        (META_SINCE, &h.since),
        (META_COMMAND, &h.command),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), header_safe(v)))
    .collect()
}

fn holder_from(meta: &HashMap<String, String>) -> Option<LockHolder> {
    let get = |k: &str| meta.get(k).cloned().unwrap_or_else(|| "?".into());
    meta.get(META_RUN).map(|_| LockHolder {
        run_id: get(META_RUN),
        host: get(META_HOST),
        user: get(META_USER),
        since: get(META_SINCE),
        command: get(META_COMMAND),
    })
}

fn unknown_holder() -> LockHolder {
    LockHolder {
        run_id: "?".into(),
        host: "?".into(),
        user: "?".into(),
        since: "?".into(),
        command: "(taking the lock right now)".into(),
    }
}

impl Inner {
    /// The keys of the lock blobs whose key starts with `key_prefix`, sorted; none when the
    /// container does not exist.
    async fn lock_keys_under(&self, key_prefix: &str) -> Result<Vec<String>, StateError> {
        let prefix = format!("{}locks/", self.url.prefix());
        let mut pager = self
            .container
            .list_blobs(Some(BlobContainerClientListBlobsOptions {
                prefix: Some(format!("{prefix}{key_prefix}")),
                ..Default::default()
            }))
            .map_err(|e| self.backend("locks/", "list", &e))?;
        let mut keys = Vec::new();
        loop {
            let item = match pager.try_next().await {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(e) if has_code(&e, "ContainerNotFound") => break,
                Err(e) => return Err(self.backend("locks/", "list", &e)),
            };
            if let Some(key) = item
                .name
                .as_deref()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|n| n.strip_suffix(".lock"))
            {
                keys.push(key.to_owned());
            }
        }
        keys.sort();
        Ok(keys)
    }

    async fn read_holder(&self, name: &str) -> Result<Option<LockHolder>, StateError> {
        match self.blob(name).get_properties(None).await {
            Ok(p) => {
                if !self.leased(name, p.lease_state())? {
                    return Ok(None);
                }
                let meta = p.metadata().unwrap_or_default();
                Ok(Some(holder_from(&meta).unwrap_or_else(unknown_holder)))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.backend(name, "read lock", &e)),
        }
    }
}

#[async_trait]
impl DeploymentLocks for AzureBlobStore {
    async fn try_acquire(
        &self,
        key: &str,
        holder: &LockHolder,
    ) -> Result<Result<Arc<dyn HeldLock>, LockHolder>, StateError> {
        validate_key(key)?;
        let inner = self.inner.clone();
        let io = self.io.clone();
        let key = key.to_owned();
        let holder = holder.clone();
        self.io
            .run(async move {
                inner.ensure_container().await?;
                let name = Inner::lock_name(&key);
                let blob = inner.blob(&name);
                let mut created = false;
                let lease = loop {
                    match inner.acquire(&blob).await {
                        Ok(id) => break id,
                        Err(e) if is_not_found(&e) && !created => {
                            created = true;
                            let r = blob
                                .append_blob_client()
                                .create(Some(AppendBlobClientCreateOptions::default().if_not_exists()))
                                .await;
                            match r {
                                Ok(_) => {}
                                // Someone else created it meanwhile: fine, acquire again.
                                Err(e) if status_code(&e).is_some_and(|(s, _)| s == 409 || s == 412) => {}
                                Err(e) => return Err(inner.backend(&name, "create lock", &e)),
                            }
                        }
                        Err(e) if has_code(&e, "LeaseAlreadyPresent") => {
                            let other = inner.read_holder(&name).await?.unwrap_or_else(unknown_holder);
                            return Ok(Err(other));
                        }
                        Err(e) => return Err(inner.backend(&name, "acquire lock", &e)),
                    }
                };
                let meta = holder_metadata(&holder);
                let set = blob
                    .set_metadata(
                        &meta,
                        Some(BlobClientSetMetadataOptions {
                            lease_id: Some(lease.clone()),
                            ..Default::default()
                        }),
                    )
                    .await;
                if let Err(e) = set {
                    release_lease(&inner, &name, lease).await;
                    return Err(inner.backend(&name, "record lock holder", &e));
                }
                let keeper = inner.keeper(&io, &name, lease);
                tracing::info!(lock = %inner.location(&name), holder = %holder, "deployment lock acquired");
                Ok(Ok(Arc::new(AzureHeldLock {
                    io,
                    inner: inner.clone(),
                    key,
                    name,
                    keeper,
                    released: std::sync::atomic::AtomicBool::new(false),
                }) as Arc<dyn HeldLock>))
            })
            .await
    }

    async fn holder(&self, key: &str) -> Result<Option<LockHolder>, StateError> {
        validate_key(key)?;
        let inner = self.inner.clone();
        let name = Inner::lock_name(key);
        self.io
            .run(async move { inner.read_holder(&name).await })
            .await
    }

    async fn force_unlock(&self, run_id: &str) -> Result<Vec<(String, LockHolder)>, StateError> {
        validate_run_id(run_id)?;
        let inner = self.inner.clone();
        let run = run_id.to_owned();
        self.io
            .run(async move {
                let mut released = Vec::new();
                for key in inner.lock_keys_under("").await? {
                    let name = Inner::lock_name(&key);
                    // Re-read: the listing may be stale, and only a live lease is broken.
                    let Some(holder) = inner.read_holder(&name).await? else {
                        continue;
                    };
                    if holder.run_id != run {
                        continue;
                    }
                    break_lease(&inner, &name).await?;
                    released.push((key, holder));
                }
                // The run's journal lease too, so `rollback` can open it at once.
                break_lease(&inner, &Inner::journal_name(&run)).await?;
                Ok(released)
            })
            .await
    }
}

/// Breaks a lease now (break period 0); a blob without a lease, or none at all, is fine.
async fn break_lease(inner: &Inner, name: &str) -> Result<(), StateError> {
    let r = inner
        .blob(name)
        .break_lease(Some(BlobClientBreakLeaseOptions {
            break_period: Some(0),
            ..Default::default()
        }))
        .await;
    match r {
        Ok(_) => {
            tracing::warn!(blob = %inner.location(name), "lease broken by force-unlock");
            Ok(())
        }
        Err(e) if is_refusal(&e) => Ok(()),
        Err(e) => Err(inner.backend(name, "break lease", &e)),
    }
}

/// A deployment lock held by this process.
#[derive(Debug)]
struct AzureHeldLock {
    io: Io,
    inner: Arc<Inner>,
    key: String,
    name: String,
    keeper: Arc<Keeper>,
    released: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl HeldLock for AzureHeldLock {
    fn key(&self) -> &str {
        &self.key
    }

    fn lost(&self) -> Option<String> {
        self.keeper.lost()
    }

    async fn wait_lost(&self) -> String {
        self.keeper.wait_lost().await
    }

    async fn release(&self) -> Result<(), StateError> {
        if self
            .released
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        self.keeper.stop();
        if self.keeper.lost().is_some() {
            return Ok(());
        }
        let inner = self.inner.clone();
        let name = self.name.clone();
        let id = self.keeper.id.clone();
        self.io
            .run(async move {
                // Clear the holder first so nobody reads a stale one after the release.
                let _ = inner
                    .blob(&name)
                    .set_metadata(
                        &HashMap::new(),
                        Some(BlobClientSetMetadataOptions {
                            lease_id: Some(id.clone()),
                            ..Default::default()
                        }),
                    )
                    .await;
                release_lease(&inner, &name, id).await;
                tracing::info!(lock = %inner.location(&name), "deployment lock released");
                Ok(())
            })
            .await
    }
}

impl Drop for AzureHeldLock {
    fn drop(&mut self) {
        if !self
            .released
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.keeper.stop();
            let inner = self.inner.clone();
            let name = self.name.clone();
            let id = self.keeper.id.clone();
            self.io
                .handle()
                .spawn(async move { release_lease(&inner, &name, id).await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_at_line_ends() {
        let data = b"aaaa\nbb\ncccccc\nd\n";
        let chunks = line_chunks(data, 8);
        assert_eq!(chunks, vec![&b"aaaa\nbb\n"[..], b"cccccc\n", b"d\n"]);
        assert_eq!(line_chunks(b"0123456789\n", 4), vec![&b"0123456789\n"[..]]);
        assert!(line_chunks(b"", 4).is_empty());
    }

    #[test]
    fn holder_metadata_round_trips_and_is_header_safe() {
        let h = LockHolder {
            run_id: "r1".into(),
            host: "höst".into(),
            user: "u\n1".into(),
            since: "2026-01-01T00:00:00Z".into(),
            command: "apply".into(),
        };
        let meta = holder_metadata(&h);
        let back = holder_from(&meta).unwrap();
        assert_eq!(back.host, "h?st");
        assert_eq!(back.user, "u?1");
        assert_eq!(back.run_id, "r1");
    }

    #[derive(Debug)]
    struct Tokens;

    #[async_trait]
    impl TokenProvider for Tokens {
        async fn token(
            &self,
            _: &[&str],
        ) -> Result<fabrik_core::AccessToken, fabrik_core::AuthError> {
            Err(fabrik_core::AuthError::Unavailable("test".into()))
        }
        fn describe(&self) -> String {
            "test".into()
        }
    }

    #[test]
    fn entra_tokens_need_https_and_a_sas_needs_no_credential() {
        let https = StateUrl::parse("https://acct.blob.core.windows.net/state").unwrap();
        let mut o = AzureStateOptions::default();
        let e = AzureBlobStore::new(https.clone(), o.clone()).unwrap_err();
        assert!(e.to_string().contains("no SAS token"), "{e}");
        o.tokens = Some(Arc::new(Tokens));
        AzureBlobStore::new(https, o.clone()).unwrap();
        let http = StateUrl::parse("http://127.0.0.1:1/acct/state").unwrap();
        let e = AzureBlobStore::new(http, o.clone()).unwrap_err();
        assert!(e.to_string().contains("only sent over https"), "{e}");
        let sas = StateUrl::parse("http://127.0.0.1:1/acct/state?sig=S").unwrap();
        AzureBlobStore::new(sas, AzureStateOptions::default()).unwrap();
        let mut short = AzureStateOptions::default();
        short.lease.duration_secs = 5;
        let e = AzureBlobStore::new(
            StateUrl::parse("http://127.0.0.1:1/acct/state?sig=S").unwrap(),
            short,
        )
        .unwrap_err();
        assert!(e.to_string().contains("lease duration 5s"), "{e}");
    }

    #[test]
    fn a_runs_lock_keys_are_recorded_whole_or_by_their_common_prefix() {
        let few = vec!["sales.dev.a".to_owned(), "sales.dev.b".to_owned()];
        assert_eq!(
            lock_keys_metadata(&few),
            HashMap::from([(
                META_LOCK_KEY.to_owned(),
                "sales.dev.a,sales.dev.b".to_owned()
            )])
        );
        let many: Vec<String> = (0..100)
            .map(|i| format!("sales.dev.ws{i:03}{}", "x".repeat(80)))
            .collect();
        assert_eq!(
            lock_keys_metadata(&many),
            HashMap::from([(META_LOCK_PREFIX.to_owned(), "sales.dev.".to_owned())])
        );
    }

    #[test]
    fn bad_keys_and_run_ids_are_named() {
        let e = validate_key("../x").unwrap_err().to_string();
        assert!(e.contains("\"../x\""), "{e}");
        let e = validate_run_id("a/b").unwrap_err().to_string();
        assert!(e.contains("\"a/b\""), "{e}");
        validate_key("sales.dev").unwrap();
    }

    #[test]
    fn a_sas_given_apart_from_an_http_url_goes_only_to_this_machine() {
        let sas = || {
            Some(fabrik_core::SecretString::from(
                "sv=1&sig=SECRET".to_owned(),
            ))
        };
        let remote = StateUrl::parse("http://10.1.2.3:10000/acct/state")
            .unwrap()
            .with_sas(sas());
        let e = AzureBlobStore::new(remote, AzureStateOptions::default()).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(
            shown.contains("http://10.1.2.3:10000/acct/state"),
            "{shown}"
        );
        assert!(
            shown.contains("use https") && !shown.contains("SECRET"),
            "{shown}"
        );
        let local = StateUrl::parse("http://localhost:10000/acct/state")
            .unwrap()
            .with_sas(sas());
        let store = AzureBlobStore::new(local, AzureStateOptions::default()).unwrap();
        assert!(!format!("{store:?}").contains("SECRET"));
    }

    /// A stand-in blob service on 127.0.0.1 that answers every request `200 OK` with
    /// `headers` (each ending in CRLF) and no body; returns its port.
    fn stand_in(headers: &'static str) -> u16 {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                // Read the request's head (the properties request, a HEAD, has no body).
                let (mut head, mut buf) = (Vec::new(), [0u8; 1024]);
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\n{headers}content-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        port
    }

    fn store_at(port: u16) -> AzureBlobStore {
        let url = StateUrl::parse(&format!("http://127.0.0.1:{port}/acct/state?sig=S")).unwrap();
        let options = AzureStateOptions {
            max_retries: 0,
            ..AzureStateOptions::default()
        };
        AzureBlobStore::new(url, options).unwrap()
    }

    #[tokio::test]
    async fn a_lease_state_that_cannot_be_read_is_an_error_naming_the_blob() {
        // The stand-in answers as Azure does: the same reads succeed.
        let held = store_at(stand_in(
            "x-ms-lease-state: leased\r\nx-ms-meta-fabrikrunid: r9\r\n",
        ));
        assert!(held.is_locked("r1").await.unwrap());
        let holder = held.holder("sales.dev").await.unwrap().unwrap();
        assert_eq!(holder.run_id, "r9");
        let free = store_at(stand_in("x-ms-lease-state: available\r\n"));
        assert!(!free.is_locked("r1").await.unwrap());
        assert_eq!(free.holder("sales.dev").await.unwrap(), None);
        // A state no version of Azure sends, and none at all: neither reads as unlocked.
        for headers in ["x-ms-lease-state: frobbing\r\n", ""] {
            let store = store_at(stand_in(headers));
            let e = store.is_locked("r1").await.unwrap_err().to_string();
            assert!(e.contains("/acct/state/runs/r1.jsonl"), "{headers:?}: {e}");
            assert!(e.contains("read lease state failed"), "{headers:?}: {e}");
            let e = store.holder("sales.dev").await.unwrap_err().to_string();
            assert!(
                e.contains("/acct/state/locks/sales.dev.lock"),
                "{headers:?}: {e}"
            );
            assert!(e.contains("read lease state failed"), "{headers:?}: {e}");
        }
    }
}
