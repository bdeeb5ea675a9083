//! `cargo xtask release [patch|minor|major|VERSION] [--dry-run] [--publish]`.
//!
//! The crates are versioned **together**: every crate inherits `[workspace.package] version`
//! (a tidy check enforces it), so a release bumps that one value and the `version = "…"` of
//! each internal crate in `[workspace.dependencies]`. One version for the whole workspace
//! means a user never has to work out which fabrik-core goes with which fabrik-client.
//!
//! Steps, in order: refuse a dirty tree; compute the new version; write it and the
//! CHANGELOG.md section generated from the commits since the previous `v*` tag; run
//! cargo-semver-checks against that tag (skipped, saying so, when there is none); `cargo
//! package` every publishable crate in dependency order; the full CI; the Python wheel
//! `fabrik-deploy` and `target/wheels/SHA256SUMS` (`cargo xtask wheel`, `wheel.rs`); commit
//! and tag; with `--publish`, `cargo publish` each crate in dependency order (cargo waits
//! until each is in the index before the next). `--dry-run` writes nothing outside target/
//! and stops short of the commit, tag and publish, printing what it would do instead.
//!
//! Packaging uses one `cargo package -p … -p …` call: with several packages selected, cargo
//! (≥ 1.90) resolves the workspace's own crates from a local registry overlay of the ones it
//! just packaged, so each crate is verified to build from its packaged form alone even though
//! none is on crates.io yet.
//!
//! Commands that build, test, tag or publish go through [`Exec`], so the tests check which
//! steps would run without running the CI; the read-only git and `cargo metadata` queries run
//! for real (on fixture repositories in the tests).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::process::Command;

use crate::changelog::{self, Commit};

/// A semantic version, parsed and ordered by the `semver` crate: pre-release identifiers
/// compare numerically when they are numbers (`rc.9` < `rc.10`), which a string compare gets
/// wrong.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version(semver::Version);

impl Version {
    pub(crate) fn parse(s: &str) -> Result<Version, String> {
        semver::Version::parse(s)
            .map(Version)
            .map_err(|e| format!("`{s}` is not a version (MAJOR.MINOR.PATCH[-PRE]): {e}"))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What `release` was asked to bump to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Level {
    Patch,
    Minor,
    Major,
    Exact(Version),
}

/// The version after `current` for `level`; a pre-release label is dropped by a bump.
pub(crate) fn bump(current: &Version, level: &Level) -> Result<Version, String> {
    let v = |major, minor, patch| Version(semver::Version::new(major, minor, patch));
    let (ma, mi, pa) = (current.0.major, current.0.minor, current.0.patch);
    Ok(match level {
        Level::Patch => v(ma, mi, pa + 1),
        Level::Minor => v(ma, mi + 1, 0),
        Level::Major => v(ma + 1, 0, 0),
        Level::Exact(new) if new > current => new.clone(),
        Level::Exact(new) => {
            return Err(format!(
                "{new} is not later than the current version {current}"
            ));
        }
    })
}

/// The kind of change `old → new` allows under Cargo's compatibility rules (the leftmost
/// non-zero component is the "major" one), as cargo-semver-checks' `--release-type` names it.
pub(crate) fn release_type(old: &Version, new: &Version) -> &'static str {
    let (old, new) = (&old.0, &new.0);
    if new.major != old.major || (old.major == 0 && new.minor != old.minor) {
        "major"
    } else if new.minor != old.minor || old.major == 0 {
        "minor"
    } else {
        "patch"
    }
}

/// Parsed command line of `cargo xtask release`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    pub(crate) level: Level,
    pub(crate) dry_run: bool,
    pub(crate) publish: bool,
}

pub(crate) const USAGE: &str = "release [patch|minor|major|VERSION] [--dry-run] [--publish]";

pub(crate) fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut opts = Options {
        level: Level::Patch,
        dry_run: false,
        publish: false,
    };
    let mut level = None;
    for a in args {
        match a.as_str() {
            "--dry-run" => opts.dry_run = true,
            "--publish" => opts.publish = true,
            f if f.starts_with('-') => return Err(format!("unknown flag {f}; usage: {USAGE}")),
            l if level.is_some() => return Err(format!("unexpected `{l}`; usage: {USAGE}")),
            "patch" => level = Some(Level::Patch),
            "minor" => level = Some(Level::Minor),
            "major" => level = Some(Level::Major),
            v => level = Some(Level::Exact(Version::parse(v.trim_start_matches('v'))?)),
        }
    }
    if let Some(l) = level {
        opts.level = l;
    }
    Ok(opts)
}

/// One command of the release that builds, tests, tags or publishes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    pub(crate) name: String,
    pub(crate) program: &'static str,
    pub(crate) args: Vec<String>,
}

