//! Tests for loading and validating configurations.

use super::*;

const CONFIG: &str = r#"project:
  name: Sales
  prefix: usf2-fabric
  organization: contoso
environments:
  dev:
    capacity: Trial Capacity
    principals_file: principals/dev.txt
  prod:
    capacity: 11111111-2222-3333-4444-555555555555
workspaces:
  - name: analytics
    description: "Owner: ${env:TEAM}"
    folders: [raw/sales, curated]
    lakehouses:
      - name: BRONZE_Sales_Lakehouse
        folder: raw/sales
    notebooks:
      - name: 01_Ingest_Notebook
        file: nb/ingest.py
        folder: curated
    principals:
      - id: 9117cbfa-f0a7-43b7-846f-96ba66a3c1c0
        role: admin
    git:
      provider: GitHub
      owner: contoso
      repository: fabric
      branch: main
      directory: /analytics
      connection_id: 7d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a
"#;

fn fixture(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("principals")).unwrap();
    std::fs::create_dir_all(dir.path().join("nb")).unwrap();
    std::fs::write(dir.path().join("fabrik.yaml"), config).unwrap();
    std::fs::write(
        dir.path().join("principals/dev.txt"),
        "# id,role,description,type\nb2c3d4e5-0000-4000-8000-000000000001,Viewer,Engineering,Group\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("nb/ingest.py"), "print('hello')\n").unwrap();
    dir
}

fn opts(env: &str) -> LoadOptions {
    LoadOptions {
        environment: env.into(),
        lenient: false,
        env: [("TEAM".to_string(), "data".to_string())]
            .into_iter()
            .collect(),
        secrets: [
            (
                "db-password".to_string(),
                SecretValue::Value("hunter2-very-secret".into()),
            ),
            (
                "missing".to_string(),
                SecretValue::Missing(
                    "secret 'missing' not found (looked in: environment, .env)".into(),
                ),
            ),
        ]
        .into_iter()
        .collect(),
        repositories: Some(crate::publish::reader::RepoReader::shared()),
        sections: crate::engine::Registry::builtin().sections(),
    }
}

