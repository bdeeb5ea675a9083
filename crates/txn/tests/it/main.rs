//! Integration tests of fabrik-txn: the seed's cases, crashes, locks and concurrency.

mod concurrency;
mod crash;
mod emulator;
mod encryption;
mod seed;
mod support;
