//! Where run journals and deployment locks live: the local state directory (the default) or
//! an Azure Blob container chosen by `--state URL` / `FABRIK_STATE` / `state: {url: …}`.
//!
//! With a container, `apply`, `publish`, `destroy`, `rollback` and each reconciliation of
//! `serve` take the deployment lock of each workspace they will write (a renewed blob lease,
//! key `<project prefix>.<environment>.<workspace>`, see [`workspace_key`]) before they plan,
//! in sorted key order so two runners never wait on each other in a cycle, and release them
//! at the end. Runners writing disjoint workspaces of one environment so run at once; a held
//! lock is waited for up to `--lock-timeout` (one deadline for all of them) and then reported
//! with its holder (exit code 3). The run's journal goes to the container; a lost lock halts
//! the run, which then rolls back as a run past its deadline does.
//!
//! The run's store, id and locks reach `run::apply` through a task-local ([`scope`]) so this
//! module stays apart from the engine's options; `run` reads them with [`attach`] and
//! [`lock_lost`]. Secrets: the SAS lives only inside the store's `StateUrl` (redacted from
//! every message); nothing here prints a URL with its query.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fabrik_core::secret::ExposeSecret;
use fabrik_core::{
    DeploymentLocks, HeldLock, JournalStore, LockError, LockHolder, SecretString, SystemClock,
};
use fabrik_state_azure::{AzureBlobStore, AzureStateOptions, StateUrl, is_blob_url};
use fabrik_txn::{Journal, JournalError, RunListing, TxnOptions};

/// Exit code when the deployment lock is held by someone else.
pub const EXIT_LOCKED: u8 = 3;

/// A state location as given (`--state`, `FABRIK_STATE`, `state.url`): a container URL, whose
/// query may hold a SAS, or a directory. Its `Debug` leaves the query out, so printing the
/// parsed command line or the state settings never shows a SAS.
#[derive(Clone, PartialEq, Eq)]
pub struct StateLocation(String);

impl StateLocation {
    /// The location as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for StateLocation {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

impl From<&str> for StateLocation {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl std::fmt::Debug for StateLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.split_once('?') {
            Some((base, _)) => write!(f, "\"{base}?[redacted]\""),
            None => write!(f, "{:?}", self.0),
        }
    }
}

/// What the command line and environment say about state.
#[derive(Debug, Clone, Default)]
pub struct StateArgs {
    /// `--state` / `FABRIK_STATE`: a container URL or a local directory.
    pub state: Option<StateLocation>,
    /// `--state-dir`: the local directory when no URL is given.
    pub state_dir: PathBuf,
    /// The configuration file (for `state:` and the project prefix), if readable.
    pub config: PathBuf,
    /// The environment.
    pub environment: String,
    /// `--lock-timeout`.
    pub lock_timeout: Duration,
}

/// The state backend of this invocation.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Journals in a local directory; no deployment locks (one machine).
    Local(PathBuf),
    /// Journals and locks in an Azure Blob container.
    Azure(AzureBlobStore),
}

/// The `state:` section of fabrik.yaml, read apart from the rest of the config so a rollback
/// or status works where the rest is not valid (or not there).
#[derive(Debug, Default, Clone)]
struct FileState {
    url: Option<StateLocation>,
    prefix: Option<String>,
}

/// The `state:` section of `config`, read once per process. No file is no section (a
/// `rollback` or `publish` may run where there is no fabrik.yaml); a file that cannot be read
/// or parsed, or a `state.url` that is not a string, is an error: falling back to local state
/// would run without the lock the file asks for.
fn read_file_state(config: &Path) -> Result<FileState, String> {
    static READ: std::sync::Mutex<Vec<(PathBuf, Result<FileState, String>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut read = READ.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, r)) = read.iter().find(|(p, _)| p == config) {
        return r.clone();
    }
    let r = parse_file_state(config);
    read.push((config.to_path_buf(), r.clone()));
    r
}

