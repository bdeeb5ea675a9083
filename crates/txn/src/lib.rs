//! Deployment transactions with a durable write-ahead journal that roll back, even after a crash.
//!
//! Not built yet: this crate exports nothing until its issue lands.
