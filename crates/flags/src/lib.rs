//! Typed feature flags with provenance: from the command line, the environment, a config file
//! section, or the default — in that order of precedence.
//!
//! The seed read `FEATURE_USE_*` variables with `value.lower() == "true"`, so a typo such as
//! `FEATURE_USE_RETRY_LOGIC=ture` silently meant "off". Here every value must be one of
//! `true/false/1/0/yes/no/on/off` (any case, surrounding whitespace ignored); anything else is
//! an error naming the variable and the value, and an unknown `FEATURE_*` variable is a warning
//! with a "did you mean" suggestion.
//!
//! # Defaults
//! The seed defaulted every flag to off for backward compatibility with scripts that predated
//! them. fabrik is a new tool, and a deployer that does not retry a 429 or roll back a half-made
//! deployment surprises its users, so resilience, rollback, telemetry and health checks default
//! to **on**. Azure Key Vault defaults to **off**: it needs a vault to be named
//! (`AZURE_KEY_VAULT_NAME` or `KEY_VAULT_URL`), and turning it on without one would fail.
//!
//! ```
//! use fabrik_flags::{Flags, Inputs, Source};
//! use fabrik_core::Flag;
//!
//! let env = [("FEATURE_USE_RETRY_LOGIC".to_string(), " Off ".to_string())];
//! let flags = Flags::resolve(&Inputs { env: &env, ..Inputs::default() }).unwrap();
//! assert!(!flags.is_on(Flag::RetryLogic));
//! assert_eq!(flags.source(Flag::RetryLogic), &Source::Env("FEATURE_USE_RETRY_LOGIC".into()));
//! assert!(flags.is_on(Flag::Rollback)); // default
//! ```

// The README's examples compile and run as doctests, so the crate's front page cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use fabrik_core::{Flag, FlagSource};
use serde::Deserialize;

/// Where a flag's effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Nothing set it.
    Default,
    /// The config file's `features` section.
    File(PathBuf),
    /// An environment variable (named).
    Env(String),
    /// A command-line override.
    CommandLine,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env(v) => write!(f, "env {v}"),
            Source::CommandLine => f.write_str("command line"),
        }
    }
}

/// A value as written in a config file: YAML lets users write `true` or `"yes"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum FileValue {
    /// A boolean.
    Bool(bool),
    /// A string to be parsed like an environment value.
    Text(String),
}

/// The config file's `features` section: flag key (`retry_logic`) or variable name
/// (`FEATURE_USE_RETRY_LOGIC`) → value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct FileSection(pub BTreeMap<String, FileValue>);

/// Everything flags are resolved from. The environment is passed in, not read, so resolution
/// is a pure function and tests never touch the process environment.
#[derive(Debug, Clone, Default)]
pub struct Inputs<'a> {
    /// Environment variables (name, value); production passes `std::env::vars()`.
    pub env: &'a [(String, String)],
    /// The config file's section and the file's path.
    pub file: Option<(PathBuf, FileSection)>,
    /// Command-line overrides, each `KEY=VALUE` (KEY a flag key or variable name).
    pub cli: &'a [String],
}

/// A flag value that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// A value outside the accepted spellings.
    #[error(
        "invalid value '{value}' for {name} (from {origin}): expected one of true/false, 1/0, yes/no, on/off"
    )]
    InvalidValue {
        /// The variable or key.
        name: String,
        /// The value as given.
        value: String,
        /// Where it was given.
        origin: Source,
    },
    /// A file or command-line key that names no flag.
    #[error("unknown feature flag '{name}' (from {origin}){}", suggestion_text(.suggestion))]
    UnknownFlag {
        /// The key as given.
        name: String,
        /// Where it was given.
        origin: Source,
        /// The closest known name.
        suggestion: Option<String>,
    },
    /// A command-line override without `=`.
    #[error("feature override '{0}' must look like KEY=VALUE, e.g. retry_logic=off")]
    Malformed(String),
}

fn suggestion_text(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!("; did you mean '{s}'?"))
        .unwrap_or_default()
}

/// The flags' effective values, each with where it came from, plus non-fatal warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    values: BTreeMap<Flag, (bool, Source)>,
    warnings: Vec<String>,
}