fn parse_file_state(config: &Path) -> Result<FileState, String> {
    let text = match std::fs::read_to_string(config) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileState::default()),
        Err(e) => return Err(format!("{}: cannot be read: {e}", config.display())),
    };
    let v: serde_norway::Value = serde_norway::from_str(&text)
        .map_err(|e| format!("{}: not valid YAML: {e}", config.display()))?;
    let string = |v: Option<&serde_norway::Value>, key: &str| match v {
        None | Some(serde_norway::Value::Null) => Ok(None),
        Some(serde_norway::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{}: {key} must be a string", config.display())),
    };
    Ok(FileState {
        url: string(v.get("state").and_then(|s| s.get("url")), "state.url")?.map(StateLocation),
        prefix: string(
            v.get("project").and_then(|p| p.get("prefix")),
            "project.prefix",
        )?,
    })
}

/// `${env:VAR}` and `${secret:NAME}` in a state URL, as in every other string of the config;
/// an unset variable or a missing secret is an error naming it (never the value).
async fn expand_state_url(
    value: &str,
    env: &dyn Fn(&str) -> Option<String>,
    config: &Path,
) -> Result<String, String> {
    let re = regex::Regex::new(r"\$\{(env|secret):([^}]+)\}").map_err(|e| e.to_string())?;
    let mut out = String::new();
    let mut last = 0;
    for c in re.captures_iter(value) {
        let (Some(whole), Some(what), Some(name)) = (c.get(0), c.get(1), c.get(2)) else {
            continue;
        };
        out.push_str(&value[last..whole.start()]);
        let v = if what.as_str() == "env" {
            env(name.as_str())
                .ok_or_else(|| format!("state.url: ${{env:{}}} is not set", name.as_str()))?
        } else {
            secret_or_literal(whole.as_str(), config)
                .await?
                .expose_secret()
                .to_owned()
        };
        out.push_str(&v);
        last = whole.end();
    }
    out.push_str(&value[last..]);
    Ok(out)
}

/// Resolves `${secret:NAME}` through the environment and the config's `.env`; anything else
/// is the value itself.
async fn secret_or_literal(value: &str, config: &Path) -> Result<SecretString, String> {
    let Some(name) = value
        .strip_prefix("${secret:")
        .and_then(|r| r.strip_suffix('}'))
    else {
        return Ok(SecretString::from(value.to_owned()));
    };
    let options = fabrik_secrets::SecretsOptions {
        keyvault_enabled: false,
        dotenv: Some(config.parent().unwrap_or(Path::new(".")).join(".env")),
        defaults: Default::default(),
    };
    let provider = fabrik_secrets::build_secrets(
        Arc::new(fabrik_secrets::ProcessEnv),
        &options,
        None,
        Arc::new(SystemClock),
    )
    .map_err(|e| format!("state SAS ${{secret:{name}}}: {e}"))?;
    use fabrik_core::SecretProvider;
    match provider.get_secret(name).await {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(format!(
            "state SAS ${{secret:{name}}}: not found in the environment or .env"
        )),
        Err(e) => Err(format!("state SAS ${{secret:{name}}}: {e}")),
    }
}

/// Lease timing from `FABRIK_STATE_LEASE_SECONDS` (15–60, default 60) and
/// `FABRIK_STATE_RENEW_MS` (default a third of the lease).
fn lease_options() -> Result<AzureStateOptions, String> {
    let mut o = AzureStateOptions::default();
    if let Ok(v) = std::env::var("FABRIK_STATE_LEASE_SECONDS") {
        o.lease.duration_secs = v
            .parse::<i32>()
            .ok()
            .filter(|s| (15..=60).contains(s))
            .ok_or_else(|| {
                format!("FABRIK_STATE_LEASE_SECONDS={v:?}: expected 15 to 60 seconds")
            })?;
        o.lease.renew_every = Duration::from_secs(o.lease.duration_secs as u64 / 3);
    }
    if let Ok(v) = std::env::var("FABRIK_STATE_RENEW_MS") {
        let ms = v
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms >= 10 && *ms < o.lease.duration_secs as u64 * 1000)
            .ok_or_else(|| {
                format!(
                    "FABRIK_STATE_RENEW_MS={v:?}: expected milliseconds, at least 10 and under the lease"
                )
            })?;
        o.lease.renew_every = Duration::from_millis(ms);
    }
    Ok(o)
}

