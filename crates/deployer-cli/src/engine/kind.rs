//! The resource-kind trait: everything the engine knows about one kind of resource.
//!
//! A kind reads its live state in one workspace, diffs the desired state against it (a pure
//! function), says which other resources each change references, and applies a change,
//! journaling its undo record through the [`ApplyCx`] helpers. The engine knows no kind by
//! name: it plans every registered kind, builds the graph from the references, and walks it.
//! Adding a kind is one new type implementing [`Kind`] and one line in
//! [`Registry::builtin`](super::Registry::builtin).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use fabrik_client::models::{Folder, Item};
use fabrik_client::{Ensured, FabricClient, FabricError, ItemFilter};
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo, UndoError, UndoOutcome};
use fabrik_txn::{Intent, Transaction};
use futures::TryStreamExt;
use serde::Serialize;
use tokio::sync::OnceCell;

use super::EngineError;
use crate::config::{DesiredWorkspace, Section};
use crate::plan::Action;

/// Where a resource lives in the plan: its workspace, its kind's name and a key unique within
/// both (a folder's path, an item's display name, a principal's id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    /// Workspace display name.
    pub workspace: String,
    /// The kind's name ([`Kind::name`]).
    pub kind: &'static str,
    /// Unique within the workspace and kind (compared case-insensitively by Fabric's rules is
    /// the kind's business; the engine compares exactly).
    pub key: String,
}

impl Address {
    /// An address.
    pub fn new(workspace: &str, kind: &'static str, key: impl Into<String>) -> Self {
        Self {
            workspace: workspace.to_string(),
            kind,
            key: key.into(),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.workspace, self.kind, self.key)
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a change must wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// The changes planned at this address (none planned: it exists, nothing to wait for).
    At(Address),
    /// Every other kind's changes in this workspace (a git connection waits for its items).
    EverythingIn(String),
}

/// One change a kind plans, before the engine gives it an address in the plan.
#[derive(Debug)]
pub struct Planned<Op> {
    /// Create, update or delete.
    pub action: Action,
    /// Unique key within the workspace and kind (see [`Address::key`]).
    pub key: String,
    /// For humans: `lakehouse BRONZE_Sales`.
    pub target: String,
    /// What changes: `description: "a" → "b"`.
    pub detail: Option<String>,
    /// What must be done first.
    pub needs: Vec<Need>,
    /// The kind's own description of the change.
    pub op: Op,
}

/// A kind's plan for one workspace.
#[derive(Debug)]
pub struct Diff<Op> {
    /// Changes, in the order a sequential apply would run them.
    pub changes: Vec<Planned<Op>>,
    /// Live resources the configuration does not describe, left alone (`report Hand made`).
    pub unmanaged: Vec<String>,
}

impl<Op> Default for Diff<Op> {
    fn default() -> Self {
        Self {
            changes: Vec::new(),
            unmanaged: Vec::new(),
        }
    }
}

/// What applying a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Made by this run.
    Created,
    /// Changed by this run.
    Updated,
    /// Removed by this run.
    Deleted,
    /// Found already there (a create that raced another writer, or a retried create).
    Existed,
}

impl Outcome {
    /// `created`, `updated`, `deleted`, `existed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Deleted => "deleted",
            Outcome::Existed => "existed",
        }
    }
}