impl Step {
    fn new(program: &'static str, name: impl Into<String>, args: &[&str]) -> Step {
        Step {
            name: name.into(),
            program,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    pub(crate) fn command_line(&self) -> String {
        let mut s = self.program.to_string();
        for a in &self.args {
            if a.contains(' ') {
                s.push_str(&format!(" '{a}'"));
            } else {
                s.push(' ');
                s.push_str(a);
            }
        }
        s
    }
}

/// Runs release steps; injectable so tests record steps instead of running the CI.
pub(crate) trait Exec {
    /// Runs `step` in `root`, failing on a non-zero exit.
    fn run(&mut self, root: &Path, step: &Step) -> Result<(), String>;
    /// Whether `cargo <tool>` is installed (e.g. `semver-checks`).
    fn has_cargo_tool(&mut self, tool: &str) -> bool;
    /// Forgets what an earlier `cargo package` of `crates` at `version` left behind: the
    /// copies unpacked from its local registry overlay and their build fingerprints. Cargo
    /// treats registry crates as immutable, so a second dry run at the same version would
    /// otherwise verify against stale sources and stale builds.
    fn forget_unpacked(
        &mut self,
        root: &Path,
        crates: &[String],
        version: &Version,
    ) -> Result<(), String>;
}

/// Runs steps as processes, reporting each with its duration.
#[derive(Debug)]
pub(crate) struct RealExec;

impl Exec for RealExec {
    fn run(&mut self, root: &Path, step: &Step) -> Result<(), String> {
        let mut cmd = if step.program == "cargo" {
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        } else {
            Command::new(step.program)
        };
        cmd.args(&step.args).current_dir(root);
        crate::step(&format!("{}: {}", step.name, step.command_line()), cmd)
    }

    fn has_cargo_tool(&mut self, tool: &str) -> bool {
        crate::has_cargo_tool(tool)
    }

    fn forget_unpacked(
        &mut self,
        root: &Path,
        crates: &[String],
        version: &Version,
    ) -> Result<(), String> {
        // Fingerprints of our crates in the dev profile the verification builds with; the
        // workspace's own builds of them are redone once, dependencies are kept.
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), std::path::PathBuf::from);
        if let Ok(entries) = std::fs::read_dir(target.join("debug/.fingerprint")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let ours = crates.iter().any(|c| {
                    name.strip_prefix(c.as_str())
                        .and_then(|rest| rest.strip_prefix('-'))
                        .is_some_and(|hash| hash.chars().all(|ch| ch.is_ascii_hexdigit()))
                });
                if ours {
                    std::fs::remove_dir_all(e.path())
                        .map_err(|err| format!("{}: {err}", e.path().display()))?;
                }
            }
        }
        let home = std::env::var_os("CARGO_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
        let Some(src) = home.map(|h| h.join("registry/src")) else {
            return Ok(());
        };
        let Ok(registries) = std::fs::read_dir(&src) else {
            return Ok(());
        };
        for reg in registries.flatten() {
            // Remote registries are named after their host (index.crates.io-…); the local
            // overlay has no host, so its directory name starts with '-'.
            if !reg.file_name().to_string_lossy().starts_with('-') {
                continue;
            }
            for c in crates {
                let dir = reg.path().join(format!("{c}-{version}"));
                if dir.is_dir() {
                    std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                    println!("removed stale unpacked copy {}", dir.display());
                }
            }
        }
        Ok(())
    }
}

