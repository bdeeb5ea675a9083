//! The `properties` a typed GET adds to an item: SQL endpoints, query URIs, the active value
//! set, environment publish details. Everything is derived from the item, its workspace and
//! the clock (provisioning and publishing progress), never stored.

use std::time::SystemTime;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::server::Shared;
use crate::store::{EnvPublish, Item, Workspace};
use crate::types::Props;
use crate::util::{fabric_time, later};

/// The value set a variable library starts with.
pub(crate) const DEFAULT_VALUE_SET: &str = "Default value set";

/// The two collations a warehouse may have (`CollationType`); the first is the default.
pub(crate) const COLLATIONS: &[&str] = &[
    "Latin1_General_100_BIN2_UTF8",
    "Latin1_General_100_CI_AS_KS_WS_SC_UTF8",
];

/// A stable 26-character host label from an id (as the service's `…datawarehouse…` hosts).
fn host_label(id: Uuid) -> String {
    id.simple().to_string()[..26].to_string()
}

/// A Kusto cluster URI for an eventhouse.
fn kusto_uri(prefix: &str, eventhouse: Uuid) -> String {
    format!(
        "https://{prefix}trd-{}.z{}.kusto.fabric.microsoft.com",
        &eventhouse.simple().to_string()[..22],
        eventhouse.as_bytes()[0] % 10
    )
}

/// The SQL endpoint of a lakehouse or mirrored database: `InProgress` with nulls (as the
/// real service sends) until the provisioning delay passed, then `Success`.
fn sql_endpoint(s: &Shared, i: &Item) -> Value {
    let ready = s.now() >= later(i.created_at, s.config.lro_delay);
    match (ready, i.sql_endpoint_id()) {
        (true, Some(id)) => json!({
            "connectionString": format!("{}.datawarehouse.fabric.microsoft.com", host_label(id)),
            "id": id,
            "provisioningStatus": "Success",
        }),
        _ => json!({"connectionString": null, "id": null, "provisioningStatus": "InProgress"}),
    }
}

/// Where an environment's publish is: `Running` until the LRO delay passed, then
/// `Success` (or `Failed` under an injected `lro-fail`).
pub(crate) fn publish_state(p: &EnvPublish, now: SystemTime, delay: std::time::Duration) -> &str {
    if now < later(p.started_at, p.duration.unwrap_or(delay)) {
        "Running"
    } else if p.fails {
        "Failed"
    } else {
        "Success"
    }
}

/// `PublishDetails` of an environment.
pub(crate) fn publish_details(s: &Shared, i: &Item) -> Value {
    let delay = s.config.lro_delay;
    let Some(p) = i.extra.as_ref().and_then(|x| x.publish.as_ref()) else {
        // Never published: what the service reports for a fresh environment.
        return json!({
            "state": "Success",
            "targetVersion": i.logical_id,
            "startTime": fabric_time(i.created_at),
            "endTime": fabric_time(i.created_at),
            "componentPublishInfo": {"sparkLibraries": {"state": "Success"}, "sparkSettings": {"state": "Success"}},
        });
    };
    let state = publish_state(p, s.now(), delay);
    let mut v = json!({
        "state": state,
        "targetVersion": p.target_version,
        "startTime": fabric_time(p.started_at),
        "componentPublishInfo": {"sparkLibraries": {"state": state}, "sparkSettings": {"state": state}},
    });
    if state != "Running" {
        let took = p.duration.unwrap_or(delay);
        v["endTime"] = json!(fabric_time(later(p.started_at, took)));
    }
    v
}

/// The item's `properties` for its typed endpoint, if the type has any.
pub(crate) fn properties(s: &Shared, props: Props, w: &Workspace, i: &Item) -> Option<Value> {
    let x = i.extra.as_deref();
    let onelake = |leaf: &str| {
        format!(
            "https://onelake.dfs.fabric.microsoft.com/{}/{}/{leaf}",
            w.id, i.id
        )
    };
    Some(match props {
        Props::None => return None,
        Props::Lakehouse => {
            let mut p = json!({
                "oneLakeTablesPath": onelake("Tables"),
                "oneLakeFilesPath": onelake("Files"),
                "sqlEndpointProperties": sql_endpoint(s, i),
            });
            if i.enable_schemas {
                p["defaultSchema"] = json!("dbo");
            }
            p
        }
        Props::MirroredDatabase => json!({
            "oneLakeTablesPath": onelake("Tables"),
            "sqlEndpointProperties": sql_endpoint(s, i),
        }),
        Props::Warehouse => json!({
            "connectionString": format!("{}.datawarehouse.fabric.microsoft.com", host_label(w.id)),
            "createdDate": fabric_time(i.created_at),
            "lastUpdatedTime": fabric_time(i.created_at),
            "collationType": x.and_then(|x| x.collation.as_deref()).unwrap_or(COLLATIONS[0]),
        }),
        Props::SqlDatabase => {
            let server = format!("{}.database.fabric.microsoft.com", host_label(i.id));
            let db = format!("{}-{}", i.display_name, i.id);
            json!({
                "connectionString": format!("Data Source={server},1433;Initial Catalog={db};Multiple Active Result Sets=False;Connect Timeout=30;Encrypt=True;Trust Server Certificate=False"),
                "databaseName": db,
                "serverFqdn": format!("{server},1433"),
            })
        }
        Props::Eventhouse => {
            let dbs: Vec<Uuid> = w
                .items
                .values()
                .filter(|d| {
                    d.item_type == "KQLDatabase"
                        && d.extra.as_ref().and_then(|x| x.parent_eventhouse) == Some(i.id)
                })
                .map(|d| d.id)
                .collect();
            json!({
                "queryServiceUri": kusto_uri("", i.id),
                "ingestionServiceUri": kusto_uri("ingest-", i.id),
                "databasesItemIds": dbs,
                "minimumConsumptionUnits": 0,
            })
        }
        Props::KqlDatabase => {
            let parent = x.and_then(|x| x.parent_eventhouse);
            // A database's URIs are its eventhouse's cluster.
            let cluster = parent.unwrap_or(i.id);
            let mut p = json!({
                "queryServiceUri": kusto_uri("", cluster),
                "ingestionServiceUri": kusto_uri("ingest-", cluster),
                "databaseType": x.and_then(|x| x.database_type.as_deref()).unwrap_or("ReadWrite"),
            });
            if let Some(e) = parent {
                p["parentEventhouseItemId"] = json!(e);
            }
            p
        }
        Props::VariableLibrary => json!({
            "activeValueSetName": x.and_then(|x| x.active_value_set.as_deref()).unwrap_or(DEFAULT_VALUE_SET),
        }),
        Props::Environment => json!({"publishDetails": publish_details(s, i)}),
    })
}