#[test]
fn a_good_config_resolves_for_an_environment() {
    let dir = fixture(CONFIG);
    let (d, warnings) = load(&dir.path().join("fabrik.yaml"), &opts("dev")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let w = &d.workspaces[0];
    assert_eq!(w.name, "usf2-fabric-analytics-dev");
    assert_eq!(w.description, "Owner: data");
    assert_eq!(w.capacity, Some(CapacityRef::Name("Trial Capacity".into())));
    assert_eq!(w.folders, vec!["raw", "raw/sales", "curated"]);
    assert_eq!(w.items.len(), 2);
    assert_eq!(
        w.items[1].definition.as_ref().unwrap()[0].0,
        "notebook-content.py"
    );
    let roles: Vec<(&str, &str)> = w
        .principals
        .iter()
        .map(|p| (p.id.as_str(), p.role.as_str()))
        .collect();
    assert_eq!(
        roles,
        vec![
            ("9117cbfa-f0a7-43b7-846f-96ba66a3c1c0", "Admin"),
            ("b2c3d4e5-0000-4000-8000-000000000001", "Viewer")
        ]
    );
    let (p, _) = load(&dir.path().join("fabrik.yaml"), &opts("prod")).unwrap();
    assert_eq!(p.workspaces[0].name, "usf2-fabric-analytics-prod");
    assert!(matches!(p.workspaces[0].capacity, Some(CapacityRef::Id(_))));
    assert_ne!(p.hash, d.hash);
}

/// Each broken input gives its documented error, at the right place.
#[test]
fn broken_configs_report_every_problem_with_positions() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "projetc:\n  name: x\n",
            "dev",
            &["fabrik.yaml:1:1: unknown field `projetc`"],
        ),
        (
            "project:\n  name: x\n  prefix: p\nworkspaces: 5\n",
            "dev",
            &["fabrik.yaml:4:13: workspaces: invalid type"],
        ),
        (
            "project: {name: x, prefix: p}\nenvironments: {dev: {}}\nworkspaces:\n  - name: a\n    lakehouses:\n      - name: bronze-sales\n      - name: ok_lh\n        folder: nowhere\n  - name: a\n",
            "dev",
            &[
                "fabrik.yaml:6:15: lakehouse name 'bronze-sales' must start with a letter",
                "fabrik.yaml:8:17: folder 'nowhere' is not one of this workspace's folders",
                "fabrik.yaml:9:11: workspace 'p-a-dev' is defined twice",
            ],
        ),
        (
            "project: {name: x, prefix: p}\nenvironments: {dev: {}}\n",
            "prod",
            &["environment 'prod' is not defined"],
        ),
        (
            "project: {name: x, prefix: p}\nnaming: {workspace: \"{prefix}-{enviroment}\"}\nworkspaces:\n  - name: a\n    description: ${env:NOPE}\n    principals:\n      - {id: alice@contoso.com, role: Admin}\n      - {id: 9117cbfa-f0a7-43b7-846f-96ba66a3c1c0, role: Owner}\n",
            "dev",
            &[
                "fabrik.yaml:2:21: unknown placeholder {enviroment}",
                "fabrik.yaml:5:18: environment variable NOPE is not set",
                "principal id 'alice@contoso.com' is not an Entra object id",
                "unknown role 'Owner'",
            ],
        ),
        (
            "project: {name: x, prefix: p}\nworkspaces:\n  - name: a\n    notebooks:\n      - {name: n, file: missing.py}\n      - {name: m, file: x.txt}\n    principals_file: principals/bad.txt\n",
            "dev",
            &[
                "cannot read notebook file",
                "must be a .py or .ipynb file",
                "principals/bad.txt:1:38: unknown role 'Owner'",
            ],
        ),
    ];
    for (config, env, expected) in cases {
        let dir = fixture(config);
        std::fs::write(
            dir.path().join("principals/bad.txt"),
            "9117cbfa-f0a7-43b7-846f-96ba66a3c1c0,Owner,x,User\n",
        )
        .unwrap();
        let path = dir.path().join("fabrik.yaml");
        let errs = load(&path, &opts(env)).unwrap_err();
        let lines: Vec<String> = errs
            .iter()
            .map(|p| {
                p.headline()
                    .replace(&format!("{}/", dir.path().display()), "")
            })
            .collect();
        assert_eq!(lines.len(), expected.len(), "{config}\n{lines:#?}");
        for (line, want) in lines.iter().zip(expected.iter()) {
            assert!(line.contains(want), "expected '{want}' in '{line}'");
        }
    }
}

#[test]
fn problems_render_with_a_caret_under_the_column() {
    let text = "a: 1\nname: bronze-sales\n";
    let p = Problem::at_line(
        Path::new("f.yaml"),
        text,
        2,
        7,
        "bad name".into(),
        Some("try 'bronze_sales'".into()),
        false,
    );
    assert_eq!(
        p.to_string(),
        "error: f.yaml:2:7: bad name\n  |\n2 | name: bronze-sales\n  |       ^ try 'bronze_sales'\n"
    );
}

/// Editors validate fabrik.yaml against the shipped schema; it must match the types.
#[test]
fn shipped_json_schema_is_current() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/fabrik.schema.json");
    let text = std::fs::read_to_string(&shipped).unwrap_or_default();
    assert!(
        text == json_schema(&crate::engine::Registry::builtin().sections()),
        "docs/fabrik.schema.json is stale: run `cargo run -p fabrik-cli -- schema > docs/fabrik.schema.json`"
    );
}