fn git(root: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .map_err(|e| format!("git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Modified, staged and untracked (not ignored) files, as `git status --porcelain` lists them.
pub(crate) fn dirty_files(root: &Path) -> Result<Vec<String>, String> {
    Ok(
        git(root, &["status", "--porcelain", "--untracked-files=normal"])?
            .lines()
            .map(str::to_string)
            .collect(),
    )
}

/// The highest `vX.Y.Z` tag reachable from HEAD: the previous release.
pub(crate) fn last_tag(root: &Path) -> Result<Option<String>, String> {
    Ok(git(
        root,
        &[
            "tag",
            "--list",
            "v[0-9]*",
            "--merged",
            "HEAD",
            "--sort=-v:refname",
        ],
    )?
    .lines()
    .next()
    .map(str::to_string))
}

/// Commits after `since` (all of them without a tag), oldest first, merges left out.
pub(crate) fn commits_since(root: &Path, since: Option<&str>) -> Result<Vec<Commit>, String> {
    let range = since.map_or("HEAD".to_string(), |t| format!("{t}..HEAD"));
    let log = git(
        root,
        &[
            "log",
            "--reverse",
            "--no-merges",
            "--format=%s%x1f%b%x1e",
            &range,
        ],
    )?;
    Ok(log
        .split('\x1e')
        .map(|r| r.trim_start_matches('\n'))
        .filter(|r| !r.is_empty())
        .map(|r| {
            let (subject, body) = r.split_once('\x1f').unwrap_or((r, ""));
            Commit {
                subject: subject.trim().to_string(),
                body: body.trim().to_string(),
            }
        })
        .collect())
}

/// A workspace package as the release sees it.
#[derive(Debug, Clone)]
pub(crate) struct Package {
    pub(crate) name: String,
    pub(crate) publishable: bool,
    /// Workspace packages that must be on the registry before this one can be published:
    /// normal and build dependencies, and dev-dependencies that carry a version (cargo strips
    /// path-only dev-dependencies when packaging).
    pub(crate) needs: Vec<String>,
}

/// The workspace's packages, from `cargo metadata --no-deps` (no resolution, no network).
pub(crate) fn workspace_packages(root: &Path) -> Result<Vec<Package>, String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let pkgs = meta["packages"]
        .as_array()
        .ok_or("cargo metadata: no packages")?;
    let names: BTreeSet<&str> = pkgs.iter().filter_map(|p| p["name"].as_str()).collect();
    Ok(pkgs
        .iter()
        .map(|p| {
            // `publish` is null for "anywhere" and a list of allowed registries otherwise.
            let publishable = p["publish"].as_array().is_none_or(|regs| !regs.is_empty());
            let needs = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["name"].as_str().is_some_and(|n| names.contains(n)))
                .filter(|d| d["kind"].as_str() != Some("dev") || d["req"].as_str() != Some("*"))
                .filter_map(|d| d["name"].as_str().map(str::to_string))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            Package {
                name: p["name"].as_str().unwrap_or_default().to_string(),
                publishable,
                needs,
            }
        })
        .collect())
}

/// The publishable packages, each after everything it needs (a topological sort; among
/// packages that are ready together, alphabetical, so the order is stable).
pub(crate) fn publish_order(pkgs: &[Package]) -> Result<Vec<String>, String> {
    let by_name: BTreeMap<&str, &Package> = pkgs.iter().map(|p| (p.name.as_str(), p)).collect();
    for p in pkgs.iter().filter(|p| p.publishable) {
        for n in &p.needs {
            if by_name.get(n.as_str()).is_some_and(|d| !d.publishable) {
                return Err(format!(
                    "{} cannot be published: it needs {n}, which is `publish = false`",
                    p.name
                ));
            }
        }
    }
    let mut waiting: BTreeMap<&str, BTreeSet<&str>> = pkgs
        .iter()
        .filter(|p| p.publishable)
        .map(|p| {
            let needs = p
                .needs
                .iter()
                .map(String::as_str)
                .filter(|n| *n != p.name)
                .collect();
            (p.name.as_str(), needs)
        })
        .collect();
    let mut order = Vec::new();
    while !waiting.is_empty() {
        let ready: Vec<&str> = waiting
            .iter()
            .filter(|(_, needs)| needs.is_empty())
            .map(|(n, _)| *n)
            .collect();
        let Some(next) = ready.first().copied() else {
            return Err(format!(
                "dependency cycle among {}",
                waiting.keys().copied().collect::<Vec<_>>().join(", ")
            ));
        };
        waiting.remove(next);
        for needs in waiting.values_mut() {
            needs.remove(next);
        }
        order.push(next.to_string());
    }
    Ok(order)
}

/// `[workspace.package] version` of a root manifest.
pub(crate) fn read_version(manifest: &str) -> Result<Version, String> {
    let t: toml::Table = manifest.parse().map_err(|e| format!("Cargo.toml: {e}"))?;
    let v = t
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .ok_or("Cargo.toml: no [workspace.package] version")?;
    Version::parse(v)
}

/// The root manifest with `old` replaced by `new` in `[workspace.package]` and in every
/// `[workspace.dependencies]` entry naming a workspace package; edited line by line so
/// comments and layout stay. Fails when an internal crate's version is not `old`.
pub(crate) fn bump_manifest(
    text: &str,
    old: &Version,
    new: &Version,
    members: &[String],
) -> Result<String, String> {
    let (old_v, new_v) = (
        format!("version = \"{old}\""),
        format!("version = \"{new}\""),
    );
    let mut section = String::new();
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('[') {
            section = t.trim_matches(['[', ']']).trim().to_string();
        } else {
            let key = t.split('=').next().unwrap_or("").trim().trim_matches('"');
            let ours = (section == "workspace.package" && key == "version")
                || (section == "workspace.dependencies" && members.iter().any(|m| m == key));
            if ours && t.contains(&old_v) {
                out.push_str(&line.replacen(&old_v, &new_v, 1));
                continue;
            }
        }
        out.push_str(line);
    }
    // Check the result rather than trusting the line edits.
    let parsed: toml::Table = out.parse().map_err(|e| format!("Cargo.toml: {e}"))?;
    if read_version(&out)? != *new {
        return Err(format!(
            "Cargo.toml: expected `{old_v}` in [workspace.package]"
        ));
    }
    if let Some(deps) = parsed
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(|d| d.as_table())
    {
        for (name, spec) in deps.iter().filter(|(n, _)| members.contains(n)) {
            if let Some(v) = spec.get("version").and_then(|v| v.as_str())
                && v != new.to_string()
            {
                return Err(format!(
                    "Cargo.toml: [workspace.dependencies] {name} has version {v}, not {old}: the crates are versioned together"
                ));
            }
        }
    }
    Ok(out)
}

