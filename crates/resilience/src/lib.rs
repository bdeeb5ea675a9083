//! Retry, circuit breaker, rate limiting and timeouts for throttled cloud APIs, deterministic and observable.
//!
//! Not built yet: this crate exports nothing until its issue lands.