impl Backend {
    /// Chooses the backend: `--state`/`FABRIK_STATE`, else `state.url` in the config, else
    /// the local `--state-dir`. A URL's SAS comes from its query, else `FABRIK_STATE_SAS` (a
    /// value or `${secret:NAME}`), else an Entra token from the credential chain (`tokens`,
    /// https only).
    pub async fn resolve(
        args: &StateArgs,
        tokens: impl FnOnce() -> Result<Arc<dyn fabrik_core::TokenProvider>, String>,
    ) -> Result<Self, String> {
        let file = read_file_state(&args.config)?;
        let chosen = match (&args.state, &file.url) {
            (Some(flag), _) => Some(flag.as_str().to_string()),
            (None, Some(url)) => {
                let env = |k: &str| std::env::var(k).ok();
                Some(expand_state_url(url.as_str(), &env, &args.config).await?)
            }
            (None, None) => None,
        };
        let Some(value) = chosen.filter(|v| !v.is_empty()) else {
            return Ok(Backend::Local(args.state_dir.clone()));
        };
        if !is_blob_url(&value) {
            return Ok(Backend::Local(PathBuf::from(value)));
        }
        let url = StateUrl::parse(&value)?;
        let sas = match std::env::var("FABRIK_STATE_SAS")
            .ok()
            .filter(|s| !s.is_empty())
        {
            Some(v) => Some(secret_or_literal(&v, &args.config).await?),
            None => None,
        };
        let url = url.with_sas(sas);
        let mut options = lease_options()?;
        if !url.has_sas() {
            if !url.is_https() {
                return Err(format!(
                    "state {url}: no SAS token (in the URL or FABRIK_STATE_SAS), and Entra \
                     tokens are only sent over https"
                ));
            }
            options.tokens = Some(tokens().map_err(|e| format!("state {url}: {e}"))?);
        }
        AzureBlobStore::new(url, options)
            .map(Backend::Azure)
            .map_err(|e| e.to_string())
    }

    /// Every run, oldest first.
    pub async fn list_runs(&self) -> Result<RunListing, JournalError> {
        match self {
            Backend::Local(dir) => Journal::list_runs(dir),
            Backend::Azure(store) => Journal::list_runs_in(store).await,
        }
    }

    /// The deployed records ([`crate::deployed`]) of `workspaces` (display names), by
    /// lower-cased name; a workspace without one is absent. Kept under each workspace's lock
    /// key, beside the journals.
    pub async fn read_records(
        &self,
        args: &StateArgs,
        workspaces: &[String],
    ) -> Result<crate::deployed::Previous, String> {
        let env = env_key(args)?;
        let mut out = std::collections::BTreeMap::new();
        for name in workspaces {
            let key = workspace_key(&env, name);
            let bytes = match self {
                Backend::Local(dir) => fabrik_txn::LocalDirStore::new(dir).read_record(&key).await,
                Backend::Azure(store) => store.read_record(&key).await,
            }
            .map_err(|e| format!("reading the deployed record of {name}: {e}"))?;
            if let Some(bytes) = bytes {
                let what = format!("{} of workspace {name}", self.location());
                let record = crate::deployed::Record::parse(&bytes, &what)?;
                out.insert(name.to_lowercase(), record);
            }
        }
        Ok(Arc::new(out))
    }

    /// After a run that left `plan`'s workspaces as planned: each one's deployed record
    /// replaced by what the run rendered from secrets (where it has one to write).
    pub async fn write_records(
        &self,
        args: &StateArgs,
        plan: &crate::plan::Plan,
    ) -> Result<(), String> {
        for record in plan.workspaces.iter().filter_map(|w| w.record_to_write()) {
            self.write_record(args, &record).await?;
        }
        Ok(())
    }

