//! `cargo xtask bench-publish [--debug]`: fabrik's `publish` against fabric-cicd 1.4.0 on a
//! 300-item repository (the shared git-format fixture scaled up, generated under
//! `target/bench-publish/repo`), both against one fabrik-emulator (`--lro-delay 50`, no
//! throttling), each run into a fresh workspace: first publish and second publish (unchanged
//! repository) wall time, the write requests of each second publish, and fabrik's peak RSS;
//! and fabric-cicd's script through the wheel (`fabrik_cicd`, docs/PYTHON.md).
//! Writes `docs/benchmarks/publish.md` and regenerates docs/BENCHMARKS.md. Fails when a run
//! fails, and when a bar is missed (after writing the figures).
//!
//! The measuring is in `publish_bench.py` (it drives fabric-cicd in Python); this file
//! generates the repository, builds, starts the emulator, and writes the report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

use crate::bench_docs::{Bar, Provenance, bars_section};
use crate::cicd::{ensure_venv, start_emulator, write_drivers};
use crate::{cargo, root, step, write_benchmarks_index};

pub(crate) const DRIVER: &str = include_str!("publish_bench.py");

/// Copies of the fixture's 11 items.
const UNITS: usize = 27;
/// Extra notebooks (copies of `Utils`) that bring the count to 300.
const EXTRA_NOTEBOOKS: usize = 3;
/// Top-level folders the copies are spread over (each holds the fixture's four folders).
const AREAS: [&str; 3] = ["sales", "finance", "operations"];
/// The environment published (its Spark pool is the capacity's, so no workspace set-up).
const ENV: &str = "prod";
/// fabrik's default `--concurrency` (crates/deployer-cli/src/run.rs), which the benchmark keeps.
const FABRIK_CONCURRENCY: u64 = 16;
/// The fixture's dev Bronze lakehouse id, which its notebooks hold and parameter.yml maps.
const DEV_BRONZE: &str = "bbbbbbbb-1111-4222-8333-555555555555";

/// One generated repository's shape.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Generated {
    pub items: usize,
    pub folders: usize,
}

