//! The embeddable axum router: `/health/live`, `/health/ready` and `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::{HealthRegistry, HealthReport};

/// Renders the Prometheus text exposition, e.g. `move || prometheus_handle.render()`. A
/// function rather than a type so this crate needs no metrics exporter of its own.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// `GET /health/live` and `GET /health/ready` (200, or 503 when unhealthy; JSON body), and
/// `GET /metrics` when `metrics` is given. Merge or nest it into the caller's router.
pub fn router(registry: HealthRegistry, metrics: Option<MetricsRender>) -> Router {
    let health = Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .with_state(registry);
    match metrics {
        Some(render) => health.merge(
            Router::new()
                .route("/metrics", get(render_metrics))
                .with_state(render),
        ),
        None => health,
    }
}

async fn live(State(registry): State<HealthRegistry>) -> Response {
    respond(&registry.liveness().await)
}

async fn ready(State(registry): State<HealthRegistry>) -> Response {
    respond(&registry.readiness().await)
}

fn respond(report: &HealthReport) -> Response {
    let status = StatusCode::from_u16(report.http_status()).unwrap_or(StatusCode::OK);
    match serde_json::to_vec(report) {
        Ok(body) => (
            status,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn render_metrics(State(render): State<MetricsRender>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(),
    )
        .into_response()
}
