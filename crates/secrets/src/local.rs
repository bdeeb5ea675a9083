//! Secrets from the environment, a `.env` file, or fixed defaults.
//!
//! Name mapping follows the seed: `my-secret` is looked up as `MY_SECRET` first, then as
//! `my-secret` itself, so config can use Key Vault style names and still find env variables.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use fabrik_core::{SecretError, SecretProvider, SecretString};

use crate::env::Env;

/// The variable names tried for a secret, in order: upper-cased with `-` → `_`, then as given.
pub fn env_var_candidates(name: &str) -> Vec<String> {
    let mapped = name.to_uppercase().replace('-', "_");
    if mapped == name {
        vec![mapped]
    } else {
        vec![mapped, name.to_owned()]
    }
}

/// Secrets from environment variables, read through an injected [`Env`].
#[derive(Debug, Clone)]
pub struct EnvSecrets {
    env: Arc<dyn Env>,
}

impl EnvSecrets {
    /// Reads from `env`.
    pub fn new(env: Arc<dyn Env>) -> Self {
        Self { env }
    }
}

#[async_trait]
impl SecretProvider for EnvSecrets {
    async fn get_secret(&self, name: &str) -> Result<Option<SecretString>, SecretError> {
        Ok(env_var_candidates(name)
            .iter()
            .find_map(|var| self.env.non_empty(var))
            .map(SecretString::from))
    }

    fn describe(&self) -> String {
        "environment".to_owned()
    }
}

/// Secrets from a `.env` file, parsed once with `dotenvy` (never loaded into the process
/// environment). Debug shows the path and the names, never the values.
#[derive(Clone)]
pub struct DotEnvSecrets {
    path: PathBuf,
    values: HashMap<String, SecretString>,
}

impl DotEnvSecrets {
    /// Parses the file at `path`. A missing or malformed file is an error naming the path
    /// and line, never a value.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, SecretError> {
        let path = path.as_ref().to_path_buf();
        let unavailable = |reason: String| SecretError::Unavailable {
            store: format!(".env file {}", path.display()),
            reason,
        };
        let iter = dotenvy::from_path_iter(&path).map_err(|e| unavailable(describe_dotenv(&e)))?;
        let mut values = HashMap::new();
        for item in iter {
            let (k, v) = item.map_err(|e| unavailable(describe_dotenv(&e)))?;
            values.insert(k, SecretString::from(v));
        }
        Ok(Self { path, values })
    }

    /// Like [`load`](Self::load), but a missing file gives `Ok(None)`.
    pub fn load_if_exists(path: impl AsRef<Path>) -> Result<Option<Self>, SecretError> {
        if path.as_ref().exists() {
            Self::load(path).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// dotenvy's line-parse error echoes the offending line, which may hold a value: keep only
/// its position.
fn describe_dotenv(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::LineParse(_, index) => format!("syntax error at byte {index} of a line"),
        dotenvy::Error::Io(io) => io.to_string(),
        dotenvy::Error::EnvVar(v) => v.to_string(),
        _ => "unreadable".to_owned(), // dotenvy's enum is non-exhaustive
    }
}

impl fmt::Debug for DotEnvSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.values.keys().collect();
        names.sort();
        f.debug_struct("DotEnvSecrets")
            .field("path", &self.path)
            .field("names", &names)
            .finish()
    }
}

#[async_trait]
impl SecretProvider for DotEnvSecrets {
    async fn get_secret(&self, name: &str) -> Result<Option<SecretString>, SecretError> {
        Ok(env_var_candidates(name)
            .iter()
            .find_map(|var| self.values.get(var))
            .cloned())
    }

    fn describe(&self) -> String {
        format!(".env file {}", self.path.display())
    }
}

/// Fixed values, the seed's "default" step at the end of a chain.
#[derive(Clone, Default)]
pub struct DefaultSecrets {
    values: HashMap<String, SecretString>,
}

impl DefaultSecrets {
    /// No defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a default for `name`.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<SecretString>) -> Self {
        self.values.insert(name.into(), value.into());
        self
    }
}

impl fmt::Debug for DefaultSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.values.keys().collect();
        names.sort();
        f.debug_struct("DefaultSecrets")
            .field("names", &names)
            .finish()
    }
}

#[async_trait]
impl SecretProvider for DefaultSecrets {
    async fn get_secret(&self, name: &str) -> Result<Option<SecretString>, SecretError> {
        Ok(self.values.get(name).cloned())
    }

    fn describe(&self) -> String {
        "defaults".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MapEnv;
    use fabrik_core::secret::ExposeSecret;

    fn expose(v: Option<SecretString>) -> Option<String> {
        v.map(|s| s.expose_secret().to_owned())
    }

    // Seed: test_env_name_formats.
    #[tokio::test]
    async fn env_maps_kebab_names_to_upper_snake_then_the_name_itself() {
        let env = MapEnv::new()
            .with("MY_SECRET", "upper")
            .with("other-secret", "verbatim");
        let p = EnvSecrets::new(Arc::new(env));
        assert_eq!(
            expose(p.get_secret("my-secret").await.unwrap()).as_deref(),
            Some("upper")
        );
        assert_eq!(
            expose(p.get_secret("MY_SECRET").await.unwrap()).as_deref(),
            Some("upper")
        );
        assert_eq!(
            expose(p.get_secret("other-secret").await.unwrap()).as_deref(),
            Some("verbatim")
        );
        assert_eq!(p.get_secret("absent").await.unwrap().map(|_| ()), None);
        assert_eq!(env_var_candidates("my-secret"), ["MY_SECRET", "my-secret"]);
        assert_eq!(env_var_candidates("PLAIN"), ["PLAIN"]);
    }

    #[tokio::test]
    async fn upper_snake_wins_over_the_verbatim_name() {
        let env = MapEnv::new()
            .with("DB_PASS", "mapped")
            .with("db-pass", "verbatim");
        let p = EnvSecrets::new(Arc::new(env));
        assert_eq!(
            expose(p.get_secret("db-pass").await.unwrap()).as_deref(),
            Some("mapped")
        );
    }

    #[tokio::test]
    async fn dotenv_file_is_parsed_without_touching_the_process_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(
            &path,
            "# comment\nAPI_KEY=abc123\nQUOTED=\"with spaces\"\nexport EXPORTED=yes\n",
        )
        .unwrap();
        let p = DotEnvSecrets::load(&path).unwrap();
        assert_eq!(
            expose(p.get_secret("api-key").await.unwrap()).as_deref(),
            Some("abc123")
        );
        assert_eq!(
            expose(p.get_secret("QUOTED").await.unwrap()).as_deref(),
            Some("with spaces")
        );
        assert_eq!(
            expose(p.get_secret("EXPORTED").await.unwrap()).as_deref(),
            Some("yes")
        );
        assert!(std::env::var("API_KEY").is_err());
        let dbg = format!("{p:?}");
        assert!(dbg.contains("API_KEY") && !dbg.contains("abc123"));
        assert!(p.describe().contains(".env file"));
    }

    #[test]
    fn dotenv_errors_name_the_file_not_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "GOOD=1\nBROKEN LINE leaked-value-xyz\n").unwrap();
        let err = DotEnvSecrets::load(&path).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(".env file"), "{text}");
        assert!(!text.contains("leaked-value-xyz"), "{text}");
        assert!(
            DotEnvSecrets::load_if_exists(dir.path().join("nope"))
                .unwrap()
                .is_none()
        );
    }
}