#[test]
fn naming_standards_apply_to_items_with_suggested_fixes() {
    let config = "project: {name: x, prefix: p}\nnaming: {standards: seed}\nworkspaces:\n  - name: a\n    lakehouses:\n      - name: sales_gold\n      - name: SILVER_Sales_Lakehouse\n    notebooks:\n      - {name: ingest, file: nb/ingest.py}\n";
    let dir = fixture(config);
    let errs = load(&dir.path().join("fabrik.yaml"), &opts("dev")).unwrap_err();
    let text: Vec<String> = errs.iter().map(|p| p.to_string()).collect();
    assert_eq!(errs.len(), 2, "{text:#?}");
    assert!(
        text[0].contains("6:15: Lakehouse name 'sales_gold' does not match")
            && text[0].contains("try 'GOLD_Sales_Lakehouse'"),
        "{}",
        text[0]
    );
    assert!(
        text[1].contains("9:16: Notebook name 'ingest'")
            && text[1].contains("try '01_Ingest_Notebook'"),
        "{}",
        text[1]
    );

    let bad = "project: {name: x, prefix: p}\nnaming: {standards: nope.yaml}\n";
    let dir = fixture(bad);
    let errs = load(&dir.path().join("fabrik.yaml"), &opts("dev")).unwrap_err();
    assert!(
        errs[0]
            .headline()
            .contains("2:21: cannot read naming standards"),
        "{}",
        errs[0].headline()
    );
}

#[test]
fn secret_references_are_found_substituted_and_reported_when_missing() {
    let config = "project: {name: x, prefix: p}\nworkspaces:\n  - name: a\n    description: \"pw ${secret:db-password}\"\n  - name: b\n    description: ${secret:missing}\n";
    assert_eq!(secret_references(config), vec!["db-password", "missing"]);
    let dir = fixture(config);
    let errs = load(&dir.path().join("fabrik.yaml"), &opts("dev")).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0]
            .headline()
            .contains("6:18: secret 'missing' not found (looked in: environment, .env)"),
        "{}",
        errs[0].headline()
    );
    let ok = "project: {name: x, prefix: p}\nworkspaces:\n  - name: a\n    description: \"pw ${secret:db-password}\"\n";
    let dir = fixture(ok);
    let (d, _) = load(&dir.path().join("fabrik.yaml"), &opts("dev")).unwrap();
    assert_eq!(d.workspaces[0].description, "pw hunter2-very-secret");
    // The value never shows in Debug output of the options.
    assert!(!format!("{:?}", opts("dev")).contains("hunter2"));
}

#[test]
fn a_bad_line_in_a_principals_file_shared_by_workspaces_is_reported_once() {
    let config = "project: {name: x, prefix: p}\nenvironments:\n  dev:\n    principals_file: principals/bad.txt\nworkspaces:\n  - name: a\n  - name: b\n  - name: c\n";
    let dir = fixture(config);
    std::fs::write(
        dir.path().join("principals/bad.txt"),
        "9117cbfa-f0a7-43b7-846f-96ba66a3c1c0,Owner,x,User\n",
    )
    .unwrap();
    let errs = load(&dir.path().join("fabrik.yaml"), &opts("dev")).unwrap_err();
    let owner: Vec<String> = errs
        .iter()
        .map(Problem::headline)
        .filter(|h| h.contains("unknown role 'Owner'"))
        .collect();
    assert_eq!(owner.len(), 1, "{errs:#?}");
}

/// A kind's part of a workspace, as the seam tests own one.
#[derive(Debug, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Widget {
    name: String,
    size: u32,
}

fn widgets() -> Section {
    Section::new::<Vec<Widget>>("widgets", |ws| {
        ws.iter()
            .enumerate()
            .filter(|(_, w)| w.size == 0)
            .map(|(i, w)| {
                Finding::at(
                    format!("[{i}].size"),
                    format!("widget {} has size 0", w.name),
                )
                .hint("at least 1")
            })
            .collect()
    })
}

