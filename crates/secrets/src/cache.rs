//! A TTL cache in front of any secret provider, with refresh ahead of expiry and single flight.
//!
//! - A value is served from memory for `ttl` (the seed's `SECRET_CACHE_TTL`, 3600 s).
//! - In the last `refresh_ahead` of that time, the first reader refreshes it while every other
//!   reader keeps getting the cached value, so a busy secret never goes cold. If the refresh
//!   fails the still-valid value is kept until it expires.
//! - Concurrent readers of a cold secret share one request to the inner provider (a vault
//!   under a deployment's fan-out would otherwise get one request per caller).
//! - Misses and errors are not cached; time comes from an injected [`Clock`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fabrik_core::{Clock, SecretError, SecretProvider, SecretString};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::env::Env;

/// The seed's default TTL for cached secrets.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

type Fetch = Shared<BoxFuture<'static, Result<Option<SecretString>, SecretError>>>;

/// Cache counters (the seed's `get_cache_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Secrets currently held.
    pub entries: usize,
    /// Reads answered from memory.
    pub hits: u64,
    /// Reads that had to wait for the inner provider.
    pub misses: u64,
    /// Requests actually sent to the inner provider.
    pub fetches: u64,
}

/// Caches another provider's secrets; cheap to clone (clones share the cache).
#[derive(Clone)]
pub struct CachedSecrets {
    inner: Arc<Inner>,
}

struct Inner {
    provider: Arc<dyn SecretProvider>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    refresh_ahead: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    in_flight: HashMap<String, Fetch>,
    stats: CacheStats,
}

struct Entry {
    value: SecretString,
    fetched_at: Instant,
}

impl fmt::Debug for CachedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedSecrets")
            .field("provider", &self.inner.provider)
            .field("ttl", &self.inner.ttl)
            .field("refresh_ahead", &self.inner.refresh_ahead)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Reads `SECRET_CACHE_TTL` (whole seconds); unset or unparsable gives the seed's 3600 s.
pub fn ttl_from_env(env: &dyn Env) -> Duration {
    match env.non_empty("SECRET_CACHE_TTL") {
        None => DEFAULT_TTL,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => {
                tracing::warn!(value = %v, "SECRET_CACHE_TTL is not a whole number of seconds; using 3600");
                DEFAULT_TTL
            }
        },
    }
}

impl CachedSecrets {
    /// Caches `provider` for `ttl`, refreshing in the last tenth of it.
    pub fn new(provider: Arc<dyn SecretProvider>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self::with_refresh_ahead(provider, clock, ttl, ttl / 10)
    }

    /// Caches `provider` for `ttl`, refreshing once less than `refresh_ahead` remains.
    pub fn with_refresh_ahead(
        provider: Arc<dyn SecretProvider>,
        clock: Arc<dyn Clock>,
        ttl: Duration,
        refresh_ahead: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                provider,
                clock,
                ttl,
                refresh_ahead: refresh_ahead.min(ttl),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The time-to-live of cached values.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// Counters and the number of cached secrets.
    pub fn stats(&self) -> CacheStats {
        let s = self.inner.lock();
        CacheStats {
            entries: s.entries.len(),
            ..s.stats
        }
    }

    /// Forgets `name`, so the next read goes to the provider (the seed's `refresh_cache`).
    pub fn invalidate(&self, name: &str) {
        self.inner.lock().entries.remove(name);
    }

    /// Forgets every cached secret.
    pub fn clear(&self) {
        self.inner.lock().entries.clear();
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the maps inconsistent; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts (or joins) the single request for `name`. The future stores its own result, so
    /// it completes the cache update whichever caller ends up driving it.
    fn fetch(self: &Arc<Self>, state: &mut State, name: &str) -> Fetch {
        if let Some(f) = state.in_flight.get(name) {
            return f.clone();
        }
        state.stats.fetches += 1;
        let this = Arc::clone(self);
        let key = name.to_owned();
        let fut = async move {
            let result = this.provider.get_secret(&key).await;
            let mut s = this.lock();
            s.in_flight.remove(&key);
            match &result {
                Ok(Some(value)) => {
                    let fetched_at = this.clock.now();
                    s.entries.insert(
                        key,
                        Entry {
                            value: value.clone(),
                            fetched_at,
                        },
                    );
                }
                Ok(None) => {
                    s.entries.remove(&key);
                }
                Err(err) => {
                    // Keep a still-valid value (a failed refresh-ahead); the reader decides.
                    tracing::warn!(secret = %key, error = %err, "secret refresh failed");
                }
            }
            result
        }
        .boxed()
        .shared();
        state.in_flight.insert(name.to_owned(), fut.clone());
        fut
    }
}

#[async_trait]
impl SecretProvider for CachedSecrets {
    async fn get_secret(&self, name: &str) -> Result<Option<SecretString>, SecretError> {
        let inner = &self.inner;
        let (fetch, fallback) = {
            let mut s = inner.lock();
            let now = inner.clock.now();
            let cached = s.entries.get(name).and_then(|e| {
                let age = now.saturating_duration_since(e.fetched_at);
                (age < inner.ttl).then(|| (e.value.clone(), age))
            });
            match cached {
                Some((value, age)) if age < inner.ttl - inner.refresh_ahead => {
                    s.stats.hits += 1;
                    return Ok(Some(value));
                }
                Some((value, _)) => {
                    // Refresh window: one reader refreshes, the others keep the cached value.
                    s.stats.hits += 1;
                    if s.in_flight.contains_key(name) {
                        return Ok(Some(value));
                    }
                    (inner.fetch(&mut s, name), Some(value))
                }
                None => {
                    s.entries.remove(name);
                    s.stats.misses += 1;
                    (inner.fetch(&mut s, name), None)
                }
            }
        };
        match (fetch.await, fallback) {
            (Err(_), Some(still_valid)) => Ok(Some(still_valid)),
            (result, _) => result,
        }
    }

    fn describe(&self) -> String {
        self.inner.provider.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MapEnv;
    use fabrik_core::secret::ExposeSecret;
    use fabrik_core::time::ManualClock;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use tokio::sync::Notify;

    /// Counts requests; can be held open (to pile up readers) or made to fail.
    #[derive(Debug, Default)]
    struct Counting {
        calls: AtomicU64,
        gate: Option<Arc<Notify>>,
        fail: AtomicBool,
    }

    #[async_trait]
    impl SecretProvider for Counting {
        async fn get_secret(&self, name: &str) -> Result<Option<SecretString>, SecretError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(g) = &self.gate {
                g.notified().await;
            }
            if self.fail.load(Ordering::SeqCst) {
                return Err(SecretError::Unavailable {
                    store: "vault".into(),
                    reason: "down".into(),
                });
            }
            if name == "missing" {
                return Ok(None);
            }
            Ok(Some(SecretString::from(format!("{name}-v{n}"))))
        }
        fn describe(&self) -> String {
            "counting".into()
        }
    }

    fn cache(p: Arc<Counting>, clock: &ManualClock, ttl: u64) -> CachedSecrets {
        CachedSecrets::with_refresh_ahead(
            p,
            Arc::new(clock.clone()),
            Duration::from_secs(ttl),
            Duration::from_secs(ttl / 10),
        )
    }

    async fn read(c: &CachedSecrets, name: &str) -> String {
        c.get_secret(name)
            .await
            .unwrap()
            .unwrap()
            .expose_secret()
            .to_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hundred_concurrent_cold_reads_make_one_request() {
        let gate = Arc::new(Notify::new());
        let p = Arc::new(Counting {
            gate: Some(gate.clone()),
            ..Default::default()
        });
        let clock = ManualClock::new();
        let c = cache(p.clone(), &clock, 3600);
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { read(&c, "db").await })
            })
            .collect();
        // Wait until the single request is in progress, then let it finish.
        while p.calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        for t in tasks {
            assert_eq!(t.await.unwrap(), "db-v1");
        }
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
        assert_eq!(c.stats().fetches, 1);
    }