    /// Replaces the deployed record of its workspace with `record`.
    pub async fn write_record(
        &self,
        args: &StateArgs,
        record: &crate::deployed::Record,
    ) -> Result<(), String> {
        let key = workspace_key(&env_key(args)?, &record.workspace);
        let bytes = record.to_bytes();
        match self {
            Backend::Local(dir) => {
                fabrik_txn::LocalDirStore::new(dir)
                    .write_record(&key, &bytes)
                    .await
            }
            Backend::Azure(store) => store.write_record(&key, &bytes).await,
        }
        .map_err(|e| format!("writing the deployed record of {}: {e}", record.workspace))
    }

    /// Where the journals are, for messages.
    pub fn location(&self) -> String {
        match self {
            Backend::Local(dir) => dir.display().to_string(),
            Backend::Azure(store) => store.url().to_string(),
        }
    }
}

/// Entra tokens for storage from the Azure credential chain (`--auth`, `AZURE_*`), never
/// `FABRIC_TOKEN`, which is a token for the Fabric API only.
pub fn entra_tokens(
    auth: Option<&str>,
    ca_cert: Option<&Path>,
) -> Result<Arc<dyn fabrik_core::TokenProvider>, String> {
    let env = fabrik_secrets::ProcessEnv;
    let method = match auth {
        Some(a) => fabrik_secrets::credential::parse_method(a).map_err(|e| e.to_string())?,
        None => None,
    };
    let mut options = fabrik_secrets::AzureOptions::from_env(&env).map_err(|e| e.to_string())?;
    if let Some(ca) = ca_cert {
        options = options.with_extra_ca_file(ca).map_err(|e| e.to_string())?;
    }
    crate::auth::azure_tokens(method, &env, &options)
}

/// Keeps a key part to the letters, digits, `-` and `_` a lock key may hold (`.` separates
/// the parts).
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The lock keys of an environment start with `<project prefix>.<environment>`.
pub fn env_key(args: &StateArgs) -> Result<String, String> {
    let prefix = read_file_state(&args.config)?
        .prefix
        .unwrap_or_else(|| "fabrik".into());
    Ok(format!("{}.{}", clean(&prefix), clean(&args.environment)))
}

/// Lock keys become blob names of at most 200 characters.
const MAX_KEY: usize = 200;

/// The deployment lock of workspace `name` (its display name in Fabric) in the environment
/// `env_key`: `<env_key>.<name>`, lower-cased since Fabric's names are (two spellings of one
/// workspace share a lock). Characters a key cannot hold become `_`, and a long name is cut
/// and ends in a hash of the whole, so distinct names may share a lock, which only
/// serializes them, but one workspace never has two.
pub fn workspace_key(env_key: &str, name: &str) -> String {
    let key = format!("{env_key}.{}", clean(&name.to_lowercase()));
    if key.len() <= MAX_KEY {
        return key;
    }
    let hash = name
        .to_lowercase()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{}-{hash:016x}", &key[..MAX_KEY - 17])
}

/// The locks a run writing `workspaces` (display names) takes: sorted and without repeats,
/// the order every runner takes them in.
pub fn lock_keys<'a>(
    args: &StateArgs,
    workspaces: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, String> {
    let env = env_key(args)?;
    let mut keys: Vec<String> = workspaces
        .into_iter()
        .map(|w| workspace_key(&env, w))
        .collect();
    keys.sort();
    keys.dedup();
    Ok(keys)
}

fn holder(run_id: &str, command: &str) -> LockHolder {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown-user".into());
    LockHolder {
        run_id: run_id.to_owned(),
        host,
        user,
        since: fabrik_core::state::rfc3339_utc(SystemTime::now()),
        command: command.to_owned(),
    }
}

/// The shared state of one run: the store its journal goes to, its id, and its locks.
#[derive(Debug, Clone)]
pub struct RunState {
    store: Arc<dyn JournalStore>,
    run_id: String,
    locks: Vec<Arc<dyn HeldLock>>,
}

/// A command holding the locks of the workspaces it writes (or, locally, nothing).
#[derive(Debug)]
pub struct Session {
    run: Option<RunState>,
}

