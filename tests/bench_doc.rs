//! Benchmark documents, shared by `cargo xtask bench` (xtask/src/bench_docs) and
//! `deploy-bench` (tests/bin), which include this file with `#[path]` so both write the same
//! provenance paragraph and `## Bars` table. Only std: each includes it as its own module.
//!
//! Every document in docs/benchmarks/ names its command, the commit measured and the machine's
//! load before and after, and ends with a `## Bars` table (what, bar, measured, met) that
//! `cargo xtask bench-index` gathers into docs/benchmarks/00-summary.md.

#![allow(dead_code, reason = "each includer uses a part")]

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// One bar an issue set and what the run measured against it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bar {
    pub(crate) what: String,
    pub(crate) bar: String,
    pub(crate) measured: String,
    pub(crate) met: bool,
}

impl Bar {
    pub(crate) fn new(what: &str, bar: &str, measured: String, met: bool) -> Self {
        Self {
            what: what.into(),
            bar: bar.into(),
            measured,
            met,
        }
    }
}

/// The heading [`write_summary`] looks for.
pub(crate) const BARS_HEADING: &str = "## Bars";

/// The `## Bars` section of a document.
pub(crate) fn bars_section(bars: &[Bar]) -> String {
    let mut out = format!("{BARS_HEADING}\n\n| what | bar | measured | met |\n|---|---|---|---|\n");
    for b in bars {
        let met = if b.met { "yes" } else { "**no**" };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {met} |",
            cell(&b.what),
            cell(&b.bar),
            cell(&b.measured)
        );
    }
    out
}

pub(crate) fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The rows of a document's `## Bars` table.
pub(crate) fn parse_bars(text: &str) -> Vec<Bar> {
    let mut lines = text.lines().skip_while(|l| l.trim() != BARS_HEADING);
    lines.next();
    lines
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.starts_with('|'))
        .skip(2) // the header and its rule
        .filter_map(|l| {
            let cells = split_row(l);
            let [what, bar, measured, met] = cells.as_slice() else {
                return None;
            };
            Some(Bar {
                what: what.clone(),
                bar: bar.clone(),
                measured: measured.clone(),
                met: met == "yes",
            })
        })
        .collect()
}

/// A table row's cells, honouring `\|` inside a cell.
fn split_row(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                cells.last_mut().expect("one cell").push('|');
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().expect("one cell").push(c),
        }
    }
    cells.into_iter().map(|c| c.trim().to_string()).collect()
}

/// Where a run was measured: taken when it starts, finished when it ends.
pub(crate) struct Provenance {
    command: String,
    commit: String,
    started: String,
    load_before: String,
}

impl Provenance {
    /// Notes the commit, the time and the load before the measuring starts.
    pub(crate) fn start(root: &Path, command: &str) -> Self {
        Self {
            command: command.into(),
            commit: commit(root),
            started: utc_now(),
            load_before: load_average(),
        }
    }

    /// The paragraph every document opens with.
    pub(crate) fn finish(&self) -> String {
        format!(
            "Command: `{}`. Commit {}, measured {} on {} cores ({}), {}; load average {} before and {} after (1, 5, 15 min). Written by the command; not edited by hand.\n",
            self.command,
            self.commit,
            self.started,
            cores(),
            cpu_model(),
            rustc(),
            self.load_before,
            load_average()
        )
    }
}

fn output_of(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The commit, marked when the working tree differs from it.
fn commit(root: &Path) -> String {
    let head =
        output_of(
            Command::new("git")
                .current_dir(root)
                .args(["rev-parse", "--short=10", "HEAD"]),
        )
        .unwrap_or_else(|| "unknown".into());
    let dirty = output_of(Command::new("git").current_dir(root).args([
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ".",
        // The benchmarks' own documents, which a run of several benchmarks rewrites.
        ":!docs/benchmarks",
        ":!docs/BENCHMARKS.md",
    ]))
    .is_some_and(|s| !s.is_empty());
    if dirty {
        format!("`{head}` (with uncommitted changes)")
    } else {
        format!("`{head}`")
    }
}

fn utc_now() -> String {
    output_of(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .unwrap_or_else(|| "?".into())
}

fn rustc() -> String {
    output_of(Command::new("rustc").arg("--version"))
        .and_then(|v| {
            v.split_whitespace()
                .take(2)
                .map(str::to_string)
                .reduce(|a, b| a + " " + &b)
        })
        .unwrap_or_else(|| "rustc ?".into())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bars_table_reads_back_as_written() {
        let bars = vec![
            Bar::new("a | b", "< 1 µs", "0.3 µs".into(), true),
            Bar::new("c", "≥ 5×", "4.1×".into(), false),
        ];
        let text = format!("# Doc\n\nprose\n\n{}\nafter\n", bars_section(&bars));
        let back = parse_bars(&text);
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].what, "a | b");
        assert!(back[0].met);
        assert_eq!(back[1].measured, "4.1×");
        assert!(!back[1].met);
    }

    #[test]
    fn a_document_without_bars_has_none() {
        assert!(parse_bars("# Doc\n\n| a | b |\n|---|---|\n| 1 | 2 |\n").is_empty());
    }
}
