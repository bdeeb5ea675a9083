//! The client's error type and its classification for resilience policies.

use std::fmt;
use std::time::Duration;

use fabrik_core::policy::Rejection;
use fabrik_core::{AuthError, Classify, ErrorClass};

use crate::models::{ErrorDetail, ErrorRelatedResource, ErrorResponse};

/// An error answer from the service: HTTP status plus the decoded error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable error code (from the body, else the `x-ms-public-api-error-code` header).
    pub error_code: String,
    /// Human-readable message.
    pub message: String,
    /// The service's request id (body, else `RequestId` header).
    pub request_id: Option<String>,
    /// The id this client sent as `x-ms-client-request-id`.
    pub client_request_id: Option<String>,
    /// More details.
    pub more_details: Vec<ErrorDetail>,
    /// Resource concerned.
    pub related_resource: Option<ErrorRelatedResource>,
    /// Whether the service says retrying may help.
    pub is_retriable: Option<bool>,
    /// The service's wait hint (`Retry-After` and friends).
    pub retry_after: Option<Duration>,
    /// The call, as `METHOD /route/{template}`.
    pub operation: String,
    /// Which attempt of the call got this answer (from 1; more under a retry policy).
    pub attempt: u32,
}

impl ApiError {
    pub(crate) fn from_body(status: u16, body: Option<ErrorResponse>) -> Self {
        let body = body.unwrap_or(ErrorResponse {
            error_code: String::new(),
            message: String::new(),
            request_id: None,
            more_details: Vec::new(),
            related_resource: None,
            is_retriable: None,
        });
        Self {
            status,
            error_code: body.error_code,
            message: body.message,
            request_id: body.request_id,
            client_request_id: None,
            more_details: body.more_details,
            related_resource: body.related_resource,
            is_retriable: body.is_retriable,
            retry_after: None,
            operation: String::new(),
            attempt: 1,
        }
    }

    /// The class: the status decides (core's one mapping), except that the service's explicit
    /// `isRetriable` overrides a plain transient/permanent verdict. 429 and 408 keep their class.
    pub fn class(&self) -> ErrorClass {
        let by_status = ErrorClass::from_status(self.status);
        match (by_status, self.is_retriable) {
            (ErrorClass::Transient, Some(false)) => ErrorClass::Permanent,
            (ErrorClass::Permanent, Some(true)) => ErrorClass::Transient,
            (class, _) => class,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed with HTTP {}", self.operation, self.status)?;
        if !self.error_code.is_empty() {
            write!(f, " {}", self.error_code)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        for d in &self.more_details {
            write!(f, " [{}: {}]", d.error_code.trim(), d.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (requestId {id})")?;
        }
        Ok(())
    }
}

/// Everything a Fabric call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FabricError {
    /// The service answered with an error status.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// A long-running operation ended in `Failed`.
    #[error("{operation} failed: long-running operation {operation_id} failed{}", .error.as_ref().map(|e| format!(" with {}: {}", e.error_code, e.message)).unwrap_or_default())]
    OperationFailed {
        /// The initiating call.
        operation: String,
        /// The operation id.
        operation_id: String,
        /// The operation's error, if it gave one.
        error: Option<Box<ErrorResponse>>,
    },
    /// A long-running operation did not finish before the caller's deadline.
    #[error(
        "{operation}: long-running operation {operation_id} still {status} when the {deadline:?} deadline passed"
    )]
    OperationTimedOut {
        /// The initiating call.
        operation: String,
        /// The operation id.
        operation_id: String,
        /// Its last status.
        status: String,
        /// The deadline the caller set.
        deadline: Duration,
    },
    /// The request did not get an answer (connection refused or reset, TLS, DNS, body cut).
    #[error("{operation}: transport error: {message}")]
    Transport {
        /// The call.
        operation: String,
        /// What happened.
        message: String,
    },
    /// The call's own time limit passed before an answer.
    #[error("{operation}: no answer within {after:?}")]
    Timeout {
        /// The call.
        operation: String,
        /// The limit.
        after: Duration,
    },
    /// The answer could not be read as the expected type.
    #[error("{operation}: cannot read HTTP {status} response: {message}")]
    Decode {
        /// The call.
        operation: String,
        /// HTTP status of the answer.
        status: u16,
        /// What did not parse.
        message: String,
    },
    /// No token could be had.
    #[error("cannot get a token: {0}")]
    Auth(#[from] AuthError),
    /// The resilience policy refused to make (another) attempt.
    #[error("{operation}: {rejection}{}", last_attempt(.last.as_deref()))]
    Rejected {
        /// The call.
        operation: String,
        /// Why.
        rejection: Rejection,
        /// The last attempt's own error, when it ended with one (not when it timed out).
        #[source]
        last: Option<Box<FabricError>>,
    },
    /// A URL given to or by the service is unusable or not allowed (plain http off loopback).
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// A request body could not be serialized, or the client was misconfigured.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

/// Names the last attempt's error in a refusal's message: "budget exhausted" alone does not
/// say what kept failing.
fn last_attempt(last: Option<&FabricError>) -> String {
    last.map(|e| format!("; last attempt: {e}"))
        .unwrap_or_default()
}

impl FabricError {
    /// The HTTP status, for errors the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            FabricError::Api(e) => Some(e.status),
            FabricError::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The service's error code: of the answer, or of a failed operation.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            FabricError::Api(e) if !e.error_code.is_empty() => Some(&e.error_code),
            FabricError::OperationFailed { error: Some(e), .. } => Some(&e.error_code),
            _ => None,
        }
    }