/// Why a session could not start.
#[derive(Debug)]
pub enum SessionError {
    /// Someone else holds a lock (exit code 3).
    Locked(String),
    /// Anything else (exit code 1).
    Failed(String),
}

impl Session {
    /// A session without shared state: the local backend, unchanged.
    pub fn local() -> Self {
        Self { run: None }
    }

    /// Takes locks `keys` for `command` in the name of run `run_id` (a new id when `None`),
    /// one after the other in sorted order, waiting up to the lock timeout for all of them
    /// together. Locks already taken are released when a later one cannot be had.
    pub async fn begin(
        backend: &Backend,
        args: &StateArgs,
        command: &str,
        run_id: Option<&str>,
        keys: &[String],
    ) -> Result<Self, SessionError> {
        let Backend::Azure(store) = backend else {
            return Ok(Self::local());
        };
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        let run_id = run_id
            .map(str::to_owned)
            .unwrap_or_else(|| fabrik_txn::new_run_id(SystemTime::now()));
        let store = store
            .for_locks(&keys)
            .map_err(|e| SessionError::Failed(e.to_string()))?;
        let who = holder(&run_id, command);
        let deadline = std::time::Instant::now() + args.lock_timeout;
        let mut locks = Vec::with_capacity(keys.len());
        for key in &keys {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let taken = fabrik_core::acquire_lock(
                &store,
                key,
                &who,
                left,
                Duration::from_secs(2),
                &SystemClock,
                &fabrik_core::time::TokioSleeper,
            )
            .await;
            match taken {
                Ok(lock) => locks.push(lock),
                Err(e) => {
                    release_all(&locks).await;
                    return Err(match e {
                        LockError::Held { ref holder, .. } => SessionError::Locked(format!(
                            "{e}\n  hint: wait with --lock-timeout SECONDS, or if run {} is dead, `fabrik unlock {}`",
                            holder.run_id, holder.run_id
                        )),
                        other => SessionError::Failed(other.to_string()),
                    });
                }
            }
        }
        Ok(Self {
            run: Some(RunState {
                store: Arc::new(store),
                run_id,
                locks,
            }),
        })
    }

    /// Runs `f` with this session's shared state visible to `run::apply` and [`open_journal`].
    pub async fn scope<F: Future>(&self, f: F) -> F::Output {
        match &self.run {
            Some(s) => CURRENT.scope(s.clone(), f).await,
            None => f.await,
        }
    }

    /// Releases the locks (a lost one is only reported).
    pub async fn finish(self) {
        if let Some(run) = self.run {
            release_all(&run.locks).await;
        }
    }
}

/// Releases `locks`, reporting (not failing on) one that was lost or cannot be released.
async fn release_all(locks: &[Arc<dyn HeldLock>]) {
    for lock in locks {
        if let Some(why) = lock.lost() {
            tracing::warn!("{why}");
        } else if let Err(e) = lock.release().await {
            tracing::warn!(lock = %lock.key(), error = %e, "releasing the deployment lock failed; its lease expires by itself");
        }
    }
}

tokio::task_local! {
    static CURRENT: RunState;
}

/// Hook for `run::apply`: journals go to the session's store under its run id.
pub fn attach(topts: &mut TxnOptions) {
    let _ = CURRENT.try_with(|s| {
        topts.store = Some(s.store.clone());
        topts.run_id = Some(s.run_id.clone());
    });
}

/// Hook for `run::apply`: resolves with why once any of the session's locks is lost; never
/// without a lock.
pub async fn lock_lost() -> String {
    let locks = CURRENT.try_with(|s| s.locks.clone()).unwrap_or_default();
    if locks.is_empty() {
        return std::future::pending().await;
    }
    let lost = locks.iter().map(|l| Box::pin(l.wait_lost()));
    futures::future::select_all(lost).await.0
}

/// Hook for `run::rollback`: opens run `run_id` in the session's store, else in `state_dir`.
pub async fn open_journal(state_dir: &Path, run_id: &str) -> Result<Journal, JournalError> {
    match CURRENT.try_with(|s| s.store.clone()) {
        Ok(store) => Journal::open_in(store.as_ref(), run_id).await,
        Err(_) => Journal::open(state_dir, run_id),
    }
}

