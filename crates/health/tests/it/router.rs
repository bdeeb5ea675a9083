//! The HTTP router, in memory and over loopback.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fabrik_core::CheckResult;
use fabrik_core::events::BreakerState::{Closed, Open};
use fabrik_core::time::ManualClock;
use fabrik_health::{BreakerCheck, MetricsRender, router};
use tower::ServiceExt;

use crate::registry::registry;
use crate::support::{Breakers, Fixed, Hung};

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn open_breaker_makes_ready_503_naming_it_over_loopback() {
    let clock = ManualClock::new();
    let breakers = Breakers::with(&[("fabric-api", Open, true)]);
    let reg = registry(&clock, vec![Arc::new(BreakerCheck::new(breakers.clone()))]);
    let render: MetricsRender = Arc::new(|| "fabrik_retries_total{key=\"a\"} 3\n".to_owned());
    let base = serve(router(reg, Some(render))).await;
    let http = reqwest::Client::new();

    let ready = http
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    assert_eq!(ready.headers()["content-type"], "application/json");
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["probe"], "readiness");
    let check = &body["checks"][0];
    assert_eq!(check["name"], "circuit_breakers");
    assert_eq!(check["status"], "unhealthy");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("'fabric-api' open")
    );
    assert!(check["duration_ms"].is_f64());
    assert!(
        check["timestamp"]
            .as_str()
            .unwrap()
            .starts_with("2026-01-01T")
    );

    // Liveness does not depend on the breaker (readiness-only check).
    let live = http
        .get(format!("{base}/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status().as_u16(), 200);

    // Closing the breaker shows after the TTL.
    breakers.set(&[("fabric-api", Closed, true)]);
    clock.advance(Duration::from_secs(5));
    let ready = http
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);

    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(
        metrics.text().await.unwrap(),
        "fabrik_retries_total{key=\"a\"} 3\n"
    );
}

#[tokio::test]
async fn metrics_route_exists_only_with_a_renderer() {
    let clock = ManualClock::new();
    let app = router(registry(&clock, vec![]), None);
    let res = app
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn hung_check_over_http_answers_at_the_deadline() {
    let clock = ManualClock::new();
    let reg = registry(&clock, vec![Arc::new(Hung)]);
    let base = serve(router(reg, None)).await;
    let req =
        tokio::spawn(async move { reqwest::get(format!("{base}/health/ready")).await.unwrap() });
    // Wait (without a timer) until the handler is parked on the check's timeout.
    while clock.waiting() == 0 {
        tokio::task::yield_now().await;
    }
    clock.advance(Duration::from_secs(2));
    let res = req.await.unwrap();
    assert_eq!(res.status().as_u16(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["checks"][0]["timed_out"], true);
    assert_eq!(body["checks"][0]["duration_ms"], 2000.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_probes_are_answered_from_one_run_within_the_ttl() {
    let clock = ManualClock::new();
    let gate = Arc::new(tokio::sync::Notify::new());
    let mut check = Fixed::new("fabric", CheckResult::healthy());
    check.gate = Some(gate.clone());
    let check = Arc::new(check);
    let app = router(registry(&clock, vec![check.clone()]), None);
    let probes: Vec<_> = (0..1000)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                let res = app
                    .oneshot(Request::get("/health/ready").body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                let status = res.status();
                let body = axum::body::to_bytes(res.into_body(), usize::MAX)
                    .await
                    .unwrap();
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                (status, json["checks"][0]["cached"].as_bool().unwrap())
            })
        })
        .collect();
    // The check is held until it has started once; every other probe queues behind it.
    while check.runs() == 0 {
        tokio::task::yield_now().await;
    }
    gate.notify_one();
    let mut from_cache = 0;
    for p in probes {
        let (status, cached) = p.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        from_cache += usize::from(cached);
    }
    assert_eq!(check.runs(), 1, "one run served all probes");
    assert_eq!(from_cache, 999);

    // Still within the TTL: another thousand are served without running the check.
    clock.advance(Duration::from_secs(4));
    let again: Vec<_> = (0..1000)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                app.oneshot(Request::get("/health/ready").body(Body::empty()).unwrap())
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for p in again {
        assert_eq!(p.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(check.runs(), 1);
}
