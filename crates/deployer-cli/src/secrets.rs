//! `${secret:NAME}` references: resolved before validation through fabrik-secrets (Key Vault
//! when the flag is on, then the environment, then `.env` beside the config), and redacted
//! from everything the command prints.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use fabrik_core::secret::ExposeSecret;
use fabrik_core::{Flag, SecretProvider};

use crate::config::{self, SecretValue};

/// Every secret this process resolved, (name, value), longest value first so a value that
/// contains another is replaced whole. Values only accumulate: a rotated secret's old value
/// stays redacted.
static VALUES: RwLock<Vec<(String, String)>> = RwLock::new(Vec::new());

fn known() -> Vec<(String, String)> {
    VALUES.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Registers a resolved secret for redaction. Values shorter than 4 characters would redact
/// innocent text; such values are not secret.
pub fn register(name: &str, value: &str) {
    if value.len() < 4 {
        return;
    }
    let mut v = VALUES.write().unwrap_or_else(|p| p.into_inner());
    if !v.iter().any(|(n, x)| n == name && x == value) {
        v.push((name.to_string(), value.to_string()));
        v.sort_by_key(|(_, x)| std::cmp::Reverse(x.len()));
    }
}

/// Replaces every resolved secret value in `text` with `[secret]`: the one redaction path for
/// everything fabrik prints or writes for people (terminal, report, plan).
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    for (_, v) in known() {
        out = out.replace(v.as_str(), "[secret]");
    }
    out
}

/// Replaces secret values with their `${secret:NAME}` references: what journals keep, so an
/// undo record never holds a secret yet can be restored by a process that resolves it again.
pub fn to_references(text: &str) -> String {
    let mut out = text.to_string();
    for (n, v) in known() {
        out = out.replace(v.as_str(), &format!("${{secret:{n}}}"));
    }
    out
}

/// Puts the values back into `${secret:NAME}` references; the name of a secret this process
/// has not resolved is the error.
pub fn from_references(text: &str) -> Result<String, String> {
    resolve_references(text, "${secret:")
}

