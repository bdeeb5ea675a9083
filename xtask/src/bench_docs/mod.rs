//! Benchmark documents written whole by the commands that measure them: the crates'
//! benchmarks (criterion's, the client's and the emulator's own) are run and written here;
//! `deploy-bench` and `bench-publish` write theirs; [`write_summary`] gathers every document's
//! `## Bars` into docs/benchmarks/00-summary.md. The document format is tests/bench_doc.rs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::root;

#[path = "../../../tests/bench_doc.rs"]
mod doc;
pub(crate) use doc::{BARS_HEADING, Bar, bars_section, cell, parse_bars};

/// [`doc::Provenance`] for this repository.
pub(crate) struct Provenance(doc::Provenance);

impl Provenance {
    pub(crate) fn start(command: &str) -> Self {
        Self(doc::Provenance::start(&root(), command))
    }
    pub(crate) fn finish(&self) -> String {
        self.0.finish()
    }
}

mod crates;
mod emulator;

pub(crate) use crates::run_all as run_crate_benches;

/// The target directory cargo builds into (`CARGO_TARGET_DIR` honoured).
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Writes `docs/benchmarks/{name}.md`.
pub(crate) fn write_doc(name: &str, text: &str) -> Result<(), String> {
    let path = root().join("docs/benchmarks").join(format!("{name}.md"));
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Missed bars as an error, after the figures are written.
pub(crate) fn check(doc: &str, bars: &[Bar]) -> Result<(), String> {
    let missed: Vec<&str> = bars
        .iter()
        .filter(|b| !b.met)
        .map(|b| b.what.as_str())
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

/// Gathers every document's `## Bars` into docs/benchmarks/00-summary.md. A document without
/// one (written before its command wrote bars) is named under the table, so the summary never
/// passes it over in silence.
pub(crate) fn write_summary() -> Result<(), String> {
    let dir = root().join("docs/benchmarks");
    let mut out = String::from(
        "# Summary: the issues' bars and what was measured\n\nWritten by `cargo xtask bench-index` (and by every benchmark command) from the `Bars` table of each document in docs/benchmarks/; each document names the command that measured it, the commit and the machine's load. Not edited by hand.\n\n| what | bar | measured | met | document |\n|---|---|---|---|---|\n",
    );
    let mut without = Vec::new();
    for path in documents(&dir)? {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == "00-summary" {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let bars = parse_bars(&text);
        if bars.is_empty() {
            without.push(format!("[{name}]({name}.md)"));
        }
        for b in bars {
            let met = if b.met { "yes" } else { "**no**" };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {met} | [{name}]({name}.md) |",
                cell(&b.what),
                cell(&b.bar),
                cell(&b.measured)
            );
        }
    }
    if !without.is_empty() {
        let _ = write!(
            out,
            "\nNot in the table: {} (no `{BARS_HEADING}` table yet; run the command the document names).\n",
            without.join(", ")
        );
    }
    write_doc("00-summary", &out)
}

/// The `.md` files of `dir`, sorted.
pub(crate) fn documents(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    parts.sort();
    Ok(parts)
}