/// One kind of resource. `Live` is what [`read`](Kind::read) finds, `Op` what
/// [`diff`](Kind::diff) plans and [`apply`](Kind::apply) carries out.
#[async_trait]
pub trait Kind: Send + Sync + 'static {
    /// What the kind reads of one workspace.
    type Live: Send + Sync;
    /// A planned change; shown in `plan --output json` as `op`.
    type Op: fmt::Debug + Serialize + Send + Sync + 'static;

    /// Short lowercase name, used in addresses (`lakehouse`).
    fn name(&self) -> &'static str;

    /// The journal's and the metrics' kind.
    fn resource_kind(&self) -> ResourceKind;

    /// Checks this kind's part of one workspace's configuration before anything is read or
    /// sent; each problem names the workspace and the value.
    fn validate(&self, _desired: &DesiredWorkspace) -> Vec<String> {
        Vec::new()
    }

    /// The top-level key of a workspace in `fabrik.yaml` this kind owns, with its type and
    /// checks (reported at file:line:column when the file is loaded) and so its part of the
    /// JSON Schema; the kind reads the value with [`DesiredWorkspace::section`]. None by
    /// default: the kind plans from what the configuration itself reads.
    fn section(&self) -> Option<Section> {
        None
    }

    /// The item type this kind deploys, if it is an item kind of one type: the generic item
    /// kind then leaves items of that type alone.
    fn claims_item_type(&self) -> Option<&'static str> {
        None
    }

    /// Reads the kind's live state in the workspace of `cx` (which may not exist yet).
    async fn read(&self, cx: &ReadCx<'_>) -> Result<Self::Live, EngineError>;

    /// Diffs desired against live. Pure: no I/O.
    fn diff(&self, desired: &DesiredWorkspace, live: &Self::Live, cx: &DiffCx) -> Diff<Self::Op>;

    /// Carries out one change, journaling its undo record through `cx` before the change can
    /// no longer be undone from the journal alone.
    async fn apply(&self, op: &Self::Op, cx: &ApplyCx<'_>) -> Result<Outcome, EngineError>;

    /// Whether `op` starts a long wait (an Environment's publish), so a walk starts it before
    /// the other changes ready with it, in plan order otherwise.
    fn starts_early(&self, _op: &Self::Op) -> bool {
        false
    }

    /// The deletes `fabrik destroy` plans for what this kind deployed in the workspace of
    /// `desired` (as [`read`](Kind::read) found it): changes with [`Action::Delete`] whose op
    /// [`apply`](Kind::apply) carries out — the kind's own delete, journaled before it is sent.
    /// An item a delete removes should be recorded with [`ReadCx::know`] at its address, so
    /// destroy counts it as described (a workspace left with nothing else goes whole). None by
    /// default: the kind's resources go with their workspace, or are left.
    fn destroy(&self, _desired: &DesiredWorkspace, _live: &Self::Live) -> Diff<Self::Op> {
        Diff::default()
    }

    /// Carries out an undo record this kind journaled (`Undo::new(self.name(), &payload)`),
    /// in this process or a later one. Idempotent: undoing what is already gone is
    /// [`UndoOutcome::AlreadyGone`] (see [`settle`]).
    async fn undo(&self, undo: &Undo, _cx: &UndoCx<'_>) -> Result<UndoOutcome, UndoError> {
        Err(permanent(format!(
            "kind '{}' carries out no undo records, yet the journal holds one: {}",
            self.name(),
            undo.payload
        )))
    }

    /// Finds what a create intent of this kind made when the run died before the journal
    /// learned the outcome: `None` when nothing was made; the resource and its undo when
    /// exactly it is recognised (never something that existed before the intent); an error
    /// when it cannot tell, so it is left in place and reported (see [`recovery`](super::recovery)).
    async fn recover(
        &self,
        intent: &Intent,
        _cx: &UndoCx<'_>,
    ) -> Result<Option<(ResourceRef, Undo)>, UndoError> {
        Err(super::recovery::unsure(
            intent,
            format!(
                "kind '{}' does not say how to recognise what it created",
                self.name()
            ),
        ))
    }
}

/// Undoing and recovering: the client, in a process that may not be the one that journaled.
#[derive(Debug, Clone, Copy)]
pub struct UndoCx<'a> {
    /// The client.
    pub client: &'a FabricClient,
}

/// A permanent undo failure: retrying the same record cannot help.
pub fn permanent(message: String) -> UndoError {
    UndoError {
        message,
        class: fabrik_core::ErrorClass::Permanent,
    }
}