/// Runs the release in the workspace at `root`. `date` (YYYY-MM-DD) heads the changelog
/// section.
pub(crate) fn release(
    root: &Path,
    opts: &Options,
    date: &str,
    exec: &mut dyn Exec,
) -> Result<(), String> {
    let p = prepare(root, opts, date)?;
    let mode = if opts.dry_run { " (dry run)" } else { "" };
    println!("release{mode}: {} -> {}, all crates together", p.old, p.new);
    println!(
        "release: {} commit(s) since {}",
        p.commits,
        p.prev
            .as_deref()
            .unwrap_or("the first commit (no previous release tag)")
    );
    println!("release: dependency order: {}", p.order.join(" -> "));
    write_versions(root, opts, &p, exec)?;
    verify(root, opts, &p, exec)?;
    finish(root, opts, &p, exec)
}

/// What a release will write, computed before anything is: refused on a dirty tree, an
/// existing tag or no new commits.
struct Prepared {
    old: Version,
    new: Version,
    tag: String,
    prev: Option<String>,
    commits: usize,
    /// Publishable crates in dependency order.
    order: Vec<String>,
    /// The CHANGELOG.md section.
    section: String,
    /// The root manifest with the new version.
    bumped: String,
}

fn prepare(root: &Path, opts: &Options, date: &str) -> Result<Prepared, String> {
    let dirty = dirty_files(root)?;
    if !dirty.is_empty() {
        return Err(format!(
            "the working tree is not clean; commit or stash first:\n  {}",
            dirty.join("\n  ")
        ));
    }
    let manifest_path = root.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path)
        .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let old = read_version(&manifest)?;
    let new = bump(&old, &opts.level)?;
    let tag = format!("v{new}");
    if !git(root, &["tag", "--list", &tag])?.trim().is_empty() {
        return Err(format!("tag {tag} already exists"));
    }
    let pkgs = workspace_packages(root)?;
    let order = publish_order(&pkgs)?;
    let members: Vec<String> = pkgs.iter().map(|p| p.name.clone()).collect();
    // Changelog groups: publishable crates in dependency order, then the rest (xtask, tests).
    let mut groups = order.clone();
    groups.extend(members.iter().filter(|m| !order.contains(m)).cloned());
    let prev = last_tag(root)?;
    let commits = commits_since(root, prev.as_deref())?;
    if commits.is_empty() {
        return Err(format!(
            "no commits since {}: nothing to release",
            prev.as_deref().unwrap_or("the start")
        ));
    }
    let section = changelog::section(&new.to_string(), date, &commits, &groups);
    let bumped = bump_manifest(&manifest, &old, &new, &members)?;
    Ok(Prepared {
        old,
        new,
        tag,
        prev,
        commits: commits.len(),
        order,
        section,
        bumped,
    })
}

/// Writes the new version and the changelog section (and records them in Cargo.lock); a dry
/// run prints what it would write.
fn write_versions(
    root: &Path,
    opts: &Options,
    p: &Prepared,
    exec: &mut dyn Exec,
) -> Result<(), String> {
    let (new, section) = (&p.new, &p.section);
    if opts.dry_run {
        println!(
            "would set version = \"{new}\" in Cargo.toml ([workspace.package] and the internal crates in [workspace.dependencies]), then run `cargo update --workspace` for Cargo.lock"
        );
        println!("would add to CHANGELOG.md:\n\n{section}");
        return Ok(());
    }
    let changelog_path = root.join("CHANGELOG.md");
    let existing = std::fs::read_to_string(&changelog_path).ok();
    std::fs::write(root.join("Cargo.toml"), &p.bumped).map_err(|e| e.to_string())?;
    std::fs::write(
        &changelog_path,
        changelog::insert(existing.as_deref(), section),
    )
    .map_err(|e| e.to_string())?;
    println!("wrote Cargo.toml ({new}) and CHANGELOG.md:\n\n{section}");
    exec.run(
        root,
        &Step::new(
            "cargo",
            "record the new versions in Cargo.lock",
            &["update", "--workspace"],
        ),
    )
}

/// semver-checks against the previous tag, `cargo package` of every crate, the full CI, and
/// the Python wheel with its checksums (`cargo xtask wheel`, into target/wheels; only
/// target/ is written, so a dry run builds it too).
fn verify(root: &Path, opts: &Options, p: &Prepared, exec: &mut dyn Exec) -> Result<(), String> {
    match &p.prev {
        Some(prev) => semver_checks(root, prev, Some(release_type(&p.old, &p.new)), exec)?,
        None => println!(
            "semver-checks: skipped: there is no previous release tag (v*) to compare against"
        ),
    }
    let mut package = vec!["package", "--locked"];
    if !opts.dry_run {
        // The tree now holds the bump and the changelog, committed only after CI passes.
        package.push("--allow-dirty");
    }
    for c in &p.order {
        package.extend(["-p", c]);
    }
    exec.forget_unpacked(root, &p.order, if opts.dry_run { &p.old } else { &p.new })?;
    exec.run(
        root,
        &Step::new(
            "cargo",
            format!("package {} crates in dependency order", p.order.len()),
            &package,
        ),
    )?;
    exec.run(root, &Step::new("cargo", "full CI", &["xtask", "ci"]))?;
    exec.run(
        root,
        &Step::new(
            "cargo",
            "the Python wheel and target/wheels/SHA256SUMS",
            &["xtask", "wheel"],
        ),
    )
}

