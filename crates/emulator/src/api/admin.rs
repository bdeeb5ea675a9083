//! The `/_emulator` admin API: state dump, reset, request log, faults, tokens.

use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::{S, json};
use crate::error::ApiError;
use crate::faults::{FaultConfig, FaultEngine};
use crate::server::Shared;
use crate::store::{Capacity, SparkPool, Store, Token};
use crate::util::{fabric_time, uuid_from};

/// Creates the configured number of capacities (ids from the seed).
pub(crate) fn seed_capacities(s: &Shared, store: &mut Store) {
    const REGIONS: &[&str] = &["West US", "East US", "North Europe", "West Europe"];
    for n in 0..s.config.capacities {
        let id = s.new_id();
        store.capacities.insert(
            id,
            Capacity {
                id,
                display_name: format!("emulator-capacity-{}", n + 1),
                sku: "F2".into(),
                region: REGIONS[n % REGIONS.len()].into(),
                state: "Active".into(),
                spark_pools: s
                    .config
                    .capacity_pools
                    .iter()
                    .map(|name| SparkPool {
                        id: s.new_id(),
                        name: name.clone(),
                        settings: crate::api::spark::default_pool_settings(),
                    })
                    .collect(),
            },
        );
    }
}

/// Issues a token; its value comes from a stream of its own so minting does not shift ids.
pub(crate) fn mint(
    s: &Shared,
    principal_id: &str,
    principal_type: &str,
    lifetime: Duration,
) -> String {
    let token = format!("fabrik-emu.{}", uuid_from(token_rng()).simple());
    insert_token(
        s,
        token.clone(),
        Token {
            principal_id: principal_id.to_string(),
            principal_type: principal_type.to_string(),
            expires_at: crate::util::later(s.now(), lifetime),
            audience: None,
        },
    );
    token
}

/// The source of token values: unpredictable across processes, since tokens are
/// credentials, not test fixtures; a stream of its own so issuing does not shift ids.
pub(crate) fn token_rng() -> &'static fabrik_core::SplitMix64 {
    static TOKENS: std::sync::OnceLock<fabrik_core::SplitMix64> = std::sync::OnceLock::new();
    TOKENS.get_or_init(fabrik_core::SplitMix64::from_entropy)
}

/// Records an issued token. Past 10,000 live entries, expired ones are forgotten, so a
/// long-running emulator refreshing tokens does not grow without bound.
pub(crate) fn insert_token(s: &Shared, token: String, t: Token) {
    let now = s.now();
    let mut store = s.write();
    if store.tokens.len() >= 10_000 {
        store.tokens.retain(|_, t| t.expires_at > now);
    }
    store.tokens.insert(token, t);
}

pub(crate) async fn state(axum::extract::State(s): S) -> Response {
    json(StatusCode::OK, &s.read().admin_view())
}

pub(crate) async fn reset(axum::extract::State(s): S) -> Response {
    let mut store = s.write();
    let keep = Store {
        capacities: std::mem::take(&mut store.capacities),
        tokens: std::mem::take(&mut store.tokens),
        ..Store::default()
    };
    *store = keep;
    json(StatusCode::OK, &json!({}))
}

pub(crate) async fn requests(axum::extract::State(s): S) -> Response {
    let log = s.log.lock().unwrap_or_else(|e| e.into_inner());
    json(
        StatusCode::OK,
        &json!({"requests": log.entries, "dropped": log.dropped}),
    )
}

pub(crate) async fn clear_requests(axum::extract::State(s): S) -> Response {
    let mut log = s.log.lock().unwrap_or_else(|e| e.into_inner());
    log.entries.clear();
    log.dropped = 0;
    json(StatusCode::OK, &json!({}))
}

fn faults_json(s: &Arc<Shared>) -> Response {
    let engine = s.faults.read().unwrap_or_else(|e| e.into_inner()).clone();
    let stats = engine.stats();
    json(
        StatusCode::OK,
        &json!({
            "spec": engine.config().to_string(),
            "requests": stats.requests,
            "faulted": stats.faulted,
            "rate": stats.rate(),
        }),
    )
}

pub(crate) async fn get_faults(axum::extract::State(s): S) -> Response {
    faults_json(&s)
}

/// Body: a SPEC string, or `{"spec": "..."}`. Scripted counters restart.
pub(crate) async fn put_faults(
    axum::extract::State(s): S,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        spec: String,
    }
    let text = String::from_utf8_lossy(&body).to_string();
    let spec = match serde_json::from_str::<Body>(&text) {
        Ok(b) => b.spec,
        Err(_) => text.trim().trim_matches('"').to_string(),
    };
    let config: FaultConfig = spec
        .parse()
        .map_err(|e: String| ApiError::invalid_input("InvalidFaultSpec", e))?;
    *s.faults.write().unwrap_or_else(|e| e.into_inner()) =
        Arc::new(FaultEngine::new(config, s.config.seed));
    Ok(faults_json(&s))
}

/// `{"principalId", "principalType"?, "lifetimeSeconds"?}` → a token for `/v1`.
pub(crate) async fn token(axum::extract::State(s): S, body: Bytes) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Req {
        principal_id: String,
        principal_type: Option<String>,
        lifetime_seconds: Option<u64>,
    }
    let req: Req = crate::util::parse_body(&body)?;
    let lifetime = Duration::from_secs(req.lifetime_seconds.unwrap_or(3600));
    let kind = req.principal_type.unwrap_or_else(|| "User".into());
    let token = mint(&s, &req.principal_id, &kind, lifetime);
    Ok(json(
        StatusCode::OK,
        &json!({"accessToken": token, "tokenType": "Bearer", "expiresOn": fabric_time(crate::util::later(s.now(), lifetime))}),
    ))
}