fn with_widgets(env: &str) -> LoadOptions {
    let mut o = opts(env);
    o.sections.push(widgets());
    o
}

#[test]
fn a_kind_owns_a_workspace_key_read_as_its_type() {
    let config = "project: {name: x, prefix: p}\nworkspaces:\n  - name: a\n    widgets:\n      - name: w-${env:TEAM}\n        size: 3\n";
    let dir = fixture(config);
    let (d, _) = load(&dir.path().join("fabrik.yaml"), &with_widgets("dev")).expect("loads");
    let w: Option<Vec<Widget>> = d.workspaces[0].section("widgets").expect("a widget list");
    let expected = Widget {
        name: "w-data".into(),
        size: 3,
    };
    assert_eq!(w, Some(vec![expected]));
    assert_eq!(d.workspaces[0].section::<Vec<Widget>>("gadgets"), Ok(None));
    let wrong = d.workspaces[0].section::<String>("widgets").unwrap_err();
    assert!(wrong.contains("workspace p-a-dev: widgets"), "{wrong}");
}

#[test]
fn a_kinds_key_is_checked_at_the_value_it_is_about() {
    let config = "project: {name: x, prefix: p}\nworkspaces:\n  - name: a\n    widgets:\n      - {name: w1, size: 1}\n      - name: w2\n        size: nine\n      - {name: w3, size: 0}\n    gadgets: []\n";
    let dir = fixture(config);
    let errs = load(&dir.path().join("fabrik.yaml"), &with_widgets("dev")).unwrap_err();
    let heads: Vec<String> = errs.iter().map(Problem::headline).collect();
    // A type error ends the reading of the value, so the third widget's check waits for it.
    assert_eq!(heads.len(), 2, "{heads:?}");
    let type_error = "fabrik.yaml:7:15: widgets[1].size: invalid type: string \"nine\"";
    assert!(heads[0].contains(type_error), "{heads:?}");
    let unknown = "fabrik.yaml:9:5: workspaces[0]: unknown field `gadgets`, expected one of";
    assert!(heads[1].contains(unknown), "{heads:?}");
    assert!(
        heads[1].contains("`widgets`") && heads[1].contains("`lakehouses`"),
        "{heads:?}"
    );
    let fixed = config
        .replace("size: nine", "size: 9")
        .replace("    gadgets: []\n", "");
    std::fs::write(dir.path().join("fabrik.yaml"), &fixed).unwrap();
    let errs = load(&dir.path().join("fabrik.yaml"), &with_widgets("dev")).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    let check = "fabrik.yaml:8:26: widgets[2].size: widget w3 has size 0";
    assert!(errs[0].headline().ends_with(check), "{errs:?}");
    assert_eq!(errs[0].hint.as_deref(), Some("at least 1"));
    // Without the kind, its key is unknown like any other.
    let errs = load(&dir.path().join("fabrik.yaml"), &opts("dev")).unwrap_err();
    let unknown = "fabrik.yaml:4:5: workspaces[0]: unknown field `widgets`";
    assert!(
        errs.iter().any(|p| p.headline().contains(unknown)),
        "{errs:?}"
    );
}

#[test]
fn a_kinds_key_is_in_the_json_schema_of_the_workspace() {
    let schema: serde_json::Value = serde_json::from_str(&json_schema(&[widgets()])).unwrap();
    let ws = &schema["$defs"]["Workspace"];
    assert_eq!(ws["additionalProperties"], false);
    assert_eq!(ws["properties"]["widgets"]["type"], "array");
    assert_eq!(
        ws["properties"]["widgets"]["items"]["$ref"],
        "#/$defs/Widget"
    );
    assert_eq!(
        schema["$defs"]["Widget"]["required"],
        serde_json::json!(["name", "size"])
    );
    let without: serde_json::Value = serde_json::from_str(&json_schema(&[])).unwrap();
    assert!(without["$defs"]["Workspace"]["properties"]["widgets"].is_null());
}