/// Item directories of the fixture (those holding a `.platform`), relative to it, sorted.
fn fixture_items(fixture: &Path) -> Result<Vec<PathBuf>, String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        if entries.iter().any(|p| p.ends_with(".platform")) {
            out.push(dir.strip_prefix(base).unwrap_or(dir).to_path_buf());
            return Ok(());
        }
        for p in entries {
            if p.is_dir() {
                walk(&p, base, out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(fixture, fixture, &mut out)?;
    Ok(out)
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let p = e.map_err(|e| e.to_string())?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap_or(&p).to_path_buf());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The fixture's logicalIds are `3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b4cNN`; copy `k` gets
/// `…-0e1fKKKK4cNN`.
fn logical_prefix(k: usize) -> String {
    format!("0e1f{k:04x}4c")
}

fn dev_bronze(k: usize) -> String {
    format!("bbbbbbbb-1111-4222-8333-5555555555{k:02x}")
}

/// Copy `k` of one fixture item: renamed `Name_KK`, its own logicalIds and dev lakehouse id,
/// its name references (the notebook's lakehouse name, the report's model path) following.
fn copy_item(fixture: &Path, rel: &Path, k: usize, out: &Path) -> Result<(), String> {
    let leaf = rel
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("item directory name")?;
    let (name, kind) = leaf.rsplit_once('.').ok_or("Name.Type directory")?;
    let suffix = format!("_{k:02}");
    let parent = rel.parent().unwrap_or(Path::new(""));
    let dest = out
        .join(AREAS[k % AREAS.len()])
        .join(parent)
        .join(format!("{name}{suffix}.{kind}"));
    let src = fixture.join(rel);
    for file in files(&src)? {
        let text = std::fs::read_to_string(src.join(&file))
            .map_err(|e| format!("{}: {e}", src.join(&file).display()))?;
        let mut text = text
            .replace("0e1f2a3b4c", &logical_prefix(k))
            .replace(DEV_BRONZE, &dev_bronze(k))
            .replace(
                "\"default_lakehouse_name\": \"Bronze\"",
                &format!("\"default_lakehouse_name\": \"Bronze{suffix}\""),
            )
            .replace(
                "../Sales.SemanticModel",
                &format!("../Sales{suffix}.SemanticModel"),
            );
        if file == Path::new(".platform") {
            text = text.replace(
                &format!("\"displayName\": \"{name}\""),
                &format!("\"displayName\": \"{name}{suffix}\""),
            );
        }
        if name == "Orchestrate" && file == Path::new("pipeline-content.json") && k > 0 {
            text = also_run_previous_daily_load(&text, k)?;
        }
        let path = dest.join(&file);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// A cross-copy reference: copy `k`'s Orchestrate also runs copy `k - 1`'s Daily Load (by
/// logicalId), so the ordering spans copies; it stays acyclic (Daily Load refers only to its
/// own notebook).
fn also_run_previous_daily_load(text: &str, k: usize) -> Result<String, String> {
    let mut v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let activities = v["properties"]["activities"]
        .as_array_mut()
        .ok_or("Orchestrate has activities")?;
    activities.push(serde_json::json!({
        "name": "Run previous Daily Load",
        "type": "ExecutePipeline",
        "dependsOn": [{"activity": "Run Daily Load", "dependencyConditions": ["Succeeded"]}],
        "policy": {"secureInput": false},
        "typeProperties": {
            "pipeline": {
                "referenceName": format!("3b1f2c4d-5e6f-4a7b-8c9d-{}08", logical_prefix(k - 1)),
                "type": "PipelineReference"
            },
            "waitOnCompletion": true
        }
    }));
    serde_json::to_string_pretty(&v).map_err(|e| e.to_string())
}

/// The fixture's parameter.yml, applying to every copy: each copy's dev lakehouse id becomes
/// its deployed Bronze (`$items`), the dev workspace id the target's (regex), the storage
/// account per environment; schedules and variable values per environment; every
/// environment's pool the environment's.
fn parameter_yml(units: usize) -> String {
    let mut y = String::from("find_replace:\n");
    for k in 0..units {
        let _ = write!(
            y,
            "  - find_value: \"{}\"\n    replace_value:\n      _ALL_: \"$items.Lakehouse.Bronze_{k:02}.$id\"\n    item_type: \"Notebook\"\n    item_name: \"Ingest_{k:02}\"\n",
            dev_bronze(k)
        );
    }
    y.push_str(
        r#"  - find_value: '"default_lakehouse_workspace_id":\s*"([0-9a-fA-F-]{36})"'
    replace_value:
      _ALL_: "$workspace.$id"
    is_regex: "true"
    file_path: "**/notebook-content.py"
  - find_value: "stdatadev"
    replace_value:
      test: "stdatatest"
      prod: "stdataprod"
    item_type: "Notebook"
    file_path: "**/notebook-content.py"

key_value_replace:
  - find_key: $.schedules[?(@.jobType=="Execute")].enabled
    replace_value:
      test: false
      prod: true
    item_type: "DataPipeline"
    file_path: "**/.schedules"
  - find_key: $.variables[?(@.name=="StorageAccount")].value
    replace_value:
      test: "stdatatest"
      prod: "stdataprod"
    item_type: "VariableLibrary"

spark_pool:
  - instance_pool_id: "cccccccc-1111-4222-8333-666666666666"
    replace_value:
      test:
        type: "Workspace"
        name: "SmallPool"
      prod:
        type: "Capacity"
        name: "ProdCapacityPool"
"#,
    );
    y
}

/// Writes the scaled repository into `out` (which must not exist): `UNITS` copies of the
/// fixture's items spread over the `AREAS` folders, `EXTRA_NOTEBOOKS` more copies of
/// `Utils`, and a parameter.yml for them all.
pub(crate) fn generate(fixture: &Path, out: &Path) -> Result<Generated, String> {
    let items = fixture_items(fixture)?;
    let mut count = 0;
    for k in 0..UNITS {
        for rel in &items {
            copy_item(fixture, rel, k, out)?;
            count += 1;
        }
    }
    let utils = items
        .iter()
        .find(|p| p.ends_with("Utils.Notebook"))
        .ok_or("the fixture has notebooks/shared/Utils.Notebook")?;
    for k in UNITS..UNITS + EXTRA_NOTEBOOKS {
        copy_item(fixture, utils, k, out)?;
        count += 1;
    }
    std::fs::write(out.join("parameter.yml"), parameter_yml(UNITS)).map_err(|e| e.to_string())?;
    // Folders: every strict ancestor directory of an item directory.
    let mut folders = std::collections::BTreeSet::new();
    for area in AREAS {
        for rel in &items {
            let mut p = rel.parent();
            while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
                folders.insert(Path::new(area).join(d));
                p = d.parent();
            }
        }
        folders.insert(PathBuf::from(area));
    }
    Ok(Generated {
        items: count,
        folders: folders.len(),
    })
}

/// Which service the emulator plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    /// Answers at once, no throttling, 50 ms operations (`docs/benchmarks/publish.md`).
    Fast,
    /// Fabric's latencies, operations and `Retry-After`s from the recorded trace, scaled by
    /// [`TIME_SCALE`], one quota per identity ([`QUOTA`]) (`docs/benchmarks/publish-fabric.md`).
    Fabric,
}

/// The Fabric profile's time scale: every duration divided by 20, the quota's rate multiplied.
const TIME_SCALE: u32 = 20;
/// Calls per minute per identity: the low end of the 200–500 Fabric's throttling docs name for
/// the unified quota (../shared/docs/peers.md), the budget a team must plan for.
const QUOTA: u32 = 200;
/// fabric-cicd's fixed 1 s delays, scaled like the service's (`1 / TIME_SCALE`).
const CICD_DELAY_SCALED: &str = "0.05";

impl Profile {
    /// The emulator's flags.
    fn emulator_args(self) -> Vec<String> {
        let mut args: Vec<String> = ["--accept-any-token", "--capacity-pool", "ProdCapacityPool"]
            .map(String::from)
            .to_vec();
        match self {
            Profile::Fast => args.extend(["--lro-delay", "50"].map(String::from)),
            Profile::Fabric => args.extend([
                "--profile".into(),
                "fabric".into(),
                "--time-scale".into(),
                TIME_SCALE.to_string(),
                "--quota".into(),
                QUOTA.to_string(),
            ]),
        }
        // fabric-cicd 1.4.0 reads `GET /items` without following `continuationToken`
        // (`_refresh_deployed_items`); at the emulator's default 100 per page it cannot find
        // most of 300 items. One page, as a server may choose, lets it work; fabrik pages
        // either way.
        args.extend(["--page-size", "1000"].map(String::from));
        args
    }

    /// The document it writes.
    fn doc(self) -> &'static str {
        match self {
            Profile::Fast => "publish",
            Profile::Fabric => "publish-fabric",
        }
    }

    /// The driver's mode argument.
    fn mode(self) -> &'static str {
        match self {
            Profile::Fast => "fast",
            Profile::Fabric => "fabric",
        }
    }

    fn command(self) -> &'static str {
        match self {
            Profile::Fast => "cargo xtask bench-publish",
            Profile::Fabric => "cargo xtask bench-publish --profile fabric",
        }
    }
}

