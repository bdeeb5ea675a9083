//! Publishing Fabric items from git-format folders, compatible with Microsoft's fabric-cicd
//! 1.4.0. Reading the repository (`repo`), the per-type publish facts (`item_type`), the
//! type-specific file rewrites (`rewrite`), fabric-cicd's `config.yml` (`cicd_config`),
//! `parameter.yml` and the rendering of item parts for one environment (`parameter`), and
//! writing a workspace back out as a repository (`export`) are pure: they read and write files,
//! never the network. `publisher` plans and applies a repository's items as an engine kind;
//! `inputs` resolves the command's flags and `config.yml`; `pipeline` renders an item's parts;
//! `snapshot` reads a deployed workspace for export.

pub mod cicd_config;
pub mod export;
pub mod inputs;
pub mod item_type;
pub mod parameter;
pub mod pipeline;
pub mod publisher;
pub mod reader;
pub mod repo;
pub mod rewrite;
pub mod snapshot;
