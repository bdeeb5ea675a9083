//! The crates' benchmarks: criterion's (resilience, telemetry, health), the client's own
//! harness, and the emulator's; each run, read back and written as its document.

use std::fmt::Write as _;
use std::process::Command;

use serde_json::Value;

use super::{Bar, Provenance, bars_section, check, target_dir, write_doc};
use crate::cargo;

/// Runs every crate benchmark and writes its document; the first failed run stops it, and
/// missed bars are reported together after every document is written.
pub(crate) fn run_all() -> Result<(), String> {
    let mut missed = Vec::new();
    for (name, run) in [
        ("resilience", resilience as fn() -> Result<Vec<Bar>, String>),
        ("telemetry", telemetry),
        ("health", health),
        ("client", client),
        ("emulator", super::emulator::run),
    ] {
        let bars = run()?;
        if let Err(e) = check(name, &bars) {
            missed.push(e);
        }
    }
    if missed.is_empty() {
        Ok(())
    } else {
        Err(missed.join("\n"))
    }
}

/// A criterion mean with its 95 % confidence interval, in nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    lo: f64,
    mean: f64,
    hi: f64,
}

impl Estimate {
    fn ns(self) -> String {
        format!("{} ({} – {})", ns(self.mean), ns(self.lo), ns(self.hi))
    }
}

fn ns(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} µs", v / 1000.0)
    } else {
        format!("{v:.1} ns")
    }
}

/// Criterion's estimate for the benchmark stored under `dir` (its id, made file-name safe).
fn estimate(dir: &str) -> Result<Estimate, String> {
    let path = target_dir()
        .join("criterion")
        .join(dir)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (did the benchmark run?)", path.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mean = &v["mean"];
    let num = |p: &str| {
        mean.pointer(p)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("{}: no mean{p}", path.display()))
    };
    Ok(Estimate {
        lo: num("/confidence_interval/lower_bound")?,
        mean: num("/point_estimate")?,
        hi: num("/confidence_interval/upper_bound")?,
    })
}

/// Runs `cargo bench -p package --bench bench -- args` after removing the criterion results
/// under `dirs`, so a failed run can never be read from an earlier one; its output.
fn run_bench(package: &str, bench: &str, args: &[&str], dirs: &[&str]) -> Result<String, String> {
    for d in dirs {
        let _ = std::fs::remove_dir_all(target_dir().join("criterion").join(d));
    }
    let mut cmd = cargo();
    cmd.args(["bench", "-p", package, "--bench", bench, "--"])
        .args(args);
    println!(
        "==> cargo bench -p {package} --bench {bench} -- {}",
        args.join(" ")
    );
    let out = run_captured(cmd)?;
    Ok(out)
}

/// Runs `cmd`, echoing its output; its stdout and stderr, or an error naming it.
pub(super) fn run_captured(mut cmd: Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{text}");
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{cmd:?} failed ({})", out.status))
    }
}

const RESILIENCE: &str = "cargo bench -p fabrik-resilience --bench overhead";

fn resilience() -> Result<Vec<Bar>, String> {
    let p = Provenance::start(RESILIENCE);
    run_bench(
        "fabrik-resilience",
        "overhead",
        &[],
        &["bare", "pipeline", "breaker"],
    )?;
    let bare = estimate("bare")?;
    let pipeline = estimate("pipeline")?;
    let one = estimate("breaker/1_task")?;
    let two = estimate("breaker/2_tasks")?;
    let overhead = pipeline.mean - bare.mean;
    let ratio = one.mean / two.mean;
    let mops = |e: Estimate| format!("{:.1} M ops/s", 1e3 / e.mean);
    let mut t = String::from("| benchmark | time (95 % interval) | throughput |\n|---|---|---|\n");
    let _ = writeln!(t, "| `bare` | {} | |", bare.ns());
    let _ = writeln!(t, "| `pipeline` | {} | |", pipeline.ns());
    let _ = writeln!(t, "| **`pipeline` − `bare`** | **{}** | |", ns(overhead));
    let _ = writeln!(t, "| `breaker/1_task` | {} | {} |", one.ns(), mops(one));
    let _ = writeln!(t, "| `breaker/2_tasks` | {} | {} |", two.ns(), mops(two));
    let _ = writeln!(t, "| **2 tasks / 1 task throughput** | | **{ratio:.2}** |");
    let bars = vec![
        Bar::new(
            "resilience `pipeline` − `bare`",
            "< 1 µs",
            ns(overhead),
            overhead < 1000.0,
        ),
        Bar::new(
            "one breaker shared by 2 threads",
            "≥ ½ of single-threaded",
            format!("{ratio:.2}× the single-task throughput"),
            ratio >= 0.5,
        ),
    ];
    let doc = format!(
        "# fabrik-resilience benchmarks\n\n{}\n{}\n## Results\n\n{t}\n{}",
        p.finish(),
        include_str!("resilience.md"),
        bars_section(&bars)
    );
    write_doc("resilience", &doc)?;
    Ok(bars)
}

const TELEMETRY: &str =
    "cargo bench -p fabrik-telemetry --bench instrument -- --warm-up-time 2 --measurement-time 5";

/// The telemetry variants, as criterion names them (group/function made file-name safe).
const TELEMETRY_VARIANTS: [(&str, &str); 7] = [
    ("telemetry", "call_timer"),
    ("telemetry", "timed"),
    ("telemetry_otlp", "call_timer"),
    ("telemetry_otlp", "timed"),
    ("telemetry_otlp_saturated", "call_timer"),
    ("telemetry_otlp_installed", "call_timer"),
    ("telemetry_otlp_installed", "timed"),
];

