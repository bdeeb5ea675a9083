//! CHANGELOG.md sections generated from commit subjects.
//!
//! Two styles are understood, because the history has both: Conventional Commits
//! (`feat(client)!: …`, grouped by type) and this project's plain `crate: sentence` subjects
//! (`fabrik-client: …`, `fabrik-health and fabrik-telemetry: …`, grouped by crate). Anything
//! else is listed under "Other" so no commit is silently dropped.

use std::collections::BTreeMap;

/// One commit as `git log` reports it.
#[derive(Debug, Clone)]
pub(crate) struct Commit {
    pub(crate) subject: String,
    pub(crate) body: String,
}

/// Conventional Commit types and the section each one lands in, in the order sections print.
const TYPES: &[(&str, &str)] = &[
    ("feat", "Features"),
    ("fix", "Fixes"),
    ("perf", "Performance"),
    ("refactor", "Refactoring"),
    ("docs", "Documentation"),
    ("revert", "Reverts"),
    ("test", "Maintenance"),
    ("build", "Maintenance"),
    ("ci", "Maintenance"),
    ("chore", "Maintenance"),
    ("style", "Maintenance"),
];

/// How a subject was understood.
#[derive(Debug, PartialEq)]
enum Kind {
    Conventional {
        ty: String,
        scope: Option<String>,
        breaking: bool,
        text: String,
    },
    /// `crate[ and crate…]: text`; `text` keeps the whole subject when part of the prefix is
    /// not a crate ("Workspace skeleton and fabrik-core: …").
    Crates {
        crates: Vec<String>,
        text: String,
    },
    Other,
}

fn classify(subject: &str, crates: &[String]) -> Kind {
    let Some((prefix, rest)) = subject.split_once(": ") else {
        return Kind::Other;
    };
    let rest = rest.trim().to_string();
    let (head, breaking) = match prefix.strip_suffix('!') {
        Some(h) => (h, true),
        None => (prefix, false),
    };
    let (ty, scope) = match head.split_once('(') {
        Some((ty, s)) => match s.strip_suffix(')') {
            Some(s) if !s.is_empty() => (ty, Some(s.to_string())),
            _ => (head, None),
        },
        None => (head, None),
    };
    if TYPES.iter().any(|(t, _)| *t == ty) {
        return Kind::Conventional {
            ty: ty.to_string(),
            scope,
            breaking,
            text: rest,
        };
    }
    let parts: Vec<&str> = prefix
        .split([','])
        .flat_map(|p| p.split(" and "))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let known: Vec<String> = parts
        .iter()
        .filter(|p| crates.iter().any(|c| c == *p))
        .map(|p| p.to_string())
        .collect();
    if known.is_empty() {
        Kind::Other
    } else {
        let text = if known.len() == parts.len() {
            rest
        } else {
            subject.to_string()
        };
        Kind::Crates {
            crates: known,
            text,
        }
    }
}

fn is_breaking_body(body: &str) -> bool {
    body.lines()
        .any(|l| l.starts_with("BREAKING CHANGE:") || l.starts_with("BREAKING-CHANGE:"))
}

/// The `## [version] - date` section for `commits` (oldest first). `crates` are the workspace
/// package names, in the order their sections should print (dependency order reads well).
pub(crate) fn section(version: &str, date: &str, commits: &[Commit], crates: &[String]) -> String {
    let mut breaking: Vec<String> = Vec::new();
    let mut by_type: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut by_crate: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut other: Vec<String> = Vec::new();
    for c in commits {
        let body_breaking = is_breaking_body(&c.body);
        match classify(&c.subject, crates) {
            Kind::Conventional {
                ty,
                scope,
                breaking: bang,
                text,
            } => {
                let entry = match scope {
                    Some(s) => format!("**{s}:** {text}"),
                    None => text,
                };
                if bang || body_breaking {
                    breaking.push(entry.clone());
                }
                let sect = TYPES
                    .iter()
                    .find(|(t, _)| *t == ty)
                    .map(|(_, s)| *s)
                    .expect("classify only returns known types");
                by_type.entry(sect).or_default().push(entry);
            }
            Kind::Crates { crates: cs, text } => {
                if body_breaking {
                    breaking.push(format!("**{}:** {text}", cs.join(", ")));
                }
                for c in cs {
                    by_crate.entry(c).or_default().push(text.clone());
                }
            }
            Kind::Other => {
                if body_breaking {
                    breaking.push(c.subject.clone());
                }
                other.push(c.subject.clone());
            }
        }
    }

    let mut out = format!("## [{version}] - {date}\n");
    let mut emit = |title: &str, entries: &[String]| {
        if entries.is_empty() {
            return;
        }
        out.push_str(&format!("\n### {title}\n\n"));
        for e in entries {
            out.push_str(&format!("- {e}\n"));
        }
    };
    emit("Breaking changes", &breaking);
    let mut seen = Vec::new();
    for (_, sect) in TYPES {
        if !seen.contains(sect) {
            seen.push(*sect);
            emit(sect, by_type.get(sect).map_or(&[][..], Vec::as_slice));
        }
    }
    for c in crates {
        emit(c, by_crate.get(c).map_or(&[][..], Vec::as_slice));
    }
    emit("Other", &other);
    if commits.is_empty() {
        out.push_str("\nNo changes.\n");
    }
    out
}

