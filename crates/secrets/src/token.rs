//! The adapter from azure_core's `TokenCredential` to fabrik-core's [`TokenProvider`]: caches
//! tokens per scope set, refreshes them before they expire, and lets concurrent callers share
//! one request.
//!
//! A token is refreshed once less than `min(margin, lifetime / 2)` remains (margin 5 minutes),
//! so a short-lived token is still reused for half its life. Time comes from an injected
//! [`Clock`]. If a refresh fails while the old token is still valid, the old token is used.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use fabrik_core::{AccessToken, AuthError, Clock, SecretString, TokenProvider};

use crate::credential::{AzureCredential, is_rejection};
use crate::error_chain;

/// Default time before expiry at which a token is renewed.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Bearer tokens from an Azure credential, cached and refreshed before expiry.
pub struct AzureTokenProvider {
    credential: AzureCredential,
    clock: Arc<dyn Clock>,
    margin: Duration,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

#[derive(Clone)]
struct Cached {
    token: AccessToken,
    refresh_at: SystemTime,
}

impl fmt::Debug for AzureTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureTokenProvider")
            .field("identity", &self.credential.describe())
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl AzureTokenProvider {
    /// Serves tokens from `credential`, using `clock` for expiry.
    pub fn new(credential: AzureCredential, clock: Arc<dyn Clock>) -> Self {
        Self::with_margin(credential, clock, DEFAULT_REFRESH_MARGIN)
    }

    /// Like [`new`](Self::new) with a custom refresh margin.
    pub fn with_margin(
        credential: AzureCredential,
        clock: Arc<dyn Clock>,
        margin: Duration,
    ) -> Self {
        Self {
            credential,
            clock,
            margin,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The underlying credential (for SDK clients such as Key Vault).
    pub fn credential(&self) -> &AzureCredential {
        &self.credential
    }

    fn slot(&self, key: &str) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_owned())
            .or_default()
            .clone()
    }

    async fn fetch(&self, scopes: &[&str]) -> Result<Cached, AuthError> {
        let sdk = self.credential.sdk();
        let t = sdk.get_token(scopes, None).await.map_err(|e| {
            let e = to_auth_error(&e);
            tracing::warn!(identity = %self.credential.describe(), scopes = ?scopes, error = %e, "token request failed");
            e
        })?;
        let expires_at = SystemTime::from(t.expires_on);
        let now = self.clock.system_now();
        let lifetime = expires_at.duration_since(now).unwrap_or_default();
        tracing::debug!(identity = %self.credential.describe(), scopes = ?scopes,
            expires_in_secs = lifetime.as_secs(), "token acquired");
        let refresh_at = expires_at - self.margin.min(lifetime / 2);
        Ok(Cached {
            token: AccessToken {
                token: SecretString::from(t.token.secret().to_owned()),
                expires_at,
            },
            refresh_at,
        })
    }
}

/// Maps an SDK failure: refused by Entra ID → `Rejected`; network or server trouble →
/// `Transport` (retryable); anything else (not configured, no CLI) → `Unavailable`.
pub(crate) fn to_auth_error(e: &azure_core::Error) -> AuthError {
    let text = error_chain(e);
    if is_rejection(e) {
        return AuthError::Rejected(text);
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(az) = err.downcast_ref::<azure_core::Error>() {
            use azure_core::error::ErrorKind as K;
            match az.kind() {
                K::Io | K::Connection => return AuthError::Transport(text),
                K::HttpResponse { .. } => return AuthError::Transport(text),
                _ => {}
            }
        }
        if err.downcast_ref::<reqwest::Error>().is_some()
            || err.downcast_ref::<std::io::Error>().is_some()
        {
            return AuthError::Transport(text);
        }
        cur = err.source();
    }
    AuthError::Unavailable(text)
}

#[async_trait]
impl TokenProvider for AzureTokenProvider {
    async fn token(&self, scopes: &[&str]) -> Result<AccessToken, AuthError> {
        let key = scopes.join(" ");
        let slot = self.slot(&key);
        // One caller per scope set fetches; the rest wait on this lock and reuse its result.
        let mut guard = slot.lock().await;
        let now = self.clock.system_now();
        if let Some(c) = guard.as_ref()
            && now < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        match self.fetch(scopes).await {
            Ok(c) => {
                let token = c.token.clone();
                *guard = Some(c);
                Ok(token)
            }
            Err(e) => match guard.as_ref() {
                Some(c) if now < c.token.expires_at => {
                    tracing::warn!(error = %e, "token refresh failed; using the still-valid token");
                    Ok(c.token.clone())
                }
                _ => Err(e),
            },
        }
    }

    fn invalidate(&self, scopes: &[&str]) {
        let key = scopes.join(" ");
        if let Some(slot) = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && let Ok(mut g) = slot.try_lock()
        {
            *g = None;
        }
    }

    fn describe(&self) -> String {
        self.credential.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::credentials::{TokenCredential, TokenRequestOptions};
    use azure_core::time::OffsetDateTime;
    use fabrik_core::secret::ExposeSecret;
    use fabrik_core::time::ManualClock;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Issues `tok-N` valid for `lifetime` from the manual clock's now.
    #[derive(Debug)]
    struct Fake {
        clock: ManualClock,
        lifetime: Duration,
        calls: AtomicU64,
    }

    #[async_trait]
    impl TokenCredential for Fake {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<azure_core::credentials::AccessToken> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::task::yield_now().await;
            let exp =
                OffsetDateTime::from(fabrik_core::Clock::system_now(&self.clock) + self.lifetime);
            Ok(azure_core::credentials::AccessToken::new(
                format!("tok-{n}"),
                exp,
            ))
        }
    }

    fn provider(lifetime: u64) -> (Arc<Fake>, ManualClock, Arc<AzureTokenProvider>) {
        let clock = ManualClock::new();
        let fake = Arc::new(Fake {
            clock: clock.clone(),
            lifetime: Duration::from_secs(lifetime),
            calls: AtomicU64::new(0),
        });
        let cred = AzureCredential::from_sdk(fake.clone(), "fake identity");
        (
            fake,
            clock.clone(),
            Arc::new(AzureTokenProvider::new(cred, Arc::new(clock))),
        )
    }

    async fn tok(p: &AzureTokenProvider) -> String {
        p.token(&["s/.default"])
            .await
            .unwrap()
            .token
            .expose_secret()
            .to_owned()
    }

    #[tokio::test]
    async fn tokens_are_reused_until_the_refresh_margin_then_renewed() {
        let (fake, clock, p) = provider(3600);
        assert_eq!(tok(&p).await, "tok-1");
        clock.advance(Duration::from_secs(3600 - 301));
        assert_eq!(tok(&p).await, "tok-1");
        clock.advance(Duration::from_secs(2)); // 299 s left < 5 min margin
        assert_eq!(tok(&p).await, "tok-2");
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
        p.invalidate(&["s/.default"]);
        assert_eq!(tok(&p).await, "tok-3");
        assert_eq!(p.describe(), "fake identity");
    }

    #[tokio::test]
    async fn short_lived_tokens_are_renewed_at_half_life() {
        let (_, clock, p) = provider(120);
        assert_eq!(tok(&p).await, "tok-1");
        clock.advance(Duration::from_secs(59));
        assert_eq!(tok(&p).await, "tok-1");
        clock.advance(Duration::from_secs(1));
        assert_eq!(tok(&p).await, "tok-2");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_callers_share_one_request() {
        let (fake, _, p) = provider(3600);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let p = p.clone();
                tokio::spawn(async move { tok(&p).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), "tok-1");
        }
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    }
}
