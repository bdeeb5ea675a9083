//! Publishing's side of the configuration's `repository:`: reads a workspace's repository
//! for [`crate::config::load`] (which knows no fabric-cicd format) and hands the result on
//! to the publishing kind through [`Loaded`], so a run reads each repository once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::inputs::{PublishArgs, Resolved, resolve};
use super::pipeline::{EnvVars, Parameterization};
use super::repo::Repository;
use crate::config::{Loaded, Problem, RepositoryContents, RepositoryReader};

/// A repository as read for a configuration, carried in a [`Loaded`].
#[derive(Debug)]
pub(crate) struct LoadedRepo {
    /// The repository.
    pub(crate) repo: Arc<Repository>,
    /// How it renders for the environment.
    pub(crate) how: Parameterization,
}

/// Reads repositories as `fabrik publish` does, with no `$ENV:` variables (a configuration
/// does not give fabric-cicd's feature flag for them). Within one load, a repository that
/// several workspaces publish (the same folder, parameter file, item types and environment)
/// is read once: an estate of a thousand workspaces deploying one repository reads it once.
#[derive(Debug, Default)]
pub struct RepoReader {
    read: Mutex<HashMap<Key, Result<RepositoryContents, Vec<Problem>>>>,
}

/// What a read depends on: the folder, the parameter file, the item types, the environment.
type Key = (PathBuf, Option<PathBuf>, Vec<String>, String);

impl RepoReader {
    /// A reader for [`crate::config::LoadOptions::repositories`], for one load.
    pub fn shared() -> Arc<dyn RepositoryReader> {
        Arc::new(Self::default())
    }

    fn read_once(
        root: &Path,
        parameter: Option<&Path>,
        item_types: &[String],
        environment: &str,
    ) -> Result<RepositoryContents, Vec<Problem>> {
        let Some(r) = read_for_config(&args(root, parameter, item_types), environment)? else {
            return Ok(RepositoryContents::default());
        };
        let items = r
            .repo
            .selected()
            .map(|i| (i.item_type.as_str().to_string(), i.display_name.clone()))
            .collect();
        let loaded = LoadedRepo {
            repo: Arc::new(r.repo.clone()),
            how: r.how,
        };
        Ok(RepositoryContents {
            items,
            folders: r.repo.folders,
            warnings: r.warnings,
            loaded: Some(Loaded(Arc::new(loaded))),
        })
    }
}

/// Reads the repository `args` names for `environment`: the one way a configuration's
/// repository is read, here and when a [`Loaded`] is missing.
pub(crate) fn read_for_config(
    args: &PublishArgs,
    environment: &str,
) -> Result<Option<Resolved>, Vec<Problem>> {
    resolve(args, environment, EnvVars::fixed(Default::default()))
}

/// The arguments `fabrik publish` would be given for a configuration's repository.
pub(crate) fn args(root: &Path, parameter: Option<&Path>, item_types: &[String]) -> PublishArgs {
    PublishArgs {
        repository: Some(root.to_path_buf()),
        workspace_id: Some(String::new()),
        parameter: parameter.map(Path::to_path_buf),
        item_types: item_types.to_vec(),
        ..PublishArgs::default()
    }
}

impl RepositoryReader for RepoReader {
    fn read(
        &self,
        root: &Path,
        parameter: Option<&Path>,
        item_types: &[String],
        environment: &str,
    ) -> Result<RepositoryContents, Vec<Problem>> {
        let key = (
            root.to_path_buf(),
            parameter.map(Path::to_path_buf),
            item_types.to_vec(),
            environment.to_string(),
        );
        let mut read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        read.entry(key)
            .or_insert_with(|| Self::read_once(root, parameter, item_types, environment))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Workspaces that publish one repository share one read of it within a load; another
    /// environment (or another reader, as a new load makes) reads it again.
    #[test]
    fn a_repository_several_workspaces_publish_is_read_once_per_load() {
        let root =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/git-format-repo");
        let reader = RepoReader::default();
        let loaded = |c: &RepositoryContents| Arc::clone(&c.loaded.as_ref().unwrap().0);
        let a = reader.read(&root, None, &[], "prod").unwrap();
        let b = reader.read(&root, None, &[], "prod").unwrap();
        assert!(!a.items.is_empty());
        assert!(Arc::ptr_eq(&loaded(&a), &loaded(&b)));
        let test = reader.read(&root, None, &[], "test").unwrap();
        assert!(!Arc::ptr_eq(&loaded(&a), &loaded(&test)));
        let again = RepoReader::default()
            .read(&root, None, &[], "prod")
            .unwrap();
        assert!(!Arc::ptr_eq(&loaded(&a), &loaded(&again)));
    }
}