/// Commits and tags the release, and publishes with `--publish`; a dry run prints the steps.
fn finish(root: &Path, opts: &Options, p: &Prepared, exec: &mut dyn Exec) -> Result<(), String> {
    let (new, tag) = (&p.new, &p.tag);
    let message = format!("chore(release): {new}");
    let annotation = format!("fabrik {new}");
    let finish = [
        Step::new(
            "git",
            "stage the release",
            &["add", "Cargo.toml", "Cargo.lock", "CHANGELOG.md"],
        ),
        Step::new("git", "commit the release", &["commit", "-m", &message]),
        Step::new("git", "tag", &["tag", "-a", tag, "-m", &annotation]),
    ];
    let publish: Vec<Step> = p
        .order
        .iter()
        .map(|c| {
            Step::new(
                "cargo",
                format!("publish {c}"),
                &["publish", "--locked", "-p", c],
            )
        })
        .collect();
    if opts.dry_run {
        for s in &finish {
            println!("would run: {}", s.command_line());
        }
        let verb = if opts.publish {
            "would run"
        } else {
            "with --publish, would run"
        };
        for s in &publish {
            println!("{verb}: {}", s.command_line());
        }
        println!("release (dry run): every step passed; nothing was written, tagged or published");
        return Ok(());
    }
    for s in &finish {
        exec.run(root, s)?;
    }
    if opts.publish {
        for s in &publish {
            exec.run(root, s)?;
        }
    } else {
        println!(
            "not published: run again with --publish from the tag, or `cargo publish -p` in the order above"
        );
    }
    println!(
        "release: {tag} done; push it with `git push origin HEAD {tag}`; the wheel and its checksums are in target/wheels/"
    );
    Ok(())
}

