//! `GET /v1/operations/{id}` and `/result`: status derived from the clock, never stored.

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

use super::{S, json, retry_after_secs};
use crate::error::ApiError;
use crate::server::Ctx;
use crate::store::operation_state;
use crate::util::parse_id;

fn not_found(raw: &str) -> ApiError {
    ApiError::not_found("EntityNotFound", "operation", raw)
}

pub(crate) async fn state(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let oid = parse_id(&id, "EntityNotFound", "operation")?;
    let store = s.read();
    let op = store.operations.get(&oid).ok_or_else(|| not_found(&id))?;
    let (body, done) = operation_state(op, s.now(), s.config.lro_delay);
    let mut r = json(StatusCode::OK, &body);
    let h = r.headers_mut();
    // While running: poll here again; once done with a result: fetch it. None otherwise.
    let location = match (done, op.result.is_some() && op.error.is_none()) {
        (false, _) => Some(format!("{}/v1/operations/{oid}", ctx.origin)),
        (true, true) => Some(format!("{}/v1/operations/{oid}/result", ctx.origin)),
        (true, false) => None,
    };
    if let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&oid.to_string()) {
        h.insert("x-ms-operation-id", v);
    }
    if !done {
        let secs = op.retry_after.unwrap_or_else(|| retry_after_secs(&s));
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    Ok(r)
}

pub(crate) async fn result(State(s): S, Path(id): Path<String>) -> Result<Response, ApiError> {
    let oid = parse_id(&id, "EntityNotFound", "operation")?;
    let store = s.read();
    let op = store.operations.get(&oid).ok_or_else(|| not_found(&id))?;
    let (_, done) = operation_state(op, s.now(), s.config.lro_delay);
    if !done {
        return Err(ApiError::bad_request(
            "OperationNotCompleted",
            format!("Operation '{id}' has not completed yet"),
        ));
    }
    match (&op.result, &op.error) {
        (Some(r), None) => Ok(json(StatusCode::OK, r)),
        _ => Err(ApiError::bad_request(
            "OperationHasNoResult",
            format!("Operation '{id}' has no result"),
        )),
    }
}
