//! Integration tests of the Azure Blob state store against a real Azurite on loopback.

mod blocking;
mod journal;
mod locks;
mod sealed;
mod support;
