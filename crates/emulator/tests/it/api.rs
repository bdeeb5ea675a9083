//! The Fabric API surface: workspaces, capacities, role assignments, items, LRO, pagination,
//! auth and the admin API.

use std::time::Duration;

use fabrik_emulator::{CreateMode, Emulator, EmulatorConfig};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Env, ME};

fn is_fabric_time(s: &str) -> bool {
    // 2026-06-25T11:15:43.5469603: no zone, seven fractional digits.
    let b = s.as_bytes();
    s.len() == 27
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && s[20..].bytes().all(|c| c.is_ascii_digit())
}

#[tokio::test]
async fn workspace_crud_names_and_conflicts() {
    let env = Env::start().await;
    let r = env
        .post("/v1/workspaces", json!({"displayName": "Sales"}))
        .await
        .expect(201);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.header("location").unwrap(),
        env.url(&format!("/v1/workspaces/{id}"))
    );
    assert_eq!(r.body["description"], "");
    assert_eq!(r.body["type"], "Workspace");
    assert!(r.header("RequestId").is_some());

    let dup = env
        .post("/v1/workspaces", json!({"displayName": "sales"}))
        .await
        .expect(409);
    assert_eq!(dup.error_code(), "WorkspaceNameAlreadyExists");
    let long = "x".repeat(257);
    assert_eq!(
        env.post("/v1/workspaces", json!({"displayName": long}))
            .await
            .expect(400)
            .error_code(),
        "InvalidInput"
    );
    env.post("/v1/workspaces", json!({"displayName": "y".repeat(256)}))
        .await
        .expect(201);
    let reserved = env
        .post("/v1/workspaces", json!({"displayName": "Admin monitoring"}))
        .await
        .expect(400);
    assert!(reserved.raw.contains("reserved"), "{}", reserved.raw);
    let desc = env
        .post(
            "/v1/workspaces",
            json!({"displayName": "D", "description": "d".repeat(4001)}),
        )
        .await;
    assert_eq!(desc.expect(400).error_code(), "InvalidInput");

    let other = env.workspace("Other", false).await;
    let clash = env
        .patch(
            &format!("/v1/workspaces/{other}"),
            json!({"displayName": "SALES"}),
        )
        .await
        .expect(409);
    assert_eq!(clash.error_code(), "WorkspaceNameAlreadyExists");
    let upd = env
        .patch(
            &format!("/v1/workspaces/{id}"),
            json!({"displayName": "Sales EU", "description": "eu"}),
        )
        .await
        .expect(200);
    assert_eq!(upd.body["displayName"], "Sales EU");
    assert_eq!(
        env.get(&format!("/v1/workspaces/{id}"))
            .await
            .expect(200)
            .body["description"],
        "eu"
    );
    // The old name is free again.
    env.post("/v1/workspaces", json!({"displayName": "Sales"}))
        .await
        .expect(201);

    let del = env
        .delete(&format!("/v1/workspaces/{id}"))
        .await
        .expect(200);
    assert!(del.raw.is_empty());
    // Not JSON-typed: fabric-cicd decodes every JSON-typed body.
    assert_eq!(
        del.header("content-type").unwrap(),
        "text/plain; charset=utf-8"
    );
    let gone = env.get(&format!("/v1/workspaces/{id}")).await.expect(404);
    assert_eq!(gone.error_code(), "WorkspaceNotFound");
    assert_eq!(gone.body["relatedResource"]["resourceId"], id);
    assert_eq!(
        env.get("/v1/workspaces/not-a-guid")
            .await
            .expect(404)
            .error_code(),
        "WorkspaceNotFound"
    );
}

