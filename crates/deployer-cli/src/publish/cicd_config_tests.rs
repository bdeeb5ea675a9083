//! `config.yml` on the shared fixture and on a corpus of broken files.

use super::*;
use crate::publish::repo::tests::fixture;

#[test]
fn fixture_config_for_test_and_prod() {
    let path = fixture().join("config.yml");
    let test = CicdConfig::load(&path, "test").unwrap();
    assert!(test.warnings.is_empty(), "{:?}", test.warnings);
    assert_eq!(
        test.workspace,
        WorkspaceRef::Id("11111111-2222-4333-8444-555555555555".into())
    );
    assert_eq!(test.repository_directory, fixture().join("."));
    assert!(
        test.repository_directory
            .join("Gold.Warehouse/.platform")
            .is_file()
    );
    assert_eq!(test.parameter, Some(fixture().join("parameter.yml")));
    use ItemType as T;
    assert_eq!(
        test.item_types_in_scope,
        Some(vec![
            T::VariableLibrary,
            T::Lakehouse,
            T::Warehouse,
            T::Environment,
            T::Notebook,
            T::DataPipeline,
            T::SemanticModel,
            T::Report
        ])
    );
    assert_eq!(
        test.publish,
        PublishSection {
            exclude_regex: Some("^DONT_DEPLOY.*".into()),
            skip: false,
            ..PublishSection::default()
        }
    );
    assert_eq!(
        test.unpublish,
        UnpublishSection {
            exclude_regex: Some("^KEEP_.*".into()),
            items_to_include: None,
            skip: false
        }
    );
    assert_eq!(test.features, ["enable_shortcut_publish"]);
    // The config's publish options select the fixture's items: all 11 are in scope, and
    // none is named DONT_DEPLOY….
    let opts = test.discover_options();
    assert!(opts.folders);
    assert_eq!(
        opts.exclude_regex.as_ref().map(Regex::as_str),
        Some("^DONT_DEPLOY.*")
    );
    let repo =
        crate::publish::repo::Repository::discover(&test.repository_directory, &opts).unwrap();
    assert_eq!(repo.selected().count(), 11);
    let prod = CicdConfig::load(&path, "prod").unwrap();
    assert_eq!(
        prod.workspace,
        WorkspaceRef::Id("66666666-7777-4888-9999-000000000000".into())
    );
    assert!(prod.unpublish.skip && !prod.publish.skip);
    // An environment the file does not know: the workspace is required.
    let errs = CicdConfig::load(&path, "dev").unwrap_err();
    let lines: Vec<_> = errs
        .iter()
        .filter(|p| p.is_error())
        .map(|p| p.headline())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].ends_with("config.yml:2:3: `core.workspace_id` has no value for environment `dev` (it has: test, prod)"),
        "{lines:?}"
    );
}

/// Loads `text` as `dir/config.yml` and returns `(line, col, message, warning)` of each problem.
fn check(dir: &Path, text: &str, env: &str) -> Vec<(usize, usize, String, bool)> {
    let path = dir.join("config.yml");
    let problems = match CicdConfig::load_str(&path, text, env) {
        Ok(c) => c.warnings,
        Err(p) => p,
    };
    problems
        .into_iter()
        .map(|p| {
            assert_eq!(p.file, path);
            let pos = p.pos.unwrap();
            (pos.line, pos.col, p.message, p.warning)
        })
        .collect()
}

fn msgs(v: &[(usize, usize, &str, bool)]) -> Vec<(usize, usize, String, bool)> {
    v.iter()
        .map(|(l, c, m, w)| (*l, *c, m.to_string(), *w))
        .collect()
}

#[test]
fn broken_configs_report_every_problem_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(d.join("repo")).unwrap();
    fs::write(d.join("repo/parameter.yml"), "find_replace: []\n").unwrap();

    let text = "\
core:
  workspace_id: {test: not-a-guid}
  repository_directory: ./missing
  item_types_in_scope: [Notebook, Notbook]
  parameter: repo/nope.yml
publish:
  exclude_regex: '(?<=x)y'
  folder_exclude_regex: '^/a'
  folder_path_to_include: [/b]
  items_to_include: [Ingest.Notebook, Ingest]
  skip: {test: maybe}
unpublish:
  skip: {prod: true}
