//! Tests of `parameter.yml`: loading and its errors, every rule kind and dynamic variable, and
//! the shared fixture rendered for `test` and `prod` against fixed fake deployed ids.
//!
//! The fixture expectations were derived from fabric-cicd's rules by hand, then compared with
//! the output of fabric-cicd 1.4.0's own text-pipeline functions run on the same files and ids:
//! all 44 rendered parts (22 per environment) were identical.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::config::Problem;

const WS: &str = "99999999-9999-4999-8999-999999999999";
const LID: &str = "3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c";
const DEP: &str = "dddddddd-0000-4000-8000-0000000000";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/git-format-repo")
}

fn opts<'a>(repo: &'a Path, env: Option<&'a str>) -> LoadOptions<'a> {
    LoadOptions {
        repository: repo,
        environment: env,
        env_vars_enabled: false,
    }
}

/// Loads `text` as `/repo/parameter.yml`.
fn load_text(text: &str) -> Result<(Parameters, Vec<Problem>), Vec<Problem>> {
    load_str(
        Path::new("/repo/parameter.yml"),
        text,
        &opts(Path::new("/repo"), None),
    )
}

fn params(text: &str) -> Parameters {
    match load_text(text) {
        Ok((p, _)) => p,
        Err(e) => panic!("{}", e.iter().map(|p| p.to_string()).collect::<String>()),
    }
}

fn errors(text: &str) -> Vec<Problem> {
    match load_text(text) {
        Ok((_, w)) => panic!("expected errors, got warnings only: {w:?}"),
        Err(e) => e.into_iter().filter(Problem::is_error).collect(),
    }
}

/// The (line, col) and message of each problem, for readable assertions.
fn brief(ps: &[Problem]) -> Vec<(usize, usize, String)> {
    ps.iter()
        .map(|p| {
            let pos = p.pos.expect("every problem has a position");
            (pos.line, pos.col, p.message.clone())
        })
        .collect()
}

#[derive(Default)]
struct Fake {
    workspaces: HashMap<String, String>,
    items: HashMap<(Option<String>, String, String), ItemAttrs>,
    env: HashMap<String, String>,
}

impl Lookup for Fake {
    fn workspace_id(&self, name: &str) -> Option<String> {
        self.workspaces.get(name).cloned()
    }
    fn item(&self, workspace: Option<&str>, item_type: &str, name: &str) -> Option<ItemAttrs> {
        let key = (
            workspace.map(str::to_string),
            item_type.to_string(),
            name.to_string(),
        );
        self.items.get(&key).cloned()
    }
    fn env(&self, var: &str) -> Option<String> {
        self.env.get(var).cloned()
    }
}

/// Deployed ids for the fixture's items: logicalId `…4cNN` is deployed as `dddd…00NN`.
fn fake() -> Fake {
    let mut f = Fake::default();
    f.workspaces.insert(
        "Shared-Prod".into(),
        "eeeeeeee-0000-4000-8000-000000000001".into(),
    );
    let mut add = |ws: Option<&str>, t: &str, n: &str, attrs: ItemAttrs| {
        f.items
            .insert((ws.map(str::to_string), t.into(), n.into()), attrs);
    };
    add(
        None,
        "Lakehouse",
        "Bronze",
        ItemAttrs {
            id: format!("{DEP}02"),
            sql_endpoint: Some("bronze.sql.fabric.microsoft.com".into()),
            sql_endpoint_id: Some("51515151-0000-4000-8000-000000000002".into()),
            query_service_uri: None,
        },
    );
    add(
        None,
        "Eventhouse",
        "Events",
        ItemAttrs {
            id: format!("{DEP}20"),
            query_service_uri: Some("https://events.kusto.fabric.microsoft.com".into()),
            ..ItemAttrs::default()
        },
    );
    add(
        Some("Shared-Prod"),
        "Warehouse",
        "Gold",
        ItemAttrs {
            id: "eeeeeeee-0000-4000-8000-000000000004".into(),
            sql_endpoint: Some("gold.prod.sql.fabric.microsoft.com".into()),
            ..ItemAttrs::default()
        },
    );
    f
}

fn target(env: &str) -> Target<'_> {
    Target {
        environment: env,
        workspace_id: WS,
        workspace_name: "Sales Test",
    }
}

fn fixture_ids() -> Vec<(String, String)> {
    [
        "01", "02", "03", "04", "05", "06", "07", "08", "09", "0a", "0b",
    ]
    .iter()
    .map(|n| (format!("{LID}{n}"), format!("{DEP}{n}")))
    .collect()
}

/// Renders `part` of the fixture with its parameter.yml in `env`.
fn render_fixture(env: &str, item_type: &str, item_name: &str, path: &str) -> (String, String) {
    let repo = fixture();
    let (p, _) = load(&repo.join("parameter.yml"), &opts(&repo, Some(env))).expect("fixture loads");
    let original = std::fs::read_to_string(repo.join(path)).expect("fixture file");
    let ids = fixture_ids();
    let lids: Vec<LogicalId<'_>> = ids
        .iter()
        .map(|(l, d)| LogicalId {
            logical_id: l,
            deployed_id: Some(d),
        })
        .collect();
    let part = Part {
        item_type,
        item_name,
        path,
    };
    let out = render_part(Some(&p), &target(env), &part, &original, &lids, &fake())
        .unwrap_or_else(|e| panic!("{e}"));
    (original, out)
}

fn render(p: &Parameters, env: &str, part: Part<'_>, text: &str) -> Result<String, RenderError> {
    apply_parameters(p, &target(env), &part, text, &fake())
}

fn nb(path: &str) -> Part<'_> {
    Part {
        item_type: "Notebook",
        item_name: "Ingest",
        path,
    }
}

const INGEST: &str = "notebooks/Ingest.Notebook/notebook-content.py";

// ---- The shared fixture, environments test and prod ----

#[test]
fn fixture_loads_without_problems_for_test_and_prod() {
    let repo = fixture();
    for env in ["test", "prod"] {
        let (p, warnings) =
            load(&repo.join("parameter.yml"), &opts(&repo, Some(env))).expect("loads");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            (
                p.find_replace.len(),
                p.key_value_replace.len(),
                p.spark_pool.len()
            ),
            (3, 2, 1)
        );
    }
}

#[test]
fn fixture_ingest_notebook_gets_every_substitution() {
    for (env, account) in [("test", "stdatatest"), ("prod", "stdataprod")] {
        let (orig, out) = render_fixture(env, "Notebook", "Ingest", INGEST);
        let expected = orig
            // find_replace 1: dev Bronze id (default_lakehouse and known_lakehouses) → $items id
            .replace("bbbbbbbb-1111-4222-8333-555555555555", &format!("{DEP}02"))
            // find_replace 2: regex group 1 (dev workspace id) → $workspace.$id
            .replace(
                "\"default_lakehouse_workspace_id\": \"aaaaaaaa-1111-4222-8333-444444444444\"",
                &format!("\"default_lakehouse_workspace_id\": \"{WS}\""),
            )
            // logicalId step: environment logicalId → deployed environment id
            .replace(&format!("{LID}05"), &format!("{DEP}05"))
            // zero workspace id step
            .replace(
                "\"workspaceId\": \"00000000-0000-0000-0000-000000000000\"",
                &format!("\"workspaceId\": \"{WS}\""),
            )
            // find_replace 3: per-environment literal
            .replace("stdatadev", account);
        assert_eq!(out, expected, "{env}");
        assert_ne!(out, orig);
        assert_eq!(out.matches(&format!("{DEP}02")).count(), 2);
    }
}

#[test]
fn fixture_utils_notebook_is_untouched() {
    for env in ["test", "prod"] {
        let (orig, out) = render_fixture(
            env,
            "Notebook",
            "Utils",
            "notebooks/shared/Utils.Notebook/notebook-content.py",
        );
        assert_eq!(out, orig);
    }
}

