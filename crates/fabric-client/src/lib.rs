//! Typed async Microsoft Fabric REST client: LRO, pagination, errors, idempotent helpers.
//!
//! Not built yet: this crate exports nothing until its issue lands.
