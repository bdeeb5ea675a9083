//! Environment publish: `POST /environments/{id}/staging/publish` publishes what
//! `updateDefinition` staged. The publish is `Running` for the LRO delay, then `Success` —
//! or `Failed` when the request drew an `lro-fail` fault — and the item's
//! `properties.publishDetails` (typed GET and list) shows where it is, as the service does.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use super::props::{publish_details, publish_state};
use super::{S, json, start_timed_operation, ws_mut};
use crate::error::ApiError;
use crate::server::Ctx;
use crate::store::EnvPublish;
use crate::util::{parse_id, query_bool};

/// Marks a publish request that drew an `lro-fail` fault: it is carried out, and ends
/// `Failed`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublishFails;

pub(crate) async fn publish(
    State(s): S,
    Extension(ctx): Extension<Ctx>,
    fails: Option<Extension<PublishFails>>,
    Path((wsid, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    // `beta=true` is the preview contract: an immediate 200 with the details.
    let beta = query_bool(&q, "beta")?.unwrap_or(false);
    let now = s.now();
    let target_version = s.new_id();
    let mut store = s.write();
    let w = ws_mut(&mut store, &wsid)?;
    let iid = parse_id(&id, "ItemNotFound", "item")?;
    let i = w
        .items
        .get_mut(&iid)
        .filter(|i| i.item_type == "Environment")
        .ok_or_else(|| ApiError::not_found("ItemNotFound", "item", &id))?;
    if let Some(p) = i.extra.as_ref().and_then(|x| x.publish.as_ref())
        && publish_state(p, now, s.config.lro_delay) == "Running"
    {
        return Err(ApiError::bad_request(
            "EnvironmentAnotherOngoingPublishProcess",
            "Another publish of this environment is in progress",
        ));
    }
    let staged = i.definition.clone();
    // The environment reports the publish done when its operation is.
    let timing = s.lro_timing(crate::profile::LroKind::EnvironmentPublish);
    let x = i.extra_mut();
    x.publish = Some(EnvPublish {
        target_version,
        started_at: now,
        fails: fails.is_some(),
        duration: Some(timing.duration),
    });
    x.published = staged;
    let details = publish_details(&s, i);
    if beta {
        return Ok(json(StatusCode::OK, &json!({"publishDetails": details})));
    }
    let resp = start_timed_operation(&s, &mut store, &ctx, None, timing);
    if fails.is_some()
        && let Some(op) = resp
            .headers()
            .get("x-ms-operation-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| uuid::Uuid::parse_str(v).ok())
            .and_then(|op| store.operations.get_mut(&op))
    {
        op.error = Some(json!({
            "errorCode": "EnvironmentPublishFailed",
            "message": "The environment publish failed (injected fault)",
        }));
    }
    Ok(resp)
}