features: [enable_shortcut_publish, enable_everything, enable_experimental_features, enable_items_to_include, enable_exclude_folder, enable_include_folder]
colour: blue
";
    let got = check(d, text, "test");
    let missing = d.join("./missing");
    let nope = d.join("repo/nope.yml");
    let want = msgs(&[
        (15, 1, "unknown key `colour`, ignored", true),
        (
            2,
            24,
            "`core.workspace_id.test` is `not-a-guid`, which is not a GUID",
            false,
        ),
        (
            3,
            25,
            &format!(
                "`core.repository_directory` is `./missing`, but {} is not a directory",
                missing.display()
            ),
            false,
        ),
        (
            4,
            35,
            "`Notbook` is not an item type fabric-cicd 1.4.0 publishes",
            false,
        ),
        (
            5,
            14,
            &format!(
                "`core.parameter` is `repo/nope.yml`, but {} is not a file",
                nope.display()
            ),
            false,
        ),
        (
            7,
            18,
            "`publish.exclude_regex` is not a valid regular expression: regex parse error:\n    (?<=x)y\n    ^^^^\nerror: look-around, including look-ahead and look-behind, is not supported",
            false,
        ),
        (
            10,
            39,
            "`Ingest` is not `Name.Type` with one of the 31 item types",
            false,
        ),
        (
            11,
            16,
            "`publish.skip.test` must be true or false, not `maybe`",
            false,
        ),
        (
            9,
            27,
            "`publish.folder_exclude_regex` and `publish.folder_path_to_include` cannot be used together",
            false,
        ),
        (
            13,
            3,
            "`unpublish.skip` has no value for environment `test` (it has: prod); left unset",
            true,
        ),
        (
            14,
            37,
            "`enable_everything` is not a feature flag fabric-cicd 1.4.0 knows",
            false,
        ),
    ]);
    assert_eq!(got, want);
}

#[test]
fn workspace_by_name_and_values_per_environment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = "\
core:
  workspace: {test: Sales Test, prod: Sales}
  repository_directory: .
  item_types_in_scope: {test: [Notebook], prod: [Lakehouse, Notebook]}
features: {prod: [enable_lakehouse_unpublish]}
constants:
  DEFAULT_API_ROOT_URL:
    test: 'https://abc.zab.w.api.fabric.microsoft.com/'
";
    let test = CicdConfig::load_str(&d.join("config.yml"), text, "test").unwrap();
    assert_eq!(test.workspace, WorkspaceRef::Name("Sales Test".into()));
    assert_eq!(test.item_types_in_scope, Some(vec![ItemType::Notebook]));
    assert_eq!(test.parameter, None, "no `parameter`: no parameterization");
    assert_eq!(
        test.constants
            .get("DEFAULT_API_ROOT_URL")
            .map(String::as_str),
        Some("https://abc.zab.w.api.fabric.microsoft.com")
    );
    assert_eq!(
        test.api_root.as_deref(),
        Some("https://abc.zab.w.api.fabric.microsoft.com")
    );
    assert_eq!(
        check(d, text, "test"),
        msgs(&[(
            5,
            1,
            "`features` has no value for environment `test` (it has: prod); left unset",
            true
        )])
    );
    let prod = CicdConfig::load_str(&d.join("config.yml"), text, "prod").unwrap();
    assert_eq!(prod.features, ["enable_lakehouse_unpublish"]);
    assert_eq!(
        prod.item_types_in_scope,
        Some(vec![ItemType::Lakehouse, ItemType::Notebook])
    );
    assert!(prod.constants.is_empty());
    assert_eq!(prod.api_root, None);
}

#[test]
fn structural_errors_are_reported_at_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        check(
            d,
            "core:\n  repository_directory: .\n  repository_directory: ..\n",
            "test"
        ),
        msgs(&[(
            3,
            3,
            "duplicate key `core.repository_directory` (first given on line 2)",
            false
        )])
    );
    assert_eq!(
        check(
            d,
            "core:\n  repository_directory: .\npublish: [a]\n",
            "test"
        ),
        msgs(&[
            (1, 1, "`core` needs `workspace_id` or `workspace`", false),
            (3, 10, "`publish` must be a mapping, not `- a`", false),
        ])
    );
    assert_eq!(
        check(d, "publish: {}\n", "test"),
        msgs(&[(
            1,
            1,
            "`core` must be a mapping with the workspace and the repository_directory",
            false
        )])
    );
}

/// The error fabrik gives for an experimental filter without its flags.
fn gated(key: &str, flag: &str, missing: &[&str]) -> String {
    let missing: Vec<String> = missing.iter().map(|f| format!("`{f}`")).collect();
    format!(
        "`{key}` is experimental in fabric-cicd 1.4.0, which refuses it without the feature flags `enable_experimental_features` and `{flag}` (missing: {})",
        missing.join(", ")
    )
}

