//! Azure credentials as a token provider: the one place the credential chain is built, for
//! the Fabric client (`run`) and for Azure Blob state (`state`) alike.

use std::sync::Arc;

use fabrik_core::TokenProvider;

/// Tokens from an Azure credential: `method`, or the automatic chain when `None`, reading
/// `AZURE_*` from `env`.
pub fn azure_tokens(
    method: Option<fabrik_secrets::AuthMethod>,
    env: &dyn fabrik_secrets::Env,
    options: &fabrik_secrets::AzureOptions,
) -> Result<Arc<dyn TokenProvider>, String> {
    let azure = fabrik_secrets::AzureAuth::from_env(
        method,
        None,
        env,
        options,
        Arc::new(fabrik_core::SystemClock),
    )
    .map_err(|e| e.to_string())?;
    Ok(azure.tokens as Arc<dyn TokenProvider>)
}
