//! The `fabrik` command-line deployer: configuration, validation, planning and deployment of
//! Microsoft Fabric workspaces. The only crate that composes the other fabrik crates.

pub mod config;
pub mod engine;
pub mod plan;
pub mod resolver;
pub mod run;
pub mod serve;
