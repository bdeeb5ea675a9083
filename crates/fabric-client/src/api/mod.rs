//! Typed operations, one method per endpoint, all built on the generic `execute`, LRO poller
//! and pager.

mod bulk;
mod connections;
mod folders;
mod git;
mod items;
mod shortcuts;
mod spark;
mod typed;
mod workspaces;

pub use items::ItemFilter;