/// One line of the flags report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagReport {
    /// The flag.
    pub flag: Flag,
    /// Its effective value.
    pub enabled: bool,
    /// Where that value came from.
    pub source: Source,
}

/// The production-readiness verdict (the seed's `is_production_ready`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Whether every required flag is on.
    pub ready: bool,
    /// The required flags that are off.
    pub missing: Vec<Flag>,
}

/// The flags production needs, as the seed defined them: Key Vault, retry, rollback, telemetry
/// and health checks. The circuit breaker is not required (as in the seed).
pub const PRODUCTION_REQUIRED: [Flag; 5] = [
    Flag::AzureKeyVault,
    Flag::RetryLogic,
    Flag::Rollback,
    Flag::Telemetry,
    Flag::HealthChecks,
];

/// The default value of a flag (see the crate docs for why).
pub fn default_value(flag: Flag) -> bool {
    !matches!(flag, Flag::AzureKeyVault)
}

/// Parses a flag value: `true/false/1/0/yes/no/on/off`, any case, whitespace trimmed.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Finds the flag a key names: its config key, its variable name, or an alias (any case).
fn lookup(key: &str) -> Option<Flag> {
    let k = key.trim();
    Flag::ALL.into_iter().find(|f| {
        f.key().eq_ignore_ascii_case(k)
            || f.env_var().eq_ignore_ascii_case(k)
            || f.aliases().iter().any(|a| a.eq_ignore_ascii_case(k))
    })
}

