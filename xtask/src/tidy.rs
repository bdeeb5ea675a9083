//! Tidy checks run by `cargo test` (and so by `cargo xtask ci`): the layering rule, crate
//! metadata (versions and MSRV inherited from the workspace; for publishable crates, crates.io
//! metadata and a README whose example runs as a doctest), re-exports of other fabrik crates'
//! items documented in the README, and a `//!` doc at the top of every source file.
//!
//! The checks read `Cargo.toml` files directly rather than `cargo metadata`, so they work on a
//! fixture tree that is not a buildable workspace (see the tests).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Crates under `crates/` that may depend on any workspace crate.
const FREE: &[&str] = &["crates/deployer-cli"];
/// The one crate every crate under `crates/` may depend on.
const CORE_DIR: &str = "crates/core";

/// Module rules inside the CLI crate: a module (a directory or file under
/// `crates/deployer-cli/src`) and the paths it must not name. Configuration and the engine are
/// domain: they know nothing of publishing's formats or of how a run is put together; state
/// knows nothing of runs. Test files compose freely.
const CLI_MODULE_RULES: &[(&str, &[&str])] = &[
    (
        "config/",
        &[
            "crate::publish",
            "crate::run",
            "crate::state",
            "crate::command",
            "crate::serve",
        ],
    ),
    (
        "engine/",
        &[
            "crate::publish",
            "crate::run",
            "crate::state",
            "crate::command",
            "crate::serve",
            "crate::destroy",
        ],
    ),
    // The plan reads the item types' facts (`publish::item_type`, the one table of them) to
    // mark data-bearing deletes.
    ("plan.rs", &["crate::run", "crate::state", "crate::command"]),
    (
        "state.rs",
        &["crate::run", "crate::command", "crate::serve"],
    ),
];

/// One workspace package as the checks see it.
#[derive(Debug)]
struct Package {
    dir: String,
    name: String,
    manifest: toml::Table,
}

fn read_packages(root: &Path) -> Result<Vec<Package>, String> {
    let crates = root.join("crates");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&crates)
        .map_err(|e| format!("{}: {e}", crates.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    for extra in ["xtask", "tests"] {
        if root.join(extra).join("Cargo.toml").is_file() {
            dirs.push(root.join(extra));
        }
    }
    dirs.sort();
    dirs.iter()
        .map(|d| {
            let path = d.join("Cargo.toml");
            let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let manifest: toml::Table = text
                .parse()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let name = manifest
                .get("package")
                .and_then(|p| p.get("name"))
                .and_then(|n| n.as_str())
                .ok_or_else(|| format!("{}: no package.name", path.display()))?
                .to_string();
            let dir = d
                .strip_prefix(root)
                .unwrap_or(d)
                .to_string_lossy()
                .replace('\\', "/");
            Ok(Package {
                dir,
                name,
                manifest,
            })
        })
        .collect()
}

/// Normal and build dependencies of a manifest, including target-specific ones, by package name.
fn runtime_deps(manifest: &toml::Table) -> Vec<String> {
    let mut tables: Vec<&toml::Table> = Vec::new();
    for key in ["dependencies", "build-dependencies"] {
        if let Some(t) = manifest.get(key).and_then(|t| t.as_table()) {
            tables.push(t);
        }
    }
    if let Some(targets) = manifest.get("target").and_then(|t| t.as_table()) {
        for cfg in targets.values().filter_map(|v| v.as_table()) {
            for key in ["dependencies", "build-dependencies"] {
                if let Some(t) = cfg.get(key).and_then(|t| t.as_table()) {
                    tables.push(t);
                }
            }
        }
    }
    tables
        .into_iter()
        .flat_map(|t| {
            t.iter().map(|(key, spec)| {
                // A renamed dependency names its package in `package = "…"`.
                spec.get("package")
                    .and_then(|p| p.as_str())
                    .unwrap_or(key)
                    .to_string()
            })
        })
        .collect()
}

/// The layering rule: a crate under crates/ depends, among workspace crates, only on core.
pub(crate) fn check_layering(root: &Path) -> Result<Vec<String>, String> {
    let pkgs = read_packages(root)?;
    let names: BTreeMap<&str, &str> = pkgs
        .iter()
        .map(|p| (p.name.as_str(), p.dir.as_str()))
        .collect();
    let core = pkgs
        .iter()
        .find(|p| p.dir == CORE_DIR)
        .map(|p| p.name.clone());
    let mut breaches = Vec::new();
    for p in &pkgs {
        if !p.dir.starts_with("crates/") || FREE.contains(&p.dir.as_str()) {
            continue;
        }
        for dep in runtime_deps(&p.manifest) {
            if names.contains_key(dep.as_str()) && Some(&dep) != core.as_ref() {
                breaches.push(format!(
                    "{} ({}) depends on {dep}: crates depend only inward, on core",
                    p.dir, p.name
                ));
            }
        }
    }
    Ok(breaches)
}

/// Crate metadata: license, description, repository, keywords, categories, a README whose
/// example runs as a doctest, version and MSRV from the workspace, and the workspace lints.
pub(crate) fn check_metadata(root: &Path) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for p in read_packages(root)? {
        let pkg = p.manifest.get("package").and_then(|t| t.as_table());
        let publishable =
            pkg.and_then(|t| t.get("publish")).and_then(|v| v.as_bool()) != Some(false);
        let mut need = vec!["description"];
        if publishable {
            need.extend(["license", "repository", "keywords", "categories", "readme"]);
        }
        for key in need {
            if pkg.and_then(|t| t.get(key)).is_none() {
                problems.push(format!("{}/Cargo.toml: package.{key} is missing", p.dir));
            }
        }
        // One version for all crates (cargo xtask release bumps only the workspace's), and the
        // MSRV stated once in [workspace.package] so cargo checks it for every crate.
        for key in ["version", "rust-version"] {
            let inherited = pkg
                .and_then(|t| t.get(key))
                .and_then(|v| v.get("workspace"))
                .and_then(|w| w.as_bool());
            if inherited != Some(true) {
                problems.push(format!(
                    "{}/Cargo.toml: needs {key}.workspace = true",
                    p.dir
                ));
            }
        }
        if publishable {
            problems.extend(check_readme_doctest(root, &p.dir));
        }
        let lints = p
            .manifest
            .get("lints")
            .and_then(|l| l.get("workspace"))
            .and_then(|w| w.as_bool());
        if lints != Some(true) {
            problems.push(format!(
                "{}/Cargo.toml: needs [lints] workspace = true",
                p.dir
            ));
        }
        if publishable && !root.join(&p.dir).join("README.md").is_file() {
            problems.push(format!("{}: README.md is missing", p.dir));
        }
    }
    Ok(problems)
}

