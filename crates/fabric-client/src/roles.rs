//! Role assignments made idempotent: adding a role the principal already has resolves to the
//! existing assignment, so the call is safe to repeat after an ambiguous failure (a 5xx or a
//! dropped connection after the server applied it).

use reqwest::Method;

use crate::client::FabricClient;
use crate::error::FabricError;
use crate::idempotent::{Ensured, Origin};
use crate::models::{AddRoleAssignmentRequest, RoleAssignment};

const ROLES: &str = "/workspaces/{workspaceId}/roleAssignments";
const ROLE: &str = "/workspaces/{workspaceId}/roleAssignments/{workspaceRoleAssignmentId}";

impl FabricClient {
    /// Gives a principal a role, or finds that it already has an assignment. Marked idempotent
    /// for the retry policy: a repeat after an ambiguous failure answers 409, which resolves to
    /// the assignment the first attempt made (`Origin::Recovered`), or one that was there
    /// before (`Origin::AlreadyExisted`) when no attempt of this call failed ambiguously.
    pub async fn ensure_role_assignment(
        &self,
        workspace_id: &str,
        request: &AddRoleAssignmentRequest,
    ) -> Result<Ensured<RoleAssignment>, FabricError> {
        let call = self
            .call(Method::POST, ROLES, &[workspace_id])
            .json(request)?
            .idempotent(true);
        match self.fetch::<RoleAssignment>(call).await {
            Ok(value) => Ok(Ensured {
                value,
                origin: Origin::Created,
            }),
            Err(e) => {
                // The assignment id is the principal id.
                let lookup = || async {
                    let get = self.call(Method::GET, ROLE, &[workspace_id, &request.principal.id]);
                    match self.fetch::<RoleAssignment>(get).await {
                        Ok(found) => Ok(Some(found)),
                        Err(e) if e.is_not_found() => Ok(None),
                        Err(e) => Err(e),
                    }
                };
                self.resolve(e, lookup).await
            }
        }
    }
}
