//! `${secret:NAME}` references: resolved before validation through fabrik-secrets (Key Vault
//! when the flag is on, then the environment, then `.env` beside the config), and redacted
//! from everything the command prints.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use fabrik_core::secret::ExposeSecret;
use fabrik_core::{Flag, SecretProvider};

use crate::config::{self, SecretValue};

static VALUES: OnceLock<Vec<String>> = OnceLock::new();

/// Replaces every resolved secret value in `text` with `[secret]`.
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    for v in VALUES.get().into_iter().flatten() {
        out = out.replace(v.as_str(), "[secret]");
    }
    out
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
    let mut values = Vec::new();
    for name in names {
        let v = match provider.get_secret(&name).await {
            Ok(Some(s)) => {
                values.push(s.expose_secret().to_string());
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
    // Short values would redact innocent text; secrets shorter than 4 characters are not secret.
    values.retain(|v| v.len() >= 4);
    let _ = VALUES.set(values);
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