/// A config.yml using every experimental filter, no feature flag.
const EXPERIMENTAL: &str = "\
core:
  workspace_id: 11111111-2222-4333-8444-555555555555
  repository_directory: .
publish:
  items_to_include: [Ingest.Notebook]
  folder_exclude_regex: ^/old
  shortcut_exclude_regex: ^tmp
unpublish:
  items_to_include: [Old.Notebook]
";

/// fabric-cicd's gate for every experimental feature.
const X: &str = "enable_experimental_features";

#[test]
fn experimental_filters_need_their_flags_as_in_fabric_cicd() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let body = EXPERIMENTAL;
    assert_eq!(
        check(d, body, "test"),
        vec![
            (
                5,
                3,
                gated(
                    "publish.items_to_include",
                    "enable_items_to_include",
                    &[X, "enable_items_to_include"]
                ),
                false
            ),
            (
                6,
                3,
                gated(
                    "publish.folder_exclude_regex",
                    "enable_exclude_folder",
                    &[X, "enable_exclude_folder"]
                ),
                false
            ),
            (
                7,
                3,
                gated(
                    "publish.shortcut_exclude_regex",
                    "enable_shortcut_exclude",
                    &[X, "enable_shortcut_exclude"]
                ),
                false
            ),
            (
                9,
                3,
                gated(
                    "unpublish.items_to_include",
                    "enable_items_to_include",
                    &[X, "enable_items_to_include"]
                ),
                false
            ),
        ]
    );
    // The specific flags without the experimental gate: still refused, naming what is missing.
    let text = format!(
        "{body}features: [enable_items_to_include, enable_exclude_folder, enable_shortcut_exclude]\n"
    );
    let got = check(d, &text, "test");
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(
        got[0].2,
        gated("publish.items_to_include", "enable_items_to_include", &[X])
    );
}

#[test]
fn experimental_filters_apply_with_their_flags_unless_their_operation_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let body = EXPERIMENTAL;
    // Every flag, in the file or (as `--cicd-feature`) beside it: the filters apply.
    let all: Vec<String> = [
        X,
        "enable_items_to_include",
        "enable_exclude_folder",
        "enable_shortcut_exclude",
    ]
    .map(String::from)
    .to_vec();
    let path = d.join("config.yml");
    let c = CicdConfig::load_str_with(&path, body, "test", &all).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let opts = c.discover_options();
    assert_eq!(
        opts.items_to_include,
        Some(vec!["Ingest.Notebook".to_string()])
    );
    assert_eq!(
        opts.folder_exclude_regex.map(|r| r.as_str().to_string()),
        Some("^/old".into())
    );
    assert_eq!(
        c.unpublish.items_to_include,
        Some(vec!["Old.Notebook".to_string()])
    );
    let in_file = format!("{body}features: [{}]\n", all.join(", "));
    assert!(CicdConfig::load_str(&path, &in_file, "test").is_ok());
    // A skipped operation's filters are not checked (fabric-cicd never runs it).
    // (`publish:\n` is also the end of `unpublish:\n`: both sections skip.)
    let skipped = body.replace("publish:\n", "publish:\n  skip: true\n");
    let c = CicdConfig::load_str(&path, &skipped, "test").unwrap();
    assert!(c.publish.skip && c.unpublish.skip);
}

/// `disable_workspace_folder_publish`: fabric-cicd neither checks nor applies the folder
/// filters; fabrik drops them and says so.
#[test]
fn folder_filters_are_dropped_with_a_warning_when_folder_publish_is_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    let body = EXPERIMENTAL;
    let text = format!(
        "{}features: [{X}, enable_items_to_include, enable_shortcut_exclude]\n",
        body.replace(
            "folder_exclude_regex: ^/old",
            "folder_path_to_include: [/new]"
        )
    );
    let c = CicdConfig::load_str_with(
        &path,
        &text,
        "test",
        &["disable_workspace_folder_publish".into()],
    )
    .unwrap();
    assert_eq!(c.publish.folder_path_to_include, None);
    assert_eq!(c.discover_options().folder_path_to_include, None);
    assert_eq!(
        c.warnings
            .iter()
            .map(|p| (p.pos.unwrap().line, p.message.as_str()))
            .collect::<Vec<_>>(),
        [(
            6,
            "`publish.folder_path_to_include` is not applied: with `disable_workspace_folder_publish` fabric-cicd 1.4.0 ignores the folder filters"
        )]
    );
}

