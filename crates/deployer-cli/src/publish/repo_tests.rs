//! Discovery on the shared fixture and on a corpus of broken repositories.

use std::path::{Path, PathBuf};

use super::*;

/// The shared sample repository, read in place.
pub(crate) fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/git-format-repo")
}

fn lid(n: &str) -> String {
    format!("3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c{n}")
}

/// Type, name, logicalId suffix, folder and parts of a fixture item.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static [&'static str],
);
// (type, name, logicalId suffix, folder, parts) — the parts of the fixture notes §2.
/// The fixture's items with the parts its notes (§2) list.
const EXPECTED: [Row; 11] = [
    (
        "Lakehouse",
        "Bronze",
        "02",
        None,
        &[
            ".platform",
            "lakehouse.metadata.json",
            "shortcuts.metadata.json",
        ],
    ),
    (
        "VariableLibrary",
        "Config",
        "01",
        None,
        &[
            ".platform",
            "settings.json",
            "valueSets/prod.json",
            "valueSets/test.json",
            "variables.json",
        ],
    ),
    ("Warehouse", "Gold", "04", None, &[".platform"]),
    (
        "Lakehouse",
        "Silver",
        "03",
        None,
        &[
            ".platform",
            "lakehouse.metadata.json",
            "shortcuts.metadata.json",
        ],
    ),
    (
        "Environment",
        "Spark",
        "05",
        None,
        &[
            ".platform",
            "Libraries/PublicLibraries/environment.yml",
            "Setting/Sparkcompute.yml",
        ],
    ),
    (
        "Notebook",
        "Ingest",
        "06",
        Some("/notebooks"),
        &[".platform", "notebook-content.py"],
    ),
    (
        "Notebook",
        "Utils",
        "07",
        Some("/notebooks/shared"),
        &[".platform", "notebook-content.py"],
    ),
    (
        "DataPipeline",
        "Daily Load",
        "08",
        Some("/pipelines"),
        &[".platform", ".schedules", "pipeline-content.json"],
    ),
    (
        "DataPipeline",
        "Orchestrate",
        "09",
        Some("/pipelines"),
        &[".platform", "pipeline-content.json"],
    ),
    (
        "Report",
        "Sales",
        "0b",
        Some("/reporting"),
        &[".platform", "definition.pbir", "report.json"],
    ),
    (
        "SemanticModel",
        "Sales",
        "0a",
        Some("/reporting"),
        &[
            ".platform",
            "definition.pbism",
            "definition/database.tmdl",
            "definition/model.tmdl",
            "definition/tables/Sales.tmdl",
        ],
    ),
];

