//! Small shared pieces: the JSON content type, the Fabric timestamp format, seeded ids,
//! a stable content hash and keyset pagination.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use fabrik_core::RandomSource;
use http::HeaderValue;
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;

/// The content type the real service sends on every JSON response.
pub(crate) static JSON: LazyLock<HeaderValue> =
    LazyLock::new(|| HeaderValue::from_static("application/json; charset=utf-8"));

/// A timestamp as the real service writes it: UTC, no zone suffix, seven fractional digits
/// (`2026-06-25T11:15:43.5469603`, from the recorded trace).
pub(crate) fn fabric_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let dt = time::OffsetDateTime::from_unix_timestamp(d.as_secs() as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        d.subsec_nanos() / 100
    )
}

/// `t + d`, saturating at the year 9999 instead of panicking on overflow (a huge
/// `--lro-delay` or token lifetime must not crash a request).
pub(crate) fn later(t: SystemTime, d: Duration) -> SystemTime {
    t.checked_add(d)
        .unwrap_or(UNIX_EPOCH + Duration::from_secs(253_402_300_799))
}

/// `M/D/YYYY h:mm:ss AM` as in the real throttling message.
pub(crate) fn us_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let dt = time::OffsetDateTime::from_unix_timestamp(d.as_secs() as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (h, ampm) = match dt.hour() {
        0 => (12, "AM"),
        h @ 1..=11 => (h, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    format!(
        "{}/{}/{} {}:{:02}:{:02} {}",
        u8::from(dt.month()),
        dt.day(),
        dt.year(),
        h,
        dt.minute(),
        dt.second(),
        ampm
    )
}

/// A version-4 UUID from a seeded source, so ids are reproducible with `--seed`.
pub(crate) fn uuid_from(rng: &dyn RandomSource) -> Uuid {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    b[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
    uuid::Builder::from_random_bytes(b).into_uuid()
}

/// 40 hex digits, the shape of a git commit hash.
pub(crate) fn commit_hash(rng: &dyn RandomSource) -> String {
    let mut s = String::with_capacity(40);
    for _ in 0..3 {
        s.push_str(&format!("{:016x}", rng.next_u64()));
    }
    s.truncate(40);
    s
}

/// FNV-1a 64: a content fingerprint that is stable across runs and Rust versions (std's
/// hasher is not), so git change detection survives a `--state` round trip.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Parses a path id; anything that is not a UUID names nothing, so it is "not found".
pub(crate) fn parse_id(raw: &str, code: &'static str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(code, what, raw))
}

/// Parses an optional UUID field of a request body.
pub(crate) fn parse_opt_uuid(field: &str, raw: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    match raw {
        // The real service takes `"folderId": ""` (fabric-cicd sends it) as "no folder".
        None | Some("") => Ok(None),
        Some(s) => Uuid::parse_str(s).map(Some).map_err(|_| {
            ApiError::bad_body(format!("The value '{s}' of '{field}' is not a valid GUID"))
        }),
    }
}

/// A parsed request body, with serde's complaint turned into the service's 400 shape.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let trimmed = body.iter().all(u8::is_ascii_whitespace);
    if trimmed {
        return Err(ApiError::bad_body("The request body is missing"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_body(format!("Invalid request body: {e}")))
}

/// Like [`parse_body`] but an empty body means `T::default()` (optional bodies).
pub(crate) fn parse_opt_body<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_body(body)
}

/// A boolean query parameter (`true`/`false`, case-insensitive).
pub(crate) fn query_bool(
    q: &std::collections::HashMap<String, String>,
    name: &str,
) -> Result<Option<bool>, ApiError> {
    match q.get(name) {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(v) => Err(ApiError::invalid_input(
            "InvalidParameter",
            format!("The value '{v}' of query parameter '{name}' is not a boolean"),
        )),
    }
}

fn encode_token(id: &Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode_token(token: &str) -> Result<Uuid, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| Uuid::from_slice(&b).ok())
        .ok_or_else(|| {
            ApiError::invalid_input(
                "InvalidContinuationToken",
                format!("The continuation token '{token}' is not valid"),
            )
        })
}

/// The page of a listing that follows the query's `continuationToken`.
#[derive(Debug)]
pub(crate) struct PageRequest {
    after: Option<Uuid>,
    size: usize,
    /// `{origin}{path}?{other query params}` without the token, for `continuationUri`.
    base_uri: String,
}

impl PageRequest {
    pub(crate) fn new(
        origin: &str,
        path: &str,
        query: &std::collections::HashMap<String, String>,
        size: usize,
    ) -> Result<Self, ApiError> {
        let after = query
            .get("continuationToken")
            .map(|t| decode_token(t))
            .transpose()?;
        let mut keys: Vec<_> = query.keys().filter(|k| *k != "continuationToken").collect();
        keys.sort();
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for k in keys {
            ser.append_pair(k, &query[k]);
        }
        let rest = ser.finish();
        let base_uri = if rest.is_empty() {
            format!("{origin}{path}?")
        } else {
            format!("{origin}{path}?{rest}&")
        };
        Ok(Self {
            after,
            size: size.max(1),
            base_uri,
        })
    }

    /// Builds `{value, continuationToken?, continuationUri?}` from entries sorted by id.
    /// Keyset pagination: the token names the last id returned, so inserts and deletes
    /// between pages neither repeat nor skip the entries that stay.
    pub(crate) fn page<'a>(
        &self,
        key: &str,
        sorted: impl Iterator<Item = (&'a Uuid, Value)>,
    ) -> Value {
        let mut out = Vec::with_capacity(self.size.min(1024));
        let mut last = None;
        let mut more = false;
        for (id, v) in sorted {
            if let Some(after) = &self.after
                && id <= after
            {
                continue;
            }
            if out.len() == self.size {
                more = true;
                break;
            }
            last = Some(*id);
            out.push(v);
        }
        let mut body = serde_json::Map::new();
        body.insert(key.to_string(), Value::Array(out));
        if let (true, Some(last)) = (more, last) {
            let token = encode_token(&last);
            body.insert(
                "continuationUri".into(),
                Value::String(format!("{}continuationToken={token}", self.base_uri)),
            );
            body.insert("continuationToken".into(), Value::String(token));
        }
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fabric_time_has_seven_fraction_digits_and_no_zone() {
        let t = UNIX_EPOCH + Duration::new(1_782_386_143, 546_960_300);
        assert_eq!(fabric_time(t), "2026-06-25T11:15:43.5469603");
        assert_eq!(us_time(t), "6/25/2026 11:15:43 AM");
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn bad_continuation_token_is_invalid_input() {
        let q = [("continuationToken".to_string(), "!!".to_string())].into();
        let e = PageRequest::new("http://x", "/v1/workspaces", &q, 10).unwrap_err();
        assert_eq!(e.code, "InvalidInput");
        assert!(e.details[0].message.contains("!!"));
    }
}