/// Builds `fabrik` and `fabrik-emulator` (release unless `debug`) and installs the wheel
/// into fabric-cicd's virtualenv; the directory holding the binaries.
fn build_tools(root: &Path, python: &Path, debug: bool) -> Result<PathBuf, String> {
    let profile = if debug { "debug" } else { "release" };
    let mut build = cargo();
    build.arg("build");
    if !debug {
        build.arg("--release");
    }
    build.args([
        "-p",
        "fabrik-cli",
        "-p",
        "fabrik-emulator",
        "--bin",
        "fabrik",
        "--bin",
        "fabrik-emulator",
    ]);
    step(
        &format!("build {profile} fabrik and fabrik-emulator"),
        build,
    )?;
    // The same script through the wheel: fabrik_cicd and its `fabrik` in fabric-cicd's venv.
    let wheel = crate::wheel::build(debug, &root.join("target/wheels/bench"))?;
    let mut install = Command::new(python);
    install
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--force-reinstall",
            "--no-deps",
        ])
        .arg(&wheel);
    step("pip install the wheel into target/cicd/venv", install)?;
    Ok(crate::wheel::target_dir().join(profile))
}

/// Runs the driver (fabric-cicd, fabrik, fabrik_cicd against one emulator) and reads its
/// results; with the provenance paragraph (command, commit, machine, load before and after).
fn measure(
    python: &Path,
    cicd_dir: &Path,
    bin: &Path,
    dir: &Path,
    shape: &Generated,
    service: Profile,
) -> Result<(Report, String), String> {
    let args = service.emulator_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_emulator, url) = start_emulator(&bin.join("fabrik-emulator"), &args)?;
    write_drivers(cicd_dir)?;
    let provenance = Provenance::start(service.command());
    let results = dir.join("results.json");
    let mut driver = Command::new(python);
    driver
        .arg(cicd_dir.join("publish_bench.py"))
        .arg(&url)
        .arg(dir.join("repo"))
        .arg(bin.join("fabrik"))
        .arg(dir)
        .arg(ENV)
        .arg(shape.items.to_string())
        .arg(shape.folders.to_string())
        .arg(&results)
        .arg(service.mode())
        .env("NO_COLOR", "1")
        // fabric-cicd runs with its defaults; the driver sets the exceptions it labels.
        .env_remove("FABRIC_CICD_RETRY_DELAY_OVERRIDE_SECONDS")
        .env_remove("FABRIC_CICD_PARALLEL_MAX_WORKERS");
    step("measure fabric-cicd 1.4.0 and fabrik publish", driver)?;
    let text =
        std::fs::read_to_string(&results).map_err(|e| format!("{}: {e}", results.display()))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", results.display()))?;
    Ok((Report::from_json(&v, service)?, provenance.finish()))
}

