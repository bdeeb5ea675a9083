//! Long-running operation state and the service's error body.

use serde::{Deserialize, Serialize};

use super::common::{Timestamp, null_as_default, open_enum};

open_enum! {
    /// Status of a long-running operation.
    pub enum OperationStatus {
        /// Unknown yet.
        Undefined,
        /// Queued.
        NotStarted,
        /// Running.
        Running,
        /// Done; fetch the result if there is one.
        Succeeded,
        /// Failed; `error` says why.
        Failed,
    }
}

impl OperationStatus {
    /// Whether the operation is over (succeeded or failed). Unknown values are not terminal:
    /// the poller keeps polling until the deadline rather than guess.
    pub fn is_terminal(&self) -> bool {
        matches!(self, OperationStatus::Succeeded | OperationStatus::Failed)
    }
}

/// State of a long-running operation (`GET /operations/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationState {
    /// Status.
    pub status: OperationStatus,
    /// When it started (the real service sends no zone and 7 fractional digits).
    #[serde(default)]
    pub created_time_utc: Option<Timestamp>,
    /// When it last changed.
    #[serde(default)]
    pub last_updated_time_utc: Option<Timestamp>,
    /// Progress, 0..=100 (often null).
    #[serde(default)]
    pub percent_complete: Option<i32>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<ErrorResponse>,
}

/// The resource an error is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorRelatedResource {
    /// Its id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub resource_id: String,
    /// Its type.
    #[serde(default, deserialize_with = "null_as_default")]
    pub resource_type: String,
}

/// One additional error detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// Stable error code.
    #[serde(default, deserialize_with = "null_as_default")]
    pub error_code: String,
    /// Human-readable message.
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
    /// Resource concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_resource: Option<ErrorRelatedResource>,
}

/// The service's error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorResponse {
    /// Stable error code: use it for logic.
    #[serde(default, deserialize_with = "null_as_default")]
    pub error_code: String,
    /// Human-readable message: may change, don't parse.
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
    /// Request id (also in the `RequestId` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// More details.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub more_details: Vec<ErrorDetail>,
    /// Resource concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_resource: Option<ErrorRelatedResource>,
    /// Whether the service says retrying may help.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_retriable: Option<bool>,
}