/// What `fabrik unlock` releases.
#[derive(Debug, Clone)]
pub enum UnlockWhat {
    /// Every lock held by this run (and its journal's lease).
    Run(String),
    /// Every lock of the environment whose keys start with this (`--all`), whoever holds it.
    Environment(String),
}

/// `fabrik unlock`: what would be released, then (once confirmed) releases it.
pub async fn unlock(
    backend: &Backend,
    what: &UnlockWhat,
    confirm: impl FnOnce(&str) -> bool,
) -> Result<Vec<(String, LockHolder)>, String> {
    let Backend::Azure(store) = backend else {
        return Err(format!(
            "the local state in {} has no deployment locks to release; use --state URL",
            backend.location()
        ));
    };
    let question = match what {
        UnlockWhat::Run(run_id) => format!(
            "Force-release every deployment lock held by run {run_id} in {}? Do this only if \
             that run is dead.",
            store.url()
        ),
        UnlockWhat::Environment(env) => format!(
            "Force-release every deployment lock of environment {env} in {}, whoever holds \
             it? Do this only if no run of it is alive.",
            store.url()
        ),
    };
    if !confirm(&question) {
        return Err("not confirmed; pass --yes to unlock without asking".into());
    }
    match what {
        UnlockWhat::Run(run_id) => store.force_unlock(run_id).await,
        UnlockWhat::Environment(env) => store.force_unlock_under(&format!("{env}.")).await,
    }
    .map_err(|e| e.to_string())
}

/// The locks a rollback of `run_id` takes: those its journal recorded (`None` when it
/// recorded none).
pub async fn rollback_keys(backend: &Backend, run_id: &str) -> Result<Option<Vec<String>>, String> {
    match backend {
        Backend::Local(_) => Ok(None),
        Backend::Azure(store) => store.run_lock_keys(run_id).await.map_err(|e| e.to_string()),
    }
}