#[test]
fn fixture_items_parts_folders_and_logical_ids() {
    let repo = Repository::discover(&fixture(), &DiscoverOptions::default()).unwrap();
    assert!(repo.warnings.is_empty(), "{:?}", repo.warnings);
    let got: Vec<_> = repo
        .items
        .iter()
        .map(|i| {
            (
                i.item_type.as_str().to_string(),
                i.display_name.clone(),
                i.logical_id.clone(),
                i.folder.clone(),
                i.parts.iter().map(|p| p.path.clone()).collect::<Vec<_>>(),
            )
        })
        .collect();
    let want: Vec<_> = EXPECTED
        .iter()
        .map(|(t, n, l, f, parts)| {
            (
                t.to_string(),
                n.to_string(),
                lid(l),
                f.map(str::to_string),
                parts.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        repo.folders,
        [
            "/notebooks",
            "/pipelines",
            "/reporting",
            "/notebooks/shared"
        ]
    );
    assert!(repo.items.iter().all(|i| i.selected));
    let ingest = repo.find(ItemType::Notebook, "Ingest").unwrap();
    assert_eq!(ingest.description, "Loads raw sales into Bronze");
    assert_eq!(ingest.dir, "notebooks/Ingest.Notebook");
    assert_eq!(
        repo.find(ItemType::Lakehouse, "Bronze")
            .unwrap()
            .description,
        ""
    );
    assert!(
        repo.items
            .iter()
            .flat_map(|i| &i.parts)
            .all(|p| p.kind == PartKind::Text)
    );
    // The .platform part is the file as written.
    let platform = ingest.part(".platform").unwrap();
    assert_eq!(
        platform.bytes,
        fs::read(fixture().join("notebooks/Ingest.Notebook/.platform")).unwrap()
    );
    assert_eq!(
        repo.by_logical_id(&lid("06")).unwrap().display_name,
        "Ingest"
    );
    assert!(repo.by_logical_id(ZERO_GUID).is_none());
    assert_eq!(
        repo.at_dir("reporting/Sales.SemanticModel")
            .unwrap()
            .logical_id,
        lid("0a")
    );
}

#[test]
fn fixture_per_type_facts() {
    let repo = Repository::discover(&fixture(), &DiscoverOptions::default()).unwrap();
    let item = |t, n| repo.find(t, n).unwrap();
    assert_eq!(item(ItemType::Lakehouse, "Bronze").creation_payload(), None);
    assert_eq!(
        item(ItemType::Lakehouse, "Silver").creation_payload(),
        Some(serde_json::json!({"enableSchemas": true}))
    );
    assert_eq!(
        item(ItemType::Warehouse, "Gold").creation_payload(),
        Some(serde_json::json!({"defaultCollation": "Latin1_General_100_CI_AS_KS_WS_SC_UTF8"}))
    );
    assert_eq!(item(ItemType::Notebook, "Ingest").creation_payload(), None);
    assert_eq!(item(ItemType::Notebook, "Ingest").definition_format(), None);
    assert_eq!(item(ItemType::Report, "Sales").definition_format(), None);
    assert!(ItemType::Warehouse.is_shell() && ItemType::Lakehouse.is_shell());
    for t in [
        ItemType::Notebook,
        ItemType::DataPipeline,
        ItemType::Report,
        ItemType::SemanticModel,
        ItemType::Environment,
        ItemType::VariableLibrary,
    ] {
        assert!(!t.is_shell(), "{t}");
        assert_eq!(t.facts().unpublish_flag, None, "{t}");
    }
    assert_eq!(
        ItemType::Lakehouse.facts().unpublish_flag,
        Some("enable_lakehouse_unpublish")
    );
    assert_eq!(
        ItemType::Warehouse.facts().unpublish_flag,
        Some("enable_warehouse_unpublish")
    );
}

#[test]
fn scope_and_exclude_regex_select_items() {
    let opts = DiscoverOptions {
        item_types_in_scope: Some(vec![ItemType::Notebook, ItemType::Lakehouse]),
        exclude_regex: Some(Regex::new("Utils|ilver").unwrap()),
        ..DiscoverOptions::default()
    };
    // `ilver` does not match `Silver` from the start, as Python's re.match would not.
    assert_eq!(selected(&opts), ["Bronze", "Silver", "Ingest"]);
    let repo = Repository::discover(&fixture(), &opts).unwrap();
    assert_eq!(repo.items.len(), 11, "out-of-scope items are still read");
    let flat = DiscoverOptions {
        folders: false,
        folder_exclude_regex: Some(Regex::new("^/note").unwrap()),
        ..DiscoverOptions::default()
    };
    let repo = Repository::discover(&fixture(), &flat).unwrap();
    assert!(repo.folders.is_empty() && repo.items.iter().all(|i| i.folder.is_none()));
    // Folder filters still see the repository's folders when folders are not published.
    assert!(!selected(&flat).iter().any(|n| n == "Utils"));
}

fn selected(opts: &DiscoverOptions) -> Vec<String> {
    let repo = Repository::discover(&fixture(), opts).unwrap();
    repo.selected().map(|i| i.display_name.clone()).collect()
}

#[test]
fn folder_filters_and_items_to_include() {
    // An excluded folder excludes its subfolders; root items are never excluded by folder.
    let opts = DiscoverOptions {
        folder_exclude_regex: Some(Regex::new("^/notebooks$|reporting").unwrap()),
        ..DiscoverOptions::default()
    };
    assert_eq!(
        selected(&opts),
        [
            "Bronze",
            "Config",
            "Gold",
            "Silver",
            "Spark",
            "Daily Load",
            "Orchestrate"
        ]
    );
    // Inclusion is exact: /notebooks does not include /notebooks/shared.
    let opts = DiscoverOptions {
        folder_path_to_include: Some(vec!["/notebooks".into(), "/reporting".into()]),
        ..DiscoverOptions::default()
    };
    assert_eq!(
        selected(&opts),
        [
            "Bronze", "Config", "Gold", "Silver", "Spark", "Ingest", "Sales", "Sales"
        ]
    );
    let opts = DiscoverOptions {
        items_to_include: Some(vec!["ingest.NOTEBOOK".into(), "Sales.Report".into()]),
        ..DiscoverOptions::default()
    };
    assert_eq!(selected(&opts), ["Ingest", "Sales"]);
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
}

fn platform(t: &str, name: &str, lid: &str) -> String {
    format!(
        "{{\n  \"metadata\": {{\n    \"type\": \"{t}\",\n    \"displayName\": \"{name}\"\n  }},\n  \"config\": {{\n    \"version\": \"2.0\",\n    \"logicalId\": \"{lid}\"\n  }}\n}}\n"
    )
}

#[test]
fn exclusions_binary_parts_kql_folders_and_newlines() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(
        r,
        "a/M.SemanticModel/.platform",
        platform("SemanticModel", "M", &lid("10")).as_bytes(),
    );
    write(r, "a/M.SemanticModel/definition.pbism", b"{}");
    write(r, "a/M.SemanticModel/.pbi/editorSettings.json", b"{}");
    write(r, "a/M.SemanticModel/x/.pbi/cache.abf", b"{}");
    write(r, "a/M.SemanticModel/.gitignore", b"*.abf\r\nx\r");
    write(
        r,
        "E.Eventhouse/.platform",
        platform("Eventhouse", "E", &lid("11")).as_bytes(),
    );
    write(r, "E.Eventhouse/EventhouseProperties.json", b"{}");
    write(
        r,
        "deep/E2.Eventhouse/.platform",
        platform("Eventhouse", "E2", &lid("12")).as_bytes(),
    );
    write(
        r,
        "deep/E2.Eventhouse/.children/D.KQLDatabase/.platform",
        platform("KQLDatabase", "D", &lid("13")).as_bytes(),
    );
    write(
        r,
        "deep/E2.Eventhouse/.children/D.KQLDatabase/DatabaseProperties.json",
        b"{}",
    );
    write(
        r,
        "Env.Environment/.platform",
        platform("Environment", "Env", ZERO_GUID).as_bytes(),
    );
    // A wheel is a zip: binary, sent byte for byte.
    let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00rest";
    write(r, "Env.Environment/Libraries/CustomLibraries/lib.whl", zip);
    write(
        r,
        "Env.Environment/Libraries/CustomLibraries/logo.png",
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
    );
    write(
        r,
        "Other.Notebook/.platform",
        platform("Notebook", "Other", ZERO_GUID).as_bytes(),
    );
    write(
        r,
        "Other.Notebook/notebook-content.ipynb",
        b"{\"cells\": []}",
    );
    write(r, "Env.Environment/Setting/notes.txt", b"caf\xe9");
    write(r, "empty/dir/README.md", b"no items here");
    // A symlinked directory is not entered, as os.walk does not follow links.
    std::os::unix::fs::symlink(r.join("empty"), r.join("Other.Notebook/linked")).unwrap();
    let repo = Repository::discover(r, &DiscoverOptions::default()).unwrap();
    let m = repo.find(ItemType::SemanticModel, "M").unwrap();
    let paths: Vec<_> = m.parts.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, [".gitignore", ".platform", "definition.pbism"]);
    assert_eq!(m.part(".gitignore").unwrap().text(), Some("*.abf\nx\n"));
    let e2 = repo.find(ItemType::Eventhouse, "E2").unwrap();
    let paths: Vec<_> = e2.parts.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, [".platform"], ".children is not the eventhouse's");
    let d = repo.find(ItemType::KQLDatabase, "D").unwrap();
    assert_eq!(
        d.folder.as_deref(),
        Some("/deep"),
        "a KQL database sits in its eventhouse's folder"
    );
    assert_eq!(repo.folders, ["/a", "/deep"]);
    let env = repo.find(ItemType::Environment, "Env").unwrap();
    let whl = env.part("Libraries/CustomLibraries/lib.whl").unwrap();
    assert_eq!(
        (whl.kind, whl.bytes.as_slice()),
        (PartKind::Binary, zip.as_slice())
    );
    assert_eq!(whl.payload_base64(), "UEsDBBQAAAAIAHJlc3Q=");
    assert_eq!(
        env.part("Libraries/CustomLibraries/logo.png").unwrap().kind,
        PartKind::Binary
    );
    // Neither UTF-8 nor a known binary: sent as bytes, with a warning naming the file.
    let latin1 = env.part("Setting/notes.txt").unwrap();
    assert_eq!(
        (latin1.kind, latin1.bytes.as_slice()),
        (PartKind::Binary, b"caf\xe9".as_slice())
    );
    assert_eq!(repo.warnings.len(), 1, "{:?}", repo.warnings);
    assert!(repo.warnings[0].warning);
    assert!(
        repo.warnings[0]
            .file
            .ends_with("Env.Environment/Setting/notes.txt")
    );
    let other = repo.find(ItemType::Notebook, "Other").unwrap();
    assert_eq!(other.definition_format(), Some("ipynb"));
    let paths: Vec<_> = other.parts.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, [".platform", "notebook-content.ipynb"]);
}

