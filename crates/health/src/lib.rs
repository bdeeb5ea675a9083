//! Health checks with liveness and readiness probes and an embeddable HTTP router.
//!
//! Not built yet: this crate exports nothing until its issue lands.
