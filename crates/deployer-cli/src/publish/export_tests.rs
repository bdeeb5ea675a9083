//! Export round trips: discover(export(x)) gives back x.

use super::*;
use crate::publish::repo::tests::fixture;
use crate::publish::repo::{DiscoverOptions, Repository};

/// Type, name, description, logicalId, folder, creationPayload and parts of one item.
type Essence = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<Value>,
    Vec<Part>,
);

/// Everything discovery reports about an item, `.platform` aside (export writes its own).
fn essence(repo: &Repository) -> Vec<Essence> {
    let mut v: Vec<_> = repo
        .items
        .iter()
        .map(|i| {
            (
                i.item_type.to_string(),
                i.display_name.clone(),
                i.description.clone(),
                i.logical_id.clone(),
                i.folder.clone(),
                i.platform_creation_payload.clone(),
                i.parts
                    .iter()
                    .filter(|p| p.path != ".platform")
                    .cloned()
                    .collect(),
            )
        })
        .collect();
    v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    v
}

/// Every file under `dir` with its bytes, relative and sorted.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn fixture_round_trips_through_export() {
    let original = Repository::discover(&fixture(), &DiscoverOptions::default()).unwrap();
    let items: Vec<_> = original
        .items
        .iter()
        .map(|i| ExportItem::from_repo(i, &i.logical_id))
        .collect();
    let out = tempfile::tempdir().unwrap();
    let dirs = export(out.path(), &items, &ExportOptions::default()).unwrap();
    assert_eq!(dirs[5], "notebooks/Ingest.Notebook");
    let back = Repository::discover(out.path(), &DiscoverOptions::default()).unwrap();
    assert!(back.warnings.is_empty(), "{:?}", back.warnings);
    assert_eq!(essence(&back), essence(&original));
    assert_eq!(back.folders, original.folders);
    // The byPath report still finds its model.
    let report = back.find(ItemType::Report, "Sales").unwrap();
    assert_eq!(
        back.report_semantic_model(report)
            .unwrap()
            .unwrap()
            .logical_id,
        report.logical_id.replace("4c0b", "4c0a")
    );
    // Exporting what was read back gives the same tree, byte for byte.
    let again: Vec<_> = back
        .items
        .iter()
        .map(|i| ExportItem::from_repo(i, &i.logical_id))
        .collect();
    let out2 = tempfile::tempdir().unwrap();
    export(out2.path(), &again, &ExportOptions::default()).unwrap();
    assert_eq!(tree(out2.path()), tree(out.path()));
    // The .platform Git integration writes, field order included.
    let platform = fs::read_to_string(out.path().join("Gold.Warehouse/.platform")).unwrap();
    assert_eq!(
        platform,
        format!(
            "{{\n  \"$schema\": \"{PLATFORM_SCHEMA}\",\n  \"metadata\": {{\n    \"type\": \"Warehouse\",\n    \"displayName\": \"Gold\",\n    \"creationPayload\": {{\n      \"defaultCollation\": \"Latin1_General_100_CI_AS_KS_WS_SC_UTF8\"\n    }}\n  }},\n  \"config\": {{\n    \"version\": \"2.0\",\n    \"logicalId\": \"3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c04\"\n  }}\n}}\n"
        )
    );
}

fn text(path: &str, t: &str) -> Part {
    Part::from_file_bytes(path.to_string(), t.as_bytes().to_vec())
}

fn item(id: &str, t: ItemType, name: &str, folder: Option<&str>, parts: Vec<Part>) -> ExportItem {
    ExportItem {
        id: id.into(),
        item_type: t,
        display_name: name.into(),
        description: String::new(),
        folder: folder.map(str::to_string),
        logical_id: None,
        creation_payload: None,
        parts,
    }
}

#[test]
fn kql_databases_go_under_their_eventhouse_and_workspace_ids_become_zero() {
    let ws = "aaaaaaaa-1111-4222-8333-444444444444";
    let nb = format!("# META \"workspaceId\": \"{ws}\"\n");
    let items = vec![
        item(
            "id-db",
            ItemType::KQLDatabase,
            "Db",
            Some("/ignored"),
            vec![text(
                "DatabaseProperties.json",
                "{\"parentEventhouseItemId\": \"id-eh\"}",
            )],
        ),
        item(
            "id-eh",
            ItemType::Eventhouse,
            "Eh",
            Some("/rt"),
            vec![text("EventhouseProperties.json", "{}")],
        ),
        item(
            "id-nb",
            ItemType::Notebook,
            "a/b",
            None,
            vec![text("notebook-content.py", &nb)],
        ),
        item(
            "id-nb2",
            ItemType::Notebook,
            "A_b",
            None,
            vec![text("notebook-content.py", "x")],
        ),
        item(
            "id-env",
            ItemType::Environment,
            "Env",
            Some("/rt/libs"),
            vec![Part::from_file_bytes(
                "Libraries/CustomLibraries/x.whl".into(),
                b"PK\x03\x04zip".to_vec(),
            )],
        ),
    ];
    let out = tempfile::tempdir().unwrap();
    let opts = ExportOptions {
        workspace_id: Some(ws.into()),
        ..ExportOptions::default()
    };
    let dirs = export(out.path(), &items, &opts).unwrap();
    assert_eq!(
        dirs,
        [
            "rt/Eh.Eventhouse/.children/Db.KQLDatabase",
            "rt/Eh.Eventhouse",
            "a_b.Notebook",
            "A_b (2).Notebook",
            "rt/libs/Env.Environment"
        ]
    );
    let repo = Repository::discover(out.path(), &DiscoverOptions::default()).unwrap();
    let db = repo.find(ItemType::KQLDatabase, "Db").unwrap();
    assert_eq!(
        (db.logical_id.as_str(), db.folder.as_deref()),
        ("id-db", Some("/rt"))
    );
    assert_eq!(
        repo.kql_parent_eventhouse(db)
            .unwrap()
            .unwrap()
            .display_name,
        "Eh"
    );
    let eh = repo.find(ItemType::Eventhouse, "Eh").unwrap();
    assert_eq!(eh.parts.len(), 2, ".children is not part of the eventhouse");
    let nb = repo.find(ItemType::Notebook, "a/b").unwrap();
    assert_eq!(
        nb.part("notebook-content.py").unwrap().text(),
        Some("# META \"workspaceId\": \"00000000-0000-0000-0000-000000000000\"\n")
    );
    let whl = repo
        .find(ItemType::Environment, "Env")
        .unwrap()
        .part("Libraries/CustomLibraries/x.whl")
        .unwrap();
    assert_eq!(
        (whl.kind, whl.bytes.as_slice()),
        (PartKind::Binary, b"PK\x03\x04zip".as_slice())
    );
    assert_eq!(repo.folders, ["/rt", "/rt/libs"]);
}