#[test]
fn fixture_schedules_are_rewritten_like_json_dumps() {
    for (env, enabled) in [("test", "false"), ("prod", "true")] {
        let (_, out) = render_fixture(
            env,
            "DataPipeline",
            "Daily Load",
            "pipelines/Daily Load.DataPipeline/.schedules",
        );
        let expected = format!(
            "{{\"$schema\": \"https://developer.microsoft.com/json-schemas/fabric/gitIntegration/schedules/1.0.0/schema.json\", \"schedules\": [{{\"enabled\": {enabled}, \"jobType\": \"Execute\", \"configuration\": {{\"type\": \"Cron\", \"startDateTime\": \"2025-07-01T02:00:00\", \"endDateTime\": \"2030-07-01T02:00:00\", \"localTimeZoneId\": \"UTC\", \"interval\": 1440}}}}]}}"
        );
        assert_eq!(out, expected, "{env}");
    }
}

#[test]
fn fixture_pipelines_point_at_deployed_ids_and_keep_their_format() {
    for env in ["test", "prod"] {
        let (orig, out) = render_fixture(
            env,
            "DataPipeline",
            "Daily Load",
            "pipelines/Daily Load.DataPipeline/pipeline-content.json",
        );
        let expected = orig
            .replace(&format!("{LID}06"), &format!("{DEP}06"))
            .replace(
                "\"workspaceId\": \"00000000-0000-0000-0000-000000000000\"",
                &format!("\"workspaceId\": \"{WS}\""),
            );
        assert_eq!(out, expected);
        let (orig, out) = render_fixture(
            env,
            "DataPipeline",
            "Orchestrate",
            "pipelines/Orchestrate.DataPipeline/pipeline-content.json",
        );
        assert_eq!(out, orig.replace(&format!("{LID}08"), &format!("{DEP}08")));
    }
}

#[test]
fn fixture_variable_library_gets_parameters_only() {
    for (env, value) in [("test", "stdatatest"), ("prod", "stdataprod")] {
        let (_, out) = render_fixture(
            env,
            "VariableLibrary",
            "Config",
            "Config.VariableLibrary/variables.json",
        );
        let expected = format!(
            "{{\"$schema\": \"https://developer.microsoft.com/json-schemas/fabric/item/variableLibrary/definition/variables/1.0.0/schema.json\", \"variables\": [{{\"name\": \"StorageAccount\", \"note\": \"\", \"type\": \"String\", \"value\": \"{value}\"}}, {{\"name\": \"BatchSize\", \"note\": \"\", \"type\": \"Integer\", \"value\": 100}}]}}"
        );
        assert_eq!(out, expected, "{env}");
        // The entry has no file_path: every JSON file of the item is re-serialized, found or not.
        let (_, out) = render_fixture(
            env,
            "VariableLibrary",
            "Config",
            "Config.VariableLibrary/settings.json",
        );
        assert_eq!(
            out,
            "{\"$schema\": \"https://developer.microsoft.com/json-schemas/fabric/item/variableLibrary/definition/settings/1.0.0/schema.json\", \"valueSetsOrder\": [\"test\", \"prod\"]}"
        );
    }
}

#[test]
fn fixture_shortcuts_and_platform() {
    let (orig, out) = render_fixture(
        "test",
        "Lakehouse",
        "Silver",
        "Silver.Lakehouse/shortcuts.metadata.json",
    );
    let expected = orig
        .replace(&format!("{LID}02"), &format!("{DEP}02"))
        .replace(
            "\"workspaceId\": \"00000000-0000-0000-0000-000000000000\"",
            &format!("\"workspaceId\": \"{WS}\""),
        );
    assert_eq!(out, expected);
    // .platform is sent as written.
    let (orig, out) = render_fixture(
        "test",
        "Notebook",
        "Ingest",
        "notebooks/Ingest.Notebook/.platform",
    );
    assert_eq!(out, orig);
    assert!(out.contains(&format!("{LID}06")));
}

#[test]
fn fixture_spark_pool_per_environment() {
    let repo = fixture();
    let (p, _) = load(&repo.join("parameter.yml"), &opts(&repo, None)).expect("loads");
    let dev = "cccccccc-1111-4222-8333-666666666666";
    let t = p.spark_pool_for("test", "Spark", dev).expect("test pool");
    assert_eq!(
        t.pool,
        PoolRef {
            pool_type: PoolType::Workspace,
            name: "SmallPool".into()
        }
    );
    let pr = p.spark_pool_for("prod", "Spark", dev).expect("prod pool");
    assert_eq!(
        pr.pool,
        PoolRef {
            pool_type: PoolType::Capacity,
            name: "ProdCapacityPool".into()
        }
    );
    assert!(
        p.spark_pool_for("prod", "Other", dev).is_none(),
        "item_name filter"
    );
    assert!(p.spark_pool_for("prod", "Spark", "another-id").is_none());
    let (orig, out) = render_fixture(
        "test",
        "Environment",
        "Spark",
        "Spark.Environment/Setting/Sparkcompute.yml",
    );
    assert_eq!(
        out, orig,
        "spark_pool is the publisher's type step, not a text rule"
    );
    assert_eq!(instance_pool_id(&orig).as_deref(), Some(dev));
    let pool = "77777777-0000-4000-8000-000000000001";
    // PyYAML writes this file back exactly as git wrote it, with the new pool id.
    assert_eq!(
        render_sparkcompute(&orig, Some(pool)),
        orig.replace(dev, pool)
    );
    assert_eq!(render_sparkcompute(&orig, None), orig);
    let odd = "# comment\ninstance_pool_id: 'x'\nflags: [a, 'yes']\nname: \"\"\nnested: {k: 1.0, e: 1.0e-7, s: 1e-07}\n";
    assert_eq!(
        render_sparkcompute(odd, Some(pool)),
        format!(
            "instance_pool_id: {pool}\nflags:\n- a\n- 'yes'\nname: ''\nnested:\n  k: 1.0\n  e: 1.0e-07\n  s: 1e-07\n"
        )
    );
    assert_eq!(
        render_sparkcompute("driver_cores: 8\n", Some(pool)),
        "driver_cores: 8\n"
    );
}