    /// The service's request id, when it gave one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            FabricError::Api(e) => e.request_id.as_deref(),
            FabricError::OperationFailed { error: Some(e), .. } => e.request_id.as_deref(),
            _ => None,
        }
    }

    /// The API error, if the service answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            FabricError::Api(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the resource does not exist (404, or a `*NotFound` error code).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404) || self.error_code().is_some_and(|c| c.ends_with("NotFound"))
    }

    /// Whether the service refused the request as not supported for the item
    /// (`OperationNotSupportedForItem`, a 4xx): the caller can do it another way (per-item
    /// `getDefinition` instead of a bulk export). Throttling (429) never is.
    pub fn is_not_supported(&self) -> bool {
        self.status()
            .is_some_and(|s| (400..500).contains(&s) && s != 429)
            && self.error_code() == Some("OperationNotSupportedForItem")
    }

    /// Whether a create clashed with an existing resource of the same name.
    pub fn is_name_conflict(&self) -> bool {
        const CODES: [&str; 5] = [
            "ItemDisplayNameAlreadyInUse",
            "WorkspaceNameAlreadyExists",
            "PotentialDuplicateDisplayNameAndType",
            "FolderDisplayNameAlreadyInUse",
            "PrincipalAlreadyHasWorkspaceRolePermissions",
        ];
        self.status() == Some(409) || self.error_code().is_some_and(|c| CODES.contains(&c))
    }

    /// Whether the server may have applied the request although the call failed: no answer,
    /// a timeout, a gateway error, or a refusal after attempts were made. A create that fails
    /// so must be checked before it is retried or reported.
    pub fn may_have_applied(&self) -> bool {
        match self {
            FabricError::Transport { message, .. } if untrusted_certificate(message) => false,
            FabricError::Transport { .. }
            | FabricError::Timeout { .. }
            | FabricError::OperationTimedOut { .. } => true,
            FabricError::Api(e) => e.status >= 500,
            FabricError::Rejected { rejection, .. } => !matches!(
                rejection,
                Rejection::CircuitOpen { .. }
                    | Rejection::CircuitIsolated { .. }
                    | Rejection::Bulkhead { .. }
            ),
            _ => false,
        }
    }
}

/// Whether a transport failure is the server's certificate not being trusted (rustls says
/// "invalid peer certificate"; the message holds the whole source chain). Retrying cannot fix
/// that, and with 10 attempts it would only delay the error by minutes; nothing was sent.
fn untrusted_certificate(message: &str) -> bool {
    message.contains("invalid peer certificate")
}

