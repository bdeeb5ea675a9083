//! Integration tests of fabrik-health: registry rules, the readiness checks, and the router.
//!
//! Counterparts of the seed's test_health_check.py (18 cases) are marked `seed:` in each test.

mod checks;
mod registry;
mod router;
mod support;