/// Prints each bar; an error naming the bars missed.
fn verdict(report: &Report, started: Instant) -> Result<(), String> {
    let doc = report.service.doc();
    for b in &report.bars() {
        println!(
            "{}: {} ({})",
            b.what,
            b.measured,
            if b.met { "met" } else { "MISSED" }
        );
    }
    println!(
        "<== bench-publish in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    let missed: Vec<String> = report
        .bars()
        .into_iter()
        .filter(|b| !b.met)
        .map(|b| b.what)
        .collect();
    if missed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "bar(s) missed, figures written to docs/benchmarks/{doc}.md: {}",
            missed.join("; ")
        ))
    }
}

/// The task.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let usage = "usage: cargo xtask bench-publish [--debug] [--profile fast|fabric]";
    let (mut debug, mut service) = (false, Profile::Fast);
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--debug" => debug = true,
            "--profile" => {
                service = match rest.next().map(String::as_str) {
                    Some("fast") => Profile::Fast,
                    Some("fabric") => Profile::Fabric,
                    _ => return Err(format!("--profile takes fast or fabric; {usage}")),
                }
            }
            other => return Err(format!("unknown option {other}; {usage}")),
        }
    }
    let root = root();
    let dir = root.join("target/bench-publish");
    let repo = dir.join("repo");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let shape = generate(&root.join("../shared/fixtures/git-format-repo"), &repo)?;
    println!(
        "generated {} items in {} folders under {}",
        shape.items,
        shape.folders,
        repo.display()
    );
    let cicd_dir = root.join("target/cicd");
    let python = ensure_venv(&cicd_dir.join("venv"))?;
    let bin = build_tools(&root, &python, debug)?;
    let (report, provenance) = measure(&python, &cicd_dir, &bin, &dir, &shape, service)?;
    let md = report.markdown(
        &shape,
        if debug { "debug" } else { "release" },
        &service.emulator_args().join(" "),
        &provenance,
    );
    let out = root.join(format!("docs/benchmarks/{}.md", service.doc()));
    std::fs::write(&out, &md).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("wrote {}", out.display());
    write_benchmarks_index()?;
    verdict(&report, started)
}

/// The page's title and how the figures were made: command, repository, emulator, timing.
fn intro(
    shape: &Generated,
    service: Profile,
    profile: &str,
    emulator_args: &str,
    provenance: &str,
) -> String {
    let mut md = String::from("# Publish benchmark: fabrik against fabric-cicd 1.4.0\n\n");
    let _ = write!(
        md,
        "{provenance}\nThe command ({}builds {profile} `fabrik` and `fabrik-emulator`, \
installs fabric-cicd 1.4.0 into target/cicd/venv, generates the repository, measures, writes this \
file, docs/benchmarks/00-summary.md and docs/BENCHMARKS.md; `cargo xtask bench --publish` runs it \
after the other benchmarks).\n\n",
        if profile == "debug" {
            "with `--debug`: "
        } else {
            ""
        }
    );
    let _ = write!(
        md,
        "**Repository** (generated under target/bench-publish/repo): the shared fixture \
(shared/fixtures/git-format-repo, 11 items of 8 types) scaled to {} items: {UNITS} copies of its \
items (names suffixed `_00`…`_{:02}`, their own logicalIds, references kept within each copy: \
notebook → environment, pipeline → notebook, pipeline → pipeline, report → model by path, \
shortcut → lakehouse) plus {EXTRA_NOTEBOOKS} more copies of `Utils`; each copy's Orchestrate \
pipeline also runs the previous copy's Daily Load. {} folders ({} top folders, each holding the \
fixture's four). Its parameter.yml maps each copy's dev lakehouse id to its Bronze \
(`$items.Lakehouse.Bronze_KK.$id`, one entry per copy), the dev workspace id (regex, \
`$workspace.$id`), the storage account, the schedules, the variable value and the environments' \
Spark pool. Environment `{ENV}`.\n\n",
        shape.items,
        UNITS - 1,
        shape.folders,
        AREAS.len()
    );
    md.push_str(&match service {
        Profile::Fast => fast_setting(shape, profile, emulator_args),
        Profile::Fabric => fabric_setting(shape, profile, emulator_args),
    });
    md
}

