//! Model edge cases the real service produces.

use super::*;

#[test]
fn timestamps_accept_the_real_services_zoneless_form_and_rfc3339() {
    let check = |s: &str, unix_nanos: i128| {
        let t = Timestamp::parse(s).unwrap_or_else(|| panic!("{s}"));
        assert_eq!(t.0.unix_timestamp_nanos(), unix_nanos, "{s}");
    };
    // 2026-06-25T11:15:43Z = 1782386143
    check("2026-06-25T11:15:43.5469603", 1_782_386_143_546_960_300);
    check("2026-06-25T11:15:43", 1_782_386_143_000_000_000);
    check("2026-06-25T11:15:43.5Z", 1_782_386_143_500_000_000);
    check(
        "2026-06-25T13:15:43.5469603+02:00",
        1_782_386_143_546_960_300,
    );
    for bad in ["", "yesterday", "2026-06-25", "2026-13-25T11:15:43"] {
        assert!(Timestamp::parse(bad).is_none(), "{bad}");
    }
    // Serializes as RFC 3339, and reads back equal.
    let t = Timestamp::parse("2026-06-25T11:15:43.5469603").unwrap();
    let s = serde_json::to_string(&t).unwrap();
    assert_eq!(s, "\"2026-06-25T11:15:43.5469603Z\"");
    assert_eq!(serde_json::from_str::<Timestamp>(&s).unwrap(), t);
}

#[test]
fn operation_state_reads_explicit_nulls() {
    let s: OperationState = serde_json::from_str(
        r#"{"status":"Running","createdTimeUtc":"2026-06-25T11:15:43.5469603",
            "lastUpdatedTimeUtc":"2026-06-25T11:15:43.5469603","percentComplete":null,"error":null}"#,
    )
    .unwrap();
    assert_eq!(s.status, OperationStatus::Running);
    assert!(!s.status.is_terminal());
    assert_eq!(s.percent_complete, None);
    assert_eq!(s.error, None);
    assert!(s.created_time_utc.is_some());
}

#[test]
fn unknown_enum_values_are_kept_not_rejected() {
    let item: Item = serde_json::from_str(
        r#"{"id":"1","type":"KustoDashboard","displayName":"d","workspaceId":"w"}"#,
    )
    .unwrap();
    assert_eq!(item.kind, ItemType::Other("KustoDashboard".into()));
    assert_eq!(
        serde_json::to_value(&item.kind).unwrap(),
        serde_json::json!("KustoDashboard")
    );
    let s: OperationState =
        serde_json::from_str(r#"{"status":"Paused","createdTimeUtc":null}"#).unwrap();
    assert_eq!(s.status, OperationStatus::Other("Paused".into()));
    assert!(!s.status.is_terminal());
    assert_eq!(ItemType::from("Lakehouse"), ItemType::Lakehouse);
    assert_eq!(WorkspaceRole::Contributor.to_string(), "Contributor");
}

#[test]
fn nulls_in_strings_and_lists_read_as_empty() {
    let ws: Workspace = serde_json::from_str(
        r#"{"id":"w","displayName":"W","description":null,"tags":null,"capacityId":null}"#,
    )
    .unwrap();
    assert_eq!(ws.description, "");
    assert!(ws.tags.is_empty());
    assert_eq!(ws.capacity_id, None);
    let page: Page<Folder> = serde_json::from_str(r#"{"value":null}"#).unwrap();
    assert!(page.value.is_empty());
    let tables: Page<serde_json::Value> =
        serde_json::from_str(r#"{"data":[{"name":"t"}],"continuationToken":"x"}"#).unwrap();
    assert_eq!(tables.value.len(), 1);
    assert_eq!(tables.continuation_token.as_deref(), Some("x"));
}

#[test]
fn lakehouse_properties_are_typed_and_other_items_keep_raw_properties() {
    let lh: Lakehouse = serde_json::from_str(
        r#"{"id":"l","type":"Lakehouse","displayName":"L","description":"","workspaceId":"w",
            "properties":{"oneLakeTablesPath":"t","oneLakeFilesPath":"f",
            "sqlEndpointProperties":{"connectionString":null,"id":null,"provisioningStatus":"InProgress"}}}"#,
    )
    .unwrap();
    let sql = lh.properties.unwrap().sql_endpoint_properties.unwrap();
    assert_eq!(
        sql.provisioning_status,
        Some(SqlEndpointProvisioningStatus::InProgress)
    );
    assert_eq!(sql.connection_string, None);
    let wh: Item = serde_json::from_str(
        r#"{"id":"x","type":"Warehouse","properties":{"collationType":"Latin1"}}"#,
    )
    .unwrap();
    assert_eq!(wh.properties.unwrap()["collationType"], "Latin1");
}

#[test]
fn definition_parts_round_trip_base64() {
    let part = DefinitionPart::from_bytes("notebook-content.py", b"print('hi')\n");
    assert_eq!(part.payload, "cHJpbnQoJ2hpJykK");
    assert_eq!(part.decode().unwrap(), b"print('hi')\n");
    let json = serde_json::to_value(&part).unwrap();
    assert_eq!(json["payloadType"], "InlineBase64");
}

#[test]
fn requests_omit_absent_fields() {
    let req = CreateItemRequest::new("Bronze", ItemType::Lakehouse);
    assert_eq!(
        serde_json::to_string(&req).unwrap(),
        r#"{"displayName":"Bronze","type":"Lakehouse"}"#
    );
    assert_eq!(
        serde_json::to_string(&UpdateWorkspaceRequest::default()).unwrap(),
        "{}"
    );
}