fn fixture_items() -> Vec<(String, String, Vec<String>)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String, Vec<String>)>) {
        let platform = dir.join(".platform");
        if platform.is_file() {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&platform).expect("read"))
                    .expect("json");
            let mut files = Vec::new();
            collect(dir, root, &mut files);
            out.push((
                v["metadata"]["type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                v["metadata"]["displayName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                files,
            ));
            return;
        }
        for e in std::fs::read_dir(dir).expect("dir").flatten() {
            if e.path().is_dir() {
                walk(&e.path(), root, out);
            }
        }
    }
    fn collect(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("dir").flatten() {
            if e.path().is_dir() {
                collect(&e.path(), root, out);
            } else {
                let rel = e
                    .path()
                    .strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(&fixture(), &fixture(), &mut out);
    out
}

#[test]
fn fixture_filters_all_match_and_references_are_found() {
    let repo = fixture();
    let (p, _) = load(&repo.join("parameter.yml"), &opts(&repo, None)).expect("loads");
    let items = fixture_items();
    assert_eq!(items.len(), 11);
    let repo_items: Vec<RepoItem<'_>> = items
        .iter()
        .map(|(t, n, f)| RepoItem {
            item_type: t,
            name: n,
            paths: f,
        })
        .collect();
    assert!(
        p.filter_warnings(&repo_items).is_empty(),
        "{:?}",
        p.filter_warnings(&repo_items)
    );

    let ids = fixture_ids();
    let lids: Vec<&str> = ids.iter().map(|(l, _)| l.as_str()).collect();
    let text = std::fs::read_to_string(repo.join(INGEST)).expect("read");
    let r = references(Some(&p), "test", &nb(INGEST), &text, &lids);
    assert_eq!(r.logical_ids, vec![format!("{LID}05")]);
    assert_eq!(
        r.items,
        vec![("Lakehouse".to_string(), "Bronze".to_string())]
    );
    let path = "pipelines/Orchestrate.DataPipeline/pipeline-content.json";
    let text = std::fs::read_to_string(repo.join(path)).expect("read");
    let part = Part {
        item_type: "DataPipeline",
        item_name: "Orchestrate",
        path,
    };
    let r = references(Some(&p), "test", &part, &text, &lids);
    assert_eq!(
        r,
        References {
            logical_ids: vec![format!("{LID}08")],
            items: vec![],
            other_workspace_items: vec![],
        }
    );
    let path = "notebooks/shared/Utils.Notebook/notebook-content.py";
    let text = std::fs::read_to_string(repo.join(path)).expect("read");
    let part = Part {
        item_type: "Notebook",
        item_name: "Utils",
        path,
    };
    assert_eq!(
        references(Some(&p), "test", &part, &text, &lids),
        References::default()
    );
}

#[test]
fn filters_that_match_nothing_are_warnings_at_their_position() {
    let p = params(
        "find_replace:\n  - find_value: a\n    replace_value: {_ALL_: b}\n    item_type: Notebook\n    item_name: Nope\n  - find_value: a\n    replace_value: {_ALL_: b}\n    file_path: \"**/*.missing\"\n  - find_value: a\n    replace_value: {_ALL_: b}\n    item_type: Lakehouse\n    item_name: Ingest\n",
    );
    let files = vec!["notebooks/Ingest.Notebook/notebook-content.py".to_string()];
    let items = [RepoItem {
        item_type: "Notebook",
        name: "Ingest",
        paths: &files,
    }];
    let w = brief(&p.filter_warnings(&items));
    assert_eq!(w.len(), 3, "{w:?}");
    assert_eq!((w[0].0, w[0].1), (5, 16));
    assert!(w[0].2.contains("`item_name` `Nope`"));
    assert_eq!((w[1].0, w[1].1), (8, 16));
    assert!(w[1].2.contains("`file_path` `**/*.missing`"));
    assert_eq!((w[2].0, w[2].1), (11, 16));
    assert!(w[2].2.contains("`item_type` `Lakehouse`"));
    // Each value exists, but no item is both a Lakehouse and named Ingest: warned at the entry.
    let p = params(
        "find_replace:\n  - find_value: a\n    replace_value: {_ALL_: b}\n    item_type: Notebook\n    file_path: other.py\n",
    );
    let other = vec!["other.py".to_string()];
    let items = [
        RepoItem {
            item_type: "Notebook",
            name: "Ingest",
            paths: &files,
        },
        RepoItem {
            item_type: "Lakehouse",
            name: "L",
            paths: &other,
        },
    ];
    let w = brief(&p.filter_warnings(&items));
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!((w[0].0, w[0].1), (2, 5));
    assert!(w[0].2.contains("together match no file"));
    assert!(p.filter_warnings(&items).iter().all(|p| p.warning));
}

// ---- One test per rule kind ----

#[test]
fn literal_find_replace_without_filters_applies_everywhere() {
    let p =
        params("find_replace:\n  - find_value: \"dev\"\n    replace_value:\n      test: \"tst\"\n");
    let part = Part {
        item_type: "Report",
        item_name: "R",
        path: "R.Report/report.json",
    };
    assert_eq!(
        render(&p, "test", part, "dev-dev DEV").expect("renders"),
        "tst-tst DEV"
    );
    // No value for the environment: untouched.
    assert_eq!(render(&p, "prod", part, "dev").expect("renders"), "dev");
}

#[test]
fn regex_replaces_group_one_of_every_match_only() {
    let p = params(
        "find_replace:\n  - find_value: '\"id\":\\s*\"(x\\d)\"'\n    replace_value: {_ALL_: NEW}\n    is_regex: \"true\"\n",
    );
    let text = "{\"id\": \"x1\", \"other\": \"x1\", \"id\":\"x2\"}";
    let out = render(&p, "any", nb("a.py"), text).expect("renders");
    assert_eq!(out, "{\"id\": \"NEW\", \"other\": \"x1\", \"id\":\"NEW\"}");
    // No match: untouched, no error.
    assert_eq!(
        render(&p, "any", nb("a.py"), "nothing").expect("renders"),
        "nothing"
    );
    // An empty capture is an error naming the entry's position.
    let p = params(
        "find_replace:\n  - find_value: 'k=(\\d*);'\n    replace_value: {_ALL_: v}\n    is_regex: \"true\"\n",
    );
    let e = render(&p, "any", nb("a.py"), "k=;").expect_err("empty capture");
    assert!(e.message.contains("captured an empty value"), "{e}");
    assert_eq!(e.origin.as_ref().map(|o| (o.line, o.col)), Some((2, 5)));
}

#[test]
fn ignore_case_for_literals_and_regexes() {
    let p = params(
        "find_replace:\n  - find_value: stdatadev\n    replace_value: {test: stdatatest}\n    ignore_case: \"true\"\n",
    );
    let out = render(&p, "test", nb("a.py"), "StDataDev stdatadev STDATADEV").expect("renders");
    assert_eq!(out, "stdatatest stdatatest stdatatest");
    let p = params(
        "find_replace:\n  - find_value: stdatadev\n    replace_value: {test: stdatatest}\n    ignore_case: \"false\"\n",
    );
    assert_eq!(
        render(&p, "test", nb("a.py"), "StDataDev").expect("renders"),
        "StDataDev"
    );
    let p = params(
        "find_replace:\n  - find_value: 'server=(\\w+)'\n    replace_value: {test: prodsrv}\n    is_regex: \"true\"\n    ignore_case: \"true\"\n",
    );
    assert_eq!(
        render(&p, "test", nb("a.py"), "SERVER=dev1;").expect("renders"),
        "SERVER=prodsrv;"
    );
}

#[test]
fn filters_are_anded_exact_and_case_sensitive() {
    let p = params(
        "find_replace:\n  - find_value: x\n    replace_value: {_ALL_: y}\n    item_type: [Notebook, DataPipeline]\n    item_name: Ingest\n    file_path: /notebooks/Ingest.Notebook/notebook-content.py\n",
    );
    let yes = Part {
        item_type: "Notebook",
        item_name: "Ingest",
        path: INGEST,
    };
    assert_eq!(render(&p, "e", yes, "x").expect("renders"), "y");
    for no in [
        Part {
            item_type: "notebook",
            ..yes
        },
        Part {
            item_name: "ingest",
            ..yes
        },
        Part {
            path: "notebooks/Ingest.Notebook/other.py",
            ..yes
        },
        Part {
            item_type: "Report",
            ..yes
        },
    ] {
        assert_eq!(render(&p, "e", no, "x").expect("renders"), "x", "{no:?}");
    }
}

#[test]
fn empty_filters_behave_as_in_fabric_cicd() {
    let with = |filter: &str| {
        let text = format!(
            "find_replace:\n  - find_value: x\n    replace_value: {{_ALL_: y}}\n    {filter}\n"
        );
        let (p, w) = load_text(&text).expect("loads with a warning");
        assert_eq!(w.len(), 1, "{w:?}");
        render(&p, "e", nb(INGEST), "x").expect("renders")
    };
    assert_eq!(
        with("file_path: \"\""),
        "y",
        "an empty file_path is no filter"
    );
    assert_eq!(with("file_path: []"), "y");
    assert_eq!(
        with("item_type: \"\""),
        "x",
        "an empty item_type matches nothing"
    );
    assert_eq!(with("item_name: []"), "x");
}

/// fabric-cicd's own template writes every optional key, left empty for the user to fill in:
/// `param_dict.get(key)` is `None` for each, so each is as if absent (no filter; no regex).
#[test]
fn optional_keys_left_empty_are_absent() {
    let text = "\
find_replace:
    # Required Fields
    - find_value: \"a.c\"
      replace_value:
          test: \"X\"
      # Optional Fields
      is_regex:
      ignore_case:
      item_type:
      item_name:
      file_path:
key_value_replace:
    - find_key: $.a
      replace_value:
          test: 5
      item_type:
      item_name: ~
      file_path: null
spark_pool:
    - instance_pool_id: \"72c68dbc-0775-4d59-909d-a47896f4573b\"
      replace_value:
          test:
              type: \"Capacity\"
              name: \"Large\"
      item_name:
";
    let (p, warnings) = load_text(text).expect("loads");
    assert!(warnings.is_empty(), "{warnings:?}");
    // No filter: every part; not a regex: `.` is literal, and the case counts.
    assert_eq!(
        render(&p, "test", nb(INGEST), "a.c abc A.C").expect("renders"),
        "X abc A.C"
    );
    assert_eq!(
        render(&p, "test", nb("x.json"), "{\"a\": 1}").expect("renders"),
        "{\"a\": 5}"
    );
    // No item_name: the pool applies to every Environment.
    let pool = p.spark_pool_for("test", "Any", "72c68dbc-0775-4d59-909d-a47896f4573b");
    assert_eq!(pool.expect("applies").pool.name, "Large");
    // A required key left empty is still missing.
    let e = errors("find_replace:\n  - find_value:\n    replace_value: {test: x}\n");
    assert_eq!(brief(&e).len(), 1, "{e:?}");
}

#[test]
fn file_path_globs() {
    let cases: [(&str, &str, bool); 8] = [
        ("**/notebook-content.py", INGEST, true),
        ("**/notebook-content.py", "notebook-content.py", true),
        (
            "**/.schedules",
            "pipelines/Daily Load.DataPipeline/.schedules",
            true,
        ),
        ("notebooks/*/notebook-content.py", INGEST, true),
        (
            "notebooks/*/notebook-content.py",
            "notebooks/shared/Utils.Notebook/notebook-content.py",
            false,
        ),
        (
            "pipelines/*.DataPipeline/{pipeline-content.json,.schedules}",
            "pipelines/Daily Load.DataPipeline/.schedules",
            true,
        ),
        (
            "Config.VariableLibrary/valueSets/[pt]*.json",
            "Config.VariableLibrary/valueSets/test.json",
            true,
        ),
        ("/repo/notebooks/**/*.py", INGEST, true),
    ];
    for (glob, path, want) in cases {
        let p = params(&format!(
            "find_replace:\n  - find_value: x\n    replace_value: {{_ALL_: y}}\n    file_path: \"{glob}\"\n"
        ));
        let part = Part {
            item_type: "Notebook",
            item_name: "N",
            path,
        };
        let got = render(&p, "e", part, "x").expect("renders") == "y";
        assert_eq!(got, want, "{glob} vs {path}");
    }
}

#[test]
fn all_key_applies_to_every_environment_in_any_case() {
    for key in ["_ALL_", "_all_", "_All_"] {
        let p = params(&format!(
            "find_replace:\n  - find_value: a\n    replace_value:\n      {key}: b\n"
        ));
        for env in ["test", "prod", "N/A"] {
            assert_eq!(render(&p, env, nb("f.py"), "a").expect("renders"), "b");
        }
    }
}

#[test]
fn key_value_replace_on_json_and_yaml() {
    let p = params(
        "key_value_replace:\n  - find_key: $.a.b\n    replace_value: {test: 5, prod: 7}\n  - find_key: $.list[*].enabled\n    replace_value: {_ALL_: true}\n",
    );
    let part = nb("x.json");
    let json = "{\n  \"z\": 1,\n  \"a\": {\"b\": 1, \"é\": \"ü\"},\n  \"list\": [{\"enabled\": false}, {\"enabled\": false}]\n}";
    assert_eq!(
        render(&p, "test", part, json).expect("renders"),
        "{\"z\": 1, \"a\": {\"b\": 5, \"\\u00e9\": \"\\u00fc\"}, \"list\": [{\"enabled\": true}, {\"enabled\": true}]}"
    );
    // YAML is read as PyYAML reads it (`no` is false) and re-dumped as it writes it: keys
    // sorted, lists at their key's indent.
    let yaml = "z: keep\na:\n  b: 1\nlist:\n- enabled: no\n  name: x\n";
    let out = render(&p, "prod", part, yaml).expect("renders");
    assert_eq!(
        out,
        "a:\n  b: 7\nlist:\n- enabled: true\n  name: x\nz: keep\n"
    );
    // Not JSON or structured YAML: untouched.
    assert_eq!(
        render(&p, "test", part, "print('hi')").expect("renders"),
        "print('hi')"
    );
}

#[test]
fn key_value_replace_values_can_be_variables() {
    let p = params(
        "key_value_replace:\n  - find_key: $.lakehouse\n    replace_value: {test: \"$items.Lakehouse.Bronze.$id\"}\n",
    );
    let out = render(&p, "test", nb("x.json"), "{\"lakehouse\": \"old\"}").expect("renders");
    assert_eq!(out, format!("{{\"lakehouse\": \"{DEP}02\"}}"));
    let r = references(
        Some(&p),
        "test",
        &nb("x.json"),
        "{\"lakehouse\": \"old\"}",
        &[],
    );
    assert_eq!(
        r.items,
        vec![("Lakehouse".to_string(), "Bronze".to_string())]
    );
    assert!(
        references(Some(&p), "test", &nb("x.json"), "{\"other\": 1}", &[])
            .items
            .is_empty()
    );
}

#[test]
fn semantic_model_binding_both_formats() {
    let p = params(
        "semantic_model_binding:\n  default:\n    connection_id:\n      test: 76e05dfe-9855-4e3d-a410-1dda048dbe99\n      prod: c4f8e2b1-3d2a-4f5b-9c6e-7a8b9c0d1e2f\n  models:\n    - semantic_model_name: [Sales]\n      connection_id: {_ALL_: [f96870d5-5f86-49ad-bf41-5967fd7c1c6d, 0e8f7a6b-1c2d-4e3f-9a8b-7c6d5e4f3a2b]}\n",
    );
    assert_eq!(
        p.semantic_model_bindings("test", &["Sales", "Finance"]),
        vec![
            (
                "Sales".into(),
                vec![
                    "f96870d5-5f86-49ad-bf41-5967fd7c1c6d".into(),
                    "0e8f7a6b-1c2d-4e3f-9a8b-7c6d5e4f3a2b".into()
                ]
            ),
            (
                "Finance".into(),
                vec!["76e05dfe-9855-4e3d-a410-1dda048dbe99".into()]
            ),
        ]
    );
    let p = params(
        "semantic_model_binding:\n  - connection_id: 76e05dfe-9855-4e3d-a410-1dda048dbe99\n    semantic_model_name: [Sales, Finance]\ngateway_binding:\n  - gateway_id: c4f8e2b1-3d2a-4f5b-9c6e-7a8b9c0d1e2f\n    dataset_name: Sales\n",
    );
    assert_eq!(
        p.semantic_model_bindings("any", &["Sales", "HR"]),
        vec![(
            "Sales".into(),
            vec![
                "76e05dfe-9855-4e3d-a410-1dda048dbe99".into(),
                "c4f8e2b1-3d2a-4f5b-9c6e-7a8b9c0d1e2f".into()
            ]
        )]
    );
}

/// Outputs checked against PyYAML 6's `yaml.dump({"k": v}, default_flow_style=False,
/// allow_unicode=True)`.
#[test]
fn yaml_strings_are_quoted_as_pyyaml_quotes_them() {
    let cases = [
        ("", "k: ''\n"),
        ("yes", "k: 'yes'\n"),
        ("a: b", "k: 'a: b'\n"),
        ("-x", "k: -x\n"),
        ("- x", "k: '- x'\n"),
        ("x #y", "k: 'x #y'\n"),
        ("1.5", "k: '1.5'\n"),
        ("1e3", "k: 1e3\n"),
        ("1.0e+3", "k: '1.0e+3'\n"),
        ("09", "k: 09\n"),
        ("0o7", "k: 0o7\n"),
        ("0x1F", "k: '0x1F'\n"),
        ("1_000", "k: '1_000'\n"),
        ("2021-01-01", "k: '2021-01-01'\n"),
        ("<<", "k: '<<'\n"),
        ("y", "k: y\n"),
        ("é", "k: é\n"),
        ("a'b", "k: a'b\n"),
        (":x", "k: :x\n"),
        ("tab\there", "k: \"tab\\there\"\n"),
        ("bell\u{7}", "k: \"bell\\a\"\n"),
        ("a\nb", "k: 'a\n\n  b'\n"),
        ("a\n\nb", "k: 'a\n\n\n  b'\n"),
        ("a\nb\n", "k: 'a\n\n  b\n\n  '\n"),
    ];
    let opts = pyyaml::Dump {
        sort_keys: true,
        allow_unicode: true,
    };
    for (v, want) in cases {
        let doc = json::Ordered::Object(vec![("k".into(), json::Ordered::String(v.into()))]);
        assert_eq!(pyyaml::dump(&doc, opts), want, "{v:?}");
    }
    let nested = json::Ordered::Object(vec![(
        "l".into(),
        json::Ordered::Array(vec![json::Ordered::Object(vec![
            ("k".into(), json::Ordered::String("a\nb".into())),
            ("j".into(), json::Ordered::String("x".into())),
        ])]),
    )]);
    assert_eq!(
        pyyaml::dump(&nested, opts),
        "l:\n- j: x\n  k: 'a\n\n    b'\n"
    );
    let ascii = pyyaml::Dump {
        sort_keys: false,
        allow_unicode: false,
    };
    let doc = json::Ordered::Object(vec![("k".into(), json::Ordered::String("é".into()))]);
    assert_eq!(pyyaml::dump(&doc, ascii), "k: \"\\xE9\"\n");
}

// ---- Dynamic variables ----

fn token_out(value: &str, env: &Fake) -> Result<String, RenderError> {
    let p = params(&format!(
        "find_replace:\n  - find_value: X\n    replace_value: {{_ALL_: \"{value}\"}}\n"
    ));
    apply_parameters(
        &p,
        &Target {
            environment: "e",
            workspace_id: WS,
            workspace_name: "Sales Test/Q1",
        },
        &nb("f.py"),
        "<X>",
        env,
    )
}

#[test]
fn every_dynamic_variable_resolves() {
    let f = fake();
    let cases = [
        ("$workspace.$id", WS.to_string()),
        ("$workspace.id", WS.to_string()),
        ("$workspace.$name", "Sales Test/Q1".to_string()),
        ("$workspace.$name_encoded", "Sales%20Test%2FQ1".to_string()),
        (
            "$workspace.Shared-Prod",
            "eeeeeeee-0000-4000-8000-000000000001".to_string(),
        ),
        (
            "$workspace.Shared-Prod.$id",
            "eeeeeeee-0000-4000-8000-000000000001".to_string(),
        ),
        ("$items.Lakehouse.Bronze.$id", format!("{DEP}02")),
        ("$items.Lakehouse.Bronze.id", format!("{DEP}02")),
        (
            "$items.Lakehouse.Bronze.$sqlendpoint",
            "bronze.sql.fabric.microsoft.com".to_string(),
        ),
        (
            "$items.Lakehouse.Bronze.$SQLEndpointId",
            "51515151-0000-4000-8000-000000000002".to_string(),
        ),
        (
            "$items.Eventhouse.Events.$queryserviceuri",
            "https://events.kusto.fabric.microsoft.com".to_string(),
        ),
        (
            "$workspace.Shared-Prod.$items.Warehouse.Gold.$sqlendpoint",
            "gold.prod.sql.fabric.microsoft.com".to_string(),
        ),
    ];
    for (var, want) in cases {
        assert_eq!(
            token_out(var, &f).unwrap_or_else(|e| panic!("{var}: {e}")),
            format!("<{want}>"),
            "{var}"
        );
    }
}

#[test]
fn unresolvable_variables_fail_with_the_entry_position() {
    let f = fake();
    for (var, says) in [
        (
            "$items.Lakehouse.Missing.$id",
            "no deployed Lakehouse named `Missing`",
        ),
        (
            "$items.Eventhouse.Events.$sqlendpoint",
            "has no $sqlendpoint",
        ),
        ("$workspace.Nowhere", "workspace `Nowhere` not found"),
    ] {
        let e = token_out(var, &f).expect_err(var);
        assert!(e.message.contains(says), "{var}: {e}");
        assert_eq!(e.origin.as_ref().map(|o| o.line), Some(2));
    }
}

#[test]
fn env_variables_expand_and_never_show_their_values() {
    let text = "find_replace:\n  - find_value: stdatadev\n    replace_value:\n      prod: \"acct-$ENV:STORAGE_ACCOUNT-x\"\n";
    let repo = Path::new("/repo");
    let on = LoadOptions {
        repository: repo,
        environment: None,
        env_vars_enabled: true,
    };
    let (p, _) = load_str(Path::new("/repo/parameter.yml"), text, &on).expect("loads");
    let mut f = fake();
    f.env.insert("STORAGE_ACCOUNT".into(), "s3cr3t".into());
    assert_eq!(
        render_with(&p, &f, "stdatadev"),
        Ok("acct-s3cr3t-x".to_string())
    );
    f.env.clear();
    let e = render_with(&p, &f, "stdatadev").expect_err("unset");
    assert!(
        e.contains("`STORAGE_ACCOUNT`") && !e.contains("s3cr3t"),
        "{e}"
    );
    // Without the feature flag, a value starting with `$ENV:` is an error at its position;
    // inside a value it is plain text, as in fabric-cicd.
    let p = params(text);
    assert_eq!(
        render_with(&p, &fake(), "stdatadev"),
        Ok("acct-$ENV:STORAGE_ACCOUNT-x".to_string())
    );
    let text = "find_replace:\n  - find_value: stdatadev\n    replace_value:\n      prod: \"$ENV:STORAGE_ACCOUNT\"\n";
    let e = brief(&errors(text));
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].0, e[0].1), (4, 13));
    assert!(e[0].2.contains("enable_environment_variable_replacement"));
}

