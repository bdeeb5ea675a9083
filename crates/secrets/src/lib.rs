//! Secrets and Azure credentials: environment, .env, Key Vault, service principal, workload and managed identity.
//!
//! Not built yet: this crate exports nothing until its issue lands.