/// The header a new CHANGELOG.md starts with.
pub(crate) const HEADER: &str = "# Changelog\n\nAll notable changes to the fabrik crates, which are versioned together. Each section is\ngenerated by `cargo xtask release` from the commit subjects since the previous tag.\n";

/// `existing` (the current CHANGELOG.md, if any) with `section` inserted above the newest
/// release, below the header.
pub(crate) fn insert(existing: Option<&str>, section: &str) -> String {
    let existing = existing.unwrap_or(HEADER);
    match existing.find("\n## ") {
        Some(i) => format!("{}{section}\n{}", &existing[..=i], &existing[i + 1..]),
        None => format!("{}\n\n{section}", existing.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crates() -> Vec<String> {
        [
            "fabrik-core",
            "fabrik-client",
            "fabrik-health",
            "fabrik-telemetry",
        ]
        .map(String::from)
        .to_vec()
    }

    fn c(subject: &str) -> Commit {
        Commit {
            subject: subject.into(),
            body: String::new(),
        }
    }

    #[test]
    fn both_styles_are_classified() {
        let cs = crates();
        assert_eq!(
            classify("feat(client)!: drop v0 API", &cs),
            Kind::Conventional {
                ty: "feat".into(),
                scope: Some("client".into()),
                breaking: true,
                text: "drop v0 API".into()
            }
        );
        assert_eq!(
            classify("fabrik-health and fabrik-telemetry: probes", &cs),
            Kind::Crates {
                crates: vec!["fabrik-health".into(), "fabrik-telemetry".into()],
                text: "probes".into()
            }
        );
        assert_eq!(
            classify("Workspace skeleton and fabrik-core: vocabulary", &cs),
            Kind::Crates {
                crates: vec!["fabrik-core".into()],
                text: "Workspace skeleton and fabrik-core: vocabulary".into()
            }
        );
        assert_eq!(classify("cargo fmt", &cs), Kind::Other);
        assert_eq!(classify("note: not a crate", &cs), Kind::Other);
    }

    #[test]
    fn section_groups_by_type_then_crate_then_other() {
        let mut breaking_body = c("fabrik-client: rename FabricClient::get");
        breaking_body.body = "Because.\n\nBREAKING CHANGE: `get` is now `fetch`".into();
        let commits = vec![
            c("fix(core): parse fractional Retry-After"),
            c("feat: add coverage"),
            breaking_body,
            c("fabrik-health and fabrik-telemetry: probes and export"),
            c("cargo fmt"),
        ];
        let s = section("0.2.0", "2026-01-02", &commits, &crates());
        assert_eq!(
            s,
            "## [0.2.0] - 2026-01-02\n\
             \n### Breaking changes\n\n- **fabrik-client:** rename FabricClient::get\n\
             \n### Features\n\n- add coverage\n\
             \n### Fixes\n\n- **core:** parse fractional Retry-After\n\
             \n### fabrik-client\n\n- rename FabricClient::get\n\
             \n### fabrik-health\n\n- probes and export\n\
             \n### fabrik-telemetry\n\n- probes and export\n\
             \n### Other\n\n- cargo fmt\n"
        );
    }

    #[test]
    fn the_repository_changelog_starts_with_the_header() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../CHANGELOG.md"))
            .unwrap();
        assert!(text.starts_with(HEADER), "{text}");
    }

    #[test]
    fn insert_goes_above_the_previous_release() {
        let first = insert(None, "## [0.1.0] - 2026-01-01\n\n- a\n");
        assert!(first.starts_with(HEADER), "{first}");
        let second = insert(Some(&first), "## [0.2.0] - 2026-02-01\n\n- b\n");
        let new = second.find("## [0.2.0]").unwrap();
        let old = second.find("## [0.1.0]").unwrap();
        assert!(second.starts_with(HEADER) && new < old, "{second}");
        assert_eq!(second.matches("# Changelog").count(), 1);
    }
}
