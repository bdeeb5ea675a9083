//! Protocol cases the emulator does not produce: a `Location` on another host (as the real
//! service's regional redirect cluster), the real service's zone-less operation state, an
//! operation that ends `Failed`, a page with only a `continuationToken`; and the request
//! headers as they go on the wire. Served by a scripted HTTP/1.1 responder on loopback: real
//! sockets and real bytes, one canned answer per request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabrik_client::models::{CreateItemRequest, ItemType};
use fabrik_client::{FabricClient, FabricError, StaticTokenProvider};
use fabrik_core::time::ManualClock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Log = Arc<Mutex<Vec<String>>>;

/// Serves `answers` in order, one per connection, recording each request line.
async fn scripted(host: &str, answers: Vec<String>) -> (String, Log) {
    let (base, seen, _) = scripted_with_heads(host, answers).await;
    (base, seen)
}

/// Like [`scripted`], also recording each request head (lower-cased).
async fn scripted_with_heads(host: &str, answers: Vec<String>) -> (String, Log, Log) {
    let listener = TcpListener::bind((host, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Log = Arc::default();
    let heads_seen: Log = Arc::default();
    let log = seen.clone();
    let heads = heads_seen.clone();
    tokio::spawn(async move {
        for answer in answers {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 64 * 1024];
            let mut len = 0;
            // Read the head, then as much body as Content-Length says.
            loop {
                let n = sock.read(&mut buf[len..]).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                len += n;
                let text = String::from_utf8_lossy(&buf[..len]);
                if let Some(end) = text.find("\r\n\r\n") {
                    let body_len = text[..end]
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if len >= end + 4 + body_len {
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&buf[..len]).to_string();
            log.lock()
                .unwrap()
                .push(text.lines().next().unwrap_or_default().to_owned());
            let head = text.split("\r\n\r\n").next().unwrap_or_default();
            heads.lock().unwrap().push(head.to_ascii_lowercase());
            let _ = sock.write_all(answer.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
    });
    (format!("http://{addr}"), seen, heads_seen)
}

fn answer(status: &str, headers: &[(&str, String)], body: &str) -> String {
    let mut s = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        s.push_str("Content-Type: application/json; charset=utf-8\r\n");
    }
    s.push_str("\r\n");
    s.push_str(body);
    s
}

const RUNNING: &str = r#"{"status":"Running","createdTimeUtc":"2026-06-25T11:15:43.5469603","lastUpdatedTimeUtc":"2026-06-25T11:15:43.5469603","percentComplete":null,"error":null}"#;

fn client(base: &str, clock: &ManualClock) -> FabricClient {
    FabricClient::builder(base)
        .token_provider(Arc::new(StaticTokenProvider::never_expiring(
            "t".to_owned().into(),
        )))
        .clock(Arc::new(clock.clone()))
        .sleeper(Arc::new(clock.clone()))
        .call_timeout(None)
        .build()
        .unwrap()
}

#[tokio::test]
async fn location_on_another_host_is_followed_and_failed_surfaces_the_operations_error() {
    let op = "a92d2484-8784-4ed5-a013-43ea9dd95ea8";
    // The "redirect cluster" on 127.0.0.2, the API on 127.0.0.1 (both loopback on Linux).
    let (redirect, redirect_seen) = scripted(
        "127.0.0.2",
        vec![
            answer("200 OK", &[("Retry-After", "20".into()), ("x-ms-operation-id", op.into())], RUNNING),
            answer(
                "200 OK",
                &[("x-ms-operation-id", op.into())],
                r#"{"status":"Failed","createdTimeUtc":"2026-06-25T11:15:43.5469603","lastUpdatedTimeUtc":"2026-06-25T11:16:03.1","percentComplete":null,
                   "error":{"errorCode":"ItemDisplayNameAlreadyInUse","message":"Item display name is already used.","requestId":"r-9"}}"#,
            ),
        ],
    )
    .await;
    let (api, api_seen) = scripted(
        "127.0.0.1",
        vec![answer(
            "202 Accepted",
            &[
                ("Location", format!("{redirect}/v1/operations/{op}")),
                ("x-ms-operation-id", op.into()),
                ("Retry-After", "20".into()),
                ("RequestId", "r-1".into()),
            ],
            "",
        )],
    )
    .await;
    let clock = ManualClock::auto_advance();
    let err = client(&api, &clock)
        .create_item(
            "ws",
            &CreateItemRequest::new("Vars", ItemType::VariableLibrary),
        )
        .await
        .unwrap_err();
    match &err {
        FabricError::OperationFailed {
            operation_id,
            error: Some(e),
            operation,
        } => {
            assert_eq!(operation_id, op);
            assert_eq!(e.error_code, "ItemDisplayNameAlreadyInUse");
            assert_eq!(operation, "POST /v1/workspaces/{workspaceId}/items");
        }
        other => panic!("expected OperationFailed, got {other:?}"),
    }
    assert!(err.is_name_conflict());
    assert_eq!(err.request_id(), Some("r-9"));
    assert_eq!(
        api_seen.lock().unwrap().as_slice(),
        ["POST /v1/workspaces/ws/items HTTP/1.1"]
    );
    assert_eq!(
        redirect_seen.lock().unwrap().as_slice(),
        [
            format!("GET /v1/operations/{op} HTTP/1.1"),
            format!("GET /v1/operations/{op} HTTP/1.1")
        ]
    );
    assert_eq!(
        clock.sleeps(),
        [Duration::from_secs(20), Duration::from_secs(20)]
    );
}

#[tokio::test]
async fn succeeded_fetches_the_result_where_location_points_even_without_v1() {
    let op = "0acd697c-1550-43cd-b998-91bfbfbd47c6";
    let (other, other_seen) = scripted(
        "127.0.0.2",
        vec![
            answer("200 OK", &[("Retry-After", "5".into())], RUNNING),
            // Done: Location switches to the result (the spec example has no /v1 in it).
            answer(
                "200 OK",
                &[("Location", "/operations/".to_owned() + op + "/result")],
                r#"{"status":"Succeeded","createdTimeUtc":"2023-09-13T14:56:18.477Z","lastUpdatedTimeUtc":"2023-09-13T15:01:10.532Z","percentComplete":100}"#,
            ),
            answer(
                "200 OK",
                &[],
                r#"{"id":"bd169006-1833-4da4-b901-d6f2bb619987","type":"VariableLibrary","displayName":"Vars","description":"","workspaceId":"ws"}"#,
            ),
        ],
    )
    .await;
    let (api, _) = scripted(
        "127.0.0.1",
        vec![answer(
            "202 Accepted",
            &[
                ("Location", format!("{other}/v1/operations/{op}")),
                ("Retry-After", "30".into()),
            ],
            "",
        )],
    )
    .await;
    let clock = ManualClock::auto_advance();
    let item = client(&api, &clock)
        .create_item(
            "ws",
            &CreateItemRequest::new("Vars", ItemType::VariableLibrary),
        )
        .await
        .unwrap();
    assert_eq!(item.display_name, "Vars");
    assert_eq!(item.kind, ItemType::VariableLibrary);
    assert_eq!(
        other_seen.lock().unwrap().as_slice(),
        [
            format!("GET /v1/operations/{op} HTTP/1.1"),
            format!("GET /v1/operations/{op} HTTP/1.1"),
            format!("GET /operations/{op}/result HTTP/1.1"),
        ]
    );
    assert_eq!(
        clock.sleeps(),
        [Duration::from_secs(30), Duration::from_secs(5)]
    );
}

#[tokio::test]
async fn a_location_that_would_send_the_token_in_clear_off_the_machine_is_refused() {
    let (api, _) = scripted(
        "127.0.0.1",
        vec![answer(
            "202 Accepted",
            &[
                ("Location", "http://example.com/v1/operations/x".into()),
                ("Retry-After", "1".into()),
            ],
            "",
        )],
    )
    .await;
    let clock = ManualClock::auto_advance();
    let err = client(&api, &clock)
        .create_item("ws", &CreateItemRequest::new("Vars", ItemType::Notebook))
        .await
        .unwrap_err();
    assert!(matches!(err, FabricError::InvalidUrl(_)), "{err}");
}

#[tokio::test]
async fn pages_follow_a_bare_continuation_token_and_requests_carry_auth_and_a_client_request_id() {
    let (api, seen, heads) = scripted_with_heads(
        "127.0.0.1",
        vec![
            answer(
                "200 OK",
                &[],
                r#"{"value":[{"id":"f1","displayName":"a","workspaceId":"ws"}],"continuationToken":"LDEsMTAwMDAwLDA%3D"}"#,
            ),
            answer(
                "200 OK",
                &[],
                r#"{"value":[{"id":"f2","displayName":"b","workspaceId":"ws","parentFolderId":"f1"}]}"#,
            ),
        ],
    )
    .await;
    let clock = ManualClock::auto_advance();
    let folders = client(&api, &clock)
        .list_folders("ws")
        .collect_all()
        .await
        .unwrap();
    assert_eq!(
        folders.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        ["f1", "f2"]
    );
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [
            "GET /v1/workspaces/ws/folders HTTP/1.1",
            // The token is sent once-encoded, whatever encoding the body used.
            "GET /v1/workspaces/ws/folders?continuationToken=LDEsMTAwMDAwLDA%3D HTTP/1.1",
        ]
    );
    let heads = heads.lock().unwrap();
    let ids: Vec<&str> = heads
        .iter()
        .map(|h| {
            assert!(h.contains("\r\nauthorization: bearer t\r\n"), "{h}");
            h.lines()
                .find_map(|l| l.strip_prefix("x-ms-client-request-id: "))
                .expect("client request id")
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    assert!(ids.iter().all(|id| uuid_like(id)), "{ids:?}");
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

/// A server that answers every request with a workspace after `hold`, counting the most
/// requests it was ever in the middle of at once.
async fn counting_server(hold: Duration) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let seen = most.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (now, most) = (now.clone(), most.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut len = 0;
                while !String::from_utf8_lossy(&buf[..len]).contains("\r\n\r\n") {
                    match sock.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                }
                let in_flight = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(in_flight, Ordering::SeqCst);
                // Held open so concurrent requests overlap; the assertion is on the count.
                tokio::time::sleep(hold).await;
                now.fetch_sub(1, Ordering::SeqCst);
                let body = r#"{"id":"0b6f8a3e-7c4d-4e2f-9a1b-3c5d7e9f1a2b","displayName":"w","description":"","type":"Workspace"}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_in_flight_bounds_the_requests_on_the_wire() {
    use std::sync::atomic::Ordering;
    let (base, most) = counting_server(Duration::from_millis(30)).await;
    let client = FabricClient::builder(base)
        .token_provider(Arc::new(StaticTokenProvider::never_expiring(
            "t".to_owned().into(),
        )))
        .max_in_flight(2)
        .build()
        .unwrap();
    let calls = (0..10).map(|_| client.get_workspace("0b6f8a3e-7c4d-4e2f-9a1b-3c5d7e9f1a2b"));
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    let most = most.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&most),
        "{most} requests were in flight at once"
    );
}

/// An operation started now and waited for later (a run waits for its Environment publishes
/// at its end) is polled when its `Retry-After` falls due, counted from its start: after 15 s
/// of other work, the rest of the 20 s hint, not 20 s more.
#[tokio::test]
async fn an_operation_waited_for_later_is_polled_when_its_first_wait_ends() {
    let op = "5e0c2f4a-7b1d-4c3e-9f8a-2d6b1e0c9a7f";
    let done = r#"{"status":"Succeeded","createdTimeUtc":"2026-06-25T11:15:43.5469603","lastUpdatedTimeUtc":"2026-06-25T11:16:03.1","percentComplete":100,"error":null}"#;
    let (api, seen) = scripted(
        "127.0.0.1",
        vec![
            answer(
                "202 Accepted",
                &[
                    ("x-ms-operation-id", op.into()),
                    ("Retry-After", "20".into()),
                ],
                "",
            ),
            answer("200 OK", &[("Retry-After", "20".into())], RUNNING),
            answer("200 OK", &[], done),
        ],
    )
    .await;
    let clock = ManualClock::auto_advance();
    let c = client(&api, &clock);
    let started = c
        .start_environment_publish("ws", "env")
        .await
        .unwrap()
        .expect("a 202 is an operation to wait for");
    clock.advance(Duration::from_secs(15));
    c.wait_operation(started).await.unwrap();
    assert_eq!(
        clock.sleeps(),
        [Duration::from_secs(5), Duration::from_secs(20)]
    );
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [
            "POST /v1/workspaces/ws/environments/env/staging/publish?beta=False HTTP/1.1"
                .to_string(),
            format!("GET /v1/operations/{op} HTTP/1.1"),
            format!("GET /v1/operations/{op} HTTP/1.1"),
        ]
    );
}
