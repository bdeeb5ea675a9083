//! `fabrik destroy`: removes what the configuration describes, never what it does not.

use fabrik_client::{FabricClient, ItemFilter};
use futures::TryStreamExt;

use super::{EngineError, ctx};
use crate::config::Desired;

/// What destroy did to one workspace.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Destroyed {
    /// Workspace name.
    pub workspace: String,
    /// Resources removed.
    pub removed: Vec<String>,
    /// Whether the workspace itself was deleted (only when nothing unmanaged was left in it).
    pub workspace_deleted: bool,
    /// Resources left because the config does not describe them.
    pub kept: Vec<String>,
}

/// Removes what the config describes: managed items, role assignments and the git connection,
/// or the whole workspace when nothing the config does not describe is in it.
pub async fn destroy(
    client: &FabricClient,
    desired: &Desired,
) -> Result<Vec<Destroyed>, EngineError> {
    let all: Vec<_> = client
        .list_workspaces()
        .try_collect()
        .await
        .map_err(ctx("listing workspaces"))?;
    let mut out = Vec::new();
    for d in &desired.workspaces {
        let Some(w) = all
            .iter()
            .find(|w| w.display_name.eq_ignore_ascii_case(&d.name))
        else {
            continue;
        };
        let items: Vec<_> = client
            .list_items(&w.id, &ItemFilter::default())
            .try_collect()
            .await
            .map_err(ctx(format!("listing items of {}", d.name)))?;
        let mut done = Destroyed {
            workspace: d.name.clone(),
            removed: vec![],
            workspace_deleted: false,
            kept: vec![],
        };
        let label = |i: &fabrik_client::models::Item| {
            format!("{} {}", i.kind.as_str().to_lowercase(), i.display_name)
        };
        let managed = |i: &fabrik_client::models::Item| {
            d.items.iter().any(|m| {
                m.item_type == i.kind.as_str() && m.name.eq_ignore_ascii_case(&i.display_name)
            })
        };
        done.kept = items.iter().filter(|i| !managed(i)).map(label).collect();
        if done.kept.is_empty() {
            // Deleting the workspace removes everything in it at once.
            client
                .delete_workspace(&w.id)
                .await
                .map_err(ctx(format!("deleting workspace {}", d.name)))?;
            done.workspace_deleted = true;
            done.removed.push(format!("workspace {}", d.name));
            out.push(done);
            continue;
        }
        if d.git.is_some() {
            match client.git_disconnect(&w.id).await {
                Ok(()) => done.removed.push("git connection".into()),
                Err(e)
                    if e.status() == Some(404)
                        || e.error_code() == Some("WorkspaceNotConnectedToGit") => {}
                Err(e) => return Err(ctx(format!("disconnecting git of {}", d.name))(e)),
            }
        }
        for i in items.iter().filter(|i| managed(i)) {
            match client.delete_item(&w.id, &i.id).await {
                Ok(()) => done.removed.push(label(i)),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(ctx(format!("deleting {}", label(i)))(e)),
            }
        }
        let roles: Vec<_> = client
            .list_role_assignments(&w.id)
            .try_collect()
            .await
            .map_err(ctx(format!("listing role assignments of {}", d.name)))?;
        for p in &d.principals {
            if roles
                .iter()
                .any(|r| r.principal.id.eq_ignore_ascii_case(&p.id))
            {
                match client.delete_role_assignment(&w.id, &p.id).await {
                    Ok(()) => done.removed.push(format!("role of {} {}", p.kind, p.id)),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(ctx(format!("removing the role of {}", p.id))(e)),
                }
            }
        }
        out.push(done);
    }
    Ok(out)
}