/// The problems of a broken repository, as `(file relative to root, line, col, message)`.
fn problems(r: &Path) -> Vec<(String, usize, usize, String, bool)> {
    let errs = Repository::discover(r, &DiscoverOptions::default()).unwrap_err();
    errs.into_iter()
        .map(|p| {
            let (line, col) = p.pos.map_or((0, 0), |p| (p.line, p.col));
            let file = p
                .file
                .strip_prefix(r)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (file, line, col, p.message, p.warning)
        })
        .collect()
}

/// A repository with one of each discovery error (and an unknown type, a warning).
fn write_broken_repo(r: &Path) {
    write(
        r,
        "Bad.Notebook/.platform",
        b"{\n  \"metadata\": {\n    \"type\": \"Notebook\",\n  }\n}\n",
    );
    write(r, "NoType.Notebook/.platform", b"{\n  \"metadata\": {\n    \"displayName\": \"x\"\n  },\n  \"config\": {\"logicalId\": \"1\"}\n}\n");
    write(
        r,
        "EmptyLid.Notebook/.platform",
        platform("Notebook", "E", " ").as_bytes(),
    );
    write(
        r,
        "EmptyLid.Notebook/notebook-content.py",
        b"# Fabric notebook source\n",
    );
    write(
        r,
        "Weird.Thing/.platform",
        platform("Dashboard", "W", &lid("20")).as_bytes(),
    );
    write(
        r,
        "one/A.Notebook/.platform",
        platform("Notebook", "A", &lid("21")).as_bytes(),
    );
    write(r, "one/A.Notebook/notebook-content.py", b"x");
    write(
        r,
        "two/A.Notebook/.platform",
        platform("Notebook", "A", &lid("21")).as_bytes(),
    );
    write(r, "two/A.Notebook/notebook-content.py", b"x");
    write(
        r,
        "P.DataPipeline/.platform",
        platform("DataPipeline", "P", &lid("22")).as_bytes(),
    );
    write(
        r,
        "bad.folder/N.Notebook/.platform",
        platform("Notebook", "N", &lid("23")).as_bytes(),
    );
    write(r, "bad.folder/N.Notebook/notebook-content.py", b"x");
    write(r, "T.Notebook/.platform", b"{\"metadata\": {\"type\": 7, \"displayName\": \"T\"}, \"config\": {\"logicalId\": \"x\"}}");
}

