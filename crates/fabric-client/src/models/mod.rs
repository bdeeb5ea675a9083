//! Typed request and response bodies of the Fabric REST API.
//!
//! Enumerations are open (an unknown value lands in `Other(String)`), optional fields accept
//! explicit `null`s, and timestamps accept the real service's zone-less form, so a response
//! never fails to read because the service grew.

mod bulk;
mod common;
mod git;
mod item;
mod operation;
mod spark;
mod workspace;

pub use bulk::*;
pub use common::{Page, Timestamp};
pub use git::*;
pub use item::*;
pub use operation::*;
pub use spark::*;
pub use workspace::*;

#[cfg(test)]
mod tests;