/// cargo-semver-checks of the workspace against the release tagged `baseline`.
pub(crate) fn semver_checks(
    root: &Path,
    baseline: &str,
    release_type: Option<&str>,
    exec: &mut dyn Exec,
) -> Result<(), String> {
    if !exec.has_cargo_tool("semver-checks") {
        return Err(format!(
            "a previous release ({baseline}) exists but cargo-semver-checks is not installed: `cargo install cargo-semver-checks --locked` (or `cargo xtask semver-checks --install`)"
        ));
    }
    let mut args = vec!["semver-checks", "--workspace", "--baseline-rev", baseline];
    if let Some(t) = release_type {
        args.extend(["--release-type", t]);
    }
    exec.run(
        root,
        &Step::new("cargo", format!("semver-checks against {baseline}"), &args),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    /// Records steps instead of running them.
    #[derive(Default)]
    struct Recorder {
        steps: Vec<Step>,
        semver_checks_installed: bool,
        /// A command line that fails when run.
        fail: Option<&'static str>,
    }

    impl Exec for Recorder {
        fn run(&mut self, _root: &Path, step: &Step) -> Result<(), String> {
            self.steps.push(step.clone());
            match self.fail {
                Some(f) if f == step.command_line() => Err(format!("{f} failed")),
                _ => Ok(()),
            }
        }
        fn has_cargo_tool(&mut self, tool: &str) -> bool {
            tool == "semver-checks" && self.semver_checks_installed
        }
        fn forget_unpacked(
            &mut self,
            _root: &Path,
            crates: &[String],
            version: &Version,
        ) -> Result<(), String> {
            self.steps.push(Step {
                name: "forget unpacked".into(),
                program: "forget-unpacked",
                args: crates.iter().map(|c| format!("{c}-{version}")).collect(),
            });
            Ok(())
        }
    }

    impl Recorder {
        fn lines(&self) -> Vec<String> {
            self.steps.iter().map(Step::command_line).collect()
        }
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn versions_bump_and_parse() {
        assert_eq!(bump(&v("0.1.0"), &Level::Patch).unwrap(), v("0.1.1"));
        assert_eq!(bump(&v("0.1.3"), &Level::Minor).unwrap(), v("0.2.0"));
        assert_eq!(bump(&v("1.4.2"), &Level::Major).unwrap(), v("2.0.0"));
        assert_eq!(bump(&v("1.0.0-rc.1"), &Level::Patch).unwrap(), v("1.0.1"));
        assert_eq!(
            bump(&v("1.0.0-rc.1"), &Level::Exact(v("1.0.0"))).unwrap(),
            v("1.0.0")
        );
        assert!(bump(&v("1.0.0"), &Level::Exact(v("1.0.0"))).is_err());
        assert!(bump(&v("1.0.0"), &Level::Exact(v("0.9.9"))).is_err());
        assert_eq!(v("1.2.3-beta.2").to_string(), "1.2.3-beta.2");
        // Numeric pre-release identifiers order as numbers, not strings.
        assert_eq!(
            bump(&v("1.0.0-rc.9"), &Level::Exact(v("1.0.0-rc.10"))).unwrap(),
            v("1.0.0-rc.10")
        );
        assert!(bump(&v("1.0.0-rc.10"), &Level::Exact(v("1.0.0-rc.9"))).is_err());
        assert!(bump(&v("1.0.0-rc.1"), &Level::Exact(v("1.0.0-beta.2"))).is_err());
        for bad in ["1.2", "1.2.x", "1.2.3-", "", "1.2.3.4"] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(release_type(&v("0.1.0"), &v("0.2.0")), "major");
        assert_eq!(release_type(&v("0.1.0"), &v("0.1.1")), "minor");
        assert_eq!(release_type(&v("1.1.0"), &v("1.2.0")), "minor");
        assert_eq!(release_type(&v("1.1.0"), &v("1.1.1")), "patch");
        assert_eq!(release_type(&v("1.1.0"), &v("2.0.0")), "major");
    }

    #[test]
    fn arguments_parse() {
        let a = |s: &[&str]| parse_args(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(
            a(&["minor", "--dry-run"]).unwrap(),
            Options {
                level: Level::Minor,
                dry_run: true,
                publish: false
            }
        );
        assert_eq!(a(&[]).unwrap().level, Level::Patch);
        assert_eq!(
            a(&["v2.0.0", "--publish"]).unwrap(),
            Options {
                level: Level::Exact(v("2.0.0")),
                dry_run: false,
                publish: true
            }
        );
        assert!(a(&["--force"]).is_err());
        assert!(a(&["minor", "major"]).is_err());
        assert!(a(&["soon"]).is_err());
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn run_git(root: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@localhost",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "tag.gpgsign=false",
            ])
            .args(args)
            .current_dir(root)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }

    fn commit(root: &Path, file: &str, message: &str) {
        write(root, file, message);
        run_git(root, &["add", "-A"]);
        run_git(root, &["commit", "-qm", message]);
    }

    const ROOT_MANIFEST: &str = r#"[workspace]
resolver = "3"
members = ["crates/*", "tools"]

[workspace.package]
version = "0.1.0"
edition = "2024"

[workspace.dependencies]
# Our crates, listed once.
demo-core = { path = "crates/core", version = "0.1.0" }
demo-client = { path = "crates/client", version = "0.1.0" }
demo-app = { path = "crates/app", version = "0.1.0" }
demo-macros = { path = "crates/macros", version = "0.1.0" }
serde = { version = "0.1.0" }
"#;

    fn crate_manifest(name: &str, extra: &str) -> String {
        format!(
            "[package]\nname = \"{name}\"\nversion.workspace = true\nedition.workspace = true\n{extra}"
        )
    }

    /// A git repository holding a four-crate workspace whose dependency order is not
    /// alphabetical (core needs macros through a versioned dev-dependency; macros' path-only
    /// dev-dependency on app does not count), plus an unpublishable tool; tagged v0.1.0, then
    /// three more commits in both subject styles.
    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "Cargo.toml", ROOT_MANIFEST);
        write(
            root,
            "crates/core/Cargo.toml",
            &crate_manifest(
                "demo-core",
                "[dev-dependencies]\ndemo-macros.workspace = true\n",
            ),
        );
        write(
            root,
            "crates/client/Cargo.toml",
            &crate_manifest(
                "demo-client",
                "[dependencies]\ndemo-core.workspace = true\n",
            ),
        );
        write(
            root,
            "crates/app/Cargo.toml",
            &crate_manifest(
                "demo-app",
                "[dependencies]\ndemo-client.workspace = true\n[build-dependencies]\ndemo-core.workspace = true\n",
            ),
        );
        write(
            root,
            "crates/macros/Cargo.toml",
            &crate_manifest(
                "demo-macros",
                "[dev-dependencies]\ndemo-app = { path = \"../app\" }\n",
            ),
        );
        write(
            root,
            "tools/Cargo.toml",
            &crate_manifest(
                "demo-tools",
                "publish = false\n[dependencies]\ndemo-app.workspace = true\n",
            ),
        );
        for d in [
            "crates/core",
            "crates/client",
            "crates/app",
            "crates/macros",
            "tools",
        ] {
            write(root, &format!("{d}/src/lib.rs"), "//! x\n");
        }
        write(root, ".gitignore", "/target\nCargo.lock\n");
        run_git(root, &["init", "-q"]);
        commit(root, "notes/1", "demo-core: first vocabulary");
        run_git(root, &["tag", "-a", "v0.1.0", "-m", "0.1.0"]);
        commit(root, "notes/2", "feat(client): get-or-create");
        commit(root, "notes/3", "demo-client and demo-app: wire the app");
        commit(root, "notes/4", "cargo fmt");
        dir
    }

    fn options(level: Level, dry_run: bool, publish: bool) -> Options {
        Options {
            level,
            dry_run,
            publish,
        }
    }

    #[test]
    fn publish_order_follows_dependencies_not_names() {
        let dir = fixture();
        let order = publish_order(&workspace_packages(dir.path()).unwrap()).unwrap();
        assert_eq!(
            order,
            ["demo-macros", "demo-core", "demo-client", "demo-app"]
        );
    }

    #[test]
    fn real_workspace_publishes_core_first_and_the_cli_last() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let pkgs = workspace_packages(&root).unwrap();
        let order = publish_order(&pkgs).unwrap();
        assert_eq!(order.first().map(String::as_str), Some("fabrik-core"));
        assert_eq!(order.last().map(String::as_str), Some("fabrik-cli"));
        assert!(!order.iter().any(|p| p == "xtask" || p == "fabrik-tests"));
        assert_eq!(order.len(), pkgs.iter().filter(|p| p.publishable).count());
        // Everything a crate needs is published before it.
        for (i, name) in order.iter().enumerate() {
            let pkg = pkgs.iter().find(|p| &p.name == name).unwrap();
            for n in &pkg.needs {
                let j = order.iter().position(|o| o == n).unwrap();
                assert!(j < i, "{name} needs {n}, which comes later");
            }
        }
    }

    #[test]
    fn cycles_and_unpublishable_dependencies_are_errors() {
        let p = |name: &str, publishable, needs: &[&str]| Package {
            name: name.into(),
            publishable,
            needs: needs.iter().map(|n| n.to_string()).collect(),
        };
        let cycle = publish_order(&[p("a", true, &["b"]), p("b", true, &["a"])]).unwrap_err();
        assert_eq!(cycle, "dependency cycle among a, b");
        let private = publish_order(&[p("a", true, &["t"]), p("t", false, &[])]).unwrap_err();
        assert!(
            private.contains("a cannot be published: it needs t"),
            "{private}"
        );
    }

    #[test]
    fn manifest_bump_keeps_layout_and_touches_only_our_versions() {
        let members: Vec<String> = ["demo-core", "demo-client", "demo-app", "demo-macros"]
            .map(String::from)
            .to_vec();
        let out = bump_manifest(ROOT_MANIFEST, &v("0.1.0"), &v("0.2.0"), &members).unwrap();
        assert_eq!(
            out,
            ROOT_MANIFEST
                .replace(
                    "version = \"0.1.0\"\nedition",
                    "version = \"0.2.0\"\nedition"
                )
                .replace(
                    "crates/core\", version = \"0.1.0\"",
                    "crates/core\", version = \"0.2.0\""
                )
                .replace(
                    "crates/client\", version = \"0.1.0\"",
                    "crates/client\", version = \"0.2.0\""
                )
                .replace(
                    "crates/app\", version = \"0.1.0\"",
                    "crates/app\", version = \"0.2.0\""
                )
                .replace(
                    "crates/macros\", version = \"0.1.0\"",
                    "crates/macros\", version = \"0.2.0\""
                )
        );
        assert!(out.contains("serde = { version = \"0.1.0\" }"));
        let skewed = ROOT_MANIFEST.replace(
            "crates/app\", version = \"0.1.0\"",
            "crates/app\", version = \"0.0.9\"",
        );
        let err = bump_manifest(&skewed, &v("0.1.0"), &v("0.2.0"), &members).unwrap_err();
        assert!(err.contains("demo-app has version 0.0.9"), "{err}");
    }

    #[test]
    fn release_bumps_writes_changelog_packages_in_order_then_ci_commit_tag() {
        let dir = fixture();
        let root = dir.path();
        let mut exec = Recorder {
            semver_checks_installed: true,
            ..Recorder::default()
        };
        release(
            root,
            &options(Level::Minor, false, false),
            "2026-02-03",
            &mut exec,
        )
        .unwrap();

        let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert_eq!(read_version(&manifest).unwrap(), v("0.2.0"));
        assert_eq!(manifest.matches("version = \"0.2.0\"").count(), 5);
        let changelog = fs::read_to_string(root.join("CHANGELOG.md")).unwrap();
        assert!(changelog.starts_with(changelog::HEADER), "{changelog}");
        assert!(
            changelog.ends_with(
                "## [0.2.0] - 2026-02-03\n\
                 \n### Features\n\n- **client:** get-or-create\n\
                 \n### demo-client\n\n- wire the app\n\
                 \n### demo-app\n\n- wire the app\n\
                 \n### Other\n\n- cargo fmt\n"
            ),
            "{changelog}"
        );
        assert!(!changelog.contains("first vocabulary"), "before the tag");
        assert_eq!(
            exec.lines(),
            [
                "cargo update --workspace",
                "cargo semver-checks --workspace --baseline-rev v0.1.0 --release-type major",
                "forget-unpacked demo-macros-0.2.0 demo-core-0.2.0 demo-client-0.2.0 demo-app-0.2.0",
                "cargo package --locked --allow-dirty -p demo-macros -p demo-core -p demo-client -p demo-app",
                "cargo xtask ci",
                "cargo xtask wheel",
                "git add Cargo.toml Cargo.lock CHANGELOG.md",
                "git commit -m 'chore(release): 0.2.0'",
                "git tag -a v0.2.0 -m 'fabrik 0.2.0'",
            ]
        );
    }

    #[test]
    fn publish_runs_after_the_tag_in_dependency_order() {
        let dir = fixture();
        let mut exec = Recorder {
            semver_checks_installed: true,
            ..Recorder::default()
        };
        release(
            dir.path(),
            &options(Level::Exact(v("1.0.0")), false, true),
            "2026-02-03",
            &mut exec,
        )
        .unwrap();
        let lines = exec.lines();
        let tag = lines.iter().position(|l| l.starts_with("git tag")).unwrap();
        assert_eq!(
            lines[tag + 1..],
            [
                "cargo publish --locked -p demo-macros",
                "cargo publish --locked -p demo-core",
                "cargo publish --locked -p demo-client",
                "cargo publish --locked -p demo-app",
            ]
        );
    }

    #[test]
    fn the_wheel_is_built_after_ci_and_its_failure_stops_the_release_before_the_commit() {
        let dir = fixture();
        let mut exec = Recorder {
            semver_checks_installed: true,
            fail: Some("cargo xtask wheel"),
            ..Recorder::default()
        };
        let err = release(
            dir.path(),
            &options(Level::Minor, false, true),
            "2026-02-03",
            &mut exec,
        )
        .unwrap_err();
        assert_eq!(err, "cargo xtask wheel failed");
        let lines = exec.lines();
        assert_eq!(
            lines[lines.len() - 2..],
            ["cargo xtask ci", "cargo xtask wheel"]
        );
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with("git") || l.contains("publish"))
        );
    }

    #[test]
    fn dry_run_writes_nothing_and_stops_before_commit_tag_and_publish() {
        let dir = fixture();
        let root = dir.path();
        let mut exec = Recorder {
            semver_checks_installed: true,
            ..Recorder::default()
        };
        release(
            root,
            &options(Level::Minor, true, true),
            "2026-02-03",
            &mut exec,
        )
        .unwrap();
        assert_eq!(
            exec.lines(),
            [
                "cargo semver-checks --workspace --baseline-rev v0.1.0 --release-type major",
                "forget-unpacked demo-macros-0.1.0 demo-core-0.1.0 demo-client-0.1.0 demo-app-0.1.0",
                "cargo package --locked -p demo-macros -p demo-core -p demo-client -p demo-app",
                "cargo xtask ci",
                "cargo xtask wheel",
            ]
        );
        assert_eq!(
            fs::read_to_string(root.join("Cargo.toml")).unwrap(),
            ROOT_MANIFEST
        );
        assert!(!root.join("CHANGELOG.md").exists());
        assert!(dirty_files(root).unwrap().is_empty());
    }

    #[test]
    fn without_a_previous_tag_semver_checks_are_skipped_and_all_history_is_used() {
        let dir = fixture();
        let root = dir.path();
        run_git(root, &["tag", "-d", "v0.1.0"]);
        let mut exec = Recorder::default();
        release(
            root,
            &options(Level::Patch, false, false),
            "2026-02-03",
            &mut exec,
        )
        .unwrap();
        assert!(!exec.lines().iter().any(|l| l.contains("semver-checks")));
        let changelog = fs::read_to_string(root.join("CHANGELOG.md")).unwrap();
        assert!(changelog.contains("## [0.1.1] - 2026-02-03"));
        assert!(
            changelog.contains("### demo-core\n\n- first vocabulary\n"),
            "{changelog}"
        );
    }

    #[test]
    fn a_previous_tag_without_cargo_semver_checks_installed_stops_the_release() {
        let dir = fixture();
        let mut exec = Recorder::default();
        let err = release(
            dir.path(),
            &options(Level::Minor, true, false),
            "2026-02-03",
            &mut exec,
        )
        .unwrap_err();
        assert!(
            err.contains("cargo install cargo-semver-checks --locked"),
            "{err}"
        );
        assert!(exec.steps.is_empty());
    }

    #[test]
    fn a_dirty_tree_is_refused_before_anything_runs() {
        let dir = fixture();
        let root = dir.path();
        write(root, "crates/core/src/lib.rs", "//! changed\n");
        write(root, "scratch.txt", "untracked\n");
        for dry_run in [true, false] {
            let mut exec = Recorder::default();
            let err = release(
                root,
                &options(Level::Minor, dry_run, false),
                "2026-02-03",
                &mut exec,
            )
            .unwrap_err();
            assert!(err.starts_with("the working tree is not clean"), "{err}");
            assert!(
                err.contains("crates/core/src/lib.rs") && err.contains("scratch.txt"),
                "{err}"
            );
            assert!(exec.steps.is_empty());
        }
        assert_eq!(
            read_version(&fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap(),
            v("0.1.0")
        );
    }

    #[test]
    fn an_existing_tag_or_no_new_commits_is_refused() {
        let dir = fixture();
        let root = dir.path();
        run_git(root, &["tag", "v0.2.0"]);
        let err = release(
            root,
            &options(Level::Minor, true, false),
            "2026-02-03",
            &mut Recorder::default(),
        )
        .unwrap_err();
        assert_eq!(err, "tag v0.2.0 already exists");
        let err = release(
            root,
            &options(Level::Major, true, false),
            "2026-02-03",
            &mut Recorder::default(),
        )
        .unwrap_err();
        assert_eq!(err, "no commits since v0.2.0: nothing to release");
    }
}
