//! Publishing Fabric items from git-format folders, compatible with Microsoft's fabric-cicd
//! 1.4.0: reading the repository (`repo`), the per-type publish facts (`item_type`), the
//! type-specific file rewrites (`rewrite`), fabric-cicd's `config.yml` (`cicd_config`) and
//! writing a workspace back out as a repository (`export`).
//!
//! Everything here is pure: it reads and writes files, never the network.

pub mod cicd_config;
pub mod export;
pub mod item_type;
pub mod repo;
pub mod rewrite;
