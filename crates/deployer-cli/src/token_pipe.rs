//! Tokens from the process that started fabrik, asked for over two inherited pipes.
//!
//! `FABRIK_TOKEN_PIPE=IN,OUT` names two file descriptors the parent left open: fabrik writes
//! one request line to `OUT` each time it needs a token, and reads one answer line from `IN`.
//! The Python package `fabrik_cicd` uses it to hand over tokens from a credential object
//! (`get_token(scope)`) that only the parent holds: no token is ever on the command line or
//! in the environment, and a token that expires mid-run is replaced by asking again (the
//! client's token cache asks before expiry, and again after a 401).
//!
//! Protocol, one JSON object per line:
//! - request: `{"scopes": ["https://api.fabric.microsoft.com/.default"]}`
//! - answer: `{"token": "…", "expires_on": UNIX_SECONDS}` or `{"error": "why"}`
//!
//! The descriptors are opened through `/dev/fd/N` (Linux, macOS), so no unsafe code is needed.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use fabrik_core::{AccessToken, AuthError, TokenProvider};
use secrecy::SecretString;

/// The environment variable naming the two descriptors, `IN,OUT`.
pub const ENV: &str = "FABRIK_TOKEN_PIPE";

/// A [`TokenProvider`] that asks the parent process for every token.
pub struct PipeTokenProvider {
    pipe: Arc<Mutex<(BufReader<File>, File)>>,
}

impl std::fmt::Debug for PipeTokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipeTokenProvider").finish_non_exhaustive()
    }
}

impl PipeTokenProvider {
    /// The provider `FABRIK_TOKEN_PIPE` describes, `None` when it is not set.
    pub fn from_env() -> Option<Result<Self, String>> {
        let spec = std::env::var(ENV).ok()?;
        Some(Self::open(&spec))
    }

    /// Opens `IN,OUT` (two descriptor numbers).
    pub fn open(spec: &str) -> Result<Self, String> {
        let bad = || format!("{ENV} must be two file descriptors `IN,OUT`, not `{spec}`");
        let (input, output) = spec.split_once(',').ok_or_else(bad)?;
        let fd = |s: &str| s.trim().parse::<u32>().map_err(|_| bad());
        let (input, output) = (fd(input)?, fd(output)?);
        let reader = File::open(format!("/dev/fd/{input}"))
            .map_err(|e| format!("{ENV}: cannot open descriptor {input}: {e}"))?;
        let writer = OpenOptions::new()
            .write(true)
            .open(format!("/dev/fd/{output}"))
            .map_err(|e| format!("{ENV}: cannot open descriptor {output}: {e}"))?;
        Ok(Self {
            pipe: Arc::new(Mutex::new((BufReader::new(reader), writer))),
        })
    }

    /// Writes `request` and reads the answer line (blocking; one exchange at a time).
    fn exchange(pipe: &Mutex<(BufReader<File>, File)>, request: &str) -> Result<String, AuthError> {
        let lost = |e: std::io::Error| {
            AuthError::Unavailable(format!("the token pipe to the parent process failed: {e}"))
        };
        let mut guard = pipe.lock().unwrap_or_else(|p| p.into_inner());
        let (reader, writer) = &mut *guard;
        writer.write_all(request.as_bytes()).map_err(lost)?;
        writer.write_all(b"\n").map_err(lost)?;
        writer.flush().map_err(lost)?;
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(lost)? == 0 {
            return Err(AuthError::Unavailable(
                "the parent process closed the token pipe".into(),
            ));
        }
        Ok(line)
    }
}

/// An answer line read as a token, or the error the parent reported.
fn parse_answer(line: &str) -> Result<AccessToken, AuthError> {
    let v: serde_json::Value = serde_json::from_str(line.trim())
        .map_err(|e| AuthError::Unavailable(format!("unreadable answer on the token pipe: {e}")))?;
    if let Some(err) = v.get("error").and_then(|e| e.as_str()) {
        return Err(AuthError::Rejected(format!("the credential failed: {err}")));
    }
    let token = v
        .get("token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AuthError::Unavailable("no token in the token pipe's answer".into()))?;
    let expires_on = v
        .get("expires_on")
        .and_then(serde_json::Value::as_f64)
        .filter(|s| *s > 0.0)
        .ok_or_else(|| AuthError::Unavailable("no expires_on in the token pipe's answer".into()))?;
    Ok(AccessToken {
        token: SecretString::from(token.to_owned()),
        expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(expires_on),
    })
}

#[async_trait]
impl TokenProvider for PipeTokenProvider {
    async fn token(&self, scopes: &[&str]) -> Result<AccessToken, AuthError> {
        let request = serde_json::json!({ "scopes": scopes }).to_string();
        let pipe = Arc::clone(&self.pipe);
        let line = tokio::task::spawn_blocking(move || Self::exchange(&pipe, &request))
            .await
            .map_err(|e| AuthError::Unavailable(format!("token pipe task: {e}")))??;
        parse_answer(&line)
    }

    fn describe(&self) -> String {
        "tokens from the parent process (FABRIK_TOKEN_PIPE)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_into_tokens_or_errors() {
        let t = parse_answer("{\"token\": \"abc\", \"expires_on\": 1700000000}\n").unwrap();
        assert_eq!(
            t.expires_at,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        let e =
            parse_answer("{\"error\": \"CredentialUnavailableError: no az login\"}").unwrap_err();
        assert!(e.to_string().contains("no az login"), "{e}");
        assert!(parse_answer("{\"token\": \"abc\"}").is_err());
        assert!(parse_answer("not json").is_err());
    }

    #[test]
    fn a_bad_spec_is_refused_with_the_variable_named() {
        for spec in ["", "3", "a,b", "3;4"] {
            let err = PipeTokenProvider::open(spec).unwrap_err();
            assert!(err.contains(ENV), "{err}");
        }
    }

    /// A round trip through real files standing in for the pipes: the request is written,
    /// the prepared answer read.
    #[tokio::test]
    async fn asks_over_out_and_reads_in() {
        let dir = tempfile::tempdir().unwrap();
        let answers = dir.path().join("in");
        let requests = dir.path().join("out");
        std::fs::write(
            &answers,
            "{\"token\": \"t1\", \"expires_on\": 4102444800}\n{\"error\": \"gone\"}\n",
        )
        .unwrap();
        std::fs::write(&requests, "").unwrap();
        let provider = PipeTokenProvider {
            pipe: Arc::new(Mutex::new((
                BufReader::new(File::open(&answers).unwrap()),
                OpenOptions::new().append(true).open(&requests).unwrap(),
            ))),
        };
        let scope = "https://api.fabric.microsoft.com/.default";
        let first = provider.token(&[scope]).await.unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(&first.token), "t1");
        assert!(provider.token(&[scope]).await.is_err());
        let third = provider.token(&[scope]).await.unwrap_err();
        assert!(third.to_string().contains("closed"), "{third}");
        let sent = std::fs::read_to_string(&requests).unwrap();
        assert_eq!(sent.lines().count(), 3);
        assert_eq!(
            sent.lines().next().unwrap(),
            format!("{{\"scopes\":[\"{scope}\"]}}")
        );
    }
}
