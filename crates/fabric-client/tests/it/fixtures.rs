//! Shared helpers: where ../shared is, and a strict "reads and loses nothing" check.

use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The project's shared reference folder (`../shared` from the workspace root).
pub(crate) fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// Deserializes `body` as `T`, then checks that serializing it back keeps every field the
/// service sent (nulls and empty lists aside), so a model can't silently drop data.
pub(crate) fn reads_losslessly<T>(body: &Value) -> Result<(), String>
where
    T: DeserializeOwned + Serialize,
{
    let typed: T = serde_json::from_value(body.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut lost = Vec::new();
    missing(body, &back, "$", &mut lost);
    if lost.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fields lost on the way through the model: {lost:?}"
        ))
    }
}

fn missing(sent: &Value, kept: &Value, path: &str, lost: &mut Vec<String>) {
    match (sent, kept) {
        (Value::Object(s), Value::Object(k)) => {
            for (key, v) in s {
                if v.is_null() || v.as_array().is_some_and(|a| a.is_empty()) {
                    continue;
                }
                match k.get(key) {
                    Some(kv) => missing(v, kv, &format!("{path}.{key}"), lost),
                    None => lost.push(format!("{path}.{key}")),
                }
            }
        }
        (Value::Array(s), Value::Array(k)) => {
            for (i, (sv, kv)) in s.iter().zip(k).enumerate() {
                missing(sv, kv, &format!("{path}[{i}]"), lost);
            }
        }
        _ => {}
    }
}
