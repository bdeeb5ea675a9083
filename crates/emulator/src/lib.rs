//! A faithful local Microsoft Fabric REST API emulator.
//!
//! No public emulator of Fabric exists, so fabrik ships one (as Azurite does for Storage): the
//! bed every other fabrik crate is tested on, and a server users can run in their own CI. It
//! is the other side of the wire, written from the official spec, the recorded real traffic
//! and the protocol notes — never from fabrik's client types — so the two check each other.
//!
//! # Use
//! ```no_run
//! # async fn demo() -> Result<(), fabrik_emulator::EmulatorError> {
//! use std::time::Duration;
//! use fabrik_emulator::{Emulator, EmulatorConfig};
//! let emu = Emulator::start(EmulatorConfig::default()).await?;
//! let token = emu.mint_token("8eedb1b0-3af8-4b17-8e7e-663e61e12211", Duration::from_secs(3600));
//! let api = format!("{}/v1", emu.base_url()); // send `Authorization: Bearer {token}`
//! # let _ = (token, api);
//! emu.shutdown().await?;
//! # Ok(()) }
//! ```
//! The binary (`cargo run -p fabrik-emulator -- --port 8080`) takes the flags of
//! [`EmulatorArgs`] and prints `listening on http://127.0.0.1:PORT`.
//!
//! # What it serves under `/v1`
//! Workspaces (CRUD, capacity assign/unassign, tenant-unique names, the 256-character limit
//! and the reserved name "Admin monitoring"), capacities, role assignments, generic items
//! (type filter, soft and hard delete, definitions as long-running operations, move between
//! folders), the 31 item types fabric-cicd publishes on their typed endpoints
//! (`/variableLibraries`, `/warehouses`, `/environments`, … matched case-insensitively) with
//! per-type definitions, creation payloads and properties (SQL endpoints, Kusto URIs, the
//! active value set, environment publish state), Spark pools (workspace ones, made by
//! `POST` or given to new workspaces by `--spark-pool WORKSPACE:POOL`, and capacity ones
//! seeded with `--capacity-pool`), environment `staging/publish`, connections and a
//! semantic model's `bindConnection`, lakehouse shortcuts, nested folders, git
//! integration (connect, status, commit, update, …) against shared in-memory remotes, and
//! long-running operations (`/v1/operations/{id}` and `/result`). docs/EMULATOR.md lists the
//! per-type rules and the codes chosen where the spec is silent. Every list pages with
//! `continuationToken`/`continuationUri`; every error is the real `ErrorResponse` with a
//! `RequestId` header and `x-ms-public-api-error-code`. A bearer token is required: one
//! from [`Emulator::mint_token`] or `POST /_emulator/token`, or any token with
//! `accept_any_token`.
//!
//! # Azure stand-ins: Entra ID, managed identity, Key Vault, Application Insights
//! The Azure SDK for Rust refuses plain HTTP for Entra ID and Key Vault, so with
//! [`EmulatorConfig::tls`] (`--tls-port PORT`, `--ca-out FILE`) the emulator also serves every
//! route over HTTPS, with a CA and a separate leaf certificate (127.0.0.1, ::1, localhost)
//! generated at start; [`Emulator::ca_pem`] / `--ca-out` give the CA, the only thing clients
//! need to trust (`SSL_CERT_FILE`, or fabrik's `FABRIK_CA_CERT`). Nothing turns
//! certificate verification off. Authenticate as the built-in service principal:
//! ```no_run
//! # async fn demo() -> Result<(), fabrik_emulator::EmulatorError> {
//! use fabrik_emulator::*;
//! let emu = Emulator::start(EmulatorConfig { tls: Some(TlsConfig::default()), ..Default::default() }).await?;
//! let authority = emu.tls_base_url().unwrap(); // AZURE_AUTHORITY_HOST, and the Key Vault URL
//! // AZURE_TENANT_ID=DEFAULT_TENANT_ID, AZURE_CLIENT_ID=DEFAULT_CLIENT_ID,
//! // AZURE_CLIENT_SECRET=DEFAULT_CLIENT_SECRET; trust emu.ca_pem().
//! # let _ = authority; Ok(()) }
//! ```
//!
//! | Route | Does |
//! |---|---|
//! | `POST /{tenant}/oauth2/v2.0/token` | client credentials with `client_secret`, or `client_assertion` (workload identity federation: a JWT whose `iss`/`sub`/`aud` match a [`FederatedCredential`]; signatures are not checked). One `{resource}/.default` scope. Answers `{token_type, expires_in, ext_expires_in, access_token}`; errors are Entra's `{error, error_description: "AADSTS…", error_codes, …}` (`invalid_request` 90002 unknown tenant / 900144 missing parameter, `unauthorized_client` 700016, `invalid_client` 7000215 wrong secret / 7000218 no credential / 70021 no matching federated credential / 700024 expired assertion, `invalid_scope` 1002012 / 70011, `invalid_resource` 500011, `unsupported_grant_type` 70003) |
//! | `GET /msi/token` | App Service managed identity (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`): `?api-version=2019-08-01&resource=…` with `x-identity-header` → `{access_token, expires_on (unix seconds, a string), resource, token_type, client_id}`; errors `{statusCode, message}` |
//! | `GET/PUT/DELETE /secrets/{name}`, `GET /secrets/{name}/`, `GET/PATCH /secrets/{name}/{version}`, `GET /secrets/{name}/versions`, `GET /secrets` | Key Vault secrets: versions, disabled secrets (403 `Forbidden`/`SecretDisabled`), pages of at most 25 with `nextLink`, 404 `SecretNotFound`, 400 `BadParameter`. Without a token: 401 with `WWW-Authenticate: Bearer authorization="{origin}/{tenant}", resource="https://vault.azure.net"` (the SDK's challenge flow). Any valid vault token may do anything; a delete purges at once |
//! | `POST /v2/track`, `POST /v2.1/track` | Application Insights ingestion: envelopes as a JSON array or one per line, gzip/deflate or not; each needs a configured instrumentation key, `name`, `time` and a known `baseType` with its required fields. `{itemsReceived, itemsAccepted, errors: [{index, statusCode, message}]}` with 200, 206 (some refused) or 400 (none accepted) |
//!
//! Tokens from the token endpoint are JWT-shaped (`oid`, `appid`, `tid`, `aud`, `exp`) and
//! valid because the emulator issued them: `/v1` accepts those for the Fabric API
//! (`https://api.fabric.microsoft.com` or `https://analysis.windows.net/powerbi/api`), as the
//! application's service principal object id (type `ServicePrincipal`) — the creator's
//! Admin assignment and the throttling bucket are that principal's. A token past its
//! lifetime ([`IdentityConfig::token_lifetime`], `--token-lifetime`, on the injected clock)
//! gets 401 `TokenExpired`; a token for another resource 401 `InvalidToken`. The directory is
//! [`IdentityConfig`]: by default one application ([`DEFAULT_TENANT_ID`],
//! [`DEFAULT_CLIENT_ID`], [`DEFAULT_CLIENT_SECRET`], object id [`DEFAULT_SP_OBJECT_ID`], a
//! federated credential for [`DEFAULT_FEDERATED_ISSUER`] / [`DEFAULT_FEDERATED_SUBJECT`]) and
//! one managed identity ([`DEFAULT_IDENTITY_HEADER`], object id [`DEFAULT_MI_OBJECT_ID`]);
//! `--tenant`, `--app CLIENT_ID:SECRET[:OBJECT_ID]` or `applications = [...]` /
//! `managed_identity = {...}` in the config file change it. [`Emulator::federated_assertion`]
//! mints the assertion a CI would provide; [`Emulator::put_secret`] seeds the vault;
//! [`Emulator::app_insights_connection_string`] is what to give an exporter (the accepted
//! instrumentation keys: [`EmulatorConfig::instrumentation_keys`], `--instrumentation-key`).
//! Entra ID, managed-identity, Key Vault and ingestion requests are also logged in
//! `/_emulator/requests` (with the requested `scope` for token requests).
//!
//! # Admin API (`/_emulator`, no auth)
//! | Route | Does |
//! |---|---|
//! | `GET /_emulator/state` | live resources as JSON, sorted by id; soft-deleted items under `deletedItems` |
//! | `POST /_emulator/reset` | forget every resource and operation (tokens and capacities stay) |
//! | `GET /_emulator/requests` | the request log (`/v1` and the Azure stand-ins): `{method, path, status, principal, scope?}` in order |
//! | `DELETE /_emulator/requests` | clear the log |
//! | `GET /_emulator/faults`, `PUT /_emulator/faults` | read / replace the faults (body: a SPEC string, or `{"spec": "..."}`); both answer `{"spec", "requests", "faulted", "rate"}`: `/v1` requests seen and failures injected since the faults were set |
//! | `POST /_emulator/token` | `{"principalId", "principalType"?, "lifetimeSeconds"?}` → `{"accessToken", "expiresOn"}` |
//! | `GET /_emulator/telemetry[?type=EventData]` | accepted Application Insights envelopes, oldest first: `{"items", "dropped"}` |
//! | `DELETE /_emulator/telemetry` | forget them |
//!
//! # Fault SPEC
//! A comma-separated list of rules, checked in order for every `/v1` request after auth and
//! throttling. Random rules draw from a generator seeded with `--seed`, in request order, so
//! a sequential client sees the same faults on every run. The probabilities of the random
//! failure rules that apply to a request add up (one draw picks at most one of them), so
//! `429=0.1,503=0.1` fails 20 % of requests; a spec whose rules add up to more than 1 for
//! some request is refused. Latency rules roll separately.
//!
//! | Rule | Meaning |
//! |---|---|
//! | `[CLASS:]ACTION=P` | each request of route class CLASS (all when omitted) gets ACTION with probability P (0 to 1) |
//! | `[CLASS:]latency=D[..D2][@P]` | add a delay (uniform in D..D2; `ms` or `s`, bare numbers are ms), with probability P (default 1) |
//! | `METHOD /path/pattern#N=ACTION` | exactly the Nth request (1-based) matching METHOD and the pattern gets ACTION; `*` matches one path segment, `**` the rest |
//!
//! ACTION is a status 400–599 (`429`, `500`, `502`, `503`, `504`, … — answered without
//! touching state, 429 and 503 with `Retry-After`), `reset` (the connection is closed
//! without an answer), `hang` (no answer until the client gives up), `apply-then-STATUS`
//! (the request is carried out, then answered with STATUS), `apply-then-reset` (carried out,
//! then the connection is dropped) — these two are the cases that make naive retries create
//! duplicates — or `lro-fail` (answered 202 with an operation that ends `Failed`, nothing
//! changed). CLASS is one of `workspaces`, `roleAssignments`, `capacities`, `items`,
//! `lakehouses`, `notebooks`, `folders`, `git`, `operations`, `reads` (GET) or `writes`
//! (everything else); `items` also covers the typed item collections other than
//! `lakehouses` and `notebooks` (`variableLibraries`, `warehouses`, …). Example: `items:503=0.1,writes:apply-then-500=0.05,latency=5ms..20ms,POST /v1/workspaces/*/items#3=503`.
//!
//! # Choices where the spec is silent
//! Not-found answers are 404 with `WorkspaceNotFound`, `ItemNotFound`, `FolderNotFound`,
//! `EntityNotFound`; invalid bodies are 400 `InvalidInput` with a detail naming the field;
//! name clashes are 409 (`WorkspaceNameAlreadyExists`, `ItemDisplayNameAlreadyInUse`,
//! `FolderDisplayNameAlreadyInUse`, `PrincipalAlreadyHasWorkspaceRolePermissions`). Unknown
//! body properties are ignored, as the service does. The creator of a workspace becomes its
//! Admin (when its principal id is a GUID), as in the real service. Workspace roles are not
//! enforced: any authenticated principal may do anything.