/// The outcome of the call that undoes something: done, or already gone when Fabric says the
/// target is not there (404, `*NotFound`) or answers with one of `gone_codes` (a kind's own
/// "nothing to undo", such as `WorkspaceNotConnectedToGit`).
pub fn settle(
    result: Result<(), FabricError>,
    gone_codes: &[&str],
) -> Result<UndoOutcome, UndoError> {
    match result {
        Ok(()) => Ok(UndoOutcome::Done),
        Err(e) if e.is_not_found() || e.error_code().is_some_and(|c| gone_codes.contains(&c)) => {
            Ok(UndoOutcome::AlreadyGone)
        }
        Err(e) => Err(UndoError {
            message: e.to_string(),
            class: fabrik_core::Classify::class(&e),
        }),
    }
}

/// What a diff may know beyond desired and live state.
#[derive(Debug, Clone, Default)]
pub struct DiffCx {
    /// The desired capacity, resolved to an id.
    pub capacity_id: Option<String>,
    /// Plan deletes of what the configuration does not describe (`--prune`).
    pub prune: bool,
    /// Item types claimed by a kind of their own; the generic item kind leaves them alone.
    pub claimed_item_types: Vec<&'static str>,
}

/// A live workspace as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveWorkspace {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Capacity id.
    pub capacity_id: Option<String>,
}

/// Reading one workspace: the client, the listed workspace (if it exists), and the lists that
/// several kinds share, fetched once.
pub struct ReadCx<'a> {
    /// The client.
    pub client: &'a FabricClient,
    /// The desired workspace.
    pub desired: &'a DesiredWorkspace,
    /// The live workspace, `None` when it does not exist yet.
    pub live: Option<&'a LiveWorkspace>,
    /// Reads fanned out within one kind (definitions) are bounded by this.
    pub concurrency: usize,
    /// Item types claimed by a kind of their own (see [`Kind::claims_item_type`]).
    pub claimed_item_types: Vec<&'static str>,
    folders: OnceCell<Vec<Folder>>,
    items: OnceCell<Vec<Item>>,
    known: Mutex<BTreeMap<Address, String>>,
    reads: Mutex<BTreeMap<String, serde_json::Value>>,
    /// What the workspace's last successful run rendered from secrets (the deployed record).
    previous: Option<crate::deployed::Record>,
    /// What this run renders from secrets: the next deployed record.
    rendered: Mutex<crate::deployed::Record>,
    /// Whether the record's digests stand for deployed definitions (`--refresh=false`).
    refresh: crate::deployed::Refresh,
}

impl fmt::Debug for ReadCx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadCx")
            .field("workspace", &self.desired.name)
            .finish_non_exhaustive()
    }
}

impl<'a> ReadCx<'a> {
    /// A context for reading `desired`'s workspace.
    pub fn new(
        client: &'a FabricClient,
        desired: &'a DesiredWorkspace,
        live: Option<&'a LiveWorkspace>,
        concurrency: usize,
    ) -> Self {
        Self {
            client,
            desired,
            live,
            concurrency: concurrency.max(1),
            claimed_item_types: Vec::new(),
            folders: OnceCell::new(),
            items: OnceCell::new(),
            known: Mutex::new(BTreeMap::new()),
            reads: Mutex::new(BTreeMap::new()),
            previous: crate::deployed::previous(&desired.name),
            rendered: Mutex::new(crate::deployed::Record::new(&desired.name)),
            refresh: crate::deployed::refresh(),
        }
    }

    /// The workspace's id, when it exists.
    pub fn workspace_id(&self) -> Option<&str> {
        self.live.map(|w| w.id.as_str())
    }

    /// The workspace's folders (listed once for every kind).
    pub async fn folders(&self) -> Result<&[Folder], EngineError> {
        let Some(id) = self.workspace_id() else {
            return Ok(&[]);
        };
        self.folders
            .get_or_try_init(|| async {
                self.client
                    .list_folders(id)
                    .try_collect()
                    .await
                    .map_err(ctx(format!("listing folders of {}", self.desired.name)))
            })
            .await
            .map(Vec::as_slice)
    }

    /// The workspace's folders by id: (path from the root `a/b`, id).
    pub async fn folder_paths(&self) -> Result<Vec<(String, String)>, EngineError> {
        let folders = self.folders().await?;
        let by_id: HashMap<&str, &Folder> = folders.iter().map(|f| (f.id.as_str(), f)).collect();
        Ok(folders
            .iter()
            .map(|f| (folder_path(&by_id, &f.id), f.id.clone()))
            .collect())
    }

