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

/// Values of secrets as a previous run deployed them, learned by matching the deployed
/// record's templates against what is deployed ([`learn`]), (name, value). A rollback
/// restores these first: they are what the undo records stood for.
static LEARNED: RwLock<Vec<(String, String)>> = RwLock::new(Vec::new());

/// Whole deployed values of fields rendered from secrets, (value, template): shown as
/// `(sensitive)`, journaled as their template.
static SENSITIVE: RwLock<Vec<(String, String)>> = RwLock::new(Vec::new());

/// How a deployed value rendered from secrets is shown.
pub const SENSITIVE_SHOWN: &str = "(sensitive)";

/// Every (name, value) this process knows, learned values first (see [`LEARNED`]).
fn known() -> Vec<(String, String)> {
    let mut all = LEARNED.read().unwrap_or_else(|p| p.into_inner()).clone();
    all.extend(
        VALUES
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned(),
    );
    all
}

/// What to replace in text, longest value first so a value containing another is replaced
/// whole: (value, how it is shown, what a journal keeps in its place — `opening` + name + `}`
/// for a secret, the template for a whole sensitive field).
fn replacements(opening: &str) -> Vec<(String, &'static str, String)> {
    let mut out: Vec<(String, &'static str, String)> = SENSITIVE
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(v, t)| (v.clone(), SENSITIVE_SHOWN, t.clone()))
        .collect();
    let learned = LEARNED.read().unwrap_or_else(|p| p.into_inner()).clone();
    out.extend(
        learned
            .into_iter()
            .map(|(n, v)| (v, SENSITIVE_SHOWN, format!("{opening}{n}}}"))),
    );
    let values = VALUES.read().unwrap_or_else(|p| p.into_inner()).clone();
    out.extend(
        values
            .into_iter()
            .map(|(n, v)| (v, "[secret]", format!("{opening}{n}}}"))),
    );
    out.sort_by_key(|(v, _, _)| std::cmp::Reverse(v.len()));
    out
}

/// Learns what `live` (a deployed field or decoded definition part) was rendered from, given
/// its template from the deployed record (references spelled `{opening}NAME}`): the values
/// filling the references are redacted from now on and journaled as the references, and with
/// `whole`, the whole value is shown as `(sensitive)` and journaled as the template. A value
/// that no longer matches its template (changed since) teaches nothing; returns whether it
/// matched.
pub fn learn(template: &str, opening: &str, live: &str, whole: bool) -> bool {
    let Some(values) = crate::deployed::match_template(template, opening, live) else {
        return false;
    };
    {
        let mut l = LEARNED.write().unwrap_or_else(|p| p.into_inner());
        for (name, value) in values {
            if value.len() >= 4 && !l.iter().any(|(n, v)| *n == name && *v == value) {
                l.push((name, value));
            }
        }
        l.sort_by_key(|(_, x)| std::cmp::Reverse(x.len()));
    }
    if whole && live.len() >= 4 {
        let template = template.replace(opening, "${secret:");
        let mut s = SENSITIVE.write().unwrap_or_else(|p| p.into_inner());
        if !s.iter().any(|(v, _)| v == live) {
            s.push((live.to_string(), template));
        }
    }
    true
}

/// Whether `text` holds a value of a secret this process resolved (not one it learned).
pub fn holds_secret(text: &str) -> bool {
    VALUES
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|(_, v)| text.contains(v.as_str()))
}

/// `text` with the values of the secrets this process resolved replaced by `{opening}NAME}`:
/// the template a deployed record keeps.
pub fn template_of(text: &str, opening: &str) -> String {
    let mut values = VALUES.read().unwrap_or_else(|p| p.into_inner()).clone();
    values.sort_by_key(|(_, x)| std::cmp::Reverse(x.len()));
    let mut out = text.to_string();
    for (n, v) in values {
        out = out.replace(v.as_str(), &format!("{opening}{n}}}"));
    }
    out
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
/// Values a previous run deployed from secrets (learned from the deployed record) become
/// `(sensitive)`.
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    for (v, shown, _) in replacements("${secret:") {
        out = out.replace(v.as_str(), shown);
    }
    out
}