// The README's examples compile and run as doctests, so the crate's front page cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod api;
mod config;
mod error;
pub mod faults;
mod identity;
mod notebook;
mod profile;
mod server;
mod store;
mod throttle;
mod tls;
mod types;
mod util;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{
    CreateMode, EmulatorArgs, EmulatorConfig, ThrottleConfig, TlsConfig, WorkspacePool,
    config_from_args,
};
pub use faults::{FaultConfig, FaultStats};
pub use identity::{
    Application, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_FEDERATED_ISSUER,
    DEFAULT_FEDERATED_SUBJECT, DEFAULT_IDENTITY_HEADER, DEFAULT_INSTRUMENTATION_KEY,
    DEFAULT_MI_CLIENT_ID, DEFAULT_MI_OBJECT_ID, DEFAULT_SP_OBJECT_ID, DEFAULT_TENANT_ID,
    FEDERATED_AUDIENCE, FederatedCredential, IdentityConfig, ManagedIdentity,
};
pub use profile::ProfileName;

use server::Shared;
use store::Store;

/// Why the emulator could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// A configuration value is invalid (the message names it).
    #[error("invalid emulator configuration: {0}")]
    Config(String),
    /// The TLS certificates could not be generated, or the CA file not written.
    #[error("TLS set-up failed: {0}")]
    Tls(String),
    /// The state file could not be read or written.
    #[error("state file {path}: {message}")]
    State {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// A running emulator. Dropping it stops the server; [`Emulator::shutdown`] also waits for
/// in-flight requests and saves the state file.
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
    base_url: String,
    /// `https://127.0.0.1:PORT` and the CA's PEM, when HTTPS is on.
    tls: Option<(String, String)>,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    tls_server: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Binds `config.host:config.port` and serves on the current tokio runtime.
    pub async fn start(mut config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        if config.page_size == 0 {
            return Err(EmulatorError::Config(
                "page_size must be at least 1, got 0".into(),
            ));
        }
        config::check_time_scale(config.time_scale)?;
        let mut store = match &config.state_file {
            Some(path) => load_state(path)?,
            None => Store::default(),
        };
        let (listener, base_url) = bind(&config.host, config.port, "http").await?;
        config.port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(config.port);
        let tls = match &config.tls {
            None => None,
            Some(t) => {
                let generated = tls::generate(&config.host)?;
                let (tls_listener, url) = bind(&config.host, t.port, "https").await?;
                if let Some(path) = &t.ca_out {
                    std::fs::write(path, &generated.ca_pem).map_err(|e| {
                        EmulatorError::Tls(format!(
                            "cannot write the CA to {}: {e}",
                            path.display()
                        ))
                    })?;
                }
                Some((tls_listener, url, generated))
            }
        };
        let (stop, stop_rx) = watch::channel(false);
        let seed_capacities = store.capacities.is_empty();
        let shared = Arc::new(
            Shared::new(config, Store::default(), stop_rx.clone())
                .map_err(EmulatorError::Config)?,
        );
        if seed_capacities {
            api::admin::seed_capacities(&shared, &mut store);
        }
        store.reindex();
        *shared.write() = store;
        let router = api::router(shared.clone());
        let (tls, tls_server) = match tls {
            None => (None, None),
            Some((tls_listener, url, generated)) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(generated.server);
                let task = tokio::spawn(server::serve(
                    tls_listener,
                    router.clone(),
                    stop_rx.clone(),
                    Some(acceptor),
                ));
                tracing::info!(tls_url = %url, "fabric emulator serving HTTPS");
                (Some((url, generated.ca_pem)), Some(task))
            }
        };
        let server = tokio::spawn(server::serve(listener, router, stop_rx, None));
        tracing::info!(%base_url, "fabric emulator listening");
        Ok(Emulator {
            shared,
            base_url,
            tls,
            stop,
            server: Some(server),
            tls_server,
        })
    }

    /// `https://127.0.0.1:PORT` (no trailing slash) when HTTPS is on: every endpoint is there
    /// too. Use it as `AZURE_AUTHORITY_HOST` and as the Key Vault URL.
    pub fn tls_base_url(&self) -> Option<&str> {
        self.tls.as_ref().map(|(url, _)| url.as_str())
    }

    /// The generated CA certificate (PEM) when HTTPS is on: the only thing a client needs
    /// to trust (also written to [`TlsConfig::ca_out`]).
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|(_, pem)| pem.as_str())
    }

    /// `InstrumentationKey=…;IngestionEndpoint=…/` for the first configured instrumentation
    /// key. It points at the HTTPS port when TLS is on — opentelemetry-application-insights
    /// rewrites an `http` endpoint to `https` — and at the plain port otherwise; ingestion is
    /// served on both.
    pub fn app_insights_connection_string(&self) -> String {
        let key = self
            .shared
            .config
            .instrumentation_keys
            .first()
            .map_or(DEFAULT_INSTRUMENTATION_KEY, String::as_str);
        let endpoint = self.tls_base_url().unwrap_or(&self.base_url);
        format!("InstrumentationKey={key};IngestionEndpoint={endpoint}/")
    }

    /// The Application Insights envelopes accepted so far, oldest first (as
    /// `GET /_emulator/telemetry` lists them).
    pub fn telemetry(&self) -> Vec<serde_json::Value> {
        api::appinsights::stored(&self.shared, None)
    }

    /// Stores a new version of a Key Vault secret (as `PUT /secrets/{name}` would) and
    /// returns the version id.
    pub fn put_secret(&self, name: &str, value: &str) -> String {
        let (_, v) = api::keyvault::put(
            &self.shared,
            name,
            value.to_string(),
            None,
            true,
            (None, None),
            None,
        );
        v.version
    }

    /// A federated client assertion for application `client_id`'s first federated
    /// credential, valid for `lifetime` on the emulator's clock: what GitHub Actions or AKS
    /// would give the workload (write it to `AZURE_FEDERATED_TOKEN_FILE`). `None` if the
    /// application is unknown or has no federated credential.
    pub fn federated_assertion(&self, client_id: &str, lifetime: Duration) -> Option<String> {
        api::entra::federated_assertion(&self.shared, client_id, lifetime)
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash; the Fabric API is at `{base_url}/v1`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A bearer token `/v1` accepts for `principal_id` (as a `User`) until `lifetime` has
    /// passed on the emulator's clock; after that the API answers 401 `TokenExpired`.
    pub fn mint_token(&self, principal_id: &str, lifetime: Duration) -> String {
        self.mint_token_as(principal_id, "User", lifetime)
    }

    /// Like [`mint_token`](Self::mint_token) for another principal type (`ServicePrincipal`,
    /// `Group`, `ServicePrincipalProfile`), which is what the creator's Admin assignment records.
    pub fn mint_token_as(
        &self,
        principal_id: &str,
        principal_type: &str,
        lifetime: Duration,
    ) -> String {
        api::admin::mint(&self.shared, principal_id, principal_type, lifetime)
    }

    /// What the faults in force did since they were set (as `GET /_emulator/faults` reports):
    /// requests seen and failures injected, the realized fault rate.
    pub fn fault_stats(&self) -> faults::FaultStats {
        self.shared
            .faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .stats()
    }

    /// Replaces the injected faults at run time (as `PUT /_emulator/faults`); scripted
    /// counters and [`Emulator::fault_stats`] restart.
    pub fn set_faults(&self, faults: FaultConfig) {
        *self
            .shared
            .faults
            .write()
            .unwrap_or_else(|e| e.into_inner()) =
            Arc::new(faults::FaultEngine::new(faults, self.shared.config.seed));
    }

    /// The live resources, as `GET /_emulator/state` returns them (canonical order).
    pub fn state(&self) -> serde_json::Value {
        self.shared.read().admin_view()
    }

    /// Stops accepting, lets in-flight requests finish, and saves the state file if set.
    pub async fn shutdown(mut self) -> Result<(), EmulatorError> {
        let _ = self.stop.send(true);
        for task in [self.server.take(), self.tls_server.take()]
            .into_iter()
            .flatten()
        {
            let _ = task.await;
        }
        if let Some(path) = &self.shared.config.state_file {
            save_state(path, &self.shared.read())?;
        }
        Ok(())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Waits for Ctrl-C (SIGINT) or, on Unix, SIGTERM — what service managers and `docker stop`
/// send. A program hosting the emulator awaits it before [`Emulator::shutdown`], so the state
/// file is saved either way.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            // No SIGTERM handler could be installed: Ctrl-C still works.
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Binds `host:port`; returns the listener and `scheme://ip:port`.
async fn bind(
    host: &str,
    port: u16,
    scheme: &str,
) -> Result<(tokio::net::TcpListener, String), EmulatorError> {
    let addr = format!("{host}:{port}");
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| EmulatorError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local: SocketAddr = listener
        .local_addr()
        .map_err(|source| EmulatorError::Bind { addr, source })?;
    let url = match local {
        SocketAddr::V6(a) => format!("{scheme}://[{}]:{}", a.ip(), a.port()),
        SocketAddr::V4(a) => format!("{scheme}://{}:{}", a.ip(), a.port()),
    };
    Ok((listener, url))
}

fn load_state(path: &std::path::Path) -> Result<Store, EmulatorError> {
    let err = |message: String| EmulatorError::State {
        path: path.to_path_buf(),
        message,
    };
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| err(format!("not a valid emulator state: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Store::default()),
        Err(e) => Err(err(e.to_string())),
    }
}

fn save_state(path: &std::path::Path, store: &Store) -> Result<(), EmulatorError> {
    let err = |message: String| EmulatorError::State {
        path: path.to_path_buf(),
        message,
    };
    let bytes = serde_json::to_vec(store).map_err(|e| err(e.to_string()))?;
    // Write then rename, so a crash mid-save leaves the previous state intact.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
}