/// A publishable crate's README has a Rust example that compiles (not `ignore`d) and its
/// lib.rs includes the README so `cargo test --doc` compiles that example.
fn check_readme_doctest(root: &Path, dir: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let Ok(readme) = fs::read_to_string(root.join(dir).join("README.md")) else {
        return problems; // reported as missing below
    };
    let compiled = readme.lines().any(|l| {
        l.trim_start()
            .strip_prefix("```")
            .is_some_and(|info| info.split(',').next() == Some("rust") && !info.contains("ignore"))
    });
    if !compiled {
        problems.push(format!(
            "{dir}/README.md: needs a ```rust example that compiles (not `ignore`)"
        ));
    }
    let lib = root.join(dir).join("src/lib.rs");
    if let Ok(text) = fs::read_to_string(&lib)
        && !text.contains("include_str!(\"../README.md\")")
    {
        problems.push(format!(
            "{dir}/src/lib.rs: include README.md as a doctest (#[cfg(doctest)] #[doc = include_str!(\"../README.md\")])"
        ));
    }
    problems
}

/// Items of other fabrik crates that a crate under crates/ re-exports (`pub use fabrik_…`)
/// are part of its API on purpose, so its README must name each of them.
pub(crate) fn check_reexports(root: &Path) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for p in read_packages(root)? {
        if !p.dir.starts_with("crates/") || FREE.contains(&p.dir.as_str()) {
            continue;
        }
        let mut files = Vec::new();
        collect_rs(&root.join(&p.dir).join("src"), &mut files);
        let readme = fs::read_to_string(root.join(&p.dir).join("README.md")).unwrap_or_default();
        for f in files {
            let text = fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            for item in reexported_items(&text) {
                if !readme.contains(&format!("`{item}`")) {
                    let rel = f.strip_prefix(root).unwrap_or(&f);
                    problems.push(format!(
                        "{}: re-exports `{item}` from another fabrik crate; say so in {}/README.md",
                        rel.display(),
                        p.dir
                    ));
                }
            }
        }
    }
    Ok(problems)
}

/// The names `pub use fabrik_x::…;` statements bring in (the last segment of each path, or its
/// `as` alias), across line breaks inside braces.
fn reexported_items(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("pub use fabrik_") {
        let stmt = &rest[i + "pub use ".len()..];
        let end = stmt.find(';').unwrap_or(stmt.len());
        let stmt = &stmt[..end];
        rest = &rest[i + 1..];
        let list = match (stmt.find('{'), stmt.rfind('}')) {
            (Some(a), Some(b)) if a < b => &stmt[a + 1..b],
            _ => stmt,
        };
        for part in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let name = match part.split_once(" as ") {
                Some((_, alias)) => alias.trim(),
                None => part.rsplit("::").next().unwrap_or(part).trim(),
            };
            if name != "self" && name != "*" {
                items.push(name.to_string());
            }
        }
    }
    items
}