#[test]
fn feature_flags_fabrik_cannot_honour_are_errors_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\
core:
  workspace_id: 11111111-2222-4333-8444-555555555555
  repository_directory: .
features:
  test:
    - enable_shortcut_publish
    - enable_bulk_publish
    - enable_experimental_features
    - enable_hard_delete
    - enable_response_collection
    - enable_shortcuts_publish
";
    let got = check(dir.path(), text, "test");
    let brief: Vec<(usize, bool, bool)> = got
        .iter()
        .map(|(l, _, m, w)| {
            (
                *l,
                *w,
                m.contains("does not support")
                    || m.contains("does not support")
                    || m.contains("not a feature flag"),
            )
        })
        .collect();
    assert_eq!(
        brief,
        [(9, false, true), (10, false, true), (11, false, true)],
        "{got:?}"
    );
    assert!(got[0].2.contains("enable_hard_delete"));
    assert!(got[1].2.contains("enable_response_collection"));
    assert_eq!(
        got[2].2,
        "`enable_shortcuts_publish` is not a feature flag fabric-cicd 1.4.0 knows"
    );
    // Every other flag fabric-cicd knows is accepted.
    for f in FEATURE_FLAGS {
        let refused = ["enable_hard_delete", "enable_response_collection"];
        assert_eq!(feature_refusal(f).is_some(), refused.contains(&f), "{f}");
    }
}

#[test]
fn constants_set_the_api_root_or_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let head = "core:\n  workspace_id: 11111111-2222-4333-8444-555555555555\n  repository_directory: .\nconstants:\n";
    let load =
        |body: &str| CicdConfig::load_str(&d.join("config.yml"), &format!("{head}{body}"), "test");
    let root = "https://0a1b.z0a.w.api.fabric.microsoft.com";
    let c = load(&format!("  DEFAULT_API_ROOT_URL: {root}/\n")).unwrap();
    assert_eq!(c.api_root.as_deref(), Some(root));
    let c = load(&format!(
        "  DEFAULT_API_ROOT_URL: {root}\n  FABRIC_API_ROOT_URL: {root}\n"
    ))
    .unwrap();
    assert_eq!(c.api_root.as_deref(), Some(root));
    let c = load("  DEFAULT_API_ROOT_URL: HTTPS://API.PowerBI.com\n").unwrap();
    assert_eq!(
        c.api_root.as_deref(),
        Some("HTTPS://API.PowerBI.com"),
        "as urlsplit reads it"
    );
    let c = load("  DEFAULT_API_ROOT_URL: {prod: https://api.powerbi.com}\n").unwrap();
    assert_eq!(c.api_root, None, "no value for test: not set");
    let cases: [(&str, usize, &str); 7] = [
        (
            "  DEFAULT_API_ROOT_URL: http://api.powerbi.com\n",
            5,
            "must use the https scheme",
        ),
        (
            "  DEFAULT_API_ROOT_URL: https://example.com\n",
            5,
            "not one under api.fabric.microsoft.com or api.powerbi.com",
        ),
        (
            "  DEFAULT_API_ROOT_URL: https://api.powerbi.com/v1\n",
            5,
            "must be a root URL",
        ),
        (
            "  FABRIC_API_ROOT_URL: https://x.api.fabric.microsoft.com\n",
            5,
            "differs from `constants.DEFAULT_API_ROOT_URL`",
        ),
        (
            "  PARALLEL_MAX_WORKERS: 4\n",
            5,
            "does not support overriding the fabric-cicd constant `PARALLEL_MAX_WORKERS`",
        ),
        ("  RETRY_AFTER_SECONDS: 5\n", 5, "`RETRY_AFTER_SECONDS`"),
        (
            "  API_ROOT: https://api.powerbi.com\n",
            5,
            "`API_ROOT` is not a fabric-cicd 1.4.0 constant",
        ),
    ];
    for (body, line, want) in cases {
        let errs = load(body).unwrap_err();
        let errs: Vec<_> = errs.iter().filter(|p| p.is_error()).collect();
        assert_eq!(errs.len(), 1, "{body}: {errs:?}");
        assert_eq!(errs[0].pos.unwrap().line, line, "{body}");
        assert!(
            errs[0].message.contains(want),
            "{body}: {}",
            errs[0].message
        );
    }
    let hint = load("  PARALLEL_MAX_WORKERS: 4\n").unwrap_err()[0]
        .hint
        .clone()
        .unwrap();
    assert!(hint.contains("--concurrency"), "{hint}");
}