#[tokio::test]
async fn auth_missing_unknown_expired_and_accept_any() {
    let env = Env::start().await;
    let r = env
        .send(Method::GET, "/v1/workspaces", None, None)
        .await
        .expect(401);
    assert_eq!(r.error_code(), "Unauthorized");
    let r = env
        .send(Method::GET, "/v1/workspaces", None, Some("nope"))
        .await
        .expect(401);
    assert_eq!(r.error_code(), "InvalidToken");
    let short = env.emu.mint_token(ME, Duration::from_secs(60));
    env.send(Method::GET, "/v1/workspaces", None, Some(&short))
        .await
        .expect(200);
    env.clock.advance(Duration::from_secs(61));
    let r = env
        .send(Method::GET, "/v1/workspaces", None, Some(&short))
        .await
        .expect(401);
    assert_eq!(r.error_code(), "TokenExpired");
    // The admin API needs no token.
    env.send(Method::GET, "/_emulator/state", None, None)
        .await
        .expect(200);

    let any = Env::with(|c| c.accept_any_token = true).await;
    any.send(Method::GET, "/v1/workspaces", None, Some("anything-goes"))
        .await
        .expect(200);
    any.send(Method::GET, "/v1/workspaces", None, None)
        .await
        .expect(401);
    // A JWT's oid claim becomes the principal, so the creator's Admin role is that principal.
    let claims = base64_url(
        &json!({"oid": "0b5b4f7e-3c6a-4f5e-9d6c-2f8c1d3a4b5c", "idtyp": "app"}).to_string(),
    );
    let jwt = format!("eyJhbGciOiJub25lIn0.{claims}.sig");
    let ws = any
        .send(
            Method::POST,
            "/v1/workspaces",
            Some(&json!({"displayName": "J"})),
            Some(&jwt),
        )
        .await
        .expect(201);
    let ras = any
        .send(
            Method::GET,
            &format!(
                "/v1/workspaces/{}/roleAssignments",
                ws.body["id"].as_str().unwrap()
            ),
            None,
            Some(&jwt),
        )
        .await;
    assert_eq!(
        ras.body["value"][0]["principal"],
        json!({"id": "0b5b4f7e-3c6a-4f5e-9d6c-2f8c1d3a4b5c", "type": "ServicePrincipal"})
    );
}