fn render_with(p: &Parameters, f: &Fake, text: &str) -> Result<String, String> {
    apply_parameters(p, &target("prod"), &nb("f.py"), text, f).map_err(|e| e.to_string())
}

#[test]
fn workspace_variable_in_find_value() {
    let p = params(
        "find_replace:\n  - find_value: \"$workspace.$name\"\n    replace_value: {_ALL_: renamed}\n",
    );
    assert_eq!(
        render(&p, "e", nb("f.py"), "in Sales Test!").expect("renders"),
        "in renamed!"
    );
}

// ---- The other pipeline steps ----

#[test]
fn logical_ids_are_replaced_and_undeployed_ones_fail() {
    let ids = [
        LogicalId {
            logical_id: "lid-a",
            deployed_id: Some("id-a"),
        },
        LogicalId {
            logical_id: ZERO_GUID,
            deployed_id: None,
        },
        LogicalId {
            logical_id: "lid-b",
            deployed_id: None,
        },
    ];
    let out = replace_logical_ids("p", &format!("lid-a lid-a {ZERO_GUID}"), &ids).expect("ok");
    assert_eq!(out, format!("id-a id-a {ZERO_GUID}"));
    let e = replace_logical_ids("nb/x.py", "uses lid-b", &ids).expect_err("not deployed");
    assert!(
        e.message.contains("'lid-b'") && e.message.contains("not yet deployed"),
        "{e}"
    );
}

