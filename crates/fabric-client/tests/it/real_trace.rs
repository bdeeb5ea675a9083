//! Every recorded response of a supported endpoint in the real Fabric trace reads into the
//! typed models. The trace pairs some responses with the wrong request, so the model is chosen
//! by the body's shape within each supported route.

use std::collections::BTreeMap;
use std::io::Read as _;

use fabrik_client::models::*;
use serde_json::Value;

use crate::fixtures::{reads_losslessly, shared};

/// The route template of a URL, ids elided, query dropped.
fn template(url: &str) -> String {
    let path = url
        .split("://")
        .nth(1)
        .and_then(|r| r.find('/').map(|i| &r[i..]))
        .unwrap_or(url);
    let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
    path.split('/')
        .map(|seg| {
            let hex = seg.chars().filter(|c| c.is_ascii_hexdigit()).count();
            if seg.len() == 36 && hex == 32 {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_recorded_response_of_a_supported_endpoint_deserializes() {
    let path = shared().join("fabric-real-trace/http_trace.json.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("trace"))
        .read_to_string(&mut text)
        .expect("gunzip");
    let trace: Value = serde_json::from_str(&text).expect("trace json");
    let mut checked: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for t in trace["traces"].as_array().expect("traces") {
        let Some(resp) = t["response"].as_object() else {
            continue;
        };
        let body = &resp["body"];
        if !body.is_object() {
            continue; // 202s and deletes carry no body
        }
        let status = resp["status_code"].as_u64().unwrap_or(0);
        let route = template(t["request"]["url"].as_str().unwrap_or_default());
        let supported = route.starts_with("/v1/operations/")
            || route == "/v1/workspaces/{id}"
            || route.starts_with("/v1/workspaces/{id}/items")
            || route.starts_with("/v1/workspaces/{id}/lakehouses")
            || route.starts_with("/v1/workspaces/{id}/notebooks")
            || route.starts_with("/v1/workspaces/{id}/folders");
        // Error bodies of any endpoint are the one shape the client reads for all.
        let (what, result) = if status >= 400 {
            ("error", reads_losslessly::<ErrorResponse>(body))
        } else if !supported || route.ends_with("/shortcuts") {
            continue;
        } else if body.get("status").is_some() && body.get("createdTimeUtc").is_some() {
            ("operation state", reads_losslessly::<OperationState>(body))
        } else if route.ends_with("/folders") && body.get("value").is_some() {
            ("folder page", reads_losslessly::<Page<Folder>>(body))
        } else if route.contains("/folders") {
            ("folder", reads_losslessly::<Folder>(body))
        } else if body.get("value").is_some() {
            ("item page", reads_losslessly::<Page<Item>>(body))
        } else if route == "/v1/workspaces/{id}" {
            ("workspace", reads_losslessly::<Workspace>(body))
        } else if body["type"] == "Lakehouse" {
            ("lakehouse", reads_losslessly::<Lakehouse>(body))
        } else {
            ("item", reads_losslessly::<Item>(body))
        };
        *checked.entry(what).or_default() += 1;
        if let Err(e) = result {
            failures.push(format!(
                "{} {route} {status} as {what}: {e}",
                t["request"]["method"]
            ));
        }
    }
    failures.dedup();
    assert!(
        failures.is_empty(),
        "{} failures, first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    // Each kind the issue names was met, in the numbers the trace holds.
    for (kind, at_least) in [
        ("operation state", 1900),
        ("item", 600),
        ("lakehouse", 1000),
        ("workspace", 90),
        ("folder", 170),
        ("folder page", 80),
        ("item page", 200),
        ("error", 200),
    ] {
        let n = checked.get(kind).copied().unwrap_or(0);
        assert!(n >= at_least, "only {n} {kind} bodies checked: {checked:?}");
    }
}
