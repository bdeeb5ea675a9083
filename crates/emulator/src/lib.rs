//! A faithful local Microsoft Fabric REST API emulator, with Entra ID, Key Vault and App Insights stand-ins.
//!
//! Not built yet: this crate exports nothing until its issue lands.