#[test]
fn zero_workspace_ids_become_the_target() {
    let text = format!(
        "\"workspaceId\": \"{ZERO_GUID}\", workspace = \"{ZERO_GUID}\", \"default_lakehouse_workspace_id\":\"{ZERO_GUID}\", \"workspaceId\": \"aaaa\", \"other\": \"{ZERO_GUID}\""
    );
    assert_eq!(
        replace_zero_workspace_ids(&text, "Notebook", WS),
        format!(
            "\"workspaceId\": \"{WS}\", workspace = \"{WS}\", \"default_lakehouse_workspace_id\":\"{WS}\", \"workspaceId\": \"aaaa\", \"other\": \"{ZERO_GUID}\""
        )
    );
}

#[test]
fn reflex_escaped_workspace_ids_become_the_target() {
    let action = format!(
        r#"{{"payload": "[{{\"name\":\"workspaceId\",\"type\":\"string\",\"value\":\"{ZERO_GUID}\"}}]"}}"#
    );
    let want = action.replace(ZERO_GUID, WS);
    assert_eq!(replace_zero_workspace_ids(&action, "Reflex", WS), want);
    assert_eq!(replace_zero_workspace_ids(&action, "Notebook", WS), action);
}

#[test]
fn variable_library_skips_logical_ids_and_workspace_ids() {
    let ids = [LogicalId {
        logical_id: "lid-a",
        deployed_id: Some("id-a"),
    }];
    let text = format!("{{\"x\": \"lid-a\", \"workspaceId\": \"{ZERO_GUID}\"}}");
    let part = Part {
        item_type: "VariableLibrary",
        item_name: "V",
        path: "V.VariableLibrary/variables.json",
    };
    let out = render_part(None, &target("test"), &part, &text, &ids, &fake()).expect("renders");
    assert_eq!(out, text);
    let part = Part {
        item_type: "Notebook",
        ..part
    };
    let out = render_part(None, &target("test"), &part, &text, &ids, &fake()).expect("renders");
    assert_eq!(
        out,
        format!("{{\"x\": \"id-a\", \"workspaceId\": \"{WS}\"}}")
    );
}