    /// The path of folder `id` (`None` for the root or an unknown folder).
    pub async fn path_of(&self, id: Option<&str>) -> Result<Option<String>, EngineError> {
        let Some(id) = id else { return Ok(None) };
        let folders = self.folders().await?;
        let by_id: HashMap<&str, &Folder> = folders.iter().map(|f| (f.id.as_str(), f)).collect();
        Ok(by_id.contains_key(id).then(|| folder_path(&by_id, id)))
    }

    /// Every item of the workspace (listed once for every kind).
    pub async fn items(&self) -> Result<&[Item], EngineError> {
        let Some(id) = self.workspace_id() else {
            return Ok(&[]);
        };
        self.items
            .get_or_try_init(|| async {
                self.client
                    .list_items(id, &ItemFilter::default())
                    .try_collect()
                    .await
                    .map_err(ctx(format!("listing items of {}", self.desired.name)))
            })
            .await
            .map(Vec::as_slice)
    }

    /// The deployed definition of item `id` (`item_type` `name`, for the error), in `format`
    /// when given: every item kind reads definitions this way.
    pub async fn definition(
        &self,
        item_type: &str,
        name: &str,
        id: &str,
        format: Option<&str>,
    ) -> Result<fabrik_client::models::ItemDefinition, EngineError> {
        let Some(ws) = self.workspace_id() else {
            return Err(EngineError::Invalid(format!(
                "{item_type} {name}: its workspace {} does not exist",
                self.desired.name
            )));
        };
        self.client
            .get_item_definition(ws, id, format)
            .await
            .map_err(ctx(format!("reading the definition of {item_type} {name}")))
    }

    /// Records the id of an existing resource, so changes that reference it find it at apply.
    pub fn know(&self, address: Address, id: impl Into<String>) {
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(address, id.into());
    }

