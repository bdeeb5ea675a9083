//! The Fabric `ErrorResponse`, built in one place.
//!
//! Handlers return [`ApiError`]; its `IntoResponse` only stashes the error in the response
//! extensions, and the request middleware renders the body once it knows the request id. So
//! every error — from a handler, the auth check, the throttle, a fault or an axum extractor —
//! leaves the server with the same shape, the `RequestId` header and
//! `x-ms-public-api-error-code`.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

/// One entry of `moreDetails`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorDetail {
    pub(crate) error_code: String,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) related_resource: Option<RelatedResource>,
}

/// `ErrorRelatedResource`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RelatedResource {
    pub(crate) resource_id: String,
    pub(crate) resource_type: String,
}

/// An error as the Fabric API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) details: Vec<ErrorDetail>,
    pub(crate) related: Option<Box<RelatedResource>>,
    pub(crate) retriable: bool,
    /// Seconds for a `Retry-After` header (throttling, injected 5xx).
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            related: None,
            retriable: status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error(),
            retry_after: None,
        }
    }

    /// A 400 `InvalidInput` with one detail naming what was wrong, as the service reports a
    /// request body or parameter that fails validation.
    pub(crate) fn invalid_input(detail_code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            "The request has an invalid input",
        )
        .with_detail(detail_code, detail)
    }

    /// A 400 for a bad request body (malformed JSON, wrong type, missing field).
    pub(crate) fn bad_body(detail: impl Into<String>) -> Self {
        Self::invalid_input("InvalidParameter", detail)
    }

    pub(crate) fn not_found(code: &'static str, what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            code,
            format!("The requested {what} was not found"),
        )
        .related(id, what_to_type(what))
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn with_detail(mut self, code: &str, message: impl Into<String>) -> Self {
        self.details.push(ErrorDetail {
            error_code: code.to_string(),
            message: message.into(),
            related_resource: None,
        });
        self
    }

    pub(crate) fn related(mut self, id: &str, resource_type: &str) -> Self {
        self.related = Some(Box::new(RelatedResource {
            resource_id: id.to_string(),
            resource_type: resource_type.to_string(),
        }));
        self
    }

    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The JSON body, with the request id of the response it goes into.
    pub(crate) fn body(&self, request_id: &str) -> serde_json::Value {
        let mut body = serde_json::json!({
            "requestId": request_id,
            "errorCode": self.code,
            "message": self.message,
            "isRetriable": self.retriable,
        });
        if !self.details.is_empty() {
            body["moreDetails"] = serde_json::to_value(&self.details).unwrap_or_default();
        }
        if let Some(r) = &self.related {
            body["relatedResource"] = serde_json::to_value(r).unwrap_or_default();
        }
        body
    }

    /// The finished response: body, `RequestId`, `x-ms-public-api-error-code`, `Retry-After`.
    pub(crate) fn render(&self, request_id: &str) -> Response {
        let bytes = serde_json::to_vec(&self.body(request_id)).unwrap_or_default();
        let mut resp = (self.status, bytes).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, crate::util::JSON.clone());
        if let Ok(v) = HeaderValue::from_str(self.code) {
            h.insert("x-ms-public-api-error-code", v);
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

fn what_to_type(what: &str) -> &'static str {
    match what {
        "workspace" => "Workspace",
        "item" => "Item",
        "folder" => "Folder",
        "capacity" => "Capacity",
        "operation" => "Operation",
        "role assignment" => "WorkspaceRoleAssignment",
        _ => "Resource",
    }
}

/// Marker the middleware looks for: the error a handler returned, rendered later.
#[derive(Debug, Clone)]
pub(crate) struct PendingError(pub(crate) ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = Response::new(axum::body::Body::empty());
        *resp.status_mut() = self.status;
        resp.extensions_mut().insert(PendingError(self));
        resp
    }
}

/// The error code the service would use for a bare status (for axum's own rejections).
pub(crate) fn from_status(status: StatusCode, text: &str) -> ApiError {
    let code = match status {
        StatusCode::NOT_FOUND => "EntityNotFound",
        StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
        StatusCode::PAYLOAD_TOO_LARGE => "RequestBodyTooLarge",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
        s if s.is_server_error() => "UnknownError",
        _ => "InvalidInput",
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text.to_string()
    };
    ApiError::new(status, code, message)
}
