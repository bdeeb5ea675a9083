//! One tracing span per call: method, route template (ids elided), status, attempt, duration
//! and both request ids; no token anywhere.
//!
//! Its own test binary: tracing caches callsite interest process-wide, so a thread-local
//! subscriber can miss spans while other tests run on other threads.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use fabrik_client::models::{CreateItemRequest, ItemType};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use fabrik_client::models::CreateWorkspaceRequest;
use fabrik_client::{FabricClient, StaticTokenProvider};
use fabrik_emulator::{Emulator, EmulatorConfig};

type Spans = Arc<Mutex<Vec<(u64, BTreeMap<String, String>)>>>;

struct Capture(Spans);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() != "fabric.call" {
            return;
        }
        let mut map = BTreeMap::new();
        attrs.record(&mut Fields(&mut map));
        self.0.lock().unwrap().push((id.into_u64(), map));
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some((_, map)) = spans.iter_mut().rev().find(|(i, _)| *i == id.into_u64()) {
            values.record(&mut Fields(map));
        }
    }
}

#[tokio::test]
async fn every_call_gets_a_span_with_the_route_template_and_outcome() {
    let spans: Spans = Arc::default();
    let subscriber = tracing_subscriber::registry().with(Capture(spans.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);

    let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let token = emu.mint_token(
        "a1b2c3d4-0000-4000-8000-000000000001",
        std::time::Duration::from_secs(3600),
    );
    let client = FabricClient::builder(emu.base_url())
        .token_provider(Arc::new(StaticTokenProvider::never_expiring(token.into())))
        .build()
        .unwrap();
    let ws = client
        .create_workspace(&CreateWorkspaceRequest {
            display_name: "Traced".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let item = client
        .create_item(&ws.id, &CreateItemRequest::new("T", ItemType::Notebook))
        .await
        .unwrap();
    client.get_item(&ws.id, &item.id).await.unwrap();
    let _ = client
        .get_item(&ws.id, "00000000-0000-4000-8000-000000000000")
        .await;

    let spans = spans.lock().unwrap().clone();
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let get = &spans[2].1;
    assert_eq!(get["method"], "GET");
    assert_eq!(get["route"], "/workspaces/{workspaceId}/items/{itemId}");
    assert_eq!(get["status"], "200");
    assert_eq!(get["attempt"], "1");
    assert!(get["duration_ms"].parse::<f64>().is_ok());
    assert!(!get["request_id"].is_empty());
    assert_eq!(get["client_request_id"].len(), 36);
    assert_eq!(spans[3].1["status"], "404");
    let ids: Vec<_> = spans
        .iter()
        .map(|(_, m)| m["client_request_id"].clone())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] != w[1]),
        "a fresh client request id per call"
    );
    for (_, m) in &spans {
        for v in m.values() {
            assert!(
                !v.contains(&ws.id) && !v.contains(&item.id),
                "ids elided: {m:?}"
            );
            assert!(
                !v.contains("Bearer") && !v.contains("fabrik-emu"),
                "no token: {m:?}"
            );
        }
    }
    // Debug output of the client never shows the token either.
    let dbg = format!("{:?}", client);
    assert!(
        !dbg.contains("fabrik-emu") && !dbg.contains("Bearer"),
        "{dbg}"
    );
}