    /// Records a kind's account of how it read (`definitionReads`: what a bulk read covered and
    /// what it read one by one), carried into the plan ([`WorkspacePlan::reads`](crate::plan::WorkspacePlan::reads)).
    pub fn report_read(&self, key: &str, value: serde_json::Value) {
        self.reads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), value);
    }

    /// A deployed value of `field` of the resource at `address`, as read: when the deployed
    /// record says it was rendered from secrets and it still is that rendering, its secrets
    /// are learned ([`crate::secrets::learn`]) — it shows as `(sensitive)` and journals as
    /// its template. Returns whether it did.
    pub fn deployed_field(&self, address: &Address, field: &str, live: &str) -> bool {
        let Some(r) = self.previous.as_ref() else {
            return false;
        };
        r.field(&address.to_string(), field)
            .is_some_and(|t| crate::secrets::learn(&t.template, "${secret:", live, true))
    }

    /// A deployed definition part (decoded text) of the resource at `address`: its secrets
    /// are learned as for [`deployed_field`](Self::deployed_field), and journal as
    /// `${fabrik-secret:NAME}`.
    pub fn deployed_part(&self, address: &Address, path: &str, live: &str) -> bool {
        let Some(r) = self.previous.as_ref() else {
            return false;
        };
        let opening = crate::secrets::IN_DEFINITION;
        r.part(&address.to_string(), path)
            .is_some_and(|t| crate::secrets::learn(&t.template, opening, live, false))
    }

    /// With `--refresh=false`, the digest of the definition the last successful run rendered
    /// for the resource at `address` (trusted to be what is deployed); otherwise `None`.
    pub fn trusted_digest(&self, address: &Address) -> Option<&str> {
        if self.refresh != crate::deployed::Refresh::TrustRecord {
            return None;
        }
        self.previous.as_ref()?.digest(&address.to_string())
    }

    /// Whether this plan trusts the deployed record's digests instead of reading definitions.
    pub fn trusts_record(&self) -> bool {
        self.refresh == crate::deployed::Refresh::TrustRecord
    }

    /// Records, for the next deployed record, the digest of the definition this run renders
    /// for the resource at `address` (one it will deploy, or finds deployed).
    pub fn rendered_digest(&self, address: &Address, digest: String) {
        let mut r = self.rendered.lock().unwrap_or_else(|p| p.into_inner());
        r.resources.entry(address.to_string()).or_default().digest = Some(digest);
    }

    /// The value this run wants for `field` of the resource at `address`: recorded for the
    /// next deployed record when it holds secrets.
    pub fn rendered_field(&self, address: &Address, field: &str, desired: &str) {
        self.render(address, desired, "${secret:", |r| &mut r.fields, field);
    }

    /// A definition part (decoded text) this run wants for the resource at `address`:
    /// recorded for the next deployed record when it holds secrets.
    pub fn rendered_part(&self, address: &Address, path: &str, desired: &str) {
        let opening = crate::secrets::IN_DEFINITION;
        self.render(address, desired, opening, |r| &mut r.parts, path);
    }

    fn render(
        &self,
        address: &Address,
        desired: &str,
        opening: &str,
        slot: impl FnOnce(
            &mut crate::deployed::Resource,
        ) -> &mut BTreeMap<String, crate::deployed::Rendered>,
        name: &str,
    ) {
        if !crate::secrets::holds_secret(desired) {
            return;
        }
        let template = crate::secrets::template_of(desired, opening);
        let rendered = crate::deployed::Rendered {
            references: crate::deployed::references(&template, opening),
            template,
        };
        let mut r = self.rendered.lock().unwrap_or_else(|p| p.into_inner());
        let resource = r.resources.entry(address.to_string()).or_default();
        slot(resource).insert(name.to_string(), rendered);
    }

    /// What [`rendered_field`](Self::rendered_field) and
    /// [`rendered_part`](Self::rendered_part) recorded — with the previous record's entries
    /// of kinds other than `kinds` (those that planned: a `publish` leaves the workspace's
    /// description alone, so its entry stays) —: the record this run leaves once it
    /// succeeds; `None` when it renders nothing from secrets and there is no record to
    /// replace.
    pub fn take_rendered(&self, kinds: &[&str]) -> Option<crate::deployed::Record> {
        let name = self.desired.name.clone();
        let mut r = std::mem::replace(
            &mut *self.rendered.lock().unwrap_or_else(|p| p.into_inner()),
            crate::deployed::Record::new(&name),
        );
        let Some(previous) = self.previous.as_ref() else {
            return (!r.resources.is_empty()).then_some(r);
        };
        let prefix = format!("{name}/");
        for (address, resource) in &previous.resources {
            let kind = address
                .strip_prefix(&prefix)
                .and_then(|rest| rest.split_once('/'))
                .map(|(kind, _)| kind);
            if kind.is_some_and(|k| !kinds.contains(&k)) {
                r.resources
                    .entry(address.clone())
                    .or_insert_with(|| resource.clone());
            }
        }
        Some(r)
    }

    /// Whether `record` is the record the workspace already has.
    pub fn is_previous(&self, record: Option<&crate::deployed::Record>) -> bool {
        record == self.previous.as_ref()
    }

    /// The reports recorded with [`report_read`](Self::report_read).
    pub fn take_reads(&self) -> BTreeMap<String, serde_json::Value> {
        std::mem::take(&mut self.reads.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The ids recorded with [`know`](Self::know), and the items listed (`(name, id)`).
    pub fn into_known(self) -> (BTreeMap<Address, String>, Vec<(String, String)>) {
        let items = self
            .items
            .into_inner()
            .unwrap_or_default()
            .into_iter()
            .map(|i| (i.display_name, i.id))
            .collect();
        (
            self.known.into_inner().unwrap_or_else(|p| p.into_inner()),
            items,
        )
    }
}

/// A folder's path from the root, guarding against a parent cycle in what the service returned.
pub fn folder_path(by_id: &HashMap<&str, &Folder>, id: &str) -> String {
    let mut parts = Vec::new();
    let mut cur = Some(id);
    while let Some(c) = cur {
        let Some(f) = by_id.get(c) else { break };
        parts.push(f.display_name.as_str());
        cur = f.parent_folder_id.as_deref();
        if parts.len() > by_id.len() {
            break;
        }
    }
    parts.reverse();
    parts.join("/")
}

/// Ids of resources, known from the plan or made by this run, shared by every change in flight.
#[derive(Debug, Default)]
pub struct Ids(Mutex<HashMap<Address, String>>);

impl Ids {
    /// Ids known before the run.
    pub fn new(known: impl IntoIterator<Item = (Address, String)>) -> Self {
        Self(Mutex::new(known.into_iter().collect()))
    }

    /// The id at `address`.
    pub fn get(&self, address: &Address) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(address)
            .cloned()
    }

    /// Records the id at `address`.
    pub fn set(&self, address: Address, id: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(address, id.into());
    }
}

