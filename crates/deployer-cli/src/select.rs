//! `--workspace NAME` and `--shard I/N`: the slice of the configuration's workspaces that a
//! `plan`, `apply` or `destroy` works on, so several CI jobs can deploy one environment at
//! once, each holding only the locks of its own workspaces.
//!
//! A shard is taken by sorted index, not by hash: the workspaces are sorted by their
//! deployed (display) name, compared in lower case, and the k-th of them (k counted from 0)
//! goes to shard `k mod N + 1`. `I` counts from 1, as CI systems number their parallel jobs
//! (GitLab's `CI_NODE_INDEX/CI_NODE_TOTAL`). Every runner reading the same configuration for
//! the same environment computes the same slices; the N shards together hold every workspace
//! exactly once, and their sizes differ by at most one.

use std::fmt;
use std::str::FromStr;

use crate::config::{Desired, DesiredWorkspace};

/// `--shard I/N`: the I-th of N slices, I counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which slice, 1 to `count`.
    pub index: usize,
    /// How many slices.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("--shard {s:?}: {why}; expected I/N, such as 1/3");
        let (i, n) = s.split_once('/').ok_or_else(|| bad("no '/'"))?;
        let number = |v: &str, what: &str| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| bad(&format!("{what} {v:?} is not a whole number")))
        };
        let (index, count) = (number(i, "I")?, number(n, "N")?);
        if count == 0 {
            return Err(bad("N must be at least 1"));
        }
        if index == 0 || index > count {
            return Err(bad(&format!(
                "I must be from 1 to {count} (shards are numbered from 1)"
            )));
        }
        Ok(Self { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Which workspaces a command works on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Selection {
    /// All of them: the environment-wide form.
    #[default]
    All,
    /// Those named by `--workspace` (the configured `name:` or the deployed name).
    Named(Vec<String>),
    /// One shard.
    Shard(Shard),
}

impl Selection {
    /// Whether every workspace of the configuration is selected.
    pub fn is_all(&self) -> bool {
        matches!(self, Selection::All)
    }
}

/// The indices (into `workspaces`, in configuration order) of shard `shard`.
pub fn shard_indices(workspaces: &[DesiredWorkspace], shard: Shard) -> Vec<usize> {
    let mut order: Vec<usize> = (0..workspaces.len()).collect();
    order.sort_by_cached_key(|&i| {
        (
            workspaces[i].name.to_lowercase(),
            workspaces[i].name.clone(),
        )
    });
    let mut picked: Vec<usize> = order
        .into_iter()
        .enumerate()
        .filter(|(k, _)| k % shard.count + 1 == shard.index)
        .map(|(_, i)| i)
        .collect();
    picked.sort_unstable();
    picked
}

/// `desired` with only the selected workspaces. `configured` holds each workspace's `name:`
/// in the configuration, in the same order as `desired.workspaces`. A `--workspace` name
/// that matches no workspace, or more than one, is an error naming it and the choices.
pub fn select(
    desired: &Desired,
    configured: &[String],
    selection: &Selection,
) -> Result<Desired, String> {
    let keep: Vec<usize> = match selection {
        Selection::All => return Ok(desired.clone()),
        Selection::Shard(shard) => shard_indices(&desired.workspaces, *shard),
        Selection::Named(names) => {
            let mut keep = Vec::new();
            for name in names {
                let matches: Vec<usize> = (0..desired.workspaces.len())
                    .filter(|&i| {
                        desired.workspaces[i].name.eq_ignore_ascii_case(name)
                            || configured
                                .get(i)
                                .is_some_and(|c| c.eq_ignore_ascii_case(name))
                    })
                    .collect();
                match matches.as_slice() {
                    [i] => keep.push(*i),
                    [] => return Err(unknown(desired, configured, name)),
                    _ => {
                        return Err(format!(
                            "--workspace {name:?} names more than one workspace ({}); give \
                             the deployed name",
                            matches
                                .iter()
                                .map(|&i| desired.workspaces[i].name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                }
            }
            keep.sort_unstable();
            keep.dedup();
            keep
        }
    };
    let mut out = desired.clone();
    out.workspaces = keep
        .into_iter()
        .map(|i| desired.workspaces[i].clone())
        .collect();
    Ok(out)
}

fn unknown(desired: &Desired, configured: &[String], name: &str) -> String {
    let known: Vec<String> = desired
        .workspaces
        .iter()
        .zip(configured)
        .map(|(w, c)| format!("{c} ({})", w.name))
        .collect();
    format!(
        "--workspace {name:?}: no such workspace in environment {}; the configuration has: {}",
        desired.environment,
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(name: &str) -> DesiredWorkspace {
        DesiredWorkspace {
            name: name.into(),
            description: String::new(),
            capacity: None,
            folders: Vec::new(),
            items: Vec::new(),
            principals: Vec::new(),
            git: None,
            publish: None,
            sections: Default::default(),
        }
    }

    fn desired(names: &[&str]) -> Desired {
        Desired {
            environment: "dev".into(),
            workspaces: names.iter().map(|n| ws(n)).collect(),
            features: Default::default(),
            hash: "h".into(),
        }
    }

    fn names(d: &Desired) -> Vec<&str> {
        d.workspaces.iter().map(|w| w.name.as_str()).collect()
    }

    #[test]
    fn shards_cover_every_workspace_exactly_once_and_do_not_depend_on_config_order() {
        let all = [
            "p-zeta", "p-Alpha", "p-mid", "p-beta", "p-omega", "p-gamma", "p-delta",
        ];
        let mut reversed = all;
        reversed.reverse();
        for count in 1..=9 {
            let mut seen: Vec<String> = Vec::new();
            let mut sizes = Vec::new();
            for index in 1..=count {
                let shard = Shard { index, count };
                let a = select(&desired(&all), &[], &Selection::Shard(shard)).unwrap();
                let b = select(&desired(&reversed), &[], &Selection::Shard(shard)).unwrap();
                let (mut na, mut nb) = (names(&a), names(&b));
                na.sort_unstable();
                nb.sort_unstable();
                assert_eq!(na, nb, "shard {shard} depends on the order of the config");
                // Run twice: the same slice.
                let again = select(&desired(&all), &[], &Selection::Shard(shard)).unwrap();
                assert_eq!(names(&a), names(&again));
                sizes.push(na.len());
                seen.extend(na.iter().map(|s| s.to_string()));
            }
            seen.sort();
            let mut want: Vec<String> = all.iter().map(|s| s.to_string()).collect();
            want.sort();
            assert_eq!(seen, want, "N={count}: every workspace exactly once");
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(max - min <= 1, "N={count}: sizes {sizes:?}");
        }
    }

    #[test]
    fn a_shard_is_taken_by_sorted_index_counting_from_one() {
        let d = desired(&["c", "A", "b"]);
        let one = Shard { index: 1, count: 2 };
        let two = Shard { index: 2, count: 2 };
        // Sorted: A, b, c; the 0th and 2nd go to shard 1, and config order is kept.
        assert_eq!(
            names(&select(&d, &[], &Selection::Shard(one)).unwrap()),
            ["c", "A"]
        );
        assert_eq!(
            names(&select(&d, &[], &Selection::Shard(two)).unwrap()),
            ["b"]
        );
    }

    #[test]
    fn shard_values_are_checked_naming_the_value() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        for (bad, why) in [
            ("0/2", "from 1 to 2"),
            ("3/2", "from 1 to 2"),
            ("1/0", "at least 1"),
            ("1", "no '/'"),
            ("a/2", "\"a\" is not a whole number"),
            ("1/-2", "\"-2\" is not a whole number"),
            ("", "no '/'"),
        ] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(
                e.contains(&format!("{bad:?}")) && e.contains(why),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn workspaces_are_named_by_their_configured_or_deployed_name() {
        let d = desired(&["p-ingest-dev", "p-curated-dev", "p-reporting-dev"]);
        let configured = ["ingest".to_string(), "curated".into(), "reporting".into()];
        let pick = |n: &[&str]| {
            let sel = Selection::Named(n.iter().map(|s| s.to_string()).collect());
            select(&d, &configured, &sel).map(|d| names(&d).join(" "))
        };
        assert_eq!(
            pick(&["reporting", "INGEST"]).unwrap(),
            "p-ingest-dev p-reporting-dev"
        );
        assert_eq!(
            pick(&["p-curated-dev", "curated"]).unwrap(),
            "p-curated-dev"
        );
        let e = pick(&["nope"]).unwrap_err();
        assert!(
            e.contains("\"nope\"") && e.contains("ingest (p-ingest-dev)"),
            "{e}"
        );
    }
}
