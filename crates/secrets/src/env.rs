//! Injected environment lookup.
//!
//! Every reader of environment variables in this crate goes through [`Env`], so tests pass a
//! [`MapEnv`] and never mutate the process environment (which is shared by parallel tests).

use std::collections::HashMap;
use std::fmt;

/// Reads environment variables by name.
pub trait Env: Send + Sync + fmt::Debug {
    /// The variable's value, if set and valid Unicode.
    fn var(&self, name: &str) -> Option<String>;

    /// The variable's value when set and not blank (blank counts as unset, as users expect).
    fn non_empty(&self, name: &str) -> Option<String> {
        self.var(name).filter(|v| !v.trim().is_empty())
    }

    /// Whether a boolean flag variable is `true` (case-insensitive, the seed's rule).
    fn is_true(&self, name: &str) -> bool {
        self.var(name)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// An environment held in memory (tests, or values gathered from flags and config).
/// Debug shows the names only: values may be secrets.
#[derive(Clone, Default)]
pub struct MapEnv(HashMap<String, String>);

impl MapEnv {
    /// An empty environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a variable.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(name.into(), value.into());
        self
    }

    /// Adds or replaces a variable in place.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for MapEnv {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl fmt::Debug for MapEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        f.debug_struct("MapEnv").field("names", &names).finish()
    }
}

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_env_debug_shows_names_not_values() {
        let env = MapEnv::new().with("AZURE_CLIENT_SECRET", "hunter2-value");
        let dbg = format!("{env:?}");
        assert!(dbg.contains("AZURE_CLIENT_SECRET"));
        assert!(!dbg.contains("hunter2-value"));
    }

    #[test]
    fn blank_counts_as_unset_and_flags_are_case_insensitive() {
        let env = MapEnv::new()
            .with("A", "  ")
            .with("F", "TRUE")
            .with("G", "yes");
        assert_eq!(env.non_empty("A"), None);
        assert!(env.is_true("F"));
        assert!(!env.is_true("G"));
        assert!(!env.is_true("MISSING"));
    }
}