#[test]
fn parameters_run_after_logical_ids_and_before_workspace_ids() {
    // The find_value only exists once the logicalId became the deployed id; the replacement
    // is a zero workspace id that step 4 then fills in.
    let p = params(&format!(
        "find_replace:\n  - find_value: '\"id-a\", \"ws\": \"old\"'\n    replace_value: {{_ALL_: '\"id-a\", \"workspace\": \"{ZERO_GUID}\"'}}\n"
    ));
    let ids = [LogicalId {
        logical_id: "lid-a",
        deployed_id: Some("id-a"),
    }];
    let out = render_part(
        Some(&p),
        &target("t"),
        &nb("f.py"),
        "[\"lid-a\", \"ws\": \"old\"]",
        &ids,
        &fake(),
    )
    .expect("renders");
    assert_eq!(out, format!("[\"id-a\", \"workspace\": \"{WS}\"]"));
}

// ---- extend ----

#[test]
fn extend_appends_templates_and_rejects_nesting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir(root.join("templates")).expect("mkdir");
    std::fs::write(
        root.join("parameter.yml"),
        "extend:\n  - ./templates/a.yml\n  - templates/a.yml\nfind_replace:\n  - find_value: one\n    replace_value: {_ALL_: two}\n",
    )
    .expect("write");
    std::fs::write(
        root.join("templates/a.yml"),
        "find_replace:\n  - find_value: two\n    replace_value: {_ALL_: three}\nspark_pool:\n  - instance_pool_id: p\n    replace_value: {_ALL_: {type: Workspace, name: Small}}\n",
    )
    .expect("write");
    let (p, warnings) = load(&root.join("parameter.yml"), &opts(root, None)).expect("loads");
    assert_eq!(p.find_replace.len(), 2);
    assert_eq!(p.spark_pool.len(), 1);
    assert_eq!(
        render(&p, "e", nb("f.py"), "one").expect("renders"),
        "three",
        "main file first, then the template"
    );
    assert!(p.find_replace[1].origin.file.ends_with("templates/a.yml"));
    assert_eq!(
        brief(&warnings)
            .iter()
            .map(|w| (w.0, w.1))
            .collect::<Vec<_>>(),
        vec![(3, 5)]
    );

    std::fs::write(
        root.join("templates/nested.yml"),
        "extend:\n  - a.yml\nfind_replace: []\n",
    )
    .expect("write");
    std::fs::write(
        root.join("parameter.yml"),
        "extend: [templates/nested.yml, templates/missing.yml]\n",
    )
    .expect("write");
    let e = load(&root.join("parameter.yml"), &opts(root, None)).expect_err("nested and missing");
    let e: Vec<(PathBuf, usize, usize)> = e
        .iter()
        .filter(|p| p.is_error())
        .map(|p| {
            (
                p.file.clone(),
                p.pos.map_or(0, |x| x.line),
                p.pos.map_or(0, |x| x.col),
            )
        })
        .collect();
    assert_eq!(
        e,
        vec![
            (root.join("templates/nested.yml"), 1, 1),
            (root.join("parameter.yml"), 1, 32)
        ]
    );
}

// ---- Broken files: every problem at once, each at its line:column ----

const BROKEN: &str = r#"find_replace:
  - find_value: "$items.Notebook.Ingest.$id"
    replace_value: {_ALL_: x}
  - find_value: '(a)(b)'
    replace_value: {_ALL_: x}
    is_regex: "true"
  - find_value: a
    replace_value:
      _ALL_: x
      prod: y
  - find_value: a
    replace_value:
      prod: x
      PROD: y
  - find_value: a
    replace_value: {test: x}
    is_regex: true
  - replace_value: {test: x}
  - find_value: a
    replace_value: {test: "$items.Notebook.Ingest.$bogus"}
  - find_value: a
    replace_value: {test: x}
    item_typo: Notebook
  - find_value: a
    replace_value: {test: x}
    file_path: "../outside.py"
  - find_value: a
    replace_value: {test: x}
    item_name: {a: b}
  - find_value: '(unclosed'
    replace_value: {test: x}
    is_regex: "true"
  - find_value: "$workspace.$id"
    replace_value: {test: x}
    is_regex: "true"
key_value_replace:
  - find_key: "schedules.enabled"
    replace_value: {test: false}
  - find_key: $.a
    replace_value: {test: false, prod: "true"}
spark_pool:
  - instance_pool_id: p
    replace_value:
      test: {type: Serverless, name: x}
semantic_model_binding:
  - connection_id: not-a-guid
    semantic_model_name: Sales
unknown_top: []
"#;

