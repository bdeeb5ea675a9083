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
features: [enable_shortcut_publish, enable_everything]
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
            "`enable_everything` is not a feature flag fabric-cicd 1.4.0 knows; it has no effect",
            true,
        ),
    ]);
    assert_eq!(got, want);
}

#[test]
fn workspace_by_name_env_lists_and_structural_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = "\
core:
  workspace: {test: Sales Test, prod: Sales}
  repository_directory: .
  item_types_in_scope: {test: [Notebook], prod: [Lakehouse, Notebook]}
features: {prod: [enable_lakehouse_unpublish]}
constants: {DEFAULT_API_ROOT_URL: {test: 'http://localhost:1'}}
";
    let test = CicdConfig::load_str(&d.join("config.yml"), text, "test").unwrap();
    assert_eq!(test.workspace, WorkspaceRef::Name("Sales Test".into()));
    assert_eq!(test.item_types_in_scope, Some(vec![ItemType::Notebook]));
    assert_eq!(test.parameter, None, "no `parameter`: no parameterization");
    assert_eq!(
        test.constants
            .get("DEFAULT_API_ROOT_URL")
            .map(String::as_str),
        Some("http://localhost:1")
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