/// Reads `value` as a secret (for tests of `${secret:NAME}`).
pub async fn sas_value(value: &str, config: &Path) -> Result<String, String> {
    secret_or_literal(value, config)
        .await
        .map(|s| s.expose_secret().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(config: &Path) -> StateArgs {
        StateArgs {
            state: None,
            state_dir: ".fabrik/runs".into(),
            config: config.to_owned(),
            environment: "dev".into(),
            lock_timeout: Duration::ZERO,
        }
    }

    fn no_tokens() -> Result<Arc<dyn fabrik_core::TokenProvider>, String> {
        Err("no credential".into())
    }

    #[tokio::test]
    async fn without_a_url_the_local_directory_is_used_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let b = Backend::resolve(&args(&dir.path().join("missing.yaml")), no_tokens)
            .await
            .unwrap();
        assert!(matches!(b, Backend::Local(p) if p == Path::new(".fabrik/runs")));
    }

    #[tokio::test]
    async fn the_config_names_the_container_and_the_flag_overrides_it() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("fabrik.yaml");
        std::fs::write(
            &cfg,
            "project: {name: P, prefix: sales}\nstate: {url: 'http://127.0.0.1:1/acct/from-file?sig=S1'}\n",
        )
        .unwrap();
        let mut a = args(&cfg);
        let Backend::Azure(s) = Backend::resolve(&a, no_tokens).await.unwrap() else {
            panic!("expected the container")
        };
        assert_eq!(s.url().to_string(), "http://127.0.0.1:1/acct/from-file");
        a.state = Some("http://127.0.0.1:1/acct/from-flag?sig=S2".into());
        assert!(!format!("{a:?}").contains("S2"), "{a:?}");
        let Backend::Azure(s) = Backend::resolve(&a, no_tokens).await.unwrap() else {
            panic!("expected the container")
        };
        assert_eq!(s.url().to_string(), "http://127.0.0.1:1/acct/from-flag");
        assert_eq!(env_key(&a).unwrap(), "sales.dev");
    }

    #[test]
    fn each_workspace_has_its_own_lock_taken_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("fabrik.yaml");
        std::fs::write(&cfg, "project: {name: P, prefix: sales}\n").unwrap();
        let keys = lock_keys(
            &args(&cfg),
            [
                "sales-Reporting-dev",
                "sales ingest/dev",
                "SALES-REPORTING-DEV",
            ],
        )
        .unwrap();
        // Two spellings of one workspace (Fabric's names ignore case) share one lock.
        assert_eq!(
            keys,
            [
                "sales.dev.sales-reporting-dev",
                "sales.dev.sales_ingest_dev"
            ]
        );
        // A key is at most 200 characters; long names that differ keep distinct keys.
        let (a, b) = ("w".repeat(300), format!("{}x", "w".repeat(299)));
        let (ka, kb) = (
            workspace_key("sales.dev", &a),
            workspace_key("sales.dev", &b),
        );
        assert!(ka.len() <= 200 && kb.len() <= 200, "{ka}");
        assert_ne!(ka, kb);
        assert_eq!(ka, workspace_key("sales.dev", &a.to_uppercase()));
    }

    #[tokio::test]
    async fn http_without_a_sas_is_refused_naming_the_url_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(&dir.path().join("missing.yaml"));
        a.state = Some("http://127.0.0.1:1/acct/cont".into());
        let e = Backend::resolve(&a, no_tokens).await.unwrap_err();
        assert!(e.contains("http://127.0.0.1:1/acct/cont"), "{e}");
        assert!(e.contains("FABRIK_STATE_SAS") && e.contains("https"), "{e}");
        a.state = Some("https://acct.blob.core.windows.net/Bad_Name".into());
        let e = Backend::resolve(&a, no_tokens).await.unwrap_err();
        assert!(e.contains("Bad_Name"), "{e}");
    }

    #[tokio::test]
    async fn a_sas_may_be_a_secret_reference() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("fabrik.yaml");
        std::fs::write(dir.path().join(".env"), "STATE_SAS=sv=1&sig=FROMDOTENV\n").unwrap();
        assert_eq!(
            sas_value("${secret:state-sas}", &cfg).await.unwrap(),
            "sv=1&sig=FROMDOTENV"
        );
        assert_eq!(sas_value("sig=LITERAL", &cfg).await.unwrap(), "sig=LITERAL");
        let e = sas_value("${secret:nope-not-set}", &cfg).await.unwrap_err();
        assert!(e.contains("nope-not-set"), "{e}");
    }

    #[tokio::test]
    async fn a_config_that_cannot_be_read_or_parsed_is_an_error_not_local_state() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "state: {url: [unclosed\n").unwrap();
        let e = Backend::resolve(&args(&bad), no_tokens).await.unwrap_err();
        assert!(
            e.contains("bad.yaml") && e.contains("not valid YAML"),
            "{e}"
        );
        // A directory where the file should be cannot be read.
        let e = Backend::resolve(&args(dir.path()), no_tokens)
            .await
            .unwrap_err();
        assert!(e.contains("cannot be read"), "{e}");
        let typed = dir.path().join("typed.yaml");
        std::fs::write(&typed, "state: {url: 42}\n").unwrap();
        let e = Backend::resolve(&args(&typed), no_tokens)
            .await
            .unwrap_err();
        assert!(e.contains("state.url must be a string"), "{e}");
    }

    #[tokio::test]
    async fn a_state_url_may_name_variables_and_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("fabrik.yaml");
        std::fs::write(dir.path().join(".env"), "STATE_CONTAINER=from-secret\n").unwrap();
        let env = |k: &str| (k == "ACCOUNT").then(|| "127.0.0.1:1/acct".to_string());
        let url = expand_state_url(
            "http://${env:ACCOUNT}/${secret:state-container}",
            &env,
            &cfg,
        )
        .await
        .unwrap();
        assert_eq!(url, "http://127.0.0.1:1/acct/from-secret");
        let e = expand_state_url("http://${env:NOPE}/c", &env, &cfg)
            .await
            .unwrap_err();
        assert!(e.contains("${env:NOPE} is not set"), "{e}");
    }
}