#[test]
fn export_refuses_to_write_over_a_tree_or_outside_the_item() {
    let opts = ExportOptions::default();
    // Nothing is written over an existing tree or outside an item directory.
    let out = tempfile::tempdir().unwrap();
    fs::write(out.path().join("README.md"), "x").unwrap();
    let items = [item("x", ItemType::Notebook, "N", None, vec![])];
    assert!(matches!(
        export(out.path(), &items, &opts),
        Err(ExportError::NotEmpty(_))
    ));
    let evil = item(
        "x",
        ItemType::Notebook,
        "N",
        None,
        vec![text("../../etc/passwd", "x")],
    );
    let empty = tempfile::tempdir().unwrap();
    let err = export(empty.path(), &[evil], &opts)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "N.Notebook: part path `../../etc/passwd` leaves the item directory"
    );
    let evil = item("x", ItemType::Notebook, "N", Some("/a/../.."), vec![]);
    let err = export(empty.path(), &[evil], &opts)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "N.Notebook: folder `/a/../..` is not a path of folder names"
    );
    assert!(tree(empty.path()).is_empty());
}

#[test]
fn pools_environments_name_become_spark_pool_entries_that_resolve_by_name_in_any_environment() {
    use crate::publish::parameter::{LoadOptions, PoolType, load_str};
    use fabrik_client::models::SparkPool;
    let pool = |id: &str, name: &str, kind: &str| SparkPool {
        id: id.into(),
        name: name.into(),
        kind: kind.into(),
    };
    let used = "11111111-2222-4333-8444-555555555555";
    let pools = [
        pool(used, "Small \"Pool\"", "Workspace"),
        pool("99999999-2222-4333-8444-555555555555", "Idle", "Capacity"),
    ];
    let env = |name: &str, pool_id: &str| {
        item(
            name,
            ItemType::Environment,
            name,
            None,
            vec![text(
                "Setting/Sparkcompute.yml",
                &format!("driver_cores: 4\ninstance_pool_id: {pool_id}\n"),
            )],
        )
    };
    // An id the workspace does not list (a starter pool) is left alone: no parameter.yml.
    let unlisted = [env("Starter", "00000000-aaaa-4bbb-8ccc-000000000000")];
    assert_eq!(spark_pool_parameters(&unlisted, &pools), None);

    let items = [env("Spark", used), env("Other", used)];
    let text = spark_pool_parameters(&items, &pools).unwrap();
    assert_eq!(text.matches("instance_pool_id").count(), 1, "{text}");
    assert!(!text.contains("Idle"), "only pools in use: {text}");
    let repo = std::path::Path::new("/repo");
    let (params, warnings) = load_str(
        &repo.join("parameter.yml"),
        &text,
        &LoadOptions {
            repository: repo,
            environment: Some("PROD"),
            env_vars_enabled: false,
        },
    )
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let r = params.spark_pool_for("PROD", "Other", used).unwrap();
    assert_eq!(
        (r.pool.pool_type, r.pool.name.as_str()),
        (PoolType::Workspace, "Small \"Pool\"")
    );
}

#[test]
fn export_writes_the_spark_pool_parameters_beside_the_items() {
    use fabrik_client::models::SparkPool;
    let id = "11111111-2222-4333-8444-555555555555";
    let items = [item(
        "e",
        ItemType::Environment,
        "Spark",
        None,
        vec![text(
            "Setting/Sparkcompute.yml",
            &format!("instance_pool_id: {id}\n"),
        )],
    )];
    let opts = ExportOptions {
        pools: vec![SparkPool {
            id: id.into(),
            name: "SmallPool".into(),
            kind: "Workspace".into(),
        }],
        ..ExportOptions::default()
    };
    let out = tempfile::tempdir().unwrap();
    export(out.path(), &items, &opts).unwrap();
    let written = fs::read_to_string(out.path().join("parameter.yml")).unwrap();
    assert_eq!(Some(written), spark_pool_parameters(&items, &opts.pools));
    let repo = Repository::discover(out.path(), &DiscoverOptions::default()).unwrap();
    assert_eq!(repo.items.len(), 1, "parameter.yml is not an item");
}
