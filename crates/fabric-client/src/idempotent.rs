//! Get-or-create by display name: creates that clash with an existing resource (409,
//! `ItemDisplayNameAlreadyInUse`, `WorkspaceNameAlreadyExists`), or that failed after the
//! server may have applied them, resolve to the existing resource instead of failing or
//! creating a duplicate. These creates are marked idempotent for the policy, since a
//! repeat can only clash, and a clash resolves here.

use futures::TryStreamExt;

use crate::api::ItemFilter;
use crate::client::FabricClient;
use crate::error::FabricError;
use crate::models::{
    CreateFolderRequest, CreateItemRequest, CreateWorkspaceRequest, Folder, Item, Workspace,
};

/// How [`Ensured`] came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// This call created it.
    Created,
    /// The create clashed with a resource of the same name that was already there.
    AlreadyExisted,
    /// The create failed ambiguously (no answer, timeout, 5xx) but the resource exists: the
    /// server most likely applied this call's create.
    Recovered,
}

/// A resource that exists now, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Ensured<T> {
    /// The resource.
    pub value: T,
    /// Whether it was created, found, or recovered.
    pub origin: Origin,
}

impl<T> Ensured<T> {
    /// Whether this call (most likely) created it: what a rollback should undo.
    pub fn created_here(&self) -> bool {
        matches!(self.origin, Origin::Created | Origin::Recovered)
    }
}

/// Exact name match first; the service compares names case-insensitively, so fall back to that.
fn by_name<'a, T>(items: &'a [T], name: &str, name_of: impl Fn(&T) -> &str) -> Option<&'a T> {
    items
        .iter()
        .find(|t| name_of(t) == name)
        .or_else(|| items.iter().find(|t| name_of(t).eq_ignore_ascii_case(name)))
}

impl FabricClient {
    /// Resolves a failed create: looks the resource up when the failure says it may exist.
    pub(crate) async fn resolve<T, F, Fut>(
        &self,
        err: FabricError,
        lookup: F,
    ) -> Result<Ensured<T>, FabricError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, FabricError>>,
    {
        // A clash on a repeated attempt is most likely with what an earlier attempt made.
        let repeated = err.api().is_some_and(|a| a.attempt > 1);
        let origin = if err.is_name_conflict() && !repeated {
            Origin::AlreadyExisted
        } else if err.is_name_conflict() || err.may_have_applied() {
            Origin::Recovered
        } else {
            return Err(err);
        };
        match lookup().await {
            Ok(Some(value)) => {
                tracing::info!(error = %err, ?origin, "create resolved to the existing resource");
                Ok(Ensured { value, origin })
            }
            // Not there (or the lookup failed too): the create's own error says most.
            Ok(None) | Err(_) => Err(err),
        }
    }

    /// The workspace called `request.display_name`, created if it does not exist.
    pub async fn get_or_create_workspace(
        &self,
        request: &CreateWorkspaceRequest,
    ) -> Result<Ensured<Workspace>, FabricError> {
        match self.create_workspace_as(request, true).await {
            Ok(value) => Ok(Ensured {
                value,
                origin: Origin::Created,
            }),
            Err(e) => {
                self.resolve(e, || self.find_workspace(&request.display_name))
                    .await
            }
        }
    }

    /// The workspace called `name`, if the caller can see one.
    pub async fn find_workspace(&self, name: &str) -> Result<Option<Workspace>, FabricError> {
        let all: Vec<Workspace> = self.list_workspaces().try_collect().await?;
        Ok(by_name(&all, name, |w| &w.display_name).cloned())
    }

    /// The item of `request.kind` called `request.display_name` in a workspace, created (with
    /// the request's definition) if it does not exist. An existing item is returned as it is.
    pub async fn get_or_create_item(
        &self,
        workspace_id: &str,
        request: &CreateItemRequest,
    ) -> Result<Ensured<Item>, FabricError> {
        let Some(kind) = request.kind.clone() else {
            return Err(FabricError::InvalidRequest(
                "get_or_create_item needs the item type".into(),
            ));
        };
        match self.create_item_as(workspace_id, request, true).await {
            Ok(value) => Ok(Ensured {
                value,
                origin: Origin::Created,
            }),
            Err(e) => {
                let lookup = || async {
                    let items: Vec<Item> = self
                        .list_items(workspace_id, &ItemFilter::of_type(kind.clone()))
                        .try_collect()
                        .await?;
                    Ok(by_name(&items, &request.display_name, |i| &i.display_name)
                        .filter(|i| i.kind == kind)
                        .cloned())
                };
                self.resolve(e, lookup).await
            }
        }
    }

    /// The folder called `request.display_name` under `request.parent_folder_id`, created if it
    /// does not exist.
    pub async fn get_or_create_folder(
        &self,
        workspace_id: &str,
        request: &CreateFolderRequest,
    ) -> Result<Ensured<Folder>, FabricError> {
        match self.create_folder_as(workspace_id, request, true).await {
            Ok(value) => Ok(Ensured {
                value,
                origin: Origin::Created,
            }),
            Err(e) => {
                let lookup = || async {
                    let folders: Vec<Folder> =
                        self.list_folders(workspace_id).try_collect().await?;
                    let siblings: Vec<Folder> = folders
                        .into_iter()
                        .filter(|f| f.parent_folder_id == request.parent_folder_id)
                        .collect();
                    Ok(by_name(&siblings, &request.display_name, |f| &f.display_name).cloned())
                };
                self.resolve(e, lookup).await
            }
        }
    }
}