fn base64_url(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, x)| acc | (u32::from(*x) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test]
async fn capacities_and_assignment_progress_follow_the_clock() {
    let env = Env::with(|c| {
        c.lro_delay = Duration::from_secs(10);
        c.capacities = 2;
    })
    .await;
    let caps = env.get("/v1/capacities").await.expect(200);
    let list = caps.body["value"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["state"], "Active");
    let cap = list[1]["id"].as_str().unwrap();
    env.get(&format!("/v1/capacities/{cap}")).await.expect(200);
    let ws = env.workspace("W", false).await;
    let info = env.get(&format!("/v1/workspaces/{ws}")).await.expect(200);
    assert!(info.body.get("capacityId").is_none());
    let r = env
        .post(
            &format!("/v1/workspaces/{ws}/assignToCapacity"),
            json!({"capacityId": cap}),
        )
        .await
        .expect(202);
    assert!(r.raw.is_empty());
    let info = env.get(&format!("/v1/workspaces/{ws}")).await.expect(200);
    assert_eq!(info.body["capacityAssignmentProgress"], "InProgress");
    assert_eq!(info.body["capacityId"], cap);
    env.clock.advance(Duration::from_secs(10));
    let info = env.get(&format!("/v1/workspaces/{ws}")).await.expect(200);
    assert_eq!(info.body["capacityAssignmentProgress"], "Completed");
    assert!(
        info.body["oneLakeEndpoints"]["dfsEndpoint"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    let bad = env
        .post(
            &format!("/v1/workspaces/{ws}/assignToCapacity"),
            json!({"capacityId": "0f084df7-c1a2-4dd6-a1a8-3e9e4c1b7e01"}),
        )
        .await;
    assert_eq!(bad.expect(404).error_code(), "CapacityNotFound");
    env.post_empty(&format!("/v1/workspaces/{ws}/unassignFromCapacity"))
        .await
        .expect(202);
    assert!(
        env.get(&format!("/v1/workspaces/{ws}"))
            .await
            .body
            .get("capacityId")
            .is_none()
    );
}

#[tokio::test]
async fn role_assignments_crud_with_principal_id_as_assignment_id() {
    let env = Env::start().await;
    let ws = env.workspace("Roles", false).await;
    let base = format!("/v1/workspaces/{ws}/roleAssignments");
    // The creator is Admin already, so adding it again conflicts, as in the real service.
    let me = env
        .post(
            &base,
            json!({"principal": {"id": ME, "type": "User"}, "role": "Admin"}),
        )
        .await
        .expect(409);
    assert_eq!(
        me.error_code(),
        "PrincipalAlreadyHasWorkspaceRolePermissions"
    );
    let kinds = [
        "User",
        "Group",
        "ServicePrincipal",
        "ServicePrincipalProfile",
    ];
    let ids = [
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
        "33333333-3333-4333-8333-333333333333",
        "44444444-4444-4444-8444-444444444444",
    ];
    for (kind, id) in kinds.iter().zip(ids) {
        let r = env
            .post(
                &base,
                json!({"principal": {"id": id, "type": kind}, "role": "Member"}),
            )
            .await
            .expect(201);
        assert_eq!(r.body["id"], id);
        assert_eq!(r.body["principal"], json!({"id": id, "type": kind}));
        assert_eq!(
            r.header("location").unwrap(),
            env.url(&format!("{base}/{id}"))
        );
    }
    let dup = env
        .post(
            &base,
            json!({"principal": {"id": ids[0], "type": "User"}, "role": "Viewer"}),
        )
        .await
        .expect(409);
    assert_eq!(
        dup.error_code(),
        "PrincipalAlreadyHasWorkspaceRolePermissions"
    );
    let tenant = env.post(&base, json!({"principal": {"id": "55555555-5555-4555-8555-555555555555", "type": "EntireTenant"}, "role": "Viewer"})).await;
    assert_eq!(tenant.expect(400).error_code(), "PrincipalTypeNotSupported");
    let badrole = env.post(&base, json!({"principal": {"id": "55555555-5555-4555-8555-555555555555", "type": "User"}, "role": "Owner"})).await;
    assert!(badrole.expect(400).raw.contains("Owner"));

    let list = env.get(&base).await.expect(200);
    assert_eq!(list.body["value"].as_array().unwrap().len(), 5);
    let upd = env
        .patch(
            &format!("{base}/{}", ids[1]),
            json!({"role": "Contributor"}),
        )
        .await
        .expect(200);
    assert_eq!(upd.body["role"], "Contributor");
    assert_eq!(
        env.get(&format!("{base}/{}", ids[1]))
            .await
            .expect(200)
            .body["role"],
        "Contributor"
    );
    env.delete(&format!("{base}/{}", ids[1])).await.expect(200);
    assert_eq!(
        env.get(&format!("{base}/{}", ids[1]))
            .await
            .expect(404)
            .error_code(),
        "WorkspaceRoleAssignmentNotFound"
    );
    // The last admin stays.
    let last = env.delete(&format!("{base}/{ME}")).await.expect(400);
    assert_eq!(last.error_code(), "LastAdminRoleCannotBeDeleted");
    env.patch(&format!("{base}/{ME}"), json!({"role": "Viewer"}))
        .await
        .expect(400);
    // roles filter on the workspace list uses the caller's role.
    let admin_ws = env.get("/v1/workspaces?roles=Admin").await.expect(200);
    assert_eq!(admin_ws.body["value"].as_array().unwrap().len(), 1);
    assert_eq!(
        env.get("/v1/workspaces?roles=Viewer")
            .await
            .expect(200)
            .body["value"],
        json!([])
    );
    assert_eq!(
        env.get("/v1/workspaces?roles=Boss")
            .await
            .expect(400)
            .error_code(),
        "InvalidParameter"
    );
}

#[tokio::test]
async fn items_crud_type_filter_uniqueness_and_soft_delete() {
    let env = Env::start().await;
    let ws = env.workspace("Items", true).await;
    let items = format!("/v1/workspaces/{ws}/items");
    let nb = env
        .post(&items, json!({"displayName": "Item 1", "type": "Notebook"}))
        .await
        .expect(201);
    assert_eq!(nb.body["description"], "");
    assert_eq!(nb.body["workspaceId"], ws);
    let nb_id = nb.body["id"].as_str().unwrap().to_string();
    let dup = env
        .post(&items, json!({"displayName": "item 1", "type": "Notebook"}))
        .await
        .expect(409);
    assert_eq!(dup.error_code(), "ItemDisplayNameAlreadyInUse");
    // The same name with another type is fine; fabric-cicd's `"folderId": ""` means no folder.
    env.post(
        &items,
        json!({"displayName": "Item 1", "type": "Report", "folderId": ""}),
    )
    .await
    .expect(201);
    let bad = env
        .post(&items, json!({"displayName": "X", "type": "Spreadsheet"}))
        .await
        .expect(400);
    assert_eq!(bad.error_code(), "InvalidItemType");
    assert_eq!(
        env.post(&items, json!({"displayName": "X"}))
            .await
            .expect(400)
            .error_code(),
        "InvalidInput"
    );

    let only_nb = env.get(&format!("{items}?type=Notebook")).await.expect(200);
    assert_eq!(only_nb.body["value"].as_array().unwrap().len(), 1);
    assert_eq!(
        env.get(&items).await.body["value"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let got = env.get(&format!("{items}/{nb_id}")).await.expect(200);
    assert_eq!(got.body, nb.body);
    let upd = env
        .patch(
            &format!("{items}/{nb_id}"),
            json!({"displayName": "Renamed", "description": "d"}),
        )
        .await
        .expect(200);
    assert_eq!(upd.body["displayName"], "Renamed");
    let long = env
        .patch(
            &format!("{items}/{nb_id}"),
            json!({"description": "d".repeat(257)}),
        )
        .await;
    assert_eq!(long.expect(400).error_code(), "InvalidInput");

    env.delete(&format!("{items}/{nb_id}")).await.expect(200);
    assert_eq!(
        env.get(&format!("{items}/{nb_id}"))
            .await
            .expect(404)
            .error_code(),
        "ItemNotFound"
    );
    let state = env.get("/_emulator/state").await.expect(200).body;
    assert_eq!(state["deletedItems"][0]["id"], nb_id);
    assert_eq!(state["workspaces"][0]["items"].as_array().unwrap().len(), 1);
    let report = env.get(&items).await.body["value"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.delete(&format!("{items}/{report}?hardDelete=true"))
        .await
        .expect(200);
    let state = env.get("/_emulator/state").await.expect(200).body;
    assert_eq!(state["deletedItems"].as_array().unwrap().len(), 1);
    assert_eq!(
        env.delete(&format!("{items}/{report}"))
            .await
            .expect(404)
            .error_code(),
        "ItemNotFound"
    );
}

#[tokio::test]
async fn lro_create_moves_through_states_with_real_timestamps() {
    let env = Env::with(|c| {
        c.create_mode = CreateMode::Lro202;
        c.lro_delay = Duration::from_secs(20);
    })
    .await;
    let ws = env.workspace("Lro", true).await;
    let r = env
        .post(
            &format!("/v1/workspaces/{ws}/items"),
            json!({"displayName": "Nb", "type": "Notebook"}),
        )
        .await
        .expect(202);
    assert_eq!(r.raw, "null");
    assert_eq!(r.header("retry-after"), Some("20"));
    let loc = r.header("location").unwrap().to_string();
    let s0 = env.get(&loc).await.expect(200);
    assert_eq!(s0.body["status"], "NotStarted");
    assert_eq!(s0.body["error"], Value::Null);
    assert_eq!(s0.header("location"), Some(loc.as_str()));
    assert!(
        is_fabric_time(s0.body["createdTimeUtc"].as_str().unwrap()),
        "{}",
        s0.raw
    );
    env.clock.advance(Duration::from_secs(10));
    let s1 = env.get(&loc).await.expect(200);
    assert_eq!(s1.body["status"], "Running");
    assert_eq!(s1.body["percentComplete"], 50);
    assert!(is_fabric_time(
        s1.body["lastUpdatedTimeUtc"].as_str().unwrap()
    ));
    let early = env.get(&format!("{loc}/result")).await.expect(400);
    assert_eq!(early.error_code(), "OperationNotCompleted");
    env.clock.advance(Duration::from_secs(10));
    let s2 = env.get(&loc).await.expect(200);
    assert_eq!(s2.body["status"], "Succeeded");
    assert_eq!(s2.body["percentComplete"], 100);
    assert!(s2.header("retry-after").is_none());
    assert_eq!(s2.header("location").unwrap(), format!("{loc}/result"));
    let result = env.get(&format!("{loc}/result")).await.expect(200);
    assert_eq!(result.body["displayName"], "Nb");
    assert_eq!(result.body["type"], "Notebook");
    let id = result.body["id"].as_str().unwrap();
    env.get(&format!("/v1/workspaces/{ws}/notebooks/{id}"))
        .await
        .expect(200);

    // updateDefinition has no result.
    let upd = env.post(&format!("/v1/workspaces/{ws}/items/{id}/updateDefinition"), json!({"definition": {"parts": [{"path": "notebook-content.py", "payload": "cHJpbnQoMSk=", "payloadType": "InlineBase64"}]}})).await;
    let (state, result) = env.finish(upd).await;
    assert_eq!(state["status"], "Succeeded");
    assert!(result.is_none());
    let op = env.get("/_emulator/requests").await.body["requests"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r["path"].as_str().unwrap().starts_with("/v1/operations/"))
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        env.get(&format!("{op}/result"))
            .await
            .expect(400)
            .error_code(),
        "OperationHasNoResult"
    );
    assert_eq!(
        env.get("/v1/operations/0acd697c-1550-43cd-b998-91bfbfbd47c6")
            .await
            .expect(404)
            .error_code(),
        "EntityNotFound"
    );
}

#[tokio::test]
async fn both_create_modes_are_served() {
    for mode in [CreateMode::Immediate201, CreateMode::Lro202] {
        let env = Env::with(|c| c.create_mode = mode).await;
        let ws = env.workspace("M", true).await;
        let r = env
            .post(
                &format!("/v1/workspaces/{ws}/lakehouses"),
                json!({"displayName": "LH"}),
            )
            .await;
        let item = match mode {
            CreateMode::Immediate201 => r.expect(201).body,
            CreateMode::Lro202 => env.finish(r).await.1.expect("create has a result"),
        };
        assert_eq!(item["type"], "Lakehouse");
        let list = env
            .get(&format!("/v1/workspaces/{ws}/lakehouses"))
            .await
            .expect(200);
        assert_eq!(list.body["value"][0]["id"], item["id"]);
    }
}

#[tokio::test]
async fn definitions_round_trip_with_platform_part_and_update_metadata() {
    let env = Env::start().await;
    let ws = env.workspace("Defs", true).await;
    let content = "IyBGYWJyaWMgbm90ZWJvb2sgc291cmNl";
    let created = env.post(&format!("/v1/workspaces/{ws}/notebooks"), json!({
        "displayName": "Nb 1",
        "definition": {"format": "fabricGitSource", "parts": [{"path": "notebook-content.py", "payload": content, "payloadType": "InlineBase64"}]}
    })).await.expect(201);
    let id = created.body["id"].as_str().unwrap();
    let (_, def) = env
        .finish(
            env.post_empty(&format!("/v1/workspaces/{ws}/notebooks/{id}/getDefinition"))
                .await,
        )
        .await;
    let parts = def.unwrap()["definition"]["parts"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(parts[0]["payload"], content);
    assert_eq!(parts[1]["path"], ".platform");
    let platform = json!({"metadata": {"type": "Notebook", "displayName": "Nb renamed", "description": "via platform"}, "config": {"version": "2.0", "logicalId": "00000000-0000-0000-0000-000000000000"}}).to_string();
    let platform_b64 = encode_b64(platform.as_bytes());
    let upd = env.post(&format!("/v1/workspaces/{ws}/items/{id}/updateDefinition?updateMetadata=true"), json!({
        "definition": {"parts": [{"path": "notebook-content.py", "payload": content, "payloadType": "InlineBase64"}, {"path": ".platform", "payload": platform_b64, "payloadType": "InlineBase64"}]}
    })).await;
    env.finish(upd).await;
    let got = env
        .get(&format!("/v1/workspaces/{ws}/items/{id}"))
        .await
        .expect(200);
    assert_eq!(got.body["displayName"], "Nb renamed");
    assert_eq!(got.body["description"], "via platform");
    let corrupt = env.post(&format!("/v1/workspaces/{ws}/items/{id}/updateDefinition"), json!({"definition": {"parts": [{"path": "a.py", "payload": "cHJpbnQ=", "payloadType": "Url"}]}})).await;
    assert!(corrupt.expect(400).raw.contains("'Url'"));
    let missing = env
        .post(
            &format!("/v1/workspaces/{ws}/items/{id}/updateDefinition"),
            json!({}),
        )
        .await;
    assert!(missing.expect(400).raw.contains("definition"));
}

pub(crate) fn encode_b64(b: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, x)| acc | (u32::from(*x) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn lakehouse_naming_rule_and_properties() {
    let env = Env::with(|c| c.lro_delay = Duration::from_secs(5)).await;
    let ws = env.workspace("Lake", true).await;
    let lh = format!("/v1/workspaces/{ws}/lakehouses");
    for bad in ["lh-demo", "1abc", "has space", &"a".repeat(124), ""] {
        let r = env.post(&lh, json!({"displayName": bad})).await.expect(400);
        assert_eq!(r.error_code(), "InvalidInput", "{bad}");
    }
    env.post(&lh, json!({"displayName": "a".repeat(123)}))
        .await
        .expect(201);
    let created = env
        .post(
            &lh,
            json!({"displayName": "Lakehouse_1", "creationPayload": {"enableSchemas": true}}),
        )
        .await
        .expect(201);
    let id = created.body["id"].as_str().unwrap();
    let got = env.get(&format!("{lh}/{id}")).await.expect(200).body;
    let props = &got["properties"];
    assert_eq!(
        props["oneLakeTablesPath"],
        format!("https://onelake.dfs.fabric.microsoft.com/{ws}/{id}/Tables")
    );
    assert_eq!(
        props["sqlEndpointProperties"],
        json!({"connectionString": null, "id": null, "provisioningStatus": "InProgress"})
    );
    assert_eq!(props["defaultSchema"], "dbo");
    env.clock.advance(Duration::from_secs(5));
    let got = env.get(&format!("{lh}/{id}")).await.expect(200).body;
    assert_eq!(
        got["properties"]["sqlEndpointProperties"]["provisioningStatus"],
        "Success"
    );
    assert!(got["properties"]["sqlEndpointProperties"]["id"].is_string());
    // Typed endpoints only see their type.
    env.post(
        &format!("/v1/workspaces/{ws}/notebooks"),
        json!({"displayName": "nb"}),
    )
    .await
    .expect(201);
    assert_eq!(
        env.get(&lh).await.body["value"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        env.get(&format!("/v1/workspaces/{ws}/notebooks/{id}"))
            .await
            .expect(404)
            .error_code(),
        "ItemNotFound"
    );
    let both = env.post(&lh, json!({"displayName": "B", "creationPayload": {"enableSchemas": true}, "definition": {"parts": []}})).await;
    assert_eq!(both.expect(400).error_code(), "InvalidInput");
}

#[tokio::test]
async fn every_list_pages_with_continuation_token_and_uri() {
    let env = Env::with(|c| c.page_size = 3).await;
    for i in 0..7 {
        env.workspace(&format!("ws{i}"), false).await;
    }
    let mut seen = Vec::new();
    let mut next = Some("/v1/workspaces".to_string());
    let mut pages = 0;
    while let Some(url) = next {
        let page = env.get(&url).await.expect(200);
        pages += 1;
        for w in page.body["value"].as_array().unwrap() {
            seen.push(w["id"].as_str().unwrap().to_string());
        }
        next = page.body["continuationUri"].as_str().map(str::to_string);
        assert_eq!(next.is_some(), page.body.get("continuationToken").is_some());
        if let Some(n) = &next {
            assert!(
                n.starts_with(&env.url("/v1/workspaces?continuationToken=")),
                "{n}"
            );
            // The token alone works as a query parameter too.
            let tok = page.body["continuationToken"].as_str().unwrap();
            assert_eq!(
                env.get(&format!("/v1/workspaces?continuationToken={tok}"))
                    .await
                    .body,
                env.get(n).await.body
            );
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "ids come once each, in id order");
    assert_eq!(seen.len(), 7);
    assert_eq!(
        env.get("/v1/workspaces?continuationToken=%%%")
            .await
            .expect(400)
            .error_code(),
        "InvalidInput"
    );

    // Items keep the type filter in the continuation URI.
    let ws = &seen[0];
    for i in 0..4 {
        env.post(
            &format!("/v1/workspaces/{ws}/items"),
            json!({"displayName": format!("n{i}"), "type": "Notebook"}),
        )
        .await
        .expect(201);
    }
    let p = env
        .get(&format!("/v1/workspaces/{ws}/items?type=Notebook"))
        .await
        .expect(200);
    assert!(
        p.body["continuationUri"]
            .as_str()
            .unwrap()
            .contains("type=Notebook&continuationToken=")
    );
    let p2 = env
        .get(p.body["continuationUri"].as_str().unwrap())
        .await
        .expect(200);
    assert_eq!(p2.body["value"].as_array().unwrap().len(), 1);
    for path in [
        "/v1/capacities",
        &format!("/v1/workspaces/{ws}/roleAssignments"),
        &format!("/v1/workspaces/{ws}/folders"),
        &format!("/v1/workspaces/{ws}/notebooks"),
    ] {
        assert!(
            env.get(path).await.expect(200).body["value"].is_array(),
            "{path}"
        );
    }
}

#[tokio::test]
async fn admin_state_reset_and_request_log() {
    let env = Env::start().await;
    env.delete("/_emulator/requests").await.expect(200);
    let ws = env.workspace("A", false).await;
    env.get(&format!("/v1/workspaces/{ws}")).await.expect(200);
    env.send(Method::GET, "/v1/workspaces", None, None)
        .await
        .expect(401);
    let log = env.get("/_emulator/requests").await.expect(200).body;
    let entries: Vec<(String, String, u64, Value)> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap().into(),
                e["path"].as_str().unwrap().into(),
                e["status"].as_u64().unwrap(),
                e["principal"].clone(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![
            ("POST".into(), "/v1/workspaces".into(), 201, json!(ME)),
            ("GET".into(), format!("/v1/workspaces/{ws}"), 200, json!(ME)),
            ("GET".into(), "/v1/workspaces".into(), 401, Value::Null),
        ]
    );
    // State is canonical: an idempotent read does not change it; a write does.
    let before = env.get("/_emulator/state").await.body;
    env.get(&format!("/v1/workspaces/{ws}")).await.expect(200);
    assert_eq!(env.get("/_emulator/state").await.body, before);
    assert!(before.get("requests").is_none());
    env.workspace("B", false).await;
    let after = env.get("/_emulator/state").await.body;
    let names: Vec<&str> = after["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    let ids: Vec<&str> = after["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted by id");
    env.post_empty("/_emulator/reset").await.expect(200);
    let reset = env.get("/_emulator/state").await.body;
    assert_eq!(reset["workspaces"], json!([]));
    assert_eq!(reset["capacities"].as_array().unwrap().len(), 1);
    env.get("/v1/workspaces").await.expect(200);
    env.delete("/_emulator/requests").await.expect(200);
    assert_eq!(
        env.get("/_emulator/requests").await.body["requests"],
        json!([])
    );
    // Tokens over HTTP, for curl users.
    let t = env
        .post(
            "/_emulator/token",
            json!({"principalId": "someone", "lifetimeSeconds": 60}),
        )
        .await
        .expect(200);
    env.send(
        Method::GET,
        "/v1/workspaces",
        None,
        t.body["accessToken"].as_str(),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn same_seed_same_ids() {
    let ids = |_: ()| async {
        let env = Env::with(|c| c.seed = 42).await;
        let a = env.workspace("a", false).await;
        let b = env.workspace("b", false).await;
        (a, b)
    };
    assert_eq!(ids(()).await, ids(()).await);
    let other = Env::with(|c| c.seed = 43).await;
    assert_ne!(other.workspace("a", false).await, ids(()).await.0);
}

#[tokio::test]
async fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    let env = Env::with(|c| c.state_file = Some(file.clone())).await;
    let ws = env.workspace("Kept", true).await;
    env.post(
        &format!("/v1/workspaces/{ws}/items"),
        json!({"displayName": "n", "type": "Notebook"}),
    )
    .await
    .expect(201);
    let before = env.get("/_emulator/state").await.body;
    let token = env.token.clone();
    let clock = std::sync::Arc::new(env.clock.clone());
    env.emu.shutdown().await.unwrap();
    let emu = Emulator::start(EmulatorConfig {
        state_file: Some(file.clone()),
        clock,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let after: Value = http
        .get(format!("{}/_emulator/state", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before, after);
    // Tokens survive too, and the name index was rebuilt.
    let r = http
        .post(format!("{}/v1/workspaces", emu.base_url()))
        .bearer_auth(&token)
        .json(&json!({"displayName": "kept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    emu.shutdown().await.unwrap();
    std::fs::write(&file, "not json").unwrap();
    let err = Emulator::start(EmulatorConfig {
        state_file: Some(file.clone()),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("state.json"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_get_exactly_one_winner_per_name() {
    let env = std::sync::Arc::new(Env::start().await);
    let ws = env.workspace("Conc", true).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let env = env.clone();
        let ws = ws.clone();
        tasks.push(tokio::spawn(async move {
            // Eight distinct names, each raced by two clients.
            env.post(
                &format!("/v1/workspaces/{ws}/items"),
                json!({"displayName": format!("item{}", i % 8), "type": "Notebook"}),
            )
            .await
            .status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 8);
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 8);
    assert_eq!(
        env.get(&format!("/v1/workspaces/{ws}/items")).await.body["value"]
            .as_array()
            .unwrap()
            .len(),
        8
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_error_shape() {
    let env = Env::start().await;
    let r = env.get("/v1/nothing/here").await.expect(404);
    assert_eq!(r.error_code(), "EntityNotFound");
    let r = env
        .send(Method::PUT, "/v1/workspaces", None, Some(&env.token))
        .await
        .expect(405);
    assert_eq!(r.error_code(), "MethodNotAllowed");
}
