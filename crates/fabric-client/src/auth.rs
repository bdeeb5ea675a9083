//! Tokens: a fixed-token provider, and the client's cache in front of any provider.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use fabrik_core::time::Clock;
use fabrik_core::{AccessToken, AuthError, TokenProvider};
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

/// The default scope for Fabric (client credentials and `az account get-access-token`).
pub const FABRIC_SCOPE: &str = "https://api.fabric.microsoft.com/.default";

/// A fixed bearer token: for a token from `az account get-access-token --resource
/// https://api.fabric.microsoft.com`, or any token with the emulator's `--accept-any-token`.
/// It cannot refresh; when the service says it expired, the call fails.
pub struct StaticTokenProvider {
    token: SecretString,
    expires_at: SystemTime,
}

impl StaticTokenProvider {
    /// A provider of `token`, treated as valid until `expires_at`.
    pub fn new(token: SecretString, expires_at: SystemTime) -> Self {
        Self { token, expires_at }
    }

    /// A provider of `token` with no known expiry.
    pub fn never_expiring(token: SecretString) -> Self {
        // Far enough for any run, near enough not to overflow arithmetic on SystemTime.
        Self::new(
            token,
            SystemTime::UNIX_EPOCH + Duration::from_secs(4_102_444_800),
        )
    }

    /// Reads the token from environment variable `var` (e.g. `FABRIC_TOKEN`).
    pub fn from_env(var: &str) -> Result<Self, AuthError> {
        match std::env::var(var) {
            Ok(t) if !t.trim().is_empty() => Ok(Self::never_expiring(SecretString::from(
                t.trim().to_owned(),
            ))),
            _ => Err(AuthError::Unavailable(format!(
                "environment variable {var} is not set"
            ))),
        }
    }
}

impl fmt::Debug for StaticTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticTokenProvider")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[async_trait]
impl TokenProvider for StaticTokenProvider {
    async fn token(&self, _scopes: &[&str]) -> Result<AccessToken, AuthError> {
        Ok(AccessToken {
            token: self.token.clone(),
            expires_at: self.expires_at,
        })
    }

    fn describe(&self) -> String {
        "static bearer token".to_owned()
    }
}

/// The Authorization header value, cached until `refresh_before` its expiry (or half its life,
/// if shorter). One refresh at a time: concurrent callers wait for it instead of all asking
/// the identity provider.
pub(crate) struct TokenCache {
    provider: Arc<dyn TokenProvider>,
    scope: String,
    refresh_before: Duration,
    clock: Arc<dyn Clock>,
    /// The header and when to refresh it.
    current: Mutex<Option<(HeaderValue, SystemTime)>>,
    refreshing: futures::lock::Mutex<()>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("provider", &self.provider)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub(crate) fn new(
        provider: Arc<dyn TokenProvider>,
        scope: String,
        refresh_before: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            provider,
            scope,
            refresh_before,
            clock,
            current: Mutex::new(None),
            refreshing: futures::lock::Mutex::new(()),
        }
    }

    fn fresh(&self) -> Option<HeaderValue> {
        let now = self.clock.system_now();
        let cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        cur.as_ref()
            .filter(|(_, refresh_at)| now < *refresh_at)
            .map(|(h, _)| h.clone())
    }

    /// When to fetch anew: `refresh_before` ahead of expiry, but no later than halfway through
    /// a short-lived token's life, so a 60 s token is not fetched again on every call.
    fn refresh_at(&self, expires_at: SystemTime) -> SystemTime {
        let now = self.clock.system_now();
        let life = expires_at.duration_since(now).unwrap_or(Duration::ZERO);
        expires_at - self.refresh_before.min(life / 2)
    }

    /// A valid `Bearer …` header value.
    pub(crate) async fn header(&self) -> Result<HeaderValue, AuthError> {
        if let Some(h) = self.fresh() {
            return Ok(h);
        }
        let _guard = self.refreshing.lock().await;
        if let Some(h) = self.fresh() {
            return Ok(h);
        }
        let token = self.provider.token(&[self.scope.as_str()]).await?;
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.token.expose_secret()))
            .map_err(|_| {
            AuthError::Rejected("token contains invalid header characters".into())
        })?;
        value.set_sensitive(true);
        let refresh_at = self.refresh_at(token.expires_at);
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((value.clone(), refresh_at));
        Ok(value)
    }

    /// Forgets the cached token (here and in the provider) after the service rejected it.
    pub(crate) fn invalidate(&self, rejected: &HeaderValue) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        // Another task may already have replaced it; keep the newer one.
        if cur.as_ref().is_some_and(|(h, _)| h == rejected) {
            *cur = None;
            self.provider.invalidate(&[self.scope.as_str()]);
        }
    }

    pub(crate) fn describe(&self) -> String {
        self.provider.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabrik_core::time::ManualClock;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug)]
    struct Counting {
        clock: ManualClock,
        life: Duration,
        calls: AtomicU32,
    }

    #[async_trait]
    impl TokenProvider for Counting {
        async fn token(&self, scopes: &[&str]) -> Result<AccessToken, AuthError> {
            assert_eq!(scopes, [FABRIC_SCOPE]);
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(AccessToken {
                token: SecretString::from(format!("secret-{n}")),
                expires_at: self.clock.system_now() + self.life,
            })
        }
        fn describe(&self) -> String {
            "counting".into()
        }
    }

    fn cache(life: Duration) -> (TokenCache, Arc<Counting>, ManualClock) {
        let clock = ManualClock::new();
        let provider = Arc::new(Counting {
            clock: clock.clone(),
            life,
            calls: AtomicU32::new(0),
        });
        let cache = TokenCache::new(
            provider.clone(),
            FABRIC_SCOPE.into(),
            Duration::from_secs(120),
            Arc::new(clock.clone()),
        );
        (cache, provider, clock)
    }

    #[tokio::test]
    async fn refreshes_before_expiry_or_at_half_life_for_short_tokens() {
        let (c, p, clock) = cache(Duration::from_secs(3600));
        let h = c.header().await.unwrap();
        assert!(h.is_sensitive());
        assert_eq!(h.to_str().unwrap(), "Bearer secret-0");
        clock.advance(Duration::from_secs(3479));
        c.header().await.unwrap();
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            c.header().await.unwrap().to_str().unwrap(),
            "Bearer secret-1"
        );

        let (c, p, clock) = cache(Duration::from_secs(60));
        c.header().await.unwrap();
        clock.advance(Duration::from_secs(29));
        c.header().await.unwrap();
        assert_eq!(
            p.calls.load(Ordering::SeqCst),
            1,
            "a 60 s token is kept for 30 s"
        );
        clock.advance(Duration::from_secs(1));
        c.header().await.unwrap();
        assert_eq!(p.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn invalidate_forgets_only_the_rejected_token() {
        let (c, p, _clock) = cache(Duration::from_secs(3600));
        let old = c.header().await.unwrap();
        c.invalidate(&old);
        let new = c.header().await.unwrap();
        assert_ne!(old, new);
        // A late invalidation of the old token must not throw away the new one.
        c.invalidate(&old);
        assert_eq!(c.header().await.unwrap(), new);
        assert_eq!(p.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn static_provider_never_prints_its_token() {
        let p = StaticTokenProvider::never_expiring(SecretString::from("hunter2".to_owned()));
        assert!(!format!("{p:?}").contains("hunter2"));
        assert!(StaticTokenProvider::from_env("FABRIK_SURELY_UNSET_VAR").is_err());
    }
}