/// Replaces secret values with their `${secret:NAME}` references: what journals keep, so an
/// undo record never holds a secret yet can be restored by a process that resolves it again.
pub fn to_references(text: &str) -> String {
    let mut out = text.to_string();
    for (v, _, reference) in replacements("${secret:") {
        out = out.replace(v.as_str(), &reference);
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
pub const IN_DEFINITION: &str = "${fabrik-secret:";

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
    for (v, _, reference) in replacements(IN_DEFINITION) {
        out = out.replace(v.as_str(), &reference);
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

/// Where secrets are read from, as the last [`resolve`] was told: what a rollback resolves
/// the references of its undo records through ([`resolve_for_undo`]).
#[derive(Debug, Clone)]
struct Sources {
    config_path: std::path::PathBuf,
    keyvault: bool,
    auth: Option<String>,
    ca_cert: Option<std::path::PathBuf>,
}

static SOURCES: RwLock<Option<Sources>> = RwLock::new(None);

/// The secret providers `sources` names (Key Vault when its flag is on, then the
/// environment, then `.env` beside the config).
fn provider(sources: &Sources) -> Result<fabrik_secrets::CachedSecrets, String> {
    let env: Arc<dyn fabrik_secrets::Env> = Arc::new(fabrik_secrets::ProcessEnv);
    let azure = if sources.keyvault {
        let method = sources
            .auth
            .as_deref()
            .and_then(|a| fabrik_secrets::credential::parse_method(a).ok().flatten());
        let mut options =
            fabrik_secrets::AzureOptions::from_env(env.as_ref()).map_err(|e| e.to_string())?;
        if let Some(ca) = &sources.ca_cert {
            options = options.with_extra_ca_file(ca).map_err(|e| e.to_string())?;
        }
        let auth = fabrik_secrets::AzureAuth::from_env(
            method,
            None,
            env.as_ref(),
            &options,
            Arc::new(fabrik_core::SystemClock),
        )
        .map_err(|e| format!("Key Vault is on but no Azure credential: {e}"))?;
        Some(auth)
    } else {
        None
    };
    let options = fabrik_secrets::SecretsOptions {
        keyvault_enabled: sources.keyvault,
        dotenv: Some(
            sources
                .config_path
                .parent()
                .unwrap_or(Path::new("."))
                .join(".env"),
        ),
        defaults: Default::default(),
    };
    fabrik_secrets::build_secrets(
        env,
        &options,
        azure.as_ref(),
        Arc::new(fabrik_core::SystemClock),
    )
    .map_err(|e| e.to_string())
}

/// Resolves the config's secret references; a failure becomes a `Missing` that the loader
/// reports at the reference's position.
pub async fn resolve(
    config_path: &Path,
    flags: &fabrik_flags::Flags,
    auth: Option<&str>,
    ca_cert: Option<&Path>,
) -> BTreeMap<String, SecretValue> {
    let sources = Sources {
        config_path: config_path.to_path_buf(),
        keyvault: flags.is_on(Flag::AzureKeyVault),
        auth: auth.map(str::to_owned),
        ca_cert: ca_cert.map(Path::to_path_buf),
    };
    *SOURCES.write().unwrap_or_else(|p| p.into_inner()) = Some(sources);
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
    let sources = Sources {
        config_path: config_path.to_path_buf(),
        keyvault: flags.is_on(Flag::AzureKeyVault),
        auth: auth.map(str::to_owned),
        ca_cert: ca_cert.map(Path::to_path_buf),
    };
    let provider = match provider(&sources) {
        Ok(p) => p,
        Err(e) => return missing_all(&names, &e),
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

/// The secret names the references of `undo` need (`${secret:NAME}` in its strings,
/// `${fabrik-secret:NAME}` in the text of its definition parts).
fn undo_names(undo: &fabrik_core::Undo) -> Vec<String> {
    let found = std::sync::Mutex::new(Vec::<String>::new());
    let collect = |text: &str, opening: &str| {
        let mut f = found.lock().unwrap_or_else(|p| p.into_inner());
        for r in crate::deployed::references(text, opening) {
            let name = r[opening.len()..r.len() - 1].to_string();
            if !f.contains(&name) {
                f.push(name);
            }
        }
    };
    let r: Result<_, std::convert::Infallible> = map_strings(undo, &|s| {
        collect(s, "${secret:");
        Ok(s.to_string())
    })
    .and_then(|u| {
        map_definition_parts(u, &|t| {
            collect(t, IN_DEFINITION);
            Ok(t.to_string())
        })
    });
    let _ = r;
    found.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// Before a rollback undoes anything: resolves every secret the undo records of `records`
/// (resource, undo) refer to and this process does not know yet — through the providers the
/// project's secrets are read from (environment and `.env` when no config was read), an
/// `env:VAR` from the variable — so no record fails halfway for want of one. The first that
/// cannot be resolved is the error, naming it and its resource.
pub async fn resolve_for_undo(records: &[(String, fabrik_core::Undo)]) -> Result<(), String> {
    let sources = SOURCES
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_else(|| Sources {
            config_path: std::path::PathBuf::from("fabrik.yaml"),
            keyvault: false,
            auth: None,
            ca_cert: None,
        });
    let mut provider_built: Option<Result<fabrik_secrets::CachedSecrets, String>> = None;
    for (resource, undo) in records {
        for name in undo_names(undo) {
            if known().iter().any(|(n, _)| *n == name) {
                continue;
            }
            let why = if let Some(var) = name.strip_prefix("env:") {
                if std::env::var(var).is_ok() {
                    continue;
                }
                format!("environment variable {var} is not set")
            } else {
                let p = provider_built.get_or_insert_with(|| provider(&sources));
                match p {
                    Ok(p) => match p.get_secret(&name).await {
                        Ok(Some(v)) => {
                            register(&name, v.expose_secret());
                            continue;
                        }
                        Ok(None) => format!("not found ({})", p.describe()),
                        Err(e) => e.to_string(),
                    },
                    Err(e) => e.clone(),
                }
            };
            return Err(format!(
                "the undo record of {resource} needs secret '{name}', which cannot be resolved:                  {why}; nothing was undone — make it available and run `fabrik rollback` again"
            ));
        }
    }
    Ok(())
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
    fn a_value_learned_from_a_deployed_record_is_sensitive_and_journals_as_its_template() {
        // The config now names another secret; the deployed description came from this one.
        register("learn-now", "now-Wq19zt");
        assert!(!learn(
            "owner ${secret:learn-old}",
            "${secret:",
            "changed by hand",
            true
        ));
        assert_eq!(redact("changed by hand"), "changed by hand");
        assert!(learn(
            "owner ${secret:learn-old}",
            "${secret:",
            "owner old-Kp42vd",
            true
        ));
        assert_eq!(
            redact("description: \"owner old-Kp42vd\" → \"owner now-Wq19zt\""),
            "description: \"(sensitive)\" → \"owner [secret]\""
        );
        assert_eq!(
            redact("in a log line: old-Kp42vd"),
            "in a log line: (sensitive)"
        );
        let undo = crate::engine::kinds::workspace::WorkspaceUndo::Restore {
            workspace_id: "w".into(),
            display_name: "n".into(),
            description: "owner old-Kp42vd".into(),
        }
        .record();
        let journaled = undo_to_references(&undo);
        let json = serde_json::to_string(&journaled).unwrap();
        assert!(json.contains("owner ${secret:learn-old}"), "{json}");
        assert!(!json.contains("old-Kp42vd"), "{json}");
        // In this process the learned value restores exactly what was deployed.
        assert_eq!(undo_from_references(&journaled).unwrap(), undo);
        assert_eq!(undo_names(&journaled), vec!["learn-old".to_string()]);
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