/// Operations changes started for the run to wait for once its changes are done (an
/// Environment's publish, which takes minutes): the change that starts one is done without
/// holding a slot while it runs, and what depends on the item (only its id) goes on.
#[derive(Debug, Default)]
pub struct Deferred(Mutex<Vec<(String, fabrik_client::Operation)>>);

impl Deferred {
    /// The operations started, each with what it does (for its error), emptied.
    pub fn take(&self) -> Vec<(String, fabrik_client::Operation)> {
        std::mem::take(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Applying one change: the client, the run's transaction and the ids resolved so far.
pub struct ApplyCx<'a> {
    /// The name of the kind applying the change: the owner of the intents it journals.
    pub kind: &'static str,
    /// The client.
    pub client: &'a FabricClient,
    /// The run's transaction.
    pub txn: &'a Transaction,
    /// The workspace's display name.
    pub workspace: &'a str,
    /// What the change is about, for error messages (`lakehouse X`).
    pub target: &'a str,
    /// Ids known so far.
    pub ids: &'a Ids,
    /// The items the plan saw in this workspace, `(display name, id)`.
    pub seen_items: &'a [(String, String)],
    /// Digests of the definitions sent, for the deployed record.
    pub sent: &'a crate::deployed::Sent,
    /// Operations the run waits for after its changes.
    pub deferred: &'a Deferred,
}

impl fmt::Debug for ApplyCx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplyCx")
            .field("workspace", &self.workspace)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The address of a workspace itself.
pub fn workspace_address(workspace: &str) -> Address {
    Address::new(workspace, super::kinds::workspace::NAME, workspace)
}

impl ApplyCx<'_> {
    /// The workspace's id: known from the plan, or made by its create, which this change
    /// depends on.
    pub fn workspace_id(&self) -> Result<String, EngineError> {
        self.ids
            .get(&workspace_address(self.workspace))
            .ok_or_else(|| EngineError::Unresolved {
                target: self.target.to_string(),
                missing: format!("workspace {}", self.workspace),
            })
    }

    /// The id of the resource at `address` in this workspace, if it exists.
    pub fn id_of(&self, kind: &'static str, key: &str) -> Option<String> {
        self.ids.get(&Address::new(self.workspace, kind, key))
    }

    /// Records the id of the resource at `address` in this workspace for changes that follow.
    pub fn set_id(&self, kind: &'static str, key: &str, id: &str) {
        self.ids.set(Address::new(self.workspace, kind, key), id);
    }

    /// An error from the service while doing `what`.
    pub fn fabric(&self, what: &str) -> impl FnOnce(FabricError) -> EngineError {
        ctx(format!("{what} in {}", self.workspace))
    }

    /// Hands `op` (started by this change, doing `what`) to the run, which waits for it once
    /// every change is done; its failure fails the run like a failed change.
    pub fn wait_later(&self, what: &str, op: fabrik_client::Operation) {
        self.deferred
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((format!("{what} in {}", self.workspace), op));
    }

    /// Records, for the workspace's next deployed record, that the definition sent for the
    /// resource `kind`/`key` has `digest`.
    pub fn sent_definition(&self, kind: &'static str, key: &str, digest: String) {
        self.sent
            .insert(Address::new(self.workspace, kind, key).to_string(), digest);
    }

    /// Journals `undo` for `resource` before the change it undoes is sent (updates, adds).
    pub async fn track(&self, resource: ResourceRef, undo: Undo) -> Result<(), EngineError> {
        let undo = crate::secrets::undo_to_references(&undo);
        self.txn.track(resource, undo).await.map_err(journal)?;
        Ok(())
    }

    /// A change that cannot be undone (a delete), journaled before it is sent.
    pub async fn track_without_undo(&self, resource: ResourceRef) -> Result<(), EngineError> {
        self.txn
            .track_step(fabrik_txn::Step::without_undo(resource))
            .await
            .map_err(journal)?;
        Ok(())
    }

    /// A create: journals the intent, runs `call` (a get-or-create), and journals the created
    /// resource with the undo `finish` makes of it, or settles the intent when it already
    /// existed. A crash between the intent and its outcome is settled by the resolver.
    pub async fn create<T, F>(
        &self,
        intent: Intent,
        what: &str,
        call: F,
        finish: impl FnOnce(&T) -> (ResourceRef, Undo),
    ) -> Result<(Outcome, T), EngineError>
    where
        F: std::future::Future<Output = Result<Ensured<T>, FabricError>>,
    {
        let mut intent = intent;
        intent.owner.get_or_insert_with(|| self.kind.to_string());
        if intent.workspace_id.is_some() && intent.kind != ResourceKind::Folder {
            intent.existing = self
                .seen_items
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case(&intent.display_name))
                .map(|(_, id)| id.clone())
                .collect();
        }
        let id = self.txn.intend(intent).await.map_err(journal)?;
        let ensured = match call.await {
            Ok(e) => e,
            Err(e) => {
                // The journal must say the intent failed, or a rollback would look for it.
                self.txn
                    .fail_intent(id, &crate::secrets::redact(&e.to_string()))
                    .await
                    .map_err(journal)?;
                return Err(ctx(format!("{what} in {}", self.workspace))(e));
            }
        };
        if ensured.created_here() {
            let (resource, undo) = finish(&ensured.value);
            let undo = crate::secrets::undo_to_references(&undo);
            self.txn
                .complete_intent(id, resource, undo)
                .await
                .map_err(journal)?;
            Ok((Outcome::Created, ensured.value))
        } else {
            self.txn
                .fail_intent(id, "already existed")
                .await
                .map_err(journal)?;
            Ok((Outcome::Existed, ensured.value))
        }
    }
}