#[test]
fn more_shape_errors() {
    let kv = |v: &str| format!("key_value_replace:\n  - find_key: $.a\n    replace_value: {v}\n");
    let e = brief(&errors(&kv("{test: 1, dev: ~}")));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].0, e[0].1), (3, 35));
    assert!(e[0].2.contains("must not be null"), "{e:?}");
    let e = brief(&errors(&kv("{test: 1, prod: 1.5}")));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].0, e[0].1), (3, 36));
    assert!(e[0].2.contains("`prod` is of a different type"), "{e:?}");
    let e = brief(&errors("semantic_model_binding:\n  models: []\n"));
    assert_eq!(e, vec![(2, 11, "`models` must not be empty".to_string())]);
    let e = brief(&errors(
        "semantic_model_binding:\n  default:\n    connection_id: {test: []}\n",
    ));
    assert_eq!(
        e,
        vec![(
            3,
            27,
            "the list of connection ids must not be empty".to_string()
        )]
    );
}

#[test]
fn broken_file_reports_every_error_at_its_position() {
    let mut got = brief(&errors(BROKEN));
    got.sort_by_key(|(l, c, _)| (*l, *c));
    let want: [(usize, usize, &str); 17] = [
        (2, 17, "uses a `$items` variable"),
        (4, 17, "exactly one capture group, this one has 2"),
        (
            10,
            7,
            "`_ALL_` applies to every environment and must be the only key",
        ),
        (
            14,
            7,
            "duplicate key `find_replace[3].replace_value.PROD` (`prod` is on line 13",
        ),
        (
            17,
            15,
            "`is_regex` must be the string \"true\" or \"false\", not a boolean",
        ),
        (18, 5, "`find_replace` entry has no `find_value`"),
        (
            20,
            27,
            "invalid variable `$items.Notebook.Ingest.$bogus`: unknown attribute `bogus`",
        ),
        (23, 5, "unknown key `item_typo` in a `find_replace` entry"),
        (26, 16, "`file_path` `../outside.py` leaves the repository"),
        (
            29,
            16,
            "`item_name` must be a string or a list of strings, not a mapping",
        ),
        (30, 17, "`find_value` is not a valid regex"),
        (
            33,
            17,
            "a `$workspace` variable cannot be used in a regex `find_value`",
        ),
        (
            37,
            15,
            "`find_key` `schedules.enabled` must be a JSONPath starting with `$`",
        ),
        (40, 40, "the value for `prod` is of a different type"),
        (
            44,
            20,
            "spark pool `type` must be \"Capacity\" or \"Workspace\"",
        ),
        (46, 20, "connection id `not-a-guid` is not a GUID"),
        (48, 1, "unknown parameter `unknown_top`"),
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for ((l, c, msg), (wl, wc, wmsg)) in got.iter().zip(want) {
        assert_eq!((*l, *c), (wl, wc), "{msg}");
        assert!(msg.contains(wmsg), "at {l}:{c}: `{msg}` lacks `{wmsg}`");
    }
    // The rendered problem names the file, line and column, and shows the line with a caret.
    let shown = errors(BROKEN)
        .iter()
        .map(|p| p.to_string())
        .collect::<String>();
    assert!(
        shown.contains("error: /repo/parameter.yml:48:1: unknown parameter `unknown_top`"),
        "{shown}"
    );
    assert!(shown.contains("48 | unknown_top: []"), "{shown}");
}

/// The fixture notes' validation negatives, each made by editing the fixture's own file.
#[test]
fn fixture_validation_negatives() {
    let repo = fixture();
    let text = std::fs::read_to_string(repo.join("parameter.yml")).expect("read");
    let path = repo.join("parameter.yml");
    let check = |edited: String, line: usize, says: &str| {
        let e = load_str(&path, &edited, &opts(&repo, Some("test"))).expect_err(says);
        let e: Vec<_> = brief(&e.into_iter().filter(Problem::is_error).collect::<Vec<_>>());
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, line, "{e:?}");
        assert!(e[0].2.contains(says), "{e:?}");
    };
    check(
        text.replace(
            "      prod: \"stdataprod\"\n    item_type: \"Notebook\"",
            "      prod: \"stdataprod\"\n      PROD: \"x\"\n    item_type: \"Notebook\"",
        ),
        18,
        "duplicate key",
    );
    check(
        text.replace(
            "find_value: \"stdatadev\"",
            "find_value: \"$items.Notebook.Ingest.$id\"",
        ),
        14,
        "`$items`",
    );
    check(
        text.replace(
            "\\s*\"([0-9a-fA-F-]{36})\"'",
            "\\s*\"([0-9a-fA-F-]{36})(\")'",
        ),
        8,
        "has 2",
    );
    check(
        text.replace(
            "      _ALL_: \"$items.Lakehouse.Bronze.$id\"\n",
            "      _ALL_: \"$items.Lakehouse.Bronze.$id\"\n      test: x\n",
        ),
        6,
        "_ALL_",
    );
}

#[test]
fn syntax_errors_and_shapes() {
    let e = brief(&errors("find_replace:\n  - find_value: [unclosed\n"));
    assert_eq!(e.len(), 1);
    assert!(e[0].2.starts_with("YAML syntax error"), "{e:?}");
    let e = brief(&errors("find_replace:\n  find_value: a\n"));
    assert_eq!(
        e,
        vec![(
            2,
            3,
            "`find_replace` must be a list, not a mapping".to_string()
        )]
    );
    let e = brief(&errors("- a\n"));
    assert_eq!(e[0].2, "the parameter file must be a mapping, not a list");
    assert!(
        load_text("")
            .expect("empty file is no parameters")
            .0
            .find_replace
            .is_empty()
    );
}

#[test]
fn missing_environment_is_a_warning_naming_a_near_miss() {
    let text = "find_replace:\n  - find_value: a\n    replace_value:\n      PROD: b\n";
    let (_, w) = load_str(
        Path::new("/repo/parameter.yml"),
        text,
        &opts(Path::new("/repo"), Some("prod")),
    )
    .expect("loads");
    let w = brief(&w);
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].0, w[0].1), (4, 7));
    assert!(
        w[0].2.contains("there is `PROD`: names are case-sensitive"),
        "{w:?}"
    );
}

#[test]
fn extend_merges_semantic_model_binding_defaults_by_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let a = "76e05dfe-9855-4e3d-a410-1dda048dbe99";
    let b = "c4f8e2b1-3d2a-4f5b-9c6e-7a8b9c0d1e2f";
    std::fs::write(
        root.join("parameter.yml"),
        format!("extend: [t.yml]\nsemantic_model_binding:\n  default:\n    connection_id: {{test: {a}}}\n"),
    )
    .expect("write");
    std::fs::write(
        root.join("t.yml"),
        format!("semantic_model_binding:\n  default:\n    connection_id: {{prod: {b}}}\n"),
    )
    .expect("write");
    let (p, _) = load(&root.join("parameter.yml"), &opts(root, None)).expect("loads");
    assert_eq!(
        p.semantic_model_bindings("test", &["M"]),
        vec![("M".into(), vec![a.to_string()])]
    );
    assert_eq!(
        p.semantic_model_bindings("prod", &["M"]),
        vec![("M".into(), vec![b.to_string()])]
    );
    std::fs::write(
        root.join("t.yml"),
        format!("semantic_model_binding:\n  default:\n    connection_id: {{test: {b}}}\n"),
    )
    .expect("write");
    let e =
        load(&root.join("parameter.yml"), &opts(root, None)).expect_err("same environment twice");
    assert!(e[0].message.contains("same environment"), "{e:?}");
}

