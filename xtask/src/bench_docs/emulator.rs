//! The emulator's benchmarks: GET throughput, start-up time and memory with 10,000
//! workspaces, measured against the release binary with the `loadgen` example as client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::crates::run_captured;
use super::{Bar, Provenance, bars_section, target_dir, write_doc};
use crate::{cargo, step};

const COMMAND: &str = "cargo xtask bench --crates-only";
/// Start-ups timed.
const STARTS: usize = 20;
/// The GET load: seconds and connections.
const GET_SECS: &str = "10";
const GET_CONNECTIONS: &str = "50";

/// A running emulator, killed when dropped.
struct Running {
    child: Child,
    url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the emulator and waits for its `listening on URL` line; also how long that took.
fn start(bin: &Path) -> Result<(Running, Duration), String> {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(["--port", "0", "--accept-any-token"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no emulator stdout")?;
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("reading the emulator's first line: {e}"))?;
    let took = started.elapsed();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected emulator output: {line:?}"))?
        .to_string();
    Ok((Running { child, url }, took))
}

/// `VmRSS` and `VmHWM` of a process, in kB.
fn memory_kb(pid: u32) -> Result<(u64, u64), String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn loadgen(bin: &Path, url: &str, args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new(bin);
    cmd.arg(url).args(args);
    run_captured(cmd)
}

/// `N requests in Ss: R req/s` → R.
fn rate_of(out: &str) -> Result<f64, String> {
    out.lines()
        .find_map(|l| l.split(": ").nth(1)?.strip_suffix(" req/s")?.parse().ok())
        .ok_or_else(|| format!("loadgen printed no rate: {out}"))
}

fn binaries() -> Result<(PathBuf, PathBuf), String> {
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "-p",
        "fabrik-emulator",
        "--bin",
        "fabrik-emulator",
        "--example",
        "loadgen",
    ]);
    step("build the release emulator and loadgen", build)?;
    let dir = target_dir().join("release");
    Ok((dir.join("fabrik-emulator"), dir.join("examples/loadgen")))
}

pub(super) fn run() -> Result<Vec<Bar>, String> {
    let (emu, load) = binaries()?;
    let p = Provenance::start(COMMAND);
    let mut starts: Vec<f64> = (0..STARTS)
        .map(|_| start(&emu).map(|(_, took)| took.as_secs_f64() * 1e3))
        .collect::<Result<_, _>>()?;
    starts.sort_by(f64::total_cmp);
    let (median, max) = (starts[STARTS / 2], starts[STARTS - 1]);

    let (one, _) = start(&emu)?;
    loadgen(&load, &one.url, &["populate", "1", "0"])?;
    let rate_one = rate_of(&loadgen(
        &load,
        &one.url,
        &["get", GET_SECS, GET_CONNECTIONS],
    )?)?;
    drop(one);

    let (big, _) = start(&emu)?;
    let (idle_kb, _) = memory_kb(big.child.id())?;
    loadgen(&load, &big.url, &["populate", "10000", "10"])?;
    let (rss_kb, hwm_kb) = memory_kb(big.child.id())?;
    let rate_big = rate_of(&loadgen(
        &load,
        &big.url,
        &["get", GET_SECS, GET_CONNECTIONS],
    )?)?;
    drop(big);

    let mb = |kb: u64| kb as f64 / 1024.0;
    let results = format!(
        "| what | measured |\n|---|---|\n\
         | `GET /v1/workspaces/{{id}}`, 1 workspace loaded | {rate_one:.0} req/s |\n\
         | `GET /v1/workspaces/{{id}}`, 10,000 workspaces × 10 items loaded | {rate_big:.0} req/s |\n\
         | start-up (spawn → `listening on` line), {STARTS} runs | median {median:.1} ms, max {max:.1} ms |\n\
         | RSS idle | {:.1} MB |\n\
         | RSS after 10,000 workspaces × 10 items (VmRSS / VmHWM) | {:.1} MB / {:.1} MB |\n",
        mb(idle_kb),
        mb(rss_kb),
        mb(hwm_kb)
    );
    let bars = vec![
        Bar::new(
            "emulator `GET /v1/workspaces/{id}`",
            "≥ 20,000 req/s",
            format!("{rate_one:.0} req/s ({rate_big:.0} with 10,000 workspaces loaded)"),
            rate_one >= 20_000.0,
        ),
        Bar::new(
            "emulator start-up",
            "< 200 ms",
            format!("median {median:.1} ms, max {max:.1} ms"),
            max < 200.0,
        ),
        Bar::new(
            "emulator RSS, 10,000 workspaces × 10 items",
            "< 50 MB",
            format!("{:.1} MB (peak)", mb(hwm_kb)),
            mb(hwm_kb) < 50.0,
        ),
    ];
    let doc = format!(
        "# fabrik-emulator benchmarks\n\n{}\n{}\n## Results\n\n{results}\n{}",
        p.finish(),
        include_str!("emulator.md"),
        bars_section(&bars)
    );
    write_doc("emulator", &doc)?;
    Ok(bars)
}

#[cfg(test)]
mod tests {
    use super::rate_of;

    #[test]
    fn the_rate_is_read_from_loadgen_output() {
        assert_eq!(
            rate_of("x\n1000 requests in 10s: 100 req/s\n").unwrap(),
            100.0
        );
        assert!(rate_of("nothing").is_err());
    }
}