/// Wraps a service error with what fabrik was doing.
pub fn ctx(context: impl Into<String>) -> impl FnOnce(FabricError) -> EngineError {
    let context = context.into();
    move |source| EngineError::Fabric { context, source }
}

fn journal(e: fabrik_txn::TxnError) -> EngineError {
    EngineError::Journal(e.to_string())
}

/// The engine's view of a kind: [`Kind`] with its types erased, so kinds of different types
/// live in one registry.
#[async_trait]
pub trait DynKind: Send + Sync {
    /// [`Kind::name`].
    fn name(&self) -> &'static str;
    /// [`Kind::validate`].
    fn validate(&self, desired: &DesiredWorkspace) -> Vec<String>;
    /// [`Kind::section`].
    fn section(&self) -> Option<Section>;
    /// [`Kind::undo`].
    async fn undo(&self, undo: &Undo, cx: &UndoCx<'_>) -> Result<UndoOutcome, UndoError>;
    /// [`Kind::recover`].
    async fn recover(
        &self,
        intent: &Intent,
        cx: &UndoCx<'_>,
    ) -> Result<Option<(ResourceRef, Undo)>, UndoError>;
    /// [`Kind::read`] then [`Kind::diff`], the changes bound to the kind.
    async fn plan(
        &self,
        cx: &ReadCx<'_>,
        diff: &DiffCx,
    ) -> Result<Diff<Arc<dyn DynOp>>, EngineError>;
    /// [`Kind::read`] then [`Kind::destroy`], the deletes bound to the kind.
    async fn plan_destroy(&self, cx: &ReadCx<'_>) -> Result<Diff<Arc<dyn DynOp>>, EngineError>;
}

/// A planned change bound to its kind.
#[async_trait]
pub trait DynOp: fmt::Debug + Send + Sync {
    /// The kind's name.
    fn kind(&self) -> &'static str;
    /// The journal's and metrics' kind.
    fn resource_kind(&self) -> ResourceKind;
    /// The op as JSON (`plan --output json`).
    fn to_json(&self) -> serde_json::Value;
    /// Carries it out.
    async fn apply(&self, cx: &ApplyCx<'_>) -> Result<Outcome, EngineError>;
    /// The typed op, for tests.
    fn as_any(&self) -> &dyn std::any::Any;
    /// [`Kind::starts_early`].
    fn starts_early(&self) -> bool {
        false
    }
    /// The kind that planned it, which carries out its undo records; `None` for a change no
    /// kind planned (a destroy's deletes, which journal no undo).
    fn planned_by(&self) -> Option<Arc<dyn DynKind>> {
        None
    }
}

struct Bound<K: Kind> {
    kind: Arc<K>,
    op: K::Op,
}

impl<K: Kind> fmt::Debug for Bound<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?}", self.kind.name(), self.op)
    }
}