/// The emulator and the timing of the fast profile.
fn fast_setting(shape: &Generated, profile: &str, emulator_args: &str) -> String {
    format!(
        "**Emulator**: one `fabrik-emulator {emulator_args}` ({profile} build), no throttling. \
Item creates answer 201 at once; getDefinition, updateDefinition and the environment publish are \
50 ms long-running operations whose 202 carries `Retry-After: 1`. Lists answer up to 1,000 per \
page: fabric-cicd 1.4.0 reads `GET /items` without following its continuation, and at the \
emulator's default of 100 per page its first publish fails (\"Item 'Bronze_20' not found as a \
deployed Lakehouse\"). Every run publishes into its own \
fresh workspace; the request log is cleared before each run. Real Fabric answers in about a \
second and throttles each identity: `cargo xtask bench-publish --profile fabric` measures against \
that (docs/benchmarks/publish-fabric.md).\n\n\
**Timing**: fabrik is timed as a whole process (`fabrik publish --repository … --workspace-id … \
--env {ENV} --base-url … --state-dir …`, defaults otherwise, `--concurrency {FABRIK_CONCURRENCY}`), its peak RSS \
sampled from /proc/PID/status VmHWM every 10 ms. fabric-cicd is timed inside its own Python \
process around `FabricWorkspace(...)` + `publish_all_items(...)`, with its defaults (no feature \
flag, 8 workers, its 1 s pause before polling an operation); the process's wall time with \
Python's start-up and imports is shown beside it. A run fails the benchmark if it exits non-zero \
or leaves other than {} items and {} folders. `fabrik_cicd`: the same fabric-cicd child script \
with only its import changed to `fabrik_cicd`, run through the wheel (`cargo xtask wheel`, {profile} \
build) installed into the same virtualenv, timed the same way: its publish is a `fabrik publish` \
process that gets its tokens from the script's credential over the token pipe (docs/PYTHON.md).\n\n",
        shape.items, shape.folders
    )
}

/// The emulator and the timing of the Fabric-like profile.
fn fabric_setting(shape: &Generated, profile: &str, emulator_args: &str) -> String {
    let per_second = f64::from(QUOTA * TIME_SCALE) / 60.0;
    format!(
        "**Emulator**: one `fabrik-emulator {emulator_args}` ({profile} build) playing Fabric \
(docs/EMULATOR.md, \"The Fabric-like profile\"): every request waits a latency drawn from the \
recorded trace's distribution for its class (a GET about 1 s, a create 3–5 s); item creates, \
definition reads and writes and the bulk calls are long-running operations that answer 202 with \
`Retry-After: 20` and run as long as the trace's; an Environment publish asks for \
`Retry-After: 120` and runs about six minutes. Every duration is divided by the time scale \
{TIME_SCALE}, so the ratios between the tools are Fabric's and the run {TIME_SCALE}× shorter. \
**Quota**: {QUOTA} calls per minute per identity, the low end of the 200–500 per minute the \
Fabric documentation names for its unified quota (what a team must plan for), scaled like time: \
a bucket of {QUOTA} calls refilled at {} calls per minute ({per_second:.1}/s); over it the \
emulator answers 429 with Fabric's body and `Retry-After`. Both tools deploy as one identity, \
one after the other, each into its own fresh workspace; the request log is cleared before each \
run. Lists answer up to 1,000 per page (fabric-cicd 1.4.0 does not follow continuations).\n\n\
**Timing**: fabrik is timed as a whole process with its defaults (`--concurrency \
{FABRIK_CONCURRENCY}`, no `--rate-limit`: it finds the quota from the 429s), its peak RSS sampled \
every 10 ms. fabric-cicd is timed inside its own Python process around `FabricWorkspace(...)` + \
`publish_all_items(...)`, with its defaults except that its own fixed 1 s delays are scaled like \
the service's (`FABRIC_CICD_RETRY_DELAY_OVERRIDE_SECONDS={CICD_DELAY_SCALED}`). A run fails the \
benchmark if it exits non-zero or leaves other than {} items and {} folders.\n\n",
        QUOTA * TIME_SCALE,
        shape.items,
        shape.folders
    )
}

/// One measured run, as the driver reports it.
#[derive(Debug, Clone)]
struct RunFigures {
    tool: String,
    label: String,
    run: String,
    /// The publish itself: fabric-cicd's `FabricWorkspace(...)` + `publish_all_items`
    /// in-process, fabrik's whole process.
    wall: f64,
    /// fabric-cicd's whole process, Python start-up and imports included.
    process_wall: Option<f64>,
    requests: u64,
    writes: u64,
    get_definitions: u64,
    bulk_exports: u64,
    peak_rss_kb: Option<u64>,
    /// The most frequent requests: (count, `METHOD /path` with ids as `{id}`).
    top: Vec<(u64, String)>,
    /// Requests per kind of call (the emulator profile's classes, definition reads apart).
    classes: std::collections::BTreeMap<String, u64>,
    /// Answers of 429.
    throttled: u64,
}

struct Report {
    runs: Vec<RunFigures>,
    service: Profile,
}