#[test]
fn broken_repositories_report_every_problem_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write_broken_repo(r);
    let got = problems(r);
    let want = [
        (
            "Bad.Notebook/.platform",
            4,
            3,
            "`.platform` is not valid JSON: trailing comma at line 4 column 3",
            false,
        ),
        (
            "EmptyLid.Notebook/.platform",
            8,
            18,
            "`config.logicalId` is empty",
            false,
        ),
        (
            "NoType.Notebook/.platform",
            2,
            15,
            "`metadata.type` is missing (fabric-cicd requires it)",
            false,
        ),
        (
            "P.DataPipeline/.platform",
            3,
            13,
            "DataPipeline `P` has no part `pipeline-content.json`",
            false,
        ),
        (
            "T.Notebook/.platform",
            1,
            23,
            "`metadata.type` must be a string, not `7`",
            false,
        ),
        (
            "Weird.Thing/.platform",
            3,
            13,
            "`Dashboard` is not an item type fabric-cicd 1.4.0 publishes; the item is not published",
            true,
        ),
        (
            "bad.folder",
            0,
            0,
            "folder name `bad.folder` contains `.`, which Fabric does not allow in a workspace folder name",
            false,
        ),
        (
            "two/A.Notebook/.platform",
            4,
            20,
            "two Notebook items are named `A`: one/A.Notebook/ and two/A.Notebook/",
            false,
        ),
        (
            "two/A.Notebook/.platform",
            8,
            18,
            "duplicate logicalId `3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c21`: one/A.Notebook/.platform has it too",
            false,
        ),
    ];
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want: Vec<_> = want
        .iter()
        .map(|(f, l, c, m, w)| (f.to_string(), *l, *c, m.to_string(), *w))
        .collect();
    want.sort();
    assert_eq!(got_sorted, want);
}