#[async_trait]
impl<K: Kind> DynOp for Bound<K> {
    fn kind(&self) -> &'static str {
        self.kind.name()
    }
    fn resource_kind(&self) -> ResourceKind {
        self.kind.resource_kind()
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.op).unwrap_or_else(
            |e| serde_json::json!({"error": format!("cannot show this change: {e}")}),
        )
    }
    async fn apply(&self, cx: &ApplyCx<'_>) -> Result<Outcome, EngineError> {
        self.kind.apply(&self.op, cx).await
    }
    fn as_any(&self) -> &dyn std::any::Any {
        &self.op
    }
    fn starts_early(&self) -> bool {
        self.kind.starts_early(&self.op)
    }
    fn planned_by(&self) -> Option<Arc<dyn DynKind>> {
        Some(Arc::new(Erased(Arc::clone(&self.kind))))
    }
}

/// A kind behind [`DynKind`].
pub(crate) struct Erased<K: Kind>(pub Arc<K>);

#[async_trait]
impl<K: Kind> DynKind for Erased<K> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn validate(&self, desired: &DesiredWorkspace) -> Vec<String> {
        self.0.validate(desired)
    }
    fn section(&self) -> Option<Section> {
        self.0.section()
    }
    async fn undo(&self, undo: &Undo, cx: &UndoCx<'_>) -> Result<UndoOutcome, UndoError> {
        self.0.undo(undo, cx).await
    }
    async fn recover(
        &self,
        intent: &Intent,
        cx: &UndoCx<'_>,
    ) -> Result<Option<(ResourceRef, Undo)>, UndoError> {
        self.0.recover(intent, cx).await
    }
    async fn plan(
        &self,
        cx: &ReadCx<'_>,
        diff: &DiffCx,
    ) -> Result<Diff<Arc<dyn DynOp>>, EngineError> {
        let live = self.0.read(cx).await?;
        Ok(self.bind(self.0.diff(cx.desired, &live, diff)))
    }
    async fn plan_destroy(&self, cx: &ReadCx<'_>) -> Result<Diff<Arc<dyn DynOp>>, EngineError> {
        let live = self.0.read(cx).await?;
        Ok(self.bind(self.0.destroy(cx.desired, &live)))
    }
}

impl<K: Kind> Erased<K> {
    /// The kind's changes with their ops bound to it.
    fn bind(&self, d: Diff<K::Op>) -> Diff<Arc<dyn DynOp>> {
        Diff {
            changes: d
                .changes
                .into_iter()
                .map(|p| Planned {
                    action: p.action,
                    key: p.key,
                    target: p.target,
                    detail: p.detail,
                    needs: p.needs,
                    op: Arc::new(Bound {
                        kind: Arc::clone(&self.0),
                        op: p.op,
                    }) as Arc<dyn DynOp>,
                })
                .collect(),
            unmanaged: d.unmanaged,
        }
    }
}