/// Replaces every `{opening}NAME}` in `text` with the value of NAME: a secret this process
/// resolved, or for `env:VAR` (a parameter.yml `$ENV:` value) the variable itself. The first
/// name without a value is the error.
fn resolve_references(text: &str, opening: &str) -> Result<String, String> {
    let values = known();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(opening) {
        out.push_str(&rest[..start]);
        let after = &rest[start + opening.len()..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let value = values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .or_else(|| {
                name.strip_prefix("env:")
                    .and_then(|v| std::env::var(v).ok())
            });
        match value {
            Some(v) => out.push_str(&v),
            None => return Err(name.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Applies `f` to every string in `undo` (through its JSON form, so no variant is missed).
fn map_strings<E>(
    undo: &fabrik_core::Undo,
    f: &dyn Fn(&str) -> Result<String, E>,
) -> Result<fabrik_core::Undo, E> {
    fn walk<E>(v: &mut serde_json::Value, f: &dyn Fn(&str) -> Result<String, E>) -> Result<(), E> {
        match v {
            serde_json::Value::String(s) => *s = f(s)?,
            serde_json::Value::Array(a) => a.iter_mut().try_for_each(|x| walk(x, f))?,
            serde_json::Value::Object(m) => m.values_mut().try_for_each(|x| walk(x, f))?,
            _ => {}
        }
        Ok(())
    }
    let Ok(mut v) = serde_json::to_value(undo) else {
        return Ok(undo.clone());
    };
    walk(&mut v, f)?;
    Ok(serde_json::from_value(v).unwrap_or_else(|_| undo.clone()))
}

/// The reference a secret value becomes inside a journaled definition part (decoded text):
/// spelled apart from `${secret:…}`, which a notebook may well contain as text of its own.
const IN_DEFINITION: &str = "${fabrik-secret:";

/// Applies `f` to the decoded text of every definition part an undo payload holds (its
/// `parts` array, by [`Undo`](fabrik_core::Undo)'s convention): their payloads are base64,
/// which a secret value inside would hide from the string pass.
fn map_definition_parts<E>(
    mut undo: fabrik_core::Undo,
    f: &dyn Fn(&str) -> Result<String, E>,
) -> Result<fabrik_core::Undo, E> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some(parts) = undo
        .payload
        .get_mut("parts")
        .and_then(serde_json::Value::as_array_mut)
    else {
        return Ok(undo);
    };
    for p in parts {
        let Some(payload) = p.get_mut("payload") else {
            continue;
        };
        let Some(Ok(text)) = payload
            .as_str()
            .and_then(|s| b64.decode(s.as_bytes()).ok())
            .map(String::from_utf8)
        else {
            continue;
        };
        let mapped = f(&text)?;
        if mapped != text {
            *payload = serde_json::Value::String(b64.encode(mapped.as_bytes()));
        }
    }
    Ok(undo)
}

/// Secret values in decoded definition text replaced by `${fabrik-secret:NAME}`.
fn definition_to_references(text: &str) -> String {
    let mut out = text.to_string();
    for (n, v) in known() {
        out = out.replace(v.as_str(), &format!("{IN_DEFINITION}{n}}}"));
    }
    out
}

/// `${fabrik-secret:NAME}` in decoded definition text resolved (see [`resolve_references`]).
fn definition_from_references(text: &str) -> Result<String, String> {
    resolve_references(text, IN_DEFINITION)
}

/// `undo` with secret values replaced by their references (what the journal records), in its
/// strings and in the text of the definition parts it restores.
pub fn undo_to_references(undo: &fabrik_core::Undo) -> fabrik_core::Undo {
    let r: Result<_, std::convert::Infallible> = map_strings(undo, &|s| Ok(to_references(s)))
        .and_then(|u| map_definition_parts(u, &|t| Ok(definition_to_references(t))));
    r.unwrap_or_else(|e| match e {})
}

/// `undo` with its references resolved; the unresolved secret's name is the error.
pub fn undo_from_references(undo: &fabrik_core::Undo) -> Result<fabrik_core::Undo, String> {
    map_definition_parts(
        map_strings(undo, &from_references)?,
        &definition_from_references,
    )
}

/// An undoer that resolves `${secret:NAME}` references in undo records before the real undoer
/// runs them; a record needing a secret this process cannot resolve fails, naming it, rather
/// than restoring the reference's text.
#[derive(Debug)]
pub struct ResolvingUndoer<U>(pub U);

#[async_trait::async_trait]
impl<U: fabrik_core::Undoer> fabrik_core::Undoer for ResolvingUndoer<U> {
    async fn undo(
        &self,
        undo: &fabrik_core::Undo,
    ) -> Result<fabrik_core::UndoOutcome, fabrik_core::UndoError> {
        match undo_from_references(undo) {
            Ok(u) => self.0.undo(&u).await,
            Err(name) => Err(fabrik_core::UndoError {
                message: format!(
                    "the undo record needs secret '{name}': resolve it (run from the project with the secret available) and run `fabrik rollback` again"
                ),
                class: fabrik_core::ErrorClass::Permanent,
            }),
        }
    }
}

/// Resolves the config's secret references; a failure becomes a `Missing` that the loader
/// reports at the reference's position.
pub async fn resolve(
    config_path: &Path,
    flags: &fabrik_flags::Flags,
    auth: Option<&str>,
    ca_cert: Option<&Path>,
) -> BTreeMap<String, SecretValue> {
    let text = std::fs::read_to_string(config_path).unwrap_or_default();
    let names = config::secret_references(&text);
    resolve_names(names, config_path, flags, auth, ca_cert).await
}

/// Resolves `names` through the providers [`resolve`] uses (`.env` beside `config_path`) and
/// registers each value for redaction: the state key's references go through here too.
pub async fn resolve_names(
    names: Vec<String>,
    config_path: &Path,
    flags: &fabrik_flags::Flags,
    auth: Option<&str>,
    ca_cert: Option<&Path>,
) -> BTreeMap<String, SecretValue> {
    let mut out = BTreeMap::new();
    if names.is_empty() {
        return out;
    }
    let env: Arc<dyn fabrik_secrets::Env> = Arc::new(fabrik_secrets::ProcessEnv);
    let keyvault = flags.is_on(Flag::AzureKeyVault);
    let azure = if keyvault {
        let method = auth.and_then(|a| fabrik_secrets::credential::parse_method(a).ok().flatten());
        let mut options = match fabrik_secrets::AzureOptions::from_env(env.as_ref()) {
            Ok(o) => o,
            Err(e) => return missing_all(&names, &e.to_string()),
        };
        if let Some(ca) = ca_cert {
            match options.with_extra_ca_file(ca) {
                Ok(o) => options = o,
                Err(e) => return missing_all(&names, &e.to_string()),
            }
        }
        match fabrik_secrets::AzureAuth::from_env(
            method,
            None,
            env.as_ref(),
            &options,
            Arc::new(fabrik_core::SystemClock),
        ) {
            Ok(a) => Some(a),
            Err(e) => {
                return missing_all(
                    &names,
                    &format!("Key Vault is on but no Azure credential: {e}"),
                );
            }
        }
    } else {
        None
    };
    let options = fabrik_secrets::SecretsOptions {
        keyvault_enabled: keyvault,
        dotenv: Some(config_path.parent().unwrap_or(Path::new(".")).join(".env")),
        defaults: Default::default(),
    };
    let provider = match fabrik_secrets::build_secrets(
        env,
        &options,
        azure.as_ref(),
        Arc::new(fabrik_core::SystemClock),
    ) {
        Ok(p) => p,
        Err(e) => return missing_all(&names, &e.to_string()),
    };
    for name in names {
        let v = match provider.get_secret(&name).await {
            Ok(Some(s)) => {
                register(&name, s.expose_secret());
                SecretValue::Value(s.expose_secret().to_string())
            }
            Ok(None) => SecretValue::Missing(format!(
                "secret '{name}' not found ({})",
                provider.describe()
            )),
            Err(e) => SecretValue::Missing(e.to_string()),
        };
        out.insert(name, v);
    }
    out
}

fn missing_all(names: &[String], why: &str) -> BTreeMap<String, SecretValue> {
    names
        .iter()
        .map(|n| {
            (
                n.clone(),
                SecretValue::Missing(format!("secret '{n}' could not be read: {why}")),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_inside_a_journaled_definition_is_a_reference_and_comes_back_on_undo() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        register("env:FABRIK_TEST_DB_PW", "pw-Zq81xk");
        let part = |text: &str| fabrik_core::resource::DefinitionPart {
            path: "notebook-content.py".into(),
            payload: b64.encode(text),
        };
        let undo = crate::engine::kinds::item::ItemUndo::RestoreDefinition {
            workspace_id: "w".into(),
            item_id: "i".into(),
            // A notebook that also holds `${secret:…}` text of its own, left alone.
            parts: vec![part("conn = 'pw-Zq81xk' # ${secret:not-ours}")],
            format: None,
        }
        .record();
        let journaled = undo_to_references(&undo);
        let json = serde_json::to_string(&journaled).unwrap();
        let crate::engine::kinds::item::ItemUndo::RestoreDefinition { parts, .. } =
            journaled.payload_as().unwrap()
        else {
            panic!("{json}");
        };
        let text = String::from_utf8(b64.decode(&parts[0].payload).unwrap()).unwrap();
        assert_eq!(
            text,
            "conn = '${fabrik-secret:env:FABRIK_TEST_DB_PW}' # ${secret:not-ours}"
        );
        assert!(!json.contains("pw-Zq81xk") && !json.contains(&b64.encode("pw-Zq81xk")));
        assert_eq!(undo_from_references(&journaled).unwrap(), undo);
        // A later process that never registered it resolves `env:` from the variable.
        assert_eq!(
            definition_from_references("${fabrik-secret:env:FABRIK_TEST_UNSET_VAR}"),
            Err("env:FABRIK_TEST_UNSET_VAR".into())
        );
    }

    #[test]
    fn values_become_references_and_references_values_again() {
        register("api-key", "sk-live-0123");
        let text = "key sk-live-0123 and again sk-live-0123";
        assert_eq!(redact(text), "key [secret] and again [secret]");
        let r = to_references(text);
        assert_eq!(r, "key ${secret:api-key} and again ${secret:api-key}");
        assert_eq!(from_references(&r).unwrap(), text);
        assert_eq!(
            from_references("${secret:unknown} x"),
            Err("unknown".into())
        );
        let undo = crate::engine::kinds::workspace::WorkspaceUndo::Restore {
            workspace_id: "w".into(),
            display_name: "n".into(),
            description: "key sk-live-0123".into(),
        }
        .record();
        let journaled = undo_to_references(&undo);
        assert!(
            !serde_json::to_string(&journaled)
                .unwrap()
                .contains("sk-live")
        );
        assert_eq!(undo_from_references(&journaled).unwrap(), undo);
    }
}