impl Classify for FabricError {
    fn class(&self) -> ErrorClass {
        match self {
            FabricError::Api(e) => e.class(),
            FabricError::Transport { message, .. } if untrusted_certificate(message) => {
                ErrorClass::Permanent
            }
            FabricError::Transport { .. } => ErrorClass::Transient,
            FabricError::Timeout { .. } => ErrorClass::Timeout,
            FabricError::Auth(e) => e.class(),
            FabricError::Rejected { rejection, .. } => rejection.class(),
            FabricError::OperationTimedOut { .. } => ErrorClass::Timeout,
            FabricError::OperationFailed { error, .. } => match error.as_deref() {
                Some(ErrorResponse {
                    is_retriable: Some(true),
                    ..
                }) => ErrorClass::Transient,
                _ => ErrorClass::Permanent,
            },
            FabricError::Decode { .. }
            | FabricError::InvalidUrl(_)
            | FabricError::InvalidRequest(_) => ErrorClass::Permanent,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            FabricError::Api(e) => e.retry_after,
            FabricError::Rejected { rejection, .. } => rejection.retry_after(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str, retriable: Option<bool>) -> FabricError {
        let mut e = ApiError::from_body(status, None);
        e.error_code = code.to_owned();
        e.is_retriable = retriable;
        e.retry_after = Some(Duration::from_secs(7));
        FabricError::Api(Box::new(e))
    }

    #[test]
    fn classification_follows_status_and_the_services_retriable_flag() {
        assert_eq!(
            api(429, "RequestBlocked", None).class(),
            ErrorClass::Throttled
        );
        assert_eq!(
            api(429, "RequestBlocked", Some(false)).class(),
            ErrorClass::Throttled
        );
        assert_eq!(
            api(429, "x", None).retry_after(),
            Some(Duration::from_secs(7))
        );
        assert_eq!(api(408, "x", None).class(), ErrorClass::Timeout);
        assert_eq!(api(503, "x", None).class(), ErrorClass::Transient);
        assert_eq!(api(500, "x", Some(false)).class(), ErrorClass::Permanent);
        assert_eq!(
            api(400, "BadRequest", Some(false)).class(),
            ErrorClass::Permanent
        );
        assert_eq!(
            api(409, "WorkspacePreviousOperationInProgress", Some(true)).class(),
            ErrorClass::Transient
        );
        assert_eq!(
            api(404, "ItemNotFound", None).class(),
            ErrorClass::Permanent
        );
        let transport = FabricError::Transport {
            operation: "GET /v1/x".into(),
            message: "connection reset".into(),
        };
        assert_eq!(transport.class(), ErrorClass::Transient);
        assert!(transport.may_have_applied());
        let untrusted = FabricError::Transport {
            operation: "GET /v1/x".into(),
            message: "error sending request: client error (Connect): invalid peer certificate: UnknownIssuer".into(),
        };
        assert_eq!(untrusted.class(), ErrorClass::Permanent);
        assert!(!untrusted.may_have_applied());
        let rejected = FabricError::Rejected {
            operation: "GET /v1/x".into(),
            rejection: Rejection::CircuitOpen {
                key: "k".into(),
                retry_in: Duration::from_secs(1),
            },
            last: None,
        };
        // An open circuit ends at a known time: transient, with that time as the hint.
        assert_eq!(rejected.class(), ErrorClass::Transient);
        assert_eq!(rejected.retry_after(), Some(Duration::from_secs(1)));
        assert!(!rejected.may_have_applied());
        let decode = FabricError::Decode {
            operation: "GET /v1/x".into(),
            status: 200,
            message: "eof".into(),
        };
        assert_eq!(decode.class(), ErrorClass::Permanent);
    }

    #[test]
    fn conflict_and_not_found_are_recognised_by_status_or_code() {
        assert!(api(409, "Whatever", None).is_name_conflict());
        assert!(api(400, "ItemDisplayNameAlreadyInUse", None).is_name_conflict());
        assert!(api(400, "WorkspaceNameAlreadyExists", None).is_name_conflict());
        assert!(!api(400, "InvalidRequest", None).is_name_conflict());
        assert!(api(404, "x", None).is_not_found());
        assert!(api(400, "WorkspaceNotFound", None).is_not_found());
        assert!(!api(400, "InvalidRequest", None).is_not_found());
        assert!(api(502, "x", None).may_have_applied());
        assert!(!api(400, "x", None).may_have_applied());
    }

    #[test]
    fn display_names_the_call_code_details_and_request_id() {
        let mut e = ApiError::from_body(
            400,
            Some(ErrorResponse {
                error_code: "BadRequest".into(),
                message: "invalid".into(),
                request_id: Some("r-1".into()),
                more_details: vec![ErrorDetail {
                    error_code: "RequestBodyValidationFailed ".into(),
                    message: "Target path doesn't exist".into(),
                    related_resource: None,
                }],
                related_resource: None,
                is_retriable: Some(false),
            }),
        );
        e.operation = "POST /v1/workspaces/{workspaceId}/items".into();
        assert_eq!(
            FabricError::Api(Box::new(e)).to_string(),
            "POST /v1/workspaces/{workspaceId}/items failed with HTTP 400 BadRequest: invalid \
             [RequestBodyValidationFailed: Target path doesn't exist] (requestId r-1)"
        );
    }
}