#[test]
fn a_same_workspace_reference_to_no_item_is_a_warning_at_its_line() {
    // The fixture has none: every zero-workspace reference names one of its items.
    let fixture = Repository::discover(&fixture(), &DiscoverOptions::default()).unwrap();
    assert_eq!(fixture.dangling_logical_ids(), Vec::new());

    // Its notes' scenario 4: the environment is gone, the notebook still names it.
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(
        r,
        "N.Notebook/.platform",
        platform("Notebook", "N", &lid("20")).as_bytes(),
    );
    let gone = lid("05");
    write(
        r,
        "N.Notebook/notebook-content.py",
        format!(
            "# Fabric notebook source\n\n# METADATA ********************\n\n# META {{\n# META   \"dependencies\": {{\n# META     \"environment\": {{\n# META       \"environmentId\": \"{gone}\",\n# META       \"workspaceId\": \"00000000-0000-0000-0000-000000000000\"\n# META     }}\n# META   }}\n# META }}\n"
        )
        .as_bytes(),
    );
    let repo = Repository::discover(r, &DiscoverOptions::default()).unwrap();
    let found = repo.dangling_logical_ids();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].warning);
    assert_eq!(found[0].pos.map(|p| p.line), Some(8));
    assert!(found[0].message.contains(&gone));
    assert!(found[0].file.ends_with("N.Notebook/notebook-content.py"));
}
