//! The `fabrik` command-line deployer: configuration, validation, planning and deployment of
//! Microsoft Fabric workspaces. The only crate that composes the other fabrik crates.

// The README's examples compile and run as doctests, so the crate's front page cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod auth;
pub mod cli;
pub mod command;
pub mod config;
pub mod deployed;
pub mod destroy;
pub mod engine;
pub mod flags;
pub mod plan;
pub mod publish;
pub mod render;
pub mod run;
pub mod secrets;
pub mod select;
pub mod serve;
pub mod state;
pub mod state_key;
pub mod token_pipe;