/// The known name closest to `name`, if it is close enough to be a likely typo.
fn suggest(name: &str, env_style: bool) -> Option<String> {
    let candidates = Flag::ALL.into_iter().flat_map(|f| {
        let mut v: Vec<&'static str> = if env_style {
            vec![f.env_var()]
        } else {
            vec![f.key()]
        };
        if env_style {
            v.extend(f.aliases());
        }
        v
    });
    let upper = name.to_ascii_uppercase();
    candidates
        .map(|c| (strsim::levenshtein(&upper, &c.to_ascii_uppercase()), c))
        .filter(|(d, c)| {
            // Judge closeness on the distinctive part, not the shared FEATURE_USE_ prefix.
            let distinctive = c.strip_prefix("FEATURE_USE_").unwrap_or(c);
            *d <= (distinctive.len() / 3).max(2)
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

impl Flags {
    /// Resolves every flag: command line > environment > file > default.
    /// Every invalid value and unknown key is reported at once.
    pub fn resolve(inputs: &Inputs<'_>) -> Result<Flags, Vec<FlagError>> {
        let mut values: BTreeMap<Flag, (bool, Source)> = Flag::ALL
            .into_iter()
            .map(|f| (f, (default_value(f), Source::Default)))
            .collect();
        let mut errors = Vec::new();
        let mut warnings = Vec::new();

        if let Some((path, section)) = &inputs.file {
            for (key, raw) in &section.0 {
                let source = Source::File(path.clone());
                let Some(flag) = lookup(key) else {
                    errors.push(FlagError::UnknownFlag {
                        name: key.clone(),
                        origin: source,
                        suggestion: suggest(key, key.to_ascii_uppercase().starts_with("FEATURE_")),
                    });
                    continue;
                };
                let parsed = match raw {
                    FileValue::Bool(b) => Some(*b),
                    FileValue::Text(t) => parse_bool(t),
                };
                match parsed {
                    Some(b) => {
                        values.insert(flag, (b, source));
                    }
                    None => errors.push(FlagError::InvalidValue {
                        name: key.clone(),
                        value: match raw {
                            FileValue::Text(t) => t.clone(),
                            FileValue::Bool(b) => b.to_string(),
                        },
                        origin: source,
                    }),
                }
            }
        }

        // Environment: canonical names first, so the canonical name wins over an alias.
        let mut env_set: BTreeMap<Flag, (String, bool)> = BTreeMap::new();
        let mut sorted: Vec<&(String, String)> = inputs.env.iter().collect();
        sorted.sort_by_key(|(name, _)| lookup(name).is_some_and(|f| f.env_var() != name.as_str()));
        for (name, value) in sorted {
            if !name.starts_with("FEATURE_") {
                continue;
            }
            let known = Flag::ALL
                .into_iter()
                .find(|f| f.env_var() == name.as_str() || f.aliases().contains(&name.as_str()));
            let Some(flag) = known else {
                let hint = suggest(name, true)
                    .map(|s| format!("; did you mean {s}?"))
                    .unwrap_or_default();
                warnings.push(format!(
                    "unknown feature flag variable {name} is ignored{hint}"
                ));
                continue;
            };
            let Some(b) = parse_bool(value) else {
                errors.push(FlagError::InvalidValue {
                    name: name.clone(),
                    value: value.clone(),
                    origin: Source::Env(name.clone()),
                });
                continue;
            };
            if let Some((first, fb)) = env_set.get(&flag) {
                if *fb != b {
                    warnings.push(format!(
                        "{first} and {name} disagree; {first} wins ({})",
                        if *fb { "on" } else { "off" }
                    ));
                }
                continue;
            }
            env_set.insert(flag, (name.clone(), b));
            values.insert(flag, (b, Source::Env(name.clone())));
        }

        for item in inputs.cli {
            let Some((key, value)) = item.split_once('=') else {
                errors.push(FlagError::Malformed(item.clone()));
                continue;
            };
            let Some(flag) = lookup(key) else {
                errors.push(FlagError::UnknownFlag {
                    name: key.trim().to_string(),
                    origin: Source::CommandLine,
                    suggestion: suggest(
                        key.trim(),
                        key.trim().to_ascii_uppercase().starts_with("FEATURE_"),
                    ),
                });
                continue;
            };
            match parse_bool(value) {
                Some(b) => {
                    values.insert(flag, (b, Source::CommandLine));
                }
                None => errors.push(FlagError::InvalidValue {
                    name: key.trim().to_string(),
                    value: value.to_string(),
                    origin: Source::CommandLine,
                }),
            }
        }

        if errors.is_empty() {
            Ok(Flags { values, warnings })
        } else {
            Err(errors)
        }
    }

    /// Every flag at its default.
    pub fn defaults() -> Flags {
        Flags {
            values: Flag::ALL
                .into_iter()
                .map(|f| (f, (default_value(f), Source::Default)))
                .collect(),
            warnings: Vec::new(),
        }
    }

    /// Whether `flag` is on.
    pub fn is_on(&self, flag: Flag) -> bool {
        self.values
            .get(&flag)
            .map(|(b, _)| *b)
            .unwrap_or_else(|| default_value(flag))
    }

    /// Where `flag`'s value came from.
    pub fn source(&self, flag: Flag) -> &Source {
        self.values
            .get(&flag)
            .map(|(_, s)| s)
            .unwrap_or(&Source::Default)
    }

    /// Non-fatal findings: unknown `FEATURE_*` variables, aliases that disagree.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Every flag's effective value and where it came from, in a stable order.
    pub fn report(&self) -> Vec<FlagReport> {
        Flag::ALL
            .into_iter()
            .map(|flag| FlagReport {
                flag,
                enabled: self.is_on(flag),
                source: self.source(flag).clone(),
            })
            .collect()
    }

    /// The production-readiness check: every flag in [`PRODUCTION_REQUIRED`] must be on.
    pub fn readiness(&self) -> Readiness {
        let missing: Vec<Flag> = PRODUCTION_REQUIRED
            .into_iter()
            .filter(|f| !self.is_on(*f))
            .collect();
        Readiness {
            ready: missing.is_empty(),
            missing,
        }
    }
}

impl FlagSource for Flags {
    fn is_enabled(&self, flag: Flag) -> bool {
        self.is_on(flag)
    }
}

impl fmt::Display for Flags {
    /// A table: flag, variable, value, source.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<16} {:<28} {:<5} SOURCE", "FLAG", "VARIABLE", "VALUE")?;
        for r in self.report() {
            writeln!(
                f,
                "{:<16} {:<28} {:<5} {}",
                r.flag.key(),
                r.flag.env_var(),
                if r.enabled { "on" } else { "off" },
                r.source
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
