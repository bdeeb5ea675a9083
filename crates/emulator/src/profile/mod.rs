//! Timing profiles: how long the service takes, per endpoint class, and how long its
//! long-running operations run.
//!
//! `fabric` is the only profile. Its table, `fabric.json` beside this file, is written by
//! `scripts/derive_profile.py` from the recorded real Fabric trace (never by hand): latency
//! quantiles per [`EndpointClass`], the duration quantiles and `Retry-After` of item
//! operations and of environment publishes. A latency is drawn by inverting the piecewise
//! linear distribution through the quantiles, from the seeded generator, so a run with the
//! same seed and the same request order draws the same latencies.
//!
//! Every duration is divided by the time scale: latencies and operation durations exactly,
//! `Retry-After` (whole seconds on the wire) to the nearest second but never below 1. An
//! operation still completes at its scaled time, so with a large scale a client that obeys
//! `Retry-After` polls later than the operation finished — as it does on the service when
//! an operation ends between polls.

use std::time::Duration;

use fabrik_core::{RandomSource, SplitMix64};
use serde::Deserialize;

/// A named set of timings the emulator can imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ProfileName {
    /// The real service, from the recorded trace (see `docs/EMULATOR.md`).
    Fabric,
}

/// Which latency distribution a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndpointClass {
    /// A GET of one resource.
    Read,
    /// A GET of a collection.
    List,
    /// A POST to a collection (item, folder, workspace, connection create).
    Create,
    /// Any other POST, PATCH, PUT or DELETE: updates, definitions, actions.
    Write,
    /// `GET /v1/operations/{id}`.
    Poll,
    /// `GET /v1/operations/{id}/result`.
    Result,
}

/// POSTs to `/workspaces/{id}/{segment}` that are actions, not collections.
const ACTIONS: &[&str] = &[
    "assignToCapacity",
    "unassignFromCapacity",
    "provisionIdentity",
    "deprovisionIdentity",
];

impl EndpointClass {
    /// The class of a `/v1` request; `derive_profile.py` classifies the trace the same way.
    pub(crate) fn of(method: &str, path: &str) -> Self {
        let segs: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .skip_while(|s| *s == "v1")
            .collect();
        match (method, segs.as_slice()) {
            ("GET", ["operations", _]) => Self::Poll,
            ("GET", ["operations", _, "result"]) => Self::Result,
            ("GET", s) if s.len() % 2 == 1 => Self::List,
            ("GET", _) => Self::Read,
            ("POST", ["workspaces"] | ["connections"]) => Self::Create,
            ("POST", ["workspaces", _, seg]) if !ACTIONS.contains(seg) => Self::Create,
            _ => Self::Write,
        }
    }
}

/// Which kind of long-running operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LroKind {
    /// Item create, definition get/update, bulk import/export, git.
    Operation,
    /// `POST /environments/{id}/staging/publish`.
    EnvironmentPublish,
}

/// How long an operation runs and how long clients are told to wait between polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LroTiming {
    pub(crate) duration: Duration,
    pub(crate) retry_after: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct Quantiles {
    p0: f64,
    p10: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    p100: f64,
}

#[derive(Debug, Clone, Deserialize)]
struct Distribution {
    ms: Quantiles,
}

