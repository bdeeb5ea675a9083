//! Application Insights ingestion: `POST /v2/track` and `/v2.1/track` take envelopes (a JSON
//! array, or one JSON object per line; gzip or not), validate each as the service does — the
//! `iKey` must be a configured instrumentation key, the data must be a known type with its
//! required fields — and answer `{itemsReceived, itemsAccepted, errors}`: 200 when all were
//! accepted, 206 when some were, 400 when none were. Accepted envelopes are kept for
//! `GET /_emulator/telemetry`.

use std::io::Read as _;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::server::{LogEntry, Shared};

/// The answer when the body itself cannot be read.
fn rejected(message: &str) -> Response {
    crate::api::json(
        StatusCode::BAD_REQUEST,
        &json!({"itemsReceived": 0, "itemsAccepted": 0, "errors": [
            {"index": 0, "statusCode": 400, "message": message}
        ]}),
    )
}

/// Fields each data type must carry in `baseData`, as the ingestion service requires them.
fn required_fields(base_type: &str) -> Option<&'static [&'static str]> {
    Some(match base_type {
        "EventData" => &["name"],
        "MessageData" => &["message"],
        "MetricData" => &["metrics"],
        "ExceptionData" => &["exceptions"],
        "RequestData" => &["id", "duration", "responseCode"],
        "RemoteDependencyData" => &["name", "duration"],
        "PageViewData" => &["name"],
        "AvailabilityData" => &["id", "name", "duration", "success"],
        _ => return None,
    })
}

/// Why an envelope is refused, if it is.
fn validate(s: &Shared, e: &Value) -> Result<(), String> {
    let Some(obj) = e.as_object() else {
        return Err("Item is not a JSON object".into());
    };
    let ikey = obj
        .get("iKey")
        .or_else(|| obj.get("instrumentationKey"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !s
        .config
        .instrumentation_keys
        .iter()
        .any(|k| k.eq_ignore_ascii_case(ikey.trim()))
    {
        return Err("Invalid instrumentation key".into());
    }
    for field in ["name", "time"] {
        if obj
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(format!(
                "Field '{field}' on type 'Envelope' is required but missing or empty"
            ));
        }
    }
    let data = obj.get("data").and_then(Value::as_object);
    let base_type = data
        .and_then(|d| d.get("baseType"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(fields) = required_fields(base_type) else {
        return Err(format!("Unknown or missing baseType '{base_type}'"));
    };
    let Some(base) = data
        .and_then(|d| d.get("baseData"))
        .and_then(Value::as_object)
    else {
        return Err(format!(
            "Field 'baseData' on type '{base_type}' is required but missing"
        ));
    };
    for f in fields {
        let ok = match base.get(*f) {
            None | Some(Value::Null) => false,
            Some(Value::String(v)) => !v.is_empty() || *f == "responseCode",
            Some(Value::Array(a)) => !a.is_empty(),
            Some(_) => true,
        };
        if !ok {
            return Err(format!(
                "Field '{f}' on type '{base_type}' is required but missing or empty"
            ));
        }
    }
    Ok(())
}

/// The envelopes of a body: a JSON array, one object, or newline-delimited objects.
/// A line that is not JSON becomes `Null`, refused with its index.
fn envelopes(text: &str) -> Result<Vec<Value>, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return match serde_json::from_str::<Value>(trimmed) {
            Ok(Value::Array(items)) => Ok(items),
            _ => Err("Invalid JSON: the body is not a valid JSON array".into()),
        };
    }
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect())
}

/// `POST /v2/track`, `POST /v2.1/track`.
pub(crate) async fn track(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: http::Uri,
    body: Bytes,
) -> Response {
    let resp = ingest(&s, &headers, &body);
    s.push_log(LogEntry {
        method: "POST".into(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        status: resp.status().as_u16(),
        principal: None,
        fault: None,
        scope: None,
    });
    resp
}

fn ingest(s: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let limit = s.config.max_body_bytes as u64;
    let mut text = String::new();
    let read = match encoding.as_str() {
        "" | "identity" => std::str::from_utf8(body)
            .map(|t| text.push_str(t))
            .map_err(|e| e.to_string()),
        "gzip" | "x-gzip" => flate2::read::GzDecoder::new(body)
            .take(limit)
            .read_to_string(&mut text)
            .map(drop)
            .map_err(|e| e.to_string()),
        "deflate" => flate2::read::ZlibDecoder::new(body)
            .take(limit)
            .read_to_string(&mut text)
            .map(drop)
            .map_err(|e| e.to_string()),
        other => {
            return rejected(&format!("Unsupported Content-Encoding '{other}'"));
        }
    };
    if let Err(e) = read {
        return rejected(&format!("The body could not be decoded: {e}"));
    }
    let items = match envelopes(&text) {
        Ok(items) => items,
        Err(e) => return rejected(&e),
    };
    if items.is_empty() {
        return rejected("The body contains no telemetry items");
    }
    let mut errors = Vec::new();
    let mut accepted = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match validate(s, item) {
            Ok(()) => accepted.push(item.clone()),
            Err(message) => {
                errors.push(json!({"index": index, "statusCode": 400, "message": message}))
            }
        }
    }
    let status = match (accepted.len(), items.len()) {
        (a, n) if a == n => StatusCode::OK,
        (0, _) => StatusCode::BAD_REQUEST,
        _ => StatusCode::PARTIAL_CONTENT,
    };
    let n_accepted = accepted.len();
    {
        let limit = s.config.request_log_limit.max(1);
        let mut log = s.telemetry.lock().unwrap_or_else(|e| e.into_inner());
        for item in accepted {
            if log.items.len() >= limit {
                log.items.pop_front();
                log.dropped += 1;
            }
            log.items.push_back(item);
        }
    }
    crate::api::json(
        status,
        &json!({"itemsReceived": items.len(), "itemsAccepted": n_accepted, "errors": errors}),
    )
}

/// The accepted envelopes, oldest first; `type` filters on `data.baseType` (e.g. `EventData`).
pub(crate) fn stored(s: &Shared, base_type: Option<&str>) -> Vec<Value> {
    let log = s.telemetry.lock().unwrap_or_else(|e| e.into_inner());
    log.items
        .iter()
        .filter(|e| base_type.is_none_or(|t| e["data"]["baseType"].as_str() == Some(t)))
        .cloned()
        .collect()
}

/// `GET /_emulator/telemetry[?type=EventData]` → `{"items": [...], "dropped": N}`.
pub(crate) async fn list(State(s): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let q = q.unwrap_or_default();
    let kind = url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "type")
        .map(|(_, v)| v.into_owned());
    let items = stored(&s, kind.as_deref());
    let dropped = s
        .telemetry
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .dropped;
    crate::api::json(StatusCode::OK, &json!({"items": items, "dropped": dropped}))
}

/// `DELETE /_emulator/telemetry`: forget what was ingested.
pub(crate) async fn clear(State(s): State<Arc<Shared>>) -> Response {
    let mut log = s.telemetry.lock().unwrap_or_else(|e| e.into_inner());
    log.items.clear();
    log.dropped = 0;
    crate::api::json(StatusCode::OK, &json!({}))
}