/// Every Rust source file under crates/*/src, xtask/src and tests starts with a `//!` doc.
pub(crate) fn check_docs(root: &Path) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for p in read_packages(root)? {
        let src = root.join(&p.dir).join("src");
        collect_rs(&src, &mut files);
        if p.dir == "tests" {
            collect_rs(&root.join("tests"), &mut files);
        }
    }
    files.sort();
    files.dedup();
    for f in files {
        let text = fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        if !first.trim_start().starts_with("//!") {
            let rel = f.strip_prefix(root).unwrap_or(&f);
            problems.push(format!(
                "{}: must start with a //! doc comment saying what it is for",
                rel.display()
            ));
        }
    }
    Ok(problems)
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name()
                .is_some_and(|n| n == "target" || n == "fixtures")
            {
                continue;
            }
            collect_rs(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The CLI's module rules ([`CLI_MODULE_RULES`]): each use of a forbidden path, with its
/// file and line.
fn check_cli_modules(root: &Path) -> Vec<String> {
    let src = root.join("crates/deployer-cli/src");
    let mut files = Vec::new();
    collect_rs(&src, &mut files);
    let mut problems = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(&src)
            .unwrap_or(&f)
            .to_string_lossy()
            .replace('\\', "/");
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "tests.rs" || name.ends_with("_tests.rs") {
            continue;
        }
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        for (module, forbidden) in CLI_MODULE_RULES {
            if !(rel == *module || (module.ends_with('/') && rel.starts_with(module))) {
                continue;
            }
            for (n, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for path in forbidden.iter().filter(|p| line.contains(*p)) {
                    problems.push(format!(
                        "crates/deployer-cli/src/{rel}:{}: {module} must not use {path} (module rules in xtask/src/tidy.rs)",
                        n + 1
                    ));
                }
            }
        }
    }
    problems
}