fn telemetry_dir(group: &str, api: &str) -> String {
    // The benches name them `{group}/call_timer_span_counter_histogram` and
    // `{group}/timed_call_span_counter_histogram`; criterion turns `/` into `_`.
    let api = if api == "timed" { "timed_call" } else { api };
    format!("{group}_{api}_span_counter_histogram")
}

fn telemetry() -> Result<Vec<Bar>, String> {
    let p = Provenance::start(TELEMETRY);
    let dirs: Vec<String> = TELEMETRY_VARIANTS
        .iter()
        .map(|(g, a)| telemetry_dir(g, a))
        .collect();
    let dir_refs: Vec<&str> = dirs.iter().map(String::as_str).collect();
    let out = run_bench(
        "fabrik-telemetry",
        "instrument",
        &["--warm-up-time", "2", "--measurement-time", "5"],
        &dir_refs,
    )?;
    let mut t = String::from("| variant | time per call (95 % interval) |\n|---|---|\n");
    let mut installed = Vec::new();
    for ((group, api), dir) in TELEMETRY_VARIANTS.iter().zip(&dirs) {
        let e = estimate(dir)?;
        let bold = *group == "telemetry_otlp_installed";
        let (b, name) = (if bold { "**" } else { "" }, format!("`{group}/{api}…`"));
        let _ = writeln!(t, "| {b}{name}{b} | {b}{}{b} |", e.ns());
        if bold {
            installed.push((api, e));
        }
    }
    let counts: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("telemetry") && (l.contains("exported") || l.contains("dropped")))
        .collect();
    let bars = installed
        .iter()
        .map(|(api, e)| {
            Bar::new(
                &format!("instrumenting one call (span + counter + histogram), exporters on and installed as the CLI installs them, `{api}`"),
                "< 1 µs",
                ns(e.mean),
                e.mean < 1000.0,
            )
        })
        .collect::<Vec<_>>();
    let doc = format!(
        "# Telemetry: cost of instrumenting one call\n\n{}\n{}\n## Results\n\n{t}\nWhat the exporters accepted and dropped, as the bench printed it:\n\n```text\n{}\n```\n\n{}",
        p.finish(),
        include_str!("telemetry.md"),
        counts.join("\n"),
        bars_section(&bars)
    );
    write_doc("telemetry", &doc)?;
    Ok(bars)
}

const HEALTH: &str =
    "cargo bench -p fabrik-health --bench ready -- --warm-up-time 2 --measurement-time 8";

fn health() -> Result<Vec<Bar>, String> {
    let p = Provenance::start(HEALTH);
    let dir = "health/ready_from_cache_loopback";
    run_bench(
        "fabrik-health",
        "ready",
        &["--warm-up-time", "2", "--measurement-time", "8"],
        &[dir],
    )?;
    let e = estimate(dir)?;
    let rate = |ns: f64| 1e9 / ns;
    let measured = format!(
        "{:.0} requests/s ({:.0} – {:.0})",
        rate(e.mean),
        rate(e.hi),
        rate(e.lo)
    );
    let bars = vec![Bar::new(
        "health `/health/ready` from cache",
        "≥ 20,000 req/s",
        measured.clone(),
        rate(e.mean) >= 20_000.0,
    )];
    let doc = format!(
        "# Health: `/health/ready` served from cache\n\n{}\n{}\n## Results\n\n{measured}: {} per request across the clients.\n\n{}",
        p.finish(),
        include_str!("health.md"),
        e.ns(),
        bars_section(&bars)
    );
    write_doc("health", &doc)?;
    Ok(bars)
}

const CLIENT: &str = "cargo bench -p fabrik-client --bench get_item";
/// Runs of the client benchmark; each is short, and the machine is shared.
const CLIENT_RUNS: usize = 3;

fn client() -> Result<Vec<Bar>, String> {
    let p = Provenance::start(CLIENT);
    let mut t = String::from(
        "| run | calls/s | errors | client CPU per call | emulator CPU per call | decode + span alone |\n|---|---|---|---|---|---|\n",
    );
    let mut worst = f64::INFINITY;
    let mut errors = 0.0;
    for run in 1..=CLIENT_RUNS {
        let out = run_bench("fabrik-client", "get_item", &[], &[])?;
        let v: Value = out
            .lines()
            .find_map(|l| l.strip_prefix("bench-json: "))
            .and_then(|j| serde_json::from_str(j).ok())
            .ok_or("the client benchmark printed no `bench-json:` line")?;
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        worst = worst.min(f("calls_per_s"));
        errors += f("errors");
        let _ = writeln!(
            t,
            "| {run} | {:.0} | {:.0} | {:.1} µs | {:.1} µs | {:.2} µs |",
            f("calls_per_s"),
            f("errors"),
            f("client_cpu_us"),
            f("server_cpu_us"),
            f("decode_span_us")
        );
    }
    let bars = vec![Bar::new(
        "client GET item calls/s against the emulator",
        "≥ 5,000/s, no errors",
        format!("{worst:.0}/s in the slowest of {CLIENT_RUNS} runs, {errors:.0} errors"),
        worst >= 5000.0 && errors == 0.0,
    )];
    let doc = format!(
        "# fabrik-client benchmark: GET item against the emulator\n\n{}\n{}\n## Results\n\n{t}\n{}",
        p.finish(),
        include_str!("client.md"),
        bars_section(&bars)
    );
    write_doc("client", &doc)?;
    Ok(bars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telemetry_variants_name_the_directories_criterion_writes() {
        assert_eq!(
            telemetry_dir("telemetry_otlp", "call_timer"),
            "telemetry_otlp_call_timer_span_counter_histogram"
        );
        assert_eq!(
            telemetry_dir("telemetry_otlp_installed", "timed"),
            "telemetry_otlp_installed_timed_call_span_counter_histogram"
        );
    }
}