impl Report {
    fn from_json(v: &Value, service: Profile) -> Result<Self, String> {
        let runs = v["runs"]
            .as_array()
            .ok_or("results.json has no runs")?
            .iter()
            .map(|r| {
                Ok(RunFigures {
                    tool: r["tool"].as_str().ok_or("tool")?.to_string(),
                    label: r["label"].as_str().unwrap_or_default().to_string(),
                    run: r["run"].as_str().ok_or("run")?.to_string(),
                    wall: r["wall"].as_f64().ok_or("wall")?,
                    process_wall: r["processWall"].as_f64(),
                    requests: r["requests"].as_u64().ok_or("requests")?,
                    writes: r["writes"].as_u64().ok_or("writes")?,
                    get_definitions: r["getDefinitions"].as_u64().ok_or("getDefinitions")?,
                    bulk_exports: r["bulkExports"].as_u64().ok_or("bulkExports")?,
                    peak_rss_kb: r["peakRssKb"].as_u64(),
                    top: r["top"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| Some((t[0].as_u64()?, t[1].as_str()?.to_string())))
                        .collect(),
                    classes: r["classes"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter_map(|(k, n)| Some((k.clone(), n.as_u64()?)))
                        .collect(),
                    throttled: r["throttled"].as_u64().unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, &str>>()
            .map_err(|f| format!("results.json: a run without {f}"))?;
        Ok(Self { runs, service })
    }

    fn find(&self, tool: &str, run: &str) -> Option<&RunFigures> {
        self.runs
            .iter()
            .find(|r| r.tool == tool && r.run == run && r.label.is_empty())
    }

    fn bars(&self) -> Vec<Bar> {
        let mut bars = match self.service {
            Profile::Fast => self.fast_bars(),
            Profile::Fabric => self.fabric_bars(),
        };
        let peak = self
            .runs
            .iter()
            .filter(|r| r.tool == "fabrik")
            .filter_map(|r| r.peak_rss_kb)
            .max();
        if let Some(kb) = peak {
            bars.push(Bar::new(
                &format!("`fabrik publish` peak RSS, 300 items{}", self.suffix()),
                "< 100 MB",
                format!("{:.1} MB", kb as f64 / 1024.0),
                kb < 100 * 1024,
            ));
        }
        bars
    }

    /// How a bar names the profile it was measured on.
    fn suffix(&self) -> &'static str {
        match self.service {
            Profile::Fast => "",
            Profile::Fabric => ", Fabric-like profile",
        }
    }

    fn pair(&self, run: &str) -> Option<(&RunFigures, &RunFigures)> {
        Some((self.find("fabric-cicd", run)?, self.find("fabrik", run)?))
    }

    fn fast_bars(&self) -> Vec<Bar> {
        let mut bars = Vec::new();
        if let Some((c, f)) = self.pair("first") {
            let x = c.wall / f.wall;
            bars.push(Bar::new(
                "publish 300 items: fabrik's first publish vs fabric-cicd 1.4.0's",
                "≥ 5× faster",
                format!("{x:.1}× ({:.2} s vs {:.2} s)", f.wall, c.wall),
                x >= 5.0,
            ));
        }
        if let Some((c, f)) = self.pair("second") {
            let x = c.wall / f.wall;
            bars.push(Bar::new(
                "publish 300 items: second publish of the unchanged repository vs fabric-cicd's",
                "≥ 50× faster",
                format!("{x:.1}× ({:.2} s vs {:.2} s)", f.wall, c.wall),
                x >= 50.0,
            ));
            bars.push(Bar::new(
                "publish 300 items: writes of fabrik's second publish",
                "none",
                format!("{} (fabric-cicd's: {})", f.writes, c.writes),
                f.writes == 0,
            ));
        }
        bars
    }

    /// Issue 26's bars, on the Fabric-like profile.
    fn fabric_bars(&self) -> Vec<Bar> {
        let mut bars = Vec::new();
        if let Some((c, f)) = self.pair("second") {
            bars.push(Bar::new(
                "requests of a re-publish of the unchanged repository, Fabric-like profile",
                "≤ 40, 0 writes",
                format!(
                    "{} requests, {} writes (fabric-cicd: {}, {})",
                    f.requests, f.writes, c.requests, c.writes
                ),
                f.requests <= 40 && f.writes == 0,
            ));
        }
        if let Some((c, f)) = self.pair("first") {
            bars.push(Bar::new(
                "requests of a first publish, Fabric-like profile",
                "fewer than fabric-cicd's, reported per kind of call",
                format!(
                    "{} vs {} (per kind: publish-fabric.md)",
                    f.requests, c.requests
                ),
                f.requests < c.requests,
            ));
        }
        for (run, what, bar) in [
            ("first", "first publish", 5.0),
            ("second", "re-publish", 30.0),
        ] {
            if let Some((c, f)) = self.pair(run) {
                let x = c.wall / f.wall;
                bars.push(Bar::new(
                    &format!("{what}, wall time vs fabric-cicd, Fabric-like profile"),
                    &format!("≥ {bar}× faster"),
                    format!(
                        "{x:.1}× ({:.1} s vs {:.1} s; 429s: {} vs {})",
                        f.wall, c.wall, f.throttled, c.throttled
                    ),
                    x >= bar,
                ));
            }
        }
        bars
    }

    /// Requests per kind of call, a column per run.
    fn classes_table(&self) -> String {
        let kinds: std::collections::BTreeSet<&String> =
            self.runs.iter().flat_map(|r| r.classes.keys()).collect();
        if kinds.is_empty() {
            return String::new();
        }
        let mut md = String::from(
            "\nRequests per kind of call (a `poll` is `GET /operations/{id}`, a `result` its `/result`, a `definition read` a `getDefinition` or `bulkExportDefinitions`; 429 answers apart):\n\n| kind |",
        );
        for r in &self.runs {
            let label = if r.label.is_empty() {
                String::new()
            } else if r.label.starts_with("FABRIC_CICD") {
                " (override)".into()
            } else {
                format!(" ({})", r.label)
            };
            let _ = write!(md, " {}{label} {} |", r.tool, r.run);
        }
        md.push_str("\n|---|");
        md.push_str(&"---|".repeat(self.runs.len()));
        md.push('\n');
        for k in kinds.iter().copied().chain([&"429".to_string()]) {
            let _ = write!(md, "| {k} |");
            for r in &self.runs {
                let n = if k == "429" {
                    r.throttled
                } else {
                    r.classes.get(k).copied().unwrap_or(0)
                };
                let _ = write!(md, " {n} |");
            }
            md.push('\n');
        }
        md
    }

    fn markdown(
        &self,
        shape: &Generated,
        profile: &str,
        emulator_args: &str,
        provenance: &str,
    ) -> String {
        let mut md = intro(shape, self.service, profile, emulator_args, provenance);
        md.push_str(&self.tables());
        md.push_str(&self.classes_table());
        md.push_str(&self.reading());
        md.push('\n');
        md.push_str(&bars_section(&self.bars()));
        md
    }

    /// The runs, their most frequent requests, and the bars.
    fn tables(&self) -> String {
        let mut md = String::new();
        md.push_str(
            "| tool | publish | wall | (process) | requests | writes | getDefinition | bulkExportDefinitions | peak RSS |\n|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.runs {
            let tool = if r.label.is_empty() {
                r.tool.clone()
            } else {
                format!("{} ({})", r.tool, r.label)
            };
            let _ = writeln!(
                md,
                "| {tool} | {} | {:.2} s | {} | {} | {} | {} | {} | {} |",
                r.run,
                r.wall,
                r.process_wall
                    .map_or_else(|| "".into(), |w| format!("{w:.2} s")),
                r.requests,
                r.writes,
                r.get_definitions,
                r.bulk_exports,
                r.peak_rss_kb
                    .map_or_else(|| "".into(), |kb| format!("{:.1} MB", kb as f64 / 1024.0)),
            );
        }
        md.push_str("\nWrites: requests other than GET, `getDefinition` and `bulkExportDefinitions` excluded (they read). The most frequent requests of each run:\n\n| tool | publish | most frequent requests |\n|---|---|---|\n");
        for r in &self.runs {
            let tool = if r.label.is_empty() {
                r.tool.clone()
            } else if r.label.starts_with("FABRIC_CICD") {
                format!("{} (override)", r.tool)
            } else {
                format!("{} ({})", r.tool, r.label)
            };
            let top: Vec<String> = r.top.iter().map(|(n, k)| format!("{n} × `{k}`")).collect();
            let _ = writeln!(md, "| {tool} | {} | {} |", r.run, top.join(", "));
        }
        md
    }

    /// What the figures mean, for the runs that have them.
    fn reading(&self) -> String {
        let mut md = String::new();
        if let Some(f) = self.find("fabrik", "second") {
            let _ = write!(
                md,
                "\nReading: fabrik's second publish compares the rendered parts with the deployed \
definitions, read by {} `bulkExportDefinitions` (one long-running operation, polled when its 202 \
says) and {} `getDefinition` (items read one by one, where the service refuses the bulk export; \
several at once), while the lists rendering needs (variable libraries' value sets, lakehouses' \
properties, Spark pools) are read: its requests do not grow with the item count ({:.2} s \
measured). With `--refresh=false` (labelled) it reads no definition whose rendering has the \
digest the deployed record keeps. fabric-cicd's second publish rewrites every item \
(`updateDefinition`, also polled) and re-runs its post-steps. fabrik's first publish starts each \
Environment's staging publish first and waits for them all at the end of the run, as \
fabric-cicd checks its environments after publishing them; the longest of those waits bounds it \
from below.\n",
                f.bulk_exports, f.get_definitions, f.wall
            );
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_judged_on_the_runs_with_defaults_and_a_miss_is_reported() {
        let run = |tool: &str, label: &str, run: &str, wall: f64, writes: u64| {
            serde_json::json!({"tool": tool, "label": label, "run": run, "wall": wall,
                "requests": 10, "writes": writes, "getDefinitions": 0, "bulkExports": 1,
                "peakRssKb": 20480})
        };
        let v = serde_json::json!({"runs": [
            run("fabric-cicd", "", "first", 10.0, 5),
            run("fabric-cicd", "", "second", 10.0, 5),
            run("fabrik", "", "first", 1.0, 5),
            run("fabrik", "", "second", 1.0, 0),
            run("fabric-cicd", "OVERRIDE=0", "second", 1000.0, 5),
        ]});
        let report = Report::from_json(&v, Profile::Fast).unwrap();
        let met: Vec<bool> = report.bars().iter().map(|b| b.met).collect();
        // 10× first (met), 10× second (missed: the labelled run is not used), 0 writes, 20 MB.
        assert_eq!(met, [true, false, true, true]);
        let md = report.markdown(
            &Generated {
                items: 300,
                folders: 15,
            },
            "release",
            "--lro-delay 50",
            "Command: `x`.",
        );
        assert!(md.contains("| **no** |"), "{md}");
        assert!(
            md.contains("fabric-cicd (OVERRIDE=0) | second | 1000.00 s"),
            "{md}"
        );
    }

    #[test]
    fn the_fabric_profile_judges_requests_and_wall_time_and_reports_each_kind_of_call() {
        let run = |tool: &str, run: &str, wall: f64, requests: u64, writes: u64| {
            serde_json::json!({"tool": tool, "label": "", "run": run, "wall": wall,
                "requests": requests, "writes": writes, "getDefinitions": 0, "bulkExports": 1,
                "classes": {"create": 300, "poll": 20}, "throttled": 7})
        };
        let v = serde_json::json!({"runs": [
            run("fabric-cicd", "first", 600.0, 1400, 369),
            run("fabric-cicd", "second", 600.0, 800, 354),
            run("fabrik", "first", 100.0, 500, 369),
            run("fabrik", "second", 10.0, 41, 0),
        ]});
        let report = Report::from_json(&v, Profile::Fabric).unwrap();
        let bars = report.bars();
        let met: Vec<(&str, bool)> = bars.iter().map(|b| (b.bar.as_str(), b.met)).collect();
        // 41 requests is one over the bar; fewer requests than fabric-cicd; 6× first; 60×.
        assert_eq!(
            met,
            [
                ("≤ 40, 0 writes", false),
                ("fewer than fabric-cicd's, reported per kind of call", true),
                ("≥ 5× faster", true),
                ("≥ 30× faster", true),
            ]
        );
        let table = report.classes_table();
        assert!(
            table.contains("| create | 300 | 300 | 300 | 300 |"),
            "{table}"
        );
        assert!(table.contains("| 429 | 7 | 7 | 7 | 7 |"), "{table}");
    }

    #[test]
    fn the_scaled_repository_has_300_items_in_15_folders() {
        let fixture = root().join("../shared/fixtures/git-format-repo");
        let out = tempfile::tempdir().unwrap();
        let repo = out.path().join("repo");
        let shape = generate(&fixture, &repo).unwrap();
        assert_eq!(
            shape,
            Generated {
                items: 300,
                folders: 15
            }
        );
        let platforms = files(&repo)
            .unwrap()
            .into_iter()
            .filter(|p| p.ends_with(".platform"))
            .count();
        assert_eq!(platforms, 300);
        let nb = std::fs::read_to_string(
            repo.join("finance/notebooks/Ingest_01.Notebook/notebook-content.py"),
        )
        .unwrap();
        assert!(nb.contains("3b1f2c4d-5e6f-4a7b-8c9d-0e1f00014c05"), "{nb}");
        assert!(nb.contains(&dev_bronze(1)) && nb.contains("\"Bronze_01\""));
        let pbir =
            std::fs::read_to_string(repo.join("finance/reporting/Sales_01.Report/definition.pbir"))
                .unwrap();
        assert!(pbir.contains("../Sales_01.SemanticModel"));
        assert!(
            repo.join("finance/reporting/Sales_01.SemanticModel/.platform")
                .is_file()
        );
        let orchestrate = std::fs::read_to_string(
            repo.join("operations/pipelines/Orchestrate_02.DataPipeline/pipeline-content.json"),
        )
        .unwrap();
        assert!(orchestrate.contains("3b1f2c4d-5e6f-4a7b-8c9d-0e1f00024c08"));
        assert!(orchestrate.contains("3b1f2c4d-5e6f-4a7b-8c9d-0e1f00014c08"));
        let platform =
            std::fs::read_to_string(repo.join("sales/Config_00.VariableLibrary/.platform"))
                .unwrap();
        assert!(platform.contains("\"displayName\": \"Config_00\""));
    }
}