/// A repository exercising regex + ignore_case, literal ignore_case, `$workspace.$name_encoded`,
/// `$items`, a JSONPath filter, a list `file_path` with a missing entry and a YAML part. The
/// expected texts are what fabric-cicd 1.4.0's own `_replace_logical_ids`,
/// `_replace_parameters` and `_replace_workspace_ids` produced for the same inputs.
#[test]
fn matches_fabric_cicd_output_on_a_harder_repository() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path();
    let files: [(&str, &str, &str, &str); 3] = [
        (
            "Notebook",
            "A",
            "nb/A.Notebook/notebook-content.py",
            "# server=DEVSRV1; Server=devsrv2; \"id\": \"x1\", \"id\":\"x2\"\nacct = \"StDataDev\" + \"stdatadev\" + \"STDATADEV\"\nws = \"WS_NAME\"\nref = \"11111111-0000-4000-8000-00000000000b\"\nlh = {\"workspaceId\": \"00000000-0000-0000-0000-000000000000\"}\n",
        ),
        (
            "DataPipeline",
            "P",
            "P.DataPipeline/pipeline-content.json",
            "{\n  \"b\": {\"a\": 1, \"é\": \"ü\", \"list\": [{\"on\": false, \"v\": 1.5}, {\"on\": false, \"v\": 2}]},\n  \"a\": null,\n  \"notebook\": \"11111111-0000-4000-8000-00000000000a\",\n  \"workspaceId\": \"00000000-0000-0000-0000-000000000000\"\n}\n",
        ),
        (
            "Environment",
            "E",
            "E.Environment/Setting/conf.yml",
            "zeta: keep me\nalpha:\n  beta: 1\n  when: 2021-01-01x\nitems:\n- name: one\n  enabled: no\n- two\n",
        ),
    ];
    for (_, _, path, text) in files {
        std::fs::create_dir_all(repo.join(path).parent().expect("parent")).expect("mkdir");
        std::fs::write(repo.join(path), text).expect("write");
    }
    std::fs::write(repo.join("parameter.yml"), "find_replace:\n  - find_value: 'server=(\\w+)'\n    replace_value: {_all_: \"PRODSRV\"}\n    is_regex: \"true\"\n    ignore_case: \"true\"\n    file_path: \"**/*.py\"\n  - find_value: stdatadev\n    replace_value: {test: stdatatest, prod: stdataprod}\n    ignore_case: \"true\"\n    item_type: [Notebook]\n  - find_value: '\"id\":\\s*\"(x\\d)\"'\n    replace_value: {test: \"$workspace.$name_encoded\", prod: \"$items.Notebook.A.$id\"}\n    is_regex: \"true\"\n    item_name: A\n  - find_value: \"WS_NAME\"\n    replace_value: {_ALL_: \"$workspace.$id\"}\n    file_path: [\"nb/A.Notebook/notebook-content.py\", \"missing.py\"]\nkey_value_replace:\n  - find_key: $.b.list[?(@.on==false)].v\n    replace_value: {test: 10, prod: 20}\n    item_type: DataPipeline\n  - find_key: $.alpha.beta\n    replace_value: {_ALL_: \"new value: yes\"}\n    file_path: \"E.Environment/Setting/*.yml\"\n  - find_key: $.items[0].enabled\n    replace_value: {test: true}\n    item_type: Environment\n").expect("write");
    let expected: [[&str; 3]; 2] = [
        [
            "# server=PRODSRV; Server=PRODSRV; \"id\": \"Sales%20Test%2FQ1\", \"id\":\"Sales%20Test%2FQ1\"\nacct = \"stdatatest\" + \"stdatatest\" + \"stdatatest\"\nws = \"99999999-9999-4999-8999-999999999999\"\nref = \"dddddddd-0000-4000-8000-00000000000b\"\nlh = {\"workspaceId\": \"99999999-9999-4999-8999-999999999999\"}\n",
            "{\"b\": {\"a\": 1, \"\\u00e9\": \"\\u00fc\", \"list\": [{\"on\": false, \"v\": 10}, {\"on\": false, \"v\": 10}]}, \"a\": null, \"notebook\": \"dddddddd-0000-4000-8000-00000000000a\", \"workspaceId\": \"99999999-9999-4999-8999-999999999999\"}",
            "alpha:\n  beta: 'new value: yes'\n  when: 2021-01-01x\nitems:\n- enabled: true\n  name: one\n- two\nzeta: keep me\n",
        ],
        [
            "# server=PRODSRV; Server=PRODSRV; \"id\": \"dddddddd-0000-4000-8000-00000000000a\", \"id\":\"dddddddd-0000-4000-8000-00000000000a\"\nacct = \"stdataprod\" + \"stdataprod\" + \"stdataprod\"\nws = \"99999999-9999-4999-8999-999999999999\"\nref = \"dddddddd-0000-4000-8000-00000000000b\"\nlh = {\"workspaceId\": \"99999999-9999-4999-8999-999999999999\"}\n",
            "{\"b\": {\"a\": 1, \"\\u00e9\": \"\\u00fc\", \"list\": [{\"on\": false, \"v\": 20}, {\"on\": false, \"v\": 20}]}, \"a\": null, \"notebook\": \"dddddddd-0000-4000-8000-00000000000a\", \"workspaceId\": \"99999999-9999-4999-8999-999999999999\"}",
            "alpha:\n  beta: 'new value: yes'\n  when: 2021-01-01x\nitems:\n- enabled: false\n  name: one\n- two\nzeta: keep me\n",
        ],
    ];
    let mut lookup = fake();
    let notebook = ItemAttrs {
        id: format!("{DEP}0a"),
        ..ItemAttrs::default()
    };
    lookup
        .items
        .insert((None, "Notebook".into(), "A".into()), notebook);
    let ids: Vec<(String, String)> = ["0a", "0b", "0c"]
        .iter()
        .map(|n| {
            (
                format!("11111111-0000-4000-8000-0000000000{n}"),
                format!("{DEP}{n}"),
            )
        })
        .collect();
    let lids: Vec<LogicalId<'_>> = ids
        .iter()
        .map(|(l, d)| LogicalId {
            logical_id: l,
            deployed_id: Some(d),
        })
        .collect();
    for (env, want) in ["test", "prod"].into_iter().zip(expected) {
        let (p, _) = load(&repo.join("parameter.yml"), &opts(repo, Some(env))).expect("loads");
        let t = Target {
            environment: env,
            workspace_id: WS,
            workspace_name: "Sales Test/Q1",
        };
        for ((item_type, item_name, path, text), want) in files.into_iter().zip(want) {
            let part = Part {
                item_type,
                item_name,
                path,
            };
            let out = render_part(Some(&p), &t, &part, text, &lids, &lookup).expect("renders");
            assert_eq!(out, want, "{env} {path}");
        }
    }
}

#[test]
fn kql_cluster_uris_are_filled_and_written_as_python_indents_them() {
    use super::render::{KqlSources, fill_cluster_uris, kql_databases_needed};
    let text = r#"{"queryset": {"dataSources": [{"clusterUri": "", "n": 1.5, "e": [], "o": {}, "u": "é"}], "v": null}}"#;
    assert_eq!(
        kql_databases_needed(text, KqlSources::Queryset),
        vec![String::new()]
    );
    let out = fill_cluster_uris(text, KqlSources::Queryset, &|_| Ok("https://x".into())).unwrap();
    // What Python's json.dumps(doc, indent=2) writes for the filled document.
    let python = "{\n  \"queryset\": {\n    \"dataSources\": [\n      {\n        \"clusterUri\": \"https://x\",\n        \"n\": 1.5,\n        \"e\": [],\n        \"o\": {},\n        \"u\": \"\\u00e9\"\n      }\n    ],\n    \"v\": null\n  }\n}";
    assert_eq!(out, python);
    // A dashboard names its database; one without an empty clusterUri needs none.
    let dash = r#"{"dataSources": [{"clusterUri": "", "name": "Sales"}, {"clusterUri": "https://y", "name": "Other"}]}"#;
    assert_eq!(kql_databases_needed(dash, KqlSources::Dashboard), ["Sales"]);
    let missing = fill_cluster_uris(dash, KqlSources::Dashboard, &|db| Err(format!("{db}?")));
    assert_eq!(missing, Err("Sales?".to_string()));
}
