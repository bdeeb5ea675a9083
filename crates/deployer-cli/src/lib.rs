//! The `fabrik` command-line deployer: configuration, validation, planning and deployment of
//! Microsoft Fabric workspaces. The only crate that composes the other fabrik crates.

pub mod config;
