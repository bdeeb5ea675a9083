//! A loopback Application Insights ingestion endpoint that stores what it receives.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

/// How the capture server answers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// Accept everything.
    Accept,
    /// Accept all but the first item of each batch (206 with an error for index 0).
    RejectFirst,
    /// Never answer.
    Hang,
}

#[derive(Debug, Clone)]
pub(crate) struct Capture {
    pub(crate) base: String,
    batches: Arc<Mutex<Vec<Vec<Value>>>>,
    raw: Arc<Mutex<Vec<String>>>,
}

impl Capture {
    pub(crate) async fn start(mode: Mode) -> Self {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let state = (batches.clone(), raw.clone(), mode);
        let app = axum::Router::new()
            .route("/v2/track", post(track))
            .route("/v2.1/track", post(track))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, batches, raw }
    }

    pub(crate) fn batches(&self) -> Vec<Vec<Value>> {
        self.batches.lock().unwrap().clone()
    }

    pub(crate) fn envelopes(&self) -> Vec<Value> {
        self.batches().concat()
    }

    /// Every request body as received, for searching for leaks.
    pub(crate) fn raw(&self) -> String {
        self.raw.lock().unwrap().join("\n")
    }
}

type St = (Arc<Mutex<Vec<Vec<Value>>>>, Arc<Mutex<Vec<String>>>, Mode);

async fn track(State((batches, raw, mode)): State<St>, body: String) -> (StatusCode, Json<Value>) {
    if let Mode::Hang = mode {
        std::future::pending::<()>().await;
    }
    let items: Vec<Value> = serde_json::from_str(&body).unwrap();
    let n = items.len();
    raw.lock().unwrap().push(body);
    batches.lock().unwrap().push(items);
    match mode {
        Mode::RejectFirst => (
            StatusCode::PARTIAL_CONTENT,
            Json(json!({"itemsReceived": n, "itemsAccepted": n - 1,
                "errors": [{"index": 0, "statusCode": 400, "message": "invalid"}]})),
        ),
        _ => (
            StatusCode::OK,
            Json(json!({"itemsReceived": n, "itemsAccepted": n, "errors": []})),
        ),
    }
}
