//! Integration tests of the emulator over real HTTP on loopback.

mod api;
mod azure;
mod common;
mod conformance;
mod faults;
mod git_folders;
mod item_types;
mod profile;
mod publishing;
mod robustness;