impl Distribution {
    /// The value at cumulative probability `u` (0..=1), in milliseconds.
    fn at(&self, u: f64) -> f64 {
        let q = &self.ms;
        let points = [
            (0.0, q.p0),
            (0.1, q.p10),
            (0.5, q.p50),
            (0.9, q.p90),
            (0.99, q.p99),
            (1.0, q.p100),
        ];
        let u = u.clamp(0.0, 1.0);
        for pair in points.windows(2) {
            let ((u0, v0), (u1, v1)) = (pair[0], pair[1]);
            if u <= u1 {
                return v0 + (v1 - v0) * (u - u0) / (u1 - u0);
            }
        }
        q.p100
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Latency {
    read: Distribution,
    list: Distribution,
    create: Distribution,
    write: Distribution,
    poll: Distribution,
    result: Distribution,
}

#[derive(Debug, Clone, Deserialize)]
struct Lro {
    retry_after_s: u64,
    duration: Distribution,
}

#[derive(Debug, Clone, Deserialize)]
struct Table {
    latency: Latency,
    operation: Lro,
    environment_publish: Lro,
}

/// A profile in force: its table, the time scale and the generator latencies draw from.
#[derive(Debug)]
pub(crate) struct Profile {
    table: Table,
    time_scale: f64,
    rng: SplitMix64,
}

impl Profile {
    /// The named profile, with every duration divided by `time_scale` (> 0).
    pub(crate) fn new(name: ProfileName, time_scale: f64, seed: u64) -> Result<Self, String> {
        let text = match name {
            ProfileName::Fabric => include_str!("fabric.json"),
        };
        let table = serde_json::from_str(text)
            .map_err(|e| format!("the built-in profile table does not parse: {e}"))?;
        Ok(Self {
            table,
            time_scale,
            rng: SplitMix64::new(seed ^ 0x9E0F_11E5_7AB1_E5ED),
        })
    }

    fn scaled_ms(&self, ms: f64) -> Duration {
        Duration::try_from_secs_f64(ms / 1000.0 / self.time_scale).unwrap_or_default()
    }

    /// A latency for a request of `class`, drawn from the table and scaled.
    pub(crate) fn latency(&self, class: EndpointClass) -> Duration {
        let l = &self.table.latency;
        let d = match class {
            EndpointClass::Read => &l.read,
            EndpointClass::List => &l.list,
            EndpointClass::Create => &l.create,
            EndpointClass::Write => &l.write,
            EndpointClass::Poll => &l.poll,
            EndpointClass::Result => &l.result,
        };
        self.scaled_ms(d.at(self.rng.next_f64()))
    }

    /// The duration (drawn) and `Retry-After` (the trace's, scaled) of a new operation.
    pub(crate) fn lro(&self, kind: LroKind) -> LroTiming {
        let lro = match kind {
            LroKind::Operation => &self.table.operation,
            LroKind::EnvironmentPublish => &self.table.environment_publish,
        };
        LroTiming {
            duration: self.scaled_ms(lro.duration.at(self.rng.next_f64())),
            retry_after: scale_retry_after(lro.retry_after_s, self.time_scale),
        }
    }
}

/// `Retry-After` is whole seconds: the nearest one to `secs / time_scale`, at least 1.
pub(crate) fn scale_retry_after(secs: u64, time_scale: f64) -> u64 {
    ((secs as f64 / time_scale).round() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fabric(scale: f64) -> Profile {
        Profile::new(ProfileName::Fabric, scale, 7).unwrap()
    }

    /// The empirical quantile `p` of sorted `v` (nearest rank).
    fn empirical(v: &[f64], p: f64) -> f64 {
        v[((v.len() - 1) as f64 * p).round() as usize]
    }

    #[test]
    fn endpoint_classes_follow_the_derivation_script() {
        let ws = "/v1/workspaces/6e335e92-a2a2-4b5a-970a-bd6a89fbb765";
        for (method, path, class) in [
            ("GET", "/v1/workspaces".to_string(), EndpointClass::List),
            ("GET", ws.to_string(), EndpointClass::Read),
            ("GET", format!("{ws}/items"), EndpointClass::List),
            ("GET", format!("{ws}/items/x"), EndpointClass::Read),
            (
                "GET",
                format!("{ws}/items/x/shortcuts"),
                EndpointClass::List,
            ),
            ("GET", "/v1/operations/o".into(), EndpointClass::Poll),
            (
                "GET",
                "/v1/operations/o/result".into(),
                EndpointClass::Result,
            ),
            ("POST", "/v1/workspaces".into(), EndpointClass::Create),
            ("POST", format!("{ws}/items"), EndpointClass::Create),
            ("POST", format!("{ws}/folders"), EndpointClass::Create),
            (
                "POST",
                format!("{ws}/assignToCapacity"),
                EndpointClass::Write,
            ),
            (
                "POST",
                format!("{ws}/items/x/updateDefinition"),
                EndpointClass::Write,
            ),
            (
                "POST",
                format!("{ws}/items/bulkExportDefinitions"),
                EndpointClass::Write,
            ),
            ("PATCH", format!("{ws}/items/x"), EndpointClass::Write),
            ("DELETE", ws.to_string(), EndpointClass::Write),
        ] {
            assert_eq!(EndpointClass::of(method, &path), class, "{method} {path}");
        }
    }

    #[test]
    fn latencies_follow_the_table_quantiles() {
        let p = fabric(1.0);
        let l = &p.table.latency;
        for (class, d) in [
            (EndpointClass::Read, &l.read),
            (EndpointClass::List, &l.list),
            (EndpointClass::Create, &l.create),
            (EndpointClass::Write, &l.write),
            (EndpointClass::Poll, &l.poll),
            (EndpointClass::Result, &l.result),
        ] {
            let mut v: Vec<f64> = (0..20_000)
                .map(|_| p.latency(class).as_secs_f64() * 1000.0)
                .collect();
            v.sort_by(f64::total_cmp);
            let q = &d.ms;
            for (at, want) in [(0.1, q.p10), (0.5, q.p50), (0.9, q.p90)] {
                let got = empirical(&v, at);
                // 3 % of the spread between the extremes, for 20,000 draws.
                let tolerance = (q.p100 - q.p0) * 0.03;
                assert!(
                    (got - want).abs() <= tolerance,
                    "{class:?} p{}: drew {got} ms, table says {want} ms",
                    at * 100.0
                );
            }
            assert!(v[0] >= q.p0 - 1.0 && v[v.len() - 1] <= q.p100 + 1.0);
        }
    }

    #[test]
    fn draws_are_reproducible_from_the_seed() {
        let draw = |seed| {
            let p = Profile::new(ProfileName::Fabric, 1.0, seed).unwrap();
            (0..50)
                .map(|_| p.latency(EndpointClass::List))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }

    #[test]
    fn operations_ask_for_the_traces_retry_after() {
        let p = fabric(1.0);
        assert_eq!(p.lro(LroKind::Operation).retry_after, 20);
        assert_eq!(p.lro(LroKind::EnvironmentPublish).retry_after, 120);
        let d = &p.table.operation.duration.ms;
        for _ in 0..1000 {
            let ms = p.lro(LroKind::Operation).duration.as_secs_f64() * 1000.0;
            assert!(ms >= d.p0 - 1.0 && ms <= d.p100 + 1.0, "{ms}");
        }
    }

    #[test]
    fn the_time_scale_divides_every_duration() {
        // Same seed, same draws: the scaled profile's are exactly a tenth.
        let (slow, fast) = (fabric(1.0), fabric(10.0));
        for _ in 0..100 {
            let (a, b) = (
                slow.latency(EndpointClass::Write),
                fast.latency(EndpointClass::Write),
            );
            assert!((a.as_secs_f64() / 10.0 - b.as_secs_f64()).abs() < 1e-6);
            let (a, b) = (slow.lro(LroKind::Operation), fast.lro(LroKind::Operation));
            assert!((a.duration.as_secs_f64() / 10.0 - b.duration.as_secs_f64()).abs() < 1e-6);
            assert_eq!(b.retry_after, 2);
        }
        assert_eq!(fast.lro(LroKind::EnvironmentPublish).retry_after, 12);
        assert_eq!(scale_retry_after(20, 3.0), 7);
        assert_eq!(scale_retry_after(20, 100.0), 1, "never below one second");
    }
}