/// Runs every tidy check on the workspace at `root`; returns all problems found.
pub(crate) fn run_all(root: &Path) -> Result<Vec<String>, String> {
    let mut all = check_layering(root)?;
    all.extend(check_metadata(root)?);
    all.extend(check_reexports(root)?);
    all.extend(check_docs(root)?);
    all.extend(check_cli_modules(root));
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    /// The real workspace is tidy. This is the check `cargo test` enforces.
    #[test]
    fn workspace_is_tidy() {
        let problems = run_all(&workspace_root()).unwrap();
        assert!(
            problems.is_empty(),
            "tidy problems:\n{}",
            problems.join("\n")
        );
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn manifest(name: &str, deps: &str) -> String {
        format!(
            "[package]\nname = \"{name}\"\nversion.workspace = true\nrust-version.workspace = true\ndescription = \"d\"\nlicense = \"MIT\"\nrepository = \"r\"\nkeywords = []\ncategories = []\nreadme = \"README.md\"\n\n{deps}\n[lints]\nworkspace = true\n"
        )
    }

    fn fixture(client_deps: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "crates/core/Cargo.toml", &manifest("fabrik-core", ""));
        write(
            root,
            "crates/txn/Cargo.toml",
            &manifest(
                "fabrik-txn",
                "[dependencies]\nfabrik-core.workspace = true\n",
            ),
        );
        write(
            root,
            "crates/fabric-client/Cargo.toml",
            &manifest("fabrik-client", client_deps),
        );
        write(
            root,
            "crates/deployer-cli/Cargo.toml",
            &manifest(
                "fabrik-cli",
                "[dependencies]\nfabrik-txn.workspace = true\nfabrik-client.workspace = true\n",
            ),
        );
        for c in ["core", "txn", "fabric-client", "deployer-cli"] {
            write(
                root,
                &format!("crates/{c}/README.md"),
                "# r\n\n```rust,no_run\nlet x = 1;\n```\n",
            );
            write(
                root,
                &format!("crates/{c}/src/lib.rs"),
                "//! doc\n#[cfg(doctest)]\n#[doc = include_str!(\"../README.md\")]\nstruct ReadmeDoctests;\n",
            );
        }
        dir
    }

    #[test]
    fn layering_passes_when_crates_depend_only_on_core_and_dev_deps_are_free() {
        let dir = fixture(
            "[dependencies]\nfabrik-core.workspace = true\nserde = \"1\"\n[dev-dependencies]\nfabrik-txn.workspace = true\n",
        );
        assert_eq!(run_all(dir.path()).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn layering_breach_is_reported() {
        let dir = fixture(
            "[dependencies]\nfabrik-core.workspace = true\nfabrik-txn = { path = \"../txn\" }\n",
        );
        let problems = check_layering(dir.path()).unwrap();
        assert_eq!(
            problems,
            vec![
                "crates/fabric-client (fabrik-client) depends on fabrik-txn: crates depend only inward, on core"
            ]
        );
    }

    #[test]
    fn renamed_and_target_specific_and_build_dependencies_count() {
        let dir = fixture(
            "[dependencies]\ntx = { package = \"fabrik-txn\", path = \"../txn\" }\n[target.'cfg(unix)'.build-dependencies]\nfabrik-cli = { path = \"../deployer-cli\" }\n",
        );
        let problems = check_layering(dir.path()).unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("fabrik-txn") && problems[1].contains("fabrik-cli"));
    }

    #[test]
    fn missing_docs_metadata_and_lints_are_reported() {
        let dir = fixture("[dependencies]\n");
        let root = dir.path();
        write(root, "crates/txn/src/journal.rs", "use std::fs;\n");
        write(
            root,
            "crates/txn/Cargo.toml",
            "[package]\nname = \"fabrik-txn\"\n",
        );
        let problems = run_all(root).unwrap();
        let joined = problems.join("\n");
        assert!(
            joined.contains("crates/txn/src/journal.rs: must start with a //! doc"),
            "{joined}"
        );
        assert!(joined.contains("crates/txn/Cargo.toml: package.description is missing"));
        assert!(joined.contains("crates/txn/Cargo.toml: package.license is missing"));
        assert!(joined.contains("crates/txn/Cargo.toml: needs [lints] workspace = true"));
        assert!(joined.contains("crates/txn/Cargo.toml: package.keywords is missing"));
        assert!(joined.contains("crates/txn/Cargo.toml: needs version.workspace = true"));
        assert!(joined.contains("crates/txn/Cargo.toml: needs rust-version.workspace = true"));
    }

    #[test]
    fn readme_without_a_compiled_example_or_doctest_hook_is_reported() {
        let dir = fixture("[dependencies]\n");
        let root = dir.path();
        write(
            root,
            "crates/txn/README.md",
            "# txn\n\n```rust,ignore\nlet x = 1;\n```\n",
        );
        write(root, "crates/core/src/lib.rs", "//! doc\n");
        assert_eq!(
            check_metadata(root).unwrap(),
            vec![
                "crates/core/src/lib.rs: include README.md as a doctest (#[cfg(doctest)] #[doc = include_str!(\"../README.md\")])",
                "crates/txn/README.md: needs a ```rust example that compiles (not `ignore`)",
            ]
        );
    }

    #[test]
    fn reexports_of_other_fabrik_crates_must_be_named_in_the_readme() {
        let dir = fixture("[dependencies]\nfabrik-core.workspace = true\n");
        let root = dir.path();
        write(
            root,
            "crates/fabric-client/src/lib.rs",
            "//! doc\npub use fabrik_core::{\n    Classify,\n    policy::CallPolicy as Policy,\n};\npub use fabrik_core::ErrorClass;\npub use serde::Serialize;\n",
        );
        write(
            root,
            "crates/fabric-client/README.md",
            "Re-exports fabrik-core's `Classify`.\n",
        );
        // The CLI composes everything and may re-export freely.
        write(
            root,
            "crates/deployer-cli/src/lib.rs",
            "//! doc\npub use fabrik_txn::Transaction;\n",
        );
        assert_eq!(
            check_reexports(root).unwrap(),
            vec![
                "crates/fabric-client/src/lib.rs: re-exports `Policy` from another fabrik crate; say so in crates/fabric-client/README.md",
                "crates/fabric-client/src/lib.rs: re-exports `ErrorClass` from another fabrik crate; say so in crates/fabric-client/README.md",
            ]
        );
    }

    #[test]
    fn cli_module_rules_report_a_forbidden_edge_with_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("crates/deployer-cli/src");
        fs::create_dir_all(src.join("engine")).unwrap();
        fs::create_dir_all(src.join("config")).unwrap();
        fs::write(
            src.join("engine/mod.rs"),
            "//! x\nuse crate::plan::Plan;\nfn f() { crate::publish::x(); }\n",
        )
        .unwrap();
        fs::write(src.join("config/tests.rs"), "use crate::publish::y;\n").unwrap();
        fs::write(src.join("state.rs"), "// crate::run is only named here\n").unwrap();
        let problems = check_cli_modules(dir.path());
        assert_eq!(
            problems,
            [
                "crates/deployer-cli/src/engine/mod.rs:3: engine/ must not use crate::publish (module rules in xtask/src/tidy.rs)"
            ]
        );
    }
}