    // Seed: test_cache_ttl / test_cache_expiration.
    #[tokio::test]
    async fn values_are_served_from_memory_until_the_ttl_passes() {
        let p = Arc::new(Counting::default());
        let clock = ManualClock::new();
        let c = cache(p.clone(), &clock, 100);
        assert_eq!(read(&c, "k").await, "k-v1");
        clock.advance(Duration::from_secs(89));
        assert_eq!(read(&c, "k").await, "k-v1");
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(11)); // age 100 = ttl: expired
        assert_eq!(read(&c, "k").await, "k-v2");
        assert_eq!(p.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn refresh_ahead_renews_before_expiry_and_keeps_the_old_value_on_failure() {
        let p = Arc::new(Counting::default());
        let clock = ManualClock::new();
        let c = cache(p.clone(), &clock, 100);
        assert_eq!(read(&c, "k").await, "k-v1");
        clock.advance(Duration::from_secs(95)); // inside the last 10 s
        assert_eq!(read(&c, "k").await, "k-v2", "refreshed ahead of expiry");
        clock.advance(Duration::from_secs(95));
        p.fail.store(true, Ordering::SeqCst);
        assert_eq!(
            read(&c, "k").await,
            "k-v2",
            "still valid value kept when refresh fails"
        );
        clock.advance(Duration::from_secs(5)); // now expired and the store is down
        assert!(c.get_secret("k").await.is_err());
    }

    // Seed: test_refresh_cache and test_cache_stats.
    #[tokio::test]
    async fn invalidate_clear_and_stats() {
        let p = Arc::new(Counting::default());
        let clock = ManualClock::new();
        let c = cache(p.clone(), &clock, 100);
        read(&c, "a").await;
        read(&c, "a").await;
        read(&c, "b").await;
        assert_eq!(
            c.stats(),
            CacheStats {
                entries: 2,
                hits: 1,
                misses: 2,
                fetches: 2
            }
        );
        c.invalidate("a");
        assert_eq!(read(&c, "a").await, "a-v3");
        c.clear();
        assert_eq!(c.stats().entries, 0);
        assert!(c.get_secret("missing").await.unwrap().is_none());
        assert!(c.get_secret("missing").await.unwrap().is_none());
        assert_eq!(c.stats().entries, 0, "misses are not cached");
    }

    // Seed: test_singleton — clones share one cache, so the process has one view of a secret.
    #[tokio::test]
    async fn clones_share_one_cache() {
        let p = Arc::new(Counting::default());
        let clock = ManualClock::new();
        let a = cache(p.clone(), &clock, 100);
        let b = a.clone();
        read(&a, "k").await;
        assert_eq!(read(&b, "k").await, "k-v1");
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn ttl_comes_from_secret_cache_ttl() {
        assert_eq!(ttl_from_env(&MapEnv::new()), DEFAULT_TTL);
        assert_eq!(
            ttl_from_env(&MapEnv::new().with("SECRET_CACHE_TTL", "120")),
            Duration::from_secs(120)
        );
        assert_eq!(
            ttl_from_env(&MapEnv::new().with("SECRET_CACHE_TTL", "soon")),
            DEFAULT_TTL
        );
    }
}
