//! A workspace's git connection, made after the workspace's items. A connection to somewhere
//! else is reported, never replaced: disconnecting loses the workspace's sync state.

use async_trait::async_trait;
use fabrik_client::models::{
    GitConnectRequest, GitCredentials, GitCredentialsSource, GitProviderDetails, GitProviderType,
};
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo, UndoError, UndoOutcome};
use serde::{Deserialize, Serialize};

use crate::config::DesiredWorkspace;
use crate::config::model::Git;
use crate::engine::{
    ApplyCx, Diff, DiffCx, EngineError, Kind, Need, Outcome, Planned, ReadCx, UndoCx, ctx, settle,
};
use crate::plan::Action;

/// Git connections.
#[derive(Debug, Clone, Copy)]
pub struct GitKind;

/// The kind's name in addresses and journals.
pub const NAME: &str = "git";

/// How a git connection is undone (the kind's journaled payload): disconnect what was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum GitUndo {
    /// Disconnect the workspace.
    Disconnect {
        /// The workspace.
        workspace_id: String,
    },
}

/// Connect the workspace to git.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectGit {
    /// Provider.
    pub provider: String,
    /// Repository.
    pub repository: String,
    /// Branch.
    pub branch: String,
    /// The connection (credentials are not shown).
    #[serde(skip)]
    pub git: Git,
}

/// Git connections compare by where they point; the credentials' connection is not readable back.
fn same_git(live: &Git, want: &Git) -> bool {
    Git {
        connection_id: None,
        ..want.clone()
    } == Git {
        connection_id: None,
        ..live.clone()
    }
}

#[async_trait]
impl Kind for GitKind {
    type Live = Option<Git>;
    type Op = ConnectGit;

    fn name(&self) -> &'static str {
        NAME
    }

    fn resource_kind(&self) -> ResourceKind {
        ResourceKind::GitConnection
    }

    async fn read(&self, cx: &ReadCx<'_>) -> Result<Self::Live, EngineError> {
        let Some(id) = cx.workspace_id() else {
            return Ok(None);
        };
        // Only workspaces whose configuration has git are asked: the call is one more per
        // workspace, and an unconfigured connection is not fabrik's to report.
        if cx.desired.git.is_none() {
            return Ok(None);
        }
        match cx.client.git_connection(id).await {
            Ok(c) => Ok(c.git_provider_details.map(|d| Git {
                provider: d.git_provider_type.as_str().to_string(),
                owner: d.owner_name,
                organization: d.organization_name,
                project: d.project_name,
                repository: d.repository_name,
                branch: d.branch_name,
                directory: d.directory_name,
                connection_id: None,
            })),
            Err(e)
                if e.status() == Some(404)
                    || e.error_code() == Some("WorkspaceNotConnectedToGit") =>
            {
                Ok(None)
            }
            Err(e) => Err(ctx(format!(
                "reading the git connection of {}",
                cx.desired.name
            ))(e)),
        }
    }

    fn diff(&self, desired: &DesiredWorkspace, live: &Option<Git>, _: &DiffCx) -> Diff<ConnectGit> {
        let mut d = Diff::default();
        let Some(g) = &desired.git else { return d };
        match live {
            None => d.changes.push(Planned {
                action: Action::Create,
                key: desired.name.clone(),
                target: format!(
                    "git connection {}/{}@{}",
                    g.owner.as_deref().or(g.organization.as_deref()).unwrap_or(""),
                    g.repository,
                    g.branch
                ),
                detail: None,
                needs: vec![Need::EverythingIn(desired.name.clone())],
                op: ConnectGit {
                    provider: g.provider.clone(),
                    repository: g.repository.clone(),
                    branch: g.branch.clone(),
                    git: g.clone(),
                },
            }),
            Some(l) if !same_git(l, g) => d.unmanaged.push(format!(
                "git connection differs ({}@{} in Fabric); disconnect it to let fabrik connect the configured one",
                l.repository, l.branch
            )),
            Some(_) => {}
        }
        d
    }

    async fn apply(&self, op: &ConnectGit, cx: &ApplyCx<'_>) -> Result<Outcome, EngineError> {
        let ws = cx.workspace_id()?;
        let git = &op.git;
        cx.track(
            ResourceRef::in_workspace(ResourceKind::GitConnection, &ws, &ws, None),
            Undo::new(
                NAME,
                &GitUndo::Disconnect {
                    workspace_id: ws.clone(),
                },
            ),
        )
        .await?;
        let req = GitConnectRequest {
            git_provider_details: GitProviderDetails {
                git_provider_type: GitProviderType::from(git.provider.as_str()),
                repository_name: git.repository.clone(),
                branch_name: git.branch.clone(),
                directory_name: git.directory.clone(),
                organization_name: git.organization.clone(),
                project_name: git.project.clone(),
                owner_name: git.owner.clone(),
                custom_domain_name: None,
            },
            my_git_credentials: git.connection_id.as_ref().map(|id| GitCredentials {
                source: GitCredentialsSource::ConfiguredConnection,
                connection_id: Some(id.clone()),
            }),
        };
        match cx.client.git_connect(&ws, &req).await {
            Ok(()) => Ok(Outcome::Created),
            Err(e) if e.error_code() == Some("WorkspaceAlreadyConnectedToGit") => {
                Ok(Outcome::Existed)
            }
            Err(e) => Err(ctx(format!("connecting git for {}", cx.workspace))(e)),
        }
    }

    async fn undo(&self, undo: &Undo, cx: &UndoCx<'_>) -> Result<UndoOutcome, UndoError> {
        let GitUndo::Disconnect { workspace_id } = undo.payload_as()?;
        settle(
            cx.client.git_disconnect(&workspace_id).await,
            &["WorkspaceNotConnectedToGit"],
        )
    }
}
